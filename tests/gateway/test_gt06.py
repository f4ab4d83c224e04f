"""GT06 codec: the sample frames of shared/protocols/vectors.txt, framing, replies, commands and
property-based fuzzing. Pure functions: no database."""

from __future__ import annotations

import dataclasses
import datetime as dt
import random
import re
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.protocols import gt06
from gateway.protocols.messages import (
    ALARM_CASE_OPEN,
    ALARM_DISPLACEMENT,
    ALARM_FAKE_BASE_STATION,
    ALARM_GEOFENCE,
    ALARM_KINDS,
    ALARM_LOW_BATTERY,
    ALARM_OVERSPEED,
    ALARM_POWER_CUT,
    ALARM_REMOVAL,
    ALARM_SOS,
    ALARM_VIBRATION,
    COMMAND_REPLY,
    HEARTBEAT,
    LOGIN,
    OTHER,
    POSITION,
    STATUS,
    TIME_REQUEST,
    Cell,
    FrameError,
    Message,
    Position,
)

UTC = dt.UTC
PROPS = settings(max_examples=300, deadline=None, derandomize=True)
VECTORS = Path(__file__).resolve().parents[3] / "shared" / "protocols" / "vectors.txt"


# --- helpers (independent of the codec) -------------------------------------------------------


def crc_reference(data: bytes) -> int:
    """Bit-by-bit CRC-16/X-25: reflected poly 0x8408, init 0xFFFF, xorout 0xFFFF."""
    crc = 0xFFFF
    for byte in data:
        crc ^= byte
        for _ in range(8):
            crc = (crc >> 1) ^ 0x8408 if crc & 1 else crc >> 1
    return crc ^ 0xFFFF


def build(proto: int, content: bytes = b"", serial: int = 1, *, extended: bool = False) -> bytes:
    """A well-formed frame with a correct CRC."""
    length = 5 + len(content)
    head = b"\x79\x79" + length.to_bytes(2, "big") if extended else b"\x78\x78" + bytes([length])
    core = head[2:] + bytes([proto]) + content + serial.to_bytes(2, "big")
    return head[:2] + core + crc_reference(core).to_bytes(2, "big") + b"\r\n"


def gps_block(
    when: tuple[int, ...] = (24, 5, 17, 8, 30, 15),
    *,
    sats: int = 7,
    lat: float = 34.26,
    lon: float = 108.94,
    speed: int = 42,
    course: int = 123,
    north: bool = True,
    west: bool = False,
    valid: bool = True,
    acc: bool | None = None,
) -> bytes:
    flags = course
    flags |= 0x0400 if north else 0
    flags |= 0x0800 if west else 0
    flags |= 0x1000 if valid else 0
    if acc is not None:
        flags |= 0x4000 | (0x8000 if acc else 0)
    return (
        bytes(when)
        + bytes([0xC0 | sats])
        + round(abs(lat) * 1_800_000).to_bytes(4, "big")
        + round(abs(lon) * 1_800_000).to_bytes(4, "big")
        + bytes([speed])
        + flags.to_bytes(2, "big")
    )


LBS = bytes.fromhex("01CC00287D001F71")  # MCC 460, MNC 0, LAC 10365, CID 8049


def status_block(info: int = 0x02, level: int = 6, gsm: int = 4, alarm: int = 0) -> bytes:
    return bytes([info, level, gsm, alarm, 0x02])  # ... + language


def one(frame: bytes, **kw) -> Message:
    messages = gt06.decode(frame, **kw)
    assert len(messages) == 1
    msg = messages[0]
    assert msg.protocol == "gt06"
    assert msg.frame == frame
    return msg


# --- the sample frames of vectors.txt -----------------------------------------------------------

# Every GT06 frame of ../shared/protocols/vectors.txt, with its source line.
LOGIN_1 = "78780D01086471700328358100093F040D0A"  # vectors.txt:15 (GT06-ACK) and :25 (GT06)
LOGIN_2 = "787811010864717003664467100f190a0002c6d20d0a"  # vectors.txt:16 (GT06-ACK)
STATUS_1 = "78780a13c40604000201298f5b0d0a"  # vectors.txt:17 (GT06-ACK)
LOC_12 = (  # vectors.txt:18 (GT06-ACK, abbreviated there) and :26 (GT06)
    "78781f120f0a140e150bc505e51e780293a9e800540000f601006e0055da00035f240d0a"
)
LOC_22 = "787822220F0C1D023305C9027AC8180C46586000140001CC00287D001F71000001000820860D0A"  # :27
ALARM_16 = (  # vectors.txt:28
    "78782516160908063736c0006e70110442fc800000000800000000000000000300002512000473fb0d0a"
)
FENCE_A4 = (  # vectors.txt:29
    "78782da41a0509160203cf05be31f80c306530001c0010012ed000007ef40000000006428b074205041302ff"
    "0009389c0d0a"
)
ALARM_95 = "78780c95130a0209321c90000112800d0a"  # vectors.txt:30
STATUS_2 = "78780a13440604000201baaf540d0a"  # vectors.txt:31
STRING_15 = (  # vectors.txt:32
    "78782d152500000000437574206f666620746865206675656c20737570706c793a2053756363657373210002"
    "013b898a0d0a"
)
LBS_28 = (  # vectors.txt:33
    "78783B2810010D02020201CC00287D001F713E287D001F7231287D001E232D287D001F401800000000000000"
    "0000000000000000000000FF00020005B14B0D0A"
)
ALL_VECTORS = [
    LOGIN_1,
    LOGIN_2,
    STATUS_1,
    LOC_12,
    LOC_22,
    ALARM_16,
    FENCE_A4,
    ALARM_95,
    STATUS_2,
    STRING_15,
    LBS_28,
]
VALID_FRAMES = [bytes.fromhex(h) for h in ALL_VECTORS]


