"""Type checking against a feature schema and compilation to closures (never `eval`).

One pass over the tree: each node is checked (types, known fields, known functions, arity) and
turned into a small Python closure `fn(values, ctx) -> value`; evaluating a rule is calling the
root closure. Null semantics (documented in docs/CREDIT.md):

- arithmetic with null is null; so is a function call with a null argument (except coalesce);
- comparisons (== != < <= > >=, in, not in, between) with null are false;
- `is null` / `is not null` test for it; `x == null` is refused at compile time;
- and/or/not are three-valued (Kleene): false and null = false, true or null = true,
  not null = null; a rule is hit only when its condition is exactly true;
- division or remainder by zero is null and flags the evaluation with `division_by_zero`.
"""

from __future__ import annotations

import difflib
import operator
from collections.abc import Callable, Mapping, Sequence
from decimal import Decimal
from typing import Any, cast

from credit.rules.errors import RuleTypeError, gettext_noop
from credit.rules.functions import (
    ARITHMETIC_ERROR,
    CONTEXT,
    DIVISION_BY_ZERO,
    FUNCTIONS,
    EvalContext,
    Function,
    SignatureError,
)
from credit.rules.nodes import (
    Arithmetic,
    Between,
    BoolOp,
    Call,
    Compare,
    In,
    IsNull,
    ListLiteral,
    Literal,
    Name,
    Node,
    Operator,
    Unary,
)
from credit.rules.types import BOOL, NULL, NUMBER, STRING, FeatureSchema, Type, list_of, unify

Values = Mapping[str, object]
Fn = Callable[[Values, EvalContext], object]
Number = int | Decimal

_TYPE_OF_LITERAL = {bool: BOOL, int: NUMBER, Decimal: NUMBER, str: STRING, type(None): NULL}


# --- arithmetic: ints stay ints for + and -, everything else is Decimal in CONTEXT -----------
def _add(a: Number, b: Number, ctx: EvalContext) -> Number:
    return a + b if type(a) is int and type(b) is int else CONTEXT.add(a, b)


def _sub(a: Number, b: Number, ctx: EvalContext) -> Number:
    return a - b if type(a) is int and type(b) is int else CONTEXT.subtract(a, b)


def _mul(a: Number, b: Number, ctx: EvalContext) -> Number:
    if type(a) is int and type(b) is int and -(2**62) < a < 2**62 and -(2**62) < b < 2**62:
        return a * b
    return CONTEXT.multiply(a, b)


def _div(a: Number, b: Number, ctx: EvalContext) -> Number | None:
    if not b:
        ctx.flag(DIVISION_BY_ZERO)
        return None
    return CONTEXT.divide(a, b)


def _mod(a: Number, b: Number, ctx: EvalContext) -> Number | None:
    if not b:
        ctx.flag(DIVISION_BY_ZERO)
        return None
    return CONTEXT.remainder(a, b)  # the sign of the dividend, like SQL and Java


def _concat(a: str, b: str, ctx: EvalContext) -> str:
    return a + b


_NUMBER_OPS: dict[str, Callable[[Number, Number, EvalContext], Number | None]] = {
    "+": _add,
    "-": _sub,
    "*": _mul,
    "/": _div,
    "%": _mod,
}
_COMPARE: dict[str, Callable[[Any, Any], object]] = {
    "==": operator.eq,
    "!=": operator.ne,
    "<": operator.lt,
    "<=": operator.le,
    ">": operator.gt,
    ">=": operator.ge,
}


def _is_constant(node: Node) -> bool:
    return isinstance(node, Literal) or (
        isinstance(node, ListLiteral) and all(isinstance(i, Literal) for i in node.items)
    )


