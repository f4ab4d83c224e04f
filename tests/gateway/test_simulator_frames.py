"""Device simulator: every device-side encoder round-trips through the server codecs, server
replies are what the simulated device expects, and demo routes behave. Pure: no database.

Byte-exact samples are Traccar's (../shared/protocols/vectors.txt and PROTOCOLS.md 2.1).
"""

from __future__ import annotations

import datetime as dt

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.protocols import gt06, h02, jt808
from gateway.protocols.messages import (
    ALARM_CASE_OPEN,
    ALARM_DISPLACEMENT,
    ALARM_FAKE_BASE_STATION,
    ALARM_GEOFENCE,
    ALARM_LOW_BATTERY,
    ALARM_OVERSPEED,
    ALARM_POWER_CUT,
    ALARM_REMOVAL,
    ALARM_SOS,
    ALARM_VIBRATION,
    AUTH,
    COMMAND_REPLY,
    HEARTBEAT,
    LOGIN,
    POSITION,
    REGISTER,
    TERMINAL_RESPONSE,
    FrameError,
    Message,
)
from gateway.simulator import frames as f
from gateway.simulator.routes import CENTRE, Route, distance_m

T0 = dt.datetime(2024, 5, 6, 7, 8, 9, tzinfo=dt.UTC)
IMEI = "864717003283581"
TERMINAL = "013912345678"
TERMINAL_2019 = "00000000013912345678"
H02_ID = "2020916012"
XIAN = (34.26, 108.94)


def one(module, frame: bytes) -> Message:
    """split_frames returns exactly `frame`, and it decodes to one message."""
    frames, rest, discarded = module.split_frames(frame)
    assert frames == [frame]
    assert rest == b""
    assert discarded == 0
    msgs = module.decode(frame)
    assert len(msgs) == 1
    return msgs[0]


def near(a: float, b: float, tol: float = 1e-5) -> bool:
    return abs(a - b) <= tol


# =============================================================================================
# GT06


def test_gt06_login_is_traccars_sample_and_decodes():
    # PROTOCOLS.md 2.1 worked example: login of 864717003283581, serial 0x0009.
    frame = f.gt06_login(IMEI, 9)
    assert frame.hex() == "78780d01086471700328358100093f040d0a"
    msg = one(gt06, frame)
    assert (msg.type, msg.device_id, msg.serial) == (LOGIN, IMEI, 9)
    reply = gt06.encode_reply(msg)
    assert reply.hex() == "78780501000955940d0a"  # PROTOCOLS.md: Traccar's reply
    d = f.parse_downlink("gt06", reply)
    assert (d.kind, d.acked_id, d.acked_serial) == (f.ACK, 0x01, 9)


def test_gt06_login_with_type_and_timezone():
    msg = one(gt06, f.gt06_login(IMEI, 1, type_id=0x3632, tz_offset_min=-330))
    assert msg.device_id == IMEI
    assert msg.extra["type_id"] == 0x3632
    assert msg.extra["tz_offset_min"] == -330
    with pytest.raises(ValueError):
        f.gt06_login("86471700328358", 1)


def test_gt06_heartbeat_matches_traccars_status_sample():
    # PROTOCOLS.md 2.1: status 78780a13c40604000201298f5b0d0a (fuel cut, GPS on, charging).
    frame = f.gt06_heartbeat(
        0x0129, acc=False, fuel_cut=True, charging=True, battery_level=6, gsm=4
    )
    assert frame.hex() == "78780a13c40604000201298f5b0d0a"
    assert gt06.encode_reply(one(gt06, frame)).hex() == "7878051301295d630d0a"


@pytest.mark.parametrize(
    ("alarm_bits", "alarm_code", "kinds"),
    [
        (0, 0, ()),
        (1, 0, (ALARM_VIBRATION,)),
        (2, 0, (ALARM_POWER_CUT,)),
        (4, 0, (ALARM_SOS,)),
        (7, 0, (ALARM_REMOVAL,)),
        (0, 0x0E, (ALARM_LOW_BATTERY,)),
        (2, 0x02, (ALARM_POWER_CUT,)),
    ],
)
def test_gt06_heartbeat_round_trip(alarm_bits, alarm_code, kinds):
    frame = f.gt06_heartbeat(
        77,
        acc=True,
        fuel_cut=False,
        charging=False,
        battery_level=3,
        gsm=2,
        alarm_bits=alarm_bits,
        alarm_code=alarm_code,
    )
    msg = one(gt06, frame)
    assert msg.type == HEARTBEAT
    assert (msg.acc, msg.fuel_cut, msg.battery_pct, msg.gsm_signal) == (True, False, 50, 50)
    assert msg.extra["charging"] is False
    assert msg.alarms == kinds
    ack = f.parse_downlink("gt06", gt06.encode_reply(msg))
    assert (ack.kind, ack.acked_id, ack.acked_serial) == (f.ACK, 0x13, 77)


