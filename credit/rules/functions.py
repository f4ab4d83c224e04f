"""The whitelist of functions a rule may call (the registry: one entry per function).

Adding a function = one `Function(...)` in FUNCTIONS with its signature, an implementation that
takes the evaluation context first, and a test. Implementations never raise on bad values: they
return None (null) and add a flag to the context, so a rule with a bad input is simply not hit.

Null: unless a function says otherwise (`coalesce`), a null argument makes the result null
without calling it, like arithmetic.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Context, Decimal, DivisionByZero, InvalidOperation, Overflow

from credit.rules.errors import gettext_noop
from credit.rules.nodes import Literal, Node
from credit.rules.types import BOOL, DATE, NUMBER, STRING, Type, unify

# Decimal arithmetic of the language: 28 significant digits, errors trapped (and turned into null
# plus a flag by the caller) rather than signalled as NaN/Infinity.
CONTEXT = Context(prec=28, traps=[InvalidOperation, DivisionByZero, Overflow])

# Flags an evaluation may raise (recorded with the decision; see docs/CREDIT.md).
DIVISION_BY_ZERO = "division_by_zero"
ARITHMETIC_ERROR = "arithmetic_error"
BAD_ARGUMENT = "bad_argument"
BAD_DATE = "bad_date"
NO_AS_OF = "no_as_of"
ERROR = "error"


class EvalContext:
    """What one evaluation carries besides the features: its flags and its date."""

    __slots__ = ("as_of", "flags")

    def __init__(self, as_of: dt.date | None = None) -> None:
        self.as_of = as_of
        self.flags: list[str] = []

    def flag(self, name: str) -> None:
        if name not in self.flags:
            self.flags.append(name)


class SignatureError(Exception):
    """A call does not fit its function; the compiler turns it into a RuleTypeError at `arg`."""

    def __init__(self, template: str, params: dict[str, object], arg: int | None = None) -> None:
        super().__init__(template % params)
        self.template = template
        self.params = params
        self.arg = arg  # index of the offending argument, None = the call itself


ANY = frozenset({"number", "string", "bool", "date", "list"})
Impl = Callable[..., object]
Check = Callable[[Sequence[Type], Sequence[Node]], Type]


@dataclass(frozen=True)
class Function:
    name: str
    signature: str  # for people: "len(string | list) -> number"
    description: str
    params: tuple[frozenset[str], ...]  # accepted kinds per argument; the last repeats if variadic
    min_args: int
    max_args: int | None  # None = variadic
    returns: Type | Check  # a type, or a function of the argument types that also checks them
    impl: Impl  # impl(ctx, *args)
    propagate_null: bool = True

    def check(self, types: Sequence[Type], nodes: Sequence[Node]) -> Type:
        """The result type of a call with these argument types, or SignatureError."""
        count = len(types)
        if count < self.min_args or (self.max_args is not None and count > self.max_args):
            if self.max_args is None:
                expected = f"at least {self.min_args}"
            elif self.min_args == self.max_args:
                expected = str(self.min_args)
            else:
                expected = f"{self.min_args} to {self.max_args}"
            raise SignatureError(
                gettext_noop("%(name)s() takes %(expected)s argument(s), got %(count)s: %(sig)s"),
                {"name": self.name, "expected": expected, "count": count, "sig": self.signature},
                arg=self.max_args if self.max_args is not None and count > self.max_args else None,
            )
        for index, t in enumerate(types):
            allowed = self.params[min(index, len(self.params) - 1)]
            if t.kind != "null" and t.kind not in allowed:
                raise SignatureError(
                    gettext_noop(
                        "argument %(index)s of %(name)s() must be %(allowed)s, got %(got)s"
                    ),
                    {
                        "index": index + 1,
                        "name": self.name,
                        "allowed": " or ".join(sorted(allowed)),
                        "got": str(t),
                    },
                    arg=index,
                )
        if isinstance(self.returns, Type):
            return self.returns
        return self.returns(types, nodes)


# --- implementations -----------------------------------------------------------------------
def _len(ctx: EvalContext, value: str | tuple[object, ...]) -> int:
    return len(value)


def _abs(ctx: EvalContext, value: int | Decimal) -> int | Decimal:
    return value.copy_abs() if isinstance(value, Decimal) else abs(value)


def _min(ctx: EvalContext, *values: object) -> object:
    return min(values)  # type: ignore[type-var]  # one comparable type, checked at compile time


def _max(ctx: EvalContext, *values: object) -> object:
    return max(values)  # type: ignore[type-var]


MAX_ROUND_DIGITS = 10


def _round(
    ctx: EvalContext, value: int | Decimal, digits: int | Decimal = 0
) -> int | Decimal | None:
    if digits != int(digits) or not -MAX_ROUND_DIGITS <= digits <= MAX_ROUND_DIGITS:
        ctx.flag(BAD_ARGUMENT)
        return None
    places = int(digits)
    try:
        rounded = Decimal(value).quantize(Decimal(1).scaleb(-places), ROUND_HALF_UP, CONTEXT)
    except ArithmeticError:
        ctx.flag(ARITHMETIC_ERROR)
        return None
    return int(rounded) if places <= 0 else rounded


def _coalesce(ctx: EvalContext, *values: object) -> object:
    for value in values:
        if value is not None:
            return value
    return None


def _contains(ctx: EvalContext, container: str | tuple[object, ...], item: object) -> bool:
    return item in container


def _startswith(ctx: EvalContext, text: str, prefix: str) -> bool:
    return text.startswith(prefix)


def _endswith(ctx: EvalContext, text: str, suffix: str) -> bool:
    return text.endswith(suffix)


def _lower(ctx: EvalContext, text: str) -> str:
    return text.lower()


def _upper(ctx: EvalContext, text: str) -> str:
    return text.upper()


def _days_between(ctx: EvalContext, first: dt.date, second: dt.date) -> int:
    return (second - first).days


def age_in_years(born: dt.date, on: dt.date) -> int:
    """Whole years from `born` to `on` (born on 29 February: a year older on 1 March)."""
    return on.year - born.year - ((on.month, on.day) < (born.month, born.day))


def _age_at(ctx: EvalContext, born: dt.date, on: dt.date | None = None) -> int | None:
    when = on if on is not None else ctx.as_of
    if when is None:
        ctx.flag(NO_AS_OF)
        return None
    return age_in_years(born, when)


def parse_date(text: str) -> dt.date | None:
    try:
        return dt.date.fromisoformat(text.strip())
    except ValueError:
        return None


def _date(ctx: EvalContext, text: str) -> dt.date | None:
    value = parse_date(text)
    if value is None:
        ctx.flag(BAD_DATE)
    return value


def _today(ctx: EvalContext) -> dt.date | None:
    if ctx.as_of is None:
        ctx.flag(NO_AS_OF)
    return ctx.as_of


# --- compile-time checks beyond the kinds of the arguments ---------------------------------
def _same_type(name: str) -> Check:
    def check(types: Sequence[Type], nodes: Sequence[Node]) -> Type:
        result = types[0]
        for index, t in enumerate(types[1:], start=1):
            unified = unify(result, t)
            if unified is None:
                raise SignatureError(
                    gettext_noop("the arguments of %(name)s() must have one type: %(a)s and %(b)s"),
                    {"name": name, "a": str(result), "b": str(t)},
                    arg=index,
                )
            result = unified
        return result

    return check


def _check_contains(types: Sequence[Type], nodes: Sequence[Node]) -> Type:
    container, item = types
    if container.kind == "string" and item.kind not in ("string", "null"):
        raise SignatureError(
            gettext_noop("contains(text, part) looks for a string in a string, got %(got)s"),
            {"got": str(item)},
            arg=1,
        )
    if (
        container.kind == "list"
        and container.item is not None
        and unify(container.item, item) is None
    ):
        raise SignatureError(
            gettext_noop("contains(list, item): the list holds %(items)s, the item is %(got)s"),
            {"items": str(container.item), "got": str(item)},
            arg=1,
        )
    return BOOL


def _check_round(types: Sequence[Type], nodes: Sequence[Node]) -> Type:
    if len(nodes) == 2 and isinstance(nodes[1], Literal):
        digits = nodes[1].value
        if (
            isinstance(digits, bool)
            or not isinstance(digits, int | Decimal)
            or digits != int(digits)
            or not -MAX_ROUND_DIGITS <= digits <= MAX_ROUND_DIGITS
        ):
            raise SignatureError(
                gettext_noop(
                    "round(number, digits): digits must be a whole number from -%(max)s to %(max)s"
                ),
                {"max": MAX_ROUND_DIGITS},
                arg=1,
            )
    return NUMBER


def _check_date(types: Sequence[Type], nodes: Sequence[Node]) -> Type:
    node = nodes[0]
    if isinstance(node, Literal) and isinstance(node.value, str) and parse_date(node.value) is None:
        raise SignatureError(
            gettext_noop('date(%(text)s) is not a date: write date("2024-03-31")'),
            {"text": repr(node.value)},
            arg=0,
        )
    return DATE


def _k(*kinds: str) -> frozenset[str]:
    return frozenset(kinds)


_ORDERED = _k("number", "string", "date")


def _fn(
    signature: str,
    description: str,
    impl: Impl,
    *,
    params: tuple[frozenset[str], ...],
    args: tuple[int, int | None],
    returns: Type | Check,
    propagate_null: bool = True,
) -> Function:
    name = signature.split("(", 1)[0]
    return Function(name, signature, description, params, *args, returns, impl, propagate_null)


_LEN = (_k("string", "list"),)
_NUM = (_k("number"),)
_STR = (_k("string"),)
_DATE = (_k("date"),)
_N = None  # variadic

FUNCTIONS: dict[str, Function] = {
    f.name: f
    for f in (
        _fn(
            "len(string | list) -> number",
            gettext_noop("Number of characters or items."),
            _len,
            params=_LEN,
            args=(1, 1),
            returns=NUMBER,
        ),
        _fn(
            "abs(number) -> number",
            gettext_noop("Absolute value."),
            _abs,
            params=_NUM,
            args=(1, 1),
            returns=NUMBER,
        ),
        _fn(
            "min(x, y, ...) -> x",
            gettext_noop("Smallest of numbers, strings or dates of one type."),
            _min,
            params=(_ORDERED,),
            args=(1, _N),
            returns=_same_type("min"),
        ),
        _fn(
            "max(x, y, ...) -> x",
            gettext_noop("Largest of numbers, strings or dates of one type."),
            _max,
            params=(_ORDERED,),
            args=(1, _N),
            returns=_same_type("max"),
        ),
        _fn(
            "round(number[, digits]) -> number",
            gettext_noop("Rounded half up to `digits` decimals (default 0)."),
            _round,
            params=_NUM,
            args=(1, 2),
            returns=_check_round,
        ),
        _fn(
            "coalesce(x, y, ...) -> x",
            gettext_noop("The first argument that is not null."),
            _coalesce,
            params=(ANY,),
            args=(1, _N),
            returns=_same_type("coalesce"),
            propagate_null=False,
        ),
        _fn(
            "contains(string | list, item) -> bool",
            gettext_noop("Whether the text contains the part, or the list the item."),
            _contains,
            params=(_k("string", "list"), ANY),
            args=(2, 2),
            returns=_check_contains,
        ),
        _fn(
            "startswith(string, prefix) -> bool",
            gettext_noop("Whether the text starts with the prefix."),
            _startswith,
            params=_STR,
            args=(2, 2),
            returns=BOOL,
        ),
        _fn(
            "endswith(string, suffix) -> bool",
            gettext_noop("Whether the text ends with the suffix."),
            _endswith,
            params=_STR,
            args=(2, 2),
            returns=BOOL,
        ),
        _fn(
            "lower(string) -> string",
            gettext_noop("The text in lower case."),
            _lower,
            params=_STR,
            args=(1, 1),
            returns=STRING,
        ),
        _fn(
            "upper(string) -> string",
            gettext_noop("The text in upper case."),
            _upper,
            params=_STR,
            args=(1, 1),
            returns=STRING,
        ),
        _fn(
            "days_between(date, date) -> number",
            gettext_noop("Days from the first date to the second (negative if it is earlier)."),
            _days_between,
            params=_DATE,
            args=(2, 2),
            returns=NUMBER,
        ),
        _fn(
            "age_at(birth_date[, on_date]) -> number",
            gettext_noop(
                "Whole years from the birth date to on_date (default: the application date)."
            ),
            _age_at,
            params=_DATE,
            args=(1, 2),
            returns=NUMBER,
        ),
        _fn(
            'date("YYYY-MM-DD") -> date',
            gettext_noop("The date written in ISO form."),
            _date,
            params=_STR,
            args=(1, 1),
            returns=_check_date,
        ),
        _fn(
            "today() -> date",
            gettext_noop("The application date the rules are evaluated at."),
            _today,
            params=(ANY,),
            args=(0, 0),
            returns=DATE,
        ),
    )
}
