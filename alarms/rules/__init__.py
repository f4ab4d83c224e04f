"""The alarm rules registry (STYLE.md "Plug-ins"): one class per alarm kind with its `Params`.

`RULES[kind].Params` is what `AlarmSetting.params` may override; `POSITION_RULES` run on every
realtime fix in the gateway batch; `alarms.rules.scan.SCANS` run in the scheduled scans; device
kinds are raised from the codecs' alarm codes.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any

from alarms import kinds
from alarms.rules import position as p
from alarms.rules.base import Finding, NoParams, ParamError, Rule
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
    """The rule's Params with `overrides` applied. Raises `ParamError` (a ValueError) for an
    unknown key, a value of the wrong type, a number outside the field's [low, high] or text
    outside its choices (`alarms.rules.base.param`)."""
    cls = RULES[kind].Params
    if cls is NoParams:
        if overrides:
            raise ParamError(kind, None, "no_params")
        return NoParams()
    names = {f.name: f for f in dataclasses.fields(cls)}
    values = {}
    for key, value in (overrides or {}).items():
        f = names.get(key)
        if f is None:
            raise ParamError(kind, key, "unknown", value=value, known=tuple(names))
        values[key] = _checked(kind, key, f, value)
    return cls(**values)


def _checked(kind: str, key: str, f: dataclasses.Field, value: Any) -> Any:
    meta = f.metadata
    low, high, choices = meta.get("low"), meta.get("high"), meta.get("choices")
    default = f.default
    if isinstance(default, tuple):
        if not isinstance(value, list | tuple) or not all(isinstance(v, str) for v in value):
            raise ParamError(kind, key, "type", value=value, expected="a list of text")
        for item in value:
            if choices and item not in choices:
                raise ParamError(kind, key, "choice", value=item, choices=choices)
        return tuple(dict.fromkeys(value))  # order kept, duplicates dropped
    if isinstance(default, bool):
        if not isinstance(value, bool):
            raise ParamError(kind, key, "type", value=value, expected="true or false")
        return value
    if isinstance(default, int | float):
        number_ok = isinstance(value, int | float) and not isinstance(value, bool)
        if not number_ok or not math.isfinite(value):
            raise ParamError(kind, key, "type", value=value, expected="a number")
        if isinstance(default, int):
            if value != int(value):
                raise ParamError(kind, key, "type", value=value, expected="a whole number")
            value = int(value)
        else:
            value = float(value)
        if (low is not None and value < low) or (high is not None and value > high):
            raise ParamError(kind, key, "range", value=value, low=low, high=high)
        return value
    if isinstance(default, str):
        if not isinstance(value, str):
            raise ParamError(kind, key, "type", value=value, expected="text")
        value = value.strip()
        if value and choices and value not in choices:  # empty: the default behaviour
            raise ParamError(kind, key, "choice", value=value, choices=choices)
        return value
    return value  # pragma: no cover - every Params field is one of the types above


def param_specs(kind: str) -> list[dict[str, Any]]:
    """What `AlarmSetting.params` may hold for `kind`: name, default, type, low, high,
    choices and unit per field (empty for kinds without parameters)."""
    cls = RULES[kind].Params
    if cls is NoParams:
        return []
    out = []
    for f in dataclasses.fields(cls):
        default = f.default
        out.append(
            {
                "name": f.name,
                "default": list(default) if isinstance(default, tuple) else default,
                "type": "list"
                if isinstance(default, tuple)
                else "bool"
                if isinstance(default, bool)
                else "int"
                if isinstance(default, int)
                else "float"
                if isinstance(default, float)
                else "text",
                "low": f.metadata.get("low"),
                "high": f.metadata.get("high"),
                "choices": list(f.metadata.get("choices") or ()),
                "unit": f.metadata.get("unit", ""),
            }
        )
    return out


__all__ = ["RULES", "POSITION_RULES", "Finding", "ParamError", "param_specs", "params_for"]
