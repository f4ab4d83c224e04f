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
import concurrent.futures
import contextlib
import logging
import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from types import ModuleType
from typing import Any

from django.db import connections
from django.utils import timezone

from devices.protocols import PROTOCOLS
from gateway import services
from gateway.ingest import BatchResult, Inbound, ingest_batch
from gateway.protocols import messages as m
from gateway.protocols.messages import FrameError

logger = logging.getLogger("carloan.gateway")

DEFAULT_PORTS = {"gt06": 5023, "jt808": 5015, "h02": 5013}
DEFAULT_IDLE_TIMEOUT = 300.0  # seconds without a byte before a connection is closed
MAX_BAD_FRAMES = 10  # bad frames in a row that close a connection
MAX_BUFFER = 64 * 1024  # bytes held for an incomplete frame: more is not a tracker
MAX_AUTH_FAILURES = 3  # JT808 wrong auth codes before the connection is closed
READ_SIZE = 64 * 1024

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

    def timeout_for(self, protocol: str) -> float:
        return self.idle_timeouts.get(protocol, self.idle_timeout)


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


class BatchWriter:
    """Collects `Inbound` items for up to `max_wait` seconds or `max_items` items, stores them
    with `ingest_batch` and calls `deliver(result)` after the commit. Also runs the session's
    small database jobs (`call`) in queue order on the same thread.

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
        self._thread: threading.Thread | None = None

    # -- producer side (any thread) --
    def submit(self, item: Inbound) -> None:
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
            else:
                batch.append(item)
                if len(batch) >= self.max_items:
                    break
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                break
            try:
                item = self.queue.get(timeout=remaining)
            except queue.Empty:
                break
        self._store(batch)
        return running

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
        timeout = self.gateway.config.timeout_for(self.protocol)
        try:
            data = await asyncio.wait_for(self.reader.read(READ_SIZE), timeout)
        except TimeoutError:
            self.close("idle timeout")
            return False
        except (ConnectionError, OSError):
            self.close("connection error")
            return False
        if not data:
            self.close("closed by peer")
            return False
        self.buffer += data
        frames, self.buffer, discarded = self.codec.split_frames(self.buffer)
        if discarded:
            await self._bad("garbage")
        for frame in frames:
            if self.closed:
                return False
            lenient = self.device.lenient if self.device else False
            try:
                messages = self.codec.decode(frame, lenient=lenient)
            except FrameError as exc:
                await self._bad(str(exc))
                continue
            self.bad_in_row = 0
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

    async def _bad(self, reason: str) -> None:
        self.bad_in_row += 1
        self.bad_total += 1
        if self.device is not None:
            self.gateway.writer.call(
                services.device_frames_dropped, device_id=self.device.pk, reason=reason
            )
        else:
            self.bad_unreported += 1
        if self.bad_in_row >= self.gateway.config.max_bad_frames:
            self.close(f"{self.bad_in_row} bad frames in a row")

    async def _identify(self, msg: m.Message) -> bool:
        """Bind the connection to a known device; refuse and record an unknown one."""
        identifier = msg.device_id or ""
        db = self.gateway.db
        device = await db(lookup_device, protocol=self.protocol, identifier=identifier)
        if device is None:
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
        if msg.positions:
            # Acked only after the commit: the token carries the ack bytes.
            token = (self, self.reply(msg))
            self.gateway.writer.submit(
                Inbound(device_id=device.pk, message=msg, received_at=timezone.now(), token=token)
            )
            return
        self.write(self.reply(msg))
        if msg.type in _STATE_TYPES or msg.alarms:
            self.gateway.writer.submit(
                Inbound(device_id=device.pk, message=msg, received_at=timezone.now())
            )

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
            self._deliver, max_items=self.config.batch_size, max_wait=self.config.batch_wait
        )
        self.servers: dict[str, asyncio.AbstractServer] = {}
        self.ports: dict[str, int] = {}  # bound ports (port 0 -> the one the OS chose)
        self.connections: set[Connection] = set()
        self.sessions: dict[int, Connection] = {}  # device pk -> its live connection
        self._tasks: set[asyncio.Task] = set()
        self._loop: asyncio.AbstractEventLoop | None = None

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

    async def stop(self) -> None:
        """Stop accepting, commit and ack what was received, close connections, end the writer."""
        for server in self.servers.values():
            server.close()
        # Barrier: everything queued so far is committed and its acks are scheduled on the loop
        # before this future resolves (both go through call_soon_threadsafe, in that order).
        await asyncio.wrap_future(self.writer.call(lambda: None, flush_first=True))
        await asyncio.sleep(0)
        for conn in list(self.connections):
            conn.close("gateway stopping")
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
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

    def _connection_closed(self, conn: Connection) -> None:
        if conn.device is None:
            return
        if self.sessions.get(conn.device.pk) is conn:
            del self.sessions[conn.device.pk]
            # After the batch holding its last frames, or the ingest would mark it online again.
            self.writer.call(
                services.devices_mark_offline, device_ids=[conn.device.pk], flush_first=True
            )

    # -- acks after commit (writer thread -> loop) --
    def _deliver(self, result: BatchResult) -> None:
        loop = self._loop
        if loop is None or loop.is_closed():
            return
        tokens = [t for t in result.acks if t is not None]
        if tokens:
            # RuntimeError: the loop closed meanwhile; the devices will resend.
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(self._send_acks, tokens)

    @staticmethod
    def _send_acks(tokens: list[tuple[Connection, bytes | None]]) -> None:
        for conn, data in tokens:
            conn.write(data)
