"""django-q2 entry points of the credit app. `monthly_stability_check` is meant to run daily (for
example `manage.py setup_schedules` with a 1,440-minute schedule): it recomputes the last
complete month, which is idempotent, so a missed day or a late outcome costs nothing."""

from __future__ import annotations

import logging

from credit.services.monitoring import last_month, monitoring_month_run

logger = logging.getLogger("carloan.credit")


def monthly_stability_check(month: str | None = None) -> dict:
    """PSI of the champion and challenger per lender for the month; alerts stored (C8)."""
    month = month or last_month()
    raised = monitoring_month_run(month=month)
    logger.info("credit stability check %s: %d alerts", month, len(raised))
    return {"month": month, "alerts": len(raised)}
