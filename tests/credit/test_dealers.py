"""Dealers (C11): admission criteria, the A-D rating from years, capital, size and the bad rate
of their applications, the cooperation mode that follows, and dealer-level figures."""

from __future__ import annotations

from decimal import Decimal

import pytest
from django.core.exceptions import ValidationError

from credit.dealers import DealerFigures, admission_failures, rate_dealer
from credit.models import Dealer
from credit.monitoring import dealer_figures
from credit.services import application_outcome_set, dealer_rate, dealer_save
from tests.credit.test_pipeline import catalogue, champion, make_dealer, submit


def figures(years=6, capital="2000000", staff=25, sales=40, known=0, bad=0) -> DealerFigures:
    return DealerFigures(
        years_in_business=years,
        registered_capital=Decimal(capital),
        staff=staff,
        monthly_sales=sales,
        outcomes_known=known,
        bad_outcomes=bad,
    )


def test_admission_criteria():
    assert admission_failures(figures()) == []
    assert admission_failures(figures(years=0, capital="499999", staff=2)) == [
        "YEARS_IN_BUSINESS",
        "REGISTERED_CAPITAL",
        "STAFF",
    ]
    assert admission_failures(figures(years=1, capital="500000", staff=3)) == []


@pytest.mark.parametrize(
    ("f", "rating", "points", "cooperation"),
    [
        # 30 + 25 + (15 + 10) + 20 = 100
        (figures(12, "20000000", 60, 150, known=100, bad=1), "A", 100, "profit_share"),
        # 22 + 20 + (12 + 7) + 14 = 75
        (figures(5, "5000000", 20, 50, known=40, bad=2), "B", 75, "payment_terms"),
        # 22 + 12 + (8 + 7) + 10 (too few outcomes) = 59
        (figures(known=19, bad=10), "C", 59, "deposit"),
        # 8 + 6 + (4 + 2) + 0 = 20
        (figures(1, "500000", 3, 5, known=50, bad=8), "D", 20, "guarantee"),
    ],
)
def test_ratings_and_cooperation(f, rating, points, cooperation):
    result = rate_dealer(f)
    assert (result.rating, result.points, result.cooperation) == (rating, points, cooperation)


def test_grade_edges():
    # 80 is A, 79 is B: 30 + 25 + (15 + 0) + 10 = 80 / 30 + 25 + (12 + 2) + 10 = 79
    assert rate_dealer(figures(10, "10000000", 0, 100)).rating == "A"
    assert rate_dealer(figures(10, "10000000", 3, 50)).points == 79
    assert rate_dealer(figures(10, "10000000", 3, 50)).rating == "B"


def test_a_bad_rate_above_20_percent_rates_d_whatever_the_points():
    strong = figures(12, "20000000", 60, 150, known=20, bad=5)  # 25 %
    result = rate_dealer(strong)
    assert (result.rating, result.forced, result.bad_rate) == ("D", "BAD_RATE", Decimal("0.25"))
    few = figures(12, "20000000", 60, 150, known=10, bad=5)  # too few outcomes to judge
    assert rate_dealer(few).rating == "A"


def test_rating_a_dealer_counts_the_outcomes_of_its_applications(world):
    product, dealer = catalogue(world)
    champion()
    for i in range(20):
        app = submit(world.customers["a1"], product, dealer=dealer, attributes={"x": 3})
        application_outcome_set(application=app, outcome="bad" if i < 5 else "good")
    submit(world.customers["a1"], product, dealer=dealer, attributes={"x": 0})  # no outcome
    rated = dealer_rate(dealer=dealer)
    dealer.refresh_from_db()
    assert (dealer.rating, dealer.cooperation) == ("D", "guarantee")
    assert dealer.rating_details["outcomes_known"] == 20
    assert dealer.rating_details["bad_rate"] == "0.2500"
    assert dealer.rated_at is not None and rated.pk == dealer.pk
    # Its next application carries the rating and the bad rate to the rules.
    app = submit(world.customers["a1"], product, dealer=dealer, attributes={"x": 3})
    assert (app.features["dealer.rating"], app.features["dealer.overdue_rate"]) == ("D", 0.25)
    row = dealer_figures(world.customers["a"].applications.model.objects.all())[0]
    assert (row["code"], row["applications"], row["bad"], row["rating"]) == ("D1", 22, 5, "D")
    assert row["bad_rate"] == 0.25
    assert row["rejected"] == 1 and row["approved"] == 21


def test_a_dealer_failing_the_criteria_cannot_be_readmitted(world):
    dealer = make_dealer(world.customers["a"], code="SMALL", staff=1)
    assert dealer.status == Dealer.Status.REJECTED
    dealer.status = Dealer.Status.ADMITTED
    with pytest.raises(ValidationError) as exc:
        dealer_save(dealer=dealer)
    assert "status" in exc.value.message_dict
    dealer.staff = 5
    dealer_save(dealer=dealer)
    dealer.refresh_from_db()
    assert dealer.status == Dealer.Status.ADMITTED
