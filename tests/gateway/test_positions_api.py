"""Positions over the REST API: /api/v1/positions/ and /api/v1/vehicles/{id}/track/."""

from __future__ import annotations

import datetime as dt

import pytest
import time_machine
from django.db import connection
from django.test.utils import CaptureQueriesContext

from accounts.services import objects_share
from gateway import apis
from gateway.ingest import Inbound, ingest_batch
from gateway.protocols import messages as m
from tests.factories import DeviceFactory
from vehicles.services import device_bind

NOW = dt.datetime(2026, 11, 22, 8, 0, tzinfo=dt.UTC)
BASE = (34.2610, 108.9423)
URL = "/api/v1/positions/"

pytestmark = pytest.mark.usefixtures("frozen")


@pytest.fixture
def frozen():
    with time_machine.travel(NOW, tick=False):
        yield


def fix(seconds, dlat=0.0, **kw):
    kw.setdefault("valid", True)
    return m.Position(
        fix_time=NOW + dt.timedelta(seconds=seconds), lat=BASE[0] + dlat, lon=BASE[1], **kw
    )


def store(device, *fixes):
    """Through the gateway's batch writer, one frame per fix (in the order given)."""
    items = [
        Inbound(
            device_id=device.pk,
            message=m.Message(protocol="gt06", type=m.POSITION, device_id=None, positions=(p,)),
            received_at=NOW,
        )
        for p in fixes
    ]
    for start in range(0, len(items), 500):
        ingest_batch(items[start : start + 500])


def times(rows, key="fix_time"):
    return [dt.datetime.fromisoformat(r[key]) for r in rows]


def secs(*seconds):
    return [NOW + dt.timedelta(seconds=s) for s in seconds]


# --- /positions/ --------------------------------------------------------------------------------
def test_a_devices_fixes_in_fix_time_order_with_their_fields(world, api):
    device = world.devices["a1"]
    store(
        device,
        fix(-600, speed_kmh=40.0, course=90, acc=True, satellites=9, battery_pct=80),
        fix(-300, 0.001),
        fix(-3000, 0.002, realtime=False),  # blind-area re-upload arriving last
    )
    response = api(world.users["a1_operator"]).get(URL, {"imei": device.identifier})
    assert response.status_code == 200
    rows = response.json()["results"]
    assert times(rows) == secs(-3000, -600, -300)
    blind, first, _ = rows
    assert blind["realtime"] is False and first["realtime"] is True
    assert first["fix_time"] == "2026-11-22T15:50:00+08:00"  # ISO 8601 with the offset
    assert (first["lat"], first["lon"]) == pytest.approx(BASE)
    assert (first["speed_kmh"], first["course"], first["acc"], first["satellites"]) == (
        40.0,
        90,
        True,
        9,
    )
    assert (first["device_id"], first["vehicle_id"]) == (device.pk, world.vehicles["a1"].pk)
    assert (first["valid"], first["source"], first["flags"], first["battery_pct"]) == (
        True,
        "gps",
        [],
        80,
    )


def test_by_plate_every_device_mounted_on_the_vehicle(world, api):
    vehicle, wired = world.vehicles["a1"], world.devices["a1"]
    wireless = DeviceFactory(customer=world.customers["a1"], kind="wireless")
    device_bind(vehicle=vehicle, device=wireless)
    store(wired, fix(-100), fix(-40))
    store(wireless, fix(-70, 0.0001))
    store(world.devices["a2"], fix(-50))  # another vehicle
    client = api(world.users["a_admin"])
    rows = client.get(URL, {"plate": vehicle.plate.lower()}).json()["results"]
    assert [(r["device_id"], t) for r, t in zip(rows, times(rows), strict=True)] == [
        (wired.pk, secs(-100)[0]),
        (wireless.pk, secs(-70)[0]),
        (wired.pk, secs(-40)[0]),
    ]


