"""Alarm latency end to end: a GT06 SOS frame on a tracker's socket -> an "alarm" item on a
WebSocket of the live feed (the design budget: p99 <= 1 s).

Builds a fleet (bench/fleet.py) of GT06 trackers, starts a private redis-server (the channel
layer between the gateway's live feed and daphne, as in production), `manage.py run_gateway`
(engine on) and daphne serving `carloan.asgi:application`, all on free 127.0.0.1 ports. A
WebSocket client (`websocket-client`, a thread of this process) connects to /ws/live/ with the
DRF token of the platform admin (who sees the whole fleet) and stamps every alarm item it
receives. Meanwhile the other trackers send paced position frames (`--rate` in total, the
background the engine and the feed work under: cars driving, their routes advanced past the
morning parking unless `--parked`), and `--probes` trackers, each on its own vehicle,
send ONE SOS alarm frame (0x26, alarm byte 0x01, the current time as fix time) at moments spread
over `--seconds`. Latency = receipt of that vehicle's alarm on the WebSocket - the write.

    .venv/bin/python bench/alarm_latency.py                          # SpatiaLite, 500 positions/s
    .venv/bin/python bench/alarm_latency.py --postgis                # PostgreSQL + PostGIS
    .venv/bin/python bench/alarm_latency.py --postgis --rate 1000

Prints the machine, the database, the date, the command, the fleet, the background rate
achieved, probes sent / alarms received / missing, latency p50 / p95 / p99 / max and where the
time goes (write -> the batch that raised it, -> the SOS frame's ack, ack -> WebSocket). Exit
status 1 when p99 > 1,000 ms, when a probe's alarm did not arrive within 10 s, or when the
gateway or daphne logged errors or did not stop cleanly.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import contextlib
import datetime as dt
import gc
import http.client
import json
import math
import os
import random
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench.fleet import bench_database, build_fleet, machine  # noqa: E402
from bench.gateway import (  # noqa: E402
    FIX_STEP_S,
    LOGIN_TIMEOUT,
    GatewayProcess,
    Run,
    TrackerClient,
    _proc_stat,
    connect_all,
    ms,
    percentile,
    prepare_devices,
    raise_nofile,
    sim_start,
)
from carloan.localredis import PrivateRedis, free_port  # noqa: E402

DEFAULT_POSTGIS_URL = "postgis://postgres@127.0.0.1:5432/carloan_alarmbench"
SEED = 20261207
BUDGET_P99_MS = 1000.0  # position frame -> alarm on a WebSocket (DESIGN.md)
ARRIVAL_TIMEOUT = 10.0  # seconds after its write for a probe's alarm to count as missing
START_TIMEOUT = 60.0  # seconds for redis-server / daphne to answer
STOP_TIMEOUT = 10.0  # seconds for redis-server / daphne to exit after SIGTERM
BUSY_LOAD = 1.5  # 1-minute load average above which the figures carry a "busy" note
SOS = 0x01  # GT06 alarm byte: SOS -> alarm kind "sos" (gateway.protocols.gt06)


def _wait(check, what: str, proc: subprocess.Popen) -> float:
    started = time.monotonic()
    while time.monotonic() - started < START_TIMEOUT:
        if check():
            return time.monotonic() - started
        if proc.poll() is not None:
            raise SystemExit(f"{what} exited with status {proc.returncode} before answering")
        time.sleep(0.1)
    raise SystemExit(f"{what} did not answer within {START_TIMEOUT:.0f} s")


def _stop(proc: subprocess.Popen | None) -> int | None:
    """SIGTERM our own child (by its pid), then SIGKILL if it lingers. Its exit status."""
    if proc is None:
        return None
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    return proc.returncode


# --- redis-server and daphne ----------------------------------------------------------------------
class DaphneProcess:
    """`daphne carloan.asgi:application` on a free port, with the gateway's environment (the
    same database and Redis), DEBUG off; its output in files of a temp directory."""

    def __init__(self) -> None:
        self.port = free_port()
        self.dir = tempfile.mkdtemp(prefix="carloan-alarmbench-daphne-")
        self.log_path = Path(self.dir) / "daphne.log"
        self.proc: subprocess.Popen | None = None

    def start(self) -> float:
        env = {
            **os.environ,
            "DEBUG": "false",
            "SECRET_KEY": f"alarmbench-{os.urandom(16).hex()}",
            "ALLOWED_HOSTS": "127.0.0.1",
        }
        daphne = str(Path(sys.executable).with_name("daphne"))
        command = [daphne, "-b", "127.0.0.1", "-p", str(self.port), "carloan.asgi:application"]
        with open(self.log_path, "wb") as log:
            self.proc = subprocess.Popen(  # noqa: S603 - the venv's daphne, our arguments
                command, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT
            )

        def answers() -> bool:
            conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=2)
            try:
                conn.request("GET", "/")
                return conn.getresponse().status > 0  # any answer (DEBUG off: a redirect)
            except OSError:
                return False
            finally:
                conn.close()

        return _wait(answers, "daphne", self.proc)

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def problems(self) -> list[str]:
        lines = self.log_path.read_text(errors="replace").splitlines()
        return [line for line in lines if line.startswith("Traceback") or "Error" in line]

    def stop(self) -> int | None:
        return _stop(self.proc)

    def cleanup(self) -> None:
        _stop(self.proc)
        shutil.rmtree(self.dir, ignore_errors=True)


# --- The WebSocket client -------------------------------------------------------------------------
class LiveClient:
    """/ws/live/ with a DRF token, read on a thread: the receipt time of every alarm item."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.ws = None
        self.thread: threading.Thread | None = None
        self.alarms: dict[int, tuple[float, dict]] = {}  # vehicle id -> (monotonic, 1st item)
        self.repeats = 0  # further alarm items for a vehicle already seen
        self.items = collections.Counter()  # item type -> count
        self.messages = 0
        self.closed_with: str | None = None  # how the connection ended, if not by us
        self.stopping = False

    def connect(self) -> None:
        import websocket

        self.ws = websocket.create_connection(self.url, timeout=10)
        # The consumer accepted and joined its groups: a ping is answered.
        self.ws.send(json.dumps({"type": "ping"}))
        answer = json.loads(self.ws.recv())
        if answer.get("type") != "pong":
            raise SystemExit(f"the live feed answered {answer!r} to a ping")
        self.ws.settimeout(None)
        self.thread = threading.Thread(target=self._read, name="bench-ws", daemon=True)
        self.thread.start()

    def _read(self) -> None:
        import websocket

        ws = self.ws
        while True:
            try:
                opcode, data = ws.recv_data()
            except Exception as exc:  # closed by stop(), or by the server
                if not self.stopping:
                    self.closed_with = repr(exc)
                return
            now = time.monotonic()
            if opcode == websocket.ABNF.OPCODE_CLOSE:
                if not self.stopping:
                    code = int.from_bytes(data[:2], "big") if len(data) >= 2 else None
                    self.closed_with = f"closed by the server (code {code})"
                return
            if opcode != websocket.ABNF.OPCODE_TEXT:
                continue
            self.messages += 1
            message = json.loads(data)
            if message.get("type") != "batch":
                continue
            for item in message.get("items", ()):
                kind = item.get("type")
                self.items[kind] += 1
                if kind != "alarm":
                    continue
                vehicle = item.get("vehicle_id")
                if vehicle in self.alarms:
                    self.repeats += 1
                else:
                    self.alarms[vehicle] = (now, item)

    def stop(self) -> None:
        self.stopping = True
        if self.ws is not None:
            with contextlib.suppress(Exception):
                self.ws.close(timeout=2)
            with contextlib.suppress(Exception):
                self.ws.shutdown()
        if self.thread is not None:
            self.thread.join(5)


