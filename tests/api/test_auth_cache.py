"""API token authentication kept per process (accounts/auth_cache.py): the repeat request skips the
token, customer and permission queries, and every change that matters takes effect on the very
next request."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import Permission
from django.core.cache import cache
from django.db import connection
from django.test.utils import CaptureQueriesContext
from rest_framework.authtoken.models import Token

from accounts import auth_cache
from tests.api import API

pytestmark = pytest.mark.django_db


def queries_for(client, url: str) -> tuple[int, list[str]]:
    with CaptureQueriesContext(connection) as captured:
        status = client.get(url).status_code
    return status, [q["sql"] for q in captured.captured_queries]


def test_the_repeat_request_skips_the_token_customer_and_permission_queries(world, api):
    client = api(world.users["a1_operator"])
    status, first = queries_for(client, f"{API}/vehicles/")
    assert status == 200
    assert any("authtoken_token" in sql for sql in first)
    assert any("user_permissions" in sql for sql in first)

    status, second = queries_for(client, f"{API}/vehicles/")
    assert status == 200
    auth = ('FROM "authtoken_token"', "user_permissions", "auth_group", 'FROM "accounts_customer"')
    assert not any(table in sql for sql in second for table in auth), second
    assert len(first) - len(second) >= 4


def test_losing_a_permission_through_the_role_is_immediate(world, api):
    client = api(world.users["a1_operator"])
    assert client.get(f"{API}/vehicles/").status_code == 200

    world.users["a1_operator"].role.permissions.remove(
        Permission.objects.get(content_type__app_label="vehicles", codename="view_vehicle")
    )
    assert client.get(f"{API}/vehicles/").status_code == 403


def test_a_deactivated_user_or_a_deleted_token_is_refused_at_once(world, api):
    operator, admin = api(world.users["a1_operator"]), api(world.users["a_admin"])
    assert operator.get(f"{API}/vehicles/").status_code == 200
    assert admin.get(f"{API}/vehicles/").status_code == 200

    user = world.users["a1_operator"]
    user.is_active = False
    user.save()
    assert operator.get(f"{API}/vehicles/").status_code == 401

    Token.objects.filter(user=world.users["a_admin"]).get().delete()
    assert admin.get(f"{API}/vehicles/").status_code == 401


def test_a_change_made_by_another_process_is_seen_through_the_shared_generation(world, api):
    client = api(world.users["a1_operator"])
    assert client.get(f"{API}/vehicles/").status_code == 200
    # Another process deactivated the user and bumped the shared generation; this process's
    # entry must not be reused.
    type(world.users["a1_operator"]).objects.filter(pk=world.users["a1_operator"].pk).update(
        is_active=False
    )
    cache.incr(auth_cache.GENERATION_KEY)
    assert client.get(f"{API}/vehicles/").status_code == 401


def test_switched_off_every_request_authenticates_afresh(world, api, settings):
    settings.API_AUTH_CACHE_SECONDS = 0
    client = api(world.users["a1_operator"])
    assert client.get(f"{API}/vehicles/").status_code == 200
    # A change that bypasses the models (no signal) is seen at once when the cache is off.
    type(world.users["a1_operator"]).objects.filter(pk=world.users["a1_operator"].pk).update(
        is_active=False
    )
    assert client.get(f"{API}/vehicles/").status_code == 401


def test_a_wrong_token_is_401_and_remembered_nowhere(world, api):
    client = api()
    client.credentials(HTTP_AUTHORIZATION="Token " + "0" * 40)
    assert client.get(f"{API}/vehicles/").status_code == 401
    assert auth_cache.get("0" * 40) is None


def test_each_request_gets_its_own_copy_of_the_user(world, api):
    client = api(world.users["a1_operator"])
    client.get(f"{API}/vehicles/")
    key = Token.objects.get(user=world.users["a1_operator"]).key
    first, _token = auth_cache.get(key)
    second, _token = auth_cache.get(key)
    assert first is not second and first.pk == second.pk
    first.first_name = "changed in one request"
    assert second.first_name != "changed in one request"
    assert second.has_perm("vehicles.view_vehicle")


def test_a_change_that_bypasses_the_models_is_seen_after_the_time_to_live(
    world, api, settings, monkeypatch
):
    settings.API_AUTH_CACHE_SECONDS = 10
    client = api(world.users["a1_operator"])
    assert client.get(f"{API}/vehicles/").status_code == 200
    type(world.users["a1_operator"]).objects.filter(pk=world.users["a1_operator"].pk).update(
        is_active=False
    )
    assert client.get(f"{API}/vehicles/").status_code == 200  # within the 10 s: still known

    now = auth_cache.monotonic()
    monkeypatch.setattr(auth_cache, "monotonic", lambda: now + 10.5)
    assert client.get(f"{API}/vehicles/").status_code == 401
