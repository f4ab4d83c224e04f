"""Bindings: mount and unmount devices through the API, with visibility and conflicts."""

from __future__ import annotations

import pytest
from guardian.shortcuts import assign_perm

from devices.models import Device
from tests.api import API, result_ids
from tests.factories import VehicleFactory
from vehicles.models import DeviceBinding

pytestmark = pytest.mark.django_db


def _bind(client, vehicle, device):
    return client.post(
        f"{API}/bindings/", {"vehicle": vehicle.pk, "device": device.pk}, format="json"
    )


def test_installer_mounts_a_stock_device(world, api):
    vehicle, device = world.vehicles["a1"], world.stock["a1"]

    response = _bind(api(world.users["a1_installer"]), vehicle, device)

    assert response.status_code == 201, response.content
    body = response.json()
    assert (body["vehicle"], body["plate"], body["device"], body["identifier"]) == (
        vehicle.pk,
        vehicle.plate,
        device.pk,
        device.identifier,
    )
    assert (body["active"], body["bound_by"], body["unbound_at"]) == (True, "a1_installer", None)
    device.refresh_from_db()
    assert device.status == "installed"
    assert DeviceBinding.objects.filter(vehicle=vehicle, unbound_at__isnull=True).count() == 2


def test_a_device_of_the_parents_stock_can_go_on_a_branch_vehicle(world, api):
    response = _bind(api(world.users["a_admin"]), world.vehicles["a1"], world.stock["a"])
    assert response.status_code == 201


@pytest.mark.parametrize(
    ("persona", "vehicle_key", "device_key"),
    [
        ("a1_operator", "a2", "a1"),  # vehicle of a sibling branch
        ("a1_operator", "a1", "a2"),  # device of a sibling branch
        ("b_admin", "a1", "b"),  # vehicle of another lender
        ("a_admin", "a", "b"),  # device of another lender
    ],
)
def test_binding_invisible_objects_is_404_and_changes_nothing(
    world, api, persona, vehicle_key, device_key
):
    vehicle, device = world.vehicles[vehicle_key], world.stock[device_key]
    before = DeviceBinding.objects.count()

    response = _bind(api(world.users[persona]), vehicle, device)

    assert response.status_code == 404
    assert DeviceBinding.objects.count() == before
    device.refresh_from_db()
    assert device.status == "stock"


def test_binding_a_device_already_on_another_vehicle_is_409(world, api):
    other = VehicleFactory(customer=world.customers["a1"])
    mounted = world.devices["a1"]

    response = _bind(api(world.users["a1_operator"]), other, mounted)

    assert response.status_code == 409
    assert response.json()["code"] == "conflict"
    assert DeviceBinding.objects.get(device=mounted, unbound_at__isnull=True).vehicle_id == (
        world.vehicles["a1"].pk
    )


def test_binding_a_faulty_device_is_409(world, api):
    faulty = world.stock["a1"]
    Device.objects.filter(pk=faulty.pk).update(status=Device.Status.FAULTY)
    response = _bind(api(world.users["a1_operator"]), world.vehicles["a1"], faulty)
    assert response.status_code == 409
    assert not DeviceBinding.objects.filter(device=faulty).exists()


def test_binding_a_branch_device_to_the_parents_vehicle_is_409(world, api):
    # A branch's stock cannot be mounted on a vehicle of the lender above it.
    response = _bind(api(world.users["a_admin"]), world.vehicles["a"], world.stock["a1"])
    assert response.status_code == 409


def test_binding_on_a_vehicle_shared_read_only_is_refused(world, api):
    shared = world.vehicles["a1"]
    assign_perm("vehicles.view_vehicle", world.users["b_admin"], shared)

    response = _bind(api(world.users["b_admin"]), shared, world.stock["b"])

    assert response.status_code in (403, 404)
    assert not DeviceBinding.objects.filter(device=world.stock["b"]).exists()


def test_unbind_returns_the_device_to_stock_or_marks_it_faulty(world, api):
    client = api(world.users["a1_operator"])
    binding = DeviceBinding.objects.get(device=world.devices["a1"], unbound_at__isnull=True)

    response = client.post(f"{API}/bindings/{binding.pk}/unbind/", {"device_status": "faulty"})

    assert response.status_code == 200, response.content
    body = response.json()
    assert (body["active"], body["unbound_by"], body["end_reason"]) == (
        False,
        "a1_operator",
        "unbound",
    )
    assert Device.objects.get(pk=world.devices["a1"].pk).status == "faulty"
    assert client.get(f"{API}/vehicles/{world.vehicles['a1'].pk}/").json()["device_count"] == 0

    again = client.post(f"{API}/bindings/{binding.pk}/unbind/")
    assert again.status_code == 409


def test_unbind_defaults_to_stock_and_rejects_other_statuses(world, api):
    client = api(world.users["a_admin"])
    binding = DeviceBinding.objects.get(device=world.devices["a2"], unbound_at__isnull=True)

    bad = client.post(f"{API}/bindings/{binding.pk}/unbind/", {"device_status": "scrapped"})
    assert bad.status_code == 400
    assert "device_status" in bad.json()

    assert client.post(f"{API}/bindings/{binding.pk}/unbind/").status_code == 200
    assert Device.objects.get(pk=world.devices["a2"].pk).status == "stock"


def test_installer_may_bind_but_not_unbind(world, api):
    binding = DeviceBinding.objects.get(device=world.devices["a1"], unbound_at__isnull=True)
    response = api(world.users["a1_installer"]).post(f"{API}/bindings/{binding.pk}/unbind/")
    assert response.status_code == 403
    assert DeviceBinding.objects.get(pk=binding.pk).unbound_at is None


def test_filters(world, api):
    client = api(world.users["a_admin"])
    current = DeviceBinding.objects.get(device=world.devices["a1"], unbound_at__isnull=True)
    client.post(f"{API}/bindings/{current.pk}/unbind/")
    new = _bind(client, world.vehicles["a1"], world.stock["a1"]).json()

    def ids(**query):
        return result_ids(client.get(f"{API}/bindings/", query))

    assert ids(vehicle=world.vehicles["a1"].pk) == {current.pk, new["id"]}
    assert ids(vehicle=world.vehicles["a1"].pk, active="true") == {new["id"]}
    assert ids(vehicle=world.vehicles["a1"].pk, active="false") == {current.pk}
    assert ids(imei=world.devices["a1"].identifier) == {current.pk}
    assert ids(imei=world.devices["b"].identifier) == set()
    assert ids(vehicle=world.vehicles["b"].pk) == set()
