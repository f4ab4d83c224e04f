"""The asyncio gateway end to end over real sockets on 127.0.0.1: simulated device -> gateway ->
Position row -> ack. The writer thread has its own database connection, so the data must be
committed (transaction=True); every scenario is bounded by asyncio.wait_for."""

from __future__ import annotations

import asyncio
import datetime as dt
import threading
import time

import pytest
from django.db import connections

from devices.models import Device
from devices.services import device_create
from gateway.ingest import BatchResult, Inbound
from gateway.models import Position, UnknownDevice
from gateway.protocols import gt06, h02, jt808
from gateway.protocols import messages as m
from gateway.server import BatchWriter, Gateway, GatewayConfig
from gateway.simulator import frames as f
from tests.factories import CustomerFactory, VehicleFactory
from vehicles.services import device_bind

pytestmark = pytest.mark.django_db(transaction=True)

IMEI = "356938035643809"
UNKNOWN_IMEI = "359339077003915"
TERMINAL = "013912345678"
H02_ID = "4210051415"
CODECS = {"gt06": gt06, "jt808": jt808, "h02": h02}
LIMIT = 8.0  # seconds per scenario


def now() -> dt.datetime:
    return dt.datetime.now(dt.UTC).replace(microsecond=0)


def make_device(identifier: str, protocol: str) -> Device:
    customer = CustomerFactory()
    device = device_create(
        customer=customer, identifier=identifier, protocol=protocol, kind="wired"
    )
    device_bind(vehicle=VehicleFactory(customer=customer), device=device)
    return device


def run(scenario, **config):
    """Start a gateway on ephemeral ports, run `scenario(gateway)`, stop it (always)."""

    async def main():
        gateway = Gateway(
            GatewayConfig(ports={"gt06": 0, "jt808": 0, "h02": 0}, batch_wait=0.02, **config)
        )
        await gateway.start()
        try:
            return await asyncio.wait_for(scenario(gateway), LIMIT)
        finally:
            await asyncio.wait_for(gateway.stop(), LIMIT)

    before = {t.name for t in threading.enumerate()}
    result = asyncio.run(main())
    assert not any(t.name == "gateway-writer" for t in threading.enumerate()), before
    return result


async def db(fn):
    """An ORM read from the test (off the event loop thread, connection closed afterwards)."""

    def call():
        try:
            return fn()
        finally:
            connections.close_all()

    return await asyncio.to_thread(call)


class FakeDevice:
    """A fake tracker: a socket and the server's frames as the device reads them."""

    def __init__(self, protocol, reader, writer):
        self.protocol = protocol
        self.reader, self.writer = reader, writer
        self.buffer = b""
        self.pending: list[bytes] = []

    @classmethod
    async def connect(cls, gateway, protocol):
        reader, writer = await asyncio.open_connection("127.0.0.1", gateway.ports[protocol])
        return cls(protocol, reader, writer)

    async def send(self, data: bytes) -> None:
        self.writer.write(data)
        await self.writer.drain()

    async def recv(self, timeout=3.0) -> f.Downlink:
        while not self.pending:
            data = await asyncio.wait_for(self.reader.read(4096), timeout)
            if not data:
                raise ConnectionError("closed by the server")
            self.buffer += data
            got, self.buffer, _ = CODECS[self.protocol].split_frames(self.buffer)
            self.pending.extend(got)
        return f.parse_downlink(self.protocol, self.pending.pop(0))

    async def nothing(self, wait=0.3) -> bool:
        """True if the server sends nothing for `wait` seconds (and keeps the connection)."""
        try:
            await asyncio.wait_for(self.reader.read(4096), wait)
        except TimeoutError:
            return True
        return False

    async def closed_by_server(self, timeout=3.0) -> bool:
        """Read (ignoring frames) until the server closes the connection."""
        try:
            while await asyncio.wait_for(self.reader.read(4096), timeout):
                pass
        except ConnectionError:
            pass
        return True

    def close(self):
        self.writer.close()


def gt06_fix(serial, t, lat=34.2610, lon=108.9423):
    return f.gt06_location(
        serial,
        fix_time=t,
        lat=lat,
        lon=lon,
        speed_kmh=42.0,
        course=90,
        satellites=9,
        valid=True,
        acc=True,
    )


