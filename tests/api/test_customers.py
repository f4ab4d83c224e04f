"""Customers: the caller's subtree, created and edited through the account services."""

from __future__ import annotations

import pytest

from accounts.models import Customer
from tests.api import API, result_ids

pytestmark = pytest.mark.django_db


def test_list_shows_the_tree_fields(world, api):
    body = api(world.users["a_admin"]).get(f"{API}/customers/").json()
    rows = {row["code"]: row for row in body["results"]}
    assert list(rows) == ["lender-a", "branch-a1", "branch-a2"]  # tree order
    assert rows["branch-a1"] | {"id": 0} == {
        "id": 0,
        "code": "branch-a1",
        "name": "Branch A1",
        "parent": world.customers["a"].pk,
        "level": 2,
        "contact_name": "",
        "contact_phone": "",
        "brand_title": "",
        "is_active": True,
    }


def test_filters(world, api):
    client = api(world.users["a_admin"])
    a = world.customers["a"]
    assert result_ids(client.get(f"{API}/customers/", {"code": "branch-a2"})) == {
        world.customers["a2"].pk
    }
    assert result_ids(client.get(f"{API}/customers/", {"parent": a.pk})) == {
        world.customers["a1"].pk,
        world.customers["a2"].pk,
    }
    assert result_ids(client.get(f"{API}/customers/", {"code": "branch-b1"})) == set()
    assert result_ids(client.get(f"{API}/customers/", {"parent": world.customers["b"].pk})) == set()


def test_create_a_branch_under_a_visible_parent(world, api):
    response = api(world.users["a_admin"]).post(
        f"{API}/customers/",
        {
            "code": "branch-a3",
            "name": "Branch A3",
            "parent": world.customers["a"].pk,
            "contact_phone": "13800138000",
        },
        format="json",
    )
    assert response.status_code == 201, response.content
    created = Customer.objects.get(code="branch-a3")
    assert created.parent_id == world.customers["a"].pk
    assert response.json()["level"] == 2
    assert created.pk in result_ids(api(world.users["a_admin"]).get(f"{API}/customers/"))
    assert created.pk not in result_ids(api(world.users["b_admin"]).get(f"{API}/customers/"))


def test_create_under_an_invisible_parent_is_400(world, api):
    response = api(world.users["a_admin"]).post(
        f"{API}/customers/",
        {"code": "sneaky", "name": "Sneaky", "parent": world.customers["b"].pk},
        format="json",
    )
    assert response.status_code == 400
    assert "parent" in response.json()
    assert not Customer.objects.filter(code="sneaky").exists()


def test_only_a_platform_admin_creates_a_top_level_customer(world, api):
    payload = {"code": "lender-c", "name": "Lender C"}
    refused = api(world.users["a_admin"]).post(f"{API}/customers/", payload, format="json")
    assert refused.status_code == 400
    assert not Customer.objects.filter(code="lender-c").exists()

    allowed = api(world.users["platform_admin"]).post(f"{API}/customers/", payload, format="json")
    assert allowed.status_code == 201
    assert Customer.objects.get(code="lender-c").parent is None


def test_create_needs_the_add_permission(world, api):
    response = api(world.users["a1_operator"]).post(
        f"{API}/customers/",
        {"code": "x", "name": "X", "parent": world.customers["a1"].pk},
        format="json",
    )
    assert response.status_code == 403


def test_patch_edits_through_the_service(world, api):
    a2 = world.customers["a2"]
    response = api(world.users["a_admin"]).patch(
        f"{API}/customers/{a2.pk}/",
        {"brand_title": "A2 Motors", "contact_name": "Wang"},
        format="json",
    )
    assert response.status_code == 200, response.content
    a2.refresh_from_db()
    assert (a2.brand_title, a2.contact_name) == ("A2 Motors", "Wang")


def test_a_customer_cannot_move_under_its_own_subtree(world, api):
    a = world.customers["a"]
    response = api(world.users["platform_admin"]).patch(
        f"{API}/customers/{a.pk}/", {"parent": world.customers["a1"].pk}, format="json"
    )
    assert response.status_code == 400
    a.refresh_from_db()
    assert a.parent_id == world.customers["platform"].pk


def test_patch_of_another_tenants_customer_is_404(world, api):
    b1 = world.customers["b1"]
    response = api(world.users["a_admin"]).patch(
        f"{API}/customers/{b1.pk}/", {"name": "Mine now"}, format="json"
    )
    assert response.status_code == 404
    b1.refresh_from_db()
    assert b1.name == "Branch B1"
