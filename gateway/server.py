"""The device gateway: asyncio TCP listeners, one per protocol (DESIGN.md "The data path").

This module owns sockets, buffers, sessions and timeouts; decoding is the pure codecs'
(`gateway/protocols/<name>.py`) and storing is `gateway.ingest` (sync Django).

Threads: the event loop never touches the ORM. Every database call (device lookups at login,
unknown devices, drop counters, auth codes, offline marks and the position batches) runs on
one `BatchWriter` thread. One thread keeps SQLite free of writer-vs-writer lock errors and
orders an offline mark after the batch that still holds the device's last frames.

An acked position is never lost: a frame carrying positions is queued with its ack bytes as
the token; the writer hands the tokens back to the loop only after `ingest_batch` committed.
"""

from __future__ import annotations

import asyncio
import collections
import concurrent.futures
import contextlib
import dataclasses
import datetime as dt
import functools
import logging
import os
import queue
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from types import ModuleType
from typing import Any

from django.db import connections
from django.utils import timezone

from devices import commands as device_commands
from devices import services as device_services
from devices.protocols import PROTOCOLS
from gateway import services
from gateway.hygiene import DEFAULT_CONFIG as DEFAULT_HYGIENE
from gateway.hygiene import HygieneConfig
from gateway.ingest import BatchResult, Inbound, ingest_batch
from gateway.protocols import messages as m
from gateway.protocols.messages import ChecksumError, FrameError

logger = logging.getLogger("carloan.gateway")

DEFAULT_PORTS = {"gt06": 5023, "jt808": 5015, "h02": 5013}
DEFAULT_IDLE_TIMEOUT = 300.0  # seconds without a byte before a connection is closed
MAX_BAD_FRAMES = 10  # bad frames in a row that close a connection
MAX_BUFFER = 64 * 1024  # bytes held for an incomplete frame: more is not a tracker
MAX_AUTH_FAILURES = 3  # JT808 wrong auth codes before the connection is closed
READ_SIZE = 64 * 1024
SUBPACKAGE_TIMEOUT = 30.0  # seconds to wait for the missing parts of a JT808 message
SUBPACKAGE_RESENDS = 2  # 0x8003 resend requests before an incomplete message is dropped
MAX_SUBPACKAGE_BYTES = 256 * 1024  # a reassembled body larger than this is not a tracker's
MAX_PENDING_SUBPACKAGES = 8  # incomplete messages held per connection
OFFLINE_COALESCE_S = 0.2  # closed connections gathered into one "mark offline" writer job
STATUS_INTERVAL = 10.0  # seconds between status rows (admin status page)
STATS_LOG_INTERVAL = 60.0  # seconds between the per-protocol counter log lines
# Per-protocol counters (totals since start; rates are derived per interval).
COUNTERS = (
    "connections",  # accepted
    "frames",  # decoded frames
    "bad_frames",  # dropped: checksum, malformed, garbage, incomplete sub-packages
    "positions",  # fixes received from known devices
    "acked",  # position frames acked after their commit
    "unknown",  # connections refused: unknown device
    "closed_bad",  # connections closed for bad frames in a row
)

# JT808 0x8100 results.
JT808_TERMINAL_UNKNOWN = 4
# JT808 0x8001 results.
JT808_OK, JT808_FAILURE = 0, 1

# Message types that change device state without a fix: queued for ingest (last seen, online,
# battery ...), but their replies need no data and go out at once.
_STATE_TYPES = frozenset({m.HEARTBEAT, m.STATUS, m.LOGIN})


@dataclass
class GatewayConfig:
    host: str = "127.0.0.1"
    ports: dict[str, int] = field(default_factory=lambda: dict(DEFAULT_PORTS))
    idle_timeouts: dict[str, float] = field(default_factory=dict)  # per protocol
    idle_timeout: float = DEFAULT_IDLE_TIMEOUT  # protocols not in idle_timeouts
    max_bad_frames: int = MAX_BAD_FRAMES
    max_buffer: int = MAX_BUFFER
    batch_size: int = 500
    batch_wait: float = 0.1  # seconds
    hygiene: HygieneConfig = DEFAULT_HYGIENE
    subpackage_timeout: float = SUBPACKAGE_TIMEOUT
    status_interval: float = STATUS_INTERVAL
    stats_log_interval: float = STATS_LOG_INTERVAL
    alarms: bool = True  # run the alarm engine inside each batch
    commands: bool = True  # send queued downlink commands, match their replies, expire them
    command_poll_interval: float = 1.0  # seconds between claims of newly queued commands
    command_expire_interval: float = 30.0  # seconds between expiry / reply-timeout scans

    def timeout_for(self, protocol: str) -> float:
        return self.idle_timeouts.get(protocol, self.idle_timeout)