@pytest.mark.skipif(not VECTORS.exists(), reason="shared/protocols/vectors.txt not present")
def test_every_gt06_frame_of_the_vectors_file_is_covered():
    frames = set()
    for line in VECTORS.read_text().splitlines():
        if line.startswith("GT06 |"):
            frames.add(line.split("|")[1].strip().lower())
        elif line.startswith("GT06-ACK |"):
            # "GT06-ACK | <label> <frame> [(notes)] -> <reply>": abbreviated frames contain "..."
            request = line.split("|")[1].split("->")[0]
            frames.update(
                f.lower()
                for f in re.findall(r"\b(?:7878|7979)[0-9A-Fa-f.]+", request)
                if "..." not in f
            )
    assert frames == {h.lower() for h in ALL_VECTORS}


@pytest.mark.parametrize(
    ("frame", "reply"),
    [
        (LOGIN_1, "78780501000955940d0a"),  # vectors.txt:15
        (LOGIN_2, "787805010002eb470d0a"),  # vectors.txt:16
        (STATUS_1, "7878051301295d630d0a"),  # vectors.txt:17
        (LOC_12, "787805120003903f0d0a"),  # vectors.txt:18
    ],
)
def test_ack_lines_are_byte_exact(frame, reply):
    msg = one(bytes.fromhex(frame))
    assert gt06.encode_reply(msg) == bytes.fromhex(reply)


def test_login_vector_line_25():
    # vectors.txt:25 "decode() returns null || type=0x01 serial=0x0009 ... IMEI=864717003283581"
    msg = one(bytes.fromhex(LOGIN_1))
    assert msg.type == LOGIN
    assert msg.msg_id == 0x01
    assert msg.device_id == "864717003283581"
    assert msg.serial == 0x0009
    assert msg.positions == ()
    assert "type_id" not in msg.extra  # LEN 0x0D: IMEI only


def test_login_with_type_id_and_timezone_line_16():
    # vectors.txt:16: type id 0x100F, extension 0x190A = 4:00, bit 3 set = west
    msg = one(bytes.fromhex(LOGIN_2))
    assert msg.device_id == "864717003664467"
    assert msg.serial == 0x0002
    assert msg.extra["type_id"] == 0x100F
    assert msg.extra["timezone_ext"] == 0x190A
    assert msg.extra["tz_offset_min"] == -240


def test_login_east_timezone():
    msg = one(build(0x01, bytes.fromhex("0864717003283581") + b"\x00\x01" + b"\x32\x00"))
    assert msg.extra["tz_offset_min"] == 8 * 60  # 0x3200 >> 4 = 800 -> 8:00, bit 3 clear: east


def test_login_rejects_non_bcd_imei():
    with pytest.raises(FrameError):
        gt06.decode(build(0x01, bytes.fromhex("0A64717003283581")))


def test_status_line_17():
    # vectors.txt:17: terminal info 0xC4 => charge, blocked (bit 7 fuel cut), no ignition;
    # voltage level 6 => battery 100; GSM 4
    msg = one(bytes.fromhex(STATUS_1))
    assert msg.type == HEARTBEAT
    assert msg.msg_id == 0x13
    assert msg.serial == 0x0129
    assert msg.device_id is None
    assert msg.acc is False
    assert msg.fuel_cut is True
    assert msg.extra["charging"] is True
    assert msg.battery_pct == 100
    assert msg.gsm_signal == 100
    assert msg.alarms == ()
    assert msg.positions == ()


def test_status_line_31():
    # vectors.txt:31 "returns Position with non-empty attributes" || type=0x13 serial=0x01BA
    msg = one(bytes.fromhex(STATUS_2))
    assert msg.type == HEARTBEAT
    assert msg.serial == 0x01BA
    assert (msg.acc, msg.fuel_cut, msg.battery_pct, msg.gsm_signal) == (False, False, 100, 100)
    assert msg.extra["charging"] is True
    assert msg.extra["terminal_info"] == 0x44
    assert gt06.encode_reply(msg) == build(0x13, b"", 0x01BA)


def test_location_0x12_line_26():
    # vectors.txt:26 fixTime=2015-10-20 14:21:11 UTC, valid, lat=54.94535, lon=24.01762 (1e-5)
    msg = one(bytes.fromhex(LOC_12))
    assert msg.type == POSITION
    assert msg.msg_id == 0x12
    assert msg.serial == 0x0003
    (pos,) = msg.positions
    assert pos.fix_time == dt.datetime(2015, 10, 20, 14, 21, 11, tzinfo=UTC)
    assert pos.valid is True
    assert pos.lat == pytest.approx(54.94535, abs=1e-5)
    assert pos.lon == pytest.approx(24.01762, abs=1e-5)
    assert pos.satellites == 5
    assert pos.speed_kmh == 0
    assert pos.course == 0
    assert pos.acc is False  # course/status 0x5400: bit 14 set, bit 15 clear
    assert pos.realtime is True
    assert pos.source == "gps"
    assert pos.cells == (Cell(mcc=246, mnc=1, lac=110, cid=21978),)


def test_location_0x22_line_27():
    # vectors.txt:27 sanity-checked position; computed t=2015-12-29 02:51:05 sats=9
    # lat=23.11169 lon=114.40930; ACC byte 0, upload mode 0, re-upload 1
    msg = one(bytes.fromhex(LOC_22))
    assert msg.serial == 0x0008
    (pos,) = msg.positions
    assert pos.fix_time == dt.datetime(2015, 12, 29, 2, 51, 5, tzinfo=UTC)
    assert pos.satellites == 9
    assert pos.lat == pytest.approx(23.11169, abs=1e-5)
    assert pos.lon == pytest.approx(114.40930, abs=1e-5)
    assert pos.valid is True
    assert (pos.speed_kmh, pos.course) == (0, 0)
    assert -90 <= pos.lat <= 90 and -180 <= pos.lon <= 180
    assert pos.acc is False
    assert pos.realtime is False  # re-upload flag 1: blind-area data
    assert pos.extra["reupload"] == 1
    assert pos.cells == (Cell(mcc=460, mnc=0, lac=10365, cid=8049),)
    assert gt06.encode_reply(msg) == build(0x22, b"", 0x0008)


