"""GT06 (Concox / Jimi family) codec: pure functions, no Django, no I/O, no mutable globals.

Frames (PROTOCOLS.md 2.1)::

    78 78 | LEN(1) | PROTO | CONTENT | SERIAL(2) | CRC(2) | 0D 0A      short frame
    79 79 | LEN(2) | PROTO | CONTENT | SERIAL(2) | CRC(2) | 0D 0A      extended frame

LEN counts PROTO + CONTENT + SERIAL + CRC; the CRC is CRC-16/X-25 over LEN..SERIAL. Unlike Traccar
we verify it (``decode(..., lenient=True)`` skips the check for devices known to get it wrong).

What ``decode`` yields (one ``Message`` per frame):

* 0x01 login -> LOGIN with ``device_id`` = IMEI (15 digits); ``extra``: ``type_id``,
  ``timezone_ext`` (raw), ``tz_offset_min`` (signed minutes east of UTC), ``language``.
* 0x13 status / 0x23 heartbeat -> HEARTBEAT with ``acc``, ``fuel_cut``, ``battery_pct``,
  ``gsm_signal`` and ``alarms`` on the Message (0x23 carries a battery voltage instead of a level:
  ``extra["battery_voltage"]``).
* 0x10, 0x11, 0x12, 0x22, 0x2D, 0x37, 0xA0 (GPS [+LBS] [+ACC, upload mode, re-upload, mileage]) and
  0x16, 0x26, 0x27, 0xA4 (GPS + LBS + status + alarm) and 0x95 with a fix -> POSITION with one
  ``Position``; device state and alarms of the frame sit on the Position.
  A GPS block whose date is all zero (no fix ever) or whose coordinates are out of range gives no
  Position: the frame becomes STATUS (alarms kept, ``extra["no_fix"] = True``).
* 0x18, 0x19, 0x28, 0x2E, 0xA5 (LBS only) and 0x95 without a fix -> STATUS: no Position (cells
  are not a location), ``extra["cells"]`` = tuple of ``Cell``, device state and ``alarms`` on the
  Message.
* 0x15 (7878) and 0x21 (7979) command replies -> COMMAND_REPLY with ``text``.
* 0x8A -> TIME_REQUEST; 0x94 info -> STATUS; everything else (0x80-0x82 included) -> OTHER.

Alarm codes are mapped onto the platform's ``ALARM_*`` kinds; the raw byte is kept in
``extra["alarm_code"]`` and Traccar's name for it in ``extra["alarm_event"]`` (also for codes the
platform has no kind for, e.g. harsh driving). The raw terminal-info byte is
``extra["terminal_info"]``.

Fix times are UTC (the login's timezone extension is reported in ``extra`` for the session to
apply).
"""

from __future__ import annotations

import binascii
import datetime as dt
import struct
from collections.abc import Callable, Mapping
from types import MappingProxyType
from typing import Any, Final

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
    COMMAND_REPLY,
    HEARTBEAT,
    LOGIN,
    OTHER,
    POSITION,
    STATUS,
    TIME_REQUEST,
    Cell,
    ChecksumError,
    FrameError,
    Message,
    new_cell,
    new_message,
    new_position,
)

__all__ = [
    "FUEL_CUT",
    "FUEL_RESTORE",
    "MAX_FRAME",
    "PROTOCOL",
    "REBOOT",
    "crc16_x25",
    "decode",
    "encode_command",
    "encode_reply",
    "interval_command",
    "split_frames",
]

PROTOCOL: Final = "gt06"
MAX_FRAME: Final = 1024  # bytes, whole frame; longer declared lengths are garbage

FUEL_CUT: Final = "RELAY,1#"
FUEL_RESTORE: Final = "RELAY,0#"
REBOOT: Final = "RESET#"

_START_SHORT: Final = b"\x78\x78"
_START_LONG: Final = b"\x79\x79"
_STOP: Final = b"\r\n"
_UTC: Final = dt.UTC

# Protocol numbers (Traccar's Gt06ProtocolDecoder names).
MSG_LOGIN: Final = 0x01
MSG_GPS: Final = 0x10
MSG_GPS_LBS_6: Final = 0x11
MSG_GPS_LBS_1: Final = 0x12
MSG_STATUS: Final = 0x13
MSG_STRING: Final = 0x15
MSG_GPS_LBS_STATUS_1: Final = 0x16
MSG_WIFI: Final = 0x17
MSG_LBS_EXTEND: Final = 0x18
MSG_LBS_STATUS: Final = 0x19
MSG_STRING_INFO: Final = 0x21
MSG_GPS_LBS_2: Final = 0x22
MSG_HEARTBEAT: Final = 0x23
MSG_GPS_LBS_STATUS_2: Final = 0x26
MSG_GPS_LBS_STATUS_3: Final = 0x27
MSG_LBS_MULTIPLE_1: Final = 0x28
MSG_ADDRESS_REQUEST: Final = 0x2A
MSG_GPS_LBS_4: Final = 0x2D
MSG_LBS_MULTIPLE_2: Final = 0x2E
MSG_GPS_LBS_3: Final = 0x37
MSG_WIFI_2: Final = 0x69
MSG_COMMAND_0: Final = 0x80
MSG_COMMAND_1: Final = 0x81
MSG_COMMAND_2: Final = 0x82
MSG_TIME_REQUEST: Final = 0x8A
MSG_INFO: Final = 0x94
MSG_ALARM: Final = 0x95
MSG_ADDRESS_RESPONSE: Final = 0x97
MSG_GPS_LBS_7: Final = 0xA0
MSG_FENCE_MULTI: Final = 0xA4
MSG_LBS_ALARM: Final = 0xA5
MSG_WIFI_4: Final = 0xF3

