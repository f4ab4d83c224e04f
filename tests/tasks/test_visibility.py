"""Who sees which work orders: a field worker only their own, the back office its subtree,
another tenant nothing (404, never 403) — in the selectors, the REST API, the mobile API, the
admin and the pages."""

from __future__ import annotations

import pytest
from django.test import Client

from tasks.selectors import work_orders_visible_to
from tests.tasks.conftest import make_order


@pytest.fixture
def orders(field):
    return {
        "a1_mine": make_order(field, assignee="a1_installer"),
        "a1_other": make_order(field, assignee="a1_installer2"),
        "a1_open": make_order(field),
        "a2": make_order(field, vehicle_key="a2", assignee="a2_installer"),
        "b1": make_order(field, vehicle_key="b1", by="b_admin", assignee="b_installer"),
    }


EXPECTED = {
    "platform_admin": {"a1_mine", "a1_other", "a1_open", "a2", "b1"},
    "a_admin": {"a1_mine", "a1_other", "a1_open", "a2"},
    "a1_dispatcher": {"a1_mine", "a1_other", "a1_open"},
    "b_admin": {"b1"},
    "a1_installer": {"a1_mine"},
    "a1_installer2": {"a1_other"},
    "a1_salesman": set(),
}


def _keys(orders, ids):
    return {k for k, o in orders.items() if o.pk in set(ids)}


@pytest.mark.parametrize("persona", list(EXPECTED))
def test_the_selector_scopes_by_subtree_and_workers_to_their_own(field, orders, persona):
    ids = work_orders_visible_to(field[persona]).values_list("pk", flat=True)
    assert _keys(orders, ids) == EXPECTED[persona]


@pytest.mark.parametrize("persona", ["a_admin", "a1_dispatcher", "b_admin", "platform_admin"])
def test_the_back_office_api_lists_and_reads_only_its_subtree(field, orders, api, persona):
    client = api(field[persona])
    body = client.get("/api/v1/tasks/?page_size=100").json()
    assert _keys(orders, [r["id"] for r in body["results"]]) == EXPECTED[persona]
    for key, order in orders.items():
        answer = client.get(f"/api/v1/tasks/{order.pk}/")
        assert answer.status_code == (200 if key in EXPECTED[persona] else 404), key


def test_a_worker_sees_only_their_own_orders_on_the_phone(field, orders, api):
    client = api(field["a1_installer"])
    listed = client.get("/api/v1/mobile/orders/").json()["results"]
    assert [r["id"] for r in listed] == [orders["a1_mine"].pk]
    assert client.get(f"/api/v1/mobile/orders/{orders['a1_mine'].pk}/").status_code == 200
    # A colleague's order of the same branch, an unassigned one and another tenant's: 404.
    for key in ("a1_other", "a1_open", "b1"):
        assert client.get(f"/api/v1/mobile/orders/{orders[key].pk}/").status_code == 404
        answer = client.post(f"/api/v1/mobile/orders/{orders[key].pk}/accept/", {}, format="json")
        assert answer.status_code == 404
    orders["a1_other"].refresh_from_db()
    assert orders["a1_other"].status == "assigned"


def test_workers_without_the_mobile_permission_get_403(field, orders, api):
    client = api(field["a1_operator"])  # back office, no tasks.work_workorder
    assert client.get("/api/v1/mobile/orders/").status_code == 403
    assert client.get("/api/v1/tasks/").status_code == 403  # nor tasks.view_workorder
    assert api().get("/api/v1/mobile/orders/").status_code == 401


def test_another_tenant_cannot_act_on_an_order_by_id(field, orders, api):
    client = api(field["b_admin"])
    order = orders["a1_open"]
    for path, body in [
        ("assign/", {"assignee": field["b_installer"].pk}),
        ("cancel/", {"reason": "x"}),
        ("verify/", {}),
    ]:
        assert (
            client.post(f"/api/v1/tasks/{order.pk}/{path}", body, format="json").status_code == 404
        )
    assert (
        client.patch(f"/api/v1/tasks/{order.pk}/", {"address": "x"}, format="json").status_code
        == 404
    )
    order.refresh_from_db()
    assert (order.status, order.address) == ("created", "")


def test_the_back_office_cannot_reference_another_tenants_vehicle_or_worker(field, api):
    client = api(field["a_admin"])
    answer = client.post(
        "/api/v1/tasks/",
        {"kind": "install", "vehicle": field.world.vehicles["b1"].pk},
        format="json",
    )
    assert answer.status_code == 400 and "vehicle" in answer.json()
    answer = client.post(
        "/api/v1/tasks/",
        {
            "kind": "install",
            "vehicle": field.world.vehicles["a1"].pk,
            "assignee": field["b_installer"].pk,
        },
        format="json",
    )
    assert answer.status_code == 400 and "assignee" in answer.json()


def test_the_admin_changelist_and_change_page_are_scoped(field, orders):
    client = Client()
    client.force_login(field["b_admin"])
    page = client.get("/admin/tasks/workorder/")
    assert page.status_code == 200
    shown = set(page.context["cl"].result_list.values_list("pk", flat=True))
    assert _keys(orders, shown) == {"b1"}
    assert client.get(f"/admin/tasks/workorder/{orders['a1_open'].pk}/change/").status_code == 404


def test_the_board_and_the_map_show_only_the_subtree(field, orders):
    client = Client()
    client.force_login(field["b_admin"])
    board = client.get("/tasks/")
    cards = [c["order"].pk for col in board.context["columns"] for c in col["cards"]]
    assert _keys(orders, cards) == {"b1"}
    data = client.get("/tasks/map.json").json()
    assert _keys(orders, [o["id"] for o in data["orders"]]) == {"b1"}
    assert [w["username"] for w in data["workers"]] == []  # nobody reported a position
    # Choosing another tenant's customer shows nothing of it.
    board = client.get(f"/tasks/?customer={field.world.customers['a1'].pk}")
    cards = [c["order"].pk for col in board.context["columns"] for c in col["cards"]]
    assert _keys(orders, cards) == {"b1"}


def test_photos_are_served_only_to_who_may_see_the_order(field, orders, api, settings, tmp_path):
    from tests.tasks.test_photos import jpeg_bytes, upload

    settings.MEDIA_ROOT = tmp_path
    order = orders["a1_mine"]
    installer = field["a1_installer"]
    from tasks import services

    services.work_order_accept(order=order, by=installer)
    record = services.work_order_photo_add(order=order, by=installer, upload=upload(jpeg_bytes()))
    url = f"/api/v1/tasks/records/{record.pk}/photo/"
    assert api(installer).get(url).status_code == 200
    got = api(field["a_admin"]).get(url)
    assert got.status_code == 200 and got["Content-Type"] == "image/jpeg"
    assert b"".join(got.streaming_content) == jpeg_bytes()
    for persona in ("b_admin", "a1_installer2"):
        assert api(field[persona]).get(url).status_code in (403, 404)
    assert api(field["b_admin"]).get(url).status_code == 404