# --- The probes -----------------------------------------------------------------------------------
class ProbeClient(TrackerClient):
    """A GT06 tracker that logs in and later sends one SOS alarm frame (0x26) at its fix time
    "now", at its route's starting point (where prepare_devices left its last fix)."""

    def __init__(self, run: Run, device, rng: random.Random, vehicle_id: int) -> None:
        super().__init__(run, device, rng)
        self.vehicle_id = vehicle_id
        self.sos_serial: int | None = None
        self.sent_at: float | None = None  # monotonic, just before the write
        self.sent_wall: dt.datetime | None = None
        self.acked_at: float | None = None

    def send_sos(self) -> None:
        if self.closed:
            return
        from gateway.protocols import gt06

        assert self.route is not None
        fix = self.route.position()
        serial = self._next_serial()
        frame = self.f.gt06_alarm(
            serial,
            fix_time=dt.datetime.now(dt.UTC),
            lat=fix.lat,
            lon=fix.lon,
            speed_kmh=0.0,
            course=0,
            satellites=9,
            valid=True,
            acc=False,
            alarm_code=SOS,
            proto=gt06.MSG_GPS_LBS_STATUS_2,
        )
        self.sos_serial = serial
        self.sent_wall = dt.datetime.now(dt.UTC)
        self.sent_at = time.monotonic()
        self._write(frame)

    def _downlink(self, d, now: float) -> None:
        from gateway.protocols import gt06

        if (
            d.kind == self.f.ACK
            and self.sos_serial is not None
            and d.acked_serial == self.sos_serial
            and d.acked_id == gt06.MSG_GPS_LBS_STATUS_2
        ):
            self.acked_at = time.monotonic()
            return
        super()._downlink(d, now)


