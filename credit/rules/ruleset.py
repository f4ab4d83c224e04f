"""Rules, rule sets, evaluation of a rule set over one application, and replay of two versions.

Plain frozen dataclasses: the credit app stores them in the database (a published version is
immutable there) and builds a `RuleSet` to call these functions. Nothing here touches Django.

Order: enabled rules run by ascending `priority` (1 before 10), then by code; every enabled rule is
evaluated (the audit trail lists all hits, not just the first).

The outcome, by precedence (see docs/CREDIT.md):
  reject      if any reject rule is hit
  review      else if any review rule is hit, or a rule could not be evaluated (fail safe)
  fast_track  else if any fast-track rule is hit (flags do not stop a fast track)
  flag        else if any flag rule is hit
  pass        otherwise: the rules have no objection; the pipeline goes on to the scorecard
`flagged` says whether a flag rule was hit whatever the outcome.
"""

from __future__ import annotations

import datetime as dt
import functools
import re
from collections.abc import Hashable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from credit.rules.errors import RuleDefinitionError, RuleError, RuleSetError, gettext_noop
from credit.rules.expr import Program, as_of_from, compile_condition
from credit.rules.features import DEFAULT_SCHEMA
from credit.rules.functions import ERROR, EvalContext
from credit.rules.types import FeatureSchema
from credit.rules.values import Problem, coerce_flat, flatten

REJECT = "reject"
REVIEW = "review"
FAST_TRACK = "fast_track"
FLAG = "flag"
PASS = "pass"

# The actions a rule may take (the registry the admin's choices come from), strongest first.
ACTIONS: dict[str, str] = {
    REJECT: gettext_noop("Reject"),
    REVIEW: gettext_noop("Manual review"),
    FAST_TRACK: gettext_noop("Approve (fast track)"),
    FLAG: gettext_noop("Flag"),
}
# Outcomes of a rule set, strongest first.
OUTCOMES: tuple[str, ...] = (REJECT, REVIEW, FAST_TRACK, FLAG, PASS)
RULE_ERROR_REASON = "RULE_ERROR"  # reason code of the review forced by a rule that failed

_CODE_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,63}$")
MAX_PRIORITY = 1_000_000


def action_choices() -> list[tuple[str, str]]:
    return list(ACTIONS.items())


@dataclass(frozen=True)
class Rule:
    code: str  # unique in its rule set, e.g. "R001" or "age.max"
    name: str
    expression: str
    action: str  # one of ACTIONS
    reason_code: str  # recorded with the decision, e.g. "AGE_OVER_LIMIT"
    priority: int = 100  # lower runs first
    enabled: bool = True

    def __post_init__(self) -> None:
        if not isinstance(self.code, str) or not _CODE_RE.match(self.code):
            raise RuleDefinitionError(
                gettext_noop(
                    "bad rule code %(code)s: 1 to 64 letters, digits, '_', '.' or '-', "
                    "starting with a letter or digit"
                ),
                {"code": repr(self.code)},
            )
        if self.action not in ACTIONS:
            raise RuleDefinitionError(
                gettext_noop("rule %(code)s: unknown action %(action)s (use one of %(actions)s)"),
                {"code": self.code, "action": repr(self.action), "actions": ", ".join(ACTIONS)},
            )
        if not isinstance(self.reason_code, str) or not _CODE_RE.match(self.reason_code):
            raise RuleDefinitionError(
                gettext_noop("rule %(code)s: bad reason code %(reason)s"),
                {"code": self.code, "reason": repr(self.reason_code)},
            )
        if (
            isinstance(self.priority, bool)
            or not isinstance(self.priority, int)
            or not 0 <= self.priority <= MAX_PRIORITY
        ):
            raise RuleDefinitionError(
                gettext_noop("rule %(code)s: the priority must be a whole number 0 to %(max)s"),
                {"code": self.code, "max": MAX_PRIORITY},
            )
        if not isinstance(self.expression, str) or not isinstance(self.enabled, bool):
            raise RuleDefinitionError(
                gettext_noop("rule %(code)s: the expression must be text and enabled a boolean"),
                {"code": self.code},
            )


@dataclass(frozen=True)
class RuleSet:
    version: int | str
    rules: tuple[Rule, ...]

    def __post_init__(self) -> None:
        object.__setattr__(self, "rules", tuple(self.rules))
        seen: set[str] = set()
        for rule in self.rules:
            if not isinstance(rule, Rule):
                raise RuleDefinitionError(
                    gettext_noop("a rule set holds Rule objects, got %(got)s"),
                    {"got": type(rule).__name__},
                )
            if rule.code in seen:
                raise RuleDefinitionError(
                    gettext_noop("rule code %(code)s is used twice in rule set %(version)s"),
                    {"code": rule.code, "version": self.version},
                )
            seen.add(rule.code)


