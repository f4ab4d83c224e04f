"""Admin of the places: every page loads for every persona with what it may see, another
tenant's rows answer 404, the map widget comes from static/vendor (no CDN), and the forms write
through the services (risk point, annotation, fence with vehicles, arming, the vehicle list's
"annotation at current position" action)."""

from __future__ import annotations

import json
import re

import pytest
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.contrib.gis.geos import Point
from django.urls import reverse
from django.utils import timezone

from alarms.models import AlarmSetting, Annotation, Arming, Geofence, RiskPoint
from alarms.services import places as svc
from devices.models import Device
from tests.alarms.test_places_api import HOLE, SQUARE, XIAN, grant_alarm_rights
from tests.conftest import PERSONAS

MODELS = [
    "riskpoint",
    "annotation",
    "geofence",
    "usualarea",
    "arming",
    "customalarmtype",
    "alarmsetting",
]
# What each persona's role lets it open (grant_alarm_rights): admins everything, the operator
# the risk points, annotations, fences and armings, the installer is no staff at all.
OPERATOR_MODELS = {"riskpoint", "annotation", "geofence", "arming"}


@pytest.fixture
def places_world(world):
    return grant_alarm_rights(world)


def _seed(w):
    svc.risk_point_create(name="车管所", kind="registration_office", lat=XIAN[0], lon=XIAN[1])
    for key in ("a1", "b1"):
        svc.annotation_create(customer=w.customers[key], name=f"note {key}", lat=34, lon=108)
        fence = svc.geofence_create(
            customer=w.customers[key],
            name=f"fence {key}",
            shape="polygon",
            polygon={"type": "Polygon", "coordinates": [SQUARE, HOLE]},
            vehicles=[w.vehicles[key]],
        )
        svc.usual_area_create(vehicle=w.vehicles[key], name="home", lat=34, lon=108)
        svc.custom_alarm_type_create(
            customer=w.customers[key], name="fast", min_speed_kmh=100, geofence=fence
        )
        svc.alarm_setting_upsert(
            kind="overspeed", customer=w.customers[key], params={"limit_kmh": 100}
        )
        device = w.devices[key]
        Device.objects.filter(pk=device.pk).update(
            last_position=Point(XIAN[1], XIAN[0], srid=4326), last_fix_at=timezone.now()
        )
        svc.vehicle_arm(vehicle=w.vehicles[key])


@pytest.mark.parametrize("persona", PERSONAS)
def test_every_places_page_loads_for_every_persona(places_world, client, persona):
    w = places_world
    _seed(w)
    client.force_login(w.users[persona])
    for model in MODELS:
        url = reverse(f"admin:alarms_{model}_changelist")
        response = client.get(url)
        if persona == "a1_installer":
            assert response.status_code == 302, url  # not staff: to the login page
            continue
        allowed = persona != "a1_operator" or model in OPERATOR_MODELS
        assert response.status_code == (200 if allowed else 403), (url, response.status_code)
        if not allowed:
            continue
        rows = response.context["cl"].result_list
        if model == "riskpoint":
            assert len(rows) == 1  # shared by the whole server
        else:
            owners = {_owner(row) for row in rows}
            visible = {w.customers[k].pk for k in w.visible_keys(persona)}
            assert owners and owners <= visible, (model, owners)
        change = reverse(f"admin:alarms_{model}_change", args=[rows[0].pk])
        assert client.get(change).status_code == 200, change


def _owner(row) -> int:
    vehicle = getattr(row, "vehicle", None)
    return row.customer_id if getattr(row, "customer_id", None) else vehicle.customer_id


def test_another_tenants_rows_answer_404(places_world, client):
    w = places_world
    _seed(w)
    client.force_login(w.users["a_admin"])
    for model in (Annotation, Geofence, AlarmSetting):
        row = model.objects.get(customer=w.customers["b1"])
        url = reverse(f"admin:alarms_{model._meta.model_name}_change", args=[row.pk])
        assert client.get(url).status_code == 404, url
    arming = Arming.objects.get(vehicle=w.vehicles["b1"])
    assert client.get(reverse("admin:alarms_arming_change", args=[arming.pk])).status_code == 404


def test_the_map_widget_is_vendored_and_loads_no_cdn(places_world, client):
    client.force_login(places_world.users["platform_admin"])
    for model in ("riskpoint", "geofence", "annotation"):
        html = client.get(reverse(f"admin:alarms_{model}_add")).content.decode()
        assert "/static/vendor/leaflet/leaflet.js" in html
        assert "/static/vendor/leaflet-geoman/leaflet-geoman.min.js" in html
        assert "CarloanMapWidget" in html
        # Every script and stylesheet is served from our own static files (csrf tokens are
        # random text, so look at the URLs, not at the whole page).
        urls = re.findall(r'(?:src|href)="([^"]+\.(?:js|css)[^"]*)"', html)
        assert urls and all(u.startswith("/static/") for u in urls), urls
        assert "openlayers" not in html.lower()


