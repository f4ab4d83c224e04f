"""What completing a work order does, per kind (the `completion` of each `tasks.kinds` entry).

Each handler runs inside `work_order_complete`'s transaction with the order row locked, checks
the worker's input for its kind, performs the side effects (device bindings) and sets the
outcome fields on `order`; the service saves them. Any refusal rolls the whole completion back:
an install with one bad IMEI binds nothing.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

from django.utils.translation import gettext as _

from accounts.selectors import customer_is_within
from carloan.errors import ApplicationError, ConflictError
from devices.models import Device
from devices.protocols import normalize_identifier
from tasks.models import WorkOrder, WorkOrderDevice
from vehicles.models import DeviceBinding

MAX_DEVICES = 20  # per order: a car carries a handful of trackers


@dataclass(frozen=True)
class Completion:
    """What the worker sends when finishing: scanned IMEIs of the devices now on the car,
    IMEIs of the (faulty) devices taken off, and for visits whether car and owner were found."""

    imeis: tuple[str, ...] = ()
    removed_imeis: tuple[str, ...] = ()
    car_found: bool | None = None
    owner_found: bool | None = None
    extra: dict = field(default_factory=dict)


def _clean_imeis(values) -> list[str]:
    seen: list[str] = []
    for value in values:
        imei = normalize_identifier(str(value))
        if not imei:
            raise ApplicationError(_("An empty IMEI was sent."), code="invalid_imei")
        if imei not in seen:
            seen.append(imei)
    if len(seen) > MAX_DEVICES:
        raise ApplicationError(
            _("At most %(n)d devices per order.") % {"n": MAX_DEVICES}, code="invalid_imei"
        )
    return seen


def _device(order: WorkOrder, imei: str) -> Device:
    """The live device `imei` from the stock of the vehicle's customer or one above it (whose
    stock may be installed there, as `device_bind` requires). Anything else reads as unknown:
    another tenant's device ids are not confirmed to exist."""
    device = Device.objects.select_related("customer").filter(identifier=imei).first()
    if device is None or not customer_is_within(order.vehicle.customer_id, device.customer_id):
        raise ApplicationError(
            _("No device %(imei)s in the stock of this vehicle's customer.") % {"imei": imei},
            code="unknown_device",
        )
    return device


def _require_live_vehicle(order: WorkOrder) -> None:
    if order.vehicle.is_deleted:
        raise ConflictError(_("The vehicle %(p)s was deleted.") % {"p": order.vehicle.plate})


def _mount(order: WorkOrder, imeis: list[str], *, by, now: dt.datetime) -> None:
    from vehicles.services import device_bind

    for imei in imeis:
        device = _device(order, imei)
        already = DeviceBinding.objects.filter(
            device=device, vehicle_id=order.vehicle_id, unbound_at__isnull=True
        ).exists()
        device_bind(vehicle=order.vehicle, device=device, by=by)
        if not already:
            WorkOrderDevice.objects.create(
                order=order, device=device, action=WorkOrderDevice.Action.INSTALLED, at=now
            )


def _no_devices(data: Completion, kind_label: str) -> None:
    if data.imeis or data.removed_imeis:
        raise ApplicationError(
            _("A %(kind)s order does not install or remove devices.") % {"kind": kind_label},
            code="unexpected_devices",
        )


def complete_install(*, order: WorkOrder, by, now: dt.datetime, data: Completion) -> None:
    """Bind every scanned device to the vehicle; each is marked installed."""
    _require_live_vehicle(order)
    if data.removed_imeis:
        raise ApplicationError(
            _("An install removes no devices: use a repair order."), code="unexpected_devices"
        )
    imeis = _clean_imeis(data.imeis)
    if not imeis:
        raise ApplicationError(
            _("Scan the IMEI of at least one installed device."), code="imeis_required"
        )
    _mount(order, imeis, by=by, now=now)


def complete_repair(*, order: WorkOrder, by, now: dt.datetime, data: Completion) -> None:
    """Swap devices: unbind the removed ones (marked faulty), bind the new ones. A repair that
    swaps nothing (wiring, power) is fine."""
    from vehicles.services import device_unbind

    _require_live_vehicle(order)
    removed, added = _clean_imeis(data.removed_imeis), _clean_imeis(data.imeis)
    both = set(removed) & set(added)
    if both:
        raise ApplicationError(
            _("%(imei)s cannot be both removed and installed.") % {"imei": sorted(both)[0]},
            code="invalid_imei",
        )
    for imei in removed:
        binding = (
            DeviceBinding.objects.select_related("device")
            .filter(
                vehicle_id=order.vehicle_id,
                device__identifier=imei,
                device__deleted_at__isnull=True,
                unbound_at__isnull=True,
            )
            .first()
        )
        if binding is None:
            raise ConflictError(
                _("Device %(imei)s is not mounted on %(plate)s.")
                % {"imei": imei, "plate": order.vehicle.plate}
            )
        device_unbind(binding=binding, by=by, device_status=Device.Status.FAULTY, at=now)
        WorkOrderDevice.objects.create(
            order=order, device=binding.device, action=WorkOrderDevice.Action.REMOVED, at=now
        )
    _mount(order, added, by=by, now=now)


def complete_covert_visit(*, order: WorkOrder, by, now: dt.datetime, data: Completion) -> None:
    """Record whether the car and its owner were found."""
    _no_devices(data, str(order.get_kind_display()))
    missing = [
        name
        for name, value in (("car_found", data.car_found), ("owner_found", data.owner_found))
        if value is None
    ]
    if missing:
        raise ApplicationError(
            _("Say whether the car and the owner were found (%(f)s).") % {"f": ", ".join(missing)},
            code="found_required",
        )
    order.car_found, order.owner_found = data.car_found, data.owner_found


def complete_repossession(*, order: WorkOrder, by, now: dt.datetime, data: Completion) -> None:
    """Done = the car is recovered (a failed repossession is `work_order_fail`)."""
    _no_devices(data, str(order.get_kind_display()))
    order.car_found = True
    if data.owner_found is not None:
        order.owner_found = data.owner_found