def test_the_default_range_is_the_last_24_hours(world, api):
    device = world.devices["a1"]
    store(device, fix(-25 * 3600), fix(-23 * 3600), fix(-60))
    client = api(world.users["a1_operator"])
    rows = client.get(URL, {"imei": device.identifier}).json()["results"]
    assert times(rows) == secs(-23 * 3600, -60)
    # since given alone: up to now; until given alone: the 24 h before it.
    since = (NOW - dt.timedelta(hours=26)).isoformat()
    rows = client.get(URL, {"imei": device.identifier, "since": since}).json()["results"]
    assert len(rows) == 3
    until = (NOW - dt.timedelta(hours=20)).isoformat()
    rows = client.get(URL, {"imei": device.identifier, "until": until}).json()["results"]
    assert times(rows) == secs(-25 * 3600, -23 * 3600)


def test_since_is_inclusive_and_until_exclusive(world, api):
    device = world.devices["a1"]
    store(device, fix(-120), fix(-60), fix(-30))
    params = {
        "imei": device.identifier,
        "since": secs(-120)[0].isoformat(),
        "until": secs(-30)[0].isoformat(),
    }
    rows = api(world.users["a1_operator"]).get(URL, params).json()["results"]
    assert times(rows) == secs(-120, -60)


def test_cursor_pages_walk_a_long_range_in_order_at_a_constant_cost(world, api):
    device = world.devices["a1"]
    store(device, *(fix(-30 * n, 0.00001 * (n % 7)) for n in range(1, 1201)))  # 10 hours
    client = api(world.users["a1_operator"])
    client.get(URL)  # the token's authentication is kept after the first request
    url = f"{URL}?imei={device.identifier}&page_size=500"
    seen, counts = [], []
    while url:
        with CaptureQueriesContext(connection) as queries:
            body = client.get(url).json()
        counts.append(len(queries))
        seen += body["results"]
        url = body["next"]
    assert [len(seen), len(counts)] == [1200, 3]
    assert times(seen) == sorted(times(seen)) and len({r["id"] for r in seen}) == 1200
    assert counts[0] == counts[2]  # the last page costs what the first does (no OFFSET)
    # `previous` walks back from the last page to the second.
    back = client.get(body["previous"]).json()
    assert [r["id"] for r in back["results"]] == [r["id"] for r in seen[500:1000]]


def test_cursor_pages_split_equal_fix_times_without_losing_or_repeating(world, api):
    vehicle, wired = world.vehicles["a1"], world.devices["a1"]
    wireless = DeviceFactory(customer=world.customers["a1"], kind="wireless")
    device_bind(vehicle=vehicle, device=wireless)
    # Both devices report at the same seconds.
    store(wired, *(fix(-30 * n) for n in range(1, 6)))
    store(wireless, *(fix(-30 * n, 0.0001) for n in range(1, 6)))
    client = api(world.users["a1_operator"])
    body = client.get(URL, {"plate": vehicle.plate, "page_size": 3}).json()
    ids = [r["id"] for r in body["results"]]
    while body["next"]:
        body = client.get(body["next"]).json()
        ids += [r["id"] for r in body["results"]]
    assert len(ids) == len(set(ids)) == 10


def test_an_unescaped_plus_in_the_offset_is_understood(world, api):
    device = world.devices["a1"]
    store(device, fix(-120), fix(-60))
    client = api(world.users["a1_operator"])
    # What a browser address bar sends for ?since=2026-11-22T15:59:00+08:00 typed by hand.
    url = f"{URL}?imei={device.identifier}&since=2026-11-22T15:59:00+08:00"
    rows = client.get(url).json()["results"]
    assert times(rows) == secs(-60)


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({}, "non_field_errors"),
        ({"imei": "x", "plate": "y"}, "non_field_errors"),
        ({"since": "2026-11-22T09:00:00+08:00", "until": "2026-11-22T08:00:00+08:00"}, "until"),
        ({"since": "2026-10-01T00:00:00+08:00", "until": "2026-11-22T00:00:00+08:00"}, "until"),
        ({"since": "2026-10-15T00:00:00+08:00"}, "until"),  # to now: more than 31 days
        ({"since": "2026-11-23T00:00:00+08:00"}, "since"),  # in the future, no until
        ({"since": "yesterday"}, "since"),
    ],
)
def test_bad_queries_answer_400_saying_what_is_wrong(world, api, params, field):
    if "imei" not in params and "plate" not in params and field != "non_field_errors":
        params = {**params, "imei": world.devices["a1"].identifier}
    response = api(world.users["a1_operator"]).get(URL, params)
    assert response.status_code == 400
    assert field in response.json()


