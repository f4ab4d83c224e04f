"""JT/T 808 (2011 / 2013 / 2019) codec: pure functions, no Django, no I/O, no mutable globals.

Framing (PROTOCOLS.md 2.2): ``7E | header | body | XOR | 7E`` with 0x7E -> 7D 02 and 0x7D -> 7D 01
inside. Header: msg id (2), properties (2: body length bits 0-9, encryption bits 10-12, sub-package
bit 13, version flag bit 14 = 2019), [2019: protocol version (1)], terminal phone BCD[6] (BCD[10] in
2019), serial (2), [sub-package: total (2) + index (2)]. Unlike Traccar we verify the XOR (unless
``lenient``), the body length and the escapes, and we handle sub-packages (stateless: see
``reassemble`` / ``missing`` / ``encode_resend_request``; the session keeps the parts).

Version in ``extra["version"]``: 2019 when the header's bit 14 is set; 2011 for a 0x0100 register
whose body is too short for the 2013 layout (model 8 bytes instead of 20); 2013 otherwise (the
2011 and 2013 headers are identical, so a non-register frame cannot tell them apart).

Times are BCD ``YYMMDDhhmmss`` in Beijing time (GMT+8, Traccar's default too) -> aware UTC.

Alarm word (0x0200 DWORD), decoded per the STANDARD (PROTOCOLS.md 2.5; not Traccar's non-standard
vendor bits 15-18, which the standard reserves (2013) or defines as driving warnings (2019)).
Every set bit is named in ``Position.extra["alarm_names"]``; the raw word is
``extra["alarm_word"]``. Bits mapped onto the platform's alarm kinds:

    bit  standard meaning                          platform kind
    ---  ----------------------------------------  ------------------------------------------
     0   emergency alarm (SOS switch)              sos
     1   overspeed alarm                           overspeed
     5   GNSS antenna not connected / cut          removal (cutting the antenna is the classic
                                                   way to blind a tracker: tamper)
     7   terminal main power under-voltage         low_battery
     8   terminal main power down (cut)            power_cut
    20   enter / exit area                         geofence
    21   enter / exit route                        geofence
    28   illegal displacement                      displacement

Not mapped (named in extra only): 2 fatigue, 3 danger warning, 4 GNSS fault, 6 antenna short
(a hardware fault more often than tamper), 9-12 peripheral faults, 13-14 pre-warnings, 15-17
(2013 reserved; 2019 violation-driving / tyre-pressure / right-turn blind-spot warnings), 18 day
driving overtime, 19 parking overtime, 22 road-section time, 23 route deviation, 24 VSS fault,
25 fuel abnormal, 26 vehicle stolen (anti-theft device), 27 illegal ignition, 29 collision,
30 rollover, 31 illegal door opening -- the platform has no kind for them (yet).

Status word (standard): bit 0 ACC -> ``acc``; bit 1 positioned -> ``valid``; bit 2 south and
bit 3 west -> negative lat / lon; bit 10 oil circuit cut -> ``fuel_cut``; bit 11 electric circuit
cut -> ``extra["circuit_cut"]``; raw word in ``extra["status_word"]``.

Additional items of 0x0200: 0x01 mileage (1/10 km -> odometer_km), 0x02 fuel (1/10 L ->
extra["fuel_l"]), 0x03 recorder speed (extra["recorder_speed_kmh"]), 0x04 alarm event id,
0x25 extended vehicle signal status (extra["ext_signal_status"]), 0x2A IO status (bit 0 deep
sleep, bit 1 sleep -> sleeping; extra["io_status"], extra["deep_sleep"]), 0x2B analog
(extra["ad0"], extra["ad1"]), 0x30 signal strength CSQ 0-31 -> gsm_signal round(v*100/31)
(raw in extra["csq"]), 0x31 GNSS satellites. Anything else (0x11-0x18, vendor 0xE1-0xFF, OBD
blocks ...) is kept raw as hex in ``extra["items"]`` keyed by the 2-digit hex id. A truncated
item keeps the position and sets ``extra["truncated_items"] = True``.

Downlink fuel cut: 0x8105 terminal control with command word 0x64 (cut oil/electric circuit) /
0x65 (restore). The standard's command words stop at 7 (4 = terminal reset), so fuel cut is a
vendor extension either way; 0x64/0x65 is the common one (Traccar uses it for W15L; its
default 0xF0/0xF1 is rarer). 0x8500 "vehicle control" is not used: its 2013 control flag bit 0
is door lock/unlock, and 2019 turned it into a control-id list. ``terminal_control`` takes any
command word for models that differ.
"""

