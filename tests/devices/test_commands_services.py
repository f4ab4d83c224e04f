"""Command services: sending (checks and refusals), fuel-cut safety and deferral, broadcasts with
per-device outcome, claim-once, reply matching, requeue, cancel, expiry and reply timeouts, the
state machine, live updates and the operation log."""

from __future__ import annotations

import datetime as dt

import pytest
import time_machine
from django.contrib.auth.models import Permission

from accounts.models import Role
from accounts.oplog import operation_log_rows
from carloan import realtime
from carloan.errors import ApplicationError, InvalidTransition
from devices import commands as c
from devices.models import Command, Device
from devices.selectors import command_jobs_visible_to, commands_visible_to
from devices.services import (
    command_broadcast,
    command_cancel,
    command_reply_record,
    command_send,
    commands_claim_for_sending,
    commands_expire,
    commands_requeue,
    device_create,
)
from gateway.protocols import gt06, h02, jt808
from gateway.simulator import frames as f
from tests.factories import DeviceFactory, UserFactory
from vehicles.services import device_bind

pytestmark = pytest.mark.django_db

T0 = dt.datetime(2026, 3, 5, 13, 3, 5, tzinfo=dt.UTC)
Q = Command.Status


@pytest.fixture(autouse=True)
def clock():
    with time_machine.travel(T0, tick=False) as traveller:
        yield traveller


@pytest.fixture
def published(monkeypatch):
    """Live "command" items, as carloan.realtime.publish received them."""
    items = []
    monkeypatch.setattr(
        realtime, "publish", lambda group, type, payload: items.append((group, type, payload))
    )
    return items


def state(device, *, speed=0.0, age_s=10):
    """The gateway's last-known state of a device (written by the ingest, never by a service)."""
    Device.all_objects.filter(pk=device.pk).update(
        last_speed_kmh=speed, last_fix_at=T0 - dt.timedelta(seconds=age_s)
    )


def role_user(world, *codes, customer="a"):
    role = Role.objects.create(customer=world.customers[customer], name="-".join(codes))
    for code in codes:
        app, codename = code.split(".")
        role.permissions.add(Permission.objects.get(content_type__app_label=app, codename=codename))
    return UserFactory(customer=world.customers[customer], role=role)


def claim(*devices, now=T0):
    return commands_claim_for_sending(device_ids=[d.pk for d in devices], now=now)


def reply_from(protocol, frame):
    codec = {"gt06": gt06, "jt808": jt808, "h02": h02}[protocol]
    return c.reply_of(codec.decode(frame)[0])


# --- sending -----------------------------------------------------------------------------------


def test_send_queues_a_command_logged_and_published(world, published):
    device = world.devices["a1"]
    cmd = command_send(device=device, kind="reboot", by=world.users["a_admin"])
    cmd.refresh_from_db()
    assert (cmd.status, cmd.kind, cmd.params, cmd.created_by) == (
        Q.QUEUED,
        "reboot",
        {},
        world.users["a_admin"],
    )
    assert cmd.expires_at == T0 + dt.timedelta(hours=24)
    record = cmd.history.get()
    assert (record.history_type, record.history_user) == ("+", world.users["a_admin"])
    vehicle = world.vehicles["a1"]
    [(group, kind, payload)] = published
    assert group == realtime.customer_group(vehicle.customer_id)
    assert kind == "command"
    assert (payload["vehicle_id"], payload["status"], payload["imei"]) == (
        vehicle.pk,
        "queued",
        device.identifier,
    )


def test_send_normalises_parameters(world):
    cmd = command_send(
        device=world.devices["a1"],
        kind="set_interval",
        params={"seconds": 60},
        by=world.users["a_admin"],
    )
    assert cmd.params == {"seconds": 60}


@pytest.mark.parametrize(
    ("kind", "params", "code", "text"),
    [
        ("self_destruct", {}, "invalid_command", "Unknown command"),
        ("set_interval", {"seconds": 3}, "invalid_params", "5 to 65535"),
        ("reboot", {"hard": True}, "invalid_params", "no parameters"),
        ("set_mode", {"mode": "deep_sleep", "days": 7}, "unsupported_command", "GT06"),
    ],
)
def test_bad_commands_are_refused_and_nothing_is_saved(world, kind, params, code, text):
    with pytest.raises(ApplicationError) as exc:
        command_send(
            device=world.devices["a1"], kind=kind, params=params, by=world.users["a_admin"]
        )
    assert exc.value.code == code
    assert text in exc.value.message
    assert not Command.objects.exists()


