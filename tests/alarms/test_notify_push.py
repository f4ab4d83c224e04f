"""Live push of new alarms over the WebSocket feed: every user who may see the vehicle gets the
alarm at once (subscriptions are for e-mail / SMS only), and nobody else: another branch,
another lender, the neighbours of a vehicle shared across lenders.

The consumer reads the database from its own threads, so the data is committed
(transaction=True); the feed is flushed by the test in its event loop."""

from __future__ import annotations

import asyncio

import pytest
from channels.db import database_sync_to_async
from channels.testing import WebsocketCommunicator
from django.db import connections
from rest_framework.authtoken.models import Token

from accounts.services import objects_share
from alarms.services import lifecycle
from carloan import realtime
from carloan.asgi import application
from carloan.realtime import LiveFeed
from tests.alarms.test_alarm_visibility import T0

pytestmark = pytest.mark.django_db(transaction=True)


def run(scenario):
    async def main():
        try:
            return await asyncio.wait_for(scenario(), 15)
        finally:
            # The consumer's and the test's database work ran on asgiref's sync thread, whose
            # connections outlive the scenario (CONN_MAX_AGE) and would block the test
            # database's teardown on PostgreSQL.
            await database_sync_to_async(connections.close_all)()

    try:
        return asyncio.run(main())
    finally:
        connections.close_all()


@pytest.fixture
def feed(monkeypatch):
    feed = LiveFeed(autostart=False)  # flushed by the tests (in-memory channel layer)
    monkeypatch.setattr(realtime, "_feed", feed)
    return feed


def raise_now(vehicle, kind="sos", target=""):
    # Outside any transaction: alarm_raise's on-commit hook runs at once, as after the
    # gateway's commit.
    return lifecycle.alarm_raise(
        vehicle_id=vehicle.pk,
        customer_id=vehicle.customer_id,
        kind=kind,
        target=target,
        at=T0,
        now=T0,
        lat=34.2611,
        lon=108.9424,
    )


async def connect(user):
    token = await database_sync_to_async(lambda: Token.objects.get_or_create(user=user)[0].key)()
    comm = WebsocketCommunicator(application, f"/ws/live/?token={token}")
    connected, _ = await comm.connect(timeout=5)
    assert connected
    return comm


async def alarms_received(comm) -> list[tuple[int, str]]:
    """(alarm id, kind) of the alarm items of every batch that arrived, sorted."""
    got = []
    while not await comm.receive_nothing(timeout=0.3):
        message = await comm.receive_json_from(timeout=1)
        assert message["type"] == "batch"
        got += [(i["alarm_id"], i["kind"]) for i in message["items"] if i["type"] == "alarm"]
    return sorted(got)


PERSONAS = ("platform_admin", "a_admin", "a1_operator", "b_admin")


def test_a_new_alarm_reaches_exactly_the_users_who_may_see_its_vehicle(world, feed):
    a1_vehicle, a2_vehicle = world.vehicles["a1"], world.vehicles["a2"]

    async def scenario():
        socks = {p: await connect(world.users[p]) for p in PERSONAS}
        a1_alarm = await database_sync_to_async(raise_now)(a1_vehicle)
        a2_alarm = await database_sync_to_async(raise_now)(a2_vehicle, "overspeed")
        await feed.flush()
        got = {p: await alarms_received(s) for p, s in socks.items()}
        for s in socks.values():
            await s.disconnect()
        return got, a1_alarm, a2_alarm

    got, a1_alarm, a2_alarm = run(scenario)
    both = [(a1_alarm.pk, "sos"), (a2_alarm.pk, "overspeed")]
    assert got == {
        "platform_admin": both,
        "a_admin": both,
        "a1_operator": [(a1_alarm.pk, "sos")],  # not the sibling branch's
        "b_admin": [],  # another lender: nothing
    }


def test_the_alarm_item_carries_what_the_map_needs(world, feed):
    vehicle = world.vehicles["a1"]

    async def scenario():
        sock = await connect(world.users["a1_operator"])
        alarm = await database_sync_to_async(raise_now)(vehicle, "area_enter", "riskpoint:7")
        await feed.flush()
        message = await sock.receive_json_from(timeout=1)
        await sock.disconnect()
        return alarm, message

    alarm, message = run(scenario)
    [item] = message["items"]
    assert item["type"] == "alarm"
    assert {k: item[k] for k in ("alarm_id", "vehicle_id", "customer_id", "plate")} == {
        "alarm_id": alarm.pk,
        "vehicle_id": vehicle.pk,
        "customer_id": vehicle.customer_id,
        "plate": vehicle.plate,
    }
    assert (item["kind"], item["level"], item["status"], item["target"]) == (
        "area_enter",
        2,
        "open",
        "riskpoint:7",
    )
    assert (item["lat"], item["lon"]) == (34.2611, 108.9424)
    assert item["raised_at"].startswith("2026-11-22T16:00:00+08:00")


def test_a_repeat_of_an_open_alarm_is_not_pushed_again(world, feed):
    vehicle = world.vehicles["a1"]

    async def scenario():
        sock = await connect(world.users["a_admin"])
        await database_sync_to_async(raise_now)(vehicle)
        await feed.flush()
        first = await alarms_received(sock)
        repeat = await database_sync_to_async(raise_now)(vehicle)
        await feed.flush()
        second = await alarms_received(sock)
        await sock.disconnect()
        return first, repeat, second

    first, repeat, second = run(scenario)
    assert len(first) == 1 and repeat is None and second == []


def test_a_shared_vehicle_pushes_its_alarms_to_the_share_not_its_neighbours(world, feed):
    vehicle = world.vehicles["a1"]
    objects_share(objects=[vehicle], username="b_admin", by=world.users["a_admin"])

    async def scenario():
        sock = await connect(world.users["b_admin"])
        shared = await database_sync_to_async(raise_now)(vehicle)
        neighbour = await database_sync_to_async(raise_now)(world.vehicles["a2"])
        await feed.flush()
        got = await alarms_received(sock)
        await sock.disconnect()
        return got, shared, neighbour

    got, shared, _neighbour = run(scenario)
    assert got == [(shared.pk, "sos")]
