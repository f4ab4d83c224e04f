"""Rules that fire on absence or time passing (DESIGN.md): evaluated by the scheduled scans over
the vehicles' state, not by fixes. Pure."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from alarms.rules.base import Finding, Rule, VehicleInfo, distance_m, param, parse


@dataclass(frozen=True)
class DeviceSnapshot:
    device_id: int
    kind: str  # wired | wireless
    work_mode: str
    work_params: dict[str, Any]
    last_seen_at: dt.datetime | None
    last_fix_at: dt.datetime | None
    lat: float | None
    lon: float | None


@dataclass
class ScanContext:
    vehicle: VehicleInfo
    now: dt.datetime
    devices: tuple[DeviceSnapshot, ...]
    state: dict[str, Any]  # the vehicle's whole engine state (read-only here)
    params: Callable[[str], Any]  # kind -> resolved Params
    local: Callable[[dt.datetime], dt.datetime] = lambda t: t  # to the customer's local time
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class OfflineParams:
    realtime_minutes: int = param(10, low=1, high=24 * 60, unit="min")
    alarm_clock_grace_minutes: int = param(30, low=0, high=24 * 60, unit="min")
    deep_sleep_grace_hours: int = param(2, low=0, high=72, unit="h")
    # vibration-triggered devices report at least daily
    vibration_hours: int = param(24, low=1, high=7 * 24, unit="h")


class Offline(Rule):
    kind = "offline"
    Params = OfflineParams
    trigger = "scan"


def device_due(d: DeviceSnapshot, p: OfflineParams, local: Callable) -> dt.datetime | None:
    """When the device must have reported again, by its work mode (None: never seen)."""
    seen = d.last_seen_at
    if seen is None:
        return None
    if d.work_mode == "alarm_clock":
        times = sorted(d.work_params.get("times") or ["08:00"])
        seen_local = local(seen)
        for days in range(0, 2):
            day = (seen_local + dt.timedelta(days=days)).date()
            for hhmm in times:
                h, m = map(int, hhmm.split(":"))
                slot = seen_local.replace(
                    year=day.year,
                    month=day.month,
                    day=day.day,
                    hour=h,
                    minute=m,
                    second=0,
                    microsecond=0,
                )
                if slot > seen_local + dt.timedelta(minutes=1):
                    return slot.astimezone(dt.UTC) + dt.timedelta(
                        minutes=p.alarm_clock_grace_minutes
                    )
        return seen + dt.timedelta(days=1, minutes=p.alarm_clock_grace_minutes)  # pragma: no cover
    if d.work_mode == "deep_sleep":
        days = int(d.work_params.get("days") or 1)
        return seen + dt.timedelta(days=days, hours=p.deep_sleep_grace_hours)
    if d.work_mode == "vibration":
        return seen + dt.timedelta(hours=p.vibration_hours)
    return seen + dt.timedelta(minutes=p.realtime_minutes)


def scan_offline(ctx: ScanContext) -> list[Finding]:
    """A vehicle is offline when every one of its devices is overdue for its work mode."""
    if not ctx.devices:
        return []
    p = ctx.params("offline")
    dues = [device_due(d, p, ctx.local) for d in ctx.devices]
    if any(due is None for due in dues):
        return []  # a device never reported yet: nothing to compare with
    latest = max(due for due in dues if due is not None)
    if ctx.now > latest:
        seen = max(d.last_seen_at for d in ctx.devices if d.last_seen_at)
        return [Finding("offline", True, latest, details={"last_seen": seen.isoformat()})]
    return [Finding("offline", False, ctx.now)]


def scan_parking(ctx: ScanContext) -> list[Finding]:
    st = ctx.state.get("parking_overtime") or {}
    since = parse(st.get("since"))
    if since is None:
        return []
    limit = dt.timedelta(hours=ctx.params("parking_overtime").limit_hours)
    if ctx.now - since >= limit:
        return [Finding("parking_overtime", True, since, details={"since": since.isoformat()})]
    return []


def scan_usual_area(ctx: ScanContext) -> list[Finding]:
    if not ctx.vehicle.usual_areas:
        return []
    last = parse((ctx.state.get("usual_area_absent") or {}).get("last_inside"))
    if last is None:
        return []
    days = ctx.params("usual_area_absent").days
    if ctx.now - last >= dt.timedelta(days=days):
        return [Finding("usual_area_absent", True, last, details={"last_inside": last.isoformat()})]
    return []


def scan_area_stay(ctx: ScanContext) -> list[Finding]:
    """Still inside a sensitive area with no new fix (the device went quiet there)."""
    limit = dt.timedelta(minutes=ctx.params("area_stay").stay_minutes)
    out = []
    for key, entry in (ctx.state.get("_areas") or {}).items():
        since = parse(entry.get("since"))
        if since and ctx.now - since >= limit:
            out.append(Finding("area_stay", True, since, key, entry.get("name", "")))
    return out


@dataclass(frozen=True)
class SilenceParams:
    silent_minutes: int = 30


def scan_separation_silence(ctx: ScanContext) -> list[Finding]:
    """The wired device went silent (cut) while a wireless one reports from somewhere else."""
    p = ctx.params("separation")
    silent = dt.timedelta(minutes=30)
    wired = [d for d in ctx.devices if d.kind == "wired" and d.last_seen_at]
    wireless = [
        d for d in ctx.devices if d.kind == "wireless" and d.last_fix_at and d.lat is not None
    ]
    for w in wired:
        if ctx.now - w.last_seen_at < silent or w.lat is None:
            continue
        for x in wireless:
            if x.last_fix_at <= w.last_seen_at:
                continue
            d = distance_m(w.lat, w.lon, x.lat, x.lon)
            if d > p.distance_m:
                return [
                    Finding(
                        "separation",
                        True,
                        w.last_seen_at,
                        message=f"{d:.0f} m",
                        details={
                            "distance_m": round(d),
                            "wired_silent_since": w.last_seen_at.isoformat(),
                        },
                        device_id=w.device_id,
                    )
                ]
    return []


SCANS = (scan_offline, scan_parking, scan_usual_area, scan_area_stay, scan_separation_silence)
