"""REST API of alarms and alarm settings: lists scoped per persona, filters, the handling
state machine through the lifecycle services (200 / 409), 403 without `alarms.handle_alarm`,
404 for another tenant's ids, constant query counts, the OpenAPI schema."""

from __future__ import annotations

import datetime as dt

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from accounts.services import objects_share
from alarms.models import Alarm, AlarmSetting
from alarms.services import lifecycle
from alarms.services.places import alarm_setting_upsert
from tests.alarms.test_alarm_visibility import T0, make_alarms, raise_alarm
from tests.conftest import PERSONAS

LIST = "/api/v1/alarms/"
READERS = [p for p in PERSONAS if p != "a1_installer"]


@pytest.fixture
def alarms(world):
    return make_alarms(world)


def ids(response) -> list[int]:
    assert response.status_code == 200, response.content
    return [row["id"] for row in response.json()["results"]]


@pytest.mark.parametrize("persona", READERS)
def test_each_persona_lists_exactly_the_alarms_of_its_subtree(world, alarms, api, persona):
    got = ids(api(world.users[persona]).get(LIST))
    expected = {alarms[k].pk for k in world.visible_keys(persona)}
    assert set(got) == expected and len(got) == len(expected)


def test_without_the_view_right_the_list_is_403(world, alarms, api):
    assert api(world.users["a1_installer"]).get(LIST).status_code == 403
    assert api().get(LIST).status_code == 401


def test_newest_first_with_what_a_list_shows(world, alarms, api):
    rows = api(world.users["a_admin"]).get(LIST).json()["results"]
    assert [r["id"] for r in rows] == [alarms[k].pk for k in ("a2", "a1", "a")]
    row = rows[1]
    assert {k: row[k] for k in ("kind", "category", "level", "status", "plate")} == {
        "kind": "sos",
        "category": "device",
        "level": 3,
        "status": "open",
        "plate": world.vehicles["a1"].plate,
    }
    assert (row["customer_name"], row["lat"], row["lon"], row["speed_kmh"]) == (
        "Branch A1",
        34.26,
        108.94,
        12.0,
    )
    assert dt.datetime.fromisoformat(row["raised_at"]) == alarms["a1"].raised_at


def test_filters(world, alarms, api):
    client = api(world.users["a_admin"])
    vehicle = world.vehicles["a1"]
    overspeed = raise_alarm(vehicle, "overspeed", at=T0 + dt.timedelta(hours=2))
    lifecycle.alarm_close(alarm=alarms["a2"], by=None)
    assert ids(client.get(LIST, {"kind": "overspeed"})) == [overspeed.pk]
    assert ids(client.get(LIST, {"category": "platform"})) == [overspeed.pk]
    assert ids(client.get(LIST, {"status": "closed"})) == [alarms["a2"].pk]
    assert set(ids(client.get(LIST, {"level": 3}))) == {alarms[k].pk for k in ("a", "a1", "a2")}
    assert len(ids(client.get(LIST, {"min_level": 2}))) == 4
    assert ids(client.get(LIST, {"vehicle": vehicle.pk})) == [overspeed.pk, alarms["a1"].pk]
    assert ids(client.get(LIST, {"plate": vehicle.plate.lower()})) == [
        overspeed.pk,
        alarms["a1"].pk,
    ]
    since = alarms["a1"].raised_at.isoformat()  # the fixture raises a minute apart
    until = (T0 + dt.timedelta(hours=1)).isoformat()
    assert ids(client.get(LIST, {"since": since, "until": until})) == [
        alarms["a2"].pk,
        alarms["a1"].pk,
    ]
    for bad in ({"kind": "teleport"}, {"since": "yesterday"}, {"level": 9}):
        assert client.get(LIST, bad).status_code == 400


def test_filtering_by_another_tenants_vehicle_shows_nothing(world, alarms, api):
    response = api(world.users["a_admin"]).get(LIST, {"vehicle": world.vehicles["b1"].pk})
    assert ids(response) == []


