"""Stability monitoring against the training baseline (credit/scorecard/monitoring.py): pure."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest

from credit.scorecard import artefact as artefacts
from credit.scorecard import score
from credit.scorecard.data import read_csv
from credit.scorecard.errors import ArtefactError
from credit.scorecard.monitoring import (
    characteristic_psi,
    score_psi,
    stability,
    stability_by_month,
)

ROOT = Path(__file__).resolve().parents[2]
MODEL = ROOT / "credit" / "scorecard" / "models" / "german_v1.json"
DATA = ROOT / "credit" / "data" / "german_credit_train.csv"


@pytest.fixture(scope="module")
def german():
    return artefacts.load(MODEL)


@pytest.fixture(scope="module")
def rows():
    return read_csv(DATA).rows


def test_the_training_population_is_stable_against_itself(german, rows):
    report = stability(german, rows)
    assert report["n"] == 800
    assert report["score_psi"] == pytest.approx(0.0, abs=1e-6)
    assert report["score_band"] == "stable"
    assert all(v["psi"] == pytest.approx(0.0, abs=1e-6) for v in report["characteristics"].values())


def test_a_population_of_long_loans_drifts_on_duration_and_on_the_score(german, rows):
    long_loans = [r for r in rows if r["duration_in_month"] >= 36]
    per_char = characteristic_psi(german, long_loans)
    assert per_char["duration_in_month"] > 0.3  # rebuild
    assert per_char["duration_in_month"] == max(per_char.values())
    scores = [score(german, r).score for r in long_loans]
    assert score_psi(german, scores) > 0.1
    report = stability(german, long_loans)
    assert report["characteristics"]["duration_in_month"]["band"] == "rebuild"


def test_stability_by_month_groups_applications_by_calendar_month(german, rows):
    records = [(date(2026, 1, 1 + i % 28), r) for i, r in enumerate(rows[:400])]
    records += [
        (date(2026, 2, 1 + i % 28), r) for i, r in enumerate(rows) if r["age_in_years"] < 26
    ]
    report = stability_by_month(german, records)
    assert [m["month"] for m in report] == ["2026-01", "2026-02"]
    jan, feb = report
    assert jan["n"] == 400
    assert jan["characteristics"]["age_in_years"]["band"] == "stable"
    assert feb["characteristics"]["age_in_years"]["band"] == "rebuild"  # only the young
    assert feb["n"] == sum(1 for r in rows if r["age_in_years"] < 26)


def test_an_artefact_without_a_baseline_cannot_be_monitored(german, rows):
    bare = artefacts.with_fingerprint({k: v for k, v in german.items() if k != "baseline"})
    with pytest.raises(ArtefactError, match="no training baseline"):
        score_psi(bare, [500, 600])
