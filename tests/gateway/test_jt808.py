"""JT/T 808 codec: captured frames (../shared/protocols/vectors.txt), replies, framing, fuzzing.

Vector frames are written un-escaped, as vectors.txt shows them; `wire()` escapes them for the
wire. Frames built here use an independent builder (`frame()`), not the codec's encoder.
"""

from __future__ import annotations

import datetime as dt
from functools import reduce

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.protocols import jt808
from gateway.protocols.messages import (
    ALARM_DISPLACEMENT,
    ALARM_GEOFENCE,
    ALARM_LOW_BATTERY,
    ALARM_OVERSPEED,
    ALARM_POWER_CUT,
    ALARM_REMOVAL,
    ALARM_SOS,
    AUTH,
    COMMAND_REPLY,
    HEARTBEAT,
    LOGOUT,
    OTHER,
    POSITION,
    REGISTER,
    TERMINAL_RESPONSE,
    FrameError,
)

FUZZ = settings(max_examples=300, deadline=None, derandomize=True)
UTC = dt.UTC


def _xor(data: bytes) -> int:
    return reduce(lambda a, b: a ^ b, data, 0)


def _esc(data: bytes) -> bytes:
    out = bytearray()
    for b in data:
        out += b"\x7d\x01" if b == 0x7D else b"\x7d\x02" if b == 0x7E else bytes((b,))
    return bytes(out)


def wire(unescaped_hex: str) -> bytes:
    """A vectors.txt frame (shown un-escaped) as it travels on the wire."""
    raw = bytes.fromhex(unescaped_hex)
    assert raw[0] == raw[-1] == 0x7E
    return b"\x7e" + _esc(raw[1:-1]) + b"\x7e"


def frame(
    msg_id: int,
    body: bytes = b"",
    *,
    phone: str = "013912345678",
    serial: int = 1,
    v2019: bool = False,
    sub: tuple[int, int] | None = None,
    length: int | None = None,
    props_extra: int = 0,
    bad_checksum: bool = False,
) -> bytes:
    """Independent frame builder (header, body, XOR, escaping)."""
    props = (len(body) if length is None else length) | props_extra
    if v2019:
        props |= 0x4000
    if sub:
        props |= 0x2000
    head = msg_id.to_bytes(2, "big") + props.to_bytes(2, "big")
    if v2019:
        head += b"\x01" + bytes.fromhex(phone.rjust(20, "0"))
    else:
        head += bytes.fromhex(phone.rjust(12, "0"))
    head += serial.to_bytes(2, "big")
    if sub:
        head += sub[0].to_bytes(2, "big") + sub[1].to_bytes(2, "big")
    data = head + body
    check = _xor(data) ^ (1 if bad_checksum else 0)
    return b"\x7e" + _esc(data + bytes((check,))) + b"\x7e"


def location(
    *,
    alarm: int = 0,
    status: int = 0x2,
    lat: int = 34_341_568,
    lon: int = 108_939_770,
    altitude: int = 400,
    speed: int = 456,
    course: int = 90,
    time: str = "261122080000",
    items: bytes = b"",
) -> bytes:
    """A 0x0200 body: the 28 basic bytes + additional items (defaults: Xi'an, valid fix)."""
    return (
        alarm.to_bytes(4, "big")
        + status.to_bytes(4, "big")
        + lat.to_bytes(4, "big")
        + lon.to_bytes(4, "big")
        + altitude.to_bytes(2, "big", signed=True)
        + speed.to_bytes(2, "big")
        + course.to_bytes(2, "big")
        + bytes.fromhex(time)
        + items
    )


def one(frame_bytes: bytes, **kw):
    messages = jt808.decode(frame_bytes, **kw)
    assert len(messages) == 1
    return messages[0]


# ---------------------------------------------------------------------------------------------
# vectors.txt
# ---------------------------------------------------------------------------------------------

