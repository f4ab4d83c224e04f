"""The decision pipeline (FEATURES.md C7, 秒批): one application in, a decision out, every step
recorded with its inputs, outcome, reason codes and duration.

    identity and admission (C1) -> black / white lists (C2) -> fraud links (C3) -> rules (C4)
    -> scorecard (C5) -> quota (C6) -> decision

`decide(submission)` only reads: `credit.services.application_submit` validates the input, calls
it and stores the application, its steps and its link keys in one transaction. Every step runs
(so the audit trail is complete and the challenger is scored on every application); the decision
then combines them:

1. rejected when the identity / admission checks fail, a blacklist entry matches or a reject rule
   hits (hard stops, in that order of reporting);
2. else review when a review rule hits (or a rule failed);
3. else approved when a whitelist entry matches or a fast-track rule hits (the score band is not
   used, the quota still is);
4. else by the champion scorecard's band: reject / review / approve; review when no champion
   is published or the applicant could not be scored;
5. an approval or review gets a quota for its band: when the applicant cannot afford the
   product's minimum amount the application is rejected (QUOTA_INSUFFICIENT), when less than
   asked is granted it says so (AMOUNT_REDUCED).

Speed (budget p99 <= 50 ms with 1,000,000 list entries and 100,000 past applications): list
entries are found through the (field, value) index in one query; fraud links through the
(lender, kind, value, at) index of `LinkKey`, following the chain of shared values breadth-first
instead of loading the history; a published rule set is compiled once per version and a
scorecard artefact once per model (both immutable), so the request path costs a few indexed
queries and pure-Python work.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import threading
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from django.db import connection
from django.utils import timezone

from accounts.models import Customer
from carloan.identifiers import (
    is_new_energy_plate,
    is_valid_mobile,
    normalize_id_number,
    normalize_phone,
    normalize_plate,
    normalize_vin,
)
from credit import quota as quotas
from credit.links import LinkApplication, LinkConfig, LinkIndex, LinkResult
from credit.models import (
    Application,
    CreditRule,
    Dealer,
    LinkKey,
    ListEntry,
    Product,
    RuleSet,
    ScorecardModel,
)
from credit.rules import DEFAULT_SCHEMA
from credit.rules import Rule as EngineRule
from credit.rules import RuleSet as EngineRuleSet
from credit.rules.features import applicant_from_id_number
from credit.rules.ruleset import CompiledRuleSet, compile_ruleset
from credit.scorecard import Scorecard, ScorecardError, compile_artefact
from credit.selectors import customer_line, published_rule_set_in_line

IDENTITY, LISTS, LINKS, RULES, SCORECARD, QUOTA, DECISION = (
    "identity",
    "lists",
    "links",
    "rules",
    "scorecard",
    "quota",
    "decision",
)
STEPS = (IDENTITY, LISTS, LINKS, RULES, SCORECARD, QUOTA, DECISION)

APPROVED = Application.Status.APPROVED.value
REVIEW = Application.Status.REVIEW.value
REJECTED = Application.Status.REJECTED.value

MIN_AGE = 18
# A decision follows a group up to 200 applications (`links.group_size` stops there and the step
# says `truncated`): every rule on group size needs far less, and a value shared by thousands
# (a shop's phone that should be on the ignore list) must not cost seconds.
LINK_CONFIG = LinkConfig(max_group_size=200)
MAX_LINK_MEMBERS_SHOWN = 50  # members listed in the step details (the count is always full)

# Features a caller may supply from checks done outside carloan (operator, credit bureau,
# vehicle registration); everything else in the schema is computed here.
CHECK_FIELDS = frozenset(
    {
        "applicant.phone_tenure_months",
        "applicant.name_id_match",
        "applicant.phone_id_match",
        "applicant.marital_status",
        "applicant.monthly_debt",
        "applicant.employment_months",
        "applicant.resident_province_code",
        "bureau.overdue_count_24m",
        "bureau.max_overdue_days",
        "bureau.queries_3m",
        "application.vehicle_age_months",
        "application.new_energy",
        "application.province_code",
        "dealer.province_code",
    }
)
# Scorecard characteristics the pipeline fills from the application when the caller left them out.
DERIVED_ATTRIBUTES = {
    "age_in_years": "applicant.age",
    "duration_in_month": "application.term_months",
}


# --- Input and output ---------------------------------------------------------------------------
@dataclass
class Submission:
    """A validated application, ready to be decided (built by `application_submit`)."""

    customer: Customer  # with fresh tree columns
    lender: Customer
    product: Product
    dealer: Dealer | None
    at: dt.datetime
    name: str
    id_number: str
    phone: str
    car_price: Decimal
    amount: Decimal
    term_months: int
    down_payment: Decimal
    monthly_income: Decimal = Decimal(0)
    address: str = ""
    employer: str = ""
    used_car: bool = False
    vin: str = ""
    plate: str = ""
    device_fingerprint: str = ""
    ip_address: str | None = None
    bank_card: str = ""
    attributes: dict[str, Any] = field(default_factory=dict)
    checks: dict[str, Any] = field(default_factory=dict)
    # status -> (model id, artefact fingerprint) of the champion / challenger; None: read them
    scorecards: dict[str, tuple[int, str]] | None = None
    # id -> level of the customer and its ancestors (whose lists and rules apply); None: read it
    line: dict[int, int] | None = None

    def line_ids(self) -> dict[int, int]:
        if self.line is None:
            self.line = {c.pk: c.level for c in customer_line(self.customer.pk)}
        return self.line


_fingerprints: dict[tuple[int, dt.datetime], str] = {}


def active_scorecards() -> dict[str, tuple[int, str]]:
    """status -> (id, fingerprint) of the champion and the challenger: one small query on every
    decision, so a promotion applies from the next application. An artefact never changes once
    registered, so its fingerprint is read once per (id, registration time) per process."""
    out = {}
    for status, pk, created_at in ScorecardModel.objects.filter(
        status__in=[ScorecardModel.Status.CHAMPION, ScorecardModel.Status.CHALLENGER]
    ).values_list("status", "id", "created_at"):
        fingerprint = _fingerprints.get((pk, created_at))
        if fingerprint is None:
            fingerprint = (
                ScorecardModel.objects.filter(pk=pk)
                .values_list("artefact__fingerprint", flat=True)
                .first()
            )
            _remember(_fingerprints, (pk, created_at), fingerprint)
        out[status] = (pk, fingerprint)
    return out


@dataclass
class StepRecord:
    step: str
    outcome: str
    reason_codes: list[str] = field(default_factory=list)
    details: dict[str, Any] = field(default_factory=dict)
    duration_us: int = 0


@dataclass
class Decision:
    status: str
    reasons: list[str]
    steps: list[StepRecord]
    features: dict[str, Any]  # what the rules saw (JSON-ready): replays run over these
    attributes: dict[str, Any]  # the scorecard characteristics as scored
    score: int | None = None
    band: str = ""
    quota: dict[str, Any] = field(default_factory=dict)
    rule_set: RuleSet | None = None
    scorecard_id: int | None = None
    scorecard_label: str = ""  # "name version" of the champion that scored
    challenger_score: int | None = None
    links: LinkResult | None = None
    link_keys: list[tuple[str, str]] = field(default_factory=list)
    duration_ms: float = 0.0


class _Timer:
    __slots__ = ("t0",)

    def __init__(self) -> None:
        self.t0 = time.perf_counter_ns()

    def us(self) -> int:
        return (time.perf_counter_ns() - self.t0) // 1000


def _json_number(value: Decimal | int | float | None) -> int | float | None:
    """Decimals as JSON numbers that the rule engine reads back exactly (int or shortest float)."""
    if value is None:
        return None
    value = Decimal(value)
    return int(value) if value == value.to_integral_value() else float(value)


def _local_date(at: dt.datetime) -> dt.date:
    return timezone.localtime(at).date()


# --- C1: identity and admission ---------------------------------------------------------------
def _identity(sub: Submission, features: dict[str, Any]) -> StepRecord:
    timer = _Timer()
    today = _local_date(sub.at)
    id_features = applicant_from_id_number(sub.id_number, on=today)
    features.update(
        {k: (v.isoformat() if isinstance(v, dt.date) else v) for k, v in id_features.items()}
    )
    phone = normalize_phone(sub.phone)
    features["applicant.phone"] = phone
    features["applicant.phone_valid"] = is_valid_mobile(phone)
    features["applicant.monthly_income"] = _json_number(sub.monthly_income)
    reasons = []
    if not id_features.get("applicant.id_valid"):
        reasons.append("ID_INVALID")
    elif id_features["applicant.age"] < MIN_AGE:
        reasons.append("AGE_UNDER_18")
    if not features["applicant.phone_valid"]:
        reasons.append("PHONE_INVALID")
    if sub.dealer is not None and sub.dealer.status != Dealer.Status.ADMITTED:
        reasons.append("DEALER_NOT_ADMITTED")
    if sub.amount < sub.product.min_amount:
        reasons.append("AMOUNT_BELOW_PRODUCT_MINIMUM")
    details = {
        "id_valid": bool(id_features.get("applicant.id_valid")),
        "age": id_features.get("applicant.age"),
        "sex": id_features.get("applicant.sex"),
        "region_code": id_features.get("applicant.region_code"),
        "phone_valid": features["applicant.phone_valid"],
        "dealer": None
        if sub.dealer is None
        else {"code": sub.dealer.code, "status": sub.dealer.status, "rating": sub.dealer.rating},
        "product": {"code": sub.product.code, "min_amount": str(sub.product.min_amount)},
    }
    return StepRecord(IDENTITY, "reject" if reasons else "pass", reasons, details, timer.us())


# --- C2: black and white lists --------------------------------------------------------------------
def _digits(value: str) -> str:
    return "".join(ch for ch in value or "" if ch.isdigit())


LIST_NORMALISERS = {
    ListEntry.Field.ID_NUMBER: normalize_id_number,
    ListEntry.Field.PHONE: normalize_phone,
    ListEntry.Field.DEVICE: lambda v: (v or "").strip().lower(),
    ListEntry.Field.VIN: normalize_vin,
    ListEntry.Field.PLATE: normalize_plate,
    ListEntry.Field.BANK_CARD: _digits,
}


def normalise_list_value(field_name: str, value: str) -> str:
    """How a list entry's value and an application's value are compared (same on both sides)."""
    return LIST_NORMALISERS[field_name](value or "")


def list_values(sub: Submission) -> dict[str, str]:
    raw = {
        ListEntry.Field.ID_NUMBER: sub.id_number,
        ListEntry.Field.PHONE: sub.phone,
        ListEntry.Field.DEVICE: sub.device_fingerprint,
        ListEntry.Field.VIN: sub.vin,
        ListEntry.Field.PLATE: sub.plate,
        ListEntry.Field.BANK_CARD: sub.bank_card,
    }
    out = {}
    for name, value in raw.items():
        normalised = normalise_list_value(name, value)
        if normalised:
            out[str(name)] = normalised
    return out


def matching_list_entries(
    line_ids: Iterable[int], values: Mapping[str, str], at: dt.datetime
) -> list[ListEntry]:
    """Unexpired entries, platform-wide or of a customer of `line_ids` (the customer and its
    ancestors), whose (field, value) is one of `values`, in (kind, field, id) order.

    One query on the (field, value) index, written as SQL: it runs on every decision, and the
    ORM spent longer compiling the OR of pairs than the database answering it (a few index
    probes among 1,000,000 entries). SQLite answers each `field = ? AND value = ?` term from the
    index (its OR optimisation), PostgreSQL with a bitmap OR."""
    if not values:
        return []
    owners = sorted(line_ids)
    table = connection.ops.quote_name(ListEntry._meta.db_table)
    pairs = " OR ".join(["(field = %s AND value = %s)"] * len(values))
    owner = "customer_id IS NULL"
    if owners:
        owner += f" OR customer_id IN ({', '.join(['%s'] * len(owners))})"
    params: list[Any] = [p for pair in sorted(values.items()) for p in pair]
    params += owners
    params.append(connection.ops.adapt_datetimefield_value(at))
    sql = (
        "SELECT id, customer_id, kind, field, source, reason, expires_at "  # noqa: S608
        f"FROM {table} WHERE ({pairs}) AND ({owner}) "
        "AND (expires_at IS NULL OR expires_at > %s) ORDER BY kind, field, id"
    )
    return list(ListEntry.objects.raw(sql, params))


def _lists(sub: Submission, features: dict[str, Any]) -> StepRecord:
    timer = _Timer()
    entries = matching_list_entries(sub.line_ids(), list_values(sub), sub.at)
    hits = sorted({f"{e.kind}list.{e.field}" for e in entries})
    black = [e for e in entries if e.kind == ListEntry.Kind.BLACK]
    white = [e for e in entries if e.kind == ListEntry.Kind.WHITE]
    features["lists.hits"] = hits
    features["lists.blacklist"] = bool(black)
    features["lists.whitelist"] = bool(white)
    if black:
        outcome = "reject"
        reasons = list(dict.fromkeys(f"BLACKLIST_{e.field.upper()}" for e in black))
    elif white:
        outcome, reasons = "fast_track", ["WHITELIST"]
    else:
        outcome, reasons = "pass", []
    details = {
        "checked": sorted(list_values(sub)),
        "entries": [
            {
                "id": e.pk,
                "list": e.kind,
                "field": e.field,
                "source": e.source,
                "reason": e.reason,
                "platform_wide": e.customer_id is None,
                "expires_at": e.expires_at.isoformat() if e.expires_at else None,
            }
            for e in entries
        ],
    }
    return StepRecord(LISTS, outcome, reasons, details, timer.us())


# --- C3: fraud links ------------------------------------------------------------------------------
MAX_STORED_VALUE = 128


def stored_link_value(value: str) -> str:
    """A normalised value as stored in LinkKey.value (long addresses by their hash)."""
    if len(value) <= MAX_STORED_VALUE:
        return value
    return "sha256:" + hashlib.sha256(value.encode()).hexdigest()


def link_keys(sub: Submission, config: LinkConfig = LINK_CONFIG) -> list[tuple[str, str]]:
    raw = {
        "phone": sub.phone,
        "device": sub.device_fingerprint,
        "address": sub.address,
        "bank_card": sub.bank_card,
    }
    keys = []
    for kind, value in raw.items():
        normalised = config.normalise(kind, value)
        if normalised:
            keys.append((kind, stored_link_value(normalised)))
    return keys


class _StoredKeyIndex(LinkIndex):
    """A LinkIndex over values normalised when they were stored (LinkKey rows): indexing them
    again must not normalise twice."""

    def keys_of(self, application: LinkApplication) -> tuple[tuple[str, str], ...]:
        return tuple((k, v) for k, v in application.values.items() if v)


def _sharing(
    lender_id: int,
    pairs: list[tuple[str, str]],
    since: dt.datetime,
    until: dt.datetime,
    exclude: set[int],
    limit: int,
) -> list[int]:
    """Ids of the lender's applications in [since, until] holding one of the (kind, value)
    pairs, not in `exclude`, at most limit + 1. SQL because it runs on every decision (the ORM
    cost more to compile it than the database to answer). Every OR term carries the whole index
    prefix (lender, kind, value, at range): SQLite then answers each term from the index (its OR
    optimisation), PostgreSQL with a bitmap OR; a shared `lender = ? AND at ...` outside the OR
    made SQLite walk the lender's whole range instead."""
    table = connection.ops.quote_name(LinkKey._meta.db_table)
    low = connection.ops.adapt_datetimefield_value(since)
    high = connection.ops.adapt_datetimefield_value(until)
    term = "(lender_id = %s AND kind = %s AND value = %s AND at >= %s AND at <= %s)"
    params: list[Any] = []
    for kind, value in pairs:
        params += [lender_id, kind, value, low, high]
    sql = f"SELECT DISTINCT application_id FROM {table} WHERE ({' OR '.join([term] * len(pairs))})"  # noqa: S608
    if exclude:
        sql += f" AND application_id NOT IN ({', '.join(['%s'] * len(exclude))})"
        params += sorted(exclude)
    sql += f" LIMIT {int(limit) + 1}"
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return [row[0] for row in cursor.fetchall()]


