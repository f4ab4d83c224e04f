"""Session details over real sockets on 127.0.0.1: JT808 sub-packages (reassembly, 0x8003 resend
requests, timeouts), lenient checksums on a device's very first frame, GT06 devices that report
local times, and the per-protocol counters behind the operators' status page."""

from __future__ import annotations

import datetime as dt
import struct

import pytest
from django.test import override_settings

from devices.models import Device, DeviceModel, Manufacturer
from gateway.models import GatewayStatus, Position
from gateway.protocols import jt808
from gateway.server import config_from_settings
from gateway.simulator import frames as f
from tests.gateway.test_server import (
    IMEI,
    TERMINAL,
    FakeDevice,
    corrupt,
    db,
    gt06_fix,
    gt06_login,
    make_device,
    now,
    run,
)

pytestmark = pytest.mark.django_db(transaction=True)


async def jt808_session(gateway) -> FakeDevice:
    dev = await FakeDevice.connect(gateway, "jt808")
    await dev.send(f.jt808_register(TERMINAL, 1))
    code = f.jt808_parse_register_reply((await dev.recv()).frame)
    await dev.send(f.jt808_auth(TERMINAL, 2, code))
    assert (await dev.recv()).result == 0
    return dev


def batch_parts(count: int, first_serial: int = 10, part_size: int = 70) -> list[bytes]:
    """A 0x0704 blind-area batch of `count` fixes cut into sub-packages of `part_size` bytes."""
    t0 = now() - dt.timedelta(hours=1)
    bodies = [
        f.jt808_location_body(
            fix_time=t0 + dt.timedelta(seconds=30 * i),
            lat=34.25 + i * 0.001,
            lon=108.95,
            speed_kmh=30.0,
            course=90,
            acc=True,
            valid=True,
        )
        for i in range(count)
    ]
    body = struct.pack(">HB", count, 1) + b"".join(struct.pack(">H", len(b)) + b for b in bodies)
    return f.jt808_subpackages(jt808.MSG_BATCH, TERMINAL, first_serial, body, part_size=part_size)


def test_subpackaged_batch_is_reassembled_stored_and_every_part_acked():
    device = make_device(TERMINAL, "jt808")
    parts = batch_parts(6)
    assert len(parts) == 3

    async def scenario(gateway):
        dev = await jt808_session(gateway)
        acks = []
        for part in parts:
            await dev.send(part)
            acks.append(await dev.recv())
        count = await db(lambda: Position.objects.filter(device=device).count())
        dev.close()
        return acks, count

    acks, count = run(scenario)
    assert [(a.acked_id, a.acked_serial, a.result) for a in acks] == [
        (jt808.MSG_BATCH, 10, 0),
        (jt808.MSG_BATCH, 11, 0),
        (jt808.MSG_BATCH, 12, 0),  # sent after the six fixes were committed
    ]
    assert count == 6
    # Blind-area fixes are stored at their own times and never become "now".
    assert not Position.objects.filter(device=device, realtime=True).exists()


def test_missing_part_is_requested_and_the_message_completes_when_it_arrives():
    device = make_device(TERMINAL, "jt808")
    first, second, third = batch_parts(6)

    async def scenario(gateway):
        dev = await jt808_session(gateway)
        await dev.send(first)
        assert (await dev.recv()).acked_serial == 10
        await dev.send(third)  # the last index came, index 2 did not
        ack, request = await dev.recv(), await dev.recv()
        assert ack.acked_serial == 12
        assert (request.kind, request.acked_serial, request.params) == (
            f.RESEND_REQUEST,
            10,
            {"indexes": [2]},
        )
        assert await db(lambda: Position.objects.filter(device=device).count()) == 0
        await dev.send(second)
        assert (await dev.recv()).acked_serial == 11
        count = await db(lambda: Position.objects.filter(device=device).count())
        dev.close()
        return count

    assert run(scenario) == 6


def test_incomplete_message_is_requested_twice_then_dropped_and_counted():
    device = make_device(TERMINAL, "jt808")
    first = batch_parts(6)[0]

    async def scenario(gateway):
        dev = await jt808_session(gateway)
        await dev.send(first)
        assert (await dev.recv()).acked_serial == 10
        requests = [await dev.recv(), await dev.recv()]
        assert await dev.nothing(0.5)  # given up: no third request
        dev.close()
        return requests

    requests = run(scenario, subpackage_timeout=0.2)
    assert [(r.kind, r.params["indexes"]) for r in requests] == [(f.RESEND_REQUEST, [2, 3])] * 2
    device.refresh_from_db()
    assert device.frames_dropped == 1
    assert "incomplete" in device.last_drop_reason
    assert Position.objects.filter(device=device).count() == 0


def test_oversized_subpackaged_message_is_dropped():
    device = make_device(TERMINAL, "jt808")

    async def scenario(gateway):
        dev = await jt808_session(gateway)
        # 300 parts of 1000 bytes announced: past the 256 KiB cap long before the end.
        body = bytes(1000 * 300)
        frames = f.jt808_subpackages(0x0900, TERMINAL, 100, body, part_size=1000)
        acked = 0
        for frame in frames[:270]:
            await dev.send(frame)
            try:
                await dev.recv(timeout=1.0)
            except TimeoutError:
                break
            acked += 1
        dev.close()
        return acked

    assert run(scenario) == 262  # 262 x 1000 bytes fit under 256 KiB; the 263rd part does not
    device.refresh_from_db()
    assert device.frames_dropped == 1
    assert device.last_drop_reason == "sub-packaged message too large"


