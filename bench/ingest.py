"""Ingest speed: `gateway.ingest.ingest_batch` over 500-message batches (no sockets, no codecs).

A fleet of N mounted trackers (bench/fleet.py) drives around Xi'an reporting one GPS fix per
message, GT06-like (ACC, speed, course, satellites, battery, GSM, cells in `extra`), a few
blind-area re-uploads and parked devices mixed in. Only `ingest_batch` is timed: hygiene, the
duplicate check, the bulk insert, the per-device state update and the commit. The gateway budget
(DESIGN.md) is >= 5,000 positions/s end to end on PostGIS, so this half must be well above it.

    .venv/bin/python bench/ingest.py [--postgis] [--devices 2000] [--positions 20000]
"""

from __future__ import annotations

import argparse
import datetime as dt
import math
import random
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench.fleet import bench_database, build_fleet, machine  # noqa: E402

POSTGIS_URL = "postgis://postgres@127.0.0.1:5432/carloan_bench_ingest"
BATCH = 500


def make_batches(device_ids: list[int], positions: int, seed: int = 7) -> list[list]:
    from gateway.ingest import Inbound
    from gateway.protocols import messages as m

    rng = random.Random(seed)
    start = dt.datetime.now(dt.UTC).replace(microsecond=0) - dt.timedelta(hours=6)
    cars = {
        pk: {
            "lat": 34.26 + rng.uniform(-0.2, 0.2),
            "lon": 108.94 + rng.uniform(-0.2, 0.2),
            "course": rng.randrange(360),
            "parked": rng.random() < 0.2,
            "t": start + dt.timedelta(seconds=rng.randrange(30)),
            "odo": rng.uniform(1000, 90000),
        }
        for pk in device_ids
    }
    items = []
    for n in range(positions):
        pk = device_ids[n % len(device_ids)]
        car = cars[pk]
        car["t"] += dt.timedelta(seconds=30)
        speed = 0.0 if car["parked"] else rng.uniform(20, 70)
        step_km = speed * 30 / 3600
        car["course"] = (car["course"] + rng.randrange(-20, 21)) % 360
        rad = math.radians(car["course"])
        car["lat"] += step_km / 111.2 * math.cos(rad)
        car["lon"] += step_km / (111.2 * math.cos(math.radians(car["lat"]))) * math.sin(rad)
        car["odo"] += step_km
        realtime = rng.random() > 0.03  # a few blind-area re-uploads
        fix_time = car["t"] if realtime else car["t"] - dt.timedelta(hours=2)
        fix = m.new_position(
            fix_time=fix_time,
            lat=round(car["lat"], 6),
            lon=round(car["lon"], 6),
            valid=rng.random() > 0.02,
            speed_kmh=round(speed, 1),
            course=car["course"],
            satellites=rng.randrange(4, 14),
            realtime=realtime,
            acc=not car["parked"],
            battery_pct=rng.randrange(60, 101),
            external_voltage=round(rng.uniform(12.0, 14.2), 2),
            gsm_signal=rng.randrange(40, 100),
            odometer_km=round(car["odo"], 1),
            cells=(m.new_cell(mcc=460, mnc=0, lac=0x2866, cid=rng.randrange(1, 60000)),),
            extra={"terminal_info": 0x46, "gps_tracking": True},
        )
        message = m.new_message(
            protocol="gt06", type=m.POSITION, device_id=None, serial=n & 0xFFFF, positions=(fix,)
        )
        items.append(Inbound(device_id=pk, message=message, received_at=car["t"], token=n))
    return [items[i : i + BATCH] for i in range(0, len(items), BATCH)]


def run(postgis: bool, devices: int, positions: int) -> None:
    with bench_database(postgis=postgis, postgis_url=POSTGIS_URL) as db:
        build_fleet(vehicles=devices, stock_per_vehicle=0.0)
        from django.db import connection

        from devices.models import Device
        from gateway.ingest import ingest_batch
        from gateway.models import Position

        ids = list(Device.objects.filter(status="installed").values_list("pk", flat=True))
        batches = make_batches(ids, positions)
        ingest_batch(make_batches(ids[:10], 10, seed=1)[0])  # warm up connection and caches
        stored, seconds = 0, []
        for batch in batches:
            started = time.perf_counter()
            result = ingest_batch(batch)
            seconds.append(time.perf_counter() - started)
            stored += result.stored
        total = sum(seconds)
        seconds.sort()
        p99 = seconds[min(len(seconds) - 1, int(len(seconds) * 0.99))]
        rows = Position.objects.count()
        print(f"{dt.date.today():%Y-%m-%d}  {machine()}  {db.engine} ({connection.vendor})")  # noqa: DTZ011
        print(
            f"ingest_batch: {stored:,} positions from {len(ids):,} devices in {len(batches)} "
            f"batches of {BATCH}: {total:.2f} s = {stored / total:,.0f} positions/s; "
            f"per batch p50 {statistics.median(seconds) * 1000:.0f} ms, "
            f"p99 {p99 * 1000:.0f} ms ({rows:,} rows stored)"
        )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--postgis", action="store_true", help="PostGIS instead of SpatiaLite")
    parser.add_argument("--devices", type=int, default=2000)
    parser.add_argument("--positions", type=int, default=20_000)
    args = parser.parse_args(argv)
    run(args.postgis, args.devices, args.positions)


if __name__ == "__main__":
    main()
