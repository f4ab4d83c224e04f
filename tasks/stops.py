"""Where a car stood still: a small stop detector for repossession teams (K3). Pure: no Django.

A stop is a run of consecutive fixes that all lie within `radius_m` of the run's first fix and
span at least `min_duration`. Gaps in the data count as standing still when the car is found at
the same place after them (a parked tracker sleeps and reports rarely), which is what a recovery
team wants: "where does this car spend its nights".
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass

from carloan.geo import haversine_m

STOP_RADIUS_M = 100.0
STOP_MIN_DURATION = dt.timedelta(minutes=10)


@dataclass(frozen=True)
class Stop:
    start: dt.datetime
    end: dt.datetime
    lat: float  # the mean of the run's fixes
    lon: float
    fixes: int

    @property
    def duration(self) -> dt.timedelta:
        return self.end - self.start


def detect_stops(
    fixes: Iterable[tuple[dt.datetime, float, float]],
    *,
    radius_m: float = STOP_RADIUS_M,
    min_duration: dt.timedelta = STOP_MIN_DURATION,
) -> list[Stop]:
    """Stops in `fixes` = (time, lat, lon) in time order, oldest first. A run still going on at
    the last fix counts when it is long enough (the car stands there now)."""
    stops: list[Stop] = []
    run: list[tuple[dt.datetime, float, float]] = []

    def close() -> None:
        if run and run[-1][0] - run[0][0] >= min_duration:
            stops.append(
                Stop(
                    start=run[0][0],
                    end=run[-1][0],
                    lat=sum(f[1] for f in run) / len(run),
                    lon=sum(f[2] for f in run) / len(run),
                    fixes=len(run),
                )
            )

    for fix in fixes:
        if run and haversine_m(run[0][1], run[0][2], fix[1], fix[2]) <= radius_m:
            run.append(fix)
            continue
        close()
        run = [fix]
    close()
    return stops
