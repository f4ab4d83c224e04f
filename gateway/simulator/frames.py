"""What real trackers put on the wire, and how they read the server's answers. Pure functions.

Encoders (device -> server) per protocol, byte-for-byte the layouts of PROTOCOLS.md that the
server codecs in ``gateway.protocols`` decode:

* GT06: ``gt06_login`` (0x01), ``gt06_heartbeat`` (0x13), ``gt06_location`` (0x22 / 0x12),
  ``gt06_alarm`` (0x26 / 0x16 / 0x27), ``gt06_command_reply`` (0x15, or 0x21 in a 7979 frame).
* JT/T 808: ``jt808_register`` (0x0100), ``jt808_auth`` (0x0102), ``jt808_heartbeat`` (0x0002),
  ``jt808_location`` (0x0200), ``jt808_batch`` / ``jt808_batches`` (0x0704),
  ``jt808_location_reply`` (0x0201), ``jt808_general_response`` (0x0001) and
  ``jt808_subpackages`` (any body cut into sub-packages). 2013 (12-digit ids) or 2019
  (``version2019=True``: 20-digit ids, version byte, longer register fields).
* H02: ``h02_v1`` (position), ``h02_heartbeat`` (HTBT), ``h02_v4`` (command reply with a fix),
  ``h02_status_word`` (the active-low status word).

Units as in ``gateway.protocols.messages``: WGS-84 degrees, km/h, aware datetimes (sent as UTC,
JT808 as Beijing time, as the devices do). Values a field cannot hold raise ValueError: the
simulator has a bug, the wire must not silently carry something else.

Parsers (server -> device): ``parse_downlink(protocol, frame) -> Downlink`` recognises acks, the
JT808 0x8100 register reply, time replies and downlink commands (fuel cut / restore, reboot,
interval, locate); ``jt808_parse_register_reply`` extracts the auth code. Framing of the server's
stream reuses the server codecs' ``split_frames`` (the same framing runs both ways).
"""

from __future__ import annotations

import datetime as dt
import struct
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final

from gateway.protocols import gt06, h02, jt808
from gateway.protocols.messages import FrameError

__all__ = [
    "Downlink",
    "RegisterRefused",
    "gt06_alarm",
    "gt06_command_reply",
    "gt06_heartbeat",
    "gt06_location",
    "gt06_login",
    "gt06_reply_text",
    "h02_heartbeat",
    "h02_status_word",
    "h02_v1",
    "h02_v4",
    "jt808_auth",
    "jt808_batch",
    "jt808_batches",
    "jt808_general_response",
    "jt808_heartbeat",
    "jt808_location",
    "jt808_location_body",
    "jt808_location_reply",
    "jt808_parse_register_reply",
    "jt808_register",
    "jt808_subpackages",
    "parse_downlink",
]

_UTC: Final = dt.UTC
_BEIJING: Final = dt.timedelta(hours=8)

# Command kinds (the platform's Command.kind values) recognised in downlinks.
FUEL_CUT: Final = "fuel_cut"
FUEL_RESTORE: Final = "fuel_restore"
REBOOT: Final = "reboot"
SET_INTERVAL: Final = "set_interval"
LOCATE_NOW: Final = "locate_now"
ALARM_ARM: Final = "alarm_arm"
ALARM_DISARM: Final = "alarm_disarm"

# Default serving cell: China Mobile (460/00) in Xi'an; LAC / CID are plausible, not real.
XIAN_CELL: Final = (460, 0, 0x2F8A, 0x0E4C21)


def _utc_seconds(t: dt.datetime) -> dt.datetime:
    """Aware datetime -> UTC, truncated to the second (no protocol carries fractions)."""
    if t.tzinfo is None or t.utcoffset() is None:
        raise ValueError(f"fix time must be timezone-aware: {t!r}")
    return t.astimezone(_UTC).replace(microsecond=0)