@pytest.mark.parametrize(
    ("lat", "lon"), [(34.26, 108.94), (-33.8688, 151.2093), (40.7128, -74.006), (-0.5, -0.5)]
)
def test_gt06_location_round_trip(lat, lon):
    frame = f.gt06_location(
        300,
        fix_time=T0,
        lat=lat,
        lon=lon,
        speed_kmh=61.4,
        course=271,
        satellites=11,
        valid=True,
        acc=True,
        mileage_m=123_456,
        cell=(460, 1, 0x1234, 0xABCDEF),
    )
    msg = one(gt06, frame)
    assert (msg.type, msg.serial, msg.msg_id) == (POSITION, 300, 0x22)
    (p,) = msg.positions
    assert p.fix_time == T0
    assert near(p.lat, lat) and near(p.lon, lon)
    assert (p.speed_kmh, p.course, p.satellites, p.valid, p.acc) == (61, 271, 11, True, True)
    assert p.realtime is True
    assert p.odometer_km == pytest.approx(123.456)
    assert (p.cells[0].mcc, p.cells[0].mnc, p.cells[0].lac, p.cells[0].cid) == (
        460,
        1,
        0x1234,
        0xABCDEF,
    )
    ack = f.parse_downlink("gt06", gt06.encode_reply(msg))
    assert (ack.kind, ack.acked_id, ack.acked_serial) == (f.ACK, 0x22, 300)


def test_gt06_location_reupload_invalid_and_wide_mnc():
    frame = f.gt06_location(
        1,
        fix_time=T0,
        lat=34.0,
        lon=108.0,
        speed_kmh=0,
        course=0,
        satellites=0,
        valid=False,
        acc=False,
        reupload=True,
        cell=(460, 300, 1, 2),
    )
    (p,) = one(gt06, frame).positions
    assert (p.valid, p.acc, p.realtime, p.odometer_km) == (False, False, False, None)
    assert p.cells[0].mnc == 300


@pytest.mark.parametrize("acc", [True, False])
def test_gt06_classic_0x12_carries_acc_in_the_course_word(acc):
    frame = f.gt06_location(
        5,
        fix_time=T0,
        lat=34.2,
        lon=108.9,
        speed_kmh=30,
        course=45,
        satellites=7,
        valid=True,
        acc=acc,
        proto=0x12,
    )
    msg = one(gt06, frame)
    assert msg.msg_id == 0x12
    assert msg.positions[0].acc is acc


@pytest.mark.parametrize(
    ("code", "kind"),
    [
        (0x01, ALARM_SOS),
        (0x02, ALARM_POWER_CUT),
        (0x03, ALARM_VIBRATION),
        (0x09, ALARM_DISPLACEMENT),
        (0x0E, ALARM_LOW_BATTERY),
        (0x14, ALARM_CASE_OPEN),
        (0x18, ALARM_REMOVAL),
        (0x30, ALARM_FAKE_BASE_STATION),
        (0x06, ALARM_OVERSPEED),
        (0x05, ALARM_GEOFENCE),
    ],
)
@pytest.mark.parametrize("proto", [0x26, 0x16])
def test_gt06_alarm_round_trip(code, kind, proto):
    frame = f.gt06_alarm(
        9,
        fix_time=T0,
        lat=34.3,
        lon=108.8,
        speed_kmh=12,
        course=180,
        satellites=8,
        valid=True,
        acc=False,
        fuel_cut=True,
        battery_level=6,
        gsm=3,
        alarm_code=code,
        proto=proto,
    )
    msg = one(gt06, frame)
    assert (msg.type, msg.msg_id) == (POSITION, proto)
    (p,) = msg.positions
    assert p.alarms == (kind,)
    assert p.extra["alarm_code"] == code
    assert (p.acc, p.fuel_cut, p.battery_pct, p.gsm_signal) == (False, True, 100, 75)
    assert near(p.lat, 34.3) and near(p.lon, 108.8)
    assert p.cells[0].cid == f.XIAN_CELL[3]
    ack = f.parse_downlink("gt06", gt06.encode_reply(msg))
    assert (ack.kind, ack.acked_id, ack.acked_serial) == (f.ACK, proto, 9)


def test_gt06_alarm_0x27_keeps_the_fence_id():
    kw = {
        "fix_time": T0,
        "lat": 1.0,
        "lon": 2.0,
        "speed_kmh": 0,
        "course": 0,
        "satellites": 4,
        "valid": True,
    }
    msg = one(gt06, f.gt06_alarm(1, **kw, acc=True, alarm_code=0x04, fence_id=3, proto=0x27))
    assert msg.positions[0].extra["fence_id"] == 3
    assert msg.positions[0].alarms == (ALARM_GEOFENCE,)
    with pytest.raises(ValueError):
        f.gt06_alarm(1, **kw, acc=True, alarm_code=0x04, fence_id=3)


def test_gt06_command_reply_matches_traccars_sample():
    # vectors.txt GT06 0x15: "Cut off the fuel supply: Success!", serial 0x013B.
    frame = f.gt06_command_reply(0x013B, server_flag=0, text=f.gt06_reply_text(f.FUEL_CUT))
    assert frame.hex() == (
        "78782d152500000000437574206f666620746865206675656c20737570706c793a2053756363657373"
        "210002013b898a0d0a"
    )


