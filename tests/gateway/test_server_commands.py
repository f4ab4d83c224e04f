"""Downlink commands through the real gateway over 127.0.0.1 sockets: queued commands go out when
the device's session is ready (GT06 after its login, JT808 only after auth, H02 on its first
frame) or within a poll while it is connected; the device's reply (GT06 0x15 with the server
flag, JT808 0x0001 / 0x0201, H02 V4) settles the command; expiry runs in the gateway; the
simulated trackers answer commands and apply the report interval."""

from __future__ import annotations

import asyncio
import datetime as dt

import pytest
from django.utils import timezone

from devices.models import Command, Device
from devices.services import command_send
from gateway.models import Position
from gateway.protocols import jt808
from gateway.server import Gateway, GatewayConfig
from gateway.simulator import frames as f
from gateway.simulator.runner import SimDevice, Simulator
from tests.gateway.test_server import (
    H02_ID,
    IMEI,
    LIMIT,
    TERMINAL,
    FakeDevice,
    gt06_login,
    make_device,
    now,
    run,
)

pytestmark = pytest.mark.django_db(transaction=True)

FAST = {"command_poll_interval": 0.1}


async def settled(gateway, pk, *, statuses=("acked", "failed", "expired"), timeout=3.0):
    """Wait until the command reaches one of `statuses`. Read on the gateway's writer thread:
    a read from another connection while the writer commits would hit the table lock of
    SQLite's shared-cache test database."""
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        cmd = await gateway.db(Command.objects.get, pk=pk)
        if cmd.status in statuses or asyncio.get_running_loop().time() > deadline:
            return cmd
        await asyncio.sleep(0.05)


def queue(device, kind, **kwargs) -> Command:
    return command_send(device=device, kind=kind, by=None, **kwargs)


def parked(device) -> None:
    Device.all_objects.filter(pk=device.pk).update(last_speed_kmh=0.0, last_fix_at=timezone.now())


def test_gt06_command_queued_while_offline_goes_out_after_login_and_is_acked():
    device = make_device(IMEI, "gt06")
    cmd = queue(device, "reboot")

    async def scenario(gateway):
        dev = await gt06_login(gateway)  # the login ack comes first
        down = await dev.recv()
        assert (down.kind, down.command, down.server_flag) == (f.COMMAND, "reboot", cmd.pk)
        await dev.send(f.gt06_command_reply(2, server_flag=down.server_flag, text="Reset OK!"))
        done = await settled(gateway, cmd.pk)
        dev.close()
        return done

    done = run(scenario)
    assert (done.status, done.reply_text) == ("acked", "Reset OK!")
    assert done.sent_at is not None and done.answered_at >= done.sent_at


def test_command_queued_while_connected_goes_out_within_a_poll():
    device = make_device(IMEI, "gt06")

    async def scenario(gateway):
        dev = await gt06_login(gateway)
        assert await dev.nothing(0.3)  # nothing queued yet
        cmd = await gateway.db(queue, device=device, kind="set_interval", params={"seconds": 45})
        down = await dev.recv(timeout=2.0)
        assert (down.command, down.params, down.text) == (
            "set_interval",
            {"seconds": 45},
            "TIMER,45#",
        )
        await dev.send(f.gt06_command_reply(2, server_flag=down.server_flag, text="TIMER=45 OK!"))
        done = await settled(gateway, cmd.pk)
        dev.close()
        return done

    assert run(scenario, **FAST).status == "acked"


def test_jt808_command_waits_for_auth_then_a_failure_result_fails_it():
    device = make_device(TERMINAL, "jt808")
    cmd = queue(device, "fuel_restore")

    async def scenario(gateway):
        dev = await FakeDevice.connect(gateway, "jt808")
        await dev.send(f.jt808_register(TERMINAL, 1))
        code = f.jt808_parse_register_reply((await dev.recv()).frame)
        assert await dev.nothing(0.4)  # registered, not authenticated: no command
        await dev.send(f.jt808_auth(TERMINAL, 2, code))
        ok = await dev.recv()
        assert (ok.kind, ok.acked_id, ok.result) == (f.ACK, jt808.MSG_AUTH, 0)
        down = await dev.recv()
        assert (down.msg_id, down.command, down.serial) == (0x8105, "fuel_restore", cmd.pk & 0xFFFF)
        await dev.send(f.jt808_general_response(TERMINAL, 3, down.serial, down.msg_id, result=1))
        done = await settled(gateway, cmd.pk)
        dev.close()
        return done

    done = run(scenario, **FAST)
    assert done.status == "failed"
    assert done.failure_reason == "The device answered: 1 failure"


