"""Writes of devices: create, edit, stock moves, soft delete / restore / hard delete, and
downlink commands (send, broadcast, claim for sending, reply, expiry, cancel)."""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Iterable
from dataclasses import dataclass

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
from carloan.errors import ApplicationError, ConflictError, InvalidTransition
from carloan.services import model_save
from devices import commands
from devices.models import Command, CommandJob, Device, DeviceModel, Manufacturer, StockMove

logger = logging.getLogger("carloan.commands")

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


# --- Downlink commands (T3) -----------------------------------------------------------------------
# Life of a command: command_send / command_broadcast queue it (checks: kind, parameters, the
# device's protocol can encode it, permission, fuel-cut safety); the gateway claims the queued
# commands of its connected devices (commands_claim_for_sending: queued -> sent, serial and match
# key assigned, frame encoded) and writes them; the device's reply is matched by
# command_reply_record (sent -> acked / failed); commands_expire ends queued commands past their
# expiry and sent ones that never got a reply. Every change is a history row (operation log) and
# a live "command" message for the vehicle's customer.

Status = Command.Status


@dataclass(frozen=True)
class Outgoing:
    """A claimed command, ready for the wire."""

    command_id: int
    device_id: int
    kind: str
    frame: bytes


def _command_publish(rows: Iterable[Command]) -> None:
    """THE call site of live command updates: WebSocket item type "command" to the customer
    group of the vehicle carrying the device, after the commit (carloan.realtime). Devices on no
    vehicle have no live map item, so nothing is published for them."""
    from carloan import realtime
    from vehicles.models import DeviceBinding

    rows = list(rows)
    if not rows:
        return
    bindings = {
        device_id: (vehicle_id, customer_id, imei)
        for device_id, vehicle_id, customer_id, imei in DeviceBinding.objects.filter(
            device_id__in={c.device_id for c in rows}, unbound_at__isnull=True
        ).values_list("device_id", "vehicle_id", "vehicle__customer_id", "device__identifier")
    }
    for c in rows:
        bound = bindings.get(c.device_id)
        if bound is None:
            continue
        vehicle_id, customer_id, imei = bound
        realtime.publish(
            realtime.customer_group(customer_id),
            "command",
            {
                "id": c.pk,
                "job_id": c.job_id,
                "device_id": c.device_id,
                "imei": imei,
                "vehicle_id": vehicle_id,
                "customer_id": customer_id,
                "kind": c.kind,
                "status": c.status,
                "reply_text": c.reply_text,
                "failure_reason": c.failure_reason,
                "created_at": c.created_at,
                "sent_at": c.sent_at,
                "answered_at": c.answered_at,
            },
        )


def _require_command_permission(by, kind: str) -> commands.Kind:
    try:
        spec = commands.get_kind(kind)
    except ValueError as exc:
        raise ApplicationError(str(exc), code="invalid_command") from None
    if by is not None and not by.has_perms(spec.permissions):
        if commands.FUEL_CUT_PERMISSION in spec.permissions and by.has_perm(
            commands.SEND_PERMISSION
        ):
            message = _("Sending a fuel cut needs the fuel-cut permission.")
        else:
            message = _("You may not send commands.")
        raise ApplicationError(message, code="permission_denied")
    return spec


def _clean_command(kind: str, params, defer_until_stopped: bool) -> dict:
    spec = commands.get_kind(kind)
    try:
        params = commands.clean_params(kind, params)
    except ValueError as exc:
        raise ApplicationError(str(exc), code="invalid_params") from None
    if defer_until_stopped and not spec.deferrable:
        raise ApplicationError(
            _("Only a fuel cut can wait until the vehicle stops."), code="invalid_params"
        )
    return params


def _vehicle_motion(
    device_ids: Iterable[int],
) -> dict[int, tuple[float | None, dt.datetime | None]]:
    """(speed km/h, fix time) of the vehicle carrying each device: the freshest fix among the
    vehicle's bound devices (a wireless tracker may see the car move while the wired one is
    silent); a device on no vehicle answers for itself."""
    from vehicles.models import DeviceBinding

    ids = set(device_ids)
    if not ids:
        return {}
    own = {
        pk: (speed, fix_at)
        for pk, speed, fix_at in Device.all_objects.filter(pk__in=ids).values_list(
            "pk", "last_speed_kmh", "last_fix_at"
        )
    }
    vehicle_of = dict(
        DeviceBinding.objects.filter(device_id__in=ids, unbound_at__isnull=True).values_list(
            "device_id", "vehicle_id"
        )
    )
    freshest: dict[int, tuple[float | None, dt.datetime | None]] = {}
    for vehicle_id, speed, fix_at in DeviceBinding.objects.filter(
        vehicle_id__in=set(vehicle_of.values()), unbound_at__isnull=True
    ).values_list("vehicle_id", "device__last_speed_kmh", "device__last_fix_at"):
        best = freshest.get(vehicle_id)
        if fix_at is not None and (best is None or best[1] is None or fix_at > best[1]):
            freshest[vehicle_id] = (speed, fix_at)
    return {
        pk: freshest.get(vehicle_of[pk], own.get(pk, (None, None)))
        if pk in vehicle_of
        else own.get(pk, (None, None))
        for pk in ids
    }