# vectors.txt line 34 (Traccar Jt808ProtocolDecoderTest): 0x0100 register, "decode() returns null"
REGISTER_FRAME = (
    "7e0100002d0141305678720024002c012f373031313142534a2d41362d424400000000000000000000003035363738"
    "373201d4c14238383838386d7e"
)
# vectors.txt line 35: 0x0002 heartbeat, "decode() returns null"
HEARTBEAT_FRAME = "7e0002000004304832546500b7ca7e"
# vectors.txt line 36: 0x0200, "returns Position passing sanity checks"
LOCATION_FRAME = (
    "7e0200002c00160128561400020000000000040001005de1f7065c6cef0000000000001701171004420104000"
    "0a9002a02000030011b3101030c7e"
)
# vectors.txt line 37: 0x0200, alarm word 0x00020000 (Traccar: "tampering", non-standard bit 17)
TAMPER_FRAME = (
    "7e02000033421030000018004c000200000004000201556dcb06c4d41d000c00f100fc21011809585301040000"
    "0000fe0140ff0c01cc000000002694000055d87a7e"
)
# vectors.txt line 38: 0x0200, Traccar "vibration" from the vendor 0xEB item
EB_FRAME = (
    "7e020000530095900689830016000000000000000b00a2394803a925f80000000000002511241151470104000000"
    "3e300115310113eb29000c00b28988228066613427450900060089ffffffff000600c5ffffffaf0004002d0fa500"
    "0300a85c257e"
)
# vectors.txt line 39: 0x0200 with OBD-style vendor items; contains a 0x7e byte (escaped on wire)
OBD_FRAME = (
    "7e0200008e01917159043700b300000000800000030158990606ca0fd70004000000002111291117050104000000"
    "00cc14383938363037423831303230393031363239363830010d8001aa81021388820200858301148401aa850218"
    "9b8601338702007e8801338901148a0200998b1131323334353637383941424344454647488c04000200a88d0200"
    "828e0114a00b50353338662c5530323966037e"
)
# vectors.txt line 40: 0x0704 batch of 4, type 1 (blind-area re-upload)
BATCH_FRAME = (
    "7E070400F30303000002450064000401003A000000000000000301618AC606C31F200000000000291805142028470"
    "10400000000EB16000C00B28986061708003732585700060089FFFFFFFE003A000000000000000301618AE806C31E"
    "B800000000009F180514202917010400000000EB16000C00B28986061708003732585700060089FFFFFFFE003A00"
    "0000000000000301618AE806C31EB800000000009F180514202947010400000000EB16000C00B289860617080037"
    "32585700060089FFFFFFFE003A000001000000080301618AE806C31EB800000000009F1805142030060104000000"
    "00EB16000C00B28986061708003732585700060089FFFFFFFED77E"
)
# vectors.txt line 41: 0x0107 terminal attributes (ICCID)
ATTRIBUTES_FRAME = (
    "7e0107004904546000563500030000584300000043354c0000000000000000000000000000000000393838373132"
    "3589883030000131882455001943354c5f56322e3620323032362f30362f30342031353a33310301f47e"
)
# vectors.txt line 42: 0x0701 with a text command answer
TEXT_REPLY_FRAME = "7e070100150120764632790008000000114d442c53455420434f4e464947204f4b21187e"
# vectors.txt line 20 cites Traccar's auth test frame; full frame from Traccar
# Jt808ProtocolDecoderTest ("7E0102000E013511221122000661757468656E7469636174696F6E3F7E").
AUTH_FRAME = "7E0102000E013511221122000661757468656E7469636174696F6E3F7E"

ALL_VECTORS = [
    REGISTER_FRAME,
    HEARTBEAT_FRAME,
    LOCATION_FRAME,
    TAMPER_FRAME,
    EB_FRAME,
    OBD_FRAME,
    BATCH_FRAME,
    ATTRIBUTES_FRAME,
    TEXT_REPLY_FRAME,
    AUTH_FRAME,
]


def test_vector_register():  # vectors.txt line 34
    msg = one(wire(REGISTER_FRAME))
    assert (msg.type, msg.msg_id, msg.device_id, msg.serial) == (
        REGISTER,
        0x0100,
        "014130567872",
        36,
    )
    assert msg.protocol == "jt808" and msg.positions == ()
    assert msg.extra["version"] == 2013
    assert msg.extra["province"] == 44 and msg.extra["city"] == 303
    assert msg.extra["maker_id"] == "70111"
    assert msg.extra["model"] == "BSJ-A6-BD"
    assert msg.extra["terminal_id"] == "0567872"
    assert msg.extra["plate_color"] == 1
    assert msg.extra["plate"] == "粤B88888"
    assert msg.frame == wire(REGISTER_FRAME)


def test_vector_heartbeat():  # vectors.txt line 35
    msg = one(wire(HEARTBEAT_FRAME))
    assert (msg.type, msg.msg_id, msg.device_id, msg.serial) == (HEARTBEAT, 2, "043048325465", 183)
    assert msg.positions == ()


def test_vector_location():  # vectors.txt line 36
    msg = one(wire(LOCATION_FRAME))
    assert (msg.type, msg.msg_id, msg.device_id, msg.serial) == (POSITION, 0x200, "001601285614", 2)
    (pos,) = msg.positions
    assert pos.fix_time == dt.datetime(2017, 1, 17, 2, 4, 42, tzinfo=UTC)  # 10:04:42 +08
    assert pos.lat == pytest.approx(6.152695, abs=1e-6)
    assert pos.lon == pytest.approx(106.720495, abs=1e-6)
    assert pos.speed_kmh == 0.0 and pos.course == 0
    assert pos.valid is False  # status 0x00040001: bit 1 (positioned) clear
    assert pos.acc is True and pos.fuel_cut is False
    assert pos.extra["alarm_word"] == 0 and pos.extra["status_word"] == 0x00040001
    assert pos.odometer_km == pytest.approx(4326.4)  # item 0x01 = 0xa900 = 43264 x 0.1 km
    assert pos.sleeping is False  # item 0x2A = 0
    assert pos.gsm_signal == round(27 * 100 / 31)  # item 0x30 = 27
    assert pos.satellites == 3  # item 0x31
    assert pos.realtime is True and pos.alarms == ()


def test_vector_tamper_bit17_is_not_an_alarm_per_standard():  # vectors.txt line 37
    # Traccar says "tampering" from bit 17 (non-standard); the standard reserves it (2013) or
    # defines a right-turn blind-spot warning (2019): no platform alarm, the raw word is kept.
    (pos,) = one(wire(TAMPER_FRAME)).positions
    assert pos.extra["alarm_word"] == 0x00020000
    assert pos.extra["alarm_names"] == ("right_turn_blind_spot_warning",)
    assert pos.alarms == ()
    assert pos.extra["status_word"] == 0x00040002 and pos.valid is True
    assert pos.lat == pytest.approx(22.375883, abs=1e-6)
    assert pos.lon == pytest.approx(113.562653, abs=1e-6)
    assert pos.speed_kmh == pytest.approx(24.1)
    assert pos.fix_time == dt.datetime(2021, 1, 18, 1, 58, 53, tzinfo=UTC)
    assert pos.extra["items"] == {"fe": "40", "ff": "01cc000000002694000055d8"}


