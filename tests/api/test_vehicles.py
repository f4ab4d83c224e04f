"""Vehicles: create / edit / delete through services, filters, sharing, query counts."""

from __future__ import annotations

import datetime as dt
import random

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from guardian.shortcuts import assign_perm

from carloan import fakes
from tests.api import API, result_ids, valid_vehicle_payload
from tests.factories import DeviceFactory, VehicleFactory
from vehicles.models import Vehicle
from vehicles.services import device_bind

pytestmark = pytest.mark.django_db


# --- Create and validate ------------------------------------------------------------------------
def test_create_stores_normalised_identifiers_and_answers_the_detail(world, api):
    payload = valid_vehicle_payload(world.customers["a1"])
    response = api(world.users["a1_operator"]).post(f"{API}/vehicles/", payload, format="json")

    assert response.status_code == 201, response.content
    body = response.json()
    vehicle = Vehicle.objects.get(pk=body["id"])
    assert (vehicle.plate, body["plate"]) == ("京A00001", "京A00001")
    assert vehicle.borrower_phone == "13800138000"
    assert vehicle.customer_id == world.customers["a1"].pk
    assert body["customer_name"] == "Branch A1"
    assert (body["device_count"], body["bindings"]) == (0, [])
    assert body["loan_principal"] == "120000.00"
    # History records the acting user: the write went through the service.
    assert vehicle.history.first().history_user == world.users["a1_operator"]


def test_times_are_iso_8601_with_an_offset(world, api):
    body = api(world.users["a_admin"]).get(f"{API}/vehicles/{world.vehicles['a'].pk}/").json()
    created = dt.datetime.fromisoformat(body["created_at"])
    assert created.utcoffset() is not None


def _other_char(value: str, index: int) -> str:
    """`value` with the character at `index` replaced by another digit (breaks a checksum)."""
    return value[:index] + ("1" if value[index] != "1" else "2") + value[index + 1 :]


@pytest.mark.parametrize(
    ("field", "spoil"),
    [
        ("plate", lambda v: "XYZ123"),
        ("plate", lambda v: "陕I12345"),  # I is never an issuing-authority letter
        ("vin", lambda v: _other_char(v, 8)),  # check digit at position 9
        ("vin", lambda v: v[:8]),
        ("vin", lambda v: v[:-1] + "O"),  # O is never used
        ("borrower_id_number", lambda v: _other_char(v, 17)),  # check character
        ("borrower_id_number", lambda v: v[:6] + "19901301" + v[14:]),  # no month 13
        ("borrower_phone", lambda v: "12345"),
    ],
)
def test_create_with_an_invalid_identifier_is_400_naming_the_field(world, api, field, spoil):
    payload = valid_vehicle_payload(world.customers["a1"])
    payload[field] = spoil(payload[field])
    response = api(world.users["a_admin"]).post(f"{API}/vehicles/", payload, format="json")

    assert response.status_code == 400
    assert field in response.json()
    assert not Vehicle.objects.filter(customer=world.customers["a1"], brand="BYD").exists()


def test_a_plate_already_used_by_a_live_vehicle_is_400_naming_plate(world, api):
    taken = world.vehicles["b"].plate
    payload = valid_vehicle_payload(world.customers["a1"], plate=taken.lower())
    response = api(world.users["a_admin"]).post(f"{API}/vehicles/", payload, format="json")
    assert response.status_code == 400
    assert "plate" in response.json()


def test_create_for_another_tenants_customer_is_400_without_saying_it_exists(world, api):
    client = api(world.users["a_admin"])
    invisible = client.post(
        f"{API}/vehicles/", valid_vehicle_payload(world.customers["b1"]), format="json"
    )
    payload = valid_vehicle_payload(world.customers["b1"])
    payload["customer"] = 999999
    missing = client.post(f"{API}/vehicles/", payload, format="json")

    assert invisible.status_code == missing.status_code == 400
    assert invisible.json()["customer"] == [
        m.replace("999999", str(world.customers["b1"].pk)) for m in missing.json()["customer"]
    ]
    assert not Vehicle.objects.filter(customer=world.customers["b1"], brand="BYD").exists()


def test_create_needs_the_add_permission(world, api):
    response = api(world.users["a1_installer"]).post(
        f"{API}/vehicles/", valid_vehicle_payload(world.customers["a1"]), format="json"
    )
    assert response.status_code == 403


