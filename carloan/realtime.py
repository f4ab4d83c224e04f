"""Live updates: what the web pages and the mobile app see move without reloading.

Services publish, consumers forward (STYLE.md): nothing here is a `post_save` broadcaster, and
nothing is sent before the transaction that made the change commits.

Groups: one Channels group per customer (`customer_group(id)`), named after the customer that
owns the vehicle. A WebSocket joins the groups of the customers its user may see (their subtree
plus the customers of vehicles shared with them) and filters every item again by visibility
(`carloan.consumers.LiveConsumer`).

Channel-layer envelope (one message per group per flush, items split in chunks of `CHUNK`):

    {"type": "live.batch", "items": [{"type": "position", ...}, {"type": "device_status", ...}]}

The consumer forwards it to the browser as `{"type": "batch", "items": [...]}` with the items
the user may see. Item types are exactly `ITEM_TYPES`; every item carries `vehicle_id` and
`customer_id` (the vehicle's customer), used for the visibility filter. Items without a vehicle
are never forwarded.

Items for one person (a work order assigned to a field worker, type "task") go to that user's
own group (`user_group(id)`, which every connection of theirs joins) and carry `ADDRESSEE`
(`for_user_id`): the consumer forwards such an item only to that user, whatever vehicles they
subscribed to, and still only when they may see its vehicle.

Two ways in:
- `publish(group, type, payload)`: one event (an alarm, a command status), sent as soon as the
  transaction commits, never merged with another.
- The coalescing feed (`feed().add(...)`), used for positions and device status (the gateway's
  batches, `ingest_committed`, `device_status_publish`): per vehicle (position) or device
  (status) only the latest item is kept, and a customer group is flushed at most once per
  `interval` (1 s). A quiet group's first item goes out at once; a busy group's once a second.

The work happens on two background threads per process (`LiveFeed`): one builds the gateway's
items (plates, device ids: two queries per batch, off the writer thread so acks never wait for
them), one sends from its own event loop (the writer thread has none, and channels_redis keeps
its connections per loop). Callers only append under a lock: a slow or unreachable channel layer
never blocks nor fails the ingest. Failures are logged (at most once a minute) and counted in
`feed().stats`.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import dataclasses
import datetime as dt
import functools
import itertools
import logging
import struct
import threading
import time
from collections import Counter
from collections.abc import Callable, Hashable, Iterable
from typing import Any

from django.conf import settings
from django.db import transaction
from django.utils import timezone

logger = logging.getLogger("carloan.realtime")

ITEM_TYPES = ("position", "device_status", "alarm", "command", "task")
CHANNEL_MESSAGE_TYPE = "live.batch"  # handled by LiveConsumer.live_batch
GROUP_PREFIX = "live.customer."
USER_GROUP_PREFIX = "live.user."
ADDRESSEE = "for_user_id"  # an item carrying it is for that one user only
CHUNK = 500  # items per channel-layer message (channels_redis messages stay well under 1 MB)
SEND_TIMEOUT = 2.0  # seconds for one group_send before it counts as failed
MAX_CONCURRENT_SENDS = 20
MAX_EVENTS = 10_000  # uncoalesced events waiting to be sent; beyond that new ones are dropped
JOBS_IDLE_CLOSE = 0.5  # seconds without a job before the items thread closes its connection
MAX_JOBS = 200  # gateway batches waiting for their items to be built; beyond: the oldest dropped
FAILURE_LOG_INTERVAL = 60.0
# Device columns a device_status item carries (the live map's badge and tooltip) ...
STATUS_FIELDS = ("online", "battery_pct", "external_voltage", "gsm_signal", "last_acc")
# ... and those whose change pushes one. GSM signal and voltage wobble on every frame: pushing
# them would send a status item per fix for nothing a user acts on.
STATUS_TRIGGERS = ("online", "battery_pct", "last_acc")


def customer_group(customer_id: int) -> str:
    """The Channels group of one customer's vehicles (ASCII, < 100 chars as Channels wants)."""
    return f"{GROUP_PREFIX}{int(customer_id)}"


