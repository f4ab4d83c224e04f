"""H02 codec (gateway/protocols/h02.py): pure, no database.

Frame sources: "vectors.txt:N" is line N of ../shared/protocols/vectors.txt; "traccar" is
Traccar's H02ProtocolDecoderTest (Apache-2.0); "built" frames are made here from the layouts.
"""

from __future__ import annotations

import binascii
import datetime as dt
from pathlib import Path

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from gateway.protocols import h02
from gateway.protocols.messages import (
    ALARM_OVERSPEED,
    ALARM_POWER_CUT,
    ALARM_SOS,
    ALARM_VIBRATION,
    COMMAND_REPLY,
    HEARTBEAT,
    OTHER,
    POSITION,
    STATUS,
    Cell,
    FrameError,
    Message,
)

UTC = dt.UTC
NOW = dt.datetime(2024, 1, 2, 3, 4, 5, tzinfo=UTC)
VECTORS = Path(__file__).resolve().parents[3] / "shared" / "protocols" / "vectors.txt"
PROPS = settings(
    max_examples=300,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)


def hx(text: str) -> bytes:
    return binascii.unhexlify(text)


def one(frame: bytes) -> Message:
    msgs = h02.decode(frame)
    assert len(msgs) == 1
    assert msgs[0].protocol == "h02"
    assert msgs[0].frame == frame
    return msgs[0]


def v1(
    status: str = "FFFFFFFF",
    lat: str = "3415.6000",
    ns: str = "N",
    lon: str = "10856.4000",
    ew: str = "E",
    speed: str = "010.00",
    course: str = "090",
    valid: str = "A",
    date: str = "150324",
    time: str = "081530",
    tail: str = "",
    dev: str = "4210051415",
) -> bytes:
    """A built V1 frame (Xi'an by default)."""
    body = f"*HQ,{dev},V1,{time},{valid},{lat},{ns},{lon},{ew},{speed},{course},{date},{status}"
    return f"{body}{tail}#".encode()


# --------------------------------------------------------------------------------------------
# vectors.txt: every H02 line

V43 = (
    b"*HQ,4210051415,V1,164549,A,0956.3869,N,08406.7068,W,000.00,000,221215,FFFFFBFF,712,01,0,0,6#"
)
V44 = (
    b"*HQ,9001000002,V8,213945,A,3542.2043,N,38.6508,W,0.00,170,221025,FBFFF9FF,"
    b"0,0,0,0,22,31,126,0#"
)
V45 = (
    b"*HQ,4210209006,V1,201844,A,2608.9437,N,08016.2521,W,000.80,000,150317,FFFFF9FF,310,260,0,0,6#"
)
V46 = hx(
    "2441091144271222470112142233983006114026520E000000FFFFFBFFFF0014060000000001CC00262B0F170A"
)
V47 = b"*HQ,135790246811220,HTBT#"
V48 = b"*HQ,8401016597,BASE,152609,0,0,0,0,211014,FFFFFFFF#"
V49 = (
    b"*HQ,4109179024,NBR,103732,722,310,0,6,8106,32010,23,8101,22007,25,8106,12010,23,8106,22105,"
    b"22,8101,22012,16,8106,42010,5,100217,FFFFFBFF,5#"
)
V50 = (
    b"*TH,2020916012,V4,S20,ERROR,130305,050316,A,2212.8745,N,11346.6574,E,14.28,028,220902,"
    b"FFFFFBFF#"
)
ALL_VECTORS = [V43, V44, V45, V46, V47, V48, V49, V50]

