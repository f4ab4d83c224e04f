"""Gateway end to end: tracker connections -> `manage.py run_gateway` -> committed rows -> acks.

Builds a fleet (bench/fleet.py) whose mounted trackers speak GT06, JT/T 808 and H02 in turn,
starts `manage.py run_gateway` as a subprocess on free ports against that database, and drives
it from this process with real protocol clients (plain asyncio): GT06 login, JT808 register ->
the auth code the gateway issued -> auth, H02 heartbeat, then position frames built by
`gateway.simulator.frames` from `gateway.simulator.routes` (cars driving around Xi'an, one fix
per 10 simulated seconds). Each client keeps up to `--window` frames unacked and measures, for
every position frame, the time from the write to the matching ack.

    .venv/bin/python bench/gateway.py                         # SpatiaLite, 2,000 clients, unpaced
    .venv/bin/python bench/gateway.py --postgis --seconds 60  # the throughput budget
    .venv/bin/python bench/gateway.py --postgis --rate 2000   # the ack latency budget
    .venv/bin/python bench/gateway.py --idle                  # 10,000 idle connections

Prints connections, positions sent / acked, committed positions/s (rows counted in the database
at the start and the end of the measured window), ack latency p50/p95/p99/max, the gateway's RSS
and CPU, per protocol; then stops the gateway with SIGTERM and checks that it exits cleanly.
Exit status 1 when something failed (a connection refused, an acked position missing, an unclean
stop) or a budget of DESIGN.md was missed.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import concurrent.futures
import contextlib
import datetime as dt
import gc
import math
import os
import random
import re
import resource
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench.fleet import bench_database, build_fleet, machine  # noqa: E402

DEFAULT_POSTGIS_URL = "postgis://postgres@127.0.0.1:5432/carloan_gwbench"
PROTOCOLS = ("gt06", "jt808", "h02")
SEED = 20261123
FIX_STEP_S = 10  # simulated seconds between two fixes of a device
SIM_HOURS = 13  # fixes are stamped from a past 08:00 Beijing time over at most this many hours
LOGIN_TIMEOUT = 60.0  # seconds for a connection to be accepted and its login answered
DRAIN_TIMEOUT = 30.0  # seconds to wait for the acks of the frames still in flight at the end
STOP_TIMEOUT = 60.0  # seconds for the gateway to exit after SIGTERM
OFFLINE_TIMEOUT = 180.0  # seconds for the gateway to mark every closed connection offline
LISTEN_TIMEOUT = 120.0  # seconds for the gateway to start listening
PORTS_PER_SOURCE = 25_000  # stay under the 28,232 ephemeral ports of one (src, dst) pair
BUDGET_RATE = 5000.0  # positions/s, PostGIS, unpaced (DESIGN.md)
BUDGET_P99_MS = 250.0  # at 2,000 positions/s, PostGIS (DESIGN.md)
BUDGET_P99_RATE = 2000.0
BUDGET_IDLE = 10_000  # connections held by one gateway process
_LISTENING = re.compile(r"(\w+) listening on ([\d.]+):(\d+)")


# --- The fleet: protocols, identifiers, a consistent last-known state ---------------------------
@dataclass(frozen=True)
class BenchDevice:
    pk: int
    identifier: str
    protocol: str


def sim_start(now: dt.datetime) -> dt.datetime:
    """The latest 08:00 Beijing time at least SIM_HOURS before `now`: the fixes cover a day's
    driving (the routes park their cars from 21:30 Beijing time) and are never in the future."""
    beijing = dt.timezone(dt.timedelta(hours=8))
    local = (now - dt.timedelta(hours=SIM_HOURS)).astimezone(beijing)
    start = local.replace(hour=8, minute=0, second=0, microsecond=0)
    if start > local:
        start -= dt.timedelta(days=1)
    return start.astimezone(dt.UTC)


def prepare_devices(
    count: int, protocols: tuple[str, ...], start: dt.datetime | None
) -> list[BenchDevice]:
    """The fleet's mounted trackers take the protocols in turn: JT808 ones get 12-digit terminal
    ids (their model says JT808), H02 ones keep the 15-digit IMEI. With `start`, each device's
    last fix is its route's starting point a minute before `start`, so the first fix the bench
    sends follows it (no implied-speed flag) and every fix moves "last position" forwards."""
    from django.contrib.gis.geos import Point
    from django.db import transaction

    from devices.models import Device, DeviceKind
    from devices.services import device_model_save
    from gateway.simulator.routes import Route

    rows = list(Device.objects.filter(status=Device.Status.INSTALLED).order_by("pk")[:count])
    if len(rows) < count:
        raise SystemExit(f"the fleet has {len(rows)} mounted trackers, {count} needed")
    models = {"gt06": rows[0].model}
    maker = rows[0].model.manufacturer
    for protocol in protocols:
        if protocol not in models:
            models[protocol] = device_model_save(
                customer=maker.customer,
                manufacturer=maker,
                name=f"bench {protocol}",
                protocol=protocol,
                kind=DeviceKind.WIRED,
            )
    fields = ["protocol", "identifier", "model"]
    if start is not None:
        fields += ["last_fix_at", "last_seen_at", "last_position", "last_speed_kmh", "last_acc"]
    devices = []
    for i, row in enumerate(rows):
        protocol = protocols[i % len(protocols)]
        row.protocol = protocol
        row.model = models[protocol]
        if protocol == "jt808":
            row.identifier = f"{13_900_000_000 + i:012d}"  # a terminal phone number
        if start is not None:
            fix = Route(row.pk, start_time=start).position()
            row.last_fix_at = row.last_seen_at = start - dt.timedelta(minutes=1)
            row.last_position = Point(fix.lon, fix.lat, srid=4326)
            row.last_speed_kmh, row.last_acc = 0.0, False
        devices.append(BenchDevice(row.pk, row.identifier, protocol))
    with transaction.atomic():
        Device.objects.bulk_update(rows, fields, batch_size=500)
    return devices


# --- The gateway subprocess ----------------------------------------------------------------------
def _proc_stat(pid: int) -> tuple[float, int] | None:
    """(CPU seconds user + system, threads) of a process from /proc/<pid>/stat."""
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = raw[raw.rindex(")") + 2 :].split()
    ticks = os.sysconf("SC_CLK_TCK")
    return (int(fields[11]) + int(fields[12])) / ticks, int(fields[17])


def rss_mb(pid: int) -> float | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        return None
    return None


class GatewayProcess:
    """`manage.py run_gateway` on free ports, its output in files of a temp directory."""

    def __init__(self, protocols: tuple[str, ...], *, alarms: bool = True) -> None:
        self.protocols = protocols
        self.alarms = alarms  # False: run_gateway --no-alarms (the engine's share of the cost)
        self.dir = tempfile.mkdtemp(prefix="carloan-gwbench-")
        self.out_path = Path(self.dir) / "stdout.log"
        self.err_path = Path(self.dir) / "stderr.log"
        self.proc: subprocess.Popen | None = None
        self.ports: dict[str, int] = {}
        self.host = "127.0.0.1"
        self.returncode: int | None = None
        self.stop_seconds: float | None = None

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def start(self) -> float:
        """Start and wait until every listener is up; returns the seconds that took."""
        ports = [f"{p}={0 if p in self.protocols else 'off'}" for p in PROTOCOLS]
        command = [sys.executable, "manage.py", "run_gateway", "--host", self.host]
        for port in ports:
            command += ["--port", port]
        if not self.alarms:
            command.append("--no-alarms")
        # As in production: DEBUG off (no SQL kept per query), so a key of its own. The rest
        # of the environment is bench_database()'s (DATABASE_URL, no .env file); REDIS_URL, when
        # set, gives the live feed a Redis channel layer, as in production.
        env = {**os.environ, "DEBUG": "false", "SECRET_KEY": f"gwbench-{os.urandom(16).hex()}"}
        started = time.monotonic()
        with open(self.out_path, "wb") as out, open(self.err_path, "wb") as err:
            self.proc = subprocess.Popen(  # noqa: S603 - our own interpreter and manage.py
                command, cwd=ROOT, env=env, stdout=out, stderr=err
            )
        while time.monotonic() - started < LISTEN_TIMEOUT:
            found = {
                m.group(1): int(m.group(3)) for m in _LISTENING.finditer(self.err_path.read_text())
            }
            if set(self.protocols) <= set(found):
                self.ports = {p: found[p] for p in self.protocols}
                return time.monotonic() - started
            if self.proc.poll() is not None:
                break
            time.sleep(0.1)
        self.kill()
        raise SystemExit(f"the gateway did not start listening:\n{self.log_tail()}")

    def stop(self) -> bool:
        """SIGTERM, then wait: True when it flushed and exited with status 0 in time."""
        if self.proc is None or self.proc.poll() is not None:
            self.returncode = None if self.proc is None else self.proc.returncode
            return False
        started = time.monotonic()
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.returncode = self.proc.wait(STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            self.kill()
            return False
        self.stop_seconds = time.monotonic() - started
        return self.returncode == 0 and "gateway stopped" in self.out_path.read_text()

    def kill(self) -> None:
        """Only our own child, by its pid."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()

    def problems(self) -> list[str]:
        """Tracebacks and errors the gateway logged."""
        text = self.err_path.read_text(errors="replace")
        lines = text.splitlines()
        return [
            line
            for line in lines
            if line.startswith("Traceback") or "Error" in line or "failed" in line
        ]

    def log_tail(self, lines: int = 30) -> str:
        text = self.err_path.read_text(errors="replace") + self.out_path.read_text(errors="replace")
        return "\n".join(text.splitlines()[-lines:])

    def cleanup(self) -> None:
        self.kill()
        for path in (self.out_path, self.err_path):
            with contextlib.suppress(OSError):
                path.unlink()
        with contextlib.suppress(OSError):
            os.rmdir(self.dir)


