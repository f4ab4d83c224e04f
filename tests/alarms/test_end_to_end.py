"""End to end over real sockets on 127.0.0.1 (issue 3, item 8): a simulated GT06 tracker logs in
to a running gateway (alarm engine on), drives into a second-pledge spot, and the alarm reaches
the WebSocket clients of the users who may see the car, and nobody else.

The frames are the simulator's (`gateway.simulator.frames`); the gateway's writer thread has its
own database connection, so the data is committed (transaction=True). The location is acked
only after the batch committed, and the live feed was handed the alarm in that commit's
callbacks, so once the ack is read the test flushes the feed itself (`LiveFeed(autostart=False)`)
and reads the sockets: no sleeps, no timing assumptions. Every step is bounded by a timeout."""

from __future__ import annotations

import asyncio
import datetime as dt

import pytest
from channels.db import database_sync_to_async
from channels.testing import WebsocketCommunicator
from django.db import connections
from rest_framework.authtoken.models import Token

from alarms.models import Alarm
from alarms.services import places as svc
from carloan import realtime
from carloan.asgi import application
from carloan.realtime import LiveFeed
from devices.services import device_create
from gateway.models import Position
from gateway.protocols import gt06
from gateway.server import Gateway, GatewayConfig
from gateway.simulator import frames as f
from gateway.simulator.routes import distance_m
from tests.factories import VehicleFactory
from vehicles.services import device_bind

pytestmark = pytest.mark.django_db(transaction=True)

IMEI = "356938035643817"
SPOT = (34.2750, 108.9530)  # the second-pledge spot, 200 m radius
OUTSIDE = (34.2750, 108.9480)  # 460 m west of it, on the same street
LIMIT = 20.0  # seconds for the whole scenario


@pytest.fixture
def feed(monkeypatch):
    feed = LiveFeed(autostart=False)
    monkeypatch.setattr(realtime, "_feed", feed)
    return feed


@pytest.fixture
def tracked(world):
    """A GT06 tracker on a new car of Branch A1, and the second-pledge spot."""
    vehicle = VehicleFactory(customer=world.customers["a1"], plate="陕A·E2E01")
    device = device_create(
        customer=world.customers["a1"], identifier=IMEI, protocol="gt06", kind="wired"
    )
    device_bind(vehicle=vehicle, device=device)
    spot = svc.risk_point_create(
        name="二押点·城东", kind="second_pledge", lat=SPOT[0], lon=SPOT[1], radius_m=200
    )
    return vehicle, device, spot


class Tracker:
    """The device side of one TCP connection: simulator frames out, the server's frames in."""

    def __init__(self, reader, writer):
        self.reader, self.writer = reader, writer
        self.buffer, self.pending = b"", []
        self.serial = 0

    @classmethod
    async def connect(cls, port: int) -> Tracker:
        return cls(*await asyncio.open_connection("127.0.0.1", port))

    async def send(self, frame: bytes) -> None:
        self.writer.write(frame)
        await self.writer.drain()

    async def recv(self) -> f.Downlink:
        while not self.pending:
            data = await asyncio.wait_for(self.reader.read(4096), 5)
            if not data:
                raise ConnectionError("closed by the gateway")
            self.buffer += data
            frames, self.buffer, _ = gt06.split_frames(self.buffer)
            self.pending += frames
        return f.parse_downlink("gt06", self.pending.pop(0))

    def next_serial(self) -> int:
        self.serial += 1
        return self.serial

    async def login(self) -> None:
        serial = self.next_serial()
        await self.send(f.gt06_login(IMEI, serial))
        ack = await self.recv()
        assert (ack.kind, ack.acked_serial) == (f.ACK, serial)

    async def report(self, at: dt.datetime, lat: float, lon: float, speed: float) -> None:
        """One location; returns once the gateway acked it (stored and committed)."""
        serial = self.next_serial()
        frame = f.gt06_location(
            serial,
            fix_time=at,
            lat=lat,
            lon=lon,
            speed_kmh=speed,
            course=90,
            satellites=9,
            valid=True,
            acc=True,
        )
        await self.send(frame)
        ack = await self.recv()
        assert (ack.kind, ack.acked_serial) == (f.ACK, serial)

    def close(self) -> None:
        self.writer.close()


