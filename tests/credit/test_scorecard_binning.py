"""Binning, WOE and IV (credit/scorecard/binning.py): pure, no database."""

from __future__ import annotations

import math
import random

import pytest

from credit.scorecard.binning import (
    FREE,
    MONOTONIC,
    BinningConfig,
    bin_categorical,
    bin_numeric,
    chi2_pair,
    woe_iv,
)
from credit.scorecard.errors import DataError


def test_woe_and_iv_of_a_hand_computed_example():
    # goods 30/50/20 of 100, bads 10/10/20 of 40: shares .3/.5/.2 against .25/.25/.5
    woe, iv = woe_iv([30, 50, 20], [10, 10, 20])
    assert woe == pytest.approx([math.log(1.2), math.log(2.0), math.log(0.4)])
    # (.3-.25) ln 1.2 + (.5-.25) ln 2 + (.2-.5) ln .4
    assert iv == pytest.approx(0.05 * 0.182322 + 0.25 * 0.693147 + 0.3 * 0.916291, abs=1e-6)
    assert iv == pytest.approx(0.457290, abs=1e-6)


def test_a_bin_without_goods_or_bads_gets_half_a_row_each_not_an_infinite_woe():
    woe, _ = woe_iv([10, 0], [5, 5])
    # bin 2 becomes 0.5 good / 5.5 bad; totals 10.5 and 10.5
    assert woe[0] == pytest.approx(math.log((10 / 10.5) / (5 / 10.5)))
    assert woe[1] == pytest.approx(math.log(0.5 / 5.5))


def test_chi_square_of_a_two_by_two_table():
    # n=80, goods 50, bads 30, 40 per bin: 80 * (30*20 - 20*10)^2 / (50*30*40*40)
    assert chi2_pair(30, 10, 20, 20) == pytest.approx(16 / 3)
    assert chi2_pair(10, 10, 10, 10) == 0.0
    assert chi2_pair(10, 0, 10, 0) == 0.0  # no bads at all: nothing to tell apart


def _sample(n: int, rate, seed: int = 7) -> tuple[list[float], list[int]]:
    rng = random.Random(seed)
    xs = [rng.uniform(0, 100) for _ in range(n)]
    return xs, [1 if rng.random() < rate(x) else 0 for x in xs]


def _regular(binning):
    k = binning.n_regular
    return binning.woe[:k], [g + b for g, b in zip(binning.good[:k], binning.bad[:k], strict=True)]


@pytest.mark.parametrize(
    ("rate", "trend"),
    [(lambda x: 0.1 + 0.6 * x / 100, "ascending"), (lambda x: 0.7 - 0.6 * x / 100, "descending")],
)
def test_monotonic_binning_follows_the_trend_of_the_bad_rate(rate, trend):
    xs, ys = _sample(3000, rate)
    binning = bin_numeric("x", xs, ys, mode=MONOTONIC)
    woe, _ = _regular(binning)
    assert binning.trend == trend
    assert len(woe) >= 3
    pairs = list(zip(woe, woe[1:], strict=False))
    if trend == "ascending":  # bad rate up -> WOE down
        assert all(a > b for a, b in pairs)
    else:
        assert all(a < b for a, b in pairs)


def test_monotonic_binning_of_a_noisy_non_monotonic_sample_is_still_monotonic():
    xs, ys = _sample(1500, lambda x: 0.3 + 0.25 * math.sin(x / 8))
    woe, _ = _regular(bin_numeric("x", xs, ys, mode=MONOTONIC))
    diffs = [b - a for a, b in zip(woe, woe[1:], strict=False)]
    assert all(d < 0 for d in diffs) or all(d > 0 for d in diffs)


def test_free_binning_keeps_a_u_shape_that_monotonic_binning_flattens():
    xs, ys = _sample(4000, lambda x: 0.15 + 0.5 * ((x - 50) / 50) ** 2)
    free = bin_numeric("x", xs, ys, mode=FREE)
    mono = bin_numeric("x", xs, ys, mode=MONOTONIC)
    woe, _ = _regular(free)
    best = woe.index(max(woe))
    assert 0 < best < len(woe) - 1  # the best bin is in the middle
    assert free.trend == FREE
    assert free.iv > 2 * mono.iv


def test_bins_respect_the_minimum_share_and_the_maximum_count():
    xs, ys = _sample(2000, lambda x: 0.1 + 0.6 * x / 100)
    config = BinningConfig(max_bins=4, min_share=0.1)
    for mode in (MONOTONIC, FREE):
        binning = bin_numeric("x", xs, ys, config=config, mode=mode)
        _, counts = _regular(binning)
        assert len(counts) <= 4
        assert min(counts) >= 0.1 * len(xs)


def test_numeric_bins_are_half_open_intervals():
    xs = [float(x) for x in range(1, 101)]
    ys = [1 if x <= 50 else 0 for x in xs]
    binning = bin_numeric("x", xs, ys, config=BinningConfig(max_bins=2, min_share=0.1))
    assert binning.edges == [51.0]
    assert binning.index(50.99) == 0
    assert binning.index(51.0) == 1
    assert binning.labels() == ["< 51", ">= 51", "missing"]


def test_missing_values_get_their_own_bin_when_training_had_enough_of_them():
    xs, ys = _sample(1000, lambda x: 0.1 + 0.6 * x / 100)
    values = [None if i % 10 == 0 else x for i, x in enumerate(xs)]  # 10 % missing
    ys = [1 if v is None else y for v, y in zip(values, ys, strict=True)]  # and all bad
    binning = bin_numeric("x", values, ys)
    assert binning.missing_has_data
    assert binning.index(None) == binning.missing_index
    assert binning.woe[-1] < min(binning.woe[:-1])  # the worst bin: every missing row was bad


def test_without_missing_values_in_training_the_missing_bin_scores_like_the_worst_bin():
    xs, ys = _sample(1000, lambda x: 0.1 + 0.6 * x / 100)
    binning = bin_numeric("x", xs, ys)
    assert not binning.missing_has_data
    assert binning.woe[-1] == min(binning.woe[:-1])


def test_sparse_categories_merge_and_unseen_ones_go_to_the_missing_or_other_bin():
    rng = random.Random(3)
    values, ys = [], []
    for cat, n, rate in (
        ("own", 500, 0.2),
        ("rent", 300, 0.4),
        ("free", 150, 0.3),
        ("boat", 5, 0.2),
    ):
        for _ in range(n):
            values.append(cat)
            ys.append(1 if rng.random() < rate else 0)
    binning = bin_categorical("housing", values, ys)
    groups = binning.groups
    assert sorted(c for g in groups for c in g) == ["boat", "free", "own", "rent"]
    assert all(len(g) > 1 for g in groups if "boat" in g)  # 5 rows (< 5 %) never stand alone
    assert binning.index("castle") == binning.missing_index
    assert binning.index(None) == binning.missing_index
    assert binning.labels()[-1] == "missing / other"
    # bins are ordered by bad rate: the WOE falls from the first bin to the last regular one
    woe, _ = _regular(binning)
    assert woe == sorted(woe, reverse=True)


def test_a_column_without_values_cannot_be_binned():
    with pytest.raises(DataError, match="no values"):
        bin_numeric("x", [None, None], [0, 1])


def test_bad_configuration_is_refused():
    with pytest.raises(ValueError, match="max_bins"):
        BinningConfig(max_bins=1)
    with pytest.raises(ValueError, match="min_share"):
        BinningConfig(min_share=0.6)
