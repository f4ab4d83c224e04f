"""Writes of the places of risk control (R1–R4): risk points, annotations, geofences and their
vehicles, in-place arming, usual areas, custom alarm types and alarm settings.

Invariants kept here (the models cannot see the acting user):
- Risk points are shared by the whole server: only platform admins (or the system, `by=None`,
  for commands) write them.
- Annotations, fences, custom types and settings belong to a customer `by` can see; a private
  annotation is changed only by its author (or a platform admin).
- A fence binds only vehicles `by` can see that belong to the fence customer's subtree.
- Arming and "annotation from a vehicle" use the vehicle's current position (the freshest valid
  fix of its mounted devices) and refuse clearly when there is none.

Every write touches the row's `updated_at`, which is what `alarms.spatial.PlaceIndexCache` and
the engine's settings cache watch: the running gateway picks the change up within seconds.
Refusals are `ApplicationError`s: code "not_found" for objects `by` cannot see (404 in the API),
"permission_denied" for what they see but may not change (403).
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable
from typing import Any

from django.contrib.gis.geos import GEOSException, GEOSGeometry, LinearRing, Point, Polygon
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from accounts.models import Customer
from accounts.selectors import customer_is_visible_to, customer_is_within, is_platform_admin
from alarms import kinds
from alarms.models import (
    AlarmSetting,
    Annotation,
    Arming,
    CustomAlarmType,
    Geofence,
    Level,
    RiskPoint,
    UsualArea,
)
from alarms.selectors import (
    annotations_visible_to,
    geofences_visible_to,
    vehicle_current_fix,
)
from carloan.errors import ApplicationError
from carloan.services import model_save
from vehicles.models import Vehicle
from vehicles.selectors import vehicles_visible_to

MAX_POLYGON_VERTICES = 5_000  # a fence is tested on every fix of its vehicles: keep it lean
RISK_POINT_FIELDS = ("name", "kind", "lat", "lon", "radius_m", "address")
ANNOTATION_FIELDS = ("name", "lat", "lon", "radius_m", "shared", "note")
GEOFENCE_FIELDS = (
    "name",
    "shape",
    "polygon",
    "center",
    "radius_m",
    "alarm_enter",
    "alarm_leave",
    "alarm_inside",
    "alarm_parking",
    "parking_minutes",
)
USUAL_AREA_FIELDS = ("name", "lat", "lon", "radius_m")
CUSTOM_TYPE_FIELDS = (
    "name",
    "level",
    "min_speed_kmh",
    "max_speed_kmh",
    "geofence",
    "annotation",
    "time_from",
    "time_to",
    "acc",
    "duration_s",
    "enabled",
)


# --- Checks ------------------------------------------------------------------------------------
def _actor(by):
    return by if by is not None and getattr(by, "is_authenticated", False) else None


def _not_found(message: str) -> ApplicationError:
    return ApplicationError(message, code="not_found")


def _denied(message: str) -> ApplicationError:
    return ApplicationError(message, code="permission_denied")


def _require_platform_admin(by) -> None:
    if by is not None and not is_platform_admin(by):
        raise _denied(_("Risk points are shared by the whole server: only platform admins edit."))


def _require_customer(by, customer: Customer) -> None:
    if by is not None and not customer_is_visible_to(by, customer.pk):
        raise _not_found(_("That customer is outside your part of the tree."))


def _require_vehicle(by, vehicle: Vehicle) -> None:
    if by is not None and not vehicles_visible_to(by).filter(pk=vehicle.pk).exists():
        raise _not_found(_("Vehicle not found."))


def _unknown(fields: dict, allowed: Iterable[str]) -> None:
    unknown = set(fields).difference(allowed)
    if unknown:
        raise ApplicationError(
            _("These fields cannot be set here: %s") % ", ".join(sorted(unknown))
        )


def point_from(lat: Any, lon: Any) -> Point:
    """A WGS-84 point from latitude and longitude in degrees, refusing out-of-range values."""
    try:
        lat_f, lon_f = float(lat), float(lon)
    except (TypeError, ValueError) as exc:
        raise ApplicationError(_("Latitude and longitude must be numbers.")) from exc
    if not (math.isfinite(lat_f) and -90 <= lat_f <= 90):
        raise ApplicationError(_("Latitude must be between -90 and 90 (got %s).") % lat)
    if not (math.isfinite(lon_f) and -180 <= lon_f <= 180):
        raise ApplicationError(_("Longitude must be between -180 and 180 (got %s).") % lon)
    return Point(lon_f, lat_f, srid=4326)


def _as_point(value) -> Point:
    """A Point, a (lat, lon) pair, a {"lat", "lon"} dict or a GeoJSON Point."""
    if isinstance(value, Point):
        return point_from(value.y, value.x)
    if isinstance(value, dict):
        if value.get("type") == "Point":
            coords = value.get("coordinates") or []
            if len(coords) < 2:
                raise ApplicationError(_("A GeoJSON Point needs [longitude, latitude]."))
            return point_from(coords[1], coords[0])
        return point_from(value.get("lat"), value.get("lon"))
    if isinstance(value, list | tuple) and len(value) == 2:
        return point_from(value[0], value[1])
    raise ApplicationError(_("A centre is given as latitude and longitude."))


def _ring(coords) -> LinearRing:
    if not isinstance(coords, list | tuple) or len(coords) < 3:
        raise ApplicationError(_("A polygon ring needs at least 3 points."))
    points = []
    for pair in coords:
        if not isinstance(pair, list | tuple) or len(pair) < 2:
            raise ApplicationError(_("Polygon points are [longitude, latitude] pairs."))
        p = point_from(pair[1], pair[0])
        points.append((p.x, p.y))
    if points[0] != points[-1]:
        points.append(points[0])  # GeoJSON closes rings; people drawing by hand often do not
    if len(set(points)) < 3:
        raise ApplicationError(_("A polygon ring needs at least 3 distinct points."))
    return LinearRing(points)


def polygon_from(value) -> Polygon:
    """A valid WGS-84 polygon (holes allowed) from a GEOS Polygon, a GeoJSON Polygon (dict or
    text, a Feature too) or WKT. Refuses other geometry types, self-intersections, rings of
    fewer than 3 points and polygons of more than MAX_POLYGON_VERTICES vertices."""
    if isinstance(value, str):
        text = value.strip()
        if text.startswith("{"):
            try:
                value = json.loads(text)
            except ValueError as exc:
                raise ApplicationError(_("The polygon is not valid GeoJSON.")) from exc
        else:
            try:
                value = GEOSGeometry(text, srid=4326)
            except (GEOSException, ValueError) as exc:
                raise ApplicationError(_("The polygon is neither GeoJSON nor WKT.")) from exc
    if isinstance(value, dict):
        if value.get("type") == "Feature":
            value = value.get("geometry") or {}
        if value.get("type") != "Polygon":
            raise ApplicationError(
                _("A fence is one GeoJSON Polygon (got %s).") % (value.get("type") or "nothing")
            )
        rings = value.get("coordinates")
        if not isinstance(rings, list) or not rings:
            raise ApplicationError(_("The polygon has no coordinates."))
        polygon = Polygon(*[_ring(r) for r in rings], srid=4326)
    elif isinstance(value, GEOSGeometry):
        if value.geom_type != "Polygon":
            raise ApplicationError(_("A fence is one polygon (got %s).") % value.geom_type)
        if value.srid not in (None, 4326):
            value = value.transform(4326, clone=True)
        polygon = Polygon(*[_ring(list(r.coords)) for r in value], srid=4326)
    else:
        raise ApplicationError(_("A fence polygon is needed."))
    if polygon.num_points > MAX_POLYGON_VERTICES:
        raise ApplicationError(
            _("The polygon has %(n)d points; at most %(max)d are allowed.")
            % {"n": polygon.num_points, "max": MAX_POLYGON_VERTICES}
        )
    if not polygon.valid:
        raise ApplicationError(
            _("The polygon is not valid: %s") % polygon.valid_reason, code="invalid_polygon"
        )
    return polygon


# --- Risk points (R1) --------------------------------------------------------------------------
def risk_point_create(
    *,
    name: str,
    kind: str,
    lat: float,
    lon: float,
    radius_m: int = 200,
    address: str = "",
    by=None,
) -> RiskPoint:
    _require_platform_admin(by)
    point = RiskPoint(
        name=name, kind=kind, point=point_from(lat, lon), radius_m=radius_m, address=address
    )
    return model_save(point, by=by)


def risk_point_update(*, risk_point: RiskPoint, by=None, **fields) -> RiskPoint:
    _require_platform_admin(by)
    _unknown(fields, RISK_POINT_FIELDS)
    touched = set(fields) - {"lat", "lon"}
    if "lat" in fields or "lon" in fields:
        lat = fields.pop("lat", risk_point.point.y)
        lon = fields.pop("lon", risk_point.point.x)
        risk_point.point = point_from(lat, lon)
        touched.add("point")
    for name, value in fields.items():
        setattr(risk_point, name, value)
    return model_save(risk_point, by=by, update_fields=touched)


def risk_point_delete(*, risk_point: RiskPoint, by=None) -> None:
    _require_platform_admin(by)
    risk_point.delete()


# --- Annotations (R2) --------------------------------------------------------------------------
def _require_annotation_author(by, annotation: Annotation) -> None:
    if by is None or is_platform_admin(by):
        return
    if not annotations_visible_to(by).filter(pk=annotation.pk).exists():
        raise _not_found(_("Annotation not found."))
    if not annotation.shared and annotation.created_by_id != by.pk:
        raise _denied(_("Only its author may change a private annotation."))


def annotation_create(
    *,
    customer: Customer,
    name: str,
    lat: float,
    lon: float,
    radius_m: int = 200,
    shared: bool = True,
    note: str = "",
    by=None,
) -> Annotation:
    """A place of `customer` (R2): shared, it applies to every vehicle of the customer's subtree
    and everyone there sees it; private, only its author sees it (its alarms still run)."""
    _require_customer(by, customer)
    annotation = Annotation(
        customer=customer,
        name=name,
        point=point_from(lat, lon),
        radius_m=radius_m,
        shared=shared,
        note=note,
        created_by=_actor(by),
    )
    return model_save(annotation, by=by)


def annotation_from_vehicle(
    *,
    vehicle: Vehicle,
    name: str,
    radius_m: int = 200,
    shared: bool = True,
    note: str = "",
    by=None,
) -> Annotation:
    """An annotation where the vehicle is now (its freshest valid device fix). It belongs to the
    vehicle's customer, or to `by`'s own customer when the vehicle is only shared with them."""
    _require_vehicle(by, vehicle)
    fix = vehicle_current_fix(vehicle)
    if fix is None:
        raise ApplicationError(
            _("%(plate)s has no valid position yet: no mounted device has reported a fix.")
            % {"plate": vehicle.plate},
            code="no_position",
        )
    customer = vehicle.customer
    if by is not None and not customer_is_visible_to(by, customer.pk):
        customer = by.customer
        if customer is None:
            raise _not_found(_("That customer is outside your part of the tree."))
    return annotation_create(
        customer=customer,
        name=name,
        lat=fix.lat,
        lon=fix.lon,
        radius_m=radius_m,
        shared=shared,
        note=note,
        by=by,
    )


def annotation_update(*, annotation: Annotation, by=None, **fields) -> Annotation:
    _require_annotation_author(by, annotation)
    _unknown(fields, ANNOTATION_FIELDS)
    touched = set(fields) - {"lat", "lon"}
    if "lat" in fields or "lon" in fields:
        lat = fields.pop("lat", annotation.point.y)
        lon = fields.pop("lon", annotation.point.x)
        annotation.point = point_from(lat, lon)
        touched.add("point")
    private_by_other = by is not None and annotation.created_by_id != by.pk
    if fields.get("shared") is False and private_by_other and not is_platform_admin(by):
        raise _denied(_("Only its author may make an annotation private."))
    for name, value in fields.items():
        setattr(annotation, name, value)
    return model_save(annotation, by=by, update_fields=touched)


def annotation_delete(*, annotation: Annotation, by=None) -> None:
    _require_annotation_author(by, annotation)
    annotation.delete()


# --- Geofences (R3) ----------------------------------------------------------------------------
def _require_fence(by, geofence: Geofence) -> None:
    if by is not None and not geofences_visible_to(by).filter(pk=geofence.pk).exists():
        raise _not_found(_("Geofence not found."))


def _apply_shape(fence: Geofence, shape: str, polygon, center, radius_m) -> None:
    if shape == Geofence.Shape.POLYGON:
        fence.polygon = polygon_from(polygon)
        fence.center, fence.radius_m = None, None
    elif shape == Geofence.Shape.CIRCLE:
        if center is None or not radius_m:
            raise ApplicationError(_("A circle fence needs a centre and a radius."))
        fence.center, fence.radius_m, fence.polygon = _as_point(center), radius_m, None
    else:
        raise ApplicationError(_("A fence is a polygon or a circle (got %s).") % shape)
    fence.shape = shape


@transaction.atomic
def geofence_create(
    *,
    customer: Customer,
    name: str,
    shape: str,
    polygon=None,
    center=None,
    radius_m: int | None = None,
    vehicles: Iterable[Vehicle] = (),
    by=None,
    **options,
) -> Geofence:
    """A fence of `customer`: a polygon (GeoJSON / WKT / GEOS, holes allowed) or a circle
    (`center` as (lat, lon), {"lat", "lon"} or a GeoJSON Point, `radius_m`), with its alarm
    switches (`alarm_enter`, `alarm_leave`, `alarm_inside`, `alarm_parking`,
    `parking_minutes`), bound to `vehicles` (see `geofence_bind`)."""
    _require_customer(by, customer)
    _unknown(options, GEOFENCE_FIELDS)
    fence = Geofence(customer=customer, name=name, created_by=_actor(by), **options)
    _apply_shape(fence, shape, polygon, center, radius_m)
    model_save(fence, by=by)
    vehicles = list(vehicles)
    if vehicles:
        geofence_bind(geofence=fence, vehicles=vehicles, by=by)
    return fence


@transaction.atomic
def geofence_update(*, geofence: Geofence, by=None, **fields) -> Geofence:
    """Change a fence's name, shape / geometry and alarm switches. Changing the shape needs the
    new shape's geometry."""
    _require_fence(by, geofence)
    _unknown(fields, GEOFENCE_FIELDS)
    geometry = {"shape", "polygon", "center", "radius_m"}
    touched = set(fields) - geometry
    if geometry & set(fields):
        shape = fields.pop("shape", geofence.shape)
        keep = shape == geofence.shape
        polygon = fields.pop("polygon", geofence.polygon if keep else None)
        center = fields.pop("center", geofence.center if keep else None)
        radius_m = fields.pop("radius_m", geofence.radius_m if keep else None)
        _apply_shape(geofence, shape, polygon, center, radius_m)
        touched |= geometry
    for name, value in fields.items():
        setattr(geofence, name, value)
    return model_save(geofence, by=by, update_fields=touched)