def _require_device_for_command(by, device: Device) -> None:
    if by is None:
        return
    from devices.selectors import devices_visible_to

    if not devices_visible_to(by, for_change=True).filter(pk=device.pk).exists():
        if devices_visible_to(by).filter(pk=device.pk).exists():
            raise ApplicationError(
                _("Device %(d)s is shared with you read-only: you may not send it commands.")
                % {"d": device.identifier},
                code="permission_denied",
            )
        raise ApplicationError(_("That device does not exist."), code="not_found")


def _ttl(expires_in: dt.timedelta | None) -> dt.timedelta:
    ttl = commands.DEFAULT_TTL if expires_in is None else expires_in
    if not commands.MIN_TTL <= ttl <= commands.MAX_TTL:
        raise ApplicationError(
            _("A command may wait from 1 minute to 31 days for its device."), code="invalid_params"
        )
    return ttl


def _command_check_and_build(
    *,
    device: Device,
    kind: str,
    params: dict,
    by,
    defer_until_stopped: bool,
    now: dt.datetime,
    ttl: dt.timedelta,
    motion: tuple[float | None, dt.datetime | None],
    job: CommandJob | None,
) -> Command:
    """The unsaved Command, or ApplicationError naming why this device cannot be sent it."""
    try:
        # A trial encoding: the device's protocol must know the kind and take the parameters.
        commands.encode(
            kind,
            params,
            commands.Target(device.protocol, device.identifier, 0, now),
        )
    except ValueError as exc:
        raise ApplicationError(str(exc), code="unsupported_command") from None
    if kind == commands.FUEL_CUT and not defer_until_stopped:
        reason = commands.fuel_cut_refusal(speed_kmh=motion[0], fix_at=motion[1], now=now)
        if reason is not None:
            raise ApplicationError(
                reason
                + " "
                + _("Choose “wait until the vehicle stops” to send it once it has stopped."),
                code="unsafe_fuel_cut",
            )
    return Command(
        device=device,
        job=job,
        kind=kind,
        params=params,
        status=Status.QUEUED,
        defer_until_stopped=defer_until_stopped,
        created_by=by if by is not None and by.is_authenticated else None,
        created_at=now,
        expires_at=now + ttl,
    )


@transaction.atomic
def command_send(
    *,
    device: Device,
    kind: str,
    params: dict | None = None,
    by,
    defer_until_stopped: bool = False,
    expires_in: dt.timedelta | None = None,
    now: dt.datetime | None = None,
) -> Command:
    """Queue one command for `device`; the gateway sends it when (or as soon as) the device is
    connected. Refused with ApplicationError (nothing saved) when the kind is unknown, the
    parameters are wrong, the device's protocol has no encoding for the kind, `by` may not send it
    (fuel cut has its own permission; a device shared read-only takes no commands) or, for a fuel
    cut not deferred, the vehicle's last speed is over 20 km/h or its last fix is older than 5
    minutes. `defer_until_stopped` (fuel cut only) queues it until a fresh fix shows the vehicle
    standing. `by=None` is the system (no permission checks)."""
    now = now or timezone.now()
    _require_command_permission(by, kind)
    _require_device_for_command(by, device)
    params = _clean_command(kind, params, defer_until_stopped)
    ttl = _ttl(expires_in)
    motion = _vehicle_motion([device.pk])[device.pk]
    command = _command_check_and_build(
        device=device,
        kind=kind,
        params=params,
        by=by,
        defer_until_stopped=defer_until_stopped,
        now=now,
        ttl=ttl,
        motion=motion,
        job=None,
    )
    model_save(command, by=by)
    _command_publish([command])
    return command


