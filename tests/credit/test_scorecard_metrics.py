"""AUC, KS, Gini, PSI and the band table (credit/scorecard/metrics.py), hand-computed values."""

from __future__ import annotations

import math

import pytest

from credit.scorecard.metrics import (
    auc,
    band_table,
    distribution,
    gini,
    ks,
    psi,
    psi_band,
    quantile_edges,
)

# Scores (higher = better) of 3 goods and 2 bads: goods 2, 4, 5; bads 1, 3.
BAD = [1, 0, 1, 0, 0]
SCORES = [1, 2, 3, 4, 5]


def test_auc_counts_the_pairs_where_the_good_scores_higher():
    # good > bad pairs: 2>1, 4>1, 4>3, 5>1, 5>3 = 5 of 6
    assert auc(BAD, SCORES) == pytest.approx(5 / 6)
    assert gini(BAD, SCORES) == pytest.approx(2 * 5 / 6 - 1)


def test_auc_counts_ties_as_half():
    # goods 2 and 3, bad 2: (tie = 1/2) + (3 > 2 = 1) over 2 pairs
    assert auc([0, 0, 1], [2, 3, 2]) == pytest.approx(0.75)
    assert auc([0, 1], [7, 7]) == pytest.approx(0.5)


def test_auc_of_a_perfect_and_of_a_reversed_ranking():
    assert auc([1, 1, 0, 0], [1, 2, 3, 4]) == 1.0
    assert auc([0, 0, 1, 1], [1, 2, 3, 4]) == 0.0
    assert gini([0, 0, 1, 1], [1, 2, 3, 4]) == -1.0


def test_ks_is_the_largest_gap_between_the_cumulative_distributions():
    # after score 3: both bads (1.0) against one good of three (1/3)
    assert ks(BAD, SCORES) == pytest.approx(2 / 3)


def test_ks_is_only_read_after_a_whole_group_of_tied_scores():
    # one bad and one good share score 1: splitting the tie would show a gap of 1/2
    assert ks([1, 0, 0], [1, 1, 2]) == pytest.approx(0.5)
    assert ks([1, 0], [1, 1]) == 0.0


def test_auc_and_ks_need_both_outcomes():
    with pytest.raises(ValueError, match="one good and one bad"):
        auc([0, 0], [1, 2])
    with pytest.raises(ValueError, match="length"):
        ks([0, 1], [1])


def test_psi_of_a_hand_computed_shift():
    # (.6-.5) ln(.6/.5) + (.4-.5) ln(.4/.5)
    expected = 0.1 * math.log(1.2) + 0.1 * math.log(1.25)
    assert psi([0.5, 0.5], [0.6, 0.4]) == pytest.approx(expected)
    assert psi([0.5, 0.5], [0.6, 0.4]) == pytest.approx(0.040546, abs=1e-6)
    assert psi([0.2, 0.3, 0.5], [0.2, 0.3, 0.5]) == 0.0


def test_psi_of_an_empty_bin_is_large_but_finite():
    value = psi([0.5, 0.5], [1.0, 0.0])
    assert math.isfinite(value)
    assert psi_band(value) == "rebuild"


@pytest.mark.parametrize(
    ("value", "band"),
    [(0.0, "stable"), (0.099, "stable"), (0.1, "watch"), (0.3, "watch"), (0.301, "rebuild")],
)
def test_psi_bands(value, band):
    assert psi_band(value) == band


def test_deciles_and_distribution():
    values = list(range(100))
    edges = quantile_edges(values, 10)
    assert edges == [10, 20, 30, 40, 50, 60, 70, 80, 90]
    assert distribution(values, edges) == [0.1] * 10
    # many equal values: duplicate cut points are dropped
    assert quantile_edges([5] * 50 + [6] * 50, 10) == [6]


def test_band_table_counts_shares_bad_rates_and_cumulative_approval():
    bands = [("reject", 300), ("review", 500), ("approve", 550)]
    rows = band_table([310, 520, 560, 600, 700], bands, [1, 1, 0, 1, 0])
    by_band = {r["band"]: r for r in rows}
    assert [r["band"] for r in rows] == ["reject", "review", "approve"]
    approve = by_band["approve"]
    assert (approve["count"], approve["share"], approve["bads"]) == (3, 0.6, 1)
    assert approve["bad_rate"] == pytest.approx(1 / 3)
    assert approve["approval_rate"] == 0.6
    assert (approve["min_score"], approve["max_score"]) == (550, None)
    review = by_band["review"]
    assert review["bad_rate"] == 1.0
    assert review["approval_rate"] == 0.8  # approving from 500 up
    assert review["approved_bad_rate"] == pytest.approx(2 / 4)
    reject = by_band["reject"]
    assert (reject["max_score"], reject["approval_rate"]) == (500, 1.0)
    assert reject["approved_bad_rate"] == pytest.approx(3 / 5)


def test_band_table_without_outcomes_has_no_bad_rates():
    rows = band_table([400, 560], [("reject", 300), ("approve", 550)])
    assert [r["count"] for r in rows] == [1, 1]
    assert all(r["bad_rate"] is None and r["approved_bad_rate"] is None for r in rows)