def test_the_detail_has_the_history_and_another_tenants_id_is_404(world, alarms, api):
    alarm = alarms["a1"]
    lifecycle.alarm_acknowledge(alarm=alarm, by=world.users["a_admin"], note="calling")
    body = api(world.users["a1_operator"]).get(f"{LIST}{alarm.pk}/").json()
    assert [(e["action"], e["by"], e["note"]) for e in body["events"]] == [
        ("raised", None, ""),
        ("acknowledged", "a_admin", "calling"),
    ]
    assert (body["acknowledged_by"], body["status"]) == ("a_admin", "acknowledged")
    assert api(world.users["b_admin"]).get(f"{LIST}{alarm.pk}/").status_code == 404
    assert api(world.users["a1_operator"]).get(f"{LIST}{alarms['a2'].pk}/").status_code == 404


def test_acknowledge_then_close_and_the_state_machine_says_409(world, alarms, api):
    client = api(world.users["a_admin"])
    url = f"{LIST}{alarms['a1'].pk}"
    response = client.post(f"{url}/acknowledge/", {"note": "driver called"}, format="json")
    assert response.status_code == 200
    assert (response.json()["status"], response.json()["acknowledged_by"]) == (
        "acknowledged",
        "a_admin",
    )
    again = client.post(f"{url}/acknowledge/", {}, format="json")
    assert again.status_code == 409 and again.json()["code"] == "invalid_transition"
    closed = client.post(f"{url}/close/", {"note": "car found"}, format="json")
    assert closed.status_code == 200
    assert closed.json()["note"] == "driver called\ncar found"
    assert client.post(f"{url}/close/", {}, format="json").status_code == 409
    assert client.post(f"{url}/acknowledge/", {}, format="json").status_code == 409
    # Notes still go into the history of a closed alarm; an empty one is refused.
    noted = client.post(f"{url}/note/", {"note": "owner paid"}, format="json")
    assert [e["action"] for e in noted.json()["events"]] == [
        "raised",
        "acknowledged",
        "closed",
        "note",
    ]
    assert client.post(f"{url}/note/", {"note": " "}, format="json").status_code == 400


def test_an_open_alarm_may_be_closed_directly(world, alarms, api):
    client = api(world.users["b_admin"])
    response = client.post(f"{LIST}{alarms['b1'].pk}/close/", {}, format="json")
    assert response.status_code == 200
    alarm = Alarm.objects.get(pk=alarms["b1"].pk)
    assert (alarm.status, alarm.closed_by_id, alarm.acknowledged_at) == (
        "closed",
        world.users["b_admin"].pk,
        None,
    )


def test_handling_needs_the_right_and_a_visible_alarm(world, alarms, api):
    operator = api(world.users["a1_operator"])  # may view, may not handle
    for action in ("acknowledge", "close", "note"):
        response = operator.post(f"{LIST}{alarms['a1'].pk}/{action}/", {"note": "x"})
        assert response.status_code == 403
    assert Alarm.objects.get(pk=alarms["a1"].pk).status == "open"
    b_admin = api(world.users["b_admin"])
    assert b_admin.post(f"{LIST}{alarms['a1'].pk}/close/", {}).status_code == 404
    assert b_admin.post(f"{LIST}999999/close/", {}).status_code == 404
    assert Alarm.objects.get(pk=alarms["a1"].pk).status == "open"


def test_a_shared_vehicles_alarm_can_be_read_by_the_share(world, alarms, api):
    objects_share(objects=[world.vehicles["a1"]], username="b_admin", by=world.users["a_admin"])
    client = api(world.users["b_admin"])
    assert alarms["a1"].pk in ids(client.get(LIST))
    assert client.get(f"{LIST}{alarms['a1'].pk}/").status_code == 200


def test_the_list_costs_the_same_number_of_queries_for_3_or_30_alarms(world, alarms, api):
    client = api(world.users["a_admin"])

    def count() -> int:
        with CaptureQueriesContext(connection) as ctx:
            assert client.get(LIST).status_code == 200
        return len(ctx.captured_queries)

    count()  # the token's authentication is kept after the first request
    before = count()
    for i in range(27):
        raise_alarm(world.vehicles["a2"], "overspeed", at=T0 + dt.timedelta(hours=2 + i))
        lifecycle.alarms_auto_close(
            vehicle_id=world.vehicles["a2"].pk,
            kind="overspeed",
            at=T0 + dt.timedelta(hours=2 + i, minutes=5),
        )
    assert count() == before


