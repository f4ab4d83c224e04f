"""Monitoring (C8): score and characteristic PSI by month against the training baseline checked
against hand-computed values, the bands and alerts, KS / AUC once outcomes are known, the
`credit_monitor` command."""

from __future__ import annotations

import datetime as dt
import math
from io import StringIO

import pytest
import time_machine
from django.core.management import call_command

from carloan.errors import ApplicationError
from credit.models import Application, MonitoringAlert
from credit.monitoring import model_monitoring, period
from credit.services import application_outcome_set, monitoring_alerts_raise
from tests.credit.test_pipeline import catalogue, champion, submit

SEP = dt.datetime(2026, 9, 10, 4, 0, tzinfo=dt.UTC)
OCT = dt.datetime(2026, 10, 10, 4, 0, tzinfo=dt.UTC)
FLOOR = 1e-4  # empty bins count as 0.01 % (credit.scorecard.metrics.PSI_FLOOR)


def term(actual: float, expected: float) -> float:
    a, e = max(actual, FLOOR), max(expected, FLOOR)
    return (a - e) * math.log(a / e)


@pytest.fixture
def population(world):
    """The edges scorecard (x: bins <1, [1,2), [2,3), >=3, each 25 % at training; scores 499,
    500, 549, 550; score baseline <500 25 %, 500-549 25 %, >=550 50 %).
    September: one applicant per bin. October: 8 in >=3, 2 in <1."""
    product, _dealer = catalogue(world)
    model = champion()
    a = world.customers["a"]
    sep = [submit(a, product, attributes={"x": x}, at=SEP) for x in (0.5, 1.5, 2.5, 3)]
    octo = [submit(a, product, attributes={"x": 3}, at=OCT) for _ in range(8)]
    octo += [submit(a, product, attributes={"x": 0}, at=OCT) for _ in range(2)]
    return model, sep, octo


def test_psi_by_month_matches_the_hand_computed_values(population):
    model, _sep, _oct = population
    since, until = period(3, today=dt.date(2026, 11, 22))
    report = model_monitoring(Application.objects.all(), model, since=since, until=until)
    sep, octo = report["months"]
    assert (sep["month"], sep["n"], octo["month"], octo["n"]) == ("2026-09", 4, "2026-10", 10)
    # September: x exactly as at training -> 0; scores 499 | 500, 549 | 550 = 25/50/25 % against
    # 25/25/50 %: 0 + 0.25 ln 2 + 0.25 ln 2
    assert sep["characteristics"]["x"]["psi"] == pytest.approx(0.0, abs=1e-12)
    assert sep["characteristics"]["x"]["band"] == "stable"
    assert sep["score_psi"] == pytest.approx(0.5 * math.log(2))  # 0.3466
    assert sep["score_band"] == "rebuild"
    # October: x 20 % <1, 0, 0, 80 % >=3; scores 20 % <500, 0 %, 80 % >=550
    x_psi = term(0.2, 0.25) + 2 * term(0, 0.25) + term(0.8, 0.25) + term(0, 0)
    score_psi = term(0.2, 0.25) + term(0, 0.25) + term(0.8, 0.5)
    assert octo["characteristics"]["x"]["psi"] == pytest.approx(x_psi)  # 4.5613
    assert octo["score_psi"] == pytest.approx(score_psi)  # 2.1074
    assert round(x_psi, 4) == 4.5613 and round(score_psi, 4) == 2.1074
    assert {(a["month"], a["metric"], a["band"]) for a in report["alerts"]} == {
        ("2026-09", "score", "rebuild"),
        ("2026-10", "score", "rebuild"),
        ("2026-10", "x", "rebuild"),
    }


def test_a_watch_band_between_0_1_and_0_3(world):
    product, _dealer = catalogue(world)
    model = champion()
    a = world.customers["a"]
    # 3 / 3 / 3 / 11 of 20 against 25 % each: x PSI = 3 x (0.15-0.25) ln(0.6) + 0.3 ln(2.2)
    for x, n in ((0.5, 3), (1.5, 3), (2.5, 3), (3, 11)):
        for _ in range(n):
            submit(a, product, attributes={"x": x}, at=OCT)
    since, until = period(2, today=dt.date(2026, 11, 1))
    row = model_monitoring(Application.objects.all(), model, since=since, until=until)["months"][0]
    expected = 3 * term(0.15, 0.25) + term(0.55, 0.25)
    assert row["characteristics"]["x"]["psi"] == pytest.approx(expected)  # 0.3898
    assert round(expected, 4) == 0.3898
    # scores: 15 % <500, 30 % 500-549, 55 % >=550 against 25/25/50
    score = term(0.15, 0.25) + term(0.30, 0.25) + term(0.55, 0.5)
    assert row["score_psi"] == pytest.approx(score)  # 0.0650: stable
    assert (round(score, 4), row["score_band"]) == (0.065, "stable")


def test_ks_and_auc_once_outcomes_are_known(population):
    model, sep, _oct = population
    since, until = period(3, today=dt.date(2026, 11, 22))
    before = model_monitoring(Application.objects.all(), model, since=since, until=until)
    assert before["months"][0]["ks"] is None and before["overall"]["auc"] is None
    # scores 499 bad, 500 good, 549 bad, 550 good
    for app, outcome in zip(sep, ("bad", "good", "bad", "good"), strict=True):
        application_outcome_set(application=app, outcome=outcome)
    row = model_monitoring(Application.objects.all(), model, since=since, until=until)["months"][0]
    # goods above bads in 3 of the 4 good-bad pairs (500 < 549): AUC 0.75; KS: after 499 the
    # bads are at 1/2 and the goods at 0
    assert (row["outcomes"], row["bads"]) == (4, 2)
    assert row["auc"] == pytest.approx(0.75)
    assert row["ks"] == pytest.approx(0.5)
    assert row["gini"] == pytest.approx(0.5)


def test_alerts_are_stored_per_month_and_replaced_when_recomputed(population, world):
    model, _sep, octo = population
    lender = world.customers["a"]
    alerts = monitoring_alerts_raise(scorecard=model, customer=lender, month="2026-10")
    assert [(a.metric, a.band, a.applications) for a in alerts] == [
        ("x", "rebuild", 10),
        ("score", "rebuild", 10),
    ]
    again = monitoring_alerts_raise(scorecard=model, customer=lender, month="2026-10")
    assert MonitoringAlert.objects.count() == 2 and len(again) == 2
    assert (
        monitoring_alerts_raise(scorecard=model, customer=world.customers["b"], month="2026-10")
        == []
    )


def test_the_command_checks_every_lender(population, world):
    out = StringIO()
    call_command("credit_monitor", "--month", "2026-09", stdout=out)
    text = out.getvalue()
    assert "2026-09  Lender A  edges v1  score: PSI 0.347 (rebuild)" in text
    assert "2026-09: 1 alerts." in text
    assert (
        MonitoringAlert.objects.filter(month="2026-09", customer=world.customers["a"]).count() == 1
    )


def test_the_daily_job_checks_last_month_and_refuses_a_bad_month(population, world):
    from credit.jobs import monthly_stability_check

    with time_machine.travel(dt.datetime(2026, 10, 15, 12, tzinfo=dt.UTC), tick=False):
        assert monthly_stability_check() == {"month": "2026-09", "alerts": 1}
        assert monthly_stability_check() == {"month": "2026-09", "alerts": 1}  # idempotent
    assert MonitoringAlert.objects.filter(month="2026-09").count() == 1
    with pytest.raises(ApplicationError):
        monthly_stability_check("2026-13")
