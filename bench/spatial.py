"""Spatial checks per position and the risk point import (DESIGN.md budgets: <= 10 us per position
for risk points + provinces + fences; the engine adds <= 400 MB; 100k risk points import < 60 s).

Builds its own database: a fleet (bench/fleet.py), then 100k random risk points around China
(70 % near 40 city centres, the rest anywhere in China's box), imported from a generated CSV by
`manage.py import_risk_points` (timed, as a user would run it), 1,000 fences (half polygons, a
quarter of those with a hole) bound to 1-5 vehicles each and 5,000 annotations. Then it loads the
places index (`alarms.spatial.load_place_index`: build time and RSS added) and times, over 100k
random positions (denser in cities, each on a random vehicle), what the engine asks per fix:
`risk_points_at` + `annotations_at` + `fences_at`, and the provinces when `alarms.regions` is
there; one position at a time and with the batch prefetched (`PlaceIndex.prefetch`, 500 per
batch as the gateway's writer hands them over).

    .venv/bin/python bench/spatial.py [--postgis] [--risk-points 100000] [--positions 100000]
"""

from __future__ import annotations

import argparse
import datetime as dt
import gc
import io
import math
import os
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

POSTGIS_URL = "postgis://postgres@127.0.0.1:5432/carloan_bench_spatial"
BATCH = 500
# City centres (WGS-84, rounded): where risk points and cars crowd.
CITIES = [
    (39.904, 116.407), (31.230, 121.474), (23.129, 113.264), (22.543, 114.058),
    (30.573, 104.066), (29.563, 106.551), (34.261, 108.942), (30.593, 114.305),
    (32.060, 118.797), (30.274, 120.155), (36.651, 117.120), (36.067, 120.383),
    (34.747, 113.625), (38.042, 114.514), (41.805, 123.431), (38.914, 121.615),
    (45.803, 126.535), (43.817, 125.324), (28.228, 112.939), (28.682, 115.858),
    (26.074, 119.296), (24.480, 118.089), (25.040, 102.712), (26.647, 106.630),
    (22.817, 108.366), (20.044, 110.199), (36.061, 103.834), (38.487, 106.231),
    (36.617, 101.778), (43.825, 87.617), (29.650, 91.172), (40.842, 111.749),
    (37.871, 112.549), (31.820, 117.227), (39.343, 117.362), (32.394, 119.413),
    (31.299, 120.585), (29.868, 121.544), (25.281, 110.290), (27.994, 120.699),
]  # fmt: skip
CHINA = (18.2, 53.5, 73.5, 134.7)  # lat min, lat max, lon min, lon max (rough)
KINDS = ["车管所", "二押点", "维修厂", "二手车市场", "自定义"]
RADII = [50, 100, 200, 200, 300, 500, 1_000, 2_000]


def _near_city(rng: random.Random, spread: float) -> tuple[float, float]:
    lat, lon = rng.choice(CITIES)
    return lat + rng.gauss(0, spread), lon + rng.gauss(0, spread)


def _anywhere(rng: random.Random) -> tuple[float, float]:
    return rng.uniform(CHINA[0], CHINA[1]), rng.uniform(CHINA[2], CHINA[3])


def write_risk_point_csv(path: Path, count: int, seed: int) -> None:
    """A `name,kind,lat,lon,radius_m,address` file as Chinese Excel saves it: GBK."""
    rng = random.Random(seed)
    lines = ["name,kind,lat,lon,radius_m,address"]
    for i in range(count):
        lat, lon = _near_city(rng, 0.25) if rng.random() < 0.7 else _anywhere(rng)
        kind, radius, number = rng.choice(KINDS), rng.choice(RADII), rng.randrange(1, 999)
        lines.append(f"{kind}{i},{kind},{lat:.6f},{lon:.6f},{radius},某某路{number}号")
    path.write_bytes(("\n".join(lines) + "\n").encode("gbk"))


