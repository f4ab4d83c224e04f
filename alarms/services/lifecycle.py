"""Alarm lifecycle services: raise (with de-duplication and flood control), acknowledge, close,
note, auto-close. The engine, the scans, the admin and the API all come through here.

Invariants:
- At most one alarm per vehicle + kind + target is not closed (a partial unique constraint backs
  it; a concurrent raise that loses the race becomes a repeat of the winner's alarm).
- A finding for an alarm that is still open is a repeat: `occurrences` + 1 and `last_seen_at`
  moves forward; nobody is notified again.
- Flood control: at most `ALARM_MAX_PER_HOUR` new alarms per vehicle and kind per hour; beyond
  that the latest one counts the occurrences (a flapping vehicle cannot flood anyone).
- Auto-close only for kinds whose condition can end (`kinds.Kind.auto_close`) and only after the
  alarm was seen at least `ALARM_AUTO_CLOSE_AFTER_S` ago (tolerance against flapping).
- New alarms are handed to `alarms.notify.alarm_notify` after the commit (the engine: once per
  batch, with all the alarms it raised).
"""

from __future__ import annotations

import datetime as dt
import logging
from typing import Any

from django.conf import settings
from django.contrib.gis.geos import Point
from django.db import IntegrityError, transaction
from django.db.models import DateTimeField, F, Value
from django.db.models.functions import Greatest
from django.utils import timezone

from alarms import kinds
from alarms.models import Alarm, AlarmEvent
from carloan.errors import InvalidTransition

logger = logging.getLogger("carloan.alarms")


def _max_per_hour() -> int:
    return int(getattr(settings, "ALARM_MAX_PER_HOUR", 10))


def _auto_close_after() -> dt.timedelta:
    return dt.timedelta(seconds=float(getattr(settings, "ALARM_AUTO_CLOSE_AFTER_S", 0)))


def alarms_notify_on_commit(alarm_ids: list[int]) -> None:
    """Hand new alarms to `alarms.notify.alarm_notify` once the current transaction commits
    (nothing if it rolls back). The engine calls it once per batch with every alarm it raised."""
    alarm_ids = list(alarm_ids)
    if alarm_ids:
        _notify_on_commit(alarm_ids)


def _notify_on_commit(alarm_ids: list[int]) -> None:
    def send() -> None:
        try:
            from alarms.notify import alarm_notify
        except ImportError:  # notifications not installed in this build
            return
        try:
            alarm_notify(alarm_ids)
        except Exception:  # a notifier must never undo or block the engine
            logger.exception("notifying alarms %s failed", alarm_ids)

    transaction.on_commit(send)


def _not_closed(vehicle_id: int | None, kind: str, target: str):
    return Alarm.objects.filter(
        vehicle_id=vehicle_id, kind=kind, target=target, status__in=Alarm.NOT_CLOSED
    )


def alarm_raise(
    *,
    vehicle_id: int | None,
    customer_id: int,
    kind: str,
    target: str = "",
    target_name: str = "",
    level: int | None = None,
    at: dt.datetime,
    lat: float | None = None,
    lon: float | None = None,
    speed_kmh: float | None = None,
    message: str = "",
    details: dict[str, Any] | None = None,
    device_id: int | None = None,
    now: dt.datetime | None = None,
    notify: bool = True,
) -> Alarm | None:
    """Raise `kind` on the vehicle (condition true since `at`). Returns the new alarm, or None
    when it was a repeat of an open alarm or absorbed by flood control.

    `notify=False`: the caller hands the new alarm to `alarms_notify_on_commit` itself (the
    engine does, once for all the alarms of a batch)."""
    spec = kinds.KINDS.get(kind)
    if spec is None:
        raise ValueError(f"unknown alarm kind {kind!r}")
    now = now or timezone.now()
    target = target[:64]
    # A repeat of an open alarm: one more occurrence, seen until `at` (unless seen later already).
    # One statement: it runs for every finding of the engine (bench/engine.py --profile).
    repeat = {
        "last_seen_at": Greatest(F("last_seen_at"), Value(at, output_field=DateTimeField())),
        "occurrences": F("occurrences") + 1,
    }
    if _not_closed(vehicle_id, kind, target).update(**repeat):
        return None
    if vehicle_id is not None:
        recent = Alarm.objects.filter(
            vehicle_id=vehicle_id, kind=kind, raised_at__gte=now - dt.timedelta(hours=1)
        ).order_by("-raised_at", "-id")
        if recent.count() >= _max_per_hour():
            latest = recent.first()
            Alarm.objects.filter(pk=latest.pk).update(occurrences=F("occurrences") + 1)
            return None
    alarm = Alarm(
        customer_id=customer_id,
        vehicle_id=vehicle_id,
        device_id=device_id,
        kind=kind,
        target=target,
        target_name=target_name[:200],
        level=level or spec.level,
        started_at=at,
        raised_at=now,
        last_seen_at=at,
        point=Point(lon, lat, srid=4326) if lat is not None and lon is not None else None,
        speed_kmh=speed_kmh,
        message=message[:300],
        details=details or {},
    )
    try:
        with transaction.atomic():
            alarm.save()
    except IntegrityError:
        # Another process raised the same alarm between our check and insert: a repeat.
        _not_closed(vehicle_id, kind, target).update(occurrences=F("occurrences") + 1)
        return None
    AlarmEvent.objects.create(alarm=alarm, at=now, action=AlarmEvent.Action.RAISED)
    if notify:
        _notify_on_commit([alarm.pk])
    return alarm


