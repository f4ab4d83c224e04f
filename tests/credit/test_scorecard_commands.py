"""`manage.py train_scorecard` and `manage.py evaluate_scorecard` (no database needed)."""

from __future__ import annotations

import csv
import json
from io import StringIO
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command

from credit.scorecard import artefact as artefacts

ROOT = Path(__file__).resolve().parents[2]
DATA = ROOT / "credit" / "data" / "german_credit_train.csv"
MODEL = ROOT / "credit" / "scorecard" / "models" / "german_v1.json"


def run(*args) -> str:
    out = StringIO()
    call_command(*args, stdout=out, stderr=StringIO())
    return out.getvalue()


def test_train_writes_an_artefact_that_evaluate_reads(tmp_path):
    out = tmp_path / "model.json"
    text = run("train_scorecard", "--data", str(DATA), "--out", str(out), "--seed", "3")
    assert "800 rows, 240 bad" in text
    assert f"Wrote {out}" in text
    artefact = artefacts.load(out)
    assert artefact["training"]["config"]["seed"] == 3
    assert artefact["training"]["data"]["file"] == "german_credit_train.csv"
    report = json.loads(
        run("evaluate_scorecard", "--model", str(out), "--data", str(DATA), "--json")
    )
    assert report["auc"] == pytest.approx(artefact["training"]["metrics"]["auc"], abs=1e-6)


def test_evaluate_json_has_exactly_the_documented_keys():
    report = json.loads(
        run("evaluate_scorecard", "--model", str(MODEL), "--data", str(DATA), "--json")
    )
    assert set(report) == {"auc", "ks", "gini", "psi", "bands"}
    assert report["gini"] == pytest.approx(2 * report["auc"] - 1)
    assert report["psi"] == pytest.approx(0.0, abs=1e-9)  # the training file against itself
    assert [b["band"] for b in report["bands"]] == ["reject", "review", "approve"]
    assert sum(b["count"] for b in report["bands"]) == 800


def test_evaluate_prints_the_figures_and_the_band_table():
    text = run("evaluate_scorecard", "--model", str(MODEL), "--data", str(DATA))
    assert "german v1 on 800 rows (240 bad):" in text
    for label in ("AUC", "KS", "Gini", "PSI", "(stable)"):
        assert label in text
    assert "| reject | 300-499 |" in text
    assert "| review | 500-549 |" in text
    assert "| approve | 550-1000 |" in text
    assert "duration_in_month" in text  # per-characteristic stability


def test_evaluate_flags_a_drifted_population(tmp_path):
    lines = DATA.read_text(encoding="utf-8").splitlines()
    header = lines[0].split(",")
    duration = header.index("duration_in_month")
    long_loans = [ln for ln in lines[1:] if int(ln.split(",")[duration]) >= 36]
    path = tmp_path / "long.csv"
    path.write_text("\n".join([lines[0], *long_loans]) + "\n", encoding="utf-8")
    text = run("evaluate_scorecard", "--model", str(MODEL), "--data", str(path))
    duration_line = next(ln for ln in text.splitlines() if ln.strip().startswith("duration_in"))
    assert duration_line.endswith("rebuild")


def _rows() -> list[list[str]]:
    with DATA.open(encoding="utf-8", newline="") as f:
        return list(csv.reader(f))


def _write(tmp_path, rows: list[list[str]]) -> Path:
    path = tmp_path / "data.csv"
    with path.open("w", encoding="utf-8", newline="") as f:
        csv.writer(f).writerows(rows)
    return path


def test_a_missing_column_is_a_command_error_naming_it(tmp_path):
    rows = _rows()[:3]
    housing = rows[0].index("housing")
    path = _write(tmp_path, [r[:housing] + r[housing + 1 :] for r in rows])
    with pytest.raises(CommandError, match=r"Missing column\(s\): housing\."):
        run("evaluate_scorecard", "--model", str(MODEL), "--data", str(path))
    with pytest.raises(CommandError, match=r"Missing column\(s\): housing\."):
        run("train_scorecard", "--data", str(path), "--out", str(tmp_path / "m.json"))


def test_a_bad_value_is_a_command_error_naming_the_line_and_column(tmp_path):
    rows = _rows()
    rows[5][-1] = "excellent"  # line 6 of the file
    path = _write(tmp_path, rows)
    with pytest.raises(CommandError, match="Line 6, column creditability: 'excellent'"):
        run("train_scorecard", "--data", str(path), "--out", str(tmp_path / "m.json"))
    assert not (tmp_path / "m.json").exists()
    rows = _rows()
    rows[1][rows[0].index("age_in_years")] = "old"
    path = _write(tmp_path, rows)
    with pytest.raises(CommandError, match="Line 2, column age_in_years: 'old' is not a number"):
        run("evaluate_scorecard", "--model", str(MODEL), "--data", str(path))


def test_a_missing_or_tampered_model_is_a_command_error(tmp_path):
    with pytest.raises(CommandError, match="No such file"):
        run("evaluate_scorecard", "--model", str(tmp_path / "none.json"), "--data", str(DATA))
    art = json.loads(MODEL.read_text(encoding="utf-8"))
    art["characteristics"][0]["bins"][0]["points"] += 100
    path = tmp_path / "tampered.json"
    path.write_text(json.dumps(art), encoding="utf-8")
    with pytest.raises(CommandError, match="fingerprint"):
        run("evaluate_scorecard", "--model", str(path), "--data", str(DATA))


def test_data_with_one_outcome_only_cannot_be_evaluated(tmp_path):
    header, *rows = _rows()
    path = _write(tmp_path, [header, *(r for r in rows if r[-1] == "good")])
    with pytest.raises(CommandError, match="at least one good and one bad"):
        run("evaluate_scorecard", "--model", str(MODEL), "--data", str(path))