def linked_history(
    lender_id: int,
    keys: Iterable[tuple[str, str]],
    since: dt.datetime,
    until: dt.datetime,
    *,
    limit: int,
) -> list[LinkApplication]:
    """The past applications of the lender in [since, until] connected to `keys` through shared
    values, found breadth-first through the LinkKey index (a superset of the group: the link
    windows are applied by LinkIndex afterwards). At most `limit` applications."""
    found: dict[int, dict[str, Any]] = {}
    seen: set[tuple[str, str]] = set()
    frontier = set(keys)
    while frontier and len(found) < limit:
        seen |= frontier
        new_ids: set[int] = set()
        batch = sorted(frontier)
        for start in range(0, len(batch), 100):
            new_ids.update(
                _sharing(lender_id, batch[start : start + 100], since, until, set(found), limit)
            )
        new_ids = set(sorted(new_ids)[: max(limit - len(found), 0)])
        if not new_ids:
            break
        rows = LinkKey.objects.filter(application_id__in=new_ids).values_list(
            "application_id", "kind", "value", "at", "application__outcome"
        )
        frontier = set()
        for app_id, kind, value, at, outcome in rows:
            entry = found.setdefault(
                app_id, {"at": at, "values": {}, "bad": outcome == Application.Outcome.BAD}
            )
            entry["values"][kind] = value
            if (kind, value) not in seen:
                frontier.add((kind, value))
    return [
        LinkApplication(id=pk, at=row["at"], values=row["values"], bad=row["bad"])
        for pk, row in found.items()
    ]


