"""The rule expression language: compile a rule's text against a feature schema, then evaluate it.

    program = compile_condition("applicant.age between 18 and 60 and not lists.blacklist")
    program.evaluate({"applicant": {"age": 30}, "lists": {"blacklist": False}}).value  # True

`compile_*` raises RuleSyntaxError / RuleTypeError (both RuleError, an ApplicationError) with the
position of the bad token; nothing else, whatever the text (a hypothesis test holds us to it).
`Program.evaluate` never raises: bad feature values become null and are reported, arithmetic
trouble is null plus a flag, and anything unforeseen is caught, flagged `error` and gives null.
The language itself is described in docs/CREDIT.md ("Rules").
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass, field

from credit.rules.compiler import Compiler, Fn, Values
from credit.rules.errors import RuleTypeError, gettext_noop
from credit.rules.features import AS_OF_FIELD, DEFAULT_SCHEMA
from credit.rules.functions import ERROR, EvalContext
from credit.rules.nodes import Node, fields_used
from credit.rules.parser import parse
from credit.rules.types import FeatureSchema, Type
from credit.rules.values import Problem, coerce_flat, flatten

__all__ = [
    "Evaluation",
    "Program",
    "compile_condition",
    "compile_expression",
    "as_of_from",
    "parse",
    "resolve_as_of",
]


@dataclass(frozen=True, slots=True)
class Evaluation:
    value: object  # None = null
    flags: tuple[str, ...] = ()  # division_by_zero, arithmetic_error, bad_argument, ...
    problems: tuple[Problem, ...] = ()  # feature values of the wrong type, read as null


@dataclass(frozen=True, eq=False)
class Program:
    """A compiled expression. Immutable and thread-safe: evaluations share nothing."""

    source: str
    tree: Node
    type: Type
    fields: frozenset[str]  # the features it reads
    schema: FeatureSchema = field(repr=False)
    fn: Fn = field(repr=False)

    def run(self, values: Values, ctx: EvalContext) -> object:
        """Evaluate over already typed values (see `values.coerce_features`); never raises."""
        try:
            return self.fn(values, ctx)
        except Exception:  # a bug or an input nobody foresaw: null, flagged, never escapes
            ctx.flag(ERROR)
            return None

    def evaluate(
        self, features: Mapping[str, object], *, as_of: dt.date | None = None
    ) -> Evaluation:
        """Evaluate over a raw feature dict (nested or dotted). `as_of` (for today() and
        age_at(x)) defaults to the features' application.date."""
        try:
            flat = flatten(features)
            values, problems = coerce_flat(self.schema, flat, self.fields)
            ctx = EvalContext(as_of if as_of is not None else as_of_from(flat))
        except Exception:
            return Evaluation(None, (ERROR,))
        value = self.run(values, ctx)
        return Evaluation(value, tuple(ctx.flags), problems)


def resolve_as_of(features: Mapping[str, object]) -> dt.date | None:
    """The evaluation date a feature dict carries in application.date, if any."""
    return as_of_from(flatten(features))


def as_of_from(flat: Mapping[str, object]) -> dt.date | None:
    """resolve_as_of over an already flattened dict."""
    value = flat.get(AS_OF_FIELD)
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, dt.date):
        return value
    if isinstance(value, str):
        try:
            return dt.date.fromisoformat(value)
        except ValueError:
            return None
    return None


def compile_expression(source: str, schema: FeatureSchema | None = None) -> Program:
    """Parse and type-check `source` against `schema` (default: the car-loan schema)."""
    schema = DEFAULT_SCHEMA if schema is None else schema
    tree = parse(source)
    result, fn = Compiler(source, schema).compile(tree)
    return Program(source, tree, result, fields_used(tree), schema, fn)


def compile_condition(source: str, schema: FeatureSchema | None = None) -> Program:
    """Like compile_expression, and the result must be a condition (true / false)."""
    program = compile_expression(source, schema)
    if program.type.kind != "bool":
        tree = program.tree
        raise RuleTypeError(
            gettext_noop("a rule must be a condition (true or false); this is %(type)s"),
            {"type": str(program.type)},
            source=source,
            start=tree.start,
            end=tree.end,
            code="rule_not_condition",
        )
    return program