async def gt06_login(gateway, serial=1):
    dev = await FakeDevice.connect(gateway, "gt06")
    await dev.send(f.gt06_login(IMEI, serial))
    ack = await dev.recv()
    assert (ack.kind, ack.acked_serial) == (f.ACK, serial)
    return dev


# ---------------------------------------------------------------------------------------------


def test_gt06_location_is_acked_only_once_stored():
    device = make_device(IMEI, "gt06")
    t = now() - dt.timedelta(seconds=5)

    async def scenario(gateway):
        dev = await gt06_login(gateway)
        await dev.send(gt06_fix(2, t))
        ack = await dev.recv()
        assert (ack.kind, ack.acked_serial, ack.acked_id) == (f.ACK, 2, gt06.MSG_GPS_LBS_2)
        # The ack went out after the commit: the row is there when the device reads it.
        rows = await db(lambda: list(Position.objects.filter(device=device)))
        dev.close()
        return rows

    rows = run(scenario)
    assert len(rows) == 1
    assert rows[0].fix_time == t
    assert rows[0].point.y == pytest.approx(34.2610, abs=1e-5)
    device.refresh_from_db()
    assert device.last_fix_at == t
    assert device.last_speed_kmh == pytest.approx(42.0)
    assert device.last_seen_at is not None


def test_jt808_register_auth_and_location():
    device = make_device(TERMINAL, "jt808")

    async def scenario(gateway):
        dev = await FakeDevice.connect(gateway, "jt808")
        # Data before auth is refused and not stored.
        fix = {"fix_time": now(), "lat": 34.25, "lon": 108.95, "speed_kmh": 30.0, "course": 10}
        fix["acc"] = True
        await dev.send(f.jt808_location(TERMINAL, 1, valid=True, **fix))
        refused = await dev.recv()
        assert (refused.kind, refused.acked_serial, refused.result) == (f.ACK, 1, 1)

        await dev.send(f.jt808_register(TERMINAL, 2))
        code = f.jt808_parse_register_reply((await dev.recv()).frame)
        stored = await db(lambda: Device.objects.get(pk=device.pk).auth_code)
        assert code and code == stored

        await dev.send(f.jt808_auth(TERMINAL, 3, "wrong-code"))
        wrong = await dev.recv()
        assert (wrong.acked_id, wrong.acked_serial, wrong.result) == (jt808.MSG_AUTH, 3, 1)

        await dev.send(f.jt808_auth(TERMINAL, 4, code))
        ok = await dev.recv()
        assert (ok.acked_id, ok.acked_serial, ok.result) == (jt808.MSG_AUTH, 4, 0)

        await dev.send(f.jt808_location(TERMINAL, 5, valid=True, **fix))
        ack = await dev.recv()
        assert (ack.msg_id, ack.acked_id, ack.acked_serial, ack.result) == (
            jt808.MSG_GENERAL_RESPONSE,
            jt808.MSG_LOCATION,
            5,
            0,
        )
        count = await db(lambda: Position.objects.filter(device=device).count())
        dev.close()
        return count

    assert run(scenario) == 1


def test_jt808_wrong_auth_codes_close_the_connection():
    make_device(TERMINAL, "jt808")

    async def scenario(gateway):
        dev = await FakeDevice.connect(gateway, "jt808")
        await dev.send(f.jt808_register(TERMINAL, 1))
        await dev.recv()
        for serial in range(2, 5):
            await dev.send(f.jt808_auth(TERMINAL, serial, "nope"))
        return await dev.closed_by_server()

    assert run(scenario)


def test_h02_v1_is_stored():
    device = make_device(H02_ID, "h02")
    t = now() - dt.timedelta(seconds=3)

    async def scenario(gateway):
        dev = await FakeDevice.connect(gateway, "h02")
        await dev.send(
            f.h02_v1(H02_ID, fix_time=t, lat=34.2, lon=108.9, speed_kmh=20.0, course=5, valid=True)
        )
        ack = await dev.recv()
        count = await db(lambda: Position.objects.filter(device=device).count())
        dev.close()
        return ack, count

    ack, count = run(scenario)
    assert ack.kind == f.ACK
    assert count == 1
    device.refresh_from_db()
    assert device.last_fix_at == t


