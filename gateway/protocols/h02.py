"""H02 (Sinotrack / "HQ") codec: text `*XX,...#` sentences and 32/42/45-byte binary `$` frames.

Pure functions (no Django, no I/O, no module-level mutable state). Facts: PROTOCOLS.md section 2.3
(../shared/protocols; Traccar's H02FrameDecoder / H02ProtocolDecoder / H02ProtocolEncoder).

Framing (`split_frames`)
  * text: `*` .. `#`, printable ASCII only, at most MAX_FRAME bytes including both markers. A `*`
    or a non-printable byte (CR/LF included) before the `#` ends the candidate: the bytes so far
    are garbage and the stream resyncs there. A candidate reaching MAX_FRAME bytes without `#` is
    discarded up to the next `$` inside it (or the end of its printable run): resync.
  * binary: `$` + 11 BCD header bytes (id, time, date; otherwise the `$` is garbage). H02 has no
    length field, so the length is given (`binary_length=32|42|45`: a session that saw its first
    binary frame should pass `len(frame)` from then on, as Traccar latches it per connection) or
    guessed (auto, Traccar's rule extended): 32 when byte 32 starts a frame (`$`/`*`) or the
    buffer ends right after 32 bytes; 45 when it ends right after 45 bytes or byte 45 starts a
    frame; 32 otherwise; wait while 33..44 bytes are buffered and byte 32 starts no frame. In auto
    mode chunked and whole feeding agree except when a read ends exactly 32 or 45 bytes after a
    `$` (the guess is made on the bytes at hand, like Traccar). The 42-byte variant (8-byte IMEI)
    is only framed with `binary_length=42`.

Decoding (`decode`; H02 has no checksum, `lenient` is accepted and ignored)
  * V1/V2/V5/V6/V8/V19/VI1/...: POSITION. Knots -> km/h, UTC, A = valid, hemisphere signs, an
    optional battery field before the date, an optional SIM-info triple before the status word,
    trailing fields kept in extra["io"]: 4-5 of them are MCC,MNC,LAC,CID[,x] (hex when a field has
    a hex letter / space padding / all are 6-digit zero padded, else decimal) -> Position.cells;
    6 are Traccar's odometer(m),temperature,fuel,altitude,lac(hex),cid(hex). A V frame without
    date/time (or with date 000000) has no fix: STATUS, no position.
  * V4: COMMAND_REPLY, text = the reply up to the position block (e.g. "S20,DONE,130305"),
    extra["command"] = "S20", extra["reply"] = ["DONE", "130305"] (the last item echoes our
    command's time); the position block, when present, is decoded too.
  * HTBT / V0: HEARTBEAT (HTBT may carry a battery %). LINK: HEARTBEAT with rssi, satellites,
    battery, steps. NBR / V3: STATUS with the cells in extra["cells"] (no position: cells alone
    give no lat/lon). VP1: cells (STATUS) or a date-only fix (POSITION, realtime=False).
  * BASE, XT, BS, SMS and anything else: OTHER.
  * Status word, ACTIVE-LOW (PROTOCOLS.md processStatus): bit0=0 vibration; bit1=0 or bit18=0
    SOS; bit2=0 overspeed; bit19=0 power cut (on backup battery). ACC = bit10 *set* (reference
    and vectors: FFFFFBFF -> ignition off). Fuel cut = bit27 clear (H02 manual "oil and engine
    cut off"; Traccar's sample `V4,S20,DONE,...,F7FFFBFF`). Unlike Traccar (first alarm only)
    every matching alarm is raised. Raw word in extra["status"].
  * Binary: id BCD (5 bytes, 8 in the 42-byte frame), hhmmss DDMMYY, lat ddmm.mmmm, battery byte,
    lon dddmm.mmmm + flag nibble (bit1 valid, bit2 N, bit3 E), speed knots (3 BCD digits), course
    (3 BCD digits), status (4 bytes), user-alarm byte, reserved byte, record number (-> serial).
    The 45-byte frame's 13 more bytes: x, u32, MCC(2), MNC(1), LAC(2), CID(2), x (inferred from
    the reference frames, whose MCCs match their coordinates) -> Position.cells; raw in extra.

Replies (`encode_reply`, PROTOCOLS.md / vectors H02-ACK): V1 -> `*HQ,<id>,V4,V1,<yyyyMMddHHmmss>#`;
NBR -> `*HQ,<id>,V4,NBR,<yyyyMMddHHmmss>#`; HTBT / V0 echoed up to the type field; anything else
None unless `ack_all=True` (Traccar's h02.ack): `*HQ,<id>,R12,<HHmmss>#`.

Commands (`encode_command`, Traccar's encoder layout `*HQ,<id>,<CMD>,<HHmmss>[,<args>]#`): fuel
cut `S20,1,1`, restore `S20,1,0`, interval `D1,<s>` (or `S71,22,<s>`), arm `SCF,0,0`, disarm
`SCF,1,1`. Reboot `R1` is not in the reference: public H02 command lists (no vector checks it).
"""