# --- The clients ---------------------------------------------------------------------------------
@dataclass
class ProtocolStats:
    connections: int = 0
    failed: int = 0
    sent: int = 0  # position frames written in the measured window
    acked: int = 0  # ... and acked
    latencies: list[float] = field(default_factory=list)  # seconds, measured window
    sent_total: int = 0
    acked_total: int = 0
    deferred: int = 0  # paced sends that found the window full
    heartbeats: int = 0
    heartbeats_acked: int = 0
    heartbeat_latencies: list[float] = field(default_factory=list)
    dropped: int = 0  # connections the gateway closed during the run
    unmatched: int = 0  # acks for no frame in flight


class Run:
    """What every client shares: the phase, the pacing and the counters."""

    WARMUP, MEASURE, AFTER = 0, 1, 2

    def __init__(self, *, window: int, rate: float, clients: int, start: dt.datetime | None):
        self.loop = asyncio.get_running_loop()
        self.window = window
        self.rate = rate
        self.period = clients / rate if rate else 0.0
        self.start = start
        self.phase = Run.WARMUP
        self.sending = False
        self.active = True  # losing a connection now counts as a drop
        self.stats = {p: ProtocolStats() for p in PROTOCOLS}
        self.errors: list[str] = []
        self.clock_overrun = 0  # fixes stamped after the wall clock (too few devices)
        self.clients: list[TrackerClient] = []

    def in_flight(self) -> int:
        return sum(len(c.pending) for c in self.clients)