@dataclass(frozen=True)
class RuleHit:
    code: str
    name: str
    action: str
    reason_code: str
    priority: int


@dataclass(frozen=True)
class RuleSetResult:
    version: int | str
    action: str  # one of OUTCOMES
    hits: tuple[RuleHit, ...]  # in evaluation order
    flagged: bool
    undecided: tuple[str, ...] = ()  # rules whose condition was null (missing data)
    flags: tuple[tuple[str, str], ...] = ()  # (rule code, flag) e.g. ("R7", "division_by_zero")
    errors: tuple[tuple[str, str], ...] = ()  # (rule code, message): rules that failed
    problems: tuple[Problem, ...] = ()  # feature values of the wrong type, read as null

    @property
    def reason_codes(self) -> tuple[str, ...]:
        """Reason codes of the hits in order, without repeats (plus RULE_ERROR after errors)."""
        codes = dict.fromkeys(hit.reason_code for hit in self.hits)
        if self.errors:
            codes[RULE_ERROR_REASON] = None
        return tuple(codes)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready record for the decision's audit trail."""
        return {
            "version": self.version,
            "action": self.action,
            "flagged": self.flagged,
            "reason_codes": list(self.reason_codes),
            "hits": [
                {
                    "code": h.code,
                    "action": h.action,
                    "reason_code": h.reason_code,
                    "priority": h.priority,
                }
                for h in self.hits
            ],
            "undecided": list(self.undecided),
            "flags": [list(f) for f in self.flags],
            "errors": [list(e) for e in self.errors],
            "problems": [str(p) for p in self.problems],
        }


def _outcome(hits: Sequence[RuleHit], failed: bool) -> str:
    actions = {hit.action for hit in hits}
    if REJECT in actions:
        return REJECT
    if REVIEW in actions or failed:
        return REVIEW
    for action in (FAST_TRACK, FLAG):
        if action in actions:
            return action
    return PASS


@dataclass(frozen=True, eq=False)
class CompiledRuleSet:
    ruleset: RuleSet
    schema: FeatureSchema
    programs: tuple[tuple[Rule, Program | None], ...]  # enabled rules in order; None = failed
    errors: Mapping[str, RuleError] = field(default_factory=dict)  # every rule, enabled or not
    fields: frozenset[str] = frozenset()

    @property
    def version(self) -> int | str:
        return self.ruleset.version

    def evaluate(
        self, features: Mapping[str, object], *, as_of: dt.date | None = None
    ) -> RuleSetResult:
        """Run every enabled rule over one application's features. Never raises."""
        try:
            flat = flatten(features)
            values, problems = coerce_flat(self.schema, flat, self.fields)
            when = as_of if as_of is not None else as_of_from(flat)
        except Exception:
            values, problems, when = {}, (), None
            failed_input = True
        else:
            failed_input = False
        hits: list[RuleHit] = []
        undecided: list[str] = []
        flags: list[tuple[str, str]] = []
        errors: list[tuple[str, str]] = []
        if failed_input:
            errors.append(("*", "the features could not be read"))
        for rule, program in self.programs:
            if program is None:
                errors.append((rule.code, self.errors[rule.code].message))
                continue
            ctx = EvalContext(when)
            value = program.run(values, ctx)
            if ctx.flags:
                flags.extend((rule.code, flag) for flag in ctx.flags)
                if ERROR in ctx.flags:
                    errors.append((rule.code, "the rule failed while evaluating"))
                    continue
            if value is True:
                hits.append(
                    RuleHit(rule.code, rule.name, rule.action, rule.reason_code, rule.priority)
                )
            elif value is None:
                undecided.append(rule.code)
        return RuleSetResult(
            version=self.version,
            action=_outcome(hits, bool(errors)),
            hits=tuple(hits),
            flagged=any(hit.action == FLAG for hit in hits),
            undecided=tuple(undecided),
            flags=tuple(flags),
            errors=tuple(errors),
            problems=problems,
        )


