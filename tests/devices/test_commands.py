"""The command-kind registry (devices/commands.py): parameters, the bytes each protocol gets,
refusals, fuel-cut safety and reply matching. Pure: no database."""

from __future__ import annotations

import datetime as dt

import pytest

from devices import commands as c
from gateway.protocols import gt06, h02, jt808
from gateway.simulator import frames as f

IMEI = "356938035643809"
TERMINAL = "013912345678"
TERMINAL_2019 = "01391234567800000001"
H02_ID = "4210051415"
NOW = dt.datetime(2026, 3, 5, 13, 3, 5, tzinfo=dt.UTC)
IDS = {"gt06": IMEI, "jt808": TERMINAL, "h02": H02_ID}


def target(protocol: str, ref: int = 7, identifier: str | None = None) -> c.Target:
    return c.Target(protocol, identifier or IDS[protocol], ref, NOW)


def x25(data: bytes) -> int:
    """CRC-16/X-25 bit by bit (reflected poly 0x8408, init and xorout 0xFFFF): independent of the
    table-driven codec."""
    crc = 0xFFFF
    for byte in data:
        crc ^= byte
        for _ in range(8):
            crc = (crc >> 1) ^ 0x8408 if crc & 1 else crc >> 1
    return crc ^ 0xFFFF


def jt808_frame(msg_id: int, phone: str, serial: int, body: bytes) -> bytes:
    """A 2013 JT808 frame built by hand: header, body, XOR, escaping."""
    head = msg_id.to_bytes(2, "big") + len(body).to_bytes(2, "big") + bytes.fromhex(phone)
    data = head + serial.to_bytes(2, "big") + body
    check = 0
    for byte in data:
        check ^= byte
    raw = data + bytes((check,))
    return b"\x7e" + raw.replace(b"\x7d", b"\x7d\x01").replace(b"\x7e", b"\x7d\x02") + b"\x7e"


# --- parameters --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kind", "params", "clean"),
    [
        ("reboot", None, {}),
        ("fuel_cut", {}, {}),
        ("set_interval", {"seconds": 5}, {"seconds": 5}),
        ("set_interval", {"seconds": 65535}, {"seconds": 65535}),
        (
            "set_mode",
            {
                "mode": "alarm_clock",
                "times": ["20:00", "08:00", "12:00", "01:00", "02:00", "03:00"],
            },
            {
                "mode": "alarm_clock",
                "times": ["01:00", "02:00", "03:00", "08:00", "12:00", "20:00"],
            },
        ),
        ("set_mode", {"mode": "deep_sleep", "days": 30}, {"mode": "deep_sleep", "days": 30}),
        ("set_mode", {"mode": "deep_sleep"}, {"mode": "deep_sleep", "days": 1}),
        (
            "set_mode",
            {"mode": "realtime"},
            {"mode": "realtime", "moving_interval_s": 30, "still_interval_s": 60},
        ),
        ("set_mode", {"mode": "vibration"}, {"mode": "vibration", "interval_s": 30}),
    ],
)
def test_good_parameters_are_normalised(kind, params, clean):
    assert c.clean_params(kind, params) == clean


@pytest.mark.parametrize(
    ("kind", "params", "message"),
    [
        ("set_interval", {"seconds": 4}, "5 to 65535"),
        ("set_interval", {"seconds": 65536}, "5 to 65535"),
        ("set_interval", {"seconds": "60"}, "5 to 65535"),
        ("set_interval", {"seconds": True}, "5 to 65535"),
        ("set_interval", {}, "5 to 65535"),
        ("set_interval", {"seconds": 60, "distance": 5}, "distance"),
        ("fuel_cut", {"now": 1}, "no parameters"),
        ("set_mode", {"mode": "turbo"}, "mode must be one of"),
        ("set_mode", {"mode": "deep_sleep", "days": 31}, "1 to 30"),
        ("set_mode", {"mode": "deep_sleep", "days": 0}, "1 to 30"),
        (
            "set_mode",
            {"mode": "alarm_clock", "times": [f"0{i}:00" for i in range(7)]},
            "1 to 6",
        ),
        ("set_mode", {"mode": "alarm_clock", "times": ["25:00"]}, "HH:MM"),
        ("reboot", [1, 2], "must be an object"),
        ("self_destruct", {}, "Unknown command"),
    ],
)
def test_bad_parameters_are_refused_with_the_reason(kind, params, message):
    with pytest.raises(ValueError, match=message):
        c.clean_params(kind, params)


# --- encoding: the bytes on the wire ---------------------------------------------------------


