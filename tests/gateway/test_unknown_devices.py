"""Unknown devices (listed, added in one click), per-device counters, auth codes, and what each
persona sees of positions and unknown devices in the back office."""

import datetime as dt

import pytest
from django.contrib.auth.models import Permission
from django.urls import reverse

from carloan.errors import ApplicationError
from devices.models import Device
from gateway import services
from gateway.ingest import Inbound, ingest_batch
from gateway.models import UnknownDevice
from gateway.protocols import messages as m
from gateway.selectors import positions_visible_to, unknown_devices_visible_to
from tests.factories import DeviceModelFactory

NOW = dt.datetime(2026, 11, 22, 8, 0, tzinfo=dt.UTC)
IMEI = "490154203237518"


def seen(n=1, identifier=IMEI, address="10.0.0.7:40001", protocol="gt06"):
    for i in range(n):
        obj = services.unknown_device_seen(
            protocol=protocol,
            identifier=identifier,
            remote_address=address,
            now=NOW + dt.timedelta(minutes=i),
        )
    return obj


def test_unknown_device_is_upserted_and_counts_frames(db):
    unknown = seen(3)
    assert UnknownDevice.objects.count() == 1
    assert unknown.frame_count == 3
    assert unknown.first_seen == NOW and unknown.last_seen == NOW + dt.timedelta(minutes=2)
    other = seen(1, address="10.0.0.8:5000", protocol="h02")
    assert other.pk != unknown.pk and UnknownDevice.objects.count() == 2
    assert seen(1, address="10.9.9.9:1").remote_address == "10.9.9.9:1"


def test_add_as_device_creates_it_in_the_chosen_customer(world, client):
    unknown = seen(2)
    model = DeviceModelFactory(protocol="gt06", kind="wireless", default_work_mode="alarm_clock")
    client.force_login(world.users["platform_admin"])
    url = reverse("admin:gateway_unknowndevice_changelist")
    listed = client.get(url)
    assert [u.pk for u in listed.context["cl"].result_list] == [unknown.pk]
    form_page = client.post(url, {"action": "add_as_device", "_selected_action": [unknown.pk]})
    assert form_page.status_code == 200 and "customer" in form_page.context["form"].fields
    response = client.post(
        url,
        {
            "action": "add_as_device",
            "apply": "1",
            "_selected_action": [unknown.pk],
            "customer": world.customers["b1"].pk,
            "kind": "wireless",
            "model": model.pk,
        },
    )
    assert response.status_code == 302
    device = Device.objects.get(identifier=IMEI)
    assert (device.customer_id, device.protocol, device.kind, device.model_id) == (
        world.customers["b1"].pk,
        "gt06",
        "wireless",
        model.pk,
    )
    assert device.work_mode == "alarm_clock" and device.status == Device.Status.STOCK
    assert device.history.get().history_user == world.users["platform_admin"]
    assert not UnknownDevice.objects.exists()


def test_add_as_device_refuses_a_bad_model_and_keeps_the_unknown_row(world, client):
    unknown = seen()
    jt_model = DeviceModelFactory(protocol="jt808", kind="wired")
    client.force_login(world.users["platform_admin"])
    client.post(
        reverse("admin:gateway_unknowndevice_changelist"),
        {
            "action": "add_as_device",
            "apply": "1",
            "_selected_action": [unknown.pk],
            "customer": world.customers["a"].pk,
            "kind": "wired",
            "model": jt_model.pk,
        },
    )
    assert not Device.objects.filter(identifier=IMEI).exists()
    assert UnknownDevice.objects.filter(pk=unknown.pk).exists()


