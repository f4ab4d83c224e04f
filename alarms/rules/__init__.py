"""The alarm rules registry (STYLE.md "Plug-ins"): one class per alarm kind with its `Params`.

`RULES[kind].Params` is what `AlarmSetting.params` may override; `POSITION_RULES` run on every
realtime fix in the gateway batch; `alarms.rules.scan.SCANS` run in the scheduled scans; device
kinds are raised from the codecs' alarm codes.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from alarms import kinds
from alarms.rules import position as p
from alarms.rules.base import Finding, NoParams, Rule
from alarms.rules.scan import Offline


def _device_rule(code: str) -> type[Rule]:
    return type(f"Device_{code}", (Rule,), {"kind": code, "trigger": "device"})


POSITION_RULES: tuple[type[Rule], ...] = (
    p.Overspeed,
    p.AreaEnter,
    p.AreaLeave,
    p.AreaStay,
    p.ProvinceLeave,
    p.ParkingOvertime,
    p.Separation,
    p.UsualAreaAbsent,
    p.Fatigue,
    p.ArmedMove,
    p.FenceEnter,
    p.FenceLeave,
    p.FenceInside,
    p.FenceParking,
    p.Custom,
)

RULES: dict[str, type[Rule]] = {
    **{code: _device_rule(code) for code in sorted(kinds.DEVICE_KINDS)},
    **{rule.kind: rule for rule in POSITION_RULES},
    Offline.kind: Offline,
}
assert set(RULES) == set(kinds.KINDS), set(kinds.KINDS) ^ set(RULES)  # noqa: S101


def params_for(kind: str, overrides: dict[str, Any] | None = None) -> Any:
    """The rule's Params with `overrides` applied; ValueError naming an unknown or bad key."""
    cls = RULES[kind].Params
    if cls is NoParams:
        if overrides:
            raise ValueError(f"{kind} takes no parameters")
        return NoParams()
    names = {f.name: f for f in dataclasses.fields(cls)}
    values = {}
    for key, value in (overrides or {}).items():
        f = names.get(key)
        if f is None:
            raise ValueError(f"{kind}: unknown parameter {key!r} (known: {', '.join(names)})")
        default = f.default
        if isinstance(default, tuple):
            if not isinstance(value, list | tuple):
                raise ValueError(f"{kind}.{key}: expected a list")
            value = tuple(value)
        elif isinstance(default, bool):
            if not isinstance(value, bool):
                raise ValueError(f"{kind}.{key}: expected true or false")
        elif isinstance(default, int | float):
            if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
                raise ValueError(f"{kind}.{key}: expected a non-negative number")
            value = type(default)(value)
        elif isinstance(default, str) and not isinstance(value, str):
            raise ValueError(f"{kind}.{key}: expected text")
        values[key] = value
    return cls(**values)


__all__ = ["RULES", "POSITION_RULES", "Finding", "params_for"]