# --- Edit -------------------------------------------------------------------------------------
def test_patch_goes_through_the_service(world, api):
    vehicle = world.vehicles["a1"]
    response = api(world.users["a1_operator"]).patch(
        f"{API}/vehicles/{vehicle.pk}/",
        {"repayment_status": "overdue", "overdue_days": 12, "plate": "京b 7777 7"},
        format="json",
    )

    assert response.status_code == 200, response.content
    vehicle.refresh_from_db()
    assert (vehicle.repayment_status, vehicle.overdue_days, vehicle.plate) == (
        "overdue",
        12,
        "京B77777",
    )
    assert response.json()["device_count"] == 1
    assert vehicle.history.first().history_user == world.users["a1_operator"]


def test_patch_with_an_invalid_value_changes_nothing(world, api):
    vehicle = world.vehicles["a1"]
    response = api(world.users["a_admin"]).patch(
        f"{API}/vehicles/{vehicle.pk}/", {"vin": "NOTAVIN", "remark": "x"}, format="json"
    )
    assert response.status_code == 400
    assert "vin" in response.json()
    vehicle.refresh_from_db()
    assert vehicle.remark == ""


def test_customer_is_not_editable_with_patch(world, api):
    vehicle = world.vehicles["a1"]
    api(world.users["a_admin"]).patch(
        f"{API}/vehicles/{vehicle.pk}/", {"customer": world.customers["a2"].pk}, format="json"
    )
    vehicle.refresh_from_db()
    assert vehicle.customer_id == world.customers["a1"].pk


# --- Filters ----------------------------------------------------------------------------------
def test_filters(world, api):
    client = api(world.users["a_admin"])
    a1, a2 = world.vehicles["a1"], world.vehicles["a2"]
    a2.repayment_status, a2.overdue_days = "overdue", 3
    a2.save()

    def ids(query: str):
        name, value = query.split("=", 1)
        return result_ids(client.get(f"{API}/vehicles/", {name: value}))

    plate = a1.plate
    spaced = f"{plate[:2].lower()} {plate[2:4]}·{plate[4:]}"
    assert ids(f"plate={spaced}") == {a1.pk}
    assert ids(f"plate={plate[-4:]}") >= {a1.pk}
    assert ids(f"vin={a1.vin[-6:].lower()}") == {a1.pk}
    assert ids(f"customer={world.customers['a2'].pk}") == {a2.pk}
    assert ids("status=overdue") == {a2.pk}
    assert ids(f"borrower={a1.borrower_name}") == {a1.pk}
    assert ids(f"borrower={a1.borrower_phone[-8:]}") == {a1.pk}
    assert ids(f"imei={world.devices['a1'].identifier}") == {a1.pk}
    assert ids(f"imei={world.stock['a1'].identifier}") == set()
    assert ids(f"q={a1.vin}") == {a1.pk}
    assert ids(f"q={a1.borrower_name}") == {a1.pk}
    assert ids(f"q={plate}") == {a1.pk}


def test_filters_never_reach_outside_the_subtree(world, api):
    client = api(world.users["a_admin"])
    b = world.vehicles["b"]
    for query in (
        f"plate={b.plate}",
        f"imei={world.devices['b'].identifier}",
        f"q={b.vin}",
        f"customer={world.customers['b'].pk}",
    ):
        name, value = query.split("=", 1)
        assert result_ids(client.get(f"{API}/vehicles/", {name: value})) == set(), query


def test_an_unknown_status_is_400(world, api):
    response = api(world.users["a_admin"]).get(f"{API}/vehicles/?status=lost")
    assert response.status_code == 400
    assert "status" in response.json()


def test_pages(world, api):
    client = api(world.users["platform_admin"])
    first = client.get(f"{API}/vehicles/", {"page_size": 4}).json()
    second = client.get(f"{API}/vehicles/", {"page_size": 4, "page": 2}).json()
    assert (first["count"], len(first["results"]), len(second["results"])) == (6, 4, 2)
    assert first["next"] is not None and second["next"] is None
    seen = {r["id"] for r in first["results"]} | {r["id"] for r in second["results"]}
    assert seen == {v.pk for v in world.vehicles.values()}
    # Newest first.
    assert [r["id"] for r in first["results"]] == sorted(seen, reverse=True)[:4]
    # Too large a page size is capped (500), not refused.
    assert len(client.get(f"{API}/vehicles/", {"page_size": 5000}).json()["results"]) == 6


# --- Detail -----------------------------------------------------------------------------------
def test_detail_lists_the_mounted_devices(world, api):
    vehicle, device = world.vehicles["a1"], world.devices["a1"]
    body = api(world.users["a1_installer"]).get(f"{API}/vehicles/{vehicle.pk}/").json()
    assert body["device_count"] == 1
    [mounted] = body["bindings"]
    assert (mounted["device"], mounted["identifier"], mounted["protocol"], mounted["kind"]) == (
        device.pk,
        device.identifier,
        "gt06",
        "wired",
    )
    assert dt.datetime.fromisoformat(mounted["bound_at"]).utcoffset() is not None