def geofence_delete(*, geofence: Geofence, by=None) -> None:
    _require_fence(by, geofence)
    geofence.delete()


def _bindable(geofence: Geofence, vehicles: Iterable[Vehicle], by) -> list[Vehicle]:
    vehicles = list(vehicles)
    ids = {v.pk for v in vehicles}
    if by is not None:
        visible = set(vehicles_visible_to(by).filter(pk__in=ids).values_list("pk", flat=True))
        hidden = ids - visible
        if hidden:
            raise _not_found(_("Vehicle not found: %s") % ", ".join(map(str, sorted(hidden))))
    outside = [v for v in vehicles if not customer_is_within(v.customer_id, geofence.customer_id)]
    if outside:
        raise ApplicationError(
            _("A fence of %(c)s binds only vehicles of %(c)s and its sub-customers: %(p)s.")
            % {"c": geofence.customer.name, "p": ", ".join(v.plate for v in outside)},
            code="outside_subtree",
        )
    return vehicles


@transaction.atomic
def geofence_bind(*, geofence: Geofence, vehicles: Iterable[Vehicle], by=None) -> int:
    """Bind vehicles to the fence: only vehicles `by` can see, of the fence customer's subtree.
    Returns how many were newly bound."""
    _require_fence(by, geofence)
    vehicles = _bindable(geofence, vehicles, by)
    already = set(geofence.vehicles.values_list("pk", flat=True))
    new = [v for v in vehicles if v.pk not in already]
    if new:
        geofence.vehicles.add(*new)
        model_save(geofence, by=by, update_fields=[])  # updated_at: caches see the change
    return len(new)