TRACCAR_TEXT = [
    b"*HQ,4210209006,V1,054048,A,2828.2297,N,07733.4332,E,000.5,047,4,080918,EEE7FBDF,4261193,0#",
    b"*HQ,353505221264507,V2,100220,0,5238.26259,N,00507.33983,E,0.25,0,280917,FFFFFFFF,cc,28,"
    b"  db,d75b#",
    b"*HQ,,V1,173212,A,2225.78879,S,02829.19021,E,0.00,0,290418,FFFFFBFF#",
    b"*HQ,353505221264507,VI1,075146,0,5238.25900,N,00507.33429,E,0.54,0,250917,FFFFFFFF,cc,28,"
    b"  db,d75b#",
    b"*HQ,4209951296,V19,214452,A,5201.0178,N,01830.5029,E,000.00,000,200417,,195.63.13.195,"
    b"89480610500392633029,BFFFFBFF#",
    b"*HQ,8161289587,V1,181933,A,5444.3994,N,02516.3844,E,000.05,000,090317,FFFFBBFF,246,03,"
    b"00002,41565#",
    b"*HQ,2130510938,V1,012632,A,0520.0663,N,10028.6324,E,0.286,023,100317,FFFFDFFF,69129336,0,"
    b"100.0,18,5141,5A20#",
    b"*HQ,4106012736,V1,224434,A,1827.3855,N,06705.7577,W,000.00,000,100117,FFFFFBFF,310,260,"
    b"49101,1753,5#",
    b"*HQ,353588020068342,V1,084436,A,3257.01525,N,00655.03865,W,57.78,40,011216,FFFBFFFF,25c,a,"
    b" 154,b04c#",
    b"*HQ,1451316485,V1,121557,A,-23-3.3408,S,-48-2.8926,W,0.1,158,241115,FFFFFFFF#",
    b"*HQ,355488020119695,V1,050418,,2827.61232,N,07703.84822,E,0.00,0,031015,FFFEFBFF#",
    b"*HQ,1451316409,V1,030149,A,-23-29.0095,S,-46-51.5852,W,2.4,065,070315,FFFFFFFF#",
    b"*HQ,123456789012345,V1,155850,A,5214.5346,N,2117.4683,E,0.00,270.90,131012,ffffffff,000000,"
    b"000000,000000,000000#",
    b"*HQ,354188045498669,V1,195200,A,701.8915,S,3450.3399,W,0.00,205.70,050213,ffffffff,000243,"
    b"000000,000000#",
    b"*TH,2020916012,V4,S14,100,10,1,3,130305,050316,A,2212.8745,N,11346.6574,E,14.28,028,220902,"
    b"FFFFFBFF#",
    b"*TH,2020916012,V4,S20,DONE,130305,050316,A,2212.8745,N,11346.6574,E,14.28,028,220902,"
    b"F7FFFBFF#",
    b"*TH,2020916012,V4,S23,165.165.33.250:8800,130305,050316,A,2212.8745,N,11346.6574,E,14.28,"
    b"028,220902,FFFFFBFF#",
    b"*HQ,1700086468,LINK,180902,15,0,84,0,0,240517,FFFFFBFF#",
    b"*HQ,355488020882405,V3,095426,74001,04,010278,045142,128,-92,010278,026311,125,,010278,"
    b"026582,125,,010278,028322,119,,02DD,0,X,090517,FFFFFBFF#",
    b"*hq,356327081001239,VP1,V,470,002,92,3565,0Y92,19433,30Y92,1340,29#",
    b"*hq,356327080425330,VP1,A,2702.7245,S,15251.9311,E,0.48,0.0000,080917#",
    b"*HQ,356327080425330,XT,1,100#",
]
TRACCAR_BINARY = [
    hx("2441060116601245431311165035313006004318210e000000fffffbffff0024"),
    hx(
        "24410600082621532131081504419390060740418306000000fffffbfdff0015060000002c02dc0c000000001f"
    ),
    hx("2410307310010503162209022212874500113466574C014028fffffbffff0000"),
    hx("2435248308419329301047591808172627335900074412294E024138FEFFFFFFFF01120064BA73005ECC"),
]
VALID_FRAMES = ALL_VECTORS + TRACCAR_TEXT + TRACCAR_BINARY


def test_every_h02_vector_line_is_covered() -> None:
    if not VECTORS.exists():
        pytest.skip("shared vectors not present")
    lines = [ln for ln in VECTORS.read_text().splitlines() if ln.startswith("H02 |")]
    frames = []
    for ln in lines:
        raw = ln.split("|")[1].strip()
        frames.append(hx(raw) if raw.startswith("24") else raw.encode())
    assert frames == ALL_VECTORS


def test_vector_43_v1_position() -> None:
    # vectors.txt:43 position fixTime=2015-12-22 16:45:49 UTC valid lat 9.93978 lon -84.11178;
    # processStatus(0xFFFFFBFF): alarm=None ignition=False
    m = one(V43)
    assert (m.type, m.device_id) == (POSITION, "4210051415")
    (p,) = m.positions
    assert p.fix_time == dt.datetime(2015, 12, 22, 16, 45, 49, tzinfo=UTC)
    assert p.valid is True
    assert p.lat == pytest.approx(9.93978, abs=1e-5)
    assert p.lon == pytest.approx(-84.11178, abs=1e-5)
    assert p.speed_kmh == 0.0 and p.course == 0
    assert p.alarms == () and p.acc is False and p.fuel_cut is False
    assert p.extra["status"] == 0xFFFFFBFF and m.extra["status"] == 0xFFFFFBFF
    assert p.extra["io"] == ["712", "01", "0", "0", "6"]
    assert p.cells == ()  # LAC 0 / CID 0: no real cell


def test_vector_44_v8_zero_degree_longitude() -> None:
    # vectors.txt:44 fixTime=2025-10-22 21:39:45 UTC valid lat 35.70340 lon -0.64418
    m = one(V44)
    (p,) = m.positions
    assert m.type == POSITION and m.extra["h02_type"] == "V8"
    assert p.fix_time == dt.datetime(2025, 10, 22, 21, 39, 45, tzinfo=UTC)
    assert p.valid is True
    assert p.lat == pytest.approx(35.70340, abs=1e-5)
    assert p.lon == pytest.approx(-0.64418, abs=1e-5)
    assert p.course == 170
    assert p.extra["status"] == 0xFBFFF9FF and p.alarms == () and p.acc is False


