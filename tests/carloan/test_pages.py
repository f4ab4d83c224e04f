"""The monitoring pages: login, scoping of the snapshot and the vehicle panel, query counts."""

from __future__ import annotations

import datetime as dt

import pytest
from django.contrib.gis.geos import Point
from django.urls import reverse

from carloan.pages.selectors import live_snapshot, vehicle_state
from devices.models import Device

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