def user_group(user_id: int) -> str:
    """The Channels group of one user's connections (items addressed to them)."""
    return f"{USER_GROUP_PREFIX}{int(user_id)}"


def customer_of_group(group: str) -> int | None:
    if group.startswith(GROUP_PREFIX):
        with contextlib.suppress(ValueError):
            return int(group[len(GROUP_PREFIX) :])
    return None


def iso(value: dt.datetime | None) -> str | None:
    """ISO 8601 with the offset, in the site's time zone (as the REST API writes times).
    `astimezone` to the (cached) default zone: a tenth of `timezone.localtime`'s cost, which
    looks the zone up per call; paid per pushed fix on the gateway's writer thread."""
    return value.astimezone(timezone.get_default_timezone()).isoformat() if value else None


def _jsonable(value: Any) -> Any:
    if isinstance(value, dt.datetime):
        return iso(value) if timezone.is_aware(value) else value.isoformat()
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [_jsonable(v) for v in value]
    return value


def make_item(type: str, payload: dict, *, group: str | None = None) -> dict:
    """One live item: `{"type": type, **payload}` with JSON-safe values. Refuses unknown types
    and payloads without `vehicle_id`; `customer_id` defaults to the customer of `group`."""
    if type not in ITEM_TYPES:
        raise ValueError(f"live item type must be one of {', '.join(ITEM_TYPES)}, not {type!r}")
    if "vehicle_id" not in payload:
        raise ValueError("a live item needs a vehicle_id (the consumer filters by vehicle)")
    item = {"type": type, **_jsonable(payload)}
    if item.get("customer_id") is None and group is not None:
        item["customer_id"] = customer_of_group(group)
    if item.get("customer_id") is None:
        raise ValueError("a live item needs a customer_id (or a customer group)")
    return item


def publish(group: str, type: str, payload: dict) -> None:
    """Publish one event (`type` in ITEM_TYPES) to `group` once the current transaction commits
    (at once outside a transaction); nothing is sent if it rolls back. Never raises for a
    channel-layer problem: delivery is best effort, failures are logged and counted.

    `payload` must hold `vehicle_id` and should hold `customer_id` (taken from a customer group
    otherwise); datetimes become ISO 8601 strings with offset."""
    item = make_item(type, payload, group=group)
    transaction.on_commit(lambda: feed().send_now(group, [item]), robust=True)


# --- Coalescing -------------------------------------------------------------------------------
class Coalescer:
    """Pending live items per group, one per key (latest `order` wins), and when each group may
    be flushed again. Thread-safe; no I/O. `take_due(now)` hands out what may be sent now."""

    def __init__(self, interval: float = 1.0) -> None:
        self.interval = interval
        self._lock = threading.Lock()
        self._pending: dict[str, dict[Hashable, tuple[Any, dict]]] = {}
        self._flushed_at: dict[str, float] = {}
        self.replaced = 0  # items superseded by a later one before they were sent

    def add(self, group: str, key: Hashable, item: dict, order: Any) -> None:
        self.add_many([(group, key, item, order)])

    def add_many(self, entries: Iterable[tuple[str, Hashable, dict, Any]]) -> None:
        with self._lock:
            pending = self._pending
            for group, key, item, order in entries:
                slot = pending.get(group)
                if slot is None:
                    slot = pending[group] = {}
                old = slot.get(key)
                if old is not None:
                    self.replaced += 1
                    if order < old[0]:  # an older fix arriving late never replaces a newer one
                        continue
                slot[key] = (order, item)

    def pending(self) -> int:
        with self._lock:
            return sum(len(slot) for slot in self._pending.values())

    def next_due(self, now: float) -> float | None:
        """Seconds until the first pending group may be flushed (0: now); None: nothing pending."""
        with self._lock:
            if not self._pending:
                return None
            return max(
                0.0,
                min(
                    self._flushed_at.get(group, -float("inf")) + self.interval - now
                    for group in self._pending
                ),
            )

    def take_due(self, now: float) -> list[tuple[str, list[dict]]]:
        """The items of every group not flushed within the last `interval`, in the order their
        keys first arrived; those groups count as flushed at `now`."""
        out = []
        with self._lock:
            for group in list(self._pending):
                if now - self._flushed_at.get(group, -float("inf")) < self.interval:
                    continue
                slot = self._pending.pop(group)
                self._flushed_at[group] = now
                out.append((group, [item for _order, item in slot.values()]))
            # Forget groups that no longer hold anything back (the map stays small).
            for group in [g for g, t in self._flushed_at.items() if now - t >= self.interval]:
                if group not in self._pending:
                    del self._flushed_at[group]
        return out