def test_alarm_0x16_line_28():
    # vectors.txt:28 alarm "tampering" (alarm byte 0x25) -> removal; computed t=2022-09-08
    # 06:55:54 sats=0 lat=-4.02092 lon=39.72160 fixed=False
    msg = one(bytes.fromhex(ALARM_16))
    assert msg.type == POSITION
    assert msg.serial == 0x0004
    (pos,) = msg.positions
    assert pos.alarms == (ALARM_REMOVAL,)
    assert pos.extra["alarm_code"] == 0x25
    assert pos.extra["alarm_event"] == "tampering"
    assert pos.fix_time == dt.datetime(2022, 9, 8, 6, 55, 54, tzinfo=UTC)
    assert pos.satellites == 0
    assert pos.lat == pytest.approx(-4.02092, abs=1e-5)
    assert pos.lon == pytest.approx(39.72160, abs=1e-5)
    assert pos.valid is False
    assert pos.cells == ()  # the LBS block is all zero
    assert gt06.encode_reply(msg) == build(0x16, b"", 0x0004)


def test_fence_alarm_0xa4_line_29():
    # vectors.txt:29 alarm "tampering" (0x13) -> removal; 4G LBS block (length 16: LAC 4, CID 8)
    msg = one(bytes.fromhex(FENCE_A4))
    assert msg.type == POSITION
    assert msg.serial == 0x0009
    (pos,) = msg.positions
    assert pos.alarms == (ALARM_REMOVAL,)
    assert pos.extra["alarm_code"] == 0x13
    assert pos.fix_time == dt.datetime(2026, 5, 9, 22, 2, 3, tzinfo=UTC)
    assert pos.lat == pytest.approx(53.52817, abs=1e-5)
    assert pos.lon == pytest.approx(-113.61012, abs=1e-5)  # bit 11: west
    assert pos.valid is True
    assert pos.cells == (Cell(mcc=302, mnc=208, lac=32500, cid=105024263),)
    assert pos.acc is True  # terminal info 0x42
    assert pos.battery_pct == 83  # level 5
    assert pos.gsm_signal == 100
    assert pos.extra["fence_id"] == 0xFF
    assert gt06.encode_reply(msg) == build(0xA4, b"", 0x0009)


def test_alarm_0x95_line_30():
    # vectors.txt:30 alarm "hardAcceleration" (event 0x90): no platform kind, raw code kept
    msg = one(bytes.fromhex(ALARM_95))
    assert msg.type == STATUS
    assert msg.serial == 0x0001
    assert msg.positions == ()
    assert msg.alarms == ()
    assert msg.extra["alarm_code"] == 0x90
    assert msg.extra["alarm_event"] == "hard_acceleration"
    assert msg.extra["device_time"] == dt.datetime(2019, 10, 2, 9, 50, 28, tzinfo=UTC)
    assert gt06.encode_reply(msg) == build(0x95, b"", 0x0001)


def test_command_reply_0x15_line_32():
    # vectors.txt:32 command reply text "Cut off the fuel supply: Success!", serial 0x013B
    msg = one(bytes.fromhex(STRING_15))
    assert msg.type == COMMAND_REPLY
    assert msg.serial == 0x013B
    assert msg.text == "Cut off the fuel supply: Success!"
    assert msg.extra["server_flag"] == 0
    assert gt06.encode_reply(msg) is None


def test_lbs_multiple_0x28_line_33():
    # vectors.txt:33 decode() returns non-null || type=0x28 serial=0x0005: no position from cells
    msg = one(bytes.fromhex(LBS_28))
    assert msg.type == STATUS
    assert msg.serial == 0x0005
    assert msg.positions == ()
    assert msg.extra["device_time"] == dt.datetime(2016, 1, 13, 2, 2, 2, tzinfo=UTC)
    assert msg.extra["cells"] == (
        Cell(460, 0, 10365, 8049, -62),
        Cell(460, 0, 10365, 8050, -49),
        Cell(460, 0, 10365, 7715, -45),
        Cell(460, 0, 10365, 8000, -24),
    )
    assert gt06.encode_reply(msg) == build(0x28, b"", 0x0005)


@pytest.mark.parametrize("frame", VALID_FRAMES, ids=ALL_VECTORS)
def test_vector_frames_split_decode_and_build_real_dataclasses(frame):
    assert gt06.split_frames(frame) == ([frame], b"", 0)
    for msg in gt06.decode(frame):
        # The fast builders make the same objects as the dataclass __init__ would.
        assert dataclasses.replace(msg) == msg
        assert set(vars(msg)) == {f.name for f in dataclasses.fields(Message)}
        assert msg.device_id is None or msg.type == LOGIN
        for pos in msg.positions:
            assert dataclasses.replace(pos) == pos
            assert set(vars(pos)) == {f.name for f in dataclasses.fields(Position)}
            assert pos.fix_time.tzinfo is not None
            assert set(pos.alarms) <= set(ALARM_KINDS)
        assert set(msg.alarms) <= set(ALARM_KINDS)


# --- CRC ---------------------------------------------------------------------------------------