from __future__ import annotations

import datetime as dt
import struct
from collections.abc import Iterable, Mapping
from typing import Any

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
    ChecksumError,
    FrameError,
    Message,
    Position,
    new_message,
    new_position,
)

__all__ = [
    "ALARM_BITS",
    "MAX_BODY",
    "MAX_FRAME",
    "PROTOCOL",
    "decode",
    "decode_body",
    "encode_command",
    "encode_general_response",
    "encode_message",
    "encode_reply",
    "encode_resend_request",
    "escape",
    "fuel_cut",
    "locate_now",
    "missing",
    "reassemble",
    "reboot",
    "set_interval",
    "split_frames",
    "terminal_control",
    "unescape",
]

PROTOCOL = "jt808"

MAX_BODY = 0x3FF  # 10-bit body length
# Longest legal frame on the wire: 2019 header with sub-package fields (21) + body (1023) +
# checksum (1), every byte escaped to two, plus both delimiters. Anything longer is garbage.
MAX_FRAME = 2 + 2 * (21 + MAX_BODY + 1)

# Message ids.
MSG_TERMINAL_RESPONSE = 0x0001
MSG_HEARTBEAT = 0x0002
MSG_LOGOUT = 0x0003
MSG_REGISTER = 0x0100
MSG_AUTH = 0x0102
MSG_ATTRIBUTES = 0x0107
MSG_LOCATION = 0x0200
MSG_LOCATION_QUERY_REPLY = 0x0201
MSG_VEHICLE_CONTROL_REPLY = 0x0500
MSG_WAYBILL = 0x0701  # electronic waybill; vendors answer text commands with it
MSG_BATCH = 0x0704
MSG_GENERAL_RESPONSE = 0x8001
MSG_RESEND_REQUEST = 0x8003
MSG_REGISTER_RESPONSE = 0x8100
MSG_SET_PARAMETERS = 0x8103
MSG_TERMINAL_CONTROL = 0x8105
MSG_LOCATION_QUERY = 0x8201

# 0x8105 command words.
CONTROL_RESET = 4  # standard: terminal reset
CONTROL_FUEL_CUT = 0x64  # vendor: cut oil / electric circuit
CONTROL_FUEL_RESTORE = 0x65  # vendor: restore

PARAM_REPORT_INTERVAL = 0x0029  # default time-based report interval, DWORD seconds

# (bit, standard name, platform alarm kind or None). See the module docstring.
ALARM_BITS: tuple[tuple[int, str, str | None], ...] = (
    (0, "emergency", ALARM_SOS),
    (1, "overspeed", ALARM_OVERSPEED),
    (2, "fatigue_driving", None),
    (3, "danger_warning", None),
    (4, "gnss_module_fault", None),
    (5, "gnss_antenna_cut", ALARM_REMOVAL),
    (6, "gnss_antenna_short", None),
    (7, "main_power_undervoltage", ALARM_LOW_BATTERY),
    (8, "main_power_cut", ALARM_POWER_CUT),
    (9, "display_fault", None),
    (10, "tts_fault", None),
    (11, "camera_fault", None),
    (12, "ic_card_fault", None),
    (13, "overspeed_warning", None),
    (14, "fatigue_warning", None),
    (15, "violation_driving_warning", None),  # 2013: reserved
    (16, "tyre_pressure_warning", None),  # 2013: reserved
    (17, "right_turn_blind_spot_warning", None),  # 2013: reserved
    (18, "driving_overtime_day", None),
    (19, "parking_overtime", None),
    (20, "area_in_out", ALARM_GEOFENCE),
    (21, "route_in_out", ALARM_GEOFENCE),
    (22, "route_time_abnormal", None),
    (23, "route_deviation", None),
    (24, "vss_fault", None),
    (25, "fuel_abnormal", None),
    (26, "vehicle_stolen", None),
    (27, "illegal_ignition", None),
    (28, "illegal_displacement", ALARM_DISPLACEMENT),
    (29, "collision_warning", None),
    (30, "rollover_warning", None),
    (31, "illegal_door_open", None),
)

