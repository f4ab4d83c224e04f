"""Customer tree, roles, sharing, branding, login events and the operation log."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import Permission
from django.urls import reverse
from guardian.shortcuts import assign_perm

from accounts.models import AuthEvent, Customer, User
from accounts.selectors import branding_for, customers_visible_to, users_visible_to
from accounts.services import customer_create, customer_update, role_save, user_create
from carloan.errors import ApplicationError
from devices.selectors import devices_visible_to
from tests.factories import CustomerFactory, UserFactory
from vehicles.selectors import vehicles_visible_to
from vehicles.services import vehicle_update


def test_subtree_of_any_depth_is_visible_to_ancestors(world):
    deep = world.customers["a1"]
    for depth in range(5):
        deep = customer_create(parent=deep, name=f"level {depth}", code=f"deep-{depth}")
    visible = set(customers_visible_to(world.users["a_admin"]))
    assert deep in visible
    assert deep not in set(customers_visible_to(world.users["b_admin"]))
    assert world.customers["a"] not in set(customers_visible_to(world.users["a1_operator"]))


def test_users_without_customer_or_inactive_see_nothing(world):
    loner = UserFactory(customer=None)
    assert not vehicles_visible_to(loner).exists()
    user = world.users["a_admin"]
    user.is_active = False
    assert not vehicles_visible_to(user).exists()


def test_role_plus_own_grants(world):
    operator = world.users["a1_operator"]
    assert operator.has_perm("vehicles.change_vehicle")
    assert not operator.has_perm("accounts.add_user")
    operator.user_permissions.add(Permission.objects.get(codename="add_user"))
    operator = User.objects.get(pk=operator.pk)  # permission caches are per object
    assert operator.has_perm("accounts.add_user")


def test_nobody_grants_rights_they_do_not_hold(world):
    operator = world.users["a1_operator"]
    delete_customer = Permission.objects.filter(codename="delete_customer")
    with pytest.raises(ApplicationError, match="cannot grant"):
        role_save(
            by=operator, customer=world.customers["a1"], name="Sneaky", permissions=delete_customer
        )
    role = role_save(
        by=world.users["a_admin"],
        customer=world.customers["a1"],
        name="Fine",
        permissions=delete_customer,
    )
    assert list(role.permissions.all()) == list(delete_customer)


def test_roles_come_from_the_users_line_only(world):
    b_role = world.users["b_admin"].role
    with pytest.raises(ApplicationError):
        user_create(
            by=world.users["platform_admin"],
            username="x",
            password="pw-123456xyz",
            customer=world.customers["a1"],
            role=b_role,
        )
    # a lender's role serves its branches
    user = user_create(
        username="y",
        password="pw-123456xyz",
        customer=world.customers["a1"],
        role=world.users["a_admin"].role,
    )
    assert user.has_perm("vehicles.delete_vehicle")


def test_customer_cannot_move_under_its_own_subtree(world):
    with pytest.raises(ApplicationError):
        customer_update(customer=world.customers["a"], parent=world.customers["a1"])
    with pytest.raises(ApplicationError):
        customer_create(by=world.users["a_admin"], parent=None, name="Rogue root", code="rogue")


def test_single_objects_can_be_shared_outside_the_subtree(world):
    b_admin, vehicle = world.users["b_admin"], world.vehicles["a1"]
    assign_perm("vehicles.view_vehicle", b_admin, vehicle)
    visible = set(vehicles_visible_to(b_admin).values_list("pk", flat=True))
    assert visible == {world.vehicles["b"].pk, world.vehicles["b1"].pk, vehicle.pk}
    assert vehicle.pk not in set(
        vehicles_visible_to(b_admin, for_change=True).values_list("pk", flat=True)
    )
    assign_perm("devices.view_device", b_admin, world.devices["a2"])
    assert devices_visible_to(b_admin).filter(pk=world.devices["a2"].pk).exists()


def test_branding_is_inherited_down_the_tree(world, settings):
    settings.PLATFORM_TITLE = "carloan"
    a = world.customers["a"]
    a.brand_title = "Lender A Risk"
    a.save()
    assert branding_for(world.customers["a1"]).title == "Lender A Risk"
    assert branding_for(world.customers["b1"]).title == "carloan"
    a1 = world.customers["a1"]
    a1.brand_title = "A1 Desk"
    a1.save()
    assert branding_for(a1).title == "A1 Desk"
    assert branding_for(None).title == "carloan"


def test_branding_is_shown_in_the_admin_header(world, client):
    a = world.customers["a"]
    a.brand_title = "Lender A Risk"
    a.save()
    client.force_login(world.users["a1_operator"])
    page = client.get(reverse("admin:index")).content.decode()
    assert "Lender A Risk" in page
    client.force_login(world.users["b_admin"])
    assert "Lender A Risk" not in client.get(reverse("admin:index")).content.decode()


def test_login_logout_and_failures_are_logged(world, client):
    user = world.users["a1_operator"]
    history_rows = user.history.count()
    assert not client.login(username=user.username, password="wrong")
    assert client.login(username=user.username, password="pw-123456")
    client.logout()
    kinds = list(AuthEvent.objects.filter(user=user).order_by("id").values_list("kind", flat=True))
    assert kinds == ["login_failed", "login", "logout"]
    # last_login is stamped without a "user changed" row in the operation log
    user.refresh_from_db()
    assert user.last_login is not None
    assert user.history.count() == history_rows
    assert AuthEvent.objects.filter(user=user).first().customer_id == world.customers["a1"].pk


def test_users_of_a_deactivated_customer_cannot_log_in(world, client):
    assert client.login(username="a1_operator", password="pw-123456")
    customer = world.customers["a"]  # the lender: its branches' users are locked out too
    customer.is_active = False
    customer.save()
    assert not client.login(username="a1_operator", password="pw-123456")
    assert client.login(username="b_admin", password="pw-123456")


def test_operation_log_is_scoped_and_shows_before_after(world, client):
    vehicle_update(vehicle=world.vehicles["a1"], by=world.users["a1_operator"], colour="red")
    vehicle_update(vehicle=world.vehicles["b"], by=world.users["b_admin"], colour="blue")
    client.force_login(world.users["a_admin"])
    response = client.get(reverse("admin:operation_log"), {"model": "vehicles.vehicle"})
    assert response.status_code == 200
    entries = response.context["entries"]
    labels = {e.object_label for e in entries}
    assert world.vehicles["a1"].plate in labels
    assert world.vehicles["b"].plate not in labels
    change = next(e for e in entries if e.changes)
    assert change.actor == "a1_operator"
    assert ("colour", "", "red") in change.changes


def test_operation_log_merges_models_and_login_events(world, client):
    client.login(username="b_admin", password="wrong")
    client.force_login(world.users["a_admin"])
    response = client.get(reverse("admin:operation_log"))
    models = {e.model for e in response.context["entries"]}
    assert {"vehicle", "device", "device binding", "customer"} <= models
    # B's failed login is not A's business
    assert not any(e.object_label == "b_admin" for e in response.context["entries"])
    client.force_login(world.users["b_admin"])
    response = client.get(reverse("admin:operation_log"), {"model": "accounts.authevent"})
    assert [e.action for e in response.context["entries"]] == ["login"] or any(
        e.action == "failed login" for e in response.context["entries"]
    )


def test_operation_log_needs_the_right(world, client):
    client.force_login(world.users["a1_operator"])
    assert client.get(reverse("admin:operation_log")).status_code == 403


def test_users_visible_to_hides_superusers_from_tenants(world):
    assert world.users["platform_admin"] not in set(users_visible_to(world.users["a_admin"]))
    assert set(users_visible_to(world.users["platform_admin"])) >= set(world.users.values())


def test_new_customer_code_must_be_unique(world):
    from django.core.exceptions import ValidationError

    with pytest.raises(ValidationError):
        customer_create(parent=world.customers["a"], name="Dup", code="branch-a1")
    assert Customer.objects.filter(code="branch-a1").count() == 1
    CustomerFactory(parent=world.customers["a"])
