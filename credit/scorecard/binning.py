"""Fine and coarse classing of characteristics, weight of evidence (WOE) and information value (IV).
Pure Python: 800 rows do not need numpy, and the same code runs in the tests without it.

Conventions (docs/CREDIT.md):
- WOE of a bin = ln((goods in bin / all goods) / (bads in bin / all bads)): positive = better than
  average. A bin without goods or without bads gets 0.5 added to both of its counts first (the
  Haldane correction), so every WOE is finite.
- IV = sum over bins of (good share - bad share) * WOE.
- Numeric bins are half-open intervals [lower, upper): `edges` are the interior cut points, so a
  value x falls into bin `bisect_right(edges, x)`.
- Every characteristic has one more bin, last, for a missing value (and, for a categorical one,
  for a category never seen in training). With enough training rows of its own it has its own WOE;
  otherwise it takes the worst WOE of the regular bins: no evidence earns no points.

Coarse classing:
- numeric, `monotonic`: fine classes (about `max_fine` quantile groups), pool adjacent violators so
  the bad rate runs one way (both directions are tried, the higher IV wins), then merge bins below
  `min_share` and merge the most similar neighbours (lowest chi-square) down to `max_bins` and
  while a neighbour pair is not different at `chi2_threshold`.
- numeric, `free` (the best supervised merge): the same without the monotonic step (ChiMerge).
- categorical: categories are ordered by their bad rate (shrunk towards the overall rate so a
  category of 7 rows does not jump to the end), then merged like the free numeric case: sparse
  categories join their closest neighbour in that order.
"""

from __future__ import annotations

import math
from bisect import bisect_right
from collections.abc import Sequence
from dataclasses import dataclass, field

from credit.scorecard.data import CATEGORICAL, NUMERIC, Value
from credit.scorecard.errors import DataError, gettext_noop

MONOTONIC = "monotonic"
FREE = "free"
CATEGORY_PRIOR = 10.0  # pseudo-rows of the overall bad rate when ordering categories


@dataclass(frozen=True)
class BinningConfig:
    max_bins: int = 6
    min_share: float = 0.05  # of the rows with a value, per coarse bin
    max_fine: int = 20
    # Merge neighbours whose chi-square is below this even under max_bins. 0 (off) by default:
    # cross-validation inside the training file measured any significance merging as a loss.
    chi2_threshold: float = 0.0

    def __post_init__(self) -> None:
        if self.max_bins < 2:
            raise ValueError("max_bins must be at least 2")
        if not 0 < self.min_share < 0.5:
            raise ValueError("min_share must be in (0, 0.5)")
        if self.max_fine < self.max_bins:
            raise ValueError("max_fine must be at least max_bins")
        if self.chi2_threshold < 0:
            raise ValueError("chi2_threshold must not be negative")


def woe_iv(good: Sequence[float], bad: Sequence[float]) -> tuple[list[float], float]:
    """WOE per bin and the IV of the whole characteristic (conventions in the module docstring)."""
    if len(good) != len(bad) or not good:
        raise ValueError("good and bad need the same, non-zero number of bins")
    adj = [
        (g + 0.5, b + 0.5) if (g == 0 or b == 0) else (g, b) for g, b in zip(good, bad, strict=True)
    ]
    total_good = sum(g for g, _ in adj)
    total_bad = sum(b for _, b in adj)
    woe: list[float] = []
    iv = 0.0
    for g, b in adj:
        pg, pb = g / total_good, b / total_bad
        w = math.log(pg / pb)
        woe.append(w)
        iv += (pg - pb) * w
    return woe, iv


def chi2_pair(g1: float, b1: float, g2: float, b2: float) -> float:
    """Pearson chi-square of the 2x2 table (goods, bads) x (bin 1, bin 2); 0 when a margin is 0."""
    n = g1 + b1 + g2 + b2
    goods, bads = g1 + g2, b1 + b2
    n1, n2 = g1 + b1, g2 + b2
    if min(goods, bads, n1, n2) == 0:
        return 0.0
    return n * (g1 * b2 - g2 * b1) ** 2 / (goods * bads * n1 * n2)


@dataclass
class _Block:
    """A run of adjacent fine classes being merged: counts and the fine-class keys it holds."""

    good: int
    bad: int
    keys: list = field(default_factory=list)

    @property
    def n(self) -> int:
        return self.good + self.bad

    @property
    def bad_rate(self) -> float:
        return self.bad / self.n if self.n else 0.0

    def absorb(self, other: _Block) -> None:
        self.good += other.good
        self.bad += other.bad
        self.keys.extend(other.keys)


def _merge(blocks: list[_Block], i: int) -> None:
    """Merges blocks[i + 1] into blocks[i]."""
    blocks[i].absorb(blocks[i + 1])
    del blocks[i + 1]


