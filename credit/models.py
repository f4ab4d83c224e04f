"""Credit evaluation (FEATURES.md C1–C8, C11): applicants, applications and their decisions with
every step recorded, black/white lists, rule sets (versioned, immutable once published),
scorecard models (draft / champion / challenger / retired), products (quota), dealers, loans.

Everything belongs to a lender (`customer`) and is visible to its subtree (accounts.selectors).
"""

from __future__ import annotations

from decimal import Decimal

from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _

from accounts.models import Customer
from carloan.fields import user_reference
from carloan.validators import validate_id_number, validate_mobile, validate_plate, validate_vin

_MONEY = {"max_digits": 14, "decimal_places": 2, "validators": [MinValueValidator(0)]}
_RATIO = {
    "max_digits": 5,
    "decimal_places": 4,
    "validators": [MinValueValidator(0), MaxValueValidator(1)],
}


class Dealer(models.Model):
    """A car dealer (channel) that brings applications (C11)."""

    class Status(models.TextChoices):
        ADMITTED = "admitted", _("admitted")
        SUSPENDED = "suspended", _("suspended")
        REJECTED = "rejected", _("not admitted")

    class Rating(models.TextChoices):
        A = "A", "A"
        B = "B", "B"
        C = "C", "C"
        D = "D", "D"

    customer = models.ForeignKey(
        Customer, verbose_name=_("lender"), on_delete=models.PROTECT, related_name="dealers"
    )
    code = models.CharField(_("code"), max_length=30)
    name = models.CharField(_("name"), max_length=200)
    years_in_business = models.PositiveSmallIntegerField(_("years in business"), default=0)
    registered_capital = models.DecimalField(_("registered capital (CNY)"), default=0, **_MONEY)
    staff = models.PositiveIntegerField(_("staff"), default=0)
    monthly_sales = models.PositiveIntegerField(_("cars sold per month"), default=0)
    status = models.CharField(
        _("status"), max_length=20, choices=Status.choices, default=Status.ADMITTED
    )
    rating = models.CharField(_("rating"), max_length=1, choices=Rating.choices, blank=True)
    rating_details = models.JSONField(_("rating details"), default=dict, blank=True)
    rated_at = models.DateTimeField(_("rated at"), null=True, blank=True)

    class Cooperation(models.TextChoices):
        PROFIT_SHARE = "profit_share", _("profit share")
        PAYMENT_TERMS = "payment_terms", _("payment terms")
        DEPOSIT = "deposit", _("deposit")
        GUARANTEE = "guarantee", _("dealer guarantee")

    # Follows the rating (credit.dealers.COOPERATION_BY_RATING); set by dealer_rate().
    cooperation = models.CharField(
        _("cooperation mode"), max_length=20, choices=Cooperation.choices, blank=True
    )

    class Meta:
        verbose_name = _("dealer")
        verbose_name_plural = _("dealers")
        ordering = ["name"]
        constraints = [
            models.UniqueConstraint(fields=["customer", "code"], name="dealer_unique_code")
        ]

    def __str__(self) -> str:
        return self.name


