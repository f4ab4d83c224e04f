"""`manage.py credit_monitor [--month YYYY-MM]`: the monthly stability check (C8). For every lender
and the champion and challenger scorecards, computes the month's score and characteristic PSI
against the training baseline and stores an alert per measure outside the stable band (shown on
the monitoring page and in the admin). Default month: the last complete one."""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError
from django.utils.translation import gettext as _

from carloan.errors import ApplicationError
from credit.services.monitoring import last_month, monitoring_month_run


class Command(BaseCommand):
    @property
    def help(self) -> str:
        return _(
            "Compute a month's population stability (PSI) of the champion and challenger "
            "scorecards per lender and store alerts for the measures outside the stable band."
        )

    def add_arguments(self, parser):
        parser.add_argument("--month", help=_("YYYY-MM; default: last month."))

    def handle(self, *args, month=None, **options):
        month = month or last_month()
        try:
            raised = monitoring_month_run(month=month)
        except ApplicationError as exc:
            raise CommandError(exc.message) from exc
        for lender, alert in raised:
            model = alert.scorecard
            self.stdout.write(
                f"{month}  {lender.name}  {model.name} {model.version}  "
                f"{alert.metric}: PSI {alert.psi:.3f} ({alert.band})"
            )
        self.stdout.write(
            self.style.SUCCESS(_("%(month)s: %(n)d alerts.") % {"month": month, "n": len(raised)})
        )