def _pava(blocks: list[_Block], increasing: bool) -> list[_Block]:
    """Pool adjacent violators: merges neighbours until the bad rate is monotonic."""
    out: list[_Block] = []
    for block in blocks:
        out.append(_Block(block.good, block.bad, list(block.keys)))
        while len(out) > 1:
            left, right = out[-2], out[-1]
            # equal rates are merged too: the bins must be strictly monotonic
            violates = (
                left.bad_rate >= right.bad_rate if increasing else left.bad_rate <= right.bad_rate
            )
            if not violates:
                break
            _merge(out, len(out) - 2)
    return out


def _enforce_min_count(blocks: list[_Block], min_count: float) -> None:
    """Merges the smallest block into the neighbour with the closer bad rate until every block has
    at least `min_count` rows (or one block is left)."""
    while len(blocks) > 1:
        i = min(range(len(blocks)), key=lambda k: (blocks[k].n, k))
        if blocks[i].n >= min_count:
            return
        if i == 0:
            _merge(blocks, 0)
        elif i == len(blocks) - 1:
            _merge(blocks, i - 1)
        else:
            rate = blocks[i].bad_rate
            left = abs(blocks[i - 1].bad_rate - rate)
            right = abs(blocks[i + 1].bad_rate - rate)
            _merge(blocks, i - 1 if left <= right else i)


def _chimerge(blocks: list[_Block], max_bins: int, threshold: float) -> None:
    """Merges the neighbour pair with the lowest chi-square while there are more than `max_bins`
    blocks or some neighbours are not different at `threshold` (neighbours with the same bad
    rate, chi-square 0, are always merged)."""
    while len(blocks) > 1:
        scores = [
            chi2_pair(blocks[k].good, blocks[k].bad, blocks[k + 1].good, blocks[k + 1].bad)
            for k in range(len(blocks) - 1)
        ]
        k = min(range(len(scores)), key=lambda j: (scores[j], j))
        if len(blocks) <= max_bins and scores[k] > threshold:
            return
        _merge(blocks, k)


def _iv_of(blocks: list[_Block]) -> float:
    if len(blocks) < 2:
        return 0.0
    return woe_iv([b.good for b in blocks], [b.bad for b in blocks])[1]


@dataclass
class Binning:
    """The coarse classes of one characteristic. Regular bins first, the missing bin last:
    `good`, `bad`, `woe` have `len(labels) + 1` entries."""

    name: str
    kind: str
    edges: list[float]  # numeric: interior cut points
    groups: list[list[str]]  # categorical: the categories of each regular bin
    good: list[int]
    bad: list[int]
    woe: list[float]
    iv: float
    trend: str  # numeric: "ascending" / "descending" bad rate, or "free"; categorical: "ordered"
    missing_has_data: bool
    _lookup: dict[str, int] = field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        self._lookup = {cat: i for i, group in enumerate(self.groups) for cat in group}

    @property
    def n_regular(self) -> int:
        return len(self.edges) + 1 if self.kind == NUMERIC else len(self.groups)

    @property
    def missing_index(self) -> int:
        return self.n_regular

    def index(self, value: Value) -> int:
        """The bin of `value` (None, or an unseen category, -> the missing bin)."""
        if value is None:
            return self.missing_index
        if self.kind == NUMERIC:
            return bisect_right(self.edges, value)
        return self._lookup.get(value, self.missing_index)

    def labels(self) -> list[str]:
        """Human-readable bin labels, the missing bin last."""
        out: list[str] = []
        if self.kind == NUMERIC:
            bounds = [None, *self.edges, None]
            for lo, hi in zip(bounds, bounds[1:], strict=False):
                if lo is None and hi is None:
                    out.append("all")
                elif lo is None:
                    out.append(f"< {_num(hi)}")
                elif hi is None:
                    out.append(f">= {_num(lo)}")
                else:
                    out.append(f"[{_num(lo)}, {_num(hi)})")
        else:
            out.extend(" | ".join(group) for group in self.groups)
        out.append("missing" if self.kind == NUMERIC else "missing / other")
        return out


def _num(x: float) -> str:
    return str(int(x)) if float(x).is_integer() else f"{x:g}"


def _fine_numeric(values: list[tuple[float, int]], max_fine: int) -> list[_Block]:
    """Groups the sorted distinct values into about `max_fine` runs of similar size. A block's keys
    are its distinct values (ascending)."""
    counts: dict[float, list[int]] = {}
    for x, y in values:
        c = counts.setdefault(x, [0, 0])
        c[y] += 1
    n = len(values)
    target = n / max_fine
    blocks: list[_Block] = []
    current = _Block(0, 0, [])
    for x in sorted(counts):
        g, b = counts[x]
        current.good += g
        current.bad += b
        current.keys.append(x)
        if current.n >= target:
            blocks.append(current)
            current = _Block(0, 0, [])
    if current.n:
        if blocks and current.n < target / 2:
            blocks[-1].absorb(current)
        else:
            blocks.append(current)
    return blocks


