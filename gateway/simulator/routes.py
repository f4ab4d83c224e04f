"""Deterministic movement of demo vehicles around Xi'an. Pure: no I/O, no clock, no globals.

The model is a Manhattan street grid centred on Xi'an (34.26 N, 108.94 E; the old city really is
a N/E/S/W grid) with an intersection every ``block_m`` metres. A vehicle alternates:

* **parked** (ACC off, speed 0, position frozen): minutes to a few hours by day; from 21:30 to
  06:30-09:00 Beijing time it sleeps at "home" (its start point);
* **driving** to a destination intersection 1.5-12 km away (or home in the evening), turning only
  at intersections and always towards the destination, one speed per block (20-70 km/h, limited
  acceleration), with the odd red light (ACC on, speed 0) on the way.

Destinations are inside a square of half-side 0.7 x radius around the centre and a vehicle only
moves towards its destination, so it never leaves that square: every fix is within the radius.

``step(dt)`` advances the simulated clock by ``dt`` seconds and returns the fix at the end of
the step. The speed is fixed for a whole step and reported with the fix, so the distance between
two consecutive fixes never exceeds ``fix.speed_kmh / 3.6 * dt``: what a tracker reporting every
``dt`` seconds would show. Everything is drawn from ``random.Random(seed)``: the same seed, start
and sequence of ``dt`` give the same fixes.
"""

from __future__ import annotations

import datetime as dt
import math
import random
from dataclasses import dataclass
from typing import Final

__all__ = ["CENTRE", "Fix", "Route", "distance_m"]

CENTRE: Final = (34.26, 108.94)  # Xi'an, Bell Tower area
_M_PER_DEG_LAT: Final = 111_320.0
_M_PER_DEG_LON: Final = _M_PER_DEG_LAT * math.cos(math.radians(CENTRE[0]))
_EARTH_RADIUS_M: Final = 6_371_008.8

_BEIJING: Final = dt.timedelta(hours=8)
_DAY: Final = 86_400.0
_NIGHT_START: Final = 21.5 * 3600  # local seconds of day
_MORNING: Final = 6.5 * 3600

_ACCEL_KMH_S: Final = 2.5  # km/h per second
_DECEL_KMH_S: Final = 5.0

# heading (degrees) -> unit step on the grid (east, north)
_DIRS: Final = {0: (0, 1), 90: (1, 0), 180: (0, -1), 270: (-1, 0)}

_PARKED: Final = "parked"
_DRIVING: Final = "driving"


@dataclass(frozen=True)
class Fix:
    lat: float
    lon: float
    speed_kmh: float
    course: int  # degrees, 0 = north
    acc: bool
    moving: bool  # the vehicle moved during the step
    odometer_m: float = 0.0  # distance driven since the route started