_HEAD = struct.Struct(">HH")
_H = struct.Struct(">H")
_HH = struct.Struct(">HH")
_HHB = struct.Struct(">HHB")
_HB = struct.Struct(">HB")
_I = struct.Struct(">I")
# alarm, status, lat, lon, altitude (signed, m), speed (1/10 km/h), course, BCD time
_POS = struct.Struct(">IIIIhHH6s")
_POS_LEN = _POS.size  # 28

# BCD byte -> value, -1 for a nibble above 9.
_BCD: tuple[int, ...] = tuple(
    (b >> 4) * 10 + (b & 0x0F) if (b >> 4) < 10 and (b & 0x0F) < 10 else -1 for b in range(256)
)
_UTC = dt.UTC
_BEIJING_OFFSET = dt.timedelta(hours=8)

_M512 = (1 << 512) - 1
_M256 = (1 << 256) - 1
_M128 = (1 << 128) - 1
_M64 = (1 << 64) - 1

_MALFORMED = (IndexError, struct.error, ValueError, UnicodeError, OverflowError)


# --------------------------------------------------------------------------------------------
# Framing
# --------------------------------------------------------------------------------------------


def split_frames(buf: bytes) -> tuple[list[bytes], bytes, int]:
    """Cut ``buf`` into raw frames (still escaped, both 0x7E delimiters included).

    Returns (frames, rest, discarded): ``rest`` is a partial frame to prepend to the next read;
    ``discarded`` counts garbage bytes (before a frame start, the first 0x7E of an empty 7E 7E
    pair, and oversized frames). Every byte of ``buf`` ends up in exactly one of the three.
    """
    if not isinstance(buf, bytes):
        buf = bytes(buf)
    frames: list[bytes] = []
    discarded = 0
    n = len(buf)
    find = buf.find
    i = 0
    while i < n:
        s = find(b"\x7e", i)
        if s < 0:
            return frames, b"", discarded + n - i
        discarded += s - i
        e = find(b"\x7e", s + 1)
        if e < 0:
            if n - s >= MAX_FRAME:  # can only grow past MAX_FRAME: drop it and resync
                return frames, b"", discarded + n - s
            return frames, buf[s:], discarded
        if e == s + 1:  # 7E 7E: the second one starts the next frame
            discarded += 1
        elif e - s + 1 > MAX_FRAME:
            discarded += e - s
        else:
            frames.append(buf[s : e + 1])
            e += 1
        i = e
    return frames, b"", discarded


def unescape(body: bytes) -> bytes:
    """7D 02 -> 7E, 7D 01 -> 7D; any other byte after 7D (or a trailing 7D) -> FrameError."""
    if b"\x7d" not in body:
        return bytes(body)
    if body.count(b"\x7d") != body.count(b"\x7d\x01") + body.count(b"\x7d\x02"):
        raise FrameError("escape: 0x7d not followed by 01 or 02")
    return body.replace(b"\x7d\x02", b"\x7e").replace(b"\x7d\x01", b"\x7d")


def escape(body: bytes) -> bytes:
    """7D -> 7D 01, 7E -> 7D 02 (in that order)."""
    return bytes(body).replace(b"\x7d", b"\x7d\x01").replace(b"\x7e", b"\x7d\x02")


def _xor(data: bytes, end: int) -> int:
    """XOR of data[:end]: fold one big integer (byte-aligned halves) instead of a byte loop."""
    x = int.from_bytes(data[:end], "big")
    while x >> 512:
        x = (x >> 512) ^ (x & _M512)
    x = (x >> 256) ^ (x & _M256)
    x = (x >> 128) ^ (x & _M128)
    x = (x >> 64) ^ (x & _M64)
    x = (x >> 32) ^ (x & 0xFFFFFFFF)
    x = (x >> 16) ^ (x & 0xFFFF)
    return (x >> 8) ^ (x & 0xFF)


# --------------------------------------------------------------------------------------------
# Decoding
# --------------------------------------------------------------------------------------------