from __future__ import annotations

import datetime as dt
import re
from types import MappingProxyType

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
    Position,
    new_cell,
    new_message,
    new_position,
)

PROTOCOL = "h02"
MAX_FRAME = 512
BINARY_LENGTHS = (32, 42, 45)
KNOTS_TO_KMH = 1.852

_UTC = dt.UTC
_START = re.compile(rb"[*$]")
# Printable ASCII except '#' (0x23) and '*' (0x2a): the body of a text frame.
_TEXT_RUN = re.compile(rb"[\x20-\x22\x24-\x29\x2b-\x7e]*")
_BCD_CLASS = b"".join(re.escape(bytes([(hi << 4) | lo])) for hi in range(10) for lo in range(10))
_BCD_HEADER = re.compile(b"[" + _BCD_CLASS + b"]{0,11}")
_BINARY_HEADER = 11  # id (5) + time (3) + date (3): all BCD

_HEX8 = re.compile(r"[0-9A-Fa-f]{8}", re.ASCII)
_HEX = re.compile(r"[0-9A-Fa-f]{1,8}", re.ASCII)
_DEC = re.compile(r"\d{1,6}(?:\.\d{0,6})?", re.ASCII)
_CELL4 = re.compile(
    r" *([0-9A-Fa-f]{1,8}), *([0-9A-Fa-f]{1,8}), *([0-9A-Fa-f]{1,8}), *([0-9A-Fa-f]{1,8})", re.ASCII
)
_SDEC = re.compile(r"-?\d{1,6}(?:\.\d{0,6})?", re.ASCII)
_SINT = re.compile(r"-?\d{1,9}", re.ASCII)
_PRINTABLE_CMD = re.compile(r"[\x20-\x22\x24-\x29\x2b-\x7e]+", re.ASCII)

_NS = MappingProxyType({"N": 1.0, "S": -1.0})
_EW = MappingProxyType({"E": 1.0, "W": -1.0})
_OTHER_TYPES = frozenset({"BASE", "XT", "BS", "SMS"})

# Status word bits (active-low, i.e. the condition holds when the bit is 0).
BIT_VIBRATION = 0
BIT_SOS = 1
BIT_OVERSPEED = 2
BIT_ACC = 10  # set = ACC on (reference: ignition = bit10)
BIT_SOS_2 = 18
BIT_POWER_CUT = 19  # host powered by the backup battery
BIT_FUEL_CUT = 27  # oil and engine cut off
_VIBRATION_MASK = 1 << BIT_VIBRATION
_SOS_MASK = (1 << BIT_SOS) | (1 << BIT_SOS_2)
_OVERSPEED_MASK = 1 << BIT_OVERSPEED
_POWER_CUT_MASK = 1 << BIT_POWER_CUT
_ACC_MASK = 1 << BIT_ACC
_FUEL_CUT_MASK = 1 << BIT_FUEL_CUT


# ---------------------------------------------------------------------------------------------
# Framing


def split_frames(buf: bytes, *, binary_length: int | None = None) -> tuple[list[bytes], bytes, int]:
    """Whole frames in `buf`, the unconsumed partial frame, and the number of discarded bytes."""
    if binary_length is not None and binary_length not in BINARY_LENGTHS:
        raise ValueError(f"binary_length must be one of {BINARY_LENGTHS}")
    frames: list[bytes] = []
    discarded = 0
    pos = 0
    n = len(buf)
    start_search = _START.search
    text_run = _TEXT_RUN.match
    while pos < n:
        m = start_search(buf, pos)
        if m is None:
            discarded += n - pos
            pos = n
            break
        i = m.start()
        discarded += i - pos
        pos = i
        if buf[i] == 0x2A:  # '*'
            j = text_run(buf, i + 1).end()  # type: ignore[union-attr]
            if j - i >= MAX_FRAME:  # no '#' within MAX_FRAME bytes: oversized
                k = buf.find(b"$", i + 1, j)
                end = j if k < 0 else k
                discarded += end - i
                pos = end
                continue
            if j == n:
                break  # partial text frame
            if buf[j] == 0x23:  # '#'
                frames.append(buf[i : j + 1])
                pos = j + 1
            else:  # '*' or a non-printable byte before '#': garbage, resync there
                discarded += j - i
                pos = j
            continue
        # '$' binary frame
        hdr_end = _BCD_HEADER.match(buf, i + 1).end()  # type: ignore[union-attr]
        if hdr_end < n and hdr_end < i + 1 + _BINARY_HEADER:
            discarded += 1  # not a binary frame start
            pos = i + 1
            continue
        length = binary_length or _auto_binary_length(buf, i, n)
        if length == 0 or n - i < length:
            break  # partial binary frame
        frames.append(buf[i : i + length])
        pos = i + length
    return frames, buf[pos:], discarded