NEW = "new"  # the id of the application being decided inside the link index


def _links(
    sub: Submission, features: dict[str, Any], config: LinkConfig = LINK_CONFIG
) -> tuple[StepRecord, LinkResult, list[tuple[str, str]]]:
    timer = _Timer()
    keys = link_keys(sub, config)
    horizon = max(config.windows.values(), default=dt.timedelta(0))
    history = linked_history(
        sub.lender.pk, keys, sub.at - horizon, sub.at, limit=config.max_group_size
    )
    index = _StoredKeyIndex(history, config)
    result = index.links_for(LinkApplication(id=NEW, at=sub.at, values=dict(keys)))
    features.update(result.features())
    members = [
        {
            "id": m.id,
            "at": m.at.isoformat(),
            "bad": m.bad,
            "shares": sorted(m.direct_kinds),
        }
        for m in result.members[:MAX_LINK_MEMBERS_SHOWN]
    ]
    details = {
        "keys": sorted(kind for kind, _v in keys),
        "group_size": result.group_size,
        "direct_links": result.direct_links,
        "bad_members": result.bad_members,
        "kinds": sorted(result.kinds),
        "members": members,
        "truncated": result.truncated,
        "windows_days": {k: w.days for k, w in config.windows.items()},
    }
    outcome = "linked" if result.group_size > 1 else "none"
    return StepRecord(LINKS, outcome, [], details, timer.us()), result, keys