class Compiler:
    def __init__(
        self,
        source: str,
        schema: FeatureSchema,
        functions: Mapping[str, Function] = FUNCTIONS,
    ) -> None:
        self.source = source
        self.schema = schema
        self.functions = functions

    def error(
        self, template: str, start: int, end: int, code: str | None = None, **params: object
    ) -> RuleTypeError:
        return RuleTypeError(template, params, source=self.source, start=start, end=end, code=code)

    def compile(self, node: Node) -> tuple[Type, Fn]:
        if isinstance(node, Literal):
            return self.literal(node)
        if isinstance(node, Name):
            return self.name(node)
        if isinstance(node, ListLiteral):
            return self.list_literal(node)
        if isinstance(node, Call):
            return self.call(node)
        if isinstance(node, Unary):
            return self.unary(node)
        if isinstance(node, Arithmetic):
            return self.arithmetic(node)
        if isinstance(node, Compare):
            return self.compare(node)
        if isinstance(node, In):
            return self.membership(node)
        if isinstance(node, Between):
            return self.between(node)
        if isinstance(node, IsNull):
            return self.is_null(node)
        if isinstance(node, BoolOp):
            return self.bool_op(node)
        raise TypeError(f"unknown node {node!r}")  # pragma: no cover - the parser's contract

    # --- leaves ----------------------------------------------------------------------------
    def literal(self, node: Literal) -> tuple[Type, Fn]:
        value = node.value

        def constant(values: Values, ctx: EvalContext) -> object:
            return value

        return _TYPE_OF_LITERAL[type(value)], constant

    def name(self, node: Name) -> tuple[Type, Fn]:
        name = node.name
        field = self.schema.get(name)
        if field is None:
            raise self.unknown_field(node)

        def read(values: Values, ctx: EvalContext) -> object:
            return values.get(name)

        return field.type, read

    def unknown_field(self, node: Name) -> RuleTypeError:
        name = node.name
        span = (node.start, node.end, "unknown_field")
        group = self.schema.under(name)
        if group:
            shown = ", ".join(group[:5]) + (", ..." if len(group) > 5 else "")
            return self.error(
                gettext_noop("%(name)s is a group of fields, not a field: use one of %(fields)s"),
                *span,
                name=name,
                fields=shown,
            )
        suggestion = self.schema.suggest(name)
        if suggestion:
            return self.error(
                gettext_noop("unknown field %(name)s, did you mean %(suggestion)s?"),
                *span,
                name=name,
                suggestion=suggestion,
            )
        if name in self.functions:
            return self.error(
                gettext_noop("%(name)s is a function: call it as %(name)s(...)"), *span, name=name
            )
        return self.error(gettext_noop("unknown field %(name)s"), *span, name=name)

    def list_literal(self, node: ListLiteral) -> tuple[Type, Fn]:
        item_type: Type = NULL
        fns: list[Fn] = []
        for item in node.items:
            t, fn = self.compile(item)
            if t.kind == "list":
                raise self.error(
                    gettext_noop("a list cannot hold lists"), item.start, item.end, "rule_type"
                )
            unified = unify(item_type, t)
            if unified is None:
                raise self.error(
                    gettext_noop("the items of a list must have one type: %(a)s and %(b)s"),
                    item.start,
                    item.end,
                    a=str(item_type),
                    b=str(t),
                )
            item_type = unified
            fns.append(fn)
        result = list_of(None if item_type.kind == "null" else item_type)
        if _is_constant(node):
            constant = tuple(fn({}, EvalContext()) for fn in fns)

            def constant_list(values: Values, ctx: EvalContext) -> object:
                return constant

            return result, constant_list

        def build(values: Values, ctx: EvalContext) -> object:
            return tuple(fn(values, ctx) for fn in fns)

        return result, build

    def call(self, node: Call) -> tuple[Type, Fn]:
        function = self.functions.get(node.function)
        if function is None:
            raise self.unknown_function(node)
        compiled = [self.compile(arg) for arg in node.args]
        types = [t for t, _fn in compiled]
        try:
            result = function.check(types, node.args)
        except SignatureError as exc:
            if exc.arg is not None and exc.arg < len(node.args):
                start, end = node.args[exc.arg].start, node.args[exc.arg].end
            else:
                start, end = node.start, node.end
            raise RuleTypeError(
                exc.template, exc.params, source=self.source, start=start, end=end
            ) from None
        return result, _call_closure(function, [fn for _t, fn in compiled])

    def unknown_function(self, node: Call) -> RuleTypeError:
        span = (node.start, node.name_end, "unknown_function")
        close = difflib.get_close_matches(node.function, self.functions, n=1, cutoff=0.6)
        if close:
            return self.error(
                gettext_noop("unknown function %(name)s(), did you mean %(suggestion)s()?"),
                *span,
                name=node.function,
                suggestion=close[0],
            )
        return self.error(
            gettext_noop("unknown function %(name)s(); the functions are: %(known)s"),
            *span,
            name=node.function,
            known=", ".join(sorted(self.functions)),
        )

    # --- operators -------------------------------------------------------------------------
    def unary(self, node: Unary) -> tuple[Type, Fn]:
        t, fn = self.compile(node.operand)
        if node.op == "not":
            self.expect_condition(t, node.operand, "not")

            def negate(values: Values, ctx: EvalContext) -> object:
                value = fn(values, ctx)
                return None if value is None else not value

            return BOOL, negate
        if t.kind not in ("number", "null"):
            raise self.error(
                gettext_noop("'%(op)s' needs a number, got %(type)s"),
                node.start,
                node.start + 1,
                op=node.op,
                type=str(t),
            )
        if node.op == "+":
            return NUMBER, fn

        def minus(values: Values, ctx: EvalContext) -> object:
            value = fn(values, ctx)
            if isinstance(value, int):
                return -value
            if isinstance(value, Decimal):
                return CONTEXT.minus(value)
            return None

        return NUMBER, minus

    def arithmetic(self, node: Arithmetic) -> tuple[Type, Fn]:
        result, first = self.compile(node.first)
        steps: list[tuple[Callable[..., object], Fn]] = []
        for op, operand in node.rest:
            t, fn = self.compile(operand)
            result, step = self.arithmetic_type(op, result, t)
            steps.append((step, fn))
        return result, _arithmetic_closure(first, steps)

    def arithmetic_type(
        self, op: Operator, left: Type, right: Type
    ) -> tuple[Type, Callable[..., object]]:
        kinds = {left.kind, right.kind} - {"null"}
        if kinds <= {"number"}:
            return NUMBER, _NUMBER_OPS[op.op]
        if op.op == "+" and kinds == {"string"}:
            return STRING, _concat
        raise self.error(
            gettext_noop("cannot apply '%(op)s' to %(left)s and %(right)s"),
            op.start,
            op.end,
            op=op.op,
            left=str(left),
            right=str(right),
        )

    def compare(self, node: Compare) -> tuple[Type, Fn]:
        op_span = (node.op_start, node.op_start + len(node.op))
        if (isinstance(node.left, Literal) and node.left.value is None) or (
            isinstance(node.right, Literal) and node.right.value is None
        ):
            hint = "is null" if node.op == "==" else "is not null"
            raise self.error(
                gettext_noop("comparing with null is never true: write '%(hint)s'"),
                *op_span,
                hint=hint,
            )
        lt, left = self.compile(node.left)
        rt, right = self.compile(node.right)
        unified = unify(lt, rt)
        ordering = node.op not in ("==", "!=")
        if unified is None or (ordering and unified.kind not in ("number", "string", "date")):
            raise self.error(
                gettext_noop("cannot compare %(left)s %(op)s %(right)s"),
                *op_span,
                left=str(lt),
                op=node.op,
                right=str(rt),
            )
        test = _COMPARE[node.op]

        def comparison(values: Values, ctx: EvalContext) -> object:
            a = left(values, ctx)
            if a is None:
                return False
            b = right(values, ctx)
            if b is None:
                return False
            return test(a, b)

        return BOOL, comparison

    def membership(self, node: In) -> tuple[Type, Fn]:
        it, item = self.compile(node.item)
        ct, container = self.compile(node.container)
        word = "not in" if node.negated else "in"
        op_span = (node.op_start, node.op_start + len(word))
        if ct.kind == "string":
            raise self.error(
                gettext_noop(
                    "'%(op)s' needs a list on its right; to look for text in a string "
                    "write contains(text, part)"
                ),
                *op_span,
                op=word,
            )
        if ct.kind not in ("list", "null"):
            raise self.error(
                gettext_noop("'%(op)s' needs a list on its right, got %(type)s"),
                *op_span,
                op=word,
                type=str(ct),
            )
        if it.kind == "list":
            raise self.error(
                gettext_noop("'%(op)s' looks for one value in a list, not a list"),
                node.item.start,
                node.item.end,
                op=word,
            )
        if ct.item is not None and unify(ct.item, it) is None:
            raise self.error(
                gettext_noop("'%(op)s': the list holds %(items)s, the value is %(type)s"),
                *op_span,
                op=word,
                items=str(ct.item),
                type=str(it),
            )
        negated = node.negated
        if _is_constant(node.container):
            # Constant lists are sets: hashing agrees with == for ints/Decimals, str and dates.
            constant = cast(tuple[object, ...], container({}, EvalContext()))
            members = frozenset(x for x in constant if x is not None)

            def in_constant(values: Values, ctx: EvalContext) -> object:
                value = item(values, ctx)
                if value is None:
                    return False
                return (value in members) != negated

            return BOOL, in_constant

        def in_list(values: Values, ctx: EvalContext) -> object:
            value = item(values, ctx)
            if value is None:
                return False
            seq = container(values, ctx)
            if seq is None:
                return False
            return (value in seq) != negated  # type: ignore[operator]

        return BOOL, in_list

    def between(self, node: Between) -> tuple[Type, Fn]:
        vt, value_fn = self.compile(node.value)
        lt, low_fn = self.compile(node.low)
        ht, high_fn = self.compile(node.high)
        unified = unify(vt, lt)
        unified = None if unified is None else unify(unified, ht)
        if unified is None or unified.kind not in ("number", "string", "date", "null"):
            raise self.error(
                gettext_noop("'between' needs numbers, strings or dates of one type: %(types)s"),
                node.start,
                node.end,
                types=", ".join(str(t) for t in (vt, lt, ht)),
            )
        negated = node.negated

        def between(values: Values, ctx: EvalContext) -> object:
            value: Any = value_fn(values, ctx)
            if value is None:
                return False
            low: Any = low_fn(values, ctx)
            if low is None:
                return False
            high = high_fn(values, ctx)
            if high is None:
                return False
            return (low <= value <= high) != negated

        return BOOL, between

    def is_null(self, node: IsNull) -> tuple[Type, Fn]:
        _t, fn = self.compile(node.value)
        negated = node.negated

        def test(values: Values, ctx: EvalContext) -> object:
            return (fn(values, ctx) is None) != negated

        return BOOL, test

    def bool_op(self, node: BoolOp) -> tuple[Type, Fn]:
        fns: list[Fn] = []
        for operand in node.operands:
            t, fn = self.compile(operand)
            self.expect_condition(t, operand, node.op)
            fns.append(fn)
        return BOOL, (_all if node.op == "and" else _any)(fns)

    def expect_condition(self, t: Type, node: Node, word: str) -> None:
        if t.kind not in ("bool", "null"):
            raise self.error(
                gettext_noop("'%(op)s' works on conditions (true or false), this is %(type)s"),
                node.start,
                node.end,
                op=word,
                type=str(t),
            )


