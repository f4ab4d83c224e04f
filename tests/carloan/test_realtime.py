"""carloan.realtime: what the gateway and the services push, when, and how often."""

from __future__ import annotations

import asyncio
import datetime as dt
import threading
import time

import pytest
import time_machine
from django.db import transaction

from carloan import realtime
from carloan.realtime import Coalescer, LiveFeed, customer_group
from gateway.ingest import Inbound, ingest_batch
from gateway.protocols import messages as m
from gateway.services import devices_mark_offline

NOW = dt.datetime(2026, 11, 22, 8, 0, tzinfo=dt.UTC)
BASE = (34.2610, 108.9423)


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class RecordingLayer:
    """A channel layer that records what it was asked to send (outbound I/O, nothing else)."""

    def __init__(self, fail: bool = False) -> None:
        self.sent: list[tuple[str, dict, float]] = []
        self.fail = fail
        self.lock = threading.Lock()

    async def group_send(self, group, message):
        if self.fail:
            raise ConnectionRefusedError("redis is down")
        with self.lock:
            self.sent.append((group, message, time.monotonic()))


@pytest.fixture
def frozen():
    with time_machine.travel(NOW, tick=False):
        yield


@pytest.fixture
def live(monkeypatch):
    """This process's feed, without its thread: tests flush it themselves."""
    clock = Clock()
    layer = RecordingLayer()
    feed = LiveFeed(autostart=False, clock=clock, layer=layer)
    feed.test_clock, feed.test_layer = clock, layer
    monkeypatch.setattr(realtime, "_feed", feed)
    return feed


def flush(feed, now=None):
    feed.run_jobs()  # what the items thread does
    asyncio.run(feed.flush(now))
    sent, feed.test_layer.sent = feed.test_layer.sent, []
    return [(group, message["items"]) for group, message, _t in sent]


def pos(seconds=0, dlat=0.0, *, valid=True, realtime=True, **kw):
    return m.Position(
        fix_time=NOW + dt.timedelta(seconds=seconds),
        lat=BASE[0] + dlat,
        lon=BASE[1],
        valid=valid,
        realtime=realtime,
        **kw,
    )


def frame(*positions, **kw):
    return m.Message(protocol="gt06", type=m.POSITION, device_id=None, positions=positions, **kw)


def ingest(device, *messages, received=0):
    items = [
        Inbound(
            device_id=device.pk,
            message=msg,
            received_at=NOW + dt.timedelta(seconds=received),
            token=i,
        )
        for i, msg in enumerate(messages)
    ]
    return ingest_batch(items)


# --- Coalescing ---------------------------------------------------------------------------------
def test_two_positions_of_a_vehicle_within_a_second_make_one_item_latest_fix_wins():
    c = Coalescer(interval=1.0)
    c.add("g", ("position", 7), {"fix": "08:00:01"}, order=NOW + dt.timedelta(seconds=1))
    c.add("g", ("position", 7), {"fix": "08:00:02"}, order=NOW + dt.timedelta(seconds=2))
    # An older fix arriving late (the vehicle's other device) does not move the marker back.
    c.add("g", ("position", 7), {"fix": "08:00:00"}, order=NOW)
    c.add("g", ("position", 8), {"fix": "other car"}, order=NOW)
    assert c.take_due(100.0) == [("g", [{"fix": "08:00:02"}, {"fix": "other car"}])]
    assert c.replaced == 2


def test_a_group_is_flushed_at_most_once_per_interval_the_first_item_at_once():
    c = Coalescer(interval=1.0)
    c.add("a", 1, {"n": 1}, order=1)
    assert c.next_due(10.0) == 0.0  # a quiet group: now
    assert c.take_due(10.0) == [("a", [{"n": 1}])]
    c.add("a", 1, {"n": 2}, order=2)
    c.add("b", 1, {"n": 3}, order=3)
    # b never flushed: due now; a flushed 0.4 s ago: held back until 11.0.
    assert c.take_due(10.4) == [("b", [{"n": 3}])]
    assert c.next_due(10.4) == pytest.approx(0.6)
    assert c.take_due(10.9) == []
    assert c.take_due(11.0) == [("a", [{"n": 2}])]
    assert c.next_due(11.0) is None