def test_crc_canonical_example():
    frame = bytes.fromhex("787805010001D9DC0D0A")
    assert gt06.crc16_x25(frame[2:-4]) == 0xD9DC
    assert gt06.crc16_x25(b"123456789") == 0x906E  # CRC-16/X-25 check value
    assert gt06.crc16_x25(b"") == 0x0000


@PROPS
@given(st.binary(max_size=300))
def test_crc_matches_the_bitwise_definition(data):
    assert gt06.crc16_x25(data) == crc_reference(data)


# --- framing -----------------------------------------------------------------------------------


def test_split_empty():
    assert gt06.split_frames(b"") == ([], b"", 0)


def test_split_sticky_frames():
    a, b, c = VALID_FRAMES[0], VALID_FRAMES[3], VALID_FRAMES[7]
    assert gt06.split_frames(a + b + c) == ([a, b, c], b"", 0)


@pytest.mark.parametrize("cuts", [(5,), (1,), (3, 20), (2, 31), (40, 41)])
def test_split_frame_across_buffers(cuts):
    frame = VALID_FRAMES[3] + VALID_FRAMES[4]
    pieces, last = [], 0
    for cut in (*cuts, len(frame)):
        pieces.append(frame[last:cut])
        last = cut
    got, rest = [], b""
    for piece in pieces:
        frames, rest, discarded = gt06.split_frames(rest + piece)
        assert discarded == 0
        got += frames
    assert got == [VALID_FRAMES[3], VALID_FRAMES[4]]
    assert rest == b""


def test_split_partial_frame_stays_in_rest():
    frame = VALID_FRAMES[3]
    assert gt06.split_frames(frame[:-1]) == ([], frame[:-1], 0)
    assert gt06.split_frames(frame[:2]) == ([], frame[:2], 0)
    assert gt06.split_frames(b"\x78") == ([], b"\x78", 0)


def test_split_garbage_prefix_is_counted():
    frame = VALID_FRAMES[2]
    assert gt06.split_frames(b"\x00\xff\x78GET / HTTP" + frame) == ([frame], b"", 13)
    assert gt06.split_frames(b"junk") == ([], b"", 4)
    assert gt06.split_frames(b"junk\x79") == ([], b"\x79", 4)  # maybe half a start


def test_split_oversized_length_is_discarded_and_resyncs():
    frame = VALID_FRAMES[3]
    bogus = b"\x79\x79\xff\xf0" + b"\x01" * 10  # declares a 65,526-byte frame
    frames, rest, discarded = gt06.split_frames(bogus + frame)
    assert frames == [frame]
    assert rest == b""
    assert discarded == len(bogus)


def test_split_too_short_length_is_discarded():
    frame = VALID_FRAMES[2]
    frames, rest, discarded = gt06.split_frames(b"\x78\x78\x02\x13\x00" + frame)
    assert (frames, rest, discarded) == ([frame], b"", 5)


def test_split_missing_stop_bytes_resyncs_byte_by_byte():
    good = VALID_FRAMES[2]
    broken = good[:-2] + b"\x00\x00"  # LEN says the frame ends here, but no 0D0A
    frames, rest, discarded = gt06.split_frames(broken + good)
    assert frames == [good]
    assert discarded == len(broken)
    assert rest == b""


def test_split_extended_7979_frame():
    ext = build(0x21, b"\x00\x00\x00\x01\x01" + b"RELAY=1" * 50, 7, extended=True)
    assert len(ext) > 260  # longer than any 7878 frame can be
    assert gt06.split_frames(VALID_FRAMES[0] + ext + VALID_FRAMES[2]) == (
        [VALID_FRAMES[0], ext, VALID_FRAMES[2]],
        b"",
        0,
    )
    assert gt06.split_frames(ext[:100]) == ([], ext[:100], 0)


def test_split_frame_at_max_size_is_accepted():
    content = b"\x00" * (gt06.MAX_FRAME - 11)
    frame = build(0x70, content, extended=True)
    assert len(frame) == gt06.MAX_FRAME
    assert gt06.split_frames(frame) == ([frame], b"", 0)
    too_big = build(0x70, content + b"\x00", extended=True)
    frames, rest, discarded = gt06.split_frames(too_big)
    assert frames == [] and discarded + len(rest) == len(too_big)


def test_split_accepts_bytearray():
    frame = VALID_FRAMES[1]
    assert gt06.split_frames(bytearray(frame)) == ([frame], b"", 0)


def test_split_linear_on_start_pattern_floods():
    # Every position is a candidate start that fails: must stay linear (fast).
    flood = b"\x78" * 200_000
    frames, rest, discarded = gt06.split_frames(flood)
    assert frames == [] and discarded + len(rest) == len(flood)


# --- decode: errors ----------------------------------------------------------------------------


def test_bad_crc_raises_and_lenient_accepts():
    frame = bytearray(VALID_FRAMES[3])
    frame[-3] ^= 0xFF
    with pytest.raises(FrameError, match="crc"):
        gt06.decode(bytes(frame))
    msg = one(bytes(frame), lenient=True)
    assert msg.positions[0].lat == pytest.approx(54.94535, abs=1e-5)


@pytest.mark.parametrize("frame", VALID_FRAMES, ids=ALL_VECTORS)
def test_truncated_frames_raise_frame_error(frame):
    for cut in range(len(frame)):
        with pytest.raises(FrameError):
            gt06.decode(frame[:cut])
        with pytest.raises(FrameError):
            gt06.decode(frame[:cut], lenient=True)