def test_31_days_is_allowed(world, api):
    params = {
        "imei": world.devices["a1"].identifier,
        "since": "2026-10-22T00:00:00+08:00",
        "until": "2026-11-22T00:00:00+08:00",
    }
    assert api(world.users["a1_operator"]).get(URL, params).status_code == 200


def test_unknown_and_other_tenants_ids_answer_404_alike(world, api):
    store(world.devices["b1"], fix(-60))
    client = api(world.users["a_admin"])
    responses = [
        client.get(URL, {"imei": "359339077003915"}),
        client.get(URL, {"imei": world.devices["b1"].identifier}),
        client.get(URL, {"plate": "陕Z99999"}),
        client.get(URL, {"plate": world.vehicles["b1"].plate}),
    ]
    assert [r.status_code for r in responses] == [404] * 4
    # A platform administrator sees everything.
    root = api(world.users["platform_admin"])
    assert len(root.get(URL, {"imei": world.devices["b1"].identifier}).json()["results"]) == 1


def test_a_shared_vehicles_positions_are_readable_by_plate(world, api):
    vehicle = world.vehicles["b1"]
    store(world.devices["b1"], fix(-60))
    user = world.users["a_admin"]
    assert api(user).get(URL, {"plate": vehicle.plate}).status_code == 404
    objects_share(objects=[vehicle], username=user.username, by=world.users["b_admin"])
    rows = api(user).get(URL, {"plate": vehicle.plate}).json()["results"]
    assert times(rows) == secs(-60)


def test_reading_needs_the_view_permission_and_a_login(world, api):
    user = world.users["a1_operator"]
    role = user.role
    role.permissions.remove(*role.permissions.filter(codename="view_device"))
    client = api(user)
    assert client.get(URL, {"imei": world.devices["a1"].identifier}).status_code == 403
    assert client.get(URL, {"plate": world.vehicles["a1"].plate}).status_code == 200
    assert api().get(URL, {"imei": world.devices["a1"].identifier}).status_code == 401


# --- /vehicles/{id}/track/ ----------------------------------------------------------------------
def track_url(vehicle):
    return f"/api/v1/vehicles/{vehicle.pk}/track/"


def make_track(world):
    device = world.devices["a1"]
    store(device, fix(-600, acc=False, speed_kmh=0))
    store(device, fix(-570, 0.0002, acc=False, speed_kmh=0))  # 20 m wander while parked: drift
    store(device, fix(-540, 0.01, acc=True, speed_kmh=60.0))
    store(device, fix(-510, 0.02, valid=False))  # no GPS
    store(device, fix(-3000, -0.01, realtime=False))  # blind area, arrives last
    return device


def test_the_track_lists_every_fix_in_order_with_its_flags(world, api):
    make_track(world)
    vehicle = world.vehicles["a1"]
    response = api(world.users["a1_operator"]).get(track_url(vehicle))
    assert response.status_code == 200
    body = response.json()
    assert (body["vehicle_id"], body["plate"], body["count"], body["truncated"]) == (
        vehicle.pk,
        vehicle.plate,
        5,
        False,
    )
    points = body["positions"]
    assert times(points, "time") == secs(-3000, -600, -570, -540, -510)
    assert [(p["valid"], p["realtime"], p["flags"]) for p in points] == [
        (True, False, []),
        (True, True, []),
        (True, True, ["drift"]),
        (True, True, []),
        (False, True, ["invalid_fix"]),
    ]
    assert (points[3]["lat"], points[3]["speed_kmh"], points[3]["acc"]) == (
        pytest.approx(BASE[0] + 0.01),
        60.0,
        True,
    )


