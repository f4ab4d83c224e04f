"""`manage.py import_risk_points FILE [--replace] [--skip-errors]`: load risk points (R1) from a
CSV (`name,kind,lat,lon,radius_m[,address]`, UTF-8 or GBK) or GeoJSON file; see alarms.imports.
All or nothing unless --skip-errors. Runs with platform scope (no user). A progress bar goes to
stderr (redrawn in place on a terminal, one line per 10 % otherwise)."""

from __future__ import annotations

import time
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError
from django.utils.translation import gettext as _

from alarms.imports import read_risk_point_file, risk_points_import
from carloan.errors import ApplicationError, ImportRowsError

MAX_LISTED = 200  # bad rows printed one by one; the rest are counted


class ProgressBar:
    """A plain-text progress bar: `[#####-----]  52,000 / 100,000 rows  4.1 s`."""

    WIDTH = 30

    def __init__(self, stream, *, tty: bool) -> None:
        self.stream, self.tty = stream, tty
        self.started = time.perf_counter()
        self.last_tenth = -1

    def __call__(self, done: int, total: int) -> None:
        fraction = done / total if total else 1.0
        filled = int(self.WIDTH * fraction)
        bar = "#" * filled + "-" * (self.WIDTH - filled)
        seconds = time.perf_counter() - self.started
        line = f"[{bar}] {done:>9,} / {total:,} {_('rows')}  {seconds:.1f} s"
        if self.tty:
            self.stream.write("\r" + line + ("\n" if done >= total else ""))
            self.stream.flush()
            return
        tenth = int(fraction * 10)
        if tenth != self.last_tenth:
            self.last_tenth = tenth
            self.stream.write(line + "\n")


class Command(BaseCommand):
    @property
    def help(self) -> str:  # translated when asked for, not at import (argparse needs str)
        return _(
            "Import risk points from a CSV file with the columns name,kind,lat,lon,radius_m"
            "[,address] (UTF-8 or GBK) or a GeoJSON FeatureCollection of points."
        )

    def add_arguments(self, parser):
        parser.add_argument("file", help=_("A .csv or .geojson file."))
        parser.add_argument(
            "--replace",
            action="store_true",
            help=_("Delete every stored risk point first (in the same transaction)."),
        )
        parser.add_argument(
            "--skip-errors",
            action="store_true",
            help=_("Import the good rows and report the bad ones (default: all or nothing)."),
        )

    def _rows(self, rows: list[tuple[int, str]], label: str) -> None:
        for row, message in rows[:MAX_LISTED]:
            self.stderr.write(
                _("%(label)s row %(row)d: %(error)s")
                % {"label": label, "row": row, "error": message}
            )
        if len(rows) > MAX_LISTED:
            self.stderr.write(_("... and %d more") % (len(rows) - MAX_LISTED))

    def handle(self, *args, file, replace=False, skip_errors=False, **options):
        path = Path(file)
        if not path.is_file():
            raise CommandError(_("No such file: %s") % path)
        stream = self.stderr._out
        bar = ProgressBar(self.stderr, tty=hasattr(stream, "isatty") and stream.isatty())
        started = time.perf_counter()
        try:
            with path.open("rb") as fileobj:
                rows = read_risk_point_file(fileobj, path.name)
            self.stderr.write(
                _("%(n)d rows read in %(s).1f s, checking...")
                % {"n": len(rows), "s": time.perf_counter() - started}
            )
            result = risk_points_import(
                rows=rows, replace=replace, skip_errors=skip_errors, by=None, progress=bar
            )
        except ImportRowsError as exc:
            self._rows(exc.errors, _("error:"))
            raise CommandError(exc.message) from exc
        except ApplicationError as exc:
            raise CommandError(exc.message) from exc
        self._rows(result.warnings, _("warning:"))
        self._rows(result.skipped, _("skipped:"))
        result.seconds = time.perf_counter() - started  # reading the file included
        self.stdout.write(self.style.SUCCESS(result.summary()))