def _auto_binary_length(buf: bytes, i: int, n: int) -> int:
    """32 or 45 for the `$` frame at `i`, 0 to wait for more bytes (see the module doc)."""
    avail = n - i
    if avail < 32:
        return 0
    if avail == 32:
        return 32
    if buf[i + 32] in (0x24, 0x2A):
        return 32
    if avail < 45:
        return 0
    if avail == 45 or buf[i + 45] in (0x24, 0x2A):
        return 45
    return 32


# ---------------------------------------------------------------------------------------------
# Decoding


def decode(frame: bytes, *, lenient: bool = False) -> list[Message]:
    """Decode one frame from `split_frames`. Raises FrameError (only) for a frame to drop."""
    del lenient  # H02 has no checksum
    if not frame:
        raise FrameError("empty frame")
    first = frame[0]
    try:
        if first == 0x2A:
            return [_decode_text(frame)]
        if first == 0x24:
            return [_decode_binary(frame)]
    except FrameError:
        raise
    except (ValueError, IndexError, KeyError, TypeError, OverflowError) as exc:  # pragma: no cover
        raise FrameError(f"malformed H02 frame: {exc}") from exc
    raise FrameError("not an H02 frame start")


def status_flags(word: int) -> tuple[bool, bool, tuple[str, ...]]:
    """(acc, fuel_cut, alarms) from the active-low status word."""
    alarms: list[str] = []
    if not word & _VIBRATION_MASK:
        alarms.append(ALARM_VIBRATION)
    if word & _SOS_MASK != _SOS_MASK:
        alarms.append(ALARM_SOS)
    if not word & _OVERSPEED_MASK:
        alarms.append(ALARM_OVERSPEED)
    if not word & _POWER_CUT_MASK:
        alarms.append(ALARM_POWER_CUT)
    return bool(word & _ACC_MASK), not word & _FUEL_CUT_MASK, tuple(alarms)


def battery_level(value: int) -> int | None:
    """Battery byte / level -> percent (Traccar's decodeBattery, levels 1..6 as 0..100 %)."""
    if 0xF1 <= value <= 0xF6:
        value -= 0xF0
    if value == 0:
        return None
    if value <= 3:
        return (value - 1) * 10
    if value <= 6:
        return (value - 1) * 20
    if value <= 100:
        return value
    return None


def _datetime(date: str, time: str) -> dt.datetime:
    """DDMMYY + hhmmss (both 6 ASCII digits) -> aware UTC datetime."""
    if len(date) != 6 or len(time) != 6 or not date.isdigit() or not time.isdigit():
        raise FrameError(f"bad date/time {date!r} {time!r}")
    d = int(date)
    t = int(time)
    try:
        return dt.datetime(
            2000 + d % 100, d // 100 % 100, d // 10000, t // 10000, t // 100 % 100, t % 100, 0, _UTC
        )
    except ValueError as exc:
        raise FrameError(f"impossible date/time {date!r} {time!r}") from exc


def _coordinate(text: str, sign: float, max_degrees: int) -> float:
    """ddmm.mmmm / dddmm.mmmm, `-dd-mm.mmmm`, or dddmmmmmm (no dot) -> signed degrees."""
    if len(text) <= 12 and text.replace(".", "", 1).isdigit():
        if "." in text:
            v = float(text)
            degrees = int(v) // 100
            minutes = v - degrees * 100
        elif 7 <= len(text) <= 9:
            degrees = int(text[:-6])
            minutes = int(text[-6:]) / 10000.0
        else:
            raise FrameError(f"bad coordinate {text!r}")
    elif text[:1] == "-":
        parts = text[1:].split("-")
        if len(parts) != 2 or not parts[0].isdigit() or not _DEC.fullmatch(parts[1]):
            raise FrameError(f"bad coordinate {text!r}")
        degrees = int(parts[0])
        minutes = float(parts[1])
    else:
        raise FrameError(f"bad coordinate {text!r}")
    if minutes >= 60.0:
        raise FrameError(f"coordinate minutes out of range {text!r}")
    value = degrees + minutes / 60.0
    if value > max_degrees:
        raise FrameError(f"coordinate out of range {text!r}")
    return sign * value