def test_vector_vendor_eb_item_kept_raw():  # vectors.txt line 38
    (pos,) = one(wire(EB_FRAME)).positions
    assert pos.extra["status_word"] == 0x0B
    assert pos.lat == pytest.approx(10.631496, abs=1e-6)
    assert pos.lon == pytest.approx(-61.416952, abs=1e-6)  # bit 3: west
    assert pos.fix_time == dt.datetime(2025, 11, 24, 3, 51, 47, tzinfo=UTC)
    assert pos.satellites == 19 and pos.extra["csq"] == 21
    # Traccar's "vibration" comes from the vendor 0xEB sub-TLV 0x00C5: kept raw for per-model rules.
    assert pos.extra["items"]["eb"].startswith("000c00b2")
    assert pos.alarms == ()


def test_vector_obd_items_and_escaped_7e():  # vectors.txt line 39
    raw = wire(OBD_FRAME)
    assert b"\x7d\x02" in raw  # the 0x7e inside item 0x87 travels escaped
    msg = one(raw)
    assert (msg.device_id, msg.serial) == ("019171590437", 179)
    (pos,) = msg.positions
    assert pos.extra["status_word"] == 0x80000003
    assert pos.lat == pytest.approx(22.583558, abs=1e-6)
    assert pos.lon == pytest.approx(113.905623, abs=1e-6)
    assert pos.fix_time == dt.datetime(2021, 11, 29, 3, 17, 5, tzinfo=UTC)
    assert pos.extra["items"]["87"] == "007e"
    assert pos.extra["items"]["a0"] == b"P538f,U029f".hex()  # Traccar's dtcs "P538f U029f"
    assert "truncated_items" not in pos.extra


def test_vector_blind_area_batch():  # vectors.txt line 40
    msg = one(wire(BATCH_FRAME))
    assert (msg.type, msg.msg_id, msg.device_id, msg.serial) == (
        POSITION,
        0x704,
        "030300000245",
        100,
    )
    assert msg.extra["batch_type"] == 1 and msg.extra["count"] == 4
    assert len(msg.positions) == 4
    assert all(p.realtime is False for p in msg.positions)
    first = msg.positions[0]
    assert first.fix_time == dt.datetime(2018, 5, 14, 12, 28, 47, tzinfo=UTC)
    assert first.lat == pytest.approx(23.169734, abs=1e-6)
    assert first.lon == pytest.approx(113.450784, abs=1e-6)
    assert first.extra["status_word"] == 3
    last = msg.positions[-1]  # alarm 0x100 (main power cut), status bit 11 (circuit cut)
    assert last.alarms == (ALARM_POWER_CUT,)
    assert last.extra["circuit_cut"] is True and last.fuel_cut is False
    times = [p.fix_time for p in msg.positions]
    assert times == sorted(times)


def test_vector_terminal_attributes():  # vectors.txt line 41
    msg = one(wire(ATTRIBUTES_FRAME))
    assert (msg.type, msg.msg_id, msg.device_id, msg.serial) == (OTHER, 0x107, "045460005635", 3)
    assert msg.extra["iccid"] == "89883030000131882455"
    assert msg.extra["model"] == "C5L"
    assert msg.extra["firmware_version"] == "C5L_V2.6 2026/06/04 15:31"


def test_vector_text_command_reply():  # vectors.txt line 42
    msg = one(wire(TEXT_REPLY_FRAME))
    assert (msg.type, msg.msg_id, msg.device_id, msg.serial) == (
        COMMAND_REPLY,
        0x701,
        "012076463279",
        8,
    )
    assert msg.text == "MD,SET CONFIG OK!"


def test_vector_auth():  # vectors.txt line 20 (Traccar auth test frame)
    msg = one(wire(AUTH_FRAME))
    assert (msg.type, msg.device_id, msg.serial, msg.text) == (
        AUTH,
        "013511221122",
        6,
        "authentication",
    )


@pytest.mark.parametrize(
    ("request_hex", "kwargs", "reply_hex"),
    [
        # vectors.txt line 19: register -> 0x8100 (auth code = terminal id, as in Traccar)
        (
            REGISTER_FRAME,
            {"auth_code": "014130567872"},
            "7e8100000f0141305678720000002400303134313330353637383732887e",
        ),
        # vectors.txt line 20: auth -> 0x8001
        (AUTH_FRAME, {}, "7e8001000501351122112200000006010200b57e"),
        # vectors.txt line 21: heartbeat -> 0x8001
        (HEARTBEAT_FRAME, {}, "7e80010005043048325465000000b70002004e7e"),
        # vectors.txt line 22: location -> 0x8001
        (LOCATION_FRAME, {}, "7e8001000500160128561400000002020000f97e"),
    ],
    ids=["register", "auth", "heartbeat", "location"],
)
def test_ack_vectors_byte_exact(request_hex, kwargs, reply_hex):
    assert jt808.encode_reply(one(wire(request_hex)), **kwargs) == bytes.fromhex(reply_hex)


def test_ack_batch_and_server_serial():
    reply = jt808.encode_reply(one(wire(BATCH_FRAME)), server_serial=0x1234)
    msg = one(reply)  # our own encoder's output decodes (checksum, length)
    assert msg.msg_id == 0x8001 and msg.serial == 0x1234 and msg.device_id == "030300000245"
    assert msg.extra["body"] == "006407040" + "0"