@transaction.atomic
def geofence_unbind(*, geofence: Geofence, vehicles: Iterable[Vehicle], by=None) -> int:
    """Unbind vehicles (those `by` can see; others are left alone). Returns how many."""
    _require_fence(by, geofence)
    ids = {v.pk for v in vehicles}
    if by is not None:
        ids = set(vehicles_visible_to(by).filter(pk__in=ids).values_list("pk", flat=True))
    bound = set(geofence.vehicles.filter(pk__in=ids).values_list("pk", flat=True))
    if bound:
        geofence.vehicles.remove(*bound)
        model_save(geofence, by=by, update_fields=[])
    return len(bound)


@transaction.atomic
def geofence_set_vehicles(*, geofence: Geofence, vehicles: Iterable[Vehicle], by=None) -> None:
    """Make the fence's vehicles exactly `vehicles` among those `by` can see; bindings to
    vehicles `by` cannot see (another tenant's, shared in) are kept as they are."""
    _require_fence(by, geofence)
    wanted = {v.pk for v in vehicles}
    current = geofence.vehicles.all()
    if by is not None:
        current = current.filter(pk__in=vehicles_visible_to(by).values("pk"))
    drop = [v for v in current if v.pk not in wanted]
    if drop:
        geofence_unbind(geofence=geofence, vehicles=drop, by=by)
    geofence_bind(geofence=geofence, vehicles=vehicles, by=by)


