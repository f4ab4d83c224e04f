"""Manufacturers and device models: a platform catalogue plus each customer's own entries."""

from django.urls import reverse

from devices.models import DeviceModel, Manufacturer
from tests.factories import DeviceModelFactory, ManufacturerFactory


def test_lender_adds_its_own_models_and_cannot_touch_the_shared_catalogue(world, client):
    shared = ManufacturerFactory(name="Concox")
    other = ManufacturerFactory(name="B's maker", customer=world.customers["b"])
    client.force_login(world.users["a_admin"])
    response = client.post(
        reverse("admin:devices_manufacturer_add"),
        {"name": "A's maker", "customer": world.customers["a"].pk, "contact": ""},
    )
    assert response.status_code == 302
    mine = Manufacturer.objects.get(name="A's maker")
    assert mine.history.get().history_user == world.users["a_admin"]

    listed = {
        m.pk
        for m in client.get(reverse("admin:devices_manufacturer_changelist"))
        .context["cl"]
        .result_list
    }
    assert listed == {shared.pk, mine.pk}  # B's catalogue stays B's
    assert (
        client.get(reverse("admin:devices_manufacturer_change", args=[other.pk])).status_code == 404
    )

    # the shared entry is read-only for a tenant
    response = client.post(
        reverse("admin:devices_manufacturer_change", args=[shared.pk]),
        {"name": "Renamed", "customer": "", "contact": ""},
    )
    assert response.status_code == 403
    shared.refresh_from_db()
    assert shared.name == "Concox"

    response = client.post(
        reverse("admin:devices_devicemodel_add"),
        {
            "name": "AT4",
            "manufacturer": mine.pk,
            "customer": world.customers["a"].pk,
            "protocol": "gt06",
            "kind": "wireless",
            "default_work_mode": "alarm_clock",
            "battery_capacity_mah": "10000",
            "battery_life_days": "",
        },
    )
    assert response.status_code == 302
    assert DeviceModel.objects.get(name="AT4").default_work_mode == "alarm_clock"


def test_only_platform_admins_add_to_the_shared_catalogue(world, client):
    client.force_login(world.users["a_admin"])
    client.post(
        reverse("admin:devices_manufacturer_add"),
        {"name": "Shared?", "customer": "", "contact": ""},
    )
    assert not Manufacturer.objects.filter(name="Shared?").exists()
    client.force_login(world.users["platform_admin"])
    client.post(
        reverse("admin:devices_manufacturer_add"),
        {"name": "Shared!", "customer": "", "contact": ""},
    )
    assert Manufacturer.objects.get(name="Shared!").customer is None
    DeviceModelFactory()