@pytest.mark.parametrize("vector", ALL_VECTORS)
def test_vectors_reject_bad_checksum_unless_lenient(vector):
    raw = bytes.fromhex(vector)
    broken = raw[:-2] + bytes((raw[-2] ^ 0x01,)) + raw[-1:]
    with pytest.raises(FrameError, match="checksum"):
        jt808.decode(wire(broken.hex()))
    assert (
        jt808.decode(wire(broken.hex()), lenient=True)[0].msg_id
        == jt808.decode(wire(vector))[0].msg_id
    )


# ---------------------------------------------------------------------------------------------
# Escaping and framing
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "escaped"),
    [
        (b"\x30\x7e\x08", b"\x30\x7d\x02\x08"),
        (b"\x30\x7d\x08", b"\x30\x7d\x01\x08"),
        (b"\x7d\x02", b"\x7d\x01\x02"),  # an escape-looking sequence is itself escaped
        (b"\x7d\x01\x7e", b"\x7d\x01\x01\x7d\x02"),
        (b"\x7e\x7e\x7d\x7d", b"\x7d\x02\x7d\x02\x7d\x01\x7d\x01"),
        (b"", b""),
    ],
)
def test_escape_unescape(raw, escaped):
    assert jt808.escape(raw) == escaped
    assert jt808.unescape(escaped) == raw


@pytest.mark.parametrize("bad", [b"\x30\x7d\x03", b"\x30\x7d", b"\x7d\x7d\x01", b"\x7d\x00"])
def test_bad_escape(bad):
    with pytest.raises(FrameError, match="escape"):
        jt808.unescape(bad)
    with pytest.raises(FrameError):
        jt808.decode(b"\x7e" + bytes(12) + bad + b"\x7e")


@FUZZ
@given(st.binary(max_size=300))
def test_escape_round_trip(data):
    escaped = jt808.escape(data)
    assert b"\x7e" not in escaped
    assert jt808.unescape(escaped) == data


def test_split_sticky_partial_and_garbage():
    a, b, c = wire(HEARTBEAT_FRAME), wire(LOCATION_FRAME), wire(REGISTER_FRAME)
    frames, rest, discarded = jt808.split_frames(b"junk" + a + b + c[:10])
    assert frames == [a, b] and rest == c[:10] and discarded == 4
    frames, rest, discarded = jt808.split_frames(rest + c[10:])
    assert frames == [c] and rest == b"" and discarded == 0


def test_split_double_delimiter_starts_next_frame():
    a = wire(HEARTBEAT_FRAME)
    # "7e 7e": the empty frame is skipped, the second 7e starts the next frame
    frames, rest, discarded = jt808.split_frames(b"\x7e" + a + b"\x7e")
    assert frames == [a] and rest == b"\x7e" and discarded == 1
    frames, rest, discarded = jt808.split_frames(a + b"garbage\x7e" + a)
    # "garbage" is discarded, then "7e 7e" (garbage close + frame start): one 7e discarded
    assert frames == [a, a] and rest == b"" and discarded == len(b"garbage") + 1


def test_split_oversized_frame_is_dropped_and_stream_resyncs():
    a = wire(HEARTBEAT_FRAME)
    huge = b"\x7e" + b"\x01" * (jt808.MAX_FRAME + 10)
    # without a closing 7e: dropped as soon as it cannot be a legal frame any more
    frames, rest, discarded = jt808.split_frames(huge)
    assert frames == [] and rest == b"" and discarded == len(huge)
    # the tail of the oversized frame is garbage, its closing 7e pairs with the next start
    frames, rest, discarded = jt808.split_frames(b"\x01\x02\x7e" + a)
    assert frames == [a] and discarded == 3
    # the same in one buffer
    frames, rest, discarded = jt808.split_frames(huge + b"\x01\x02\x7e" + a)
    assert frames == [a] and discarded == len(huge) + 3


def test_split_largest_legal_frame_is_kept():
    body = b"\x7e" * jt808.MAX_BODY  # every body byte escaped
    big = frame(0x0900, body, v2019=True, sub=(2, 1))
    assert len(big) <= jt808.MAX_FRAME
    frames, rest, discarded = jt808.split_frames(big)
    assert frames == [big] and discarded == 0
    assert one(big).extra["subpackage"]["body"] == body


# ---------------------------------------------------------------------------------------------
# Header checks, versions, sub-packages
# ---------------------------------------------------------------------------------------------


def test_wrong_body_length():
    with pytest.raises(FrameError, match="length"):
        jt808.decode(frame(0x0002, b"", length=3))
    with pytest.raises(FrameError, match="length"):
        jt808.decode(frame(0x0200, location(), length=27))


@pytest.mark.parametrize(
    "bad",
    [b"", b"\x7e", b"\x7e\x7e", b"\x7e\x00\x02\x7e", b"\x00" * 20, b"\x7e" + bytes(20)],
)
def test_short_or_undelimited_frames(bad):
    with pytest.raises(FrameError):
        jt808.decode(bad)


def test_encrypted_body_is_refused():
    with pytest.raises(FrameError, match="encrypted"):
        jt808.decode(frame(0x0200, location(), props_extra=0x0400))


