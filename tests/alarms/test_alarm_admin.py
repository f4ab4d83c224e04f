"""The alarm admin: each persona's list is its subtree, another tenant's alarm is a 404, the
detail page shows the history and a map link, acknowledge / close ask for a note and need
`alarms.handle_alarm`, the Excel export holds the selected visible rows."""

from __future__ import annotations

import datetime as dt
import io

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from openpyxl import load_workbook

from alarms.models import Alarm
from alarms.services import lifecycle
from tests.alarms.test_alarm_visibility import T0, make_alarms, raise_alarm
from tests.conftest import PERSONAS

STAFF = [p for p in PERSONAS if p != "a1_installer"]
LIST = "admin:alarms_alarm_changelist"


@pytest.fixture
def alarms(world):
    return make_alarms(world)


def change_url(alarm) -> str:
    return reverse("admin:alarms_alarm_change", args=[alarm.pk])


def listed(client, **params) -> list[int]:
    response = client.get(reverse(LIST), params)
    assert response.status_code == 200
    return [a.pk for a in response.context["cl"].result_list]


@pytest.mark.parametrize("persona", STAFF)
def test_the_changelist_shows_exactly_the_subtree(world, alarms, client, persona):
    client.force_login(world.users[persona])
    assert set(listed(client)) == {alarms[k].pk for k in world.visible_keys(persona)}


@pytest.mark.parametrize(
    ("persona", "target"), [("a_admin", "b1"), ("b_admin", "a"), ("a1_operator", "a2")]
)
def test_another_tenants_alarm_answers_404(world, alarms, client, persona, target):
    client.force_login(world.users[persona])
    assert client.get(change_url(alarms[target])).status_code == 404


def test_the_list_shows_plate_kind_status_and_handler(world, alarms, client):
    lifecycle.alarm_close(alarm=alarms["a1"], by=world.users["a_admin"], note="checked")
    client.force_login(world.users["a_admin"])
    page = client.get(reverse(LIST)).content.decode()
    assert world.vehicles["a1"].plate in page
    assert "SOS / anti-robbery" in page
    assert "closed" in page and "a_admin" in page


def test_filters_and_search(world, alarms, client):
    overspeed = raise_alarm(world.vehicles["a2"], "overspeed", at=T0 + dt.timedelta(hours=1))
    client.force_login(world.users["a_admin"])
    assert listed(client, category="platform") == [overspeed.pk]
    assert set(listed(client, category="device")) == {alarms[k].pk for k in ("a", "a1", "a2")}
    assert listed(client, kind="overspeed") == [overspeed.pk]
    assert listed(client, q=world.vehicles["a1"].plate) == [alarms["a1"].pk]
    assert listed(client, q=world.devices["a2"].identifier) == []  # device not on the alarm
    assert listed(client, customer__id__exact=world.customers["a1"].pk) == [alarms["a1"].pk]
    lifecycle.alarm_acknowledge(alarm=alarms["a"], by=world.users["a_admin"])
    assert listed(client, status__exact="acknowledged") == [alarms["a"].pk]


def test_the_detail_page_is_read_only_with_history_and_map_link(world, alarms, client):
    alarm = alarms["a1"]
    lifecycle.alarm_acknowledge(alarm=alarm, by=world.users["a_admin"], note="calling the owner")
    client.force_login(world.users["a1_operator"])
    response = client.get(change_url(alarm))
    assert response.status_code == 200
    page = response.content.decode()
    assert "calling the owner" in page  # the event history
    assert "openstreetmap.org/?mlat=34.26&amp;mlon=108.94" in page
    assert 'name="_save"' not in page  # nothing to save here


def post_action(client, action, alarms_, *, follow=False, **extra):
    data = {"action": action, "_selected_action": [a.pk for a in alarms_], **extra}
    return client.post(reverse(LIST), data, follow=follow)


def test_acknowledge_asks_for_a_note_then_records_it(world, alarms, client):
    client.force_login(world.users["a_admin"])
    first = post_action(client, "acknowledge", [alarms["a1"]])
    assert first.status_code == 200 and 'name="note"' in first.content.decode()
    assert Alarm.objects.get(pk=alarms["a1"].pk).status == "open"  # nothing done yet
    post_action(client, "acknowledge", [alarms["a1"]], apply="1", note="driver called back")
    alarm = Alarm.objects.get(pk=alarms["a1"].pk)
    assert (alarm.status, alarm.acknowledged_by_id) == ("acknowledged", world.users["a_admin"].pk)
    event = alarm.events.order_by("-id").first()
    assert (event.action, event.note) == ("acknowledged", "driver called back")


def test_close_handles_what_it_can_and_says_what_it_skipped(world, alarms, client):
    lifecycle.alarm_close(alarm=alarms["a2"], by=None)
    client.force_login(world.users["a_admin"])
    response = post_action(
        client, "close", [alarms["a1"], alarms["a2"]], apply="1", note="done", follow=True
    )
    text = response.content.decode()
    assert "1 alarm closed." in text and "1 was skipped" in text
    assert Alarm.objects.get(pk=alarms["a1"].pk).closed_by_id == world.users["a_admin"].pk


def test_without_handle_permission_there_is_no_acknowledge(world, alarms, client):
    client.force_login(world.users["a1_operator"])  # may view, may not handle
    response = client.get(reverse(LIST))
    assert "acknowledge" not in dict(response.context["action_form"].fields["action"].choices)
    post_action(client, "acknowledge", [alarms["a1"]], apply="1", note="sneaky")
    assert Alarm.objects.get(pk=alarms["a1"].pk).status == "open"


def test_actions_never_reach_another_tenants_alarm(world, alarms, client):
    client.force_login(world.users["b_admin"])
    post_action(client, "close", [alarms["a1"], alarms["b1"]], apply="1", note="x")
    assert Alarm.objects.get(pk=alarms["a1"].pk).status == "open"
    assert Alarm.objects.get(pk=alarms["b1"].pk).status == "closed"


def test_excel_export_holds_the_selected_visible_rows(world, alarms, client):
    client.force_login(world.users["a_admin"])
    response = post_action(client, "export_xlsx", [alarms["a1"], alarms["a2"], alarms["b1"]])
    assert response.status_code == 200
    sheet = load_workbook(io.BytesIO(response.content)).active
    rows = list(sheet.iter_rows(values_only=True))
    header, body = rows[0], rows[1:]
    plate = header.index("Plate")
    assert sorted(r[plate] for r in body) == sorted(world.vehicles[k].plate for k in ("a1", "a2"))
    assert {r[header.index("Kind")] for r in body} == {"SOS / anti-robbery"}


def test_the_changelist_costs_the_same_for_3_or_30_alarms(world, alarms, client):
    client.force_login(world.users["a_admin"])

    def count() -> int:
        with CaptureQueriesContext(connection) as ctx:
            assert client.get(reverse(LIST)).status_code == 200
        return len(ctx.captured_queries)

    before = count()
    for i in range(27):
        at = T0 + dt.timedelta(hours=2 + i)
        raise_alarm(world.vehicles["a2"], "overspeed", at=at, target=str(i))
    assert count() == before