def test_protocol_without_an_encoding_is_named(world):
    device = device_create(
        customer=world.customers["a1"], identifier="4210051415", protocol="h02", kind="wired"
    )
    with pytest.raises(ApplicationError) as exc:
        command_send(device=device, kind="locate_now", by=world.users["a_admin"])
    assert "H02" in exc.value.message and "locate now" in exc.value.message


def test_permissions(world):
    device = world.devices["a1"]
    with pytest.raises(ApplicationError) as exc:  # the operator role has no command rights
        command_send(device=device, kind="reboot", by=world.users["a1_operator"])
    assert exc.value.code == "permission_denied"
    sender = role_user(world, "devices.add_command")
    assert command_send(device=device, kind="reboot", by=sender).status == Q.QUEUED
    state(device)
    with pytest.raises(ApplicationError) as exc:
        command_send(device=device, kind="fuel_cut", by=sender)
    assert exc.value.code == "permission_denied"
    assert "fuel-cut permission" in exc.value.message
    cutter = role_user(world, "devices.add_command", "devices.send_fuel_cut")
    assert command_send(device=device, kind="fuel_cut", by=cutter).status == Q.QUEUED


def test_other_tenants_device_is_not_found(world):
    with pytest.raises(ApplicationError) as exc:
        command_send(device=world.devices["a1"], kind="reboot", by=world.users["b_admin"])
    assert exc.value.code == "not_found"


def test_device_shared_read_only_takes_no_commands(world):
    from accounts.services import objects_share

    device = world.devices["a1"]
    objects_share(objects=[device], username="b_admin", by=world.users["a_admin"])
    with pytest.raises(ApplicationError) as exc:
        command_send(device=device, kind="reboot", by=world.users["b_admin"])
    assert exc.value.code == "permission_denied"
    objects_share(objects=[device], username="b_admin", can_change=True, by=world.users["a_admin"])
    assert command_send(device=device, kind="reboot", by=world.users["b_admin"]).pk


def test_expiry_window_is_bounded(world):
    with pytest.raises(ApplicationError, match="1 minute to 31 days"):
        command_send(
            device=world.devices["a1"],
            kind="reboot",
            by=world.users["a_admin"],
            expires_in=dt.timedelta(days=40),
        )


# --- fuel cut ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("speed", "age_s", "reason"),
    [
        (35.0, 10, "35 km/h"),
        (0.0, 600, "10 minutes old"),
        (None, 10, "speed is not known"),
    ],
)
def test_fuel_cut_refused_while_moving_or_stale(world, speed, age_s, reason):
    device = world.devices["a1"]
    state(device, speed=speed, age_s=age_s)
    with pytest.raises(ApplicationError) as exc:
        command_send(device=device, kind="fuel_cut", by=world.users["a_admin"])
    assert exc.value.code == "unsafe_fuel_cut"
    assert reason in exc.value.message
    assert "wait until the vehicle stops" in exc.value.message
    assert not Command.objects.exists()


def test_fuel_cut_never_seen_device_is_refused(world):
    with pytest.raises(ApplicationError, match="no known position"):
        command_send(device=world.devices["a1"], kind="fuel_cut", by=world.users["a_admin"])


def test_fuel_cut_uses_the_vehicles_freshest_fix(world):
    """The wired device went silent 10 minutes ago; the wireless one on the same car says what
    the car does now."""
    wired = world.devices["a1"]
    wireless = DeviceFactory(customer=world.customers["a1"], kind="wireless")
    device_bind(vehicle=world.vehicles["a1"], device=wireless)
    state(wired, speed=0.0, age_s=600)
    state(wireless, speed=48.0, age_s=20)
    with pytest.raises(ApplicationError, match="48 km/h"):
        command_send(device=wired, kind="fuel_cut", by=world.users["a_admin"])
    state(wireless, speed=0.0, age_s=20)
    assert command_send(device=wired, kind="fuel_cut", by=world.users["a_admin"]).pk


