"""Rule sets (C4): drafts are edited rule by rule (each expression compiled on save, a bad one
refused with the position of the bad token), published once (immutable from then on, the previous
version retired), and replayed over past applications before publishing."""

from __future__ import annotations

import datetime as dt

from django.db import IntegrityError, transaction
from django.db.models import Max
from django.utils import timezone
from django.utils.translation import gettext as _

from accounts.models import Customer
from accounts.selectors import customer_is_visible_to
from carloan.errors import ApplicationError, ConflictError, InvalidTransition
from carloan.services import model_save
from credit import pipeline
from credit.models import CreditRule, RuleSet
from credit.rules import DEFAULT_SCHEMA, compile_condition, compile_ruleset, replay
from credit.rules import Rule as EngineRule
from credit.rules import RuleSet as EngineRuleSet
from credit.rules.ruleset import ReplayDiff
from credit.selectors import customer_bounds, published_rule_set_for, replay_cases

DEFAULT_REPLAY = 1000
MAX_REPLAY = 20000


def _require_visible(by, customer_id: int) -> None:
    if by is not None and not customer_is_visible_to(by, customer_id):
        raise ApplicationError(_("No such rule set."), code="not_found")


def _require_draft(rule_set: RuleSet) -> None:
    status = RuleSet.objects.filter(pk=rule_set.pk).values_list("status", flat=True).first()
    if status != RuleSet.Status.DRAFT:
        raise ConflictError(
            _(
                "Rule set v%(version)s is %(status)s: published versions never change. Copy it "
                "to a new draft to edit it."
            )
            % {"version": rule_set.version, "status": RuleSet.Status(status).label}
        )


@transaction.atomic
def ruleset_create(
    *, customer: Customer, name: str = "", copy_from: RuleSet | None = None, by=None
) -> RuleSet:
    """A new draft for `customer`, numbered after its last version; with `copy_from`, holding
    a copy of that version's rules (the usual way to change published rules)."""
    _require_visible(by, customer.pk)
    if copy_from is not None:
        _require_visible(by, copy_from.customer_id)
    last = RuleSet.objects.filter(customer=customer).aggregate(v=Max("version"))["v"] or 0
    rule_set = RuleSet(
        customer=customer,
        version=last + 1,
        name=name or (copy_from.name if copy_from else ""),
        status=RuleSet.Status.DRAFT,
    )
    try:
        with transaction.atomic():
            model_save(rule_set, by=by, exclude_clean=["customer", "published_by"])
    except IntegrityError:
        raise ConflictError(_("Someone created a version at the same time: try again.")) from None
    if copy_from is not None:
        CreditRule.objects.bulk_create(
            CreditRule(
                rule_set=rule_set,
                code=r.code,
                name=r.name,
                expression=r.expression,
                action=r.action,
                reason_code=r.reason_code,
                priority=r.priority,
                enabled=r.enabled,
            )
            for r in copy_from.rules.all()
        )
    return rule_set


def ruleset_update(*, rule_set: RuleSet, name: str, by=None) -> RuleSet:
    _require_visible(by, rule_set.customer_id)
    _require_draft(rule_set)
    rule_set.name = name
    return model_save(rule_set, by=by, update_fields=["name"], exclude_clean=["customer"])


def _engine_rule(rule: CreditRule) -> EngineRule:
    return EngineRule(
        code=rule.code,
        name=rule.name,
        expression=rule.expression,
        action=rule.action,
        reason_code=rule.reason_code,
        priority=rule.priority,
        enabled=rule.enabled,
    )


def credit_rule_check(rule: CreditRule) -> None:
    """Refuse a rule the engine cannot use: RuleDefinitionError (bad code, action or reason
    code) or RuleSyntaxError / RuleTypeError pointing at the bad token (`render(gettext)`,
    `caret()`)."""
    _engine_rule(rule)
    compile_condition(rule.expression, DEFAULT_SCHEMA)


@transaction.atomic
def credit_rule_save(*, rule: CreditRule, by=None) -> CreditRule:
    """Create or change a rule of a draft. The expression is compiled against the feature
    schema first; a bad one raises a RuleError and nothing is saved."""
    _require_visible(by, rule.rule_set.customer_id)
    _require_draft(rule.rule_set)
    credit_rule_check(rule)
    return model_save(rule, by=by, exclude_clean=["rule_set"])


@transaction.atomic
def credit_rule_delete(*, rule: CreditRule, by=None) -> None:
    _require_visible(by, rule.rule_set.customer_id)
    _require_draft(rule.rule_set)
    rule.delete()


@transaction.atomic
def ruleset_publish(*, rule_set: RuleSet, by=None, at: dt.datetime | None = None) -> RuleSet:
    """Publish a draft: every rule must compile (RuleSetError lists each bad rule with its
    position) and one at least must be enabled. The customer's published version is retired;
    from now on its applications are decided with this one, and it never changes again."""
    _require_visible(by, rule_set.customer_id)
    row = RuleSet.objects.select_for_update().get(pk=rule_set.pk)
    if row.status != RuleSet.Status.DRAFT:
        raise InvalidTransition(
            _("Only a draft can be published; v%(version)s is %(status)s.")
            % {"version": row.version, "status": row.get_status_display()}
        )
    rules = list(row.rules.all())
    if not any(r.enabled for r in rules):
        raise ApplicationError(_("A rule set needs at least one enabled rule to be published."))
    engine = EngineRuleSet(version=row.version, rules=tuple(_engine_rule(r) for r in rules))
    compile_ruleset(engine, DEFAULT_SCHEMA)  # strict: RuleSetError names every bad rule
    RuleSet.objects.filter(customer_id=row.customer_id, status=RuleSet.Status.PUBLISHED).update(
        status=RuleSet.Status.RETIRED
    )
    row.status = RuleSet.Status.PUBLISHED
    row.published_at = at or timezone.now()
    row.published_by = by if by is not None and by.is_authenticated else None
    model_save(
        row,
        by=by,
        update_fields=["status", "published_at", "published_by"],
        exclude_clean=["customer", "published_by"],
    )
    rule_set.__dict__.update(
        status=row.status, published_at=row.published_at, published_by_id=row.published_by_id
    )
    return row


def ruleset_replay(*, rule_set: RuleSet, last: int = DEFAULT_REPLAY, by=None) -> ReplayDiff:
    """What `rule_set` would have changed over the last `last` decided applications of its
    customer's subtree, against the version that decides them today (none: every rule set
    passes everything). Each case is evaluated at its own date. Reads only."""
    _require_visible(by, rule_set.customer_id)
    if not 1 <= last <= MAX_REPLAY:
        raise ApplicationError(
            _("Replay between 1 and %(max)d applications.") % {"max": MAX_REPLAY}
        )
    current = published_rule_set_for(customer_bounds(rule_set.customer_id))
    if current is not None and current.pk != rule_set.pk:
        before = pipeline.compiled_rule_set(current)
    else:
        before = compile_ruleset(EngineRuleSet(version=0, rules=()), DEFAULT_SCHEMA)
    after = compile_ruleset(pipeline.engine_rule_set(rule_set), DEFAULT_SCHEMA)
    return replay(before, after, replay_cases(rule_set, last))
