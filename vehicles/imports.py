"""Bulk import of a fleet (V4): one row per (vehicle, device), from CSV or XLSX.

Columns: `plate,vin,imei,protocol,device_kind[,customer]`. Several rows may name the same vehicle
(same plate and VIN) with different devices: a car carries several trackers.

Two passes. First every row is parsed and checked against the rest of the file and against the
database (existing plates, VINs and device ids are fetched in bulk, not row by row) and *all* the
bad rows are collected. Only a clean file is written: in one transaction, through the ordinary
services (`vehicle_create`, `device_create`, `device_bind`) so every object lands in the operation
log under the importing user. A file with any bad row imports nothing.

Rows are numbered as a spreadsheet shows them: the header is row 1, the first data row is row 2.
"""

from __future__ import annotations

import codecs
import csv
import datetime as dt
import io
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from django.core.exceptions import NON_FIELD_ERRORS, ValidationError
from django.db import IntegrityError, transaction
from django.db.models import Q
from django.utils.text import capfirst
from django.utils.translation import gettext as _
from django.utils.translation import ngettext

from accounts.models import Customer
from accounts.selectors import customers_visible_to
from carloan import identifiers
from carloan.errors import ApplicationError, ImportRowsError
from devices.models import Device, DeviceKind
from devices.protocols import PROTOCOLS, normalize_identifier
from devices.selectors import devices_visible_to
from devices.services import device_create
from vehicles.models import DeviceBinding, Vehicle
from vehicles.selectors import vehicles_visible_to
from vehicles.services import device_bind, vehicle_create

REQUIRED_COLUMNS = ("plate", "vin", "imei", "protocol", "device_kind")
OPTIONAL_COLUMNS = ("customer",)
COLUMNS = REQUIRED_COLUMNS + OPTIONAL_COLUMNS
# Upload limit of the web form; the command reads any size (max_rows=None).
MAX_ROWS = 20_000
# Values per `IN (...)` lookup: well under SQLite's bound-parameter limit.
_CHUNK = 500
HEADER_ROW = 1
# What Excel shows for a long number it has rounded: 8.61234E+14 (the digits are lost).
_EXCEL_EXPONENT = re.compile(r"^\d+(?:\.\d+)?E\+\d+$", re.IGNORECASE)


@dataclass
class ImportResult:
    vehicles_created: int = 0
    vehicles_reused: int = 0
    devices_created: int = 0
    devices_reused: int = 0
    bindings_created: int = 0
    rows: int = 0
    dry_run: bool = False

    def summary(self) -> str:
        """One line for the admin message and the command's output."""
        text = _(
            "%(rows)d rows imported: %(vc)d vehicles created, %(vr)d reused; "
            "%(dc)d devices created, %(dr)d reused; %(b)d devices bound."
        ) % {
            "rows": self.rows,
            "vc": self.vehicles_created,
            "vr": self.vehicles_reused,
            "dc": self.devices_created,
            "dr": self.devices_reused,
            "b": self.bindings_created,
        }
        if self.dry_run:
            text = _("Dry run, nothing was saved. %s") % text
        return text


# --- Reading files ------------------------------------------------------------------------------
def _file_error(*messages: str) -> ImportRowsError:
    return ImportRowsError(
        _("The file cannot be imported: nothing was imported."),
        errors=[(HEADER_ROW, m) for m in messages],
    )


def _column_name(value: str) -> str:
    """`" Device Kind "` / `"device-kind"` -> `"device_kind"`."""
    return re.sub(r"[\s\-]+", "_", value.strip().lower())


def _columns_help() -> str:
    return ", ".join(REQUIRED_COLUMNS) + " [, " + ", ".join(OPTIONAL_COLUMNS) + "]"