# 7878 frames Traccar answers with nothing (command replies, info, photo / X1 exchanges).
_NO_ACK: Final = frozenset(
    {MSG_STRING, MSG_STRING_INFO, MSG_COMMAND_0, MSG_COMMAND_1, MSG_COMMAND_2, MSG_INFO, MSG_WIFI_4}
    | {0x34, 0x35}
)

# ---------------------------------------------------------------------------------------------
# CRC-16/X-25 (CRC-ITU): poly 0x1021 reflected (0x8408), init 0xFFFF, xorout 0xFFFF.
# A reflected CRC equals the bit-reversed non-reflected CRC of the bit-reversed input, so the
# byte loop runs in C: bytes.translate (a 256-entry bit-reversal table) + binascii.crc_hqx.

_REV8: Final = bytes(int(f"{i:08b}"[::-1], 2) for i in range(256))


def crc16_x25(data: bytes) -> int:
    """CRC-16/X-25 of `data` (GT06 computes it over LEN..SERIAL)."""
    c = binascii.crc_hqx(bytes(data).translate(_REV8), 0xFFFF)
    return ((_REV8[c & 0xFF] << 8) | _REV8[c >> 8]) ^ 0xFFFF


# ---------------------------------------------------------------------------------------------
# Framing


def split_frames(buf: bytes) -> tuple[list[bytes], bytes, int]:
    """Cut `buf` into whole frames; return (frames, rest, discarded).

    Bytes before a frame start are discarded. A start whose declared length is impossible (LEN < 5
    or a frame over MAX_FRAME) or whose frame does not end in 0D0A where LEN says it ends is not a
    frame: one byte is discarded and the scan resumes (resync). A frame still incomplete at the end
    of `buf` is returned as `rest`, to be prefixed to the next read.
    """
    buf = bytes(buf)
    n = len(buf)
    frames: list[bytes] = []
    discarded = 0
    i = 0
    find = buf.find
    # Next position of each start pattern at or after i (-1: none left), re-searched only when
    # the scan has passed it: garbage full of candidate starts stays linear.
    a = find(_START_SHORT)
    b = find(_START_LONG)
    while i < n:
        if 0 <= a < i:
            a = find(_START_SHORT, i)
        if 0 <= b < i:
            b = find(_START_LONG, i)
        if a < 0 and b < 0:
            # Keep a last lone 0x78 / 0x79: it may be half of a start.
            end = n - 1 if buf[-1] in (0x78, 0x79) else n
            discarded += end - i
            i = end
            break
        s = a if b < 0 or (0 <= a < b) else b
        discarded += s - i
        i = s
        if buf[i] == 0x78:
            if n - i < 3:
                break
            total = buf[i + 2] + 5
            minimum = 10
        else:
            if n - i < 4:
                break
            total = ((buf[i + 2] << 8) | buf[i + 3]) + 6
            minimum = 11
        if total < minimum or total > MAX_FRAME:
            i += 1
            discarded += 1
            continue
        if n - i < total:
            break  # partial frame: wait for more bytes
        end = i + total
        if buf[end - 2] != 0x0D or buf[end - 1] != 0x0A:
            i += 1
            discarded += 1
            continue
        frames.append(buf[i:end])
        i = end
    return frames, buf[i:], discarded


# ---------------------------------------------------------------------------------------------
# Decoding helpers

_GPS_BLOCK: Final = struct.Struct(">6BBIIBH")  # date/time, gps info, lat, lon, speed, course/status
_GPS_BLOCK_SHORT: Final = struct.Struct(">6BIIH")  # 0x95 extended: no satellites, no speed
_U16: Final = struct.Struct(">H")
_U32: Final = struct.Struct(">I")

