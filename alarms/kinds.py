"""Alarm kinds (FEATURES.md R4–R6): the 8 device alarms, the 15 platform alarms and custom ones.

`KINDS` is the registry the `Alarm.kind` / `AlarmSetting.kind` choices come from. Device kinds
share their codes with `gateway.protocols.messages.ALARM_*` (the codecs map vendor codes onto
them); platform kinds are raised by the rules in `alarms.rules`.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.utils.translation import gettext_lazy as _

DEVICE = "device"
PLATFORM = "platform"

INFO, WARNING, CRITICAL = 1, 2, 3


@dataclass(frozen=True)
class Kind:
    code: str
    label: str
    category: str
    level: int = WARNING
    # The condition can end (leaving a fence, coming back online ...): the alarm auto-closes.
    auto_close: bool = False


_ALL = [
    # R5 device alarms
    Kind("power_cut", _("power cut (battery removed)"), DEVICE, CRITICAL),
    Kind("removal", _("removal / tamper"), DEVICE, CRITICAL),
    Kind("vibration", _("vibration"), DEVICE, INFO),
    Kind("location", _("location alarm"), DEVICE, INFO),
    Kind("sos", _("SOS / anti-robbery"), DEVICE, CRITICAL),
    Kind("case_open", _("case opened"), DEVICE, CRITICAL),
    Kind("displacement", _("displacement"), DEVICE, WARNING),
    Kind("fake_base_station", _("fake base station / jamming"), DEVICE, CRITICAL),
    Kind("low_battery", _("low battery"), DEVICE, INFO),
    # R6 platform alarms
    Kind("overspeed", _("overspeed"), PLATFORM, WARNING, auto_close=True),
    Kind("area_enter", _("entered a sensitive area"), PLATFORM, WARNING),
    Kind("area_leave", _("left a sensitive area"), PLATFORM, INFO),
    Kind("area_stay", _("stayed too long in a sensitive area"), PLATFORM, CRITICAL, True),
    Kind("offline", _("offline"), PLATFORM, WARNING, auto_close=True),
    Kind("parking_overtime", _("parked too long"), PLATFORM, WARNING, auto_close=True),
    Kind("separation", _("devices separated"), PLATFORM, CRITICAL, auto_close=True),
    Kind("province_leave", _("left the home province"), PLATFORM, CRITICAL, auto_close=True),
    Kind("usual_area_absent", _("not in the usual area for too long"), PLATFORM, WARNING, True),
    Kind("fatigue", _("fatigue driving"), PLATFORM, WARNING, auto_close=True),
    Kind("armed_move", _("armed vehicle moved"), PLATFORM, CRITICAL),
    Kind("fence_enter", _("entered a fence"), PLATFORM, WARNING),
    Kind("fence_leave", _("left a fence"), PLATFORM, WARNING),
    Kind("fence_inside", _("inside a fence"), PLATFORM, INFO, auto_close=True),
    Kind("fence_parking", _("parked too long inside a fence"), PLATFORM, WARNING, True),
    # R4
    Kind("custom", _("custom alarm"), PLATFORM, WARNING, auto_close=True),
]

KINDS: dict[str, Kind] = {k.code: k for k in _ALL}
DEVICE_KINDS = frozenset(k.code for k in _ALL if k.category == DEVICE)
PLATFORM_KINDS = frozenset(k.code for k in _ALL if k.category == PLATFORM)


def choices() -> list[tuple[str, str]]:
    return [(k.code, k.label) for k in _ALL]
