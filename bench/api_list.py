"""List pages under load: the vehicles API and the admin changelists, as a lender admin.

    .venv/bin/python bench/api_list.py [--postgis] [--requests 200] [--vehicles 10000]

Builds its own database (bench/fleet.py: a temp SpatiaLite file, or with --postgis the database
postgis://postgres@127.0.0.1:5432/carloan_bench, created and dropped here), migrates it, loads
10,000 vehicles / 20,000 devices / 10,000 active bindings under platform -> 2 lenders -> 10
branches, then requests random pages through django.test.Client (in-process: no network, no web
server; the full middleware, auth, selectors, serializers and templates) as the first lender's
admin, who sees half the fleet. For each list: n, p50, p95, max in ms and the SQL queries per
request (CaptureQueriesContext). Budget (docs/PERFORMANCE.md): p95 <= 150 ms and the same number
of queries on every page. Exit status 1 when a list misses the budget, 0 otherwise (lists that
do not exist yet are reported, not failed).
"""

from __future__ import annotations

import argparse
import datetime as dt
import math
import random
import statistics
import sys
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench.fleet import (  # noqa: E402
    DEFAULT_POSTGIS_URL,
    SEED,
    bench_database,
    build_fleet,
    machine,
)

BUDGET_P95_MS = 150.0
WARM_UP = 5


@dataclass
class Target:
    label: str
    url: str  # with {page}
    page_size: int
    count_rows: object  # (user) -> number of rows the user sees


@dataclass
class Result:
    target: Target
    status: int  # of the first non-200 answer, else 200
    times_ms: list[float]
    queries: list[int]
    sql_ms: list[float]  # time inside the database calls, as Django's debug cursor records it
    pages: int

    @property
    def ok(self) -> bool:
        return self.status == 200

    def pct(self, q: float) -> float:
        ordered = sorted(self.times_ms)
        return ordered[min(len(ordered) - 1, math.ceil(q * len(ordered)) - 1)]

    @property
    def constant_queries(self) -> bool:
        return len(set(self.queries)) == 1

    @property
    def within_budget(self) -> bool:
        return self.pct(0.95) <= BUDGET_P95_MS and self.constant_queries


def targets() -> list[Target]:
    from devices.selectors import devices_visible_to
    from vehicles.selectors import vehicles_visible_to

    return [
        Target(
            "API  GET /api/v1/vehicles/?page=N",
            "/api/v1/vehicles/?page={page}",
            50,
            lambda u: vehicles_visible_to(u).count(),
        ),
        Target(
            "admin /admin/vehicles/vehicle/?p=N",
            "/admin/vehicles/vehicle/?p={page}",
            50,
            lambda u: vehicles_visible_to(u).count(),
        ),
        Target(
            "admin /admin/devices/device/?p=N",
            "/admin/devices/device/?p={page}",
            50,
            lambda u: devices_visible_to(u).count(),
        ),
    ]


def measure(client, target: Target, user, *, requests: int, rng: random.Random) -> Result:
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    pages = max(1, math.ceil(target.count_rows(user) / target.page_size))
    times: list[float] = []
    queries: list[int] = []
    sql: list[float] = []
    for i in range(WARM_UP + requests):
        url = target.url.format(page=rng.randint(1, pages))
        with CaptureQueriesContext(connection) as ctx:
            started = time.perf_counter()
            response = client.get(url)
            elapsed = (time.perf_counter() - started) * 1000
        if response.status_code != 200:
            return Result(target, response.status_code, [], [], [], pages)
        if i >= WARM_UP:  # the first requests fill caches (URL resolver, templates, content types)
            times.append(elapsed)
            queries.append(len(ctx.captured_queries))
            sql.append(sum(float(q["time"]) for q in ctx.captured_queries) * 1000)
    return Result(target, 200, times, queries, sql, pages)


def report(results: list[Result]) -> str:
    head = "| list | n | p50 ms | p95 ms | max ms | SQL ms (p50) | queries / request | budget |"
    lines = [head, "|---|---:|---:|---:|---:|---:|---|---|"]
    for r in results:
        if not r.ok:
            lines.append(
                f"| {r.target.label} | - | - | - | - | - | - | not yet measured (HTTP {r.status}) |"
            )
            continue
        q = (
            str(r.queries[0])
            if r.constant_queries
            else f"{min(r.queries)}-{max(r.queries)} (varies)"
        )
        verdict = "ok" if r.within_budget else "MISSED"
        lines.append(
            f"| {r.target.label} | {len(r.times_ms)} | {statistics.median(r.times_ms):.1f} "
            f"| {r.pct(0.95):.1f} | {max(r.times_ms):.1f} | {statistics.median(r.sql_ms):.0f} "
            f"| {q} | {verdict} |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--postgis", action="store_true", help="PostGIS instead of SpatiaLite")
    parser.add_argument("--postgis-url", default=DEFAULT_POSTGIS_URL)
    parser.add_argument("--requests", type=int, default=200, help="measured requests per list")
    parser.add_argument("--vehicles", type=int, default=10_000, help="fleet size (devices = 2x)")
    parser.add_argument("--seed", type=int, default=SEED)
    parser.add_argument("--keep", action="store_true", help="keep the database afterwards")
    args = parser.parse_args(argv)

    with bench_database(postgis=args.postgis, postgis_url=args.postgis_url, keep=args.keep) as db:
        from django.test import Client

        fleet = build_fleet(vehicles=args.vehicles, seed=args.seed)
        user = fleet.users["lender_admin"]
        client = Client()
        client.force_login(user)
        rng = random.Random(args.seed)
        results = [measure(client, t, user, requests=args.requests, rng=rng) for t in targets()]
        counts = ", ".join(f"{n:,} {name}" for name, n in fleet.counts.items())
        print(f"carloan list pages, {dt.date.today():%Y-%m-%d}")  # noqa: DTZ011
        print(f"machine: {machine()}; database: {db.engine}")
        print(f"fleet: {counts} (built in {fleet.seconds:.1f} s)")
        print(
            f"as {user.username} (a lender admin: half the fleet, "
            + ", ".join(f"{r.pages} pages of {r.target.page_size}" for r in results if r.ok)
            + f"); {WARM_UP} warm-up requests per list not counted"
        )
        print(
            "command: .venv/bin/python bench/api_list.py"
            + (" --postgis" if args.postgis else "")
            + f" --requests {args.requests}"
            + (f" --vehicles {args.vehicles}" if args.vehicles != 10_000 else "")
        )
        print()
        print(report(results))
        print(
            f"\nbudget: p95 <= {BUDGET_P95_MS:.0f} ms and the same number of queries on every page"
        )
    return 0 if all(r.within_budget for r in results if r.ok) else 1


if __name__ == "__main__":
    sys.exit(main())
