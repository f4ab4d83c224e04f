"""Applications: submit (the automatic decision), the manual decision of a review, the outcome
known later, and the loan of an approved application."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from decimal import Decimal
from typing import Any

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from accounts.models import Customer
from accounts.selectors import customer_is_visible_to
from carloan.errors import ApplicationError, InvalidTransition
from carloan.identifiers import (
    normalize_id_number,
    normalize_phone,
    normalize_plate,
    normalize_vin,
    parse_id_number,
)
from carloan.services import model_save
from credit import pipeline
from credit.models import Applicant, Application, Dealer, DecisionStep, LinkKey, Loan, Product
from credit.rules import DEFAULT_SCHEMA
from credit.rules.values import coerce_flat, flatten
from credit.scorecard import ScorecardError
from credit.selectors import customer_line, in_subtree_of

APPLICANT_FIELDS = ("name", "id_number", "phone", "address", "employer", "monthly_income")
_FK_FIELDS = ["customer", "applicant", "product", "dealer", "rule_set", "scorecard", "reviewed_by"]
MAX_ATTRIBUTES = 100


def _actor(by):
    return by if by is not None and getattr(by, "is_authenticated", False) else None


def _not_found() -> ApplicationError:
    return ApplicationError(_("No such application."), code="not_found")


def _customer_and_line(by, customer_id: int) -> tuple[Customer, dict[int, int]]:
    """The customer with fresh tree columns, when `by` may see it (else not_found), and its line:
    id -> level of the customer and its ancestors (whose products, dealers and rules it uses).
    One query: this runs on every decision."""
    line = customer_line(customer_id)
    customer = line[-1] if line else None
    if (
        customer is None
        or customer.pk != customer_id
        or (by is not None and not in_subtree_of(by, customer))
    ):
        raise ApplicationError(
            _("That customer is outside your part of the tree."), code="not_found"
        )
    return customer, {c.pk: c.level for c in line}


def _lender(customer: Customer, line: dict[int, int]) -> Customer:
    """The lender (level 1) of the line, or the customer itself at the root or level 1."""
    if customer.level <= 1:
        return customer
    lender_id = next(pk for pk, level in line.items() if level == 1)
    return Customer(pk=lender_id, level=1)


def transition(application: Application, to: str) -> None:
    """Move along Application.TRANSITIONS or raise InvalidTransition (services only)."""
    if not application.can_transition(to):
        raise InvalidTransition(
            _("An application that is %(status)s cannot become %(to)s.")
            % {
                "status": application.get_status_display(),
                "to": Application.Status(to).label,
            },
            extra={"status": application.status, "to": to},
        )
    application.status = to


# --- Submit -----------------------------------------------------------------------------------
def _check_attributes(attributes: Any) -> dict[str, Any]:
    if attributes in (None, ""):
        return {}
    if not isinstance(attributes, Mapping):
        raise ValidationError({"attributes": _("The scorecard attributes must be an object.")})
    if len(attributes) > MAX_ATTRIBUTES:
        raise ValidationError(
            {"attributes": _("At most %d scorecard attributes.") % MAX_ATTRIBUTES}
        )
    out = {}
    for key, value in attributes.items():
        if not isinstance(key, str) or not key:
            raise ValidationError({"attributes": _("Attribute names must be text.")})
        if value is not None and not isinstance(value, str | int | float | Decimal):
            raise ValidationError(
                {"attributes": _("%(name)s: a number, a text or null.") % {"name": key}}
            )
        out[key] = float(value) if isinstance(value, Decimal) else value
    return out


def _check_checks(checks: Any) -> dict[str, Any]:
    if checks in (None, ""):
        return {}
    if not isinstance(checks, Mapping):
        raise ValidationError({"checks": _("The checks must be an object.")})
    flat = flatten(checks)
    unknown = sorted(set(flat) - pipeline.CHECK_FIELDS)
    if unknown:
        raise ValidationError(
            {
                "checks": _("Unknown check %(name)s; use one of: %(known)s")
                % {"name": unknown[0], "known": ", ".join(sorted(pipeline.CHECK_FIELDS))}
            }
        )
    _values, problems = coerce_flat(DEFAULT_SCHEMA, flat, frozenset(flat))
    if problems:
        raise ValidationError({"checks": [str(p) for p in problems]})
    return {k: v for k, v in flat.items() if v is not None}


def _check_against_scorecards(
    attributes: dict[str, Any], features_hint: dict[str, Any]
) -> dict[str, tuple[int, str]]:
    """Values the champion or challenger cannot bin are refused before anything is stored.
    Returns the active models for the decision (read once)."""
    models = pipeline.active_scorecards()
    complete = pipeline.scoring_attributes(attributes, features_hint)
    for model_id, fingerprint in models.values():
        try:
            card = pipeline.scorecard_for(model_id, fingerprint)
            card.bin_indices({name: complete.get(name) for name in card.names})
        except ScorecardError as exc:
            raise ValidationError({"attributes": exc.render(_)}) from exc
    return models


def _normalised_applicant(data: Mapping[str, Any]) -> dict[str, Any]:
    unknown = set(data) - set(APPLICANT_FIELDS)
    if unknown:
        raise ValidationError(
            {"applicant": _("Unknown applicant fields: %s") % ", ".join(sorted(unknown))}
        )
    out = {k: data.get(k) for k in APPLICANT_FIELDS if data.get(k) is not None}
    out["id_number"] = normalize_id_number(out.get("id_number", ""))
    out["phone"] = normalize_phone(out.get("phone", ""))
    return out


def application_submit(
    *,
    customer: Customer,
    product: Product,
    applicant: Mapping[str, Any],
    car_price: Decimal,
    amount: Decimal,
    term_months: int,
    down_payment: Decimal,
    dealer: Dealer | None = None,
    used_car: bool = False,
    vin: str = "",
    plate: str = "",
    device_fingerprint: str = "",
    ip_address: str | None = None,
    bank_card: str = "",
    attributes: Mapping[str, Any] | None = None,
    checks: Mapping[str, Any] | None = None,
    by=None,
    at: dt.datetime | None = None,
) -> Application:
    """Validate an application, decide it (credit.pipeline.decide) and store it with its steps.

    Refused with ValidationError (nothing stored): fields that fail their validators (ID number
    GB 11643, mobile number, VIN, plate), a product or dealer that is not the customer's or an
    ancestor's, an inactive product, a term the product does not offer, a loan larger than the
    price less the down payment, scorecard attributes the scorecards cannot read, unknown checks.
    `by` must see `customer` (else not_found). Returns the application with its decision:
    status approved / review / rejected, score, band, reasons, quota, steps."""
    customer, line = _customer_and_line(by, customer.pk)
    at = at or timezone.now()
    if timezone.is_naive(at):
        raise ValidationError({"at": _("The submission time must have a time zone.")})
    errors: dict[str, list] = {}

    applicant_data = _normalised_applicant(applicant)
    person = Applicant(customer=customer, **applicant_data)
    try:
        person.full_clean(exclude=["customer"])
    except ValidationError as exc:
        for key, messages in exc.message_dict.items():
            errors.setdefault(key, []).extend(messages)
    info = parse_id_number(person.id_number, today=timezone.localtime(at).date())
    if info is not None:  # else the ID number's error is already listed
        person.birth_date = info.birth_date
        person.sex = Applicant.Sex.MALE if info.sex == "male" else Applicant.Sex.FEMALE

    application = Application(
        customer=customer,
        product=product,
        dealer=dealer,
        used_car=used_car,
        car_price=car_price,
        vin=normalize_vin(vin) if vin else "",
        plate=normalize_plate(plate) if plate else "",
        amount=amount,
        term_months=term_months,
        down_payment=down_payment,
        device_fingerprint=(device_fingerprint or "").strip(),
        ip_address=ip_address or None,
        bank_card=(bank_card or "").strip(),
        created_at=at,
    )
    try:
        application.clean_fields(exclude=[*_FK_FIELDS, "applicant"])
    except ValidationError as exc:
        for key, messages in exc.message_dict.items():
            errors.setdefault(key, []).extend(messages)

    if not product.active:
        errors.setdefault("product", []).append(_("This product is not offered any more."))
    elif product.customer_id not in line:
        errors.setdefault("product", []).append(
            _("This product is not offered to %(customer)s.") % {"customer": customer.name}
        )
    if dealer is not None and dealer.customer_id not in line:
        errors.setdefault("dealer", []).append(
            _("This dealer does not work with %(customer)s.") % {"customer": customer.name}
        )
    if isinstance(term_months, int) and term_months not in (product.terms or []):
        errors.setdefault("term_months", []).append(
            _("The product offers terms of %(terms)s months.")
            % {"terms": ", ".join(str(t) for t in product.terms) or "-"}
        )
    if not errors:
        if car_price <= 0:
            errors.setdefault("car_price", []).append(_("The car price must be above zero."))
        elif down_payment >= car_price:
            errors.setdefault("down_payment", []).append(
                _("The down payment must be less than the car price.")
            )
        elif amount <= 0 or amount > car_price - down_payment:
            errors.setdefault("amount", []).append(
                _("The amount must be above zero and at most the price less the down payment.")
            )
    try:
        clean_attributes = _check_attributes(attributes)
        clean_checks = _check_checks(checks)
    except ValidationError as exc:
        for key, messages in exc.message_dict.items():
            errors.setdefault(key, []).extend(messages)
        clean_attributes, clean_checks = {}, {}
    if errors:
        raise ValidationError(errors)
    hint = {"application.term_months": term_months}
    scorecards = _check_against_scorecards(clean_attributes, hint)

    submission = pipeline.Submission(
        customer=customer,
        lender=_lender(customer, line),
        line=line,
        product=product,
        dealer=dealer,
        at=at,
        name=person.name,
        id_number=person.id_number,
        phone=person.phone,
        monthly_income=Decimal(person.monthly_income or 0),
        address=person.address,
        employer=person.employer,
        car_price=Decimal(car_price),
        amount=Decimal(amount),
        term_months=term_months,
        down_payment=Decimal(down_payment),
        used_car=used_car,
        vin=application.vin,
        plate=application.plate,
        device_fingerprint=application.device_fingerprint,
        ip_address=application.ip_address,
        bank_card=application.bank_card,
        attributes=clean_attributes,
        checks=clean_checks,
        scorecards=scorecards,
    )
    decision = pipeline.decide(submission)
    return _store(application, person, submission, decision, by=by)


@transaction.atomic
def _store(
    application: Application,
    person: Applicant,
    submission: pipeline.Submission,
    decision: pipeline.Decision,
    *,
    by,
) -> Application:
    actor = _actor(by)
    if actor is not None:
        person._history_user = actor
    person.save()
    application.applicant = person
    application.attributes = decision.attributes
    application.features = decision.features
    application.score = decision.score
    application.band = decision.band
    application.reasons = decision.reasons
    application.quota = decision.quota
    application.rule_set = decision.rule_set
    application.scorecard_id = decision.scorecard_id
    application.scorecard_label = decision.scorecard_label  # answered without reading the model
    application.challenger_score = decision.challenger_score
    application.decided_at = timezone.now()
    application.duration_ms = round(decision.duration_ms, 3)
    transition(application, decision.status)
    label = _link_label(decision)
    application.link_group = label
    application.save()
    # Kept on the object so the caller can answer with the steps without reading them back.
    application.stored_steps = DecisionStep.objects.bulk_create(
        DecisionStep(
            application=application,
            order=order,
            step=step.step,
            outcome=step.outcome,
            reason_codes=step.reason_codes,
            details=step.details,
            duration_us=step.duration_us,
        )
        for order, step in enumerate(decision.steps, start=1)
    )
    if decision.link_keys:
        LinkKey.objects.bulk_create(
            LinkKey(
                application=application,
                lender_id=submission.lender.pk,
                kind=kind,
                value=value,
                at=submission.at,
            )
            for kind, value in decision.link_keys
        )
    if label:
        members = [m.id for m in decision.links.members]
        Application.objects.filter(pk__in=members).exclude(link_group=label).update(
            link_group=label
        )
    return application


def _link_label(decision: pipeline.Decision) -> str:
    """The fraud-link group label: the label its oldest labelled member has, else one named
    after its oldest member. Members of groups this application joins take the same label."""
    links = decision.links
    if links is None or links.group_size < 2:
        return ""
    members = [m.id for m in links.members]
    existing = (
        Application.objects.filter(pk__in=members)
        .exclude(link_group="")
        .order_by("created_at", "id")
        .values_list("link_group", flat=True)
        .first()
    )
    return existing or f"G{links.members[0].id}"


# --- After the automatic decision --------------------------------------------------------------
def _locked(application: Application, by) -> Application:
    qs = Application.objects.select_for_update()
    row = qs.filter(pk=application.pk).first()
    if row is None or (by is not None and not customer_is_visible_to(by, row.customer_id)):
        raise _not_found()
    return row


def _add_step(application: Application, step: str, outcome: str, reasons, details) -> None:
    last = (
        DecisionStep.objects.filter(application=application)
        .order_by("-order")
        .values_list("order", flat=True)
        .first()
    )
    DecisionStep.objects.create(
        application=application,
        order=(last or 0) + 1,
        step=step,
        outcome=outcome,
        reason_codes=list(reasons),
        details=details,
    )


@transaction.atomic
def application_review_decide(
    *, application: Application, decision: str, reason: str, by
) -> Application:
    """The manual decision of an application in review: `decision` approve or reject, with the
    reviewer's reason (required). Anything but an application in review: InvalidTransition."""
    if decision not in ("approve", "reject"):
        raise ValidationError({"decision": _("Choose approve or reject.")})
    reason = (reason or "").strip()
    if not reason:
        raise ValidationError({"reason": _("Say why: the reason is kept with the decision.")})
    row = _locked(application, by)
    to = Application.Status.APPROVED if decision == "approve" else Application.Status.REJECTED
    transition(row, to)
    if to == Application.Status.APPROVED and not row.quota.get("approved_amount"):
        raise ApplicationError(_("This application has no quota: it cannot be approved."))
    row.reviewed_by = _actor(by)
    row.review_reason = reason
    model_save(
        row,
        by=by,
        update_fields=["status", "reviewed_by", "review_reason"],
        exclude_clean=_FK_FIELDS,
    )
    _add_step(
        row,
        "review",
        row.status,
        ["MANUAL_APPROVE" if decision == "approve" else "MANUAL_REJECT"],
        {"reviewer": getattr(_actor(by), "username", None), "reason": reason},
    )
    application.__dict__.update({k: getattr(row, k) for k in ("status", "review_reason")})
    application.reviewed_by_id = row.reviewed_by_id
    return row