# --- Alarm settings ------------------------------------------------------------------------------
SETTINGS = "/api/v1/alarm-settings/"


@pytest.fixture
def overrides(world, alarms):
    out = {}
    for key in ("a", "a1", "b"):
        out[key] = alarm_setting_upsert(
            kind="overspeed", customer=world.customers[key], params={"limit_kmh": 100}
        )
    out["vehicle_a1"] = alarm_setting_upsert(
        kind="overspeed", vehicle=world.vehicles["a1"], level=3, params={"limit_kmh": 80}
    )
    return out


def test_settings_are_listed_within_the_subtree(world, overrides, api):
    rows = api(world.users["a_admin"]).get(SETTINGS).json()["results"]
    assert {r["id"] for r in rows} == {overrides[k].pk for k in ("a", "a1", "vehicle_a1")}
    row = next(r for r in rows if r["vehicle"])
    assert (row["plate"], row["level"], row["params"]) == (
        world.vehicles["a1"].plate,
        3,
        {"limit_kmh": 80},
    )
    b_rows = api(world.users["b_admin"]).get(SETTINGS, {"kind": "overspeed"}).json()["results"]
    assert [r["id"] for r in b_rows] == [overrides["b"].pk]


def test_put_sets_an_override_and_put_again_replaces_it(world, overrides, api):
    client = api(world.users["a_admin"])
    body = {"kind": "parking_overtime", "customer": world.customers["a2"].pk, "enabled": False}
    response = client.put(SETTINGS, body, format="json")
    assert response.status_code == 200, response.content
    assert (response.json()["enabled"], response.json()["customer_name"]) == (False, "Branch A2")
    body = {
        "kind": "overspeed",
        "vehicle": world.vehicles["a1"].pk,
        "params": {"limit_kmh": 90, "min_duration_s": 30},
    }
    response = client.put(SETTINGS, body, format="json")
    assert response.status_code == 200
    setting = AlarmSetting.objects.get(pk=overrides["vehicle_a1"].pk)
    assert (setting.level, setting.params) == (None, {"limit_kmh": 90, "min_duration_s": 30})


def test_put_refuses_bad_input_foreign_targets_and_read_only_shares(world, overrides, api):
    client = api(world.users["a_admin"])
    a2 = world.customers["a2"].pk
    bad = [
        {"kind": "overspeed", "customer": a2, "params": {"limit": 90}},
        {"kind": "overspeed", "customer": a2, "params": {"limit_kmh": "fast"}},
        {"kind": "overspeed", "customer": a2, "vehicle": world.vehicles["a2"].pk},
        {"kind": "overspeed"},
        {"kind": "teleport", "customer": a2},
        {"kind": "overspeed", "customer": a2, "level": 7},
    ]
    for body in bad:
        assert client.put(SETTINGS, body, format="json").status_code == 400, body
    foreign = {"kind": "overspeed", "customer": world.customers["b1"].pk}
    assert client.put(SETTINGS, foreign, format="json").status_code == 404
    objects_share(objects=[world.vehicles["a1"]], username="b_admin", by=world.users["a_admin"])
    shared = {"kind": "overspeed", "vehicle": world.vehicles["a1"].pk, "enabled": False}
    assert api(world.users["b_admin"]).put(SETTINGS, shared, format="json").status_code == 403
    # The operator has no settings rights at all.
    assert api(world.users["a1_operator"]).get(SETTINGS).status_code == 403
    assert AlarmSetting.objects.count() == 4


def test_the_openapi_schema_documents_the_alarm_endpoints(world, api):
    schema = api(world.users["a_admin"]).get("/api/v1/schema/?format=json").json()
    paths = schema["paths"]
    assert {"get"} <= set(paths["/api/v1/alarms/"])
    assert {"409", "403", "404"} <= set(
        paths["/api/v1/alarms/{id}/acknowledge/"]["post"]["responses"]
    )
    assert {"get", "put"} <= set(paths["/api/v1/alarm-settings/"])
    params = {p["name"] for p in paths["/api/v1/alarms/"]["get"]["parameters"]}
    assert {"kind", "status", "level", "vehicle", "plate", "since", "until"} <= params
