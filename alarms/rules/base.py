"""What every alarm rule sees and returns. Pure: no Django, no database, no clock.

A rule is a class with `kind`, a `Params` dataclass (its defaults are the platform defaults that
customers and vehicles override through `AlarmSetting.params`) and `evaluate(ctx) -> [Finding]`.
Deciding is the rule's job; raising, de-duplicating, auto-closing and notifying belong to
`alarms.services.lifecycle` (called by the engine).

A `Finding` with `active=True` says "the condition holds (since `at`)"; `active=False` says "the
condition ended at `at`" (the alarm auto-closes if its kind can end). Rules keep what they must
remember between fixes in `ctx.state` (a JSON-able dict per rule, persisted by the engine).
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, ClassVar

EARTH_RADIUS_M = 6_371_008.8


def distance_m(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    """Great-circle distance (haversine), metres."""
    p1, p2 = math.radians(lat1), math.radians(lat2)
    dp, dl = p2 - p1, math.radians(lon2 - lon1)
    a = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 2 * EARTH_RADIUS_M * math.asin(min(1.0, math.sqrt(a)))


def iso(t: dt.datetime) -> str:
    return t.isoformat()


def parse(value: str | None) -> dt.datetime | None:
    return dt.datetime.fromisoformat(value) if value else None


@dataclass(frozen=True)
class Fix:
    """One stored, realtime, valid fix of one of the vehicle's devices."""

    device_id: int
    at: dt.datetime
    lat: float
    lon: float
    speed_kmh: float | None = None
    acc: bool | None = None
    source: str = "gps"  # gps | lbs | wifi
    device_kind: str = "wired"  # wired | wireless
    flags: tuple[str, ...] = ()

    @property
    def moving(self) -> bool:
        return (self.speed_kmh or 0.0) >= 5.0

    @property
    def accuracy_m(self) -> float:
        """Rough error radius: cell-tower fixes are off by hundreds of metres."""
        return {"lbs": 1000.0, "wifi": 100.0}.get(self.source, 20.0)


@dataclass(frozen=True)
class Area:
    """A place the vehicle is in: risk point, annotation or fence."""

    key: str  # "riskpoint:12", "annotation:5", "fence:3"
    name: str
    kind: str = ""  # risk point kind
    since: dt.datetime | None = None  # entered at
    options: dict[str, Any] = field(default_factory=dict)  # fence flags, parking minutes


@dataclass(frozen=True)
class Membership:
    """Areas entered and left with this fix (hysteresis applied by the engine), and all areas the
    vehicle is inside now with the time it entered each."""

    entered: tuple[Area, ...] = ()
    left: tuple[Area, ...] = ()
    inside: tuple[Area, ...] = ()


@dataclass(frozen=True)
class VehicleInfo:
    vehicle_id: int
    customer_id: int
    home_province: str | None = None  # GB/T 2260 two-digit code
    arming: tuple[float, float, int] | None = None  # lat, lon, radius_m
    usual_areas: tuple[tuple[float, float, int], ...] = ()
    custom_types: tuple[dict[str, Any], ...] = ()


@dataclass
class Context:
    vehicle: VehicleInfo
    fix: Fix
    state: dict[str, Any]  # this rule's memory, JSON-able
    params: Any
    areas: Membership = Membership()
    fences: Membership = Membership()
    devices: dict[int, Fix] = field(default_factory=dict)  # each device's latest fix
    province_at: Callable[[float, float], str | None] = lambda lat, lon: None
    province_distance_m: Callable[[str, float, float], float] = lambda code, lat, lon: 0.0
    local_time: Callable[[dt.datetime], dt.time] = lambda t: t.time()


@dataclass
class Finding:
    kind: str
    active: bool
    at: dt.datetime
    target: str = ""
    target_name: str = ""
    message: str = ""
    details: dict[str, Any] = field(default_factory=dict)
    device_id: int | None = None


@dataclass(frozen=True)
class NoParams:
    pass


def param(
    default: Any,
    *,
    low: float | None = None,
    high: float | None = None,
    choices: tuple[str, ...] | None = None,
    unit: str = "",
) -> Any:
    """A `Params` field with what a customer may set it to: numbers within [low, high] (both
    inclusive), text or list items among `choices`. `alarms.rules.params_for` enforces it;
    forms and the API show it (`param_specs`)."""
    meta = {"low": low, "high": high, "choices": choices, "unit": unit}
    return field(default=default, metadata=meta)


class ParamError(ValueError):
    """A bad `AlarmSetting.params` entry. `problem` is one of "no_params", "unknown",
    "type", "range", "choice"; `key`, `expected` (a type name), `low` / `high`, `choices`
    and `known` (the rule's parameter names) say what was wrong, so the caller can word a
    translated message; `str()` is an English one for logs."""

    def __init__(
        self,
        kind: str,
        key: str | None,
        problem: str,
        *,
        value: Any = None,
        expected: str = "",
        low: float | None = None,
        high: float | None = None,
        choices: tuple[str, ...] = (),
        known: tuple[str, ...] = (),
    ) -> None:
        self.kind, self.key, self.problem, self.value = kind, key, problem, value
        self.expected, self.low, self.high = expected, low, high
        self.choices, self.known = choices, known
        super().__init__(self._english())

    def _english(self) -> str:
        where = f"{self.kind}.{self.key}" if self.key else self.kind
        if self.problem == "no_params":
            return f"{self.kind} takes no parameters"
        if self.problem == "unknown":
            return f"{self.kind}: unknown parameter {self.key!r} (known: {', '.join(self.known)})"
        if self.problem == "range":
            return f"{where}: {self.value!r} is out of range [{self.low}, {self.high}]"
        if self.problem == "choice":
            return f"{where}: {self.value!r} is not one of {', '.join(self.choices)}"
        return f"{where}: expected {self.expected}"


class Rule:
    kind: ClassVar[str]
    Params: ClassVar[type] = NoParams
    # "position": evaluated on every fix in the gateway batch; "device": raised from the device's
    # own alarm codes; "scan": only by the scheduled scans (absence / time passing).
    trigger: ClassVar[str] = "position"

    def evaluate(self, ctx: Context) -> list[Finding]:  # pragma: no cover - abstract
        raise NotImplementedError
