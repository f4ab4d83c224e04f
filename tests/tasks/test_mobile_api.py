"""The field workers' mobile API: me, position reports, my orders and their actions, vehicle
lookup, annotations at my position, the repossession view, throttling, the OpenAPI schema."""

from __future__ import annotations

import datetime as dt

import pytest
import time_machine

from alarms.models import Annotation
from gateway.ingest import Inbound, ingest_batch
from gateway.protocols import messages as m
from tasks.models import WorkerLocation, WorkerPresence
from tests.tasks.conftest import NOW, make_order, started


def test_me_says_who_i_am_and_what_i_can_be_sent(field, api):
    make_order(field, assignee="a1_installer")
    body = api(field["a1_installer"]).get("/api/v1/mobile/me/").json()
    assert body["username"] == "a1_installer"
    assert (body["kind"], body["kind_display"]) == ("installer", "installer")
    assert body["customer"]["code"] == "branch-a1"
    assert body["order_kinds"] == ["install", "repair"]
    assert body["open_orders"] == 1
    assert body["presence"] == {
        "on_duty": True,
        "lat": None,
        "lon": None,
        "accuracy_m": None,
        "at": None,
        "battery_pct": None,
    }


def test_position_reports_move_the_presence_forward_never_back(field, api, frozen):
    client = api(field["a1_installer"])
    answer = client.post(
        "/api/v1/mobile/location/",
        {"lat": 34.25, "lon": 108.95, "accuracy_m": 12, "battery_pct": 80},
        format="json",
    )
    assert answer.status_code == 200
    assert answer.json()["at"] == "2026-11-23T17:00:00+08:00"  # the site's zone
    # A late upload from when the phone was offline: kept in the track only.
    late = (NOW - dt.timedelta(minutes=20)).isoformat()
    client.post("/api/v1/mobile/location/", {"lat": 34.0, "lon": 108.0, "at": late}, format="json")
    presence = WorkerPresence.objects.get(user=field["a1_installer"])
    assert (round(presence.point.y, 2), presence.at, presence.battery_pct) == (34.25, NOW, 80)
    assert WorkerLocation.objects.filter(user=field["a1_installer"]).count() == 2
    # Going off duty needs no position.
    body = client.post("/api/v1/mobile/location/", {"on_duty": False}, format="json").json()
    assert body["on_duty"] is False and body["lat"] == 34.25


@pytest.mark.parametrize(
    "payload,field_name",
    [
        ({}, "code"),
        ({"lat": 34.2}, "non_field_errors"),
        ({"lat": 34.2, "lon": 200}, "lon"),
        ({"lat": 34.2, "lon": 108.9, "at": "2026-11-23T10:00:00+00:00"}, "code"),  # 1 h ahead
        ({"lat": 34.2, "lon": 108.9, "at": "2026-10-23T08:59:00+00:00"}, "code"),  # > 30 days
        ({"lat": 34.2, "lon": 108.9, "at": "0093-10-15T06:22:26Z"}, "code"),  # schemathesis
        ({"battery_pct": 101}, "battery_pct"),
    ],
)
def test_bad_position_reports_say_what_is_wrong(field, api, frozen, payload, field_name):
    answer = api(field["a1_installer"]).post("/api/v1/mobile/location/", payload, format="json")
    assert answer.status_code == 400
    assert field_name in answer.json()
    assert not WorkerLocation.objects.exists()


def test_back_office_users_do_not_report_positions(field, api):
    answer = api(field["a_admin"]).post(
        "/api/v1/mobile/location/", {"lat": 34.2, "lon": 108.9}, format="json"
    )
    assert answer.status_code == 403


def test_my_orders_open_first_by_due_time_then_closed_on_request(field, api, frozen):
    later = make_order(field, assignee="a1_installer", due_at=NOW + dt.timedelta(days=2))
    no_due = make_order(field, assignee="a1_installer")
    sooner = make_order(field, kind="repair", assignee="a1_installer", due_at=NOW)
    done = started(field)
    from tasks import services
    from tasks.completion import Completion

    services.work_order_complete(
        order=done,
        by=field["a1_installer"],
        data=Completion(imeis=(field.world.stock["a1"].identifier,)),
    )
    client = api(field["a1_installer"])
    ids = [r["id"] for r in client.get("/api/v1/mobile/orders/").json()["results"]]
    assert ids == [sooner.pk, later.pk, no_due.pk]
    closed = client.get("/api/v1/mobile/orders/?status=closed").json()["results"]
    assert [r["id"] for r in closed] == [done.pk]
    repairs = client.get("/api/v1/mobile/orders/?kind=repair").json()["results"]
    assert [r["id"] for r in repairs] == [sooner.pk]
    assert client.get("/api/v1/mobile/orders/?status=bogus").status_code == 400
    assert client.get("/api/v1/mobile/orders/?kind=bogus").status_code == 400