class LiveFeed:
    """The process's sender, two daemon threads started on first use (when `autostart`):

    - "carloan-live-items" runs the deferred jobs (`defer(fn)`: the gateway's batches) that read
      plates and device ids and build the items, off the writer thread so acks never wait for
      them (sync Django, its own database connection);
    - "carloan-live" sends coalesced items and events through the channel layer from its own
      event loop.

    Tests build one with `autostart=False` and drive it themselves: `run_jobs()` (sync), then
    `await feed.flush(now)` in their own event loop."""

    def __init__(
        self,
        *,
        interval: float = 1.0,
        clock: Callable[[], float] = time.monotonic,
        autostart: bool = True,
        layer: Any = None,
        send_timeout: float = SEND_TIMEOUT,
    ) -> None:
        self.coalescer = Coalescer(interval)
        self.clock = clock
        self.autostart = autostart
        self.send_timeout = send_timeout
        self._layer = layer
        self._events: list[tuple[str, list[dict]]] = []
        self._events_lock = threading.Lock()
        self._jobs: collections.deque[Callable[[], list]] = collections.deque()
        self._jobs_ready = threading.Event()
        self._jobs_thread: threading.Thread | None = None
        self._stop_requested = threading.Event()
        self._start_lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._wakeup: asyncio.Event | None = None
        self._stopping = False
        self._order = itertools.count()
        self.stats: Counter[str] = Counter()
        self._failures_unlogged = 0
        self._failure_logged_at = -float("inf")

    # -- producer side (any thread, never blocks on I/O) --
    def sequence(self) -> int:
        """A process-wide increasing number: "later wins" for items without their own time."""
        return next(self._order)

    def add(self, group: str, key: Hashable, item: dict, order: Any = None) -> None:
        """Queue a coalesced item: per (group, key) only the one with the highest `order`
        (default: arrival) is sent."""
        self.add_many([(group, key, item, self.sequence() if order is None else order)])

    def add_many(self, entries: list[tuple[str, Hashable, dict, Any]]) -> None:
        """Queue many coalesced items (group, key, item, order) under one lock and one wake-up
        of the sender: a gateway batch costs the writer thread one hand-over, not one each."""
        if not entries:
            return
        self.coalescer.add_many(entries)
        self.stats["items"] += len(entries)
        self._wake()

    def defer(self, job: Callable[[], list[tuple[str, Hashable, dict, Any]]]) -> None:
        """Queue `job` (any thread, O(1)): it runs on the items thread and returns entries for
        `add_many`. A backlog past MAX_JOBS drops the oldest job (newer positions supersede
        it anyway); counted as dropped."""
        if len(self._jobs) >= MAX_JOBS:
            with contextlib.suppress(IndexError):
                self._jobs.popleft()
                self.stats["dropped_jobs"] += 1
        self._jobs.append(job)
        if self._thread is None and self.autostart:
            self.start()
        self._jobs_ready.set()

    def defer_ingest(self, rows: list, devices: list[tuple[dict, dict]], order: int) -> None:
        """Queue a committed gateway batch (O(1)). The items thread merges every batch queued
        since its last round (latest fix per vehicle, latest status per device) and reads the
        plates and device ids for all of them at once."""
        self.defer(IngestBatch(rows, devices, order))

    def run_jobs(self) -> int:
        """Run the queued jobs in this thread (the items thread, or a test), the gateway
        batches merged into one round. Returns how many jobs ran; a failing one is logged and
        counted, never raised."""
        jobs = []
        while True:
            try:
                jobs.append(self._jobs.popleft())
            except IndexError:
                break
        batches = [job for job in jobs if isinstance(job, IngestBatch)]
        calls = [job for job in jobs if not isinstance(job, IngestBatch)]
        if batches:
            calls.append(functools.partial(_ingest_entries, batches))
        for job in calls:
            try:
                self.add_many(job())
            except Exception as exc:
                logger.exception("live updates: building items failed")
                self.stats["failed"] += 1
                self._failed(exc)
        if jobs:
            self.stats["rounds"] += 1
        return len(jobs)

    def send_now(self, group: str, items: list[dict]) -> None:
        """Queue an event message for `group`, sent with the next loop turn (not coalesced)."""
        with self._events_lock:
            if len(self._events) >= MAX_EVENTS:
                self.stats["dropped"] += len(items)
                self._failed(RuntimeError("live event queue full"))
                return
            self._events.append((group, items))
        self.stats["events"] += len(items)
        self._wake()

    def _wake(self) -> None:
        if self._thread is None and self.autostart:
            self.start()
        loop, wakeup = self._loop, self._wakeup
        if loop is not None and wakeup is not None:
            with contextlib.suppress(RuntimeError):  # the loop closed meanwhile
                loop.call_soon_threadsafe(wakeup.set)

    # -- sending (the feed's own loop, or a test's loop) --
    def layer(self):
        if self._layer is None:
            from channels.layers import get_channel_layer

            self._layer = get_channel_layer()
        return self._layer

    def _take_events(self) -> list[tuple[str, list[dict]]]:
        with self._events_lock:
            events, self._events = self._events, []
        return events

    async def flush(self, now: float | None = None) -> int:
        """Send the queued events and every coalesced group that is due. Returns the number of
        channel-layer messages sent successfully."""
        now = self.clock() if now is None else now
        batches = self._take_events() + self.coalescer.take_due(now)
        messages = [
            (group, {"type": CHANNEL_MESSAGE_TYPE, "items": items[i : i + CHUNK]})
            for group, items in batches
            for i in range(0, len(items), CHUNK)
        ]
        if not messages:
            return 0
        layer = self.layer()
        if layer is None:
            self.stats["dropped"] += sum(len(m["items"]) for _g, m in messages)
            return 0
        limit = asyncio.Semaphore(MAX_CONCURRENT_SENDS)

        async def send(group: str, message: dict) -> bool:
            async with limit:
                try:
                    await asyncio.wait_for(layer.group_send(group, message), self.send_timeout)
                except Exception as exc:
                    self.stats["failed"] += 1
                    self.stats["dropped"] += len(message["items"])
                    self._failed(exc)
                    return False
                self.stats["sent"] += 1
                return True

        results = await asyncio.gather(*(send(g, m) for g, m in messages))
        return sum(results)

    def _failed(self, exc: BaseException) -> None:
        self._failures_unlogged += 1
        now = time.monotonic()
        if now - self._failure_logged_at >= FAILURE_LOG_INTERVAL:
            logger.warning(
                "live updates: %d send(s) failed since the last report, latest: %r",
                self._failures_unlogged,
                exc,
            )
            self._failures_unlogged = 0
            self._failure_logged_at = now

    # -- the background thread --
    def start(self) -> None:
        with self._start_lock:
            if self._thread is not None:
                return
            ready = threading.Event()
            self._stopping = False
            self._stop_requested.clear()
            self._thread = threading.Thread(
                target=self._run, args=(ready,), name="carloan-live", daemon=True
            )
            self._thread.start()
            self._jobs_thread = threading.Thread(
                target=self._run_jobs_forever, name="carloan-live-items", daemon=True
            )
            self._jobs_thread.start()
        ready.wait(5)

    def _run_jobs_forever(self) -> None:
        from django.db import close_old_connections, connections

        last_round = -float("inf")
        try:
            while not self._stopping:
                if not self._jobs_ready.wait(JOBS_IDLE_CLOSE):
                    # Idle: give the connection back (a gateway that keeps receiving keeps it;
                    # nothing holds a database session open while no vehicle reports).
                    connections.close_all()
                    continue
                # At most one round per interval: a busy gateway's batches of the last second
                # are merged and resolved with one query each; a quiet one's go at once.
                wait = last_round + self.coalescer.interval - time.monotonic()
                if wait > 0 and self._stop_requested.wait(wait):
                    break
                self._jobs_ready.clear()
                last_round = time.monotonic()
                close_old_connections()  # CONN_MAX_AGE / health checks, as a request would
                self.run_jobs()
            self.run_jobs()
        finally:
            connections.close_all()  # this thread's connection

    def stop(self, timeout: float = 5.0) -> None:
        """Send what is pending (ignoring the interval), then end the thread."""
        thread, loop, wakeup = self._thread, self._loop, self._wakeup
        if thread is None:
            return
        self._stopping = True
        # Items first (their last jobs run), then the sender's final flush.
        self._stop_requested.set()
        self._jobs_ready.set()
        if self._jobs_thread is not None:
            self._jobs_thread.join(timeout)
            self._jobs_thread = None
        if loop is not None and wakeup is not None:
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(wakeup.set)
        thread.join(timeout)
        with self._start_lock:
            self._thread = None

    def _run(self, ready: threading.Event) -> None:
        loop = asyncio.new_event_loop()
        try:
            loop.run_until_complete(self._main(loop, ready))
        finally:
            self._loop = self._wakeup = None
            loop.close()

    async def _main(self, loop: asyncio.AbstractEventLoop, ready: threading.Event) -> None:
        self._wakeup = asyncio.Event()
        self._loop = loop
        ready.set()
        while True:
            try:
                await self.flush()
            except Exception as exc:
                self.stats["failed"] += 1
                self._failed(exc)
            if self._stopping:
                await self.flush(now=float("inf"))  # everything pending, interval or not
                return
            # Clear before reading the state: an add() after this line sets it again.
            self._wakeup.clear()
            with self._events_lock:
                has_events = bool(self._events)
            delay = 0.0 if has_events else self.coalescer.next_due(self.clock())
            if delay == 0.0:
                await asyncio.sleep(0)
                continue
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wakeup.wait(), delay)


