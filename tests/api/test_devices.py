"""Devices: inventory CRUD through services, last-known state, filters, stock moves."""

from __future__ import annotations

import datetime as dt
import random

import pytest
from django.contrib.gis.geos import Point
from django.utils import timezone

from carloan import fakes
from devices.models import Device, StockMove
from tests.api import API, result_ids
from tests.factories import DeviceModelFactory

pytestmark = pytest.mark.django_db


def _imei(seed: int) -> str:
    return fakes.make_imei(random.Random(seed))


# --- Create / edit / delete ---------------------------------------------------------------------
def test_create_puts_the_device_in_the_customers_stock(world, api):
    model = DeviceModelFactory(protocol="gt06", kind="wireless", default_work_mode="deep_sleep")
    payload = {
        "customer": world.customers["a1"].pk,
        "identifier": f" {_imei(1)} ",
        "protocol": "gt06",
        "kind": "wireless",
        "model": model.pk,
        "sim_iccid": fakes.make_iccid(random.Random(1)),
    }
    response = api(world.users["a1_operator"]).post(f"{API}/devices/", payload, format="json")

    assert response.status_code == 201, response.content
    body = response.json()
    device = Device.objects.get(pk=body["id"])
    assert (device.identifier, device.status, device.customer_id) == (
        _imei(1),
        "stock",
        world.customers["a1"].pk,
    )
    # The model's default work mode, with its default parameters.
    assert (body["work_mode"], body["work_params"]) == ("deep_sleep", {"days": 1})
    assert body["model_name"] == str(model)
    assert (body["current_vehicle"], body["current_plate"], body["lat"], body["lon"]) == (
        None,
        None,
        None,
        None,
    )
    assert device.history.first().history_user == world.users["a1_operator"]


def test_create_with_a_bad_imei_is_400_naming_identifier(world, api):
    imei = _imei(2)
    bad = imei[:-1] + str((int(imei[-1]) + 1) % 10)  # Luhn digit off by one
    response = api(world.users["a_admin"]).post(
        f"{API}/devices/",
        {
            "customer": world.customers["a"].pk,
            "identifier": bad,
            "protocol": "gt06",
            "kind": "wired",
        },
        format="json",
    )
    assert response.status_code == 400
    assert "identifier" in response.json()
    assert not Device.objects.filter(identifier=bad).exists()


def test_create_with_a_taken_identifier_is_400_naming_identifier(world, api):
    response = api(world.users["a_admin"]).post(
        f"{API}/devices/",
        {
            "customer": world.customers["a"].pk,
            "identifier": world.devices["b"].identifier,
            "protocol": "gt06",
            "kind": "wired",
        },
        format="json",
    )
    assert response.status_code == 400
    assert "identifier" in response.json()


def test_create_for_an_invisible_customer_is_400(world, api):
    response = api(world.users["a1_operator"]).post(
        f"{API}/devices/",
        {
            "customer": world.customers["a2"].pk,
            "identifier": _imei(3),
            "protocol": "gt06",
            "kind": "wired",
        },
        format="json",
    )
    assert response.status_code == 400
    assert "customer" in response.json()
    assert not Device.objects.filter(identifier=_imei(3)).exists()


def test_patch_work_mode_and_params(world, api):
    device = world.stock["a1"]
    response = api(world.users["a1_operator"]).patch(
        f"{API}/devices/{device.pk}/",
        {"work_mode": "alarm_clock", "work_params": {"times": ["20:00", "08:00"]}, "remark": "van"},
        format="json",
    )
    assert response.status_code == 200, response.content
    device.refresh_from_db()
    assert (device.work_mode, device.work_params, device.remark) == (
        "alarm_clock",
        {"times": ["08:00", "20:00"]},
        "van",
    )


def test_patch_with_bad_work_params_is_400(world, api):
    device = world.stock["a1"]
    response = api(world.users["a1_operator"]).patch(
        f"{API}/devices/{device.pk}/",
        {"work_mode": "deep_sleep", "work_params": {"days": 99}},
        format="json",
    )
    assert response.status_code == 400
    assert "work_params" in response.json()
    device.refresh_from_db()
    assert device.work_mode == "realtime"


def test_changing_the_work_mode_alone_takes_the_new_modes_defaults(world, api):
    client = api(world.users["a1_operator"])
    created = client.post(
        f"{API}/devices/",
        {
            "customer": world.customers["a1"].pk,
            "identifier": _imei(4),
            "protocol": "gt06",
            "kind": "wireless",
        },
        format="json",
    ).json()
    assert created["work_params"] == {"moving_interval_s": 30, "still_interval_s": 60}

    response = client.patch(
        f"{API}/devices/{created['id']}/", {"work_mode": "deep_sleep"}, format="json"
    )

    assert response.status_code == 200, response.content
    assert response.json()["work_params"] == {"days": 1}
    assert Device.objects.get(pk=created["id"]).work_params == {"days": 1}