def test_gt06_fuel_cut_frame_bytes():
    encoded = c.encode("fuel_cut", {}, target("gt06", ref=0x00010203))
    text = b"RELAY,1#"
    # LEN = proto + cmdLen + flag(4) + text + serial(2) + crc(2)
    core = bytes((1 + 1 + 4 + len(text) + 2 + 2, 0x80, 4 + len(text)))
    core += bytes.fromhex("00010203") + text + bytes.fromhex("0203")
    expected = b"\x78\x78" + core + x25(core).to_bytes(2, "big") + b"\r\n"
    assert encoded.frame == expected
    assert encoded.match_key == f"gt06:{0x00010203}"


@pytest.mark.parametrize(
    ("kind", "params", "text"),
    [
        ("fuel_restore", {}, "RELAY,0#"),
        ("reboot", {}, "RESET#"),
        ("set_interval", {"seconds": 60}, "TIMER,60#"),
        ("locate_now", {}, "WHERE#"),
    ],
)
def test_gt06_command_texts(kind, params, text):
    encoded = c.encode(kind, params, target("gt06", ref=9))
    assert encoded.frame == gt06.encode_command(text, serial=9, server_flag=9)
    assert text.encode() in encoded.frame


@pytest.mark.parametrize(
    ("kind", "params", "msg_id", "body"),
    [
        ("fuel_cut", {}, 0x8105, "64"),
        ("fuel_restore", {}, 0x8105, "65"),
        ("reboot", {}, 0x8105, "04"),
        # 1 parameter, id 0x00000029 (default report interval), 4 bytes, 60 s
        ("set_interval", {"seconds": 60}, 0x8103, "01" + "00000029" + "04" + "0000003c"),
        ("locate_now", {}, 0x8201, ""),
    ],
)
def test_jt808_frame_bytes(kind, params, msg_id, body):
    encoded = c.encode(kind, params, target("jt808", ref=0x10007))
    # The serial is the low 16 bits of the reference.
    assert encoded.frame == jt808_frame(msg_id, TERMINAL, 0x0007, bytes.fromhex(body))
    assert encoded.match_key == f"jt808:{msg_id:04x}:7"


def test_jt808_2019_terminal_gets_a_2019_header():
    encoded = c.encode("reboot", {}, target("jt808", identifier=TERMINAL_2019))
    msg = jt808.decode(encoded.frame)[0]
    assert (msg.msg_id, msg.extra["version"], msg.device_id) == (0x8105, 2019, TERMINAL_2019)


@pytest.mark.parametrize(
    ("kind", "params", "sentence", "key"),
    [
        ("fuel_cut", {}, "*HQ,4210051415,S20,130305,1,1#", "h02:S20:130305"),
        ("fuel_restore", {}, "*HQ,4210051415,S20,130305,1,0#", "h02:S20:130305"),
        ("reboot", {}, "*HQ,4210051415,R1,130305#", "h02:R1:130305"),
        ("set_interval", {"seconds": 30}, "*HQ,4210051415,D1,130305,30#", "h02:D1:130305"),
    ],
)
def test_h02_sentences(kind, params, sentence, key):
    encoded = c.encode(kind, params, target("h02"))
    assert encoded == c.Encoded(sentence.encode(), key)


@pytest.mark.parametrize(
    ("kind", "protocol", "names"),
    [
        ("set_mode", "gt06", ["GT06", "set work mode"]),
        ("set_mode", "jt808", ["JT/T 808", "set work mode"]),
        ("set_mode", "h02", ["H02", "set work mode"]),
        ("locate_now", "h02", ["H02", "locate now"]),
    ],
)
def test_kinds_a_protocol_cannot_encode_are_refused_naming_both(kind, protocol, names):
    with pytest.raises(ValueError) as exc:
        c.encode(kind, {"mode": "realtime"} if kind == "set_mode" else {}, target(protocol))
    for name in names:
        assert name in str(exc.value)


def test_every_encoded_command_is_understood_by_a_device_and_its_answer_matches():
    """Round trip: the frame we send, read by the simulated tracker, names the right command;
    the tracker's answer, decoded by the server codec, carries our match key."""
    codecs = {"gt06": gt06, "jt808": jt808, "h02": h02}
    checked = 0
    for kind, spec in c.KINDS.items():
        params = {"seconds": 120} if kind == "set_interval" else {}
        for protocol in spec.encoders:
            encoded = c.encode(kind, params, target(protocol, ref=4242))
            down = f.parse_downlink(protocol, encoded.frame)
            assert (down.kind, down.command) == (f.COMMAND, kind), (protocol, kind)
            if kind == "set_interval":
                assert down.params["seconds"] == 120
            if protocol == "gt06":
                answer = f.gt06_command_reply(5, server_flag=down.server_flag, text="OK!")
            elif protocol == "jt808" and kind == "locate_now":
                answer = f.jt808_location_reply(
                    TERMINAL,
                    5,
                    down.serial,
                    fix_time=NOW,
                    lat=34.26,
                    lon=108.94,
                    speed_kmh=0.0,
                    course=0,
                    acc=False,
                    valid=True,
                )
            elif protocol == "jt808":
                answer = f.jt808_general_response(TERMINAL, 5, down.serial, down.msg_id)
            else:
                answer = f.h02_v4(
                    H02_ID,
                    down.msg_id,
                    ("DONE", down.command_time),
                    fix_time=NOW,
                    lat=34.26,
                    lon=108.94,
                    speed_kmh=0.0,
                    course=0,
                    valid=True,
                )
            reply = c.reply_of(codecs[protocol].decode(answer)[0])
            assert reply is not None and reply.ok
            assert reply.key == encoded.match_key, (protocol, kind)
            checked += 1
    assert checked == 14  # 5 kinds on GT06 and JT808, 4 on H02 (no locate), set_mode on none


