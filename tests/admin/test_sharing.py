"""Sharing single vehicles and devices with a user of another customer, and withdrawing it."""

from django.urls import reverse

from vehicles.models import VehicleUserObjectPermission
from vehicles.selectors import vehicles_visible_to


def test_share_a_vehicle_read_only_then_withdraw(world, client):
    vehicle, b_admin = world.vehicles["a1"], world.users["b_admin"]
    client.force_login(world.users["a_admin"])
    response = client.post(
        reverse("admin:vehicles_vehicle_changelist"),
        {
            "action": "_share",
            "apply": "1",
            "_selected_action": [vehicle.pk],
            "username": "b_admin",
            "can_change": "",
        },
    )
    assert response.status_code == 302
    assert vehicles_visible_to(b_admin).filter(pk=vehicle.pk).exists()
    assert not vehicles_visible_to(b_admin, for_change=True).filter(pk=vehicle.pk).exists()

    # B sees it in its list (read-only), A sees who it is shared with
    client.force_login(b_admin)
    ids = {
        v.pk
        for v in client.get(reverse("admin:vehicles_vehicle_changelist")).context["cl"].result_list
    }
    assert vehicle.pk in ids
    shares_url = reverse("admin:vehicles_vehicleuserobjectpermission_changelist")
    assert not client.get(shares_url).context["cl"].result_list  # B cannot manage A's shares

    client.force_login(world.users["a_admin"])
    shares = list(client.get(shares_url).context["cl"].result_list)
    assert [(s.content_object_id, s.user_id) for s in shares] == [(vehicle.pk, b_admin.pk)]
    client.post(shares_url, {"action": "revoke", "_selected_action": [shares[0].pk]})
    assert not VehicleUserObjectPermission.objects.exists()
    assert not vehicles_visible_to(b_admin).filter(pk=vehicle.pk).exists()


def test_share_needs_an_existing_user_and_cannot_reshare(world, client):
    client.force_login(world.users["a_admin"])
    url = reverse("admin:vehicles_vehicle_changelist")
    response = client.post(
        url,
        {
            "action": "_share",
            "apply": "1",
            "_selected_action": [world.vehicles["a1"].pk],
            "username": "nobody",
            "can_change": "",
        },
        follow=True,
    )
    assert "There is no active user nobody" in response.content.decode()
    assert not VehicleUserObjectPermission.objects.exists()

    # what was shared with B cannot be passed on by B
    client.post(
        url,
        {
            "action": "_share",
            "apply": "1",
            "_selected_action": [world.vehicles["a1"].pk],
            "username": "b_admin",
            "can_change": "on",
        },
    )
    client.force_login(world.users["b_admin"])
    client.post(
        url,
        {
            "action": "_share",
            "apply": "1",
            "_selected_action": [world.vehicles["a1"].pk],
            "username": "a1_operator",
            "can_change": "",
        },
    )
    assert not VehicleUserObjectPermission.objects.filter(user=world.users["a1_operator"]).exists()


def test_share_a_device(world, client):
    client.force_login(world.users["b_admin"])
    client.post(
        reverse("admin:devices_device_changelist"),
        {
            "action": "_share",
            "apply": "1",
            "_selected_action": [world.stock["b1"].pk],
            "username": "a_admin",
            "can_change": "",
        },
    )
    client.force_login(world.users["a_admin"])
    ids = {
        d.pk
        for d in client.get(reverse("admin:devices_device_changelist")).context["cl"].result_list
    }
    assert world.stock["b1"].pk in ids


def test_a_read_only_share_cannot_be_edited_or_deleted(world, client):
    from accounts.services import objects_share

    vehicle = world.vehicles["a1"]
    objects_share(objects=[vehicle], username="b_admin")
    client.force_login(world.users["b_admin"])
    change_url = reverse("admin:vehicles_vehicle_change", args=[vehicle.pk])
    assert client.get(change_url).status_code == 200  # they can look
    response = client.post(change_url, {"plate": vehicle.plate, "colour": "pink"})
    assert response.status_code == 403
    client.post(
        reverse("admin:vehicles_vehicle_changelist"),
        {"action": "soft_delete", "_selected_action": [vehicle.pk]},
    )
    client.post(
        reverse("admin:vehicles_vehicle_changelist"),
        {
            "action": "_bulk_edit",
            "apply": "1",
            "_selected_action": [vehicle.pk],
            "repayment_status": "written_off",
            "overdue_days": "",
            "brand": "",
            "model_name": "",
            "colour": "",
            "remark": "",
        },
    )
    vehicle.refresh_from_db()
    assert (vehicle.deleted_at, vehicle.repayment_status, vehicle.colour) == (None, "normal", "")


def test_shares_are_in_the_operation_log(world, client):
    client.force_login(world.users["a_admin"])
    client.post(
        reverse("admin:vehicles_vehicle_changelist"),
        {
            "action": "_share",
            "apply": "1",
            "_selected_action": [world.vehicles["a1"].pk],
            "username": "b_admin",
            "can_change": "",
        },
    )
    response = client.get(
        reverse("admin:operation_log"), {"model": "vehicles.vehicleuserobjectpermission"}
    )
    entries = response.context["entries"]
    assert [(e.actor, e.object_label) for e in entries] == [("a_admin", world.vehicles["a1"].plate)]