# --- In-place arming and usual areas ---------------------------------------------------------
@transaction.atomic
def vehicle_arm(*, vehicle: Vehicle, radius_m: int = 200, by=None) -> Arming:
    """Arm the vehicle where it is now (原地设防): leaving `radius_m` raises "armed vehicle
    moved". Arming an armed vehicle moves the spot to where it is now."""
    _require_vehicle(by, vehicle)
    fix = vehicle_current_fix(vehicle)
    if fix is None:
        raise ApplicationError(
            _("%(plate)s cannot be armed: no mounted device has reported a valid position.")
            % {"plate": vehicle.plate},
            code="no_position",
        )
    arming = Arming.objects.select_for_update().filter(vehicle=vehicle).first()
    if arming is None:
        arming = Arming(vehicle=vehicle)
    arming.point = point_from(fix.lat, fix.lon)
    arming.radius_m = radius_m
    arming.armed_at = timezone.now()
    arming.armed_by = _actor(by)
    return model_save(arming, by=by)


def vehicle_disarm(*, vehicle: Vehicle, by=None) -> bool:
    """End in-place arming. False when the vehicle was not armed."""
    _require_vehicle(by, vehicle)
    deleted, _detail = Arming.objects.filter(vehicle=vehicle).delete()
    return bool(deleted)