# --- C4: rules ------------------------------------------------------------------------------------
_cache_lock = threading.Lock()
_compiled_rule_sets: dict[tuple[int, dt.datetime | None], CompiledRuleSet] = {}
_scorecards: dict[str, Scorecard] = {}
_CACHE_LIMIT = 64


def _remember(cache: dict, key: Any, value: Any) -> None:
    with _cache_lock:
        if len(cache) >= _CACHE_LIMIT:
            cache.pop(next(iter(cache)))
        cache[key] = value


def engine_rule_set(rule_set: RuleSet, rules: Iterable[CreditRule] | None = None) -> EngineRuleSet:
    """The engine's frozen RuleSet for a stored rule set (its rules read when not given)."""
    if rules is None:
        rules = CreditRule.objects.filter(rule_set_id=rule_set.pk).order_by("priority", "code")
    return EngineRuleSet(
        version=rule_set.version,
        rules=tuple(
            EngineRule(
                code=r.code,
                name=r.name,
                expression=r.expression,
                action=r.action,
                reason_code=r.reason_code,
                priority=r.priority,
                enabled=r.enabled,
            )
            for r in rules
        ),
    )


def compiled_rule_set(rule_set: RuleSet) -> CompiledRuleSet:
    """A published rule set compiled once per version (published versions never change). Not
    strict: a rule that stopped compiling fails safe (the outcome is at least review). The cache
    key includes the publication time: a database that reuses ids (SQLite after a delete) can
    never serve another rule set's rules."""
    if rule_set.status == RuleSet.Status.DRAFT:
        return compile_ruleset(engine_rule_set(rule_set), DEFAULT_SCHEMA, strict=False)
    key = (rule_set.pk, rule_set.published_at)
    compiled = _compiled_rule_sets.get(key)
    if compiled is None:
        compiled = compile_ruleset(engine_rule_set(rule_set), DEFAULT_SCHEMA, strict=False)
        _remember(_compiled_rule_sets, key, compiled)
    return compiled