class Product(models.Model):
    """A loan product: limits and the quota parameters per risk band (C6)."""

    customer = models.ForeignKey(
        Customer, verbose_name=_("lender"), on_delete=models.PROTECT, related_name="products"
    )
    code = models.CharField(_("code"), max_length=30)
    name = models.CharField(_("name"), max_length=200)
    min_amount = models.DecimalField(_("minimum amount"), default=Decimal("10000"), **_MONEY)
    max_amount = models.DecimalField(_("maximum amount"), default=Decimal("500000"), **_MONEY)
    terms = models.JSONField(_("terms (months)"), default=list, help_text=_("e.g. [12, 24, 36]"))
    min_down_payment_ratio = models.DecimalField(
        _("minimum down payment ratio"), default=Decimal("0.2"), **_RATIO
    )
    max_debt_to_income = models.DecimalField(
        _("maximum instalment / income"), default=Decimal("0.5"), **_RATIO
    )
    annual_rate = models.DecimalField(_("base annual rate"), default=Decimal("0.08"), **_RATIO)
    # {"approve": {"limit_ratio": 0.9, "down_payment_ratio": 0.2, "rate_add": 0.0}, "review": ...}
    band_terms = models.JSONField(_("terms per risk band"), default=dict, blank=True)
    active = models.BooleanField(_("active"), default=True)

    class Meta:
        verbose_name = _("loan product")
        verbose_name_plural = _("loan products")
        ordering = ["name"]
        constraints = [
            models.UniqueConstraint(fields=["customer", "code"], name="product_unique_code")
        ]

    def __str__(self) -> str:
        return self.name

    def clean(self) -> None:
        low, high = self.min_amount, self.max_amount
        if low is not None and high is not None and low > high:
            raise ValidationError(_("The minimum amount is above the maximum."))
        if not isinstance(self.terms, list) or not all(
            isinstance(t, int) and 1 <= t <= 120 for t in self.terms
        ):
            raise ValidationError({"terms": _("Terms must be a list of months from 1 to 120.")})


class Applicant(models.Model):
    """The person behind one application (a snapshot: a second application stores another).
    Birth date and sex are derived from the ID number by the service, never entered."""

    class Sex(models.TextChoices):
        MALE = "M", _("male")
        FEMALE = "F", _("female")

    customer = models.ForeignKey(
        Customer, verbose_name=_("lender"), on_delete=models.PROTECT, related_name="applicants"
    )
    name = models.CharField(_("name"), max_length=50)
    id_number = models.CharField(
        _("ID number"), max_length=18, validators=[validate_id_number], db_index=True
    )
    birth_date = models.DateField(_("birth date"), null=True, blank=True, editable=False)
    sex = models.CharField(_("sex"), max_length=1, choices=Sex.choices, blank=True, editable=False)
    phone = models.CharField(_("phone"), max_length=20, validators=[validate_mobile])
    address = models.CharField(_("address"), max_length=300, blank=True)
    employer = models.CharField(_("employer"), max_length=200, blank=True)
    monthly_income = models.DecimalField(_("monthly income (CNY)"), default=0, **_MONEY)
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)

    class Meta:
        verbose_name = _("applicant")
        verbose_name_plural = _("applicants")
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.name} {self.id_number[:6]}********{self.id_number[-4:]}"


