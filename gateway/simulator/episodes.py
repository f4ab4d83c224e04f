"""Scripted demo episodes: a few simulated cars follow a script instead of a random route, so that
`make demo` shows every platform alarm kind (and the tamper / power-cut device alarms) within
minutes of starting. Pure: no Django, no I/O, no clock.

An `Episode` is a loop of legs (drive in a straight line to a point at a speed, or park for a
while) starting at `start`, plus what its devices do besides: a second device left behind
(separation), silent windows (offline), alarm codes sent at given times (device alarms).
`ScriptedRoute` plays an episode with the interface of `routes.Route` (`position()`,
`step(dt)`), so the runner drives it like any other car.

The places the episodes visit (the second-pledge spot, the fence, the armed spot, the usual area
the car has left, the Shaanxi-Henan border on the G30) are constants here: `alarms.demo` creates
the matching risk point, fence, arming and per-vehicle alarm settings for the cars `plan()`
picks, from the same device list the simulator gets, so both sides agree on who does what.

Times are simulated seconds from the start of the run; with the demo's 10 s interval and no
speed-up the first alarm of each episode comes within 1-7 minutes (`first_alarm_s`).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final, Protocol

from gateway.simulator.routes import CENTRE, Fix, distance_m

__all__ = [
    "EPISODES",
    "Cast",
    "Episode",
    "Leg",
    "ScriptedRoute",
    "drive",
    "offset",
    "park",
    "plan",
]

_M_PER_DEG_LAT: Final = 111_320.0


def offset(east_m: float, north_m: float, origin: tuple[float, float] = CENTRE) -> tuple:
    """The point `east_m` / `north_m` metres from `origin` (local flat approximation)."""
    lat0, lon0 = origin
    return (
        round(lat0 + north_m / _M_PER_DEG_LAT, 6),
        round(lon0 + east_m / (_M_PER_DEG_LAT * math.cos(math.radians(lat0))), 6),
    )


@dataclass(frozen=True)
class Leg:
    """Drive straight to `to` at `speed_kmh`, or (to=None) stand still for `seconds` with the
    ignition as `acc` says."""

    to: tuple[float, float] | None = None
    speed_kmh: float = 0.0
    seconds: float = 0.0
    acc: bool = False


def drive(to: tuple[float, float], speed_kmh: float) -> Leg:
    return Leg(to=to, speed_kmh=speed_kmh)


def park(seconds: float, *, acc: bool = False) -> Leg:
    return Leg(seconds=seconds, acc=acc)


@dataclass(frozen=True)
class Episode:
    name: str
    kinds: tuple[str, ...]  # the alarm kinds it is there to show
    start: tuple[float, float]
    legs: tuple[Leg, ...]
    first_alarm_s: float  # roughly when its first alarm is due (documentation and tests)
    devices: int = 1  # devices the car needs (separation: 2)
    max_devices: int | None = None  # offline: a car with one (realtime, wired) tracker only
    # Device index >= 1 stays at `start` while the car drives (left behind or hidden).
    second_device_stays: bool = False
    # (from, to) seconds within each loop when no device sends anything (connection closed).
    silent: tuple[tuple[float, float], ...] = ()
    # (second within the loop, alarm kind) sent with the location at that time.
    device_alarms: tuple[tuple[float, str], ...] = ()
    protocols: tuple[str, ...] = ("gt06", "jt808", "h02")  # what can carry its frames
    # Demo configuration for the car (`alarms.demo`): per-vehicle AlarmSetting params by kind.
    settings: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)

    @property
    def period_s(self) -> float:
        """Seconds of one loop of the legs."""
        total, here = 0.0, self.start
        for leg in self.legs:
            if leg.to is None:
                total += leg.seconds
            else:
                total += distance_m(*here, *leg.to) / (leg.speed_kmh / 3.6)
                here = leg.to
        return total

    def is_silent(self, t: float) -> bool:
        phase = t % self.period_s
        return any(a <= phase < b for a, b in self.silent)

    def alarms_between(self, t0: float, t1: float) -> list[str]:
        """Device alarm kinds scheduled in (t0, t1] (simulated seconds, every loop)."""
        if t1 <= t0:
            return []
        period = self.period_s
        out = []
        for at, kind in self.device_alarms:
            k = math.floor((t0 - at) / period) + 1  # first loop whose alarm time is > t0
            if at + k * period <= t1:
                out.append(kind)
        return out


# --- The places the episodes visit (alarms.demo creates the matching data) -----------------------
SPOT: Final = offset(-4_250, 3_250)  # second-pledge spot, radius SPOT_RADIUS_M
SPOT_RADIUS_M: Final = 150
FENCE_CENTRE: Final = offset(5_250, -3_750)  # circle fence, radius FENCE_RADIUS_M
FENCE_RADIUS_M: Final = 400
ARMED_SPOT: Final = offset(-2_750, -5_250)  # where the armed car stands, 200 m radius
USUAL_AREA: Final = offset(-9_750, -9_750)  # the away car's usual area: it never goes there
AWAY_DAYS: Final = 4  # ... and was last there this many days before the demo was loaded
TONGGUAN: Final = (34.56, 110.30)  # Shaanxi, on the G30 ~3.5 km west of the Henan border
LINGBAO_ROAD: Final = (34.56, 110.42)  # Henan, ~7 km east of the border


def _square(corner: tuple[float, float], side_m: float, speed: float) -> tuple[Leg, ...]:
    return tuple(
        drive(offset(e, n, corner), speed)
        for e, n in ((side_m, 0), (side_m, side_m), (0, side_m), (0, 0))
    )


_SEP_START = offset(2_250, 6_250)
_EXPRESS_START = offset(-6_000, -7_500)
_PARKED = offset(-1_750, -2_250)
_OFFLINE = offset(1_250, -6_250)
_TAMPER = offset(3_750, -1_250)

EPISODES: Final[tuple[Episode, ...]] = (
    Episode(
        "second_pledge_visit",
        ("area_enter", "area_stay", "area_leave"),
        offset(-1_500, 0, SPOT),
        (
            park(60),
            drive(SPOT, 36),
            park(300),
            drive(offset(-1_500, 0, SPOT), 36),
            park(120),
        ),
        first_alarm_s=200,
        settings={"area_stay": {"stay_minutes": 3}},
    ),
    Episode(
        "expressway",
        ("overspeed", "custom"),
        _EXPRESS_START,
        (drive(offset(4_000, 0, _EXPRESS_START), 130), drive(_EXPRESS_START, 50), park(60)),
        first_alarm_s=20,
    ),
    Episode(
        "fence_visit",
        ("fence_enter", "fence_inside", "fence_parking", "fence_leave"),
        offset(-1_200, 0, FENCE_CENTRE),
        (
            park(30),
            drive(FENCE_CENTRE, 36),
            park(300),
            drive(offset(-1_200, 0, FENCE_CENTRE), 36),
            park(60),
        ),
        first_alarm_s=110,
    ),
    Episode(
        "armed_leave",
        ("armed_move",),
        ARMED_SPOT,
        (park(90), drive(offset(0, 1_500, ARMED_SPOT), 40), park(120), drive(ARMED_SPOT, 40)),
        first_alarm_s=110,
    ),
    Episode(
        "separation",
        ("separation",),
        _SEP_START,
        (park(60), drive(offset(2_500, 0, _SEP_START), 50), park(180), drive(_SEP_START, 50)),
        first_alarm_s=140,
        devices=2,
        second_device_stays=True,
    ),
    Episode(
        "province_leave",
        ("province_leave",),
        TONGGUAN,
        (park(30), drive(LINGBAO_ROAD, 90), park(120), drive(TONGGUAN, 90), park(120)),
        first_alarm_s=260,
        settings={"province_leave": {"home_province": "61"}},
    ),
    Episode(
        "long_haul",
        ("fatigue",),
        offset(6_250, 2_250),
        _square(offset(6_250, 2_250), 2_000, 50),
        first_alarm_s=370,
        settings={"fatigue": {"max_drive_hours": 0.1}},
    ),
    Episode(
        "away_from_home",
        ("usual_area_absent",),
        offset(7_250, 7_250),
        (*_square(offset(7_250, 7_250), 1_500, 40), park(240)),
        first_alarm_s=60,  # the first scan: the car has been away for days already
    ),
    Episode(
        "parked_long",
        ("parking_overtime",),
        _PARKED,
        (park(3_600),),
        first_alarm_s=370,
        settings={"parking_overtime": {"limit_hours": 0.1}},
    ),
    Episode(
        "goes_offline",
        ("offline",),
        _OFFLINE,
        (park(480),),
        first_alarm_s=360,
        max_devices=1,
        silent=((120, 480),),
        settings={"offline": {"realtime_minutes": 3}},
    ),
    Episode(
        "tamper",
        ("power_cut", "removal"),
        _TAMPER,
        (park(600),),
        first_alarm_s=90,
        device_alarms=((90, "power_cut"), (150, "removal")),
        protocols=("gt06", "jt808"),
    ),
)


class _Device(Protocol):
    @property
    def identifier(self) -> str: ...
    @property
    def protocol(self) -> str: ...
    @property
    def vehicle_id(self) -> int: ...


def plan(devices: Iterable[_Device], episodes: Sequence[Episode] = EPISODES) -> dict[int, Episode]:
    """Which vehicle plays which episode: for each episode in order, the vehicle with the lowest
    id not yet cast that has enough devices and a device of a protocol the episode can use.
    The same devices give the same plan (the simulator and `alarms.demo` both call this)."""
    by_vehicle: dict[int, list[_Device]] = {}
    for d in devices:
        by_vehicle.setdefault(d.vehicle_id, []).append(d)
    cast: dict[int, Episode] = {}
    for episode in episodes:
        for vehicle_id in sorted(by_vehicle):
            mounted = by_vehicle[vehicle_id]
            if vehicle_id in cast or len(mounted) < episode.devices:
                continue
            if episode.max_devices is not None and len(mounted) > episode.max_devices:
                continue
            if lead_device(mounted, episode) is None:
                continue
            cast[vehicle_id] = episode
            break
    return cast


def lead_device(mounted: Sequence[_Device], episode: Episode) -> _Device | None:
    """The device that drives with the car and sends the episode's alarms: the first (lowest
    identifier) of a protocol the episode can use."""
    usable = sorted((d for d in mounted if d.protocol in episode.protocols), key=_ident)
    return usable[0] if usable else None


def _ident(d: _Device) -> str:
    return d.identifier


class ScriptedRoute:
    """Plays an episode's legs in a loop; the interface of `routes.Route`."""

    def __init__(self, episode: Episode) -> None:
        self.episode = episode
        self._t = 0.0
        self._leg = 0
        self._leg_t = 0.0  # seconds spent in the current leg
        self._here = episode.start
        self._from = episode.start
        self._course = 0
        self._odometer = 0.0
        self._last = self._fix(0.0, moving=False)

    @property
    def home(self) -> tuple[float, float]:
        return self.episode.start

    @property
    def elapsed_s(self) -> float:
        return self._t

    @property
    def parked(self) -> bool:
        return self.episode.legs[self._leg].to is None

    def position(self) -> Fix:
        return self._last

    def step(self, dt_seconds: float) -> Fix:
        step = float(dt_seconds)
        if not step > 0 or math.isinf(step):
            raise ValueError(f"dt must be a positive number of seconds: {dt_seconds!r}")
        self._t += step
        left = step
        moved = 0.0
        speed = 0.0
        while left > 1e-9:
            leg = self.episode.legs[self._leg]
            if leg.to is None:
                use = min(left, leg.seconds - self._leg_t)
                self._leg_t += use
                left -= use
                if self._leg_t >= leg.seconds - 1e-9:
                    self._next_leg()
                continue
            v = leg.speed_kmh / 3.6
            remaining = distance_m(*self._here, *leg.to)
            if remaining <= v * left:
                left -= remaining / v
                self._advance_to(leg.to, remaining)
                moved += remaining
                speed = max(speed, leg.speed_kmh)  # the fastest leg of the step
                self._next_leg()
            else:
                frac = v * left / remaining
                point = (
                    self._here[0] + (leg.to[0] - self._here[0]) * frac,
                    self._here[1] + (leg.to[1] - self._here[1]) * frac,
                )
                self._advance_to(point, v * left)
                moved += v * left
                speed = max(speed, leg.speed_kmh)  # the fastest leg of the step
                left = 0.0
        self._last = self._fix(speed if moved > 0 else 0.0, moving=moved > 0)
        return self._last

    def _advance_to(self, point: tuple[float, float], metres: float) -> None:
        lat0, lon0 = self._here
        east = (point[1] - lon0) * math.cos(math.radians(lat0))
        north = point[0] - lat0
        if east or north:
            self._course = round(math.degrees(math.atan2(east, north))) % 360
        self._here = point
        self._odometer += metres

    def _next_leg(self) -> None:
        self._leg = (self._leg + 1) % len(self.episode.legs)
        self._leg_t = 0.0

    def _fix(self, speed: float, *, moving: bool) -> Fix:
        leg = self.episode.legs[self._leg]
        acc = moving or leg.to is not None or leg.acc
        return Fix(
            lat=self._here[0],
            lon=self._here[1],
            speed_kmh=round(speed, 2),
            course=self._course,
            acc=acc,
            moving=moving,
            odometer_m=self._odometer,
        )

    def left_behind(self) -> Fix:
        """Where a device left at the start reports from: standing still."""
        lat, lon = self.episode.start
        return Fix(lat=lat, lon=lon, speed_kmh=0.0, course=0, acc=False, moving=False)


