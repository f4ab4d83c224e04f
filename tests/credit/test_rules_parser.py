"""The rule language's tokenizer, parser and compile-time checks (credit/rules). No database."""

from __future__ import annotations

import pickle
from decimal import Decimal

import pytest

from carloan.errors import ApplicationError
from credit.rules import (
    DEFAULT_SCHEMA,
    FeatureSchema,
    RuleError,
    RuleSyntaxError,
    RuleTypeError,
    compile_condition,
    compile_expression,
)
from credit.rules.lexer import MAX_SOURCE_LENGTH
from credit.rules.nodes import Arithmetic, BoolOp, Compare, Literal, Unary
from credit.rules.parser import MAX_DEPTH, parse

SCHEMA = FeatureSchema.from_types(
    {
        "a": "number",
        "b": "number",
        "c": "number",
        "s": "string",
        "yes": "bool",
        "no": "bool",
        "d": "date",
        "xs": "list[number]",
        "tags": "list[string]",
        "applicant.age": "number",
        "applicant.name": "string",
    }
)


def value(source: str, **features: object) -> object:
    return compile_expression(source, SCHEMA).evaluate(features).value


# --- literals and precedence -------------------------------------------------------------
@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("1 + 2 * 3", 7),
        ("(1 + 2) * 3", 9),
        ("10 - 4 - 3", 3),  # left to right
        ("2 * 3 % 4", 2),  # (2 * 3) % 4
        ("7 / 2", Decimal("3.5")),
        ("-2 * 3", -6),
        ("- (2 + 3)", -5),
        ("1 + 2 > 2 + 0", True),  # arithmetic binds tighter than comparison
        ("1 < 2 and 3 < 2 or 5 > 4", True),  # (1<2 and 3<2) or 5>4
        ("1 < 2 or 3 < 2 and 5 < 4", True),  # 1<2 or (3<2 and 5<4)
        ("not 1 > 2 and 2 > 1", True),  # (not 1>2) and 2>1
        ("not (1 > 2 and 2 > 1)", True),
        ("not true or true", True),  # (not true) or true
        ("not (true or true)", False),
        ("0.1 + 0.2 == 0.3", True),  # Decimal, not float
        ("'陕西' + '省' == \"陕西省\"", True),
        ("'it\\'s' == \"it's\"", True),
        ("1 in [1, 2, 3,]", True),  # a trailing comma is fine
        ("5 between 1 and 5 and 2 not between 3 and 4", True),
        ("TRUE AND NOT FALSE", True),  # keywords are case-insensitive
        ("3 % 2 == 1  # comments run to the end of the line", True),
        ("1 +\n  2\n  == 3", True),
    ],
)
def test_precedence_and_literals(source, expected):
    result = value(source)
    assert result == expected
    assert type(result) is type(expected) or isinstance(expected, int)


def test_chains_are_flat_so_long_rules_are_not_deep():
    tree = parse(" or ".join(["a > 1"] * 400))
    assert isinstance(tree, BoolOp)
    assert len(tree.operands) == 400
    tree = parse(" + ".join(["1"] * 1000))
    assert isinstance(tree, Arithmetic)
    assert len(tree.rest) == 999
    assert compile_expression(" + ".join(["1"] * 1000), SCHEMA).evaluate({}).value == 1000


def test_negative_numbers_fold_and_spans_point_into_the_source():
    tree = parse("applicant.age >= -18")
    assert isinstance(tree, Compare)
    assert tree.right == Literal(17, 20, -18)
    assert (tree.left.start, tree.left.end) == (0, 13)
    assert isinstance(parse("not yes"), Unary)


def test_fields_used():
    program = compile_condition("applicant.age > 18 and len(applicant.name) > 1 or yes", SCHEMA)
    assert program.fields == {"applicant.age", "applicant.name", "yes"}