async def connect_probes(
    run: Run, devices, vehicles: dict[int, int], host: str, port: int, rng: random.Random
) -> list[ProbeClient]:
    gate = asyncio.Semaphore(50)  # the gateway's listen backlog is asyncio's default 100
    clients: list[ProbeClient] = []

    async def one(device) -> None:
        async with gate:
            client = ProbeClient(run, device, random.Random(rng.random()), vehicles[device.pk])
            try:
                async with asyncio.timeout(LOGIN_TIMEOUT):
                    await run.loop.create_connection(lambda: client, host, port)
                    await client.login()
            except (OSError, ConnectionError, TimeoutError, ValueError) as exc:
                run.stats["gt06"].failed += 1
                run.errors.append(f"probe {device.identifier}: {exc!r}")
                client.close()
                return
            run.stats["gt06"].connections += 1
            clients.append(client)

    await asyncio.gather(*(one(d) for d in devices))
    return clients


def start_driving(clients: list[TrackerClient]) -> int:
    """Advance each background route past its morning parking (the car stays at home, where
    prepare_devices put its last fix, and the simulated clock moves on), so the fixes sent are
    of cars driving: parked fixes are flagged as drift and never pushed to the map, and the live
    feed would carry almost nothing. Returns the simulated seconds skipped at most."""
    longest = 0
    for client in clients:
        assert client.route is not None
        while client.route.parked:
            client.route.step(FIX_STEP_S)
            client.fixes += 1
        longest = max(longest, client.fixes * FIX_STEP_S)
    return longest


# --- The run --------------------------------------------------------------------------------------
def _cpu(pids: dict[str, int]) -> dict[str, float]:
    return {name: (_proc_stat(pid) or (0.0, 0))[0] for name, pid in pids.items()}


async def drive(args, background, probes, vehicles, gateway, live, start, pids) -> dict:
    rng = random.Random(args.seed)
    run = Run(window=args.window, rate=args.rate, clients=len(background), start=start)
    probe_run = Run(window=1, rate=0.0, clients=max(1, len(probes)), start=start)
    loop = run.loop
    loop.set_exception_handler(lambda _loop, ctx: run.errors.append(str(ctx.get("message"))))
    result: dict = {"run": run, "probe_run": probe_run}
    port = gateway.ports["gt06"]
    clients: list[ProbeClient] = []
    try:
        started = time.monotonic()
        await connect_all(
            run,
            background,
            gateway.host,
            gateway.ports,
            concurrency=100,
            sources=[None],
            rng=rng,
        )
        clients = await connect_probes(probe_run, probes, vehicles, gateway.host, port, rng)
        result["connect_s"] = time.monotonic() - started
        result["probes"] = clients
        if not args.parked:
            result["moving"] = start_driving(run.clients)
        run.sending = True
        for client in run.clients:
            client.start_sending()
        await asyncio.sleep(args.warmup)

        # Measured window: the probes' writes spread evenly (one per slot, at a random moment
        # in it, slots shuffled over the probes).
        run.phase = Run.MEASURE
        t0 = time.monotonic()
        cpu0 = _cpu(pids)
        slot = args.seconds / max(1, len(clients))
        order = list(clients)
        rng.shuffle(order)
        for i, client in enumerate(order):
            loop.call_at(t0 + (i + rng.random()) * slot, client.send_sos)
        await asyncio.sleep(args.seconds)
        t1 = time.monotonic()
        cpu1 = _cpu(pids)
        run.phase = Run.AFTER
        result["window"] = (t0, t1)
        result["cpu"] = {name: (cpu1[name] - cpu0[name]) / (t1 - t0) * 100 for name in pids}

        # The last alarms: keep the background going until each probe's alarm arrived or
        # ARRIVAL_TIMEOUT passed since its write.
        deadline = max((c.sent_at or t1) for c in clients) + ARRIVAL_TIMEOUT if clients else t1
        while time.monotonic() < deadline and any(c.vehicle_id not in live.alarms for c in clients):
            await asyncio.sleep(0.1)
        run.sending = False
        await asyncio.sleep(1.0)  # the last background acks
    finally:
        run.active = probe_run.active = False
        for client in [*run.clients, *clients]:
            client.close()
        await asyncio.sleep(0.2)
    return result