def test_the_phone_walks_an_order_through_accept_start_and_notes(field, api):
    order = make_order(field, assignee="a1_installer", address="Yanta Rd 1")
    client = api(field["a1_installer"])
    base = f"/api/v1/mobile/orders/{order.pk}/"
    detail = client.get(base).json()
    assert detail["vehicle"]["plate"] == field.world.vehicles["a1"].plate
    assert (detail["shows_vehicle_live"], detail["asks_found"]) == (False, False)
    assert client.post(base + "start/", {}, format="json").status_code == 400  # not accepted yet
    assert (
        client.post(base + "accept/", {"lat": 34.2, "lon": 108.9}, format="json").json()["status"]
        == "accepted"
    )
    assert client.post(base + "start/", {}, format="json").json()["status"] == "in_progress"
    note = client.post(base + "notes/", {"note": "owner waiting"}, format="json")
    assert note.status_code == 201 and note.json()["author"] == "a1_installer"
    assert client.post(base + "notes/", {"note": ""}, format="json").status_code == 400
    kinds = [r["kind"] for r in client.get(base).json()["records"]]
    assert kinds == ["status", "status", "status", "status", "note"]


def test_declining_gives_the_order_back(field, api):
    order = make_order(field, assignee="a1_installer")
    client = api(field["a1_installer"])
    url = f"/api/v1/mobile/orders/{order.pk}/decline/"
    assert client.post(url, {}, format="json").status_code == 400
    answer = client.post(url, {"reason": "too far"}, format="json")
    assert answer.status_code == 200
    assert (answer.json()["status"], answer.json()["assignee"]) == ("created", None)
    assert client.get(f"/api/v1/mobile/orders/{order.pk}/").status_code == 404


def test_vehicle_lookup_finds_visible_cars_by_whole_plate_or_vin(field, api):
    world = field.world
    a1, b1 = world.vehicles["a1"], world.vehicles["b1"]
    client = api(field["a1_installer"])
    found = client.get("/api/v1/mobile/vehicles/", {"plate": a1.plate.lower()}).json()
    assert [v["id"] for v in found] == [a1.pk]
    assert found[0]["imeis"] == [world.devices["a1"].identifier]
    assert found[0]["borrower_name"] is None  # installers do not meet the borrower
    assert client.get("/api/v1/mobile/vehicles/", {"vin": a1.vin}).json()[0]["id"] == a1.pk
    assert client.get("/api/v1/mobile/vehicles/", {"plate": b1.plate}).json() == []
    assert client.get("/api/v1/mobile/vehicles/", {"plate": a1.plate[:3]}).json() == []
    assert client.get("/api/v1/mobile/vehicles/").status_code == 400
    both = {"plate": a1.plate, "vin": a1.vin}
    assert client.get("/api/v1/mobile/vehicles/", both).status_code == 400
    salesman = api(field["a1_salesman"]).get("/api/v1/mobile/vehicles/", {"plate": a1.plate})
    assert salesman.json()[0]["borrower_name"] == a1.borrower_name


def test_an_annotation_is_made_where_i_stand_for_my_customer(field, api):
    client = api(field["a1_recovery"])
    answer = client.post(
        "/api/v1/mobile/annotations/",
        {"name": "Borrower's garage", "lat": 34.3, "lon": 108.95, "radius_m": 150},
        format="json",
    )
    assert answer.status_code == 201, answer.json()
    note = Annotation.objects.get(pk=answer.json()["id"])
    assert (note.customer_id, note.radius_m, note.created_by_id) == (
        field.world.customers["a1"].pk,
        150,
        field["a1_recovery"].pk,
    )
    assert (round(note.point.y, 4), round(note.point.x, 4)) == (34.3, 108.95)
    missing = client.post("/api/v1/mobile/annotations/", {"name": "x"}, format="json")
    assert missing.status_code == 400


def test_the_mobile_api_is_throttled_per_user(field, api, settings):
    settings.TASKS_MOBILE_THROTTLE_RATE = "3/min"
    client = api(field["a1_installer"])
    codes = [client.get("/api/v1/mobile/me/").status_code for _ in range(4)]
    assert codes == [200, 200, 200, 429]
    # Another worker has their own allowance.
    assert api(field["a1_installer2"]).get("/api/v1/mobile/me/").status_code == 200