def _is_decimal(text: str) -> bool:
    """ASCII digits with at most one '.' (no sign, exponent, underscore, nan/inf), <= 12 chars."""
    return len(text) <= 12 and text.replace(".", "", 1).isdigit()


def _speed_course(speed: str, course: str) -> tuple[float, int]:
    sp = speed.strip()
    co = course.strip()
    if not _is_decimal(sp):
        raise FrameError(f"bad speed {speed!r}")
    if co == "":
        return float(sp) * KNOTS_TO_KMH, 0
    if not _is_decimal(co):
        raise FrameError(f"bad course {course!r}")
    c = float(co)
    if c > 360.0:
        raise FrameError(f"course out of range {course!r}")
    return float(sp) * KNOTS_TO_KMH, int(c + 0.5) % 360


def _io_cell(io: list[str]) -> Cell | None:
    """MCC,MNC,LAC,CID (hex or decimal, see the module doc) -> Cell, None when not a real cell."""
    m = _CELL4.fullmatch(",".join(io[:4]))
    if m is None:
        return None
    mcc_s, mnc_s, lac_s, cid_s = m.groups()
    hexa = (
        not (mcc_s + mnc_s + lac_s + cid_s).isdigit()
        or " " in m.string
        or len(mcc_s) == len(mnc_s) == len(lac_s) == len(cid_s) == 6
    )
    base = 16 if hexa else 10
    mcc = int(mcc_s, base)
    mnc = int(mnc_s, base)
    cid = int(cid_s, base)
    if not 200 <= mcc <= 799 or mnc > 999 or cid == 0:
        return None
    return new_cell(mcc=mcc, mnc=mnc, lac=int(lac_s, base), cid=cid)


def _io_fields(io: list[str], pos_kw: dict, extra: dict) -> None:
    """Interpret the fields after the status word (Traccar's patterns); raw values always kept."""
    extra["io"] = [v.strip() for v in io]
    if len(io) == 6:
        odo, temp, fuel, alt, lac, cid = (v.strip() for v in io)
        if (
            odo.isdigit()
            and _SINT.fullmatch(temp)
            and _DEC.fullmatch(fuel)
            and _SDEC.fullmatch(alt)
            and _HEX.fullmatch(lac)
            and _HEX.fullmatch(cid)
        ):
            pos_kw["odometer_km"] = int(odo) / 1000.0
            pos_kw["altitude_m"] = float(alt)
            extra["temperature"] = int(temp)
            extra["fuel"] = float(fuel)
            extra["lac"] = int(lac, 16)
            extra["cid"] = int(cid, 16)
    elif len(io) in (4, 5):
        cell = _io_cell(io)
        if cell is not None:
            pos_kw["cells"] = (cell,)


def _fix_block(f: list[str], k: int, pos_extra: dict) -> tuple[Position | None, int | None]:
    """Decode the position block starting with the time field at f[k]: (position, status word).

    Position is None when the frame carries no fix time (empty time/date or date 000000).
    """
    if len(f) < k + 9:
        raise FrameError("too few fields")
    time = f[k]
    vflag = f[k + 1]
    if vflag == "A":
        valid = True
    elif vflag in ("V", "B", ""):
        valid = False
    elif vflag.isdigit():  # V2/VI1 coding scheme: Traccar treats the fix as valid
        valid = True
    else:
        raise FrameError(f"bad validity {vflag!r}")
    date_idx = k + 8
    battery: int | None = None
    x = f[date_idx]
    if not (x == "" or (len(x) == 6 and x.isdigit())):
        if x.isdigit() and len(x) <= 3 and len(f) > k + 9:
            battery = int(x)
            date_idx = k + 9
        else:
            raise FrameError(f"bad date {x!r}")
    date = f[date_idx]
    if not (date == "" or (len(date) == 6 and date.isdigit())):
        raise FrameError(f"bad date {date!r}")
    if time and not (len(time) == 6 and time.isdigit()):
        raise FrameError(f"bad time {time!r}")
    rest = f[date_idx + 1 :]
    status: int | None = None
    io: list[str] = []
    if rest:
        if _HEX8.fullmatch(rest[0]):
            status = int(rest[0], 16)
            io = rest[1:]
        elif len(rest) >= 4 and _HEX8.fullmatch(rest[3]):
            pos_extra["sim"] = rest[:3]
            status = int(rest[3], 16)
            io = rest[4:]
        else:
            raise FrameError("no status word")
    if time == "" or date == "" or date == "000000":
        return None, status
    fix_time = _datetime(date, time)
    h = f[k + 3]
    ns = 1.0 if h == "N" else -1.0 if h == "S" else 0.0
    h = f[k + 5]
    ew = 1.0 if h == "E" else -1.0 if h == "W" else 0.0
    if not ns or not ew:
        raise FrameError("bad hemisphere")
    lat = _coordinate(f[k + 2], ns, 90)
    lon = _coordinate(f[k + 4], ew, 180)
    speed, course = _speed_course(f[k + 6], f[k + 7])
    kw: dict = {}
    if battery is not None:
        pos_extra["battery_raw"] = battery
        kw["battery_pct"] = battery_level(battery)
    if io:
        _io_fields(io, kw, pos_extra)
    acc = fuel_cut = None
    alarms: tuple[str, ...] = ()
    if status is not None:
        acc, fuel_cut, alarms = status_flags(status)
        pos_extra["status"] = status
    pos = new_position(
        fix_time=fix_time,
        lat=lat,
        lon=lon,
        valid=valid,
        speed_kmh=speed,
        course=course,
        acc=acc,
        fuel_cut=fuel_cut,
        alarms=alarms,
        extra=pos_extra,
        **kw,
    )
    return pos, status