# Alarm byte (Traccar decodeAlarm) -> (platform kind or None, Traccar's event name).
_ALARM_BYTE: Final[Mapping[int, tuple[str | None, str]]] = MappingProxyType(
    {
        0x01: (ALARM_SOS, "sos"),
        0x02: (ALARM_POWER_CUT, "power_cut"),
        0x03: (ALARM_VIBRATION, "vibration"),
        0x04: (ALARM_GEOFENCE, "geofence_enter"),
        0x05: (ALARM_GEOFENCE, "geofence_exit"),
        0x06: (ALARM_OVERSPEED, "overspeed"),
        0x09: (ALARM_DISPLACEMENT, "movement"),
        0x0C: (ALARM_REMOVAL, "tampering"),
        0x0E: (ALARM_LOW_BATTERY, "low_battery"),
        0x0F: (ALARM_LOW_BATTERY, "low_battery"),
        0x11: (ALARM_POWER_CUT, "power_off"),
        0x13: (ALARM_REMOVAL, "tampering"),
        0x14: (ALARM_CASE_OPEN, "door"),
        0x18: (ALARM_REMOVAL, "removing"),
        0x19: (ALARM_LOW_BATTERY, "low_battery"),
        0x1A: (None, "hard_braking"),
        0x1B: (None, "hard_cornering"),
        0x23: (None, "fall_down"),
        0x25: (ALARM_REMOVAL, "tampering"),
        0x26: (None, "hard_acceleration"),
        0x27: (None, "hard_braking"),
        0x28: (None, "hard_braking"),
        0x29: (None, "hard_acceleration"),
        0x2A: (None, "hard_cornering"),
        0x2B: (None, "hard_cornering"),
        0x2C: (None, "accident"),
        0x2E: (None, "hard_cornering"),
        0x30: (ALARM_FAKE_BASE_STATION, "jamming"),
        0x32: (ALARM_REMOVAL, "tampering"),
        0x33: (None, "lock"),
        0x34: (None, "unlock"),
        0x53: (None, "fuel_leak"),
        0x5B: (None, "temperature"),
        0x5C: (None, "temperature"),
        0xC9: (None, "idle"),
        0xF0: (None, "hard_acceleration"),
        0xF1: (None, "hard_braking"),
        0xF2: (None, "accident"),
    }
)

# Terminal-info bits 3-5 (Traccar decodeStatus).
_STATUS_ALARM: Final = (
    None,
    ALARM_VIBRATION,
    ALARM_POWER_CUT,
    ALARM_LOW_BATTERY,
    ALARM_SOS,
    None,
    ALARM_GEOFENCE,
    ALARM_REMOVAL,
)

# 0x95 (JC100 / JC400) event codes -> (platform kind or None, Traccar's event name).
_EVENT_0x95: Final[Mapping[int, tuple[str | None, str]]] = MappingProxyType(
    {
        0x01: (ALARM_SOS, "sos"),  # only with a fix; the short form is Traccar's "general"
        0x0E: (ALARM_LOW_BATTERY, "low_power"),
        0x76: (None, "temperature"),
        0x80: (ALARM_VIBRATION, "vibration"),
        0x87: (ALARM_OVERSPEED, "overspeed"),
        0x88: (ALARM_POWER_CUT, "power_cut"),
        0x90: (None, "hard_acceleration"),
        0x91: (None, "hard_braking"),
        0x92: (None, "hard_cornering"),
        0x93: (None, "accident"),
    }
)


def _fix_time(yy: int, mo: int, d: int, h: int, mi: int, s: int) -> dt.datetime:
    try:
        return dt.datetime(2000 + yy, mo, d, h, mi, s, tzinfo=_UTC)
    except ValueError:
        raise FrameError(
            f"impossible date {yy:02d}-{mo:02d}-{d:02d} {h:02d}:{mi:02d}:{s:02d}"
        ) from None


def _coords(lat_raw: int, lon_raw: int, flags: int) -> tuple[float, float] | None:
    lat = lat_raw / 1_800_000
    lon = lon_raw / 1_800_000
    if lat > 90.0 or lon > 180.0:
        return None
    if not flags & 0x0400:  # bit 10 set = North
        lat = -lat
    if flags & 0x0800:  # bit 11 set = West
        lon = -lon
    return lat, lon


def _battery_pct(level: int) -> int | None:
    if level <= 6:
        return round(level * 100 / 6)
    return level if level <= 100 else None


def _gsm(level: int) -> int | None:
    return level * 25 if level <= 4 else None


def _cell(
    body: bytes, off: int, four_g: bool = False, wide: bool = False
) -> tuple[Cell | None, int]:
    """One serving cell: MCC 2, MNC 1 (2 if MCC bit 15), LAC 2 (4G: 4), CID 3 (4G: 8; 0x11: 4)."""
    mcc = (body[off] << 8) | body[off + 1]
    off += 2
    if mcc & 0x8000 or wide:
        mnc = (body[off] << 8) | body[off + 1]
        off += 2
    else:
        mnc = body[off]
        off += 1
    if four_g:
        if off + 12 > len(body):
            raise FrameError("truncated cell")
        lac = _U32.unpack_from(body, off)[0]
        cid = int.from_bytes(body[off + 4 : off + 12], "big")
        off += 12
    else:
        lac = (body[off] << 8) | body[off + 1]
        if wide:
            cid = _U32.unpack_from(body, off + 2)[0]
            off += 6
        else:
            cid = (body[off + 2] << 16) | (body[off + 3] << 8) | body[off + 4]
            off += 5
    mcc &= 0x7FFF
    if mcc == 0 and lac == 0 and cid == 0:
        return None, off
    return new_cell(mcc=mcc, mnc=mnc, lac=lac, cid=cid), off


