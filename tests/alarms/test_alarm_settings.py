"""Alarm setting parameters: each rule declares what may be overridden and within which range
(`alarms.rules.base.param`); unknown keys, wrong types and out-of-range values are refused with a
message that names the parameter and the allowed range, in the service, the API and the admin."""

from __future__ import annotations

import math

import pytest
from django.urls import reverse

from alarms import kinds
from alarms.models import AlarmSetting, RiskPoint
from alarms.rules import RULES, ParamError, param_specs, params_for
from alarms.rules.position import PROVINCE_CODES, RISK_POINT_KINDS
from alarms.services import places as svc
from carloan.errors import ApplicationError
from tests.alarms.test_places_api import grant_alarm_rights

SETTINGS = "/api/v1/alarm-settings/"


# --- The rules' schemas (pure) --------------------------------------------------------------------
@pytest.mark.parametrize(
    ("kind", "overrides", "problem"),
    [
        ("overspeed", {"top_speed": 90}, "unknown"),
        ("overspeed", {"limit_kmh": 0}, "range"),
        ("overspeed", {"limit_kmh": 1000}, "range"),
        ("overspeed", {"limit_kmh": math.nan}, "type"),
        ("overspeed", {"limit_kmh": math.inf}, "type"),
        ("overspeed", {"limit_kmh": True}, "type"),
        ("overspeed", {"limit_kmh": "90"}, "type"),
        ("overspeed", {"min_duration_s": 2.5}, "type"),
        ("overspeed", {"min_duration_s": -1}, "range"),
        ("area_stay", {"stay_minutes": 0}, "range"),
        ("area_enter", {"risk_point_kinds": ["casino"]}, "choice"),
        ("area_enter", {"risk_point_kinds": "second_pledge"}, "type"),
        ("province_leave", {"home_province": "99"}, "choice"),
        ("province_leave", {"home_province": 61}, "type"),
        ("parking_overtime", {"limit_hours": 0}, "range"),
        ("separation", {"distance_m": 10}, "range"),
        ("separation", {"end_ratio": 1.5}, "range"),
        ("usual_area_absent", {"days": 0}, "range"),
        ("fatigue", {"max_drive_hours": 30}, "range"),
        ("offline", {"realtime_minutes": 0}, "range"),
        ("offline", {"deep_sleep_grace_hours": 100}, "range"),
        ("sos", {"anything": 1}, "no_params"),
        ("armed_move", {"radius_m": 300}, "no_params"),
    ],
)
def test_params_for_refuses_what_the_rule_cannot_take(kind, overrides, problem):
    with pytest.raises(ParamError) as exc:
        params_for(kind, overrides)
    assert exc.value.problem == problem
    assert exc.value.kind == kind


def test_params_for_accepts_values_at_the_edges_and_normalises_them():
    p = params_for("overspeed", {"limit_kmh": 10, "min_duration_s": 3600.0})
    assert (p.limit_kmh, p.min_duration_s) == (10.0, 3600)
    assert isinstance(p.limit_kmh, float) and isinstance(p.min_duration_s, int)
    p = params_for("area_stay", {"risk_point_kinds": ["second_pledge", "second_pledge"]})
    assert p.risk_point_kinds == ("second_pledge",)
    assert params_for("province_leave", {"home_province": " 61 "}).home_province == "61"
    assert params_for("province_leave", {"home_province": ""}).home_province == ""


def test_every_default_is_within_its_own_range():
    for kind, rule in RULES.items():
        for spec in param_specs(kind):
            default = spec["default"]
            if spec["low"] is not None:
                assert spec["low"] <= default <= spec["high"], (kind, spec)
        params_for(kind, {s["name"]: s["default"] for s in param_specs(kind)})  # round trip
        assert rule.kind == kind


def test_the_rules_lists_match_the_models_and_the_province_data():
    from alarms.regions import get_index

    assert set(RISK_POINT_KINDS) == set(RiskPoint.Kind.values)
    assert set(PROVINCE_CODES) == {p.code for p in get_index().provinces}


