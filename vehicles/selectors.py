"""Reads of vehicles and bindings, scoped by visibility (see accounts.selectors)."""

from __future__ import annotations

from django.db.models import Count, Q, QuerySet

from accounts.selectors import scope, subtree_q
from vehicles.models import DeviceBinding, Vehicle, VehicleUserObjectPermission


def _shared_with(user, codename: str) -> Q:
    return Q(
        pk__in=VehicleUserObjectPermission.objects.filter(
            user_id=user.pk, permission__codename=codename
        ).values("content_object_id")
    )


def vehicles_visible_to(user, *, for_change: bool = False) -> QuerySet[Vehicle]:
    """Live vehicles of the user's subtree plus vehicles shared with them. `for_change`: only those
    the user may edit (shared vehicles need the object-level change permission)."""
    codename = "change_vehicle" if for_change else "view_vehicle"
    return scope(Vehicle.objects.all(), user, shared=_shared_with(user, codename))


def deleted_vehicles_visible_to(user) -> QuerySet[Vehicle]:
    return scope(Vehicle.deleted_objects.select_related("customer", "deleted_by"), user)


def vehicles_for_list(user) -> QuerySet[Vehicle]:
    """Vehicles with what a list shows: customer and the number of devices mounted now."""
    return (
        vehicles_visible_to(user)
        .select_related("customer")
        .annotate(device_count=Count("bindings", filter=Q(bindings__unbound_at__isnull=True)))
        # Meta.ordering is dropped from GROUP BY queries: order explicitly for stable pages.
        .order_by("-id")
    )


def bindings_visible_to(user) -> QuerySet[DeviceBinding]:
    """Bindings of visible vehicles (live ones: a deleted vehicle's bindings are in the bin)."""
    qs = DeviceBinding.objects.select_related(
        "vehicle", "vehicle__customer", "device", "bound_by", "unbound_by"
    ).filter(vehicle__deleted_at__isnull=True)
    q = subtree_q(user, "vehicle__customer")
    if q is None:
        return qs
    return qs.filter(q | Q(vehicle__in=vehicles_visible_to(user)))


def active_bindings_of(vehicle: Vehicle) -> QuerySet[DeviceBinding]:
    return vehicle.bindings.filter(unbound_at__isnull=True).select_related("device")