def _cell_with_length(body: bytes, off: int) -> tuple[Cell | None, int]:
    """LBS block of the alarm packets: a length byte, then the cell.

    Classic devices send 8 or 9 (2+1+2+3, with or without the length byte itself); 4G devices
    (JM-LL301 0xA4) send 16 or 17 with LAC 4 + CID 8. Bytes beyond the cell are skipped, and a
    zero length means no cell (some devices then pad with 45 zero bytes, as Traccar skips them).
    """
    length = body[off]
    off += 1
    if length == 0:
        if off + 45 <= len(body) and not any(body[off + 9 : off + 45]):
            off += 45
        return None, off
    wide_mnc = bool(body[off] & 0x80)
    four_g = length - 1 == (2 + (2 if wide_mnc else 1) + 4 + 8)
    start = off
    cell, off = _cell(body, off, four_g=four_g)
    if not four_g:
        off = max(off, start + length - 1)
    if off > len(body):
        raise FrameError("truncated LBS block")
    return cell, off


def _alarms_of(
    status: int | None, alarm_code: int | None, extra: dict[str, Any]
) -> tuple[str, ...]:
    kinds: list[str] = []
    if status is not None:
        kind = _STATUS_ALARM[(status >> 3) & 0x07]
        if kind is not None:
            kinds.append(kind)
    if alarm_code:
        extra["alarm_code"] = alarm_code
        mapped = _ALARM_BYTE.get(alarm_code)
        if mapped is not None:
            extra["alarm_event"] = mapped[1]
            if mapped[0] is not None and mapped[0] not in kinds:
                kinds.append(mapped[0])
    return tuple(kinds)


def _terminal_info(status: int, extra: dict[str, Any]) -> tuple[bool, bool]:
    """Terminal-info byte -> (acc, fuel_cut); the other bits go to `extra`."""
    extra["terminal_info"] = status
    extra["armed"] = bool(status & 0x01)
    extra["charging"] = bool(status & 0x04)
    extra["gps_tracking"] = bool(status & 0x40)
    return bool(status & 0x02), bool(status & 0x80)


def _message(
    kind: str, proto: int, serial: int, frame: bytes, extra: dict[str, Any] | None = None, **kw: Any
) -> list[Message]:
    return [
        new_message(
            protocol=PROTOCOL,
            type=kind,
            device_id=None,
            serial=serial,
            msg_id=proto,
            frame=frame,
            extra=extra if extra is not None else {},
            **kw,
        )
    ]


# ---------------------------------------------------------------------------------------------
# Decoders per protocol number: (proto, content, serial, frame) -> messages

_Handler = Callable[[int, bytes, int, bytes], list[Message]]


