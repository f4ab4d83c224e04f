"""Excel exports of vehicles and devices (V4), and the HTTP response that carries them.

Callers pass an already scoped queryset (`vehicles_for_list(user)`, `devices_for_list(user)`, an
admin changelist selection): exports never widen what the user may see. The rows stream from the
database in chunks into a write-only workbook, with a fixed number of queries per chunk.
"""

from __future__ import annotations

import datetime as dt
import io

from django.db.models import OuterRef, Prefetch, QuerySet, Subquery
from django.http import HttpResponse
from django.utils import timezone
from django.utils.http import content_disposition_header
from django.utils.text import capfirst
from django.utils.translation import gettext as _

from devices.models import Device
from vehicles.models import DeviceBinding, Vehicle

XLSX_CONTENT_TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
CHUNK_SIZE = 2000


def _label(model, name: str) -> str:
    return capfirst(str(model._meta.get_field(name).verbose_name))


def _local(value: dt.datetime | None) -> dt.datetime | None:
    # Excel has no time zones: write the wall-clock time of the platform's zone.
    return timezone.localtime(value).replace(tzinfo=None) if value is not None else None


def _workbook(title: str, header: list[str], rows) -> bytes:
    from openpyxl import Workbook
    from openpyxl.cell import WriteOnlyCell

    workbook = Workbook(write_only=True)
    sheet = workbook.create_sheet(title=title[:31])  # Excel's limit on sheet names
    sheet.append(header)
    for row in rows:
        cells = []
        for value in row:
            if isinstance(value, str) and value.startswith("="):
                # User-typed text must never become a formula in the reader's Excel.
                cell = WriteOnlyCell(sheet, value=value)
                cell.data_type = "s"
                cells.append(cell)
            else:
                cells.append(value)
        sheet.append(cells)
    buffer = io.BytesIO()
    workbook.save(buffer)
    return buffer.getvalue()


def vehicles_xlsx(queryset: QuerySet[Vehicle]) -> bytes:
    """One row per vehicle, with the identifiers of the devices mounted now. Two queries per
    chunk of 2,000 vehicles (the vehicles, their active bindings with devices)."""
    active = DeviceBinding.objects.filter(unbound_at__isnull=True).select_related("device")
    queryset = queryset.select_related("customer").prefetch_related(
        Prefetch("bindings", queryset=active.order_by("bound_at", "id"), to_attr="active_bindings")
    )
    header = [
        _label(Vehicle, "plate"),
        _label(Vehicle, "vin"),
        _label(Vehicle, "customer"),
        _label(Vehicle, "brand"),
        _label(Vehicle, "model_name"),
        _label(Vehicle, "colour"),
        _label(Vehicle, "borrower_name"),
        _label(Vehicle, "borrower_phone"),
        _label(Vehicle, "repayment_status"),
        _label(Vehicle, "overdue_days"),
        _label(Vehicle, "loan_principal"),
        _label(Vehicle, "loan_term_months"),
        _label(Vehicle, "loan_start_date"),
        capfirst(str(Device._meta.verbose_name_plural)),
        _label(Vehicle, "created_at"),
    ]

    def rows():
        for v in queryset.iterator(chunk_size=CHUNK_SIZE):
            yield [
                v.plate,
                v.vin,
                v.customer.name,
                v.brand,
                v.model_name,
                v.colour,
                v.borrower_name,
                v.borrower_phone,
                v.get_repayment_status_display(),
                v.overdue_days,
                v.loan_principal,
                v.loan_term_months,
                v.loan_start_date,
                ", ".join(b.device.identifier for b in v.active_bindings),
                _local(v.created_at),
            ]

    return _workbook(str(capfirst(Vehicle._meta.verbose_name_plural)), header, rows())


def devices_xlsx(queryset: QuerySet[Device]) -> bytes:
    """One row per device with the plate of the vehicle it is on now. One query per chunk."""
    if "current_plate" not in queryset.query.annotations:
        active = DeviceBinding.objects.filter(device=OuterRef("pk"), unbound_at__isnull=True)
        queryset = queryset.annotate(current_plate=Subquery(active.values("vehicle__plate")[:1]))
    queryset = queryset.select_related("customer", "model", "model__manufacturer")
    header = [
        _label(Device, "identifier"),
        _label(Device, "protocol"),
        _label(Device, "kind"),
        _label(Device, "model"),
        _label(Device, "customer"),
        _label(Device, "status"),
        capfirst(_("current plate")),
        _label(Device, "sim_iccid"),
        _label(Device, "work_mode"),
        _label(Device, "online"),
        _label(Device, "last_seen_at"),
    ]
    yes, no = _("yes"), _("no")

    def rows():
        for d in queryset.iterator(chunk_size=CHUNK_SIZE):
            yield [
                d.identifier,
                d.get_protocol_display(),
                d.get_kind_display(),
                str(d.model) if d.model_id else "",
                d.customer.name,
                d.get_status_display(),
                d.current_plate or "",
                d.sim_iccid,
                d.get_work_mode_display(),
                yes if d.online else no,
                _local(d.last_seen_at),
            ]

    return _workbook(str(capfirst(Device._meta.verbose_name_plural)), header, rows())


def xlsx_response(data: bytes, filename: str) -> HttpResponse:
    """An attachment download of an XLSX workbook."""
    response = HttpResponse(data, content_type=XLSX_CONTENT_TYPE)
    # Non-ASCII names (车辆.xlsx) need RFC 6266 encoding; Django's helper writes both forms.
    response["Content-Disposition"] = content_disposition_header(True, filename)
    return response