def decode(frame: bytes, *, lenient: bool = False) -> list[Message]:
    """Decode one frame from ``split_frames``; FrameError for anything that must be dropped."""
    if not isinstance(frame, bytes):
        frame = bytes(frame)
    if len(frame) < 2 or frame[0] != 0x7E or frame[-1] != 0x7E:
        raise FrameError("delimiter: frame must start and end with 0x7e")
    data = frame[1:-1]
    if b"\x7d" in data:
        data = unescape(data)
    n = len(data)
    if n < 13:
        raise FrameError("short: no room for a header")
    if not lenient and _xor(data, n - 1) != data[n - 1]:
        raise ChecksumError("checksum")
    msg_id, props = _HEAD.unpack_from(data)
    extra: dict[str, Any]
    if props & 0x4000:
        if n < 18:
            raise FrameError("short: no room for a 2019 header")
        device_id = data[5:15].hex()
        serial = (data[15] << 8) | data[16]
        off = 17
        version = 2019
        extra = {"version": 2019, "protocol_version": data[4]}
    else:
        device_id = data[4:10].hex()
        serial = (data[10] << 8) | data[11]
        off = 12
        version = 2013
        extra = {"version": 2013}
    if props & 0x1C00:
        raise FrameError(f"encrypted body (mode {(props >> 10) & 7}) is not supported")
    sub: tuple[int, int] | None = None
    if props & 0x2000:
        if n < off + 5:
            raise FrameError("short: no room for the sub-package fields")
        sub = _HH.unpack_from(data, off)
        off += 4
    if n - 1 - off != props & 0x3FF:
        raise FrameError(f"length: header says {props & 0x3FF}, body has {n - 1 - off}")
    body = data[off : n - 1]
    if sub is not None:
        total, index = sub
        if total == 0 or index == 0 or index > total:
            raise FrameError(f"sub-package {index}/{total}")
        if total > 1:
            extra["subpackage"] = {
                "total": total,
                "index": index,
                "msg_id": msg_id,
                "first_serial": (serial - index + 1) & 0xFFFF,
                "body": body,
            }
            return [
                new_message(
                    protocol=PROTOCOL,
                    type=OTHER,
                    device_id=device_id,
                    serial=serial,
                    msg_id=msg_id,
                    frame=frame,
                    extra=extra,
                )
            ]
    try:
        return [_decode_body(msg_id, body, device_id, serial, version, frame, extra)]
    except FrameError:
        raise
    except _MALFORMED as exc:  # safety net: a frame never raises anything but FrameError
        raise FrameError(f"malformed 0x{msg_id:04x} body: {exc!r}") from exc


def decode_body(
    msg_id: int,
    body: bytes,
    *,
    device_id: str,
    serial: int,
    version: int = 2013,
    protocol_version: int | None = None,
    frame: bytes = b"",
) -> Message:
    """Decode a message body without framing: a reassembled sub-packaged message, for example.

    Use the header values of the first part (``extra["subpackage"]["first_serial"]`` as serial).
    """
    extra: dict[str, Any] = {"version": version}
    if version == 2019:
        extra["protocol_version"] = 1 if protocol_version is None else protocol_version
    try:
        return _decode_body(msg_id, bytes(body), device_id, serial, version, frame, extra)
    except FrameError:
        raise
    except _MALFORMED as exc:
        raise FrameError(f"malformed 0x{msg_id:04x} body: {exc!r}") from exc


def _decode_body(
    msg_id: int,
    body: bytes,
    device_id: str,
    serial: int,
    version: int,
    frame: bytes,
    extra: dict[str, Any],
) -> Message:
    positions: tuple[Position, ...] = ()
    text: str | None = None
    if msg_id == MSG_LOCATION:
        kind = POSITION
        positions = (_position(body, 0, len(body), True),)
    elif msg_id == MSG_BATCH:
        kind = POSITION
        positions = _batch(body, extra)
    elif msg_id == MSG_HEARTBEAT:
        kind = HEARTBEAT
    elif msg_id == MSG_TERMINAL_RESPONSE:
        kind = TERMINAL_RESPONSE
        if len(body) < 5:
            raise FrameError("short 0x0001 body")
        extra["reply_serial"], extra["reply_id"] = _HH.unpack_from(body)
        extra["result"] = body[4]
    elif msg_id == MSG_AUTH:
        kind = AUTH
        text = _auth(body, version, extra)
    elif msg_id == MSG_REGISTER:
        kind = REGISTER
        _register(body, version, extra)
    elif msg_id == MSG_LOGOUT:
        kind = LOGOUT
    elif msg_id in (MSG_LOCATION_QUERY_REPLY, MSG_VEHICLE_CONTROL_REPLY):
        kind = POSITION if msg_id == MSG_LOCATION_QUERY_REPLY else COMMAND_REPLY
        if len(body) < 2:
            raise FrameError(f"short 0x{msg_id:04x} body")
        extra["reply_serial"] = _H.unpack_from(body)[0]
        positions = (_position(body, 2, len(body), True),)
    elif msg_id == MSG_WAYBILL:
        kind = COMMAND_REPLY
        if len(body) < 4:
            raise FrameError("short 0x0701 body")
        size = _I.unpack_from(body)[0]
        text = _text(body[4 : 4 + size])
    elif msg_id == MSG_ATTRIBUTES:
        kind = OTHER
        _attributes(body, version, extra)
    else:
        kind = OTHER
        extra["body"] = body.hex()
    return new_message(
        protocol=PROTOCOL,
        type=kind,
        device_id=device_id,
        serial=serial,
        msg_id=msg_id,
        positions=positions,
        text=text,
        frame=frame,
        extra=extra,
    )


