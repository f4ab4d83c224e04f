"""`manage.py credit_monitor [--month YYYY-MM]`: the monthly stability check (C8). For every lender
and the champion and challenger scorecards, computes the month's score and characteristic PSI
against the training baseline and stores an alert per measure outside the stable band (shown on
the monitoring page and in the admin). Default month: the last complete one."""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone
from django.utils.translation import gettext as _

from accounts.models import Customer
from carloan.errors import ApplicationError
from credit.models import ScorecardModel
from credit.monitoring import month_start
from credit.services import monitoring_alerts_raise


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
        if not month:
            start = month_start(timezone.localdate(), 1)
            month = f"{start.year:04d}-{start.month:02d}"
        models = list(
            ScorecardModel.objects.filter(
                status__in=[ScorecardModel.Status.CHAMPION, ScorecardModel.Status.CHALLENGER]
            ).defer("artefact")
        )
        if not models:
            raise CommandError(_("No champion or challenger scorecard: nothing to monitor."))
        lenders = Customer.objects.filter(level=1).order_by("tree_id", "lft")
        total = 0
        for lender in lenders:
            for model in models:
                try:
                    alerts = monitoring_alerts_raise(scorecard=model, customer=lender, month=month)
                except ApplicationError as exc:
                    raise CommandError(exc.message) from exc
                total += len(alerts)
                for alert in alerts:
                    self.stdout.write(
                        f"{month}  {lender.name}  {model.name} {model.version}  "
                        f"{alert.metric}: PSI {alert.psi:.3f} ({alert.band})"
                    )
        self.stdout.write(
            self.style.SUCCESS(_("%(month)s: %(n)d alerts.") % {"month": month, "n": total})
        )