def _rules(
    sub: Submission, features: dict[str, Any], as_of: dt.date
) -> tuple[StepRecord, RuleSet | None]:
    timer = _Timer()
    rule_set = published_rule_set_in_line(sub.line_ids())
    if rule_set is None:
        return StepRecord(RULES, "skipped", [], {"ruleset": None}, timer.us()), None
    result = compiled_rule_set(rule_set).evaluate(features, as_of=as_of)
    details = result.to_dict()
    details["ruleset"] = {"id": rule_set.pk, "version": rule_set.version}
    step = StepRecord(RULES, result.action, list(result.reason_codes), details, timer.us())
    return step, rule_set


# --- C5: scorecard --------------------------------------------------------------------------------
def scorecard_for(model_id: int, fingerprint: str | None = None) -> Scorecard:
    """The compiled scorecard of a stored model, cached by its artefact's fingerprint (an
    artefact never changes; the fingerprint identifies it whatever the row id)."""
    if fingerprint is None:
        fingerprint = (
            ScorecardModel.objects.filter(pk=model_id)
            .values_list("artefact__fingerprint", flat=True)
            .first()
        )
    card = _scorecards.get(fingerprint) if isinstance(fingerprint, str) else None
    if card is None:
        artefact = ScorecardModel.objects.values_list("artefact", flat=True).get(pk=model_id)
        card = compile_artefact(artefact)
        _remember(_scorecards, card.fingerprint, card)
    return card


