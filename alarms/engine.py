"""The alarm engine (DESIGN.md "The data path"): evaluates the gateway's batch inside the ingest
transaction, raises and auto-closes alarms through `alarms.services.lifecycle`, and keeps each
vehicle's memory in `VehicleState` so a restart raises no false enter / leave alarms. That memory
is kept in the process too (read once per vehicle, written back every batch): a batch whose
transaction does not commit makes the engine forget what it had for that batch's vehicles, and
they are read again from the database.

Queries per batch do not grow with the number of fixes: vehicles, devices, states, armings,
usual areas (one query each), alarm settings and custom types (cached, re-read when their
version changes), the places index (in memory, `alarms.spatial`), then one statement per alarm
actually raised or closed and the states written back in bulk.

Only fresh realtime fixes drive the rules: blind-area re-uploads (realtime=False), invalid fixes,
fixes flagged as an impossible jump, and fixes older than the last one the engine saw for that
vehicle are stored by ingest but never raise "now" alarms.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import time
import zoneinfo
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

from django.conf import settings
from django.db.models import Count, Max
from django.utils import timezone

from alarms import kinds
from alarms.models import (
    AlarmSetting,
    Arming,
    CustomAlarmType,
    Geofence,
    UsualArea,
    VehicleState,
)
from alarms.rules import POSITION_RULES, RULES, params_for
from alarms.rules.base import Area, Context, Finding, Fix, Membership, VehicleInfo, iso, parse
from alarms.services import lifecycle

logger = logging.getLogger("carloan.alarms")

# Hygiene flags that disqualify a fix from driving rules (gateway.hygiene).
_UNTRUSTED = frozenset({"invalid_fix", "implied_speed"})
AREA_MARGIN_M = 50.0  # leave an area only once this far outside its radius (hysteresis)
CACHE_SECONDS = 5.0
INFO_TTL = 60.0  # seconds a vehicle's info (customer, borrower's province ...) is reused
STATES_KEPT = 100_000  # vehicles whose VehicleState the engine keeps in memory (then re-read)
INFO_CACHE_MAX = 200_000  # entries before the caches start over


@dataclass(frozen=True)
class PositionInput:
    """A stored fix as the engine needs it (from `gateway.ingest`)."""

    device_id: int
    vehicle_id: int | None
    fix_time: dt.datetime
    lat: float
    lon: float
    valid: bool
    realtime: bool
    speed_kmh: float | None = None
    acc: bool | None = None
    source: str = "gps"
    flags: tuple[str, ...] = ()
    alarms: tuple[str, ...] = ()


@dataclass(frozen=True)
class DeviceAlarmInput:
    """Alarm codes a device sent without a fix (status / alarm frames), realtime only."""

    device_id: int
    vehicle_id: int | None
    at: dt.datetime
    codes: tuple[str, ...]


@dataclass
class EngineResult:
    raised: list[int] = field(default_factory=list)  # new alarm ids
    closed: int = 0
    fixes: int = 0  # fixes that drove rules
    seconds: float = 0.0


class _NoPlaces:
    """Until the places index is available: no risk points, annotations or fences."""

    def risk_points_at(self, lat: float, lon: float) -> list:
        return []

    def annotations_at(self, lat: float, lon: float, customer_path: Any = None) -> list:
        return []

    def fences_at(self, vehicle_id: int, lat: float, lon: float) -> list:
        return []

    def within(self, key: str, lat: float, lon: float, margin_m: float = 0.0) -> bool:
        return False

    def prefetch(self, positions) -> None:
        return None


def _places_provider():
    try:
        from alarms.spatial import PlaceIndexCache
    except ImportError:
        return lambda: _NoPlaces()
    cache = PlaceIndexCache()
    return cache.get


def _province_functions():
    try:
        from alarms import regions
    except ImportError:
        return (lambda lat, lon: None), (lambda code, lat, lon: 0.0)

    def at(lat: float, lon: float) -> str | None:
        province = regions.province_at(lat, lon)
        return getattr(province, "code", province)

    return at, regions.distance_to_province_m


class _Settings:
    """AlarmSetting overrides resolved platform default -> customer ancestors -> vehicle; cached
    and re-read when the table's version (count, last update) changes."""

    def __init__(self) -> None:
        self.version: tuple | None = None
        self.generation = 0  # bumped whenever the version changes (drops cached vehicle infos)
        self.checked = 0.0
        self.by_customer: dict[int, dict[str, dict]] = {}
        self.by_vehicle: dict[int, dict[str, dict]] = {}
        self.ancestors: dict[int, list[int]] = {}
        self.resolved: dict[tuple[int, int, str], tuple[bool, int | None, Any]] = {}
        self.custom: dict[int, list[dict]] = {}
        self.fence_options: dict[str, dict] = {}

    def refresh(self) -> None:
        now = time.monotonic()
        if now - self.checked < CACHE_SECONDS and self.version is not None:
            return
        self.checked = now
        agg = AlarmSetting.objects.aggregate(n=Count("id"), t=Max("updated_at"))
        cagg = CustomAlarmType.objects.aggregate(n=Count("id"), t=Max("updated_at"))
        fagg = Geofence.objects.aggregate(n=Count("id"), t=Max("updated_at"))
        # Armings and usual areas feed the cached vehicle infos (Engine._vehicle_infos).
        aagg = Arming.objects.aggregate(n=Count("id"), t=Max("armed_at"))
        uagg = UsualArea.objects.aggregate(n=Count("id"), m=Max("id"))
        version = (
            *(agg["n"], agg["t"], cagg["n"], cagg["t"], fagg["n"], fagg["t"]),
            *(aagg["n"], aagg["t"], uagg["n"], uagg["m"]),
        )
        if version == self.version:
            return
        self.version = version
        self.generation += 1
        self.by_customer, self.by_vehicle = defaultdict(dict), defaultdict(dict)
        for row in AlarmSetting.objects.values(
            "kind", "customer_id", "vehicle_id", "enabled", "level", "params"
        ):
            target = (
                self.by_vehicle[row["vehicle_id"]]
                if row["vehicle_id"]
                else self.by_customer[row["customer_id"]]
            )
            target[row["kind"]] = row
        self.custom = defaultdict(list)
        for ct in CustomAlarmType.objects.filter(enabled=True).values():
            self.custom[ct["customer_id"]].append(_custom_dict(ct))
        self.fence_options = {
            f"fence:{f['id']}": {
                "enter": f["alarm_enter"],
                "leave": f["alarm_leave"],
                "inside": f["alarm_inside"],
                "parking": f["alarm_parking"],
                "parking_minutes": f["parking_minutes"],
            }
            for f in Geofence.objects.values(
                "id",
                "alarm_enter",
                "alarm_leave",
                "alarm_inside",
                "alarm_parking",
                "parking_minutes",
            )
        }
        self.resolved.clear()

    def chain(self, customer_id: int) -> list[int]:
        if customer_id not in self.ancestors:
            from accounts.models import Customer

            node = Customer.objects.get(pk=customer_id)
            self.ancestors[customer_id] = list(
                node.get_ancestors(include_self=True).values_list("pk", flat=True)
            )
        return self.ancestors[customer_id]

    def resolve(self, vehicle_id: int, customer_id: int, kind: str) -> tuple[bool, int | None, Any]:
        key = (vehicle_id, customer_id, kind)
        hit = self.resolved.get(key)
        if hit is not None:
            return hit
        enabled, level, params = True, None, {}
        layers = [self.by_customer.get(c, {}).get(kind) for c in self.chain(customer_id)]
        layers.append(self.by_vehicle.get(vehicle_id, {}).get(kind))
        for row in filter(None, layers):
            if row["enabled"] is not None:
                enabled = row["enabled"]
            if row["level"] is not None:
                level = row["level"]
            params.update(row["params"] or {})
        try:
            resolved = (enabled, level, params_for(kind, params))
        except ValueError:
            logger.warning(
                "bad alarm setting for %s (vehicle %s): using defaults", kind, vehicle_id
            )
            resolved = (enabled, level, params_for(kind))
        self.resolved[key] = resolved
        return resolved

    def custom_types(self, customer_id: int) -> tuple[dict, ...]:
        return tuple(ct for c in self.chain(customer_id) for ct in self.custom.get(c, ()))