@pytest.mark.parametrize(
    "frame",
    [
        b"\x78\x78\x05\x01\x00\x01\xd9\xdc\x0d",  # too short
        b"\x77\x77\x05\x01\x00\x01\xd9\xdc\x0d\x0a",  # no start
        b"\x78\x78\x06\x01\x00\x01\xd9\xdc\x0d\x0a",  # LEN does not match
        b"\x78\x78\x05\x01\x00\x01\xd9\xdc\x0a\x0d",  # stop bytes
        b"\x78\x78\x04\x01\x00\xd9\xdc\x0d\x0a\x00",  # LEN below the minimum
    ],
)
def test_malformed_framing_raises(frame):
    with pytest.raises(FrameError):
        gt06.decode(frame, lenient=True)


@pytest.mark.parametrize(
    ("proto", "content"),
    [
        (0x12, gps_block()[:10]),  # GPS block cut short
        (0x12, gps_block() + LBS[:5]),  # LBS cut short
        (0x16, gps_block() + b"\x09" + LBS + b"\x02"),  # status block cut short
        (0x28, bytes([16, 1, 13, 2, 2, 2]) + LBS[:3] + b"\x00" * 10),  # cell list cut short
        (0x15, b"\x30\x00\x00\x00\x00abc"),  # command length beyond the content
        (0x13, b"\x02"),
        (0x01, b"\x08\x64"),
        (0x95, b"\x13\x0a\x02"),
        (0xA5, bytes.fromhex("012ed000007ef4")),
    ],
)
def test_crc_valid_but_truncated_content_raises_frame_error(proto, content):
    with pytest.raises(FrameError):
        gt06.decode(build(proto, content))


@pytest.mark.parametrize(
    "when", [(24, 13, 1, 0, 0, 0), (24, 2, 30, 0, 0, 0), (24, 1, 1, 24, 0, 0), (24, 1, 1, 0, 60, 0)]
)
def test_impossible_fix_time_raises(when):
    with pytest.raises(FrameError, match="impossible date"):
        gt06.decode(build(0x12, gps_block(when) + LBS))


def test_all_zero_gps_block_gives_no_position_but_keeps_the_alarm():
    content = b"\x00" * 18 + b"\x08" + LBS + status_block(alarm=0x01)
    msg = one(build(0x16, content, 9))
    assert msg.type == STATUS
    assert msg.positions == ()
    assert msg.alarms == (ALARM_SOS,)
    assert msg.extra["no_fix"] is True
    assert msg.extra["cells"] == (Cell(460, 0, 10365, 8049),)
    assert gt06.encode_reply(msg) == build(0x16, b"", 9)


def test_out_of_range_coordinates_give_no_position():
    block = bytearray(gps_block())
    block[7:11] = (91 * 1_800_000).to_bytes(4, "big")
    msg = one(build(0x12, bytes(block) + LBS))
    assert msg.type == STATUS
    assert msg.positions == ()


# --- decode: locations -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("north", "west", "lat", "lon"),
    [
        (True, False, 34.26, 108.94),
        (False, False, -34.6, 138.6),  # bit 10 clear: south
        (True, True, 40.7, -74.0),  # bit 11 set: west
        (False, True, -22.9, -43.2),
    ],
)
def test_hemisphere_signs(north, west, lat, lon):
    msg = one(build(0x12, gps_block(lat=lat, lon=lon, north=north, west=west) + LBS))
    (pos,) = msg.positions
    assert pos.lat == pytest.approx(lat, abs=1e-6)
    assert pos.lon == pytest.approx(lon, abs=1e-6)


def test_location_fields():
    msg = one(build(0x12, gps_block(sats=11, speed=87, course=271, valid=False) + LBS, 77))
    (pos,) = msg.positions
    assert pos.fix_time == dt.datetime(2024, 5, 17, 8, 30, 15, tzinfo=UTC)
    assert (pos.satellites, pos.speed_kmh, pos.course, pos.valid) == (11, 87, 271, False)
    assert pos.acc is None  # bit 14 clear: no ACC information
    assert msg.serial == 77


@pytest.mark.parametrize("acc", [True, False])
def test_acc_from_course_status_bits(acc):
    (pos,) = one(build(0x12, gps_block(acc=acc) + LBS)).positions
    assert pos.acc is acc


def test_0x22_acc_byte_is_preferred_to_the_course_bits():
    content = gps_block(acc=False) + LBS + b"\x01\x03\x00"
    (pos,) = one(build(0x22, content)).positions
    assert pos.acc is True
    assert pos.realtime is True  # re-upload 0
    assert pos.extra["upload_mode"] == 3
    assert pos.odometer_km is None


def test_0x22_reupload_and_mileage():
    content = gps_block() + LBS + b"\x00\x00\x01" + (123_456).to_bytes(4, "big")
    (pos,) = one(build(0x22, content)).positions
    assert pos.realtime is False
    assert pos.acc is False
    assert pos.odometer_km == pytest.approx(123.456)


def test_0x12_trailing_mileage():
    (pos,) = one(build(0x12, gps_block() + LBS + (5000).to_bytes(4, "big"))).positions
    assert pos.odometer_km == 5.0


def test_gps_only_0x10():
    msg = one(build(0x10, gps_block()))
    (pos,) = msg.positions
    assert pos.cells == ()
    assert gt06.encode_reply(msg) == build(0x10, b"", 1)


def test_two_byte_mnc_when_mcc_bit_15_set():
    lbs = bytes.fromhex("81CC") + (11).to_bytes(2, "big") + bytes.fromhex("287D001F71")
    (pos,) = one(build(0x12, gps_block() + lbs)).positions
    assert pos.cells == (Cell(mcc=460, mnc=11, lac=10365, cid=8049),)


def test_4g_location_0xa0():
    lbs = (
        bytes.fromhex("01CC") + b"\x00" + (0x12345).to_bytes(4, "big") + (2**40).to_bytes(8, "big")
    )
    (pos,) = one(build(0xA0, gps_block() + lbs + b"\x01\x00\x01")).positions
    assert pos.cells == (Cell(mcc=460, mnc=0, lac=0x12345, cid=2**40),)
    assert pos.acc is True
    assert pos.realtime is False