def _device_id(text: str) -> str | None:
    if text == "":
        return None
    if len(text) > 20 or not text.isdigit():
        raise FrameError(f"bad device id {text!r}")
    return text


def _decode_text(frame: bytes) -> Message:
    if len(frame) > MAX_FRAME or frame[-1] != 0x23:
        raise FrameError("text frame without '#' or oversized")
    try:
        sentence = frame[1:-1].decode("ascii")
    except UnicodeDecodeError as exc:
        raise FrameError("non-ASCII text frame") from exc
    f = sentence.split(",")
    if len(f) < 3 or len(f[0]) != 2:
        raise FrameError("bad H02 sentence head")
    device_id = _device_id(f[1])
    typ = f[2]
    extra: dict = {"h02_type": typ, "maker": f[0]}
    if typ == "V4":
        return _decode_v4(frame, f, device_id, extra)
    if typ in ("HTBT", "V0"):
        return _decode_heartbeat(frame, f, device_id, extra)
    if typ == "LINK":
        return _decode_link(frame, f, device_id, extra)
    if typ == "NBR":
        return _decode_nbr(frame, f, device_id, extra)
    if typ == "V3":
        return _decode_v3(frame, f, device_id, extra)
    if typ == "VP1":
        return _decode_vp1(frame, f, device_id, extra)
    if typ[:1] == "V" and typ not in _OTHER_TYPES:
        pos, status = _fix_block(f, 3, {"h02_type": typ})
        if pos is not None:
            if status is not None:
                extra["status"] = status
            return new_message(
                protocol=PROTOCOL,
                type=POSITION,
                device_id=device_id,
                positions=(pos,),
                frame=frame,
                extra=extra,
            )
        return _status_message(frame, device_id, extra, status, STATUS)
    return new_message(
        protocol=PROTOCOL, type=OTHER, device_id=device_id, text=sentence, frame=frame, extra=extra
    )


def _status_message(
    frame: bytes,
    device_id: str | None,
    extra: dict,
    status: int | None,
    mtype: str,
    **kw: object,
) -> Message:
    acc = fuel_cut = None
    alarms: tuple[str, ...] = ()
    if status is not None:
        acc, fuel_cut, alarms = status_flags(status)
        extra["status"] = status
    return new_message(
        protocol=PROTOCOL,
        type=mtype,
        device_id=device_id,
        acc=acc,
        fuel_cut=fuel_cut,
        alarms=alarms,
        frame=frame,
        extra=extra,
        **kw,  # type: ignore[arg-type]
    )


def _is_block_at(f: list[str], k: int) -> bool:
    t = f[k]
    return (
        f[k + 3] in _NS
        and f[k + 5] in _EW
        and f[k + 1] in ("A", "V", "B")
        and len(t) == 6
        and t.isdigit()
    )


def _decode_v4(frame: bytes, f: list[str], device_id: str | None, extra: dict) -> Message:
    if len(f) < 4 or f[3] == "":
        raise FrameError("V4 without the replied command")
    extra["command"] = f[3]
    k = next((k for k in range(4, len(f) - 8) if _is_block_at(f, k)), None)
    if k is None:
        return new_message(
            protocol=PROTOCOL,
            type=COMMAND_REPLY,
            device_id=device_id,
            text=",".join(f[3:]),
            frame=frame,
            extra=extra,
        )
    extra["reply"] = f[4:k]
    pos, status = _fix_block(f, k, {"h02_type": "V4"})
    if status is not None:
        extra["status"] = status
    if pos is None:  # pragma: no cover - _is_block_at demands a time; date may still be empty
        return _status_message(
            frame, device_id, extra, status, COMMAND_REPLY, text=",".join(f[3:k])
        )
    return new_message(
        protocol=PROTOCOL,
        type=COMMAND_REPLY,
        device_id=device_id,
        positions=(pos,),
        text=",".join(f[3:k]),
        frame=frame,
        extra=extra,
    )


