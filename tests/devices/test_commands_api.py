"""`/api/v1/commands/`: scoped list and detail with filters, POST through command_send with its
refusals (400 with the reason, 403 without the right, 404 for devices the caller cannot see)."""

from __future__ import annotations

import datetime as dt

import pytest
from django.contrib.auth.models import Permission
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from accounts.models import Role
from devices.models import Command, Device
from devices.services import command_send
from tests.api import API, result_ids
from tests.factories import DeviceFactory, UserFactory

pytestmark = pytest.mark.django_db
URL = f"{API}/commands/"


def sender(world, *codes):
    role = Role.objects.create(customer=world.customers["a"], name="sender")
    for code in codes:
        app, codename = code.split(".")
        role.permissions.add(Permission.objects.get(content_type__app_label=app, codename=codename))
    return UserFactory(customer=world.customers["a"], role=role)


def parked(device):
    Device.all_objects.filter(pk=device.pk).update(
        last_speed_kmh=0.0, last_fix_at=timezone.now() - dt.timedelta(seconds=30)
    )


@pytest.fixture
def sent(world):
    """One reboot per world device, sent by the lender's admin (platform: by root)."""
    out = {}
    for key, device in world.devices.items():
        by = world.users["b_admin" if key.startswith("b") else "a_admin"]
        if key == "platform":
            by = world.users["platform_admin"]
        out[key] = command_send(device=device, kind="reboot", by=by)
    return out


@pytest.mark.parametrize("persona", ["platform_admin", "a_admin", "b_admin"])
def test_list_is_scoped_to_the_callers_devices(world, api, sent, persona):
    ids = result_ids(api(world.users[persona]).get(URL))
    assert ids == {sent[key].pk for key in world.visible_keys(persona)}


def test_list_needs_the_view_right(world, api, sent):
    assert api(world.users["a1_operator"]).get(URL).status_code == 403
    assert api().get(URL).status_code in (401, 403)


def test_detail_of_another_tenants_command_is_404(world, api, sent):
    client = api(world.users["a_admin"])
    assert client.get(f"{URL}{sent['a1'].pk}/").status_code == 200
    assert client.get(f"{URL}{sent['b1'].pk}/").status_code == 404


def test_filters(world, api, sent):
    client = api(world.users["a_admin"])
    parked(world.devices["a2"])
    cut = command_send(device=world.devices["a2"], kind="fuel_cut", by=world.users["a_admin"])
    imei = world.devices["a1"].identifier
    assert result_ids(client.get(URL, {"imei": imei})) == {sent["a1"].pk}
    assert result_ids(client.get(URL, {"imei": imei[:14]})) == {sent["a1"].pk}
    assert result_ids(client.get(URL, {"kind": "fuel_cut"})) == {cut.pk}
    Command.objects.filter(pk=sent["a"].pk).update(status="acked")
    assert result_ids(client.get(URL, {"status": "acked"})) == {sent["a"].pk}
    assert client.get(URL, {"status": "lost"}).status_code == 400


def test_list_rows_and_query_count(world, api, sent):
    client = api(world.users["platform_admin"])
    client.get(URL)  # the token's authentication is kept after the first request
    with CaptureQueriesContext(connection) as few:
        body = client.get(URL).json()
    row = next(r for r in body["results"] if r["id"] == sent["a1"].pk)
    assert (row["imei"], row["kind"], row["status"], row["created_by"]) == (
        world.devices["a1"].identifier,
        "reboot",
        "queued",
        "a_admin",
    )
    assert body["count"] == 6
    for _ in range(10):
        command_send(device=world.devices["b1"], kind="reboot", by=world.users["b_admin"])
    with CaptureQueriesContext(connection) as many:
        assert client.get(URL).json()["count"] == 16
    assert len(many) == len(few)  # no query per row