# --- Sharing (django-guardian) -------------------------------------------------------------------
def test_a_shared_vehicle_is_visible_but_read_only(world, api):
    shared = world.vehicles["a1"]
    assign_perm("vehicles.view_vehicle", world.users["b_admin"], shared)
    b_admin = api(world.users["b_admin"])

    listed = result_ids(b_admin.get(f"{API}/vehicles/"))
    assert listed == {world.vehicles["b"].pk, world.vehicles["b1"].pk, shared.pk}
    assert b_admin.get(f"{API}/vehicles/{shared.pk}/").status_code == 200
    # Only that vehicle: its neighbours stay hidden.
    assert b_admin.get(f"{API}/vehicles/{world.vehicles['a2'].pk}/").status_code == 404

    refused = b_admin.patch(f"{API}/vehicles/{shared.pk}/", {"remark": "mine"}, format="json")
    assert refused.status_code in (403, 404)
    assert b_admin.delete(f"{API}/vehicles/{shared.pk}/").status_code in (403, 404)
    shared.refresh_from_db()
    assert (shared.remark, shared.deleted_at) == ("", None)

    allowed = api(world.users["a_admin"]).patch(
        f"{API}/vehicles/{shared.pk}/", {"remark": "ours"}, format="json"
    )
    assert allowed.status_code == 200
    shared.refresh_from_db()
    assert shared.remark == "ours"


def test_a_vehicle_shared_for_change_can_be_edited(world, api):
    shared = world.vehicles["a1"]
    assign_perm("vehicles.view_vehicle", world.users["b_admin"], shared)
    assign_perm("vehicles.change_vehicle", world.users["b_admin"], shared)
    response = api(world.users["b_admin"]).patch(
        f"{API}/vehicles/{shared.pk}/", {"remark": "shared edit"}, format="json"
    )
    assert response.status_code == 200
    shared.refresh_from_db()
    assert shared.remark == "shared edit"
    # Sharing lends view and change rights, not deletion.
    assert api(world.users["b_admin"]).delete(f"{API}/vehicles/{shared.pk}/").status_code == 403
    assert Vehicle.objects.filter(pk=shared.pk).exists()


# --- Soft delete, recycle bin, restore, hard delete --------------------------------------------
def test_soft_delete_hides_the_vehicle_and_restore_brings_it_back_with_its_device(world, api):
    vehicle, device = world.vehicles["a1"], world.devices["a1"]
    client = api(world.users["a1_operator"])

    assert client.delete(f"{API}/vehicles/{vehicle.pk}/").status_code == 204

    assert vehicle.pk not in result_ids(client.get(f"{API}/vehicles/"))
    assert client.get(f"{API}/vehicles/{vehicle.pk}/").status_code == 404
    assert result_ids(client.get(f"{API}/vehicles/?q={vehicle.plate}")) == set()
    assert result_ids(client.get(f"{API}/vehicles/?imei={device.identifier}")) == set()
    device_row = client.get(f"{API}/devices/{device.pk}/").json()
    assert (device_row["status"], device_row["current_vehicle"]) == ("stock", None)

    bin_rows = client.get(f"{API}/recycle-bin/?kind=vehicle").json()["results"]
    assert [(r["kind"], r["id"], r["label"], r["customer"], r["deleted_by"]) for r in bin_rows] == [
        ("vehicle", vehicle.pk, vehicle.plate, world.customers["a1"].pk, "a1_operator")
    ]
    assert bin_rows[0]["customer_name"] == "Branch A1"
    assert dt.datetime.fromisoformat(bin_rows[0]["deleted_at"]).utcoffset() is not None

    restored = client.post(f"{API}/recycle-bin/vehicle/{vehicle.pk}/restore/")

    assert restored.status_code == 200
    assert restored.json() == {"restored": True, "skipped": []}
    detail = client.get(f"{API}/vehicles/{vehicle.pk}/").json()
    assert [b["device"] for b in detail["bindings"]] == [device.pk]
    assert result_ids(client.get(f"{API}/vehicles/?imei={device.identifier}")) == {vehicle.pk}
    assert client.get(f"{API}/recycle-bin/").json()["results"] == []


def test_restore_refused_when_the_plate_was_reused_is_409(world, api):
    vehicle = world.vehicles["a1"]
    client = api(world.users["a_admin"])
    client.delete(f"{API}/vehicles/{vehicle.pk}/")
    VehicleFactory(customer=world.customers["a2"], plate=vehicle.plate)

    response = client.post(f"{API}/recycle-bin/vehicle/{vehicle.pk}/restore/")

    assert response.status_code == 409
    assert response.json()["code"] == "conflict"
    assert Vehicle.deleted_objects.filter(pk=vehicle.pk).exists()


