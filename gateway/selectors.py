"""Reads of positions and unknown devices, scoped by visibility (see accounts.selectors)."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from django.db.models import FloatField, Func, Q, QuerySet
from django.utils.translation import gettext as _

from accounts.selectors import customers_visible_to, is_platform_admin, subtree_q
from carloan.errors import ApplicationError
from gateway.models import DeviceDrop, GatewayStatus, Position, UnknownDevice


def positions_for_track(target, since: dt.datetime, until: dt.datetime) -> QuerySet[Position]:
    """The fixes of a vehicle (all its devices while mounted on it) or of one device in
    [since, until), in fix-time order: blind-area fixes fall into place by their own time.
    Uses the (vehicle, fix_time) / (device, fix_time) indexes. Callers check visibility."""
    from devices.models import Device

    field = "device" if isinstance(target, Device) else "vehicle"
    return Position.objects.filter(
        **{f"{field}_id": target.pk, "fix_time__gte": since, "fix_time__lt": until}
    ).order_by("fix_time", "id")


# Columns of a position as the API and the track return them. lat / lon come from ST_Y / ST_X
# (PostGIS and SpatiaLite): no GEOS point is built per row.
POSITION_FIELDS = (
    "id",
    "device_id",
    "vehicle_id",
    "fix_time",
    "received_at",
    "valid",
    "realtime",
    "source",
    "speed_kmh",
    "course",
    "altitude_m",
    "satellites",
    "acc",
    "fuel_cut",
    "battery_pct",
    "external_voltage",
    "gsm_signal",
    "odometer_km",
    "sleeping",
    "alarms",
    "flags",
)


def _y(column: str) -> Func:
    return Func(column, function="ST_Y", output_field=FloatField())


def _x(column: str) -> Func:
    return Func(column, function="ST_X", output_field=FloatField())


def position_values(qs: QuerySet[Position], *fields: str) -> QuerySet:
    """`qs` as dicts of `fields` (default POSITION_FIELDS) plus `lat` / `lon`."""
    return qs.values(*(fields or POSITION_FIELDS), lat=_y("point"), lon=_x("point"))


def position_target_for(user, *, imei: str | None = None, plate: str | None = None):
    """The visible device with this id (IMEI) or the visible vehicle with this plate, or None
    (unknown and invisible alike: another tenant's ids are not confirmed to exist). Ids and
    plates are normalised as the forms store them; both lookups hit the live-unique indexes."""
    from carloan.identifiers import normalize_plate
    from devices.protocols import normalize_identifier
    from devices.selectors import devices_visible_to
    from vehicles.selectors import vehicles_visible_to

    if imei is not None:
        return devices_visible_to(user).filter(identifier=normalize_identifier(imei)).first()
    if plate is not None:
        return vehicles_visible_to(user).filter(plate=normalize_plate(plate)).first()
    return None


def track_rows(vehicle, since: dt.datetime, until: dt.datetime, *, limit: int) -> list[tuple]:
    """Up to `limit` fixes of `vehicle` in [since, until), fix-time order, as tuples
    (fix_time, lat, lon, speed_kmh, course, acc, valid, realtime, flags, device_id, source)."""
    return list(
        positions_for_track(vehicle, since, until).values_list(
            "fix_time",
            _y("point"),
            _x("point"),
            "speed_kmh",
            "course",
            "acc",
            "valid",
            "realtime",
            "flags",
            "device_id",
            "source",
        )[:limit]
    )


# --- The live feed's scope (carloan.consumers.LiveConsumer) ----------------------------------
@dataclass(frozen=True)
class LiveScope:
    """What one user may receive on the live feed: the vehicles of their customers' subtree
    (`customer_ids`) plus the vehicles shared with them, the Channels groups to join for that,
    or everything (platform administrators). Mirrors `vehicles_visible_to`."""

    everything: bool
    customer_ids: frozenset[int]
    shared_vehicle_ids: frozenset[int]
    groups: frozenset[str]

    def allows(self, item: dict) -> bool:
        vehicle_id = item.get("vehicle_id")
        if vehicle_id is None:
            return False
        if self.everything:
            return True
        return item.get("customer_id") in self.customer_ids or vehicle_id in self.shared_vehicle_ids


def live_scope_for(user) -> LiveScope:
    """Read fresh from the database (the consumer calls it again every few seconds): the user
    must still be able to log in (active, customer and its ancestors active) and hold
    `vehicles.view_vehicle`. Raises ApplicationError "not_authenticated" / "permission_denied"."""
    from accounts.backends import RoleModelBackend
    from accounts.models import Customer, User
    from carloan.realtime import customer_group
    from vehicles.models import Vehicle, VehicleUserObjectPermission

    fresh = User.objects.select_related("customer").filter(pk=getattr(user, "pk", None)).first()
    if fresh is None or not RoleModelBackend().user_can_authenticate(fresh):
        raise ApplicationError(_("Please log in again."), code="not_authenticated")
    if not fresh.has_perm("vehicles.view_vehicle"):
        raise ApplicationError(
            _("You may not see vehicles, so there is no live feed for you."),
            code="permission_denied",
        )
    if is_platform_admin(fresh):
        customers = frozenset(Customer.objects.values_list("pk", flat=True))
        return LiveScope(True, customers, frozenset(), frozenset(map(customer_group, customers)))
    customers = frozenset(customers_visible_to(fresh).values_list("pk", flat=True))
    shared_ids = VehicleUserObjectPermission.objects.filter(
        user_id=fresh.pk, permission__codename="view_vehicle"
    ).values("content_object_id")
    shared = dict(Vehicle.objects.filter(pk__in=shared_ids).values_list("pk", "customer_id"))
    groups = frozenset(map(customer_group, customers | set(shared.values())))
    return LiveScope(False, customers, frozenset(shared), groups)


def positions_visible_to(user) -> QuerySet[Position]:
    """Positions of the devices of the user's subtree, plus those of devices shared with them."""
    from devices.models import DeviceUserObjectPermission

    qs = Position.objects.all()
    q = subtree_q(user, "device__customer")
    if q is None:
        return qs
    shared = (
        list(
            DeviceUserObjectPermission.objects.filter(
                user_id=user.pk, permission__codename="view_device"
            ).values_list("content_object_id", flat=True)
        )
        if user and user.is_authenticated and user.is_active
        else []
    )
    return qs.filter(q | Q(device_id__in=shared) if shared else q)


def unknown_devices_visible_to(user) -> QuerySet[UnknownDevice]:
    """Unknown devices belong to nobody yet: only platform administrators see them."""
    return UnknownDevice.objects.all() if is_platform_admin(user) else UnknownDevice.objects.none()


def gateway_status_visible_to(user) -> QuerySet[GatewayStatus]:
    """The gateway processes serve every tenant: only platform administrators see them."""
    qs = GatewayStatus.objects.all()
    return qs if is_platform_admin(user) else qs.none()


def device_drops_visible_to(user) -> QuerySet[DeviceDrop]:
    """Visible devices with dropped frames (the same scope as the device list)."""
    from devices.selectors import devices_visible_to

    visible = devices_visible_to(user).filter(frames_dropped__gt=0).values("pk")
    return DeviceDrop.objects.filter(pk__in=visible)
