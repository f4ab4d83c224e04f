"""Property tests: whatever people type, compiling raises only RuleSyntaxError / RuleTypeError,
and whatever the features hold, evaluating a compiled rule never raises."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

from hypothesis import given, settings
from hypothesis import strategies as st

from credit.rules import DEFAULT_SCHEMA, RuleSyntaxError, RuleTypeError, compile_expression
from credit.rules.functions import FUNCTIONS

PROPS = settings(max_examples=400, deadline=None, derandomize=True)
EVAL_PROPS = settings(max_examples=200, deadline=None, derandomize=True)

NAMES = ["applicant.age", "applicant.sex", "applicant.birth_date", "lists.hits", "lists.blacklist"]
NAMES += ["application.amount", "application.date", "links.kinds", "applicant.agee", "foo"]
TOKENS = (
    NAMES
    + [f"{name}(" for name in FUNCTIONS]
    + ["and", "or", "not", "in", "between", "is", "null", "true", "false", "NOT"]
    + ["+", "-", "*", "/", "%", "==", "!=", "<", "<=", ">", ">=", "=", "!", "&&"]
    + ["(", ")", "[", "]", ",", "0", "18", "0.35", "-1", "1e5", ".5", "1."]
    + ["'male'", '"陕西"', "'unterminated", "“", "（", "#", "\n", "\\", "'a\\'b'"]
)


def _compile_or_refuse(source: str) -> None:
    try:
        compile_expression(source)
    except (RuleSyntaxError, RuleTypeError) as exc:
        assert exc.line >= 1 and exc.column >= 1
        assert 0 <= exc.offset <= len(source)
        assert exc.caret()  # renders for any input
        assert exc.message


@PROPS
@given(st.text(max_size=200))
def test_random_text_only_raises_rule_errors(source):
    _compile_or_refuse(source)


@PROPS
@given(st.lists(st.sampled_from(TOKENS), max_size=40))
def test_token_soup_only_raises_rule_errors(tokens):
    _compile_or_refuse(" ".join(tokens))


@PROPS
@given(st.lists(st.sampled_from(TOKENS), max_size=40), st.text(alphabet="() -[],not", max_size=80))
def test_bracket_noise_only_raises_rule_errors(tokens, noise):
    _compile_or_refuse(noise + " ".join(tokens) + noise[::-1])


VALUES = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.decimals(allow_nan=True, allow_infinity=True),
    st.floats(),
    st.text(max_size=5),
    st.dates(),
    st.lists(st.one_of(st.integers(), st.text(max_size=3)), max_size=3),
)
WELL_TYPED = [
    "applicant.age / (application.amount - 100) > 0.5 or applicant.age % 0 == 1",
    "round(application.amount * 1.07, applicant.age) between 1 and 100000",
    "coalesce(applicant.age, 0) + len(lists.hits) >= max(applicant.age, 3)",
    "age_at(applicant.birth_date) > 60 and days_between(applicant.birth_date, today()) > 10",
    "'blacklist.phone' in lists.hits or applicant.sex not in ['male', 'female']",
    "not lists.blacklist and contains(links.kinds, 'device') and -applicant.age < 0",
]


@EVAL_PROPS
@given(
    st.sampled_from(WELL_TYPED),
    st.fixed_dictionaries({}, optional=dict.fromkeys(DEFAULT_SCHEMA, VALUES)),
    st.one_of(st.none(), st.dates()),
)
def test_evaluation_never_raises_whatever_the_features(source, features, as_of):
    program = compile_expression(source)
    result = program.evaluate(features, as_of=as_of)
    assert result.value in (True, False, None)
    assert "error" not in result.flags  # bad values are nulls and problems, not failures
    for problem in result.problems:
        assert problem.field in program.fields


def test_huge_and_odd_numbers_are_handled():
    program = compile_expression("applicant.age * applicant.age / 3 > 1")
    for age in (10**100, Decimal("1E+999999"), Decimal("-0"), Decimal("1E-999999"), 2**64):
        assert program.evaluate({"applicant.age": age}).value in (True, False, None)
    assert (
        compile_expression("applicant.birth_date > date('2000-01-01')")
        .evaluate({"applicant.birth_date": dt.date.max})
        .value
        is True
    )