def test_big_groups_are_sent_in_chunks(live):
    for vehicle in range(1200):
        live.add("g", ("position", vehicle), {"vehicle_id": vehicle})
    sent = flush(live)
    assert [len(items) for _g, items in sent] == [500, 500, 200]
    assert sorted(i["vehicle_id"] for _g, items in sent for i in items) == list(range(1200))


# --- publish(): events after the commit --------------------------------------------------------
@pytest.mark.django_db
def test_publish_waits_for_the_commit_and_sends_one_message(
    live, django_capture_on_commit_callbacks
):
    group = customer_group(5)
    with django_capture_on_commit_callbacks() as callbacks:
        realtime.publish(group, "alarm", {"vehicle_id": 9, "kind": "overspeed", "at": NOW})
        assert flush(live) == []  # not committed yet: nothing queued
    assert len(callbacks) == 1
    callbacks[0]()
    [(sent_group, items)] = flush(live)
    assert sent_group == "live.customer.5"
    assert items == [
        {
            "type": "alarm",
            "vehicle_id": 9,
            "kind": "overspeed",
            "at": "2026-11-22T16:00:00+08:00",  # site time zone, with its offset
            "customer_id": 5,
        }
    ]


@pytest.mark.django_db
def test_nothing_is_published_when_the_transaction_rolls_back(
    live, django_capture_on_commit_callbacks
):
    with (
        django_capture_on_commit_callbacks(execute=True) as callbacks,
        pytest.raises(RuntimeError),
        transaction.atomic(),
    ):
        realtime.publish(customer_group(5), "command", {"vehicle_id": 9, "status": "sent"})
        raise RuntimeError("the service failed after publishing")
    assert callbacks == []
    assert flush(live) == []


@pytest.mark.parametrize(
    ("kind", "payload", "message"),
    [
        ("positions", {"vehicle_id": 1}, "must be one of"),
        ("alarm", {"kind": "overspeed"}, "vehicle_id"),
    ],
)
def test_publish_refuses_unknown_types_and_items_without_a_vehicle(kind, payload, message):
    with pytest.raises(ValueError, match=message):
        realtime.publish(customer_group(1), kind, payload)


# --- The gateway's batches ---------------------------------------------------------------------


@pytest.mark.usefixtures("frozen")
def test_a_committed_batch_pushes_the_vehicles_latest_fix(
    world, live, django_capture_on_commit_callbacks
):
    device, vehicle = world.devices["a1"], world.vehicles["a1"]
    with django_capture_on_commit_callbacks(execute=True):
        ingest(
            device,
            frame(pos(-20, 0.001, speed_kmh=30.0, course=90, acc=True)),
            frame(pos(-10, 0.002, speed_kmh=42.5, course=95, acc=True)),
        )
    [(group, items)] = flush(live)
    assert group == customer_group(world.customers["a1"].pk)
    assert items == [
        {
            "type": "position",
            "customer_id": world.customers["a1"].pk,
            "vehicle_id": vehicle.pk,
            "plate": vehicle.plate,
            "device_id": device.pk,
            "imei": device.identifier,
            "fix_time": "2026-11-22T15:59:50+08:00",
            "lat": pytest.approx(BASE[0] + 0.002),
            "lon": pytest.approx(BASE[1]),
            "speed_kmh": 42.5,
            "course": 95,
            "acc": True,
            "source": "gps",
            "valid": True,
        },
        {
            "type": "device_status",
            "customer_id": world.customers["a1"].pk,
            "vehicle_id": vehicle.pk,
            "plate": vehicle.plate,
            "device_id": device.pk,
            "imei": device.identifier,
            "online": True,  # it was offline before this batch
            "battery_pct": None,
            "external_voltage": None,
            "gsm_signal": None,
            "acc": True,
            "last_seen_at": "2026-11-22T16:00:00+08:00",
            "last_fix_at": "2026-11-22T15:59:50+08:00",
        },
    ]