def sos_alarms() -> dict[int, dict]:
    """vehicle id -> the SOS alarm the gateway raised (raised_at is its batch's clock)."""
    from alarms.models import Alarm

    rows = Alarm.objects.filter(kind="sos").values("vehicle_id", "raised_at", "occurrences")
    return {row["vehicle_id"]: row for row in rows}


def other_alarms() -> dict[str, int]:
    from django.db.models import Count

    from alarms.models import Alarm

    return dict(
        Alarm.objects.exclude(kind="sos")
        .values_list("kind")
        .annotate(n=Count("id"))
        .values_list("kind", "n")
    )


def active_vehicles(device_ids: list[int]) -> dict[int, int]:
    from vehicles.models import DeviceBinding

    return dict(
        DeviceBinding.objects.filter(device_id__in=device_ids, unbound_at__isnull=True).values_list(
            "device_id", "vehicle_id"
        )
    )


def make_token(user) -> str:
    from rest_framework.authtoken.models import Token

    return Token.objects.get_or_create(user=user)[0].key


# --- Reporting ------------------------------------------------------------------------------------
def _load() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def _stats(values: list[float]) -> str:
    return (
        f"{ms(percentile(values, 50))} / {ms(percentile(values, 95))} / "
        f"{ms(percentile(values, 99))} / {ms(max(values, default=math.nan))}"
    )