@pytest.mark.parametrize("persona", ["a_admin", "a1_operator", "b_admin"])
def test_only_the_platform_admin_sees_and_adds_unknown_devices(world, client, persona):
    unknown = seen()
    user = world.users[persona]
    assert not unknown_devices_visible_to(user).exists()
    assert unknown_devices_visible_to(world.users["platform_admin"]).get() == unknown
    client.force_login(user)
    url = reverse("admin:gateway_unknowndevice_changelist")
    assert client.get(url).status_code == 403
    response = client.post(
        url,
        {
            "action": "add_as_device",
            "apply": "1",
            "_selected_action": [unknown.pk],
            "customer": world.customers["b"].pk,
            "kind": "wired",
        },
    )
    assert response.status_code == 403
    # Nor through the service, into their own tenant or another one.
    for key in ("a", "b"):
        with pytest.raises(ApplicationError):
            services.device_from_unknown(
                unknown=unknown, customer=world.customers[key], kind="wired", by=user
            )
    assert not Device.objects.filter(identifier=IMEI).exists()
    assert UnknownDevice.objects.filter(pk=unknown.pk).exists()


def test_auth_code_is_generated_once_and_stable(world):
    device = world.devices["a1"]
    logged = device.history.count()
    code = services.device_auth_code(device=device)
    assert len(code) == 16 and code.isalnum()
    assert services.device_auth_code(device=Device.objects.get(pk=device.pk)) == code
    assert services.device_auth_code(device=world.devices["b"]) != code
    device.refresh_from_db()
    assert device.auth_code == code
    assert device.history.count() == logged  # not an operation-log event


def test_frames_dropped_are_counted_per_device(world):
    device = world.devices["a1"]
    services.device_frames_dropped(device_id=device.pk, reason="bad checksum")
    services.device_frames_dropped(device_id=device.pk, reason="oversized frame", count=3)
    device.refresh_from_db()
    assert (device.frames_dropped, device.last_drop_reason) == (4, "oversized frame")
    assert world.devices["b"].frames_dropped == 0


def test_devices_mark_offline(world):
    a1, b = world.devices["a1"], world.devices["b"]
    beat = m.Message(protocol="gt06", type=m.HEARTBEAT, device_id=None)
    ingest_batch([Inbound(a1.pk, beat, NOW), Inbound(b.pk, beat, NOW)], now=NOW)
    assert services.devices_mark_offline(device_ids=[a1.pk]) == 1
    assert list(Device.objects.filter(online=True).values_list("pk", flat=True)) == [b.pk]


def _positions_everywhere(world):
    items = []
    for key, device in world.devices.items():
        fix = m.Position(fix_time=NOW, lat=34.26, lon=108.94, valid=True, speed_kmh=1.0 * len(key))
        items.append(
            Inbound(
                device.pk,
                m.Message(protocol="gt06", type=m.POSITION, device_id=None, positions=(fix,)),
                NOW,
            )
        )
    ingest_batch(items, now=NOW)


@pytest.mark.parametrize("persona", ["platform_admin", "a_admin", "a1_operator", "b_admin"])
def test_positions_are_scoped_per_persona(world, client, persona):
    _positions_everywhere(world)
    user = world.users[persona]
    expected = {world.devices[k].pk for k in world.visible_keys(persona)}
    assert {p.device_id for p in positions_visible_to(user)} == expected
    if user.role_id:
        user.role.permissions.add(
            Permission.objects.get(content_type__app_label="gateway", codename="view_position")
        )
    client.force_login(user)
    response = client.get(reverse("admin:gateway_position_changelist"))
    assert response.status_code == 200
    assert {p.device_id for p in response.context["cl"].result_list} == expected
    other = world.devices["b" if persona != "b_admin" else "a"]
    if other.pk not in expected:
        hidden = positions_visible_to(world.users["platform_admin"]).get(device=other)
        url = reverse("admin:gateway_position_change", args=[hidden.pk])
        assert client.get(url).status_code == 404
    # Search by exact device id / plate.
    plate = world.vehicles["a1"].plate
    found = client.get(reverse("admin:gateway_position_changelist"), {"q": plate})
    a1_visible = "a1" in world.visible_keys(persona)
    assert len(found.context["cl"].result_list) == (1 if a1_visible else 0)