def _check_columns(names: Sequence[str]) -> list[str]:
    """Problems with a header: unknown, repeated or missing columns."""
    problems = []
    unknown = [n for n in names if n not in COLUMNS]
    if unknown:
        problems.append(
            _("Unknown columns: %(cols)s (expected %(expected)s).")
            % {"cols": ", ".join(unknown), "expected": _columns_help()}
        )
    repeated = sorted({n for n in names if n in COLUMNS and names.count(n) > 1})
    if repeated:
        problems.append(_("Repeated columns: %(cols)s.") % {"cols": ", ".join(repeated)})
    missing = [c for c in REQUIRED_COLUMNS if c not in names]
    if missing:
        problems.append(
            _("Missing columns: %(cols)s (expected %(expected)s).")
            % {"cols": ", ".join(missing), "expected": _columns_help()}
        )
    return problems


def _cell(value) -> str:
    """A cell as text. Spreadsheets keep long digit strings (IMEIs) as numbers: 8.6e14 -> '86...'"""
    if value is None:
        return ""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, dt.datetime | dt.date):
        return value.isoformat()
    return str(value).strip()


def rows_from_table(table: Iterable[Sequence], *, max_rows: int | None = MAX_ROWS) -> list[dict]:
    """Rows of cells (header first) -> row dicts keyed by column, each with its `row` number.
    Blank rows are skipped but still counted, so numbers match what the spreadsheet shows."""
    lines = iter(table)
    header = next(lines, None)
    header_cells = [_cell(v) for v in header] if header is not None else []
    if not any(header_cells):
        raise _file_error(
            _("The file is empty: the first row must be the header (%(expected)s).")
            % {"expected": _columns_help()}
        )
    # Trailing empty header cells are common in spreadsheets; they are not columns.
    while header_cells and not header_cells[-1]:
        header_cells.pop()
    names = [_column_name(v) for v in header_cells]
    problems = _check_columns([n for n in names if n])
    if any(not n for n in names):
        problems.append(_("A column has no header."))
    if problems:
        raise _file_error(*problems)

    rows: list[dict] = []
    stray: list[tuple[int, str]] = []
    for number, values in enumerate(lines, start=HEADER_ROW + 1):
        cells = [_cell(v) for v in values]
        if not any(cells):
            continue
        if max_rows is not None and len(rows) >= max_rows:
            raise _file_error(
                _("The file has more than %(max)d rows: split it into smaller files.")
                % {"max": max_rows}
            )
        if any(cells[len(names) :]):
            stray.append((number, _("This row has more cells than the header has columns.")))
        row = {name: cells[i] if i < len(cells) else "" for i, name in enumerate(names)}
        row["row"] = number
        rows.append(row)
    if stray:
        raise ImportRowsError(_("The file cannot be imported: nothing was imported."), errors=stray)
    if not rows:
        raise _file_error(_("The file has a header but no data rows."))
    return rows


def _decode(data: bytes) -> str:
    # Chinese Excel saves "CSV" as GBK (GB18030 is its superset); newer Excel as UTF-8 with a BOM.
    if data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return data.decode("utf-16")
    for encoding in ("utf-8-sig", "gb18030"):
        try:
            return data.decode(encoding)
        except UnicodeDecodeError:
            continue
    raise _file_error(_("The file is not text in UTF-8 or GBK: save it as CSV (UTF-8)."))


def _csv_table(data: bytes) -> list[list[str]]:
    text = _decode(data)
    first_line = text.split("\n", 1)[0]
    # Excel in some locales separates with semicolons, "Unicode text" with tabs.
    delimiter = max((",", ";", "\t"), key=first_line.count)
    try:
        return list(csv.reader(io.StringIO(text, newline=""), delimiter=delimiter))
    except csv.Error as exc:
        raise _file_error(_("The CSV file is malformed: %(error)s") % {"error": exc}) from exc