def _custom_dict(ct: dict) -> dict:
    area = ""
    if ct["geofence_id"]:
        area = f"fence:{ct['geofence_id']}"
    elif ct["annotation_id"]:
        area = f"annotation:{ct['annotation_id']}"
    return {
        "id": ct["id"],
        "name": ct["name"],
        "level": ct["level"],
        "min_speed_kmh": ct["min_speed_kmh"],
        "max_speed_kmh": ct["max_speed_kmh"],
        "acc": ct["acc"],
        "area": area,
        "time_from": ct["time_from"].isoformat() if ct["time_from"] else None,
        "time_to": ct["time_to"].isoformat() if ct["time_to"] else None,
        "duration_s": ct["duration_s"],
    }


def home_province(id_number: str) -> str | None:
    """The province of the borrower's resident ID (its first two digits, GB/T 2260)."""
    from alarms.regions import UnknownProvince, province_for_id_number_prefix

    try:
        return province_for_id_number_prefix(id_number or "")
    except UnknownProvince:
        return None


class Engine:
    """One per gateway process (its caches live as long as the process)."""

    def __init__(self, *, places=None) -> None:
        self._places = (lambda: places) if places is not None else _places_provider()
        self._province_at, self._province_distance = _province_functions()
        self.settings = _Settings()
        self.tz = zoneinfo.ZoneInfo(settings.TIME_ZONE)
        self._infos: dict[int, tuple[VehicleInfo, int, float]] = {}  # info, generation, loaded
        self._kinds: dict[int, tuple[str, float]] = {}  # device pk -> kind, loaded
        self._states: dict[int, VehicleState] = {}  # vehicle id -> its state as committed
        self._uncommitted: set[int] = set()  # vehicles of a batch whose commit is not seen yet

    # -- entry point, inside the ingest transaction --
    def process(
        self,
        positions: list[PositionInput],
        device_alarms: list[DeviceAlarmInput] = (),
        *,
        now: dt.datetime | None = None,
    ) -> EngineResult:
        started = time.perf_counter()
        now = now or timezone.now()
        result = EngineResult()
        vehicle_ids = {p.vehicle_id for p in positions if p.vehicle_id}
        vehicle_ids |= {a.vehicle_id for a in device_alarms if a.vehicle_id}
        if not vehicle_ids:
            return result
        self.settings.refresh()
        infos = self._vehicle_infos(vehicle_ids)
        device_kinds = self._device_kinds({p.device_id for p in positions})
        states = self._vehicle_states(vehicle_ids)
        findings: list[tuple[VehicleInfo, Finding, tuple[float, float, float | None] | None]] = []

        # Device alarms: from realtime frames only (blind-area data never raises "now" alarms).
        for pos in positions:
            if pos.alarms and pos.realtime and pos.vehicle_id in infos:
                for code in pos.alarms:
                    if code in kinds.DEVICE_KINDS:
                        f = Finding(
                            code,
                            True,
                            pos.fix_time,
                            f"device:{pos.device_id}",
                            device_id=pos.device_id,
                        )
                        findings.append(
                            (infos[pos.vehicle_id], f, (pos.lat, pos.lon, pos.speed_kmh))
                        )
        for item in device_alarms:
            if item.vehicle_id in infos:
                for code in item.codes:
                    if code in kinds.DEVICE_KINDS:
                        f = Finding(
                            code,
                            True,
                            item.at,
                            f"device:{item.device_id}",
                            device_id=item.device_id,
                        )
                        findings.append((infos[item.vehicle_id], f, None))

        places = self._places()
        by_vehicle: dict[int, list[PositionInput]] = defaultdict(list)
        for pos in positions:
            if (
                pos.vehicle_id in infos
                and pos.realtime
                and pos.valid
                and not _UNTRUSTED.intersection(pos.flags)
            ):
                by_vehicle[pos.vehicle_id].append(pos)
        # One vectorised lookup for the whole batch: the per-fix `risk_points_at` /
        # `annotations_at` below then read its answers instead of querying the tree each.
        prefetch = getattr(places, "prefetch", None)
        if prefetch is not None and by_vehicle:
            prefetch([(p.lat, p.lon) for fixes in by_vehicle.values() for p in fixes])
        changed: dict[int, dict] = {}
        for vehicle_id, fixes in by_vehicle.items():
            info = infos[vehicle_id]
            row = states.get(vehicle_id)
            state = dict(row.state) if row else {}
            last = parse(state.get("last_at"))
            for pos in sorted(fixes, key=lambda p: p.fix_time):
                if last is not None and pos.fix_time < last:
                    continue  # older than what the engine already judged for the vehicle
                if last is not None and pos.fix_time == last:
                    # Two devices of one car report the same second (separation needs both);
                    # the same device's fix again is a repeat.
                    seen = (state.get("_devices") or {}).get(str(pos.device_id))
                    if seen is not None and parse(seen["at"]) >= pos.fix_time:
                        continue
                last = pos.fix_time
                fix = Fix(
                    pos.device_id,
                    pos.fix_time,
                    pos.lat,
                    pos.lon,
                    pos.speed_kmh,
                    pos.acc,
                    pos.source,
                    device_kinds.get(pos.device_id, "wired"),
                    pos.flags,
                )
                result.fixes += 1
                for finding in self._evaluate(info, fix, state, places):
                    findings.append((info, finding, (fix.lat, fix.lon, fix.speed_kmh)))
            state["last_at"] = iso(last) if last else None
            changed[vehicle_id] = state

        self._apply(findings, result, now)
        self._save_states(changed, states, now)
        result.seconds = time.perf_counter() - started
        return result

    # -- per fix --
    def _evaluate(self, info: VehicleInfo, fix: Fix, state: dict, places) -> list[Finding]:
        devices = {
            int(k): Fix(int(k), parse(v["at"]), v["lat"], v["lon"], source=v.get("source", "gps"))
            for k, v in (state.get("_devices") or {}).items()
        }
        areas = self._membership(
            state,
            "_areas",
            fix,
            [
                *places.risk_points_at(fix.lat, fix.lon),
                *places.annotations_at(fix.lat, fix.lon, info.customer_id),
            ],
            places,
        )
        fences = self._membership(
            state,
            "_fences",
            fix,
            places.fences_at(info.vehicle_id, fix.lat, fix.lon),
            places,
            self.settings.fence_options,
        )
        out: list[Finding] = []
        for rule_cls in POSITION_RULES:
            enabled, _level, params = self.settings.resolve(
                info.vehicle_id, info.customer_id, rule_cls.kind
            )
            rule_state = state.setdefault(rule_cls.kind, {})
            ctx = Context(
                vehicle=info,
                fix=fix,
                state=rule_state,
                params=params,
                areas=areas,
                fences=fences,
                devices=devices,
                province_at=self._province_at,
                province_distance_m=self._province_distance,
                local_time=lambda t: t.astimezone(self.tz).time(),
            )
            try:
                found = rule_cls().evaluate(ctx)
            except Exception:  # one broken rule must not lose the batch
                logger.exception("rule %s failed on vehicle %s", rule_cls.kind, info.vehicle_id)
                continue
            if not rule_state:
                del state[rule_cls.kind]
            out.extend(f for f in found if enabled or not f.active)
        state.setdefault("_devices", {})[str(fix.device_id)] = {
            "at": iso(fix.at),
            "lat": fix.lat,
            "lon": fix.lon,
            "source": fix.source,
        }
        return out

    @staticmethod
    def _membership(
        state: dict, slot: str, fix: Fix, inside_now: list, places, options_of: dict | None = None
    ) -> Membership:
        """Areas entered / left with this fix; leaving needs AREA_MARGIN_M beyond the radius."""
        known: dict[str, dict] = state.setdefault(slot, {})
        now_keys = {}
        for place in inside_now:
            now_keys[place.key] = place
        entered, left, inside = [], [], []
        for key, place in now_keys.items():
            options = dict((options_of or {}).get(key) or getattr(place, "options", None) or {})
            if key not in known:
                known[key] = {
                    "since": iso(fix.at),
                    "name": place.name,
                    "kind": getattr(place, "kind", ""),
                }
                if options:
                    known[key]["options"] = options
                entered.append(Area(key, place.name, getattr(place, "kind", ""), fix.at, options))
        for key in list(known):
            if key not in now_keys and not places.within(key, fix.lat, fix.lon, AREA_MARGIN_M):
                entry = known.pop(key)
                left.append(
                    Area(
                        key,
                        entry.get("name", ""),
                        entry.get("kind", ""),
                        parse(entry.get("since")),
                        entry.get("options", {}),
                    )
                )
        for key, entry in known.items():
            inside.append(
                Area(
                    key,
                    entry.get("name", ""),
                    entry.get("kind", ""),
                    parse(entry.get("since")),
                    entry.get("options", {}),
                )
            )
        if not known:
            state.pop(slot, None)
        return Membership(tuple(entered), tuple(left), tuple(inside))

    # -- doing --
    def _apply(self, findings, result: EngineResult, now: dt.datetime) -> None:
        """Raise and auto-close; the new alarms are handed to the notifications once, after
        the commit (one `alarm_notify` call per batch, not one per alarm)."""
        raised: list[int] = []
        try:
            self._apply_findings(findings, result, raised, now)
        finally:
            # Also when a later finding failed: the alarms raised so far stay in the
            # transaction, and if it commits their users must hear of them.
            if raised:
                lifecycle.alarms_notify_on_commit(raised)

    def _apply_findings(self, findings, result: EngineResult, raised: list[int], now) -> None:
        done: set[tuple] = set()
        for info, f, where in findings:
            key = (info.vehicle_id, f.kind, f.target, f.active)
            if key in done:
                continue
            done.add(key)
            if not f.active:
                result.closed += lifecycle.alarms_auto_close(
                    vehicle_id=info.vehicle_id, kind=f.kind, target=f.target, at=f.at
                )
                continue
            enabled, level, _params = self.settings.resolve(
                info.vehicle_id, info.customer_id, f.kind
            )
            if not enabled:
                continue
            if f.kind == "custom":
                level = f.details.get("level") or level
            lat, lon, speed = where if where else (None, None, None)
            alarm = lifecycle.alarm_raise(
                vehicle_id=info.vehicle_id,
                customer_id=info.customer_id,
                kind=f.kind,
                target=f.target,
                target_name=f.target_name,
                level=level,
                at=f.at,
                lat=lat,
                lon=lon,
                speed_kmh=speed,
                message=f.message,
                details=f.details,
                device_id=f.device_id,
                now=now,
                notify=False,
            )
            if alarm is not None:
                result.raised.append(alarm.pk)
                raised.append(alarm.pk)

    def _save_states(self, changed: dict[int, dict], rows: dict[int, VehicleState], now) -> None:
        update, create = [], []
        for vehicle_id, state in changed.items():
            row = rows.get(vehicle_id)
            if row is None:
                create.append(VehicleState(vehicle_id=vehicle_id, state=state, updated_at=now))
            elif row.state != state:
                row.state, row.updated_at = state, now
                update.append(row)
        if create:
            VehicleState.objects.bulk_create(create, ignore_conflicts=True)
            for row in create:
                self._states[row.vehicle_id] = row
        if update:
            _update_states(update)

    def _vehicle_states(self, vehicle_ids: set[int]) -> dict[int, VehicleState]:
        """The batch's vehicles' states: from memory, the missing ones in one query. The rules
        change them in place, so until this batch's transaction commits they count as
        uncommitted; if it never does (rollback), the next batch reads them again."""
        from django.db import transaction

        if self._uncommitted:
            for vehicle_id in self._uncommitted:
                self._states.pop(vehicle_id, None)
            self._uncommitted = set()
        missing = [v for v in vehicle_ids if v not in self._states]
        if missing:
            if len(self._states) + len(missing) > STATES_KEPT:
                self._states.clear()
            for row in VehicleState.objects.filter(vehicle_id__in=missing):
                self._states[row.vehicle_id] = row
        self._uncommitted = set(vehicle_ids)
        transaction.on_commit(self._uncommitted.clear)
        return {v: self._states[v] for v in vehicle_ids if v in self._states}

    # -- loading --
    def _vehicle_infos(self, vehicle_ids: set[int]) -> dict[int, VehicleInfo]:
        """Each vehicle's customer, home province, arming, usual areas and custom alarm types.
        Cached for INFO_TTL seconds and dropped as soon as settings, fences, armings or usual
        areas change (the settings' version, checked every CACHE_SECONDS): three queries per
        batch become none for vehicles seen in the last minute."""
        clock = time.monotonic()
        generation = self.settings.generation
        infos: dict[int, VehicleInfo] = {}
        missing = set()
        for vehicle_id in vehicle_ids:
            cached = self._infos.get(vehicle_id)
            if cached and cached[1] == generation and clock - cached[2] < INFO_TTL:
                infos[vehicle_id] = cached[0]
            else:
                missing.add(vehicle_id)
        if missing:
            loaded = self._load_vehicle_infos(missing)
            if len(self._infos) > INFO_CACHE_MAX:
                self._infos.clear()
            for vehicle_id, info in loaded.items():
                self._infos[vehicle_id] = (info, generation, clock)
            infos.update(loaded)
        return infos

    def _load_vehicle_infos(self, vehicle_ids: set[int]) -> dict[int, VehicleInfo]:
        from vehicles.models import Vehicle

        armings = {
            a["vehicle_id"]: a
            for a in Arming.objects.filter(vehicle_id__in=vehicle_ids).values(
                "vehicle_id", "point", "radius_m"
            )
        }
        usual: dict[int, list] = defaultdict(list)
        for u in UsualArea.objects.filter(vehicle_id__in=vehicle_ids).values(
            "vehicle_id", "point", "radius_m"
        ):
            usual[u["vehicle_id"]].append((u["point"].y, u["point"].x, u["radius_m"]))
        infos = {}
        for v in Vehicle.objects.filter(pk__in=vehicle_ids).values(
            "pk", "customer_id", "borrower_id_number"
        ):
            arming = armings.get(v["pk"])
            infos[v["pk"]] = VehicleInfo(
                vehicle_id=v["pk"],
                customer_id=v["customer_id"],
                home_province=home_province(v["borrower_id_number"]),
                arming=(arming["point"].y, arming["point"].x, arming["radius_m"])
                if arming
                else None,
                usual_areas=tuple(usual.get(v["pk"], ())),
                custom_types=self.settings.custom_types(v["customer_id"]),
            )
        return infos

    def _device_kinds(self, device_ids: set[int]) -> dict[int, str]:
        """Wired or wireless per device (separation rules); cached for INFO_TTL seconds."""
        from devices.models import Device

        clock = time.monotonic()
        kinds_by_id: dict[int, str] = {}
        missing = []
        for device_id in device_ids:
            cached = self._kinds.get(device_id)
            if cached and clock - cached[1] < INFO_TTL:
                kinds_by_id[device_id] = cached[0]
            else:
                missing.append(device_id)
        if missing:
            if len(self._kinds) > INFO_CACHE_MAX:
                self._kinds.clear()
            rows = Device.all_objects.filter(pk__in=missing).values_list("pk", "kind")
            for device_id, kind in rows:
                self._kinds[device_id] = (kind, clock)
                kinds_by_id[device_id] = kind
        return kinds_by_id


