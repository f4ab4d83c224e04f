"""Fleet import (V4): files, row checks, all-or-nothing, the command and the admin page."""

from __future__ import annotations

import csv
import io
import random

import openpyxl
import pytest
from django.contrib.admin import ModelAdmin
from django.contrib.messages import get_messages
from django.contrib.messages.storage.cookie import CookieStorage
from django.core.exceptions import PermissionDenied
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import CommandError, call_command
from django.test import RequestFactory
from django.urls import NoReverseMatch, reverse

from carloan import fakes
from carloan.admin import admin_site
from carloan.errors import ImportRowsError
from carloan.identifiers import luhn_ok
from devices.models import Device
from devices.services import device_update
from vehicles.imports import fleet_import, read_fleet_file
from vehicles.models import DeviceBinding, Vehicle

HEADER = ["plate", "vin", "imei", "protocol", "device_kind", "customer"]
_rng = random.Random(808)


def plate() -> str:
    # 京 plates: never among the personas' vehicles (陕), so no accidental clash.
    return fakes.make_plate(_rng, province="京")


def vin() -> str:
    return fakes.make_vin(_rng)


def imei() -> str:
    return fakes.make_imei(_rng)


def bad_luhn(value: str) -> str:
    for last in "0123456789":
        if not luhn_ok(value[:-1] + last):
            return value[:-1] + last
    raise AssertionError


def bad_vin_check(value: str) -> str:
    wrong = "1" if value[8] != "1" else "2"
    return value[:8] + wrong + value[9:]


def csv_bytes(rows, header=HEADER, encoding="utf-8") -> bytes:
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(header)
    writer.writerows(rows)
    return buffer.getvalue().encode(encoding)


def read(data: bytes, name: str = "fleet.csv") -> list[dict]:
    return read_fleet_file(io.BytesIO(data), name)


def counts() -> tuple[int, int, int]:
    return Vehicle.all_objects.count(), Device.all_objects.count(), DeviceBinding.objects.count()


@pytest.fixture
def fleet():
    """Three rows: a car with two trackers (wired GT06 + wireless JT/T 808) and a car with one."""
    car1, car2 = (plate(), vin()), (plate(), vin())
    return [
        [*car1, imei(), "gt06", "wired", "branch-a1"],
        [*car1, fakes.make_terminal_id(_rng), "JT/T 808", "wireless", "branch-a1"],
        [*car2, imei(), "H02", "有线", "branch-a2"],
    ]


def import_errors(rows, by, **kwargs) -> list[tuple[int, str]]:
    before = counts()
    with pytest.raises(ImportRowsError) as exc:
        fleet_import(rows_source=rows, by=by, **kwargs)
    assert counts() == before, "a rejected file must import nothing"
    return exc.value.errors


# --- Happy paths --------------------------------------------------------------------------------
def test_csv_imports_vehicles_devices_and_bindings(world, fleet):
    user = world.users["a_admin"]
    before = counts()

    result = fleet_import(rows_source=read(csv_bytes(fleet)), by=user)

    assert (result.vehicles_created, result.devices_created, result.bindings_created) == (2, 3, 3)
    assert (result.vehicles_reused, result.devices_reused, result.rows) == (0, 0, 3)
    assert counts() == (before[0] + 2, before[1] + 3, before[2] + 3)
    car = Vehicle.objects.get(plate=fleet[0][0])
    assert car.customer == world.customers["a1"]
    mounted = Device.objects.filter(bindings__vehicle=car, bindings__unbound_at__isnull=True)
    assert sorted(d.identifier for d in mounted) == sorted([fleet[0][2], fleet[1][2]])
    assert {d.status for d in mounted} == {Device.Status.INSTALLED}
    assert {d.protocol for d in mounted} == {"gt06", "jt808"}
    assert Device.objects.get(identifier=fleet[1][2]).kind == "wireless"
    other = Vehicle.objects.get(plate=fleet[2][0])
    assert other.customer == world.customers["a2"]
    assert Device.objects.get(identifier=fleet[2][2]).kind == "wired"
    # The operation log records who imported.
    assert car.history.first().history_user == user
    assert Device.objects.get(identifier=fleet[0][2]).history.first().history_user == user


def test_reimporting_the_same_file_reuses_everything(world, fleet):
    user = world.users["a_admin"]
    fleet_import(rows_source=read(csv_bytes(fleet)), by=user)
    before = counts()

    result = fleet_import(rows_source=read(csv_bytes(fleet)), by=user)

    assert counts() == before
    assert (result.vehicles_reused, result.devices_reused) == (2, 3)
    assert (result.vehicles_created, result.devices_created, result.bindings_created) == (0, 0, 0)