def test_unknown_device_is_recorded_refused_and_nothing_stored():
    async def scenario(gateway):
        dev = await FakeDevice.connect(gateway, "gt06")
        await dev.send(f.gt06_login(UNKNOWN_IMEI, 1) + gt06_fix(2, now()))
        return await dev.closed_by_server()

    assert run(scenario)
    unknown = UnknownDevice.objects.get()
    assert (unknown.protocol, unknown.identifier, unknown.frame_count) == ("gt06", UNKNOWN_IMEI, 1)
    assert unknown.remote_address.startswith("127.0.0.1")
    assert Position.objects.count() == 0


def test_jt808_unknown_terminal_gets_register_result_4():
    async def scenario(gateway):
        dev = await FakeDevice.connect(gateway, "jt808")
        await dev.send(f.jt808_register(TERMINAL, 7))
        reply = await dev.recv()
        closed = await dev.closed_by_server()
        return reply, closed

    reply, closed = run(scenario)
    assert (reply.kind, reply.result, reply.auth_code) == (f.REGISTER_REPLY, 4, None)
    assert closed
    assert UnknownDevice.objects.filter(protocol="jt808", identifier=TERMINAL).exists()


def corrupt(frame: bytes) -> bytes:
    """The same frame with a wrong CRC."""
    return frame[:-4] + bytes((frame[-4] ^ 0xFF,)) + frame[-3:]


def test_bad_frames_are_counted_and_a_good_frame_after_garbage_works():
    device = make_device(IMEI, "gt06")

    async def scenario(gateway):
        dev = await gt06_login(gateway)
        await dev.send(b"\x00garbage\xff" + corrupt(gt06_fix(2, now())) + gt06_fix(3, now()))
        ack = await dev.recv()
        assert ack.acked_serial == 3
        dev.close()

    run(scenario)
    device.refresh_from_db()
    assert device.frames_dropped == 2  # the garbage run and the bad CRC
    assert Position.objects.filter(device=device).count() == 1


def test_ten_bad_frames_in_a_row_close_the_connection():
    device = make_device(IMEI, "gt06")

    async def scenario(gateway):
        dev = await gt06_login(gateway)
        for serial in range(2, 11):  # nine: still open
            await dev.send(corrupt(gt06_fix(serial, now())))
        assert await dev.nothing()
        await dev.send(corrupt(gt06_fix(11, now())))
        return await dev.closed_by_server()

    assert run(scenario)
    device.refresh_from_db()
    assert device.frames_dropped == 10


def test_buffer_cap_closes_the_connection():
    async def scenario(gateway):
        dev = await FakeDevice.connect(gateway, "gt06")
        # A legal frame start (768 bytes declared, under the codec's 1 KiB frame limit) that
        # never completes: the buffer grows past the cap.
        await dev.send(b"\x79\x79\x03\x00" + b"\x01" * 600)
        return await dev.closed_by_server()

    assert run(scenario, max_buffer=512)


def test_second_login_replaces_the_first_connection():
    device = make_device(IMEI, "gt06")

    async def scenario(gateway):
        first = await gt06_login(gateway)
        second = await gt06_login(gateway)
        assert await first.closed_by_server()
        # The replaced connection going away does not mark the device offline.
        await second.send(gt06_fix(2, now()))
        assert (await second.recv()).acked_serial == 2
        online = await db(lambda: Device.objects.get(pk=device.pk).online)
        second.close()
        return online

    assert run(scenario) is True


def test_idle_timeout_closes_and_marks_the_device_offline():
    device = make_device(IMEI, "gt06")

    async def scenario(gateway):
        dev = await gt06_login(gateway)
        await dev.send(gt06_fix(2, now()))
        await dev.recv()
        assert await db(lambda: Device.objects.get(pk=device.pk).online)
        assert await dev.closed_by_server()
        for _ in range(50):
            if not await db(lambda: Device.objects.get(pk=device.pk).online):
                return True
            await asyncio.sleep(0.05)
        return False

    assert run(scenario, idle_timeout=0.5)


def test_split_and_sticky_frames():
    device = make_device(IMEI, "gt06")
    t = now() - dt.timedelta(seconds=60)

    async def scenario(gateway):
        dev = await FakeDevice.connect(gateway, "gt06")
        for byte in f.gt06_login(IMEI, 1):  # one byte per write
            await dev.send(bytes((byte,)))
            await asyncio.sleep(0)
        assert (await dev.recv()).acked_serial == 1
        # Two frames in one write, the second one cut across two writes.
        two = gt06_fix(2, t) + gt06_fix(3, t + dt.timedelta(seconds=10), lat=34.27)
        await dev.send(two[:-7])
        await asyncio.sleep(0.05)
        await dev.send(two[-7:])
        serials = {(await dev.recv()).acked_serial, (await dev.recv()).acked_serial}
        dev.close()
        return serials

    assert run(scenario) == {2, 3}
    assert Position.objects.filter(device=device).count() == 2


