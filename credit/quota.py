"""The quota (FEATURES.md C6, 额度): how much may be lent, with what down payment and at what rate,
from the risk band and the applicant's ability to repay. Pure Python (no Django): the pipeline
passes a product's terms in, `product_quota_terms(product)` reads them from a `Product`.

For a band (`approve` or `review`; a rejected application gets no quota) the product says
(`Product.band_terms`, the defaults below fill what it leaves out):

- `down_payment_ratio`: the least share of the car price paid down (never below the product's
  `min_down_payment_ratio`), so at most `price x (1 - ratio)` is financed;
- `rate_add`: added to the product's base annual rate (risk-based pricing);
- `limit_ratio`: the share of what the applicant can afford that is granted (a haircut for the
  riskier band).

Ability to repay: the instalment plus the applicant's other monthly debt may take at most
`max_debt_to_income` of the monthly income (50 % by default), so the largest instalment is
`income x max_dti - debt`, and the largest principal is the annuity's present value of that
instalment over the term at the band's rate.

    limit    = min(product maximum, price x (1 - down ratio), affordable principal x limit_ratio),
               rounded down to 100 yuan
    approved = min(amount applied for, limit)

Outcomes: `ok` (the amount applied for is granted), `reduced` (less is granted: reason code
`AMOUNT_REDUCED`), `insufficient` (the limit is below the product's minimum amount: reason code
`QUOTA_INSUFFICIENT`, and the application is rejected).

Money is Decimal yuan, rounded to the cent (instalments) or down to 100 yuan (limits); rates and
ratios are fractions (0.08 = 8 % a year).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import ROUND_DOWN, ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Any

BANDS = ("approve", "review")
DEFAULT_BAND_TERMS: dict[str, dict[str, Decimal]] = {
    "approve": {
        "limit_ratio": Decimal("1"),
        "down_payment_ratio": Decimal("0.2"),
        "rate_add": Decimal("0"),
    },
    "review": {
        "limit_ratio": Decimal("0.8"),
        "down_payment_ratio": Decimal("0.3"),
        "rate_add": Decimal("0.02"),
    },
}
TERM_KEYS = ("limit_ratio", "down_payment_ratio", "rate_add")

OK = "ok"
REDUCED = "reduced"
INSUFFICIENT = "insufficient"
REASON_REDUCED = "AMOUNT_REDUCED"
REASON_INSUFFICIENT = "QUOTA_INSUFFICIENT"

_CENT = Decimal("0.01")
_HUNDRED = Decimal("100")


class QuotaConfigError(ValueError):
    """A product's band terms that cannot be used (`message` names the bad entry)."""


def _ratio(value: Any, where: str, *, high: Decimal = Decimal("1")) -> Decimal:
    if isinstance(value, bool):
        raise QuotaConfigError(f"{where}: a number from 0 to {high} is needed, got {value!r}")
    try:
        number = Decimal(str(value))
    except (InvalidOperation, ValueError):
        raise QuotaConfigError(
            f"{where}: a number from 0 to {high} is needed, got {value!r}"
        ) from None
    if not number.is_finite() or not Decimal(0) <= number <= high:
        raise QuotaConfigError(f"{where}: a number from 0 to {high} is needed, got {value!r}")
    return number


def band_terms_from(config: Mapping[str, Any] | None) -> dict[str, dict[str, Decimal]]:
    """A product's `band_terms` merged over the defaults, checked. Unknown bands or keys and
    values out of range raise QuotaConfigError (the product form shows it)."""
    if config is None:
        config = {}
    if not isinstance(config, Mapping):
        raise QuotaConfigError('the terms per band must be an object such as {"approve": {...}}')
    unknown = set(config) - set(BANDS)
    if unknown:
        raise QuotaConfigError(
            f"unknown band {sorted(unknown)[0]!r}: use {', '.join(BANDS)} (rejections get no quota)"
        )
    out: dict[str, dict[str, Decimal]] = {}
    for band in BANDS:
        given = config.get(band) or {}
        if not isinstance(given, Mapping):
            raise QuotaConfigError(f"{band}: an object with {', '.join(TERM_KEYS)} is needed")
        bad = set(given) - set(TERM_KEYS)
        if bad:
            raise QuotaConfigError(
                f"{band}: unknown key {sorted(bad)[0]!r} (use {', '.join(TERM_KEYS)})"
            )
        terms = dict(DEFAULT_BAND_TERMS[band])
        for key, value in given.items():
            high = Decimal("0.5") if key == "rate_add" else Decimal("1")
            terms[key] = _ratio(value, f"{band}.{key}", high=high)
        out[band] = terms
    return out


@dataclass(frozen=True)
class QuotaTerms:
    min_amount: Decimal
    max_amount: Decimal
    min_down_payment_ratio: Decimal
    max_debt_to_income: Decimal
    annual_rate: Decimal
    band_terms: Mapping[str, Mapping[str, Decimal]] = field(
        default_factory=lambda: band_terms_from(None)
    )


def product_quota_terms(product: Any) -> QuotaTerms:
    """The quota terms of a `credit.models.Product` (duck-typed: any object with its fields)."""
    return QuotaTerms(
        min_amount=Decimal(product.min_amount),
        max_amount=Decimal(product.max_amount),
        min_down_payment_ratio=Decimal(product.min_down_payment_ratio),
        max_debt_to_income=Decimal(product.max_debt_to_income),
        annual_rate=Decimal(product.annual_rate),
        band_terms=band_terms_from(product.band_terms),
    )


