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


# --- Commands (T3) ------------------------------------------------------------------------------
def commands_visible_to(user) -> QuerySet:
    """Commands to the live devices the user sees (subtree + devices shared with them)."""
    from accounts.selectors import subtree_q
    from devices.models import Command

    qs = Command.objects.select_related("device", "created_by", "job").filter(
        device__deleted_at__isnull=True
    )
    q = subtree_q(user, "device__customer")
    if q is None:
        return qs
    if user.is_authenticated and user.is_active:
        shared = list(
            DeviceUserObjectPermission.objects.filter(
                user_id=user.pk, permission__codename="view_device"
            ).values_list("content_object_id", flat=True)
        )
        if shared:
            q |= Q(device_id__in=shared)
    return qs.filter(q)


def command_jobs_visible_to(user) -> QuerySet:
    """Broadcasts sent from the user's subtree, with their commands counted by outcome."""
    from django.db.models import Count

    from accounts.selectors import scope
    from devices.models import Command, CommandJob

    counts = {
        f"n_{status}": Count("commands", filter=Q(commands__status=status))
        for status in Command.Status.values
    }
    return scope(
        CommandJob.objects.select_related("created_by", "customer").annotate(
            n_total=Count("commands"), **counts
        ),
        user,
    )