def scoring_attributes(
    attributes: Mapping[str, Any], features: Mapping[str, Any]
) -> dict[str, Any]:
    """The submitted characteristics plus those derived from the application when left out
    (age from the ID number, duration from the term)."""
    out = dict(attributes)
    for name, feature in DERIVED_ATTRIBUTES.items():
        if out.get(name) in (None, "") and features.get(feature) is not None:
            out[name] = features[feature]
    return out


def _score_with(card: Scorecard, attributes: Mapping[str, Any]):
    complete = {name: attributes.get(name) for name in card.names}
    missing = [name for name in card.names if complete[name] in (None, "")]
    return card.score(complete), missing


def _scorecard(
    attributes: dict[str, Any], models: dict[str, tuple[int, str]] | None
) -> tuple[StepRecord, dict[str, Any]]:
    timer = _Timer()
    if models is None:
        models = active_scorecards()
    out: dict[str, Any] = {}
    champion_id, champion_fp = models.get(ScorecardModel.Status.CHAMPION, (None, None))
    details: dict[str, Any] = {"champion": None, "challenger": None}
    if champion_id is None:
        step = StepRecord(SCORECARD, "skipped", ["NO_SCORECARD"], details, 0)
    else:
        try:
            card = scorecard_for(champion_id, champion_fp)
            result, missing = _score_with(card, attributes)
        except ScorecardError as exc:
            details["champion"] = {"id": champion_id, "error": exc.message}
            step = StepRecord(SCORECARD, "error", ["SCORECARD_ERROR"], details, 0)
            out["scorecard_id"] = champion_id
        else:
            out.update(
                scorecard_id=champion_id,
                scorecard_label=result.model,
                score=result.score,
                band=result.band,
            )
            details["champion"] = {
                "id": champion_id,
                "model": result.model,
                "score": result.score,
                "band": result.band,
                "points": result.points,
                "bins": result.bins,
                "reason_codes": [r.as_dict() for r in result.reason_codes],
                "probability_bad": round(result.probability_bad, 6),
                "missing": missing,
            }
            reasons = []
            if result.band != "approve":
                reasons.append(f"SCORE_{result.band.upper()}")
                reasons.extend(f"SCORE_REASON:{r.characteristic}" for r in result.reason_codes)
            step = StepRecord(SCORECARD, result.band, reasons, details, 0)
    challenger_id, challenger_fp = models.get(ScorecardModel.Status.CHALLENGER, (None, None))
    if challenger_id is not None:
        # Shadow scoring: recorded, never used for the decision.
        try:
            shadow, _missing = _score_with(scorecard_for(challenger_id, challenger_fp), attributes)
        except ScorecardError as exc:
            details["challenger"] = {"id": challenger_id, "error": exc.message}
        else:
            out["challenger_score"] = shadow.score
            details["challenger"] = {
                "id": challenger_id,
                "model": shadow.model,
                "score": shadow.score,
                "band": shadow.band,
            }
    step.duration_us = timer.us()
    return step, out