def test_post_queues_a_command(world, api):
    device = world.devices["a1"]
    response = api(world.users["a_admin"]).post(
        URL,
        {"device": device.pk, "kind": "set_interval", "params": {"seconds": 60}},
        format="json",
    )
    assert response.status_code == 201, response.content
    body = response.json()
    assert (body["status"], body["params"], body["imei"]) == (
        "queued",
        {"seconds": 60},
        device.identifier,
    )
    assert Command.objects.get(pk=body["id"]).created_by == world.users["a_admin"]


def test_post_by_imei_with_an_expiry(world, api):
    device = world.devices["a2"]
    response = api(world.users["a_admin"]).post(
        URL,
        {"imei": device.identifier, "kind": "locate_now", "expires_in_s": 600},
        format="json",
    )
    assert response.status_code == 201, response.content
    cmd = Command.objects.get(pk=response.json()["id"])
    assert cmd.expires_at - cmd.created_at == dt.timedelta(minutes=10)


@pytest.mark.parametrize(
    ("payload", "text"),
    [
        ({"kind": "set_interval", "params": {"seconds": 2}}, "5 to 65535"),
        ({"kind": "set_mode", "params": {"mode": "deep_sleep", "days": 3}}, "GT06"),
        ({"kind": "reboot", "defer_until_stopped": True}, "Only a fuel cut"),
    ],
)
def test_post_refusals_are_400_with_the_reason(world, api, payload, text):
    response = api(world.users["a_admin"]).post(
        URL, {"device": world.devices["a1"].pk, **payload}, format="json"
    )
    assert response.status_code == 400, response.content
    assert text in response.json()["detail"]
    assert not Command.objects.exists()


def test_post_unsafe_fuel_cut_is_400_with_the_speed(world, api):
    device = world.devices["a1"]
    Device.all_objects.filter(pk=device.pk).update(last_speed_kmh=55.0, last_fix_at=timezone.now())
    client = api(world.users["a_admin"])
    response = client.post(URL, {"device": device.pk, "kind": "fuel_cut"}, format="json")
    assert response.status_code == 400
    assert response.json()["code"] == "unsafe_fuel_cut"
    assert "55 km/h" in response.json()["detail"]
    deferred = client.post(
        URL, {"device": device.pk, "kind": "fuel_cut", "defer_until_stopped": True}, format="json"
    )
    assert deferred.status_code == 201
    assert deferred.json()["defer_until_stopped"] is True


def test_post_fuel_cut_needs_its_own_permission(world, api):
    device = world.devices["a1"]
    parked(device)
    plain = api(sender(world, "devices.add_command", "devices.view_command"))
    response = plain.post(URL, {"device": device.pk, "kind": "fuel_cut"}, format="json")
    assert response.status_code == 403
    assert "fuel-cut permission" in response.json()["detail"]
    assert (
        plain.post(URL, {"device": device.pk, "kind": "reboot"}, format="json").status_code == 201
    )


def test_post_without_the_add_right_is_403(world, api):
    viewer = api(sender(world, "devices.view_command", "devices.view_device"))
    response = viewer.post(URL, {"device": world.devices["a1"].pk, "kind": "reboot"}, format="json")
    assert response.status_code == 403


def test_post_to_a_device_the_caller_cannot_see_is_404(world, api):
    client = api(world.users["a_admin"])
    other = world.devices["b1"]
    assert (
        client.post(URL, {"device": other.pk, "kind": "reboot"}, format="json").status_code == 404
    )
    by_imei = client.post(URL, {"imei": other.identifier, "kind": "reboot"}, format="json")
    assert by_imei.status_code == 404
    deleted = DeviceFactory(customer=world.customers["a1"])
    Device.all_objects.filter(pk=deleted.pk).update(deleted_at=timezone.now())
    assert (
        client.post(URL, {"device": deleted.pk, "kind": "reboot"}, format="json").status_code == 404
    )
    assert not Command.objects.exists()


def test_post_needs_exactly_one_of_device_and_imei(world, api):
    client = api(world.users["a_admin"])
    device = world.devices["a1"]
    both = {"device": device.pk, "imei": device.identifier, "kind": "reboot"}
    assert client.post(URL, both, format="json").status_code == 400
    assert client.post(URL, {"kind": "reboot"}, format="json").status_code == 400