# --- errors ------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("source", "error", "line", "column", "token", "words"),
    [
        ("applicant.age >> 18", RuleSyntaxError, 1, 16, ">", "expected a value"),
        ("applicant.age = 18", RuleSyntaxError, 1, 15, "=", "use =="),
        ("a > 1 && b > 2", RuleSyntaxError, 1, 7, "&&", "use and"),
        ("a > 1 || b > 2", RuleSyntaxError, 1, 7, "||", "use or"),
        ("!yes", RuleSyntaxError, 1, 1, "!", "use not"),
        ("a <> 1", RuleSyntaxError, 1, 3, "<>", "use !="),
        ("(a > 1", RuleSyntaxError, 1, 7, "", "expected ')' to close the '(' at column 1"),
        ("a > 1)", RuleSyntaxError, 1, 6, ")", "unmatched ')'"),
        ("len(s > 1", RuleSyntaxError, 1, 10, "", "expected ')'"),
        ("[1, 2 > 1", RuleSyntaxError, 1, 10, "", "expected ']'"),
        ("s == 'abc", RuleSyntaxError, 1, 6, "'abc", "unterminated string"),
        ("s == \u201cabc\u201d", RuleSyntaxError, 1, 6, "\u201c", "curly quote"),
        ("a \uff1e 1", RuleSyntaxError, 1, 3, "\uff1e", "full-width character"),
        ("a > .5", RuleSyntaxError, 1, 5, ".", "0.5"),
        ("a > 1.", RuleSyntaxError, 1, 5, "1.", "malformed number"),
        ("a > 12abc", RuleSyntaxError, 1, 5, "12abc", "malformed number"),
        ("applicant. age > 1", RuleSyntaxError, 1, 1, "applicant.", "malformed field name"),
        ("s == 'a\\qb'", RuleSyntaxError, 1, 8, "\\q", "unknown escape"),
        ("a > 1 b", RuleSyntaxError, 1, 7, "b", "missing operator"),
        ("1 < a < 3", RuleSyntaxError, 1, 7, "<", "cannot be chained"),
        ("a between 1 or 3", RuleSyntaxError, 1, 13, "or", "expected 'and'"),
        ("a is 3", RuleSyntaxError, 1, 6, "3", "expected null"),
        ("a > 1 and", RuleSyntaxError, 1, 10, "", "ends too early"),
        ("   ", RuleSyntaxError, 1, 4, "", "empty"),
        ("a > 1 and\n  b $ 2", RuleSyntaxError, 2, 5, "$", "unexpected character"),
        ("applicant.agee > 18", RuleTypeError, 1, 1, "applicant.agee", "did you mean"),
        ("lenn(s) > 1", RuleTypeError, 1, 1, "lenn", "did you mean len()"),
        ("frobnicate(s)", RuleTypeError, 1, 1, "frobnicate", "the functions are"),
        ("a + s > 1", RuleTypeError, 1, 3, "+", "cannot apply '+' to number and string"),
        ("a > 'x'", RuleTypeError, 1, 3, ">", "cannot compare number > string"),
        ("yes < no", RuleTypeError, 1, 5, "<", "cannot compare bool < bool"),
        ("a == null", RuleTypeError, 1, 3, "==", "is null"),
        ("a and yes", RuleTypeError, 1, 1, "a", "conditions"),
        ("not s", RuleTypeError, 1, 5, "s", "conditions"),
        ("-s == 'x'", RuleTypeError, 1, 1, "-", "needs a number"),
        ("len(a) > 1", RuleTypeError, 1, 5, "a", "argument 1 of len()"),
        ("len(s, s) > 1", RuleTypeError, 1, 8, "s", "takes 1 argument"),
        ("days_between(d) > 1", RuleTypeError, 1, 1, "days_between(d)", "takes 2"),
        ("s in 'abc'", RuleTypeError, 1, 3, "in", "contains(text, part)"),
        ("a in tags", RuleTypeError, 1, 3, "in", "the list holds string"),
        ("[1, 'x'] == xs", RuleTypeError, 1, 5, "'x'", "one type"),
        ("coalesce(a, s) > 1", RuleTypeError, 1, 13, "s", "one type"),
        ("d > date('2024-02-30')", RuleTypeError, 1, 10, "'2024-02-30'", "not a date"),
        ("round(a, 2.5) > 1", RuleTypeError, 1, 10, "2.5", "whole number"),
        ("a + 1", RuleTypeError, 1, 1, "a + 1", "must be a condition"),
        ("applicant > 1", RuleTypeError, 1, 1, "applicant", "group of fields"),
        ("len > 1", RuleTypeError, 1, 1, "len", "is a function"),
    ],
)
def test_bad_rules_are_refused_pointing_at_the_token(source, error, line, column, token, words):
    with pytest.raises(error) as info:
        compile_condition(source, SCHEMA)
    exc = info.value
    assert (exc.line, exc.column, exc.token) == (line, column, token)
    assert words in exc.message
    assert exc.message.startswith(f"Line {line}, column {column}: ")
    assert isinstance(exc, ApplicationError)  # the admin and the API map it like any refusal
    assert exc.extra["line"] == line and exc.extra["token"] == token