def test_writer_step_stores_a_batch_then_delivers_its_acks():
    device = make_device(IMEI, "gt06")
    delivered: list[BatchResult] = []
    writer = BatchWriter(delivered.append, max_items=2, max_wait=0.5)
    fix = m.Position(fix_time=now(), lat=34.26, lon=108.94, valid=True)
    message = m.Message(protocol="gt06", type=m.POSITION, device_id=None, positions=(fix,))
    for token in ("a", "b", "c"):
        writer.submit(Inbound(device.pk, message, now(), token=token))
    assert writer.step(idle_timeout=0.1) is True  # max_items: the first two only
    assert [r.acks for r in delivered] == [["a", "b"]]
    assert Position.objects.filter(device=device).count() == 1  # "b" is a duplicate of "a"

    job = writer.call(lambda x: x * 2, x=21, flush_first=True)
    writer.stop(timeout=0)  # queues the stop marker; no thread to join
    assert writer.step(idle_timeout=0.1) is False  # "c" committed before the job, then stop
    assert [r.acks for r in delivered] == [["a", "b"], ["c"]]
    assert job.result(timeout=0) == 42
    assert writer.step(idle_timeout=0.01) is True  # nothing queued: an empty step


def recording_writer(max_wait: float) -> tuple[BatchWriter, list[list[str]]]:
    """A writer whose ingest only records each batch's tokens, in the order it stored them."""
    stored: list[list[str]] = []

    def ingest(batch):
        stored.append([item.token for item in batch])
        return BatchResult(acks=[item.token for item in batch])

    return BatchWriter(lambda result: None, ingest=ingest, max_items=500, max_wait=max_wait), stored


def test_a_device_alarm_frame_skips_the_queued_positions():
    """Under load the queue holds seconds of position frames: an SOS must not wait behind them."""
    device = make_device(IMEI, "gt06")
    writer, stored = recording_writer(max_wait=0.5)
    t = now()
    for n in range(5):
        fix = m.Position(fix_time=t, lat=34.26, lon=108.94, valid=True)
        position = m.Message(protocol="gt06", type=m.POSITION, device_id=None, positions=(fix,))
        writer.submit(Inbound(device.pk, position, t, token=f"p{n}"))
    sos_fix = m.Position(fix_time=t, lat=34.26, lon=108.94, valid=True, alarms=("sos",))
    sos = m.Message(protocol="gt06", type=m.POSITION, device_id=None, positions=(sos_fix,))
    writer.submit(Inbound(device.pk, sos, t, token="sos"))
    status = m.Message(protocol="gt06", type=m.STATUS, device_id=None, alarms=("power_cut",))
    writer.submit(Inbound(device.pk, status, t, token="cut"))

    assert writer.step(idle_timeout=0.1) is True
    assert stored[0] == ["sos", "cut"]  # the alarms first, in their own batch
    writer.stop(timeout=0)
    assert writer.step(idle_timeout=0.1) is False
    assert [token for batch in stored for token in batch] == [
        "sos",
        "cut",
        "p0",
        "p1",
        "p2",
        "p3",
        "p4",
    ]


def test_an_alarm_submitted_while_a_batch_is_collected_ends_that_batch():
    device = make_device(IMEI, "gt06")
    writer, stored = recording_writer(max_wait=5.0)
    t = now()
    fix = m.Position(fix_time=t, lat=34.26, lon=108.94, valid=True)
    position = m.Message(protocol="gt06", type=m.POSITION, device_id=None, positions=(fix,))
    writer.submit(Inbound(device.pk, position, t, token="p0"))
    status = m.Message(protocol="gt06", type=m.STATUS, device_id=None, alarms=("sos",))
    timer = threading.Timer(0.2, writer.submit, [Inbound(device.pk, status, t, token="sos")])
    timer.start()
    started = time.monotonic()
    writer.step(idle_timeout=0.1)  # collecting for up to 5 s: the alarm cuts it short
    timer.join()
    assert time.monotonic() - started < 4.0
    assert stored == [["p0"]]
    writer.step(idle_timeout=0.1)
    assert stored == [["p0"], ["sos"]]