@pytest.mark.parametrize(
    ("text", "kind", "params"),
    [
        (gt06.FUEL_CUT, f.FUEL_CUT, {}),
        (gt06.FUEL_RESTORE, f.FUEL_RESTORE, {}),
        (gt06.REBOOT, f.REBOOT, {}),
        (gt06.interval_command(60), f.SET_INTERVAL, {"seconds": 60}),
        ("DYD,000000#", f.FUEL_CUT, {}),
        ("WHERE#", f.LOCATE_NOW, {}),
        ("FOO#", None, {}),
    ],
)
@pytest.mark.parametrize("extended", [False, True])
def test_gt06_command_is_recognised_and_answered(text, kind, params, extended):
    cmd = gt06.encode_command(text, serial=0x0102, server_flag=0xDEADBEEF, language=True)
    d = f.parse_downlink("gt06", cmd)
    assert (d.kind, d.command, d.params, d.text) == (f.COMMAND, kind, params, text)
    assert (d.server_flag, d.serial) == (0xDEADBEEF, 0x0102)
    reply_text = f.gt06_reply_text(d.command, d.params)
    reply = f.gt06_command_reply(41, server_flag=d.server_flag, text=reply_text, extended=extended)
    msg = one(gt06, reply)
    assert msg.type == COMMAND_REPLY
    assert msg.text == reply_text
    assert msg.extra["server_flag"] == 0xDEADBEEF
    assert gt06.encode_reply(msg) is None  # command replies are not acked


def test_gt06_time_reply_is_understood():
    request = f._gt06_packet(0x8A, b"", 12)
    reply = gt06.encode_reply(one(gt06, request), now=T0)
    d = f.parse_downlink("gt06", reply)
    assert (d.kind, d.server_time, d.acked_serial) == (f.TIME, T0, 12)


def test_gt06_downlink_with_bad_crc_is_refused():
    ack = bytearray(gt06.encode_reply(one(gt06, f.gt06_login(IMEI, 3))))
    ack[-3] ^= 1
    with pytest.raises(FrameError):
        f.parse_downlink("gt06", bytes(ack))


def test_gt06_sticky_frames_split_back():
    a = f.gt06_login(IMEI, 1)
    b = f.gt06_heartbeat(2, acc=True)
    c = f.gt06_location(
        3, fix_time=T0, lat=1, lon=2, speed_kmh=3, course=4, satellites=5, valid=True, acc=True
    )
    assert gt06.split_frames(a + b + c) == ([a, b, c], b"", 0)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"satellites": 16},
        {"course": 360},
        {"speed_kmh": 256},
        {"lat": 91.0},
        {"fix_time": dt.datetime(2024, 1, 1)},  # naive
    ],
)
def test_gt06_location_refuses_values_the_wire_cannot_carry(kwargs):
    base = {
        "fix_time": T0,
        "lat": 1.0,
        "lon": 2.0,
        "speed_kmh": 3,
        "course": 4,
        "satellites": 5,
        "valid": True,
        "acc": True,
    }
    with pytest.raises(ValueError):
        f.gt06_location(1, **{**base, **kwargs})


# =============================================================================================
# JT/T 808


@pytest.mark.parametrize(
    ("terminal", "v2019"), [(TERMINAL, False), (TERMINAL_2019, True), ("13912345678", False)]
)
def test_jt808_register_reply_auth_chain(terminal, v2019):
    frame = f.jt808_register(
        terminal,
        0x0024,
        province=61,
        city=100,
        maker="JIMI7",
        model="VL802",
        device_id="1234567",
        plate_colour=2,
        plate="陕A12345",
        version2019=v2019,
    )
    msg = one(jt808, frame)
    assert msg.type == REGISTER
    assert msg.device_id == terminal.rjust(20 if v2019 else 12, "0")
    assert msg.extra["version"] == (2019 if v2019 else 2013)
    assert (msg.extra["province"], msg.extra["city"]) == (61, 100)
    assert (msg.extra["maker_id"], msg.extra["model"]) == ("JIMI7", "VL802")
    assert (msg.extra["terminal_id"], msg.extra["plate_color"]) == ("1234567", 2)
    assert msg.extra["plate"] == "陕A12345"
    reply = jt808.encode_reply(msg, auth_code="k3Y-9xZ", server_serial=5)
    d = f.parse_downlink("jt808", reply)
    assert (d.kind, d.acked_serial, d.result) == (f.REGISTER_REPLY, 0x0024, 0)
    code = f.jt808_parse_register_reply(reply)
    assert code == "k3Y-9xZ"
    auth = one(
        jt808,
        f.jt808_auth(
            terminal, 0x0025, code, imei=IMEI, software_version="V1.2.3", version2019=v2019
        ),
    )
    assert (auth.type, auth.text) == (AUTH, code)
    if v2019:
        assert (auth.extra["imei"], auth.extra["software_version"]) == (IMEI, "V1.2.3")
    ack = f.parse_downlink("jt808", jt808.encode_reply(auth, server_serial=6))
    assert (ack.kind, ack.acked_serial, ack.acked_id, ack.result) == (f.ACK, 0x25, 0x0102, 0)


def test_jt808_register_reply_of_traccar_sample():
    # PROTOCOLS.md 2.2: Traccar's 0x8100 to 014130567872 (seq 0x0024), auth code = the id.
    reply = bytes.fromhex("7e8100000f0141305678720000002400303134313330353637383732887e")
    assert f.jt808_parse_register_reply(reply) == "014130567872"


