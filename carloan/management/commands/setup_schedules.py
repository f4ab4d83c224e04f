"""`manage.py setup_schedules`: create or update the worker's scheduled jobs (idempotent)."""

from __future__ import annotations

from django.conf import settings
from django.core.management.base import BaseCommand


def schedules() -> list[dict]:
    """Every scheduled job: name, dotted function, every N minutes."""
    return [
        {
            "name": "alarms: absence and time scan",
            "func": "alarms.jobs.scan_alarms",
            "minutes": settings.ALARM_SCAN_MINUTES,
        },
        {
            # Score and characteristic PSI of last month per lender, alerts stored (C8);
            # re-running replaces the month's alerts.
            "name": "credit: monthly stability check",
            "func": "credit.jobs.monthly_stability_check",
            "minutes": 24 * 60,
        },
    ]


class Command(BaseCommand):
    help = "Create or update the django-q2 schedules (alarm scans ...). Safe to run repeatedly."

    def handle(self, *args, **options):
        from django_q.models import Schedule

        for job in schedules():
            obj, created = Schedule.objects.update_or_create(
                name=job["name"],
                defaults={
                    "func": job["func"],
                    "schedule_type": Schedule.MINUTES,
                    "minutes": job["minutes"],
                    "repeats": -1,
                },
            )
            verb = "created" if created else "updated"
            self.stdout.write(f"{verb}: {obj.name} ({obj.func}, every {obj.minutes} min)")