def usual_area_create(
    *, vehicle: Vehicle, name: str, lat: float, lon: float, radius_m: int = 500, by=None
) -> UsualArea:
    """Where the vehicle normally goes (home, work): "not entering the usual area" is measured
    against these."""
    _require_vehicle(by, vehicle)
    area = UsualArea(vehicle=vehicle, name=name, point=point_from(lat, lon), radius_m=radius_m)
    return model_save(area, by=by)


def usual_area_update(*, usual_area: UsualArea, by=None, **fields) -> UsualArea:
    _require_vehicle(by, usual_area.vehicle)
    _unknown(fields, USUAL_AREA_FIELDS)
    touched = set(fields) - {"lat", "lon"}
    if "lat" in fields or "lon" in fields:
        lat = fields.pop("lat", usual_area.point.y)
        lon = fields.pop("lon", usual_area.point.x)
        usual_area.point = point_from(lat, lon)
        touched.add("point")
    for name, value in fields.items():
        setattr(usual_area, name, value)
    return model_save(usual_area, by=by, update_fields=touched)


def usual_area_delete(*, usual_area: UsualArea, by=None) -> None:
    _require_vehicle(by, usual_area.vehicle)
    usual_area.delete()


# --- Custom alarm types (R4) -------------------------------------------------------------------
def _check_custom_type(ct: CustomAlarmType, by) -> None:
    if ct.geofence_id and ct.annotation_id:
        raise ApplicationError(_("Choose a fence or an annotation, not both."))
    if ct.geofence_id:
        fence = ct.geofence
        if by is not None and not geofences_visible_to(by).filter(pk=fence.pk).exists():
            raise _not_found(_("Geofence not found."))
    if (
        ct.annotation_id
        and by is not None
        and not annotations_visible_to(by).filter(pk=ct.annotation_id).exists()
    ):
        raise _not_found(_("Annotation not found."))
    lo, hi = ct.min_speed_kmh, ct.max_speed_kmh
    for value in (lo, hi):
        if value is not None and value < 0:
            raise ApplicationError(_("Speeds cannot be negative."))
    if lo is not None and hi is not None and lo > hi:
        raise ApplicationError(_("The lowest speed is above the highest."))
    if (ct.time_from is None) != (ct.time_to is None):
        raise ApplicationError(_("Give both ends of the time of day, or neither."))
    conditions = (lo, hi, ct.geofence_id, ct.annotation_id, ct.time_from, ct.acc)
    if all(c is None for c in conditions):
        raise ApplicationError(
            _("A custom alarm needs at least one condition: speed, area, time of day or ACC.")
        )