class TrackerClient(asyncio.Protocol):
    """One tracker: login, then position frames as fast as its window of unacked frames allows
    (or at its share of `--rate`), each ack matched to its frame (GT06 / JT808 by serial, H02 in
    order: its acks carry no serial)."""

    def __init__(self, run: Run, device: BenchDevice, rng: random.Random) -> None:
        from gateway.protocols import gt06, h02, jt808
        from gateway.simulator import frames as f
        from gateway.simulator.routes import Route

        self.f = f
        self.run = run
        self.device = device
        self.protocol = device.protocol
        self.stats = run.stats[device.protocol]
        self.codec = {"gt06": gt06, "jt808": jt808, "h02": h02}[device.protocol]
        self.transport: asyncio.Transport | None = None
        self.buffer = b""
        self.closed = False
        self.serial = 1
        self.waiter: tuple[object, asyncio.Future] | None = None
        # Frames in flight: serial -> (sent at, phase); H02 keeps them in order.
        self.pending: dict[int, tuple[float, int]] | collections.deque = (
            collections.deque() if self.protocol == "h02" else {}
        )
        self.heartbeats: collections.deque = collections.deque()
        self.deferred = 0
        self.route = Route(device.pk, start_time=run.start) if run.start else None
        self.fixes = 0
        self.next_at = 0.0
        self.rng = rng
        if self.protocol == "gt06":
            self.position_id, self.heartbeat_id = gt06.MSG_GPS_LBS_2, gt06.MSG_STATUS
        elif self.protocol == "jt808":
            self.position_id, self.heartbeat_id = jt808.MSG_LOCATION, jt808.MSG_HEARTBEAT
        else:
            self.position_id, self.heartbeat_id = "V1", "HTBT"

    # -- asyncio callbacks --
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        now = self.run.loop.time()
        self.buffer += data
        frames, self.buffer, _discarded = self.codec.split_frames(self.buffer)
        for frame in frames:
            try:
                downlink = self.f.parse_downlink(self.protocol, frame)
            except ValueError as exc:
                self.run.errors.append(f"{self.protocol} {self.device.identifier}: {exc}")
                continue
            self._downlink(downlink, now)

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        if self.run.active:
            self.stats.dropped += 1
        if self.waiter is not None and not self.waiter[1].done():
            self.waiter[1].set_exception(ConnectionError(f"closed by the gateway ({exc})"))

    # -- session --
    def _write(self, data: bytes) -> None:
        assert self.transport is not None
        self.transport.write(data)

    def _next_serial(self) -> int:
        serial = self.serial
        self.serial = serial % 0xFFFF + 1
        return serial

    async def _expect(self, want) -> object:
        future = self.run.loop.create_future()
        self.waiter = (want, future)
        try:
            return await future
        finally:
            self.waiter = None

    async def login(self) -> None:
        f = self.f
        ident = self.device.identifier
        if self.protocol == "gt06":
            serial = self._next_serial()
            self._write(f.gt06_login(ident, serial))
            await self._expect(lambda d: d.kind == f.ACK and d.acked_serial == serial)
        elif self.protocol == "jt808":
            self._write(f.jt808_register(ident, self._next_serial()))
            reply = await self._expect(lambda d: d.kind == f.REGISTER_REPLY)
            code = f.jt808_parse_register_reply(reply.frame)
            self._write(f.jt808_auth(ident, self._next_serial(), code))
            ok = await self._expect(lambda d: d.kind == f.ACK and d.acked_id == self.codec.MSG_AUTH)
            if ok.result:
                raise ConnectionError(f"auth refused ({ok.result})")
        else:
            # H02 has no login: the gateway learns the device from its first frame.
            self._write(f.h02_heartbeat(ident))
            await self._expect(lambda d: d.kind == f.ACK and d.acked_id == "HTBT")

    def _downlink(self, d, now: float) -> None:
        if self.waiter is not None:
            want, future = self.waiter
            if want(d) and not future.done():
                future.set_result(d)
                return
        if d.kind != self.f.ACK:
            return
        if d.acked_id == self.position_id:
            if self.protocol == "h02":
                entry = self.pending.popleft() if self.pending else None
            else:
                entry = self.pending.pop(d.acked_serial, None)
            if entry is None:
                self.stats.unmatched += 1
                return
            sent_at, phase = entry
            self.stats.acked_total += 1
            if phase == Run.MEASURE:
                self.stats.acked += 1
                self.stats.latencies.append(now - sent_at)
            if self.run.sending:
                if not self.run.rate:
                    self.send_position()
                elif self.deferred:
                    self.deferred -= 1
                    self.send_position()
        elif d.acked_id == self.heartbeat_id and self.heartbeats:
            self.stats.heartbeats_acked += 1
            self.stats.heartbeat_latencies.append(now - self.heartbeats.popleft())

    def _position_frame(self) -> bytes:
        f = self.f
        assert self.route is not None and self.run.start is not None
        self.fixes += 1
        fix = self.route.step(FIX_STEP_S)
        when = self.run.start + dt.timedelta(seconds=self.fixes * FIX_STEP_S)
        if when > dt.datetime.now(dt.UTC):
            self.run.clock_overrun += 1
        speed, course = round(fix.speed_kmh, 1), int(fix.course) % 360
        if self.protocol == "gt06":
            return f.gt06_location(
                self._next_serial(),
                fix_time=when,
                lat=fix.lat,
                lon=fix.lon,
                speed_kmh=speed,
                course=course,
                satellites=9,
                valid=True,
                acc=fix.acc,
                mileage_m=int(fix.odometer_m),
            )
        if self.protocol == "jt808":
            return f.jt808_location(
                self.device.identifier,
                self._next_serial(),
                fix_time=when,
                lat=fix.lat,
                lon=fix.lon,
                speed_kmh=speed,
                course=course,
                acc=fix.acc,
                valid=True,
                mileage_km=fix.odometer_m / 1000,
                csq=25,
                satellites=9,
            )
        return f.h02_v1(
            self.device.identifier,
            fix_time=when,
            lat=fix.lat,
            lon=fix.lon,
            speed_kmh=speed,
            course=course,
            valid=True,
            status_word=f.h02_status_word(acc=fix.acc),
        )

    def send_position(self) -> None:
        if self.closed:
            return
        serial = self.serial
        frame = self._position_frame()
        phase = self.run.phase
        entry = (self.run.loop.time(), phase)
        if self.protocol == "h02":
            self.pending.append(entry)
        else:
            self.pending[serial] = entry
        self._write(frame)
        self.stats.sent_total += 1
        if phase == Run.MEASURE:
            self.stats.sent += 1

    def start_sending(self) -> None:
        if not self.run.rate:
            for _ in range(self.run.window):
                self.send_position()
            return
        self.next_at = self.run.loop.time() + self.rng.uniform(0, self.run.period)
        self.run.loop.call_at(self.next_at, self._tick)

    def _tick(self) -> None:
        """Paced: this device's share of `--rate`, on a fixed schedule (no drift)."""
        if not self.run.sending or self.closed:
            return
        if len(self.pending) < self.run.window:
            self.send_position()
        else:
            self.deferred += 1
            self.stats.deferred += 1
        self.next_at += self.run.period
        self.run.loop.call_at(self.next_at, self._tick)

    def send_heartbeat(self) -> None:
        if self.closed:
            return
        f = self.f
        if self.protocol == "gt06":
            frame = f.gt06_heartbeat(self._next_serial(), acc=False)
        elif self.protocol == "jt808":
            frame = f.jt808_heartbeat(self.device.identifier, self._next_serial())
        else:
            frame = f.h02_heartbeat(self.device.identifier)
        self.heartbeats.append(self.run.loop.time())
        self.stats.heartbeats += 1
        self._write(frame)

    def close(self) -> None:
        if self.transport is not None and not self.closed:
            self.transport.close()


