"""Every admin changelist, change page, history page, autocomplete and bulk action is limited to
the persona's subtree; another tenant's ids answer 404."""

from __future__ import annotations

import pytest
from django.urls import reverse

from tests.conftest import PERSONAS

STAFF = [p for p in PERSONAS if p != "a1_installer"]


def changelist_ids(client, url):
    response = client.get(url)
    assert response.status_code == 200, url
    return {obj.pk for obj in response.context["cl"].result_list}


def expected(world, persona, attr):
    keys = world.visible_keys(persona)
    return {getattr(world, attr)[k].pk for k in keys}


@pytest.mark.parametrize("persona", STAFF)
def test_vehicle_changelist_shows_exactly_the_subtree(world, client, persona):
    client.force_login(world.users[persona])
    ids = changelist_ids(client, reverse("admin:vehicles_vehicle_changelist"))
    assert ids == expected(world, persona, "vehicles")


@pytest.mark.parametrize("persona", STAFF)
def test_device_changelist_shows_exactly_the_subtree(world, client, persona):
    client.force_login(world.users[persona])
    ids = changelist_ids(client, reverse("admin:devices_device_changelist"))
    assert ids == expected(world, persona, "devices") | expected(world, persona, "stock")


@pytest.mark.parametrize("persona", STAFF)
def test_customer_changelist_shows_exactly_the_subtree(world, client, persona):
    client.force_login(world.users[persona])
    ids = changelist_ids(client, reverse("admin:accounts_customer_changelist"))
    assert ids == expected(world, persona, "customers")


@pytest.mark.parametrize("persona", STAFF)
def test_binding_changelist_shows_exactly_the_subtree(world, client, persona):
    client.force_login(world.users[persona])
    ids = changelist_ids(client, reverse("admin:vehicles_devicebinding_changelist"))
    keys = world.visible_keys(persona)
    assert ids == {world.vehicles[k].bindings.get().pk for k in keys}


@pytest.mark.parametrize("persona", ["a_admin", "b_admin"])
def test_user_changelist_hides_other_tenants_and_platform_admins(world, client, persona):
    client.force_login(world.users[persona])
    ids = changelist_ids(client, reverse("admin:accounts_user_changelist"))
    keys = world.visible_keys(persona)
    assert ids == {
        u.pk
        for u in world.users.values()
        if u.customer_id in {world.customers[k].pk for k in keys} and not u.is_superuser
    }


def test_installer_has_no_back_office(world, client):
    client.force_login(world.users["a1_installer"])
    response = client.get(reverse("admin:vehicles_vehicle_changelist"))
    assert response.status_code == 302  # not staff: sent to the login page


@pytest.mark.parametrize(
    ("persona", "target"),
    [("a_admin", "b"), ("b_admin", "a1"), ("a1_operator", "a2"), ("a1_operator", "a")],
)
def test_other_tenants_objects_answer_404(world, client, persona, target):
    client.force_login(world.users[persona])
    vehicle, device = world.vehicles[target], world.devices[target]
    for url in [
        reverse("admin:vehicles_vehicle_change", args=[vehicle.pk]),
        reverse("admin:vehicles_vehicle_history", args=[vehicle.pk]),
        reverse("admin:vehicles_vehicle_delete", args=[vehicle.pk]),
        reverse("admin:devices_device_change", args=[device.pk]),
        reverse("admin:devices_device_history", args=[device.pk]),
        reverse("admin:accounts_customer_change", args=[world.customers[target].pk]),
        reverse("admin:vehicles_devicebinding_change", args=[vehicle.bindings.get().pk]),
    ]:
        assert client.get(url).status_code == 404, url


def test_autocomplete_is_scoped(world, client):
    client.force_login(world.users["b_admin"])
    url = reverse("admin:autocomplete")
    response = client.get(
        url,
        {
            "app_label": "vehicles",
            "model_name": "devicebinding",
            "field_name": "vehicle",
            "term": "",
        },
    )
    assert response.status_code == 200
    ids = {int(r["id"]) for r in response.json()["results"]}
    assert ids == {world.vehicles["b"].pk, world.vehicles["b1"].pk}
    response = client.get(
        url,
        {"app_label": "vehicles", "model_name": "vehicle", "field_name": "customer", "term": ""},
    )
    ids = {int(r["id"]) for r in response.json()["results"]}
    assert ids == {world.customers["b"].pk, world.customers["b1"].pk}


def test_add_form_customer_choices_are_scoped(world, client):
    client.force_login(world.users["a1_operator"])
    response = client.post(
        reverse("admin:devices_device_add"),
        {
            "identifier": "490154203237518",
            "protocol": "gt06",
            "kind": "wired",
            "customer": world.customers["b"].pk,
            "status": "stock",
            "work_mode": "realtime",
            "work_params": "{}",
        },
    )
    assert response.status_code == 200  # the form comes back with an error
    assert "customer" in response.context["adminform"].form.errors
    from devices.models import Device

    assert not Device.objects.filter(identifier="490154203237518").exists()


def test_bulk_move_cannot_reach_invisible_customers_or_rows(world, client):
    from vehicles.models import Vehicle

    client.force_login(world.users["a_admin"])
    url = reverse("admin:vehicles_vehicle_changelist")
    # An invisible row id in the selection is ignored; an invisible target is refused.
    response = client.post(
        url,
        {
            "action": "_move",
            "apply": "1",
            "_selected_action": [world.vehicles["a1"].pk, world.vehicles["b"].pk],
            "to_customer": world.customers["b1"].pk,
        },
    )
    assert response.status_code == 200
    assert "to_customer" in response.context["form"].errors
    assert Vehicle.objects.get(pk=world.vehicles["a1"].pk).customer_id == world.customers["a1"].pk
    response = client.post(
        url,
        {
            "action": "_move",
            "apply": "1",
            "_selected_action": [world.vehicles["a1"].pk, world.vehicles["b"].pk],
            "to_customer": world.customers["a2"].pk,
        },
    )
    assert response.status_code == 302
    assert Vehicle.objects.get(pk=world.vehicles["a1"].pk).customer_id == world.customers["a2"].pk
    assert Vehicle.objects.get(pk=world.vehicles["b"].pk).customer_id == world.customers["b"].pk
    # the mounted device followed its vehicle, with a stock move on record
    device = world.devices["a1"]
    device.refresh_from_db()
    assert device.customer_id == world.customers["a2"].pk
    assert device.stock_moves.get().from_customer_id == world.customers["a1"].pk
