"""Writes of vehicles and device bindings: create, edit, bind / unbind, bulk edit and move,
soft delete / restore / hard delete."""

from __future__ import annotations

from collections.abc import Iterable

from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from accounts.models import Customer
from accounts.selectors import customer_is_visible_to, customer_is_within, is_platform_admin
from carloan.errors import ApplicationError, ConflictError
from carloan.services import model_save
from devices.models import Device
from vehicles.models import DeviceBinding, Vehicle

VEHICLE_EDITABLE = (
    "plate",
    "vin",
    "brand",
    "model_name",
    "colour",
    "borrower_name",
    "borrower_phone",
    "borrower_id_number",
    "loan_principal",
    "loan_term_months",
    "loan_start_date",
    "repayment_status",
    "overdue_days",
    "remark",
)
# What the admin's bulk edit may set on many vehicles at once.
VEHICLE_BULK_EDITABLE = {
    "brand",
    "model_name",
    "colour",
    "repayment_status",
    "overdue_days",
    "remark",
}


def _actor(by):
    return by if by is not None and getattr(by, "is_authenticated", False) else None


def _require_visible(by, customer: Customer) -> None:
    if by is not None and not customer_is_visible_to(by, customer.pk):
        raise ApplicationError(
            _("That customer is outside your part of the tree."), code="not_found"
        )


def vehicle_create(*, by=None, customer: Customer, plate: str, vin: str, **fields) -> Vehicle:
    _require_visible(by, customer)
    unknown = set(fields).difference(VEHICLE_EDITABLE)
    if unknown:
        raise ApplicationError(_("Unknown vehicle fields: %s") % ", ".join(sorted(unknown)))
    vehicle = Vehicle(customer=customer, plate=plate, vin=vin, **fields)
    return model_save(vehicle, by=by)


def vehicle_update(*, vehicle: Vehicle, by=None, **fields) -> Vehicle:
    unknown = set(fields).difference(VEHICLE_EDITABLE)
    if unknown:
        raise ApplicationError(
            _("These fields cannot be edited here: %s") % ", ".join(sorted(unknown))
        )
    for name, value in fields.items():
        setattr(vehicle, name, value)
    # clean() normalises identifiers and resets overdue days: save what it may have touched.
    touched = set(fields) | {"plate", "vin", "borrower_id_number", "borrower_phone", "overdue_days"}
    return model_save(vehicle, by=by, update_fields=touched)


@transaction.atomic
def vehicles_bulk_update(*, vehicles: Iterable[Vehicle], by=None, **fields) -> int:
    """Set the same values on many vehicles; all or nothing, each change in the operation log."""
    unknown = set(fields) - VEHICLE_BULK_EDITABLE
    if unknown:
        raise ApplicationError(
            _("These fields cannot be bulk edited: %s") % ", ".join(sorted(unknown))
        )
    count = 0
    for vehicle in vehicles:
        vehicle_update(vehicle=vehicle, by=by, **fields)
        count += 1
    return count


@transaction.atomic
def vehicles_move(*, vehicles: Iterable[Vehicle], to_customer: Customer, by=None) -> int:
    """Move vehicles to another customer; the devices mounted on them follow (with stock moves)."""
    from devices.services import devices_move

    _require_visible(by, to_customer)
    count = 0
    for vehicle in vehicles:
        if vehicle.customer_id == to_customer.pk:
            continue
        vehicle.customer = to_customer
        model_save(vehicle, by=by, update_fields=["customer"])
        devices = [
            b.device
            for b in vehicle.bindings.filter(unbound_at__isnull=True).select_related("device")
        ]
        devices_move(
            devices=devices, to_customer=to_customer, by=by, note=_("moved with %s") % vehicle.plate
        )
        count += 1
    return count


# --- Bindings ---------------------------------------------------------------------------------
@transaction.atomic
def device_bind(*, vehicle: Vehicle, device: Device, by=None) -> DeviceBinding:
    """Mount `device` on `vehicle` and mark it installed. A device is on one vehicle at a time;
    the device must belong to the vehicle's customer or one of its ancestors' stock."""
    device = Device.objects.select_for_update().select_related("customer").get(pk=device.pk)
    if device.status in (Device.Status.FAULTY, Device.Status.SCRAPPED):
        raise ConflictError(
            _("Device %(d)s is %(s)s and cannot be installed.")
            % {"d": device.identifier, "s": device.get_status_display()}
        )
    current = device.bindings.filter(unbound_at__isnull=True).select_related("vehicle").first()
    if current is not None:
        if current.vehicle_id == vehicle.pk:
            return current
        raise ConflictError(
            _("Device %(d)s is already on %(p)s: unbind it first.")
            % {"d": device.identifier, "p": current.vehicle.plate}
        )
    if not customer_is_within(vehicle.customer_id, device.customer_id):
        raise ConflictError(
            _(
                "Device %(d)s belongs to %(c)s, which does not own this vehicle's customer: "
                "move it first."
            )
            % {"d": device.identifier, "c": device.customer.name}
        )
    binding = DeviceBinding(
        vehicle=vehicle, device=device, bound_at=timezone.now(), bound_by=_actor(by)
    )
    model_save(binding, by=by)
    if device.status != Device.Status.INSTALLED:
        device.status = Device.Status.INSTALLED
        model_save(device, by=by, update_fields=["status"])
    return binding


