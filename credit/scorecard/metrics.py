"""Discrimination and stability measures, pure Python (no numpy: they run in monitoring jobs).

Scores follow the scorecard's orientation: a higher score means a lower risk. `bad[i]` is 1 for a
bad outcome, 0 for a good one.

- AUC: the probability that a random good scores higher than a random bad (ties count one half);
  Gini = 2 * AUC - 1.
- KS: the largest gap between the cumulative score distributions of bads and goods.
- PSI (population stability index) = sum over bins of (actual - expected) * ln(actual / expected),
  shares floored at PSI_FLOOR so an empty bin does not make it infinite. Bands (FEATURES.md C8):
  < 0.1 stable, 0.1-0.3 watch, > 0.3 rebuild.
"""

from __future__ import annotations

import math
from bisect import bisect_right
from collections.abc import Sequence

PSI_FLOOR = 1e-4
PSI_STABLE = "stable"
PSI_WATCH = "watch"
PSI_REBUILD = "rebuild"
PSI_WATCH_FROM = 0.1
PSI_REBUILD_ABOVE = 0.3


def _check(bad: Sequence[int], scores: Sequence[float]) -> tuple[int, int]:
    if len(bad) != len(scores):
        raise ValueError("bad and scores differ in length")
    n_bad = sum(1 for y in bad if y)
    n_good = len(bad) - n_bad
    if not n_bad or not n_good:
        raise ValueError("AUC and KS need at least one good and one bad")
    return n_good, n_bad


def auc(bad: Sequence[int], scores: Sequence[float]) -> float:
    """Area under the ROC curve (Mann-Whitney U with mid-ranks for ties)."""
    n_good, n_bad = _check(bad, scores)
    order = sorted(range(len(scores)), key=scores.__getitem__)
    rank_sum_good = 0.0
    i = 0
    while i < len(order):
        j = i
        while j + 1 < len(order) and scores[order[j + 1]] == scores[order[i]]:
            j += 1
        mid_rank = (i + j) / 2 + 1  # ranks i+1 .. j+1
        rank_sum_good += mid_rank * sum(1 for k in order[i : j + 1] if not bad[k])
        i = j + 1
    u = rank_sum_good - n_good * (n_good + 1) / 2
    return u / (n_good * n_bad)


def gini(bad: Sequence[int], scores: Sequence[float]) -> float:
    return 2 * auc(bad, scores) - 1


def ks(bad: Sequence[int], scores: Sequence[float]) -> float:
    """Kolmogorov-Smirnov statistic, evaluated after each distinct score."""
    n_good, n_bad = _check(bad, scores)
    order = sorted(range(len(scores)), key=scores.__getitem__)
    cum_good = cum_bad = 0
    best = 0.0
    for pos, k in enumerate(order):
        if bad[k]:
            cum_bad += 1
        else:
            cum_good += 1
        last_of_tie = pos + 1 == len(order) or scores[order[pos + 1]] != scores[k]
        if last_of_tie:
            best = max(best, abs(cum_bad / n_bad - cum_good / n_good))
    return best


def distribution(values: Sequence[float], edges: Sequence[float]) -> list[float]:
    """Shares of `values` in the bins [edges[i-1], edges[i]) (len(edges) + 1 bins)."""
    if not values:
        raise ValueError("no values")
    counts = [0] * (len(edges) + 1)
    for v in values:
        counts[bisect_right(edges, v)] += 1
    return [c / len(values) for c in counts]


def psi(expected: Sequence[float], actual: Sequence[float]) -> float:
    """Population stability index of two distributions over the same bins (shares)."""
    if len(expected) != len(actual) or not expected:
        raise ValueError("expected and actual need the same, non-zero number of bins")
    total = 0.0
    for e, a in zip(expected, actual, strict=True):
        e, a = max(e, PSI_FLOOR), max(a, PSI_FLOOR)
        total += (a - e) * math.log(a / e)
    return total


def psi_band(value: float) -> str:
    """stable (< 0.1), watch (0.1-0.3) or rebuild (> 0.3)."""
    if value < PSI_WATCH_FROM:
        return PSI_STABLE
    if value <= PSI_REBUILD_ABOVE:
        return PSI_WATCH
    return PSI_REBUILD


def quantile_edges(values: Sequence[float], bins: int = 10) -> list[float]:
    """Interior cut points splitting `values` into about `bins` equal groups, for a PSI baseline.
    Duplicate cut points (many equal values) are dropped, so there may be fewer bins."""
    if not values:
        raise ValueError("no values")
    ordered = sorted(values)
    edges: list[float] = []
    for q in range(1, bins):
        cut = ordered[min(len(ordered) - 1, math.ceil(q * len(ordered) / bins))]
        if cut > ordered[0] and (not edges or cut > edges[-1]):
            edges.append(cut)
    return edges


def band_table(
    scores: Sequence[float],
    bands: Sequence[tuple[str, float]],
    bad: Sequence[int] | None = None,
) -> list[dict]:
    """One row per band (`bands` = (name, lowest score) ascending): count, share, bads and bad
    rate (None without outcomes), and the cumulative figures of a cut-off at the band's lower
    bound: `approval_rate` = share of applicants scoring at least that much, `approved_bad_rate`
    = their bad rate. The top band's approval rate is the approval rate of the scorecard."""
    if not scores:
        raise ValueError("no scores")
    if bad is not None and len(bad) != len(scores):
        raise ValueError("bad and scores differ in length")
    lows = [low for _, low in bands]
    if lows != sorted(lows):
        raise ValueError("bands must be in ascending order")
    count = [0] * len(bands)
    bads = [0] * len(bands)
    for i, s in enumerate(scores):
        k = max(bisect_right(lows, s) - 1, 0)  # below the lowest band: the lowest band
        count[k] += 1
        if bad is not None and bad[i]:
            bads[k] += 1
    n = len(scores)
    rows: list[dict] = []
    cum_n = cum_bad = 0
    for k in reversed(range(len(bands))):
        cum_n += count[k]
        cum_bad += bads[k]
        upper = bands[k + 1][1] if k + 1 < len(bands) else None
        rows.append(
            {
                "band": bands[k][0],
                "min_score": bands[k][1],
                "max_score": upper,  # exclusive; None = no upper bound
                "count": count[k],
                "share": count[k] / n,
                "bads": bads[k] if bad is not None else None,
                "bad_rate": (bads[k] / count[k] if count[k] else None) if bad is not None else None,
                "approval_rate": cum_n / n,
                "approved_bad_rate": (
                    (cum_bad / cum_n if cum_n else None) if bad is not None else None
                ),
            }
        )
    rows.reverse()
    return rows
