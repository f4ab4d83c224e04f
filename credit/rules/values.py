"""Turning the pipeline's feature dict into the values rules see.

Features come nested (`{"applicant": {"age": 30}}`) or flat (`{"applicant.age": 30}`), or mixed.
Each value the rules read is checked against its declared type: ints and Decimals are numbers
(floats become Decimals through their shortest repr, NaN and infinities are refused, bool is not a
number), dates may also be `datetime`s (their own calendar date) or ISO strings, lists may be
lists, tuples or sets. A value of the wrong type becomes null and is reported as a `Problem`
(recorded with the decision), so a bad feed never raises in the pipeline and never satisfies a rule
by accident. Names the schema does not declare are ignored.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from decimal import Decimal

from credit.rules.functions import CONTEXT, parse_date
from credit.rules.types import FeatureSchema, Type

_BIG = 10**28  # ints beyond Decimal's 28 digits are rounded to them


@dataclass(frozen=True, slots=True)
class Problem:
    field: str
    expected: str
    got: str

    def __str__(self) -> str:
        return f"{self.field}: expected {self.expected}, got {self.got}"


def flatten(features: Mapping[str, object]) -> dict[str, object]:
    """Nested mappings -> dotted names (iterative, so any nesting depth is safe)."""
    out: dict[str, object] = {}
    stack: list[tuple[str, Mapping[str, object]]] = [("", features)]
    while stack:
        prefix, mapping = stack.pop()
        for key, value in mapping.items():
            name = f"{prefix}{key}"
            if isinstance(value, Mapping):
                stack.append((name + ".", value))
            else:
                out[name] = value
    return out


_MISSING = object()


def coerce(expected: Type, value: object) -> object:
    """`value` as the language represents `expected`, or _MISSING when it does not fit."""
    if value is None:
        return None
    kind = expected.kind
    if kind == "number":
        if isinstance(value, bool):
            return _MISSING
        if isinstance(value, int):
            return value if -_BIG < value < _BIG else CONTEXT.create_decimal(value)
        if isinstance(value, Decimal):
            return CONTEXT.create_decimal(value) if value.is_finite() else _MISSING
        if isinstance(value, float):
            return Decimal(repr(value)) if math.isfinite(value) else _MISSING
        return _MISSING
    if kind == "string":
        return value if isinstance(value, str) else _MISSING
    if kind == "bool":
        return value if isinstance(value, bool) else _MISSING
    if kind == "date":
        if isinstance(value, dt.datetime):
            return value.date()
        if isinstance(value, dt.date):
            return value
        if isinstance(value, str):
            parsed = parse_date(value)
            return _MISSING if parsed is None else parsed
        return _MISSING
    if kind == "list":
        items: Iterable[object]
        if isinstance(value, list | tuple):
            items = value
        elif isinstance(value, set | frozenset):
            items = sorted(value, key=repr)  # a stable order for len() and audit records
        else:
            return _MISSING
        if expected.item is None:
            return tuple(items)
        out = []
        for item in items:
            converted = coerce(expected.item, item)
            if converted is _MISSING:
                return _MISSING
            out.append(converted)
        return tuple(out)
    return _MISSING


def _describe(value: object) -> str:
    text = repr(value)
    if len(text) > 40:
        text = text[:37] + "..."
    return f"{type(value).__name__} {text}"


def coerce_features(
    schema: FeatureSchema,
    features: Mapping[str, object],
    fields: Iterable[str] | None = None,
) -> tuple[dict[str, object], tuple[Problem, ...]]:
    """The typed values of `fields` (default: every declared field) and the problems found.
    Missing fields are null and not a problem."""
    return coerce_flat(schema, flatten(features), fields)


def coerce_flat(
    schema: FeatureSchema,
    flat: Mapping[str, object],
    fields: Iterable[str] | None = None,
) -> tuple[dict[str, object], tuple[Problem, ...]]:
    """coerce_features over an already flattened dict."""
    values: dict[str, object] = {}
    problems: list[Problem] = []
    for name in schema if fields is None else fields:
        raw = flat.get(name)
        if raw is None:
            continue
        expected = schema[name].type
        value = coerce(expected, raw)
        if value is _MISSING:
            problems.append(Problem(name, str(expected), _describe(raw)))
        else:
            values[name] = value
    return values, tuple(problems)