def test_did_you_mean_against_the_default_schema():
    with pytest.raises(RuleTypeError) as info:
        compile_condition("applicant.agee >= 18 and applicant.age <= 60")
    assert info.value.code == "unknown_field"
    assert info.value.detail == "unknown field applicant.agee, did you mean applicant.age?"
    with pytest.raises(RuleTypeError, match="did you mean links.group_size"):
        compile_condition("links.groupsize > 3")
    with pytest.raises(RuleTypeError) as info:
        compile_condition("vehicle.colour == 'red'")
    assert info.value.detail == "unknown field vehicle.colour"  # nothing close: no guess


def test_caret_rendering_lines_up_under_chinese_text():
    with pytest.raises(RuleTypeError) as info:
        compile_condition("applicant.sex == '男性' and applicant.agee > 1")
    caret = info.value.caret().splitlines()
    assert caret[0] == "applicant.sex == '男性' and applicant.agee > 1"
    # 26 characters before the token, two of them CJK (two columns wide each): 28 columns
    assert caret[1] == " " * 28 + "^" * len("applicant.agee")
    assert info.value.column == 27  # the column counts characters


def test_caret_on_the_right_line_and_long_lines_are_cut():
    with pytest.raises(RuleSyntaxError) as info:
        compile_condition("a > 1\nand b > 2\nand c >", SCHEMA)
    assert info.value.caret() == "and c >\n       ^"
    long = "a > 1 and " * 30 + "a >> 1"
    with pytest.raises(RuleSyntaxError) as info:
        compile_condition(long, SCHEMA)
    top, carets = info.value.caret().splitlines()
    assert top.startswith("...") and len(top) < 140
    assert top[len(carets) - 1] == ">"


def test_render_translates_template_then_fills_it():
    with pytest.raises(RuleTypeError) as info:
        compile_condition("applicant.agee > 1")
    catalogue = {
        "Line %(line)s, column %(column)s: %(detail)s": "第%(line)s行第%(column)s列：%(detail)s",
        "unknown field %(name)s, did you mean %(suggestion)s?": (
            "未知字段%(name)s，是否为%(suggestion)s？"
        ),
    }
    rendered = info.value.render(lambda s: catalogue.get(s, s))
    assert rendered == "第1行第1列：未知字段applicant.agee，是否为applicant.age？"


def test_errors_survive_pickling():
    with pytest.raises(RuleError) as info:
        compile_condition("a >> 1", SCHEMA)
    copy = pickle.loads(pickle.dumps(info.value))  # noqa: S301 - our own bytes
    assert (type(copy), copy.message, copy.caret()) == (
        RuleSyntaxError,
        info.value.message,
        info.value.caret(),
    )


def test_size_and_depth_limits():
    with pytest.raises(RuleSyntaxError) as info:
        compile_condition("a > 1 or " * 500 + "a > 1", SCHEMA)
    assert info.value.code == "rule_too_long"
    assert info.value.offset == MAX_SOURCE_LENGTH
    nested = "(" * MAX_DEPTH + "a > 1" + ")" * MAX_DEPTH
    assert compile_condition(nested, SCHEMA).evaluate({"a": 2}).value is True
    for deep in (
        "(" * (MAX_DEPTH + 1) + "a > 1" + ")" * (MAX_DEPTH + 1),
        "not " * (MAX_DEPTH + 1) + "yes",
        "- " * (MAX_DEPTH + 1) + "a > 1",
        "[" * (MAX_DEPTH + 1) + "]" * (MAX_DEPTH + 1),
        "abs(" * (MAX_DEPTH + 1) + "a" + ")" * (MAX_DEPTH + 1) + " > 1",
    ):
        with pytest.raises(RuleSyntaxError) as info:
            compile_condition(deep, SCHEMA)
        assert info.value.code == "rule_too_complex"


def test_every_default_schema_field_compiles():
    for name, field in DEFAULT_SCHEMA.items():
        program = compile_expression(name)
        assert program.type == field.type
        assert field.description
