"""REST API of the places: risk points, annotations (from a map click or a vehicle's position),
geofences in GeoJSON, arming; scoping (404 for another tenant's ids), function rights (403)."""

from __future__ import annotations

import datetime as dt

import pytest
from django.contrib.auth.models import Permission
from django.contrib.gis.geos import Point
from django.utils import timezone

from alarms.models import Annotation, Arming, Geofence, RiskPoint
from alarms.services import places as svc
from devices.models import Device

XIAN = (34.2610, 108.9423)
SQUARE = [[108.90, 34.20], [109.00, 34.20], [109.00, 34.30], [108.90, 34.30], [108.90, 34.20]]
HOLE = [[108.94, 34.24], [108.96, 34.24], [108.96, 34.26], [108.94, 34.26], [108.94, 34.24]]
OPERATOR_ALARM_PERMS = [
    "view_riskpoint",
    "view_annotation",
    "add_annotation",
    "change_annotation",
    "view_geofence",
    "view_arming",
    "add_arming",
    "delete_arming",
]


def grant_alarm_rights(world):
    """The personas with rights on the alarms app: lender admins everything, the branch
    operator what a field operator needs, the installer nothing."""
    every = list(Permission.objects.filter(content_type__app_label="alarms"))
    for persona in ("a_admin", "b_admin"):
        world.users[persona].role.permissions.add(*every)
    operator = Permission.objects.filter(
        content_type__app_label="alarms", codename__in=OPERATOR_ALARM_PERMS
    )
    world.users["a1_operator"].role.permissions.add(*operator)
    return world


@pytest.fixture
def places_world(world):
    return grant_alarm_rights(world)


def report(device, lat, lon):
    Device.objects.filter(pk=device.pk).update(
        last_position=Point(lon, lat, srid=4326), last_fix_at=timezone.now()
    )


def results(response) -> list[dict]:
    assert response.status_code == 200, response.content
    return response.json()["results"]


# --- Risk points ----------------------------------------------------------------------------------
def _risk_points():
    svc.risk_point_create(name="西安车管所", kind="registration_office", lat=34.2610, lon=108.9423)
    svc.risk_point_create(name="二押点", kind="second_pledge", lat=34.2650, lon=108.9423)
    svc.risk_point_create(name="远处维修厂", kind="repair_shop", lat=31.23, lon=121.47)


def test_risk_points_are_listed_for_everyone_with_the_view_right(places_world, api):
    _risk_points()
    names = [
        r["name"] for r in results(api(places_world.users["b_admin"]).get("/api/v1/risk-points/"))
    ]
    assert sorted(names) == ["二押点", "西安车管所", "远处维修厂"]
    response = api(places_world.users["a1_installer"]).get("/api/v1/risk-points/")
    assert response.status_code == 403
    assert api().get("/api/v1/risk-points/").status_code == 401


def test_risk_point_filters_kind_near_and_bbox(places_world, api):
    _risk_points()
    client = api(places_world.users["a1_operator"])
    by_label = results(client.get("/api/v1/risk-points/", {"kind": "车管所"}))
    assert [r["name"] for r in by_label] == ["西安车管所"]
    near = results(client.get("/api/v1/risk-points/", {"near": "34.2625,108.9423", "radius": 300}))
    assert [r["name"] for r in near] == ["西安车管所", "二押点"]  # nearest first
    assert 160 < near[0]["distance_m"] < 175  # 0.0015 degrees of latitude, in metres
    assert 270 < near[1]["distance_m"] < 285
    box = results(client.get("/api/v1/risk-points/", {"bbox": "121,31,122,32"}))
    assert [r["name"] for r in box] == ["远处维修厂"]
    assert client.get("/api/v1/risk-points/", {"near": "34.2"}).status_code == 400
    assert client.get("/api/v1/risk-points/", {"kind": "casino"}).status_code == 400