# --- replies -----------------------------------------------------------------------------------


def test_gt06_vector_reply_is_a_success_with_flag_zero():
    # vectors.txt:32 (Traccar Gt06ProtocolDecoderTest): 0x15 "Cut off the fuel supply: Success!"
    frame = bytes.fromhex(
        "78782d152500000000437574206f666620746865206675656c20737570706c793a20537563636573732100"
        "02013b898a0d0a"
    )
    reply = c.reply_of(gt06.decode(frame)[0])
    assert reply == c.Reply("gt06:0", None, True, "Cut off the fuel supply: Success!")


def test_gt06_reply_saying_it_failed_is_a_failure():
    frame = f.gt06_command_reply(3, server_flag=77, text="Cut off the fuel supply: Fail!")
    reply = c.reply_of(gt06.decode(frame)[0])
    assert (reply.key, reply.ok) == ("gt06:77", False)


@pytest.mark.parametrize(
    ("result", "ok", "text"), [(0, True, "0 success"), (3, False, "3 not supported")]
)
def test_jt808_general_response(result, ok, text):
    frame = f.jt808_general_response(TERMINAL, 9, 7, 0x8105, result)
    assert c.reply_of(jt808.decode(frame)[0]) == c.Reply("jt808:8105:7", None, ok, text)


def test_h02_vector_reply_with_error_is_a_failure_matched_by_name_and_time():
    # vectors.txt:50 (Traccar H02ProtocolDecoderTest): the device answers S20 sent at 13:03:05.
    frame = (
        b"*TH,2020916012,V4,S20,ERROR,130305,050316,A,2212.8745,N,11346.6574,E,14.28,028,220902,"
        b"FFFFFBFF#"
    )
    reply = c.reply_of(h02.decode(frame)[0])
    assert (reply.key, reply.prefix, reply.ok) == ("h02:S20:130305", "h02:S20:", False)


def test_h02_reply_without_time_falls_back_to_the_command_name():
    reply = c.reply_of(h02.decode(b"*HQ,4210051415,V4,R1,DONE#")[0])
    assert (reply.key, reply.prefix, reply.ok) == (None, "h02:R1:", True)


def test_frames_that_are_not_replies_give_none():
    position = f.jt808_location(
        TERMINAL,
        3,
        fix_time=NOW,
        lat=34.2,
        lon=108.9,
        speed_kmh=1.0,
        course=0,
        acc=True,
        valid=True,
    )
    heartbeat = f.gt06_heartbeat(4, acc=True)
    v1 = f.h02_v1(H02_ID, fix_time=NOW, lat=34.2, lon=108.9, speed_kmh=1.0, course=0, valid=True)
    for codec, frame in ((jt808, position), (gt06, heartbeat), (h02, v1)):
        assert c.reply_of(codec.decode(frame)[0]) is None


# --- fuel-cut safety ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("speed", "age_s", "reason"),
    [
        (0.0, 0, None),
        (20.0, 300, None),  # both limits are inclusive
        (20.1, 0, "20 km/h"),
        (64.0, 10, "64 km/h"),
        (0.0, 301, "5 minutes old"),
        (0.0, 3600, "60 minutes old"),
        (None, 10, "speed is not known"),
        (0.0, None, "no known position"),
    ],
)
def test_fuel_cut_refusal(speed, age_s, reason):
    fix_at = None if age_s is None else NOW - dt.timedelta(seconds=age_s)
    got = c.fuel_cut_refusal(speed_kmh=speed, fix_at=fix_at, now=NOW)
    if reason is None:
        assert got is None
    else:
        assert reason in got


@pytest.mark.parametrize(
    ("speed", "age_s", "stopped"),
    [(5.0, 0, True), (5.1, 0, False), (0.0, 301, False), (None, 0, False), (0.0, None, False)],
)
def test_a_deferred_fuel_cut_waits_for_a_fresh_standstill(speed, age_s, stopped):
    fix_at = None if age_s is None else NOW - dt.timedelta(seconds=age_s)
    assert c.is_stopped(speed_kmh=speed, fix_at=fix_at, now=NOW) is stopped