def test_restore_needs_the_delete_permission_and_visibility(world, api):
    vehicle = world.vehicles["a1"]
    api(world.users["a_admin"]).delete(f"{API}/vehicles/{vehicle.pk}/")

    installer = api(world.users["a1_installer"])
    assert installer.post(f"{API}/recycle-bin/vehicle/{vehicle.pk}/restore/").status_code == 403
    b_admin = api(world.users["b_admin"])
    assert b_admin.post(f"{API}/recycle-bin/vehicle/{vehicle.pk}/restore/").status_code == 404
    assert b_admin.delete(f"{API}/recycle-bin/vehicle/{vehicle.pk}/").status_code == 404
    # A live vehicle is not in the bin.
    live = world.vehicles["a2"]
    a_admin = api(world.users["a_admin"])
    assert a_admin.post(f"{API}/recycle-bin/vehicle/{live.pk}/restore/").status_code == 404
    assert Vehicle.deleted_objects.filter(pk=vehicle.pk).exists()


def test_hard_delete_is_for_platform_admins_only(world, api):
    vehicle = world.vehicles["a1"]
    a_admin = api(world.users["a_admin"])
    a_admin.delete(f"{API}/vehicles/{vehicle.pk}/")

    assert a_admin.delete(f"{API}/recycle-bin/vehicle/{vehicle.pk}/").status_code == 403
    assert Vehicle.all_objects.filter(pk=vehicle.pk).exists()

    root = api(world.users["platform_admin"])
    assert root.delete(f"{API}/recycle-bin/vehicle/{vehicle.pk}/").status_code == 204
    assert not Vehicle.all_objects.filter(pk=vehicle.pk).exists()
    assert root.get(f"{API}/recycle-bin/").json()["results"] == []


def test_recycle_bin_kind_filter(world, api):
    from devices.services import device_soft_delete

    client = api(world.users["a_admin"])
    client.delete(f"{API}/vehicles/{world.vehicles['a1'].pk}/")
    device_soft_delete(device=world.stock["a2"])

    kinds = {r["kind"] for r in client.get(f"{API}/recycle-bin/").json()["results"]}
    assert kinds == {"vehicle", "device"}
    rows = client.get(f"{API}/recycle-bin/?kind=device").json()["results"]
    assert [(r["kind"], r["id"], r["label"]) for r in rows] == [
        ("device", world.stock["a2"].pk, world.stock["a2"].identifier)
    ]
    assert client.get(f"{API}/recycle-bin/?kind=alarm").status_code == 400


# --- Query counts -----------------------------------------------------------------------------
def _add_vehicles(world, n: int, seed: int) -> None:
    rng = random.Random(seed)
    for _ in range(n):
        vehicle = VehicleFactory(
            customer=world.customers["a1"], plate=fakes.make_plate(rng, province="粤")
        )
        device_bind(vehicle=vehicle, device=DeviceFactory(customer=world.customers["a1"]))


def _count_queries(client, url) -> tuple[int, int]:
    client.get(url)  # warm-up (content types, ...)
    with CaptureQueriesContext(connection) as ctx:
        response = client.get(url)
    assert response.status_code == 200
    return len(ctx.captured_queries), len(response.json()["results"])


@pytest.mark.parametrize("path", ["vehicles/", "devices/", "bindings/"])
def test_list_query_count_does_not_grow_with_rows(world, api, path):
    client = api(world.users["a1_operator"])
    _add_vehicles(world, 4, seed=1)
    few, rows_few = _count_queries(client, f"{API}/{path}?page_size=100")
    _add_vehicles(world, 35, seed=2)
    many, rows_many = _count_queries(client, f"{API}/{path}?page_size=100")

    assert rows_many > rows_few >= 5
    assert many == few, f"{few} queries for {rows_few} rows, {many} for {rows_many}"


def test_recycle_bin_query_count_does_not_grow_with_rows(world, api):
    from devices.services import device_soft_delete

    client = api(world.users["a_admin"])
    _add_vehicles(world, 3, seed=3)
    for vehicle in Vehicle.objects.all()[:4]:
        client.delete(f"{API}/vehicles/{vehicle.pk}/")
    few, rows_few = _count_queries(client, f"{API}/recycle-bin/")
    _add_vehicles(world, 20, seed=4)
    for vehicle in Vehicle.objects.filter(customer=world.customers["a1"]):
        client.delete(f"{API}/vehicles/{vehicle.pk}/")
    for device in world.stock.values():
        device_soft_delete(device=device)
    many, rows_many = _count_queries(client, f"{API}/recycle-bin/")
    assert rows_many > rows_few
    assert many == few, f"{few} queries for {rows_few} rows, {many} for {rows_many}"