def test_device_in_stock_is_reused_and_mounted(world):
    stock = world.stock["a1"]
    rows = [[plate(), vin(), stock.identifier, "gt06", "wired", "branch-a1"]]

    result = fleet_import(rows_source=read(csv_bytes(rows)), by=world.users["a_admin"])

    assert (result.devices_reused, result.devices_created, result.bindings_created) == (1, 0, 1)
    stock.refresh_from_db()
    assert stock.status == Device.Status.INSTALLED
    assert stock.bindings.get(unbound_at__isnull=True).vehicle.plate == rows[0][0]


def test_existing_vehicle_gets_a_new_device(world):
    car = world.vehicles["a1"]
    rows = [[car.plate, car.vin, imei(), "gt06", "wired", "branch-a1"]]

    result = fleet_import(rows_source=read(csv_bytes(rows)), by=world.users["a1_operator"])

    assert (result.vehicles_reused, result.devices_created, result.bindings_created) == (1, 1, 1)
    assert car.bindings.filter(unbound_at__isnull=True).count() == 2


def test_xlsx_file_with_numeric_imei_cells(world, fleet):
    workbook = openpyxl.Workbook()
    sheet = workbook.active
    sheet.append([" Plate ", "VIN", "IMEI", "Protocol", "Device_Kind", "Customer"])
    for row in fleet:
        # Excel turns a typed IMEI into a number; the reader must give the digits back.
        ident = int(row[2]) if row[3] == "gt06" else row[2]
        sheet.append([row[0], row[1], ident, row[3], row[4], row[5]])
    buffer = io.BytesIO()
    workbook.save(buffer)

    rows = read(buffer.getvalue(), "fleet.xlsx")
    result = fleet_import(rows_source=rows, by=world.users["a_admin"])

    assert [r["row"] for r in rows] == [2, 3, 4]
    assert (result.vehicles_created, result.devices_created) == (2, 3)
    assert Device.objects.filter(identifier=fleet[0][2]).exists()


def test_gbk_csv_from_chinese_excel(world, fleet):
    data = csv_bytes(fleet, encoding="gbk")
    with pytest.raises(UnicodeDecodeError):
        data.decode("utf-8")  # the point of the test: not UTF-8

    result = fleet_import(rows_source=read(data), by=world.users["a_admin"])

    assert result.vehicles_created == 2
    assert Vehicle.objects.filter(plate=fleet[2][0]).exists()  # 京 survived the round trip


def test_utf8_bom_csv_and_customer_by_name(world, fleet):
    for row in fleet:
        row[5] = "Branch A2"
    data = "\ufeff".encode() + csv_bytes(fleet, header=[h.upper() for h in HEADER])

    fleet_import(rows_source=read(data), by=world.users["a_admin"])

    assert Vehicle.objects.get(plate=fleet[0][0]).customer == world.customers["a2"]


def test_dry_run_checks_and_saves_nothing(world, fleet):
    before = counts()

    result = fleet_import(
        rows_source=read(csv_bytes(fleet)), by=world.users["a_admin"], dry_run=True
    )

    assert result.dry_run and result.vehicles_created == 2 and result.bindings_created == 3
    assert counts() == before


def test_default_customer_fills_empty_customer_cells(world, fleet):
    fleet[0][5] = fleet[1][5] = ""

    fleet_import(
        rows_source=read(csv_bytes(fleet)),
        by=world.users["a_admin"],
        default_customer=world.customers["a2"],
    )

    assert Vehicle.objects.get(plate=fleet[0][0]).customer == world.customers["a2"]