def test_jt808_refused_register():
    msg = one(jt808, f.jt808_register(TERMINAL, 1))
    reply = jt808.encode_reply(msg, result=4)
    with pytest.raises(f.RegisterRefused) as exc:
        f.jt808_parse_register_reply(reply)
    assert exc.value.result == 4
    with pytest.raises(FrameError):
        f.jt808_parse_register_reply(jt808.encode_reply(one(jt808, f.jt808_heartbeat(TERMINAL, 1))))


@pytest.mark.parametrize("v2019", [False, True])
def test_jt808_heartbeat_and_ack(v2019):
    terminal = TERMINAL_2019 if v2019 else TERMINAL
    msg = one(jt808, f.jt808_heartbeat(terminal, 0xB7, version2019=v2019))
    assert (msg.type, msg.device_id, msg.serial) == (HEARTBEAT, terminal, 0xB7)
    d = f.parse_downlink("jt808", jt808.encode_reply(msg, server_serial=3))
    assert (d.kind, d.serial, d.acked_serial, d.acked_id, d.result) == (f.ACK, 3, 0xB7, 2, 0)


def test_jt808_heartbeat_matches_traccar_ack_sample():
    # PROTOCOLS.md 2.2: 0x8001 to 043048325465 for heartbeat seq 0x00b7, Traccar's serial 0.
    msg = one(jt808, f.jt808_heartbeat("043048325465", 0xB7))
    assert jt808.encode_reply(msg).hex() == "7e80010005043048325465000000b70002004e7e"


LOCATION = {
    "fix_time": T0,
    "lat": 34.261234,
    "lon": 108.941234,
    "altitude_m": 412,
    "speed_kmh": 63.7,
    "course": 359,
    "acc": True,
    "valid": True,
}


def test_jt808_location_round_trip_with_items():
    frame = f.jt808_location(
        TERMINAL,
        0x10,
        **LOCATION,
        fuel_cut=True,
        alarm_word=(1 << 0) | (1 << 8) | (1 << 28),
        status_extra_bits=1 << 18,
        mileage_km=12345.6,
        csq=31,
        satellites=14,
        sleeping=False,
    )
    msg = one(jt808, frame)
    (p,) = msg.positions
    assert msg.type == POSITION
    assert p.fix_time == T0
    assert near(p.lat, 34.261234) and near(p.lon, 108.941234)
    assert (p.altitude_m, p.speed_kmh, p.course) == (412.0, pytest.approx(63.7), 359)
    assert (p.acc, p.valid, p.fuel_cut, p.sleeping, p.realtime) == (True, True, True, False, True)
    assert (p.odometer_km, p.satellites, p.gsm_signal) == (pytest.approx(12345.6), 14, 100)
    assert set(p.alarms) == {ALARM_SOS, ALARM_POWER_CUT, ALARM_DISPLACEMENT}
    assert p.extra["alarm_word"] == (1 << 0) | (1 << 8) | (1 << 28)
    assert p.extra["status_word"] & (1 << 18)
    d = f.parse_downlink("jt808", jt808.encode_reply(msg, server_serial=9))
    assert (d.kind, d.acked_serial, d.acked_id) == (f.ACK, 0x10, 0x0200)


def test_jt808_time_is_bcd_beijing_time():
    t = dt.datetime(2024, 5, 6, 23, 30, 1, tzinfo=dt.UTC)
    body = f.jt808_location_body(**{**LOCATION, "fix_time": t})
    assert body[22:28].hex() == "240507073001"  # next day 07:30:01 in Beijing
    # aware non-UTC input is converted, not reinterpreted
    local = t.astimezone(dt.timezone(dt.timedelta(hours=-5)))
    assert f.jt808_location_body(**{**LOCATION, "fix_time": local}) == body


def test_jt808_location_south_west_invalid_asleep():
    frame = f.jt808_location(
        TERMINAL,
        1,
        **{**LOCATION, "lat": -12.5, "lon": -45.25, "valid": False, "acc": False},
        sleeping=True,
        deep_sleep=True,
    )
    (p,) = one(jt808, frame).positions
    assert (p.lat, p.lon, p.valid, p.acc, p.sleeping) == (-12.5, -45.25, False, False, True)
    assert p.extra["deep_sleep"] is True


@pytest.mark.parametrize("blind", [True, False])
def test_jt808_batch_round_trip(blind):
    positions = [
        {**LOCATION, "fix_time": T0 + dt.timedelta(seconds=30 * i), "lat": 34.2 + i / 1000}
        for i in range(5)
    ]
    msg = one(jt808, f.jt808_batch(TERMINAL, 77, positions, blind_area=blind))
    assert msg.type == POSITION
    assert [p.fix_time for p in msg.positions] == [p["fix_time"] for p in positions]
    assert all(near(p.lat, q["lat"]) for p, q in zip(msg.positions, positions, strict=True))
    assert {p.realtime for p in msg.positions} == {not blind}
    assert msg.extra["batch_type"] == (1 if blind else 0)
    d = f.parse_downlink("jt808", jt808.encode_reply(msg))
    assert (d.kind, d.acked_id, d.acked_serial) == (f.ACK, 0x0704, 77)