class RuleSet(models.Model):
    """A version of a lender's credit rules. Drafts are edited; a published version never
    changes (decisions record which one they used); publishing retires the previous one."""

    class Status(models.TextChoices):
        DRAFT = "draft", _("draft")
        PUBLISHED = "published", _("published")
        RETIRED = "retired", _("retired")

    customer = models.ForeignKey(
        Customer, verbose_name=_("lender"), on_delete=models.PROTECT, related_name="rule_sets"
    )
    version = models.PositiveIntegerField(_("version"))
    name = models.CharField(_("name"), max_length=200, blank=True)
    status = models.CharField(_("status"), max_length=20, choices=Status.choices, default="draft")
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)
    published_at = models.DateTimeField(_("published at"), null=True, blank=True)
    published_by = user_reference(_("published by"))

    class Meta:
        verbose_name = _("rule set")
        verbose_name_plural = _("rule sets")
        ordering = ["customer", "-version"]
        permissions = [("publish_ruleset", _("Can publish rule sets"))]
        constraints = [
            models.UniqueConstraint(fields=["customer", "version"], name="ruleset_unique_version"),
            models.UniqueConstraint(
                fields=["customer"],
                condition=Q(status="published"),
                name="ruleset_one_published_per_customer",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.customer} v{self.version} ({self.get_status_display()})"


class CreditRule(models.Model):
    class Action(models.TextChoices):
        REJECT = "reject", _("reject")
        REVIEW = "review", _("send to review")
        FLAG = "flag", _("flag only")
        FAST_TRACK = "fast_track", _("fast-track approval")

    rule_set = models.ForeignKey(
        RuleSet, verbose_name=_("rule set"), on_delete=models.CASCADE, related_name="rules"
    )
    code = models.CharField(_("code"), max_length=40)
    name = models.CharField(_("name"), max_length=200)
    expression = models.TextField(_("condition"), help_text=_("e.g. applicant.age < 18"))
    action = models.CharField(_("action"), max_length=20, choices=Action.choices)
    reason_code = models.CharField(_("reason code"), max_length=40)
    priority = models.PositiveIntegerField(_("priority"), default=100)
    enabled = models.BooleanField(_("enabled"), default=True)

    class Meta:
        verbose_name = _("credit rule")
        verbose_name_plural = _("credit rules")
        ordering = ["priority", "code"]
        constraints = [
            models.UniqueConstraint(fields=["rule_set", "code"], name="creditrule_unique_code")
        ]

    def __str__(self) -> str:
        return f"{self.code}: {self.name}"


class ScorecardModel(models.Model):
    class Status(models.TextChoices):
        DRAFT = "draft", _("draft")
        CHAMPION = "champion", _("champion")
        CHALLENGER = "challenger", _("challenger")
        RETIRED = "retired", _("retired")

    name = models.CharField(_("name"), max_length=100)
    version = models.CharField(_("version"), max_length=30)
    status = models.CharField(_("status"), max_length=20, choices=Status.choices, default="draft")
    artefact = models.JSONField(_("artefact"))
    metrics = models.JSONField(_("training metrics"), default=dict, blank=True)
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)

    class Meta:
        verbose_name = _("scorecard model")
        verbose_name_plural = _("scorecard models")
        ordering = ["-created_at"]
        permissions = [("promote_scorecardmodel", _("Can change a scorecard's status"))]
        constraints = [
            models.UniqueConstraint(fields=["name", "version"], name="scorecard_unique_version"),
            models.UniqueConstraint(
                fields=["status"], condition=Q(status="champion"), name="scorecard_one_champion"
            ),
            models.UniqueConstraint(
                fields=["status"],
                condition=Q(status="challenger"),
                name="scorecard_one_challenger",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.name} {self.version} ({self.get_status_display()})"


class Application(models.Model):
    class Status(models.TextChoices):
        SUBMITTED = "submitted", _("submitted")
        APPROVED = "approved", _("approved")
        REVIEW = "review", _("in review")
        REJECTED = "rejected", _("rejected")
        LOAN_CREATED = "loan_created", _("loan created")

    TRANSITIONS = {
        Status.SUBMITTED: {Status.APPROVED, Status.REVIEW, Status.REJECTED},
        Status.REVIEW: {Status.APPROVED, Status.REJECTED},
        Status.APPROVED: {Status.LOAN_CREATED},
        Status.REJECTED: set(),
        Status.LOAN_CREATED: set(),
    }

    class Outcome(models.TextChoices):
        UNKNOWN = "unknown", _("unknown")
        GOOD = "good", _("good")
        BAD = "bad", _("bad")

    customer = models.ForeignKey(
        Customer, verbose_name=_("lender"), on_delete=models.PROTECT, related_name="applications"
    )
    applicant = models.ForeignKey(
        Applicant,
        verbose_name=_("applicant"),
        on_delete=models.PROTECT,
        related_name="applications",
    )
    dealer = models.ForeignKey(
        Dealer,
        verbose_name=_("dealer"),
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="applications",
    )
    product = models.ForeignKey(
        Product, verbose_name=_("product"), on_delete=models.PROTECT, related_name="applications"
    )
    used_car = models.BooleanField(_("used car"), default=False)
    car_price = models.DecimalField(_("car price"), **_MONEY)
    vin = models.CharField(_("VIN"), max_length=17, blank=True, validators=[validate_vin])
    plate = models.CharField(_("plate"), max_length=10, blank=True, validators=[validate_plate])
    amount = models.DecimalField(_("amount applied for"), **_MONEY)
    term_months = models.PositiveSmallIntegerField(_("term (months)"))
    down_payment = models.DecimalField(_("down payment"), **_MONEY)
    device_fingerprint = models.CharField(_("device fingerprint"), max_length=128, blank=True)
    ip_address = models.GenericIPAddressField(_("IP address"), null=True, blank=True)
    bank_card = models.CharField(_("bank card"), max_length=30, blank=True)
    # Characteristics of the scorecard (the German credit attributes), as submitted.
    attributes = models.JSONField(_("scorecard attributes"), default=dict, blank=True)

    status = models.CharField(
        _("status"), max_length=20, choices=Status.choices, default="submitted", db_index=True
    )
    score = models.PositiveSmallIntegerField(_("score"), null=True, blank=True)
    band = models.CharField(_("band"), max_length=10, blank=True)
    reasons = models.JSONField(_("reason codes"), default=list, blank=True)
    quota = models.JSONField(_("quota"), default=dict, blank=True)
    features = models.JSONField(_("features"), default=dict, blank=True)
    rule_set = models.ForeignKey(
        RuleSet,
        verbose_name=_("rule set"),
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
    )
    scorecard = models.ForeignKey(
        ScorecardModel,
        verbose_name=_("scorecard"),
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
    )
    challenger_score = models.PositiveSmallIntegerField(
        _("challenger score"), null=True, blank=True
    )
    link_group = models.CharField(_("fraud-link group"), max_length=40, blank=True, db_index=True)
    decided_at = models.DateTimeField(_("decided at"), null=True, blank=True)
    duration_ms = models.FloatField(_("decision time (ms)"), null=True, blank=True)
    reviewed_by = user_reference(_("reviewed by"))
    review_reason = models.TextField(_("review reason"), blank=True)
    outcome = models.CharField(
        _("outcome"), max_length=10, choices=Outcome.choices, default="unknown"
    )
    created_at = models.DateTimeField(_("submitted at"), db_index=True)

    class Meta:
        verbose_name = _("credit application")
        verbose_name_plural = _("credit applications")
        ordering = ["-created_at", "-id"]
        permissions = [("review_application", _("Can decide applications in review"))]
        indexes = [models.Index(fields=["customer", "-created_at"], name="application_cust_time")]

    def __str__(self) -> str:
        return f"#{self.pk} {self.applicant}"

    def can_transition(self, to: str) -> bool:
        return to in self.TRANSITIONS.get(self.status, set())


class DecisionStep(models.Model):
    """One step of an application's decision (C7): what went in, what came out, why, how long."""

    application = models.ForeignKey(
        Application, verbose_name=_("application"), on_delete=models.CASCADE, related_name="steps"
    )
    order = models.PositiveSmallIntegerField(_("order"))
    step = models.CharField(_("step"), max_length=20)
    outcome = models.CharField(_("outcome"), max_length=20)
    reason_codes = models.JSONField(_("reason codes"), default=list, blank=True)
    details = models.JSONField(_("details"), default=dict, blank=True)
    duration_us = models.PositiveIntegerField(_("duration (µs)"), default=0)

    class Meta:
        verbose_name = _("decision step")
        verbose_name_plural = _("decision steps")
        ordering = ["application", "order"]

    def __str__(self) -> str:
        return f"{self.step}: {self.outcome}"


class ListEntry(models.Model):
    """A black- or white-list entry (C2), platform-wide (`customer` empty) or a lender's own."""

    class Kind(models.TextChoices):
        BLACK = "black", _("blacklist")
        WHITE = "white", _("whitelist")

    class Field(models.TextChoices):
        ID_NUMBER = "id_number", _("ID number")
        PHONE = "phone", _("phone")
        DEVICE = "device", _("device fingerprint")
        VIN = "vin", _("VIN")
        PLATE = "plate", _("plate")
        BANK_CARD = "bank_card", _("bank card")

    customer = models.ForeignKey(
        Customer,
        verbose_name=_("lender"),
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="list_entries",
        help_text=_("Empty: applies to every lender."),
    )
    kind = models.CharField(_("list"), max_length=10, choices=Kind.choices)
    field = models.CharField(_("field"), max_length=20, choices=Field.choices)
    value = models.CharField(_("value"), max_length=128)
    source = models.CharField(_("source"), max_length=100, blank=True)
    reason = models.CharField(_("reason"), max_length=200, blank=True)
    expires_at = models.DateTimeField(_("expires"), null=True, blank=True)
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)

    class Meta:
        verbose_name = _("list entry")
        verbose_name_plural = _("list entries")
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["field", "value"], name="listentry_field_value")]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} {self.get_field_display()} {self.value}"