def config_from_settings(**overrides: Any) -> GatewayConfig:
    """The gateway's configuration from Django settings (`GATEWAY_*`, see .env.example);
    command-line options override."""
    from django.conf import settings

    hygiene = HygieneConfig(
        future_tolerance=dt.timedelta(seconds=settings.GATEWAY_FUTURE_TOLERANCE_S),
        max_implied_speed_kmh=settings.GATEWAY_MAX_IMPLIED_SPEED_KMH,
        drift_radius_m=settings.GATEWAY_DRIFT_RADIUS_M,
    )
    values: dict[str, Any] = {
        "host": settings.GATEWAY_HOST,
        "ports": dict(settings.GATEWAY_PORTS),
        "idle_timeouts": dict(settings.GATEWAY_IDLE_TIMEOUTS),
        "idle_timeout": settings.GATEWAY_IDLE_TIMEOUT,
        "max_bad_frames": settings.GATEWAY_MAX_BAD_FRAMES,
        "batch_size": settings.GATEWAY_BATCH_SIZE,
        "batch_wait": settings.GATEWAY_BATCH_WAIT_MS / 1000,
        "hygiene": hygiene,
        "subpackage_timeout": settings.GATEWAY_SUBPACKAGE_TIMEOUT_S,
        "status_interval": settings.GATEWAY_STATUS_INTERVAL_S,
        "stats_log_interval": settings.GATEWAY_STATS_LOG_INTERVAL_S,
    }
    values.update({k: v for k, v in overrides.items() if v is not None})
    return GatewayConfig(**values)