def test_vector_45_v1_sanity_and_status() -> None:
    # vectors.txt:45 sane position; processStatus(0xFFFFF9FF): alarm=None ignition=False
    (p,) = one(V45).positions
    assert p.fix_time == dt.datetime(2017, 3, 15, 20, 18, 44, tzinfo=UTC)
    assert p.lat == pytest.approx(26 + 8.9437 / 60) and p.lon == pytest.approx(-(80 + 16.2521 / 60))
    assert p.speed_kmh == pytest.approx(0.80 * 1.852)
    assert p.alarms == () and p.acc is False and p.extra["status"] == 0xFFFFF9FF


def test_vector_46_binary_45_bytes() -> None:
    # vectors.txt:46 attribute "status" == 0xFFFFFBFF (45-byte binary frame)
    assert len(V46) == 45
    m = one(V46)
    (p,) = m.positions
    assert (m.type, m.device_id, m.serial) == (POSITION, "4109114427", 0x14)
    assert p.extra["status"] == 0xFFFFFBFF
    assert p.fix_time == dt.datetime(2014, 12, 1, 12, 22, 47, tzinfo=UTC)
    assert p.lat == pytest.approx(22 + 33.9830 / 60)
    assert p.lon == pytest.approx(114 + 2.652 / 60)
    assert p.valid is True and p.speed_kmh == 0.0 and p.course == 0
    assert p.battery_pct == 100 and p.extra["battery_raw"] == 6
    assert p.cells == (Cell(mcc=460, mnc=0, lac=0x262B, cid=0x0F17),)
    assert h02.encode_reply(m, now=NOW) is None  # binary frames are not acked


def test_vector_47_htbt() -> None:
    # vectors.txt:47 decode() returns null (heartbeat); H02-ACK line 23: echoed up to the type
    m = one(V47)
    assert (m.type, m.device_id, m.positions) == (HEARTBEAT, "135790246811220", ())
    assert h02.encode_reply(m, now=NOW) == b"*HQ,135790246811220,HTBT#"


def test_vector_48_base_is_other() -> None:
    # vectors.txt:48 decode() returns null
    m = one(V48)
    assert (m.type, m.positions, m.device_id) == (OTHER, (), "8401016597")
    assert h02.encode_reply(m, now=NOW) is None


def test_vector_49_nbr_cells() -> None:
    # vectors.txt:49 NBR: attributes, location not checked -> STATUS with cells, no position
    m = one(V49)
    assert (m.type, m.positions) == (STATUS, ())
    cells = m.extra["cells"]
    assert len(cells) == 6
    assert cells[0] == Cell(mcc=722, mnc=310, lac=8106, cid=32010, rssi=23)
    assert cells[-1] == Cell(mcc=722, mnc=310, lac=8106, cid=42010, rssi=5)
    assert m.extra["time"] == dt.datetime(2017, 2, 10, 10, 37, 32, tzinfo=UTC)
    assert m.extra["status"] == 0xFFFFFBFF and m.acc is False and m.alarms == ()
    # H02-ACK line 23: NBR gets *HQ,<id>,V4,NBR,<ts>#
    assert h02.encode_reply(m, now=NOW) == b"*HQ,4109179024,V4,NBR,20240102030405#"


def test_vector_50_v4_command_reply_with_position() -> None:
    # vectors.txt:50 V4 S20 ERROR: sane position
    m = one(V50)
    assert m.type == COMMAND_REPLY
    assert m.text == "S20,ERROR,130305"
    assert m.extra["command"] == "S20" and m.extra["reply"] == ["ERROR", "130305"]
    assert m.extra["maker"] == "TH"
    (p,) = m.positions
    assert p.fix_time == dt.datetime(2002, 9, 22, 5, 3, 16, tzinfo=UTC)
    assert p.lat == pytest.approx(22 + 12.8745 / 60) and p.lon == pytest.approx(113 + 46.6574 / 60)
    assert p.speed_kmh == pytest.approx(14.28 * 1.852) and p.course == 28
    assert h02.encode_reply(m, now=NOW) is None


@pytest.mark.parametrize(
    "frame",
    [V43, V45],  # vectors.txt:43, :45 (V1 frames)
)
def test_v1_ack_byte_exact(frame: bytes) -> None:
    # vectors.txt:23 H02-ACK: V1 -> "*HQ,<id>,V4,V1,<yyyyMMddHHmmss UTC>#"
    m = one(frame)
    reply = h02.encode_reply(
        m, now=dt.datetime(2024, 1, 2, 11, 4, 5, tzinfo=dt.timezone(dt.timedelta(hours=8)))
    )
    assert reply == f"*HQ,{m.device_id},V4,V1,20240102030405#".encode()


def test_ack_all_r12_and_v0_echo() -> None:
    # vectors.txt:23: with h02.ack=true other frames get *HQ,<id>,R12,<HHmmss>#; V0 echoed
    m = one(V44)
    assert h02.encode_reply(m, now=NOW) is None
    assert h02.encode_reply(m, now=NOW, ack_all=True) == b"*HQ,9001000002,R12,030405#"
    v0 = one(b"*HQ,4210051415,V0,081530,1#")  # built
    assert v0.type == HEARTBEAT
    assert h02.encode_reply(v0, now=NOW) == b"*HQ,4210051415,V0#"
    assert h02.encode_reply(one(b"*HQ,4210051415,V0#"), now=NOW) == b"*HQ,4210051415,V0#"
    assert h02.encode_reply(one(V46), now=NOW, ack_all=True) is None  # binary: never
    assert h02.encode_reply(one(b"*HQ,,V1,173212,A,2225.78879,S,02829.19021,E,0,0,290418#")) is None