def test_deferred_fuel_cut_waits_until_the_vehicle_stops(world, clock):
    device = world.devices["a1"]
    state(device, speed=60.0, age_s=5)
    cmd = command_send(
        device=device, kind="fuel_cut", by=world.users["a_admin"], defer_until_stopped=True
    )
    assert (cmd.status, cmd.defer_until_stopped) == (Q.QUEUED, True)
    assert claim(device) == []  # still driving
    state(device, speed=3.0, age_s=400)
    assert claim(device) == []  # stopped, but the fix is too old to trust
    state(device, speed=3.0, age_s=5)
    [out] = claim(device)
    assert out.command_id == cmd.pk and out.kind == "fuel_cut"
    assert b"RELAY,1#" in out.frame


def test_only_a_fuel_cut_can_be_deferred(world):
    with pytest.raises(ApplicationError, match="Only a fuel cut"):
        command_send(
            device=world.devices["a1"],
            kind="reboot",
            by=world.users["a_admin"],
            defer_until_stopped=True,
        )


def test_queued_fuel_cut_no_longer_safe_at_sending_time_fails_with_the_reason(world):
    device = world.devices["a1"]
    state(device)
    cmd = command_send(device=device, kind="fuel_cut", by=world.users["a_admin"])
    state(device, speed=72.0, age_s=1)  # the car drove off before the device connected
    assert claim(device) == []
    cmd.refresh_from_db()
    assert cmd.status == Q.FAILED
    assert "72 km/h" in cmd.failure_reason


# --- broadcast -----------------------------------------------------------------------------------


def test_broadcast_is_one_job_with_an_outcome_per_device(world, published):
    h02_device = device_create(
        customer=world.customers["a2"], identifier="4210051415", protocol="h02", kind="wired"
    )
    devices = [world.devices["a1"], world.devices["a2"], world.stock["a"], h02_device]
    job = command_broadcast(devices=devices, kind="locate_now", by=world.users["a_admin"])
    rows = {cmd.device_id: cmd for cmd in job.commands.all()}
    assert len(rows) == 4
    assert rows[h02_device.pk].status == Q.FAILED
    assert "H02" in rows[h02_device.pk].failure_reason
    assert {rows[d.pk].status for d in devices[:3]} == {Q.QUEUED}
    counted = command_jobs_visible_to(world.users["a_admin"]).get(pk=job.pk)
    assert (counted.n_total, counted.n_queued, counted.n_failed) == (4, 3, 1)
    assert job.customer == world.customers["a"]
    # Published for the devices on a vehicle (the stock devices have no live item).
    assert {p["device_id"] for _g, _t, p in published} == {
        world.devices["a1"].pk,
        world.devices["a2"].pk,
    }


def test_broadcast_fuel_cut_refuses_moving_cars_one_by_one(world):
    moving, parked = world.devices["a1"], world.devices["a2"]
    state(moving, speed=90.0)
    state(parked, speed=0.0)
    job = command_broadcast(devices=[moving, parked], kind="fuel_cut", by=world.users["a_admin"])
    by_device = {cmd.device_id: cmd for cmd in job.commands.all()}
    assert by_device[parked.pk].status == Q.QUEUED
    assert by_device[moving.pk].status == Q.FAILED
    assert "90 km/h" in by_device[moving.pk].failure_reason


@pytest.mark.parametrize(
    ("kwargs", "code"),
    [
        ({"kind": "set_interval", "params": {"seconds": 1}}, "invalid_params"),
        ({"kind": "fuel_cut", "by": "a1_operator"}, "permission_denied"),
    ],
)
def test_broadcast_refuses_a_bad_command_as_a_whole(world, kwargs, code):
    by = world.users[kwargs.pop("by", "a_admin")]
    with pytest.raises(ApplicationError) as exc:
        command_broadcast(devices=[world.devices["a1"]], by=by, **kwargs)
    assert exc.value.code == code
    assert not Command.objects.exists()


def test_broadcast_with_an_invisible_device_is_refused_whole(world):
    with pytest.raises(ApplicationError) as exc:
        command_broadcast(
            devices=[world.devices["a1"], world.devices["b1"]],
            kind="reboot",
            by=world.users["a_admin"],
        )
    assert exc.value.code == "not_found"
    assert not Command.objects.exists()


# --- claim, reply, requeue, cancel ------------------------------------------------------------


