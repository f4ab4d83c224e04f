"""Dispatching (K4, issue 6 items 3 and 6): the nearest available installer suggested for an
order (API and admin), the board's filters, the map of open orders and field workers, and the
REST filters' answers to ids no database column can hold."""

from __future__ import annotations

import datetime as dt

import pytest
from django.test import Client

from tasks import services
from tasks.services import Here
from tests.tasks.conftest import NOW, XIAN, make_order

KM_NORTH = 1 / 111.195  # degrees of latitude per km (WGS-84 mean radius, as haversine_m uses)


def report(field, username, km_north, *, at=NOW, on_duty=None):
    services.worker_location_report(
        user=field[username],
        here=Here(XIAN[0] + km_north * KM_NORTH, XIAN[1]),
        at=at,
        on_duty=on_duty,
        now=at,
    )


@pytest.fixture
def scene(field, frozen):
    """An install order at Xi'an bell tower on Branch A1's car and workers around it."""
    order = make_order(field, lat=XIAN[0], lon=XIAN[1], address="Bell tower")
    report(field, "a1_installer2", 1.0)
    report(field, "a_installer", 5.0)  # Lender A's installer may work on its branches' cars
    report(field, "a1_installer", 0.5, on_duty=False)  # nearest, but off duty
    report(field, "a2_installer", 0.1)  # Branch A2's: not this customer's
    report(field, "b_installer", 0.0)  # another tenant
    report(field, "a1_salesman", 0.0)  # does not install
    return order


def test_the_api_suggests_the_nearest_available_installers_first(field, api, scene):
    answer = api(field["a1_dispatcher"]).get(f"/api/v1/tasks/{scene.pk}/suggestions/")
    assert answer.status_code == 200
    rows = answer.json()
    assert [r["user"]["username"] for r in rows] == ["a1_installer2", "a_installer"]
    assert [r["distance_m"] for r in rows] == pytest.approx([1000, 5000], abs=2)
    assert rows[0]["open_orders"] == 0


def test_a_stale_position_is_not_available(field, api, scene, frozen):
    later = NOW + dt.timedelta(minutes=31)  # TASKS_WORKER_FRESH_MINUTES: 30 by default
    frozen.move_to(later)
    report(field, "a_installer", 5.0, at=later)
    rows = api(field["a1_dispatcher"]).get(f"/api/v1/tasks/{scene.pk}/suggestions/").json()
    assert [r["user"]["username"] for r in rows] == ["a_installer"]


def test_without_a_position_the_least_busy_come_first(field, api, frozen):
    order = make_order(field)  # no location; the car has never reported either
    for _ in range(2):
        make_order(field, assignee="a1_installer2")
    report(field, "a1_installer2", 1.0)
    report(field, "a_installer", 9.0)
    rows = api(field["a1_dispatcher"]).get(f"/api/v1/tasks/{order.pk}/suggestions/").json()
    assert [(r["user"]["username"], r["distance_m"], r["open_orders"]) for r in rows] == [
        ("a_installer", None, 0),
        ("a1_installer2", None, 2),
    ]


def test_suggestions_are_for_dispatchers_of_the_order_only(field, api, scene):
    url = f"/api/v1/tasks/{scene.pk}/suggestions/"
    assert api(field["b_admin"]).get(url).status_code == 404
    assert api(field["a1_installer2"]).get(url).status_code in (403, 404)


def test_the_admin_change_page_lists_the_suggestions(field, scene):
    client = Client()
    client.force_login(field["a_admin"])
    page = client.get(f"/admin/tasks/workorder/{scene.pk}/change/").content.decode()
    assert "nearest available workers" in page.lower()
    suggested = page[page.index("<ol>") : page.index("</ol>")]
    assert suggested.index("(a1_installer2)") < suggested.index("(a_installer)")
    assert "1.0 km" in suggested and "5.0 km" in suggested
    assert "a1_installer)" not in suggested  # off duty
    # The assignee list holds only who this order may go to: no sibling branch, no salesman.
    choices = {str(u) for u in _assignee_choices(client, scene)}
    assert {"a1_installer", "a1_installer2", "a_installer"} <= choices
    assert not choices & {"a2_installer", "a1_salesman", "b_installer"}


def _assignee_choices(client, order):
    form = client.get(f"/admin/tasks/workorder/{order.pk}/change/").context["adminform"].form
    return form.fields["assignee"].queryset.values_list("username", flat=True)