@transaction.atomic
def device_unbind(
    *,
    binding: DeviceBinding,
    by=None,
    reason: str = DeviceBinding.EndReason.UNBOUND,
    device_status: str = Device.Status.STOCK,
    at=None,
) -> DeviceBinding:
    """End a binding; the device goes back to stock (or `device_status`, e.g. faulty)."""
    binding = DeviceBinding.objects.select_for_update().get(pk=binding.pk)
    if binding.unbound_at is not None:
        raise ConflictError(_("This binding has already ended."))
    binding.unbound_at = at or timezone.now()
    binding.unbound_by = _actor(by)
    binding.end_reason = reason
    model_save(binding, by=by, update_fields=["unbound_at", "unbound_by", "end_reason"])
    device = Device.all_objects.get(pk=binding.device_id)
    if device.status == Device.Status.INSTALLED and device_status != device.status:
        device.status = device_status
        model_save(device, by=by, update_fields=["status"])
    return binding


def bindings_end_for_deletion(
    *, at, vehicle: Vehicle | None = None, devices: Iterable[Device] = (), by=None
) -> int:
    """End the active bindings of a vehicle or devices being soft-deleted at `at` (the deletion
    time, so a restore finds exactly these bindings and puts them back)."""
    qs = DeviceBinding.objects.filter(unbound_at__isnull=True)
    if vehicle is not None:
        qs, reason = qs.filter(vehicle=vehicle), DeviceBinding.EndReason.VEHICLE_DELETED
    else:
        qs, reason = (
            qs.filter(device__in=[d.pk for d in devices]),
            DeviceBinding.EndReason.DEVICE_DELETED,
        )
    count = 0
    for binding in qs:
        device_unbind(binding=binding, by=by, reason=reason, at=at)
        count += 1
    return count


def bindings_restore_after_deletion(
    *, deleted_at, vehicle: Vehicle | None = None, device: Device | None = None, by=None
) -> list[str]:
    """Re-mount what the deletion at `deleted_at` unmounted. Returns what could not be put back,
    and why."""
    skipped: list[str] = []
    if vehicle is not None:
        ended = DeviceBinding.objects.filter(
            vehicle=vehicle, end_reason=DeviceBinding.EndReason.VEHICLE_DELETED
        )
    else:
        ended = DeviceBinding.objects.filter(
            device=device, end_reason=DeviceBinding.EndReason.DEVICE_DELETED
        )
    for old in ended.filter(unbound_at=deleted_at):
        target_vehicle = Vehicle.all_objects.get(pk=old.vehicle_id)
        target_device = Device.all_objects.get(pk=old.device_id)
        if target_vehicle.is_deleted or target_device.is_deleted:
            skipped.append(_("%(d)s: deleted") % {"d": target_device.identifier})
            continue
        try:
            device_bind(vehicle=target_vehicle, device=target_device, by=by)
        except ConflictError as exc:
            skipped.append(f"{target_device.identifier}: {exc.message}")
    return skipped


# --- Soft delete (V6) -------------------------------------------------------------------------
@transaction.atomic
def vehicle_soft_delete(*, vehicle: Vehicle, by=None) -> Vehicle:
    """Hide the vehicle everywhere; its devices are unmounted (back to stock) until a restore."""
    now = timezone.now()
    bindings_end_for_deletion(at=now, vehicle=vehicle, by=by)
    vehicle.deleted_at = now
    vehicle.deleted_by = _actor(by)
    model_save(vehicle, by=by, update_fields=["deleted_at", "deleted_by"])
    return vehicle


@transaction.atomic
def vehicle_restore(*, vehicle: Vehicle, by=None) -> list[str]:
    """Bring a deleted vehicle back with the devices it carried. Refused when its plate or VIN
    is taken by a live vehicle. Returns the devices that could not be re-mounted, with why."""
    clash = (
        Vehicle.objects.filter(plate=vehicle.plate).first()
        or Vehicle.objects.filter(vin=vehicle.vin).first()
    )
    if clash is not None:
        raise ConflictError(
            _("A live vehicle already uses this plate or VIN (%(p)s).") % {"p": clash.plate}
        )
    deleted_at = vehicle.deleted_at
    vehicle.deleted_at = None
    vehicle.deleted_by = None
    model_save(vehicle, by=by, update_fields=["deleted_at", "deleted_by"])
    return bindings_restore_after_deletion(deleted_at=deleted_at, vehicle=vehicle, by=by)


def vehicle_hard_delete(*, vehicle: Vehicle, by) -> None:
    if not is_platform_admin(by):
        raise ApplicationError(
            _("Only a platform administrator can delete permanently."), code="permission_denied"
        )
    if not vehicle.is_deleted:
        raise ApplicationError(_("Move the vehicle to the recycle bin first."))
    vehicle._history_user = by
    vehicle.delete()