def test_claim_once(world, published):
    device = world.devices["a1"]
    first = command_send(device=device, kind="reboot", by=world.users["a_admin"])
    second = command_send(
        device=device, kind="set_interval", params={"seconds": 30}, by=world.users["a_admin"]
    )
    other = command_send(device=world.devices["a2"], kind="reboot", by=world.users["a_admin"])
    published.clear()
    outs = claim(device)
    assert [o.command_id for o in outs] == [first.pk, second.pk]  # oldest first
    assert claim(device) == []  # claim-once
    first.refresh_from_db()
    assert (first.status, first.sent_at, first.serial) == (Q.SENT, T0, first.pk)
    assert first.match_key == f"gt06:{first.pk}"
    assert outs[0].frame == gt06.encode_command(
        "RESET#", serial=first.pk & 0xFFFF, server_flag=first.pk
    )
    assert first.history.count() == 2  # created, sent
    assert other.__class__.objects.get(pk=other.pk).status == Q.QUEUED  # not connected
    assert [p["status"] for _g, _t, p in published] == ["sent", "sent"]


def test_claim_skips_expired_commands(world, clock):
    device = world.devices["a1"]
    command_send(
        device=device, kind="reboot", by=world.users["a_admin"], expires_in=dt.timedelta(hours=1)
    )
    assert claim(device, now=T0 + dt.timedelta(hours=1)) == []


def test_reply_acks_the_command_it_answers(world):
    device = world.devices["a1"]
    cmd = command_send(device=device, kind="reboot", by=world.users["a_admin"])
    [out] = claim(device)
    down = f.parse_downlink("gt06", out.frame)
    reply = reply_from(
        "gt06", f.gt06_command_reply(9, server_flag=down.server_flag, text="Reset Success!")
    )
    later = T0 + dt.timedelta(seconds=4)
    assert command_reply_record(device_id=device.pk, reply=reply, now=later).pk == cmd.pk
    cmd.refresh_from_db()
    assert (cmd.status, cmd.answered_at, cmd.reply_text) == (Q.ACKED, later, "Reset Success!")
    # The same reply again (or a reply for another device) matches nothing.
    assert command_reply_record(device_id=device.pk, reply=reply, now=later) is None
    assert command_reply_record(device_id=world.devices["a2"].pk, reply=reply, now=later) is None


def test_jt808_failure_result_fails_the_command(world):
    device = device_create(
        customer=world.customers["a1"], identifier="013912345678", protocol="jt808", kind="wired"
    )
    cmd = command_send(device=device, kind="reboot", by=world.users["a_admin"])
    [out] = claim(device)
    down = f.parse_downlink("jt808", out.frame)
    reply = reply_from(
        "jt808", f.jt808_general_response(device.identifier, 4, down.serial, down.msg_id, 1)
    )
    command_reply_record(device_id=device.pk, reply=reply, now=T0)
    cmd.refresh_from_db()
    assert cmd.status == Q.FAILED
    assert cmd.failure_reason == "The device answered: 1 failure"


def test_h02_reply_matches_by_name_and_time(world, clock):
    device = device_create(
        customer=world.customers["a1"], identifier="4210051415", protocol="h02", kind="wired"
    )
    first = command_send(device=device, kind="reboot", by=world.users["a_admin"])
    claim(device)
    clock.shift(dt.timedelta(seconds=2))
    second = command_send(device=device, kind="reboot", by=world.users["a_admin"])
    [out] = claim(device, now=T0 + dt.timedelta(seconds=2))
    assert out.frame == b"*HQ,4210051415,R1,130307#"
    answer = b"*HQ,4210051415,V4,R1,DONE,130307#"  # answers the second one
    command_reply_record(device_id=device.pk, reply=reply_from("h02", answer), now=T0)
    first.refresh_from_db()
    second.refresh_from_db()
    assert (first.status, second.status) == (Q.SENT, Q.ACKED)
    # No time in the answer: the oldest R1 still waiting.
    command_reply_record(
        device_id=device.pk, reply=reply_from("h02", b"*HQ,4210051415,V4,R1,DONE#"), now=T0
    )
    first.refresh_from_db()
    assert first.status == Q.ACKED


def test_requeue_puts_an_unwritten_command_back(world):
    device = world.devices["a1"]
    cmd = command_send(device=device, kind="reboot", by=world.users["a_admin"])
    [out] = claim(device)
    assert commands_requeue(command_ids=[out.command_id]) == 1
    cmd.refresh_from_db()
    assert (cmd.status, cmd.sent_at, cmd.match_key) == (Q.QUEUED, None, "")
    assert [o.command_id for o in claim(device)] == [cmd.pk]


