"""Benchmark plumbing shared by the benches: a throw-away database and a large fleet, fast.

    bench_database(postgis=False)   set the environment, create the database (a temp
                                    SpatiaLite file, or a PostGIS database it creates and
                                    drops), django.setup(), migrate; a context manager
    build_fleet(vehicles=10_000)    platform -> lenders -> branches, roles and users through the
                                    services; vehicles, devices and bindings with bulk_create
    machine()                       what the figures were measured on

The bulk rows skip the services (no operation log, no per-row validation): this is benchmark
data, built in seconds instead of minutes. Every identifier still comes from `carloan.fakes`, so
plates, VINs, ID numbers, IMEIs and terminal ids are valid, and the rows satisfy the model
constraints (one live plate / VIN / device id, one active binding per device).

Run on its own it times the build:  .venv/bin/python bench/fleet.py [--postgis] [--vehicles N]
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import os
import platform
import random
import shutil
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

DEFAULT_POSTGIS_URL = "postgis://postgres@127.0.0.1:5432/carloan_bench"
SEED = 20261122


# --- The database ---------------------------------------------------------------------------------
@dataclass
class BenchDatabase:
    url: str
    engine: str = ""  # "SpatiaLite 5.0.1 (SQLite 3.40.1)" / "PostgreSQL 15.2, PostGIS 3.3"


def _admin_dsn(url: str) -> tuple[str, str]:
    """postgis://user@host:port/name -> (libpq DSN of the maintenance db `postgres`, name)."""
    parts = urlsplit(url)
    name = parts.path.lstrip("/")
    if not name:
        raise SystemExit(f"--postgis-url needs a database name: {url}")
    dsn = urlunsplit(("postgresql", parts.netloc, "/postgres", parts.query, ""))
    return dsn, name


def _create_postgis(url: str) -> None:
    import psycopg
    from psycopg import sql

    dsn, name = _admin_dsn(url)
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
        )
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    target = urlunsplit(("postgresql", *urlsplit(url)[1:]))
    with psycopg.connect(target, autocommit=True) as conn:
        conn.execute("CREATE EXTENSION IF NOT EXISTS postgis")


def _drop_postgis(url: str) -> None:
    import psycopg
    from psycopg import sql

    dsn, name = _admin_dsn(url)
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
        )


def _describe_engine() -> str:
    from django.db import connection

    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute("SHOW server_version")
            pg = cursor.fetchone()[0].split()[0]
            cursor.execute("SELECT extversion FROM pg_extension WHERE extname = 'postgis'")
            return f"PostgreSQL {pg}, PostGIS {cursor.fetchone()[0]}"
        cursor.execute("SELECT sqlite_version(), spatialite_version()")
        sqlite, spatialite = cursor.fetchone()
        return f"SpatiaLite {spatialite} (SQLite {sqlite})"


@contextlib.contextmanager
def bench_database(
    *, postgis: bool = False, postgis_url: str = DEFAULT_POSTGIS_URL, keep: bool = False
) -> Iterator[BenchDatabase]:
    """A fresh, migrated database of its own: never the developer's var/carloan.sqlite3.

    Sets the environment before `django.setup()` (settings read it once): DATABASE_URL, DEBUG on
    (no HTTPS redirects; the admin serves its static files), ALLOWED_HOSTS with the test client's
    `testserver`, and no `.env` file so a developer's settings do not leak into the figures."""
    tmpdir = None
    if postgis:
        url = postgis_url
        _create_postgis(url)
    else:
        tmpdir = tempfile.mkdtemp(prefix="carloan-bench-")
        url = f"spatialite:///{tmpdir}/bench.sqlite3"
    os.environ["DATABASE_URL"] = url
    os.environ["DJANGO_SETTINGS_MODULE"] = "carloan.settings"
    os.environ["DEBUG"] = "true"
    os.environ["ALLOWED_HOSTS"] = "testserver,localhost,127.0.0.1"
    os.environ["CARLOAN_ENV_FILE"] = "/nonexistent"
    os.environ.setdefault("LOG_LEVEL", "WARNING")
    import django

    django.setup()
    from django.core.management import call_command
    from django.db import connections

    try:
        call_command("migrate", verbosity=0, interactive=False)
        yield BenchDatabase(url=url, engine=_describe_engine())
    finally:
        connections.close_all()
        if keep:
            print(f"kept the database: DATABASE_URL={url}")
        elif postgis:
            _drop_postgis(url)
        elif tmpdir:
            shutil.rmtree(tmpdir, ignore_errors=True)