def _login(proto: int, body: bytes, serial: int, frame: bytes) -> list[Message]:
    if len(body) < 8:
        raise FrameError("short login")
    digits = body[:8].hex()
    if not digits.isdigit():
        raise FrameError("IMEI is not BCD")
    extra: dict[str, Any] = {}
    if len(body) >= 10:
        extra["type_id"] = _U16.unpack_from(body, 8)[0]
    if len(body) >= 12:
        ext = _U16.unpack_from(body, 10)[0]
        hhmm = ext >> 4
        minutes = (hhmm // 100) * 60 + hhmm % 100
        extra["timezone_ext"] = ext
        extra["tz_offset_min"] = -minutes if ext & 0x08 else minutes
        extra["language"] = ext & 0x03
    return [
        new_message(
            protocol=PROTOCOL,
            type=LOGIN,
            device_id=digits[1:] if len(digits) == 16 and digits[0] == "0" else digits,
            serial=serial,
            msg_id=proto,
            frame=frame,
            extra=extra,
        )
    ]


def _status(proto: int, body: bytes, serial: int, frame: bytes) -> list[Message]:
    """0x13: terminal info, voltage level, GSM level, alarm, language."""
    extra: dict[str, Any] = {}
    if len(body) == 16:
        # Extended status (Traccar: 22 readable bytes): info, satellites(2), alarm, language,
        # battery %, working mode, working voltage(2), reserved, working times(2), time(2), temp(2).
        extra["satellites_raw"] = _U16.unpack_from(body, 1)[0]
        extra["alarm_raw"] = body[3]
        extra["working_mode"] = body[6]
        temp = _U16.unpack_from(body, 14)[0]
        extra["temperature_c"] = (temp & 0x7FFF) / 10 * (1 if temp & 0x8000 else -1)
        battery = body[5]
        return _message(
            HEARTBEAT,
            proto,
            serial,
            frame,
            extra,
            battery_pct=battery if battery <= 100 else None,
        )
    if len(body) < 3:
        raise FrameError("short status")
    acc, fuel_cut = _terminal_info(body[0], extra)
    extra["voltage_level"] = body[1]
    extra["gsm_level"] = body[2]
    alarm_code = body[3] if len(body) > 3 else None
    if len(body) > 4:
        extra["language"] = body[4]
    return _message(
        HEARTBEAT,
        proto,
        serial,
        frame,
        extra,
        acc=acc,
        fuel_cut=fuel_cut,
        battery_pct=_battery_pct(body[1]),
        gsm_signal=_gsm(body[2]),
        alarms=_alarms_of(body[0], alarm_code, extra),
    )


def _heartbeat(proto: int, body: bytes, serial: int, frame: bytes) -> list[Message]:
    """0x23 (GK310): terminal info, battery voltage (0.01 V), GSM level, language."""
    if not body:
        raise FrameError("short heartbeat")
    extra: dict[str, Any] = {}
    status = body[0]
    acc, fuel_cut = _terminal_info(status, extra)
    gsm_signal = None
    if len(body) >= 3:
        extra["battery_voltage"] = _U16.unpack_from(body, 1)[0] / 100
    if len(body) >= 4:
        extra["gsm_level"] = body[3]
        gsm_signal = _gsm(body[3])
    return _message(
        HEARTBEAT,
        proto,
        serial,
        frame,
        extra,
        acc=acc,
        fuel_cut=fuel_cut,
        gsm_signal=gsm_signal,
        alarms=_alarms_of(status, None, extra),
    )


_NO_TIME: Final = dt.datetime(2000, 1, 1, tzinfo=_UTC)  # placeholder, never in a Position


def _gps(body: bytes) -> tuple[dt.datetime, int, tuple[float, float] | None, int, int]:
    """The 18-byte GPS block -> (fix time, satellites, (lat, lon) or None, speed, course/status)."""
    yy, mo, d, h, mi, s, info, lat_raw, lon_raw, speed, flags = _GPS_BLOCK.unpack_from(body, 0)
    if mo == 0 and d == 0 and yy == 0:
        return _NO_TIME, 0, None, 0, 0
    return (
        _fix_time(yy, mo, d, h, mi, s),
        info & 0x0F,
        _coords(lat_raw, lon_raw, flags),
        speed,
        flags,
    )


def _location(proto: int, body: bytes, serial: int, frame: bytes) -> list[Message]:
    """0x10 GPS; 0x11/0x12 GPS+LBS; 0x22/0x2D/0x37/0xA0 GPS+LBS+ACC, upload mode, re-upload
    [+mileage]."""
    fix_time, sats, coords, speed, flags = _gps(body)
    n = len(body)
    off = 18
    cells: tuple[Cell, ...] = ()
    if proto != MSG_GPS and n > off:
        cell, off = _cell(body, off, four_g=proto == MSG_GPS_LBS_7, wide=proto == MSG_GPS_LBS_6)
        if cell is not None:
            cells = (cell,)
    acc = bool(flags & 0x8000) if flags & 0x4000 else None
    realtime = True
    odometer_km = None
    extra: dict[str, Any] = {}
    rem = n - off
    if rem >= 3 and (rem in (3, 7) or proto in (MSG_GPS_LBS_2, MSG_GPS_LBS_4, MSG_GPS_LBS_3)):
        acc = body[off] > 0
        extra["upload_mode"] = body[off + 1]
        reupload = body[off + 2]
        extra["reupload"] = reupload
        realtime = reupload == 0
        off += 3
        rem -= 3
    if rem == 4:
        odometer_km = _U32.unpack_from(body, off)[0] / 1000
    if coords is None:
        return _no_fix(proto, serial, frame, cells, extra, acc=acc)
    lat, lon = coords
    course = flags & 0x03FF
    pos = new_position(
        fix_time=fix_time,
        lat=lat,
        lon=lon,
        valid=bool(flags & 0x1000),
        speed_kmh=float(speed),
        course=course if course < 360 else None,
        satellites=sats,
        realtime=realtime,
        acc=acc,
        cells=cells,
        odometer_km=odometer_km,
        extra=extra,
    )
    return [
        new_message(
            protocol=PROTOCOL,
            type=POSITION,
            device_id=None,
            serial=serial,
            msg_id=proto,
            positions=(pos,),
            frame=frame,
            extra={},
        )
    ]


def _no_fix(
    proto: int,
    serial: int,
    frame: bytes,
    cells: tuple[Cell, ...],
    extra: dict[str, Any],
    **kw: Any,
) -> list[Message]:
    extra["no_fix"] = True
    extra["cells"] = cells
    return _message(STATUS, proto, serial, frame, extra, **kw)


def _status_block(
    body: bytes, off: int, extra: dict[str, Any]
) -> tuple[dict[str, Any], tuple[str, ...], int]:
    """Terminal info, voltage level, GSM level, alarm byte, [language] -> state fields."""
    status, level, gsm, alarm_code = body[off], body[off + 1], body[off + 2], body[off + 3]
    off += 4
    acc, fuel_cut = _terminal_info(status, extra)
    extra["voltage_level"] = level
    extra["gsm_level"] = gsm
    if off < len(body):
        extra["language"] = body[off]
        off += 1
    state = {
        "acc": acc,
        "fuel_cut": fuel_cut,
        "battery_pct": _battery_pct(level),
        "gsm_signal": _gsm(gsm),
    }
    return state, _alarms_of(status, alarm_code, extra), off


def _alarm_position(proto: int, body: bytes, serial: int, frame: bytes) -> list[Message]:
    """0x16 / 0x26 / 0x27 / 0xA4: GPS, LBS (with length), status, alarm, language[, fence]."""
    fix_time, sats, coords, speed, flags = _gps(body)
    cell, off = _cell_with_length(body, 18)
    cells = (cell,) if cell is not None else ()
    extra: dict[str, Any] = {}
    state, alarms, off = _status_block(body, off, extra)
    if proto in (MSG_GPS_LBS_STATUS_3, MSG_FENCE_MULTI) and off < len(body):
        extra["fence_id"] = body[off]
    if coords is None:
        return _no_fix(proto, serial, frame, cells, extra, alarms=alarms, **state)
    lat, lon = coords
    course = flags & 0x03FF
    pos = new_position(
        fix_time=fix_time,
        lat=lat,
        lon=lon,
        valid=bool(flags & 0x1000),
        speed_kmh=float(speed),
        course=course if course < 360 else None,
        satellites=sats,
        cells=cells,
        alarms=alarms,
        extra=extra,
        **state,
    )
    return _message(POSITION, proto, serial, frame, None, positions=(pos,))


def _lbs_status(proto: int, body: bytes, serial: int, frame: bytes) -> list[Message]:
    """0x19 (cell + status) and 0xA5 (4G cell + status): no position, alarms on the Message."""
    extra: dict[str, Any] = {}
    if proto == MSG_LBS_STATUS and len(body) >= 0x12:
        # Traccar's SPACE10X multi-LBS variant: not decoded, not acked.
        extra["variant"] = "space10x"
        return _message(OTHER, proto, serial, frame, extra)
    cell, off = _cell(body, 0, four_g=proto == MSG_LBS_ALARM)
    state, alarms, off = _status_block(body, off, extra)
    extra["cells"] = (cell,) if cell is not None else ()
    return _message(STATUS, proto, serial, frame, extra, alarms=alarms, **state)


def _lbs_multiple(proto: int, body: bytes, serial: int, frame: bytes) -> list[Message]:
    """0x18 / 0x28 / 0x2E: time, MCC, MNC, 7 x (LAC 2, CID 3, RSSI 1), timing advance, ..."""
    if len(body) < 9:
        raise FrameError("short LBS frame")
    extra: dict[str, Any] = {"device_time": _fix_time(*body[:6])}
    mcc = _U16.unpack_from(body, 6)[0]
    off = 8
    if mcc & 0x8000:
        mnc = _U16.unpack_from(body, off)[0]
        off += 2
    else:
        mnc = body[off]
        off += 1
    mcc &= 0x7FFF
    if off + 7 * 6 + 1 > len(body):
        raise FrameError("truncated cell list")
    cells = []
    for _ in range(7):
        lac = (body[off] << 8) | body[off + 1]
        cid = (body[off + 2] << 16) | (body[off + 3] << 8) | body[off + 4]
        rssi = body[off + 5]
        off += 6
        if lac > 0:
            cells.append(new_cell(mcc=mcc, mnc=mnc, lac=lac, cid=cid, rssi=-rssi))
    extra["ta"] = body[off]
    extra["cells"] = tuple(cells)
    return _message(STATUS, proto, serial, frame, extra)


def _alarm_event(proto: int, body: bytes, serial: int, frame: bytes) -> list[Message]:
    """0x95 (JC100): time + event, or (longer) time + lat/lon/course-status + event."""
    extra: dict[str, Any] = {}
    coords = None
    fix_time = _NO_TIME
    flags = 0
    if len(body) > 7:
        yy, mo, d, h, mi, s, lat_raw, lon_raw, flags = _GPS_BLOCK_SHORT.unpack_from(body, 0)
        fix_time = _fix_time(yy, mo, d, h, mi, s)
        coords = _coords(lat_raw, lon_raw, flags)
        event = body[16]
    elif len(body) == 7:
        extra["device_time"] = _fix_time(*body[:6])
        event = body[6]
    else:
        raise FrameError("short alarm frame")
    extra["alarm_code"] = event
    kind, name = _EVENT_0x95.get(event, (None, "general"))
    if event == 0x01 and len(body) <= 7:
        kind, name = None, "general"
    extra["alarm_event"] = name
    alarms = (kind,) if kind is not None else ()
    if coords is None:
        return _message(STATUS, proto, serial, frame, extra, alarms=alarms)
    lat, lon = coords
    course = flags & 0x03FF
    pos = new_position(
        fix_time=fix_time,
        lat=lat,
        lon=lon,
        valid=bool(flags & 0x1000),
        course=course if course < 360 else None,
        alarms=alarms,
        extra=extra,
    )
    return _message(POSITION, proto, serial, frame, None, positions=(pos,))


def _string(proto: int, body: bytes, serial: int, frame: bytes) -> list[Message]:
    """0x15: command length, server flag (4), ASCII text, [language]."""
    extra: dict[str, Any] = {}
    text = ""
    length = body[0]
    if length > 0:
        if length < 4 or 1 + length > len(body):
            raise FrameError("bad command-reply length")
        extra["server_flag"] = _U32.unpack_from(body, 1)[0]
        text = body[5 : 1 + length].decode("ascii", "replace")
        if text.startswith("<ICCID:"):
            extra["iccid"] = text[7:27]
    return _message(COMMAND_REPLY, proto, serial, frame, extra, text=text)


def _string_info(proto: int, body: bytes, serial: int, frame: bytes) -> list[Message]:
    """0x21 (7979): server flag (4), encoding (1 = ASCII, else UTF-16BE), text."""
    if len(body) < 5:
        raise FrameError("short command reply")
    extra: dict[str, Any] = {"server_flag": _U32.unpack_from(body, 0)[0], "encoding": body[4]}
    data = body[5:]
    text = data.decode("ascii", "replace") if body[4] == 1 else data.decode("utf-16-be", "replace")
    return _message(COMMAND_REPLY, proto, serial, frame, extra, text=text)


def _info(proto: int, body: bytes, serial: int, frame: bytes) -> list[Message]:
    """0x94: in 7878 frames the external voltage; in 7979 frames a sub-type then its data."""
    extra: dict[str, Any] = {}
    if frame[0] == 0x78:
        value = struct.unpack_from(">h", body, 0)[0]
        return _message(STATUS, proto, serial, frame, extra, external_voltage=value / 100)
    sub = body[0]
    extra["info_type"] = sub
    if sub == 0x00:
        volts = _U16.unpack_from(body, 1)[0] / 100
        return _message(STATUS, proto, serial, frame, extra, external_voltage=volts)
    if sub == 0x05:
        extra["door"] = bool(body[1] & 0x01)
        extra["io1"] = bool(body[1] & 0x04)
    elif sub == 0x0A:
        if len(body) < 27:
            raise FrameError("short ICCID info")
        extra["iccid"] = body[17:27].hex().replace("f", "")
    return _message(STATUS, proto, serial, frame, extra)


def _simple(kind: str) -> _Handler:
    def handler(proto: int, body: bytes, serial: int, frame: bytes) -> list[Message]:
        return _message(kind, proto, serial, frame)

    return handler


_HANDLERS: Final[Mapping[int, _Handler]] = MappingProxyType(
    {
        MSG_LOGIN: _login,
        MSG_STATUS: _status,
        MSG_HEARTBEAT: _heartbeat,
        MSG_GPS: _location,
        MSG_GPS_LBS_6: _location,
        MSG_GPS_LBS_1: _location,
        MSG_GPS_LBS_2: _location,
        MSG_GPS_LBS_4: _location,
        MSG_GPS_LBS_3: _location,
        MSG_GPS_LBS_7: _location,
        MSG_GPS_LBS_STATUS_1: _alarm_position,
        MSG_GPS_LBS_STATUS_2: _alarm_position,
        MSG_GPS_LBS_STATUS_3: _alarm_position,
        MSG_FENCE_MULTI: _alarm_position,
        MSG_LBS_STATUS: _lbs_status,
        MSG_LBS_ALARM: _lbs_status,
        MSG_LBS_EXTEND: _lbs_multiple,
        MSG_LBS_MULTIPLE_1: _lbs_multiple,
        MSG_LBS_MULTIPLE_2: _lbs_multiple,
        MSG_ALARM: _alarm_event,
        MSG_STRING: _string,
        MSG_STRING_INFO: _string_info,
        MSG_INFO: _info,
        MSG_TIME_REQUEST: _simple(TIME_REQUEST),
    }
)
_OTHER: Final = _simple(OTHER)


def decode(frame: bytes, *, lenient: bool = False) -> list[Message]:
    """Decode one whole frame (as `split_frames` returns it) into messages.

    Raises FrameError (and nothing else) for a frame that must be dropped: bad start, length or
    stop bytes, CRC mismatch (unless `lenient`), truncated or impossible content.
    """
    frame = bytes(frame)
    n = len(frame)
    if n < 10:
        raise FrameError("short frame")
    if frame[0] == 0x78 and frame[1] == 0x78:
        hdr = 3
        length = frame[2]
    elif frame[0] == 0x79 and frame[1] == 0x79:
        hdr = 4
        length = (frame[2] << 8) | frame[3]
    else:
        raise FrameError("no frame start")
    if length < 5 or n != hdr + length + 2:
        raise FrameError("length does not match")
    if frame[-2] != 0x0D or frame[-1] != 0x0A:
        raise FrameError("no stop bytes")
    if not lenient and crc16_x25(frame[2:-4]) != (frame[-4] << 8) | frame[-3]:
        raise ChecksumError("crc")
    proto = frame[hdr]
    serial = (frame[-6] << 8) | frame[-5]
    body = frame[hdr + 1 : -6]
    try:
        return _HANDLERS.get(proto, _OTHER)(proto, body, serial, frame)
    except FrameError:
        raise
    except (IndexError, struct.error, ValueError, OverflowError) as exc:
        raise FrameError(f"malformed 0x{proto:02X} content: {exc}") from exc


# ---------------------------------------------------------------------------------------------
# Encoding


def _packet(proto: int, content: bytes, serial: int, *, extended: bool = False) -> bytes:
    length = 5 + len(content)
    head = _START_LONG + length.to_bytes(2, "big") if extended else _START_SHORT + bytes((length,))
    core = head[2:] + bytes((proto,)) + content + serial.to_bytes(2, "big")
    return head[:2] + core + crc16_x25(core).to_bytes(2, "big") + _STOP


def encode_reply(msg: Message, *, now: dt.datetime | None = None) -> bytes | None:
    """The bytes Traccar would answer `msg` with (None: no answer).

    Echo ack ``78 78 05 <proto> <serial> <crc> 0D 0A`` for login, status / heartbeat, positions,
    alarm packets and unknown 7878 packets; the UTC time for 0x8A (``now`` overrides the clock);
    Traccar's 0x97 address answer for 0x2A; nothing for command replies (0x15, 0x21, 0x80-0x82),
    0x94 info and 7979 frames. Login is acked unconditionally: refusing unknown devices is the
    session's decision.
    """
    if msg.protocol != PROTOCOL:
        raise ValueError(f"not a {PROTOCOL} message: {msg.protocol!r}")
    proto = msg.msg_id
    if proto is None:
        return None
    serial = (msg.serial or 0) & 0xFFFF
    frame = msg.frame
    if frame[:2] == _START_LONG:
        return None
    if proto == MSG_TIME_REQUEST:
        t = (now or dt.datetime.now(_UTC)).astimezone(_UTC)
        content = bytes((t.year - 2000, t.month, t.day, t.hour, t.minute, t.second))
        return _packet(MSG_TIME_REQUEST, content, serial)
    if proto == MSG_ADDRESS_REQUEST:
        text = b"NA&&NA&&0##"
        content = bytes((len(text),)) + b"\x00\x00\x00\x00" + text
        return _packet(MSG_ADDRESS_RESPONSE, content, 0, extended=True)
    if proto in (MSG_WIFI, MSG_WIFI_2) and len(frame) >= 10 + 6:
        # Traccar answers Wi-Fi frames with their BCD time, no serial and no CRC.
        return _START_SHORT + b"\x00" + bytes((proto,)) + frame[4:10] + _STOP
    if proto in _NO_ACK:
        return None
    if msg.extra.get("variant") == "space10x":
        return None
    return _packet(proto, b"", serial)


def encode_command(
    text: str, *, serial: int, server_flag: int = 0, language: bool = False
) -> bytes:
    """A proto 0x80 command frame:
    ``78 78 LEN 80 | cmdLen | server flag(4) | ASCII | [language 00 02] | serial | CRC | 0D 0A``.
    """
    try:
        data = text.encode("ascii")
    except UnicodeEncodeError:
        raise ValueError(f"GT06 commands are ASCII: {text!r}") from None
    if not data:
        raise ValueError("empty command")
    if not 0 <= serial <= 0xFFFF:
        raise ValueError(f"serial out of range: {serial}")
    if not 0 <= server_flag <= 0xFFFFFFFF:
        raise ValueError(f"server flag out of range: {server_flag}")
    extra_len = 2 if language else 0
    if 10 + len(data) + extra_len > 0xFF:
        raise ValueError(f"command too long for a 7878 frame: {len(data)} bytes")
    content = (
        bytes((4 + len(data),))
        + server_flag.to_bytes(4, "big")
        + data
        + (b"\x00\x02" if language else b"")
    )
    return _packet(MSG_COMMAND_0, content, serial)


def interval_command(seconds: int) -> str:
    """Upload interval command text (5..65535 s)."""
    if isinstance(seconds, bool) or not isinstance(seconds, int) or not 5 <= seconds <= 65535:
        raise ValueError(f"interval must be an integer from 5 to 65535 seconds: {seconds!r}")
    return f"TIMER,{seconds}#"