def _rss_mb() -> float | None:
    """Resident memory of this process (Linux), for the status page."""
    try:
        with open("/proc/self/status", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("VmRSS:"):
                    return round(int(line.split()[1]) / 1024, 1)
    except OSError:
        return None
    return None


# --------------------------------------------------------------------------------------------
# Batch writer: the only thread that talks to the database.
# --------------------------------------------------------------------------------------------


@dataclass
class _Job:
    fn: Callable[..., Any]
    kwargs: dict[str, Any]
    future: concurrent.futures.Future
    flush_first: bool  # commit the inbound items queued before it first (ordering)


_STOP = object()
_WAKE = object()  # an urgent item is waiting: end the batch being collected


def _urgent(item: Inbound) -> bool:
    """A frame carrying a device alarm (SOS, power cut, removal ...): someone waits for it."""
    message = item.message
    return bool(message.alarms) or any(p.alarms for p in message.positions)


class BatchWriter:
    """Collects `Inbound` items for up to `max_wait` seconds or `max_items` items, stores them
    with `ingest_batch` and calls `deliver(result)` after the commit. Also runs the session's
    small database jobs (`call`) in queue order on the same thread.

    Frames carrying a device alarm skip the queue: the batch being collected ends, they are stored
    in a batch of their own, then the queue resumes (under load the queue holds seconds of
    position frames; bench/alarm_latency.py). A device's earlier positions still in the queue
    are stored after its alarm: stored all the same, but older than the alarm's fix, so they no
    longer drive "now" rules.

    `step()` handles one batch and returns False once `stop()` was requested and everything
    queued before it is done; `run()` is `while step()`."""

    def __init__(
        self,
        deliver: Callable[[BatchResult], None],
        *,
        ingest: Callable[[list[Inbound]], BatchResult] = ingest_batch,
        max_items: int = 500,
        max_wait: float = 0.1,
    ) -> None:
        self.deliver = deliver
        self.ingest = ingest
        self.max_items = max_items
        self.max_wait = max_wait
        self.queue: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self.urgent: collections.deque[Inbound] = collections.deque()
        self._thread: threading.Thread | None = None

    # -- producer side (any thread) --
    def submit(self, item: Inbound) -> None:
        if _urgent(item):
            self.urgent.append(item)
            self.queue.put(_WAKE)
        else:
            self.queue.put(item)

    def call(
        self, fn: Callable[..., Any], *, flush_first: bool = False, **kwargs: Any
    ) -> concurrent.futures.Future:
        future: concurrent.futures.Future = concurrent.futures.Future()
        self.queue.put(_Job(fn, kwargs, future, flush_first))
        return future

    # -- consumer side (the writer thread) --
    def step(self, idle_timeout: float | None = 1.0) -> bool:
        """Wait up to `idle_timeout` for a first item, then collect for `max_wait` seconds or
        `max_items` items, store the batch and deliver its acks. False: stop requested."""
        if self.urgent:
            self._store(self._take_urgent())
        batch: list[Inbound] = []
        try:
            first = self.queue.get(timeout=idle_timeout)
        except queue.Empty:
            return True
        deadline = time.monotonic() + self.max_wait
        item = first
        running = True
        while True:
            if item is _STOP:
                running = False
                break
            if isinstance(item, _Job):
                if item.flush_first:
                    self._store(batch)
                    batch = []
                self._run_job(item)
            elif item is not _WAKE:
                batch.append(item)
                if len(batch) >= self.max_items:
                    break
            if self.urgent:
                break  # stored next, before anything still queued
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                break
            try:
                item = self.queue.get(timeout=remaining)
            except queue.Empty:
                break
        self._store(batch)
        if not running:
            while self.urgent:  # submitted before stop(): finished too
                self._store(self._take_urgent())
        return running

    def _take_urgent(self) -> list[Inbound]:
        taken: list[Inbound] = []
        while self.urgent and len(taken) < self.max_items:
            taken.append(self.urgent.popleft())
        return taken

    def _run_job(self, job: _Job) -> None:
        if not job.future.set_running_or_notify_cancel():
            return
        try:
            job.future.set_result(job.fn(**job.kwargs))
        except Exception as exc:
            logger.exception("gateway database job %s failed", getattr(job.fn, "__name__", job.fn))
            connections["default"].close()  # a broken connection must not poison the next job
            job.future.set_exception(exc)

    def _store(self, batch: list[Inbound]) -> None:
        if not batch:
            return
        try:
            result = self.ingest(batch)
        except Exception:
            # Nothing committed, nothing acked: the devices resend unacked data.
            logger.exception("ingest of %d items failed", len(batch))
            connections["default"].close()
            return
        self.deliver(result)

    def run(self) -> None:
        try:
            while self.step():
                pass
        finally:
            connections.close_all()  # this thread's connections

    def start(self) -> None:
        self._thread = threading.Thread(target=self.run, name="gateway-writer", daemon=True)
        self._thread.start()

    def stop(self, timeout: float | None = None) -> None:
        """Finish everything queued so far, then end the thread (blocking)."""
        self.queue.put(_STOP)
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None


# --------------------------------------------------------------------------------------------
# Sessions: one per TCP connection.
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class DeviceInfo:
    pk: int
    identifier: str
    lenient: bool
    auth_code: str


def lookup_device(*, protocol: str, identifier: str) -> DeviceInfo | None:
    """The live device with this identifier on this protocol (None: unknown)."""
    from devices.models import Device

    row = (
        Device.objects.filter(protocol=protocol, identifier=identifier)
        .values("pk", "identifier", "auth_code", "model__lenient")
        .first()
    )
    if row is None:
        return None
    return DeviceInfo(row["pk"], row["identifier"], bool(row["model__lenient"]), row["auth_code"])


def issue_auth_code(*, device_pk: int) -> str:
    from devices.models import Device

    return services.device_auth_code(device=Device.all_objects.get(pk=device_pk))


@dataclass
class _Parts:
    """The parts of one sub-packaged JT808 message received so far."""

    msg_id: int
    total: int
    first_serial: int
    template: m.Message  # a part: device id, version, protocol version for the reassembly
    deadline: float
    parts: dict[int, bytes] = field(default_factory=dict)
    size: int = 0
    resends: int = 0


class Connection:
    """One device connection: its buffer, its session state and its read loop (`step`)."""

    def __init__(
        self,
        gateway: Gateway,
        protocol: str,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
    ) -> None:
        self.gateway = gateway
        self.protocol = protocol
        self.codec: ModuleType = gateway.codecs[protocol]
        self.reader = reader
        self.writer = writer
        peer = writer.get_extra_info("peername")
        self.remote = f"{peer[0]}:{peer[1]}" if isinstance(peer, tuple) else str(peer)
        self.buffer = b""
        self.device: DeviceInfo | None = None
        self.authenticated = protocol != "jt808"  # JT808 must pass 0x0102 first
        self.auth_failures = 0
        self.bad_in_row = 0
        self.bad_total = 0
        self.bad_unreported = 0  # bad frames before the device was known
        self.server_serial = 0
        self.closed = False
        self.close_reason = ""
        self.stats = gateway.stats[protocol]
        self.stats["connections"] += 1
        self.last_read = time.monotonic()
        self.tz_offset = 0  # minutes east of UTC the device's clock runs on (GT06 login)
        self.subpackages: dict[tuple[int, int], _Parts] = {}
        self._prefetched: DeviceInfo | None = None  # looked up to decode a lenient first frame
        # H02 binary frames have no length field: once one decoded, the device's length is known
        # (guessing per frame can cut a 45-byte frame whose 33rd byte happens to be '$' or '*').
        self.split_options: dict[str, int] = {}

    # -- output --
    def write(self, data: bytes | None) -> None:
        if data and not self.closed:
            self.writer.write(data)

    def close(self, reason: str) -> None:
        if self.closed:
            return
        self.closed = True
        self.close_reason = reason
        logger.debug("%s %s closed: %s", self.protocol, self.remote, reason)
        self.writer.close()

    def _next_serial(self) -> int:
        self.server_serial = (self.server_serial + 1) & 0xFFFF
        return self.server_serial

    def reply(self, msg: m.Message, **kwargs: Any) -> bytes | None:
        if self.protocol == "jt808":
            kwargs.setdefault("server_serial", self._next_serial())
        try:
            return self.codec.encode_reply(msg, **kwargs)
        except ValueError:
            logger.warning("%s: no reply for %r", self.protocol, msg.type, exc_info=True)
            return None

    # -- input --
    async def run(self) -> None:
        try:
            while await self.step():
                pass
        finally:
            self.close(self.close_reason or "ended")
            self.gateway._connection_closed(self)

    async def step(self) -> bool:
        """Read once, handle every whole frame. False: the connection is done."""
        if self.closed:
            return False
        idle = self.gateway.config.timeout_for(self.protocol)
        timeout = max(0.0, self.last_read + idle - time.monotonic())
        if self.subpackages:
            next_due = min(p.deadline for p in self.subpackages.values())
            timeout = min(timeout, max(0.0, next_due - time.monotonic()))
        try:
            data = await asyncio.wait_for(self.reader.read(READ_SIZE), timeout)
        except TimeoutError:
            if time.monotonic() - self.last_read >= idle:
                self.close("idle timeout")
                return False
            await self._subpackages_due()  # not idle: a sub-package deadline passed
            return not self.closed
        except (ConnectionError, OSError):
            self.close("connection error")
            return False
        if not data:
            self.close("closed by peer")
            return False
        self.last_read = time.monotonic()
        self.buffer += data
        frames, self.buffer, discarded = self.codec.split_frames(self.buffer, **self.split_options)
        if discarded:
            await self._bad("garbage")
        for frame in frames:
            if self.closed:
                return False
            lenient = self.device.lenient if self.device else False
            try:
                messages = self.codec.decode(frame, lenient=lenient)
            except FrameError as exc:
                first = await self._lenient_first_frame(frame, exc)
                if first is None:
                    await self._bad(str(exc))
                    continue
                messages = first
            self.bad_in_row = 0
            self.stats["frames"] += 1
            if self.protocol == "h02" and frame[:1] == b"$" and not self.split_options:
                self.split_options = {"binary_length": len(frame)}
            for msg in messages:
                await self._handle(msg)
                if self.closed:
                    return False
        if self.closed:
            return False
        if len(self.buffer) > self.gateway.config.max_buffer:
            self.close("buffer overflow")
            return False
        return True

    async def _lenient_first_frame(self, frame: bytes, exc: FrameError) -> list[m.Message] | None:
        """A bad checksum before the device is known: decode it leniently to learn who sent it,
        and accept it if that device's model is marked lenient (its checksums are known to be
        wrong). Anything else stays a bad frame."""
        if self.device is not None or not isinstance(exc, ChecksumError):
            return None
        try:
            messages = self.codec.decode(frame, lenient=True)
        except FrameError:
            return None
        identifier = next((msg.device_id for msg in messages if msg.device_id), None)
        if not identifier:
            return None
        device = await self.gateway.db(lookup_device, protocol=self.protocol, identifier=identifier)
        if device is None or not device.lenient:
            return None
        self._prefetched = device
        return messages

    async def _bad(self, reason: str) -> None:
        self.bad_in_row += 1
        self.bad_total += 1
        self.stats["bad_frames"] += 1
        if self.device is not None:
            self.gateway.writer.call(
                services.device_frames_dropped, device_id=self.device.pk, reason=reason
            )
        else:
            self.bad_unreported += 1
        if self.bad_in_row >= self.gateway.config.max_bad_frames:
            self.stats["closed_bad"] += 1
            self.close(f"{self.bad_in_row} bad frames in a row")

    async def _identify(self, msg: m.Message) -> bool:
        """Bind the connection to a known device; refuse and record an unknown one."""
        identifier = msg.device_id or ""
        db = self.gateway.db
        device = self._prefetched
        self._prefetched = None
        if device is None or device.identifier != identifier:
            device = await db(lookup_device, protocol=self.protocol, identifier=identifier)
        if device is None:
            self.stats["unknown"] += 1
            await db(
                services.unknown_device_seen,
                protocol=self.protocol,
                identifier=identifier,
                remote_address=self.remote,
                now=timezone.now(),
            )
            if self.protocol == "jt808":
                result = JT808_TERMINAL_UNKNOWN if msg.type == m.REGISTER else JT808_FAILURE
                self.write(self.reply(msg, result=result))
            self.close(f"unknown device {identifier}")
            return False
        self.device = device
        if self.bad_unreported:
            self.gateway.writer.call(
                services.device_frames_dropped,
                device_id=device.pk,
                reason="bad frames before login",
                count=self.bad_unreported,
            )
            self.bad_unreported = 0
        self.gateway._session_started(self)
        return True

    async def _handle(self, msg: m.Message) -> None:
        if self.device is None:
            if not msg.device_id or (self.protocol == "gt06" and msg.type != m.LOGIN):
                # GT06 names itself only in the login packet: nothing before it is accepted.
                return
            if not await self._identify(msg):
                return
        elif msg.device_id and msg.device_id != self.device.identifier:
            if self.protocol == "gt06" and msg.type == m.LOGIN:
                self.close("login as another device")
                return
            logger.warning("%s %s: frame for %s ignored", self.protocol, self.remote, msg.device_id)
            return
        if self.protocol == "jt808" and not await self._jt808_session(msg):
            return
        device = self.device
        if device is None:  # pragma: no cover - _identify set it or returned False
            return
        ack_for = msg  # the frame the device waits an answer for
        if "subpackage" in msg.extra:
            whole = await self._subpackage(msg)
            if whole is None:
                return
            msg = whole
        reply = device_commands.reply_of(msg)
        if reply is not None:  # a downlink command's answer (devices.services, T3)
            self.gateway.writer.call(
                device_services.command_reply_record,
                device_id=device.pk,
                reply=reply,
                now=timezone.now(),
            )
        if msg.type == m.LOGIN and "tz_offset_min" in msg.extra:
            self.tz_offset = int(msg.extra["tz_offset_min"])
        if msg.positions:
            if self.tz_offset:
                msg = self._to_utc(msg)
            self.stats["positions"] += len(msg.positions)
            # Acked only after the commit: the token carries the ack bytes.
            token = (self, self.reply(ack_for))
            self.gateway.writer.submit(
                Inbound(device_id=device.pk, message=msg, received_at=timezone.now(), token=token)
            )
            return
        self.write(self.reply(ack_for))
        if msg.type in _STATE_TYPES or msg.alarms:
            self.gateway.writer.submit(
                Inbound(device_id=device.pk, message=msg, received_at=timezone.now())
            )

    def _to_utc(self, msg: m.Message) -> m.Message:
        """The device's clock runs on local time (its login said so): fix times to UTC."""
        shift = dt.timedelta(minutes=self.tz_offset)
        positions = tuple(
            dataclasses.replace(pos, fix_time=pos.fix_time - shift) for pos in msg.positions
        )
        return dataclasses.replace(msg, positions=positions)

    # -- JT808 sub-packages --
    async def _subpackage(self, part: m.Message) -> m.Message | None:
        """Keep one part; the whole message once every part arrived (parts are acked one by
        one, the completing part's ack waits for the whole message like any other frame)."""
        info = part.extra["subpackage"]
        msg_id, total, index = info["msg_id"], info["total"], info["index"]
        key = (msg_id, info["first_serial"])
        pending = self.subpackages.get(key)
        if pending is None:
            # A part resent after a 0x8003 may carry a new serial: same message, same total.
            pending = next(
                (
                    p
                    for p in self.subpackages.values()
                    if p.msg_id == msg_id and p.total == total and index not in p.parts
                ),
                None,
            )
        if pending is None:
            if len(self.subpackages) >= MAX_PENDING_SUBPACKAGES:
                oldest = min(self.subpackages, key=lambda k: self.subpackages[k].deadline)
                del self.subpackages[oldest]
                await self._bad("too many incomplete sub-packaged messages")
            pending = _Parts(msg_id, total, info["first_serial"], part, 0.0)
            self.subpackages[key] = pending
        timeout = self.gateway.config.subpackage_timeout
        pending.deadline = time.monotonic() + timeout
        body = info["body"]
        pending.size += len(body) - len(pending.parts.get(index, b""))
        pending.parts[index] = body
        if pending.size > MAX_SUBPACKAGE_BYTES:
            self._subpackage_forget(pending)
            await self._bad("sub-packaged message too large")
            return None
        whole = self.codec.reassemble(pending.parts, total)
        if whole is None:
            self.write(self.reply(part))
            if index == total:  # the last part came and some are missing: ask for them now
                self._request_resend(pending)
            return None
        self._subpackage_forget(pending)
        template = pending.template
        try:
            return self.codec.decode_body(
                msg_id,
                whole,
                device_id=template.device_id or "",
                serial=pending.first_serial,
                version=template.extra.get("version", 2013),
                protocol_version=template.extra.get("protocol_version"),
            )
        except FrameError as exc:
            self.write(self.reply(part))
            await self._bad(f"reassembled 0x{msg_id:04x}: {exc}")
            return None

    def _subpackage_forget(self, pending: _Parts) -> None:
        for key, value in list(self.subpackages.items()):
            if value is pending:
                del self.subpackages[key]

    def _request_resend(self, pending: _Parts) -> None:
        missing = self.codec.missing(pending.parts, pending.total)
        template = pending.template
        pending.resends += 1
        try:
            request = self.codec.encode_resend_request(
                template.device_id or "",
                self._next_serial(),
                pending.first_serial,
                missing[:255],
                version2019=template.extra.get("version") == 2019,
                protocol_version=template.extra.get("protocol_version", 1),
            )
        except ValueError:
            logger.warning("%s %s: no resend request", self.protocol, self.remote, exc_info=True)
            return
        self.write(request)

    async def _subpackages_due(self) -> None:
        """Deadlines passed: ask again for the missing parts, or give the message up."""
        now = time.monotonic()
        for pending in [p for p in self.subpackages.values() if p.deadline <= now]:
            if pending.resends < SUBPACKAGE_RESENDS:
                pending.deadline = now + self.gateway.config.subpackage_timeout
                self._request_resend(pending)
            else:
                self._subpackage_forget(pending)
                await self._bad(f"sub-packaged 0x{pending.msg_id:04x} incomplete")

    async def _jt808_session(self, msg: m.Message) -> bool:
        """Register / auth handshake. True: carry on with the message."""
        device = self.device
        if device is None:  # pragma: no cover - only called once identified
            return False
        if msg.type == m.REGISTER and "subpackage" not in msg.extra:
            code = await self.gateway.db(issue_auth_code, device_pk=device.pk)
            self.device = DeviceInfo(device.pk, device.identifier, device.lenient, code)
            self.write(self.reply(msg, auth_code=code))
            return False
        if msg.type == m.AUTH:
            if device.auth_code and msg.text == device.auth_code:
                self.authenticated = True
                self.write(self.reply(msg, result=JT808_OK))
                self.gateway._commands_connected(device.pk)
                self.gateway.writer.submit(
                    Inbound(device_id=device.pk, message=msg, received_at=timezone.now())
                )
            else:
                self.auth_failures += 1
                self.write(self.reply(msg, result=JT808_FAILURE))
                if self.auth_failures >= MAX_AUTH_FAILURES:
                    self.close("auth failed")
            return False
        if not self.authenticated:
            self.write(self.reply(msg, result=JT808_FAILURE))
            return False
        return True


# --------------------------------------------------------------------------------------------
# The gateway: listeners, sessions, the writer.
# --------------------------------------------------------------------------------------------


class Gateway:
    def __init__(self, config: GatewayConfig | None = None) -> None:
        self.config = config or GatewayConfig()
        unknown = set(self.config.ports) - set(PROTOCOLS)
        if unknown:
            raise ValueError(f"unknown protocols: {', '.join(sorted(unknown))}")
        self.codecs = {p: PROTOCOLS[p].load_codec() for p in self.config.ports}
        self.writer = BatchWriter(
            self._deliver,
            ingest=functools.partial(
                ingest_batch, config=self.config.hygiene, engine=self._make_engine()
            ),
            max_items=self.config.batch_size,
            max_wait=self.config.batch_wait,
        )
        self.stats: dict[str, dict[str, int]] = {
            p: dict.fromkeys(COUNTERS, 0) for p in self.config.ports
        }
        self.stored = 0  # positions committed (all protocols)
        self.name = f"{socket.gethostname()}:{os.getpid()}"
        self.started_at = timezone.now()
        self._reported: tuple[float, dict[str, dict[str, int]], int] | None = None
        self._logged: tuple[float, dict[str, dict[str, int]], int] | None = None
        self.servers: dict[str, asyncio.AbstractServer] = {}
        self.ports: dict[str, int] = {}  # bound ports (port 0 -> the one the OS chose)
        self.connections: set[Connection] = set()
        self.sessions: dict[int, Connection] = {}  # device pk -> its live connection
        self._tasks: set[asyncio.Task] = set()
        self._background: set[asyncio.Task] = set()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._commands_ready: set[int] = set()  # sessions that became ready since the last claim
        self._commands_flushing = False
        self._offline_pending: set[int] = set()  # devices whose connection closed, to mark
        self._offline_scheduled = False

    def _make_engine(self) -> Any:
        """The alarm engine, evaluated inside each batch's transaction (off: `alarms=False`)."""
        if not self.config.alarms:
            return None
        from alarms.engine import Engine

        return Engine()

    async def db(self, fn: Callable[..., Any], **kwargs: Any) -> Any:
        """Run `fn(**kwargs)` on the writer thread (the ORM is sync) and await its result."""
        return await asyncio.wrap_future(self.writer.call(fn, **kwargs))

    async def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        self.writer.start()
        for protocol, port in self.config.ports.items():
            server = await asyncio.start_server(
                lambda r, w, p=protocol: self._accept(p, r, w), self.config.host, port
            )
            self.servers[protocol] = server
            self.ports[protocol] = server.sockets[0].getsockname()[1]
            logger.info("%s listening on %s:%d", protocol, self.config.host, self.ports[protocol])
        self._spawn(self._report_loop())
        if self.config.commands:
            self._spawn(self._commands_loop())

    async def stop(self) -> None:
        """Stop accepting, commit and ack what was received, close connections, end the writer."""
        for server in self.servers.values():
            server.close()
        for task in list(self._background):
            task.cancel()
        # Barrier: everything queued so far is committed and its acks are scheduled on the loop
        # before this future resolves (both go through call_soon_threadsafe, in that order).
        await asyncio.wrap_future(self.writer.call(lambda: None, flush_first=True))
        await asyncio.sleep(0)
        for conn in list(self.connections):
            conn.close("gateway stopping")
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
        self._offline_flush()  # the connections just closed, before the writer ends
        self.report(stopped=True)
        await asyncio.to_thread(self.writer.stop)
        for server in self.servers.values():
            await server.wait_closed()
        self.servers.clear()

    async def _accept(
        self, protocol: str, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        conn = Connection(self, protocol, reader, writer)
        self.connections.add(conn)
        task = asyncio.current_task()
        if task is not None:
            self._tasks.add(task)
        try:
            await conn.run()
        except Exception:  # a bug in one session must not take the server down
            logger.exception("%s %s: session crashed", protocol, conn.remote)
            conn.close("error")
        finally:
            self.connections.discard(conn)
            if task is not None:
                self._tasks.discard(task)
            with contextlib.suppress(ConnectionError, OSError):
                await writer.wait_closed()

    def _session_started(self, conn: Connection) -> None:
        if conn.device is None:  # pragma: no cover - called right after identification
            return
        old = self.sessions.get(conn.device.pk)
        self.sessions[conn.device.pk] = conn
        if old is not None and old is not conn:
            old.close("replaced by a new login")
        if conn.authenticated:  # JT808: after its auth (_jt808_session)
            self._commands_connected(conn.device.pk)

    def _connection_closed(self, conn: Connection) -> None:
        if conn.device is None:
            return
        if self.sessions.get(conn.device.pk) is conn:
            del self.sessions[conn.device.pk]
            # One writer job for all the connections closed within OFFLINE_COALESCE_S (a mass
            # disconnect is thousands of them), queued after the frames they sent.
            self._offline_pending.add(conn.device.pk)
            if not self._offline_scheduled:
                self._offline_scheduled = True
                asyncio.get_running_loop().call_later(OFFLINE_COALESCE_S, self._offline_flush)

    def _offline_flush(self) -> None:
        self._offline_scheduled = False
        # A device that logged in again meanwhile stays online.
        ids = [pk for pk in self._offline_pending if pk not in self.sessions]
        self._offline_pending = set()
        if ids:
            # After the batch holding their last frames, or the ingest would mark them online.
            self.writer.call(services.devices_mark_offline, device_ids=ids, flush_first=True)

    # -- downlink commands (T3): claim on the writer thread, write on the loop --
    def _commands_connected(self, device_pk: int) -> None:
        """A device's session is ready: send what was queued for it while it was away. Logins
        arriving while a claim is in flight wait for the next one (one job for a login storm,
        not one per device)."""
        if not self.config.commands:
            return
        self._commands_ready.add(device_pk)
        if not self._commands_flushing:
            self._commands_flushing = True
            self._spawn(self._commands_flush())

    async def _commands_flush(self) -> None:
        try:
            while self._commands_ready:
                ready, self._commands_ready = list(self._commands_ready), set()
                await self._commands_send(ready)
        finally:
            self._commands_flushing = False

    async def _commands_send(self, device_ids: list[int]) -> int:
        """Claim the queued commands of these devices (devices.services) and write them to
        their connections. A command whose connection closed meanwhile goes back to the queue."""
        try:
            outgoing = await self.db(
                device_services.commands_claim_for_sending,
                device_ids=device_ids,
                now=timezone.now(),
            )
        except Exception:  # logged by the writer; the next poll tries again
            return 0
        lost = []
        for out in outgoing:
            conn = self.sessions.get(out.device_id)
            if conn is None or conn.closed or not conn.authenticated:
                lost.append(out.command_id)
                continue
            conn.write(out.frame)
            logger.info(
                "%s %s: command %d (%s) sent", conn.protocol, conn.remote, out.command_id, out.kind
            )
        if lost:
            self.writer.call(device_services.commands_requeue, command_ids=lost)
        return len(outgoing) - len(lost)

    async def _commands_loop(self) -> None:
        """Every `command_poll_interval`: send commands queued for connected devices (one
        claim query); every `command_expire_interval`: expire the old and the unanswered."""
        config = self.config
        next_expiry = time.monotonic()
        while True:
            await asyncio.sleep(config.command_poll_interval)
            ready = [pk for pk, c in self.sessions.items() if c.authenticated and not c.closed]
            if ready:
                await self._commands_send(ready)
            if time.monotonic() >= next_expiry:
                next_expiry = time.monotonic() + config.command_expire_interval
                self.writer.call(device_services.commands_expire, now=timezone.now())

    # -- acks after commit (writer thread -> loop) --
    def _deliver(self, result: BatchResult) -> None:
        loop = self._loop
        if loop is None or loop.is_closed():
            return
        tokens = [t for t in result.acks if t is not None]
        stored = len(result.positions)
        if tokens or stored:
            # RuntimeError: the loop closed meanwhile; the devices will resend.
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(self._send_acks, tokens, stored)

    def _send_acks(self, tokens: list[tuple[Connection, bytes | None]], stored: int = 0) -> None:
        self.stored += stored
        for conn, data in tokens:
            conn.stats["acked"] += 1
            conn.write(data)

    # -- counters: a status row every few seconds, a log line per protocol every minute --
    def _spawn(self, coro: Any) -> None:
        task = asyncio.ensure_future(coro)
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    def _snapshot(self) -> tuple[float, dict[str, dict[str, int]], int]:
        return time.monotonic(), {p: dict(c) for p, c in self.stats.items()}, self.stored

    @staticmethod
    def _rates(
        before: tuple[float, dict[str, dict[str, int]], int] | None,
        after: tuple[float, dict[str, dict[str, int]], int],
    ) -> dict[str, dict[str, float]]:
        if before is None or after[0] <= before[0]:
            return {}
        seconds = after[0] - before[0]
        rates = {
            p: {k: round((v - before[1].get(p, {}).get(k, 0)) / seconds, 2) for k, v in c.items()}
            for p, c in after[1].items()
        }
        rates["all"] = {"stored": round((after[2] - before[2]) / seconds, 2)}
        return rates

    def report(self, *, stopped: bool = False) -> None:
        """Queue this process's status row (counters, rates since the last row)."""
        snap = self._snapshot()
        rates = self._rates(self._reported, snap)
        self._reported = snap
        counters: dict[str, dict[str, int]] = {**snap[1], "all": {"stored": snap[2]}}
        self.writer.call(
            services.gateway_status_record,
            name=self.name,
            host=self.config.host,
            ports=dict(self.ports),
            started_at=self.started_at,
            now=timezone.now(),
            connections=len(self.connections),
            sessions=len(self.sessions),
            queue_depth=self.writer.queue.qsize(),
            rss_mb=_rss_mb(),
            counters=counters,
            rates=rates,
            stopped=stopped,
        )

    def log_counters(self) -> None:
        snap = self._snapshot()
        rates = self._rates(self._logged, snap)
        self._logged = snap
        for protocol, counts in snap[1].items():
            rate = rates.get(protocol, {})
            logger.info(
                "stats %s connections=%d frames=%d bad_frames=%d positions=%d acked=%d "
                "unknown=%d frames/s=%.1f positions/s=%.1f bad/s=%.2f",
                protocol,
                sum(1 for c in self.connections if c.protocol == protocol),
                counts["frames"],
                counts["bad_frames"],
                counts["positions"],
                counts["acked"],
                counts["unknown"],
                rate.get("frames", 0.0),
                rate.get("positions", 0.0),
                rate.get("bad_frames", 0.0),
            )
        logger.info(
            "stats all stored=%d stored/s=%.1f sessions=%d queue=%d",
            snap[2],
            rates.get("all", {}).get("stored", 0.0),
            len(self.sessions),
            self.writer.queue.qsize(),
        )

    async def _report_loop(self) -> None:
        config = self.config
        self._logged = self._snapshot()
        self.report()
        next_log = time.monotonic() + config.stats_log_interval
        while True:
            await asyncio.sleep(config.status_interval)
            self.report()
            if time.monotonic() >= next_log:
                next_log += config.stats_log_interval
                self.log_counters()