class Loan(models.Model):
    application = models.OneToOneField(
        Application, verbose_name=_("application"), on_delete=models.PROTECT, related_name="loan"
    )
    principal = models.DecimalField(_("principal"), **_MONEY)
    term_months = models.PositiveSmallIntegerField(_("term (months)"))
    annual_rate = models.DecimalField(_("annual rate"), **_RATIO)
    monthly_payment = models.DecimalField(_("monthly payment"), **_MONEY)
    created_at = models.DateTimeField(_("created at"))
    created_by = user_reference(_("created by"))

    class Meta:
        verbose_name = _("loan")
        verbose_name_plural = _("loans")

    def __str__(self) -> str:
        return f"{self.application_id}: {self.principal}"


class LinkKey(models.Model):
    """One normalised value (phone, device, address, bank card) an application can be linked by
    (C3), written with the application. The decision finds earlier applications sharing a value
    through the (lender, kind, value, at) index instead of loading the history."""

    application = models.ForeignKey(
        Application, verbose_name=_("application"), on_delete=models.CASCADE, related_name="+"
    )
    # The lender (the customer under the platform root) whose applications link together.
    lender = models.ForeignKey(
        Customer, verbose_name=_("lender"), on_delete=models.CASCADE, related_name="+"
    )
    kind = models.CharField(_("kind"), max_length=12)
    value = models.CharField(_("value"), max_length=128)
    at = models.DateTimeField(_("submitted at"))

    class Meta:
        verbose_name = _("link key")
        verbose_name_plural = _("link keys")
        indexes = [
            models.Index(fields=["lender", "kind", "value", "at"], name="linkkey_lookup"),
            models.Index(fields=["application"], name="linkkey_application"),
        ]

    def __str__(self) -> str:
        return f"{self.kind}:{self.value}"


