"""Reads of positions and unknown devices, scoped by visibility (see accounts.selectors)."""

from __future__ import annotations

import datetime as dt

from django.db.models import Q, QuerySet

from accounts.selectors import is_platform_admin, subtree_q
from gateway.models import Position, UnknownDevice


def positions_for_track(target, since: dt.datetime, until: dt.datetime) -> QuerySet[Position]:
    """The fixes of a vehicle (all its devices while mounted on it) or of one device in
    [since, until), in fix-time order: blind-area fixes fall into place by their own time.
    Uses the (vehicle, fix_time) / (device, fix_time) indexes. Callers check visibility."""
    from devices.models import Device

    field = "device" if isinstance(target, Device) else "vehicle"
    return Position.objects.filter(
        **{f"{field}_id": target.pk, "fix_time__gte": since, "fix_time__lt": until}
    ).order_by("fix_time", "id")


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