def _check(name: str, value: int, low: int, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise ValueError(f"{name} must be an integer in {low}..{high}: {value!r}")
    return value


def _check_coords(lat: float, lon: float) -> None:
    if not (-90.0 <= lat <= 90.0 and -180.0 <= lon <= 180.0):
        raise ValueError(f"coordinates out of range: {lat!r}, {lon!r}")


# =============================================================================================
# GT06
# =============================================================================================

_GT06_GPS_INFO_LEN: Final = 12  # high nibble of the GPS info byte: length of the GPS block
_GT06_LANGUAGE_EN: Final = 0x02


def _gt06_packet(proto: int, content: bytes, serial: int, *, extended: bool = False) -> bytes:
    """``78 78 LEN`` (``79 79 LEN(2)``) PROTO CONTENT SERIAL CRC 0D 0A, CRC over LEN..SERIAL."""
    _check("serial", serial, 0, 0xFFFF)
    length = 1 + len(content) + 2 + 2
    if extended:
        head = b"\x79\x79" + _check("GT06 length", length, 5, 0xFFFF).to_bytes(2, "big")
    else:
        head = b"\x78\x78" + bytes((_check("GT06 length", length, 5, 0xFF),))
    core = head[2:] + bytes((proto,)) + content + serial.to_bytes(2, "big")
    return head[:2] + core + gt06.crc16_x25(core).to_bytes(2, "big") + b"\r\n"


def gt06_login(
    imei: str,
    serial: int,
    *,
    type_id: int | None = None,
    tz_offset_min: int | None = None,
    language: int = _GT06_LANGUAGE_EN,
) -> bytes:
    """0x01 login: IMEI as 8 BCD bytes with a leading 0 nibble, [type id (2), [timezone (2)]].

    The classic GT06N sends the IMEI only. ``tz_offset_min`` adds the timezone/language extension
    (bits 15..4 hhmm, bit 3 west); a device that sends it reports local fix times, so the
    simulator, whose fixes are UTC, leaves it out.
    """
    if not (len(imei) == 15 and imei.isascii() and imei.isdigit()):
        raise ValueError(f"IMEI must be 15 digits: {imei!r}")
    content = bytes.fromhex("0" + imei)
    if tz_offset_min is not None and type_id is None:
        raise ValueError("the timezone extension follows the type id")
    if type_id is not None:
        content += _check("type id", type_id, 0, 0xFFFF).to_bytes(2, "big")
    if tz_offset_min is not None:
        minutes = abs(_check("timezone offset", tz_offset_min, -12 * 60, 14 * 60))
        hhmm = (minutes // 60) * 100 + minutes % 60
        ext = (hhmm << 4) | (0x08 if tz_offset_min < 0 else 0) | (language & 0x03)
        content += ext.to_bytes(2, "big")
    return _gt06_packet(gt06.MSG_LOGIN, content, serial)


def _gt06_terminal_info(
    *,
    acc: bool,
    fuel_cut: bool,
    charging: bool,
    alarm_bits: int,
    armed: bool,
    gps_tracking: bool,
) -> int:
    """Terminal-info byte: bit0 armed, bit1 ACC, bit2 charging, bits 3-5 alarm, bit6 GPS
    tracking on, bit7 oil/electricity cut."""
    _check("alarm bits", alarm_bits, 0, 7)
    return (
        (0x01 if armed else 0)
        | (0x02 if acc else 0)
        | (0x04 if charging else 0)
        | (alarm_bits << 3)
        | (0x40 if gps_tracking else 0)
        | (0x80 if fuel_cut else 0)
    )


def gt06_heartbeat(
    serial: int,
    *,
    acc: bool,
    fuel_cut: bool = False,
    charging: bool = True,
    battery_level: int = 6,
    gsm: int = 4,
    alarm_bits: int = 0,
    alarm_code: int = 0,
    armed: bool = False,
    gps_tracking: bool = True,
) -> bytes:
    """0x13 status: terminal info, voltage level (0-6), GSM level (0-4), alarm byte, language.

    ``alarm_bits`` is the 3-bit alarm field of the terminal-info byte (1 vibration, 2 power cut,
    3 low battery, 4 SOS, 6 geofence, 7 removal); ``alarm_code`` the alarm/extension byte.
    """
    info = _gt06_terminal_info(
        acc=acc,
        fuel_cut=fuel_cut,
        charging=charging,
        alarm_bits=alarm_bits,
        armed=armed,
        gps_tracking=gps_tracking,
    )
    content = bytes(
        (
            info,
            _check("battery level", battery_level, 0, 6),
            _check("GSM level", gsm, 0, 4),
            _check("alarm code", alarm_code, 0, 0xFF),
            _GT06_LANGUAGE_EN,
        )
    )
    return _gt06_packet(gt06.MSG_STATUS, content, serial)


def _gt06_gps(
    fix_time: dt.datetime,
    lat: float,
    lon: float,
    speed_kmh: float,
    course: int,
    satellites: int,
    valid: bool,
    acc_bits: bool | None,
) -> bytes:
    """The 18-byte GPS block: UTC date/time, GPS info, lat, lon (x1,800,000), speed, course/status.

    Course/status: bits 0-9 course, bit 10 north, bit 11 west, bit 12 fixed, bit 14 "ACC in
    bit 15" (``acc_bits`` not None; 0x12 devices), bit 15 ACC.
    """
    t = _utc_seconds(fix_time)
    if not 2000 <= t.year <= 2255:
        raise ValueError(f"GT06 years are 2000..2255: {t.year}")
    _check_coords(lat, lon)
    _check("satellites", satellites, 0, 15)
    _check("course", course, 0, 359)
    speed = round(speed_kmh)
    _check("speed km/h", speed, 0, 0xFF)
    flags = course | 0x1000 * bool(valid)
    if lat >= 0:
        flags |= 0x0400
    if lon < 0:
        flags |= 0x0800
    if acc_bits is not None:
        flags |= 0x4000 | (0x8000 if acc_bits else 0)
    return struct.pack(
        ">6BBIIBH",
        t.year - 2000,
        t.month,
        t.day,
        t.hour,
        t.minute,
        t.second,
        (_GT06_GPS_INFO_LEN << 4) | satellites,
        round(abs(lat) * 1_800_000),
        round(abs(lon) * 1_800_000),
        speed,
        flags,
    )


def _gt06_cell(cell: tuple[int, int, int, int]) -> bytes:
    """MCC (2; bit 15 = two-byte MNC), MNC (1 or 2), LAC (2), CID (3)."""
    mcc, mnc, lac, cid = cell
    _check("MCC", mcc, 0, 0x7FFF)
    _check("LAC", lac, 0, 0xFFFF)
    _check("CID", cid, 0, 0xFFFFFF)
    if _check("MNC", mnc, 0, 0xFFFF) > 0xFF:
        head = struct.pack(">HH", mcc | 0x8000, mnc)
    else:
        head = struct.pack(">HB", mcc, mnc)
    return head + struct.pack(">H", lac) + cid.to_bytes(3, "big")


def gt06_location(
    serial: int,
    *,
    fix_time: dt.datetime,
    lat: float,
    lon: float,
    speed_kmh: float,
    course: int,
    satellites: int,
    valid: bool,
    acc: bool,
    reupload: bool = False,
    mileage_m: int | None = None,
    cell: tuple[int, int, int, int] = XIAN_CELL,
    upload_mode: int = 0,
    proto: int = gt06.MSG_GPS_LBS_2,
) -> bytes:
    """0x22 GPS + LBS + ACC (1), upload mode (1), re-upload (1), [mileage m (4)].

    ``proto=0x12`` gives the classic GPS + LBS frame instead: no trailing bytes, ACC in bits
    14/15 of the course word, no re-upload flag, no mileage.
    """
    if proto == gt06.MSG_GPS_LBS_1:
        if reupload or mileage_m is not None:
            raise ValueError("0x12 carries neither the re-upload flag nor a mileage")
        gps = _gt06_gps(fix_time, lat, lon, speed_kmh, course, satellites, valid, acc)
        return _gt06_packet(proto, gps + _gt06_cell(cell), serial)
    if proto != gt06.MSG_GPS_LBS_2:
        raise ValueError(f"gt06_location encodes 0x22 or 0x12, not 0x{proto:02X}")
    content = _gt06_gps(fix_time, lat, lon, speed_kmh, course, satellites, valid, None)
    content += _gt06_cell(cell)
    content += bytes((1 if acc else 0, _check("upload mode", upload_mode, 0, 0xFF), int(reupload)))
    if mileage_m is not None:
        content += _check("mileage m", mileage_m, 0, 0xFFFFFFFF).to_bytes(4, "big")
    return _gt06_packet(proto, content, serial)


def gt06_alarm(
    serial: int,
    *,
    fix_time: dt.datetime,
    lat: float,
    lon: float,
    speed_kmh: float,
    course: int,
    satellites: int,
    valid: bool,
    acc: bool,
    alarm_code: int,
    alarm_bits: int = 0,
    fuel_cut: bool = False,
    charging: bool = True,
    battery_level: int = 6,
    gsm: int = 4,
    cell: tuple[int, int, int, int] = XIAN_CELL,
    fence_id: int | None = None,
    proto: int = gt06.MSG_GPS_LBS_STATUS_2,
) -> bytes:
    """0x26 (or 0x16; 0x27 with ``fence_id``) alarm packet: GPS block, LBS with its length byte,
    terminal info, voltage level, GSM level, alarm byte, language[, fence id].

    ``alarm_code`` is the alarm byte (0x01 SOS, 0x02 power cut, 0x03 vibration, 0x0E low
    battery, 0x14 door, 0x18 removal ...; PROTOCOLS.md 2.1); ``alarm_bits`` the terminal-info
    alarm field.
    """
    if proto not in (
        gt06.MSG_GPS_LBS_STATUS_1,
        gt06.MSG_GPS_LBS_STATUS_2,
        gt06.MSG_GPS_LBS_STATUS_3,
    ):
        raise ValueError(f"gt06_alarm encodes 0x16, 0x26 or 0x27, not 0x{proto:02X}")
    if (fence_id is not None) != (proto == gt06.MSG_GPS_LBS_STATUS_3):
        raise ValueError("a fence id goes with 0x27 and only there")
    lbs = _gt06_cell(cell)
    info = _gt06_terminal_info(
        acc=acc,
        fuel_cut=fuel_cut,
        charging=charging,
        alarm_bits=alarm_bits,
        armed=False,
        gps_tracking=True,
    )
    content = (
        _gt06_gps(fix_time, lat, lon, speed_kmh, course, satellites, valid, None)
        + bytes((len(lbs) + 1,))  # the length byte counts itself
        + lbs
        + bytes(
            (
                info,
                _check("battery level", battery_level, 0, 6),
                _check("GSM level", gsm, 0, 4),
                _check("alarm code", alarm_code, 0, 0xFF),
                _GT06_LANGUAGE_EN,
            )
        )
    )
    if fence_id is not None:
        content += bytes((_check("fence id", fence_id, 0, 0xFF),))
    return _gt06_packet(proto, content, serial)


def gt06_command_reply(
    serial: int, *, server_flag: int, text: str, extended: bool = False
) -> bytes:
    """The device's answer to a 0x80 command, echoing the command's server flag.

    7878 0x15: length (4 + text), server flag (4), ASCII text, language (00 02); with
    ``extended`` a 7979 0x21: server flag (4), encoding 1 (ASCII), text.
    """
    _check("server flag", server_flag, 0, 0xFFFFFFFF)
    data = text.encode("ascii")
    flag = server_flag.to_bytes(4, "big")
    if extended:
        return _gt06_packet(gt06.MSG_STRING_INFO, flag + b"\x01" + data, serial, extended=True)
    content = bytes((_check("reply length", 4 + len(data), 4, 0xFF),)) + flag + data + b"\x00\x02"
    return _gt06_packet(gt06.MSG_STRING, content, serial)


def gt06_reply_text(kind: str | None, params: Mapping[str, Any] | None = None) -> str:
    """What a Concox tracker answers a command with (the fuel-cut text is the vectors' sample)."""
    params = params or {}
    if kind == FUEL_CUT:
        return "Cut off the fuel supply: Success!"
    if kind == FUEL_RESTORE:
        return "Restore fuel supply: Success!"
    if kind == REBOOT:
        return "Reset Success!"
    if kind == SET_INTERVAL:
        return f"TIMER={params.get('seconds', '')} OK!"
    if kind == LOCATE_NOW:
        return "Position request received!"
    return "OK!"


# =============================================================================================
# JT/T 808
# =============================================================================================

_JT808_2013_FIELDS: Final = (5, 20, 7)  # maker, model, terminal id (register body)
_JT808_2019_FIELDS: Final = (11, 30, 30)


def _terminal_id(terminal_id: str, version2019: bool) -> str:
    digits = 20 if version2019 else 12
    if not (terminal_id.isascii() and terminal_id.isdigit() and len(terminal_id) <= digits):
        raise ValueError(f"terminal id must be up to {digits} digits: {terminal_id!r}")
    return terminal_id.rjust(digits, "0")


def _jt808_frame(
    msg_id: int,
    terminal_id: str,
    serial: int,
    body: bytes,
    version2019: bool,
    protocol_version: int,
) -> bytes:
    _check("serial", serial, 0, 0xFFFF)
    return jt808.encode_message(
        msg_id,
        _terminal_id(terminal_id, version2019),
        serial,
        body,
        version2019=version2019,
        protocol_version=protocol_version,
    )


def _fixed(text: str, size: int, what: str) -> bytes:
    """A fixed-width string field, right-padded with NULs (JT/T 808 "右补 0x00")."""
    raw = text.encode("gbk")
    if len(raw) > size:
        raise ValueError(f"{what} {text!r} is longer than {size} bytes")
    return raw.ljust(size, b"\x00")


def jt808_register(
    terminal_id: str,
    serial: int,
    *,
    province: int = 61,
    city: int = 100,
    maker: str = "SIMUL",
    model: str = "CL-SIM",
    device_id: str = "0000001",
    plate_colour: int = 2,
    plate: str = "陕A00001",
    version2019: bool = False,
    protocol_version: int = 1,
) -> bytes:
    """0x0100 register: province (2), city (2), maker (5 / 2019: 11), model (20 / 30), terminal id
    (7 / 30), plate colour (1), plate (GBK). Defaults: Shaanxi (61), Xi'an (0100), yellow plate."""
    maker_len, model_len, id_len = _JT808_2019_FIELDS if version2019 else _JT808_2013_FIELDS
    body = (
        struct.pack(">HH", _check("province", province, 0, 0xFFFF), _check("city", city, 0, 0xFFFF))
        + _fixed(maker, maker_len, "maker id")
        + _fixed(model, model_len, "model")
        + _fixed(device_id, id_len, "terminal id")
        + bytes((_check("plate colour", plate_colour, 0, 0xFF),))
        + plate.encode("gbk")
    )
    return _jt808_frame(
        jt808.MSG_REGISTER, terminal_id, serial, body, version2019, protocol_version
    )


def jt808_auth(
    terminal_id: str,
    serial: int,
    auth_code: str,
    *,
    imei: str = "",
    software_version: str = "",
    version2019: bool = False,
    protocol_version: int = 1,
) -> bytes:
    """0x0102 auth: 2013 the code only; 2019 code length (1) + code + IMEI (15) + software
    version (20)."""
    code = auth_code.encode("gbk")
    if version2019:
        body = (
            bytes((_check("auth code length", len(code), 0, 0xFF),))
            + code
            + _fixed(imei, 15, "IMEI")
            + _fixed(software_version, 20, "software version")
        )
    else:
        body = code
    return _jt808_frame(jt808.MSG_AUTH, terminal_id, serial, body, version2019, protocol_version)


def jt808_heartbeat(
    terminal_id: str, serial: int, *, version2019: bool = False, protocol_version: int = 1
) -> bytes:
    """0x0002 heartbeat: empty body."""
    return _jt808_frame(
        jt808.MSG_HEARTBEAT, terminal_id, serial, b"", version2019, protocol_version
    )


def _bcd_time(fix_time: dt.datetime) -> bytes:
    """BCD YYMMDDhhmmss in Beijing time (GMT+8), as JT808 terminals send it."""
    t = _utc_seconds(fix_time) + _BEIJING
    if not 2000 <= t.year <= 2099:
        raise ValueError(f"JT808 BCD years are 2000..2099 (Beijing time): {t.year}")
    return bytes.fromhex(t.strftime("%y%m%d%H%M%S"))


def jt808_location_body(
    *,
    fix_time: dt.datetime,
    lat: float,
    lon: float,
    altitude_m: float = 0.0,
    speed_kmh: float,
    course: int,
    acc: bool,
    valid: bool,
    fuel_cut: bool = False,
    alarm_word: int = 0,
    status_extra_bits: int = 0,
    mileage_km: float | None = None,
    csq: int | None = None,
    satellites: int | None = None,
    sleeping: bool | None = None,
    deep_sleep: bool = False,
) -> bytes:
    """A 0x0200 body: alarm (4), status (4), lat, lon (x1e6), altitude (2, signed m), speed (2,
    1/10 km/h), course (2), BCD time, then the additional items 0x01 mileage (1/10 km),
    0x30 signal (CSQ 0-31), 0x31 satellites, 0x2A IO status (bit0 deep sleep, bit1 sleep).

    Status: bit0 ACC, bit1 positioned, bit2 south, bit3 west, bit10 oil circuit cut, plus
    ``status_extra_bits`` (e.g. bit 18 GPS / bit 19 BeiDou used) as given.
    """
    _check_coords(lat, lon)
    _check("alarm word", alarm_word, 0, 0xFFFFFFFF)
    _check("status bits", status_extra_bits, 0, 0xFFFFFFFF)
    _check("course", course, 0, 359)
    status = status_extra_bits | (1 if acc else 0) | (2 if valid else 0)
    status |= 0x400 if fuel_cut else 0
    if lat < 0:
        status |= 0x04
    if lon < 0:
        status |= 0x08
    altitude = round(altitude_m)
    _check("altitude m", altitude, -0x8000, 0x7FFF)
    speed = round(speed_kmh * 10)
    _check("speed (1/10 km/h)", speed, 0, 0xFFFF)
    body = struct.pack(
        ">IIIIhHH",
        alarm_word,
        status,
        round(abs(lat) * 1_000_000),
        round(abs(lon) * 1_000_000),
        altitude,
        speed,
        course,
    ) + _bcd_time(fix_time)
    if mileage_km is not None:
        mileage = round(mileage_km * 10)
        body += b"\x01\x04" + _check("mileage (1/10 km)", mileage, 0, 0xFFFFFFFF).to_bytes(4, "big")
    if csq is not None:
        body += b"\x30\x01" + bytes((_check("CSQ", csq, 0, 31),))
    if satellites is not None:
        body += b"\x31\x01" + bytes((_check("satellites", satellites, 0, 0xFF),))
    if sleeping is not None or deep_sleep:
        io = (0x01 if deep_sleep else 0) | (0x02 if sleeping else 0)
        body += b"\x2a\x02" + io.to_bytes(2, "big")
    return body


def jt808_location(
    terminal_id: str,
    serial: int,
    *,
    version2019: bool = False,
    protocol_version: int = 1,
    **location: Any,
) -> bytes:
    """0x0200 location report; keyword arguments as ``jt808_location_body``."""
    body = jt808_location_body(**location)
    return _jt808_frame(
        jt808.MSG_LOCATION, terminal_id, serial, body, version2019, protocol_version
    )


def jt808_location_reply(
    terminal_id: str,
    serial: int,
    reply_serial: int,
    *,
    version2019: bool = False,
    protocol_version: int = 1,
    **location: Any,
) -> bytes:
    """0x0201 answer to a 0x8201 position query: the query's serial (2) + a 0x0200 body."""
    body = struct.pack(">H", _check("reply serial", reply_serial, 0, 0xFFFF))
    body += jt808_location_body(**location)
    return _jt808_frame(
        jt808.MSG_LOCATION_QUERY_REPLY, terminal_id, serial, body, version2019, protocol_version
    )


def _batch_body(bodies: Sequence[bytes], blind_area: bool) -> bytes:
    out = [struct.pack(">HB", len(bodies), 1 if blind_area else 0)]
    for b in bodies:
        out.append(struct.pack(">H", len(b)) + b)
    return b"".join(out)


def jt808_batch(
    terminal_id: str,
    serial: int,
    positions: Sequence[Mapping[str, Any]],
    blind_area: bool = True,
    *,
    version2019: bool = False,
    protocol_version: int = 1,
) -> bytes:
    """0x0704 batch: count (2), type (1: 0 normal, 1 blind-area re-upload), then per position
    length (2) + 0x0200 body. Each mapping holds ``jt808_location_body`` keyword arguments.
    ValueError when the body exceeds 1023 bytes (use ``jt808_batches``)."""
    if not positions:
        raise ValueError("a 0x0704 batch needs at least one position")
    bodies = [jt808_location_body(**p) for p in positions]
    return _jt808_frame(
        jt808.MSG_BATCH,
        terminal_id,
        serial,
        _batch_body(bodies, blind_area),
        version2019,
        protocol_version,
    )


def jt808_batches(
    terminal_id: str,
    first_serial: int,
    positions: Sequence[Mapping[str, Any]],
    blind_area: bool = True,
    *,
    version2019: bool = False,
    protocol_version: int = 1,
) -> list[bytes]:
    """As many 0x0704 frames as the positions need (each body <= 1023 bytes), serials counting
    up from ``first_serial`` (mod 65536), positions in the given order."""
    frames: list[bytes] = []
    chunk: list[bytes] = []
    size = 3
    for p in positions:
        b = jt808_location_body(**p)
        if chunk and size + 2 + len(b) > jt808.MAX_BODY:
            frames.append(_batch_body(chunk, blind_area))
            chunk, size = [], 3
        chunk.append(b)
        size += 2 + len(b)
    if chunk:
        frames.append(_batch_body(chunk, blind_area))
    return [
        _jt808_frame(
            jt808.MSG_BATCH,
            terminal_id,
            (first_serial + i) & 0xFFFF,
            body,
            version2019,
            protocol_version,
        )
        for i, body in enumerate(frames)
    ]


def jt808_general_response(
    terminal_id: str,
    serial: int,
    reply_serial: int,
    reply_id: int,
    result: int = 0,
    *,
    version2019: bool = False,
    protocol_version: int = 1,
) -> bytes:
    """0x0001 terminal general response: reply serial (2), reply id (2), result (1: 0 success,
    1 failure, 2 bad message, 3 unsupported)."""
    _check("serial", serial, 0, 0xFFFF)
    return jt808.encode_general_response(
        _terminal_id(terminal_id, version2019),
        serial,
        _check("reply serial", reply_serial, 0, 0xFFFF),
        _check("reply id", reply_id, 0, 0xFFFF),
        _check("result", result, 0, 0xFF),
        version2019=version2019,
        protocol_version=protocol_version,
        msg_id=jt808.MSG_TERMINAL_RESPONSE,
    )


def jt808_subpackages(
    msg_id: int,
    terminal_id: str,
    first_serial: int,
    body: bytes,
    *,
    part_size: int = jt808.MAX_BODY,
    version2019: bool = False,
    protocol_version: int = 1,
) -> list[bytes]:
    """``body`` cut into parts of at most ``part_size`` bytes, each framed with the sub-package
    flag (attr bit 13), total (2) and 1-based index (2); serials count up from ``first_serial``.
    ``gateway.protocols.jt808.encode_message`` has no sub-package header, hence this framing."""
    _check("part size", part_size, 1, jt808.MAX_BODY)
    phone = bytes.fromhex(_terminal_id(terminal_id, version2019))
    parts = [body[i : i + part_size] for i in range(0, len(body), part_size)] or [b""]
    total = len(parts)
    _check("package count", total, 1, 0xFFFF)
    frames = []
    for index, part in enumerate(parts, start=1):
        props = len(part) | 0x2000 | (0x4000 if version2019 else 0)
        head = struct.pack(">HH", msg_id, props)
        if version2019:
            head += bytes((protocol_version,))
        serial = (first_serial + index - 1) & 0xFFFF
        data = head + phone + struct.pack(">HHH", serial, total, index) + part
        checksum = 0
        for byte in data:
            checksum ^= byte
        frames.append(b"\x7e" + jt808.escape(data + bytes((checksum,))) + b"\x7e")
    return frames


# =============================================================================================
# H02
# =============================================================================================

_KNOTS_PER_KMH: Final = 1 / h02.KNOTS_TO_KMH
H02_IDLE_STATUS: Final = 0xFFFFFBFF  # every active-low flag clear, ACC (bit 10) off


def _h02_id(device_id: str) -> str:
    if not (device_id.isascii() and device_id.isdigit() and 1 <= len(device_id) <= 20):
        raise ValueError(f"H02 device id must be 1..20 digits: {device_id!r}")
    return device_id


def h02_status_word(
    *,
    acc: bool,
    fuel_cut: bool = False,
    sos: bool = False,
    power_cut: bool = False,
    vibration: bool = False,
    overspeed: bool = False,
) -> int:
    """The ACTIVE-LOW status word as ``gateway.protocols.h02.status_flags`` reads it: a condition
    holds when its bit is 0 (bit0 vibration, bit1 SOS, bit2 overspeed, bit19 power cut, bit27
    oil/engine cut), except ACC: bit 10 set = ACC on. No flag at all gives 0xFFFFFBFF."""
    word = 0xFFFFFFFF
    if not acc:
        word &= ~(1 << h02.BIT_ACC)
    for flag, bit in (
        (fuel_cut, h02.BIT_FUEL_CUT),
        (sos, h02.BIT_SOS),
        (power_cut, h02.BIT_POWER_CUT),
        (vibration, h02.BIT_VIBRATION),
        (overspeed, h02.BIT_OVERSPEED),
    ):
        if flag:
            word &= ~(1 << bit)
    return word & 0xFFFFFFFF


def _h02_coordinate(value: float, degree_digits: int) -> str:
    """|degrees| -> ``ddmm.mmmm`` / ``dddmm.mmmm`` (rounded in 1/10000 minutes, carry kept)."""
    units = round(abs(value) * 600_000)  # 1/10000 of a minute
    degrees, rest = divmod(units, 600_000)
    minutes, frac = divmod(rest, 10_000)
    return f"{degrees:0{degree_digits}d}{minutes:02d}.{frac:04d}"


def _h02_fix_fields(
    fix_time: dt.datetime,
    lat: float,
    lon: float,
    speed_kmh: float,
    course: int,
    valid: bool,
    status_word: int,
) -> str:
    t = _utc_seconds(fix_time)
    if not 2000 <= t.year <= 2099:
        raise ValueError(f"H02 years are 2000..2099: {t.year}")
    _check_coords(lat, lon)
    _check("course", course, 0, 359)
    _check("status word", status_word, 0, 0xFFFFFFFF)
    if speed_kmh < 0:
        raise ValueError(f"speed must not be negative: {speed_kmh!r}")
    return ",".join(
        (
            t.strftime("%H%M%S"),
            "A" if valid else "V",
            _h02_coordinate(lat, 2),
            "N" if lat >= 0 else "S",
            _h02_coordinate(lon, 3),
            "E" if lon >= 0 else "W",
            f"{speed_kmh * _KNOTS_PER_KMH:.2f}",
            f"{course:03d}",
            t.strftime("%d%m%y"),
            f"{status_word:08X}",
        )
    )


def h02_v1(
    device_id: str,
    *,
    fix_time: dt.datetime,
    lat: float,
    lon: float,
    speed_kmh: float,
    course: int,
    valid: bool,
    status_word: int = H02_IDLE_STATUS,
    maker: str = "HQ",
) -> bytes:
    """``*HQ,<id>,V1,hhmmss,A,ddmm.mmmm,N,dddmm.mmmm,E,<knots>,<course>,DDMMYY,<status>#`` (UTC)."""
    fields = _h02_fix_fields(fix_time, lat, lon, speed_kmh, course, valid, status_word)
    return f"*{maker},{_h02_id(device_id)},V1,{fields}#".encode("ascii")


def h02_heartbeat(device_id: str, *, battery_pct: int | None = None, maker: str = "HQ") -> bytes:
    """``*HQ,<id>,HTBT#`` (``*HQ,<id>,HTBT,<battery %>#`` when the battery is given)."""
    tail = "" if battery_pct is None else f",{_check('battery %', battery_pct, 0, 100)}"
    return f"*{maker},{_h02_id(device_id)},HTBT{tail}#".encode("ascii")


def h02_v4(
    device_id: str,
    command: str,
    reply: Sequence[str],
    *,
    fix_time: dt.datetime,
    lat: float,
    lon: float,
    speed_kmh: float,
    course: int,
    valid: bool,
    status_word: int = H02_IDLE_STATUS,
    maker: str = "HQ",
) -> bytes:
    """Command reply ``*HQ,<id>,V4,<CMD>,<reply...>,<fix block>#``.

    ``reply`` is what follows the command name, e.g. ``("DONE", "130305")`` for S20 (the last
    item echoes the command's HHmmss, as in the Traccar sample ``V4,S20,ERROR,130305,...``).
    The status word should already show the command's effect (bit 27 clear after a fuel cut).
    """
    if not command or any(c in command for c in ",*#"):
        raise ValueError(f"bad H02 command name {command!r}")
    for item in reply:
        if any(c in item for c in ",*#"):
            raise ValueError(f"bad H02 reply field {item!r}")
    fields = _h02_fix_fields(fix_time, lat, lon, speed_kmh, course, valid, status_word)
    head = ",".join((maker, _h02_id(device_id), "V4", command, *reply))
    return f"*{head},{fields}#".encode("ascii")


# =============================================================================================
# Server -> device
# =============================================================================================

# Downlink kinds.
ACK = "ack"  # the server acknowledged one of our frames
REGISTER_REPLY = "register_reply"  # JT808 0x8100
COMMAND = "command"  # a command to execute and answer
TIME = "time"  # GT06 0x8A time reply
RESEND_REQUEST = "resend_request"  # JT808 0x8003
OTHER = "other"


class RegisterRefused(ValueError):
    """The server answered a JT808 register with a non-zero result (1 vehicle already
    registered, 2 vehicle unknown, 3 terminal already registered, 4 terminal unknown)."""

    def __init__(self, result: int) -> None:
        super().__init__(f"register refused with result {result}")
        self.result = result


@dataclass(frozen=True)
class Downlink:
    """One frame the server sent, as a device understands it.

    ``serial`` is the server frame's own serial (GT06 / JT808); ``acked_serial`` /
    ``acked_id`` name the device frame an ack or register reply answers. For commands,
    ``command`` is the platform kind (None when not recognised), ``text`` the raw command
    (GT06 ASCII, H02 ``CMD,args``), ``server_flag`` the GT06 flag to echo and ``command_time``
    the H02 ``HHmmss`` to echo.
    """

    protocol: str
    kind: str
    msg_id: int | str | None = None
    serial: int | None = None
    acked_serial: int | None = None
    acked_id: int | str | None = None
    result: int | None = None
    auth_code: str | None = None
    command: str | None = None
    params: dict[str, Any] = field(default_factory=dict)
    text: str | None = None
    server_flag: int | None = None
    command_time: str | None = None
    server_time: dt.datetime | None = None
    frame: bytes = b""


def parse_downlink(protocol: str, frame: bytes) -> Downlink:
    """Understand one server frame (as the protocol's ``split_frames`` cut it).

    FrameError for a frame the device must ignore (bad checksum, truncated ...).
    """
    frame = bytes(frame)
    if protocol == gt06.PROTOCOL:
        return _gt06_downlink(frame)
    if protocol == jt808.PROTOCOL:
        return _jt808_downlink(frame)
    if protocol == h02.PROTOCOL:
        return _h02_downlink(frame)
    raise ValueError(f"unknown protocol {protocol!r}")


def _gt06_command_kind(text: str) -> tuple[str | None, dict[str, Any]]:
    word = text.rstrip("#").strip().upper()
    name, _, args = word.partition(",")
    if name == "RELAY" and args in ("1", "0"):
        return (FUEL_CUT if args == "1" else FUEL_RESTORE), {}
    if name == "DYD":  # Traccar's GT06 engineStop
        return FUEL_CUT, {}
    if name == "HFYD":  # Traccar's GT06 engineResume
        return FUEL_RESTORE, {}
    if name == "RESET":
        return REBOOT, {}
    if name == "TIMER" and args:
        first = args.split(",")[0]
        if first.isdigit():
            return SET_INTERVAL, {"seconds": int(first)}
    if name in ("WHERE", "DWXX", "URL"):
        return LOCATE_NOW, {}
    return None, {}


def _gt06_downlink(frame: bytes) -> Downlink:
    if len(frame) < 10 or frame[:2] not in (b"\x78\x78", b"\x79\x79"):
        raise FrameError("not a GT06 frame")
    hdr = 3 if frame[0] == 0x78 else 4
    length = frame[2] if hdr == 3 else (frame[2] << 8) | frame[3]
    if len(frame) != hdr + length + 2 or frame[-2:] != b"\r\n" or length < 5:
        raise FrameError("length does not match")
    if gt06.crc16_x25(frame[2:-4]) != int.from_bytes(frame[-4:-2], "big"):
        raise FrameError("crc")
    proto = frame[hdr]
    serial = int.from_bytes(frame[-6:-4], "big")
    content = frame[hdr + 1 : -6]
    if proto == gt06.MSG_COMMAND_0:
        if len(content) < 5 or content[0] < 4 or 1 + content[0] > len(content):
            raise FrameError("bad 0x80 command length")
        flag = int.from_bytes(content[1:5], "big")
        text = content[5 : 1 + content[0]].decode("ascii", "replace")
        kind, params = _gt06_command_kind(text)
        return Downlink(
            protocol=gt06.PROTOCOL,
            kind=COMMAND,
            msg_id=proto,
            serial=serial,
            command=kind,
            params=params,
            text=text,
            server_flag=flag,
            frame=frame,
        )
    if proto == gt06.MSG_TIME_REQUEST and len(content) == 6:
        yy, mo, d, h, mi, s = content
        try:
            when = dt.datetime(2000 + yy, mo, d, h, mi, s, tzinfo=_UTC)
        except ValueError:
            raise FrameError("bad time reply") from None
        return Downlink(
            protocol=gt06.PROTOCOL,
            kind=TIME,
            msg_id=proto,
            serial=serial,
            acked_serial=serial,
            acked_id=proto,
            server_time=when,
            frame=frame,
        )
    if not content and hdr == 3:
        # Echo ack: the protocol number and serial of the frame it answers.
        return Downlink(
            protocol=gt06.PROTOCOL,
            kind=ACK,
            msg_id=proto,
            serial=serial,
            acked_serial=serial,
            acked_id=proto,
            frame=frame,
        )
    return Downlink(protocol=gt06.PROTOCOL, kind=OTHER, msg_id=proto, serial=serial, frame=frame)


def _jt808_downlink(frame: bytes) -> Downlink:
    msg = jt808.decode(frame)[0]  # framing, escapes, XOR, header and body length checked there
    msg_id = msg.msg_id
    body = bytes.fromhex(msg.extra.get("body", ""))
    common: dict[str, Any] = {
        "protocol": jt808.PROTOCOL,
        "msg_id": msg_id,
        "serial": msg.serial,
        "frame": frame,
    }
    try:
        if msg_id == jt808.MSG_GENERAL_RESPONSE:
            acked_serial, acked_id, result = struct.unpack_from(">HHB", body)
            return Downlink(
                kind=ACK, acked_serial=acked_serial, acked_id=acked_id, result=result, **common
            )
        if msg_id == jt808.MSG_REGISTER_RESPONSE:
            acked_serial, result = struct.unpack_from(">HB", body)
            code = body[3:].decode("gbk") if result == 0 else None
            return Downlink(
                kind=REGISTER_REPLY,
                acked_serial=acked_serial,
                acked_id=jt808.MSG_REGISTER,
                result=result,
                auth_code=code,
                **common,
            )
        if msg_id == jt808.MSG_TERMINAL_CONTROL:
            word = body[0]
            params_text = body[1:].decode("gbk", "replace")
            kind = {
                jt808.CONTROL_FUEL_CUT: FUEL_CUT,
                jt808.CONTROL_FUEL_RESTORE: FUEL_RESTORE,
                jt808.CONTROL_RESET: REBOOT,
            }.get(word)
            return Downlink(
                kind=COMMAND,
                command=kind,
                params={"command_word": word, "params": params_text},
                **common,
            )
        if msg_id == jt808.MSG_SET_PARAMETERS:
            params = _jt808_parameters(body)
            seconds = params.get(jt808.PARAM_REPORT_INTERVAL)
            return Downlink(
                kind=COMMAND,
                command=SET_INTERVAL if seconds is not None else None,
                params={"seconds": seconds} if seconds is not None else {"parameters": params},
                **common,
            )
        if msg_id == jt808.MSG_LOCATION_QUERY:
            return Downlink(kind=COMMAND, command=LOCATE_NOW, **common)
        if msg_id == jt808.MSG_RESEND_REQUEST:
            first = struct.unpack_from(">H", body)[0]
            rest = body[2:]
            # 2013: count BYTE; 2019: count WORD. Pick the one whose indexes fill the body.
            if msg.extra.get("version") == 2019:
                count, idx = struct.unpack_from(">H", rest)[0], rest[2:]
            else:
                count, idx = rest[0], rest[1:]
            if len(idx) != 2 * count:
                raise FrameError("0x8003 count does not match")
            indexes = [struct.unpack_from(">H", idx, 2 * i)[0] for i in range(count)]
            return Downlink(
                kind=RESEND_REQUEST,
                acked_serial=first,
                params={"indexes": indexes},
                **common,
            )
    except (struct.error, IndexError, UnicodeDecodeError) as exc:
        raise FrameError(f"malformed 0x{msg_id:04x} downlink: {exc}") from exc
    return Downlink(kind=OTHER, **common)


def _jt808_parameters(body: bytes) -> dict[int, int | bytes]:
    """0x8103 body: count (1), then id (4) + length (1) + value; DWORD / WORD / BYTE as ints."""
    count = body[0]
    p = 1
    out: dict[int, int | bytes] = {}
    for _ in range(count):
        pid, size = struct.unpack_from(">IB", body, p)
        value = body[p + 5 : p + 5 + size]
        if len(value) != size:
            raise FrameError("truncated 0x8103 parameter")
        out[pid] = int.from_bytes(value, "big") if size in (1, 2, 4) else value
        p += 5 + size
    return out


def _h02_command_kind(name: str, args: list[str]) -> tuple[str | None, dict[str, Any]]:
    if name == "S20" and args[:2] == ["1", "1"]:
        return FUEL_CUT, {}
    if name == "S20" and args[:2] == ["1", "0"]:
        return FUEL_RESTORE, {}
    if name == "D1" and len(args) == 1 and args[0].isdigit():
        return SET_INTERVAL, {"seconds": int(args[0])}
    if name == "S71" and len(args) == 2 and args[0] == "22" and args[1].isdigit():
        return SET_INTERVAL, {"seconds": int(args[1])}
    if name == "R1":
        return REBOOT, {}
    if name == "SCF" and args == ["0", "0"]:
        return ALARM_ARM, {}
    if name == "SCF" and args == ["1", "1"]:
        return ALARM_DISARM, {}
    return None, {}


def _h02_downlink(frame: bytes) -> Downlink:
    if len(frame) < 3 or frame[:1] != b"*" or frame[-1:] != b"#":
        raise FrameError("not an H02 text frame")
    try:
        fields = frame[1:-1].decode("ascii").split(",")
    except UnicodeDecodeError:
        raise FrameError("non-ASCII H02 frame") from None
    if len(fields) < 3:
        raise FrameError("short H02 frame")
    name = fields[2]
    rest = fields[3:]
    if name == "V4" and rest and rest[0] in ("V1", "NBR"):
        # Ack of a V1 / NBR report: *HQ,<id>,V4,V1,<yyyyMMddHHmmss UTC>#
        when = None
        if len(rest) > 1 and len(rest[1]) == 14 and rest[1].isdigit():
            try:
                when = dt.datetime.strptime(rest[1], "%Y%m%d%H%M%S").replace(tzinfo=_UTC)
            except ValueError:
                when = None
        return Downlink(
            protocol=h02.PROTOCOL,
            kind=ACK,
            msg_id=name,
            acked_id=rest[0],
            server_time=when,
            frame=frame,
        )
    if name in ("HTBT", "V0") and not rest:
        return Downlink(protocol=h02.PROTOCOL, kind=ACK, msg_id=name, acked_id=name, frame=frame)
    if name == "R12":
        return Downlink(protocol=h02.PROTOCOL, kind=ACK, msg_id=name, frame=frame)
    if rest and len(rest[0]) == 6 and rest[0].isdigit():
        # Command: *HQ,<id>,<CMD>,<HHmmss>[,<args>]#
        args = rest[1:]
        kind, params = _h02_command_kind(name, args)
        return Downlink(
            protocol=h02.PROTOCOL,
            kind=COMMAND,
            msg_id=name,
            command=kind,
            params=params,
            text=",".join((name, *args)),
            command_time=rest[0],
            frame=frame,
        )
    return Downlink(protocol=h02.PROTOCOL, kind=OTHER, msg_id=name, frame=frame)


def jt808_parse_register_reply(frame: bytes) -> str:
    """The auth code of the server's 0x8100; RegisterRefused for a non-zero result, FrameError
    for anything that is not a valid 0x8100."""
    d = _jt808_downlink(bytes(frame))
    if d.kind != REGISTER_REPLY:
        raise FrameError(f"not a register reply: msg id {d.msg_id!r}")
    if d.result:
        raise RegisterRefused(d.result)
    return d.auth_code or ""