# --- C6: quota ------------------------------------------------------------------------------------
def _quota(sub: Submission, band: str, features: Mapping[str, Any]) -> StepRecord:
    timer = _Timer()
    debt = features.get("applicant.monthly_debt")
    result = quotas.compute_quota(
        quotas.product_quota_terms(sub.product),
        band=band,
        car_price=sub.car_price,
        amount=sub.amount,
        term_months=sub.term_months,
        monthly_income=sub.monthly_income,
        monthly_debt=Decimal(str(debt)) if isinstance(debt, int | float) else Decimal(0),
    )
    return StepRecord(
        QUOTA, result.outcome, list(result.reason_codes), result.as_dict(), timer.us()
    )


# --- The whole ------------------------------------------------------------------------------------
def application_features(sub: Submission) -> dict[str, Any]:
    """The application.* and dealer.* features, plus the caller's checks."""
    price = sub.car_price
    payment = quotas.instalment(sub.amount, sub.product.annual_rate, sub.term_months)
    features: dict[str, Any] = {
        "application.date": _local_date(sub.at).isoformat(),
        "application.amount": _json_number(sub.amount),
        "application.term_months": sub.term_months,
        "application.monthly_payment": _json_number(payment),
        "application.down_payment_ratio": _json_number(
            (sub.down_payment / price).quantize(Decimal("0.0001")) if price else None
        ),
        "application.vehicle_price": _json_number(price),
        "application.vehicle_condition": "used" if sub.used_car else "new",
    }
    if not sub.used_car:
        features["application.vehicle_age_months"] = 0
    if sub.plate:
        features["application.new_energy"] = is_new_energy_plate(sub.plate)
    if sub.dealer is not None:
        features["dealer.code"] = sub.dealer.code
        features["dealer.rating"] = sub.dealer.rating or None
        bad_rate = (sub.dealer.rating_details or {}).get("bad_rate")
        features["dealer.overdue_rate"] = None if bad_rate is None else float(bad_rate)
    for name, value in sub.checks.items():
        features[name] = _json_number(value) if isinstance(value, Decimal) else value
    return features