def test_only_platform_admins_write_risk_points(places_world, api):
    body = {"name": "车管所", "kind": "车管所", "lat": 34.26, "lon": 108.94, "radius_m": 300}
    response = api(places_world.users["a_admin"]).post("/api/v1/risk-points/", body, format="json")
    assert response.status_code == 403  # has the role right, but risk points are server-wide
    root = api(places_world.users["platform_admin"])
    response = root.post("/api/v1/risk-points/", body, format="json")
    assert response.status_code == 201, response.content
    assert response.json()["kind"] == "registration_office"
    pk = response.json()["id"]
    response = root.patch(f"/api/v1/risk-points/{pk}/", {"radius_m": 500}, format="json")
    assert response.json()["radius_m"] == 500
    bad = root.post("/api/v1/risk-points/", {**body, "lat": 134}, format="json")
    assert bad.status_code == 400 and "lat" in bad.json()
    assert root.delete(f"/api/v1/risk-points/{pk}/").status_code == 204
    assert not RiskPoint.objects.exists()


# --- Annotations ----------------------------------------------------------------------------------
def test_annotation_from_a_map_click_and_from_a_vehicle(places_world, api):
    w = places_world
    client = api(w.users["a1_operator"])
    response = client.post(
        "/api/v1/annotations/",
        {"name": "客户家", "lat": 34.30, "lon": 108.99, "shared": False},
        format="json",
    )
    assert response.status_code == 201, response.content
    body = response.json()
    assert (body["customer"]["id"], body["lat"], body["shared"]) == (
        w.customers["a1"].pk,
        34.3,
        False,
    )
    assert body["created_by"] == "a1_operator"

    vehicle = w.vehicles["a1"]
    response = client.post(
        "/api/v1/annotations/", {"name": "停车场", "vehicle": vehicle.pk}, format="json"
    )
    assert response.status_code == 400 and response.json()["code"] == "no_position"
    report(w.devices["a1"], *XIAN)
    response = client.post(
        "/api/v1/annotations/",
        {"name": "停车场", "vehicle": vehicle.pk, "radius_m": 300},
        format="json",
    )
    assert response.status_code == 201, response.content
    assert (response.json()["lat"], response.json()["lon"], response.json()["radius_m"]) == (
        *XIAN,
        300,
    )
    other = client.post(
        "/api/v1/annotations/", {"name": "x", "vehicle": w.vehicles["b1"].pk}, format="json"
    )
    assert other.status_code == 404
    both = client.post(
        "/api/v1/annotations/",
        {"name": "x", "vehicle": vehicle.pk, "lat": 1, "lon": 2},
        format="json",
    )
    assert both.status_code == 400


def test_annotations_are_scoped_and_private_ones_stay_with_their_author(places_world, api):
    w = places_world
    shared = svc.annotation_create(customer=w.customers["a1"], name="shared", lat=34, lon=108)
    private = svc.annotation_create(
        customer=w.customers["a1"],
        name="private",
        lat=34,
        lon=108,
        shared=False,
        by=w.users["a1_operator"],
    )
    svc.annotation_create(customer=w.customers["b"], name="B's", lat=34, lon=108)
    names = lambda user: {r["name"] for r in results(api(user).get("/api/v1/annotations/"))}  # noqa: E731
    assert names(w.users["a1_operator"]) == {"shared", "private"}
    assert names(w.users["a_admin"]) == {"shared"}
    assert names(w.users["b_admin"]) == {"B's"}
    b = api(w.users["b_admin"])
    assert b.get(f"/api/v1/annotations/{shared.pk}/").status_code == 404
    assert (
        b.patch(f"/api/v1/annotations/{shared.pk}/", {"name": "x"}, format="json").status_code
        == 404
    )
    a = api(w.users["a_admin"])
    assert a.delete(f"/api/v1/annotations/{private.pk}/").status_code == 404
    assert a.get("/api/v1/annotations/", {"shared": "false"}).json()["results"] == []
    assert Annotation.objects.count() == 3