def test_jt808_batches_split_a_long_blind_area_burst():
    positions = [
        {**LOCATION, "fix_time": T0 + dt.timedelta(seconds=10 * i), "mileage_km": i, "csq": 20}
        for i in range(100)
    ]
    with pytest.raises(ValueError):
        f.jt808_batch(TERMINAL, 1, positions)
    out = f.jt808_batches(TERMINAL, 0xFFFE, positions)
    assert len(out) > 1
    assert jt808.split_frames(b"".join(out)) == (out, b"", 0)
    msgs = [jt808.decode(x)[0] for x in out]
    assert [m.serial for m in msgs] == [(0xFFFE + i) & 0xFFFF for i in range(len(out))]
    times = [p.fix_time for m in msgs for p in m.positions]
    assert times == [p["fix_time"] for p in positions]


def test_jt808_subpackages_reassemble_on_the_server():
    positions = [
        {**LOCATION, "fix_time": T0 + dt.timedelta(seconds=i), "satellites": 9} for i in range(8)
    ]
    whole = f.jt808_batch(TERMINAL, 40, positions)
    body = jt808.decode(whole)[0]
    raw_body = f._batch_body([f.jt808_location_body(**p) for p in positions], True)
    parts = f.jt808_subpackages(0x0704, TERMINAL, 40, raw_body, part_size=100)
    got = {}
    for frame in parts:
        msg = one(jt808, frame)
        sub = msg.extra["subpackage"]
        assert (sub["total"], sub["first_serial"], sub["msg_id"]) == (len(parts), 40, 0x0704)
        got[sub["index"]] = sub["body"]
    rebuilt = jt808.reassemble(got, len(parts))
    msg = jt808.decode_body(0x0704, rebuilt, device_id=TERMINAL, serial=40)
    assert msg.positions == body.positions


def test_jt808_resend_request_is_understood():
    for v2019 in (False, True):
        terminal = TERMINAL_2019 if v2019 else TERMINAL
        req = jt808.encode_resend_request(terminal, 8, 40, [2, 5], version2019=v2019)
        d = f.parse_downlink("jt808", req)
        assert (d.kind, d.acked_serial, d.params) == (f.RESEND_REQUEST, 40, {"indexes": [2, 5]})


@pytest.mark.parametrize(
    ("kind", "params", "expected"),
    [
        ("fuel_cut", {}, {}),
        ("fuel_restore", {}, {}),
        ("reboot", {}, {}),
        ("set_interval", {"seconds": 30}, {"seconds": 30}),
    ],
)
@pytest.mark.parametrize("v2019", [False, True])
def test_jt808_command_is_recognised_and_answered(kind, params, expected, v2019):
    terminal = TERMINAL_2019 if v2019 else TERMINAL
    cmd = jt808.encode_command(kind, terminal, 0x7E7D, version2019=v2019, **params)
    d = f.parse_downlink("jt808", cmd)
    assert (d.kind, d.command, d.serial) == (f.COMMAND, kind, 0x7E7D)
    if expected:
        assert d.params == expected
    answer = f.jt808_general_response(terminal, 12, d.serial, d.msg_id, 0, version2019=v2019)
    msg = one(jt808, answer)
    assert msg.type == TERMINAL_RESPONSE
    assert (msg.extra["reply_serial"], msg.extra["reply_id"], msg.extra["result"]) == (
        0x7E7D,
        d.msg_id,
        0,
    )
    assert jt808.encode_reply(msg) is None  # the platform does not ack a terminal response


def test_jt808_locate_now_answered_with_0x0201():
    d = f.parse_downlink("jt808", jt808.locate_now(TERMINAL, 0x33))
    assert (d.kind, d.command) == (f.COMMAND, f.LOCATE_NOW)
    msg = one(jt808, f.jt808_location_reply(TERMINAL, 4, d.serial, **LOCATION))
    assert msg.type == POSITION
    assert msg.extra["reply_serial"] == 0x33
    assert msg.positions[0].fix_time == T0


def test_jt808_escaped_bytes_frame_exactly():
    # serial 0x7E7D and a 0x7E in the checksum-covered body: both escaped, one frame out.
    frame = f.jt808_general_response(TERMINAL, 0x7E7D, 0x7D7E, 0x7E7E)
    assert frame.count(b"\x7e") == 2
    msg = one(jt808, frame)
    assert (msg.serial, msg.extra["reply_serial"], msg.extra["reply_id"]) == (
        0x7E7D,
        0x7D7E,
        0x7E7E,
    )


def test_jt808_refuses_bad_terminal_ids():
    with pytest.raises(ValueError):
        f.jt808_heartbeat("0139123456789", 1)  # 13 digits in 2013
    with pytest.raises(ValueError):
        f.jt808_heartbeat("01391234567A", 1)


# =============================================================================================
# H02


def test_h02_v1_round_trip_and_ack():
    word = f.h02_status_word(acc=True)
    frame = f.h02_v1(
        H02_ID,
        fix_time=T0,
        lat=34.26,
        lon=108.94,
        speed_kmh=50,
        course=90,
        valid=True,
        status_word=word,
    )
    assert (
        frame == b"*HQ,2020916012,V1,070809,A,3415.6000,N,10856.4000,E,27.00,090,060524,FFFFFFFF#"
    )
    msg = one(h02, frame)
    (p,) = msg.positions
    assert (msg.type, msg.device_id) == (POSITION, H02_ID)
    assert (p.fix_time, p.valid, p.course, p.acc, p.fuel_cut, p.alarms) == (
        T0,
        True,
        90,
        True,
        False,
        (),
    )
    assert p.speed_kmh == pytest.approx(50, abs=1)
    reply = h02.encode_reply(msg, now=T0)
    d = f.parse_downlink("h02", reply)
    assert (d.kind, d.acked_id, d.server_time) == (f.ACK, "V1", T0)