# --- Bad rows -----------------------------------------------------------------------------------
def _bad(world, kind):
    """A row (for row 3) that is wrong in one way, and a fragment of the expected message."""
    a1_car, a1_device = world.vehicles["a1"], world.devices["a1"]
    ok = [plate(), vin(), imei(), "gt06", "wired", "branch-a1"]
    if kind == "bad plate":
        return [*ok[:0], "XY12345", *ok[1:]], "not a valid Chinese licence plate"
    if kind == "bad VIN check digit":
        return [ok[0], bad_vin_check(ok[1]), *ok[2:]], "not a valid VIN"
    if kind == "IMEI with wrong Luhn digit":
        return [*ok[:2], bad_luhn(ok[2]), *ok[3:]], "is not valid for GT06"
    if kind == "13-digit JT/T 808 id":
        return [*ok[:2], "1234567890123", "jt808", *ok[4:]], "is not valid for JT/T 808"
    if kind == "unknown protocol":
        return [*ok[:3], "tk103", *ok[4:]], "unknown protocol 'tk103'"
    if kind == "unknown device kind":
        return [*ok[:4], "magnetic", ok[5]], "unknown device kind 'magnetic'"
    if kind == "unknown customer":
        return [*ok[:5], "nobody"], "unknown customer 'nobody'"
    if kind == "device bound elsewhere":
        return [*ok[:2], a1_device.identifier, *ok[3:]], f"is already on {a1_car.plate}"
    if kind == "plate with another VIN":
        return [a1_car.plate, *ok[1:]], f"plate {a1_car.plate} belongs to another vehicle"
    if kind == "faulty device":
        stock = world.stock["a1"]
        device_update(device=stock, status=Device.Status.FAULTY)
        return [*ok[:2], stock.identifier, *ok[3:]], "is faulty"
    raise AssertionError(kind)


BAD_KINDS = [
    "bad plate",
    "bad VIN check digit",
    "IMEI with wrong Luhn digit",
    "13-digit JT/T 808 id",
    "unknown protocol",
    "unknown device kind",
    "unknown customer",
    "device bound elsewhere",
    "plate with another VIN",
    "faulty device",
]


@pytest.mark.parametrize("kind", BAD_KINDS)
def test_a_bad_row_is_named_and_nothing_is_imported(world, fleet, kind):
    bad_row, fragment = _bad(world, kind)
    rows = [fleet[0], bad_row, fleet[2]]

    errors = import_errors(read(csv_bytes(rows)), world.users["a_admin"])

    assert [row for row, _message in errors] == [3], errors
    assert fragment in errors[0][1]


def test_imei_rounded_by_excel_gets_a_hint(world, fleet):
    fleet[0][2] = "8.61234E+14"

    errors = import_errors(read(csv_bytes(fleet)), world.users["a_admin"])

    assert len(errors) == 1 and errors[0][0] == 2
    assert "format the column as text" in errors[0][1]


def test_duplicate_imei_on_two_vehicles(world, fleet):
    fleet[2][2] = fleet[0][2]

    errors = import_errors(read(csv_bytes(fleet)), world.users["a_admin"])

    assert errors == [(4, f"device {fleet[0][2]} is also on row 2 for plate {fleet[0][0]}")]


def test_same_plate_with_two_vins_in_the_file(world, fleet):
    fleet[1][1] = vin()

    errors = import_errors(read(csv_bytes(fleet)), world.users["a_admin"])

    assert [row for row, _m in errors] == [3]
    assert f"plate {fleet[0][0]} has VIN {fleet[0][1]} on row 2" in errors[0][1]


def test_invisible_customer_reads_like_an_unknown_one(world, fleet):
    fleet[0][5] = "lender-b"  # exists, but not in Lender A's subtree
    fleet[2][5] = "no-such-code"

    errors = import_errors(read(csv_bytes(fleet)), world.users["a_admin"])

    assert errors == [
        (2, "unknown customer 'lender-b'"),
        (4, "unknown customer 'no-such-code'"),
    ]
    assert not Vehicle.objects.filter(plate=fleet[0][0]).exists()


def test_invisible_default_customer_is_refused(world, fleet):
    from carloan.errors import ApplicationError

    with pytest.raises(ApplicationError, match="unknown customer 'lender-b'"):
        fleet_import(
            rows_source=read(csv_bytes(fleet)),
            by=world.users["a_admin"],
            default_customer=world.customers["b"],
        )


def test_row_without_customer_and_no_default(world, fleet):
    fleet[1][5] = ""

    errors = import_errors(read(csv_bytes(fleet)), world.users["a_admin"])

    assert [row for row, _m in errors] == [3]
    assert "no customer" in errors[0][1]


def test_errors_of_every_row_are_reported(world, fleet):
    fleet[0][0] = "bad"
    fleet[1][3] = "nope"
    fleet[2][4] = "sticky"
    blank = ["", "", "", "", "", ""]
    rows = [fleet[0], fleet[1], blank, fleet[2]]  # a blank line still counts in the numbering

    errors = import_errors(read(csv_bytes(rows)), world.users["a_admin"])

    assert sorted({row for row, _m in errors}) == [2, 3, 5]