class MonitoringAlert(models.Model):
    """A population stability alert (C8): in `month`, the PSI of the score or of one
    characteristic against the training baseline reached the watch or rebuild band."""

    scorecard = models.ForeignKey(
        ScorecardModel,
        verbose_name=_("scorecard"),
        on_delete=models.CASCADE,
        related_name="alerts",
    )
    customer = models.ForeignKey(
        Customer,
        verbose_name=_("lender"),
        on_delete=models.CASCADE,
        related_name="monitoring_alerts",
    )
    month = models.CharField(_("month"), max_length=7)  # "2026-11"
    metric = models.CharField(_("measure"), max_length=100)  # "score" or a characteristic
    psi = models.FloatField(_("PSI"))
    band = models.CharField(_("band"), max_length=10)
    applications = models.PositiveIntegerField(_("applications"))
    created_at = models.DateTimeField(_("raised at"))

    class Meta:
        verbose_name = _("monitoring alert")
        verbose_name_plural = _("monitoring alerts")
        ordering = ["-month", "-psi"]
        constraints = [
            models.UniqueConstraint(
                fields=["scorecard", "customer", "month", "metric"], name="monitoringalert_unique"
            )
        ]

    def __str__(self) -> str:
        return f"{self.month} {self.metric}: PSI {self.psi:.3f} ({self.band})"
