"""Rules evaluated on every realtime fix, inline in the gateway's batch (pure)."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from alarms.rules.base import Context, Finding, Rule, distance_m, iso, param, parse

# `RiskPoint.Kind` values (the rules import no Django; a test keeps the two equal).
RISK_POINT_KINDS = (
    "registration_office",
    "second_pledge",
    "repair_shop",
    "used_car_market",
    "custom",
)
# GB/T 2260 provincial-level codes (`alarms.regions` has their polygons; a test keeps them equal).
PROVINCE_CODES = (
    *("11", "12", "13", "14", "15", "21", "22", "23"),
    *("31", "32", "33", "34", "35", "36", "37"),
    *("41", "42", "43", "44", "45", "46", "50", "51", "52", "53", "54"),
    *("61", "62", "63", "64", "65", "71", "81", "82"),
)


# -- overspeed -----------------------------------------------------------------------------------
@dataclass(frozen=True)
class OverspeedParams:
    limit_kmh: float = param(120.0, low=10, high=300, unit="km/h")
    min_duration_s: int = param(10, low=0, high=3600, unit="s")
    # back under limit - hysteresis ends it
    hysteresis_kmh: float = param(5.0, low=0, high=50, unit="km/h")


class Overspeed(Rule):
    kind = "overspeed"
    Params = OverspeedParams

    def evaluate(self, ctx: Context) -> list[Finding]:
        p, fix, st = ctx.params, ctx.fix, ctx.state
        speed = fix.speed_kmh
        if speed is None:
            return []
        since = parse(st.get("since"))
        if speed > p.limit_kmh:
            if since is None:
                st["since"] = iso(fix.at)
                since = fix.at
            if (fix.at - since).total_seconds() >= p.min_duration_s:
                st["max"] = max(st.get("max", 0.0), speed)
                return [
                    Finding(
                        self.kind,
                        True,
                        since,
                        message=f"{speed:.0f} km/h > {p.limit_kmh:.0f} km/h",
                        details={"speed_kmh": speed, "limit_kmh": p.limit_kmh, "max": st["max"]},
                    )
                ]
            return []
        if since is not None and speed <= p.limit_kmh - p.hysteresis_kmh:
            st.clear()
            return [Finding(self.kind, False, fix.at)]
        return []


# -- sensitive areas: risk points and annotations --------------------------------------------------
@dataclass(frozen=True)
class AreaParams:
    # empty: every kind (and every annotation)
    risk_point_kinds: tuple[str, ...] = param((), choices=RISK_POINT_KINDS)


def _area_selected(params, area) -> bool:
    return not params.risk_point_kinds or (
        area.key.startswith("riskpoint:") and area.kind in params.risk_point_kinds
    )


class AreaEnter(Rule):
    kind = "area_enter"
    Params = AreaParams

    def evaluate(self, ctx: Context) -> list[Finding]:
        return [
            Finding(self.kind, True, ctx.fix.at, a.key, a.name, details={"area_kind": a.kind})
            for a in ctx.areas.entered
            if _area_selected(ctx.params, a)
        ]


class AreaLeave(Rule):
    kind = "area_leave"
    Params = AreaParams

    def evaluate(self, ctx: Context) -> list[Finding]:
        return [
            Finding(self.kind, True, ctx.fix.at, a.key, a.name, details={"area_kind": a.kind})
            for a in ctx.areas.left
            if _area_selected(ctx.params, a)
        ]


@dataclass(frozen=True)
class AreaStayParams:
    stay_minutes: int = param(30, low=1, high=7 * 24 * 60, unit="min")
    risk_point_kinds: tuple[str, ...] = param((), choices=RISK_POINT_KINDS)


class AreaStay(Rule):
    kind = "area_stay"
    Params = AreaStayParams

    def evaluate(self, ctx: Context) -> list[Finding]:
        limit = dt.timedelta(minutes=ctx.params.stay_minutes)
        out = [
            Finding(self.kind, True, a.since, a.key, a.name, details={"minutes": _minutes(ctx, a)})
            for a in ctx.areas.inside
            if a.since and ctx.fix.at - a.since >= limit and _area_selected(ctx.params, a)
        ]
        out += [Finding(self.kind, False, ctx.fix.at, a.key, a.name) for a in ctx.areas.left]
        return out


def _minutes(ctx: Context, area) -> int:
    return int((ctx.fix.at - area.since).total_seconds() // 60)


# -- leaving the home province ---------------------------------------------------------------
@dataclass(frozen=True)
class ProvinceParams:
    # empty: the borrower's ID number's province
    home_province: str = param("", choices=PROVINCE_CODES)
    # border hysteresis (and the polygons' simplification error)
    margin_m: float = param(2000.0, low=0, high=50_000, unit="m")


class ProvinceLeave(Rule):
    kind = "province_leave"
    Params = ProvinceParams

    def evaluate(self, ctx: Context) -> list[Finding]:
        home = ctx.params.home_province or ctx.vehicle.home_province
        if not home:
            return []
        fix, st = ctx.fix, ctx.state
        here = ctx.province_at(fix.lat, fix.lon)
        outside = st.get("outside", False)
        if here == home:
            if outside:
                st.clear()
                return [Finding(self.kind, False, fix.at, f"province:{home}")]
            return []
        if here is None and not outside:
            return []  # sea, border noise or a gap in the polygons: no evidence
        if not outside and ctx.province_distance_m(home, fix.lat, fix.lon) <= ctx.params.margin_m:
            return []
        if not outside:
            st["outside"], st["since"] = True, iso(fix.at)
        return [
            Finding(
                self.kind,
                True,
                parse(st["since"]) or fix.at,
                f"province:{home}",
                details={"home": home, "now_in": here},
            )
        ]


# -- parking ---------------------------------------------------------------------------------------
@dataclass(frozen=True)
class ParkingParams:
    limit_hours: float = param(24.0, low=0.1, high=90 * 24, unit="h")


class ParkingOvertime(Rule):
    """Tracks where and since when the car is parked; raises when a fix shows it still parked
    past the limit (the scan raises it when no fix comes at all) and ends when it drives off."""

    kind = "parking_overtime"
    Params = ParkingParams

    def evaluate(self, ctx: Context) -> list[Finding]:
        fix, st = ctx.fix, ctx.state
        if fix.moving and fix.acc is not False:
            if st.get("since"):
                st.clear()
                return [Finding(self.kind, False, fix.at)]
            return []
        if not st.get("since"):
            st.update(since=iso(fix.at), lat=fix.lat, lon=fix.lon)
            return []
        since = parse(st["since"])
        if since and fix.at - since >= dt.timedelta(hours=ctx.params.limit_hours):
            return [Finding(self.kind, True, since, details={"hours": ctx.params.limit_hours})]
        return []


# -- device separation --------------------------------------------------------------------------
@dataclass(frozen=True)
class SeparationParams:
    distance_m: float = param(1000.0, low=100, high=100_000, unit="m")
    # both fixes must be this fresh relative to each other
    window_minutes: int = param(30, low=1, high=24 * 60, unit="min")
    # ends once back under distance * end_ratio (hysteresis)
    end_ratio: float = param(0.7, low=0.1, high=1.0)


class Separation(Rule):
    kind = "separation"
    Params = SeparationParams

    def evaluate(self, ctx: Context) -> list[Finding]:
        p, fix, st = ctx.params, ctx.fix, ctx.state
        window = dt.timedelta(minutes=p.window_minutes)
        worst = None
        for other in ctx.devices.values():
            if other.device_id == fix.device_id or abs(fix.at - other.at) > window:
                continue
            d = distance_m(fix.lat, fix.lon, other.lat, other.lon)
            margin = fix.accuracy_m + other.accuracy_m
            if worst is None or d - margin > worst[0] - worst[1]:
                worst = (d, margin, other)
        if worst is None:
            return []
        d, margin, other = worst
        if d - margin > p.distance_m:
            if not st.get("since"):
                st["since"] = iso(fix.at)
            return [
                Finding(
                    self.kind,
                    True,
                    parse(st["since"]) or fix.at,
                    message=f"{d:.0f} m",
                    details={"distance_m": round(d), "devices": [fix.device_id, other.device_id]},
                    device_id=fix.device_id,
                )
            ]
        if st.get("since") and d < p.distance_m * p.end_ratio:
            st.clear()
            return [Finding(self.kind, False, fix.at)]
        return []


# -- usual area --------------------------------------------------------------------------------
@dataclass(frozen=True)
class UsualAreaParams:
    days: int = param(3, low=1, high=365, unit="d")


class UsualAreaAbsent(Rule):
    """Remembers when the vehicle was last inside one of its usual areas (the scan raises)."""

    kind = "usual_area_absent"
    Params = UsualAreaParams

    def evaluate(self, ctx: Context) -> list[Finding]:
        fix = ctx.fix
        if not ctx.vehicle.usual_areas:
            return []
        inside = any(
            distance_m(fix.lat, fix.lon, lat, lon) <= radius
            for lat, lon, radius in ctx.vehicle.usual_areas
        )
        if not inside:
            ctx.state.setdefault("last_inside", iso(fix.at))  # the clock starts at the first fix
            return []
        ctx.state["last_inside"] = iso(fix.at)
        return [Finding(self.kind, False, fix.at)]


# -- fatigue driving ---------------------------------------------------------------------------
@dataclass(frozen=True)
class FatigueParams:
    max_drive_hours: float = param(4.0, low=0.1, high=24, unit="h")
    rest_minutes: int = param(20, low=1, high=24 * 60, unit="min")


class Fatigue(Rule):
    kind = "fatigue"
    Params = FatigueParams

    def evaluate(self, ctx: Context) -> list[Finding]:
        p, fix, st = ctx.params, ctx.fix, ctx.state
        rest = dt.timedelta(minutes=p.rest_minutes)
        if fix.moving:
            rest_since = parse(st.pop("rest_since", None))
            start = parse(st.get("drive_since"))
            if start is None or (rest_since is not None and fix.at - rest_since >= rest):
                st["drive_since"] = iso(fix.at)
                start = fix.at
            if fix.at - start >= dt.timedelta(hours=p.max_drive_hours):
                hours = (fix.at - start).total_seconds() / 3600
                return [Finding(self.kind, True, start, details={"hours": round(hours, 1)})]
            return []
        if "drive_since" in st:
            st.setdefault("rest_since", iso(fix.at))
            if fix.at - (parse(st["rest_since"]) or fix.at) >= rest:
                st.clear()
                return [Finding(self.kind, False, fix.at)]
        return []


# -- in-place arming ----------------------------------------------------------------------------
class ArmedMove(Rule):
    kind = "armed_move"

    def evaluate(self, ctx: Context) -> list[Finding]:
        arming, fix = ctx.vehicle.arming, ctx.fix
        if arming is None:
            return []
        lat, lon, radius = arming
        d = distance_m(fix.lat, fix.lon, lat, lon)
        if d - fix.accuracy_m <= radius:
            return []
        return [
            Finding(self.kind, True, fix.at, message=f"{d:.0f} m", details={"distance_m": round(d)})
        ]


# -- geofences (flags per fence) -------------------------------------------------------------------
class FenceEnter(Rule):
    kind = "fence_enter"

    def evaluate(self, ctx: Context) -> list[Finding]:
        return [
            Finding(self.kind, True, ctx.fix.at, a.key, a.name)
            for a in ctx.fences.entered
            if a.options.get("enter", True)
        ]


class FenceLeave(Rule):
    kind = "fence_leave"

    def evaluate(self, ctx: Context) -> list[Finding]:
        return [
            Finding(self.kind, True, ctx.fix.at, a.key, a.name)
            for a in ctx.fences.left
            if a.options.get("leave", True)
        ]


class FenceInside(Rule):
    kind = "fence_inside"

    def evaluate(self, ctx: Context) -> list[Finding]:
        out = [
            Finding(self.kind, True, a.since or ctx.fix.at, a.key, a.name)
            for a in ctx.fences.inside
            if a.options.get("inside")
        ]
        out += [Finding(self.kind, False, ctx.fix.at, a.key, a.name) for a in ctx.fences.left]
        return out


class FenceParking(Rule):
    kind = "fence_parking"

    def evaluate(self, ctx: Context) -> list[Finding]:
        fix, st = ctx.fix, ctx.state
        out: list[Finding] = []
        for a in ctx.fences.left:
            if st.pop(a.key, None):
                out.append(Finding(self.kind, False, fix.at, a.key, a.name))
        for a in ctx.fences.inside:
            if not a.options.get("parking"):
                continue
            if fix.moving:
                if st.pop(a.key, None):
                    out.append(Finding(self.kind, False, fix.at, a.key, a.name))
                continue
            since = parse(st.setdefault(a.key, iso(fix.at))) or fix.at
            if fix.at - since >= dt.timedelta(minutes=a.options.get("parking_minutes", 60)):
                out.append(Finding(self.kind, True, since, a.key, a.name))
        return out


# -- custom alarm types (R4) ----------------------------------------------------------------------
class Custom(Rule):
    """Each of the customer's custom types: every set condition true, held for its duration."""

    kind = "custom"

    def evaluate(self, ctx: Context) -> list[Finding]:
        fix, st = ctx.fix, ctx.state
        inside = {a.key for a in ctx.fences.inside} | {a.key for a in ctx.areas.inside}
        out: list[Finding] = []
        for ct in ctx.vehicle.custom_types:
            key = f"custom:{ct['id']}"
            if _custom_holds(ct, fix, inside, ctx.local_time(fix.at)):
                since = parse(st.setdefault(key, iso(fix.at))) or fix.at
                if (fix.at - since).total_seconds() >= ct.get("duration_s", 0):
                    out.append(
                        Finding(
                            self.kind,
                            True,
                            since,
                            key,
                            ct["name"],
                            details={"level": ct.get("level")},
                        )
                    )
            elif st.pop(key, None):
                out.append(Finding(self.kind, False, fix.at, key, ct["name"]))
        return out


def _custom_holds(ct: dict, fix, inside: set[str], local: dt.time) -> bool:
    speed = fix.speed_kmh or 0.0
    if ct.get("min_speed_kmh") is not None and speed < ct["min_speed_kmh"]:
        return False
    if ct.get("max_speed_kmh") is not None and speed > ct["max_speed_kmh"]:
        return False
    if ct.get("acc") is not None and fix.acc is not ct["acc"]:
        return False
    if ct.get("area") and ct["area"] not in inside:
        return False
    start, end = ct.get("time_from"), ct.get("time_to")
    if start and end:
        a, b = dt.time.fromisoformat(start), dt.time.fromisoformat(end)
        within = a <= local < b if a <= b else (local >= a or local < b)  # over midnight
        if not within:
            return False
    return True
