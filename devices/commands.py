"""Downlink commands (FEATURES.md T3): the command-kind registry. Pure: no database, no I/O.

A kind is a label, the permissions that send it, a parameter cleaner and one encoder per protocol
built on the protocol's pure codec (`gateway/protocols/<name>.py`, loaded through the protocol
registry). A protocol without an encoder for a kind cannot be sent that kind: `encoder_for`
raises ValueError naming both, and the services turn that into a refusal the user sees.

Matching a reply to the command it answers uses a *match key*, computed from what was sent
(`encode`) and from what came back (`reply_of`):

    GT06    the 0x80 command carries a 32-bit server flag (the command's reference number); the
            0x15 / 0x21 reply echoes it              -> "gt06:<flag>"
    JT808   our frame's serial and message id; 0x0001 names both, 0x0201 (locate) and 0x0500
            (vehicle control) name the serial        -> "jt808:<msg id hex>:<serial>"
    H02     no serial: the V4 reply names the command and echoes its HHmmss (Traccar's sample
            `V4,S20,ERROR,130305,...`)                -> "h02:<CMD>:<HHmmss>", and, when a reply
            lacks the time, the oldest sent command of that name ("h02:<CMD>:" prefix)

Encodings (PROTOCOLS.md and the codecs; where a protocol has none, the kind is refused):

    kind          GT06 (0x80 text)      JT/T 808                       H02
    fuel_cut      RELAY,1#              0x8105 word 0x64 (vendor)      S20,1,1
    fuel_restore  RELAY,0#              0x8105 word 0x65 (vendor)      S20,1,0
    reboot        RESET#                0x8105 word 4 (standard)       R1
    set_interval  TIMER,<s>#            0x8103 param 0x0029            D1,<s>
    locate_now    WHERE# (*)            0x8201 -> 0x0201               -
    set_mode      -                     -                              -

(*) WHERE# is the Concox / Jimi query for the latest position (their user manuals, e.g. Jimi JM01
section 7.1); the device answers with a 0x15 text. Work modes (alarm clock, deep sleep ...) are
vendor commands that PROTOCOLS.md does not give for any of the three protocols, so `set_mode`
is validated but refused for all of them until a device model's encoding is added here.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from devices import work_modes
from devices.protocols import PROTOCOLS
from gateway.protocols.messages import COMMAND_REPLY, TERMINAL_RESPONSE

FUEL_CUT = "fuel_cut"
FUEL_RESTORE = "fuel_restore"
REBOOT = "reboot"
SET_INTERVAL = "set_interval"
SET_MODE = "set_mode"
LOCATE_NOW = "locate_now"

SEND_PERMISSION = "devices.add_command"
FUEL_CUT_PERMISSION = "devices.send_fuel_cut"

# Fuel cut safety (issue 7): cutting the fuel of a car on the road is dangerous.
FUEL_CUT_MAX_SPEED_KMH = 20.0
FUEL_CUT_MAX_FIX_AGE = dt.timedelta(minutes=5)
# A deferred fuel cut waits for the car to stop: a parked car's GPS speed jitters by a few km/h.
STOPPED_SPEED_KMH = 5.0

DEFAULT_TTL = dt.timedelta(hours=24)  # a queued command not sent by then expires
MIN_TTL = dt.timedelta(minutes=1)
MAX_TTL = dt.timedelta(days=31)  # a device in deep sleep wakes at least every 30 days
REPLY_TIMEOUT = dt.timedelta(minutes=3)  # a sent command without a reply by then failed

GT06_LOCATE = "WHERE#"

# JT/T 808 0x0001 results.
JT808_RESULTS = {0: "success", 1: "failure", 2: "bad message", 3: "not supported"}
# Words in a text reply (GT06 0x15, H02 V4) by which a device says the command did not work.
_FAILED_WORDS = re.compile(r"\b(fail|failed|failure|error|invalid|unsupported)\b", re.IGNORECASE)


@dataclass(frozen=True)
class Target:
    """Where a command goes: the device's protocol and id, the command's reference number (GT06
    server flag, JT808 serial) and the send time (H02 carries its HHmmss)."""

    protocol: str
    identifier: str
    ref: int
    now: dt.datetime


@dataclass(frozen=True)
class Encoded:
    frame: bytes
    match_key: str


@dataclass(frozen=True)
class Reply:
    """A device's answer to one of our commands, as far as the frame tells."""

    key: str | None  # the exact match key, when the frame names the command
    prefix: str | None  # else: the oldest sent command whose key starts with this
    ok: bool
    text: str


