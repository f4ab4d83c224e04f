"""Excel export of installer performance (K1). The rows come from
`tasks.selectors.installer_performance`, already scoped to the viewer."""

from __future__ import annotations

import datetime as dt
import io

from django.utils.translation import gettext as _

from tasks.selectors import InstallerStats

XLSX_CONTENT_TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


def _text(value: str) -> str:
    # User-typed text (names) must never become a formula in the reader's Excel.
    return "'" + value if value[:1] in ("=", "+", "-", "@") else value


def _pct(value: float | None) -> float | None:
    return round(value * 100, 1) if value is not None else None


def performance_rows(rows: list[InstallerStats]) -> tuple[list[str], list[list]]:
    header = [
        _("Installer"),
        _("Username"),
        _("Customer"),
        _("Installs"),
        _("With a due time"),
        _("On time"),
        _("On-time rate %"),
        _("Reworked within 30 days"),
        _("Rework rate %"),
        _("Average duration (min)"),
        _("Failed installs"),
        _("Repairs done"),
    ]
    body = [
        [
            _text(r.name),
            _text(r.username),
            _text(r.customer),
            r.installs,
            r.with_due,
            r.on_time,
            _pct(r.on_time_rate),
            r.reworked,
            _pct(r.rework_rate),
            round(r.average_minutes, 1) if r.average_minutes is not None else None,
            r.failed,
            r.repairs,
        ]
        for r in rows
    ]
    return header, body


def performance_xlsx(rows: list[InstallerStats], *, since: dt.date, until: dt.date) -> bytes:
    from openpyxl import Workbook

    workbook = Workbook(write_only=True)
    sheet = workbook.create_sheet(title=_("Installer performance")[:31])
    sheet.append([_("Period"), f"{since.isoformat()} – {until.isoformat()}"])
    header, body = performance_rows(rows)
    sheet.append(header)
    for row in body:
        sheet.append(row)
    buffer = io.BytesIO()
    workbook.save(buffer)
    return buffer.getvalue()


def performance_xlsx_response(rows: list[InstallerStats], *, since: dt.date, until: dt.date):
    from django.http import HttpResponse
    from django.utils.http import content_disposition_header

    response = HttpResponse(
        performance_xlsx(rows, since=since, until=until), content_type=XLSX_CONTENT_TYPE
    )
    response["Content-Disposition"] = content_disposition_header(
        True, f"installer-performance-{since.isoformat()}-{until.isoformat()}.xlsx"
    )
    return response
