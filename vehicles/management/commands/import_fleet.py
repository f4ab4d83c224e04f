"""`manage.py import_fleet FILE [--customer CODE] [--dry-run]`: bulk import of vehicles with their
devices from a .csv or .xlsx file (see vehicles.imports). All or nothing: any bad row is reported
and nothing is imported. Runs with platform scope (no user)."""

from __future__ import annotations

from pathlib import Path

from django.core.management.base import BaseCommand, CommandError
from django.utils.translation import gettext as _

from carloan.errors import ApplicationError, ImportRowsError
from vehicles.imports import fleet_import, read_fleet_file

PROGRESS_EVERY = 200  # rows


class Command(BaseCommand):
    @property
    def help(self) -> str:  # translated when asked for, not at import (argparse needs str)
        return _(
            "Import vehicles and their devices from a CSV or XLSX file with the columns "
            "plate,vin,imei,protocol,device_kind[,customer]."
        )

    def add_arguments(self, parser):
        parser.add_argument("file", help=_("A .csv (UTF-8 or GBK) or .xlsx file."))
        parser.add_argument(
            "--customer",
            metavar="CODE",
            help=_("Customer code for rows whose customer column is empty."),
        )
        parser.add_argument(
            "--dry-run",
            action="store_true",
            help=_("Check everything and roll back: nothing is saved."),
        )

    def handle(self, *args, file, customer=None, dry_run=False, **options):
        path = Path(file)
        if not path.is_file():
            raise CommandError(_("No such file: %s") % path)
        last_reported = 0

        def progress(done: int, total: int) -> None:
            nonlocal last_reported
            if done - last_reported >= PROGRESS_EVERY or done == total:
                last_reported = done
                self.stdout.write(_("%(done)d / %(total)d rows") % {"done": done, "total": total})

        try:
            with path.open("rb") as fileobj:
                rows = read_fleet_file(fileobj, path.name, max_rows=None)
            self.stdout.write(_("%d rows read, checking...") % len(rows))
            result = fleet_import(
                rows_source=rows,
                by=None,
                default_customer=customer,
                dry_run=dry_run,
                progress=progress,
            )
        except ImportRowsError as exc:
            for row, message in exc.errors:
                self.stderr.write(_("row %(row)d: %(error)s") % {"row": row, "error": message})
            raise CommandError(exc.message) from exc
        except ApplicationError as exc:
            raise CommandError(exc.message) from exc

        self.stdout.write(self.style.SUCCESS(result.summary()))
