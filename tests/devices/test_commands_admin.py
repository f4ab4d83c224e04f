"""Back office: the "send command" action on the device list (one device: a command; several: a
broadcast), the command and broadcast pages (scoped, read-only, cancel), and the commands on the
device page."""

from __future__ import annotations

import datetime as dt

import pytest
from django.contrib.messages import get_messages
from django.urls import reverse
from django.utils import timezone

from devices.models import Command, CommandJob, Device
from devices.services import command_broadcast, command_send, commands_claim_for_sending

pytestmark = pytest.mark.django_db
DEVICES = reverse("admin:devices_device_changelist")
COMMANDS = reverse("admin:devices_command_changelist")
JOBS = reverse("admin:devices_commandjob_changelist")


def send(client, devices, **form):
    data = {"action": "_send_command", "_selected_action": [d.pk for d in devices], **form}
    return client.post(DEVICES, data)


def messages_of(response):
    return [str(m) for m in get_messages(response.wsgi_request)]


def test_action_shows_the_form_then_queues_one_command(world, client):
    client.force_login(world.users["a_admin"])
    device = world.devices["a1"]
    page = send(client, [device])
    assert page.status_code == 200
    assert set(page.context["form"].fields) == {"kind", "params", "defer_until_stopped"}
    assert device.identifier in page.content.decode()
    done = send(client, [device], apply="1", kind="set_interval", params='{"seconds": 120}')
    assert done.status_code == 302
    cmd = Command.objects.get()
    assert (cmd.device, cmd.kind, cmd.params, cmd.created_by) == (
        device,
        "set_interval",
        {"seconds": 120},
        world.users["a_admin"],
    )
    assert any("queued" in m for m in messages_of(done))


def test_bad_parameters_stay_on_the_form(world, client):
    client.force_login(world.users["a_admin"])
    page = send(
        client, [world.devices["a1"]], apply="1", kind="set_interval", params='{"seconds": 1}'
    )
    assert page.status_code == 200
    assert "5 to 65535" in str(page.context["form"].errors["params"])
    assert not Command.objects.exists()


def test_refused_fuel_cut_shows_the_reason(world, client):
    client.force_login(world.users["a_admin"])
    device = world.devices["a1"]
    Device.all_objects.filter(pk=device.pk).update(last_speed_kmh=80.0, last_fix_at=timezone.now())
    response = send(client, [device], apply="1", kind="fuel_cut", params="{}")
    assert response.status_code == 302
    assert any("80 km/h" in m for m in messages_of(response))
    assert not Command.objects.exists()
    deferred = send(
        client, [device], apply="1", kind="fuel_cut", params="{}", defer_until_stopped="on"
    )
    assert deferred.status_code == 302
    assert Command.objects.get().defer_until_stopped is True


def test_several_devices_make_a_broadcast(world, client):
    client.force_login(world.users["a_admin"])
    moving, parked = world.devices["a1"], world.devices["a2"]
    Device.all_objects.filter(pk=moving.pk).update(last_speed_kmh=50.0, last_fix_at=timezone.now())
    Device.all_objects.filter(pk=parked.pk).update(last_speed_kmh=0.0, last_fix_at=timezone.now())
    response = send(client, [moving, parked], apply="1", kind="fuel_cut", params="{}")
    assert response.status_code == 302
    job = CommandJob.objects.get()
    assert any("1 queued, 1 refused" in m for m in messages_of(response))
    listing = client.get(JOBS)
    row = listing.context["cl"].result_list[0]
    assert (row.pk, row.n_total, row.n_queued, row.n_failed) == (job.pk, 2, 1, 1)
    detail = client.get(reverse("admin:devices_commandjob_change", args=[job.pk]))
    assert detail.status_code == 200
    assert "50 km/h" in detail.content.decode()


def test_the_action_needs_the_command_right(world, client):
    client.force_login(world.users["a1_operator"])
    page = client.get(DEVICES)
    actions = [name for name, _label in page.context["action_form"].fields["action"].choices]
    assert "_move" in actions and "_send_command" not in actions
    send(client, [world.devices["a1"]], apply="1", kind="reboot", params="{}")
    assert not Command.objects.exists()