def _polygon(rng: random.Random, lat: float, lon: float, with_hole: bool):
    from django.contrib.gis.geos import LinearRing, Polygon

    size_km = rng.uniform(0.5, 5)
    n = rng.randrange(8, 40)
    angles = sorted(rng.uniform(0, 2 * math.pi) for _ in range(n))
    k = math.cos(math.radians(lat))

    def ring(scale: float) -> LinearRing:
        pts = [
            (
                lon + scale * size_km * math.sin(a) / (111.2 * k),
                lat + scale * size_km * math.cos(a) / 111.2,
            )
            for a in angles
        ]
        return LinearRing([*pts, pts[0]])

    rings = [ring(1.0)] + ([ring(0.3)] if with_hole else [])
    return Polygon(*rings, srid=4326)


def build_places(vehicles: list[tuple[int, int]], parents: dict[int, int], seed: int) -> dict:
    """1,000 fences bound to 1-5 vehicles of the fence customer's subtree; 5,000 annotations."""
    from django.contrib.gis.geos import Point
    from django.utils import timezone

    from alarms.models import Annotation, Geofence

    rng = random.Random(seed)
    now = timezone.now()
    by_customer: dict[int, list[int]] = {}
    for vehicle_id, customer_id in vehicles:
        by_customer.setdefault(customer_id, []).append(vehicle_id)
    fences = []
    for i in range(1_000):
        branch = rng.choice(list(by_customer))
        lat, lon = _near_city(rng, 0.3)
        fence = Geofence(
            customer_id=branch,
            name=f"fence {i}",
            created_at=now,
            updated_at=now,
            alarm_inside=rng.random() < 0.3,
        )
        if i % 2:
            fence.shape, fence.polygon = "polygon", _polygon(rng, lat, lon, i % 4 == 1)
        else:
            fence.shape = "circle"
            fence.center, fence.radius_m = Point(lon, lat, srid=4326), rng.randrange(200, 5_000)
        fences.append(fence)
    fences = Geofence.objects.bulk_create(fences, batch_size=500)
    through = Geofence.vehicles.through
    links = []
    for fence in fences:
        pool = by_customer[fence.customer_id]
        for vehicle_id in rng.sample(pool, min(len(pool), rng.randrange(1, 6))):
            links.append(through(geofence_id=fence.pk, vehicle_id=vehicle_id))
    through.objects.bulk_create(links, batch_size=2_000)
    customers = list(by_customer) + sorted(set(parents.values()))
    notes = []
    for i in range(5_000):
        lat, lon = _near_city(rng, 0.3)
        notes.append(
            Annotation(
                customer_id=rng.choice(customers),
                name=f"annotation {i}",
                point=Point(lon, lat, srid=4326),
                radius_m=rng.choice(RADII),
                shared=rng.random() < 0.8,
                created_at=now,
                updated_at=now,
            )
        )
    Annotation.objects.bulk_create(notes, batch_size=2_000)
    return {"fences": len(fences), "bindings": len(links), "annotations": len(notes)}


def rss_mb() -> float:
    with open("/proc/self/statm") as f:
        pages = int(f.read().split()[1])
    return pages * os.sysconf("SC_PAGE_SIZE") / 2**20


def positions(vehicles: list[tuple[int, int]], count: int, seed: int) -> list[tuple]:
    rng = random.Random(seed)
    out = []
    for _ in range(count):
        vehicle_id, customer_id = rng.choice(vehicles)
        lat, lon = _near_city(rng, 0.3) if rng.random() < 0.7 else _anywhere(rng)
        out.append((vehicle_id, customer_id, lat, lon))
    return out


