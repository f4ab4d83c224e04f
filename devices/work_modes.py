"""Work modes of wireless trackers (T4) and the parameters each one takes.

Pure apart from translating its messages: `clean_work_params(mode, params)` returns the full
parameter dict with defaults filled in, or raises ValueError with a message naming the bad
parameter (in the active language).
"""

from __future__ import annotations

import re
from typing import Any

from django.utils.translation import gettext as _

REALTIME = "realtime"
ALARM_CLOCK = "alarm_clock"
DEEP_SLEEP = "deep_sleep"
VIBRATION = "vibration"

_HHMM = re.compile(r"^([01]\d|2[0-3]):[0-5]\d$")

DEFAULTS: dict[str, dict[str, Any]] = {
    REALTIME: {"moving_interval_s": 30, "still_interval_s": 60},
    ALARM_CLOCK: {"times": ["08:00"]},
    DEEP_SLEEP: {"days": 1},
    VIBRATION: {"interval_s": 30},
}


def _interval(params: dict, key: str) -> int:
    value = params[key]
    if not isinstance(value, int) or isinstance(value, bool) or not 5 <= value <= 65535:
        raise ValueError(
            _("%(key)s must be a whole number of seconds from 5 to 65535") % {"key": key}
        )
    return value


def clean_work_params(mode: str, params: dict | None) -> dict[str, Any]:
    if mode not in DEFAULTS:
        raise ValueError(_("Unknown work mode %(mode)s.") % {"mode": mode})
    params = dict(params or {})
    unknown = set(params) - set(DEFAULTS[mode])
    if unknown:
        raise ValueError(
            _("Unknown parameter(s) for this work mode: %(names)s")
            % {"names": ", ".join(sorted(unknown))}
        )
    merged = {**DEFAULTS[mode], **params}
    if mode == REALTIME:
        _interval(merged, "moving_interval_s")
        _interval(merged, "still_interval_s")
    elif mode == VIBRATION:
        _interval(merged, "interval_s")
    elif mode == ALARM_CLOCK:
        times = merged["times"]
        if not isinstance(times, list) or not 1 <= len(times) <= 6:
            raise ValueError(_("times must list 1 to 6 report times a day"))
        if not all(isinstance(t, str) and _HHMM.match(t) for t in times):
            raise ValueError(_("times must be HH:MM values, e.g. 08:00"))
        if len(set(times)) != len(times):
            raise ValueError(_("times must not repeat"))
        merged["times"] = sorted(times)
    elif mode == DEEP_SLEEP:
        days = merged["days"]
        if not isinstance(days, int) or isinstance(days, bool) or not 1 <= days <= 30:
            raise ValueError(_("days must be a whole number from 1 to 30"))
    return merged