def test_h02_default_status_word_is_traccars_idle_word():
    assert f.h02_status_word(acc=False) == 0xFFFFFBFF == f.H02_IDLE_STATUS
    (p,) = one(
        h02, f.h02_v1(H02_ID, fix_time=T0, lat=1, lon=1, speed_kmh=0, course=0, valid=False)
    ).positions
    assert (p.acc, p.fuel_cut, p.alarms, p.valid) == (False, False, (), False)


@pytest.mark.parametrize(
    ("flags", "acc", "fuel_cut", "alarms"),
    [
        ({"acc": True}, True, False, ()),
        ({"acc": False, "fuel_cut": True}, False, True, ()),
        ({"acc": True, "sos": True}, True, False, (ALARM_SOS,)),
        ({"acc": False, "power_cut": True}, False, False, (ALARM_POWER_CUT,)),
        ({"acc": False, "vibration": True}, False, False, (ALARM_VIBRATION,)),
        ({"acc": True, "overspeed": True}, True, False, (ALARM_OVERSPEED,)),
    ],
)
def test_h02_status_word_matches_the_decoder(flags, acc, fuel_cut, alarms):
    word = f.h02_status_word(**flags)
    assert h02.status_flags(word) == (acc, fuel_cut, alarms)
    frame = f.h02_v1(
        H02_ID, fix_time=T0, lat=-1, lon=-2, speed_kmh=1, course=1, valid=True, status_word=word
    )
    (p,) = one(h02, frame).positions
    assert (p.acc, p.fuel_cut, p.alarms) == (acc, fuel_cut, alarms)
    assert p.extra["status"] == word


def test_h02_coordinate_rounding_carries_into_degrees():
    frame = f.h02_v1(
        H02_ID,
        fix_time=T0,
        lat=34.999999999,
        lon=-108.9999999999,
        speed_kmh=0,
        course=0,
        valid=True,
    )
    assert b",3500.0000,N,10900.0000,W," in frame
    (p,) = one(h02, frame).positions
    assert near(p.lat, 35.0) and near(p.lon, -109.0)


@pytest.mark.parametrize("battery", [None, 87])
def test_h02_heartbeat_round_trip_and_echo(battery):
    frame = f.h02_heartbeat(H02_ID, battery_pct=battery)
    msg = one(h02, frame)
    assert (msg.type, msg.device_id, msg.battery_pct) == (HEARTBEAT, H02_ID, battery)
    reply = h02.encode_reply(msg)
    assert reply == b"*HQ,2020916012,HTBT#"
    d = f.parse_downlink("h02", reply)
    assert (d.kind, d.acked_id) == (f.ACK, "HTBT")


@pytest.mark.parametrize(
    ("encode", "kind", "params", "text"),
    [
        (lambda now: h02.fuel_cut(H02_ID, now=now), f.FUEL_CUT, {}, "S20,1,1"),
        (lambda now: h02.fuel_restore(H02_ID, now=now), f.FUEL_RESTORE, {}, "S20,1,0"),
        (lambda now: h02.set_interval(H02_ID, 30, now=now), f.SET_INTERVAL, {"seconds": 30}, None),
        (
            lambda now: h02.set_interval(H02_ID, 45, now=now, variant="S71"),
            f.SET_INTERVAL,
            {"seconds": 45},
            None,
        ),
        (lambda now: h02.reboot(H02_ID, now=now), f.REBOOT, {}, "R1"),
        (lambda now: h02.alarm_arm(H02_ID, now=now), f.ALARM_ARM, {}, "SCF,0,0"),
    ],
)
def test_h02_command_is_recognised_and_answered_with_v4(encode, kind, params, text):
    sent = dt.datetime(2024, 5, 6, 13, 3, 5, tzinfo=dt.UTC)
    d = f.parse_downlink("h02", encode(sent))
    assert (d.kind, d.command, d.params, d.command_time) == (f.COMMAND, kind, params, "130305")
    if text:
        assert d.text == text
    name = d.msg_id
    word = f.h02_status_word(acc=False, fuel_cut=kind == f.FUEL_CUT)
    reply = f.h02_v4(
        H02_ID,
        name,
        ("DONE", d.command_time),
        fix_time=T0,
        lat=34.26,
        lon=108.94,
        speed_kmh=0,
        course=0,
        valid=True,
        status_word=word,
    )
    msg = one(h02, reply)
    assert msg.type == COMMAND_REPLY
    assert msg.extra["command"] == name
    assert msg.extra["reply"] == ["DONE", "130305"]
    assert msg.positions[0].fuel_cut is (kind == f.FUEL_CUT)
    assert near(msg.positions[0].lat, 34.26)