def machine() -> str:
    return (
        f"{os.cpu_count()} CPUs, {platform.system()} {platform.release()}, "
        f"Python {platform.python_version()}"
    )


# --- The fleet ------------------------------------------------------------------------------------
@dataclass
class Fleet:
    platform_id: int
    lender_ids: list[int]
    branch_ids: dict[int, list[int]]  # lender id -> its branches
    users: dict[str, object]  # "platform_admin", "lender_admin", "branch_operator" -> User
    counts: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0


def _unique(make, used: set[str]) -> str:
    while True:
        value = make()
        if value not in used:
            used.add(value)
            return value


def build_fleet(
    *,
    vehicles: int = 10_000,
    stock_per_vehicle: float = 1.0,
    lenders: int = 2,
    branches: int = 10,
    seed: int = SEED,
    batch_size: int = 2000,
) -> Fleet:
    """platform -> `lenders` lenders -> `branches` branches (spread over the lenders); the
    vehicles spread evenly over the branches, each with one mounted wired tracker (an active
    binding) that has a last-known state; plus `stock_per_vehicle` x vehicles wireless trackers
    in stock (some faulty) at the lenders and branches. Defaults: 10,000 vehicles, 20,000
    devices, 10,000 active bindings. One transaction (SQLite commits once)."""
    from django.contrib.auth.models import Permission
    from django.contrib.gis.geos import Point
    from django.db import connection, transaction
    from django.utils import timezone

    from accounts.models import Customer
    from accounts.services import customer_create, role_save, user_create
    from carloan import fakes
    from devices.models import Device, DeviceKind, WorkMode
    from devices.services import device_model_save, manufacturer_save
    from vehicles.models import DeviceBinding, Vehicle

    rng = random.Random(seed)
    started = time.monotonic()
    now = timezone.now()
    with transaction.atomic():
        # The tree, roles and users: few rows, so through the services like the real thing.
        root = customer_create(parent=None, name="Bench platform", code="bench-platform")
        lender_rows = [
            customer_create(parent=root, name=f"Lender {i}", code=f"bench-lender-{i}")
            for i in range(lenders)
        ]
        branch_ids: dict[int, list[int]] = {c.pk: [] for c in lender_rows}
        for i in range(branches):
            lender = lender_rows[i % lenders]
            lender.refresh_from_db()  # MPTT moved its right edge on the previous insert
            branch = customer_create(parent=lender, name=f"Branch {i}", code=f"bench-branch-{i}")
            branch_ids[lender.pk].append(branch.pk)
        for lender in lender_rows:
            lender.refresh_from_db()
        all_perms = Permission.objects.filter(
            content_type__app_label__in=("accounts", "devices", "vehicles")
        )
        admin_role = role_save(customer=lender_rows[0], name="Administrator", permissions=all_perms)
        operator_role = role_save(
            customer=lender_rows[0],
            name="Operator",
            permissions=Permission.objects.filter(
                content_type__app_label__in=("devices", "vehicles"),
                codename__regex=r"^(view|add|change)_",
            ),
        )
        first_branch = Customer.objects.get(pk=branch_ids[lender_rows[0].pk][0])
        users = {
            # No passwords: the benches log in with force_login.
            "platform_admin": user_create(
                username="bench_root",
                password=None,
                customer=root,
                is_staff=True,
                is_superuser=True,
            ),
            "lender_admin": user_create(
                username="bench_lender_admin",
                password=None,
                customer=lender_rows[0],
                role=admin_role,
                is_staff=True,
            ),
            "branch_operator": user_create(
                username="bench_branch_operator",
                password=None,
                customer=first_branch,
                role=operator_role,
                is_staff=True,
            ),
        }
        maker = manufacturer_save(customer=root, name="Concox")
        wired_model = device_model_save(
            customer=root,
            manufacturer=maker,
            name="GT06N",
            protocol="gt06",
            kind=DeviceKind.WIRED,
        )
        wireless_model = device_model_save(
            customer=root,
            manufacturer=maker,
            name="AT4",
            protocol="gt06",
            kind=DeviceKind.WIRELESS,
            default_work_mode=WorkMode.ALARM_CLOCK,
        )

        # Vehicles: even over the branches.
        all_branches = [b for ids in branch_ids.values() for b in ids]
        used: set[str] = set()
        vehicle_rows = []
        for i in range(vehicles):
            vehicle_rows.append(
                Vehicle(
                    customer_id=all_branches[i % len(all_branches)],
                    plate=_unique(
                        lambda: fakes.make_plate(
                            rng,
                            rng.choice("陕京川豫粤苏"),
                            rng.choice("ABCDEF"),
                            new_energy=rng.random() < 0.1,
                        ),
                        used,
                    ),
                    vin=_unique(lambda: fakes.make_vin(rng), used),
                    brand="吉利",
                    model_name="帝豪",
                    borrower_name=f"借款人{i}",
                    borrower_phone=fakes.make_mobile(rng),
                    borrower_id_number=fakes.make_id_number(rng, "610113"),
                    loan_principal=Decimal(rng.randrange(50, 301) * 1000),
                    loan_term_months=rng.choice((12, 24, 36)),
                    loan_start_date=(now - dt.timedelta(days=rng.randrange(730))).date(),
                    repayment_status=Vehicle.RepaymentStatus.NORMAL,
                )
            )
        vehicle_rows = Vehicle.objects.bulk_create(vehicle_rows, batch_size=batch_size)

        # Mounted wired trackers (one per vehicle) with a last-known state, then the stock.
        device_rows = []
        for vehicle in vehicle_rows:
            seen = now - dt.timedelta(seconds=rng.randrange(5, 3600))
            device_rows.append(
                Device(
                    identifier=_unique(lambda: fakes.make_imei(rng), used),
                    protocol="gt06",
                    kind=DeviceKind.WIRED,
                    model=wired_model,
                    customer_id=vehicle.customer_id,
                    status=Device.Status.INSTALLED,
                    sim_iccid=fakes.make_iccid(rng),
                    work_params={"moving_interval_s": 30, "still_interval_s": 60},
                    online=rng.random() < 0.85,
                    last_seen_at=seen,
                    last_fix_at=seen,
                    last_position=Point(
                        108.94 + rng.uniform(-0.3, 0.3), 34.26 + rng.uniform(-0.3, 0.3), srid=4326
                    ),
                    last_speed_kmh=0.0,
                )
            )
        stock_places = [c.pk for c in lender_rows] + all_branches
        for _i in range(round(vehicles * stock_per_vehicle)):
            device_rows.append(
                Device(
                    identifier=_unique(lambda: fakes.make_imei(rng), used),
                    protocol="gt06",
                    kind=DeviceKind.WIRELESS,
                    model=wireless_model,
                    customer_id=rng.choice(stock_places),
                    status=Device.Status.FAULTY if rng.random() < 0.05 else Device.Status.STOCK,
                    work_mode=WorkMode.ALARM_CLOCK,
                    work_params={"times": ["08:00"]},
                )
            )
        device_rows = Device.objects.bulk_create(device_rows, batch_size=batch_size)

        DeviceBinding.objects.bulk_create(
            [
                DeviceBinding(vehicle_id=v.pk, device_id=d.pk, bound_at=now)
                for v, d in zip(vehicle_rows, device_rows, strict=False)
            ],
            batch_size=batch_size,
        )
    if connection.vendor == "postgresql":
        # What autovacuum would have done by the time anyone lists these rows.
        with connection.cursor() as cursor:
            cursor.execute("ANALYZE")
    return Fleet(
        platform_id=root.pk,
        lender_ids=[c.pk for c in lender_rows],
        branch_ids=branch_ids,
        users=users,
        counts={
            "customers": 1 + lenders + branches,
            "vehicles": len(vehicle_rows),
            "devices": len(device_rows),
            "bindings": len(vehicle_rows),
        },
        seconds=time.monotonic() - started,
    )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Time building the benchmark fleet.")
    parser.add_argument("--postgis", action="store_true", help="PostGIS instead of SpatiaLite")
    parser.add_argument("--postgis-url", default=DEFAULT_POSTGIS_URL)
    parser.add_argument("--vehicles", type=int, default=10_000)
    parser.add_argument("--keep", action="store_true", help="keep the database afterwards")
    args = parser.parse_args(argv)
    with bench_database(postgis=args.postgis, postgis_url=args.postgis_url, keep=args.keep) as db:
        fleet = build_fleet(vehicles=args.vehicles)
        counts = ", ".join(f"{n:,} {name}" for name, n in fleet.counts.items())
        print(f"{dt.date.today():%Y-%m-%d}  {machine()}  {db.engine}")  # noqa: DTZ011
        print(f"fleet built in {fleet.seconds:.1f} s: {counts}")


if __name__ == "__main__":
    main()