def read_fleet_file(fileobj, filename: str, *, max_rows: int | None = MAX_ROWS) -> list[dict]:
    """Read an uploaded or opened (binary) `.csv` or `.xlsx` file into row dicts for
    `fleet_import`. Raises ImportRowsError (row 1) for an unreadable file or a bad header."""
    name = (filename or "").lower()
    if name.endswith(".csv"):
        return rows_from_table(_csv_table(fileobj.read()), max_rows=max_rows)
    if name.endswith((".xlsx", ".xlsm")):
        from openpyxl import load_workbook

        try:
            workbook = load_workbook(fileobj, read_only=True, data_only=True)
        except Exception as exc:  # zip, XML and openpyxl errors alike: not a workbook
            raise _file_error(_("This is not a readable .xlsx file.")) from exc
        try:
            sheet = workbook.worksheets[0]
            # Some writers record a wrong sheet size; read what is really there.
            sheet.reset_dimensions()
            return rows_from_table(sheet.iter_rows(values_only=True), max_rows=max_rows)
        finally:
            workbook.close()
    raise _file_error(_("Unsupported file type: upload a .csv or .xlsx file (save .xls as .xlsx)."))


# --- Parsing values -----------------------------------------------------------------------------
def _squash(value: str) -> str:
    return re.sub(r"[\s/_\-.]", "", value).lower()


def _parse_protocol(value: str) -> str | None:
    """`gt06`, `GT06`, `JT/T 808`, `jt808` -> registry key; None when unknown."""
    wanted = _squash(value)
    for key, protocol in PROTOCOLS.items():
        if wanted in (_squash(key), _squash(protocol.label)):
            return key
    return None


def _parse_kind(value: str) -> str | None:
    wanted = value.strip().lower()
    names = {"有线": DeviceKind.WIRED, "无线": DeviceKind.WIRELESS}
    for kind in DeviceKind:
        names[kind.value] = kind.value
        names[str(kind.label).lower()] = kind.value  # the label in the active language
    return names.get(wanted)


def _messages(exc: ValidationError, model) -> list[str]:
    """A model ValidationError as readable lines, each naming its field."""
    if not hasattr(exc, "error_dict"):
        return list(exc.messages)
    out = []
    for name, messages in exc.message_dict.items():
        if name == NON_FIELD_ERRORS:
            out.extend(messages)
            continue
        label = capfirst(str(model._meta.get_field(name).verbose_name))
        out.extend(f"{label}: {m}" for m in messages)
    return out


def _model_errors(obj, fields: set[str]) -> list[str]:
    """Run the model's own field validators on `fields` and its clean() (no database queries)."""
    exclude = [f.name for f in obj._meta.fields if f.name not in fields]
    try:
        obj.clean_fields(exclude=exclude)
        obj.clean()
    except ValidationError as exc:
        return _messages(exc, type(obj))
    return []


def _chunks(values: Iterable, size: int = _CHUNK):
    values = list(values)
    for i in range(0, len(values), size):
        yield values[i : i + size]


# --- Customers ----------------------------------------------------------------------------------
class _Customers:
    """Customers named by code or exact name, among those `by` may see. A customer `by` may not
    see is reported exactly like one that does not exist."""

    def __init__(self, by, names: Iterable[str]):
        scope = Customer.objects.all() if by is None else customers_visible_to(by)
        self._by_code: dict[str, Customer] = {}
        self._by_name: dict[str, list[Customer]] = {}
        for chunk in _chunks({n for n in names if n}):
            for customer in scope.filter(Q(code__in=chunk) | Q(name__in=chunk)):
                self._by_code[customer.code] = customer
                self._by_name.setdefault(customer.name, []).append(customer)

    def get(self, value: str) -> tuple[Customer | None, str | None]:
        customer = self._by_code.get(value)
        if customer is None:
            same_name = self._by_name.get(value, [])
            if len(same_name) > 1:
                return None, _(
                    "customer name '%(c)s' is used by several customers: use the customer code"
                ) % {"c": value}
            customer = same_name[0] if same_name else None
        if customer is None:
            return None, _("unknown customer '%(c)s'") % {"c": value}
        if not customer.is_active:
            return None, _("customer '%(c)s' is deactivated") % {"c": value}
        return customer, None


