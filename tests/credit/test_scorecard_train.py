"""Training (credit/scorecard/train.py) on the German credit file and the data reader: pure, no
database. One training run (~1 s) is shared by the module."""

from __future__ import annotations

import hashlib
import io
import json
import math
import re
from pathlib import Path

import numpy as np
import pytest

from credit.scorecard import Scorecard, score
from credit.scorecard import artefact as artefacts
from credit.scorecard.data import GERMAN_CREDIT_KINDS, read_csv
from credit.scorecard.errors import DataError
from credit.scorecard.logistic import fit_logistic
from credit.scorecard.train import PROTECTED, TrainConfig, stratified_folds, train

ROOT = Path(__file__).resolve().parents[2]
DATA = ROOT / "credit" / "data" / "german_credit_train.csv"
MODEL = ROOT / "credit" / "scorecard" / "models" / "german_v1.json"


@pytest.fixture(scope="module")
def data():
    return read_csv(DATA)


@pytest.fixture(scope="module")
def trained(data):
    return train(data, TrainConfig(seed=0))


def test_the_training_file_is_the_documented_one():
    readme = (ROOT / "credit" / "data" / "README.md").read_text()
    digest = hashlib.sha256(DATA.read_bytes()).hexdigest()
    assert digest in readme
    d = read_csv(DATA)
    assert (len(d), sum(d.bad)) == (800, 240)


def test_numeric_characteristics_get_monotonic_points_and_every_coefficient_is_positive(trained):
    for c in trained["characteristics"]:
        assert c["coefficient"] > 0, c["name"]  # points follow the WOE, never against it
        if c["kind"] == "numeric" and c["trend"] in ("ascending", "descending"):
            points = [b["points"] for b in c["bins"] if not b["missing"]]
            diffs = [b - a for a, b in zip(points, points[1:], strict=False)]
            want_down = c["trend"] == "ascending"  # bad rate up -> points down
            assert all((d <= 0) if want_down else (d >= 0) for d in diffs), c["name"]


def test_protected_characteristics_are_left_out_unless_asked(trained, data):
    names = {c["name"] for c in trained["characteristics"]}
    assert not names & set(PROTECTED)
    assert trained["training"]["config"]["exclude"] == list(PROTECTED)


def test_points_are_the_scaled_logistic_regression(trained, data):
    """score = offset + factor * logit(good) up to the rounding of each characteristic's points."""
    card = Scorecard(trained)
    model = trained["model"]
    scaling = trained["scaling"]
    names = [c["name"] for c in trained["characteristics"]]
    woe = {c["name"]: [b["woe"] for b in c["bins"]] for c in trained["characteristics"]}
    for row in data.rows[:50]:
        idx = card.bin_indices(row)
        logit = model["intercept"] + sum(
            model["coefficients"][n] * woe[n][i] for n, i in zip(names, idx, strict=True)
        )
        expected = scaling["offset"] + scaling["factor"] * logit
        assert abs(score(card, row).raw_score - expected) <= len(names) / 2 + 1e-6


def test_scaling_puts_even_odds_at_500_and_doubles_the_odds_every_50_points(trained):
    s = trained["scaling"]
    assert (s["base_score"], s["base_odds"], s["pdo"]) == (500, 1.0, 50)

    def odds_good(score_):
        return math.exp((score_ - s["offset"]) / s["factor"])

    assert odds_good(500) == pytest.approx(1.0)
    assert odds_good(550) == pytest.approx(2.0)
    assert odds_good(600) / odds_good(550) == pytest.approx(2.0)
    assert odds_good(450) == pytest.approx(0.5)


def test_training_is_deterministic_and_the_committed_model_is_its_output(trained, data):
    again = train(data, TrainConfig(seed=0))
    assert again["fingerprint"] == trained["fingerprint"]
    committed = artefacts.load(MODEL)

    def structure(art):  # integers and edges: the same on any BLAS, unlike the last float digit
        return [
            (c["name"], [(b.get("lower"), b.get("categories"), b["points"]) for b in c["bins"]])
            for c in art["characteristics"]
        ]

    assert structure(committed) == structure(trained)
    assert committed["bands"] == trained["bands"]


def test_the_artefact_is_json_with_everything_monitoring_needs(trained):
    text = artefacts.dumps(trained)
    loaded = json.loads(text)
    assert loaded == trained
    base = loaded["baseline"]
    assert math.isclose(sum(base["score"]["shares"]), 1.0, abs_tol=1e-5)
    assert len(base["score"]["shares"]) == len(base["score"]["edges"]) + 1
    for c in loaded["characteristics"]:
        shares = base["characteristics"][c["name"]]
        assert len(shares) == len(c["bins"])
        assert math.isclose(sum(shares), 1.0, abs_tol=1e-5)
    assert loaded["training"]["data"] == {"rows": 800, "bads": 240}