def test_status_of_a_mounted_device_cannot_be_set_to_stock(world, api):
    device = world.devices["a1"]
    response = api(world.users["a_admin"]).patch(
        f"{API}/devices/{device.pk}/", {"status": "stock"}, format="json"
    )
    assert response.status_code == 409
    device.refresh_from_db()
    assert device.status == "installed"


def test_delete_moves_the_device_to_the_bin_and_unmounts_it(world, api):
    device, vehicle = world.devices["a1"], world.vehicles["a1"]
    client = api(world.users["a1_operator"])

    assert client.delete(f"{API}/devices/{device.pk}/").status_code == 204

    assert client.get(f"{API}/devices/{device.pk}/").status_code == 404
    assert device.pk not in result_ids(client.get(f"{API}/devices/"))
    assert client.get(f"{API}/vehicles/{vehicle.pk}/").json()["device_count"] == 0
    rows = client.get(f"{API}/recycle-bin/?kind=device").json()["results"]
    assert [(r["id"], r["label"]) for r in rows] == [(device.pk, device.identifier)]

    restored = client.post(f"{API}/recycle-bin/device/{device.pk}/restore/")
    assert restored.json() == {"restored": True, "skipped": []}
    assert client.get(f"{API}/devices/{device.pk}/").json()["current_vehicle"] == vehicle.pk


def test_device_hard_delete_is_for_platform_admins_only(world, api):
    device = world.stock["a1"]
    api(world.users["a_admin"]).delete(f"{API}/devices/{device.pk}/")

    assert (
        api(world.users["a_admin"]).delete(f"{API}/recycle-bin/device/{device.pk}/").status_code
        == 403
    )
    assert (
        api(world.users["platform_admin"])
        .delete(f"{API}/recycle-bin/device/{device.pk}/")
        .status_code
        == 204
    )
    assert not Device.all_objects.filter(pk=device.pk).exists()


def test_installer_cannot_edit_devices(world, api):
    device = world.stock["a1"]
    client = api(world.users["a1_installer"])
    assert (
        client.patch(f"{API}/devices/{device.pk}/", {"remark": "x"}, format="json").status_code
        == 403
    )
    assert client.delete(f"{API}/devices/{device.pk}/").status_code == 403


# --- Last-known state ---------------------------------------------------------------------------
def test_last_known_state_is_shown_in_wgs84(world, api):
    device = world.devices["a1"]
    fix = timezone.now() - dt.timedelta(minutes=2)
    # Gateway state (no service exists for it yet): written as the gateway's batch writer would.
    Device.objects.filter(pk=device.pk).update(
        online=True,
        last_seen_at=fix,
        last_fix_at=fix,
        last_position=Point(108.9402, 34.3416, srid=4326),
        last_speed_kmh=42.5,
        last_course=90,
        last_acc=True,
        battery_pct=81,
        external_voltage=12.6,
        gsm_signal=4,
        satellites=11,
        odometer_km=12345.6,
    )

    body = api(world.users["a1_operator"]).get(f"{API}/devices/{device.pk}/").json()

    assert (body["lat"], body["lon"]) == (34.3416, 108.9402)
    assert body["online"] is True
    assert (body["speed_kmh"], body["course"], body["acc"], body["battery_pct"]) == (
        42.5,
        90,
        True,
        81,
    )
    assert (body["satellites"], body["gsm_signal"], body["odometer_km"]) == (11, 4, 12345.6)
    assert dt.datetime.fromisoformat(body["last_fix_at"]) == fix
    assert (body["current_vehicle"], body["current_plate"]) == (
        world.vehicles["a1"].pk,
        world.vehicles["a1"].plate,
    )


# --- Filters ------------------------------------------------------------------------------------
def test_filters(world, api):
    client = api(world.users["a_admin"])
    mounted, stock = world.devices["a1"], world.stock["a1"]

    def ids(**query):
        return result_ids(client.get(f"{API}/devices/", query))

    assert ids(imei=mounted.identifier) == {mounted.pk}
    prefix = mounted.identifier[:12]
    assert mounted.pk in ids(imei=prefix)
    assert all(Device.objects.get(pk=pk).identifier.startswith(prefix) for pk in ids(imei=prefix))
    assert ids(status="stock") == {world.stock[k].pk for k in ("a", "a1", "a2")}
    assert ids(status="installed") == {world.devices[k].pk for k in ("a", "a1", "a2")}
    assert ids(customer=world.customers["a1"].pk) == {mounted.pk, stock.pk}
    assert ids(plate=world.vehicles["a1"].plate.lower()) == {mounted.pk}
    assert ids(protocol="gt06", kind="wired") == ids()
    assert ids(protocol="jt808") == set()
    assert ids(imei=world.devices["b"].identifier) == set()
    assert client.get(f"{API}/devices/", {"protocol": "nmea"}).status_code == 400