def _update_states(rows: list[VehicleState]) -> None:
    """One prepared UPDATE run for every changed state (executemany). `bulk_update` builds a
    CASE expression per row in Python and cost ~1.5 ms per vehicle (bench/engine.py), more than
    everything else the engine does per fix."""
    from django.db import connection

    meta = VehicleState._meta
    state_field, at_field = meta.get_field("state"), meta.get_field("updated_at")
    pk = meta.pk.column
    quote = connection.ops.quote_name
    rows = sorted(rows, key=lambda r: r.vehicle_id)  # the scans lock these rows in id order too
    if connection.vendor == "postgresql":
        # One statement for the batch, its rows as one JSON document: executemany is a round
        # trip and a parameter conversion per row (a fifth of the writer's time at 500
        # positions/s, py-spy), and a text[] of JSON states made psycopg escape every quote of
        # every state in Python (re.sub, ~28 ms per batch of 500, bench/engine.py --profile).
        table = quote(meta.db_table)
        sql = (
            f"UPDATE {table} SET {quote(state_field.column)} = v.state, "  # noqa: S608
            f"{quote(at_field.column)} = v.at "
            f"FROM jsonb_to_recordset(%s::jsonb) AS v(id bigint, state jsonb, at timestamptz) "
            f"WHERE {table}.{quote(pk)} = v.id"
        )
        document = json.dumps(
            [
                {"id": row.vehicle_id, "state": row.state, "at": row.updated_at.isoformat()}
                for row in rows
            ],
            cls=state_field.encoder,
        )
        with connection.cursor() as cursor:
            cursor.execute(sql, [document])
        return
    # Only the model's own table and column names, quoted, go into the text; values are bound.
    sql = (
        f"UPDATE {quote(meta.db_table)} SET {quote(state_field.column)} = %s, "  # noqa: S608
        f"{quote(at_field.column)} = %s WHERE {quote(pk)} = %s"
    )
    params = [
        (
            state_field.get_db_prep_save(row.state, connection),
            at_field.get_db_prep_save(row.updated_at, connection),
            row.vehicle_id,
        )
        for row in rows
    ]
    with connection.cursor() as cursor:
        cursor.executemany(sql, params)