def custom_alarm_type_create(*, customer: Customer, name: str, by=None, **fields):
    """A named condition (R4) for the vehicles of `customer`'s subtree: speed range, inside a
    fence or annotation, time of day (may wrap midnight), ACC, all held for `duration_s`."""
    _require_customer(by, customer)
    _unknown(fields, CUSTOM_TYPE_FIELDS)
    ct = CustomAlarmType(customer=customer, name=name, **fields)
    _check_custom_type(ct, by)
    return model_save(ct, by=by)


def custom_alarm_type_update(*, custom_type: CustomAlarmType, by=None, **fields):
    _require_customer(by, custom_type.customer)
    _unknown(fields, CUSTOM_TYPE_FIELDS)
    for name, value in fields.items():
        setattr(custom_type, name, value)
    _check_custom_type(custom_type, by)
    return model_save(custom_type, by=by, update_fields=set(fields))


def custom_alarm_type_delete(*, custom_type: CustomAlarmType, by=None) -> None:
    _require_customer(by, custom_type.customer)
    custom_type.delete()


# --- Alarm settings ------------------------------------------------------------------------------
def _json_value_ok(value) -> bool:
    if value is None or isinstance(value, bool | int | str):
        return True
    if isinstance(value, float):
        return math.isfinite(value)
    if isinstance(value, list):
        return all(_json_value_ok(v) and not isinstance(v, list) for v in value)
    return False


