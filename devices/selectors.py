"""Reads of devices, scoped by visibility (see accounts.selectors)."""

from __future__ import annotations

from django.db.models import OuterRef, Q, QuerySet, Subquery

from accounts.selectors import customers_related_to, scope
from devices.models import Device, DeviceModel, DeviceUserObjectPermission, Manufacturer, StockMove


def devices_visible_to(user, *, for_change: bool = False) -> QuerySet[Device]:
    """Live devices of the user's subtree plus devices shared with them. `for_change`: only those
    the user may edit (shared devices need the object-level change permission)."""
    codename = "change_device" if for_change else "view_device"
    return scope(Device.objects.all(), user, shared=(DeviceUserObjectPermission, codename))


def deleted_devices_visible_to(user) -> QuerySet[Device]:
    return scope(Device.deleted_objects.select_related("customer", "deleted_by"), user)


def devices_for_list(user) -> QuerySet[Device]:
    """Devices with what a list shows: customer, model and the plate of the current vehicle."""
    from vehicles.models import DeviceBinding

    active = DeviceBinding.objects.filter(device=OuterRef("pk"), unbound_at__isnull=True)
    return (
        devices_visible_to(user)
        .select_related("customer", "model", "model__manufacturer")
        .annotate(
            current_vehicle_id=Subquery(active.values("vehicle_id")[:1]),
            current_plate=Subquery(active.values("vehicle__plate")[:1]),
        )
        .order_by("-id")
    )


def manufacturers_visible_to(user) -> QuerySet[Manufacturer]:
    return (
        Manufacturer.objects.filter(
            Q(customer__isnull=True) | Q(customer__in=customers_related_to(user))
        )
        if user.is_authenticated
        else Manufacturer.objects.none()
    )


def device_models_visible_to(user) -> QuerySet[DeviceModel]:
    if not user.is_authenticated:
        return DeviceModel.objects.none()
    return DeviceModel.objects.select_related("manufacturer").filter(
        Q(customer__isnull=True) | Q(customer__in=customers_related_to(user))
    )


def stock_moves_visible_to(user) -> QuerySet[StockMove]:
    """Moves where either end is in the user's subtree."""
    from accounts.selectors import subtree_q

    qs = StockMove.objects.select_related("device", "from_customer", "to_customer", "moved_by")
    q_from, q_to = subtree_q(user, "from_customer"), subtree_q(user, "to_customer")
    return qs if q_from is None else qs.filter(q_from | q_to)