def test_2019_header_20_digit_id_and_reply():
    msg = one(frame(0x0002, phone="12345678901234567890", serial=9, v2019=True))
    assert msg.type == HEARTBEAT and msg.device_id == "12345678901234567890"
    assert msg.extra["version"] == 2019 and msg.extra["protocol_version"] == 1
    reply = jt808.encode_reply(msg)
    expected = bytes.fromhex(
        "8001" + "4005" + "01" + "12345678901234567890" + "0000"
    ) + bytes.fromhex("0009" + "0002" + "00")
    assert reply == b"\x7e" + _esc(expected + bytes((_xor(expected),))) + b"\x7e"
    assert one(reply).device_id == "12345678901234567890"


def test_2019_leading_zeros_kept():
    msg = one(frame(0x0002, phone="00000000013912345678", v2019=True))
    assert msg.device_id == "00000000013912345678"
    assert one(frame(0x0002, phone="001601285614")).device_id == "001601285614"


def test_2019_register_and_auth():
    body = (
        (61).to_bytes(2, "big")
        + (100).to_bytes(2, "big")
        + b"MAKER".ljust(11, b"\x00")
        + b"MODEL-2019".ljust(30, b"\x00")
        + b"TERM123".ljust(30, b"\x00")
        + b"\x01"
        + "陕A12345".encode("gbk")
    )
    msg = one(frame(0x0100, body, phone="00000000013912345678", serial=3, v2019=True))
    assert msg.type == REGISTER and msg.extra["version"] == 2019
    assert (msg.extra["maker_id"], msg.extra["model"], msg.extra["terminal_id"]) == (
        "MAKER",
        "MODEL-2019",
        "TERM123",
    )
    assert msg.extra["plate"] == "陕A12345"
    reply = jt808.encode_reply(msg, auth_code="S3CRET")
    inner = bytes.fromhex("8100" + "4009" + "01" + "00000000013912345678" + "0000" + "000300")
    inner += b"S3CRET"
    assert reply == b"\x7e" + _esc(inner + bytes((_xor(inner),))) + b"\x7e"

    auth = b"\x06S3CRET" + b"861234567890123" + b"V1.0.2".ljust(20, b"\x00")
    msg = one(frame(0x0102, auth, phone="00000000013912345678", v2019=True))
    assert msg.type == AUTH and msg.text == "S3CRET"
    assert msg.extra["imei"] == "861234567890123" and msg.extra["software_version"] == "V1.0.2"
    # a device that sets the 2019 flag but sends a 2013 auth body
    assert one(frame(0x0102, b"S3CRET", v2019=True)).text == "S3CRET"


def test_2011_register_layout():
    body = (
        bytes(4)
        + b"ABCDE"
        + b"M2011".ljust(8, b"\x00")
        + b"T000001"
        + b"\x02"
        + "京A1".encode("gbk")
    )
    msg = one(frame(0x0100, body))
    assert msg.extra["version"] == 2011
    assert (msg.extra["model"], msg.extra["terminal_id"], msg.extra["plate"]) == (
        "M2011",
        "T000001",
        "京A1",
    )
    with pytest.raises(FrameError):
        jt808.decode(frame(0x0100, body[:20]))


def test_register_reply_needs_auth_code_unless_refused():
    msg = one(wire(REGISTER_FRAME))
    with pytest.raises(ValueError):
        jt808.encode_reply(msg)
    refused = jt808.encode_reply(msg, result=4)  # 4: terminal not in the database
    assert refused == frame(0x8100, b"\x00\x24\x04", phone="014130567872", serial=0)


def test_subpackages_reassemble_missing_and_resend_request():
    batch = (
        (2).to_bytes(2, "big")
        + b"\x01"
        + (28).to_bytes(2, "big")
        + location(time="260101000000")
        + (28).to_bytes(2, "big")
        + location(time="260101000100")
    )
    parts_bytes = [batch[:20], batch[20:50], batch[50:]]
    msgs = [
        one(frame(0x0704, part, serial=0x10 + i, sub=(3, i + 1)))
        for i, part in enumerate(parts_bytes)
    ]
    for i, msg in enumerate(msgs):
        assert msg.type == OTHER and msg.msg_id == 0x0704 and msg.positions == ()
        sub = msg.extra["subpackage"]
        assert (sub["total"], sub["index"], sub["msg_id"]) == (3, i + 1, 0x0704)
        assert sub["first_serial"] == 0x10 and sub["body"] == parts_bytes[i]
        # each part is answered for itself (0x8001 with its own serial)
        assert one(jt808.encode_reply(msg)).extra["body"] == f"{0x10 + i:04x}070400"

    parts = {1: parts_bytes[0], 3: parts_bytes[2]}
    assert jt808.reassemble(parts, 3) is None
    assert jt808.missing(parts, 3) == [2]
    request = jt808.encode_resend_request("013912345678", 5, 0x10, jt808.missing(parts, 3))
    assert request == frame(0x8003, bytes.fromhex("0010" + "01" + "0002"), serial=5)
    parts[2] = parts_bytes[1]
    assert jt808.missing(parts, 3) == []
    body = jt808.reassemble(parts, 3)
    assert body == batch
    whole = jt808.decode_body(0x0704, body, device_id=msgs[0].device_id, serial=0x10)
    assert whole.type == POSITION and len(whole.positions) == 2
    assert all(not p.realtime for p in whole.positions)


