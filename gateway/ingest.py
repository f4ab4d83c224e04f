"""The batch writer's database half (DESIGN.md "The data path"): ordinary sync Django code.

The asyncio server collects decoded messages for <= 100 ms or 500 messages and hands them here as
`Inbound` items. `ingest_batch` stores them in one transaction and says which frames may now be
acked: an acked position is never lost, so the server sends acks only after this returns.

Queries per batch do not grow with the number of positions or devices (beyond bulk chunks of
500): devices with their active bindings, then already-stored duplicates, one query each;
positions inserted in one statement (PostgreSQL: COPY; SQLite: `bulk_create`, which SQLite's
999-parameter limit cuts into ~43-row chunks) and every device's state in one UPDATE.

The hot path makes no GEOS geometries (points travel as hex EWKB, stored points are read as
ST_Y/ST_X) and no `bulk_update` CASE expressions: see bench/ingest.py for the figures.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import struct
from dataclasses import dataclass, field
from typing import Any

from django.db import connection, transaction
from django.db.models import FloatField, Func, OuterRef, Subquery
from django.db.models.base import ModelState
from django.utils import timezone

from carloan import realtime
from devices.models import Device
from gateway import hygiene
from gateway.hygiene import DEFAULT_CONFIG, HygieneConfig, LastFix
from gateway.models import Position
from gateway.protocols import messages as m

REASON_UNKNOWN_DEVICE = "unknown_device"
BULK_SIZE = 500

# Device columns the batch reads and writes (last-known state, T6).
STATE_COLUMNS = [
    "online",
    "last_seen_at",
    "last_fix_at",
    "last_position",
    "last_speed_kmh",
    "last_course",
    "last_acc",
    "battery_pct",
    "external_voltage",
    "gsm_signal",
    "satellites",
    "odometer_km",
]
SCALAR_COLUMNS = [c for c in STATE_COLUMNS if c != "last_position"]
# Position attribute -> Device column, copied from the freshest valid realtime fix.
_FIX_STATE = {
    "speed_kmh": "last_speed_kmh",
    "course": "last_course",
    "acc": "last_acc",
    "battery_pct": "battery_pct",
    "external_voltage": "external_voltage",
    "gsm_signal": "gsm_signal",
    "satellites": "satellites",
    "odometer_km": "odometer_km",
}
# Message attribute -> Device column, from status / heartbeat frames (state without a fix).
_MESSAGE_STATE = {
    "acc": "last_acc",
    "battery_pct": "battery_pct",
    "external_voltage": "external_voltage",
    "gsm_signal": "gsm_signal",
}


@dataclass(frozen=True)
class Inbound:
    device_id: int  # Device pk, resolved by the session at login
    message: m.Message
    received_at: dt.datetime
    token: Any = None  # opaque to ingest: the server's handle to send this frame's ack


@dataclass
class BatchResult:
    stored: int = 0
    rejected: list[tuple[Any, str]] = field(default_factory=list)  # (token, reason) per fix
    acks: list[Any] = field(default_factory=list)  # tokens that may be acked now
    positions: list[Position] = field(default_factory=list)  # saved rows
    alarms: list[int] = field(default_factory=list)  # alarms the engine raised in this batch
    devices_updated: int = 0


def _key(device_id: int, fix_time: dt.datetime, lat: float, lon: float) -> tuple:
    # Rounded to ~1 cm: a float that went through the database compares equal to the decoded one.
    return (device_id, fix_time, round(lat, 7), round(lon, 7))


def ewkb_hex(lon: float, lat: float) -> str:
    """Hex EWKB of a WGS-84 point, what PostGIS and GeoDjango read: built with struct, ~20x
    cheaper than a GEOS Point (which the hot path would create and throw away per fix)."""
    return _EWKB_POINT.pack(1, 0x20000001, 4326, lon, lat).hex()


_EWKB_POINT = struct.Struct("<BIIdd")  # little endian, type Point | SRID flag, srid, x, y


class _DeviceState:
    """One device's last-known state while the batch is walked; written back once. The stored
    point is read as plain lat/lon (ST_Y/ST_X) and a new one written as hex EWKB only when it
    moved, so the batch creates no GEOS geometries at all."""

    __slots__ = ("pk", "values", "lat", "lon", "moved", "previous")

    def __init__(self, row: dict) -> None:
        self.pk = row["pk"]
        self.values = {column: row[column] for column in SCALAR_COLUMNS}
        self.lat, self.lon = row["last_lat"], row["last_lon"]
        self.moved = False
        self.previous = (
            LastFix(
                fix_time=row["last_fix_at"],
                lat=self.lat,
                lon=self.lon,
                acc=row["last_acc"],
                speed_kmh=row["last_speed_kmh"],
            )
            if self.lat is not None and row["last_fix_at"] is not None
            else None
        )

    def seen(self, at: dt.datetime) -> None:
        v = self.values
        v["online"] = True
        if v["last_seen_at"] is None or at > v["last_seen_at"]:
            v["last_seen_at"] = at

    def status(self, message: m.Message) -> None:
        v = self.values
        for attr, column in _MESSAGE_STATE.items():
            value = getattr(message, attr)
            if value is not None:
                v[column] = value

    def fix(self, pos: m.Position, flags: tuple[str, ...]) -> None:
        """Move "last position" only forwards, and only with a valid realtime fix: a blind-area
        re-upload or an older fix is stored but never drawn as where the car is now."""
        v = self.values
        if not (pos.valid and pos.realtime):
            return
        if v["last_fix_at"] is not None and pos.fix_time <= v["last_fix_at"]:
            return
        v["last_fix_at"] = pos.fix_time
        if hygiene.FLAG_DRIFT not in flags or self.lat is None:
            # Drift while parked: the car stays at the parked spot, the raw fix is only stored.
            self.lat, self.lon, self.moved = pos.lat, pos.lon, True
        for attr, column in _FIX_STATE.items():
            value = getattr(pos, attr)
            if value is not None:
                v[column] = value
        self.previous = LastFix(
            fix_time=pos.fix_time,
            lat=self.lat,
            lon=self.lon,
            acc=v["last_acc"],
            speed_kmh=v["last_speed_kmh"],
        )


def _y(column: str) -> Func:
    return Func(column, function="ST_Y", output_field=FloatField())  # PostGIS and SpatiaLite


def _x(column: str) -> Func:
    return Func(column, function="ST_X", output_field=FloatField())


def ingest_batch(
    items: list[Inbound],
    *,
    now: dt.datetime | None = None,
    config: HygieneConfig = DEFAULT_CONFIG,
    engine: Any = None,
) -> BatchResult:
    """Store a batch in one transaction: hygiene, bulk insert of the kept fixes (each with the
    vehicle its device is mounted on now), each device's last-known state written once.

    Every item is in `acks` once this returns (the transaction committed), including frames whose
    fixes were dropped as duplicates or rejected: resending them would change nothing. Fixes not
    stored are listed in `rejected` with the reason. Must not run inside an outer transaction
    that could still roll back (the caller acks on return).

    `engine` (an `alarms.engine.Engine`) evaluates the stored fixes and the devices' alarm codes
    in the same transaction: an alarm exists exactly when the fix that raised it does."""
    from vehicles.models import DeviceBinding

    now = now or timezone.now()
    result = BatchResult()
    if not items:
        return result
    device_ids = {item.device_id for item in items}
    with transaction.atomic():
        # Live devices only (a deleted one's fixes are refused), with the vehicle each is mounted
        # on now (the active binding: unique per device) in the same query.
        active = DeviceBinding.objects.filter(device=OuterRef("pk"), unbound_at__isnull=True)
        devices = {
            row["pk"]: row
            for row in Device.objects.filter(pk__in=device_ids).values(
                "pk",
                *SCALAR_COLUMNS,
                last_lat=_y("last_position"),
                last_lon=_x("last_position"),
                vehicle_id=Subquery(active.values("vehicle_id")[:1]),
            )
        }
        fix_times = {
            pos.fix_time
            for item in items
            if item.device_id in devices
            for pos in item.message.positions
        }
        # Exact duplicates of stored fixes (a resent frame whose ack was lost): one indexed query.
        seen = (
            {
                _key(dev, t, lat, lon)
                for dev, t, lat, lon in Position.objects.filter(
                    device_id__in=devices, fix_time__in=fix_times
                ).values_list("device_id", "fix_time", _y("point"), _x("point"))
            }
            if fix_times
            else set()
        )
        states = {pk: _DeviceState(d) for pk, d in devices.items()}
        rows: list[Position] = []
        engine_fixes: list[Any] = []
        engine_alarms: list[Any] = []
        for item in items:
            state = states.get(item.device_id)
            message = item.message
            if state is None:
                result.rejected.append((item.token, REASON_UNKNOWN_DEVICE))
                continue
            state.seen(item.received_at)
            state.status(message)  # frame-level state (status / heartbeat / alarm frames)
            vehicle_id = devices[item.device_id]["vehicle_id"]
            if engine is not None and message.alarms and _realtime(message):
                engine_alarms.append(_engine_alarm(item, vehicle_id))
            if not message.positions:
                continue
            for pos in message.positions:
                key = _key(item.device_id, pos.fix_time, pos.lat, pos.lon)
                if key in seen:
                    result.rejected.append((item.token, hygiene.REASON_DUPLICATE))
                    continue
                verdict = hygiene.check(pos, state.previous, now, config)
                if not verdict.keep:
                    result.rejected.append((item.token, verdict.reason))
                    continue
                seen.add(key)
                rows.append(_position_row(item, pos, vehicle_id, verdict.flags))
                state.fix(pos, verdict.flags)
                if engine is not None:
                    engine_fixes.append(_engine_fix(item, pos, vehicle_id, verdict.flags))
        if rows:
            if connection.vendor == "postgresql":
                _copy_positions(rows)
            else:
                Position.objects.bulk_create(rows, batch_size=BULK_SIZE)
            result.positions = rows
        result.stored = len(rows)
        if states:
            _write_states([states[pk] for pk in sorted(states)])
        result.devices_updated = len(states)
        # Live feed: pushed after the commit from the feed's own thread; never fails the batch.
        realtime.ingest_committed(rows, [(devices[pk], s.values) for pk, s in states.items()])
        if engine is not None and (engine_fixes or engine_alarms):
            result.alarms = engine.process(engine_fixes, engine_alarms, now=now).raised
    result.acks = [item.token for item in items]
    return result


def _engine_fix(item: Inbound, pos: m.Position, vehicle_id: int | None, flags: tuple) -> Any:
    from alarms.engine import PositionInput

    return PositionInput(
        device_id=item.device_id,
        vehicle_id=vehicle_id,
        fix_time=pos.fix_time,
        lat=pos.lat,
        lon=pos.lon,
        valid=pos.valid,
        realtime=pos.realtime,
        speed_kmh=pos.speed_kmh,
        acc=pos.acc,
        source=pos.source,
        flags=tuple(flags),
        alarms=tuple(pos.alarms),
    )


def _realtime(message: m.Message) -> bool:
    """Alarm codes count as "now" unless every fix of the frame is a blind-area re-upload."""
    return not message.positions or any(pos.realtime for pos in message.positions)


def _engine_alarm(item: Inbound, vehicle_id: int | None) -> Any:
    from alarms.engine import DeviceAlarmInput

    return DeviceAlarmInput(
        device_id=item.device_id,
        vehicle_id=vehicle_id,
        at=item.received_at,
        codes=tuple(item.message.alarms),
    )


_POSITION_COLUMNS = [f for f in Position._meta.concrete_fields if not f.primary_key]


def _copy_value(field) -> Any:
    if field.name == "point":
        # Rows are built with hex EWKB (see _position_row); GEOS only if someone replaced it.
        return lambda p: p if isinstance(p, str) else p.hexewkb.decode()
    if field.get_internal_type() == "JSONField":
        return json.dumps
    return lambda v: v  # psycopg adapts the rest (aware datetimes, bools, None)


_COPY_PREP = [(f.attname, _copy_value(f)) for f in _POSITION_COLUMNS]


def _copy_positions(rows: list[Position]) -> None:
    """PostgreSQL: ids drawn from the sequence in one query, then the rows streamed with COPY.
    A 500-row multi-VALUES INSERT with 11,000 parameters spends more time in psycopg's query
    parsing and Django's per-value preparation than the server spends storing it."""
    opts = Position._meta
    qn = connection.ops.quote_name
    names = ", ".join(qn(f.column) for f in [opts.pk, *_POSITION_COLUMNS])
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT nextval(pg_get_serial_sequence(%s, %s)) FROM generate_series(1, %s)",
            [opts.db_table, opts.pk.column, len(rows)],
        )
        for row, (pk,) in zip(rows, cursor.fetchall(), strict=True):
            row.pk = pk
        # Django's wrapper has no copy(); the psycopg cursor underneath does.
        with cursor.cursor.copy(f"COPY {qn(opts.db_table)} ({names}) FROM STDIN") as copy:
            for row in rows:
                # __dict__: the raw hex EWKB, not the geometry the descriptor would build.
                values = row.__dict__
                copy.write_row([row.pk] + [prep(values[a]) for a, prep in _COPY_PREP])