def _default_customer(by, default_customer) -> Customer | None:
    if default_customer is None or default_customer == "":
        return None
    if isinstance(default_customer, Customer):
        name = default_customer.code
    else:
        name = str(default_customer).strip()
    customer, error = _Customers(by, [name]).get(name)
    if error:
        raise ApplicationError(error, code="not_found")
    return customer


# --- Validation ---------------------------------------------------------------------------------
@dataclass
class _Row:
    number: int
    plate: str
    vin: str
    identifier: str
    protocol: str | None
    kind: str | None
    customer: Customer | None
    vehicle_ok: bool
    device_ok: bool


@dataclass
class _DevicePlan:
    row: int
    identifier: str
    protocol: str
    kind: str
    existing: Device | None = None
    mounted: bool = False  # already on this very vehicle: nothing to bind


@dataclass
class _VehiclePlan:
    row: int
    customer: Customer
    plate: str
    vin: str
    existing: Vehicle | None = None
    devices: list[_DevicePlan] = field(default_factory=list)
    rows: int = 0  # file rows naming this vehicle (for progress)


def _normalise_rows(rows_source: Iterable[Mapping]) -> list[dict]:
    rows = []
    for index, raw in enumerate(rows_source, start=HEADER_ROW + 1):
        row = {_column_name(str(k)): v for k, v in raw.items() if k is not None}
        number = row.pop("row", None) or index
        row = {k: _cell(v) for k, v in row.items()}
        row["row"] = int(number)
        rows.append(row)
    return rows


def _parse(raw: dict, customers: _Customers, default: Customer | None, err) -> _Row:
    n = raw["row"]
    plate = identifiers.normalize_plate(raw.get("plate", ""))
    vin = identifiers.normalize_vin(raw.get("vin", ""))
    identifier = normalize_identifier(raw.get("imei", ""))
    for column, value in (("plate", plate), ("vin", vin), ("imei", identifier)):
        if not value:
            err(n, _("%(column)s is empty") % {"column": column})
    vehicle_ok = bool(plate and vin)
    device_ok = bool(identifier)

    protocol = kind = None
    if not raw.get("protocol"):
        err(n, _("%(column)s is empty") % {"column": "protocol"})
        device_ok = False
    else:
        protocol = _parse_protocol(raw["protocol"])
        if protocol is None:
            err(
                n,
                _("unknown protocol '%(value)s' (expected one of: %(choices)s)")
                % {"value": raw["protocol"], "choices": ", ".join(PROTOCOLS)},
            )
            device_ok = False
    if not raw.get("device_kind"):
        err(n, _("%(column)s is empty") % {"column": "device_kind"})
        device_ok = False
    else:
        kind = _parse_kind(raw["device_kind"])
        if kind is None:
            err(
                n,
                _("unknown device kind '%(value)s' (expected wired or wireless)")
                % {"value": raw["device_kind"]},
            )
            device_ok = False

    customer = default
    if raw.get("customer"):
        customer, error = customers.get(raw["customer"])
        if error:
            err(n, error)
            vehicle_ok = False
    elif customer is None:
        err(n, _("no customer: fill in the customer column or choose a default customer"))
        vehicle_ok = False

    if plate and vin:
        problems = _model_errors(Vehicle(plate=plate, vin=vin), {"plate", "vin"})
        for message in problems:
            err(n, message)
        vehicle_ok = vehicle_ok and not problems
    if _EXCEL_EXPONENT.match(identifier):
        err(
            n,
            _(
                "imei %(value)s was turned into a rounded number by Excel: format the column as "
                "text, type the ids again and save"
            )
            % {"value": identifier},
        )
        device_ok = False
    elif identifier:
        device = Device(identifier=identifier, protocol=protocol or "", kind=kind or "")
        # Protocol and kind were checked above; clean() checks the id as the protocol knows it.
        problems = _model_errors(device, {"identifier"})
        for message in problems:
            err(n, message)
        device_ok = device_ok and not problems

    return _Row(n, plate, vin, identifier, protocol, kind, customer, vehicle_ok, device_ok)


