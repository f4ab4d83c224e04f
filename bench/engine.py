"""The alarm engine over a realistic batch stream (issue 3: the engine adds <= 400 MB; the
spatial part <= 10 us per position is bench/spatial.py's figure).

Builds its own database: a fleet of 2,000 vehicles (bench/fleet.py), 100k risk points (imported
with `import_risk_points`, as bench/spatial.py), 1,000 fences bound to 1-5 vehicles each and
5,000 annotations, and an overspeed override on one lender. Then it drives every vehicle for a
number of rounds: each round every vehicle reports once (10 s later, ~120 m further, 70 % of
the cars around 40 city centres where the risk points crowd), cut into gateway batches of 500
fixes, each batch run through `Engine.process` in its own transaction exactly as
`gateway.ingest.ingest_batch` calls it (the positions themselves are not stored: ingest's own
cost is bench/ingest.py's). Borrowers' ID numbers put each car's home province where it
starts. Measured per position: wall and CPU time of `process` (rules,
places, provinces, settings, the states read and written back, the alarms raised); and the RSS
the engine adds (places index, provinces, settings caches, per-vehicle states) once warm.

    .venv/bin/python bench/engine.py [--postgis] [--vehicles 2000] [--rounds 10]
"""

from __future__ import annotations

import argparse
import datetime as dt
import gc
import io
import math
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench.fleet import bench_database, build_fleet, machine  # noqa: E402
from bench.spatial import (  # noqa: E402
    CITIES,
    build_places,
    rss_mb,
    write_risk_point_csv,
)

POSTGIS_URL = "postgis://postgres@127.0.0.1:5432/carloan_bench_engine"
BATCH = 500
STEP_S = 10
T0 = dt.datetime(2026, 12, 7, 2, 0, tzinfo=dt.UTC)


class Car:
    """A car wandering around its city: ~45 km/h, turning now and then, parking now and then."""

    __slots__ = ("vehicle_id", "device_id", "lat", "lon", "heading", "speed", "parked")

    def __init__(self, rng: random.Random, vehicle_id: int, device_id: int) -> None:
        self.vehicle_id, self.device_id = vehicle_id, device_id
        lat, lon = rng.choice(CITIES)
        spread = 0.25 if rng.random() < 0.7 else 2.0
        self.lat, self.lon = lat + rng.gauss(0, spread), lon + rng.gauss(0, spread)
        self.heading = rng.uniform(0, 2 * math.pi)
        self.speed = rng.uniform(20, 90)
        self.parked = 0

    def step(self, rng: random.Random) -> None:
        if self.parked:
            self.parked -= 1
            return
        if rng.random() < 0.01:
            self.parked = rng.randrange(5, 60)
            return
        if rng.random() < 0.1:
            self.heading += rng.uniform(-1.5, 1.5)
            self.speed = min(130.0, max(10.0, self.speed + rng.gauss(0, 15)))
        metres = self.speed / 3.6 * STEP_S
        self.lat += metres * math.cos(self.heading) / 111_195
        self.lon += metres * math.sin(self.heading) / (111_195 * math.cos(math.radians(self.lat)))