# --- decode: alarms, status, LBS ---------------------------------------------------------------

ALARM_BYTE_KINDS = [
    (0x01, ALARM_SOS),
    (0x02, ALARM_POWER_CUT),
    (0x03, ALARM_VIBRATION),
    (0x04, ALARM_GEOFENCE),
    (0x05, ALARM_GEOFENCE),
    (0x06, ALARM_OVERSPEED),
    (0x09, ALARM_DISPLACEMENT),
    (0x0C, ALARM_REMOVAL),
    (0x0E, ALARM_LOW_BATTERY),
    (0x0F, ALARM_LOW_BATTERY),
    (0x11, ALARM_POWER_CUT),
    (0x13, ALARM_REMOVAL),
    (0x14, ALARM_CASE_OPEN),
    (0x18, ALARM_REMOVAL),
    (0x19, ALARM_LOW_BATTERY),
    (0x25, ALARM_REMOVAL),
    (0x30, ALARM_FAKE_BASE_STATION),
    (0x32, ALARM_REMOVAL),
    (0x29, None),  # hard acceleration: no platform kind
    (0x2C, None),  # accident
    (0x00, None),  # no alarm
    (0x7E, None),  # unknown code
]


@pytest.mark.parametrize(("code", "kind"), ALARM_BYTE_KINDS)
@pytest.mark.parametrize("proto", [0x16, 0x26, 0x27, 0xA4])
def test_alarm_byte_mapping_on_alarm_packets(proto, code, kind):
    content = gps_block() + b"\x09" + LBS + status_block(info=0x00, alarm=code)
    msg = one(build(proto, content))
    (pos,) = msg.positions
    assert pos.alarms == ((kind,) if kind else ())
    if code:
        assert pos.extra["alarm_code"] == code
    else:
        assert "alarm_code" not in pos.extra
    assert gt06.encode_reply(msg) == build(proto, b"", 1)


@pytest.mark.parametrize(("code", "kind"), ALARM_BYTE_KINDS)
def test_alarm_byte_mapping_on_status_frames(code, kind):
    msg = one(build(0x13, status_block(info=0x00, alarm=code)))
    assert msg.alarms == ((kind,) if kind else ())


@pytest.mark.parametrize(
    ("bits", "kind"),
    [
        (0, None),
        (1, ALARM_VIBRATION),
        (2, ALARM_POWER_CUT),
        (3, ALARM_LOW_BATTERY),
        (4, ALARM_SOS),
        (5, None),
        (6, ALARM_GEOFENCE),
        (7, ALARM_REMOVAL),
    ],
)
def test_terminal_info_alarm_bits(bits, kind):
    msg = one(build(0x13, status_block(info=bits << 3)))
    assert msg.alarms == ((kind,) if kind else ())


def test_status_bits_and_alarm_byte_combine_without_duplicates():
    msg = one(build(0x13, status_block(info=4 << 3, alarm=0x01)))  # SOS twice
    assert msg.alarms == (ALARM_SOS,)
    msg = one(build(0x13, status_block(info=2 << 3, alarm=0x13)))
    assert msg.alarms == (ALARM_POWER_CUT, ALARM_REMOVAL)


@pytest.mark.parametrize(
    ("level", "pct"), [(0, 0), (1, 17), (2, 33), (3, 50), (4, 67), (5, 83), (6, 100), (55, 55)]
)
def test_voltage_level_to_battery_percent(level, pct):
    assert one(build(0x13, status_block(level=level))).battery_pct == pct


@pytest.mark.parametrize(
    ("gsm", "signal"), [(0, 0), (1, 25), (2, 50), (3, 75), (4, 100), (9, None)]
)
def test_gsm_level(gsm, signal):
    assert one(build(0x13, status_block(gsm=gsm))).gsm_signal == signal


def test_terminal_info_bits():
    msg = one(build(0x13, status_block(info=0b1000_0111)))
    assert msg.acc is True
    assert msg.fuel_cut is True
    assert msg.extra["charging"] is True
    assert msg.extra["armed"] is True


def test_alarm_packet_state_on_the_position():
    content = gps_block() + b"\x08" + LBS + status_block(info=0x82, level=3, gsm=2, alarm=0x02)
    (pos,) = one(build(0x26, content)).positions
    assert (pos.acc, pos.fuel_cut, pos.battery_pct, pos.gsm_signal) == (True, True, 50, 50)
    assert pos.alarms == (ALARM_POWER_CUT,)
    assert pos.cells == (Cell(460, 0, 10365, 8049),)


def test_alarm_packet_with_empty_lbs_block():
    content = gps_block() + b"\x00" + status_block(alarm=0x01)
    (pos,) = one(build(0x16, content)).positions
    assert pos.cells == ()
    assert pos.alarms == (ALARM_SOS,)
    padded = gps_block() + b"\x00" + b"\x00" * 45 + status_block(alarm=0x03)
    (pos,) = one(build(0x16, padded)).positions
    assert pos.alarms == (ALARM_VIBRATION,)


def test_heartbeat_0x23():
    msg = one(build(0x23, b"\x06\x01\x90\x03\x00\x02", 12))
    assert msg.type == HEARTBEAT
    assert (msg.acc, msg.fuel_cut, msg.gsm_signal) == (True, False, 75)
    assert msg.extra["battery_voltage"] == 4.0
    assert gt06.encode_reply(msg) == build(0x23, b"", 12)