@transaction.atomic
def command_broadcast(
    *,
    devices: Iterable[Device],
    kind: str,
    params: dict | None = None,
    by,
    defer_until_stopped: bool = False,
    expires_in: dt.timedelta | None = None,
    now: dt.datetime | None = None,
) -> CommandJob:
    """Send one command to many devices as one job (群发). The command itself (kind, parameters,
    permission) is checked once and refuses the whole job; each device is then checked on its
    own, and a device that cannot take it (its protocol has no encoding, fuel cut unsafe, shared
    read-only) becomes a failed row with the reason, not an error for the job. Devices the user
    cannot see refuse the whole job (interfaces pass visible devices only)."""
    from accounts.selectors import home_customer
    from devices.selectors import devices_visible_to

    now = now or timezone.now()
    devices = list(devices)
    if not devices:
        raise ApplicationError(_("Choose at least one device."), code="invalid_params")
    _require_command_permission(by, kind)
    params = _clean_command(kind, params, defer_until_stopped)
    ttl = _ttl(expires_in)
    ids = {d.pk for d in devices}
    changeable: set[int] = ids
    if by is not None:
        if devices_visible_to(by).filter(pk__in=ids).count() != len(ids):
            raise ApplicationError(_("Some of these devices do not exist."), code="not_found")
        changeable = set(
            devices_visible_to(by, for_change=True).filter(pk__in=ids).values_list("pk", flat=True)
        )
    customer = home_customer(by) if by is not None else None
    job = model_save(
        CommandJob(
            kind=kind,
            params=params,
            defer_until_stopped=defer_until_stopped,
            customer=customer,
            created_by=by if by is not None and by.is_authenticated else None,
            created_at=now,
        ),
        by=by,
    )
    motion = _vehicle_motion(ids)
    rows = []
    for device in sorted(devices, key=lambda d: d.pk):
        try:
            if device.pk not in changeable:
                raise ApplicationError(
                    _("Device %(d)s is shared with you read-only: you may not send it commands.")
                    % {"d": device.identifier}
                )
            command = _command_check_and_build(
                device=device,
                kind=kind,
                params=params,
                by=by,
                defer_until_stopped=defer_until_stopped,
                now=now,
                ttl=ttl,
                motion=motion[device.pk],
                job=job,
            )
        except ApplicationError as exc:
            command = Command(
                device=device,
                job=job,
                kind=kind,
                params=params,
                status=Status.FAILED,
                defer_until_stopped=defer_until_stopped,
                created_by=by if by is not None and by.is_authenticated else None,
                created_at=now,
                expires_at=now + ttl,
                failure_reason=str(exc.message)[:300],
            )
        rows.append(model_save(command, by=by))
    _command_publish(rows)
    return job


def _bulk_transition(ids: list[int], frm: str, to: str, **fields) -> list[Command]:
    """Move the commands `ids` still in `frm` to `to` with one conditional UPDATE (claim-once:
    a row another process moved first is left alone), write their history rows and publish."""
    if to not in Command.TRANSITIONS[frm]:
        raise InvalidTransition(f"{frm} -> {to}")
    if not ids:
        return []
    moved = list(Command.objects.filter(pk__in=ids, status=frm).values_list("pk", flat=True))
    if not moved:
        return []
    Command.objects.filter(pk__in=moved, status=frm).update(status=to, **fields)
    rows = list(Command.objects.filter(pk__in=moved, status=to))
    Command.history.bulk_history_create(rows, update=True)
    _command_publish(rows)
    return rows


@transaction.atomic
def commands_claim_for_sending(*, device_ids: Iterable[int], now: dt.datetime) -> list[Outgoing]:
    """Claim the queued, unexpired commands of these (connected) devices, oldest first, and
    return their frames: each command goes queued -> sent exactly once, whichever process asks
    (conditional update), with its serial (= its id), match key and sent time. Fuel cuts are
    checked again against the vehicle's latest state: a deferred one waits until a fresh fix
    shows the vehicle standing; one that is no longer safe fails with the reason. A command whose
    device's protocol changed and cannot encode it any more fails too."""
    wanted = set(device_ids)
    if not wanted:
        return []
    # Queued commands are few (most are sent within a second of being queued): read them all
    # rather than pass thousands of connected device ids to the database.
    queued = [
        pk
        for pk, device_id in Command.objects.filter(
            status=Status.QUEUED, expires_at__gt=now
        ).values_list("pk", "device_id")
        if device_id in wanted
    ]
    if not queued:
        return []
    rows = list(
        Command.objects.filter(pk__in=queued, status=Status.QUEUED)
        .select_related("device")
        .order_by("created_at", "pk")
    )
    motion = _vehicle_motion({c.device_id for c in rows if c.kind == commands.FUEL_CUT})
    out: list[Outgoing] = []
    claimed: list[int] = []
    for command in rows:
        if command.kind == commands.FUEL_CUT:
            speed, fix_at = motion.get(command.device_id, (None, None))
            if command.defer_until_stopped:
                if not commands.is_stopped(speed_kmh=speed, fix_at=fix_at, now=now):
                    continue
            else:
                reason = commands.fuel_cut_refusal(speed_kmh=speed, fix_at=fix_at, now=now)
                if reason is not None:
                    _bulk_transition(
                        [command.pk], Status.QUEUED, Status.FAILED, failure_reason=reason[:300]
                    )
                    continue
        device = command.device
        try:
            encoded = commands.encode(
                command.kind,
                command.params,
                commands.Target(device.protocol, device.identifier, command.pk, now),
            )
        except ValueError as exc:
            _bulk_transition(
                [command.pk], Status.QUEUED, Status.FAILED, failure_reason=str(exc)[:300]
            )
            continue
        won = Command.objects.filter(pk=command.pk, status=Status.QUEUED).update(
            status=Status.SENT, sent_at=now, serial=command.pk, match_key=encoded.match_key
        )
        if won:
            claimed.append(command.pk)
            out.append(Outgoing(command.pk, command.device_id, command.kind, encoded.frame))
    if claimed:
        sent = list(Command.objects.filter(pk__in=claimed))
        Command.history.bulk_history_create(sent, update=True)
        _command_publish(sent)
    return out