def lenient_model() -> DeviceModel:
    maker = Manufacturer.objects.create(name="Sloppy Co")
    return DeviceModel.objects.create(
        name="GT06-bad-crc", manufacturer=maker, protocol="gt06", kind="wired", lenient=True
    )


def test_lenient_model_accepts_a_bad_checksum_on_the_very_first_frame():
    device = make_device(IMEI, "gt06")
    Device.objects.filter(pk=device.pk).update(model=lenient_model())

    async def scenario(gateway):
        dev = await FakeDevice.connect(gateway, "gt06")
        await dev.send(corrupt(f.gt06_login(IMEI, 1)))
        login_ack = await dev.recv()
        await dev.send(corrupt(gt06_fix(2, now())))
        fix_ack = await dev.recv()
        dev.close()
        return login_ack.acked_serial, fix_ack.acked_serial

    assert run(scenario) == (1, 2)
    device.refresh_from_db()
    assert device.frames_dropped == 0
    assert Position.objects.filter(device=device).count() == 1


def test_strict_model_refuses_a_bad_checksum_on_the_first_frame():
    device = make_device(IMEI, "gt06")

    async def scenario(gateway):
        dev = await FakeDevice.connect(gateway, "gt06")
        await dev.send(corrupt(f.gt06_login(IMEI, 1)))
        silent = await dev.nothing(0.4)
        dev.close()
        return silent

    assert run(scenario)
    device.refresh_from_db()
    assert device.online is False
    assert device.last_seen_at is None


def test_gt06_device_on_local_time_is_stored_in_utc():
    device = make_device(IMEI, "gt06")
    utc = now() - dt.timedelta(minutes=2)
    local = utc + dt.timedelta(hours=8)  # the device's clock runs on China time

    async def scenario(gateway):
        dev = await FakeDevice.connect(gateway, "gt06")
        await dev.send(f.gt06_login(IMEI, 1, type_id=0x3C28, tz_offset_min=480))
        await dev.recv()
        await dev.send(gt06_fix(2, local))
        await dev.recv()
        dev.close()

    run(scenario)
    assert Position.objects.get(device=device).fix_time == utc


def test_counters_reach_the_status_row_and_the_stop_is_recorded():
    make_device(IMEI, "gt06")

    async def scenario(gateway):
        dev = await gt06_login(gateway)
        await dev.send(gt06_fix(2, now()))
        await dev.recv()
        await dev.send(corrupt(gt06_fix(3, now())))
        assert await dev.nothing(0.3)
        dev.close()
        gateway.report()
        return gateway.name

    name = run(scenario, status_interval=60)
    status = GatewayStatus.objects.get(name=name)
    gt06 = status.counters["gt06"]
    assert (gt06["connections"], gt06["frames"], gt06["bad_frames"]) == (1, 2, 1)
    assert (gt06["positions"], gt06["acked"]) == (1, 1)
    assert status.counters["all"]["stored"] == 1
    assert status.stopped_at is not None  # the last row written by stop()
    assert set(status.ports) == {"gt06", "jt808", "h02"}


@override_settings(
    GATEWAY_PORTS={"gt06": 7023, "jt808": 7015},
    GATEWAY_IDLE_TIMEOUTS={"jt808": 900.0},
    GATEWAY_MAX_IMPLIED_SPEED_KMH=250.0,
    GATEWAY_BATCH_WAIT_MS=50,
)
def test_config_comes_from_settings_and_options_override():
    config = config_from_settings(host="0.0.0.0", idle_timeout=None)  # noqa: S104 (a setting, nothing binds)
    assert config.host == "0.0.0.0"  # noqa: S104
    assert config.ports == {"gt06": 7023, "jt808": 7015}
    assert config.timeout_for("jt808") == 900.0
    assert config.timeout_for("gt06") == 300.0
    assert config.batch_wait == 0.05
    assert config.hygiene.max_implied_speed_kmh == 250.0


def test_h02_binary_frame_length_is_learnt_per_connection():
    # A 45-byte binary frame (tests/gateway/test_h02.py, from the H02 reference vectors).
    first = bytes.fromhex(
        "2441091144271222470112142233983006114026520E000000FFFFFBFFFF0014060000000001CC00262B0F170A"
    )
    # The same frame with '$' at offset 32: guessed alone it looks like a 32-byte frame + garbage.
    second = first[:32] + b"$" + first[33:]
    make_device("4109114427", "h02")

    async def scenario(gateway):
        import asyncio

        dev = await FakeDevice.connect(gateway, "h02")
        await dev.send(first)
        await asyncio.sleep(0.2)
        await dev.send(second)
        await asyncio.sleep(0.3)
        dev.close()
        return dict(gateway.stats["h02"])

    stats = run(scenario)
    assert (stats["frames"], stats["bad_frames"]) == (2, 0)