@transaction.atomic
def application_outcome_set(*, application: Application, outcome: str, by=None) -> Application:
    """Record what became of a decided application (good / bad, e.g. defaulted or confirmed
    fraud): monitoring (KS, AUC), dealer ratings and fraud groups count it."""
    if outcome not in Application.Outcome.values:
        raise ValidationError({"outcome": _("Use good, bad or unknown.")})
    row = _locked(application, by)
    if row.status == Application.Status.SUBMITTED:
        raise InvalidTransition(_("An application must be decided before its outcome is known."))
    row.outcome = outcome
    model_save(row, by=by, update_fields=["outcome"], exclude_clean=_FK_FIELDS)
    application.outcome = outcome
    return row


@transaction.atomic
def loan_create(*, application: Application, by=None, at: dt.datetime | None = None) -> Loan:
    """The loan of an approved application, on the terms of its quota (approved amount, rate,
    instalment); the application becomes `loan_created`. Anything but approved:
    InvalidTransition."""
    row = _locked(application, by)
    transition(row, Application.Status.LOAN_CREATED)
    quota = row.quota or {}
    try:
        principal = Decimal(quota["approved_amount"])
        rate = Decimal(quota["annual_rate"])
        payment = Decimal(quota["monthly_payment"])
    except (KeyError, TypeError, ArithmeticError):
        raise ApplicationError(_("This application has no quota: no loan can be made.")) from None
    if principal <= 0:
        raise ApplicationError(_("This application has no quota: no loan can be made."))
    loan = Loan(
        application=row,
        principal=principal,
        term_months=row.term_months,
        annual_rate=rate,
        monthly_payment=payment,
        created_at=at or timezone.now(),
        created_by=_actor(by),
    )
    model_save(loan, by=by, exclude_clean=["application", "created_by"])
    model_save(row, by=by, update_fields=["status"], exclude_clean=_FK_FIELDS)
    application.status = row.status
    return loan
