"""Position hygiene (FEATURES.md T5): pure functions, no Django.

`check(pos, previous, now)` decides for one decoded fix against the device's last stored fix:
drop it (an exact duplicate: the device resent a frame whose ack it missed), reject it (a fix time
too far in the future: a device clock or decoder gone wrong), or keep it with flags. Kept fixes
keep their raw values; the flags tell the readers (tracks, alarm rules, mileage) what to distrust:

- ``invalid_fix``   the device itself says the fix is not valid (no GPS lock)
- ``lbs``           located by cell towers (hundreds of metres of error), not satellites
- ``implied_speed`` reaching it from the previous fix needs more than `max_implied_speed_kmh`
- ``drift``         parked (ACC off or near-zero speed) and wandering within `drift_radius_m` of
                    the parked spot: the car did not move, the GPS did; "last position" stays put
"""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass

from gateway.protocols.messages import Position

FLAG_INVALID = "invalid_fix"
FLAG_LBS = "lbs"
FLAG_IMPLIED_SPEED = "implied_speed"
FLAG_DRIFT = "drift"

REASON_DUPLICATE = "duplicate"
REASON_FUTURE = "future"

EARTH_RADIUS_M = 6_371_008.8  # mean radius (IUGG)


@dataclass(frozen=True)
class HygieneConfig:
    future_tolerance: dt.timedelta = dt.timedelta(minutes=10)
    max_implied_speed_kmh: float = 300.0
    # Below this distance an implied speed is GPS noise over a short interval, not a jump.
    implied_speed_min_distance_m: float = 100.0
    drift_radius_m: float = 50.0
    parked_speed_kmh: float = 5.0


DEFAULT_CONFIG = HygieneConfig()


@dataclass(frozen=True)
class LastFix:
    """The device's last stored fix that hygiene compares against."""

    fix_time: dt.datetime
    lat: float
    lon: float
    acc: bool | None = None
    speed_kmh: float | None = None


@dataclass(frozen=True)
class Verdict:
    keep: bool
    flags: tuple[str, ...] = ()
    reason: str | None = None  # why it was not kept


def haversine_m(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    """Great-circle distance in metres between two WGS-84 points (spherical earth: <0.5% error,
    plenty for speed and drift checks)."""
    p1, p2 = math.radians(lat1), math.radians(lat2)
    dp = p2 - p1
    dl = math.radians(lon2 - lon1)
    a = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 2 * EARTH_RADIUS_M * math.asin(min(1.0, math.sqrt(a)))


def is_parked(pos: Position, config: HygieneConfig = DEFAULT_CONFIG) -> bool:
    return pos.acc is False or (
        pos.speed_kmh is not None and pos.speed_kmh < config.parked_speed_kmh
    )


def check(
    pos: Position,
    previous: LastFix | None,
    now: dt.datetime,
    config: HygieneConfig = DEFAULT_CONFIG,
) -> Verdict:
    if pos.fix_time > now + config.future_tolerance:
        return Verdict(keep=False, reason=REASON_FUTURE)
    if (
        previous is not None
        and pos.fix_time == previous.fix_time
        and pos.lat == previous.lat
        and pos.lon == previous.lon
    ):
        return Verdict(keep=False, reason=REASON_DUPLICATE)

    flags: list[str] = []
    if not pos.valid:
        flags.append(FLAG_INVALID)
    if pos.source == "lbs":
        flags.append(FLAG_LBS)
    # Motion checks need two satellite fixes in time order: a late blind-area fix is older than
    # the last stored one, and comparing it with that one says nothing about its own motion.
    if (
        previous is not None
        and pos.valid
        and pos.source == "gps"
        and pos.fix_time >= previous.fix_time
    ):
        distance = haversine_m(previous.lat, previous.lon, pos.lat, pos.lon)
        seconds = (pos.fix_time - previous.fix_time).total_seconds()
        if distance >= config.implied_speed_min_distance_m and (
            seconds <= 0 or distance / seconds * 3.6 > config.max_implied_speed_kmh
        ):
            flags.append(FLAG_IMPLIED_SPEED)
        elif 0 < distance <= config.drift_radius_m and is_parked(pos, config):
            flags.append(FLAG_DRIFT)
    return Verdict(keep=True, flags=tuple(flags))