@pytest.mark.parametrize(
    ("header", "fragment"),
    [
        (["plate", "imei", "protocol", "device_kind"], "Missing columns: vin"),
        ([*HEADER, "colour"], "Unknown columns: colour"),
    ],
)
def test_bad_header_is_row_1(world, header, fragment):
    data = csv_bytes([], header=header) + b"x,y,z,w,v,u,t\n"

    with pytest.raises(ImportRowsError) as exc:
        read(data)

    assert exc.value.errors[0][0] == 1
    assert fragment in exc.value.errors[0][1]


@pytest.mark.parametrize("data", [b"", b"\xef\xbb\xbf", csv_bytes([])])
def test_empty_file_is_row_1(data):
    with pytest.raises(ImportRowsError) as exc:
        read(data)

    assert [row for row, _m in exc.value.errors] == [1]


def test_unsupported_file_type():
    with pytest.raises(ImportRowsError, match="cannot be imported"):
        read(b"whatever", "fleet.xls")


# --- The command --------------------------------------------------------------------------------
def test_command_imports_and_prints_the_summary(world, fleet, tmp_path):
    path = tmp_path / "fleet.csv"
    path.write_bytes(csv_bytes(fleet))
    out = io.StringIO()

    call_command("import_fleet", str(path), stdout=out)

    assert "2 vehicles created" in out.getvalue()
    lines = out.getvalue().splitlines()
    assert lines[0] == "3 rows read, checking..."
    assert lines[-2:] == [
        "3 / 3 rows",
        "3 rows imported: 2 vehicles created, 0 reused; 3 devices created, 0 reused; "
        "3 devices bound.",
    ]
    assert Vehicle.objects.filter(plate=fleet[0][0]).exists()


def test_command_reports_every_bad_row_and_fails(world, fleet, tmp_path):
    fleet[0][2] = bad_luhn(fleet[0][2])
    fleet[2][5] = "nobody"
    path = tmp_path / "fleet.csv"
    path.write_bytes(csv_bytes(fleet))
    err, before = io.StringIO(), counts()

    with pytest.raises(CommandError, match="nothing was imported"):
        call_command("import_fleet", str(path), stdout=io.StringIO(), stderr=err)

    assert "row 2: Device id (IMEI):" in err.getvalue()
    assert "row 4: unknown customer 'nobody'" in err.getvalue()
    assert counts() == before


def test_command_default_customer_and_dry_run(world, fleet, tmp_path):
    path = tmp_path / "fleet.csv"
    path.write_bytes(csv_bytes([r[:5] for r in fleet], header=HEADER[:5]))
    before = counts()

    out = io.StringIO()
    call_command("import_fleet", str(path), "--customer", "branch-a2", "--dry-run", stdout=out)
    assert "Dry run" in out.getvalue()
    assert counts() == before

    call_command("import_fleet", str(path), "--customer", "branch-a2", stdout=io.StringIO())
    assert set(
        Vehicle.objects.filter(plate__in=[r[0] for r in fleet]).values_list(
            "customer__code", flat=True
        )
    ) == {"branch-a2"}


def test_command_help_names_the_columns():
    from vehicles.management.commands.import_fleet import Command

    text = Command().create_parser("manage.py", "import_fleet").format_help()

    assert "plate,vin,imei,protocol,device_kind[,customer]" in text
    assert "--dry-run" in text and "--customer CODE" in text


def test_command_without_customer_fails(world, fleet, tmp_path):
    path = tmp_path / "fleet.csv"
    path.write_bytes(csv_bytes([r[:5] for r in fleet], header=HEADER[:5]))

    with pytest.raises(CommandError):
        call_command("import_fleet", str(path), stdout=io.StringIO(), stderr=io.StringIO())
    with pytest.raises(CommandError, match="unknown customer 'nope'"):
        call_command("import_fleet", str(path), "--customer", "nope", stdout=io.StringIO())


# --- The admin page -----------------------------------------------------------------------------
def _import_url() -> str | None:
    try:
        return reverse("admin:vehicles_vehicle_import")
    except NoReverseMatch:  # the Vehicle admin has not mounted the page (yet)
        return None