async def connect_all(
    run: Run,
    devices: list[BenchDevice],
    host: str,
    ports: dict[str, int],
    *,
    concurrency: int,
    sources: list[str | None],
    rng: random.Random,
) -> float:
    """Open one connection per device and log it in, `concurrency` handshakes at a time (the
    gateway's listen backlog is asyncio's default 100). Returns the seconds it took."""
    loop = run.loop
    gate = asyncio.Semaphore(concurrency)

    async def one(i: int, device: BenchDevice) -> None:
        stats = run.stats[device.protocol]
        async with gate:
            client = TrackerClient(run, device, random.Random(rng.random()))
            source = sources[i % len(sources)]
            try:
                async with asyncio.timeout(LOGIN_TIMEOUT):
                    await loop.create_connection(
                        lambda: client,
                        host,
                        ports[device.protocol],
                        local_addr=(source, 0) if source else None,
                    )
                    await client.login()
            except (OSError, ConnectionError, TimeoutError, ValueError) as exc:
                stats.failed += 1
                if len(run.errors) < 20:
                    run.errors.append(f"{device.protocol} {device.identifier}: {exc!r}")
                client.close()
                return
            stats.connections += 1
            run.clients.append(client)

    started = time.monotonic()
    await asyncio.gather(*(one(i, d) for i, d in enumerate(devices)))
    return time.monotonic() - started


# --- Measuring -----------------------------------------------------------------------------------
class Database:
    """Counts on a thread of its own (the ORM is sync; the clients' loop keeps running)."""

    def __init__(self) -> None:
        self.pool = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="bench-db")

    async def call(self, fn, *args):
        return await asyncio.get_running_loop().run_in_executor(self.pool, fn, *args)

    def close(self) -> None:
        from django.db import connections

        self.pool.submit(connections.close_all).result()
        self.pool.shutdown()