SCAN_CHUNK = 500


@dataclass
class ScanResult:
    vehicles: int = 0  # vehicles this run claimed and judged
    raised: list[int] = field(default_factory=list)
    closed: int = 0
    seconds: float = 0.0


def scan(engine: Engine, *, now: dt.datetime | None = None) -> ScanResult:
    """Absence and time rules over every vehicle with a mounted device (alarms.rules.scan).

    Claim-once and idempotent: each vehicle's `VehicleState.scanned_at` is moved to this run's
    start under a row lock (skip-locked on PostgreSQL), so two workers running the same
    schedule judge each vehicle once, and a second run changes nothing that is still true (open
    alarms are repeats, not new alarms)."""
    from django.db import connection, transaction
    from django.db.models import Q

    from alarms.rules.scan import SCANS, DeviceSnapshot, ScanContext
    from devices.models import Device
    from vehicles.models import DeviceBinding

    started = time.perf_counter()
    now = now or timezone.now()
    result = ScanResult()
    engine.settings.refresh()
    mounted = (
        DeviceBinding.objects.filter(unbound_at__isnull=True, vehicle__deleted_at__isnull=True)
        .values_list("vehicle_id", flat=True)
        .distinct()
        .order_by("vehicle_id")
    )
    vehicle_ids = list(mounted)
    for start in range(0, len(vehicle_ids), SCAN_CHUNK):
        chunk = vehicle_ids[start : start + SCAN_CHUNK]
        VehicleState.objects.bulk_create(
            [VehicleState(vehicle_id=v, state={}, updated_at=now) for v in chunk],
            ignore_conflicts=True,
        )
        with transaction.atomic():
            lock = VehicleState.objects.filter(vehicle_id__in=chunk).filter(
                Q(scanned_at__isnull=True) | Q(scanned_at__lt=now)
            )
            if connection.features.has_select_for_update_skip_locked:
                lock = lock.select_for_update(skip_locked=True)
            claimed = {row.vehicle_id: row for row in lock}
            VehicleState.objects.filter(vehicle_id__in=claimed).update(scanned_at=now)
            if not claimed:
                continue
            infos = engine._vehicle_infos(set(claimed))
            devices: dict[int, list[DeviceSnapshot]] = defaultdict(list)
            rows = (
                DeviceBinding.objects.filter(vehicle_id__in=claimed, unbound_at__isnull=True)
                .select_related("device")
                .only(
                    "vehicle_id",
                    *(
                        f"device__{f}"
                        for f in (
                            "kind",
                            "work_mode",
                            "work_params",
                            "last_seen_at",
                            "last_fix_at",
                            "last_position",
                        )
                    ),
                )
            )
            for b in rows:
                d: Device = b.device
                point = d.last_position
                devices[b.vehicle_id].append(
                    DeviceSnapshot(
                        d.pk,
                        d.kind,
                        d.work_mode,
                        d.work_params or {},
                        d.last_seen_at,
                        d.last_fix_at,
                        point.y if point else None,
                        point.x if point else None,
                    )
                )
            findings = []
            for vehicle_id, row in claimed.items():
                info = infos.get(vehicle_id)
                if info is None:
                    continue
                result.vehicles += 1

                def params(kind: str, _info=info):
                    return engine.settings.resolve(_info.vehicle_id, _info.customer_id, kind)[2]

                ctx = ScanContext(
                    info,
                    now,
                    tuple(devices.get(vehicle_id, ())),
                    row.state,
                    params,
                    local=lambda t: t.astimezone(engine.tz),
                )
                for check in SCANS:
                    try:
                        found = check(ctx)
                    except Exception:
                        logger.exception("scan %s failed on vehicle %s", check.__name__, vehicle_id)
                        continue
                    findings.extend((info, f, None) for f in found)
            applied = EngineResult()
            engine._apply(findings, applied, now)
            result.raised += applied.raised
            result.closed += applied.closed
    result.seconds = time.perf_counter() - started
    return result


def rule_params(kind: str) -> Any:
    """The registry's Params class for `kind` (for settings forms and validation)."""
    return RULES[kind].Params
