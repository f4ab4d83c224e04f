"""Every list shows exactly the caller's subtree; another tenant's ids answer 404, not 403."""

from __future__ import annotations

import pytest

from tests.api import API, result_ids
from tests.conftest import PERSONAS
from tests.factories import UserFactory
from vehicles.models import DeviceBinding
from vehicles.services import vehicle_soft_delete

pytestmark = pytest.mark.django_db


def _binding(world, key: str) -> DeviceBinding:
    return DeviceBinding.objects.get(device=world.devices[key], unbound_at__isnull=True)


@pytest.mark.parametrize("persona", PERSONAS)
def test_customer_list_is_the_callers_subtree(world, api, persona):
    response = api(world.users[persona]).get(f"{API}/customers/")
    expected = {world.customers[k].pk for k in world.visible_keys(persona)}
    assert result_ids(response) == expected


@pytest.mark.parametrize("persona", PERSONAS)
def test_vehicle_list_is_the_callers_subtree(world, api, persona):
    response = api(world.users[persona]).get(f"{API}/vehicles/")
    expected = {world.vehicles[k].pk for k in world.visible_keys(persona)}
    assert result_ids(response) == expected


@pytest.mark.parametrize("persona", PERSONAS)
def test_device_list_is_the_callers_subtree(world, api, persona):
    response = api(world.users[persona]).get(f"{API}/devices/")
    keys = world.visible_keys(persona)
    expected = {world.devices[k].pk for k in keys} | {world.stock[k].pk for k in keys}
    assert result_ids(response) == expected


@pytest.mark.parametrize("persona", PERSONAS)
def test_binding_list_is_the_callers_subtree(world, api, persona):
    response = api(world.users[persona]).get(f"{API}/bindings/")
    expected = {_binding(world, k).pk for k in world.visible_keys(persona)}
    assert result_ids(response) == expected


@pytest.mark.parametrize("persona", PERSONAS)
def test_recycle_bin_list_is_the_callers_subtree(world, api, persona):
    from devices.services import device_soft_delete

    for key in world.customers:
        vehicle_soft_delete(vehicle=world.vehicles[key])
        device_soft_delete(device=world.stock[key])

    response = api(world.users[persona]).get(f"{API}/recycle-bin/")

    assert response.status_code == 200
    rows = response.json()["results"]
    keys = world.visible_keys(persona)
    expected = {("vehicle", world.vehicles[k].pk) for k in keys}
    expected |= {("device", world.stock[k].pk) for k in keys}
    assert {(row["kind"], row["id"]) for row in rows} == expected


@pytest.mark.parametrize(
    "path", ["customers/", "vehicles/", "devices/", "bindings/", "recycle-bin/"]
)
def test_lists_refuse_a_user_without_the_view_permission(world, api, path):
    no_role = UserFactory(username="no_role", customer=world.customers["a1"], role=None)
    assert api(no_role).get(f"{API}/{path}").status_code == 403


@pytest.mark.parametrize(
    "path", ["customers/", "vehicles/", "devices/", "bindings/", "recycle-bin/", "users/me/"]
)
def test_anonymous_callers_get_401(world, api, path):
    response = api().get(f"{API}/{path}")
    assert response.status_code == 401
    assert response["WWW-Authenticate"].startswith("Token")


# (persona, key of a customer outside their subtree)
OUTSIDERS = [
    ("a_admin", "b"),
    ("a_admin", "b1"),
    ("a_admin", "platform"),
    ("b_admin", "a1"),
    ("b_admin", "a"),
    ("a1_operator", "a2"),
    ("a1_operator", "a"),
    ("a1_installer", "a2"),
    ("a1_installer", "b1"),
]


@pytest.mark.parametrize(("persona", "key"), OUTSIDERS)
def test_details_of_another_tenant_answer_404(world, api, persona, key):
    client = api(world.users[persona])
    paths = [
        f"customers/{world.customers[key].pk}/",
        f"vehicles/{world.vehicles[key].pk}/",
        f"devices/{world.devices[key].pk}/",
        f"devices/{world.stock[key].pk}/",
        f"bindings/{_binding(world, key).pk}/",
    ]
    for path in paths:
        assert client.get(f"{API}/{path}").status_code == 404, path


@pytest.mark.parametrize(
    ("persona", "key"), [("a_admin", "b1"), ("b_admin", "a1"), ("a1_operator", "a2")]
)
def test_writes_on_another_tenants_objects_answer_404_and_change_nothing(world, api, persona, key):
    client = api(world.users[persona])
    vehicle, device = world.vehicles[key], world.devices[key]

    assert client.patch(f"{API}/vehicles/{vehicle.pk}/", {"remark": "x"}).status_code == 404
    assert client.delete(f"{API}/vehicles/{vehicle.pk}/").status_code == 404
    assert client.patch(f"{API}/devices/{device.pk}/", {"remark": "x"}).status_code == 404
    assert client.delete(f"{API}/devices/{device.pk}/").status_code == 404
    assert client.post(f"{API}/bindings/{_binding(world, key).pk}/unbind/").status_code == 404

    vehicle.refresh_from_db()
    device.refresh_from_db()
    assert (vehicle.remark, vehicle.deleted_at, device.remark, device.deleted_at) == (
        "",
        None,
        "",
        None,
    )
    assert _binding(world, key).device_id == device.pk


@pytest.mark.parametrize("persona", PERSONAS)
def test_each_detail_of_the_callers_subtree_is_readable(world, api, persona):
    client = api(world.users[persona])
    for key in world.visible_keys(persona):
        assert client.get(f"{API}/vehicles/{world.vehicles[key].pk}/").status_code == 200
        assert client.get(f"{API}/devices/{world.stock[key].pk}/").status_code == 200
        assert client.get(f"{API}/bindings/{_binding(world, key).pk}/").status_code == 200
        assert client.get(f"{API}/customers/{world.customers[key].pk}/").status_code == 200