Encoder = Callable[[Target, dict[str, Any]], Encoded]


@dataclass(frozen=True)
class Kind:
    label: Any  # lazy translation
    permissions: tuple[str, ...]
    clean: Callable[[dict[str, Any]], dict[str, Any]]
    encoders: Mapping[str, Encoder] = field(default_factory=dict)
    deferrable: bool = False  # may wait until the vehicle stops (fuel cut)


# --- Parameters -------------------------------------------------------------------------------


def _no_params(params: dict[str, Any]) -> dict[str, Any]:
    if params:
        raise ValueError(
            _("This command takes no parameters (got: %(names)s).")
            % {"names": ", ".join(sorted(map(str, params)))}
        )
    return {}


def _interval_params(params: dict[str, Any]) -> dict[str, Any]:
    unknown = set(params) - {"seconds"}
    if unknown:
        raise ValueError(
            _("Unknown parameter(s): %(names)s") % {"names": ", ".join(sorted(map(str, unknown)))}
        )
    seconds = params.get("seconds")
    if isinstance(seconds, bool) or not isinstance(seconds, int) or not 5 <= seconds <= 65535:
        raise ValueError(_("seconds must be a whole number from 5 to 65535"))
    return {"seconds": seconds}


def _mode_params(params: dict[str, Any]) -> dict[str, Any]:
    rest = dict(params)
    mode = rest.pop("mode", None)
    if mode not in work_modes.DEFAULTS:
        raise ValueError(
            _("mode must be one of: %(modes)s") % {"modes": ", ".join(work_modes.DEFAULTS)}
        )
    return {"mode": mode, **work_modes.clean_work_params(mode, rest)}


def clean_params(kind: str, params: Any) -> dict[str, Any]:
    """The kind's parameters checked and normalised; ValueError with a message for the user."""
    spec = get_kind(kind)
    if params is None:
        params = {}
    if not isinstance(params, dict):
        raise ValueError(_('Parameters must be an object, e.g. {"seconds": 60}.'))
    return spec.clean(params)


# --- Encoders ---------------------------------------------------------------------------------


def _gt06(text: Callable[[dict[str, Any]], str]) -> Encoder:
    def encode(target: Target, params: dict[str, Any]) -> Encoded:
        codec = PROTOCOLS["gt06"].load_codec()
        flag = target.ref & 0xFFFFFFFF
        frame = codec.encode_command(text(params), serial=target.ref & 0xFFFF, server_flag=flag)
        return Encoded(frame, f"gt06:{flag}")

    return encode


def _jt808(build: Callable[..., bytes], answer_to: int) -> Encoder:
    """`answer_to`: the downlink message id the device's reply names (0x0001 reply id)."""

    def encode(target: Target, params: dict[str, Any]) -> Encoded:
        codec = PROTOCOLS["jt808"].load_codec()
        serial = target.ref & 0xFFFF
        # A 20-digit terminal id is a 2019 terminal (BCD[10] phone, version flag in the header).
        frame = build(
            codec, target.identifier, serial, params, version2019=len(target.identifier) == 20
        )
        return Encoded(frame, f"jt808:{answer_to:04x}:{serial}")

    return encode