def _transition(alarm: Alarm, to: str) -> Alarm:
    locked = Alarm.objects.select_for_update().get(pk=alarm.pk)
    if not locked.can_transition(to):
        raise InvalidTransition(
            f"alarm {locked.pk} is {locked.get_status_display()}: cannot become {to}"
        )
    return locked


@transaction.atomic
def alarm_acknowledge(*, alarm: Alarm, by, note: str = "", now: dt.datetime | None = None) -> Alarm:
    """open -> acknowledged: someone is on it. Records who, when and the note."""
    now = now or timezone.now()
    locked = _transition(alarm, Alarm.Status.ACKNOWLEDGED)
    locked.status = Alarm.Status.ACKNOWLEDGED
    locked.acknowledged_at, locked.acknowledged_by = now, by
    if note:
        locked.note = _append(locked.note, note)
    locked.save(update_fields=["status", "acknowledged_at", "acknowledged_by", "note"])
    AlarmEvent.objects.create(
        alarm=locked, at=now, by=by, action=AlarmEvent.Action.ACKNOWLEDGED, note=note
    )
    return locked


@transaction.atomic
def alarm_close(*, alarm: Alarm, by, note: str = "", now: dt.datetime | None = None) -> Alarm:
    """open | acknowledged -> closed by a handler, with the note."""
    now = now or timezone.now()
    locked = _transition(alarm, Alarm.Status.CLOSED)
    locked.status = Alarm.Status.CLOSED
    locked.closed_at, locked.closed_by = now, by
    if note:
        locked.note = _append(locked.note, note)
    locked.save(update_fields=["status", "closed_at", "closed_by", "note"])
    AlarmEvent.objects.create(
        alarm=locked, at=now, by=by, action=AlarmEvent.Action.CLOSED, note=note
    )
    return locked


def alarm_note(*, alarm: Alarm, by, note: str, now: dt.datetime | None = None) -> AlarmEvent:
    """A handling note without a status change."""
    note = note.strip()
    if not note:
        raise InvalidTransition("an empty note")
    now = now or timezone.now()
    with transaction.atomic():
        Alarm.objects.filter(pk=alarm.pk).update(note=_append(alarm.note, note))
        return AlarmEvent.objects.create(
            alarm_id=alarm.pk, at=now, by=by, action=AlarmEvent.Action.NOTE, note=note
        )


def alarms_auto_close(
    *, vehicle_id: int | None, kind: str, target: str = "", at: dt.datetime
) -> int:
    """The condition ended at `at`: close the vehicle's not-closed alarm of this kind + target
    (only kinds that can end, and only once it was last seen `ALARM_AUTO_CLOSE_AFTER_S` before)."""
    spec = kinds.KINDS.get(kind)
    if spec is None or not spec.auto_close:
        return 0
    ids = list(
        _not_closed(vehicle_id, kind, target[:64])
        .filter(last_seen_at__lte=at - _auto_close_after())
        .values_list("pk", flat=True)
    )
    if not ids:
        return 0
    closed = Alarm.objects.filter(pk__in=ids, status__in=Alarm.NOT_CLOSED).update(
        status=Alarm.Status.CLOSED, closed_at=at, auto_closed=True
    )
    AlarmEvent.objects.bulk_create(
        AlarmEvent(alarm_id=pk, at=at, action=AlarmEvent.Action.AUTO_CLOSED) for pk in ids
    )
    return closed


def _append(existing: str, note: str) -> str:
    note = note.strip()
    return f"{existing}\n{note}".strip() if existing else note
