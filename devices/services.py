"""Writes of devices: create, edit, stock moves, soft delete / restore / hard delete."""

from __future__ import annotations

from collections.abc import Iterable

from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from accounts.models import Customer
from accounts.selectors import (
    customer_is_visible_to,
    customer_is_within,
    customers_visible_to,
    is_platform_admin,
)
from carloan.errors import ApplicationError, ConflictError
from carloan.services import model_save
from devices.models import Device, DeviceModel, Manufacturer, StockMove

# Fields a user edits; status moves through binding and the explicit status service.
DEVICE_EDITABLE = {
    "identifier",
    "protocol",
    "kind",
    "model",
    "sim_iccid",
    "sim_number",
    "work_mode",
    "work_params",
    "remark",
    "status",
}


def _require_visible(by, customer: Customer) -> None:
    if by is not None and not customer_is_visible_to(by, customer.pk):
        raise ApplicationError(
            _("That customer is outside your part of the tree."), code="not_found"
        )


def _catalogue_save(instance, *, by, fields: dict):
    """Manufacturers and device models: customer-owned entries, or the platform-wide catalogue
    (customer empty), which only platform administrators edit."""
    if fields.get("customer") is not None:
        _require_visible(by, fields["customer"])
    elif by is not None and not is_platform_admin(by):
        raise ApplicationError(_("Only a platform administrator edits the shared catalogue."))
    for name, value in fields.items():
        setattr(instance, name, value)
    return model_save(instance, by=by)


def manufacturer_save(
    *, by=None, manufacturer: Manufacturer | None = None, **fields
) -> Manufacturer:
    return _catalogue_save(manufacturer or Manufacturer(), by=by, fields=fields)


def device_model_save(*, by=None, device_model: DeviceModel | None = None, **fields) -> DeviceModel:
    return _catalogue_save(device_model or DeviceModel(), by=by, fields=fields)


def device_create(
    *,
    by=None,
    customer: Customer,
    identifier: str,
    protocol: str,
    kind: str,
    model: DeviceModel | None = None,
    **fields,
) -> Device:
    """A new device in `customer`'s stock. Work mode defaults to the model's."""
    _require_visible(by, customer)
    if model is not None and "work_mode" not in fields:
        fields["work_mode"] = model.default_work_mode
    device = Device(
        customer=customer,
        identifier=identifier,
        protocol=protocol,
        kind=kind,
        model=model,
        **fields,
    )
    return model_save(device, by=by)


def device_update(*, device: Device, by=None, **fields) -> Device:
    unknown = set(fields) - DEVICE_EDITABLE
    if unknown:
        raise ApplicationError(
            _("These fields cannot be edited here: %s") % ", ".join(sorted(unknown))
        )
    if "status" in fields and fields["status"] != device.status:
        _check_status_change(device, fields["status"])
    if (
        "work_mode" in fields
        and fields["work_mode"] != device.work_mode
        and "work_params" not in fields
    ):
        fields["work_params"] = {}  # the old mode's parameters mean nothing to the new one
    for name, value in fields.items():
        setattr(device, name, value)
    # clean() normalises the identifier and fills in work parameters: save what it touched.
    return model_save(device, by=by, update_fields={*fields, "identifier", "work_params"})


def _check_status_change(device: Device, status: str) -> None:
    bound = device.bindings.filter(unbound_at__isnull=True).exists()
    if status == Device.Status.INSTALLED and not bound:
        raise ApplicationError(_("A device becomes installed by binding it to a vehicle."))
    if status != Device.Status.INSTALLED and bound:
        raise ConflictError(_("Unbind the device from its vehicle first."))


@transaction.atomic
def devices_move(
    *, devices: Iterable[Device], to_customer: Customer, by=None, note: str = ""
) -> int:
    """Move devices to another customer's stock, one StockMove each (V2). Devices mounted on a
    vehicle of a customer outside the target's subtree are refused: unbind them first."""
    _require_visible(by, to_customer)
    now = timezone.now()
    moved = 0
    own = None if by is None else set(customers_visible_to(by).values_list("pk", flat=True))
    for device in devices:
        if own is not None and device.customer_id not in own:
            # A device shared with the caller is not theirs to give away.
            raise ApplicationError(
                _("That device is outside your part of the tree."), code="not_found"
            )
        if device.customer_id == to_customer.pk:
            continue
        vehicle = (
            device.bindings.filter(unbound_at__isnull=True)
            .select_related("vehicle__customer")
            .first()
        )
        if vehicle is not None and not customer_is_within(
            vehicle.vehicle.customer_id, to_customer.pk
        ):
            raise ConflictError(
                _("Device %(d)s is mounted on %(p)s, which is not under %(c)s: unbind it first.")
                % {"d": device.identifier, "p": vehicle.vehicle.plate, "c": to_customer.name}
            )
        StockMove.objects.create(
            device=device,
            from_customer_id=device.customer_id,
            to_customer=to_customer,
            moved_by=by if by is not None and by.is_authenticated else None,
            moved_at=now,
            note=note,
        )
        device.customer = to_customer
        model_save(device, by=by, update_fields=["customer"])
        moved += 1
    return moved


@transaction.atomic
def device_soft_delete(*, device: Device, by=None) -> Device:
    """Hide the device everywhere; its current binding ends (restorable with `device_restore`)."""
    from vehicles.services import bindings_end_for_deletion

    now = timezone.now()
    bindings_end_for_deletion(at=now, devices=[device], by=by)
    device.deleted_at = now
    device.deleted_by = by if by is not None and by.is_authenticated else None
    model_save(device, by=by, update_fields=["deleted_at", "deleted_by"])
    return device


@transaction.atomic
def device_restore(*, device: Device, by=None) -> list[str]:
    """Bring a deleted device back, re-mounted on the vehicle it was on when deleted if that
    vehicle is live and the id was not reused meanwhile."""
    from vehicles.services import bindings_restore_after_deletion

    if Device.objects.filter(identifier=device.identifier).exists():
        raise ConflictError(
            _("Another live device already uses %(id)s.") % {"id": device.identifier}
        )
    deleted_at = device.deleted_at
    device.deleted_at = None
    device.deleted_by = None
    model_save(device, by=by, update_fields=["deleted_at", "deleted_by"])
    return bindings_restore_after_deletion(deleted_at=deleted_at, device=device, by=by)


def device_hard_delete(*, device: Device, by) -> None:
    """Erase a device for good: platform administrators only, and only from the recycle bin."""
    if not is_platform_admin(by):
        raise ApplicationError(
            _("Only a platform administrator can delete permanently."), code="permission_denied"
        )
    if not device.is_deleted:
        raise ApplicationError(_("Move the device to the recycle bin first."))
    device._history_user = by
    device.delete()