class _Existing:
    """What the database already holds for the file's plates, VINs and device ids, fetched in
    bulk (a few queries per 500 values, whatever the file size)."""

    def __init__(self, rows: list[_Row], by):
        plates = {r.plate for r in rows if r.vehicle_ok}
        vins = {r.vin for r in rows if r.vehicle_ok}
        ids = {r.identifier for r in rows if r.device_ok}
        vehicles = Vehicle.objects.select_related("customer")
        self.by_plate: dict[str, Vehicle] = {}
        self.by_vin: dict[str, Vehicle] = {}
        for chunk in _chunks(plates):
            self.by_plate.update((v.plate, v) for v in vehicles.filter(plate__in=chunk))
        for chunk in _chunks(vins):
            self.by_vin.update((v.vin, v) for v in vehicles.filter(vin__in=chunk))
        self.devices: dict[str, Device] = {}
        for chunk in _chunks(ids):
            found = Device.objects.select_related("customer").filter(identifier__in=chunk)
            self.devices.update((d.identifier, d) for d in found)
        self.mounted_on: dict[int, DeviceBinding] = {}
        for chunk in _chunks(d.pk for d in self.devices.values()):
            active = DeviceBinding.objects.filter(device_id__in=chunk, unbound_at__isnull=True)
            self.mounted_on.update((b.device_id, b) for b in active.select_related("vehicle"))

        vehicle_ids = {v.pk for v in (*self.by_plate.values(), *self.by_vin.values())}
        device_ids = {d.pk for d in self.devices.values()}
        if by is None:  # platform scope: the command runs as no user
            self.visible_vehicles, self.visible_devices = vehicle_ids, device_ids
        else:
            # Mounting changes both ends: objects shared read-only with `by` do not count.
            self.visible_vehicles, self.visible_devices = set(), set()
            for chunk in _chunks(vehicle_ids):
                self.visible_vehicles.update(
                    vehicles_visible_to(by, for_change=True)
                    .filter(pk__in=chunk)
                    .values_list("pk", flat=True)
                )
            for chunk in _chunks(device_ids):
                self.visible_devices.update(
                    devices_visible_to(by, for_change=True)
                    .filter(pk__in=chunk)
                    .values_list("pk", flat=True)
                )


def _plan_vehicle(row: _Row, plans, vin_rows, db: _Existing, err) -> _VehiclePlan | None:
    n, plate, vin = row.number, row.plate, row.vin
    plan = plans.get(plate)
    if plan is not None:  # another device for a vehicle already seen in the file
        if plan.vin != vin:
            err(
                n,
                _("plate %(p)s has VIN %(v1)s on row %(r)d but VIN %(v2)s here")
                % {"p": plate, "v1": plan.vin, "r": plan.row, "v2": vin},
            )
            return None
        if plan.customer.pk != row.customer.pk:
            err(
                n,
                _("plate %(p)s is imported for customer %(c)s on row %(r)d")
                % {"p": plate, "c": plan.customer.name, "r": plan.row},
            )
            return None
        return plan
    if vin in vin_rows:
        other_plate, other_row = vin_rows[vin]
        err(
            n,
            _("VIN %(v)s is also on row %(r)d with plate %(p)s")
            % {"v": vin, "r": other_row, "p": other_plate},
        )
        return None

    existing = db.by_plate.get(plate)
    if existing is not None:
        if existing.pk not in db.visible_vehicles:
            err(
                n,
                _("plate %(p)s is already registered to a vehicle outside your customers")
                % {"p": plate},
            )
            return None
        if existing.vin != vin:
            err(
                n,
                _("plate %(p)s belongs to another vehicle (VIN %(v)s)")
                % {"p": plate, "v": existing.vin},
            )
            return None
        if existing.customer_id != row.customer.pk:
            err(
                n,
                _("plate %(p)s belongs to customer %(c)s")
                % {"p": plate, "c": existing.customer.name},
            )
            return None
    else:
        same_vin = db.by_vin.get(vin)
        if same_vin is not None:
            if same_vin.pk in db.visible_vehicles:
                err(
                    n,
                    _("VIN %(v)s belongs to another vehicle (plate %(p)s)")
                    % {"v": vin, "p": same_vin.plate},
                )
            else:
                err(
                    n,
                    _("VIN %(v)s is already registered to a vehicle outside your customers")
                    % {"v": vin},
                )
            return None

    plan = _VehiclePlan(row=n, customer=row.customer, plate=plate, vin=vin, existing=existing)
    plans[plate] = plan
    vin_rows[vin] = (plate, n)
    return plan