def time_lookups(index, sample, *, province_at=None, prefetch: bool) -> tuple[float, int]:
    """CPU microseconds per position (median of 3 runs) and the places found in the last run.
    CPU time of this process, not wall time: on a shared 2-core machine the wall clock also
    counts the time other processes held the CPU."""
    runs = []
    found = 0
    for _ in range(3):
        found = 0
        started = time.process_time()
        for start in range(0, len(sample), BATCH):
            batch = sample[start : start + BATCH]
            if prefetch:
                index.prefetch([(lat, lon) for _v, _c, lat, lon in batch])
            for vehicle_id, customer_id, lat, lon in batch:
                found += len(index.risk_points_at(lat, lon))
                found += len(index.annotations_at(lat, lon, customer_id))
                found += len(index.fences_at(vehicle_id, lat, lon))
                if province_at is not None:
                    province_at(lat, lon)
        runs.append((time.process_time() - started) / len(sample) * 1e6)
    return statistics.median(runs), found


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--postgis", action="store_true", help="PostGIS instead of SpatiaLite")
    parser.add_argument("--postgis-url", default=POSTGIS_URL)
    parser.add_argument("--risk-points", type=int, default=100_000)
    parser.add_argument("--positions", type=int, default=100_000)
    parser.add_argument("--vehicles", type=int, default=2_000)
    parser.add_argument("--seed", type=int, default=20261122)
    args = parser.parse_args(argv)

    with bench_database(postgis=args.postgis, postgis_url=args.postgis_url) as db:
        from django.core.management import call_command
        from django.db import connection

        from accounts.models import Customer
        from alarms.spatial import load_place_index
        from vehicles.models import Vehicle

        print(f"{dt.date.today():%Y-%m-%d}  {machine()}  {db.engine} ({connection.vendor})")  # noqa: DTZ011
        print("command: .venv/bin/python bench/spatial.py " + " ".join(sys.argv[1:]))
        fleet = build_fleet(vehicles=args.vehicles)
        vehicles = list(Vehicle.objects.values_list("pk", "customer_id"))
        parents = dict(Customer.objects.exclude(parent=None).values_list("pk", "parent_id"))
        made = build_places(vehicles, parents, args.seed)

        with tempfile.TemporaryDirectory(prefix="carloan-bench-") as tmp:
            path = Path(tmp) / "risk_points.csv"
            write_risk_point_csv(path, args.risk_points, args.seed)
            size_mb = path.stat().st_size / 2**20
            out, err = io.StringIO(), io.StringIO()
            started = time.perf_counter()
            call_command("import_risk_points", str(path), stdout=out, stderr=err)
            import_s = time.perf_counter() - started
        print(f"import: {out.getvalue().strip()}")

        try:
            from alarms.regions import province_at
        except ImportError:
            province_at = None

        sample = positions(vehicles, args.positions, args.seed + 1)
        gc.collect()
        rss_before = rss_mb()
        started = time.perf_counter()
        index = load_place_index()
        load_s = time.perf_counter() - started
        gc.collect()
        rss_index = rss_mb() - rss_before
        single, found = time_lookups(index, sample, prefetch=False)
        batched, _found = time_lookups(index, sample, prefetch=True)
        with_provinces = None
        if province_at is not None:
            with_provinces, _found = time_lookups(
                index, sample, province_at=province_at, prefetch=False
            )
        gc.collect()
        rss_added = rss_mb() - rss_before

    counts = index.counts
    print()
    print("| what | figure |")
    print("|---|---|")
    print(f"| fleet | {fleet.counts.get('vehicles', len(vehicles)):,} vehicles |")
    print(
        f"| places | {counts['risk_points']:,} risk points, {counts['annotations']:,} "
        f"annotations, {counts['fences']:,} fences ({made['bindings']:,} bindings, "
        f"{counts['bound_vehicles']:,} vehicles) |"
    )
    print(
        f"| `import_risk_points` {args.risk_points:,} rows (GBK CSV, {size_mb:.1f} MB) | "
        f"{import_s:.1f} s ({args.risk_points / import_s:,.0f} rows/s) |"
    )
    print(
        f"| `load_place_index()` (5 queries + build) | {load_s:.2f} s "
        f"(build {index.build_seconds:.2f} s) |"
    )
    print(
        f"| RSS added: the places index / after all the lookups below "
        f"(Places made on hits, batch answers{', provinces' if province_at else ''}) "
        f"| {rss_index:.0f} MB / {rss_added:.0f} MB |"
    )
    print(
        f"| risk points + annotations + fences, one position at a time | {single:.2f} us CPU "
        f"per position ({found:,} places found over {len(sample):,} positions) |"
    )
    print(f"| the same, batch of {BATCH} prefetched | {batched:.2f} us CPU per position |")
    if with_provinces is not None:
        print(f"| the same + `province_at`, one at a time | {with_provinces:.2f} us CPU |")
    else:
        print("| provinces | not measured: `alarms.regions` is not there yet |")
    budget_ok = single <= 10 and rss_added <= 400 and import_s < 60
    print()
    print("within budget" if budget_ok else "OVER BUDGET")
    return 0 if budget_ok else 1


if __name__ == "__main__":
    sys.exit(main())