def _decode_heartbeat(frame: bytes, f: list[str], device_id: str | None, extra: dict) -> Message:
    battery: int | None = None
    if len(f) > 3:
        extra["fields"] = f[3:]
        if f[2] == "HTBT" and f[3].isdigit() and int(f[3]) <= 100:
            battery = int(f[3])
    return new_message(
        protocol=PROTOCOL,
        type=HEARTBEAT,
        device_id=device_id,
        battery_pct=battery,
        frame=frame,
        extra=extra,
    )


def _int_field(text: str, what: str) -> int:
    t = text.strip()
    if not t.isdigit() or len(t) > 9:
        raise FrameError(f"bad {what} {text!r}")
    return int(t)


def _sint_field(text: str, what: str) -> int:
    t = text.strip()
    if not _SINT.fullmatch(t):
        raise FrameError(f"bad {what} {text!r}")
    return int(t)


def _status_field(text: str) -> int:
    if not _HEX8.fullmatch(text):
        raise FrameError(f"bad status word {text!r}")
    return int(text, 16)


def _decode_link(frame: bytes, f: list[str], device_id: str | None, extra: dict) -> Message:
    # *HQ,id,LINK,hhmmss,rssi,satellites,battery,steps,turnovers,DDMMYY,status[,...]#
    if len(f) < 11:
        raise FrameError("LINK: too few fields")
    extra["time"] = _datetime(f[9], f[3])
    rssi = _int_field(f[4], "rssi")
    extra["rssi"] = rssi
    extra["satellites"] = _int_field(f[5], "satellites")
    battery = _int_field(f[6], "battery")
    extra["steps"] = _int_field(f[7], "steps")
    extra["turnovers"] = _int_field(f[8], "turnovers")
    status = _status_field(f[10])
    if len(f) > 11:
        extra["io"] = f[11:]
    return _status_message(
        frame,
        device_id,
        extra,
        status,
        HEARTBEAT,
        battery_pct=battery if battery <= 100 else None,
        gsm_signal=min(100, round(rssi * 100 / 31)),
    )


def _decode_nbr(frame: bytes, f: list[str], device_id: str | None, extra: dict) -> Message:
    # *HQ,id,NBR,hhmmss,mcc,mnc,gsm_delay,count,(lac,cid,rssi)*count,DDMMYY,status[,...]#
    if len(f) < 10:
        raise FrameError("NBR: too few fields")
    mcc = _int_field(f[4], "mcc")
    mnc = _int_field(f[5], "mnc")
    extra["gsm_delay"] = _int_field(f[6], "gsm delay")
    count = _int_field(f[7], "cell count")
    end = 8 + 3 * count
    if len(f) < end + 2:
        raise FrameError("NBR: cell count does not match the fields")
    cells = tuple(
        new_cell(
            mcc=mcc,
            mnc=mnc,
            lac=_int_field(f[p], "lac"),
            cid=_int_field(f[p + 1], "cid"),
            rssi=_sint_field(f[p + 2], "rssi"),
        )
        for p in range(8, end, 3)
    )
    extra["time"] = _datetime(f[end], f[3])
    extra["cells"] = cells
    status = _status_field(f[end + 1])
    if len(f) > end + 2:
        extra["io"] = f[end + 2 :]
    return _status_message(frame, device_id, extra, status, STATUS)


def _decode_v3(frame: bytes, f: list[str], device_id: str | None, extra: dict) -> Message:
    # *HQ,id,V3,hhmmss,<mcc(3)><mnc>,count,(lac,cid,x,rssi)*count,battery(hex4),reboot,X,
    #   DDMMYY,status#
    if len(f) < 11:
        raise FrameError("V3: too few fields")
    mccmnc = f[4]
    if not (4 <= len(mccmnc) <= 6 and mccmnc.isdigit()):
        raise FrameError(f"V3: bad mcc/mnc {mccmnc!r}")
    mcc, mnc = int(mccmnc[:3]), int(mccmnc[3:])
    count = _int_field(f[5], "cell count")
    end = 6 + 4 * count
    if len(f) != end + 5 or f[end + 2] != "X":
        raise FrameError("V3: cell count does not match the fields")
    cells = []
    for p in range(6, end, 4):
        rssi = f[p + 3].strip()
        cells.append(
            new_cell(
                mcc=mcc,
                mnc=mnc,
                lac=_int_field(f[p], "lac"),
                cid=_int_field(f[p + 1], "cid"),
                rssi=_sint_field(rssi, "rssi") if rssi else None,
            )
        )
    battery = f[end]
    if not _HEX.fullmatch(battery):
        raise FrameError(f"V3: bad battery {battery!r}")
    extra["battery_raw"] = int(battery, 16)
    extra["reboot"] = _int_field(f[end + 1], "reboot info")
    extra["time"] = _datetime(f[end + 3], f[3])
    extra["cells"] = tuple(cells)
    return _status_message(frame, device_id, extra, _status_field(f[end + 4]), STATUS)