def _text(raw: bytes) -> str:
    """GBK / ASCII string padded with NULs or spaces."""
    return raw.strip(b"\x00 ").decode("gbk", "replace")


def _fix_time(t: bytes) -> dt.datetime:
    bcd = _BCD
    yy, mo, dd, hh, mi, ss = bcd[t[0]], bcd[t[1]], bcd[t[2]], bcd[t[3]], bcd[t[4]], bcd[t[5]]
    if (yy | mo | dd | hh | mi | ss) < 0:
        raise FrameError(f"time: not BCD {t.hex()}")
    try:
        return dt.datetime(2000 + yy, mo, dd, hh, mi, ss, tzinfo=_UTC) - _BEIJING_OFFSET
    except ValueError as exc:
        raise FrameError(f"time: invalid date {t.hex()}") from exc


def _alarm_kinds(word: int) -> tuple[tuple[str, ...], tuple[str, ...]]:
    names: list[str] = []
    kinds: list[str] = []
    for bit, name, kind in ALARM_BITS:
        if word >> bit & 1:
            names.append(name)
            if kind is not None and kind not in kinds:
                kinds.append(kind)
    return tuple(kinds), tuple(names)


def _position(body: bytes, off: int, end: int, realtime: bool) -> Position:
    """One 0x0200 location body in body[off:end] (basic 28 bytes + additional items)."""
    if end - off < _POS_LEN:
        raise FrameError(f"short location body ({end - off} < 28 bytes)")
    alarm, status, lat_i, lon_i, altitude, speed, course, t = _POS.unpack_from(body, off)
    fix_time = _fix_time(t)
    lat = lat_i / 1e6
    lon = lon_i / 1e6
    if status & 4:
        lat = -lat
    if status & 8:
        lon = -lon
    valid = bool(status & 2)
    extra: dict[str, Any] = {
        "alarm_word": alarm,
        "status_word": status,
        "circuit_cut": bool(status & 0x800),
    }
    alarms: tuple[str, ...] = ()
    if alarm:
        alarms, extra["alarm_names"] = _alarm_kinds(alarm)
    if lat_i > 90_000_000 or lon_i > 180_000_000:
        valid = False
        extra["coords_out_of_range"] = True
    odometer = None
    gsm = None
    sats = None
    sleeping = None
    p = off + _POS_LEN
    while p < end:
        if p + 2 > end:
            extra["truncated_items"] = True
            break
        iid = body[p]
        size = body[p + 1]
        v = p + 2
        q = v + size
        if q > end:
            extra["truncated_items"] = True
            break
        if iid == 0x01 and size == 4:
            odometer = int.from_bytes(body[v:q], "big") / 10
        elif iid == 0x30 and size == 1:
            csq = body[v]
            extra["csq"] = csq
            gsm = round(csq * 100 / 31) if csq <= 31 else None
        elif iid == 0x31 and size == 1:
            sats = body[v]
        elif iid == 0x2A and size == 2:
            io = (body[v] << 8) | body[v + 1]
            extra["io_status"] = io
            extra["deep_sleep"] = bool(io & 1)
            sleeping = bool(io & 3)
        elif iid == 0x02 and size == 2:
            extra["fuel_l"] = ((body[v] << 8) | body[v + 1]) / 10
        elif iid == 0x03 and size == 2:
            extra["recorder_speed_kmh"] = ((body[v] << 8) | body[v + 1]) / 10
        elif iid == 0x04 and size == 2:
            extra["alarm_event_id"] = (body[v] << 8) | body[v + 1]
        elif iid == 0x25 and size == 4:
            extra["ext_signal_status"] = int.from_bytes(body[v:q], "big")
        elif iid == 0x2B and size == 4:
            analog = int.from_bytes(body[v:q], "big")
            extra["ad0"] = analog & 0xFFFF
            extra["ad1"] = analog >> 16
        else:
            items = extra.get("items")
            if items is None:
                items = extra["items"] = {}
            items[f"{iid:02x}"] = body[v:q].hex()
        p = q
    return new_position(
        fix_time=fix_time,
        lat=lat,
        lon=lon,
        valid=valid,
        speed_kmh=speed / 10,
        course=course if course < 360 else (0 if course == 360 else None),
        altitude_m=float(altitude),
        satellites=sats,
        realtime=realtime,
        acc=bool(status & 1),
        fuel_cut=bool(status & 0x400),
        gsm_signal=gsm,
        odometer_km=odometer,
        sleeping=sleeping,
        alarms=alarms,
        extra=extra,
    )


