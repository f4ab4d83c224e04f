"""Excel exports of vehicles and devices (V4): content, scope and a constant number of queries."""

from __future__ import annotations

import datetime as dt
import io
import random

import openpyxl
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from accounts.models import User
from carloan import fakes
from devices.selectors import devices_for_list
from devices.services import device_create
from vehicles.exports import XLSX_CONTENT_TYPE, devices_xlsx, vehicles_xlsx, xlsx_response
from vehicles.selectors import vehicles_for_list
from vehicles.services import device_bind, vehicle_create, vehicle_update

_rng = random.Random(4242)


def sheet_rows(data: bytes) -> list[tuple]:
    workbook = openpyxl.load_workbook(io.BytesIO(data))
    return list(workbook.worksheets[0].iter_rows(values_only=True))


def add_vehicles(customer, count: int, devices_each: int = 2) -> None:
    for _i in range(count):
        vehicle = vehicle_create(
            customer=customer, plate=fakes.make_plate(_rng, province="沪"), vin=fakes.make_vin(_rng)
        )
        for _j in range(devices_each):
            device = device_create(
                customer=customer, identifier=fakes.make_imei(_rng), protocol="gt06", kind="wired"
            )
            device_bind(vehicle=vehicle, device=device)


def test_vehicles_export_has_a_row_per_visible_vehicle(world):
    car = world.vehicles["a1"]
    vehicle_update(vehicle=car, repayment_status="overdue", overdue_days=12)
    rows = sheet_rows(vehicles_xlsx(vehicles_for_list(world.users["a_admin"])))

    header, body = rows[0], rows[1:]
    assert header[:3] == ("Plate", "VIN", "Customer")
    assert header[13:] == ("Devices", "Created at")
    assert sorted(r[0] for r in body) == sorted(world.vehicles[k].plate for k in ("a", "a1", "a2"))
    row = next(r for r in body if r[0] == car.plate)
    assert row[1] == car.vin and row[2] == "Branch A1"
    assert row[8] == "overdue"  # the display label, not necessarily the stored value
    assert row[9] == 12
    assert row[13] == world.devices["a1"].identifier
    # Local wall-clock time (Asia/Shanghai), naive in the sheet.
    expected = timezone.localtime(car.created_at).replace(tzinfo=None)
    assert abs(row[14] - expected) < dt.timedelta(seconds=1)


def test_vehicle_lists_every_mounted_device(world):
    car, extra = world.vehicles["a1"], world.stock["a1"]
    device_bind(vehicle=car, device=extra)

    rows = sheet_rows(vehicles_xlsx(vehicles_for_list(world.users["a1_operator"])))

    assert len(rows) == 2
    assert set(rows[1][13].split(", ")) == {world.devices["a1"].identifier, extra.identifier}


def fresh(user):
    """The user as a new request would load it (no cached customer)."""
    return User.objects.get(pk=user.pk)


def test_vehicles_export_query_count_does_not_grow(world):
    user = world.users["a_admin"]
    with CaptureQueriesContext(connection) as small:
        data = vehicles_xlsx(vehicles_for_list(fresh(user)))
    assert len(sheet_rows(data)) == 1 + 3
    add_vehicles(world.customers["a1"], 27)
    with CaptureQueriesContext(connection) as big:
        data = vehicles_xlsx(vehicles_for_list(fresh(user)))
    assert len(sheet_rows(data)) == 1 + 30

    assert len(big) == len(small)


def test_devices_export(world):
    user = world.users["a_admin"]
    rows = sheet_rows(devices_xlsx(devices_for_list(user)))

    header, body = rows[0], rows[1:]
    assert header[0] == "Device id (IMEI)"
    assert "Current plate" in header
    visible = {world.devices[k].identifier for k in ("a", "a1", "a2")}
    visible |= {world.stock[k].identifier for k in ("a", "a1", "a2")}
    assert {r[0] for r in body} == visible
    bound = next(r for r in body if r[0] == world.devices["a1"].identifier)
    in_stock = next(r for r in body if r[0] == world.stock["a1"].identifier)
    assert bound[1] == "GT06" and bound[4] == "Branch A1"
    assert bound[6] == world.vehicles["a1"].plate and in_stock[6] in ("", None)
    assert bound[5] == "installed" and in_stock[5] == "in stock"


def test_devices_export_query_count_does_not_grow(world):
    user = world.users["a_admin"]
    with CaptureQueriesContext(connection) as small:
        devices_xlsx(devices_for_list(fresh(user)))
    add_vehicles(world.customers["a2"], 10, devices_each=3)
    with CaptureQueriesContext(connection) as big:
        data = devices_xlsx(devices_for_list(fresh(user)))
    assert len(sheet_rows(data)) == 1 + 6 + 30

    assert len(big) == len(small)


def test_user_text_never_becomes_a_formula(world):
    car = world.vehicles["a1"]
    vehicle_update(vehicle=car, brand='=HYPERLINK("http://evil.example","x")')

    data = vehicles_xlsx(vehicles_for_list(world.users["a1_operator"]))
    sheet = openpyxl.load_workbook(io.BytesIO(data)).worksheets[0]

    cell = sheet.cell(row=2, column=4)
    assert cell.value.startswith("=HYPERLINK")
    assert cell.data_type == "s"


def test_xlsx_response():
    response = xlsx_response(b"PK..", "车辆.xlsx")

    assert response["Content-Type"] == XLSX_CONTENT_TYPE
    assert response["Content-Disposition"].startswith("attachment;")
    assert "filename*=utf-8''%E8%BD%A6%E8%BE%86.xlsx" in response["Content-Disposition"]
    assert response.content == b"PK.."
    plain = xlsx_response(b"", "vehicles.xlsx")
    assert plain["Content-Disposition"] == 'attachment; filename="vehicles.xlsx"'
