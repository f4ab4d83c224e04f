"""The monitoring pages: login, scoping of the snapshot and the vehicle panel, query counts."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from types import SimpleNamespace

import pytest
from django.contrib.gis.geos import Point
from django.urls import reverse

from carloan.pages.selectors import live_snapshot, vehicle_state
from devices.models import Device
from tests.conftest import perms

T0 = dt.datetime(2026, 11, 22, 8, 0, tzinfo=dt.UTC)


def locate(device, lat, lon, speed=30.0, online=True):
    Device.all_objects.filter(pk=device.pk).update(
        last_position=Point(lon, lat, srid=4326),
        last_fix_at=T0,
        last_speed_kmh=speed,
        online=online,
    )


def test_pages_need_a_login(client, db):
    for name in ("dashboard", "monitor", "playback", "alarm-centre", "monitor-snapshot"):
        response = client.get(reverse(name))
        assert response.status_code == 302 and response["Location"].startswith(reverse("login"))


def test_login_page_logs_in_and_lands_on_the_dashboard(client, world):
    user = world.users["a_admin"]
    user.set_password("s3cret-pass")
    user.save()
    assert client.get(reverse("login")).status_code == 200
    response = client.post(reverse("login"), {"username": "a_admin", "password": "s3cret-pass"})
    assert response.status_code == 302 and response["Location"] == reverse("dashboard")
    page = client.get(reverse("dashboard"))
    assert page.status_code == 200
    assert page.context["counts"]["vehicles"] == 3  # a, a1, a2


@pytest.mark.parametrize("persona", ["a_admin", "a1_operator", "b_admin"])
def test_snapshot_holds_exactly_the_visible_vehicles(world, client, persona):
    for device in world.devices.values():
        locate(device, 34.26, 108.94)
    client.force_login(world.users[persona])
    data = client.get(reverse("monitor-snapshot")).json()
    ids = {row[0] for row in data["vehicles"]}
    assert ids == {world.vehicles[k].pk for k in world.visible_keys(persona)}
    row = data["vehicles"][0]
    assert row[data["fields"].index("state")] == "moving"


def test_snapshot_query_count_does_not_grow_with_the_fleet(world, django_assert_max_num_queries):
    user = world.users["platform_admin"]
    with django_assert_max_num_queries(6):
        live_snapshot(user)


def test_vehicle_panel_answers_404_for_another_tenant(world, client):
    client.force_login(world.users["a_admin"])
    mine = client.get(reverse("monitor-vehicle", args=[world.vehicles["a1"].pk]))
    assert mine.status_code == 200
    assert mine.json()["plate"] == world.vehicles["a1"].plate
    theirs = client.get(reverse("monitor-vehicle", args=[world.vehicles["b1"].pk]))
    assert theirs.status_code == 404


def test_vehicle_state_precedence():
    online = {"online": True, "speed": 0.0, "work_mode": "realtime"}
    assert vehicle_state([online], in_alarm=True) == "alarm"
    assert vehicle_state([{**online, "speed": 40.0}], in_alarm=False) == "moving"
    assert vehicle_state([online], in_alarm=False) == "parked"
    sleeper = {"online": False, "speed": None, "work_mode": "deep_sleep"}
    assert vehicle_state([sleeper], in_alarm=False) == "sleeping"
    assert vehicle_state([{**sleeper, "work_mode": "realtime"}], in_alarm=False) == "offline"


def test_map_pages_render_with_vendored_scripts(world, client):
    client.force_login(world.users["a_admin"])
    html = client.get(reverse("monitor")).content.decode()
    assert "vendor/leaflet/leaflet.js" in html and "vendor/markercluster" in html
    assert "cdn" not in html.lower()
    assert client.get(reverse("playback")).status_code == 200
    assert client.get(reverse("alarm-centre")).status_code == 200


# --- The pages' JavaScript and the APIs / live feed it reads (field names agree) ---------------
STATIC = Path(__file__).resolve().parents[2] / "static" / "pages"


def js(name: str) -> str:
    return (STATIC / name).read_text()


def test_snapshot_lists_each_vehicles_devices_with_id_and_online_flag(world, client):
    device = world.devices["a1"]
    locate(device, 34.26, 108.94, online=True)
    client.force_login(world.users["a1_operator"])
    data = client.get(reverse("monitor-snapshot")).json()
    (row,) = data["vehicles"]
    assert row[data["fields"].index("devices")] == [[device.pk, device.identifier, 1]]
    # monitor.js matches device_status items by device id and searches by identifier.
    assert "d[0] === item.device_id" in js("monitor.js") and "d[1].includes(q)" in js("monitor.js")


def grant(user, *codes):
    user.user_permissions.add(*perms(codes))
    return type(user).objects.get(pk=user.pk)  # a fresh permission cache


def test_vehicle_panel_offers_only_the_commands_the_user_may_send(world, client):
    vehicle = world.vehicles["a1"]
    url = reverse("monitor-vehicle", args=[vehicle.pk])

    def kinds(user):
        client.force_login(user)
        (device,) = client.get(url).json()["devices"]
        return [c["kind"] for c in device["commands"]]

    operator = world.users["a1_operator"]
    assert kinds(operator) == []  # no devices.add_command: no buttons
    operator = grant(operator, "devices.add_command")
    assert kinds(operator) == ["locate_now", "fuel_restore", "reboot"]  # no fuel-cut permission
    operator = grant(operator, "devices.send_fuel_cut")
    assert kinds(operator) == ["locate_now", "fuel_cut", "fuel_restore", "reboot"]
    # H02 cannot be asked for its position: the protocol has no encoding for it.
    Device.all_objects.filter(pk=world.devices["a1"].pk).update(protocol="h02")
    assert kinds(operator) == ["fuel_cut", "fuel_restore", "reboot"]


def test_command_buttons_post_the_body_the_commands_api_takes(world, api):
    operator = grant(world.users["a1_operator"], "devices.add_command")
    device = world.devices["a1"]
    # What monitor.js sends for a button: {imei, kind, params: {}}.
    assert "body: { imei: imei, kind: b.dataset.kind, params: {} }" in js("monitor.js")
    response = api(operator).post(
        "/api/v1/commands/",
        {"imei": device.identifier, "kind": "locate_now", "params": {}},
        format="json",
    )
    assert response.status_code == 201, response.content
    assert response.json()["status"] == "queued"


def test_alarm_centre_reads_the_list_fields_and_the_live_item_fields(world, api, client):
    from alarms.notify.services import alarm_live_item
    from alarms.services import lifecycle

    admin = world.users["platform_admin"]
    vehicle = world.vehicles["a1"]
    alarm = lifecycle.alarm_raise(
        vehicle_id=vehicle.pk, customer_id=vehicle.customer_id, kind="sos", at=T0, now=T0
    )
    row = api(admin).get("/api/v1/alarms/").json()["results"][0]
    source = js("alarms.js")
    for key in ("kind_label", "level_label", "status_label", "target_name", "occurrences"):
        assert key in row and f"a.{key}" in source
    item = alarm_live_item(alarm)
    assert item["alarm_id"] == row["id"] and "item.alarm_id" in source
    # The live item carries codes; the page labels them from the server's translations.
    client.force_login(admin)
    page = client.get(reverse("alarm-centre"))
    labels = page.context["page_i18n"]
    assert labels["kinds"]["sos"] == row["kind_label"]
    assert labels["levels"][str(item["level"])] == row["level_label"]
    assert labels["alarm_statuses"][item["status"]] == row["status_label"]


def test_alarm_centre_hides_the_handling_buttons_without_the_permission(world, client):
    client.force_login(world.users["a_admin"])  # no alarms.handle_alarm
    assert 'data-can-handle="0"' in client.get(reverse("alarm-centre")).content.decode()
    client.force_login(world.users["platform_admin"])
    assert 'data-can-handle="1"' in client.get(reverse("alarm-centre")).content.decode()


def test_playback_reads_the_track_apis_keys(world, api):
    import time_machine

    from gateway.ingest import Inbound, ingest_batch
    from gateway.protocols import messages as m

    vehicle, device = world.vehicles["a1"], world.devices["a1"]
    fix = m.Position(fix_time=T0, lat=34.26, lon=108.94, valid=True, speed_kmh=12.0)
    with time_machine.travel(T0, tick=False):
        ingest_batch(
            [
                Inbound(
                    device_id=device.pk,
                    message=m.Message(
                        protocol="gt06", type=m.POSITION, device_id=None, positions=(fix,)
                    ),
                    received_at=T0,
                )
            ]
        )
    data = (
        api(world.users["platform_admin"])
        .get(
            f"/api/v1/vehicles/{vehicle.pk}/track/",
            {"since": "2026-11-22T07:00:00Z", "until": "2026-11-22T09:00:00Z"},
        )
        .json()
    )
    (point,) = data["positions"]
    source = js("playback.js")
    assert "data.positions" in source and "data.truncated" in source
    for key in ("time", "lat", "lon", "speed_kmh", "valid", "flags"):
        assert key in point and f".{key}" in source


def test_monitor_reads_the_live_items_fields():
    from carloan.realtime import device_status_item, position_item

    row = SimpleNamespace(
        vehicle_id=1,
        device_id=2,
        fix_time=T0,
        point=Point(108.94, 34.26, srid=4326),
        speed_kmh=40.0,
        course=90,
        acc=True,
        source="gps",
        valid=True,
    )
    position = position_item(row, plate="陕A12345", imei="1", customer_id=3)
    status = device_status_item(
        {"online": False}, device_id=2, imei="1", vehicle_id=1, plate="陕A12345", customer_id=3
    )
    source = js("monitor.js")
    for key in ("lat", "lon", "speed_kmh", "course", "fix_time", "device_id"):
        assert key in position and f"item.{key}" in source
    for key in ("online", "device_id", "vehicle_id"):
        assert key in status and f"item.{key}" in source


@pytest.mark.parametrize("debug", [False, True])
def test_snapshot_fix_time_is_whole_unix_seconds(world, client, settings, debug):
    settings.DEBUG = debug  # DEBUG logs every query with its parameters filled in
    device = world.devices["a1"]
    locate(device, 34.26, 108.94)
    Device.all_objects.filter(pk=device.pk).update(last_fix_at=T0 + dt.timedelta(microseconds=4))
    client.force_login(world.users["a1_operator"])
    data = client.get(reverse("monitor-snapshot")).json()
    (row,) = data["vehicles"]
    assert row[data["fields"].index("fix_time")] == int(T0.timestamp())


# --- The live map's customer-tree sidebar ------------------------------------------------------
def tree_rows(user) -> dict[int, dict]:
    from carloan.pages.selectors import customer_tree

    data = customer_tree(user)
    return {row[0]: dict(zip(data["fields"], row, strict=True)) for row in data["customers"]}


@pytest.mark.parametrize("persona", ["platform_admin", "a_admin", "a1_operator", "b_admin"])
def test_customer_tree_shows_exactly_the_users_subtree(world, client, persona):
    client.force_login(world.users[persona])
    page = client.get(reverse("monitor"))
    data = page.context["customer_tree"]
    keys = world.visible_keys(persona)
    ids = [row[0] for row in data["customers"]]
    assert set(ids) == {world.customers[k].pk for k in keys}
    # In tree order: the user's own customer first, as the one root (no parent above it).
    home = world.users[persona].customer
    fields = data["fields"]
    assert ids[0] == home.pk and data["customers"][0][fields.index("parent")] is None
    assert [r[fields.index("parent")] for r in data["customers"]].count(None) == 1
    # The page carries it to monitor.js as JSON; another tenant's names never reach the page.
    html = page.content.decode()
    assert 'id="customer-tree-data"' in html
    for key, customer in world.customers.items():
        assert (customer.name in html) == (key in keys)


def test_customer_tree_nests_branches_under_their_lender(world):
    rows = tree_rows(world.users["a_admin"])
    c = world.customers
    assert rows[c["a"].pk]["parent"] is None
    assert rows[c["a1"].pk]["parent"] == c["a"].pk and rows[c["a2"].pk]["parent"] == c["a"].pk
    assert rows[c["a1"].pk]["level"] == rows[c["a"].pk]["level"] + 1
    assert rows[c["a1"].pk]["name"] == "Branch A1"


def test_customer_tree_counts_subtree_vehicles_and_online_ones(world):
    from tests.factories import DeviceFactory, VehicleFactory
    from vehicles.models import DeviceBinding
    from vehicles.services import device_bind, device_unbind

    c = world.customers
    # Branch A1: its world vehicle (device offline) + one with two online devices (one vehicle
    # online, not two) + one without a device; Branch A2's world vehicle online.
    twice = VehicleFactory(customer=c["a1"])
    for _ in range(2):
        device = DeviceFactory(customer=c["a1"])
        device_bind(vehicle=twice, device=device)
        locate(device, 34.26, 108.94, online=True)
    VehicleFactory(customer=c["a1"])
    locate(world.devices["a2"], 34.26, 108.94, online=True)
    # An online device no longer mounted does not make its old vehicle online.
    gone = VehicleFactory(customer=c["a2"])
    old = DeviceFactory(customer=c["a2"])
    device_bind(vehicle=gone, device=old)
    device_unbind(binding=DeviceBinding.objects.get(device=old, unbound_at__isnull=True))
    locate(old, 34.26, 108.94, online=True)

    rows = tree_rows(world.users["platform_admin"])
    counts = {key: (rows[c[key].pk]["vehicles"], rows[c[key].pk]["online"]) for key in c}
    assert counts["a1"] == (3, 1)
    assert counts["a2"] == (2, 1)
    assert counts["a"] == (1 + 3 + 2, 2)  # its own + both branches
    assert counts["b"] == (2, 0) and counts["b1"] == (1, 0)
    assert counts["platform"] == (1 + 6 + 2, 2)
    # A branch user sees the same numbers for its branch.
    assert tree_rows(world.users["a1_operator"])[c["a1"].pk]["vehicles"] == 3


def test_customer_tree_query_count_does_not_grow_with_the_tree(world):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from tests.factories import CustomerFactory, VehicleFactory

    def queries() -> int:
        # A fresh user each time, as each request has: the home customer's tree columns cached
        # on a user object go stale when customers are added.
        user = type(world.users["a_admin"]).objects.get(username="a_admin")
        with CaptureQueriesContext(connection) as ctx:
            rows = tree_rows(user)
        return len(ctx.captured_queries), len(rows)

    before, shown = queries()
    # The home customer, the shared-vehicle ids, the customers, one aggregate of the vehicles.
    assert before <= 4 and shown == 3
    for i in range(5):
        branch = CustomerFactory(
            name=f"Branch A3-{i}", code=f"a3-{i}", parent=world.customers["a1"]
        )
        VehicleFactory(customer=branch)
        VehicleFactory(customer=branch)
    assert queries() == (before, 3 + 5)


def test_monitor_reads_the_tree_fields_and_its_labels_are_translated(world, client):
    from carloan.pages.selectors import CUSTOMER_TREE_FIELDS

    source = js("monitor.js")
    assert 'getElementById("customer-tree-data")' in source
    for name in CUSTOMER_TREE_FIELDS:
        assert f"r[tf.{name}]" in source
    client.force_login(world.users["a_admin"])
    page = client.get(reverse("monitor"))
    labels = page.context["page_i18n"]
    assert labels["vehicles"] and labels["expand"]
    template = (Path(__file__).resolve().parents[2] / "templates/pages/monitor.html").read_text()
    assert '{% translate "Customers" %}' in template and '{% translate "Show all" %}' in template