def _decode_vp1(frame: bytes, f: list[str], device_id: str | None, extra: dict) -> Message:
    # *hq,imei,VP1,V,mcc,mnc,lac,cid,rssiYlac,cid,rssi...#
    # *hq,imei,VP1,A,lat,N,lon,E,knots,course,DDMMYY#
    if len(f) < 7:
        raise FrameError("VP1: too few fields")
    if f[3] == "V":
        mcc = _int_field(f[4], "mcc")
        mnc = _int_field(f[5], "mnc")
        cells = []
        for chunk in ",".join(f[6:]).split("Y"):
            v = chunk.split(",")
            if len(v) != 3:
                raise FrameError("VP1: bad cell")
            cells.append(
                new_cell(
                    mcc=mcc,
                    mnc=mnc,
                    lac=_int_field(v[0], "lac"),
                    cid=_int_field(v[1], "cid"),
                    rssi=_sint_field(v[2], "rssi"),
                )
            )
        extra["cells"] = tuple(cells)
        return _status_message(frame, device_id, extra, None, STATUS)
    if f[3] not in ("A", "B") or len(f) < 11:
        raise FrameError("VP1: bad layout")
    ns = _NS.get(f[5])
    ew = _EW.get(f[7])
    if ns is None or ew is None:
        raise FrameError("bad hemisphere")
    speed, course = _speed_course(f[8], f[9])
    pos = new_position(
        fix_time=_datetime(f[10], "000000"),
        lat=_coordinate(f[4], ns, 90),
        lon=_coordinate(f[6], ew, 180),
        valid=True,
        speed_kmh=speed,
        course=course,
        realtime=False,  # date only: the time of day is unknown
        extra={"h02_type": "VP1", "date_only": True},
    )
    return new_message(
        protocol=PROTOCOL,
        type=POSITION,
        device_id=device_id,
        positions=(pos,),
        frame=frame,
        extra=extra,
    )


def _bcd_digits(raw: bytes, what: str) -> str:
    h = raw.hex()
    if not h.isdigit():
        raise FrameError(f"bad BCD {what}")
    return h


def _decode_binary(frame: bytes) -> Message:
    n = len(frame)
    if n not in BINARY_LENGTHS:
        raise FrameError(f"bad binary frame length {n}")
    if n == 42:
        device_id = _bcd_digits(frame[1:9], "id")[:15]
        o = 9
    else:
        device_id = _bcd_digits(frame[1:6], "id")
        o = 6
    stamp = _bcd_digits(frame[o : o + 6], "time")
    fix_time = _datetime(stamp[6:12], stamp[0:6])
    lat_d = _bcd_digits(frame[o + 6 : o + 10], "latitude")
    battery_raw = frame[o + 10]
    lon_h = frame[o + 11 : o + 16].hex()
    lon_d = lon_h[:9]
    if not lon_d.isdigit():
        raise FrameError("bad BCD longitude")
    flags = frame[o + 15] & 0x0F
    lat_min = int(lat_d[2:]) / 10000.0
    lon_min = int(lon_d[3:]) / 10000.0
    if lat_min >= 60.0 or lon_min >= 60.0:
        raise FrameError("coordinate minutes out of range")
    lat = int(lat_d[:2]) + lat_min / 60.0
    lon = int(lon_d[:3]) + lon_min / 60.0
    if lat > 90.0 or lon > 180.0:
        raise FrameError("coordinate out of range")
    if not flags & 0x4:
        lat = -lat
    if not flags & 0x8:
        lon = -lon
    sc = _bcd_digits(frame[o + 16 : o + 19], "speed/course")
    course = int(sc[3:6])
    if course > 360:
        raise FrameError("course out of range")
    status = int.from_bytes(frame[o + 19 : o + 23], "big")
    acc, fuel_cut, alarms = status_flags(status)
    tail = frame[o + 23 :]
    pos_extra: dict = {"h02_type": "binary", "status": status, "battery_raw": battery_raw}
    extra: dict = {"h02_type": "binary"}
    serial: int | None = None
    cells: tuple[Cell, ...] = ()
    if n == 42:
        extra["tail"] = tail.hex()
    else:
        extra["user_alarm"] = tail[0]
        extra["reserved"] = tail[1]
        serial = tail[2]
        if n == 45:
            ext = tail[3:]
            extra["ext"] = ext.hex()
            mcc = int.from_bytes(ext[5:7], "big")
            cid = int.from_bytes(ext[10:12], "big")
            if 200 <= mcc <= 799 and cid:
                cells = (
                    new_cell(
                        mcc=mcc,
                        mnc=ext[7],
                        lac=int.from_bytes(ext[8:10], "big"),
                        cid=cid,
                    ),
                )
    pos = new_position(
        fix_time=fix_time,
        lat=lat,
        lon=lon,
        valid=bool(flags & 0x2),
        speed_kmh=int(sc[0:3]) * KNOTS_TO_KMH,
        course=course % 360,
        acc=acc,
        fuel_cut=fuel_cut,
        alarms=alarms,
        battery_pct=battery_level(battery_raw),
        cells=cells,
        extra=pos_extra,
    )
    return new_message(
        protocol=PROTOCOL,
        type=POSITION,
        device_id=device_id,
        serial=serial,
        positions=(pos,),
        frame=frame,
        extra=extra,
    )