def instalment(principal: Decimal, annual_rate: Decimal, months: int) -> Decimal:
    """The equal monthly instalment (等额本息) repaying `principal` over `months`, to the cent."""
    if months <= 0:
        raise ValueError("the term must be at least one month")
    principal = Decimal(principal)
    r = Decimal(annual_rate) / 12
    payment = principal / months if r == 0 else principal * r / (1 - (1 + r) ** -months)
    return payment.quantize(_CENT, rounding=ROUND_HALF_UP)


def principal_for(payment: Decimal, annual_rate: Decimal, months: int) -> Decimal:
    """The largest principal a monthly `payment` repays over `months` (present value)."""
    if months <= 0:
        raise ValueError("the term must be at least one month")
    payment = Decimal(payment)
    if payment <= 0:
        return Decimal(0)
    r = Decimal(annual_rate) / 12
    if r == 0:
        return payment * months
    return payment * (1 - (1 + r) ** -months) / r


def _down_to_100(value: Decimal) -> Decimal:
    if value <= 0:
        return Decimal(0)
    return (value / _HUNDRED).to_integral_value(rounding=ROUND_DOWN) * _HUNDRED


@dataclass(frozen=True)
class QuotaResult:
    band: str
    outcome: str  # ok | reduced | insufficient
    annual_rate: Decimal
    down_payment_ratio: Decimal  # the least share of the price paid down in this band
    requested_amount: Decimal
    limit: Decimal  # the most that may be lent
    approved_amount: Decimal  # min(requested, limit); 0 when insufficient
    down_payment: Decimal  # price - approved amount: what the buyer pays
    monthly_payment: Decimal  # instalment of the approved amount
    max_instalment: Decimal  # income x max dti - other debt
    debt_to_income: Decimal | None  # (instalment + other debt) / income; None without income
    limits: Mapping[str, Decimal]  # each bound of the limit, to show which one bit

    @property
    def reason_codes(self) -> tuple[str, ...]:
        if self.outcome == INSUFFICIENT:
            return (REASON_INSUFFICIENT,)
        if self.outcome == REDUCED:
            return (REASON_REDUCED,)
        return ()

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready: money as strings of yuan with cents, ratios as strings."""

        def text(value: Decimal | None) -> str | None:
            return None if value is None else str(value)

        def money(value: Decimal) -> str:
            return str(Decimal(value).quantize(_CENT))

        return {
            "band": self.band,
            "outcome": self.outcome,
            "annual_rate": text(self.annual_rate),
            "down_payment_ratio": text(self.down_payment_ratio),
            "requested_amount": money(self.requested_amount),
            "limit": money(self.limit),
            "approved_amount": money(self.approved_amount),
            "down_payment": money(self.down_payment),
            "monthly_payment": money(self.monthly_payment),
            "max_instalment": money(self.max_instalment),
            "debt_to_income": text(self.debt_to_income),
            "limits": {k: money(v) for k, v in self.limits.items()},
            "reason_codes": list(self.reason_codes),
        }


def compute_quota(
    terms: QuotaTerms,
    *,
    band: str,
    car_price: Decimal,
    amount: Decimal,
    term_months: int,
    monthly_income: Decimal,
    monthly_debt: Decimal = Decimal(0),
) -> QuotaResult:
    """The quota for an application in `band` (approve or review). See the module docstring."""
    if band not in terms.band_terms:
        raise ValueError(f"no quota for band {band!r}: use {', '.join(BANDS)}")
    if term_months <= 0:
        raise ValueError("the term must be at least one month")
    bt = terms.band_terms[band]
    price, amount = Decimal(car_price), Decimal(amount)
    income, debt = Decimal(monthly_income), max(Decimal(monthly_debt or 0), Decimal(0))
    rate = (terms.annual_rate + bt["rate_add"]).quantize(Decimal("0.0001"))
    down_ratio = max(terms.min_down_payment_ratio, bt["down_payment_ratio"])
    max_instalment = max(income * terms.max_debt_to_income - debt, Decimal(0)).quantize(_CENT)
    affordable = principal_for(max_instalment, rate, term_months) * bt["limit_ratio"]
    limits = {
        "product": terms.max_amount,
        "down_payment": (price * (1 - down_ratio)).quantize(_CENT),
        "affordability": affordable.quantize(_CENT, rounding=ROUND_DOWN),
    }
    limit = _down_to_100(min(limits.values()))
    if limit < terms.min_amount or limit <= 0:
        outcome, approved = INSUFFICIENT, Decimal(0)
    elif amount > limit:
        outcome, approved = REDUCED, limit
    else:
        outcome, approved = OK, amount
    payment = instalment(approved, rate, term_months) if approved > 0 else Decimal("0.00")
    dti = ((payment + debt) / income).quantize(Decimal("0.0001")) if income > 0 else None
    return QuotaResult(
        band=band,
        outcome=outcome,
        annual_rate=rate,
        down_payment_ratio=down_ratio,
        requested_amount=amount,
        limit=limit,
        approved_amount=approved,
        down_payment=max(price - approved, Decimal(0)) if approved > 0 else price,
        monthly_payment=payment,
        max_instalment=max_instalment,
        debt_to_income=dti,
        limits=limits,
    )