def test_lbs_status_0x19_has_alarms_but_no_position():
    msg = one(build(0x19, LBS + status_block(info=0x02, alarm=0x01), 3))
    assert msg.type == STATUS
    assert msg.positions == ()
    assert msg.alarms == (ALARM_SOS,)
    assert msg.acc is True
    assert msg.extra["cells"] == (Cell(460, 0, 10365, 8049),)
    assert gt06.encode_reply(msg) == build(0x19, b"", 3)


def test_lbs_alarm_0xa5_4g_cell():
    lbs = bytes.fromhex("012e d0 00007ef4 0000000006428b07")
    msg = one(build(0xA5, lbs + status_block(alarm=0x14)))
    assert msg.type == STATUS
    assert msg.positions == ()
    assert msg.alarms == (ALARM_CASE_OPEN,)
    assert msg.extra["cells"] == (Cell(302, 208, 32500, 105024263),)


def test_extended_0x95_alarm_has_a_position():
    block = gps_block(lat=34.0, lon=108.0)
    content = block[:6] + block[7:15] + block[16:18] + b"\x01"  # no satellites, no speed
    msg = one(build(0x95, content))
    (pos,) = msg.positions
    assert pos.alarms == (ALARM_SOS,)
    assert pos.lat == pytest.approx(34.0) and pos.lon == pytest.approx(108.0)


def test_short_0x95_sos_code_is_general():
    msg = one(build(0x95, bytes([19, 10, 2, 9, 50, 28, 0x01])))
    assert msg.alarms == ()
    assert msg.extra["alarm_event"] == "general"


# --- command replies, time, other --------------------------------------------------------------


def test_command_reply_0x21_ascii_and_utf16():
    ascii_frame = build(0x21, b"\x00\x00\x00\x05\x01" + b"RELAY=1 OK", 4, extended=True)
    msg = one(ascii_frame)
    assert (msg.type, msg.text, msg.serial) == (COMMAND_REPLY, "RELAY=1 OK", 4)
    assert msg.extra["server_flag"] == 5
    assert gt06.encode_reply(msg) is None
    utf_frame = build(0x21, b"\x00\x00\x00\x00\x02" + "断油成功".encode("utf-16-be"), extended=True)
    assert one(utf_frame).text == "断油成功"


def test_time_request_and_reply():
    msg = one(build(0x8A, b"", 0x0006))
    assert msg.type == TIME_REQUEST
    now = dt.datetime(2026, 5, 9, 12, 34, 56, tzinfo=UTC)
    reply = gt06.encode_reply(msg, now=now)
    assert reply == build(0x8A, bytes([26, 5, 9, 12, 34, 56]), 0x0006)
    assert reply[:4] == b"\x78\x78\x0b\x8a"
    # Local times are converted to UTC.
    local = now.astimezone(dt.timezone(dt.timedelta(hours=8)))
    assert gt06.encode_reply(msg, now=local) == reply
    assert len(gt06.encode_reply(msg)) == 16


def test_unknown_7878_is_other_and_acked():
    msg = one(build(0x77, b"\x01\x02\x03", 0x0102))
    assert msg.type == OTHER
    assert msg.msg_id == 0x77
    assert gt06.encode_reply(msg) == build(0x77, b"", 0x0102)


@pytest.mark.parametrize("proto", [0x80, 0x81, 0x82])
def test_command_frames_are_other_and_not_acked(proto):
    msg = one(build(proto, b"\x05\x00\x00\x00\x00X"))
    assert msg.type == OTHER
    assert gt06.encode_reply(msg) is None


def test_unknown_7979_is_other_and_not_acked():
    msg = one(build(0x70, b"\x00\x01\x02", 3, extended=True))
    assert msg.type == OTHER
    assert gt06.encode_reply(msg) is None


def test_info_0x94_external_voltage():
    msg = one(build(0x94, b"\x00\x04\xb0", extended=True))
    assert msg.type == STATUS
    assert msg.external_voltage == 12.0
    assert gt06.encode_reply(msg) is None


def test_address_request_gets_traccars_0x97_answer():
    reply = gt06.encode_reply(one(build(0x2A, b"\x00" * 10)))
    text = b"NA&&NA&&0##"
    assert reply == build(0x97, bytes([len(text)]) + b"\x00" * 4 + text, 0, extended=True)


def test_encode_reply_refuses_other_protocols():
    with pytest.raises(ValueError):
        gt06.encode_reply(Message(protocol="h02", type=OTHER, device_id=None, msg_id=1))


# --- commands ----------------------------------------------------------------------------------


def test_fuel_cut_command_bytes():
    frame = gt06.encode_command(gt06.FUEL_CUT, serial=1)
    text = b"RELAY,1#"
    assert frame == (
        b"\x78\x78"
        + bytes([10 + len(text), 0x80, 4 + len(text)])
        + b"\x00\x00\x00\x00"
        + text
        + b"\x00\x01"
        + crc_reference(frame[2:-4]).to_bytes(2, "big")
        + b"\r\n"
    )


@pytest.mark.parametrize(
    "text", [gt06.FUEL_CUT, gt06.FUEL_RESTORE, gt06.REBOOT, gt06.interval_command(30)]
)
@pytest.mark.parametrize("language", [False, True])
def test_command_round_trips_as_other_and_is_not_acked(text, language):
    frame = gt06.encode_command(text, serial=0x1234, server_flag=0xDEADBEEF, language=language)
    assert gt06.split_frames(b"\x00" + frame + frame[:5]) == ([frame], frame[:5], 1)
    assert crc_reference(frame[2:-4]) == int.from_bytes(frame[-4:-2], "big")
    msg = one(frame)  # strict: the CRC is valid
    assert (msg.type, msg.msg_id, msg.serial) == (OTHER, 0x80, 0x1234)
    assert gt06.encode_reply(msg) is None
    assert frame[4] == 4 + len(text)
    assert frame[5:9] == b"\xde\xad\xbe\xef"
    assert frame[9 : 9 + len(text)] == text.encode()
    assert frame[9 + len(text) : -6] == (b"\x00\x02" if language else b"")