def test_encode_reply_default_now_is_utc_clock() -> None:
    reply = h02.encode_reply(one(V43))
    assert reply is not None and reply.startswith(b"*HQ,4210051415,V4,V1,20") and len(reply) == 36
    with pytest.raises(ValueError):
        h02.encode_reply(one(V43), now=dt.datetime(2024, 1, 1))  # noqa: DTZ001


# --------------------------------------------------------------------------------------------
# Traccar sample frames


@pytest.mark.parametrize("frame", TRACCAR_TEXT + TRACCAR_BINARY)
def test_traccar_samples_decode(frame: bytes) -> None:
    # traccar: every frame decodes to exactly one message, positions sane
    m = one(frame)
    for p in m.positions:
        assert -90 <= p.lat <= 90 and -180 <= p.lon <= 180
        assert 0 <= p.course < 360 and p.speed_kmh is not None and p.speed_kmh >= 0
        assert p.fix_time.tzinfo is UTC


def test_traccar_binary_45_expected_fix() -> None:
    # traccar: position("2015-08-31 21:53:21.000", true, 4.69898, -74.06971); status bit1=0 -> sos
    m = one(TRACCAR_BINARY[1])
    (p,) = m.positions
    assert p.fix_time == dt.datetime(2015, 8, 31, 21, 53, 21, tzinfo=UTC)
    assert p.valid is True
    assert p.lat == pytest.approx(4.69898, abs=1e-5) and p.lon == pytest.approx(-74.06971, abs=1e-5)
    assert p.alarms == (ALARM_SOS,)


def test_binary_32_and_42() -> None:
    # traccar: 32-byte frame, flags nibble C = not valid, N, E; speed 14 kn, course 028
    m = one(TRACCAR_BINARY[2])
    (p,) = m.positions
    assert (m.device_id, m.serial) == ("1030731001", 0)
    assert p.valid is False and p.lat > 0 and p.lon > 0
    assert p.speed_kmh == pytest.approx(14 * 1.852) and p.course == 28
    # traccar: 42-byte frame with an 8-byte IMEI
    m = one(TRACCAR_BINARY[3])
    (p,) = m.positions
    assert m.device_id == "352483084193293"
    assert p.fix_time == dt.datetime(2017, 8, 18, 10, 47, 59, tzinfo=UTC)
    assert p.speed_kmh == pytest.approx(24 * 1.852) and p.course == 138
    assert p.battery_pct is None and m.extra["tail"] == "ff01120064ba73005ecc"


def test_binary_hemisphere_flags() -> None:
    base = bytearray(TRACCAR_BINARY[0])  # built from traccar's 32-byte frame (flags nibble E)
    for nibble, lat_sign, lon_sign, valid in [
        (0xE, 1, 1, True),
        (0xA, -1, 1, True),
        (0x6, 1, -1, True),
        (0x0, -1, -1, False),
    ]:
        base[21] = (base[21] & 0xF0) | nibble
        (p,) = one(bytes(base)).positions
        assert (p.lat > 0) == (lat_sign > 0) and (p.lon > 0) == (lon_sign > 0)
        assert p.valid is valid


