"""Monitoring (FEATURES.md C8) over the stored applications, and dealer-level figures (C11).

For one scorecard model and the applications a user may see, per calendar month (the lender's
local month, TIME_ZONE):

- population stability against the model's training baseline (`credit.scorecard.monitoring`):
  the PSI of the score over the training deciles and of every characteristic over its bins, each
  with its band: stable (< 0.1), watch (0.1-0.3), rebuild (> 0.3). The applicants are re-scored
  with the chosen model from the characteristics stored with each application, so a challenger
  or a retired model can be watched on today's population too;
- KS, AUC and Gini once outcomes are known (good / bad), from the same scores; None until a month
  has both a good and a bad outcome;
- `alerts`: every month and measure in the watch or rebuild band.

`dealer_figures` is the dealer-level view: applications, approvals, reviews, rejections, loans,
known outcomes and the bad rate, the mean score, per dealer.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Any

from django.db.models import Avg, Count, Q, QuerySet
from django.utils import timezone

from credit.models import Application, ScorecardModel
from credit.pipeline import scorecard_for
from credit.scorecard import Scorecard
from credit.scorecard.metrics import PSI_STABLE, auc, gini, ks
from credit.scorecard.monitoring import stability

DEFAULT_MONTHS = 6
MAX_MONTHS = 24


def month_start(day: dt.date, back: int = 0) -> dt.date:
    """The first day of the month `back` months before the month of `day`."""
    index = day.year * 12 + (day.month - 1) - back
    return dt.date(index // 12, index % 12 + 1, 1)


def period(months: int, *, today: dt.date | None = None) -> tuple[dt.datetime, dt.datetime]:
    """[start of the month `months - 1` months ago, now]: the last `months` calendar months."""
    if not 1 <= months <= MAX_MONTHS:
        raise ValueError(f"months must be 1 to {MAX_MONTHS}")
    today = today or timezone.localdate()
    start = month_start(today, months - 1)
    tz = timezone.get_current_timezone()
    since = dt.datetime.combine(start, dt.time.min, tzinfo=tz)
    until = dt.datetime.combine(month_start(today, -1), dt.time.min, tzinfo=tz)
    return since, until


def _characteristics(card: Scorecard, attributes: Mapping[str, Any]) -> dict[str, Any]:
    return {name: attributes.get(name) for name in card.names}


def _discrimination(rows: list[tuple[int, int]]) -> dict[str, Any]:
    """KS / AUC / Gini of (bad, score) pairs; None when one class is missing."""
    bads = [b for b, _s in rows]
    n_bad = sum(bads)
    out: dict[str, Any] = {"outcomes": len(rows), "bads": n_bad, "ks": None, "auc": None}
    out["gini"] = None
    if n_bad and n_bad < len(rows):
        scores = [s for _b, s in rows]
        out.update(ks=ks(bads, scores), auc=auc(bads, scores), gini=gini(bads, scores))
    return out


def model_monitoring(
    applications: QuerySet[Application],
    model: ScorecardModel,
    *,
    since: dt.datetime,
    until: dt.datetime,
) -> dict[str, Any]:
    """The monthly stability and discrimination of `model` over `applications` submitted in
    [since, until). See the module docstring for what each row holds."""
    card = scorecard_for(model.pk)
    rows = (
        applications.filter(created_at__gte=since, created_at__lt=until)
        .exclude(status=Application.Status.SUBMITTED)
        .order_by()
        .values_list("created_at", "attributes", "outcome")
    )
    by_month: dict[str, list[tuple[dict[str, Any], str]]] = {}
    for created_at, attributes, outcome in rows.iterator(chunk_size=2000):
        local = timezone.localtime(created_at)
        key = f"{local.year:04d}-{local.month:02d}"
        by_month.setdefault(key, []).append((_characteristics(card, attributes or {}), outcome))
    months = []
    alerts = []
    everything: list[tuple[int, int]] = []
    for key in sorted(by_month):
        population = by_month[key]
        row = {"month": key, **stability(card, [a for a, _o in population])}
        known = [
            (1 if outcome == Application.Outcome.BAD else 0, card.score(a).score)
            for a, outcome in population
            if outcome in (Application.Outcome.GOOD, Application.Outcome.BAD)
        ]
        everything.extend(known)
        row.update(_discrimination(known))
        months.append(row)
        if row["score_band"] != PSI_STABLE:
            alerts.append(
                {
                    "month": key,
                    "metric": "score",
                    "psi": row["score_psi"],
                    "band": row["score_band"],
                }
            )
        for name, value in row["characteristics"].items():
            if value["band"] != PSI_STABLE:
                alerts.append(
                    {"month": key, "metric": name, "psi": value["psi"], "band": value["band"]}
                )
    return {
        "model": {
            "id": model.pk,
            "name": model.name,
            "version": model.version,
            "status": model.status,
            "label": str(model),
            "training": (model.metrics or {}).get("metrics", {}),
        },
        "characteristics": card.names,
        "since": since.isoformat(),
        "until": until.isoformat(),
        "months": months,
        "overall": _discrimination(everything),
        "alerts": alerts,
    }


def dealer_figures(applications: QuerySet[Application]) -> list[dict[str, Any]]:
    """Per dealer: applications, decisions, loans, known outcomes, bad rate, mean score (one
    aggregate query), most applications first."""
    S, Out = Application.Status, Application.Outcome
    rows = (
        applications.filter(dealer__isnull=False)
        .order_by()
        .values("dealer_id", "dealer__code", "dealer__name", "dealer__rating", "dealer__status")
        .annotate(
            applications=Count("id"),
            approved=Count("id", filter=Q(status__in=[S.APPROVED, S.LOAN_CREATED])),
            review=Count("id", filter=Q(status=S.REVIEW)),
            rejected=Count("id", filter=Q(status=S.REJECTED)),
            loans=Count("id", filter=Q(status=S.LOAN_CREATED)),
            good=Count("id", filter=Q(outcome=Out.GOOD)),
            bad=Count("id", filter=Q(outcome=Out.BAD)),
            mean_score=Avg("score"),
        )
        .order_by("-applications", "dealer__code")
    )
    out = []
    for r in rows:
        known = r["good"] + r["bad"]
        out.append(
            {
                "id": r["dealer_id"],
                "code": r["dealer__code"],
                "name": r["dealer__name"],
                "rating": r["dealer__rating"],
                "status": r["dealer__status"],
                "applications": r["applications"],
                "approved": r["approved"],
                "review": r["review"],
                "rejected": r["rejected"],
                "loans": r["loans"],
                "approval_rate": r["approved"] / r["applications"] if r["applications"] else None,
                "outcomes": known,
                "bad": r["bad"],
                "bad_rate": r["bad"] / known if known else None,
                "mean_score": round(r["mean_score"], 1) if r["mean_score"] is not None else None,
            }
        )
    return out


def decision_mix(applications: QuerySet[Application]) -> dict[str, Any]:
    """Counts per status of `applications`."""
    counts = dict(
        applications.order_by()
        .values_list("status")
        .annotate(n=Count("id"))
        .values_list("status", "n")
    )
    return {"counts": counts, "total": sum(counts.values())}