def distance_m(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    """Great-circle (haversine) distance in metres."""
    p1, p2 = math.radians(lat1), math.radians(lat2)
    dp = p2 - p1
    dl = math.radians(lon2 - lon1)
    a = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 2 * _EARTH_RADIUS_M * math.asin(min(1.0, math.sqrt(a)))


def _to_latlon(x: float, y: float) -> tuple[float, float]:
    return CENTRE[0] + y / _M_PER_DEG_LAT, CENTRE[1] + x / _M_PER_DEG_LON


def _to_xy(lat: float, lon: float) -> tuple[float, float]:
    return (lon - CENTRE[1]) * _M_PER_DEG_LON, (lat - CENTRE[0]) * _M_PER_DEG_LAT


class Route:
    """One demo vehicle's movement (see the module doc).

    ``start``: (lat, lon) of home, snapped to the nearest intersection inside the area; None
    draws one 1-15 km from the centre. ``start_time``: aware datetime of the first step's start
    (only its Beijing time of day matters: night parking); None means 08:00.
    """

    def __init__(
        self,
        seed: int | str,
        start: tuple[float, float] | None = None,
        *,
        start_time: dt.datetime | None = None,
        radius_km: float = 25.0,
        block_m: float = 500.0,
        max_speed_kmh: float = 70.0,
    ) -> None:
        if radius_km <= 0 or block_m <= 0 or not 20.0 <= max_speed_kmh <= 200.0:
            raise ValueError("radius and block must be positive, max speed 20..200 km/h")
        self._rng = random.Random(seed)  # noqa: S311 - movement, not security
        self._block = float(block_m)
        self._half = max(1, int(radius_km * 1000 * 0.7 // block_m))  # area half-side, blocks
        self._max_speed = float(max_speed_kmh)
        if start is None:
            r = self._rng.uniform(1_000, min(15_000, self._half * self._block))
            a = self._rng.uniform(0, 2 * math.pi)
            x, y = r * math.cos(a), r * math.sin(a)
        else:
            x, y = _to_xy(*start)
        self._home = (self._snap(x), self._snap(y))
        self._gx, self._gy = self._home  # last intersection passed (grid units)
        self._x, self._y = self._home[0] * self._block, self._home[1] * self._block
        self._heading = 0
        self._speed = 0.0  # km/h during the last step
        self._target = 0.0  # km/h wanted on the current block
        self._wait = 0.0  # s still to stand at a red light / warm up
        self._dest = self._home
        self._odometer = 0.0
        if start_time is None:
            self._sod0 = 8 * 3600.0
        else:
            if start_time.tzinfo is None or start_time.utcoffset() is None:
                raise ValueError("start_time must be timezone-aware")
            local = start_time.astimezone(dt.UTC) + _BEIJING
            self._sod0 = local.hour * 3600 + local.minute * 60 + local.second + 0.0
        self._t = 0.0
        self._state = _PARKED
        if self._is_night():
            self._park_left = self._until_morning()
        else:
            self._park_left = self._rng.uniform(0, 15 * 60)

    # --- public -----------------------------------------------------------------------------

    @property
    def home(self) -> tuple[float, float]:
        """(lat, lon) of the vehicle's home intersection."""
        return _to_latlon(self._home[0] * self._block, self._home[1] * self._block)

    @property
    def elapsed_s(self) -> float:
        return self._t

    @property
    def parked(self) -> bool:
        return self._state == _PARKED

    def position(self) -> Fix:
        """The current fix without advancing the clock."""
        if self._state == _PARKED:
            return self._fix(0.0, acc=False, moving=False)
        return self._fix(self._speed, acc=True, moving=self._speed > 0)

    def step(self, dt_seconds: float) -> Fix:
        """Advance by ``dt_seconds`` (> 0) and return the fix at the end of the step."""
        step = float(dt_seconds)
        if not step > 0 or math.isinf(step):
            raise ValueError(f"dt must be a positive number of seconds: {dt_seconds!r}")
        self._t += step
        if self._state == _PARKED:
            self._park_left -= step
            if self._park_left > 0:
                return self._fix(0.0, acc=False, moving=False)
            # Ignition on: this step is the engine warming up, the drive starts with the next.
            self._start_trip()
            return self._fix(0.0, acc=True, moving=False)
        return self._drive(step)

    # --- driving ----------------------------------------------------------------------------

    def _drive(self, step: float) -> Fix:
        prev = 0.0 if self._wait >= step else self._speed
        speed = min(max(self._target, prev - _DECEL_KMH_S * step), prev + _ACCEL_KMH_S * step)
        speed = max(speed, 5.0)
        v = speed / 3.6
        left = step
        moved = 0.0
        while left > 1e-9 and self._state == _DRIVING:
            if self._wait > 0:
                w = min(self._wait, left)
                self._wait -= w
                left -= w
                continue
            dx, dy = _DIRS[self._heading]
            tx = (self._gx + dx) * self._block
            ty = (self._gy + dy) * self._block
            d = abs(tx - self._x) + abs(ty - self._y)
            if d <= v * left:
                self._x, self._y = tx, ty
                self._gx += dx
                self._gy += dy
                moved += d
                left -= d / v
                self._at_intersection()
            else:
                self._x += dx * v * left
                self._y += dy * v * left
                moved += v * left
                left = 0.0
        self._odometer += moved
        if moved <= 0.0:
            self._speed = 0.0
            return self._fix(0.0, acc=True, moving=False)
        self._speed = speed
        # The arrival step still reports the speed it was driven at; the next fix is parked.
        return self._fix(speed, acc=True, moving=True)

    def _at_intersection(self) -> None:
        if (self._gx, self._gy) == self._dest:
            self._arrive()
            return
        self._choose_heading()
        self._choose_block_speed()
        if self._rng.random() < 0.2:  # red light
            self._wait = self._rng.uniform(10, 75)

    def _choose_heading(self) -> None:
        ex = self._dest[0] - self._gx
        ey = self._dest[1] - self._gy
        options = []
        if ex:
            options.append(90 if ex > 0 else 270)
        if ey:
            options.append(0 if ey > 0 else 180)
        if self._heading in options and self._rng.random() < 0.75:
            return  # keep going straight: fewer zig-zags
        self._heading = self._rng.choice(options)

    def _choose_block_speed(self) -> None:
        if self._rng.random() < 0.3:  # side street
            self._target = self._rng.uniform(20, 40)
        else:
            self._target = self._rng.uniform(35, self._max_speed)

    def _start_trip(self) -> None:
        here = (self._gx, self._gy)
        sod = self._sod()
        evening = sod >= 19 * 3600 and self._rng.random() < 0.5
        if here != self._home and (self._is_night() or evening or self._rng.random() < 0.15):
            self._dest = self._home
        else:
            self._dest = self._random_destination()
        self._state = _DRIVING
        self._speed = 0.0
        self._choose_heading()
        self._choose_block_speed()

    def _random_destination(self) -> tuple[int, int]:
        here = (self._gx, self._gy)
        for _ in range(20):
            r = self._rng.uniform(1_500, 12_000)
            a = self._rng.uniform(0, 2 * math.pi)
            dest = (
                self._clip(self._snap(self._x + r * math.cos(a))),
                self._clip(self._snap(self._y + r * math.sin(a))),
            )
            if dest != here:
                return dest
        # Pinned in a corner by the clipping (tiny areas only): go to the other side.
        return (-self._gx or 1, -self._gy or 1)

    def _arrive(self) -> None:
        self._state = _PARKED
        self._wait = 0.0
        if self._is_night():
            if (self._gx, self._gy) == self._home:
                self._park_left = self._until_morning()
            else:
                self._park_left = self._rng.uniform(60, 20 * 60)  # then home
            return
        r = self._rng.random()
        if r < 0.6:
            self._park_left = self._rng.uniform(3 * 60, 30 * 60)
        elif r < 0.93:
            self._park_left = self._rng.uniform(30 * 60, 3 * 3600)
        else:
            self._park_left = self._rng.uniform(3 * 3600, 6 * 3600)

    # --- helpers ----------------------------------------------------------------------------

    def _snap(self, metres: float) -> int:
        return self._clip(round(metres / self._block))

    def _clip(self, blocks: int) -> int:
        return max(-self._half, min(self._half, blocks))

    def _sod(self) -> float:
        """Beijing seconds of day now."""
        return (self._sod0 + self._t) % _DAY

    def _is_night(self) -> bool:
        sod = self._sod()
        return sod >= _NIGHT_START or sod < _MORNING

    def _until_morning(self) -> float:
        wake = _MORNING + self._rng.uniform(0, 2.5 * 3600)
        return max(60.0, (wake - self._sod()) % _DAY)

    def _fix(self, speed: float, *, acc: bool, moving: bool) -> Fix:
        lat, lon = _to_latlon(self._x, self._y)
        return Fix(
            lat=lat,
            lon=lon,
            speed_kmh=round(speed, 2),
            course=self._heading,
            acc=acc,
            moving=moving,
            odometer_m=self._odometer,
        )