def test_resend_request_bytes():
    assert jt808.encode_resend_request("013912345678", 5, 0x10, [2, 3]) == bytes.fromhex(
        "7e80030007013912345678000500100200020003a27e"
    )
    assert jt808.encode_resend_request(
        "13912345678", 5, 0x10, [2, 3], version2019=True
    ) == bytes.fromhex("7e80034008010000000001391234567800050010000200020003ec7e")


def test_single_part_subpackage_decodes_directly():
    msg = one(frame(0x0200, location(), sub=(1, 1)))
    assert msg.type == POSITION and len(msg.positions) == 1


@pytest.mark.parametrize("sub", [(0, 0), (2, 0), (2, 3)])
def test_bad_subpackage_numbers(sub):
    with pytest.raises(FrameError):
        jt808.decode(frame(0x0200, location(), sub=sub))


# ---------------------------------------------------------------------------------------------
# 0x0200 semantics
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("bcd", "utc"),
    [
        ("261122080000", dt.datetime(2026, 11, 22, 0, 0, 0, tzinfo=UTC)),
        ("260101030000", dt.datetime(2025, 12, 31, 19, 0, 0, tzinfo=UTC)),  # day rolls back
        ("240229235959", dt.datetime(2024, 2, 29, 15, 59, 59, tzinfo=UTC)),
    ],
)
def test_beijing_time_to_utc(bcd, utc):
    (pos,) = one(frame(0x0200, location(time=bcd))).positions
    assert pos.fix_time == utc and pos.fix_time.utcoffset() == dt.timedelta(0)


@pytest.mark.parametrize("bcd", ["000000000000", "261322080000", "260230000000", "2611220800a0"])
def test_invalid_time(bcd):
    with pytest.raises(FrameError, match="time"):
        jt808.decode(frame(0x0200, location(time=bcd)))


@pytest.mark.parametrize(
    ("status", "lat", "lon"),
    [(0x2, 34.341568, 108.93977), (0x6, -34.341568, 108.93977), (0xA, 34.341568, -108.93977)]
    + [(0xE, -34.341568, -108.93977)],
)
def test_hemisphere_signs(status, lat, lon):
    (pos,) = one(frame(0x0200, location(status=status))).positions
    assert pos.lat == pytest.approx(lat, abs=1e-9) and pos.lon == pytest.approx(lon, abs=1e-9)
    assert pos.speed_kmh == pytest.approx(45.6) and pos.course == 90 and pos.altitude_m == 400


def test_status_bits():
    (pos,) = one(frame(0x0200, location(status=0x0403))).positions
    assert pos.acc is True and pos.valid is True and pos.fuel_cut is True
    assert pos.extra["circuit_cut"] is False
    (pos,) = one(frame(0x0200, location(status=0x0800))).positions
    assert pos.acc is False and pos.valid is False and pos.fuel_cut is False
    assert pos.extra["circuit_cut"] is True


@pytest.mark.parametrize(
    ("bit", "kind"),
    [
        (0, ALARM_SOS),
        (1, ALARM_OVERSPEED),
        (5, ALARM_REMOVAL),
        (7, ALARM_LOW_BATTERY),
        (8, ALARM_POWER_CUT),
        (20, ALARM_GEOFENCE),
        (21, ALARM_GEOFENCE),
        (28, ALARM_DISPLACEMENT),
    ],
)
def test_alarm_word_mapped_bits(bit, kind):
    (pos,) = one(frame(0x0200, location(alarm=1 << bit))).positions
    assert pos.alarms == (kind,)
    assert pos.extra["alarm_word"] == 1 << bit
    assert pos.extra["alarm_names"] == (jt808.ALARM_BITS[bit][1],)


@pytest.mark.parametrize("bit", [2, 3, 4, 6, 15, 16, 17, 18, 19, 26, 29, 30, 31])
def test_alarm_word_unmapped_bits(bit):
    (pos,) = one(frame(0x0200, location(alarm=1 << bit))).positions
    assert pos.alarms == ()
    assert pos.extra["alarm_names"] == (jt808.ALARM_BITS[bit][1],)


def test_alarm_word_several_bits_deduplicated():
    word = (1 << 0) | (1 << 20) | (1 << 21) | (1 << 8)
    (pos,) = one(frame(0x0200, location(alarm=word))).positions
    assert pos.alarms == (ALARM_SOS, ALARM_POWER_CUT, ALARM_GEOFENCE)


def test_alarm_table_is_complete():
    assert [bit for bit, _, _ in jt808.ALARM_BITS] == list(range(32))


def test_additional_items():
    items = (
        bytes.fromhex("0104000004d2")  # 0x01 mileage 1234 x 0.1 km
        + bytes.fromhex("02020190")  # 0x02 fuel 40.0 L
        + bytes.fromhex("030201c8")  # 0x03 recorder speed 45.6 km/h
        + bytes.fromhex("250400000003")  # 0x25 extended signals
        + bytes.fromhex("2a020002")  # 0x2A IO: bit 1 sleep
        + bytes.fromhex("2b04000a0014")  # 0x2B AD1=10, AD0=20
        + bytes.fromhex("30011f")  # 0x30 CSQ 31
        + bytes.fromhex("31010c")  # 0x31 12 satellites
        + bytes.fromhex("e103aabbcc")  # vendor
    )
    (pos,) = one(frame(0x0200, location(items=items))).positions
    assert pos.odometer_km == pytest.approx(123.4)
    assert pos.extra["fuel_l"] == pytest.approx(40.0)
    assert pos.extra["recorder_speed_kmh"] == pytest.approx(45.6)
    assert pos.extra["ext_signal_status"] == 3
    assert pos.sleeping is True and pos.extra["deep_sleep"] is False
    assert (pos.extra["ad0"], pos.extra["ad1"]) == (20, 10)
    assert pos.gsm_signal == 100 and pos.extra["csq"] == 31
    assert pos.satellites == 12
    assert pos.extra["items"] == {"e1": "aabbcc"}