async def live_socket(token: str) -> WebsocketCommunicator:
    comm = WebsocketCommunicator(application, f"/ws/live/?token={token}")
    connected, _ = await comm.connect(timeout=5)
    assert connected
    return comm


async def alarm_items(comm) -> list[dict]:
    """The alarm items of every batch that arrived (positions are not flushed here)."""
    got = []
    while not await comm.receive_nothing(timeout=0.3):
        message = await comm.receive_json_from(timeout=2)
        assert message["type"] == "batch"
        got += [item for item in message["items"] if item["type"] == "alarm"]
    return got


def run(scenario):
    async def main():
        gateway = Gateway(GatewayConfig(ports={"gt06": 0}, batch_wait=0.02))
        assert gateway.config.alarms  # the engine runs inside each batch
        await gateway.start()
        try:
            return await asyncio.wait_for(scenario(gateway), LIMIT)
        finally:
            await asyncio.wait_for(gateway.stop(), LIMIT)
            # The consumers' database work ran on asgiref's thread: close its connections so
            # the test database can be dropped (PostgreSQL).
            await database_sync_to_async(connections.close_all)()

    try:
        return asyncio.run(main())
    finally:
        connections.close_all()


def test_a_car_driving_into_a_second_pledge_spot_alarms_its_customers_users_only(
    world, tracked, feed
):
    vehicle, device, spot = tracked
    assert distance_m(*OUTSIDE, *SPOT) > 400
    start = dt.datetime.now(dt.UTC).replace(microsecond=0) - dt.timedelta(seconds=60)
    watchers = ("a1_operator", "a_admin", "platform_admin", "b_admin")
    # Created before the gateway runs: on SQLite's shared-cache test database a write
    # transaction here could meet the gateway writer's ("database table is locked").
    tokens = {who: Token.objects.get_or_create(user=world.users[who])[0].key for who in watchers}

    async def scenario(gateway):
        sockets = {who: await live_socket(tokens[who]) for who in watchers}
        car = await Tracker.connect(gateway.ports["gt06"])
        await car.login()
        # On the street outside: stored, no alarm.
        await car.report(start, *OUTSIDE, speed=40.0)
        await feed.flush()
        before = {who: await alarm_items(s) for who, s in sockets.items()}
        # 30 s later, 460 m on (55 km/h): inside the spot's 200 m.
        await car.report(start + dt.timedelta(seconds=30), *SPOT, speed=30.0)
        await feed.flush()
        after = {who: await alarm_items(s) for who, s in sockets.items()}
        car.close()
        for s in sockets.values():
            await s.disconnect()
        return before, after

    before, after = run(scenario)

    assert Position.objects.filter(device=device).count() == 2
    alarm = Alarm.objects.get()
    assert (alarm.kind, alarm.vehicle_id, alarm.target) == (
        "area_enter",
        vehicle.pk,
        f"riskpoint:{spot.pk}",
    )
    assert alarm.details["area_kind"] == "second_pledge"
    assert before == {who: [] for who in watchers}
    # Branch A1's operator, Lender A's admin and the platform admin see the car: each got the
    # alarm once, with what the map needs. Lender B's admin got nothing.
    for who in ("a1_operator", "a_admin", "platform_admin"):
        [item] = after[who]
        assert (item["alarm_id"], item["kind"], item["target"]) == (
            alarm.pk,
            "area_enter",
            f"riskpoint:{spot.pk}",
        )
        assert (item["vehicle_id"], item["plate"]) == (vehicle.pk, "陕A·E2E01")
        assert item["lat"] == pytest.approx(SPOT[0], abs=1e-5)
    assert after["b_admin"] == []
