"""Writes of the gateway outside the position batch: unknown devices, drop counters, auth codes,
online state. Called by the socket server and the admin; `gateway.ingest` owns positions."""

from __future__ import annotations

import datetime as dt
import secrets
from collections.abc import Iterable

from django.db import IntegrityError, transaction
from django.db.models import F
from django.utils.translation import gettext as _

from accounts.models import Customer
from accounts.selectors import is_platform_admin
from carloan import realtime
from carloan.errors import ApplicationError
from devices.models import Device, DeviceModel
from devices.services import device_create
from gateway.models import GatewayStatus, UnknownDevice


def unknown_device_seen(
    *, protocol: str, identifier: str, remote_address: str, now: dt.datetime
) -> UnknownDevice:
    """Record a frame from a device nobody registered (refused by the server): one row per
    (protocol, identifier), `frame_count` += 1. Race-safe: the increment is an F() update, and
    two connections creating the first row at once end with one row and both frames counted."""
    changes = {"last_seen": now, "remote_address": remote_address[:64]}
    lookup = {"protocol": protocol, "identifier": identifier[:20]}
    for _attempt in range(2):
        if UnknownDevice.objects.filter(**lookup).update(
            frame_count=F("frame_count") + 1, **changes
        ):
            return UnknownDevice.objects.get(**lookup)
        try:
            with transaction.atomic():
                return UnknownDevice.objects.create(
                    **lookup, **changes, first_seen=now, frame_count=1
                )
        except IntegrityError:
            continue  # created meanwhile by another connection: count this frame on it
    return UnknownDevice.objects.get(**lookup)  # pragma: no cover - needs a delete race


def device_frames_dropped(*, device_id: int, reason: str, count: int = 1) -> None:
    """Count bad input (bad checksum, oversized frame ...) against a device, for operators."""
    Device.all_objects.filter(pk=device_id).update(
        frames_dropped=F("frames_dropped") + count, last_drop_reason=reason[:200]
    )


def device_auth_code(*, device: Device) -> str:
    """The JT/T 808 auth code of `device` (sent in 0x8100, checked on 0x0102): generated once
    and stored; the same code on every call and from every process."""
    if device.auth_code:
        return device.auth_code
    code = secrets.token_hex(8)
    # Only the first writer wins: a concurrent registration reads the winner's code.
    Device.all_objects.filter(pk=device.pk, auth_code="").update(auth_code=code)
    device.auth_code = Device.all_objects.values_list("auth_code", flat=True).get(pk=device.pk)
    return device.auth_code


@transaction.atomic
def device_from_unknown(
    *,
    unknown: UnknownDevice,
    customer: Customer,
    kind: str,
    model: DeviceModel | None = None,
    by=None,
) -> Device:
    """ "Add as device" in one click: a Device in `customer`'s stock with the unknown device's
    protocol and id; the UnknownDevice row goes away. Unknown devices belong to nobody, so only
    platform administrators (or the system, `by=None`) may claim them."""
    if by is not None and not is_platform_admin(by):
        raise ApplicationError(
            _("Only a platform administrator adds unknown devices."), code="permission_denied"
        )
    device = device_create(
        by=by,
        customer=customer,
        identifier=unknown.identifier,
        protocol=unknown.protocol,
        kind=kind,
        model=model,
    )
    UnknownDevice.objects.filter(pk=unknown.pk).delete()
    return device


def devices_mark_offline(*, device_ids: Iterable[int]) -> int:
    """The server lost these devices' connections (or their idle timeout passed)."""
    ids = list(device_ids)
    if not ids:
        return 0
    changed = list(Device.all_objects.filter(pk__in=ids, online=True).values_list("pk", flat=True))
    count = Device.all_objects.filter(pk__in=changed, online=True).update(online=False)
    realtime.device_status_publish(device_ids=changed)  # live map: after the commit
    return count


STATUS_RETENTION = dt.timedelta(days=1)


def gateway_status_record(
    *,
    name: str,
    host: str,
    ports: dict[str, int],
    started_at: dt.datetime,
    now: dt.datetime,
    connections: int,
    sessions: int,
    queue_depth: int,
    rss_mb: float | None,
    counters: dict[str, dict[str, int]],
    rates: dict[str, dict[str, float]],
    stopped: bool = False,
) -> GatewayStatus:
    """Upsert this gateway process's status row (one per host:pid) and forget processes that
    have not reported for a day. Written by the gateway's writer thread every few seconds."""
    values = {
        "host": host[:100],
        "ports": ports,
        "started_at": started_at,
        "updated_at": now,
        "stopped_at": now if stopped else None,
        "connections": connections,
        "sessions": sessions,
        "queue_depth": queue_depth,
        "rss_mb": rss_mb,
        "counters": counters,
        "rates": rates,
    }
    status, _created = GatewayStatus.objects.update_or_create(name=name[:100], defaults=values)
    GatewayStatus.objects.filter(updated_at__lt=now - STATUS_RETENTION).delete()
    return status