_feed: LiveFeed | None = None
_feed_lock = threading.Lock()


def feed() -> LiveFeed:
    """This process's LiveFeed (created on first use)."""
    global _feed
    if _feed is None:
        with _feed_lock:
            if _feed is None:
                _feed = LiveFeed(interval=float(getattr(settings, "LIVE_FLUSH_INTERVAL", 1.0)))
    return _feed


# --- Items built from the gateway's data ------------------------------------------------------
_EWKB_POINT = struct.Struct("<BIIdd")


def _lon_lat(point: Any) -> tuple[float, float]:
    # Ingest rows hold the point as hex EWKB (no GEOS on the hot path); read it back with
    # struct. Anything else is a GEOS point.
    if isinstance(point, str | bytes):
        raw = bytes.fromhex(point) if isinstance(point, str) else point
        _order, _kind, _srid, lon, lat = _EWKB_POINT.unpack(raw[: _EWKB_POINT.size])
        return lon, lat
    return point.x, point.y


def position_item(row: Any, *, plate: str, imei: str, customer_id: int) -> dict:
    """The live item of one stored fix (a gateway Position row)."""
    lon, lat = _lon_lat(row.__dict__.get("point") or row.point)
    return {
        "type": "position",
        "customer_id": customer_id,
        "vehicle_id": row.vehicle_id,
        "plate": plate,
        "device_id": row.device_id,
        "imei": imei,
        "fix_time": iso(row.fix_time),
        "lat": round(lat, 7),
        "lon": round(lon, 7),
        "speed_kmh": row.speed_kmh,
        "course": row.course,
        "acc": row.acc,
        "source": row.source,
        "valid": row.valid,
    }