@pytest.mark.parametrize(("io", "sleeping", "deep"), [(0, False, False), (1, True, True)])
def test_io_status_sleep(io, sleeping, deep):
    items = bytes.fromhex("2a02") + io.to_bytes(2, "big")
    (pos,) = one(frame(0x0200, location(items=items))).positions
    assert pos.sleeping is sleeping and pos.extra["deep_sleep"] is deep


def test_signal_unknown_csq():
    (pos,) = one(frame(0x0200, location(items=bytes.fromhex("300163")))).positions
    assert pos.gsm_signal is None and pos.extra["csq"] == 99


@pytest.mark.parametrize(
    "tail",
    [bytes.fromhex("31"), bytes.fromhex("3102"), bytes.fromhex("01040000")],
    ids=["id-only", "len-past-end", "short-value"],
)
def test_truncated_item_keeps_position(tail):
    items = bytes.fromhex("30010f") + tail
    (pos,) = one(frame(0x0200, location(items=items))).positions
    assert pos.extra["truncated_items"] is True
    assert pos.extra["csq"] == 15  # decoded before the truncated item
    assert pos.lat == pytest.approx(34.341568)


def test_wrong_size_known_item_kept_raw():
    (pos,) = one(frame(0x0200, location(items=bytes.fromhex("010200ff")))).positions
    assert pos.odometer_km is None and pos.extra["items"] == {"01": "00ff"}


def test_short_location_body():
    with pytest.raises(FrameError):
        jt808.decode(frame(0x0200, location()[:27]))


def test_out_of_range_coordinates_flagged_invalid():
    (pos,) = one(frame(0x0200, location(lat=95_000_000))).positions
    assert pos.valid is False and pos.extra["coords_out_of_range"] is True


def test_batch_normal_is_realtime_and_bad_item_skipped():
    good = location()
    body = (
        (3).to_bytes(2, "big")
        + b"\x00"
        + (28).to_bytes(2, "big")
        + good
        + (28).to_bytes(2, "big")
        + location(time="261399000000")  # invalid date: this item only is dropped
        + (28).to_bytes(2, "big")
        + good
    )
    msg = one(frame(0x0704, body))
    assert len(msg.positions) == 2 and all(p.realtime for p in msg.positions)
    assert msg.extra["bad_items"] == 1


def test_batch_truncated_item_keeps_earlier_positions():
    body = (2).to_bytes(2, "big") + b"\x01" + (28).to_bytes(2, "big") + location() + b"\x00\x30"
    msg = one(frame(0x0704, body + bytes(5)))
    assert len(msg.positions) == 1 and msg.extra["truncated_items"] is True


def test_position_query_reply_and_vehicle_control_reply():
    msg = one(frame(0x0201, b"\x00\x07" + location()))
    assert msg.type == POSITION and msg.extra["reply_serial"] == 7 and len(msg.positions) == 1
    assert jt808.encode_reply(msg) == frame(0x8001, bytes.fromhex("0001020100"), serial=0)
    msg = one(frame(0x0500, b"\x00\x08" + location(status=0x402)))
    assert msg.type == COMMAND_REPLY and msg.positions[0].fuel_cut is True


# ---------------------------------------------------------------------------------------------
# Other uplink messages and replies
# ---------------------------------------------------------------------------------------------


def test_terminal_response_not_answered():
    msg = one(frame(0x0001, bytes.fromhex("0007810500"), serial=3))
    assert msg.type == TERMINAL_RESPONSE
    assert (msg.extra["reply_serial"], msg.extra["reply_id"], msg.extra["result"]) == (
        7,
        0x8105,
        0,
    )
    assert jt808.encode_reply(msg) is None
    with pytest.raises(FrameError):
        jt808.decode(frame(0x0001, b"\x00\x07"))


def test_logout_and_unknown_ids_are_acked():
    msg = one(frame(0x0003, serial=0x21))
    assert msg.type == LOGOUT
    assert jt808.encode_reply(msg) == frame(0x8001, bytes.fromhex("0021000300"), serial=0)
    msg = one(frame(0x0900, b"\xf0\x01\x02", serial=0x22))
    assert msg.type == OTHER and msg.extra["body"] == "f00102"
    assert jt808.encode_reply(msg) == frame(0x8001, bytes.fromhex("0022090000"), serial=0)


def test_encode_reply_ignores_foreign_messages():
    msg = one(wire(HEARTBEAT_FRAME))
    from dataclasses import replace

    assert jt808.encode_reply(replace(msg, protocol="gt06")) is None


# ---------------------------------------------------------------------------------------------
# Downlink commands
# ---------------------------------------------------------------------------------------------