def validate_setting_params(kind: str, params) -> dict:
    """`params` must be a JSON object of scalars or flat lists, and every key a parameter of the
    rule of `kind` with a value of its type (`alarms.rules.params_for`)."""
    if not isinstance(params, dict):
        raise ApplicationError(_("Parameters must be a JSON object."))
    for key, value in params.items():
        if not isinstance(key, str) or not _json_value_ok(value):
            raise ApplicationError(
                _("Parameter %(k)s: use a number, text, true / false or a list of those.")
                % {"k": key}
            )
    # --- The one call site of the rules' parameter schemas (alarms.rules.RULES[kind].Params).
    from alarms.rules import ParamError, params_for

    try:
        params_for(kind, params)
    except ParamError as exc:
        raise ApplicationError(param_error_message(exc), code="bad_params") from exc
    return params


def _number(value) -> str:
    return f"{value:g}" if isinstance(value, int | float) else str(value)


def param_error_message(exc) -> str:
    """A translated sentence for an `alarms.rules.ParamError`."""
    label = kinds.KINDS[exc.kind].label if exc.kind in kinds.KINDS else exc.kind
    names = {"kind": label, "key": exc.key, "value": exc.value}
    if exc.problem == "no_params":
        return _("The alarm “%(kind)s” takes no parameters.") % names
    if exc.problem == "unknown":
        return _("Unknown parameter “%(key)s” for “%(kind)s”; it accepts: %(known)s.") % {
            **names,
            "known": ", ".join(exc.known),
        }
    if exc.problem == "range":
        return _(
            "Parameter “%(key)s” of “%(kind)s” must be between %(low)s and %(high)s, not %(value)s."
        ) % {
            **names,
            "low": _number(exc.low),
            "high": _number(exc.high),
            "value": _number(exc.value),
        }
    if exc.problem == "choice":
        return _("Parameter “%(key)s” of “%(kind)s”: “%(value)s” is not one of %(choices)s.") % {
            **names,
            "choices": ", ".join(exc.choices),
        }
    expected = {
        "a number": _("a number"),
        "a whole number": _("a whole number"),
        "true or false": _("true or false"),
        "text": _("text"),
        "a list of text": _("a list of text"),
    }.get(exc.expected, exc.expected)
    return _("Parameter “%(key)s” of “%(kind)s” must be %(expected)s.") % {
        **names,
        "expected": expected,
    }


@transaction.atomic
def alarm_setting_upsert(
    *,
    kind: str,
    customer: Customer | None = None,
    vehicle: Vehicle | None = None,
    enabled: bool | None = None,
    level: int | None = None,
    params: dict | None = None,
    by=None,
) -> AlarmSetting:
    """Set the override of `kind` on a customer (inherited down its subtree) or on one vehicle
    (wins over every customer). `None` keeps the inherited value; `params` replaces the row's
    parameters and holds only the keys to override."""
    if kind not in kinds.KINDS:
        raise ApplicationError(_("Unknown alarm kind: %s") % kind)
    if (customer is None) == (vehicle is None):
        raise ApplicationError(_("Set either a customer or a vehicle."))
    if customer is not None:
        _require_customer(by, customer)
    else:
        _require_vehicle(by, vehicle)
    if level is not None and level not in Level.values:
        raise ApplicationError(_("Unknown alarm level: %s") % level)
    params = validate_setting_params(kind, params if params is not None else {})
    target = {"customer": customer} if customer is not None else {"vehicle": vehicle}
    setting = AlarmSetting.objects.select_for_update().filter(kind=kind, **target).first()
    if setting is None:
        setting = AlarmSetting(kind=kind, **target)
    setting.enabled, setting.level, setting.params = enabled, level, params
    if setting.pk:
        return model_save(setting, by=by, update_fields=["enabled", "level", "params"])
    return model_save(setting, by=by)


def alarm_setting_delete(*, setting: AlarmSetting, by=None) -> None:
    if setting.customer_id:
        _require_customer(by, setting.customer)
    else:
        _require_vehicle(by, setting.vehicle)
    setting.delete()