def test_cross_validation_and_bands_of_the_trained_model(trained):
    cv = trained["training"]["cv"]
    assert cv["folds"] == 10
    assert cv["auc_mean"] > 0.75
    for key in ("bands", "bands_out_of_fold"):
        rates = [r["bad_rate"] for r in trained["training"][key]]
        assert rates == sorted(rates, reverse=True)  # reject worst, approve best


def test_forward_selection_keeps_a_subset_in_the_order_it_added_them(data):
    art = train(data, TrainConfig(seed=1, selection="forward"))
    steps = art["training"]["selection"]["steps"]
    chosen = [c["name"] for c in art["characteristics"]]
    assert chosen == [s["added"] for s in steps[: len(chosen)]]
    assert chosen[0] == "status_of_existing_checking_account"  # the highest IV by far


def test_stratified_folds_cover_every_row_once_per_repeat_with_the_same_bad_rate():
    bad = [1] * 30 + [0] * 70
    splits = stratified_folds(bad, 5, 2, seed=3)
    assert len(splits) == 10
    for r in range(2):
        tests = [i for _, test in splits[5 * r : 5 * r + 5] for i in test]
        assert sorted(tests) == list(range(100))
    assert all(sum(bad[i] for i in test) == 6 for _, test in splits)
    assert stratified_folds(bad, 5, 2, seed=3) == splits


def test_l2_logistic_regression_matches_the_closed_form_of_a_symmetric_case():
    # x = +1 for 30 goods / 10 bads, x = -1 for 10 goods / 30 bads: without penalty
    # the MLE is a = 0, beta = ln(3) / 1 (log-odds 3:1 at x = 1)
    X = np.array([[1.0]] * 40 + [[-1.0]] * 40)
    y = np.array([1] * 30 + [0] * 10 + [1] * 10 + [0] * 30)
    a, beta = fit_logistic(X, y, l2=0.0)
    assert a == pytest.approx(0.0, abs=1e-8)
    assert beta[0] == pytest.approx(math.log(3), rel=1e-6)
    _, shrunk = fit_logistic(X, y, l2=20.0)
    assert 0 < shrunk[0] < beta[0]


def test_too_little_data_and_unknown_exclusions_are_clear_errors(data):
    with pytest.raises(DataError, match="at least 50 rows"):
        train(data.subset(range(30)))
    with pytest.raises(DataError, match="Cannot exclude unknown characteristic"):
        train(data, TrainConfig(exclude=("shoe_size",)))


# --- reading CSV ----------------------------------------------------------------------------------

HEADER = ",".join([*GERMAN_CREDIT_KINDS, "creditability"])


def _line(**changes):
    first = DATA.read_text(encoding="utf-8").splitlines()[1]
    row = next(iter(read_csv(io.StringIO(HEADER + "\n" + first + "\n")).rows))
    row = {
        k: ("" if v is None else (str(int(v)) if isinstance(v, float) else v))
        for k, v in row.items()
    }
    row.update(changes)
    cells = [row[k] for k in GERMAN_CREDIT_KINDS] + [changes.get("creditability", "good")]
    return ",".join(f'"{c}"' if "," in c else c for c in cells)


def test_a_csv_with_a_missing_column_names_it():
    text = HEADER.replace(",age_in_years", "") + "\n"
    with pytest.raises(DataError, match=r"Missing column\(s\): age_in_years\."):
        read_csv(io.StringIO(text))


def test_a_bad_number_names_the_line_and_the_column():
    text = "\n".join([HEADER, _line(), _line(age_in_years="forty")]) + "\n"
    with pytest.raises(DataError) as info:
        read_csv(io.StringIO(text))
    assert str(info.value) == "Line 3, column age_in_years: 'forty' is not a number."
    assert info.value.params["line"] == 3


def test_a_bad_outcome_and_a_short_row_name_their_line():
    text = "\n".join([HEADER, _line(creditability="maybe")]) + "\n"
    with pytest.raises(DataError, match=re.escape("Line 2, column creditability: 'maybe'")):
        read_csv(io.StringIO(text))
    text = "\n".join([HEADER, _line(), "1,2,3"]) + "\n"
    with pytest.raises(DataError, match="Line 3 has 3 fields, the header has 21"):
        read_csv(io.StringIO(text))


def test_empty_cells_are_missing_values_and_blank_lines_are_skipped():
    text = "\ufeff" + "\n".join([HEADER, _line(age_in_years="", purpose=""), "", _line()]) + "\n"
    d = read_csv(io.StringIO(text))
    assert len(d) == 2
    assert d.rows[0]["age_in_years"] is None and d.rows[0]["purpose"] is None
    assert d.lines == [2, 4]


def test_empty_and_missing_files():
    with pytest.raises(DataError, match="empty"):
        read_csv(io.StringIO(""))
    with pytest.raises(DataError, match="no rows"):
        read_csv(io.StringIO(HEADER + "\n"))
    with pytest.raises(DataError, match="No such file"):
        read_csv("/nonexistent/german.csv")
