"""What every codec decodes into: frozen dataclasses with normalised units.

Units: WGS-84 degrees, km/h, metres (altitude), volts, percent, kilometres (odometer), aware UTC
datetimes. Raw vendor codes and anything without a normalised field go to `extra`.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any


class FrameError(ValueError):
    """A frame that must be dropped: bad checksum, bad length, truncated or malformed body."""


class ChecksumError(FrameError):
    """Only the checksum is wrong: a device model marked lenient may still be decoded."""


# Message types.
LOGIN = "login"  # GT06 0x01, H02 first frame (device identifies itself)
REGISTER = "register"  # JT808 0x0100
AUTH = "auth"  # JT808 0x0102 (carries the auth code)
HEARTBEAT = "heartbeat"  # GT06 0x13/0x23, JT808 0x0002, H02 HTBT / V0 ...
POSITION = "position"  # one or more fixes (JT808 0x0704 batch: several)
STATUS = "status"  # device state without a fix (GT06 0x13 terminal info, H02 status ...)
COMMAND_REPLY = (
    "command_reply"  # GT06 0x15/0x21, JT808 0x0001 general response to our command, H02 V4
)
TIME_REQUEST = "time_request"  # GT06 0x8A
TERMINAL_RESPONSE = "terminal_response"  # JT808 0x0001
LOGOUT = "logout"  # JT808 0x0003
OTHER = "other"  # understood, nothing for the platform (acked when the protocol wants it)

# Platform device-alarm kinds (FEATURES.md R5). Codecs map vendor codes onto these.
ALARM_POWER_CUT = "power_cut"  # 电瓶拆除 / external power cut
ALARM_REMOVAL = "removal"  # 非法拆除 / tamper, light sensor of magnet trackers
ALARM_VIBRATION = "vibration"  # 震动
ALARM_SOS = "sos"  # 防劫 / SOS
ALARM_CASE_OPEN = "case_open"  # 开盖
ALARM_DISPLACEMENT = "displacement"  # 位移 / movement
ALARM_FAKE_BASE_STATION = "fake_base_station"  # 伪基站 / jamming
ALARM_LOW_BATTERY = "low_battery"
ALARM_OVERSPEED = "overspeed"  # device-side overspeed (the platform has its own rule too)
ALARM_GEOFENCE = "geofence"  # device-side fence
ALARM_LOCATION = "location"  # 地点 (device reports a location alarm)
ALARM_KINDS = (
    ALARM_POWER_CUT,
    ALARM_REMOVAL,
    ALARM_VIBRATION,
    ALARM_SOS,
    ALARM_CASE_OPEN,
    ALARM_DISPLACEMENT,
    ALARM_FAKE_BASE_STATION,
    ALARM_LOW_BATTERY,
    ALARM_OVERSPEED,
    ALARM_GEOFENCE,
    ALARM_LOCATION,
)


@dataclass(frozen=True)
class Cell:
    mcc: int
    mnc: int
    lac: int
    cid: int
    rssi: int | None = None


@dataclass(frozen=True)
class Position:
    fix_time: dt.datetime  # aware, UTC
    lat: float
    lon: float
    valid: bool  # the device says the fix is valid (GPS fixed)
    source: str = "gps"  # "gps" | "lbs" | "wifi"
    speed_kmh: float | None = None
    course: int | None = None  # degrees 0-359
    altitude_m: float | None = None
    satellites: int | None = None
    realtime: bool = True  # False: re-uploaded / blind-area data, never a "now" alarm
    acc: bool | None = None
    fuel_cut: bool | None = None
    cells: tuple[Cell, ...] = ()
    battery_pct: int | None = None
    external_voltage: float | None = None
    gsm_signal: int | None = None  # 0-100 normalised where the protocol gives a level
    odometer_km: float | None = None
    sleeping: bool | None = None
    alarms: tuple[str, ...] = ()  # ALARM_* kinds raised with this fix
    extra: dict[str, Any] = field(default_factory=dict, compare=False, hash=False)


@dataclass(frozen=True)
class Message:
    protocol: str  # registry key: "gt06" | "jt808" | "h02"
    type: str  # one of the message types above
    device_id: str | None  # IMEI / terminal id when the frame carries it
    serial: int | None = None  # the frame's sequence number (echoed in acks)
    msg_id: int | None = None  # protocol message id (GT06 protocol number, JT808 message id)
    positions: tuple[Position, ...] = ()
    # Device state without a fix (status / heartbeat frames).
    acc: bool | None = None
    fuel_cut: bool | None = None
    battery_pct: int | None = None
    external_voltage: float | None = None
    gsm_signal: int | None = None
    alarms: tuple[str, ...] = ()
    text: str | None = None  # command reply text, H02 raw text ...
    frame: bytes = b""  # the raw frame, for logs and acks
    extra: dict[str, Any] = field(default_factory=dict, compare=False, hash=False)


# --- Fast construction -----------------------------------------------------------------------
# A frozen dataclass __init__ assigns every field through object.__setattr__ (~3 us for Position,
# ~2 us for Message: most of a location frame's decode time at the 100k frames/s budget). These
# builders make the same object (same fields, defaults and default factories; the codec tests
# compare them with the real __init__) by filling the instance __dict__ once. If a class ever gets
# slots or a __post_init__, the real constructor is used instead.


def _builder(cls: type[Any]) -> Callable[..., Any]:
    if "__slots__" in vars(cls) or hasattr(cls, "__post_init__"):
        return cls
    defaults: dict[str, Any] = {}
    factories: list[tuple[str, Callable[[], Any]]] = []
    for f in dataclasses.fields(cls):
        if f.default is not dataclasses.MISSING:
            defaults[f.name] = f.default
        elif f.default_factory is not dataclasses.MISSING:
            factories.append((f.name, f.default_factory))
    factory_list = tuple(factories)
    new = object.__new__
    set_attr = object.__setattr__

    def build(**fields: Any) -> Any:
        obj = new(cls)
        d = {**defaults, **fields}  # `defaults` is private to this closure and never mutated
        for name, factory in factory_list:
            if name not in d:
                d[name] = factory()
        set_attr(obj, "__dict__", d)
        return obj

    return build


new_position: Callable[..., Position] = _builder(Position)
new_message: Callable[..., Message] = _builder(Message)
new_cell: Callable[..., Cell] = _builder(Cell)
