"""Reads of the places of risk control, scoped by visibility (see accounts.selectors): risk
points (shared by the whole server), annotations (shared ones of the user's subtree plus the
user's own private ones), geofences, usual areas, armings, custom alarm types and alarm settings;
and a vehicle's current position (the freshest valid fix of its mounted devices)."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from django.contrib.gis.db.models.functions import Distance
from django.contrib.gis.geos import Point, Polygon
from django.contrib.gis.measure import D
from django.db.models import Q, QuerySet

from accounts.selectors import is_platform_admin, scope, subtree_q
from alarms.models import (
    AlarmSetting,
    Annotation,
    Arming,
    CustomAlarmType,
    Geofence,
    RiskPoint,
    UsualArea,
)
from alarms.spatial import circle_bounds
from vehicles.models import DeviceBinding, Vehicle
from vehicles.selectors import vehicles_visible_to


def _active(user) -> bool:
    return bool(user and user.is_authenticated and user.is_active)


# --- Risk points ---------------------------------------------------------------------------------
def risk_points_visible_to(user) -> QuerySet[RiskPoint]:
    """Risk points are shared by the whole server (R1): every active user sees all of them (the
    view permission is the interface's check)."""
    return RiskPoint.objects.all() if _active(user) else RiskPoint.objects.none()


def near(qs: QuerySet, *, lat: float, lon: float, radius_m: float, field: str = "point"):
    """Rows whose `field` point lies within `radius_m` metres of (lat, lon), nearest first, with
    `distance_m`. A box in degrees first (index-friendly), then the distance in metres
    (`distance_lte` with a `D` is metres on PostGIS and SpatiaLite alike; see SETUP-NOTES)."""
    minx, miny, maxx, maxy = (float(v) for v in circle_bounds(lat, lon, radius_m))
    centre = Point(lon, lat, srid=4326)
    return (
        qs.filter(**{f"{field}__within": Polygon.from_bbox((minx, miny, maxx, maxy))})
        .filter(**{f"{field}__distance_lte": (centre, D(m=radius_m))})
        .annotate(distance=Distance(field, centre))
        .order_by("distance", "pk")
    )


def in_bbox(qs: QuerySet, bbox: tuple[float, float, float, float], field: str = "point"):
    """Rows whose `field` lies inside (min_lon, min_lat, max_lon, max_lat)."""
    return qs.filter(**{f"{field}__within": Polygon.from_bbox(bbox)})


# --- Annotations -------------------------------------------------------------------------------
def annotations_visible_to(user) -> QuerySet[Annotation]:
    """Shared annotations of the user's subtree, plus the user's own private ones (R2). A
    platform admin sees all. What one may see one may also edit (the author, or anyone of the
    subtree for a shared one)."""
    qs = Annotation.objects.select_related("customer", "created_by")
    if is_platform_admin(user):
        return qs
    if not _active(user):
        return qs.none()
    return qs.filter((Q(shared=True) & subtree_q(user)) | Q(created_by_id=user.pk))


# --- Geofences ------------------------------------------------------------------------------------
def geofences_visible_to(user) -> QuerySet[Geofence]:
    return scope(Geofence.objects.select_related("customer", "created_by"), user)


def geofence_vehicles_visible_to(user, geofence: Geofence) -> QuerySet[Vehicle]:
    """The fence's bound vehicles the user may see (another tenant's stay hidden)."""
    return vehicles_visible_to(user).filter(geofences=geofence).order_by("plate")


# --- Per-vehicle places -----------------------------------------------------------------------
def _vehicle_scoped(qs: QuerySet, user) -> QuerySet:
    """Rows of live vehicles of the user's subtree or shared with them."""
    qs = qs.filter(vehicle__deleted_at__isnull=True)
    q = subtree_q(user, "vehicle__customer")
    if q is None:
        return qs
    return qs.filter(q | Q(vehicle__in=vehicles_visible_to(user)))


def usual_areas_visible_to(user) -> QuerySet[UsualArea]:
    return _vehicle_scoped(UsualArea.objects.select_related("vehicle"), user)


def armings_visible_to(user) -> QuerySet[Arming]:
    return _vehicle_scoped(Arming.objects.select_related("vehicle", "armed_by"), user)


# --- Custom alarm types and settings ------------------------------------------------------
def custom_alarm_types_visible_to(user) -> QuerySet[CustomAlarmType]:
    return scope(CustomAlarmType.objects.select_related("customer", "geofence", "annotation"), user)


def alarm_settings_visible_to(user) -> QuerySet[AlarmSetting]:
    """Settings on a customer of the user's subtree or on one of its vehicles."""
    qs = AlarmSetting.objects.select_related("customer", "vehicle")
    on_customer = subtree_q(user)
    if on_customer is None:
        return qs
    on_vehicle = subtree_q(user, "vehicle__customer")
    return qs.filter(on_customer | (on_vehicle & Q(vehicle__deleted_at__isnull=True)))


# --- Where a vehicle is ---------------------------------------------------------------------
@dataclass(frozen=True)
class CurrentFix:
    lat: float
    lon: float
    at: dt.datetime
    device_id: int
    device_identifier: str


def vehicle_current_fix(vehicle: Vehicle) -> CurrentFix | None:
    """The vehicle's position now: the freshest valid fix among its mounted devices (DESIGN.md
    "Vehicle position = freshest valid fix of its devices"). The gateway moves a device's last
    position only with valid realtime fixes, so no blind-area fix can appear here. None when no
    mounted device has a position yet. One query."""
    binding = (
        DeviceBinding.objects.filter(
            vehicle_id=vehicle.pk,
            unbound_at__isnull=True,
            device__last_position__isnull=False,
            device__last_fix_at__isnull=False,
        )
        .select_related("device")
        .only("device__id", "device__identifier", "device__last_position", "device__last_fix_at")
        .order_by("-device__last_fix_at", "-device_id")
        .first()
    )
    if binding is None:
        return None
    device = binding.device
    return CurrentFix(
        lat=device.last_position.y,
        lon=device.last_position.x,
        at=device.last_fix_at,
        device_id=device.pk,
        device_identifier=device.identifier,
    )
