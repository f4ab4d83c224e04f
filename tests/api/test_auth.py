"""Token login, the caller's profile, the schema and its docs page."""

from __future__ import annotations

import pytest
from django.core.cache import cache
from django.core.management import call_command
from rest_framework.test import APIClient
from rest_framework.throttling import ScopedRateThrottle

from accounts.models import AuthEvent
from accounts.services import customer_update
from tests.api import API

pytestmark = pytest.mark.django_db


def test_token_login_returns_a_working_token_and_records_the_login(world):
    client = APIClient()
    response = client.post(
        f"{API}/auth/token/",
        {"username": "a1_operator", "password": "pw-123456"},
        HTTP_USER_AGENT="carloan-app/1.0",
    )

    assert response.status_code == 200
    token = response.json()["token"]
    event = AuthEvent.objects.get(kind=AuthEvent.Kind.LOGIN)
    assert (event.user, event.customer, event.user_agent) == (
        world.users["a1_operator"],
        world.customers["a1"],
        "carloan-app/1.0",
    )

    client.credentials(HTTP_AUTHORIZATION=f"Token {token}")
    me = client.get(f"{API}/users/me/")
    assert me.status_code == 200
    assert me.json()["username"] == "a1_operator"


def test_same_token_on_the_next_login(world):
    client = APIClient()
    first = client.post(f"{API}/auth/token/", {"username": "a_admin", "password": "pw-123456"})
    second = client.post(f"{API}/auth/token/", {"username": "a_admin", "password": "pw-123456"})
    assert first.json()["token"] == second.json()["token"]


def test_bad_password_is_400_and_recorded_as_a_failed_login(world):
    response = APIClient().post(f"{API}/auth/token/", {"username": "a_admin", "password": "wrong"})

    assert response.status_code == 400
    assert "token" not in response.json()
    event = AuthEvent.objects.get()
    assert event.kind == AuthEvent.Kind.LOGIN_FAILED
    assert (event.username, event.user) == ("a_admin", world.users["a_admin"])


def test_missing_password_is_400(world):
    response = APIClient().post(f"{API}/auth/token/", {"username": "a_admin"})
    assert response.status_code == 400
    assert "password" in response.json()


def test_users_of_a_deactivated_customer_cannot_get_a_token(world):
    customer_update(customer=world.customers["a"], is_active=False)
    response = APIClient().post(
        f"{API}/auth/token/", {"username": "a_admin", "password": "pw-123456"}
    )
    assert response.status_code == 400


def test_tokens_stop_working_when_the_customer_or_an_ancestor_is_deactivated(world, api):
    a_admin, a1_operator = api(world.users["a_admin"]), api(world.users["a1_operator"])
    assert a_admin.get(f"{API}/vehicles/").status_code == 200
    assert a1_operator.get(f"{API}/vehicles/").status_code == 200

    customer_update(customer=world.customers["a"], is_active=False)

    assert a_admin.get(f"{API}/vehicles/").status_code == 401
    assert a1_operator.get(f"{API}/vehicles/").status_code == 401
    assert api(world.users["b_admin"]).get(f"{API}/vehicles/").status_code == 200


def test_login_is_throttled(world, monkeypatch):
    monkeypatch.setattr(ScopedRateThrottle, "THROTTLE_RATES", {"login": "2/min"})
    cache.clear()
    client = APIClient()
    statuses = [
        client.post(f"{API}/auth/token/", {"username": "a_admin", "password": "wrong"}).status_code
        for _ in range(3)
    ]
    cache.clear()
    assert statuses == [400, 400, 429]


def test_me_describes_the_caller(world, api):
    user = world.users["a1_operator"]
    user.first_name, user.last_name, user.phone = "Li", "Lei", "13800138000"
    user.save(update_fields=["first_name", "last_name", "phone"])

    body = api(user).get(f"{API}/users/me/").json()

    a1 = world.customers["a1"]
    assert body["id"] == user.pk
    assert body["name"] == "Li Lei"
    assert (body["kind"], body["phone"]) == ("staff", "13800138000")
    assert body["customer"] == {"id": a1.pk, "code": "branch-a1", "name": "Branch A1"}
    assert body["role"] == "Operator"
    assert body["permissions"] == sorted(user.get_all_permissions())
    assert "vehicles.add_vehicle" in body["permissions"]
    assert "vehicles.add_customer" not in body["permissions"]
    assert body["branding"] == {"title": "carloan", "logo_url": None}


def test_me_shows_the_nearest_brand_title(world, api):
    customer_update(customer=world.customers["a"], brand_title="Lender A Risk")
    body = api(world.users["a1_installer"]).get(f"{API}/users/me/").json()
    assert body["branding"]["title"] == "Lender A Risk"
    assert body["kind"] == "installer"


def test_me_needs_no_model_permission(world, api):
    from tests.factories import UserFactory

    no_role = UserFactory(username="no_role", customer=world.customers["a1"], role=None)
    body = api(no_role).get(f"{API}/users/me/").json()
    assert (body["username"], body["role"], body["permissions"]) == ("no_role", None, [])


def test_schema_is_served(db):
    response = APIClient().get(f"{API}/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json")
    assert response.status_code == 200
    paths = response.json()["paths"]
    for path in (
        "auth/token/",
        "users/me/",
        "customers/",
        "vehicles/{id}/",
        "devices/move/",
        "bindings/{id}/unbind/",
        "recycle-bin/{kind}/{id}/restore/",
    ):
        assert f"/api/v1/{path}" in paths


def test_docs_page_uses_the_vendored_swagger_ui(db):
    response = APIClient().get(f"{API}/docs/")
    assert response.status_code == 200
    html = response.content.decode()
    assert "/static/drf_spectacular_sidecar/swagger-ui-dist/swagger-ui-bundle.js" in html
    assert "cdn" not in html.lower()
    assert "/api/v1/schema/" in html


def test_schema_generates_without_warnings(tmp_path):
    # The contract for every endpoint added later too: no guessed types, no name clashes.
    call_command(
        "spectacular", "--validate", "--fail-on-warn", "--file", str(tmp_path / "schema.yml")
    )