def _call_closure(function: Function, args: Sequence[Fn]) -> Fn:
    impl = function.impl
    propagate = function.propagate_null
    if len(args) == 1 and propagate:
        (only,) = args

        def call1(values: Values, ctx: EvalContext) -> object:
            value = only(values, ctx)
            return None if value is None else impl(ctx, value)

        return call1
    if len(args) == 2 and propagate:
        first, second = args

        def call2(values: Values, ctx: EvalContext) -> object:
            a = first(values, ctx)
            if a is None:
                return None
            b = second(values, ctx)
            return None if b is None else impl(ctx, a, b)

        return call2

    def call(values: Values, ctx: EvalContext) -> object:
        evaluated = [fn(values, ctx) for fn in args]
        if propagate and any(v is None for v in evaluated):
            return None
        return impl(ctx, *evaluated)

    return call


def _arithmetic_closure(first: Fn, steps: Sequence[tuple[Callable[..., object], Fn]]) -> Fn:
    if len(steps) == 1:
        ((op, second),) = steps

        def binary(values: Values, ctx: EvalContext) -> object:
            a = first(values, ctx)
            if a is None:
                return None
            b = second(values, ctx)
            if b is None:
                return None
            try:
                return op(a, b, ctx)
            except ArithmeticError:
                ctx.flag(ARITHMETIC_ERROR)
                return None

        return binary

    def chain(values: Values, ctx: EvalContext) -> object:
        acc = first(values, ctx)
        for op, fn in steps:
            if acc is None:
                return None
            b = fn(values, ctx)
            if b is None:
                return None
            try:
                acc = op(acc, b, ctx)
            except ArithmeticError:
                ctx.flag(ARITHMETIC_ERROR)
                return None
        return acc

    return chain


def _all(fns: Sequence[Fn]) -> Fn:
    def conjunction(values: Values, ctx: EvalContext) -> object:
        result: bool | None = True
        for fn in fns:
            value = fn(values, ctx)
            if value is False:
                return False
            if value is None:
                result = None
        return result

    return conjunction


def _any(fns: Sequence[Fn]) -> Fn:
    def disjunction(values: Values, ctx: EvalContext) -> object:
        result: bool | None = False
        for fn in fns:
            value = fn(values, ctx)
            if value is True:
                return True
            if value is None:
                result = None
        return result

    return disjunction