def test_v1_variants() -> None:
    # traccar: battery field before the date; trailing io kept
    (p,) = one(TRACCAR_TEXT[0]).positions
    assert p.extra["battery_raw"] == 4 and p.battery_pct == 60
    assert p.speed_kmh == pytest.approx(0.5 * 1.852) and p.course == 47
    assert p.extra["io"] == ["4261193", "0"]
    # traccar: V2 coding scheme "0" -> valid; hex cell fields with space padding
    (p,) = one(TRACCAR_TEXT[1]).positions
    assert p.valid is True and p.cells == (Cell(mcc=0xCC, mnc=0x28, lac=0xDB, cid=0xD75B),)
    # traccar: empty device id
    m = one(TRACCAR_TEXT[2])
    assert m.device_id is None and m.positions[0].lat < 0
    # traccar: V19 with SIM info before the status word
    (p,) = one(TRACCAR_TEXT[4]).positions
    assert p.extra["sim"] == ["", "195.63.13.195", "89480610500392633029"]
    assert p.extra["status"] == 0xBFFFFBFF
    # traccar: decimal cell fields
    (p,) = one(TRACCAR_TEXT[5]).positions
    assert p.cells == (Cell(mcc=246, mnc=3, lac=2, cid=41565),)
    (p,) = one(TRACCAR_TEXT[7]).positions
    assert p.cells == (Cell(mcc=310, mnc=260, lac=49101, cid=1753),)
    # traccar: odometer, temperature, fuel, altitude, lac, cid
    (p,) = one(TRACCAR_TEXT[6]).positions
    assert p.odometer_km == pytest.approx(69129.336) and p.altitude_m == 18.0
    assert (p.extra["lac"], p.extra["cid"], p.extra["fuel"]) == (0x5141, 0x5A20, 100.0)
    # traccar: hex cell (Morocco: MCC 0x25c = 604)
    (p,) = one(TRACCAR_TEXT[8]).positions
    assert p.cells == (Cell(mcc=604, mnc=10, lac=0x154, cid=0xB04C),)
    # traccar: degree-minute form "-23-29.0095" -> position(-23.48349, -46.85975)
    (p,) = one(TRACCAR_TEXT[11]).positions
    assert p.lat == pytest.approx(-23.48349, abs=1e-5) and p.lon == pytest.approx(
        -46.85975, abs=1e-5
    )
    # traccar: empty validity -> not valid; position(2015-10-03 05:04:18, false, 28.46021, 77.06414)
    (p,) = one(TRACCAR_TEXT[10]).positions
    assert p.valid is False and p.fix_time == dt.datetime(2015, 10, 3, 5, 4, 18, tzinfo=UTC)
    assert p.lat == pytest.approx(28.46021, abs=1e-5) and p.lon == pytest.approx(77.06414, abs=1e-5)
    # traccar: short degree fields, fractional course
    (p,) = one(TRACCAR_TEXT[12]).positions
    assert p.lon == pytest.approx(21 + 17.4683 / 60) and p.course == 271
    (p,) = one(TRACCAR_TEXT[13]).positions
    assert p.lat == pytest.approx(-(7 + 1.8915 / 60))


def test_v4_reply_variants() -> None:
    # traccar: V4 S14 with arguments, V4 S20 DONE (fuel cut: status bit27 low), V4 S23 address
    m = one(TRACCAR_TEXT[14])
    assert m.text == "S14,100,10,1,3,130305" and m.extra["command"] == "S14"
    m = one(TRACCAR_TEXT[15])
    assert m.type == COMMAND_REPLY and m.text == "S20,DONE,130305"
    assert m.positions[0].fuel_cut is True and m.extra["status"] == 0xF7FFFBFF
    assert one(TRACCAR_TEXT[16]).text == "S23,165.165.33.250:8800,130305"
    m = one(b"*HQ,4210051415,V4,S20,DONE#")  # built: a reply without a position block
    assert (m.type, m.text, m.positions) == (COMMAND_REPLY, "S20,DONE", ())


def test_link_v3_vp1_xt() -> None:
    # traccar: LINK rssi 15, satellites 0, battery 84
    m = one(TRACCAR_TEXT[17])
    assert (m.type, m.battery_pct, m.gsm_signal) == (HEARTBEAT, 84, 48)
    assert m.extra["rssi"] == 15 and m.extra["steps"] == 0 and m.acc is False
    assert h02.encode_reply(m, now=NOW) is None
    # traccar: V3 with four cells
    m = one(TRACCAR_TEXT[18])
    assert m.type == STATUS and m.positions == ()
    cells = m.extra["cells"]
    assert cells[0] == Cell(mcc=740, mnc=1, lac=10278, cid=45142, rssi=-92)
    assert cells[1] == Cell(mcc=740, mnc=1, lac=10278, cid=26311, rssi=None)
    assert len(cells) == 4 and m.extra["battery_raw"] == 0x2DD
    # traccar: VP1 cells (STATUS) and a date-only fix
    m = one(TRACCAR_TEXT[19])
    assert m.type == STATUS and m.extra["cells"][1] == Cell(470, 2, 92, 19433, 30)
    m = one(TRACCAR_TEXT[20])
    (p,) = m.positions
    assert p.realtime is False and p.extra["date_only"] is True and p.lat < 0
    assert p.fix_time == dt.datetime(2017, 9, 8, tzinfo=UTC)
    # traccar: XT is ignored
    assert one(TRACCAR_TEXT[21]).type == OTHER


def test_htbt_with_battery_and_no_fix_v1() -> None:
    assert one(b"*HQ,135790246811220,HTBT,80#").battery_pct == 80  # built (Traccar PATTERN_HTBT)
    # traccar: V1 without time/date -> no position (Traccar would use the server clock)
    m = one(
        b"*HQ,353505220873067,V1,,V,4605.75732,N,01430.73863,E,0.00,0,,FFFFFFEF,125,194,  64,d3#"
    )
    assert (m.type, m.positions, m.extra["status"]) == (STATUS, (), 0xFFFFFFEF)
    # traccar: all-zero no-fix frame
    m = one(
        b"*HQ,353588020068342,V1,000000,V,0.0000,0,0.0000,0,0.00,0.00,000000,ffffffff,000106,"
        b"000002,000203,004c87,16#"
    )
    assert m.type == STATUS and m.positions == ()
    assert h02.encode_reply(m, now=NOW) == b"*HQ,353588020068342,V4,V1,20240102030405#"


# --------------------------------------------------------------------------------------------
# Units, signs and the active-low status word (built frames)