# --- Stock moves --------------------------------------------------------------------------------
def test_move_devices_between_the_callers_customers(world, api):
    stock = world.stock["a1"]
    response = api(world.users["a_admin"]).post(
        f"{API}/devices/move/",
        {"device_ids": [stock.pk], "to_customer": world.customers["a2"].pk, "note": "rebalance"},
        format="json",
    )
    assert response.status_code == 200, response.content
    assert response.json() == {"moved": 1}
    stock.refresh_from_db()
    assert stock.customer_id == world.customers["a2"].pk
    move = StockMove.objects.get(device=stock)
    assert (move.from_customer_id, move.moved_by, move.note) == (
        world.customers["a1"].pk,
        world.users["a_admin"],
        "rebalance",
    )


def _customers_of(*devices) -> list[int]:
    return [Device.objects.get(pk=d.pk).customer_id for d in devices]


def test_move_to_an_invisible_customer_changes_nothing(world, api):
    stock = world.stock["a1"]
    response = api(world.users["a_admin"]).post(
        f"{API}/devices/move/",
        {"device_ids": [stock.pk], "to_customer": world.customers["b"].pk},
        format="json",
    )
    assert response.status_code in (400, 404)
    assert "Lender B" not in response.content.decode()
    assert _customers_of(stock) == [world.customers["a1"].pk]
    assert not StockMove.objects.exists()


def test_move_with_one_invisible_device_moves_none(world, api):
    mine, theirs = world.stock["a1"], world.stock["b1"]
    response = api(world.users["a_admin"]).post(
        f"{API}/devices/move/",
        {"device_ids": [mine.pk, theirs.pk], "to_customer": world.customers["a2"].pk},
        format="json",
    )
    assert response.status_code == 404
    assert _customers_of(mine, theirs) == [world.customers["a1"].pk, world.customers["b1"].pk]
    assert not StockMove.objects.exists()


def test_move_of_another_tenants_device_into_own_stock_is_404(world, api):
    theirs = world.stock["a1"]
    response = api(world.users["b_admin"]).post(
        f"{API}/devices/move/",
        {"device_ids": [theirs.pk], "to_customer": world.customers["b"].pk},
        format="json",
    )
    assert response.status_code == 404
    assert _customers_of(theirs) == [world.customers["a1"].pk]


def test_a_mounted_device_cannot_leave_its_vehicles_line(world, api):
    mounted = world.devices["a1"]
    response = api(world.users["a_admin"]).post(
        f"{API}/devices/move/",
        {"device_ids": [mounted.pk], "to_customer": world.customers["a2"].pk},
        format="json",
    )
    assert response.status_code == 409
    assert _customers_of(mounted) == [world.customers["a1"].pk]


def test_move_needs_the_change_permission(world, api):
    response = api(world.users["a1_installer"]).post(
        f"{API}/devices/move/",
        {"device_ids": [world.stock["a1"].pk], "to_customer": world.customers["a1"].pk},
        format="json",
    )
    assert response.status_code == 403


# --- Sharing (django-guardian) -------------------------------------------------------------------
def test_a_shared_device_lends_view_and_change_rights_but_not_ownership(world, api):
    from guardian.shortcuts import assign_perm

    shared = world.stock["a1"]
    b_admin = api(world.users["b_admin"])
    assign_perm("devices.view_device", world.users["b_admin"], shared)

    assert shared.pk in result_ids(b_admin.get(f"{API}/devices/"))
    assert b_admin.get(f"{API}/devices/{shared.pk}/").status_code == 200
    refused = b_admin.patch(f"{API}/devices/{shared.pk}/", {"remark": "b"}, format="json")
    assert refused.status_code == 403

    assign_perm("devices.change_device", world.users["b_admin"], shared)
    edited = b_admin.patch(f"{API}/devices/{shared.pk}/", {"remark": "b"}, format="json")
    assert edited.status_code == 200
    assert b_admin.delete(f"{API}/devices/{shared.pk}/").status_code == 403
    moved = b_admin.post(
        f"{API}/devices/move/",
        {"device_ids": [shared.pk], "to_customer": world.customers["b"].pk},
        format="json",
    )
    assert moved.status_code == 404
    shared.refresh_from_db()
    assert (shared.remark, shared.customer_id, shared.deleted_at) == (
        "b",
        world.customers["a1"].pk,
        None,
    )