def count_positions() -> tuple[float, dict[str, int]]:
    """(monotonic time, rows per protocol); the time is the middle of the query."""
    from django.db.models import Count

    from gateway.models import Position

    started = time.monotonic()
    rows = dict(
        Position.objects.order_by()
        .values_list("device__protocol")
        .annotate(n=Count("id"))
        .values_list("device__protocol", "n")
    )
    return (started + time.monotonic()) / 2, rows


def backend_pids() -> list[int]:
    """PostgreSQL: the server processes of the other connections to this database (the
    gateway's writer); SQLite runs inside the gateway."""
    from django.db import connection

    if connection.vendor != "postgresql":
        return []
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT pid FROM pg_stat_activity WHERE datname = current_database()"
            " AND pid <> pg_backend_pid()"
        )
        return [row[0] for row in cursor.fetchall()]


def gateway_status() -> dict | None:
    from gateway.models import GatewayStatus

    return (
        GatewayStatus.objects.order_by("-updated_at")
        .values("connections", "sessions", "queue_depth", "rss_mb", "updated_at")
        .first()
    )


def devices_online() -> int:
    """Mounted trackers the database shows online (the fleet has no others)."""
    from devices.models import Device

    return Device.objects.filter(online=True).count()


async def disconnect_all(run: Run, db: Database) -> tuple[float, int]:
    """Close every client at once (a network blip, a gateway restart) and wait until the
    gateway has marked them all offline. Returns (seconds, devices still online)."""
    started = time.monotonic()
    run.active = False
    for client in run.clients:
        client.close()
    online = await db.call(devices_online)
    while online and time.monotonic() - started < OFFLINE_TIMEOUT:
        await asyncio.sleep(0.25)
        online = await db.call(devices_online)
    return time.monotonic() - started, online


def alarms_raised() -> int | None:
    try:
        from alarms.models import Alarm
    except ImportError:
        return None
    return Alarm.objects.count()


@dataclass
class Snapshot:
    at: float
    gateway_cpu: float
    gateway_threads: int
    rss: float | None
    own_cpu: float
    backend_cpu: float


def snapshot(gateway: GatewayProcess, backends: list[int]) -> Snapshot:
    stat = _proc_stat(gateway.pid) or (0.0, 0)
    backend = sum((_proc_stat(pid) or (0.0, 0))[0] for pid in backends)
    return Snapshot(
        time.monotonic(), stat[0], stat[1], rss_mb(gateway.pid), time.process_time(), backend
    )


def percentile(values: list[float], p: float) -> float:
    if not values:
        return math.nan
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, math.ceil(p / 100 * len(ordered)) - 1))]


def ms(value: float) -> str:
    return "-" if math.isnan(value) else f"{value * 1000:,.1f}"


def _fmt_mb(value: float | None) -> str:
    return "?" if value is None else f"{value:,.0f}"


def _source_addresses(connections: int, protocols: int, wanted: int | None) -> list[str | None]:
    """Several 127.0.0.x source addresses once one (src, dst) pair would run out of ephemeral
    ports (32768-60999 by default); none needed below that."""
    if wanted is None:
        wanted = math.ceil(connections / protocols / PORTS_PER_SOURCE)
        if wanted <= 1:
            return [None]
    return [f"127.0.0.{2 + i}" for i in range(max(1, wanted))]


def raise_nofile(needed: int) -> int:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = hard if hard != resource.RLIM_INFINITY else max(soft, 1_048_576)
    if soft < target:
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
        soft = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
    if soft != resource.RLIM_INFINITY and soft < needed:
        raise SystemExit(
            f"{needed:,} connections need {needed:,} file descriptors, the limit is {soft:,} "
            f"(hard {hard:,}): raise it (ulimit -Hn / limits.conf) or open fewer connections"
        )
    return soft


# --- The two modes -------------------------------------------------------------------------------
async def throughput(args, devices, gateway: GatewayProcess, start: dt.datetime) -> dict:
    rng = random.Random(args.seed)
    run = Run(window=args.window, rate=args.rate, clients=len(devices), start=start)
    loop = run.loop
    loop.set_exception_handler(lambda _loop, ctx: run.errors.append(str(ctx.get("message"))))
    db = Database()
    result: dict = {"run": run}
    try:
        rss_idle = rss_mb(gateway.pid)
        result["connect_s"] = await connect_all(
            run,
            devices,
            gateway.host,
            gateway.ports,
            concurrency=args.connect_concurrency,
            sources=_source_addresses(len(devices), len(gateway.ports), args.source_ips),
            rng=rng,
        )
        result["rss_connected"] = rss_mb(gateway.pid)
        result["rss_idle"] = rss_idle
        if not run.clients:
            return result
        backends = await db.call(backend_pids)
        run.sending = True
        for client in run.clients:
            client.start_sending()
        await asyncio.sleep(args.warmup)

        run.phase = Run.MEASURE
        before = snapshot(gateway, backends)
        count0 = await db.call(count_positions)
        await asyncio.sleep(max(0.0, args.seconds - (time.monotonic() - before.at)))
        run.phase = Run.AFTER
        after = snapshot(gateway, backends)
        count1 = await db.call(count_positions)
        result.update(before=before, after=after, count0=count0, count1=count1)
        result["in_flight_at_end"] = run.in_flight()

        run.sending = False
        deadline = time.monotonic() + DRAIN_TIMEOUT
        while run.in_flight() and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        result["unacked"] = run.in_flight()
        result["rows_total"] = sum((await db.call(count_positions))[1].values())
        result["status"] = await db.call(gateway_status)
        result["alarms"] = await db.call(alarms_raised)
        result["rss_end"] = rss_mb(gateway.pid)
        result["offline"] = await disconnect_all(run, db)
    finally:
        run.active = False
        for client in run.clients:
            client.close()
        await asyncio.sleep(0.2)
        db.close()
    return result