def test_jt808_locate_now_answered_by_0201_acks_and_stores_the_position():
    device = make_device(TERMINAL, "jt808")
    cmd = queue(device, "locate_now")
    t = now() - dt.timedelta(seconds=3)

    async def scenario(gateway):
        dev = await FakeDevice.connect(gateway, "jt808")
        await dev.send(f.jt808_register(TERMINAL, 1))
        code = f.jt808_parse_register_reply((await dev.recv()).frame)
        await dev.send(f.jt808_auth(TERMINAL, 2, code))
        await dev.recv()
        down = await dev.recv()
        assert (down.msg_id, down.command) == (jt808.MSG_LOCATION_QUERY, "locate_now")
        await dev.send(
            f.jt808_location_reply(
                TERMINAL,
                3,
                down.serial,
                fix_time=t,
                lat=34.25,
                lon=108.95,
                speed_kmh=0.0,
                course=0,
                acc=False,
                valid=True,
            )
        )
        ack = await dev.recv()  # the position is acked after its commit
        assert (ack.kind, ack.acked_id) == (f.ACK, jt808.MSG_LOCATION_QUERY_REPLY)
        done = await settled(gateway, cmd.pk)
        dev.close()
        return done

    done = run(scenario)
    assert (done.status, done.reply_text) == ("acked", "34.250000,108.950000")
    assert Position.objects.filter(device=device, fix_time=t).exists()


def test_h02_fuel_cut_answered_by_v4_with_its_time():
    device = make_device(H02_ID, "h02")
    parked(device)
    cmd = queue(device, "fuel_cut")
    t = now()
    fix = {"lat": 34.26, "lon": 108.94, "speed_kmh": 0.0, "course": 0, "valid": True}

    async def scenario(gateway):
        dev = await FakeDevice.connect(gateway, "h02")
        await dev.send(f.h02_v1(H02_ID, fix_time=t, **fix))  # H02 names itself in every frame
        got = [await dev.recv(), await dev.recv()]  # the V1 ack and the command, in any order
        [down] = [d for d in got if d.kind == f.COMMAND]
        assert (down.msg_id, down.command, down.text) == ("S20", "fuel_cut", "S20,1,1")
        await dev.send(
            f.h02_v4(
                H02_ID,
                "S20",
                ("DONE", down.command_time),
                fix_time=t,
                status_word=f.h02_status_word(acc=False, fuel_cut=True),
                **fix,
            )
        )
        done = await settled(gateway, cmd.pk)
        dev.close()
        return done

    done = run(scenario)
    assert done.status == "acked"
    assert done.match_key.startswith("h02:S20:")
    assert done.reply_text.startswith("S20,DONE,")


def test_claimed_command_without_a_connection_goes_back_to_the_queue():
    device = make_device(IMEI, "gt06")
    cmd = queue(device, "reboot")

    async def scenario(gateway):
        sent = await gateway._commands_send([device.pk])  # claimed, but no session to write to
        await gateway.db(lambda: None)  # the requeue job is done
        return sent

    assert run(scenario) == 0
    cmd.refresh_from_db()
    assert (cmd.status, cmd.sent_at) == ("queued", None)


def test_gateway_expires_old_commands():
    device = make_device(IMEI, "gt06")
    past = timezone.now() - dt.timedelta(hours=2)
    cmd = queue(device, "reboot", now=past, expires_in=dt.timedelta(hours=1))

    async def scenario(gateway):
        return await settled(gateway, cmd.pk)

    assert run(scenario, **FAST, command_expire_interval=0.1).status == "expired"


def test_commands_can_be_switched_off():
    device = make_device(IMEI, "gt06")
    cmd = queue(device, "reboot")

    async def scenario(gateway):
        dev = await gt06_login(gateway)
        quiet = await dev.nothing(0.4)
        dev.close()
        return quiet

    assert run(scenario, commands=False, **FAST)
    cmd.refresh_from_db()
    assert cmd.status == "queued"


def test_simulated_trackers_answer_commands_and_apply_the_interval():
    devices = {
        "gt06": make_device(IMEI, "gt06"),
        "jt808": make_device(TERMINAL, "jt808"),
        "h02": make_device(H02_ID, "h02"),
    }
    cmds = [queue(d, "set_interval", params={"seconds": 90}) for d in devices.values()]
    cmds.append(queue(devices["jt808"], "locate_now"))
    cmds.append(queue(devices["gt06"], "reboot"))
    sims = [
        SimDevice(identifier=d.identifier, protocol=p, vehicle_id=d.bindings.get().vehicle_id)
        for p, d in devices.items()
    ]

    async def main():
        gateway = Gateway(
            GatewayConfig(ports={"gt06": 0, "jt808": 0, "h02": 0}, batch_wait=0.02, **FAST)
        )
        await gateway.start()
        try:
            sim = Simulator(sims, "127.0.0.1", gateway.ports, interval=0.2, speedup=30)
            task = asyncio.create_task(sim.run())
            done = [await settled(gateway, c.pk, timeout=5.0) for c in cmds]
            sim.stop()
            stats = await asyncio.wait_for(task, LIMIT)
            return done, stats, sim
        finally:
            await asyncio.wait_for(gateway.stop(), LIMIT)

    done, stats, sim = asyncio.run(asyncio.wait_for(main(), 3 * LIMIT))
    assert [c.status for c in done] == ["acked"] * 5, [(c.kind, c.failure_reason) for c in done]
    assert stats.commands_answered == 5
    assert sim.report_intervals == {d.identifier: 90 for d in devices.values()}
    # 90 simulated seconds at 30x: a location every 3 real seconds from now on.
    assert sim.interval_of(sims[0]) == pytest.approx(3.0)