def _write_states(states: list[_DeviceState]) -> None:
    """All devices' state in one statement. `bulk_update` builds a CASE expression per field
    per row in Python: ~2 s for 500 devices, 40x the whole rest of the batch. PostgreSQL: one
    UPDATE ... FROM unnest(arrays); SQLite: one UPDATE per device through a single
    `executemany` (run in C). The point is written only for devices that moved (NULL keeps the
    stored one). Rows go in id order so two writers cannot deadlock."""
    opts = Device._meta
    qn = connection.ops.quote_name
    table = qn(opts.db_table)
    fields = [opts.get_field(name) for name in SCALAR_COLUMNS]
    point = qn(opts.get_field("last_position").column)
    points = [ewkb_hex(s.lon, s.lat) if s.moved else None for s in states]
    if connection.vendor == "postgresql":
        arrays = [[s.pk for s in states], points]
        casts = ["%s::bigint[]", "%s::text[]"]
        for f in fields:
            arrays.append([s.values[f.name] for s in states])
            casts.append(f"%s::{f.db_type(connection)}[]")
        columns = ", ".join(qn(f.column) for f in fields)
        assignments = ", ".join(f"{qn(f.column)} = v.{qn(f.column)}" for f in fields)
        # Only quoted model metadata is formatted in; every value is a bound parameter.
        sql = (
            f"UPDATE {table} SET {assignments}, "  # noqa: S608
            f"{point} = COALESCE(v.new_point::geometry, {table}.{point}) "
            f"FROM unnest({', '.join(casts)}) AS v(id, new_point, {columns}) "
            f"WHERE {table}.{qn(opts.pk.column)} = v.id"
        )
        with connection.cursor() as cursor:
            cursor.execute(sql, arrays)
        return
    assignments = ", ".join(f"{qn(f.column)} = %s" for f in fields)
    sql = (
        f"UPDATE {table} SET {assignments}, "  # noqa: S608
        f"{point} = COALESCE(GeomFromEWKB(%s), {point}) WHERE {qn(opts.pk.column)} = %s"
    )
    rows = [
        [f.get_db_prep_value(s.values[f.name], connection) for f in fields] + [p, s.pk]
        for s, p in zip(states, points, strict=True)
    ]
    with connection.cursor() as cursor:
        cursor.executemany(sql, rows)