def test_assigning_in_the_admin_goes_through_the_service(field, scene):
    client = Client()
    client.force_login(field["a_admin"])
    # The change form: picking the assignee assigns (created -> assigned) with its record.
    form = client.get(f"/admin/tasks/workorder/{scene.pk}/change/").context["adminform"].form
    data = {k: v for k, v in form.initial.items() if v is not None and k in form.fields}
    data.update(
        {
            "due_at_0": "",
            "due_at_1": "",
            "address": "Bell tower",
            "instructions": "",
            "lat": XIAN[0],
            "lon": XIAN[1],
            "assignee": field["a1_installer2"].pk,
            "records-TOTAL_FORMS": 0,
            "records-INITIAL_FORMS": 0,
            "devices-TOTAL_FORMS": 0,
            "devices-INITIAL_FORMS": 0,
        }
    )
    data.pop("due_at", None)
    answer = client.post(f"/admin/tasks/workorder/{scene.pk}/change/", data)
    assert answer.status_code == 302, answer.context["adminform"].form.errors
    scene.refresh_from_db()
    assert (scene.status, scene.assignee_id) == ("assigned", field["a1_installer2"].pk)
    assert scene.records.filter(status_to="assigned").count() == 1


# --- The board and the map ----------------------------------------------------------------------
@pytest.fixture
def board_orders(field):
    return {
        "install_mine": make_order(field, assignee="a1_installer"),
        "install_other": make_order(field, assignee="a1_installer2"),
        "visit": make_order(field, kind="covert_visit", assignee="a1_salesman"),
        "a2_install": make_order(field, vehicle_key="a2", assignee="a2_installer"),
    }


def _board(client, query=""):
    page = client.get("/tasks/" + query)
    assert page.status_code == 200
    return {c["order"].pk for col in page.context["columns"] for c in col["cards"]}


@pytest.mark.parametrize(
    "query,expected",
    [
        ("", {"install_mine", "install_other", "visit", "a2_install"}),
        ("?kind=covert_visit", {"visit"}),
        ("?assignee={a1_installer}", {"install_mine"}),
        ("?customer={a2}", {"a2_install"}),
        ("?status=assigned&kind=install", {"install_mine", "install_other", "a2_install"}),
        ("?status=done", set()),
        (
            "?kind=nonsense&status=nonsense&assignee=x",
            {"install_mine", "install_other", "visit", "a2_install"},
        ),
    ],
)
def test_the_board_filters_by_customer_kind_status_and_assignee(
    field, board_orders, query, expected
):
    client = Client()
    client.force_login(field["a_admin"])
    query = query.format(a1_installer=field["a1_installer"].pk, a2=field.world.customers["a2"].pk)
    assert _board(client, query) == {board_orders[k].pk for k in expected}


def test_the_map_shows_open_orders_at_their_place_and_workers_with_a_position(
    field, board_orders, frozen
):
    order = make_order(field, lat=XIAN[0], lon=XIAN[1])
    report(field, "a1_installer2", 1.0)
    client = Client()
    client.force_login(field["a_admin"])
    assert client.get("/tasks/map/").status_code == 200
    data = client.get("/tasks/map.json").json()
    placed = {o["id"]: (o["lat"], o["lon"]) for o in data["orders"]}
    assert placed[order.pk] == (XIAN[0], XIAN[1])
    assert set(placed) == {order.pk, *(o.pk for o in board_orders.values())}
    [worker] = data["workers"]
    assert (worker["username"], worker["fresh"], worker["on_duty"]) == ("a1_installer2", True, True)


# --- Filters on ids -----------------------------------------------------------------------------
@pytest.mark.parametrize("value", ["99999999999999999999999", "-1", "1e30", "1.5", "x"])
@pytest.mark.parametrize("name", ["vehicle", "assignee", "customer"])
def test_id_filters_refuse_what_no_id_can_be(field, api, name, value):
    answer = api(field["a_admin"]).get(f"/api/v1/tasks/?{name}={value}")
    assert answer.status_code == 400
    assert name in answer.json()


def test_an_order_made_in_the_admin_is_created_and_assigned_by_the_service(field):
    client = Client()
    client.force_login(field["a_admin"])
    vehicle = field.world.vehicles["a1"]
    answer = client.post(
        "/admin/tasks/workorder/add/",
        {
            "kind": "install",
            "vehicle": vehicle.pk,
            "due_at_0": "2026-11-24",
            "due_at_1": "10:00:00",
            "address": "Bell tower",
            "instructions": "Under the dashboard",
            "lat": XIAN[0],
            "lon": XIAN[1],
            "assignee": field["a1_installer"].pk,
            "records-TOTAL_FORMS": 0,
            "records-INITIAL_FORMS": 0,
            "devices-TOTAL_FORMS": 0,
            "devices-INITIAL_FORMS": 0,
        },
    )
    assert answer.status_code == 302, answer.context["adminform"].form.errors
    order = vehicle.work_orders.get()
    assert (order.status, order.assignee_id, order.customer_id) == (
        "assigned",
        field["a1_installer"].pk,
        vehicle.customer_id,
    )
    assert (order.location.y, order.location.x) == XIAN
    assert [r.status_to for r in order.records.all()] == ["created", "assigned"]