def test_command_list_is_scoped_and_read_only(world, client):
    mine = command_send(device=world.devices["a1"], kind="reboot", by=world.users["a_admin"])
    theirs = command_send(device=world.devices["b1"], kind="reboot", by=world.users["b_admin"])
    client.force_login(world.users["a_admin"])
    listing = client.get(COMMANDS)
    assert [c.pk for c in listing.context["cl"].result_list] == [mine.pk]
    assert client.get(reverse("admin:devices_command_change", args=[theirs.pk])).status_code == 404
    page = client.get(reverse("admin:devices_command_change", args=[mine.pk]))
    assert page.status_code == 200
    assert not page.context["has_change_permission"]
    assert client.get(COMMANDS, {"status": "queued"}).context["cl"].result_count == 1
    assert client.get(COMMANDS, {"status": "acked"}).context["cl"].result_count == 0


def test_broadcast_outcome_links_filter_the_command_list(world, client):
    job = command_broadcast(
        devices=[world.devices["a1"], world.devices["a2"]], kind="reboot", by=world.users["a_admin"]
    )
    client.force_login(world.users["a_admin"])
    listing = client.get(COMMANDS, {"job__id__exact": job.pk, "status": "queued"})
    assert listing.status_code == 200
    assert {c.pk for c in listing.context["cl"].result_list} == set(
        job.commands.values_list("pk", flat=True)
    )
    client.force_login(world.users["b_admin"])
    assert client.get(JOBS).context["cl"].result_count == 0
    assert client.get(reverse("admin:devices_commandjob_change", args=[job.pk])).status_code == 404


def test_cancel_action(world, client):
    queued = command_send(device=world.devices["a1"], kind="reboot", by=world.users["a_admin"])
    sent = command_send(device=world.devices["a2"], kind="reboot", by=world.users["a_admin"])
    commands_claim_for_sending(device_ids=[world.devices["a2"].pk], now=timezone.now())
    client.force_login(world.users["a_admin"])
    response = client.post(COMMANDS, {"action": "cancel", "_selected_action": [queued.pk, sent.pk]})
    assert response.status_code == 302
    queued.refresh_from_db()
    sent.refresh_from_db()
    assert (queued.status, sent.status) == ("failed", "sent")
    assert queued.failure_reason == "Cancelled by a_admin."


def test_device_page_lists_its_latest_commands(world, client):
    device = world.devices["a1"]
    old = command_send(
        device=device,
        kind="reboot",
        by=world.users["a_admin"],
        now=timezone.now() - dt.timedelta(hours=1),
    )
    new = command_send(device=device, kind="locate_now", by=world.users["a_admin"])
    client.force_login(world.users["a_admin"])
    url = reverse("admin:devices_device_change", args=[device.pk])
    page = client.get(url)
    assert page.status_code == 200
    [inline] = [f for f in page.context["inline_admin_formsets"] if f.opts.model is Command]
    assert [form.original.pk for form in inline] == [new.pk, old.pk]  # most recent first
    # Saving the device with the read-only inline on the page still works.
    data = {
        "identifier": device.identifier,
        "protocol": device.protocol,
        "kind": device.kind,
        "status": device.status,
        "work_mode": device.work_mode,
        "work_params": "{}",
        "remark": "checked",
        "commands-TOTAL_FORMS": "2",
        "commands-INITIAL_FORMS": "2",
        "commands-MIN_NUM_FORMS": "0",
        "commands-MAX_NUM_FORMS": "1000",
        "commands-0-id": new.pk,
        "commands-0-device": device.pk,
        "commands-1-id": old.pk,
        "commands-1-device": device.pk,
    }
    response = client.post(url, data)
    assert response.status_code == 302, response.context["errors"] if response.context else ""
    device.refresh_from_db()
    assert device.remark == "checked"
    assert Command.objects.count() == 2