def test_param_specs_describe_each_parameter():
    specs = {s["name"]: s for s in param_specs("overspeed")}
    assert specs["limit_kmh"] == {
        "name": "limit_kmh",
        "default": 120.0,
        "type": "float",
        "low": 10,
        "high": 300,
        "choices": [],
        "unit": "km/h",
    }
    assert param_specs("sos") == []


# --- The service ----------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("params", "words"),
    [
        ({"limit_kmh": 1000}, ["limit_kmh", "between 10 and 300", "1000"]),
        ({"top_speed": 90}, ["top_speed", "limit_kmh, min_duration_s, hysteresis_kmh"]),
        ({"min_duration_s": 2.5}, ["min_duration_s", "a whole number"]),
    ],
)
def test_the_service_message_names_the_parameter_and_the_range(world, params, words):
    with pytest.raises(ApplicationError) as exc:
        svc.alarm_setting_upsert(kind="overspeed", customer=world.customers["a"], params=params)
    assert exc.value.code == "bad_params"
    for word in words:
        assert word in exc.value.message
    assert str(kinds.KINDS["overspeed"].label) in exc.value.message
    assert not AlarmSetting.objects.exists()


# --- The API --------------------------------------------------------------------------------------
def test_the_api_answers_400_with_the_reason_and_stores_nothing(world, api):
    grant_alarm_rights(world)
    client = api(world.users["a_admin"])
    a2 = world.customers["a2"].pk
    for params in (
        {"limit_kmh": 5},
        {"limit_kmh": 400},
        {"speed": 90},
        {"min_duration_s": 1.5},
    ):
        body = {"kind": "overspeed", "customer": a2, "params": params}
        response = client.put(SETTINGS, body, format="json")
        assert response.status_code == 400, (params, response.content)
        assert next(iter(params)) in response.content.decode()
    body = {"kind": "sos", "customer": a2, "params": {"limit_kmh": 90}}
    assert client.put(SETTINGS, body, format="json").status_code == 400
    assert not AlarmSetting.objects.exists()
    body = {"kind": "overspeed", "customer": a2, "params": {"limit_kmh": 300}}
    assert client.put(SETTINGS, body, format="json").status_code == 200


# --- The admin ------------------------------------------------------------------------------------
def _form(world, **extra):
    return {
        "kind": "overspeed",
        "customer": world.customers["a1"].pk,
        "vehicle": "",
        "enabled": "unknown",
        "level": "",
        **extra,
    }


def test_the_admin_form_shows_the_error_on_the_parameters_field(world, client):
    grant_alarm_rights(world)
    client.force_login(world.users["a_admin"])
    url = reverse("admin:alarms_alarmsetting_add")
    response = client.post(url, _form(world, params='{"limit_kmh": 500}'))
    assert response.status_code == 200  # the form again, not a redirect
    errors = response.context["adminform"].form.errors
    assert "between 10 and 300" in errors["params"][0]
    response = client.post(url, _form(world, params='{"limit": 90}'))
    assert "Unknown parameter" in response.context["adminform"].form.errors["params"][0]
    assert not AlarmSetting.objects.exists()
    response = client.post(url, _form(world, params='{"limit_kmh": 90}'))
    assert response.status_code == 302
    assert AlarmSetting.objects.get().params == {"limit_kmh": 90}


def test_the_admin_change_form_lists_the_accepted_parameters(world, client):
    grant_alarm_rights(world)
    setting = svc.alarm_setting_upsert(
        kind="overspeed", customer=world.customers["a1"], params={"limit_kmh": 90}
    )
    client.force_login(world.users["a_admin"])
    url = reverse("admin:alarms_alarmsetting_change", args=[setting.pk])
    page = client.get(url).content.decode()
    assert "limit_kmh 10–300 km/h" in page
    response = client.post(url, {"enabled": "unknown", "level": "", "params": '{"limit_kmh": 9}'})
    assert response.status_code == 200
    assert "limit_kmh" in response.context["adminform"].form.errors["params"][0]
    setting.refresh_from_db()
    assert setting.params == {"limit_kmh": 90}