@pytest.mark.usefixtures("frozen")
def test_nothing_is_pushed_before_the_batch_commits(
    world, live, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        ingest(world.devices["a1"], frame(pos(-10)))
    assert live.coalescer.pending() == 0 and flush(live) == []
    assert len(callbacks) == 1  # runs when the outer transaction commits


@pytest.mark.usefixtures("frozen")
def test_blind_area_invalid_and_older_fixes_do_not_move_the_live_marker(
    world, live, django_capture_on_commit_callbacks
):
    device = world.devices["a1"]
    with django_capture_on_commit_callbacks(execute=True):
        ingest(device, frame(pos(-30, 0.001)))
    flush(live)
    live.test_clock.now += 5
    with django_capture_on_commit_callbacks(execute=True):
        result = ingest(
            device,
            frame(pos(-3600, 0.05, realtime=False)),  # blind-area re-upload, far away
            frame(pos(-5, 0.09, valid=False)),  # no GPS
            frame(pos(-40, 0.003)),  # older than the last fix
        )
    assert result.stored == 3  # all stored for the track ...
    assert flush(live) == []  # ... none drawn as where the car is now


@pytest.mark.usefixtures("frozen")
def test_drift_while_parked_leaves_the_marker_at_the_parked_spot(
    world, live, django_capture_on_commit_callbacks
):
    device = world.devices["a1"]
    with django_capture_on_commit_callbacks(execute=True):
        ingest(device, frame(pos(-120, acc=False, speed_kmh=0)))
    [(_g, [parked, _status])] = flush(live)
    assert parked["lat"] == pytest.approx(BASE[0])
    live.test_clock.now += 5
    with django_capture_on_commit_callbacks(execute=True):
        ingest(device, frame(pos(-90, 0.0002, acc=False, speed_kmh=0)))  # 20 m wander
    assert flush(live) == []
    live.test_clock.now += 5
    with django_capture_on_commit_callbacks(execute=True):
        ingest(device, frame(pos(-60, 0.01, acc=True, speed_kmh=40)))  # driving off
    [(_g, items)] = flush(live)
    assert [(i["type"], i.get("lat")) for i in items] == [
        ("position", pytest.approx(BASE[0] + 0.01)),
        ("device_status", None),  # ACC on
    ]


@pytest.mark.usefixtures("frozen")
def test_status_frames_push_device_status_only_when_it_changed(
    world, live, django_capture_on_commit_callbacks
):
    device = world.devices["a1"]
    heartbeat = m.Message(
        protocol="gt06", type=m.HEARTBEAT, device_id=None, battery_pct=80, gsm_signal=60
    )
    with django_capture_on_commit_callbacks(execute=True):
        ingest(device, heartbeat)
    [(_g, [item])] = flush(live)
    assert (item["type"], item["online"], item["battery_pct"], item["gsm_signal"]) == (
        "device_status",
        True,
        80,
        60,
    )
    live.test_clock.now += 5
    with django_capture_on_commit_callbacks(execute=True):
        ingest(device, heartbeat, received=30)  # same state, later: nothing new to draw
    assert flush(live) == []


@pytest.mark.usefixtures("frozen")
def test_online_then_offline_within_a_second_ends_offline(
    world, live, django_capture_on_commit_callbacks
):
    device = world.devices["a1"]
    with django_capture_on_commit_callbacks(execute=True):
        ingest(device, frame(pos(-10)))
        assert devices_mark_offline(device_ids=[device.pk, world.stock["a1"].pk]) == 1
    items = [i for _g, items in flush(live) for i in items if i["type"] == "device_status"]
    assert [(i["device_id"], i["online"]) for i in items] == [(device.pk, False)]
    # Already offline: no change, nothing pushed.
    with django_capture_on_commit_callbacks(execute=True):
        assert devices_mark_offline(device_ids=[device.pk]) == 0
    assert flush(live, now=live.test_clock.now + 5) == []


@pytest.mark.usefixtures("frozen")
def test_batches_of_one_round_are_merged_and_resolved_with_two_queries(
    world, live, django_capture_on_commit_callbacks, django_assert_num_queries
):
    a1, a2 = world.devices["a1"], world.devices["a2"]
    with django_capture_on_commit_callbacks(execute=True):
        ingest(a1, frame(pos(-30, 0.001)))
        ingest(a2, frame(pos(-30)))
        ingest(a1, frame(pos(-20, 0.002)))  # the next batch, the same car
    with django_assert_num_queries(2):  # device ids, then plates and customers
        assert live.run_jobs() == 3
    positions = [
        (i["vehicle_id"], i["lat"])
        for _g, items in flush(live)
        for i in items
        if i["type"] == "position"
    ]
    assert sorted(positions) == sorted(
        [
            (world.vehicles["a1"].pk, pytest.approx(BASE[0] + 0.002)),
            (world.vehicles["a2"].pk, pytest.approx(BASE[0])),
        ]
    )


@pytest.mark.usefixtures("frozen")
def test_fixes_of_a_device_on_no_vehicle_are_not_pushed(
    world, live, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        result = ingest(world.stock["a1"], frame(pos(-10)))
    assert result.stored == 1
    assert flush(live) == []


# --- Never block or fail the ingest -------------------------------------------------------------
def test_a_channel_layer_that_is_down_is_counted_not_raised(caplog):
    layer = RecordingLayer(fail=True)
    feed = LiveFeed(autostart=False, clock=Clock(), layer=layer)
    feed.add("g", 1, {"vehicle_id": 1})
    feed.send_now("h", [{"vehicle_id": 2}])
    assert asyncio.run(feed.flush()) == 0
    assert (feed.stats["failed"], feed.stats["dropped"], feed.stats["sent"]) == (2, 2, 0)
    assert "redis is down" in caplog.text


@pytest.mark.usefixtures("frozen")
def test_a_broken_live_feed_does_not_fail_the_batch(
    world, live, monkeypatch, django_capture_on_commit_callbacks
):
    def broken(*args, **kwargs):
        raise RuntimeError("feed bug")

    monkeypatch.setattr(live, "add_many", broken)
    with django_capture_on_commit_callbacks(execute=True):
        result = ingest(world.devices["a1"], frame(pos(-10)))
    assert (result.stored, result.acks) == (1, [0])
    assert live.run_jobs() == 1  # the job ran, failed, was logged and counted
    assert live.stats["failed"] == 1


def test_the_feed_thread_sends_at_once_then_at_most_once_a_second_per_group():
    layer = RecordingLayer()
    feed = LiveFeed(interval=0.5, layer=layer)  # autostart: the thread starts on first use
    try:
        started = time.monotonic()
        feed.add("g", ("position", 1), {"vehicle_id": 1, "n": 1})
        deadline = started + 5
        while not layer.sent and time.monotonic() < deadline:
            time.sleep(0.01)
        for n in (2, 3, 4):  # three more within the interval: one message, the latest
            feed.add("g", ("position", 1), {"vehicle_id": 1, "n": n})
        while len(layer.sent) < 2 and time.monotonic() < deadline:
            time.sleep(0.01)
    finally:
        feed.stop()
    assert [m["items"] for _g, m, _t in layer.sent] == [
        [{"vehicle_id": 1, "n": 1}],
        [{"vehicle_id": 1, "n": 4}],
    ]
    first, second = (t for _g, _m, t in layer.sent)
    assert first - started < 0.5  # a quiet group goes out at once
    assert second - first >= 0.5 - 0.01  # then no more than one message per interval


def test_stopping_the_feed_sends_what_is_pending():
    layer = RecordingLayer()
    feed = LiveFeed(interval=60.0, layer=layer)
    feed.add("g", 1, {"vehicle_id": 1, "n": 1})
    deadline = time.monotonic() + 5
    while not layer.sent and time.monotonic() < deadline:
        time.sleep(0.01)
    feed.add("g", 1, {"vehicle_id": 1, "n": 2})  # held back for a minute ...
    feed.stop()
    assert [m["items"][0]["n"] for _g, m, _t in layer.sent] == [1, 2]  # ... or until stop


def test_deferred_jobs_run_on_the_items_thread_and_their_items_are_sent():
    layer = RecordingLayer()
    feed = LiveFeed(layer=layer)
    ran_on = []

    def job():
        ran_on.append(threading.current_thread().name)
        return [("g", ("position", 1), {"vehicle_id": 1}, 1)]

    feed.defer(job)
    deadline = time.monotonic() + 5
    while not layer.sent and time.monotonic() < deadline:
        time.sleep(0.01)
    feed.stop()
    assert ran_on == ["carloan-live-items"]
    assert [m["items"] for _g, m, _t in layer.sent] == [[{"vehicle_id": 1}]]


def test_a_backlog_of_jobs_drops_the_oldest(monkeypatch):
    monkeypatch.setattr(realtime, "MAX_JOBS", 3)
    feed = LiveFeed(autostart=False, clock=Clock(), layer=RecordingLayer())
    for n in range(5):
        feed.defer(lambda n=n: [("g", 1, {"vehicle_id": 1, "n": n}, n)])
    assert feed.run_jobs() == 3
    assert feed.stats["dropped_jobs"] == 2
    assert asyncio.run(feed.flush()) == 1
    assert feed._layer.sent[0][1]["items"] == [{"vehicle_id": 1, "n": 4}]