def test_h02_traccar_command_reply_layout():
    # vectors.txt H02 V4 sample: *TH,2020916012,V4,S20,ERROR,130305,050316,A,...,F7FFFBFF#
    t = dt.datetime(2002, 9, 22, 5, 3, 16, tzinfo=dt.UTC)
    frame = f.h02_v4(
        "2020916012",
        "S20",
        ("ERROR", "130305"),
        fix_time=t,
        lat=22 + 12.8745 / 60,
        lon=113 + 46.6574 / 60,
        speed_kmh=14.28 * 1.852,
        course=28,
        valid=True,
        status_word=0xF7FFFBFF,
        maker="TH",
    )
    assert frame == (
        b"*TH,2020916012,V4,S20,ERROR,130305,050316,A,2212.8745,N,11346.6574,E,14.28,028,"
        b"220902,F7FFFBFF#"
    )


# =============================================================================================
# Properties: random valid fixes encode and decode back, for each protocol

_times = st.datetimes(
    min_value=dt.datetime(2001, 1, 1),
    max_value=dt.datetime(2098, 12, 31),
    timezones=st.just(dt.UTC),
).map(lambda t: t.replace(microsecond=0))
_lats = st.floats(min_value=-89.99, max_value=89.99, allow_nan=False)
_lons = st.floats(min_value=-179.99, max_value=179.99, allow_nan=False)
_speeds = st.floats(min_value=0, max_value=250, allow_nan=False)
_courses = st.integers(min_value=0, max_value=359)
_PROPERTY = settings(derandomize=True, max_examples=200, deadline=None)


@_PROPERTY
@given(
    t=_times,
    lat=_lats,
    lon=_lons,
    speed=_speeds,
    course=_courses,
    sats=st.integers(0, 15),
    valid=st.booleans(),
    acc=st.booleans(),
    reupload=st.booleans(),
    serial=st.integers(0, 0xFFFF),
    mileage=st.none() | st.integers(0, 0xFFFFFFFF),
)
def test_property_gt06_location(
    t, lat, lon, speed, course, sats, valid, acc, reupload, serial, mileage
):
    frame = f.gt06_location(
        serial,
        fix_time=t,
        lat=lat,
        lon=lon,
        speed_kmh=speed,
        course=course,
        satellites=sats,
        valid=valid,
        acc=acc,
        reupload=reupload,
        mileage_m=mileage,
    )
    msg = one(gt06, frame)
    (p,) = msg.positions
    assert msg.serial == serial
    assert p.fix_time == t
    assert near(p.lat, lat) and near(p.lon, lon)
    assert abs(p.speed_kmh - speed) <= 0.5
    assert (p.course, p.satellites, p.valid, p.acc, p.realtime) == (
        course,
        sats,
        valid,
        acc,
        not reupload,
    )
    assert p.odometer_km == (None if mileage is None else pytest.approx(mileage / 1000))


@_PROPERTY
@given(
    t=_times,
    lat=_lats,
    lon=_lons,
    speed=_speeds,
    course=_courses,
    altitude=st.integers(-500, 9000),
    valid=st.booleans(),
    acc=st.booleans(),
    fuel_cut=st.booleans(),
    alarm_word=st.integers(0, 0xFFFFFFFF),
    serial=st.integers(0, 0xFFFF),
    v2019=st.booleans(),
    mileage=st.none() | st.floats(min_value=0, max_value=400_000_000, allow_nan=False),
    csq=st.none() | st.integers(0, 31),
    sats=st.none() | st.integers(0, 40),
)
def test_property_jt808_location(
    t,
    lat,
    lon,
    speed,
    course,
    altitude,
    valid,
    acc,
    fuel_cut,
    alarm_word,
    serial,
    v2019,
    mileage,
    csq,
    sats,
):
    if t.year == 2098 or (t + dt.timedelta(hours=8)).year > 2099:
        t = t.replace(year=2097)
    terminal = TERMINAL_2019 if v2019 else TERMINAL
    frame = f.jt808_location(
        terminal,
        serial,
        version2019=v2019,
        fix_time=t,
        lat=lat,
        lon=lon,
        altitude_m=altitude,
        speed_kmh=speed,
        course=course,
        acc=acc,
        valid=valid,
        fuel_cut=fuel_cut,
        alarm_word=alarm_word,
        mileage_km=mileage,
        csq=csq,
        satellites=sats,
    )
    msg = one(jt808, frame)
    (p,) = msg.positions
    assert (msg.serial, msg.device_id) == (serial, terminal)
    assert p.fix_time == t
    assert near(p.lat, lat) and near(p.lon, lon)
    assert abs(p.speed_kmh - speed) <= 0.05 + 1e-9
    assert (p.course, p.altitude_m, p.valid, p.acc, p.fuel_cut) == (
        course,
        altitude,
        valid,
        acc,
        fuel_cut,
    )
    assert p.extra["alarm_word"] == alarm_word
    expected = {k for bit, _, k in jt808.ALARM_BITS if k and alarm_word >> bit & 1}
    assert set(p.alarms) == expected
    assert p.satellites == sats
    if mileage is None:
        assert p.odometer_km is None
    else:
        assert abs(p.odometer_km - mileage) <= 0.05 + 1e-6
    assert p.extra.get("csq") == csq