def _h02(command: Callable[[dict[str, Any]], str]) -> Encoder:
    def encode(target: Target, params: dict[str, Any]) -> Encoded:
        codec = PROTOCOLS["h02"].load_codec()
        frame = codec.encode_command(target.identifier, command(params), now=target.now)
        # *HQ,<id>,<CMD>,<HHmmss>[,args]# : the reply names CMD and echoes HHmmss.
        fields = frame[1:-1].decode("ascii").split(",")
        return Encoded(frame, f"h02:{fields[2]}:{fields[3]}")

    return encode


def _gt06_const(name: str) -> Callable[[dict[str, Any]], str]:
    return lambda params: getattr(PROTOCOLS["gt06"].load_codec(), name)


KINDS: dict[str, Kind] = {
    FUEL_CUT: Kind(
        gettext_lazy("fuel cut"),
        (SEND_PERMISSION, FUEL_CUT_PERMISSION),
        _no_params,
        {
            "gt06": _gt06(_gt06_const("FUEL_CUT")),
            "jt808": _jt808(lambda c, i, s, p, **o: c.fuel_cut(i, s, True, **o), 0x8105),
            "h02": _h02(lambda p: "S20,1,1"),
        },
        deferrable=True,
    ),
    FUEL_RESTORE: Kind(
        gettext_lazy("fuel restore"),
        (SEND_PERMISSION,),
        _no_params,
        {
            "gt06": _gt06(_gt06_const("FUEL_RESTORE")),
            "jt808": _jt808(lambda c, i, s, p, **o: c.fuel_cut(i, s, False, **o), 0x8105),
            "h02": _h02(lambda p: "S20,1,0"),
        },
    ),
    REBOOT: Kind(
        gettext_lazy("reboot"),
        (SEND_PERMISSION,),
        _no_params,
        {
            "gt06": _gt06(_gt06_const("REBOOT")),
            "jt808": _jt808(lambda c, i, s, p, **o: c.reboot(i, s, **o), 0x8105),
            "h02": _h02(lambda p: "R1"),
        },
    ),
    SET_INTERVAL: Kind(
        gettext_lazy("set report interval"),
        (SEND_PERMISSION,),
        _interval_params,
        {
            "gt06": _gt06(lambda p: PROTOCOLS["gt06"].load_codec().interval_command(p["seconds"])),
            "jt808": _jt808(
                lambda c, i, s, p, **o: c.set_interval(i, s, p["seconds"], **o), 0x8103
            ),
            "h02": _h02(lambda p: f"D1,{p['seconds']}"),
        },
    ),
    SET_MODE: Kind(gettext_lazy("set work mode"), (SEND_PERMISSION,), _mode_params, {}),
    LOCATE_NOW: Kind(
        gettext_lazy("locate now"),
        (SEND_PERMISSION,),
        _no_params,
        {
            "gt06": _gt06(lambda p: GT06_LOCATE),
            "jt808": _jt808(lambda c, i, s, p, **o: c.locate_now(i, s, **o), 0x8201),
        },
    ),
}


def kind_choices() -> list[tuple[str, Any]]:
    return [(key, kind.label) for key, kind in KINDS.items()]


def get_kind(kind: str) -> Kind:
    spec = KINDS.get(kind)
    if spec is None:
        raise ValueError(
            _("Unknown command %(kind)s: expected one of %(kinds)s.")
            % {"kind": kind, "kinds": ", ".join(KINDS)}
        )
    return spec


def encoder_for(kind: str, protocol: str) -> Encoder:
    spec = get_kind(kind)
    encoder = spec.encoders.get(protocol)
    if encoder is None:
        label = PROTOCOLS[protocol].label if protocol in PROTOCOLS else protocol
        raise ValueError(
            _(
                "%(protocol)s devices cannot be sent the command “%(kind)s”: the protocol has no "
                "encoding for it."
            )
            % {"protocol": label, "kind": spec.label}
        )
    return encoder