def device_status_item(
    state: dict, *, device_id: int, imei: str, vehicle_id: int, plate: str, customer_id: int
) -> dict:
    """The live item of one device's state (`state` holds Device column values)."""
    return {
        "type": "device_status",
        "customer_id": customer_id,
        "vehicle_id": vehicle_id,
        "plate": plate,
        "device_id": device_id,
        "imei": imei,
        "online": state.get("online"),
        "battery_pct": state.get("battery_pct"),
        "external_voltage": state.get("external_voltage"),
        "gsm_signal": state.get("gsm_signal"),
        "acc": state.get("last_acc"),
        "last_seen_at": iso(state.get("last_seen_at")),
        "last_fix_at": iso(state.get("last_fix_at")),
    }


def _lookups(device_ids: Iterable[int], vehicle_ids: Iterable[int]) -> tuple[dict, dict]:
    from devices.models import Device
    from vehicles.models import Vehicle

    imeis, vehicles = {}, {}
    for ids in _chunks(sorted(set(device_ids))):
        imeis.update(Device.all_objects.filter(pk__in=ids).values_list("pk", "identifier"))
    # Live vehicles only: a vehicle in the recycle bin is on nobody's map.
    for ids in _chunks(sorted(set(vehicle_ids))):
        for pk, plate, customer_id in Vehicle.objects.filter(pk__in=ids).values_list(
            "pk", "plate", "customer_id"
        ):
            vehicles[pk] = (plate, customer_id)
    return imeis, vehicles


