"""Personas for tenancy tests.

The tree:   Platform ─┬─ Lender A ─┬─ Branch A1
                      │            └─ Branch A2
                      └─ Lender B ─── Branch B1

Personas: `platform_admin` (superuser), `a_admin` (Lender A, admin role), `a1_operator`
(Branch A1, operator role), `b_admin` (Lender B, admin role), `a1_installer` (Branch A1,
installer, installer role). `world` holds one vehicle + device per customer.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest
from django.contrib.auth.models import Permission
from rest_framework.test import APIClient

from accounts.models import Customer, Role, User
from tests.factories import CustomerFactory, DeviceFactory, UserFactory, VehicleFactory
from vehicles.services import device_bind

ADMIN_PERMS = {"accounts", "devices", "vehicles"}  # every permission of these apps
OPERATOR_PERMS = [
    "vehicles.view_vehicle",
    "vehicles.add_vehicle",
    "vehicles.change_vehicle",
    "vehicles.delete_vehicle",
    "vehicles.view_devicebinding",
    "vehicles.add_devicebinding",
    "vehicles.change_devicebinding",
    "devices.view_device",
    "devices.add_device",
    "devices.change_device",
    "devices.delete_device",
    "devices.view_devicemodel",
    "devices.view_manufacturer",
    "devices.view_stockmove",
    "accounts.view_customer",
]
INSTALLER_PERMS = [
    "vehicles.view_vehicle",
    "vehicles.view_devicebinding",
    "vehicles.add_devicebinding",
    "devices.view_device",
    "accounts.view_customer",
]


def perms(codes):
    out = []
    for code in codes:
        app, codename = code.split(".")
        out.append(Permission.objects.get(content_type__app_label=app, codename=codename))
    return out


@dataclass
class World:
    customers: dict[str, Customer] = field(default_factory=dict)
    users: dict[str, User] = field(default_factory=dict)
    vehicles: dict = field(default_factory=dict)  # customer key -> Vehicle
    devices: dict = field(default_factory=dict)  # customer key -> bound Device
    stock: dict = field(default_factory=dict)  # customer key -> Device in stock

    def visible_keys(self, persona: str) -> set[str]:
        return {
            "platform_admin": {"platform", "a", "a1", "a2", "b", "b1"},
            "a_admin": {"a", "a1", "a2"},
            "a1_operator": {"a1"},
            "a1_installer": {"a1"},
            "b_admin": {"b", "b1"},
        }[persona]


PERSONAS = ["platform_admin", "a_admin", "a1_operator", "b_admin", "a1_installer"]


@pytest.fixture
def world(db) -> World:
    w = World()
    c = w.customers
    c["platform"] = CustomerFactory(name="Platform", code="platform")
    c["a"] = CustomerFactory(name="Lender A", code="lender-a", parent=c["platform"])
    c["a1"] = CustomerFactory(name="Branch A1", code="branch-a1", parent=c["a"])
    c["a2"] = CustomerFactory(name="Branch A2", code="branch-a2", parent=c["a"])
    c["b"] = CustomerFactory(name="Lender B", code="lender-b", parent=c["platform"])
    c["b1"] = CustomerFactory(name="Branch B1", code="branch-b1", parent=c["b"])
    for key in c:
        c[key].refresh_from_db()

    all_admin = list(Permission.objects.filter(content_type__app_label__in=ADMIN_PERMS))
    roles = {}
    for key in ("a", "b"):
        roles[f"{key}_admin"] = Role.objects.create(customer=c[key], name="Administrator")
        roles[f"{key}_admin"].permissions.set(all_admin)
    roles["operator"] = Role.objects.create(customer=c["a"], name="Operator")
    roles["operator"].permissions.set(perms(OPERATOR_PERMS))
    roles["installer"] = Role.objects.create(customer=c["a"], name="Installer")
    roles["installer"].permissions.set(perms(INSTALLER_PERMS))

    u = w.users
    u["platform_admin"] = UserFactory(username="root", customer=c["platform"], is_superuser=True)
    u["a_admin"] = UserFactory(username="a_admin", customer=c["a"], role=roles["a_admin"])
    u["a1_operator"] = UserFactory(username="a1_operator", customer=c["a1"], role=roles["operator"])
    u["b_admin"] = UserFactory(username="b_admin", customer=c["b"], role=roles["b_admin"])
    u["a1_installer"] = UserFactory(
        username="a1_installer",
        customer=c["a1"],
        role=roles["installer"],
        kind=User.Kind.INSTALLER,
        is_staff=False,
    )
    for key, customer in c.items():
        vehicle = VehicleFactory(customer=customer)
        device = DeviceFactory(customer=customer)
        device_bind(vehicle=vehicle, device=device)
        w.vehicles[key], w.devices[key] = vehicle, device
        w.stock[key] = DeviceFactory(customer=customer)
    return w


@pytest.fixture
def api():
    """An APIClient factory: api(user) is authenticated by token as that user."""
    from rest_framework.authtoken.models import Token

    def make(user=None):
        client = APIClient()
        if user is not None:
            token, _ = Token.objects.get_or_create(user=user)
            client.credentials(HTTP_AUTHORIZATION=f"Token {token.key}")
        return client

    return make