def _plan_device(row: _Row, plan, device_rows, db: _Existing, err) -> _DevicePlan | None:
    """Check the row's device against the file and the database. None: error, or a harmless
    repeat of a row already planned."""
    n, identifier = row.number, row.identifier
    seen = device_rows.get(identifier)
    if seen is not None:
        seen_plate, seen_row, seen_protocol, seen_kind = seen
        if seen_plate != row.plate:
            err(
                n,
                _("device %(d)s is also on row %(r)d for plate %(p)s")
                % {"d": identifier, "r": seen_row, "p": seen_plate},
            )
        elif (seen_protocol, seen_kind) != (row.protocol, row.kind):
            err(
                n,
                _("device %(d)s is on row %(r)d with another protocol or kind")
                % {"d": identifier, "r": seen_row},
            )
        return None
    device_rows[identifier] = (row.plate, n, row.protocol, row.kind)

    device = db.devices.get(identifier)
    mounted = False
    if device is not None:
        if device.pk not in db.visible_devices:
            err(
                n,
                _("device %(d)s is already registered to a customer outside yours")
                % {"d": identifier},
            )
            return None
        if device.protocol != row.protocol or device.kind != row.kind:
            err(
                n,
                _("device %(d)s is registered as %(p)s, %(k)s")
                % {
                    "d": identifier,
                    "p": device.get_protocol_display(),
                    "k": device.get_kind_display(),
                },
            )
            return None
        binding = db.mounted_on.get(device.pk)
        if binding is not None:
            on_this = plan is not None and plan.existing and binding.vehicle_id == plan.existing.pk
            if not on_this:
                err(
                    n,
                    _("device %(d)s is already on %(p)s")
                    % {"d": identifier, "p": binding.vehicle.plate},
                )
                return None
            mounted = True
        elif device.status != Device.Status.STOCK:
            err(n, _("device %(d)s is %(s)s") % {"d": identifier, "s": device.get_status_display()})
            return None
        elif row.customer is not None and not row.customer.is_descendant_of(
            device.customer, include_self=True
        ):
            err(
                n,
                _("device %(d)s is in the stock of %(c)s, which does not own customer %(o)s")
                % {"d": identifier, "c": device.customer.name, "o": row.customer.name},
            )
            return None
    return _DevicePlan(
        row=n,
        identifier=identifier,
        protocol=row.protocol,
        kind=row.kind,
        existing=device,
        mounted=mounted,
    )