# ---------------------------------------------------------------------------------------------
# Replies and commands


def _utc(now: dt.datetime | None) -> dt.datetime:
    if now is None:
        return dt.datetime.now(_UTC)
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware")
    return now.astimezone(_UTC)


def encode_reply(
    msg: Message, *, now: dt.datetime | None = None, ack_all: bool = False
) -> bytes | None:
    """The bytes the device expects in answer to `msg` (None: no answer). See the module doc."""
    if msg.protocol != PROTOCOL or msg.device_id is None:
        return None
    typ = msg.extra.get("h02_type")
    if typ in ("V1", "NBR"):
        stamp = _utc(now).strftime("%Y%m%d%H%M%S")
        return f"*HQ,{msg.device_id},V4,{typ},{stamp}#".encode("ascii")
    if typ in ("V0", "HTBT"):
        frame = msg.frame
        start = frame.find(b",", frame.find(b",") + 1) + 1
        end = frame.find(b",", start)
        if end < 0:
            end = frame.find(b"#", start)
        return frame[:end] + b"#"
    if ack_all and typ is not None and typ != "binary":
        return f"*HQ,{msg.device_id},R12,{_utc(now).strftime('%H%M%S')}#".encode("ascii")
    return None


def encode_command(device_id: str, command: str, *, now: dt.datetime) -> bytes:
    """`*HQ,<id>,<CMD>,<HHmmss>[,<args>]#` for `command` = "CMD[,args]" (e.g. "S20,1,1")."""
    if not (device_id.isascii() and device_id.isdigit() and len(device_id) <= 20):
        raise ValueError(f"bad H02 device id {device_id!r}")
    if not _PRINTABLE_CMD.fullmatch(command) or command.startswith(","):
        raise ValueError(f"bad H02 command {command!r}")
    name, sep, args = command.partition(",")
    head = f"*HQ,{device_id},{name},{_utc(now).strftime('%H%M%S')}"
    return f"{head},{args}#".encode("ascii") if sep else f"{head}#".encode("ascii")


def fuel_cut(device_id: str, *, now: dt.datetime) -> bytes:
    return encode_command(device_id, "S20,1,1", now=now)


def fuel_restore(device_id: str, *, now: dt.datetime) -> bytes:
    return encode_command(device_id, "S20,1,0", now=now)


def set_interval(device_id: str, seconds: int, *, now: dt.datetime, variant: str = "D1") -> bytes:
    """Position interval 5..65535 s: `D1,<s>` (default) or `S71,22,<s>` (PROTOCOLS.md)."""
    if isinstance(seconds, bool) or not isinstance(seconds, int) or not 5 <= seconds <= 65535:
        raise ValueError("interval must be an int of 5..65535 seconds")
    if variant == "D1":
        return encode_command(device_id, f"D1,{seconds}", now=now)
    if variant == "S71":
        return encode_command(device_id, f"S71,22,{seconds}", now=now)
    raise ValueError(f"unknown interval variant {variant!r}")


def reboot(device_id: str, *, now: dt.datetime) -> bytes:
    return encode_command(device_id, "R1", now=now)


def alarm_arm(device_id: str, *, now: dt.datetime) -> bytes:
    return encode_command(device_id, "SCF,0,0", now=now)


def alarm_disarm(device_id: str, *, now: dt.datetime) -> bytes:
    return encode_command(device_id, "SCF,1,1", now=now)