def test_annotation_list_query_count_does_not_grow(
    places_world, api, django_assert_max_num_queries
):
    w = places_world
    client = api(w.users["a_admin"])
    svc.annotation_create(customer=w.customers["a1"], name="one", lat=34, lon=108)
    with django_assert_max_num_queries(20) as few:
        results(client.get("/api/v1/annotations/"))
    for i in range(10):
        svc.annotation_create(customer=w.customers["a2"], name=f"n{i}", lat=34, lon=108)
    with django_assert_max_num_queries(len(few.captured_queries)):
        assert len(results(client.get("/api/v1/annotations/"))) == 11


# --- Geofences ------------------------------------------------------------------------------------
def test_polygon_fence_in_and_out_as_geojson_with_its_vehicles(places_world, api):
    w = places_world
    client = api(w.users["a_admin"])
    body = {
        "customer": w.customers["a"].pk,
        "name": "西安东仓",
        "shape": "polygon",
        "geometry": {"type": "Polygon", "coordinates": [SQUARE, HOLE]},
        "alarm_inside": True,
        "vehicles": [w.vehicles["a1"].pk, w.vehicles["a2"].pk],
    }
    response = client.post("/api/v1/geofences/", body, format="json")
    assert response.status_code == 201, response.content
    fence = response.json()
    assert fence["geometry"] == {"type": "Polygon", "coordinates": [SQUARE, HOLE]}
    assert fence["vehicles"] == sorted([w.vehicles["a1"].pk, w.vehicles["a2"].pk])
    assert (fence["alarm_inside"], fence["alarm_enter"], fence["center"]) == (True, True, None)

    response = client.patch(
        f"/api/v1/geofences/{fence['id']}/", {"vehicles": [w.vehicles["a2"].pk]}, format="json"
    )
    assert response.json()["vehicles"] == [w.vehicles["a2"].pk]
    assert api(w.users["b_admin"]).get(f"/api/v1/geofences/{fence['id']}/").status_code == 404


def test_circle_fence_as_centre_and_radius(places_world, api):
    w = places_world
    client = api(w.users["a_admin"])
    response = client.post(
        "/api/v1/geofences/",
        {
            "name": "圆形",
            "shape": "circle",
            "center": {"lat": XIAN[0], "lon": XIAN[1]},
            "radius_m": 800,
        },
        format="json",
    )
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["customer"]["id"] == w.customers["a"].pk  # the caller's own customer
    assert body["center"] == {"lat": XIAN[0], "lon": XIAN[1]} and body["radius_m"] == 800
    assert body["geometry"] == {"type": "Point", "coordinates": [XIAN[1], XIAN[0]]}
    missing = client.post(
        "/api/v1/geofences/",
        {"name": "x", "shape": "circle", "center": {"lat": 34, "lon": 108}},
        format="json",
    )
    assert missing.status_code == 400


def test_fence_geometry_and_binding_errors(places_world, api):
    w = places_world
    client = api(w.users["a_admin"])
    bowtie = {"type": "Polygon", "coordinates": [[[0, 0], [1, 1], [1, 0], [0, 1], [0, 0]]]}
    response = client.post(
        "/api/v1/geofences/", {"name": "x", "shape": "polygon", "geometry": bowtie}, format="json"
    )
    assert response.status_code == 400 and response.json()["code"] == "invalid_polygon"
    fence = svc.geofence_create(
        customer=w.customers["a1"], name="A1", shape="circle", center=XIAN, radius_m=300
    )
    url = f"/api/v1/geofences/{fence.pk}/bind/"
    outside = client.post(url, {"vehicles": [w.vehicles["a2"].pk]}, format="json")
    assert outside.status_code == 400 and outside.json()["code"] == "outside_subtree"
    other = client.post(url, {"vehicles": [w.vehicles["b1"].pk]}, format="json")
    assert other.status_code == 404
    ok = client.post(url, {"vehicles": [w.vehicles["a1"].pk]}, format="json")
    assert ok.json()["vehicles"] == [w.vehicles["a1"].pk]
    operator = api(w.users["a1_operator"])  # sees the fence, may not change it
    response = operator.post(
        f"/api/v1/geofences/{fence.pk}/unbind/", {"vehicles": [w.vehicles["a1"].pk]}, format="json"
    )
    assert response.status_code == 403
    assert operator.get(f"/api/v1/geofences/{fence.pk}/").status_code == 200
    assert list(Geofence.objects.get().vehicles.all()) == [w.vehicles["a1"]]