def decide(sub: Submission) -> Decision:
    """Run every step over one application and combine them (see the module docstring)."""
    started = time.perf_counter_ns()
    features = application_features(sub)
    identity = _identity(sub, features)
    lists = _lists(sub, features)
    links_step, link_result, keys = _links(sub, features)
    rules, rule_set = _rules(sub, features, _local_date(sub.at))
    attributes = scoring_attributes(sub.attributes, features)
    scorecard, scored = _scorecard(attributes, sub.scorecards)
    steps = [identity, lists, links_step, rules, scorecard]

    reasons: list[str] = []
    if identity.outcome == "reject" or lists.outcome == "reject" or rules.outcome == "reject":
        status, by = REJECTED, "hard_stop"
        for step in (identity, lists, rules):
            if step.outcome == "reject":
                reasons.extend(step.reason_codes)
    elif rules.outcome == "review":
        status, by = REVIEW, RULES
        reasons.extend(rules.reason_codes)
    elif lists.outcome == "fast_track" or rules.outcome == "fast_track":
        status, by = APPROVED, "fast_track"
        reasons.extend(lists.reason_codes)
        if rules.outcome == "fast_track":
            reasons.extend(rules.reason_codes)
    elif scorecard.outcome in ("skipped", "error"):
        status, by = REVIEW, SCORECARD
        reasons.extend(scorecard.reason_codes)
    else:
        status, by = (
            {"reject": REJECTED, "review": REVIEW}.get(scorecard.outcome, APPROVED),
            SCORECARD,
        )
        reasons.extend(scorecard.reason_codes)
    if status != REJECTED and rules.outcome == "flag":
        reasons.extend(rules.reason_codes)

    quota: dict[str, Any] = {}
    if status in (APPROVED, REVIEW):
        quota_step = _quota(sub, "approve" if status == APPROVED else "review", features)
        steps.append(quota_step)
        quota = quota_step.details
        reasons.extend(quota_step.reason_codes)
        if quota_step.outcome == quotas.INSUFFICIENT:
            status, by = REJECTED, QUOTA
    else:
        steps.append(StepRecord(QUOTA, "skipped", [], {}, 0))

    reasons = list(dict.fromkeys(reasons))
    duration_ms = (time.perf_counter_ns() - started) / 1e6
    steps.append(
        StepRecord(
            DECISION,
            status,
            reasons,
            {"decided_by": by, "steps_ms": round(duration_ms, 3)},
            int(duration_ms * 1000),
        )
    )
    return Decision(
        status=status,
        reasons=reasons,
        steps=steps,
        features=features,
        attributes=attributes,
        score=scored.get("score"),
        band=scored.get("band", ""),
        quota=quota,
        rule_set=rule_set,
        scorecard_id=scored.get("scorecard_id"),
        scorecard_label=scored.get("scorecard_label", ""),
        challenger_score=scored.get("challenger_score"),
        links=link_result,
        link_keys=keys,
        duration_ms=duration_ms,
    )