def _validate(rows: list[dict], *, by, default_customer) -> tuple[list[_VehiclePlan], list]:
    errors: list[tuple[int, str]] = []

    def err(row: int, message: str) -> None:
        errors.append((row, message))

    default = _default_customer(by, default_customer)
    customers = _Customers(by, (r.get("customer", "") for r in rows))
    parsed = [_parse(raw, customers, default, err) for raw in rows]
    db = _Existing(parsed, by)

    plans: dict[str, _VehiclePlan] = {}
    vin_rows: dict[str, tuple[str, int]] = {}
    device_rows: dict[str, tuple] = {}
    for row in parsed:
        plan = _plan_vehicle(row, plans, vin_rows, db, err) if row.vehicle_ok else None
        if plan is not None:
            plan.rows += 1
        if not row.device_ok:
            continue
        device_plan = _plan_device(row, plan, device_rows, db, err)
        if plan is not None and device_plan is not None:
            plan.devices.append(device_plan)
    errors.sort(key=lambda e: e[0])  # stable: a row's messages keep their order
    return list(plans.values()), errors


def _rows_error(errors: list[tuple[int, str]]) -> ImportRowsError:
    count = len({row for row, _message in errors})
    return ImportRowsError(
        ngettext(
            "%(n)d row has errors: nothing was imported.",
            "%(n)d rows have errors: nothing was imported.",
            count,
        )
        % {"n": count},
        errors=errors,
    )


# --- Writing ------------------------------------------------------------------------------------
def _write(plans: list[_VehiclePlan], *, by, result: ImportResult, progress) -> None:
    done = 0
    for plan in plans:
        row = plan.row
        try:
            if plan.existing is not None:
                vehicle = plan.existing
                result.vehicles_reused += 1
            else:
                vehicle = vehicle_create(
                    by=by, customer=plan.customer, plate=plan.plate, vin=plan.vin
                )
                result.vehicles_created += 1
            for device_plan in plan.devices:
                row = device_plan.row
                if device_plan.existing is not None:
                    device = device_plan.existing
                    result.devices_reused += 1
                else:
                    device = device_create(
                        by=by,
                        customer=plan.customer,
                        identifier=device_plan.identifier,
                        protocol=device_plan.protocol,
                        kind=device_plan.kind,
                    )
                    result.devices_created += 1
                if not device_plan.mounted:
                    device_bind(vehicle=vehicle, device=device, by=by)
                    result.bindings_created += 1
        except (ApplicationError, ValidationError, IntegrityError) as exc:
            # Only a concurrent change can get here (everything was checked): stop and roll back.
            if isinstance(exc, ApplicationError):
                message = exc.message
            elif isinstance(exc, ValidationError):
                message = "; ".join(exc.messages)
            else:
                message = _("changed by someone else during the import; try again")
            raise _rows_error([(row, message)]) from exc
        done += plan.rows
        if progress is not None:
            progress(done, result.rows)


def fleet_import(
    *,
    rows_source: Iterable[Mapping],
    by=None,
    default_customer: Customer | str | None = None,
    dry_run: bool = False,
    progress: Callable[[int, int], None] | None = None,
) -> ImportResult:
    """Import vehicles with their devices, all or nothing.

    `rows_source`: row dicts (`read_fleet_file`), keys `plate, vin, imei, protocol, device_kind`
    and optionally `customer` (code or exact name) and `row` (its spreadsheet number).
    `by`: the importing user, who must see every customer, vehicle and device named (None = the
    platform, for commands). `default_customer` (a Customer or a code) fills empty customers.

    Existing live vehicles (same plate and VIN, same customer) and devices (in stock, or already
    on that vehicle) are reused. Raises ImportRowsError listing every bad row, and then writes
    nothing; `dry_run` checks everything, writes, and rolls back. `progress(done, total)` is
    called as rows are written."""
    rows = _normalise_rows(rows_source)
    if not rows:
        raise _file_error(_("The file has a header but no data rows."))
    problems = _check_columns(sorted({k for row in rows for k in row if k != "row"}))
    if problems:
        raise _file_error(*problems)

    result = ImportResult(rows=len(rows), dry_run=dry_run)
    with transaction.atomic():
        plans, errors = _validate(rows, by=by, default_customer=default_customer)
        if errors:
            raise _rows_error(errors)
        _write(plans, by=by, result=result, progress=progress)
        if dry_run:
            transaction.set_rollback(True)
    return result
