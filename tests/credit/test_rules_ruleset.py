"""Rule sets: definitions, order and precedence of outcomes, failures, replay of two versions."""

from __future__ import annotations

import dataclasses
import datetime as dt
import json

import pytest

from credit.rules import (
    Rule,
    RuleDefinitionError,
    RuleSet,
    RuleSetError,
    compile_ruleset,
    evaluate_ruleset,
    replay,
)
from credit.rules.ruleset import OUTCOMES, action_choices


def rule(code: str, expression: str, action: str, priority: int = 100, **kw: object) -> Rule:
    return Rule(
        code=code,
        name=f"rule {code}",
        expression=expression,
        action=action,
        reason_code=kw.pop("reason_code", f"{code}_REASON"),
        priority=priority,
        **kw,
    )


RULES = (
    rule("AGE", "applicant.age < 18 or applicant.age > 65", "reject", 10),
    rule("BLACK", "lists.blacklist", "reject", 5),
    rule("GROUP", "links.group_size >= 3", "review", 20),
    rule("LTV", "application.amount / application.vehicle_price > 0.8", "review", 30),
    rule("VIP", "'vip' in lists.hits", "fast_track", 40),
    rule("USED", "application.vehicle_condition == 'used'", "flag", 50),
    rule("OFF", "true", "reject", 1, enabled=False),
)
V1 = RuleSet(version=1, rules=RULES)


def app(**overrides: object) -> dict[str, object]:
    features: dict[str, object] = {
        "application.id": "A1",
        "application.date": dt.date(2024, 5, 1),
        "applicant.age": 30,
        "lists.blacklist": False,
        "lists.hits": [],
        "links.group_size": 1,
        "application.amount": 100_000,
        "application.vehicle_price": 200_000,
        "application.vehicle_condition": "new",
    }
    features.update(overrides)
    return features


@pytest.mark.parametrize(
    ("overrides", "action", "hits", "flagged"),
    [
        ({}, "pass", [], False),
        ({"application.vehicle_condition": "used"}, "flag", ["USED"], True),
        ({"lists.hits": ["vip"]}, "fast_track", ["VIP"], False),
        # a flag does not stop a fast track, but it is kept
        (
            {"lists.hits": ["vip"], "application.vehicle_condition": "used"},
            "fast_track",
            ["VIP", "USED"],
            True,
        ),
        # review beats fast track and flag
        ({"lists.hits": ["vip"], "links.group_size": 4}, "review", ["GROUP", "VIP"], False),
        # reject beats everything; hits come in priority order, all of them
        (
            {
                "applicant.age": 70,
                "lists.blacklist": True,
                "links.group_size": 4,
                "application.amount": 190_000,
                "lists.hits": ["vip"],
                "application.vehicle_condition": "used",
            },
            "reject",
            ["BLACK", "AGE", "GROUP", "LTV", "VIP", "USED"],
            True,
        ),
        ({"applicant.age": 17}, "reject", ["AGE"], False),
    ],
)
def test_outcome_precedence_and_hit_order(overrides, action, hits, flagged):
    result = evaluate_ruleset(V1, app(**overrides))
    assert result.action == action
    assert [h.code for h in result.hits] == hits
    assert result.flagged is flagged
    assert result.reason_codes == tuple(f"{code}_REASON" for code in hits)
    assert result.version == 1


def test_disabled_rules_do_not_run_and_ties_run_by_code():
    rs = RuleSet(
        version="2024-05",
        rules=(
            rule("B", "true", "flag", 1),
            rule("A", "true", "flag", 1),
            rule("C", "true", "flag", 0),
            rule("D", "true", "reject", 0, enabled=False),
        ),
    )
    result = evaluate_ruleset(rs, {})
    assert [h.code for h in result.hits] == ["C", "A", "B"]
    assert result.action == "flag"


def test_missing_data_leaves_rules_undecided_not_hit():
    result = evaluate_ruleset(V1, {"application.id": "A2"})
    assert result.action == "pass"
    assert result.undecided == ("BLACK",)  # a null bool; comparisons with null are just false
    assert result.hits == ()


def test_flags_and_problems_are_recorded():
    result = evaluate_ruleset(V1, app(**{"application.vehicle_price": 0, "applicant.age": "30"}))
    assert ("LTV", "division_by_zero") in result.flags
    assert [str(p) for p in result.problems] == ["applicant.age: expected number, got str '30'"]
    assert result.action == "pass"  # a null is not a hit
    record = result.to_dict()
    assert json.loads(json.dumps(record)) == record  # ready for a JSONField
    assert record["flags"] == [["LTV", "division_by_zero"]]


def test_a_rule_set_with_bad_rules_is_refused_listing_each():
    draft = RuleSet(
        version=2,
        rules=(
            rule("OK", "applicant.age > 1", "flag"),
            rule("TYPO", "applicant.agee > 1", "reject"),
            rule("SYNTAX", "applicant.age >> 1", "reject", enabled=False),  # checked too
        ),
    )
    with pytest.raises(RuleSetError) as info:
        compile_ruleset(draft)
    assert set(info.value.errors) == {"TYPO", "SYNTAX"}
    assert "Rule TYPO: Line 1, column 1: unknown field applicant.agee" in info.value.message
    assert info.value.extra["errors"]["SYNTAX"]["column"] == 16


def test_a_broken_rule_at_evaluation_fails_safe_to_review():
    broken = RuleSet(
        version=3,
        rules=(rule("TYPO", "applicant.agee > 1", "reject"), rule("VIP", "true", "fast_track")),
    )
    result = evaluate_ruleset(broken, app())  # lenient: the pipeline must not raise
    assert result.action == "review"
    assert result.errors[0][0] == "TYPO"
    assert result.reason_codes == ("VIP_REASON", "RULE_ERROR")