def _ingest(device, fixes, now):
    items = [
        Inbound(
            device_id=device.pk,
            message=m.Message(
                protocol="gt06",
                type=m.POSITION,
                device_id=None,
                positions=(m.Position(fix_time=at, lat=lat, lon=lon, valid=True, speed_kmh=sp),),
            ),
            received_at=at,
            token=i,
        )
        for i, (at, lat, lon, sp) in enumerate(fixes)
    ]
    return ingest_batch(items, now=now)


def test_a_repossession_order_shows_where_the_car_is_and_where_it_stood(field, api):
    world = field.world
    device = world.devices["a1"]
    t0 = NOW - dt.timedelta(days=2)
    fixes = []
    # 40 minutes parked at home (a little GPS jitter), a drive, 15 minutes at a market, a
    # 5-minute stop (too short to count), then on the road.
    for i in range(41):
        fixes.append((t0 + dt.timedelta(minutes=i), 34.2000 + (i % 3) * 0.00005, 108.9000, 0.0))
    for i in range(1, 11):
        fixes.append((t0 + dt.timedelta(minutes=40 + i), 34.2000 + i * 0.003, 108.9000, 40.0))
    for i in range(1, 16):
        fixes.append((t0 + dt.timedelta(minutes=50 + i), 34.2300, 108.9000 + (i % 2) * 0.0001, 0))
    for i in range(1, 6):
        fixes.append((t0 + dt.timedelta(minutes=65 + i), 34.2300 + i * 0.003, 108.9000, 40.0))
    for i in range(1, 6):
        fixes.append((t0 + dt.timedelta(minutes=70 + i), 34.2450, 108.9000, 0.0))
    fixes.append((t0 + dt.timedelta(minutes=76), 34.2600, 108.9000, 50.0))
    with time_machine.travel(t0 + dt.timedelta(minutes=77), tick=False):
        _ingest(device, fixes, now=t0 + dt.timedelta(minutes=77))
    with time_machine.travel(NOW, tick=False):
        order = make_order(field, kind="repossession", assignee="a1_recovery")
        client = api(field["a1_recovery"])
        body = client.get(f"/api/v1/mobile/orders/{order.pk}/vehicle-live/").json()
    assert body["vehicle"]["id"] == world.vehicles["a1"].pk
    assert (body["position"]["lat"], body["position"]["lon"]) == (34.26, 108.9)
    stops = [(s["minutes"], round(s["lat"], 3), round(s["lon"], 3)) for s in body["stops"]]
    # The market stop starts with the last driving fix, which already stood there.
    assert stops == [(15, 34.23, 108.9), (40, 34.2, 108.9)]  # latest first
    assert (
        body["stops"][1]["start"] == t0.astimezone(dt.timezone(dt.timedelta(hours=8))).isoformat()
    )


def test_other_kinds_and_closed_orders_have_no_live_view(field, api):
    order = make_order(field, assignee="a1_installer")
    client = api(field["a1_installer"])
    assert client.get(f"/api/v1/mobile/orders/{order.pk}/vehicle-live/").status_code == 404
    order = make_order(field, kind="repossession", assignee="a1_recovery")
    from tasks import services

    services.work_order_cancel(order=order, by=field["a_admin"], reason="paid")
    answer = api(field["a1_recovery"]).get(f"/api/v1/mobile/orders/{order.pk}/vehicle-live/")
    assert answer.status_code == 404


def test_the_schema_documents_the_mobile_api(field, api):
    schema = api(field["platform_admin"]).get("/api/v1/schema/?format=json").json()
    paths = schema["paths"]
    for path in [
        "/api/v1/mobile/me/",
        "/api/v1/mobile/location/",
        "/api/v1/mobile/orders/",
        "/api/v1/mobile/orders/{id}/complete/",
        "/api/v1/mobile/orders/{id}/photos/",
        "/api/v1/mobile/orders/{id}/vehicle-live/",
        "/api/v1/mobile/vehicles/",
        "/api/v1/mobile/annotations/",
        "/api/v1/tasks/",
        "/api/v1/tasks/{id}/assign/",
        "/api/v1/tasks/{id}/suggestions/",
    ]:
        assert path in paths, path
    photo = paths["/api/v1/mobile/orders/{id}/photos/"]["post"]["requestBody"]["content"]
    assert list(photo) == ["multipart/form-data"]
