"""Model monitoring against the training baseline (FEATURES.md C8), pure Python.

The artefact carries the baseline: the training-score distribution over its own deciles
(`baseline.score`) and, per characteristic, the training share of each bin (`baseline.
characteristics`). A population scored later is compared bin by bin with the population stability
index (PSI), for the score and for every characteristic, and each PSI gets its band: stable
(< 0.1), watch (0.1-0.3) or rebuild (> 0.3). `stability_by_month` does it per calendar month.
Small months give noisy PSIs: every row carries its `n`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import date, datetime
from typing import Any

from credit.scorecard.errors import ArtefactError, gettext_noop
from credit.scorecard.metrics import distribution, psi, psi_band
from credit.scorecard.scoring import Scorecard, compile_artefact


def _baseline(card: Scorecard) -> Mapping[str, Any]:
    baseline = card.artefact.get("baseline")
    if not isinstance(baseline, Mapping) or "score" not in baseline:
        raise ArtefactError(gettext_noop("The model artefact has no training baseline."))
    return baseline


def score_psi(artefact: Mapping[str, Any] | Scorecard, scores: Sequence[float]) -> float:
    """PSI of `scores` against the training scores (over the training deciles)."""
    card = compile_artefact(artefact)
    base = _baseline(card)["score"]
    return psi(base["shares"], distribution(scores, base["edges"]))


def characteristic_psi(
    artefact: Mapping[str, Any] | Scorecard, applicants: Sequence[Mapping[str, Any]]
) -> dict[str, float]:
    """PSI per characteristic over the model's bins (the missing / other bin included)."""
    card = compile_artefact(artefact)
    return _characteristic_psi(card, [card.bin_indices(a) for a in applicants])


def _characteristic_psi(card: Scorecard, indices: Sequence[Sequence[int]]) -> dict[str, float]:
    if not indices:
        raise ValueError("no applicants")
    expected = _baseline(card)["characteristics"]
    out: dict[str, float] = {}
    for j, c in enumerate(card.characteristics):
        counts = [0] * len(c.points)
        for row in indices:
            counts[row[j]] += 1
        out[c.name] = psi(expected[c.name], [k / len(indices) for k in counts])
    return out


def stability(
    artefact: Mapping[str, Any] | Scorecard, applicants: Sequence[Mapping[str, Any]]
) -> dict[str, Any]:
    """Score PSI and per-characteristic PSI of one population, each with its band."""
    card = compile_artefact(artefact)
    indices = [card.bin_indices(a) for a in applicants]
    scores = [card.score(a).score for a in applicants]
    score_value = score_psi(card, scores)
    per_char = _characteristic_psi(card, indices)
    return {
        "n": len(applicants),
        "score_psi": score_value,
        "score_band": psi_band(score_value),
        "characteristics": {
            name: {"psi": value, "band": psi_band(value)} for name, value in per_char.items()
        },
    }


def stability_by_month(
    artefact: Mapping[str, Any] | Scorecard,
    records: Iterable[tuple[date | datetime, Mapping[str, Any]]],
) -> list[dict[str, Any]]:
    """`records` = (when the application came in, its characteristics). One row per calendar
    month ("YYYY-MM", oldest first) with the `stability` figures of that month's applicants. Give
    local dates (the lender's month), not UTC instants near midnight."""
    card = compile_artefact(artefact)
    months: dict[str, list[Mapping[str, Any]]] = {}
    for when, applicant in records:
        months.setdefault(f"{when.year:04d}-{when.month:02d}", []).append(applicant)
    return [{"month": m, **stability(card, months[m])} for m in sorted(months)]