@pytest.mark.parametrize(
    ("ns", "ew", "lat_sign", "lon_sign"),
    [("N", "E", 1, 1), ("S", "E", -1, 1), ("N", "W", 1, -1), ("S", "W", -1, -1)],
)
def test_hemisphere_signs(ns: str, ew: str, lat_sign: int, lon_sign: int) -> None:
    (p,) = one(v1(ns=ns, ew=ew)).positions
    assert p.lat == pytest.approx(lat_sign * (34 + 15.6 / 60))
    assert p.lon == pytest.approx(lon_sign * (108 + 56.4 / 60))


@pytest.mark.parametrize(
    ("knots", "kmh"), [("000.00", 0.0), ("010.00", 18.52), ("54.0", 100.008), ("1", 1.852)]
)
def test_knots_to_kmh(knots: str, kmh: float) -> None:
    (p,) = one(v1(speed=knots)).positions
    assert p.speed_kmh == pytest.approx(kmh)


@pytest.mark.parametrize(
    ("bit", "alarms", "acc", "fuel_cut"),
    [
        (None, (), True, False),  # FFFFFFFF: nothing active, ACC on (bit10 set)
        (0, (ALARM_VIBRATION,), True, False),
        (1, (ALARM_SOS,), True, False),
        (18, (ALARM_SOS,), True, False),
        (2, (ALARM_OVERSPEED,), True, False),
        (19, (ALARM_POWER_CUT,), True, False),
        (10, (), False, False),  # ACC off
        (27, (), True, True),  # oil / engine cut
        (5, (), True, False),  # unmapped bit: raw only
    ],
)
def test_status_bits_active_low(
    bit: int | None, alarms: tuple[str, ...], acc: bool, fuel_cut: bool
) -> None:
    word = 0xFFFFFFFF if bit is None else 0xFFFFFFFF & ~(1 << bit)
    (p,) = one(v1(status=f"{word:08X}")).positions
    assert (p.alarms, p.acc, p.fuel_cut, p.extra["status"]) == (alarms, acc, fuel_cut, word)


def test_status_several_alarms_all_raised() -> None:
    (p,) = one(v1(status=f"{0xFFFFFFFF & ~0x80003:08X}")).positions
    assert p.alarms == (ALARM_VIBRATION, ALARM_SOS, ALARM_POWER_CUT)


def test_valid_flag_and_fix_time() -> None:
    (p,) = one(v1(valid="V")).positions
    assert p.valid is False
    (p,) = one(v1(date="290224", time="235959")).positions
    assert p.fix_time == dt.datetime(2024, 2, 29, 23, 59, 59, tzinfo=UTC)


# --------------------------------------------------------------------------------------------
# Malformed frames -> FrameError only

MALFORMED = [
    b"",
    b"#",
    b"*HQ#",
    b"*HQ,4210051415#",
    b"*H,4210051415,V1#",
    b"*HQ,42100x1415,V1,081530,A,3415.6000,N,10856.4000,E,0,0,150324,FFFFFFFF#",
    b"*HQ,4210051415,V1,081530,A,3415.6000,N,10856.4000,E,0,0,150324,FFFFFFFF",  # no '#'
    v1(date="320124"),
    v1(date="151324"),
    v1(time="246000"),
    v1(time="08153"),
    v1(lat="9115.0000"),
    v1(lat="3465.0000"),
    v1(lon="18100.0000"),
    v1(lat="34x5.6000"),
    v1(lat="nan"),
    v1(lat="-34-1x.0"),
    v1(lat="123"),
    v1(ns="X"),
    v1(ew="N"),
    v1(valid="Q"),
    v1(speed="-1"),
    v1(speed="1e5"),
    v1(speed="inf"),
    v1(course="361"),
    v1(course="9_0"),
    v1(status="FFFFFFFG"),
    v1(status="+FFFFFFF"),
    v1(dev="1" * 21),
    b"*HQ,4210051415,V1,081530,A,3415.6000,N,10856.4000,E,0,0#",  # too few fields
    b"*HQ,4210051415,V1,081530,A,3415.6000,N,10856.4000,E,0,0,150324,XYZ#",
    b"*HQ,4210051415,V4#",
    b"*HQ,4210051415,NBR,103732,722,310,0,6,8106,32010,23,100217,FFFFFBFF#",  # count 6, 1 cell
    b"*HQ,4210051415,NBR,103732,722,310,0,1,8106,32010,x,100217,FFFFFBFF#",
    b"*HQ,4210051415,LINK,180902,15,0,84,0,0,240517#",
    b"*HQ,4210051415,LINK,180902,15,0,84,0,0,240517,FFFFFBFZ#",
    b"*HQ,355488020882405,V3,095426,74001,02,010278,045142,128,-92,02DD,0,X,090517,FFFFFBFF#",
    b"*hq,356327081001239,VP1,V,470,002,92,3565#",
    b"*hq,356327080425330,VP1,A,2702.7245,Q,15251.9311,E,0.48,0.0000,080917#",
    "*HQ,4210051415,V1,081530,A,3415.6000,N,10856.4000,E,0,0,150324,FFFFFFFF,é#".encode(),
    b"$",
    TRACCAR_BINARY[0][:31],
    TRACCAR_BINARY[0] + b"\x00",
    b"$" + b"\xaa" * 31,
    b"x" + TRACCAR_BINARY[0][1:],
]