def test_a_failing_rule_at_run_time_fails_safe_to_review(monkeypatch):
    from credit.rules import functions

    def explode(ctx, value):
        raise RuntimeError("bug")

    failing = dataclasses.replace(functions.FUNCTIONS["len"], impl=explode)
    monkeypatch.setitem(functions.FUNCTIONS, "len", failing)
    rs = RuleSet(version=4, rules=(rule("LEN", "len(lists.hits) > 1", "reject"),))
    result = compile_ruleset(rs).evaluate(app())
    assert result.action == "review"
    assert result.errors == (("LEN", "the rule failed while evaluating"),)
    assert ("LEN", "error") in result.flags


@pytest.mark.parametrize(
    ("kwargs", "words"),
    [
        ({"code": ""}, "bad rule code"),
        ({"code": "has space"}, "bad rule code"),
        ({"action": "deny"}, "unknown action 'deny'"),
        ({"reason_code": ""}, "bad reason code"),
        ({"priority": -1}, "priority"),
        ({"priority": True}, "priority"),
        ({"priority": "1"}, "priority"),
        ({"enabled": "yes"}, "enabled"),
    ],
)
def test_bad_rule_definitions_are_refused(kwargs, words):
    fields = {"code": "R1", "name": "n", "expression": "true", "action": "flag"}
    fields |= {"reason_code": "X"} | kwargs
    with pytest.raises(RuleDefinitionError, match=words):
        Rule(**fields)


def test_duplicate_codes_are_refused():
    with pytest.raises(RuleDefinitionError, match="R1 is used twice in rule set 7"):
        RuleSet(version=7, rules=(rule("R1", "true", "flag"), rule("R1", "false", "flag")))
    assert RuleSet(version=8, rules=[rule("R1", "true", "flag")]).rules[0].code == "R1"


def test_choices_come_from_the_registry():
    assert [k for k, _label in action_choices()] == ["reject", "review", "fast_track", "flag"]
    assert OUTCOMES[-1] == "pass"


# --- replay ------------------------------------------------------------------------------
def test_replay_counts_transitions_and_lists_the_changed_ids():
    v2 = RuleSet(
        version=2,
        rules=(
            *(r for r in RULES if r.code != "LTV"),  # LTV dropped
            rule("AGE", "applicant.age < 20 or applicant.age > 65", "reject", 10),  # tightened
        )[1:],  # the old AGE rule goes
    )
    assert {r.code for r in v2.rules} == {"BLACK", "GROUP", "VIP", "USED", "OFF", "AGE"}
    cases = [
        app(**{"application.id": "same"}),
        app(**{"application.id": "young", "applicant.age": 19}),  # pass -> reject
        app(**{"application.id": "ltv", "application.amount": 190_000}),  # review -> pass
        app(**{"application.id": "ltv-vip", "application.amount": 190_000, "lists.hits": ["vip"]}),
        {"application": {"id": "nested", "date": "2024-05-01"}, "applicant": {"age": 19}},
        app(**{"application.id": "both", "application.amount": 190_000, "links.group_size": 5}),
    ]
    diff = replay(V1, v2, cases)
    assert diff.total == 6
    assert diff.transitions == {
        ("pass", "pass"): 1,
        ("pass", "reject"): 2,
        ("review", "pass"): 1,
        ("review", "fast_track"): 1,
        ("review", "review"): 1,
    }
    assert diff.changed == {
        ("pass", "reject"): ("young", "nested"),
        ("review", "pass"): ("ltv",),
        ("review", "fast_track"): ("ltv-vip",),
    }
    assert diff.changed_count == 4
    assert diff.reasons_changed == ("both",)  # still review, but no longer for LTV
    assert diff.rows() == [  # strongest "before" first, then strongest "after"
        ("review", "review", 1),
        ("review", "fast_track", 1),
        ("review", "pass", 1),
        ("pass", "reject", 2),
        ("pass", "pass", 1),
    ]
    report = diff.to_dict()
    assert json.loads(json.dumps(report)) == report
    assert (report["before_version"], report["after_version"], report["changed"]) == (1, 2, 4)


def test_replay_without_ids_uses_positions_and_refuses_bad_drafts():
    diff = replay(V1, V1, [{"applicant.age": 70}, {"applicant.age": 30}])
    assert diff.changed == {} and diff.transitions == {("reject", "reject"): 1, ("pass", "pass"): 1}
    draft = RuleSet(version=9, rules=(rule("X", "applicant.agee > 1", "reject"),))
    with pytest.raises(RuleSetError):
        replay(V1, draft, [app()])


def test_replay_evaluates_each_case_at_its_own_date():
    old = RuleSet(version=1, rules=())
    new = RuleSet(version=2, rules=(rule("OLD", "age_at(applicant.birth_date) >= 60", "review"),))
    born = dt.date(1964, 6, 1)
    cases = [
        {"application.id": 1, "application.date": "2024-05-31", "applicant.birth_date": born},
        {"application.id": 2, "application.date": "2024-06-01", "applicant.birth_date": born},
    ]
    assert replay(old, new, cases).changed == {("pass", "review"): (2,)}


def test_unreadable_features_fail_safe_to_review():
    class Broken(dict):
        def items(self):
            raise RuntimeError("broken feed")

    result = evaluate_ruleset(V1, Broken())
    assert result.action == "review"
    assert result.errors[0] == ("*", "the features could not be read")