def _post(client, user, data: dict, *, name="fleet.csv", content=b"", direct=False):
    """POST the import form as `user`, through the admin URL when mounted (else, or `direct`,
    calling the view itself). Returns (response, messages)."""
    from vehicles.admin_views import fleet_import_view

    payload = {**data, "file": SimpleUploadedFile(name, content)}
    url = None if direct else _import_url()
    if url is not None:
        client.force_login(user)
        response = client.post(url, payload)
        return response, [str(m) for m in get_messages(response.wsgi_request)]
    request = RequestFactory().post("/admin/vehicles/vehicle/import/", payload)
    request.user = user
    request._messages = CookieStorage(request)
    response = fleet_import_view(request, ModelAdmin(Vehicle, admin_site))
    if hasattr(response, "render"):
        response.render()
    return response, [str(m) for m in request._messages]


def test_admin_import_view_called_directly(world, fleet, client):
    response, messages = _post(
        client,
        world.users["a1_operator"],
        {"dry_run": "on"},
        content=csv_bytes(fleet[:2]),
        direct=True,
    )

    assert response.status_code == 200  # a dry run stays on the form
    assert any("Dry run" in m and "1 vehicles created" in m for m in messages), messages
    assert not Vehicle.objects.filter(plate=fleet[0][0]).exists()
    with pytest.raises(PermissionDenied):  # not staff, and no add permissions
        _post(client, world.users["a1_installer"], {}, content=csv_bytes(fleet), direct=True)


def test_admin_import_form_and_success(world, fleet, client):
    user = world.users["a_admin"]
    url = _import_url()
    if url is not None:
        client.force_login(user)
        page = client.get(url)
        assert page.status_code == 200
        assert b"Branch A1 (branch-a1)" in page.content
        assert b"Lender B" not in page.content  # default customers: only the visible ones

    response, messages = _post(client, user, {}, content=csv_bytes(fleet))

    assert response.status_code == 302
    assert response["Location"].endswith("/admin/vehicles/vehicle/")
    assert any("2 vehicles created" in m and "3 devices bound" in m for m in messages), messages
    assert Vehicle.objects.filter(plate=fleet[0][0]).exists()


def test_admin_accepts_an_xlsx_upload(world, fleet, client):
    workbook = openpyxl.Workbook()
    workbook.active.append(HEADER)
    for row in fleet:
        workbook.active.append(row)
    buffer = io.BytesIO()
    workbook.save(buffer)

    response, messages = _post(
        client, world.users["a_admin"], {}, name="车队.xlsx", content=buffer.getvalue()
    )

    assert response.status_code == 302, messages
    assert Device.objects.filter(identifier=fleet[1][2], protocol="jt808").exists()


def test_admin_default_customer_from_the_form(world, fleet, client):
    rows = [r[:5] for r in fleet]
    data = {"customer": world.customers["a2"].pk}

    response, _messages = _post(
        client, world.users["a_admin"], data, content=csv_bytes(rows, header=HEADER[:5])
    )

    assert response.status_code == 302
    assert Vehicle.objects.get(plate=fleet[0][0]).customer == world.customers["a2"]


def test_admin_shows_the_row_errors(world, fleet, client):
    fleet[1][3] = "tk103"
    fleet[2][5] = "lender-b"
    before = counts()

    response, _messages = _post(client, world.users["a_admin"], {}, content=csv_bytes(fleet))

    assert response.status_code == 200
    html = response.content.decode()
    assert 'id="import-errors"' in html
    assert "<td>3</td><td>unknown protocol &#x27;tk103&#x27;" in html
    assert "<td>4</td><td>unknown customer &#x27;lender-b&#x27;</td>" in html
    assert counts() == before


def test_admin_refuses_a_customer_outside_the_subtree(world, fleet, client):
    rows = [r[:5] for r in fleet]
    before = counts()

    response, _messages = _post(
        client,
        world.users["a_admin"],
        {"customer": world.customers["b"].pk},
        content=csv_bytes(rows, header=HEADER[:5]),
    )

    assert response.status_code == 200  # the form comes back with the choice refused
    assert counts() == before


def test_admin_import_needs_add_permissions(world, fleet, client):
    installer = world.users["a1_installer"]
    # Staff, so the admin lets them in and the page's own permission check is what refuses.
    installer.is_staff = True
    installer.save(update_fields=["is_staff"])
    url = _import_url()
    if url is not None:
        client.force_login(installer)
        assert client.get(url).status_code == 403
        assert (
            client.post(url, {"file": SimpleUploadedFile("f.csv", csv_bytes(fleet))}).status_code
            == 403
        )
    else:
        with pytest.raises(PermissionDenied):
            _post(client, installer, {}, content=csv_bytes(fleet))
    assert not Vehicle.objects.filter(plate=fleet[0][0]).exists()