def _batch(body: bytes, extra: dict[str, Any]) -> tuple[Position, ...]:
    """0x0704: count (2), type (1: 0 normal batch, 1 blind-area re-upload), [len (2) + 0x0200]."""
    if len(body) < 3:
        raise FrameError("short 0x0704 body")
    count, kind = _HB.unpack_from(body)
    extra["batch_type"] = kind
    extra["count"] = count
    realtime = kind != 1
    end = len(body)
    p = 3
    positions: list[Position] = []
    bad = 0
    for _ in range(count):
        if p + 2 > end:
            extra["truncated_items"] = True
            break
        size = (body[p] << 8) | body[p + 1]
        q = p + 2 + size
        if q > end:
            extra["truncated_items"] = True
            break
        try:
            positions.append(_position(body, p + 2, q, realtime))
        except FrameError:
            bad += 1  # one broken fix does not cost the others
        p = q
    if bad:
        extra["bad_items"] = bad
    return tuple(positions)


def _auth(body: bytes, version: int, extra: dict[str, Any]) -> str:
    """0x0102: 2013 = the code; 2019 = code length (1) + code + IMEI (15) + software version (20).

    Some devices set the 2019 flag but send a 2013 body (PROTOCOLS.md 2.6): the 2019 layout is
    used only when the length byte fits exactly.
    """
    if version == 2019 and body and body[0] + 36 == len(body):
        size = body[0]
        extra["imei"] = _text(body[1 + size : 16 + size])
        extra["software_version"] = _text(body[16 + size :])
        return _text(body[1 : 1 + size])
    return _text(body)


def _register(body: bytes, version: int, extra: dict[str, Any]) -> None:
    """0x0100: province (2), city (2), maker (5/11), model (8/20/30), terminal id (7/30),
    plate colour (1), plate (GBK, rest)."""
    if version == 2019:
        maker, model, term = 11, 30, 30
    elif len(body) >= 37:
        maker, model, term = 5, 20, 7
    else:
        maker, model, term = 5, 8, 7
        extra["version"] = 2011
    fixed = 4 + maker + model + term + 1
    if len(body) < fixed:
        raise FrameError(f"short 0x0100 body ({len(body)} < {fixed} bytes)")
    extra["province"], extra["city"] = _HH.unpack_from(body)
    p = 4
    extra["maker_id"] = _text(body[p : p + maker])
    p += maker
    extra["model"] = _text(body[p : p + model])
    p += model
    extra["terminal_id"] = _text(body[p : p + term])
    p += term
    extra["plate_color"] = body[p]
    extra["plate"] = _text(body[p + 1 :])


def _attributes(body: bytes, version: int, extra: dict[str, Any]) -> None:
    """0x0107 terminal attributes (answer to 0x8107). Malformed -> extra["malformed"]."""
    model, term = (30, 30) if version == 2019 else (20, 7)
    p = 2 + 5 + model + term
    if len(body) < p + 10 + 1:
        extra["malformed"] = True
        extra["body"] = body.hex()
        return
    extra["terminal_type"] = _H.unpack_from(body)[0]
    extra["maker_id"] = _text(body[2:7])
    extra["model"] = _text(body[7 : 7 + model])
    extra["terminal_id"] = _text(body[7 + model : p])
    extra["iccid"] = body[p : p + 10].hex()
    p += 10
    hw = body[p]
    extra["hardware_version"] = _text(body[p + 1 : p + 1 + hw])
    p += 1 + hw
    if p < len(body):
        fw = body[p]
        extra["firmware_version"] = _text(body[p + 1 : p + 1 + fw])
        p += 1 + fw
    if p + 2 <= len(body):
        extra["gnss_attributes"] = body[p]
        extra["comm_attributes"] = body[p + 1]


