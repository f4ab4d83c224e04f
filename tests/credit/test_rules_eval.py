"""Evaluating compiled rules: null semantics, types, functions, flags, bad feature values."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest

from credit.rules import FeatureSchema, compile_condition, compile_expression
from credit.rules.features import applicant_from_id_number
from credit.rules.functions import FUNCTIONS, EvalContext
from credit.rules.values import coerce_features

SCHEMA = FeatureSchema.from_types(
    {
        "a": "number",
        "b": "number",
        "s": "string",
        "yes": "bool",
        "d": "date",
        "d2": "date",
        "xs": "list[number]",
        "tags": "list[string]",
        "applicant.age": "number",
    }
)


def run(source: str, features: dict[str, object] | None = None, **kw: object):
    return compile_expression(source, SCHEMA).evaluate(features or {}, **kw)


def val(source: str, features: dict[str, object] | None = None, **kw: object) -> object:
    return run(source, features, **kw).value


# --- null --------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("a + 1", None),  # arithmetic with null is null
        ("a * 0", None),
        ("-a", None),
        ("a > 1", False),  # comparisons with null are false...
        ("a < 1", False),
        ("a != 1", False),  # ...all of them
        ("not (a > 1)", True),  # so negating one is true: the documented trap
        ("a in [1, 2]", False),
        ("a not in [1, 2]", False),
        ("a between 1 and 2", False),
        ("a not between 1 and 2", False),
        ("1 between a and 2", False),
        ("a is null", True),
        ("a is not null", False),
        ("yes", None),  # a missing bool stays null...
        ("not yes", None),
        ("yes and 1 > 2", False),  # false and null = false
        ("yes and 1 < 2", None),  # true and null = null
        ("yes or 1 < 2", True),  # true or null = true
        ("yes or 1 > 2", None),
        ("coalesce(a, b, 7)", 7),
        ("coalesce(a, b)", None),
        ("len(s)", None),  # functions propagate null
        ("contains(tags, 'x')", None),
        ("1 in xs", False),
    ],
)
def test_null_semantics(source, expected):
    result = val(source)
    if expected is None:
        assert result is None
    else:
        assert result == expected and type(result) is type(expected)


def test_a_rule_is_hit_only_when_exactly_true():
    rule = compile_condition("yes or a > 1", SCHEMA)
    assert rule.evaluate({}).value is None  # not hit: undecided
    assert rule.evaluate({"a": 2}).value is True
    assert rule.evaluate({"yes": False, "a": 0}).value is False


# --- numbers and types -------------------------------------------------------------------
def test_decimal_arithmetic_and_mixed_inputs():
    features = {"a": 0.1, "b": Decimal("0.2")}  # a float from a careless feed
    assert val("a + b", features) == Decimal("0.3")
    assert val("a + b == 0.3", features) is True
    assert val("10 / 4") == Decimal("2.5")
    assert val("1 / 3") == Decimal("0.3333333333333333333333333333")
    assert val("7 % 3") == 1
    assert val("-7 % 3") == -1  # the sign of the dividend
    assert val("a * 3", {"a": 10**40}) == Decimal("3.000000000000000000000000000E+40")
    assert val("a - a", {"a": 2**70}) == 0


@pytest.mark.parametrize("source", ["a / b", "a % b", "a / (b - b)"])
def test_division_by_zero_is_null_with_a_flag(source):
    result = run(source, {"a": 1, "b": 0})
    assert result.value is None
    assert result.flags == ("division_by_zero",)
    rule = compile_condition(f"{source} > 1 or {source} <= 1", SCHEMA)
    assert rule.evaluate({"a": 1, "b": 0}).value is False  # never raises, never hit


def test_overflow_is_null_with_a_flag():
    result = run("a * a * a", {"a": Decimal("1E+400000")})
    assert result.value is None
    assert result.flags == ("arithmetic_error",)


def test_string_date_and_list_comparisons():
    features = {"s": "陕西", "d": dt.date(2024, 1, 31), "d2": "2024-03-01", "tags": ["vip", "新客"]}
    assert val("s + '省' == '陕西省'", features) is True
    assert val("s > '山西'", features) is True  # code point order: 陕 U+9655 > 山 U+5C71
    assert val("d < d2", features) is True
    assert val("d between date('2024-01-01') and date('2024-12-31')", features) is True
    assert val("'新客' in tags and 'x' not in tags", features) is True
    assert val("tags == ['vip', '新客']", features) is True
    assert val("len(tags) == 2 and len(s) == 2", features) is True
    assert val("1.0 in [1, 2]") is True  # 1.0 == 1
    assert val("a in [a, 2]", {"a": 5}) is True  # a list built at run time


def test_bad_feature_values_become_null_and_are_reported():
    features = {
        "a": "30",  # a string where a number belongs
        "b": True,  # bool is not a number
        "yes": 1,
        "d": "31/01/2024",
        "xs": [1, "2"],
        "tags": "vip",
        "s": float("nan"),
    }
    program = compile_expression("[a, b]", SCHEMA)
    assert program.evaluate(features).value == (None, None)
    _values, problems = coerce_features(SCHEMA, features)
    assert {p.field for p in problems} == set(features)
    assert str(problems[0]) == "a: expected number, got str '30'"
    assert val("a > 1", {"a": float("inf")}) is False
    values, problems = coerce_features(
        SCHEMA,
        {"a": 3.5, "d": dt.datetime(2024, 1, 31, 23, 0, tzinfo=dt.UTC), "tags": {"b", "a"}},
    )
    assert problems == ()
    assert values == {
        "a": Decimal("3.5"),
        "d": dt.date(2024, 1, 31),
        "tags": ("'a'", "'b'")[:0] or ("a", "b"),
    }


def test_nested_and_dotted_features_mix():
    program = compile_condition("applicant.age >= 18 and a == 1", SCHEMA)
    assert program.evaluate({"applicant": {"age": 30}, "a": 1}).value is True
    assert program.evaluate({"applicant.age": 30, "a": 1}).value is True
    assert program.evaluate({"applicant": {"age": 12}, "a": 1}).value is False


def test_unforeseen_failures_never_escape():
    class Weird(dict):
        def items(self):
            raise RuntimeError("broken feed")

    program = compile_condition("a > 1", SCHEMA)
    result = program.evaluate(Weird(a=1))
    assert (result.value, result.flags) == (None, ("error",))


# --- functions ---------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("len('陕西省')", 3),
        ("abs(-2.5)", Decimal("2.5")),
        ("min(3, 1, 2)", 1),
        ("max(3, a, 2)", 9),
        ("max(d, d2)", dt.date(2024, 3, 1)),
        ("min('b', 'a')", "a"),
        ("round(2.5)", 3),  # half up, not banker's rounding
        ("round(-2.5)", -3),
        ("round(1.005, 2)", Decimal("1.01")),
        ("round(1234, -2)", 1200),
        ("coalesce(s, 'none')", "none"),
        ("contains('陕西省西安市', '西安')", True),
        ("contains(tags, 'vip')", True),
        ("startswith('17012345678', '170')", True),
        ("endswith('abc', 'bc')", True),
        ("lower('ABC') + upper('d')", "abcD"),
        ("days_between(d, d2)", 30),
        ("days_between(d2, d)", -30),
        ("age_at(date('2000-02-29'), date('2024-02-28'))", 23),
        ("age_at(date('2000-02-29'), date('2024-03-01'))", 24),
        ("age_at(d)", 24),  # at the application date
        ("today()", dt.date(2024, 5, 1)),
        ("date('2024-03-31')", dt.date(2024, 3, 31)),
        ("date(s)", None),
    ],
)
def test_functions(source, expected):
    features = {"a": 9, "d": dt.date(2000, 1, 1), "d2": "2000-01-31", "tags": ["vip"], "s": "x"}
    if "max(d, d2)" in source:
        features |= {"d": dt.date(2024, 1, 31), "d2": dt.date(2024, 3, 1)}
    if source.startswith("days_between"):
        features |= {"d": dt.date(2024, 1, 31), "d2": dt.date(2024, 3, 1)}
    if source.startswith("coalesce"):
        features.pop("s")
    assert val(source, features, as_of=dt.date(2024, 5, 1)) == expected


def test_dates_default_to_the_application_date():
    schema = FeatureSchema.from_types({"application.date": "date", "born": "date"})
    program = compile_expression("age_at(born)", schema)
    assert (
        program.evaluate({"application": {"date": "2024-06-01"}, "born": "2000-06-02"}).value == 23
    )
    assert (
        program.evaluate({"application.date": dt.date(2024, 6, 2), "born": "2000-06-02"}).value
        == 24
    )
    missing = program.evaluate({"born": "2000-06-02"})  # no date: null and flagged, not today
    assert (missing.value, missing.flags) == (None, ("no_as_of",))


def test_bad_function_arguments_at_run_time_are_null_with_a_flag():
    result = run("date(s)", {"s": "not a date"})
    assert (result.value, result.flags) == (None, ("bad_date",))
    result = run("round(a, b)", {"a": 1, "b": 99})
    assert (result.value, result.flags) == (None, ("bad_argument",))


def test_registry_entries_have_signatures_and_descriptions():
    assert {"len", "abs", "min", "max", "round", "coalesce", "contains", "startswith"} <= set(
        FUNCTIONS
    )
    assert {"days_between", "age_at"} <= set(FUNCTIONS)
    for name, function in FUNCTIONS.items():
        assert function.signature.startswith(name + "(")
        assert function.description
    assert FUNCTIONS["today"].impl(EvalContext(dt.date(2024, 1, 1))) == dt.date(2024, 1, 1)


def test_applicant_features_from_the_id_number():
    # 11010519491231002X: the GB 11643 example number (Beijing Chaoyang, born 1949-12-31, female)
    features = applicant_from_id_number("11010519491231002x", on=dt.date(2024, 12, 30))
    assert features == {
        "applicant.id_valid": True,
        "applicant.age": 74,
        "applicant.birth_date": dt.date(1949, 12, 31),
        "applicant.sex": "female",
        "applicant.province_code": "11",
        "applicant.region_code": "110105",
    }
    assert applicant_from_id_number("110105194912310021", on=dt.date(2024, 1, 1)) == {
        "applicant.id_valid": False
    }
    rule = compile_condition("not applicant.id_valid or applicant.age > 70")
    assert rule.evaluate(features).value is True