@pytest.mark.parametrize("frame", MALFORMED)
def test_malformed_raises_frame_error(frame: bytes) -> None:
    with pytest.raises(FrameError):
        h02.decode(frame)


def test_binary_bad_fields() -> None:
    good = TRACCAR_BINARY[0]
    for changes in [
        {7: 0x99},  # hour 99
        {9: 0x45},  # day 45
        {12: 0x7A},  # latitude not BCD
        {13: 0x61},  # latitude minutes >= 60
        {21: 0xA1},  # longitude not BCD
        {22: 0xA0},  # speed not BCD
        {23: 0x04, 24: 0x00},  # course 400
        {1: 0xA1},  # id not BCD
    ]:
        bad = bytearray(good)
        for index, value in changes.items():
            bad[index] = value
        with pytest.raises(FrameError):
            h02.decode(bytes(bad))


# --------------------------------------------------------------------------------------------
# Framing


def test_split_sticky_garbage_newlines() -> None:
    buf = b"xx\r\n" + V43 + b"\r\n" + V47 + V46 + TRACCAR_BINARY[0] + V49[:20]
    frames, rest, discarded = h02.split_frames(buf)
    assert frames == [V43, V47, V46, TRACCAR_BINARY[0]]
    assert rest == V49[:20]
    assert discarded == 6
    assert sum(map(len, frames)) + len(rest) + discarded == len(buf)


def test_split_frames_fed_byte_by_byte() -> None:
    stream = V43 + V44 + b"\n" + TRACCAR_BINARY[0] + V47
    rest = b""
    got: list[bytes] = []
    for i in range(len(stream)):
        frames, rest, _ = h02.split_frames(rest + stream[i : i + 1])
        got += frames
    assert got == [V43, V44, TRACCAR_BINARY[0], V47] and rest == b""


def test_split_text_frame_interrupted_by_new_start() -> None:
    frames, rest, discarded = h02.split_frames(b"*HQ,123,V1,\n" + V47 + b"*HQ,1" + V48)
    assert frames == [V47, V48] and rest == b"" and discarded == 12 + 5


def test_split_oversized_discarded_and_resync() -> None:
    big = b"*HQ," + b"1" * 600
    frames, rest, discarded = h02.split_frames(big + V43)
    assert frames == [V43] and rest == b"" and discarded == len(big)
    # resync at a '$' inside the oversized run
    frames, rest, discarded = h02.split_frames(b"*" + b"A" * 520 + b"$" + b"\x00" * 3)
    assert frames == [] and rest == b"$" + b"\x00" * 3 and discarded == 521
    # exactly MAX_FRAME bytes is still a frame, one more is not
    ok = b"*HQ," + b"9" * (h02.MAX_FRAME - 5) + b"#"
    assert len(ok) == h02.MAX_FRAME
    assert h02.split_frames(ok)[0] == [ok]
    too_big = b"*HQ," + b"9" * (h02.MAX_FRAME - 4) + b"#"
    assert h02.split_frames(too_big) == ([], b"", len(too_big))
    # a partial frame below the limit waits
    assert h02.split_frames(b"*HQ," + b"9" * 400) == ([], b"*HQ," + b"9" * 400, 0)


def test_split_binary_lengths() -> None:
    short, long_ = TRACCAR_BINARY[0], V46
    # auto: 32 or 45 from what follows / where the buffer ends
    assert h02.split_frames(short) == ([short], b"", 0)
    assert h02.split_frames(long_) == ([long_], b"", 0)
    assert h02.split_frames(long_ + short + long_)[0] == [long_, short, long_]
    assert h02.split_frames(short + b"*HQ")[0:2] == ([short], b"*HQ")
    assert h02.split_frames(long_[:40]) == ([], long_[:40], 0)  # could be a 45-byte frame
    assert h02.split_frames(short[:20]) == ([], short[:20], 0)
    # fixed length (a session that latched the device's frame length)
    assert h02.split_frames(long_[:32], binary_length=45) == ([], long_[:32], 0)
    frame42 = TRACCAR_BINARY[3]
    assert h02.split_frames(frame42 + frame42, binary_length=42)[0] == [frame42, frame42]
    with pytest.raises(ValueError):
        h02.split_frames(b"", binary_length=33)
    # a '$' not followed by BCD is garbage
    assert h02.split_frames(b"$\xff" + V47) == ([V47], b"", 2)


# --------------------------------------------------------------------------------------------
# Commands