# --------------------------------------------------------------------------------------------
# Sub-packages (the session keeps the parts; these helpers are pure)
# --------------------------------------------------------------------------------------------


def reassemble(parts: Mapping[int, bytes], total: int) -> bytes | None:
    """The whole body once parts 1..total are all present, else None."""
    if total < 1 or any(i not in parts for i in range(1, total + 1)):
        return None
    return b"".join(parts[i] for i in range(1, total + 1))


def missing(parts: Mapping[int, bytes], total: int) -> list[int]:
    """Package indexes (1-based) still missing."""
    return [i for i in range(1, total + 1) if i not in parts]


def encode_resend_request(
    device_id: str,
    serial: int,
    first_serial: int,
    missing_indexes: Iterable[int],
    *,
    version2019: bool = False,
    protocol_version: int = 1,
) -> bytes:
    """0x8003: original serial (of the first part), count (2013 BYTE, 2019 WORD), indexes WORD."""
    indexes = list(missing_indexes)
    if not indexes:
        raise ValueError("nothing to request")
    if version2019:
        count = _H.pack(len(indexes))
    else:
        if len(indexes) > 0xFF:
            raise ValueError("2013 0x8003 carries at most 255 package indexes")
        count = bytes((len(indexes),))
    body = _H.pack(first_serial & 0xFFFF) + count + b"".join(_H.pack(i) for i in indexes)
    return encode_message(
        MSG_RESEND_REQUEST,
        device_id,
        serial,
        body,
        version2019=version2019,
        protocol_version=protocol_version,
    )


# --------------------------------------------------------------------------------------------
# Encoding
# --------------------------------------------------------------------------------------------


def encode_message(
    msg_id: int,
    device_id: str,
    serial: int,
    body: bytes = b"",
    *,
    version2019: bool = False,
    protocol_version: int = 1,
) -> bytes:
    """Frame a platform message: header, body, XOR checksum, escaping, delimiters."""
    if len(body) > MAX_BODY:
        raise ValueError(f"body of {len(body)} bytes exceeds {MAX_BODY} (sub-packaging needed)")
    digits = 20 if version2019 else 12
    if len(device_id) > digits:
        raise ValueError(f"terminal id {device_id!r} longer than {digits} digits")
    phone = bytes.fromhex(device_id.rjust(digits, "0"))
    props = len(body) | (0x4000 if version2019 else 0)
    head = _HHB.pack(msg_id, props, protocol_version) if version2019 else _HEAD.pack(msg_id, props)
    data = head + phone + _H.pack(serial & 0xFFFF) + bytes(body)
    return b"\x7e" + escape(data + bytes((_xor(data, len(data)),))) + b"\x7e"


def encode_general_response(
    device_id: str,
    serial: int,
    reply_serial: int,
    reply_id: int,
    result: int = 0,
    *,
    version2019: bool = False,
    protocol_version: int = 1,
    msg_id: int = MSG_GENERAL_RESPONSE,
) -> bytes:
    """0x8001 (platform) or, with `msg_id=MSG_TERMINAL_RESPONSE`, 0x0001 (terminal; the
    simulator's side): reply serial (2), reply id (2), result (1: 0 ok, 1 fail, 2 bad,
    3 unsupported, 4 alarm confirmed)."""
    body = _HH.pack(reply_serial & 0xFFFF, reply_id) + bytes((result,))
    return encode_message(
        msg_id,
        device_id,
        serial,
        body,
        version2019=version2019,
        protocol_version=protocol_version,
    )


