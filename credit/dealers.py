"""Dealers (channels, FEATURES.md C11, 渠道管理): admission criteria, the A-D rating and the
cooperation mode that follows from it. Pure Python: `credit.services.dealer_admit` /
`dealer_rate` gather the figures and store the result.

Admission (准入): a dealer is admitted when it has been in business for at least a year, has a
registered capital of at least 500,000 yuan and at least 3 staff (`ADMISSION`); otherwise it is
not admitted and the unmet criteria are recorded.

Rating: points out of 100 from four parts, then a grade.

- years in business: >= 10: 30, >= 5: 22, >= 3: 15, >= 1: 8, else 0;
- registered capital (yuan): >= 10 M: 25, >= 5 M: 20, >= 1 M: 12, >= 0.5 M: 6, else 0;
- size: cars sold a month >= 100: 15, >= 50: 12, >= 20: 8, >= 5: 4; plus staff >= 50: 10,
  >= 20: 7, >= 10: 4, >= 3: 2;
- bad rate of its applications' known outcomes: <= 2 %: 20, <= 5 %: 14, <= 10 %: 7, else 0;
  with fewer than 20 known outcomes: 10 (neutral).

A >= 80, B >= 65, C >= 50, D below. A bad rate above 20 % over at least 20 known outcomes rates
D whatever the points. Cooperation mode by rating: A profit share (分润), B payment terms (账期),
C deposit (保证金), D dealer guarantee (担保).
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Any

PROFIT_SHARE = "profit_share"
PAYMENT_TERMS = "payment_terms"
DEPOSIT = "deposit"
GUARANTEE = "guarantee"
COOPERATION_BY_RATING = {"A": PROFIT_SHARE, "B": PAYMENT_TERMS, "C": DEPOSIT, "D": GUARANTEE}
GRADES = (("A", 80), ("B", 65), ("C", 50), ("D", 0))
MIN_OUTCOMES = 20  # fewer known outcomes say too little about a dealer's bad rate
BAD_RATE_FORCES_D = Decimal("0.2")


@dataclass(frozen=True)
class Admission:
    min_years: int = 1
    min_capital: Decimal = Decimal("500000")
    min_staff: int = 3


ADMISSION = Admission()


@dataclass(frozen=True)
class DealerFigures:
    years_in_business: int
    registered_capital: Decimal
    staff: int
    monthly_sales: int
    outcomes_known: int = 0  # applications with a known outcome (good or bad)
    bad_outcomes: int = 0

    @property
    def bad_rate(self) -> Decimal | None:
        if not self.outcomes_known:
            return None
        return (Decimal(self.bad_outcomes) / self.outcomes_known).quantize(Decimal("0.0001"))


def admission_failures(figures: DealerFigures, criteria: Admission = ADMISSION) -> list[str]:
    """The admission criteria the dealer does not meet (codes), empty when it is admitted."""
    failures = []
    if figures.years_in_business < criteria.min_years:
        failures.append("YEARS_IN_BUSINESS")
    if Decimal(figures.registered_capital) < criteria.min_capital:
        failures.append("REGISTERED_CAPITAL")
    if figures.staff < criteria.min_staff:
        failures.append("STAFF")
    return failures


def _step(value: Decimal | int, table: tuple[tuple[Decimal | int, int], ...]) -> int:
    for threshold, points in table:
        if value >= threshold:
            return points
    return 0


_YEARS = ((10, 30), (5, 22), (3, 15), (1, 8))
_CAPITAL = (
    (Decimal("10000000"), 25),
    (Decimal("5000000"), 20),
    (Decimal("1000000"), 12),
    (Decimal("500000"), 6),
)
_SALES = ((100, 15), (50, 12), (20, 8), (5, 4))
_STAFF = ((50, 10), (20, 7), (10, 4), (3, 2))
_BAD_RATE = ((Decimal("0.02"), 20), (Decimal("0.05"), 14), (Decimal("0.10"), 7))
NEUTRAL_BAD_RATE_POINTS = 10


@dataclass(frozen=True)
class DealerRating:
    rating: str
    points: int
    parts: dict[str, int]
    cooperation: str
    bad_rate: Decimal | None
    forced: str = ""  # why the grade was forced, e.g. "BAD_RATE"

    def as_dict(self) -> dict[str, Any]:
        return {
            "rating": self.rating,
            "points": self.points,
            "parts": dict(self.parts),
            "cooperation": self.cooperation,
            "bad_rate": None if self.bad_rate is None else str(self.bad_rate),
            "forced": self.forced,
        }


def rate_dealer(figures: DealerFigures) -> DealerRating:
    """The rating A-D of a dealer from its figures (see the module docstring)."""
    bad_rate = figures.bad_rate
    if bad_rate is None or figures.outcomes_known < MIN_OUTCOMES:
        bad_points = NEUTRAL_BAD_RATE_POINTS
    else:
        bad_points = next((p for limit, p in _BAD_RATE if bad_rate <= limit), 0)
    parts = {
        "years_in_business": _step(figures.years_in_business, _YEARS),
        "registered_capital": _step(Decimal(figures.registered_capital), _CAPITAL),
        "size": _step(figures.monthly_sales, _SALES) + _step(figures.staff, _STAFF),
        "bad_rate": bad_points,
    }
    points = sum(parts.values())
    rating = next(grade for grade, low in GRADES if points >= low)
    forced = ""
    if (
        bad_rate is not None
        and figures.outcomes_known >= MIN_OUTCOMES
        and bad_rate > BAD_RATE_FORCES_D
    ):
        rating, forced = "D", "BAD_RATE"
    return DealerRating(
        rating=rating,
        points=points,
        parts=parts,
        cooperation=COOPERATION_BY_RATING[rating],
        bad_rate=bad_rate,
        forced=forced,
    )