def stream(cars: list[Car], rounds: int, seed: int):
    """Batches of PositionInput, round after round, BATCH fixes each."""
    from alarms.engine import PositionInput

    rng = random.Random(seed)
    for r in range(1, rounds + 1):
        at = T0 + dt.timedelta(seconds=r * STEP_S)
        fixes = []
        for car in cars:
            car.step(rng)
            fixes.append(
                PositionInput(
                    device_id=car.device_id,
                    vehicle_id=car.vehicle_id,
                    fix_time=at,
                    lat=car.lat,
                    lon=car.lon,
                    valid=True,
                    realtime=True,
                    speed_kmh=0.0 if car.parked else round(car.speed, 1),
                    acc=not car.parked,
                )
            )
        for start in range(0, len(fixes), BATCH):
            yield at, fixes[start : start + BATCH]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--postgis", action="store_true", help="PostGIS instead of SpatiaLite")
    parser.add_argument("--postgis-url", default=POSTGIS_URL)
    parser.add_argument("--vehicles", type=int, default=2_000)
    parser.add_argument("--risk-points", type=int, default=100_000)
    parser.add_argument("--rounds", type=int, default=10, help="fixes per vehicle (default 10)")
    parser.add_argument("--seed", type=int, default=20261207)
    parser.add_argument(
        "--profile", action="store_true", help="cProfile the warm batches (top 35 by own time)"
    )
    args = parser.parse_args(argv)

    with bench_database(postgis=args.postgis, postgis_url=args.postgis_url) as db:
        from django.core.management import call_command
        from django.db import connection, transaction

        from accounts.models import Customer
        from alarms.engine import Engine
        from alarms.models import Alarm
        from alarms.services.places import alarm_setting_upsert
        from vehicles.models import DeviceBinding, Vehicle

        print(f"{dt.date.today():%Y-%m-%d}  {machine()}  {db.engine} ({connection.vendor})")  # noqa: DTZ011
        print("command: .venv/bin/python bench/engine.py " + " ".join(sys.argv[1:]))
        build_fleet(vehicles=args.vehicles)
        vehicles = list(Vehicle.objects.values_list("pk", "customer_id"))
        parents = dict(Customer.objects.exclude(parent=None).values_list("pk", "parent_id"))
        made = build_places(vehicles, parents, args.seed)
        with tempfile.TemporaryDirectory(prefix="carloan-bench-") as tmp:
            path = Path(tmp) / "risk_points.csv"
            write_risk_point_csv(path, args.risk_points, args.seed)
            call_command(
                "import_risk_points", str(path), stdout=io.StringIO(), stderr=io.StringIO()
            )
        lender = Customer.objects.filter(parent__parent=None, parent__isnull=False).first()
        alarm_setting_upsert(kind="overspeed", customer=lender, params={"limit_kmh": 100})
        rng = random.Random(args.seed)
        cars = [
            Car(rng, vehicle_id, device_id)
            for vehicle_id, device_id in DeviceBinding.objects.filter(
                unbound_at__isnull=True
            ).values_list("vehicle_id", "device_id")
        ]
        # Borrowers live where their car is (the ID number's first two digits are the home
        # province): a car does not start out of its province, as in a real portfolio.
        from alarms.regions import province_at

        for car in cars:
            province = province_at(car.lat, car.lon)
            if province is not None:
                Vehicle.objects.filter(pk=car.vehicle_id).update(
                    borrower_id_number=f"{province.code}0102199001010000"
                )
        connection.close()

        gc.collect()
        rss_before = rss_mb()
        engine = Engine()
        per_batch: list[tuple[float, float, int]] = []  # wall s, cpu s, fixes
        warm_rss = None
        profiler = None
        if args.profile:
            import cProfile

            profiler = cProfile.Profile()
        for n, (at, batch) in enumerate(stream(cars, args.rounds, args.seed)):
            profiling = profiler is not None and warm_rss is not None
            wall0, cpu0 = time.perf_counter(), time.process_time()
            if profiling:
                profiler.enable()
            with transaction.atomic():
                engine.process(batch, now=at)
            if profiling:
                profiler.disable()
            per_batch.append((time.perf_counter() - wall0, time.process_time() - cpu0, len(batch)))
            if warm_rss is None and (n + 1) * BATCH >= len(cars):
                gc.collect()
                warm_rss = rss_mb() - rss_before  # after the first round: index, states, caches
        gc.collect()
        rss_added = rss_mb() - rss_before
        if profiler is not None:
            import pstats

            pstats.Stats(profiler).sort_stats("tottime").print_stats(35)
            pstats.Stats(profiler).sort_stats("cumulative").print_stats("alarms|gateway", 30)
        alarms = dict(_count_kinds(Alarm))

    # The first round loads the places index and the provinces: reported apart.
    first_round = math.ceil(len(cars) / BATCH)
    warm = per_batch[first_round:] or per_batch
    fixes = sum(b[2] for b in warm)
    wall_us = sum(b[0] for b in warm) / fixes * 1e6
    cpu_us = sum(b[1] for b in warm) / fixes * 1e6
    batch_ms = statistics.median(b[0] for b in warm) * 1e3
    p95_ms = sorted(b[0] for b in warm)[int(0.95 * (len(warm) - 1))] * 1e3
    cold_s = sum(b[0] for b in per_batch[:first_round])
    print()
    print("| what | figure |")
    print("|---|---|")
    print(
        f"| data | {len(cars):,} vehicles, {args.risk_points:,} risk points, "
        f"{made['annotations']:,} annotations, {made['fences']:,} fences "
        f"({made['bindings']:,} bindings), 34 provinces |"
    )
    print(f"| stream | {args.rounds} rounds x {len(cars):,} fixes, batches of {BATCH} |")
    print(f"| first round (loads places index + provinces) | {cold_s:.1f} s wall |")
    print(
        f"| `Engine.process`, warm, per position | {wall_us:.0f} us wall, {cpu_us:.0f} us CPU "
        f"of this process |"
    )
    print(f"| per batch of {BATCH} | median {batch_ms:.0f} ms, p95 {p95_ms:.0f} ms wall |")
    print(
        f"| RSS added by the engine: after the first round / at the end | "
        f"{warm_rss or 0:.0f} MB / {rss_added:.0f} MB |"
    )
    print(
        "| alarms raised | "
        + ", ".join(f"{k} {v:,}" for k, v in sorted(alarms.items(), key=lambda kv: -kv[1]))
        + " |"
    )
    ok = rss_added <= 400
    print()
    print("within budget (RSS)" if ok else "OVER BUDGET (RSS)")
    return 0 if ok else 1


def _count_kinds(model) -> list[tuple[str, int]]:
    from django.db.models import Count

    return list(model.objects.values_list("kind").annotate(n=Count("id")).order_by())


if __name__ == "__main__":
    sys.exit(main())