def compile_ruleset(
    ruleset: RuleSet, schema: FeatureSchema | None = None, *, strict: bool = True
) -> CompiledRuleSet:
    """Compile every rule (disabled ones too: a rule is refused on save whatever its state).
    strict: raise RuleSetError listing every bad rule; otherwise keep the errors, and evaluation
    treats a bad enabled rule as failed (the outcome is at least review)."""
    schema = DEFAULT_SCHEMA if schema is None else schema
    errors: dict[str, RuleError] = {}
    compiled: dict[str, Program] = {}
    for rule in ruleset.rules:
        try:
            compiled[rule.code] = compile_condition(rule.expression, schema)
        except RuleError as exc:
            errors[rule.code] = exc
    if errors and strict:
        raise RuleSetError(errors)
    enabled = sorted((r for r in ruleset.rules if r.enabled), key=lambda r: (r.priority, r.code))
    programs = tuple((rule, compiled.get(rule.code)) for rule in enabled)
    fields = frozenset().union(*(p.fields for _r, p in programs if p is not None))
    return CompiledRuleSet(ruleset, schema, programs, errors, fields)


@functools.lru_cache(maxsize=32)
def _compiled(ruleset: RuleSet, schema: FeatureSchema) -> CompiledRuleSet:
    return compile_ruleset(ruleset, schema, strict=False)


def evaluate_ruleset(
    ruleset: RuleSet | CompiledRuleSet,
    features: Mapping[str, object],
    *,
    schema: FeatureSchema | None = None,
    as_of: dt.date | None = None,
) -> RuleSetResult:
    """Evaluate a rule set over one application's features (nested or dotted names). A RuleSet
    is compiled once and cached; compile it yourself (compile_ruleset) to see its errors first.
    `as_of` (the date of today() and age_at(x)) defaults to the features' application.date."""
    if isinstance(ruleset, RuleSet):
        ruleset = _compiled(ruleset, DEFAULT_SCHEMA if schema is None else schema)
    return ruleset.evaluate(features, as_of=as_of)


# --- replay: what would publishing change? -------------------------------------------------
@dataclass(frozen=True)
class ReplayDiff:
    before_version: int | str
    after_version: int | str
    total: int
    transitions: Mapping[tuple[str, str], int]  # (before, after) -> applications, all pairs
    changed: Mapping[tuple[str, str], tuple[Hashable, ...]]  # before != after -> their ids
    reasons_changed: tuple[Hashable, ...]  # same outcome, different reason codes

    @property
    def changed_ids(self) -> tuple[Hashable, ...]:
        return tuple(i for ids in self.changed.values() for i in ids)

    @property
    def changed_count(self) -> int:
        return sum(len(ids) for ids in self.changed.values())

    def rows(self) -> list[tuple[str, str, int]]:
        """(before, after, count), strongest outcome first, for a transition table."""
        rank = {o: i for i, o in enumerate(OUTCOMES)}
        return sorted(
            ((b, a, n) for (b, a), n in self.transitions.items()),
            key=lambda row: (rank[row[0]], rank[row[1]]),
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "before_version": self.before_version,
            "after_version": self.after_version,
            "total": self.total,
            "changed": self.changed_count,
            "transitions": [
                {"before": b, "after": a, "count": n, "ids": list(self.changed.get((b, a), ()))}
                for b, a, n in self.rows()
            ],
            "reasons_changed": list(self.reasons_changed),
        }


def replay(
    before: RuleSet | CompiledRuleSet,
    after: RuleSet | CompiledRuleSet,
    cases: Iterable[Mapping[str, object]],
    *,
    schema: FeatureSchema | None = None,
    id_key: str = "application.id",
) -> ReplayDiff:
    """Evaluate both versions over past applications' features and count the outcome
    transitions. Each case is identified by its `id_key` value (nested or dotted), else by its
    position. Each case is evaluated at its own application.date. Both rule sets must compile
    (RuleSetError otherwise): a draft with errors cannot be replayed, nor published."""
    a = compile_ruleset(before, schema) if isinstance(before, RuleSet) else before
    b = compile_ruleset(after, schema) if isinstance(after, RuleSet) else after
    transitions: dict[tuple[str, str], int] = {}
    changed: dict[tuple[str, str], list[Hashable]] = {}
    reasons_changed: list[Hashable] = []
    total = 0
    for index, case in enumerate(cases):
        total += 1
        raw_id = flatten(case).get(id_key, index)
        case_id: Hashable = raw_id if isinstance(raw_id, Hashable) else index
        first, second = a.evaluate(case), b.evaluate(case)
        key = (first.action, second.action)
        transitions[key] = transitions.get(key, 0) + 1
        if first.action != second.action:
            changed.setdefault(key, []).append(case_id)
        elif first.reason_codes != second.reason_codes:
            reasons_changed.append(case_id)
    return ReplayDiff(
        before_version=a.version,
        after_version=b.version,
        total=total,
        transitions=transitions,
        changed={k: tuple(v) for k, v in changed.items()},
        reasons_changed=tuple(reasons_changed),
    )
