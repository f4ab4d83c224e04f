"""Soft delete from the admin, the recycle bin, restore and permanent delete."""

from django.urls import reverse

from devices.models import Device
from vehicles.models import Vehicle


def test_deleted_vehicle_vanishes_and_comes_back_with_its_device(world, client):
    vehicle, device = world.vehicles["a1"], world.devices["a1"]
    client.force_login(world.users["a_admin"])
    changelist = reverse("admin:vehicles_vehicle_changelist")
    response = client.post(changelist, {"action": "soft_delete", "_selected_action": [vehicle.pk]})
    assert response.status_code == 302
    ids = {v.pk for v in client.get(changelist).context["cl"].result_list}
    assert vehicle.pk not in ids
    # gone from search by plate and by IMEI too
    assert not client.get(changelist, {"q": vehicle.plate}).context["cl"].result_list
    assert not client.get(changelist, {"q": device.identifier}).context["cl"].result_list
    assert (
        client.get(reverse("admin:vehicles_vehicle_change", args=[vehicle.pk])).status_code == 404
    )

    bin_url = reverse("admin:vehicles_deletedvehicle_changelist")
    assert {v.pk for v in client.get(bin_url).context["cl"].result_list} == {vehicle.pk}
    client.force_login(world.users["b_admin"])
    assert not client.get(bin_url).context["cl"].result_list  # B does not see A's bin

    client.force_login(world.users["a_admin"])
    response = client.post(bin_url, {"action": "restore", "_selected_action": [vehicle.pk]})
    assert response.status_code == 302
    assert Vehicle.objects.filter(pk=vehicle.pk).exists()
    assert vehicle.bindings.get(unbound_at__isnull=True).device_id == device.pk


def test_only_platform_admins_erase(world, client):
    vehicle = world.vehicles["a1"]
    client.force_login(world.users["a_admin"])
    client.post(
        reverse("admin:vehicles_vehicle_changelist"),
        {"action": "soft_delete", "_selected_action": [vehicle.pk]},
    )
    bin_url = reverse("admin:vehicles_deletedvehicle_changelist")
    response = client.get(bin_url)
    assert "erase" not in response.context["action_form"].fields["action"].choices.__repr__()
    client.post(bin_url, {"action": "erase", "_selected_action": [vehicle.pk]})
    assert Vehicle.all_objects.filter(pk=vehicle.pk).exists()
    client.force_login(world.users["platform_admin"])
    client.post(bin_url, {"action": "erase", "_selected_action": [vehicle.pk]})
    assert not Vehicle.all_objects.filter(pk=vehicle.pk).exists()


def test_device_delete_page_soft_deletes(world, client):
    device = world.stock["a1"]
    client.force_login(world.users["a1_operator"])
    response = client.post(
        reverse("admin:devices_device_delete", args=[device.pk]), {"post": "yes"}
    )
    assert response.status_code == 302
    assert not Device.objects.filter(pk=device.pk).exists()
    assert Device.all_objects.get(pk=device.pk).deleted_by == world.users["a1_operator"]
    bin_url = reverse("admin:devices_deleteddevice_changelist")
    assert {d.pk for d in client.get(bin_url).context["cl"].result_list} == {device.pk}


def test_bulk_edit_changes_only_filled_fields(world, client):
    a1, a2 = world.vehicles["a1"], world.vehicles["a2"]
    client.force_login(world.users["a_admin"])
    response = client.post(
        reverse("admin:vehicles_vehicle_changelist"),
        {
            "action": "_bulk_edit",
            "apply": "1",
            "_selected_action": [a1.pk, a2.pk],
            "repayment_status": "overdue",
            "overdue_days": "15",
            "brand": "",
            "model_name": "",
            "colour": "",
            "remark": "",
        },
    )
    assert response.status_code == 302
    for v in (a1, a2):
        v.refresh_from_db()
        assert (v.repayment_status, v.overdue_days, v.brand) == ("overdue", 15, "Geely")


def test_binding_from_the_admin_and_conflicts_are_reported(world, client):
    client.force_login(world.users["a1_operator"])
    url = reverse("admin:vehicles_devicebinding_add")
    response = client.post(
        url, {"vehicle": world.vehicles["a1"].pk, "device": world.stock["a1"].pk}
    )
    assert response.status_code == 302
    world.stock["a1"].refresh_from_db()
    assert world.stock["a1"].status == "installed"
    # the bound device of another vehicle: refused with a message, nothing changes
    from tests.factories import VehicleFactory

    other = VehicleFactory(customer=world.customers["a1"])
    response = client.post(
        url, {"vehicle": other.pk, "device": world.devices["a1"].pk}, follow=True
    )
    assert "already on" in response.content.decode()
    assert not other.bindings.exists()