class Cast:
    """The episodes of one simulator run, per device: where it reports from, whether it is
    silent, which alarm codes it sends now. Used by the runner (and by the tests, without
    sockets)."""

    def __init__(self, devices: Iterable[_Device], episodes: Mapping[int, Episode]) -> None:
        self.episodes = dict(episodes)
        by_vehicle: dict[int, list[_Device]] = {}
        for d in devices:
            by_vehicle.setdefault(d.vehicle_id, []).append(d)
        self.lead: dict[int, str] = {}
        for vehicle_id, episode in self.episodes.items():
            lead = lead_device(by_vehicle.get(vehicle_id, ()), episode)
            if lead is not None:
                self.lead[vehicle_id] = lead.identifier
        self._alarms_until: dict[str, float] = {}

    def episode_of(self, device: _Device) -> Episode | None:
        return self.episodes.get(device.vehicle_id)

    def route(self, vehicle_id: int) -> ScriptedRoute | None:
        episode = self.episodes.get(vehicle_id)
        return ScriptedRoute(episode) if episode is not None else None

    def is_lead(self, device: _Device) -> bool:
        return self.lead.get(device.vehicle_id) == device.identifier

    def fix(self, device: _Device, route: Any, fix: Fix) -> Fix:
        """`fix` (the car's) unless this device is one the episode leaves behind."""
        episode = self.episode_of(device)
        if episode is None or not episode.second_device_stays or self.is_lead(device):
            return fix
        return route.left_behind()

    def silent(self, device: _Device, t: float) -> bool:
        episode = self.episode_of(device)
        return episode is not None and bool(episode.silent) and episode.is_silent(t)

    def alarms(self, device: _Device, t: float) -> list[str]:
        """Alarm kinds the device sends with its location at simulated second `t` (each
        scheduled alarm once, by the lead device)."""
        episode = self.episode_of(device)
        if episode is None or not episode.device_alarms or not self.is_lead(device):
            return []
        since = self._alarms_until.get(device.identifier, -1e-9)
        self._alarms_until[device.identifier] = t
        return episode.alarms_between(since, t)