async def idle(args, devices, gateway: GatewayProcess) -> dict:
    rng = random.Random(args.seed)
    run = Run(window=1, rate=0.0, clients=len(devices), start=None)
    loop = run.loop
    loop.set_exception_handler(lambda _loop, ctx: run.errors.append(str(ctx.get("message"))))
    db = Database()
    result: dict = {"run": run}
    try:
        result["rss_idle"] = rss_mb(gateway.pid)
        result["connect_s"] = await connect_all(
            run,
            devices,
            gateway.host,
            gateway.ports,
            concurrency=args.connect_concurrency,
            sources=_source_addresses(len(devices), len(gateway.ports), args.source_ips),
            rng=rng,
        )
        result["rss_connected"] = rss_mb(gateway.pid)
        backends = await db.call(backend_pids)
        before = snapshot(gateway, backends)

        def beat(client: TrackerClient) -> None:
            if not run.active or client.closed:
                return
            client.send_heartbeat()
            loop.call_later(args.heartbeat, beat, client)

        for client in run.clients:
            loop.call_later(client.rng.uniform(0, args.heartbeat), beat, client)
        await asyncio.sleep(args.hold)
        after = snapshot(gateway, backends)
        await asyncio.sleep(1.0)  # the last heartbeats' acks
        result.update(before=before, after=after)
        result["open"] = sum(not c.closed for c in run.clients)
        result["status"] = await db.call(gateway_status)
        result["rss_end"] = rss_mb(gateway.pid)
        result["offline"] = await disconnect_all(run, db)
    finally:
        run.active = False
        for client in run.clients:
            client.close()
        await asyncio.sleep(0.5)
        db.close()
    return result