def test_command_constants():
    assert (gt06.FUEL_CUT, gt06.FUEL_RESTORE, gt06.REBOOT) == ("RELAY,1#", "RELAY,0#", "RESET#")


@pytest.mark.parametrize(("seconds", "text"), [(5, "TIMER,5#"), (60, "TIMER,60#"), (65535, None)])
def test_interval_command(seconds, text):
    assert gt06.interval_command(seconds) == (text or f"TIMER,{seconds}#")


@pytest.mark.parametrize("seconds", [4, 0, -1, 65536, 10.0, True, "30"])
def test_interval_command_rejects(seconds):
    with pytest.raises(ValueError):
        gt06.interval_command(seconds)


@pytest.mark.parametrize(
    ("text", "kw"),
    [
        ("断油#", {}),
        ("", {}),
        ("X" * 246, {}),
        ("RELAY,1#", {"serial": 70000}),
        ("RELAY,1#", {"server_flag": -1}),
    ],
)
def test_encode_command_rejects(text, kw):
    with pytest.raises(ValueError):
        gt06.encode_command(text, **{"serial": 1, **kw})


def test_longest_command_fits():
    frame = gt06.encode_command("X" * 245, serial=1)
    assert len(frame) == 260
    assert one(frame).type == OTHER


# --- properties --------------------------------------------------------------------------------

CHUNKS = st.one_of(
    st.binary(max_size=40),
    st.sampled_from(VALID_FRAMES),
    st.sampled_from([b"\x78\x78", b"\x79\x79", b"\x0d\x0a", b"\x78", b"\x79\x79\x00"]),
)
STREAMS = st.lists(CHUNKS, max_size=12).map(b"".join)


def _decode_or_frame_error(frame: bytes, **kw) -> None:
    try:
        messages = gt06.decode(frame, **kw)
    except FrameError:
        return
    for msg in messages:
        gt06.encode_reply(msg, now=dt.datetime(2026, 1, 1, tzinfo=UTC))


@PROPS
@given(st.binary(max_size=600))
def test_split_random_bytes_accounts_for_every_byte(buf):
    frames, rest, discarded = gt06.split_frames(buf)
    assert sum(map(len, frames)) + len(rest) + discarded == len(buf)
    assert buf.endswith(rest)


@PROPS
@given(STREAMS)
def test_split_mixed_streams_frames_decode_or_frame_error(buf):
    frames, rest, discarded = gt06.split_frames(buf)
    assert sum(map(len, frames)) + len(rest) + discarded == len(buf)
    assert len(rest) <= gt06.MAX_FRAME
    for frame in frames:
        _decode_or_frame_error(frame)
        _decode_or_frame_error(frame, lenient=True)


@PROPS
@given(st.sampled_from(VALID_FRAMES), st.data())
def test_single_byte_mutations_and_truncations_raise_only_frame_error(frame, data):
    pos = data.draw(st.integers(0, len(frame) - 1))
    value = data.draw(st.integers(0, 255).filter(lambda v: v != frame[pos]))
    mutated = frame[:pos] + bytes([value]) + frame[pos + 1 :]
    with pytest.raises(FrameError):
        gt06.decode(mutated)  # the CRC (or the framing) catches every single-byte change
    _decode_or_frame_error(mutated, lenient=True)
    cut = data.draw(st.integers(0, len(frame) - 1))
    with pytest.raises(FrameError):
        gt06.decode(frame[:cut], lenient=True)


PROTOS = sorted(
    {0x01, 0x10, 0x11, 0x12, 0x13, 0x15, 0x16, 0x18, 0x19, 0x21, 0x22, 0x23}
    | {0x26, 0x27, 0x28, 0x2A, 0x2D, 0x2E, 0x37, 0x8A, 0x94, 0x95, 0xA0, 0xA4, 0xA5}
)


@PROPS
@given(st.sampled_from(PROTOS), st.binary(max_size=80), st.booleans())
def test_crc_valid_random_content_never_crashes(proto, content, extended):
    _decode_or_frame_error(build(proto, content, extended=extended))


@PROPS
@given(st.sampled_from(PROTOS), st.sampled_from(VALID_FRAMES), st.data())
def test_crc_valid_content_of_real_frames_under_another_protocol_number(proto, frame, data):
    body = frame[4:-6]
    cut = data.draw(st.integers(0, len(body)))
    _decode_or_frame_error(build(proto, body[:cut]))


@PROPS
@given(STREAMS, st.randoms(use_true_random=False))
def test_chunked_stream_gives_the_same_frames_as_whole(buf, rnd: random.Random):
    whole_frames, whole_rest, whole_discarded = gt06.split_frames(buf)
    frames, rest, discarded, i = [], b"", 0, 0
    while i < len(buf):
        step = rnd.randint(1, 40)
        got, rest, bad = gt06.split_frames(rest + buf[i : i + step])
        frames += got
        discarded += bad
        i += step
    assert frames == whole_frames
    assert rest == whole_rest
    assert discarded == whole_discarded


@PROPS
@given(st.lists(st.sampled_from(VALID_FRAMES), min_size=1, max_size=8), st.data())
def test_valid_stream_in_random_chunks(frames_in, data):
    stream = b"".join(frames_in)
    cuts = sorted(data.draw(st.lists(st.integers(0, len(stream)), max_size=10)))
    got, rest, last = [], b"", 0
    for cut in [*cuts, len(stream)]:
        frames, rest, discarded = gt06.split_frames(rest + stream[last:cut])
        assert discarded == 0
        got += frames
        last = cut
    assert got == frames_in
    assert rest == b""