def test_the_track_as_geojson_draws_a_line_of_the_drawable_fixes(world, api):
    make_track(world)
    body = (
        api(world.users["a1_operator"])
        .get(track_url(world.vehicles["a1"]), {"output": "geojson"})
        .json()
    )
    assert body["type"] == "FeatureCollection"
    line, *fixes = body["features"]
    assert line["geometry"]["type"] == "LineString"
    # Invalid and drift fixes are not drawn; the blind-area fix is, in its place by time.
    assert [lat for _lon, lat in line["geometry"]["coordinates"]] == pytest.approx(
        [BASE[0] - 0.01, BASE[0], BASE[0] + 0.01]
    )
    assert len(fixes) == 5 and all(f["geometry"]["type"] == "Point" for f in fixes)
    assert [f["properties"]["flags"] for f in fixes][2:] == [["drift"], [], ["invalid_fix"]]
    lon, lat = fixes[0]["geometry"]["coordinates"]
    assert (lat, lon) == pytest.approx((BASE[0] - 0.01, BASE[1]))


def test_a_long_track_is_cut_and_continues_from_next_since(world, api, monkeypatch):
    monkeypatch.setattr(apis, "MAX_TRACK_POINTS", 3)
    vehicle, wired = world.vehicles["a1"], world.devices["a1"]
    wireless = DeviceFactory(customer=world.customers["a1"], kind="wireless")
    device_bind(vehicle=vehicle, device=wireless)
    store(wired, *(fix(-30 * n) for n in range(1, 5)))  # -120 .. -30
    store(wireless, fix(-60, 0.0001), fix(-45, 0.0001))
    client = api(world.users["a1_operator"])
    since = (NOW - dt.timedelta(hours=1)).isoformat()
    first = client.get(track_url(vehicle), {"since": since}).json()
    # 3 points would split the two fixes at -60 s: the cut goes before them.
    assert times(first["positions"], "time") == secs(-120, -90)
    assert first["truncated"] is True and first["next_since"] == "2026-11-22T15:59:00+08:00"
    second = client.get(track_url(vehicle), {"since": first["next_since"]}).json()
    assert times(second["positions"], "time") == secs(-60, -60, -45)
    assert second["truncated"] is True
    last = client.get(track_url(vehicle), {"since": second["next_since"]}).json()
    assert times(last["positions"], "time") == secs(-30)
    assert last["truncated"] is False and last["next_since"] is None


def test_the_track_of_an_invisible_or_unknown_vehicle_is_404(world, api):
    client = api(world.users["a_admin"])
    assert client.get(track_url(world.vehicles["b1"])).status_code == 404
    assert client.get("/api/v1/vehicles/999999/track/").status_code == 404
    assert client.get(track_url(world.vehicles["a1"]), {"output": "kml"}).status_code == 400
    assert api().get(track_url(world.vehicles["a1"])).status_code == 401


def test_the_schema_documents_both_endpoints(world, api):
    schema = api(world.users["a_admin"]).get("/api/v1/schema/", {"format": "json"}).json()
    positions = schema["paths"]["/api/v1/positions/"]["get"]
    params = {p["name"] for p in positions["parameters"]}
    assert params >= {"imei", "plate", "since", "until", "cursor", "page_size"}
    page = positions["responses"]["200"]["content"]["application/json"]["schema"]["$ref"]
    assert page.endswith("/PaginatedPositionOutputList")
    track = schema["paths"]["/api/v1/vehicles/{id}/track/"]["get"]
    assert {p["name"] for p in track["parameters"]} >= {"id", "since", "until", "output"}
    response = schema["components"]["schemas"]["TrackResponse"]
    assert len(response["oneOf"]) == 2