def commands_requeue(*, command_ids: Iterable[int]) -> int:
    """Claimed commands whose connection closed before they were written go back to the queue
    (sent -> queued), to go out on the device's next connection."""
    return len(
        _bulk_transition(
            list(command_ids), Status.SENT, Status.QUEUED, sent_at=None, serial=None, match_key=""
        )
    )


@transaction.atomic
def command_reply_record(*, device_id: int, reply: commands.Reply, now: dt.datetime):
    """Match a device's reply (devices.commands.reply_of) to the command it answers: the sent
    command of this device with the reply's match key (or, for replies that do not name it, the
    oldest sent one with the key prefix) becomes acked, or failed when the device says it did not
    work. A reply matching nothing (late, after the timeout, or to another platform) is ignored.
    Returns the command or None."""
    base = Command.objects.filter(device_id=device_id, status=Status.SENT).order_by("sent_at", "pk")
    command = base.filter(match_key=reply.key).first() if reply.key else None
    if command is None and reply.prefix:
        command = base.filter(match_key__startswith=reply.prefix).first()
    if command is None:
        logger.info("device %s: reply %r matches no sent command", device_id, reply.key)
        return None
    command = Command.objects.select_for_update().get(pk=command.pk)
    if command.status != Status.SENT:  # pragma: no cover - answered meanwhile by another process
        return None
    command.transition_to(Status.ACKED if reply.ok else Status.FAILED)
    command.answered_at = now
    command.reply_text = reply.text[:300]
    command.failure_reason = (
        "" if reply.ok else (_("The device answered: %(reply)s") % {"reply": reply.text})[:300]
    )
    command.save(update_fields=["status", "answered_at", "reply_text", "failure_reason"])
    _command_publish([command])
    return command


@transaction.atomic
def commands_expire(
    *, now: dt.datetime, reply_timeout: dt.timedelta = commands.REPLY_TIMEOUT
) -> tuple[int, int]:
    """Queued commands past their expiry -> expired; sent commands without a reply for
    `reply_timeout` -> failed "no reply". Idempotent. Returns (expired, failed)."""
    expired = list(
        Command.objects.filter(status=Status.QUEUED, expires_at__lte=now).values_list(
            "pk", flat=True
        )
    )
    silent = list(
        Command.objects.filter(status=Status.SENT, sent_at__lte=now - reply_timeout).values_list(
            "pk", flat=True
        )
    )
    done_expired = _bulk_transition(
        expired,
        Status.QUEUED,
        Status.EXPIRED,
        failure_reason=_("Not sent in time: the device did not connect (or never stopped).")[:300],
    )
    done_failed = _bulk_transition(
        silent,
        Status.SENT,
        Status.FAILED,
        failure_reason=_("No reply from the device.")[:300],
    )
    return len(done_expired), len(done_failed)


@transaction.atomic
def command_cancel(*, command: Command, by) -> Command:
    """Withdraw a command not sent yet (queued -> failed, "cancelled")."""
    if by is not None and not by.has_perm(commands.SEND_PERMISSION):
        raise ApplicationError(_("You may not send commands."), code="permission_denied")
    _require_device_for_command(by, command.device)
    command = Command.objects.select_for_update().get(pk=command.pk)
    if command.status != Status.QUEUED:
        raise InvalidTransition(
            _("Only a queued command can be cancelled; this one is %(status)s.")
            % {"status": command.get_status_display()}
        )
    command.transition_to(Status.FAILED)
    who = by.get_username() if by is not None else _("the system")
    command.failure_reason = (_("Cancelled by %(user)s.") % {"user": who})[:300]
    command.answered_at = timezone.now()
    model_save(command, by=by, update_fields=["status", "failure_reason", "answered_at"])
    _command_publish([command])
    return command