def report(args, result: dict, live: LiveClient, raised: dict[int, dict], db_engine: str) -> bool:
    run: Run = result["run"]
    probes: list[ProbeClient] = result.get("probes", [])
    stats = run.stats["gt06"]
    t0, t1 = result.get("window", (0.0, 0.0))
    wall = max(t1 - t0, 1e-9)
    sent = [c for c in probes if c.sent_at is not None]
    latencies, acks, to_batch, ack_to_ws, missing, late = [], [], [], [], [], []
    for c in sent:
        got = live.alarms.get(c.vehicle_id)
        if c.acked_at is not None:
            acks.append(c.acked_at - c.sent_at)
        row = raised.get(c.vehicle_id)
        if row is not None and c.sent_wall is not None:
            to_batch.append((row["raised_at"] - c.sent_wall).total_seconds())
        if got is None:
            missing.append(c)
            continue
        latency = got[0] - c.sent_at
        if latency > ARRIVAL_TIMEOUT:
            late.append(c)
        latencies.append(latency)
        if c.acked_at is not None:
            ack_to_ws.append(got[0] - c.acked_at)
    p99 = percentile(latencies, 99) * 1000
    print()
    print(
        "| database | fleet | background positions/s (paced) | probes sent / alarms on the "
        "WebSocket / missing | p50 ms | p95 ms | p99 ms | max ms | budget |"
    )
    print("|---|---:|---:|---|---:|---:|---:|---:|---|")
    verdict = "ok" if p99 <= BUDGET_P99_MS else f"**missed** by {p99 - BUDGET_P99_MS:,.0f} ms"
    print(
        f"| {db_engine} | {args.vehicles:,} | {stats.acked / wall:,.0f} ({args.rate:,.0f}) "
        f"| {len(sent)} / {len(sent) - len(missing)} / {len(missing)} "
        f"| {ms(percentile(latencies, 50))} | {ms(percentile(latencies, 95))} "
        f"| **{ms(percentile(latencies, 99))}** | {ms(max(latencies, default=math.nan))} "
        f"| {verdict} |"
    )
    print()
    print("where the time goes (p50 / p95 / p99 / max, ms):")
    print(
        f"- write -> the writer's batch that raised it (Alarm.raised_at, wall clock): "
        f"{_stats(to_batch)}"
    )
    print(f"- write -> the SOS frame's ack: {_stats(acks)} ({len(acks)} of {len(sent)} acked)")
    print(f"- the ack -> the alarm on the WebSocket: {_stats(ack_to_ws)}")
    print(
        f"- background position acks in the window: {_stats(stats.latencies)} "
        f"({stats.sent:,} sent, {stats.acked:,} acked; paced sends that found the window of "
        f"{args.window} full: {stats.deferred:,})"
    )
    slices = collections.defaultdict(list)  # 10 s of the window -> latencies of its probes
    for c in sent:
        got = live.alarms.get(c.vehicle_id)
        if got is not None:
            slices[int((c.sent_at - t0) // 10)].append(got[0] - c.sent_at)
    print(
        "latency p50 / max by 10 s of the window (a backlog grows when it rises): "
        + ", ".join(f"{ms(percentile(v, 50))} / {ms(max(v))}" for _i, v in sorted(slices.items()))
    )
    if "moving" in result:
        print(
            f"background cars driving: each route advanced past its morning parking (at most "
            f"{result['moving'] / 60:.0f} simulated min)"
        )
    else:
        print("background cars as the routes start the day: mostly parked (--parked)")
    cpu = result.get("cpu", {})
    print(
        "CPU over the window: " + ", ".join(f"{name} {value:.0f} %" for name, value in cpu.items())
    )
    print(
        f"WebSocket: {live.messages:,} messages, items "
        + ", ".join(f"{k} {v:,}" for k, v in sorted(live.items.items()))
        + f"; repeated alarm items {live.repeats}"
    )
    problems = []
    if missing:
        not_raised = [c for c in missing if c.vehicle_id not in raised]
        not_acked = [c for c in missing if c.acked_at is None]
        problems.append(
            f"{len(missing)} probes' alarms never arrived within {ARRIVAL_TIMEOUT:.0f} s "
            f"({len(not_raised)} not raised at all, {len(not_acked)} SOS frames not acked)"
        )
    if late:
        problems.append(f"{len(late)} alarms arrived more than {ARRIVAL_TIMEOUT:.0f} s late")
    if len(sent) < args.probes:
        problems.append(f"only {len(sent)} of {args.probes} probes sent their SOS frame")
    failed = run.stats["gt06"].failed + result["probe_run"].stats["gt06"].failed
    if failed:
        problems.append(f"{failed} tracker connections failed")
    dropped = stats.dropped + result["probe_run"].stats["gt06"].dropped
    if dropped:
        problems.append(f"{dropped} connections closed by the gateway during the run")
    if live.closed_with:
        problems.append(f"the WebSocket ended early: {live.closed_with}")
    problems += (run.errors + result["probe_run"].errors)[:10]
    for problem in problems:
        print(f"PROBLEM: {problem}")
    ok = not problems and p99 <= BUDGET_P99_MS
    print(
        f"budget: p99 position frame -> alarm on a WebSocket <= {BUDGET_P99_MS:,.0f} ms: "
        + (
            "ok"
            if ok
            else ("MISSED" if p99 > BUDGET_P99_MS or math.isnan(p99) else "not shown (problems)")
        )
        + f" (p99 {p99:,.0f} ms)"
    )
    return ok


# --- Main -----------------------------------------------------------------------------------------
def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--postgis", action="store_true", help="PostGIS instead of SpatiaLite")
    parser.add_argument("--postgis-url", default=DEFAULT_POSTGIS_URL)
    parser.add_argument("--vehicles", type=int, default=2000, help="fleet size (GT06 trackers)")
    parser.add_argument("--rate", type=float, default=500.0, help="background positions/s in total")
    parser.add_argument("--probes", type=int, default=200, help="SOS frames, one per vehicle")
    parser.add_argument("--seconds", type=float, default=60.0, help="the probes' window")
    parser.add_argument("--warmup", type=float, default=5.0, help="background before the probes")
    parser.add_argument("--window", type=int, default=2, help="unacked background frames each")
    parser.add_argument(
        "--parked",
        action="store_true",
        help="keep the routes' morning parking (most background fixes then are drift, not "
        "pushed to the map)",
    )
    parser.add_argument("--seed", type=int, default=SEED)
    parser.add_argument("--keep", action="store_true", help="keep the database afterwards")
    args = parser.parse_args(argv)
    if not 0 < args.probes < args.vehicles or args.rate <= 0 or args.seconds <= 0:
        parser.error("need 0 < probes < vehicles, a positive rate and positive seconds")
    raise_nofile(args.vehicles + 200)

    load_before, busy_before = _load(), os.getloadavg()[0]
    ok = False
    with bench_database(postgis=args.postgis, postgis_url=args.postgis_url, keep=args.keep) as db:
        from django.db import connections

        fleet = build_fleet(vehicles=args.vehicles, stock_per_vehicle=0.0, seed=args.seed)
        start = sim_start(dt.datetime.now(dt.UTC))
        devices = prepare_devices(args.vehicles, ("gt06",), start)
        vehicles = active_vehicles([d.pk for d in devices])
        token = make_token(fleet.users["platform_admin"])
        rng = random.Random(args.seed)
        probes = rng.sample(devices, args.probes)
        chosen = {d.pk for d in probes}
        background = [d for d in devices if d.pk not in chosen]
        connections.close_all()  # the gateway and daphne are the database's users now
        gc.collect()
        gc.freeze()

        redis = PrivateRedis(prefix="carloan-alarmbench-redis-")
        gateway = GatewayProcess(("gt06",))
        daphne = DaphneProcess()
        live = LiveClient(f"ws://127.0.0.1:{daphne.port}/ws/live/?token={token}")
        try:
            redis_s = redis.start(START_TIMEOUT)
            # The gateway's live feed and daphne's consumers share this channel layer.
            os.environ["REDIS_URL"] = redis.url
            listen_s = gateway.start()
            daphne_s = daphne.start()
            live.connect()
            print(f"carloan alarm latency end to end, {dt.date.today():%Y-%m-%d}")  # noqa: DTZ011
            print(f"machine: {machine()}; database: {db.engine}")
            print("command: .venv/bin/python bench/alarm_latency.py " + " ".join(sys.argv[1:]))
            print(
                f"fleet: {args.vehicles:,} vehicles with a GT06 tracker each, built in "
                f"{fleet.seconds:.1f} s; {len(background):,} send positions at {args.rate:,.0f}/s "
                f"in total (window {args.window}), {len(probes)} probes send one SOS frame each "
                f"over {args.seconds:g} s after a {args.warmup:g} s warm-up"
            )
            print(
                f"redis-server pid {redis.proc.pid} (up in {redis_s:.1f} s); gateway pid "
                f"{gateway.pid} on :{gateway.ports['gt06']} (up in {listen_s:.1f} s); daphne pid "
                f"{daphne.pid} on :{daphne.port} (up in {daphne_s:.1f} s); WebSocket as "
                f"{fleet.users['platform_admin'].username} (platform admin, whole fleet); "
                f"load average {load_before}"
            )
            if busy_before > BUSY_LOAD:
                print(
                    f"note: load average above {BUSY_LOAD} before the run: the machine is busy, "
                    "the figures include waiting for a core"
                )
            pids = {"gateway": gateway.pid, "daphne": daphne.pid, "redis": redis.proc.pid}
            result = asyncio.run(
                drive(args, background, probes, vehicles, gateway, live, start, pids)
            )
            live.stop()
            clean = gateway.stop()
            daphne_code = daphne.stop()
            raised = sos_alarms()
            others = other_alarms()
            connections.close_all()
            ok = report(args, result, live, raised, db.engine)
            print(
                f"alarms in the database: sos {len(raised):,}"
                + "".join(f", {kind} {n:,}" for kind, n in sorted(others.items()))
            )
            print(
                "gateway "
                + (
                    f"exited cleanly (status 0) {gateway.stop_seconds:.1f} s after SIGTERM"
                    if clean
                    else f"did NOT stop cleanly (status {gateway.returncode})"
                )
                + f"; daphne exited with status {daphne_code}; load average after {_load()}"
            )
            problems = gateway.problems()
            for line in problems[:10]:
                print(f"gateway log: {line}")
            daphne_problems = daphne.problems()
            for line in daphne_problems[:10]:
                print(f"daphne log: {line}")
            if not clean or problems:
                print(gateway.log_tail())
            ok = ok and clean and not problems and not daphne_problems
        finally:
            live.stop()
            gateway.cleanup()
            daphne.cleanup()
            redis.stop()
            os.environ.pop("REDIS_URL", None)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