def test_geofence_list_query_count_does_not_grow(places_world, api, django_assert_max_num_queries):
    w = places_world
    client = api(w.users["a_admin"])

    def fence(i):
        svc.geofence_create(
            customer=w.customers["a"],
            name=f"f{i}",
            shape="circle",
            center=XIAN,
            radius_m=300,
            vehicles=[w.vehicles["a1"], w.vehicles["a2"]],
        )

    fence(0)
    with django_assert_max_num_queries(20) as few:
        results(client.get("/api/v1/geofences/"))
    for i in range(1, 8):
        fence(i)
    with django_assert_max_num_queries(len(few.captured_queries)):
        assert len(results(client.get("/api/v1/geofences/"))) == 8


# --- Arming -------------------------------------------------------------------------------------
def test_arm_and_disarm_a_vehicle_where_it_is(places_world, api):
    w = places_world
    client = api(w.users["a1_operator"])
    vehicle = w.vehicles["a1"]
    url = f"/api/v1/vehicles/{vehicle.pk}/arm/"
    assert client.get(url).json()["armed"] is False
    response = client.post(url, {}, format="json")
    assert response.status_code == 400 and response.json()["code"] == "no_position"
    report(w.devices["a1"], *XIAN)
    response = client.post(url, {"radius_m": 300}, format="json")
    assert response.status_code == 200, response.content
    body = response.json()
    assert (body["armed"], body["lat"], body["lon"], body["radius_m"]) == (True, *XIAN, 300)
    assert body["armed_by"] == "a1_operator"
    assert client.get(url).json()["armed"] is True
    assert client.post(url, {"radius_m": 5}, format="json").status_code == 400
    response = client.post(f"/api/v1/vehicles/{vehicle.pk}/disarm/")
    assert response.status_code == 200 and response.json()["armed"] is False
    assert not Arming.objects.exists()


def test_arming_scoping_and_rights(places_world, api):
    w = places_world
    report(w.devices["b1"], *XIAN)
    other = f"/api/v1/vehicles/{w.vehicles['b1'].pk}/arm/"
    assert api(w.users["a_admin"]).post(other, {}, format="json").status_code == 404
    assert (
        api(w.users["a_admin"]).post(f"/api/v1/vehicles/{w.vehicles['b1'].pk}/disarm/").status_code
        == 404
    )
    own = f"/api/v1/vehicles/{w.vehicles['a1'].pk}/arm/"
    assert api(w.users["a1_installer"]).post(own, {}, format="json").status_code == 403
    assert api(w.users["a1_installer"]).get(own).status_code == 403
    assert api().post(own, {}, format="json").status_code == 401
    assert api(w.users["a1_operator"]).get("/api/v1/vehicles/999999/arm/").status_code == 404


def test_fix_times_are_not_needed_for_old_positions(places_world, api):
    """A device that reported yesterday still gives the vehicle a position (parked car)."""
    w = places_world
    Device.objects.filter(pk=w.devices["a1"].pk).update(
        last_position=Point(XIAN[1], XIAN[0], srid=4326),
        last_fix_at=timezone.now() - dt.timedelta(days=1),
    )
    response = api(w.users["a1_operator"]).post(
        f"/api/v1/vehicles/{w.vehicles['a1'].pk}/arm/", {}, format="json"
    )
    assert response.json()["armed"] is True