def test_risk_points_are_read_only_for_lenders(places_world, client):
    _seed(places_world)
    client.force_login(places_world.users["a_admin"])
    assert client.get(reverse("admin:alarms_riskpoint_add")).status_code == 403
    point = RiskPoint.objects.get()
    page = client.get(reverse("admin:alarms_riskpoint_change", args=[point.pk]))
    assert page.status_code == 200 and b'name="_save"' not in page.content


def test_platform_admin_adds_a_risk_point_on_the_map(places_world, client):
    client.force_login(places_world.users["platform_admin"])
    response = client.post(
        reverse("admin:alarms_riskpoint_add"),
        {
            "name": "二押点",
            "kind": "second_pledge",
            "point": json.dumps({"type": "Point", "coordinates": [108.95, 34.27]}),
            "radius_m": 250,
            "address": "",
        },
    )
    assert response.status_code == 302, response.content
    point = RiskPoint.objects.get()
    assert (point.point.y, point.point.x, point.radius_m) == (34.27, 108.95, 250)


def test_geofence_with_vehicles_from_the_admin_form(places_world, client):
    w = places_world
    client.force_login(w.users["a_admin"])
    form = {
        "customer": w.customers["a"].pk,
        "name": "东仓",
        "shape": "polygon",
        "polygon": json.dumps({"type": "Polygon", "coordinates": [SQUARE, HOLE]}),
        "center": "",
        "radius_m": "",
        "alarm_enter": "on",
        "alarm_leave": "on",
        "parking_minutes": 60,
        "vehicles": [w.vehicles["a1"].pk, w.vehicles["a2"].pk],
    }
    response = client.post(reverse("admin:alarms_geofence_add"), form)
    assert response.status_code == 302, response.context["adminform"].form.errors
    fence = Geofence.objects.get()
    assert len(fence.polygon) == 2
    assert set(fence.vehicles.all()) == {w.vehicles["a1"], w.vehicles["a2"]}

    # A vehicle of another tenant is not even a choice.
    form["vehicles"] = [w.vehicles["b1"].pk]
    response = client.post(reverse("admin:alarms_geofence_change", args=[fence.pk]), form)
    assert response.status_code == 200  # the form again, with the error
    assert "vehicles" in response.context["adminform"].form.errors
    assert set(fence.vehicles.all()) == {w.vehicles["a1"], w.vehicles["a2"]}


def test_arming_from_the_admin_uses_the_current_position(places_world, client):
    w = places_world
    client.force_login(w.users["a1_operator"])
    url = reverse("admin:alarms_arming_add")
    response = client.post(url, {"vehicle": w.vehicles["a1"].pk, "radius_m": 200}, follow=True)
    assert "cannot be armed" in response.content.decode()  # no position yet: a message
    assert not Arming.objects.exists()
    Device.objects.filter(pk=w.devices["a1"].pk).update(
        last_position=Point(XIAN[1], XIAN[0], srid=4326), last_fix_at=timezone.now()
    )
    response = client.post(url, {"vehicle": w.vehicles["a1"].pk, "radius_m": 300})
    assert response.status_code == 302
    arming = Arming.objects.get()
    assert (arming.point.y, arming.point.x, arming.radius_m) == (*XIAN, 300)


def test_vehicle_list_action_creates_annotations_at_current_positions(places_world, client):
    w = places_world
    Device.objects.filter(pk=w.devices["a1"].pk).update(
        last_position=Point(XIAN[1], XIAN[0], srid=4326), last_fix_at=timezone.now()
    )
    client.force_login(w.users["a_admin"])
    url = reverse("admin:vehicles_vehicle_changelist")
    selected = [w.vehicles["a1"].pk, w.vehicles["a2"].pk]
    response = client.post(
        url,
        {
            "action": "annotations_from_vehicles",
            ACTION_CHECKBOX_NAME: selected,
            "apply": "1",
            "name": "停车点",
            "radius_m": 150,
            "shared": "on",
        },
        follow=True,
    )
    text = response.content.decode()
    assert "1 annotation created." in text
    assert f"No position yet, skipped: {w.vehicles['a2'].plate}" in text
    note = Annotation.objects.get()
    assert (note.name, note.customer_id, note.radius_m) == (
        f"停车点 {w.vehicles['a1'].plate}",
        w.customers["a1"].pk,
        150,
    )
    assert (note.point.y, note.point.x) == XIAN


def test_the_vehicle_action_needs_the_annotation_right(world, client):
    client.force_login(world.users["a_admin"])  # the plain world: no alarms rights
    response = client.get(reverse("admin:vehicles_vehicle_changelist"))
    actions = dict(response.context["action_form"].fields["action"].choices)
    assert "annotations_from_vehicles" not in actions