def test_commands() -> None:
    now = dt.datetime(2024, 1, 2, 13, 3, 5, tzinfo=UTC)
    assert h02.fuel_cut("4210051415", now=now) == b"*HQ,4210051415,S20,130305,1,1#"
    assert h02.fuel_restore("4210051415", now=now) == b"*HQ,4210051415,S20,130305,1,0#"
    assert h02.set_interval("4210051415", 30, now=now) == b"*HQ,4210051415,D1,130305,30#"
    assert (
        h02.set_interval("4210051415", 65535, now=now, variant="S71")
        == b"*HQ,4210051415,S71,130305,22,65535#"
    )
    assert h02.reboot("4210051415", now=now) == b"*HQ,4210051415,R1,130305#"
    assert h02.alarm_arm("4210051415", now=now) == b"*HQ,4210051415,SCF,130305,0,0#"
    assert h02.alarm_disarm("4210051415", now=now) == b"*HQ,4210051415,SCF,130305,1,1#"
    local = dt.datetime(2024, 1, 2, 21, 3, 5, tzinfo=dt.timezone(dt.timedelta(hours=8)))
    assert h02.encode_command("135790246811220", "S20,1,1", now=local) == (
        b"*HQ,135790246811220,S20,130305,1,1#"
    )
    # the device's V4 reply echoes the command time: the session matches on it
    assert one(TRACCAR_TEXT[15]).extra["reply"][-1] == "130305"


@pytest.mark.parametrize("seconds", [4, 65536, 0, -5, 30.0, True])
def test_set_interval_validated(seconds: object) -> None:
    with pytest.raises(ValueError):
        h02.set_interval("4210051415", seconds, now=NOW)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("device_id", "command"),
    [
        ("42100514x5", "S20,1,1"),
        ("4210051415", "S20#"),
        ("4210051415", ""),
        ("1", "S*1"),
        ("1", ",1"),
    ],
)
def test_encode_command_rejects_bad_input(device_id: str, command: str) -> None:
    with pytest.raises(ValueError):
        h02.encode_command(device_id, command, now=NOW)


# --------------------------------------------------------------------------------------------
# Properties


def _accounted(buf: bytes, **kw: object) -> tuple[list[bytes], bytes, int]:
    frames, rest, discarded = h02.split_frames(buf, **kw)  # type: ignore[arg-type]
    assert sum(len(f) for f in frames) + len(rest) + discarded == len(buf)
    assert len(rest) <= h02.MAX_FRAME
    return frames, rest, discarded


def _decode_or_frame_error(frame: bytes) -> None:
    try:
        msgs = h02.decode(frame)
    except FrameError:
        return
    assert len(msgs) == 1 and msgs[0].protocol == "h02"


noisy = st.lists(
    st.one_of(
        st.binary(max_size=60),
        st.sampled_from(VALID_FRAMES),
        st.sampled_from([b"\r\n", b"*", b"$", b"#", b",", b"*HQ,1,V1,"]),
    ),
    max_size=12,
).map(b"".join)


@PROPS
@given(st.binary(max_size=600) | noisy)
def test_prop_split_accounts_for_every_byte_and_decode_is_safe(buf: bytes) -> None:
    for kw in ({}, {"binary_length": 32}, {"binary_length": 45}):
        frames, _, _ = _accounted(buf, **kw)
        for frame in frames:
            _decode_or_frame_error(frame)


@PROPS
@given(
    st.sampled_from(VALID_FRAMES),
    st.integers(min_value=0, max_value=600),
    st.integers(min_value=0, max_value=255),
)
def test_prop_single_byte_mutation_or_truncation(frame: bytes, index: int, value: int) -> None:
    i = index % len(frame)
    _decode_or_frame_error(frame[:i] + bytes([value]) + frame[i + 1 :])
    _decode_or_frame_error(frame[:i])
    _decode_or_frame_error(frame[:i] + frame[i + 1 :])


def _feed(buf: bytes, cuts: list[int], **kw: object) -> tuple[list[bytes], bytes, int]:
    rest = b""
    frames: list[bytes] = []
    discarded = 0
    last = 0
    for cut in [*sorted(set(cuts)), len(buf)]:
        got, rest, d = h02.split_frames(rest + buf[last:cut], **kw)  # type: ignore[arg-type]
        frames += got
        discarded += d
        last = cut
    return frames, rest, discarded


chunked = st.one_of(st.binary(max_size=400), noisy).flatmap(
    lambda b: st.tuples(st.just(b), st.lists(st.integers(0, len(b)), max_size=8))
)


@PROPS
@given(chunked, st.sampled_from([32, 45]))
def test_prop_chunked_equals_whole_fixed_length(case: tuple[bytes, list[int]], length: int) -> None:
    buf, cuts = case
    assert _feed(buf, cuts, binary_length=length) == h02.split_frames(buf, binary_length=length)


@PROPS
@given(chunked)
def test_prop_chunked_equals_whole_auto(case: tuple[bytes, list[int]]) -> None:
    # auto mode guesses 32/45 from the bytes at hand: reads ending exactly 32 or 45 bytes after a
    # '$' are the documented exception
    buf, cuts = case
    dollars = {i for i, b in enumerate(buf) if b == 0x24}
    assume(not any(c - 32 in dollars or c - 45 in dollars for c in cuts))
    assert _feed(buf, cuts) == h02.split_frames(buf)