def encode(kind: str, params: dict[str, Any], target: Target) -> Encoded:
    """The frame for `kind` on the target's protocol and the key its reply will match."""
    encoder = encoder_for(kind, target.protocol)
    try:
        return encoder(target, params)
    except (ValueError, KeyError) as exc:
        raise ValueError(
            _("The command could not be encoded for %(protocol)s: %(error)s")
            % {"protocol": PROTOCOLS[target.protocol].label, "error": exc}
        ) from exc


# --- Fuel-cut safety ---------------------------------------------------------------------------


def fuel_cut_refusal(
    *, speed_kmh: float | None, fix_at: dt.datetime | None, now: dt.datetime
) -> str | None:
    """Why a fuel cut must not go out now (None: it may). Unknown means unsafe: a car whose
    speed or recent position is not known may be on the road."""
    if fix_at is None:
        return _("Fuel cut refused: the vehicle has no known position, so it may be moving.")
    age = now - fix_at
    if age > FUEL_CUT_MAX_FIX_AGE:
        return _(
            "Fuel cut refused: the last position is %(minutes)d minutes old (the limit is "
            "%(limit)d), so the vehicle may be moving."
        ) % {
            "minutes": age.total_seconds() // 60,
            "limit": FUEL_CUT_MAX_FIX_AGE.total_seconds() // 60,
        }
    if speed_kmh is None:
        return _("Fuel cut refused: the vehicle's speed is not known.")
    if speed_kmh > FUEL_CUT_MAX_SPEED_KMH:
        return _(
            "Fuel cut refused: the vehicle was last moving at %(speed).0f km/h (the limit is "
            "%(limit).0f km/h)."
        ) % {"speed": speed_kmh, "limit": FUEL_CUT_MAX_SPEED_KMH}
    return None


def is_stopped(*, speed_kmh: float | None, fix_at: dt.datetime | None, now: dt.datetime) -> bool:
    """A deferred fuel cut may go out: a fresh fix shows the vehicle standing still."""
    return (
        fix_at is not None
        and now - fix_at <= FUEL_CUT_MAX_FIX_AGE
        and speed_kmh is not None
        and speed_kmh <= STOPPED_SPEED_KMH
    )


# --- Replies ----------------------------------------------------------------------------------

_HHMMSS = re.compile(r"^\d{6}$")


def reply_of(msg: Any) -> Reply | None:
    """The command reply carried by a decoded frame (`gateway.protocols.messages.Message`), or
    None for every other frame. Cheap for the frames that are not replies (the hot path)."""
    kind = msg.type
    if msg.protocol == "jt808":
        extra = msg.extra
        if kind == TERMINAL_RESPONSE:
            result = extra.get("result", 0)
            text = f"{result} {JT808_RESULTS.get(result, 'unknown')}"
            return Reply(
                f"jt808:{extra['reply_id']:04x}:{extra['reply_serial']}", None, not result, text
            )
        if msg.msg_id == 0x0201 and "reply_serial" in extra:
            pos = msg.positions[0] if msg.positions else None
            text = f"{pos.lat:.6f},{pos.lon:.6f}" if pos is not None else ""
            return Reply(f"jt808:8201:{extra['reply_serial']}", None, True, text)
        if msg.msg_id == 0x0500 and "reply_serial" in extra:
            return Reply(f"jt808:8500:{extra['reply_serial']}", None, True, "")
        return None
    if kind != COMMAND_REPLY:
        return None
    text = msg.text or ""
    if msg.protocol == "gt06":
        flag = msg.extra.get("server_flag")
        if flag is None:
            return None
        return Reply(f"gt06:{flag}", None, not _FAILED_WORDS.search(text), text)
    if msg.protocol == "h02":
        name = msg.extra.get("command")
        if not name:
            return None
        items = msg.extra.get("reply")
        if items is None:
            items = text.split(",")[1:]
        stamps = [item for item in items if _HHMMSS.match(item)]
        ok = not any(_FAILED_WORDS.search(item) for item in items)
        key = f"h02:{name}:{stamps[-1]}" if stamps else None
        return Reply(key, f"h02:{name}:", ok, text)
    return None
