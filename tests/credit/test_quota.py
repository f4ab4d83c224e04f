"""The quota (C6): instalments, the limit as the least of the product maximum, the down-payment
cap and what the applicant can afford (instalment + debt <= 50 % of income), terms per band,
and products whose band terms are wrong are refused."""

from __future__ import annotations

from decimal import Decimal

import pytest
from django.core.exceptions import ValidationError

from credit.models import Product
from credit.quota import (
    INSUFFICIENT,
    OK,
    REDUCED,
    QuotaConfigError,
    QuotaTerms,
    band_terms_from,
    compute_quota,
    instalment,
    principal_for,
)
from credit.services import product_save

D = Decimal


def terms(min_down="0.2", **band_terms) -> QuotaTerms:
    return QuotaTerms(
        min_amount=D("10000"),
        max_amount=D("300000"),
        min_down_payment_ratio=D(min_down),
        max_debt_to_income=D("0.5"),
        annual_rate=D("0.08"),
        band_terms=band_terms_from(band_terms or None),
    )


def quota(
    band="approve", *, price="200000", amount="120000", months=36, income="20000", debt="0", t=None
):
    return compute_quota(
        t or terms(),
        band=band,
        car_price=D(price),
        amount=D(amount),
        term_months=months,
        monthly_income=D(income),
        monthly_debt=D(debt),
    )


def test_instalments_of_known_loans():
    assert instalment(D("120000"), D("0.08"), 36) == D("3760.36")
    assert instalment(D("100000"), D("0"), 10) == D("10000.00")
    assert instalment(D("50000"), D("0.12"), 12) == D("4442.44")
    # the present value of an instalment gives back the principal (to the cent)
    assert abs(principal_for(D("3760.36"), D("0.08"), 36) - D("120000")) < D("0.5")


def test_what_is_asked_for_is_granted_when_everything_allows_it():
    q = quota()
    assert (q.outcome, q.approved_amount, q.monthly_payment) == (OK, D("120000"), D("3760.36"))
    assert q.reason_codes == ()
    assert q.debt_to_income == D("0.1880")
    assert q.as_dict()["down_payment"] == "80000.00"


def test_the_down_payment_ratio_caps_the_loan():
    q = quota(amount="190000")  # 5 % down; the approve band wants 20 %
    assert (q.outcome, q.limit, q.approved_amount) == (REDUCED, D("160000"), D("160000"))
    assert q.reason_codes == ("AMOUNT_REDUCED",)
    assert q.down_payment == D("40000")


def test_the_product_maximum_caps_the_loan():
    q = quota(price="1000000", amount="500000", income="100000")
    assert (q.outcome, q.limit) == (REDUCED, D("300000"))


def test_ability_to_repay_caps_the_loan_and_debt_counts():
    # 8000 x 50 % = 4000 a month over 36 months at 8 %: 127,647.22 -> 127,600
    q = quota(amount="150000", price="300000", income="8000")
    assert (q.outcome, q.limit, q.limits["affordability"]) == (REDUCED, D("127600"), D("127647.22"))
    assert q.max_instalment == D("4000.00")
    with_debt = quota(amount="150000", price="300000", income="8000", debt="3000")
    assert with_debt.max_instalment == D("1000.00")
    assert with_debt.limit == D("31900")


def test_below_the_product_minimum_is_insufficient():
    q = quota(income="600")  # 300 a month affords about 9,570
    assert (q.outcome, q.approved_amount, q.monthly_payment) == (INSUFFICIENT, D(0), D("0.00"))
    assert q.reason_codes == ("QUOTA_INSUFFICIENT",)
    zero = quota(income="0")
    assert zero.outcome == INSUFFICIENT and zero.debt_to_income is None


def test_the_review_band_pays_more_and_borrows_less():
    q = quota("review", amount="150000", price="200000")
    assert q.annual_rate == D("0.1000")
    assert q.down_payment_ratio == D("0.3")
    assert q.limit == D("140000")  # 200,000 x 70 %
    tight = quota("review", amount="100000", price="300000", income="6000")
    # 3000 a month over 36 at 10 %: 92,973.71 x 0.8 = 74,378.97 -> 74,300
    assert tight.limit == D("74300")


def test_a_product_sets_its_own_band_terms():
    t = terms(approve={"down_payment_ratio": "0.1", "rate_add": "0", "limit_ratio": 1})
    # The product's own minimum (20 %) still holds...
    assert quota(amount="180000", t=t).limit == D("160000")
    # ...and once lowered, the band's 10 % applies.
    t = terms("0.05", approve={"down_payment_ratio": "0.1", "rate_add": "0.01"})
    q = quota(amount="180000", t=t)
    assert (q.outcome, q.approved_amount, q.annual_rate) == (OK, D("180000"), D("0.0900"))


@pytest.mark.parametrize(
    ("config", "message"),
    [
        ({"reject": {}}, "unknown band 'reject'"),
        ({"approve": {"ltv": 0.8}}, "unknown key 'ltv'"),
        ({"approve": {"down_payment_ratio": 1.2}}, "approve.down_payment_ratio"),
        ({"review": {"rate_add": 0.6}}, "review.rate_add"),
        ({"review": {"rate_add": True}}, "review.rate_add"),
        ({"review": {"limit_ratio": "abc"}}, "review.limit_ratio"),
        (["approve"], "must be an object"),
    ],
)
def test_bad_band_terms_are_named(config, message):
    with pytest.raises(QuotaConfigError) as exc:
        band_terms_from(config)
    assert message in str(exc.value)


def test_a_product_with_bad_band_terms_is_refused(world):
    product = Product(
        customer=world.customers["a"],
        code="BAD",
        name="bad",
        terms=[12],
        band_terms={"approve": {"down_payment_ratio": 2}},
    )
    with pytest.raises(ValidationError) as exc:
        product_save(product=product)
    assert "band_terms" in exc.value.message_dict
    assert not Product.objects.exists()
    product.band_terms = {"approve": {"down_payment_ratio": 0.3}}
    product_save(product=product)
    assert Product.objects.get().band_terms == {"approve": {"down_payment_ratio": 0.3}}