def _chunks(ids: list[int], size: int = 2000) -> Iterable[list[int]]:
    # A second's worth of a large fleet: keep each IN list well under SQLite's variable limit.
    return (ids[i : i + size] for i in range(0, len(ids), size))


def ingest_committed(rows: list, devices: list[tuple[dict, dict]]) -> None:
    """The gateway's hook, called inside `ingest_batch`'s transaction: once it commits, the
    batch is handed to the feed (O(1) on the writer thread); the items thread then pushes the fix
    that moved each device's last position and the devices whose status changed.

    `rows`: the Position rows stored; `devices`: (row before, column values after) per device
    of the batch, as ingest read and wrote them (neither is changed after the commit). Only
    valid realtime fixes that became the device's last fix are pushed: blind-area re-uploads
    and older fixes are stored for tracks, not drawn as where the car is now; a drift fix
    leaves the marker at the parked spot, so it is not pushed either. Never raises."""
    if not rows and not devices:
        return
    try:
        live = feed()
        order = live.sequence()  # statuses: later batches win
        transaction.on_commit(lambda: live.defer_ingest(rows, devices, order), robust=True)
    except Exception as exc:  # the live feed must never fail a batch
        logger.exception("live updates: handing the batch over failed")
        feed().stats["failed"] += 1
        feed()._failed(exc)


@dataclasses.dataclass(frozen=True)
class IngestBatch:
    rows: list  # Position rows stored
    devices: list  # (row before, column values after) per device
    order: int  # feed sequence at the commit: later batches' statuses win