def encode_reply(
    msg: Message,
    *,
    auth_code: str | None = None,
    server_serial: int = 0,
    result: int = 0,
) -> bytes | None:
    """The platform's answer to ``msg`` (same terminal-id format and version as the request).

    0x0100 -> 0x8100 (reply serial, result, auth code if result 0: the code the platform
    generated and stored; required then). 0x0001 (the terminal answering us) -> None.
    Everything else (auth, heartbeat, logout, 0x0200, 0x0704, 0x0201, unknown ids, each
    sub-package part) -> 0x8001 with ``result``. Position acks must be sent only after the
    positions are committed; for a sub-packaged message hold the last part's ack until the
    reassembled message is committed.
    """
    if msg.protocol != PROTOCOL or msg.msg_id is None or msg.serial is None or not msg.device_id:
        return None
    if msg.msg_id == MSG_TERMINAL_RESPONSE and "subpackage" not in msg.extra:
        return None
    v2019 = msg.extra.get("version") == 2019
    pv = msg.extra.get("protocol_version", 1)
    if msg.msg_id == MSG_REGISTER and "subpackage" not in msg.extra:
        code = b""
        if result == 0:
            if auth_code is None:
                raise ValueError("a successful 0x8100 needs the auth code the platform issued")
            code = auth_code.encode("gbk")
        body = _HB.pack(msg.serial, result) + code
        return encode_message(
            MSG_REGISTER_RESPONSE,
            msg.device_id,
            server_serial,
            body,
            version2019=v2019,
            protocol_version=pv,
        )
    return encode_general_response(
        msg.device_id,
        server_serial,
        msg.serial,
        msg.msg_id,
        result,
        version2019=v2019,
        protocol_version=pv,
    )


def terminal_control(
    device_id: str,
    serial: int,
    command_word: int,
    params: str = "",
    *,
    version2019: bool = False,
    protocol_version: int = 1,
) -> bytes:
    """0x8105 terminal control: command word (1) + optional ';'-separated GBK parameters."""
    body = bytes((command_word,)) + params.encode("gbk")
    return encode_message(
        MSG_TERMINAL_CONTROL,
        device_id,
        serial,
        body,
        version2019=version2019,
        protocol_version=protocol_version,
    )


def fuel_cut(
    device_id: str,
    serial: int,
    cut: bool,
    *,
    version2019: bool = False,
    protocol_version: int = 1,
) -> bytes:
    """0x8105 with 0x64 (cut oil/electric circuit) or 0x65 (restore); see the module docstring."""
    return terminal_control(
        device_id,
        serial,
        CONTROL_FUEL_CUT if cut else CONTROL_FUEL_RESTORE,
        version2019=version2019,
        protocol_version=protocol_version,
    )


def reboot(
    device_id: str, serial: int, *, version2019: bool = False, protocol_version: int = 1
) -> bytes:
    """0x8105 command word 4 (terminal reset, standard)."""
    return terminal_control(
        device_id,
        serial,
        CONTROL_RESET,
        version2019=version2019,
        protocol_version=protocol_version,
    )


def set_interval(
    device_id: str,
    serial: int,
    seconds: int,
    *,
    version2019: bool = False,
    protocol_version: int = 1,
) -> bytes:
    """0x8103 set parameters: one parameter, 0x0029 default report interval (DWORD seconds)."""
    if not 5 <= seconds <= 65535:
        raise ValueError("report interval must be 5..65535 seconds")
    body = bytes((1,)) + _I.pack(PARAM_REPORT_INTERVAL) + bytes((4,)) + _I.pack(seconds)
    return encode_message(
        MSG_SET_PARAMETERS,
        device_id,
        serial,
        body,
        version2019=version2019,
        protocol_version=protocol_version,
    )


def locate_now(
    device_id: str, serial: int, *, version2019: bool = False, protocol_version: int = 1
) -> bytes:
    """0x8201 position query (empty body); the device answers 0x0201."""
    return encode_message(
        MSG_LOCATION_QUERY,
        device_id,
        serial,
        b"",
        version2019=version2019,
        protocol_version=protocol_version,
    )


def encode_command(
    kind: str,
    device_id: str,
    serial: int,
    *,
    version2019: bool = False,
    protocol_version: int = 1,
    **params: Any,
) -> bytes:
    """Downlink by command kind: fuel_cut, fuel_restore, reboot, set_interval (seconds=),
    locate_now. Other kinds (set_mode ...) are vendor specific -> ValueError."""
    opts: dict[str, Any] = {"version2019": version2019, "protocol_version": protocol_version}
    if kind == "fuel_cut":
        return fuel_cut(device_id, serial, True, **opts)
    if kind == "fuel_restore":
        return fuel_cut(device_id, serial, False, **opts)
    if kind == "reboot":
        return reboot(device_id, serial, **opts)
    if kind == "set_interval":
        return set_interval(device_id, serial, int(params["seconds"]), **opts)
    if kind == "locate_now":
        return locate_now(device_id, serial, **opts)
    raise ValueError(f"JT808 has no standard encoding for command {kind!r}")
