"""Monitoring alerts (C8): the PSI of a month that reached the watch or rebuild band is stored as
a MonitoringAlert per lender, model, month and measure (re-running a month updates its rows)."""

from __future__ import annotations

import datetime as dt
import re

from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from accounts.models import Customer
from carloan.errors import ApplicationError
from credit.models import Application, MonitoringAlert, ScorecardModel
from credit.monitoring import model_monitoring

_MONTH_RE = re.compile(r"^(\d{4})-(0[1-9]|1[0-2])$")


def month_bounds(month: str) -> tuple[dt.datetime, dt.datetime]:
    """ "2026-11" -> [1 Nov 2026 00:00, 1 Dec 2026 00:00) in the local time zone."""
    match = _MONTH_RE.match(month or "")
    if not match:
        raise ApplicationError(_("A month is written YYYY-MM, e.g. 2026-11."))
    year, number = int(match[1]), int(match[2])
    tz = timezone.get_current_timezone()
    start = dt.datetime(year, number, 1, tzinfo=tz)
    end = dt.datetime(year + number // 12, number % 12 + 1, 1, tzinfo=tz)
    return start, end


@transaction.atomic
def monitoring_alerts_raise(
    *, scorecard: ScorecardModel, customer: Customer, month: str, at: dt.datetime | None = None
) -> list[MonitoringAlert]:
    """Compute `month`'s stability of `scorecard` over the applications of `customer`'s subtree
    and store an alert per measure outside the stable band (the month's earlier alerts for this
    model and customer are replaced). Returns the alerts, worst first; none without applications."""
    since, until = month_bounds(month)
    applications = Application.objects.filter(
        customer__tree_id=customer.tree_id,
        customer__lft__gte=customer.lft,
        customer__lft__lte=customer.rght,
    )
    report = model_monitoring(applications, scorecard, since=since, until=until)
    MonitoringAlert.objects.filter(scorecard=scorecard, customer=customer, month=month).delete()
    rows = report["months"]
    if not rows:
        return []
    n = rows[0]["n"]
    now = at or timezone.now()
    alerts = MonitoringAlert.objects.bulk_create(
        MonitoringAlert(
            scorecard=scorecard,
            customer=customer,
            month=month,
            metric=alert["metric"],
            psi=round(alert["psi"], 6),
            band=alert["band"],
            applications=n,
            created_at=now,
        )
        for alert in report["alerts"]
    )
    return sorted(alerts, key=lambda a: -a.psi)


def last_month() -> str:
    """The last complete calendar month, "YYYY-MM", in the local time zone."""
    from credit.monitoring import month_start

    start = month_start(timezone.localdate(), 1)
    return f"{start.year:04d}-{start.month:02d}"


def monitoring_month_run(*, month: str | None = None) -> list[tuple[Customer, MonitoringAlert]]:
    """The monthly stability check: `monitoring_alerts_raise` for every lender (level 1) and the
    champion and the challenger, for `month` (default: the last complete one). Idempotent: a
    re-run replaces the month's alerts. ApplicationError when no model is active."""
    month = month or last_month()
    month_bounds(month)  # a bad month is refused before anything is replaced
    models = list(
        ScorecardModel.objects.filter(
            status__in=[ScorecardModel.Status.CHAMPION, ScorecardModel.Status.CHALLENGER]
        )
        .defer("artefact")
        .order_by("status")
    )
    if not models:
        raise ApplicationError(_("No champion or challenger scorecard: nothing to monitor."))
    raised = []
    for lender in Customer.objects.filter(level=1).order_by("tree_id", "lft"):
        for model in models:
            alerts = monitoring_alerts_raise(scorecard=model, customer=lender, month=month)
            raised.extend((lender, alert) for alert in alerts)
    return raised