def _ingest_entries(batches: list[IngestBatch]) -> list[tuple]:
    """Runs on the items thread: pick what moved in these batches (the latest per vehicle and
    per device), read plates and ids for all of them at once, build the items."""
    from gateway.hygiene import FLAG_DRIFT

    moved: dict[int, Any] = {}  # vehicle -> its freshest pushed fix
    statuses: dict[int, tuple[int, int, dict]] = {}  # device -> (vehicle, order, state)
    for batch in batches:
        newest = {}
        for before, after in batch.devices:
            last_fix = after.get("last_fix_at")
            if last_fix is not None and last_fix != before.get("last_fix_at"):
                newest[before["pk"]] = last_fix
            if before.get("vehicle_id") is not None and any(
                before.get(f) != after.get(f) for f in STATUS_TRIGGERS
            ):
                statuses[before["pk"]] = (before["vehicle_id"], batch.order, after)
        for row in batch.rows:
            if (
                row.vehicle_id is not None
                and row.valid
                and row.realtime
                and newest.get(row.device_id) == row.fix_time
                and FLAG_DRIFT not in (row.flags or ())
            ):
                known = moved.get(row.vehicle_id)
                if known is None or row.fix_time >= known.fix_time:
                    moved[row.vehicle_id] = row
    if not moved and not statuses:
        return []
    imeis, vehicles = _lookups(
        [r.device_id for r in moved.values()] + list(statuses),
        [*moved, *(v for v, _o, _s in statuses.values())],
    )
    entries = []
    for vehicle_id, row in moved.items():
        if vehicle_id not in vehicles:
            continue
        plate, customer_id = vehicles[vehicle_id]
        item = position_item(
            row, plate=plate, imei=imeis.get(row.device_id, ""), customer_id=customer_id
        )
        # Per vehicle the freshest fix wins, whichever of its devices sent it.
        entries.append((customer_group(customer_id), ("position", vehicle_id), item, row.fix_time))
    for device_id, (vehicle_id, order, state) in statuses.items():
        if vehicle_id not in vehicles:
            continue
        plate, customer_id = vehicles[vehicle_id]
        item = device_status_item(
            state,
            device_id=device_id,
            imei=imeis.get(device_id, ""),
            vehicle_id=vehicle_id,
            plate=plate,
            customer_id=customer_id,
        )
        entries.append((customer_group(customer_id), ("device_status", device_id), item, order))
    return entries


def device_status_publish(*, device_ids: Iterable[int]) -> None:
    """After the current transaction commits, push the current status of these devices (those
    mounted on a live vehicle), read on the items thread. Coalesced per device with the
    gateway's status items, so the last change wins even when online and offline follow each
    other within a second."""
    ids = sorted(set(device_ids))
    if not ids:
        return
    live = feed()
    order = live.sequence()
    job = functools.partial(_device_status_entries, ids, order)
    transaction.on_commit(lambda: live.defer(job), robust=True)


def _device_status_entries(ids: list[int], order: int) -> list[tuple]:
    from django.db.models import OuterRef, Subquery

    from devices.models import Device
    from vehicles.models import DeviceBinding

    active = DeviceBinding.objects.filter(device=OuterRef("pk"), unbound_at__isnull=True)
    rows = list(
        Device.all_objects.filter(pk__in=ids).values(
            "pk",
            "identifier",
            "last_seen_at",
            "last_fix_at",
            *STATUS_FIELDS,
            vehicle_id=Subquery(active.values("vehicle_id")[:1]),
        )
    )
    _imeis, vehicles = _lookups([], [r["vehicle_id"] for r in rows if r["vehicle_id"]])
    entries = []
    for row in rows:
        if row["vehicle_id"] not in vehicles:
            continue
        plate, customer_id = vehicles[row["vehicle_id"]]
        item = device_status_item(
            row,
            device_id=row["pk"],
            imei=row["identifier"],
            vehicle_id=row["vehicle_id"],
            plate=plate,
            customer_id=customer_id,
        )
        entries.append((customer_group(customer_id), ("device_status", row["pk"]), item, order))
    return entries