# --- Reporting -----------------------------------------------------------------------------------
def _load() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def report_throughput(args, result: dict, gateway: GatewayProcess, postgis: bool) -> bool:
    run: Run = result["run"]
    stats = {p: s for p, s in run.stats.items() if s.connections or s.failed}
    connected = sum(s.connections for s in stats.values())
    failed = sum(s.failed for s in stats.values())
    print(
        f"connected {connected:,} of {connected + failed:,} in {result['connect_s']:.1f} s ("
        + ", ".join(f"{p} {s.connections:,}" for p, s in stats.items())
        + f"); gateway RSS {_fmt_mb(result.get('rss_idle'))} MB before, "
        f"{_fmt_mb(result.get('rss_connected'))} MB connected"
    )
    ok = failed == 0
    if "before" not in result:
        print("nothing measured: no connection")
        return False
    before, after = result["before"], result["after"]
    (t0, rows0), (t1, rows1) = result["count0"], result["count1"]
    wall = after.at - before.at
    committed = {p: rows1.get(p, 0) - rows0.get(p, 0) for p in PROTOCOLS}
    rate = sum(committed.values()) / (t1 - t0)
    latencies = [x for s in stats.values() for x in s.latencies]
    sent = sum(s.sent for s in stats.values())
    acked = sum(s.acked for s in stats.values())
    gw_cpu = (after.gateway_cpu - before.gateway_cpu) / wall * 100
    own_cpu = (after.own_cpu - before.own_cpu) / wall * 100
    db_cpu = (after.backend_cpu - before.backend_cpu) / wall * 100
    mode = f"paced {args.rate:,.0f}/s" if args.rate else "unpaced"
    print()
    print(
        "| connections | mode | window | positions sent | acked | acked/s "
        "| committed positions/s | ack p50 ms | p95 ms | p99 ms | max ms "
        "| gateway RSS MB start / end | gateway CPU | client CPU | DB server CPU |"
    )
    print("|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|---:|---:|---:|")
    print(
        f"| {connected:,} | {mode} | {args.window} | {sent:,} | {acked:,} | {acked / wall:,.0f} "
        f"| **{rate:,.0f}** | {ms(percentile(latencies, 50))} | {ms(percentile(latencies, 95))} "
        f"| {ms(percentile(latencies, 99))} | {ms(max(latencies, default=math.nan))} "
        f"| {_fmt_mb(result.get('rss_idle'))} / {_fmt_mb(result.get('rss_end'))} "
        f"| {gw_cpu:.0f} % ({after.gateway_threads} threads) | {own_cpu:.0f} % "
        f"| {f'{db_cpu:.0f} %' if postgis else 'in the gateway'} |"
    )
    print()
    print(
        "| protocol | connections | sent | acked | committed/s "
        "| p50 ms | p95 ms | p99 ms | max ms |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    for protocol, s in stats.items():
        print(
            f"| {protocol} | {s.connections:,} | {s.sent:,} | {s.acked:,} "
            f"| {committed[protocol] / (t1 - t0):,.0f} | {ms(percentile(s.latencies, 50))} "
            f"| {ms(percentile(s.latencies, 95))} | {ms(percentile(s.latencies, 99))} "
            f"| {ms(max(s.latencies, default=math.nan))} |"
        )
    print()
    sent_total = sum(s.sent_total for s in stats.values())
    acked_total = sum(s.acked_total for s in stats.values())
    print(
        f"measured {wall:.1f} s after a {args.warmup:g} s warm-up; {result['in_flight_at_end']:,} "
        f"frames in flight at the end; all phases: {sent_total:,} position frames sent, "
        f"{acked_total:,} acked, {result['rows_total']:,} rows in the database"
        + (f", {result['alarms']:,} alarms raised" if result.get("alarms") is not None else "")
    )
    status = result.get("status")
    if status:
        print(
            f"gateway status row (written every 10 s): {status['connections']:,} connections, "
            f"{status['sessions']:,} sessions, writer queue {status['queue_depth']:,} items"
        )
    problems = _offline_report(result, connected)
    if args.rate:
        deferred = sum(s.deferred for s in stats.values())
        print(f"paced sends that found the window of {args.window} full: {deferred:,}")
    if result["unacked"]:
        problems.append(f"{result['unacked']:,} frames never acked")
    if acked_total != result["rows_total"]:
        problems.append(f"{acked_total:,} positions acked but {result['rows_total']:,} rows stored")
    dropped = sum(s.dropped for s in stats.values())
    if dropped:
        problems.append(f"{dropped:,} connections closed by the gateway during the run")
    unmatched = sum(s.unmatched for s in stats.values())
    if unmatched:
        problems.append(f"{unmatched:,} acks matched no frame in flight")
    if run.clock_overrun:
        problems.append(f"{run.clock_overrun:,} fixes stamped in the future (use more devices)")
    problems += run.errors[:10]
    for problem in problems:
        print(f"PROBLEM: {problem}")
    ok = ok and not problems

    if postgis and not args.rate:
        verdict = "ok" if rate >= BUDGET_RATE else f"MISSED by {1 - rate / BUDGET_RATE:.0%}"
        print(f"budget: >= {BUDGET_RATE:,.0f} committed positions/s on PostGIS: {verdict}")
        ok = ok and rate >= BUDGET_RATE
    elif postgis and args.rate >= BUDGET_P99_RATE:
        p99 = percentile(latencies, 99) * 1000
        verdict = "ok" if p99 <= BUDGET_P99_MS else f"MISSED by {p99 - BUDGET_P99_MS:.0f} ms"
        print(f"budget: p99 ack <= {BUDGET_P99_MS:.0f} ms at {BUDGET_P99_RATE:,.0f}/s: {verdict}")
        ok = ok and p99 <= BUDGET_P99_MS
    else:
        print("budget: the budgets are for PostGIS (--postgis); shown for comparison")
    return ok


def _offline_report(result: dict, connected: int) -> list[str]:
    if "offline" not in result:
        return []
    seconds, online = result["offline"]
    print(
        f"mass disconnect: all {connected:,} clients closed at once; the gateway marked them "
        f"offline in {seconds:.1f} s" + (f", {online:,} still online" if online else "")
    )
    return (
        [f"{online:,} devices still online {seconds:.0f} s after disconnecting"] if online else []
    )


def report_idle(args, result: dict) -> bool:
    run: Run = result["run"]
    stats = {p: s for p, s in run.stats.items() if s.connections or s.failed}
    connected = sum(s.connections for s in stats.values())
    failed = sum(s.failed for s in stats.values())
    if "before" not in result:
        print("nothing measured")
        return False
    before, after = result["before"], result["after"]
    wall = after.at - before.at
    rss0, rss1 = result.get("rss_idle"), result.get("rss_connected")
    per_conn = (
        (rss1 - rss0) * 1024 / connected if rss0 is not None and rss1 and connected else math.nan
    )
    beats = [x for s in stats.values() for x in s.heartbeat_latencies]
    sent = sum(s.heartbeats for s in stats.values())
    acked = sum(s.heartbeats_acked for s in stats.values())
    print()
    print(
        "| connections opened | time to open | still open after hold | gateway RSS MB before / "
        "connected / end | per connection | heartbeats sent / acked | heartbeat ack p50 / p99 ms "
        "| gateway CPU while holding |"
    )
    print("|---:|---:|---:|---|---:|---|---|---:|")
    print(
        f"| {connected:,} of {connected + failed:,} | {result['connect_s']:.1f} s "
        f"| {result['open']:,} after {args.hold:g} s | {_fmt_mb(rss0)} / {_fmt_mb(rss1)} / "
        f"{_fmt_mb(result.get('rss_end'))} | {per_conn:.1f} KB | {sent:,} / {acked:,} "
        f"| {ms(percentile(beats, 50))} / {ms(percentile(beats, 99))} "
        f"| {(after.gateway_cpu - before.gateway_cpu) / wall * 100:.1f} % |"
    )
    print()
    print("per protocol: " + ", ".join(f"{p} {s.connections:,}" for p, s in stats.items()))
    status = result.get("status")
    if status:
        print(
            f"gateway status row: {status['connections']:,} connections, "
            f"{status['sessions']:,} sessions (devices online), RSS {status['rss_mb']} MB"
        )
    problems = _offline_report(result, connected)
    if failed:
        problems.append(f"{failed:,} connections failed")
    if result["open"] != connected:
        problems.append(f"{connected - result['open']:,} connections closed during the hold")
    if status and status["sessions"] < connected:
        problems.append(f"the gateway reports {status['sessions']:,} sessions")
    if sent - acked > connected:  # more than one heartbeat in flight per connection
        problems.append(f"{sent - acked:,} heartbeats not acked")
    problems += run.errors[:10]
    for problem in problems:
        print(f"PROBLEM: {problem}")
    held = connected >= args.idle and not problems
    budget = BUDGET_IDLE
    print(
        f"budget: >= {budget:,} connections held by one gateway process: "
        + ("ok" if held and connected >= budget else f"not shown ({connected:,} held)")
    )
    return held


# --- Main ----------------------------------------------------------------------------------------
def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--postgis", action="store_true", help="PostGIS instead of SpatiaLite")
    parser.add_argument("--postgis-url", default=DEFAULT_POSTGIS_URL)
    parser.add_argument("--connections", type=int, default=2000, help="tracker connections")
    parser.add_argument("--protocol", choices=(*PROTOCOLS, "all"), default="all")
    parser.add_argument(
        "--rate", type=float, default=0.0, help="total positions/s (default: unpaced, max)"
    )
    parser.add_argument("--seconds", type=float, default=20.0, help="measured seconds")
    parser.add_argument("--warmup", type=float, default=5.0, help="seconds before measuring")
    parser.add_argument("--window", type=int, default=2, help="unacked frames per connection")
    parser.add_argument(
        "--idle",
        type=int,
        nargs="?",
        const=10_000,
        default=None,
        metavar="N",
        help="hold N idle connections instead (default N: 10,000)",
    )
    parser.add_argument("--hold", type=float, default=60.0, help="--idle: seconds to hold them")
    parser.add_argument(
        "--heartbeat", type=float, default=30.0, help="--idle: seconds between heartbeats"
    )
    parser.add_argument("--connect-concurrency", type=int, default=100)
    parser.add_argument(
        "--source-ips",
        type=int,
        default=None,
        help="connect from 127.0.0.2.. (default: as many as the ephemeral ports need)",
    )
    parser.add_argument("--seed", type=int, default=SEED)
    parser.add_argument(
        "--no-alarms", action="store_true", help="gateway without the alarm engine (comparison)"
    )
    parser.add_argument("--keep", action="store_true", help="keep the database afterwards")
    args = parser.parse_args(argv)
    count = args.idle if args.idle is not None else args.connections
    if count < 1 or args.window < 1 or args.seconds <= 0 or args.rate < 0:
        parser.error("connections, window and seconds must be positive, rate not negative")
    protocols = PROTOCOLS if args.protocol == "all" else (args.protocol,)
    raise_nofile(count + 200)

    load_before = _load()
    ok = False
    with bench_database(postgis=args.postgis, postgis_url=args.postgis_url, keep=args.keep) as db:
        from django.db import connections

        fleet = build_fleet(vehicles=count, stock_per_vehicle=0.0, seed=args.seed)
        start = None if args.idle is not None else sim_start(dt.datetime.now(dt.UTC))
        devices = prepare_devices(count, protocols, start)
        connections.close_all()  # the gateway is the writer now
        gc.collect()
        gc.freeze()
        gateway = GatewayProcess(protocols, alarms=not args.no_alarms)
        try:
            listen_s = gateway.start()
            print(f"carloan gateway end to end, {dt.date.today():%Y-%m-%d}")  # noqa: DTZ011
            print(f"machine: {machine()}; database: {db.engine}")
            print("command: .venv/bin/python bench/gateway.py " + " ".join(sys.argv[1:]))
            print(
                f"fleet: {count:,} mounted trackers ({', '.join(protocols)} in turn), built in "
                f"{fleet.seconds:.1f} s; gateway pid {gateway.pid} listening after "
                f"{listen_s:.1f} s on "
                + ", ".join(f"{p} :{port}" for p, port in gateway.ports.items())
                + f"; load average {load_before}"
            )
            if args.idle is not None:
                print(
                    f"{count:,} idle connections: login, then a heartbeat every "
                    f"{args.heartbeat:g} s for {args.hold:g} s"
                )
                result = asyncio.run(idle(args, devices, gateway))
            else:
                print(
                    f"fixes every {FIX_STEP_S} simulated s from {start:%Y-%m-%d %H:%M} UTC; "
                    f"window {args.window} unacked frames per connection"
                )
                result = asyncio.run(throughput(args, devices, gateway, start))
            clean = gateway.stop()
            if args.idle is not None:
                ok = report_idle(args, result)
            else:
                ok = report_throughput(args, result, gateway, args.postgis)
            stop = (
                f"exited cleanly (status 0) {gateway.stop_seconds:.1f} s after SIGTERM"
                if clean
                else f"did NOT stop cleanly (status {gateway.returncode})"
            )
            print(f"gateway {stop}; load average after {_load()}")
            problems = gateway.problems()
            for line in problems[:10]:
                print(f"gateway log: {line}")
            if not clean or problems:
                print(gateway.log_tail())
            ok = ok and clean and not problems
        finally:
            gateway.cleanup()
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
