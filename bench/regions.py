"""Province lookups (alarms.regions): load time, one lookup at a time, batched, distance.

Budget (DESIGN.md): <= 10 us per position for all spatial checks together; the province share
aimed at is a median single lookup <= 5 us. No database: the index is in memory.

    .venv/bin/python bench/regions.py [--points 200000] [--seed 7]

Point sets (fixed seed): "China" = uniform over the provinces' bounding box, kept when inside a
province (so every lookup answers a province, as for a car in China); "Xi'an" = uniform within
about 30 km of Xi'an's centre (34.26 N, 108.94 E), the fleet of the benchmark data; "bbox" = the
whole bounding box, sea and neighbours included. Single lookups are timed one call at a time
with perf_counter_ns (the timer's own ~60 ns is included); batched = `provinces_at` on the
whole array. Distances are to Shaanxi (61) from points outside it within 300 km of its border.
"""

from __future__ import annotations

import argparse
import platform
import statistics
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from alarms import regions  # noqa: E402

BUDGET_US = 5.0


def single_us(index, lats, lons) -> tuple[float, float, float]:
    clock, at = time.perf_counter_ns, index.province_at
    samples = []
    for lat, lon in zip(lats.tolist(), lons.tolist(), strict=True):
        t = clock()
        at(lat, lon)
        samples.append(clock() - t)
    samples.sort()
    n = len(samples)
    return samples[n // 2] / 1e3, samples[int(n * 0.99)] / 1e3, sum(samples) / n / 1e3


def batched_us(index, lats, lons) -> float:
    t = time.perf_counter()
    index.provinces_at(lats, lons)
    return (time.perf_counter() - t) / len(lats) * 1e6


def point_sets(index, n: int, seed: int) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    rng = np.random.default_rng(seed)
    lat = rng.uniform(index.y0, index.y1, n * 4)
    lon = rng.uniform(index.x0, index.x1, n * 4)
    inside = np.array([p is not None for p in index.provinces_at(lat, lon)])
    r = np.sqrt(rng.uniform(0, 1, n)) * 0.27  # ~30 km in degrees of latitude
    a = rng.uniform(0, 2 * np.pi, n)
    return {
        "China": (lat[inside][:n], lon[inside][:n]),
        "Xi'an": (34.26 + r * np.sin(a), 108.94 + r * np.cos(a) / np.cos(np.radians(34.26))),
        "bbox": (lat[:n], lon[:n]),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--points", type=int, default=200_000)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    print(
        f"province lookups, {time.strftime('%Y-%m-%d')}, Python {platform.python_version()}, "
        f"{platform.machine()}, command: .venv/bin/python bench/regions.py "
        f"--points {args.points} --seed {args.seed}"
    )
    t = time.perf_counter()
    index = regions.ProvinceIndex.from_file()
    load_s = time.perf_counter() - t
    stats = index.grid_stats()
    print(
        f"load {load_s:.2f} s; grid {index.nx} x {index.ny} cells of {1 / index.inv:g} deg: "
        f"{stats['inside']} inside, {stats['mixed']} mixed, {stats['outside']} outside"
    )
    print()
    print("| points | n | single median (us) | single p99 (us) | single mean (us) "
          "| lookups/s (single) | batched (us/point) | budget |")  # fmt: skip
    print("|---|---:|---:|---:|---:|---:|---:|---|")
    ok = True
    for name, (lats, lons) in point_sets(index, args.points, args.seed).items():
        median, p99, mean = single_us(index, lats, lons)
        batch = batched_us(index, lats, lons)
        verdict = "ok" if median <= BUDGET_US else "MISSED"
        ok &= median <= BUDGET_US
        print(
            f"| {name} | {len(lats):,} | {median:.2f} | {p99:.2f} | {mean:.2f} "
            f"| {1e6 / mean:,.0f} | {batch:.2f} | {verdict} |"
        )
    rng = np.random.default_rng(args.seed)
    shaanxi = index.geometry("61")
    minx, miny, maxx, maxy = shaanxi.bounds
    lat = rng.uniform(miny - 2.7, maxy + 2.7, 4000)
    lon = rng.uniform(minx - 3.3, maxx + 3.3, 4000)
    outside = [(a, b) for a, b in zip(lat, lon, strict=True) if index.province_at(a, b) is None
               or index.province_at(a, b).code != "61"][:1000]  # fmt: skip
    samples = []
    for a, b in outside:
        t = time.perf_counter_ns()
        index.distance_to_province_m("61", a, b)
        samples.append(time.perf_counter_ns() - t)
    print()
    print(
        f"distance_to_province_m('61', ...) from {len(samples)} points outside Shaanxi: "
        f"median {statistics.median(samples) / 1e3:.0f} us, max {max(samples) / 1e3:.0f} us"
    )
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