def _jsonable(value: Any) -> Any:
    """Codecs keep raw vendor values in `extra`; JSON has no bytes, tuples or dataclasses."""
    if value is None or isinstance(value, str | int | float | bool):
        return value
    if isinstance(value, bytes | bytearray):
        return value.hex()
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [_jsonable(v) for v in value]
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return _jsonable(dataclasses.asdict(value))
    if isinstance(value, dt.datetime | dt.date):
        return value.isoformat()
    return str(value)


def _new_position_row(**values: Any) -> Position:
    """A Position instance as `Position(**values)` makes it, from every concrete field's attname,
    without Model.__init__'s per-field descriptor walk (~25 us a row, a third of the Python time
    of a 500-row batch). The rows are plain: no deferred fields, FK ids only, point as hex EWKB
    (GeoDjango's descriptor turns it into a Point on first read)."""
    obj = _object_new(Position)
    values["_state"] = ModelState()
    obj.__dict__ = values
    return obj


_object_new = object.__new__


def _position_row(
    item: Inbound, pos: m.Position, vehicle_id: int | None, flags: tuple[str, ...]
) -> Position:
    extra = {k: _jsonable(v) for k, v in pos.extra.items()} if pos.extra else {}
    if pos.cells:
        extra["cells"] = [
            {"mcc": c.mcc, "mnc": c.mnc, "lac": c.lac, "cid": c.cid, "rssi": c.rssi}
            for c in pos.cells
        ]
    return _new_position_row(
        id=None,
        device_id=item.device_id,
        vehicle_id=vehicle_id,
        fix_time=pos.fix_time,
        received_at=item.received_at,
        point=ewkb_hex(pos.lon, pos.lat),  # GeoDjango turns it into a Point when read
        valid=pos.valid,
        source=pos.source,
        speed_kmh=pos.speed_kmh,
        course=pos.course,
        altitude_m=pos.altitude_m,
        satellites=pos.satellites,
        acc=pos.acc,
        fuel_cut=pos.fuel_cut,
        battery_pct=pos.battery_pct,
        external_voltage=pos.external_voltage,
        gsm_signal=pos.gsm_signal,
        odometer_km=pos.odometer_km,
        sleeping=pos.sleeping,
        realtime=pos.realtime,
        alarms=list(pos.alarms),
        flags=list(flags),
        extra=extra,
    )