def _counts_missing(y_missing: list[int]) -> tuple[int, int]:
    bad = sum(y_missing)
    return len(y_missing) - bad, bad


def _finish(
    name: str,
    kind: str,
    blocks: list[_Block],
    trend: str,
    missing: tuple[int, int],
    min_count: float,
) -> Binning:
    good = [b.good for b in blocks]
    bad = [b.bad for b in blocks]
    mg, mb = missing
    has_missing = mg + mb >= min_count
    if has_missing:
        woe, iv = woe_iv([*good, mg], [*bad, mb])
    else:
        woe, iv = woe_iv(good, bad) if len(blocks) > 1 else ([0.0], 0.0)
        woe = [*woe, min(woe)]
    if kind == NUMERIC:
        edges = [float(b.keys[0]) for b in blocks[1:]]
        groups: list[list[str]] = []
    else:
        edges = []
        groups = [sorted(b.keys) for b in blocks]
    return Binning(
        name=name,
        kind=kind,
        edges=edges,
        groups=groups,
        good=[*good, mg],
        bad=[*bad, mb],
        woe=woe,
        iv=iv,
        trend=trend,
        missing_has_data=has_missing,
    )


def _split(values: Sequence[Value], bad: Sequence[int]) -> tuple[list, list[int]]:
    present = [(v, y) for v, y in zip(values, bad, strict=True) if v is not None]
    missing = [y for v, y in zip(values, bad, strict=True) if v is None]
    return present, missing


def bin_numeric(
    name: str,
    values: Sequence[float | None],
    bad: Sequence[int],
    *,
    config: BinningConfig = BinningConfig(),  # noqa: B008 (frozen dataclass)
    mode: str = MONOTONIC,
) -> Binning:
    """Coarse classes of a numeric characteristic (`mode` = MONOTONIC or FREE)."""
    if mode not in (MONOTONIC, FREE):
        raise ValueError(f"unknown mode {mode!r}")
    present, missing = _split(values, bad)
    if not present:
        raise DataError(gettext_noop("Column %(column)s has no values to bin."), {"column": name})
    min_count = config.min_share * len(present)
    fine = _fine_numeric(present, config.max_fine)
    candidates: list[tuple[float, str, list[_Block]]] = []
    if mode == MONOTONIC:
        for increasing in (True, False):
            blocks = _pava(fine, increasing)
            _enforce_min_count(blocks, min_count)
            _chimerge(blocks, config.max_bins, config.chi2_threshold)
            trend = "ascending" if increasing else "descending"
            candidates.append((_iv_of(blocks), trend, blocks))
    else:
        blocks = [_Block(b.good, b.bad, list(b.keys)) for b in fine]
        _enforce_min_count(blocks, min_count)
        _chimerge(blocks, config.max_bins, config.chi2_threshold)
        candidates.append((_iv_of(blocks), FREE, blocks))
    _, trend, blocks = max(candidates, key=lambda c: c[0])  # ties: the first (ascending)
    if len(blocks) == 1:
        trend = "flat"
    return _finish(name, NUMERIC, blocks, trend, _counts_missing(missing), min_count)


def bin_categorical(
    name: str,
    values: Sequence[str | None],
    bad: Sequence[int],
    *,
    config: BinningConfig = BinningConfig(),  # noqa: B008 (frozen dataclass)
) -> Binning:
    """Coarse classes of a categorical characteristic: categories ordered by (shrunk) bad rate,
    sparse ones merged with their closest neighbour, then ChiMerge."""
    present, missing = _split(values, bad)
    if not present:
        raise DataError(gettext_noop("Column %(column)s has no values to bin."), {"column": name})
    counts: dict[str, list[int]] = {}
    for v, y in present:
        counts.setdefault(v, [0, 0])[y] += 1
    overall = sum(y for _, y in present) / len(present)

    def shrunk(cat: str) -> tuple[float, str]:
        g, b = counts[cat]
        return ((b + CATEGORY_PRIOR * overall) / (g + b + CATEGORY_PRIOR), cat)

    order = sorted(counts, key=shrunk)
    blocks = [_Block(counts[c][0], counts[c][1], [c]) for c in order]
    min_count = config.min_share * len(present)
    _enforce_min_count(blocks, min_count)
    _chimerge(blocks, config.max_bins, config.chi2_threshold)
    return _finish(name, CATEGORICAL, blocks, "ordered", _counts_missing(missing), min_count)


def holdout_logloss(binning: Binning, values: Sequence[Value], bad: Sequence[int]) -> float:
    """Mean log-loss on rows not used for `binning`, predicting each row's bad rate by its bin's
    bad rate in training (with one pseudo-row of each outcome per bin, so no rate is 0 or 1)."""
    rates = [(b + 1) / (g + b + 2) for g, b in zip(binning.good, binning.bad, strict=True)]
    total = 0.0
    for v, y in zip(values, bad, strict=True):
        p = rates[binning.index(v)]
        total -= math.log(p if y else 1 - p)
    return total / len(values)