def test_cancel_only_queued_commands(world):
    device = world.devices["a1"]
    cmd = command_send(device=device, kind="reboot", by=world.users["a_admin"])
    command_cancel(command=cmd, by=world.users["a_admin"])
    cmd.refresh_from_db()
    assert (cmd.status, cmd.failure_reason) == (Q.FAILED, "Cancelled by a_admin.")
    sent = command_send(device=device, kind="reboot", by=world.users["a_admin"])
    claim(device)
    with pytest.raises(InvalidTransition):
        command_cancel(command=sent, by=world.users["a_admin"])
    with pytest.raises(ApplicationError) as exc:
        command_cancel(command=sent, by=world.users["b_admin"])
    assert exc.value.code == "not_found"


# --- expiry and timeouts ---------------------------------------------------------------------


def test_queued_commands_expire(world, clock):
    device = world.devices["a1"]
    cmd = command_send(
        device=device, kind="reboot", by=world.users["a_admin"], expires_in=dt.timedelta(hours=1)
    )
    assert commands_expire(now=T0 + dt.timedelta(minutes=59)) == (0, 0)
    clock.shift(dt.timedelta(hours=1))
    assert commands_expire(now=T0 + dt.timedelta(hours=1)) == (1, 0)
    cmd.refresh_from_db()
    assert cmd.status == Q.EXPIRED
    assert "did not connect" in cmd.failure_reason
    assert commands_expire(now=T0 + dt.timedelta(hours=2)) == (0, 0)  # idempotent


def test_sent_commands_without_a_reply_fail_after_the_timeout(world):
    device = world.devices["a1"]
    cmd = command_send(device=device, kind="reboot", by=world.users["a_admin"])
    claim(device)
    assert commands_expire(now=T0 + c.REPLY_TIMEOUT - dt.timedelta(seconds=1)) == (0, 0)
    assert commands_expire(now=T0 + c.REPLY_TIMEOUT) == (0, 1)
    cmd.refresh_from_db()
    assert (cmd.status, cmd.failure_reason) == (Q.FAILED, "No reply from the device.")
    assert cmd.history.first().history_type == "~"
    # A reply arriving after the timeout changes nothing.
    down = f.parse_downlink("gt06", gt06.encode_command("RESET#", serial=1, server_flag=cmd.pk))
    reply = reply_from("gt06", f.gt06_command_reply(9, server_flag=down.server_flag, text="OK"))
    assert command_reply_record(device_id=device.pk, reply=reply, now=T0) is None


# --- state machine, scoping, operation log ---------------------------------------------------


def test_state_machine_table():
    assert Command.TRANSITIONS[Q.QUEUED] == {Q.SENT, Q.FAILED, Q.EXPIRED}
    assert Command.TRANSITIONS[Q.SENT] == {Q.ACKED, Q.FAILED, Q.QUEUED}
    for final in (Q.ACKED, Q.FAILED, Q.EXPIRED):
        assert Command(status=final).is_final
    cmd = Command(status=Q.ACKED)
    with pytest.raises(InvalidTransition):
        cmd.transition_to(Q.SENT)
    cmd = Command(status=Q.QUEUED)
    with pytest.raises(InvalidTransition):
        cmd.transition_to(Q.ACKED)  # never answered before it was sent
    cmd.transition_to(Q.SENT)
    assert cmd.status == Q.SENT


def test_commands_are_scoped_and_in_the_operation_log(world):
    mine = command_send(device=world.devices["a1"], kind="reboot", by=world.users["a_admin"])
    theirs = command_send(device=world.devices["b1"], kind="reboot", by=world.users["b_admin"])
    assert set(commands_visible_to(world.users["a_admin"])) == {mine}
    assert set(commands_visible_to(world.users["b_admin"])) == {theirs}
    assert set(commands_visible_to(world.users["platform_admin"])) == {mine, theirs}
    rows = list(operation_log_rows(world.users["a_admin"], model="devices.command"))
    assert [(r["log_object"], r["log_label"], r["log_action"]) for r in rows] == [
        (mine.pk, world.devices["a1"].identifier, "+")
    ]
    assert [
        r["log_object"] for r in operation_log_rows(world.users["b_admin"], model="devices.command")
    ] == [theirs.pk]
