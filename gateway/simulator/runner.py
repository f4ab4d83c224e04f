"""Asyncio orchestration of simulated trackers for `manage.py simulate_devices`.

One `Route` per vehicle (seeded by the vehicle id, so every device of a vehicle follows it and
they stay together) and one TCP client per device: connect, identify (GT06 login; JT808
register -> 0x8100 -> auth; H02 nothing), then every ``interval`` seconds a location for the
current fix, a heartbeat now and then; acks are read and counted. Downlink commands are answered
as the real trackers do (GT06 0x15 echoing the server flag, JT808 0x0001 general response or
0x0201 for a position query, H02 V4 echoing the command and its time) and take effect: a report
interval changes how often the device sends (in simulated seconds), a fuel cut shows in its
status bits until restored. A dropped connection is re-opened with exponential backoff. No Django
here: the command loads the devices.

Vehicles given an `episodes.Episode` (`--episodes`: `episodes.plan`) follow its script instead:
the episode's route, a device left behind, silent windows (the connection is closed and opened
again afterwards) and device alarm frames at scripted times.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from gateway.protocols import gt06, h02, jt808
from gateway.simulator import frames as f
from gateway.simulator.episodes import Cast, Episode
from gateway.simulator.routes import Fix, Route

__all__ = ["SimDevice", "Simulator", "Stats"]

logger = logging.getLogger("carloan.gateway.simulator")

CODECS = {"gt06": gt06, "jt808": jt808, "h02": h02}
HEARTBEAT_EVERY = 6  # locations between two heartbeats
IDENTIFY_TIMEOUT = 10.0  # seconds to wait for the login ack / register reply / auth result
BACKOFF_MIN = 1.0
BACKOFF_MAX = 60.0
LOG_EVERY = 60.0  # seconds between two stats lines
# Device alarms of scripted episodes on the wire: GT06 alarm byte, JT808 alarm-word bit.
GT06_ALARM_BYTE = {"sos": 0x01, "power_cut": 0x02, "vibration": 0x03, "removal": 0x18}
JT808_ALARM_BIT = {"sos": 0, "removal": 5, "power_cut": 8}


@dataclass(frozen=True)
class SimDevice:
    identifier: str
    protocol: str  # gt06 | jt808 | h02
    vehicle_id: int


@dataclass
class Stats:
    connected: int = 0
    frames_sent: int = 0
    acks_received: int = 0
    reconnects: int = 0
    commands_answered: int = 0


def utc_now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


class _Link:
    """One open connection: a stream pair and the frames read but not yet consumed."""

    def __init__(self, protocol: str, reader: asyncio.StreamReader, writer: asyncio.StreamWriter):
        self.protocol = protocol
        self.reader, self.writer = reader, writer
        self.buffer = b""
        self.pending: list[bytes] = []
        self.serial = 1  # the device's next frame serial (GT06 / JT808)

    def next_serial(self) -> int:
        serial = self.serial
        self.serial = serial % 0xFFFF + 1
        return serial

    async def send(self, data: bytes) -> None:
        self.writer.write(data)
        await self.writer.drain()

    async def recv(self) -> f.Downlink | None:
        """The next understood server frame (None for frames a device ignores)."""
        while not self.pending:
            data = await self.reader.read(4096)
            if not data:
                raise ConnectionError("closed by the server")
            self.buffer += data
            got, self.buffer, _ = CODECS[self.protocol].split_frames(self.buffer)
            self.pending.extend(got)
        frame = self.pending.pop(0)
        try:
            return f.parse_downlink(self.protocol, frame)
        except ValueError:  # FrameError and friends: a device ignores what it cannot read
            return None

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self.writer.close()


class Simulator:
    """Drive ``devices`` against a gateway at ``host`` / ``ports`` (protocol -> port).

    ``interval``: real seconds between two locations of a device; ``speedup``: simulated seconds
    per real second (the routes advance ``interval * speedup`` per tick); ``clock``: returns the
    aware datetime stamped on fixes (UTC now by default); ``episodes``: vehicle id -> scripted
    `episodes.Episode` that vehicle plays instead of a random route (`episodes.plan`).
    """

    def __init__(
        self,
        devices: list[SimDevice],
        host: str = "127.0.0.1",
        ports: dict[str, int] | None = None,
        interval: float = 10.0,
        speedup: float = 1.0,
        clock: Callable[[], dt.datetime] = utc_now,
        *,
        log_every: float = LOG_EVERY,
        backoff_max: float = BACKOFF_MAX,
        episodes: dict[int, Episode] | None = None,
    ) -> None:
        if interval <= 0 or speedup <= 0:
            raise ValueError("interval and speedup must be positive")
        self.devices = list(devices)
        self.host = host
        self.ports = dict(ports or {})
        missing = {d.protocol for d in self.devices} - set(self.ports)
        if missing:
            raise ValueError(f"no port for {', '.join(sorted(missing))}")
        self.interval = float(interval)
        self.speedup = float(speedup)
        self.clock = clock
        self.log_every = log_every
        self.backoff_max = backoff_max
        self.stats = Stats()
        start = clock()
        self.cast = Cast(self.devices, episodes or {})
        self.routes: dict[int, Any] = {}
        self.fixes: dict[int, Fix] = {}
        for device in self.devices:
            if device.vehicle_id not in self.routes:
                route = self.cast.route(device.vehicle_id) or Route(
                    device.vehicle_id, start_time=start
                )
                self.routes[device.vehicle_id] = route
                self.fixes[device.vehicle_id] = route.position()
        self._stopping = asyncio.Event()
        self._links: set[_Link] = set()
        # Per device (identifier): the report interval a command set (simulated seconds) and
        # whether its fuel is cut.
        self.report_intervals: dict[str, int] = {}
        self.fuel_cut: dict[str, bool] = {}

    # --- public -----------------------------------------------------------------------------

    def stop(self) -> None:
        """Ask `run` to finish (safe from a signal handler on the loop's thread)."""
        self._stopping.set()

    async def run(self, duration: float | None = None) -> Stats:
        tasks = [asyncio.create_task(self._ticker(), name="sim-ticker")]
        tasks.append(asyncio.create_task(self._logger(), name="sim-logger"))
        tasks += [
            asyncio.create_task(self._client(d), name=f"sim-{d.protocol}-{d.identifier}")
            for d in self.devices
        ]
        try:
            if duration is None:
                await self._stopping.wait()
            else:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._stopping.wait(), duration)
        finally:
            self._stopping.set()
            for task in tasks:
                task.cancel()
            for link in list(self._links):
                link.close()
            await asyncio.gather(*tasks, return_exceptions=True)
            self._log_stats()
        return self.stats

    # --- internals ----------------------------------------------------------------------------

    def _log_stats(self) -> None:
        s = self.stats
        logger.info(
            "simulator: %d/%d devices connected, %d frames sent, %d acks received",
            s.connected,
            len(self.devices),
            s.frames_sent,
            s.acks_received,
        )

    async def _logger(self) -> None:
        while True:
            await asyncio.sleep(self.log_every)
            self._log_stats()

    async def _ticker(self) -> None:
        """Advance every route by one simulated interval per real interval."""
        loop = asyncio.get_running_loop()
        last = loop.time()
        while True:
            await asyncio.sleep(self.interval)
            now = loop.time()
            step = max(now - last, 1e-3) * self.speedup
            last = now
            for vehicle_id, route in self.routes.items():
                self.fixes[vehicle_id] = route.step(step)

    async def _client(self, device: SimDevice) -> None:
        backoff = BACKOFF_MIN
        while True:
            link: _Link | None = None
            connected = False
            try:
                reader, writer = await asyncio.open_connection(
                    self.host, self.ports[device.protocol]
                )
                link = _Link(device.protocol, reader, writer)
                self._links.add(link)
                link.serial = await asyncio.wait_for(self._identify(device, link), IDENTIFY_TIMEOUT)
                connected = True
                self.stats.connected += 1
                backoff = BACKOFF_MIN
                await self._session(device, link)
                if self._silent(device):  # a scripted silence: hang up, come back after it
                    link.close()
                    await self._wait_out_silence(device)
                    continue
            except (OSError, ConnectionError, TimeoutError, f.RegisterRefused) as exc:
                logger.debug("%s %s: %s", device.protocol, device.identifier, exc)
            finally:
                if connected:
                    self.stats.connected -= 1
                if link is not None:
                    link.close()
                    self._links.discard(link)
            self.stats.reconnects += 1
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, self.backoff_max)

    async def _identify(self, device: SimDevice, link: _Link) -> int:
        """Log in; return the next frame serial."""
        ident = device.identifier
        if device.protocol == "gt06":
            await self._send(link, f.gt06_login(ident, 1))
            await self._expect(link, lambda d: d.kind == f.ACK and d.acked_serial == 1)
            return 2
        if device.protocol == "jt808":
            await self._send(link, f.jt808_register(ident, 1))
            reply = await self._expect(link, lambda d: d.kind == f.REGISTER_REPLY)
            code = f.jt808_parse_register_reply(reply.frame)
            await self._send(link, f.jt808_auth(ident, 2, code))
            ok = await self._expect(
                link, lambda d: d.kind == f.ACK and d.acked_id == jt808.MSG_AUTH
            )
            if ok.result:
                raise ConnectionError(f"auth refused ({ok.result})")
            return 3
        return 1  # H02: no login

    async def _expect(self, link: _Link, want: Callable[[f.Downlink], bool]) -> f.Downlink:
        while True:
            d = await link.recv()
            if d is not None and want(d):
                if d.kind == f.ACK:
                    self.stats.acks_received += 1
                return d

    async def _send(self, link: _Link, data: bytes) -> None:
        await link.send(data)
        self.stats.frames_sent += 1

    def interval_of(self, device: SimDevice) -> float:
        """Real seconds between two locations: the simulator's interval, or the report interval
        a command set (simulated seconds, so divided by the speed-up)."""
        seconds = self.report_intervals.get(device.identifier)
        return self.interval if seconds is None else seconds / self.speedup

    def _silent(self, device: SimDevice) -> bool:
        return self.cast.silent(device, self.routes[device.vehicle_id].elapsed_s)

    async def _wait_out_silence(self, device: SimDevice) -> None:
        while self._silent(device):
            await asyncio.sleep(self.interval)

    def tick_frames(self, device: SimDevice, next_serial: Callable[[], int]) -> list[bytes]:
        """What the device sends this tick: the alarm frames its episode schedules now (each
        carries the fix, so no location repeats it), else one location."""
        fix = self.fix_of(device)
        t = self.routes[device.vehicle_id].elapsed_s
        wanted = [k for k in self.cast.alarms(device, t) if self._can_send_alarm(device, k)]
        frames = [self._alarm(device, next_serial(), fix, kind) for kind in wanted]
        return [f for f in frames if f is not None] or [self._location(device, next_serial(), fix)]

    @staticmethod
    def _can_send_alarm(device: SimDevice, kind: str) -> bool:
        table = {"gt06": GT06_ALARM_BYTE, "jt808": JT808_ALARM_BIT}.get(device.protocol, {})
        return kind in table

    def fix_of(self, device: SimDevice) -> Fix:
        """Where the device reports from: its car's fix (a scripted episode may leave one of
        the car's devices behind)."""
        route = self.routes[device.vehicle_id]
        return self.cast.fix(device, route, self.fixes[device.vehicle_id])

    async def _session(self, device: SimDevice, link: _Link) -> None:
        reader = asyncio.create_task(self._read_downlinks(device, link))
        try:
            count = 0
            while True:
                if reader.done():  # the server closed the connection
                    reader.result()
                    raise ConnectionError("closed by the server")
                if self._silent(device):
                    return
                for frame in self.tick_frames(device, link.next_serial):
                    await self._send(link, frame)
                fix = self.fix_of(device)
                count += 1
                if count % HEARTBEAT_EVERY == 0:
                    await self._send(link, self._heartbeat(device, link.next_serial(), fix))
                interval = self.interval_of(device)
                started = time.monotonic()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(asyncio.shield(reader), interval)
                left = interval - (time.monotonic() - started)
                if left > 0 and not reader.done():  # pragma: no cover - timing
                    await asyncio.sleep(left)
        finally:
            reader.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await reader

    async def _read_downlinks(self, device: SimDevice, link: _Link) -> None:
        """Count acks; carry out and answer commands."""
        while True:
            d = await link.recv()
            if d is None:
                continue
            if d.kind == f.ACK:
                self.stats.acks_received += 1
            elif d.kind == f.COMMAND:
                self._apply(device, d)
                answer = self._answer(device, link.next_serial(), d)
                if answer is not None:
                    await self._send(link, answer)
                    self.stats.commands_answered += 1

    def _apply(self, device: SimDevice, d: f.Downlink) -> None:
        ident = device.identifier
        if d.command == f.SET_INTERVAL and isinstance(d.params.get("seconds"), int):
            self.report_intervals[ident] = d.params["seconds"]
            logger.info("%s %s: report interval %ds", device.protocol, ident, d.params["seconds"])
        elif d.command in (f.FUEL_CUT, f.FUEL_RESTORE):
            self.fuel_cut[ident] = d.command == f.FUEL_CUT

    def _answer(self, device: SimDevice, serial: int, d: f.Downlink) -> bytes | None:
        """What the tracker sends back (None: a command it cannot even parse, e.g. an H02
        sentence without its time)."""
        ident = device.identifier
        fix = self.fixes[device.vehicle_id]
        if device.protocol == "gt06":
            text = f.gt06_reply_text(d.command, d.params) if d.command else "Unknown command!"
            return f.gt06_command_reply(serial, server_flag=d.server_flag or 0, text=text)
        if device.protocol == "jt808":
            if d.command == f.LOCATE_NOW:
                return f.jt808_location_reply(
                    ident, serial, d.serial or 0, **self._jt808_location_fields(device, fix)
                )
            result = 0 if d.command else 3  # 3: not supported
            return f.jt808_general_response(
                ident, serial, d.serial or 0, int(d.msg_id or 0), result
            )
        if not d.command_time or not isinstance(d.msg_id, str):
            return None
        outcome = "DONE" if d.command else "ERROR"
        t = self.clock().astimezone(dt.UTC).replace(microsecond=0)
        return f.h02_v4(
            ident,
            d.msg_id,
            (outcome, d.command_time),
            fix_time=t,
            lat=fix.lat,
            lon=fix.lon,
            speed_kmh=round(fix.speed_kmh, 1),
            course=int(fix.course) % 360,
            valid=True,
            status_word=f.h02_status_word(acc=fix.acc, fuel_cut=self.fuel_cut.get(ident, False)),
        )

    def _jt808_location_fields(self, device: SimDevice, fix: Fix) -> dict:
        t = self.clock().astimezone(dt.UTC).replace(microsecond=0)
        return {
            "fix_time": t,
            "lat": fix.lat,
            "lon": fix.lon,
            "speed_kmh": round(fix.speed_kmh, 1),
            "course": int(fix.course) % 360,
            "acc": fix.acc,
            "valid": True,
            "fuel_cut": self.fuel_cut.get(device.identifier, False),
            "mileage_km": fix.odometer_m / 1000,
            "csq": 25,
            "satellites": 9,
        }

    def _location(self, device: SimDevice, serial: int, fix: Fix) -> bytes:
        t = self.clock().astimezone(dt.UTC).replace(microsecond=0)
        speed = round(fix.speed_kmh, 1)
        course = int(fix.course) % 360
        if device.protocol == "gt06":
            return f.gt06_location(
                serial,
                fix_time=t,
                lat=fix.lat,
                lon=fix.lon,
                speed_kmh=speed,
                course=course,
                satellites=9,
                valid=True,
                acc=fix.acc,
                mileage_m=int(fix.odometer_m),
            )
        if device.protocol == "jt808":
            return f.jt808_location(
                device.identifier, serial, **self._jt808_location_fields(device, fix)
            )
        return f.h02_v1(
            device.identifier,
            fix_time=t,
            lat=fix.lat,
            lon=fix.lon,
            speed_kmh=speed,
            course=course,
            valid=True,
            status_word=f.h02_status_word(
                acc=fix.acc, fuel_cut=self.fuel_cut.get(device.identifier, False)
            ),
        )

    def _alarm(self, device: SimDevice, serial: int, fix: Fix, kind: str) -> bytes | None:
        """A location frame carrying the alarm `kind` (GT06 0x26 alarm packet, JT808 0x0200
        with the alarm word); None for a protocol or kind the simulator cannot send."""
        t = self.clock().astimezone(dt.UTC).replace(microsecond=0)
        if device.protocol == "gt06" and kind in GT06_ALARM_BYTE:
            return f.gt06_alarm(
                serial,
                fix_time=t,
                lat=fix.lat,
                lon=fix.lon,
                speed_kmh=round(fix.speed_kmh, 1),
                course=int(fix.course) % 360,
                satellites=9,
                valid=True,
                acc=fix.acc,
                alarm_code=GT06_ALARM_BYTE[kind],
            )
        if device.protocol == "jt808" and kind in JT808_ALARM_BIT:
            fields = self._jt808_location_fields(device, fix)
            return f.jt808_location(
                device.identifier, serial, alarm_word=1 << JT808_ALARM_BIT[kind], **fields
            )
        return None

    def _heartbeat(self, device: SimDevice, serial: int, fix: Fix) -> bytes:
        if device.protocol == "gt06":
            return f.gt06_heartbeat(
                serial, acc=fix.acc, fuel_cut=self.fuel_cut.get(device.identifier, False)
            )
        if device.protocol == "jt808":
            return f.jt808_heartbeat(device.identifier, serial)
        return f.h02_heartbeat(device.identifier)
