"""The live feed over WebSocket (/ws/live/): who may connect, and what each user receives.

The consumer reads the database from its own threads, so the data is committed
(transaction=True). Every scenario runs in one event loop with a time limit."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import os
import sys
import textwrap
from pathlib import Path

import pytest
from channels.db import database_sync_to_async
from channels.layers import get_channel_layer
from channels.testing import WebsocketCommunicator
from django.db import connections
from django.test import Client
from rest_framework.authtoken.models import Token

from accounts.services import objects_share
from carloan import realtime
from carloan.asgi import application
from carloan.consumers import LiveConsumer
from carloan.realtime import LiveFeed, customer_group
from gateway.ingest import Inbound, ingest_batch
from gateway.protocols import messages as m

pytestmark = pytest.mark.django_db(transaction=True)

LIMIT = 10.0
ORIGIN = (b"origin", b"http://localhost")
REPO = Path(__file__).resolve().parents[2]


def run(scenario):
    async def main():
        try:
            return await asyncio.wait_for(scenario(), LIMIT)
        finally:
            # The consumer's database thread keeps its connection (CONN_MAX_AGE): close it, or
            # PostgreSQL cannot drop the test database at the end.
            await database_sync_to_async(connections.close_all)()

    try:
        return asyncio.run(main())
    finally:
        connections.close_all()


def token_of(user) -> str:
    return Token.objects.get_or_create(user=user)[0].key


def cookie_of(user) -> bytes:
    client = Client()
    client.force_login(user)
    return f"sessionid={client.cookies['sessionid'].value}".encode()


async def open_ws(path="/ws/live/", headers=()):
    comm = WebsocketCommunicator(application, path, headers=list(headers))
    connected, _sub = await comm.connect(timeout=5)
    return comm, connected


async def closed_with(comm) -> int | None:
    message = await comm.receive_output(timeout=5)
    assert message["type"] == "websocket.close"
    return message.get("code")


def item(world, key, **extra):
    vehicle = world.vehicles[key]
    return {
        "type": "position",
        "customer_id": vehicle.customer_id,
        "vehicle_id": vehicle.pk,
        "plate": vehicle.plate,
        "lat": 34.26,
        "lon": 108.94,
        **extra,
    }


async def push(group, *items):
    await get_channel_layer().group_send(group, {"type": "live.batch", "items": list(items)})


async def vehicles_received(comm, timeout=1.0) -> list[int]:
    message = await comm.receive_json_from(timeout=timeout)
    assert message["type"] == "batch"
    return [i["vehicle_id"] for i in message["items"]]


# --- Who may connect ----------------------------------------------------------------------------
def test_anonymous_connections_are_closed_with_4401():
    async def scenario():
        comm, connected = await open_ws(headers=[ORIGIN])
        assert connected  # accepted, then closed: the client sees the code
        return await closed_with(comm)

    assert run(scenario) == 4401


def test_a_bad_token_is_4401_and_never_falls_back_to_the_cookie(world):
    cookie = cookie_of(world.users["a1_operator"])

    async def scenario():
        comm, _ = await open_ws("/ws/live/?token=nope", headers=[ORIGIN, (b"cookie", cookie)])
        return await closed_with(comm)

    assert run(scenario) == 4401


def test_the_mobile_app_connects_with_a_token_in_the_query_or_the_header(world):
    key = token_of(world.users["a1_operator"])
    a1 = world.customers["a1"].pk

    async def scenario():
        # Native WebSocket clients send no Origin: a token needs none.
        by_query, ok1 = await open_ws(f"/ws/live/?token={key}")
        by_header, ok2 = await open_ws(headers=[(b"authorization", f"Token {key}".encode())])
        assert ok1 and ok2
        await push(customer_group(a1), item(world, "a1"))
        got = [await vehicles_received(by_query), await vehicles_received(by_header)]
        await by_query.disconnect()
        await by_header.disconnect()
        return got

    assert run(scenario) == [[world.vehicles["a1"].pk]] * 2


def test_pages_connect_with_the_session_cookie_from_an_allowed_origin_only(world):
    cookie = cookie_of(world.users["a1_operator"])

    async def scenario():
        page, ok = await open_ws(headers=[ORIGIN, (b"cookie", cookie)])
        assert ok
        await push(customer_group(world.customers["a1"].pk), item(world, "a1"))
        got = await vehicles_received(page)
        await page.disconnect()
        # Another site's page holding the same cookie (cross-site WebSocket hijacking): refused.
        _evil, evil_ok = await open_ws(
            headers=[(b"origin", b"https://evil.example"), (b"cookie", cookie)]
        )
        return got, evil_ok

    assert run(scenario) == ([world.vehicles["a1"].pk], False)


def test_a_user_who_may_not_see_vehicles_is_closed_with_4403(world):
    role = world.users["a1_operator"].role
    role.permissions.remove(*role.permissions.filter(codename="view_vehicle"))
    key = token_of(world.users["a1_operator"])

    async def scenario():
        comm, _ = await open_ws(f"/ws/live/?token={key}")
        return await closed_with(comm)

    assert run(scenario) == 4403


# --- What arrives -------------------------------------------------------------------------------
def test_only_visible_vehicles_arrive_even_from_a_group_joined_by_mistake(world):
    key = token_of(world.users["a_admin"])
    c = world.customers

    async def scenario():
        comm, _ = await open_ws(f"/ws/live/?token={key}")
        # A branch's own group: its vehicle arrives.
        await push(customer_group(c["a1"].pk), item(world, "a1"))
        first = await vehicles_received(comm)
        # Lender B's vehicle published into A1's group by a bug: filtered out, and a message
        # left with nothing is not sent at all.
        await push(customer_group(c["a1"].pk), item(world, "b1"), item(world, "a2"))
        second = await vehicles_received(comm)
        await push(customer_group(c["a1"].pk), item(world, "b1"))
        # B's own group: never joined.
        await push(customer_group(c["b1"].pk), item(world, "b1"))
        assert await comm.receive_nothing(timeout=0.3)
        await comm.disconnect()
        return first, second

    assert run(scenario) == ([world.vehicles["a1"].pk], [world.vehicles["a2"].pk])


def test_a_vehicle_shared_with_the_user_arrives_and_its_neighbours_do_not(world):
    user = world.users["a1_operator"]
    shared = world.vehicles["b1"]
    objects_share(objects=[shared], username=user.username, by=world.users["b_admin"])
    other = item(world, "b1", vehicle_id=shared.pk + 1000)  # another car of Branch B1
    key = token_of(user)

    async def scenario():
        comm, _ = await open_ws(f"/ws/live/?token={key}")
        await push(customer_group(shared.customer_id), other, item(world, "b1"))
        got = await vehicles_received(comm)
        await comm.disconnect()
        return got

    assert run(scenario) == [shared.pk]


def test_every_item_type_is_forwarded_and_items_without_a_vehicle_are_not(world):
    key = token_of(world.users["a1_operator"])
    a1 = world.customers["a1"].pk
    vehicle = world.vehicles["a1"].pk
    items = [
        item(world, "a1"),
        {"type": "device_status", "customer_id": a1, "vehicle_id": vehicle, "online": False},
        {"type": "alarm", "customer_id": a1, "vehicle_id": vehicle, "kind": "overspeed"},
        {"type": "command", "customer_id": a1, "vehicle_id": vehicle, "status": "acked"},
        {"type": "command", "customer_id": a1, "vehicle_id": None, "status": "acked"},
    ]

    async def scenario():
        comm, _ = await open_ws(f"/ws/live/?token={key}")
        await push(customer_group(a1), *items)
        message = await comm.receive_json_from(timeout=1)
        await comm.disconnect()
        return message

    assert run(scenario) == {"type": "batch", "items": items[:4]}


def test_subscribe_narrows_the_feed_and_ping_answers(world):
    key = token_of(world.users["a_admin"])
    c, v = world.customers, world.vehicles

    async def scenario():
        comm, _ = await open_ws(f"/ws/live/?token={key}")
        await comm.send_json_to({"type": "ping"})
        pong = await comm.receive_json_from(timeout=1)
        await comm.send_json_to({"type": "subscribe", "vehicles": [v["a2"].pk, v["b1"].pk]})
        subscribed = await comm.receive_json_from(timeout=1)
        await push(customer_group(c["a1"].pk), item(world, "a1"))
        await push(customer_group(c["a2"].pk), item(world, "a2"))
        narrowed = await vehicles_received(comm)  # a1 skipped; b1 asked for but not visible
        await comm.send_json_to({"type": "subscribe", "vehicles": None})
        await comm.receive_json_from(timeout=1)
        await push(customer_group(c["a1"].pk), item(world, "a1"))
        everything = await vehicles_received(comm)
        await comm.disconnect()
        return pong, subscribed, narrowed, everything

    pong, subscribed, narrowed, everything = run(scenario)
    assert pong == {"type": "pong"}
    assert subscribed == {"type": "subscribed", "vehicles": sorted([v["a2"].pk, v["b1"].pk])}
    assert narrowed == [v["a2"].pk]
    assert everything == [v["a1"].pk]


@pytest.mark.parametrize(
    "sent",
    [
        "not json",
        json.dumps(["ping"]),
        json.dumps({"type": "dance"}),
        json.dumps({"type": "subscribe", "vehicles": "12"}),
        json.dumps({"type": "subscribe", "vehicles": [1, "2"]}),
    ],
)
def test_bad_client_messages_get_an_error_and_keep_the_connection(world, sent):
    key = token_of(world.users["a1_operator"])

    async def scenario():
        comm, _ = await open_ws(f"/ws/live/?token={key}")
        await comm.send_to(text_data=sent)
        error = await comm.receive_json_from(timeout=1)
        await comm.send_json_to({"type": "ping"})
        pong = await comm.receive_json_from(timeout=1)
        await comm.disconnect()
        return error, pong

    error, pong = run(scenario)
    assert (error["type"], error["code"], pong) == ("error", "bad_request", {"type": "pong"})


# --- Permission re-checked while the feed runs --------------------------------------------------
class FakeClock:
    now = 100.0

    def __call__(self):
        return self.now


def test_a_deactivated_user_is_cut_off_at_the_next_recheck(world, monkeypatch, settings):
    settings.LIVE_RECHECK_SECONDS = 5
    clock = FakeClock()
    monkeypatch.setattr(LiveConsumer, "clock", staticmethod(clock))
    user = world.users["a1_operator"]
    key = token_of(user)
    group = customer_group(world.customers["a1"].pk)

    async def scenario():
        comm, _ = await open_ws(f"/ws/live/?token={key}")
        await database_sync_to_async(type(user).objects.filter(pk=user.pk).update)(is_active=False)
        clock.now += 1  # within the re-check interval: the cached scope still applies
        await push(group, item(world, "a1"))
        before = await vehicles_received(comm)
        clock.now += 5
        await push(group, item(world, "a1"))
        return before, await closed_with(comm)

    assert run(scenario) == ([world.vehicles["a1"].pk], 4401)


def test_a_share_withdrawn_stops_the_vehicle_and_a_new_one_starts_it(world, settings):
    settings.LIVE_RECHECK_SECONDS = 0  # re-check on every push
    user = world.users["a1_operator"]
    b_vehicle, a2_vehicle = world.vehicles["b1"], world.vehicles["a2"]
    objects_share(objects=[b_vehicle], username=user.username, by=world.users["b_admin"])
    key = token_of(user)

    def swap_shares():
        from vehicles.models import VehicleUserObjectPermission

        VehicleUserObjectPermission.objects.filter(user=user).delete()
        objects_share(objects=[a2_vehicle], username=user.username, by=world.users["a_admin"])

    async def scenario():
        comm, _ = await open_ws(f"/ws/live/?token={key}")
        await push(customer_group(b_vehicle.customer_id), item(world, "b1"))
        before = await vehicles_received(comm)
        await database_sync_to_async(swap_shares)()
        await push(customer_group(b_vehicle.customer_id), item(world, "b1"))
        assert await comm.receive_nothing(timeout=0.3)
        # The newly shared vehicle's customer group was joined at the re-check.
        await push(customer_group(a2_vehicle.customer_id), item(world, "a2"))
        after = await vehicles_received(comm)
        await comm.disconnect()
        return before, after

    assert run(scenario) == ([b_vehicle.pk], [a2_vehicle.pk])


# --- From the gateway's commit to the browser ---------------------------------------------------
def test_a_committed_fix_reaches_the_users_who_may_see_the_vehicle(world, monkeypatch):
    feed = LiveFeed(autostart=False)  # flushed below in this event loop (in-memory layer)
    monkeypatch.setattr(realtime, "_feed", feed)
    device, vehicle = world.devices["a1"], world.vehicles["a1"]
    now = dt.datetime.now(dt.UTC).replace(microsecond=0)
    fix = m.Position(
        fix_time=now, lat=34.2611, lon=108.9424, valid=True, speed_kmh=36.0, course=180
    )
    batch = [
        Inbound(
            device_id=device.pk,
            message=m.Message(protocol="gt06", type=m.POSITION, device_id=None, positions=(fix,)),
            received_at=now,
        )
    ]
    tokens = {p: token_of(world.users[p]) for p in ("a_admin", "b_admin")}

    async def scenario():
        a_admin, _ = await open_ws(f"/ws/live/?token={tokens['a_admin']}")
        b_admin, _ = await open_ws(f"/ws/live/?token={tokens['b_admin']}")
        await database_sync_to_async(ingest_batch)(batch)  # commits; hands the batch over
        await database_sync_to_async(feed.run_jobs)()  # what the items thread does
        assert await feed.flush() == 1  # one message for Branch A1's group
        message = await a_admin.receive_json_from(timeout=1)
        assert await b_admin.receive_nothing(timeout=0.3)
        await a_admin.disconnect()
        await b_admin.disconnect()
        return message

    message = run(scenario)
    [position, status] = message["items"]
    assert position["type"] == "position" and status["type"] == "device_status"
    assert (position["vehicle_id"], position["plate"], position["imei"]) == (
        vehicle.pk,
        vehicle.plate,
        device.identifier,
    )
    assert (position["lat"], position["lon"], position["speed_kmh"]) == (34.2611, 108.9424, 36.0)
    assert dt.datetime.fromisoformat(position["fix_time"]) == now
    assert status["online"] is True


# --- Across processes, through Redis ------------------------------------------------------------
REDIS_URL = os.environ.get("CARLOAN_TEST_REDIS_URL") or os.environ.get("REDIS_URL", "")
REDIS_PREFIX = "carloan_live_test"

PUBLISHER = textwrap.dedent(
    """
    import json, sys
    import django
    from django.conf import settings

    spec = json.loads(sys.argv[1])
    settings.configure(
        USE_TZ=True,
        TIME_ZONE="Asia/Shanghai",
        DATABASES={"default": {"ENGINE": "django.db.backends.sqlite3", "NAME": ":memory:"}},
        INSTALLED_APPS=["channels"],
        CHANNEL_LAYERS={"default": {
            "BACKEND": "channels_redis.core.RedisChannelLayer",
            "CONFIG": {"hosts": [spec["redis"]], "prefix": spec["prefix"]},
        }},
    )
    django.setup()
    from carloan import realtime

    group = realtime.customer_group(spec["customer"])
    realtime.publish(group, "alarm", {"vehicle_id": spec["vehicle"], "kind": "sos"})
    feed = realtime.feed()
    for n in range(3):  # coalesced: one item, the last
        feed.add(group, ("position", spec["vehicle"]),
                 {"type": "position", "customer_id": spec["customer"],
                  "vehicle_id": spec["vehicle"], "n": n})
    # Another tenant's vehicle in this group by mistake: the consumer drops it.
    feed.add(group, ("position", spec["foreign"]),
             {"type": "position", "customer_id": spec["foreign_customer"],
              "vehicle_id": spec["foreign"], "n": 0})
    feed.stop()  # sends everything pending, then ends the thread
    print(json.dumps(dict(feed.stats)))
    """
)


@pytest.mark.skipif(not REDIS_URL, reason="needs Redis: set REDIS_URL (make test-postgis does)")
def test_another_process_publishes_through_redis_and_the_browser_receives_it(world, settings):
    settings.CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "channels_redis.core.RedisChannelLayer",
            "CONFIG": {"hosts": [REDIS_URL], "prefix": REDIS_PREFIX},
        }
    }
    key = token_of(world.users["a1_operator"])
    spec = {
        "redis": REDIS_URL,
        "prefix": REDIS_PREFIX,
        "customer": world.customers["a1"].pk,
        "vehicle": world.vehicles["a1"].pk,
        "foreign": world.vehicles["b1"].pk,
        "foreign_customer": world.customers["b1"].pk,
    }

    async def scenario():
        comm, connected = await open_ws(f"/ws/live/?token={key}")
        assert connected
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-c",
            PUBLISHER,
            json.dumps(spec),
            cwd=REPO,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        out, err = await proc.communicate()
        assert proc.returncode == 0, err.decode()
        received = []
        while len(received) < 2:
            received += (await comm.receive_json_from(timeout=5))["items"]
        assert await comm.receive_nothing(timeout=0.3)
        await comm.disconnect()
        await get_channel_layer().flush()  # this test's keys only (its own prefix)
        return json.loads(out), received

    stats, received = run(scenario)
    assert stats["sent"] == 2 and not stats.get("failed")
    vehicle = world.vehicles["a1"].pk
    assert sorted((i["type"], i.get("n")) for i in received) == [("alarm", None), ("position", 2)]
    assert {i["vehicle_id"] for i in received} == {vehicle}