def test_command_bytes():
    dev = "013912345678"
    assert jt808.fuel_cut(dev, 7, True) == bytes.fromhex("7e81050001013912345678000764d67e")
    assert jt808.fuel_cut(dev, 8, False) == bytes.fromhex("7e81050001013912345678000865d87e")
    assert jt808.reboot(dev, 9) == bytes.fromhex("7e81050001013912345678000904b87e")
    assert jt808.set_interval(dev, 10, 30) == bytes.fromhex(
        "7e8103000a013912345678000a0100000029040000001e807e"
    )
    assert jt808.locate_now(dev, 11) == bytes.fromhex("7e82010000013912345678000bb87e")
    assert jt808.encode_command("fuel_cut", dev, 7) == jt808.fuel_cut(dev, 7, True)
    assert jt808.encode_command("fuel_restore", dev, 8) == jt808.fuel_cut(dev, 8, False)
    assert jt808.encode_command("set_interval", dev, 10, seconds=30) == jt808.set_interval(
        dev, 10, 30
    )
    assert jt808.encode_command("reboot", dev, 9) == jt808.reboot(dev, 9)
    assert jt808.encode_command("locate_now", dev, 11) == jt808.locate_now(dev, 11)
    with pytest.raises(ValueError):
        jt808.encode_command("set_mode", dev, 1)


@pytest.mark.parametrize("seconds", [0, 4, 65536])
def test_set_interval_validation(seconds):
    with pytest.raises(ValueError):
        jt808.set_interval("013912345678", 1, seconds)


def test_encode_message_escapes_and_checks():
    out = jt808.encode_message(0x8300, "013912345678", 0x7E7D, b"\x7e\x7d")
    assert out.count(b"\x7e") == 2
    msg = one(out)
    assert msg.serial == 0x7E7D and msg.extra["body"] == "7e7d"
    with pytest.raises(ValueError):
        jt808.encode_message(0x8300, "0139123456789", 1)  # 13 digits in a 2013 header
    with pytest.raises(ValueError):
        jt808.encode_message(0x8300, "013912345678", 1, bytes(1024))
    v19 = jt808.encode_message(0x8105, "13912345678", 1, b"\x04", version2019=True)
    assert one(v19).device_id == "00000000013912345678"


# ---------------------------------------------------------------------------------------------
# Property-based: bad input never hurts
# ---------------------------------------------------------------------------------------------

VALID_FRAMES = [wire(v) for v in ALL_VECTORS]
# garbage, empty frames, a stray escape, and frames one byte over / exactly at the limit
NOISE = [
    b"\x7e",
    b"\x7e\x7e",
    b"junk",
    b"\x7d",
    b"\x7e" + bytes(jt808.MAX_FRAME - 1),  # + a closing 7e: one byte too long
    b"\x7e" + bytes(jt808.MAX_FRAME - 2),  # + a closing 7e: exactly MAX_FRAME
]
MSG_IDS = [0x0001, 0x0002, 0x0003, 0x0100, 0x0102, 0x0107, 0x0200, 0x0201, 0x0500, 0x0701, 0x0704]


def _decode_or_frame_error(raw: bytes, *, lenient: bool = False) -> list:
    """Decode; a FrameError is fine (-> []), any other exception fails the test."""
    try:
        messages = jt808.decode(raw, lenient=lenient)
    except FrameError:
        return []
    assert all(m.protocol == "jt808" for m in messages)
    return messages


@FUZZ
@given(st.binary(max_size=3000))
def test_fuzz_split_accounts_for_every_byte(buf):
    frames, rest, discarded = jt808.split_frames(buf)
    assert sum(len(f) for f in frames) + len(rest) + discarded == len(buf)
    assert all(f[0] == f[-1] == 0x7E and len(f) >= 3 for f in frames)
    for f in frames:
        _decode_or_frame_error(f)
        _decode_or_frame_error(f, lenient=True)


@FUZZ
@given(
    st.lists(st.sampled_from(VALID_FRAMES + NOISE), max_size=8),
    st.lists(st.integers(min_value=1, max_value=200), min_size=1, max_size=20),
)
def test_fuzz_chunked_feeding_equals_whole(pieces, cuts):
    buf = b"".join(pieces)
    whole = jt808.split_frames(buf)
    frames: list[bytes] = []
    discarded = 0
    rest = b""
    pos = 0
    i = 0
    while pos < len(buf):
        size = cuts[i % len(cuts)]
        i += 1
        got, rest, dropped = jt808.split_frames(rest + buf[pos : pos + size])
        frames += got
        discarded += dropped
        pos += size
    assert (frames, rest, discarded) == whole


@FUZZ
@given(
    st.sampled_from(VALID_FRAMES),
    st.integers(min_value=0, max_value=10_000),
    st.integers(min_value=0, max_value=255),
    st.booleans(),
)
def test_fuzz_mutated_vectors_only_frame_error(raw, where, value, lenient):
    i = where % len(raw)
    mutated = raw[:i] + bytes((value,)) + raw[i + 1 :]
    _decode_or_frame_error(mutated, lenient=lenient)
    _decode_or_frame_error(raw[:i] + raw[-1:], lenient=lenient)  # truncated, closing 7e kept
    _decode_or_frame_error(raw[:i], lenient=lenient)
    for f in jt808.split_frames(mutated)[0]:
        _decode_or_frame_error(f, lenient=lenient)


@FUZZ
@given(
    st.sampled_from(MSG_IDS),
    st.binary(max_size=200),
    st.booleans(),
    st.booleans(),
)
def test_fuzz_valid_framing_random_bodies(msg_id, body, v2019, with_location):
    if with_location:
        body = location() + body
    raw = frame(msg_id, body, v2019=v2019)
    for m in _decode_or_frame_error(raw):
        reply = jt808.encode_reply(m, auth_code="x")
        assert reply is None or _decode_or_frame_error(reply)