@_PROPERTY
@given(
    t=_times,
    lat=_lats,
    lon=_lons,
    speed=_speeds,
    course=_courses,
    valid=st.booleans(),
    acc=st.booleans(),
    fuel_cut=st.booleans(),
    sos=st.booleans(),
    power_cut=st.booleans(),
    device_id=st.from_regex(r"\A[0-9]{10,15}\Z"),
)
def test_property_h02_v1(
    t, lat, lon, speed, course, valid, acc, fuel_cut, sos, power_cut, device_id
):
    word = f.h02_status_word(acc=acc, fuel_cut=fuel_cut, sos=sos, power_cut=power_cut)
    frame = f.h02_v1(
        device_id,
        fix_time=t,
        lat=lat,
        lon=lon,
        speed_kmh=speed,
        course=course,
        valid=valid,
        status_word=word,
    )
    msg = one(h02, frame)
    (p,) = msg.positions
    assert msg.device_id == device_id
    assert p.fix_time == t
    assert near(p.lat, lat) and near(p.lon, lon)
    assert abs(p.speed_kmh - speed) <= 1
    assert (p.course, p.valid, p.acc, p.fuel_cut) == (course, valid, acc, fuel_cut)
    assert (ALARM_SOS in p.alarms, ALARM_POWER_CUT in p.alarms) == (sos, power_cut)


@_PROPERTY
@given(
    code=st.integers(0, 0xFF),
    bits=st.integers(0, 7),
    t=_times,
    lat=_lats,
    lon=_lons,
    level=st.integers(0, 6),
    gsm=st.integers(0, 4),
)
def test_property_gt06_alarm_and_status_bytes(code, bits, t, lat, lon, level, gsm):
    frame = f.gt06_alarm(
        1,
        fix_time=t,
        lat=lat,
        lon=lon,
        speed_kmh=10,
        course=10,
        satellites=5,
        valid=True,
        acc=True,
        alarm_code=code,
        alarm_bits=bits,
        battery_level=level,
        gsm=gsm,
    )
    (p,) = one(gt06, frame).positions
    assert p.fix_time == t
    assert near(p.lat, lat) and near(p.lon, lon)
    assert (p.battery_pct, p.gsm_signal) == (round(level * 100 / 6), gsm * 25)
    assert p.extra["terminal_info"] >> 3 & 7 == bits
    assert p.extra.get("alarm_code", 0) == code


# =============================================================================================
# Routes

DAY_STEPS = 24 * 3600 // 30


def drive(route: Route, steps: int = DAY_STEPS, dt_s: float = 30.0):
    return [route.step(dt_s) for _ in range(steps)]


def test_routes_are_deterministic_per_seed():
    assert drive(Route(7)) == drive(Route(7))
    assert drive(Route("car-0042")) == drive(Route("car-0042"))
    assert drive(Route(7), 600) != drive(Route(8), 600)


@pytest.mark.parametrize("seed", range(12))
def test_route_day_stays_in_xian_parks_properly_and_never_jumps(seed):
    route = Route(seed, start_time=dt.datetime(2024, 5, 6, 0, 0, tzinfo=dt.UTC))  # 08:00 local
    prev = route.position()
    fixes = drive(route)
    parked = moving = 0
    for fix in fixes:
        assert distance_m(*CENTRE, fix.lat, fix.lon) <= 25_000
        assert 0 <= fix.speed_kmh <= 70
        assert fix.course in (0, 90, 180, 270)
        jump = distance_m(prev.lat, prev.lon, fix.lat, fix.lon)
        assert jump <= fix.speed_kmh / 3.6 * 30 * 1.005 + 1.0
        if not fix.acc:
            parked += 1
            assert fix.speed_kmh == 0
            assert not fix.moving
            assert jump < 0.01  # parked: not a centimetre
        if fix.moving:
            moving += 1
            assert fix.acc and fix.speed_kmh > 0
        assert fix.odometer_m >= prev.odometer_m
        prev = fix
    assert parked > DAY_STEPS // 3  # most of a day is parked
    assert moving > 40  # and it did drive
    assert fixes[-1].odometer_m > 5_000


def test_route_sleeps_at_home_at_night():
    route = Route(3, start=(34.30, 108.90), start_time=dt.datetime(2024, 5, 6, 0, tzinfo=dt.UTC))
    home = route.home
    assert distance_m(*home, 34.30, 108.90) < 400  # snapped to the nearest intersection
    fixes = drive(route, steps=2 * DAY_STEPS)
    # Steps ending 02:00..06:00 Beijing of both nights: parked at home, ACC off.
    for i, fix in enumerate(fixes, start=1):
        local_h = (8 + i * 30 / 3600) % 24
        if 2 <= local_h < 6:
            assert not fix.acc
            assert distance_m(fix.lat, fix.lon, *home) < 1


def test_route_small_steps_also_never_jump():
    route = Route(11, start_time=dt.datetime(2024, 5, 6, 1, tzinfo=dt.UTC))
    prev = route.position()
    for i in range(20_000):
        dt_s = (1, 5, 10, 60)[i % 4]
        fix = route.step(dt_s)
        jump = distance_m(prev.lat, prev.lon, fix.lat, fix.lon)
        assert jump <= fix.speed_kmh / 3.6 * dt_s * 1.005 + 1.0
        prev = fix


def test_route_refuses_bad_steps_and_clips_far_starts():
    with pytest.raises(ValueError):
        Route(1).step(0)
    route = Route(1, start=(35.5, 110.5))  # ~170 km away: clipped into the area
    assert distance_m(*CENTRE, *route.home) <= 25_000
