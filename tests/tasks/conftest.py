"""Field-work personas on top of the shared `world` (tests/conftest.py).

The shared installer role gets `tasks.work_workorder` (what a lender grants its installers);
the lender admins get every tasks permission; a salesman and a repossession agent join Branch
A1, a second installer Branch A1 and one Branch A2, and Lender B has its own installer.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import pytest
import time_machine
from django.contrib.auth.models import Permission
from django.core.cache import cache

from accounts.models import Role, User
from tasks import services
from tests.conftest import perms
from tests.factories import UserFactory

NOW = dt.datetime(2026, 11, 23, 9, 0, tzinfo=dt.UTC)
XIAN = (34.2610, 108.9423)  # Xi'an bell tower, WGS-84

WORKER_PERMS = [
    "tasks.work_workorder",
    "vehicles.view_vehicle",
    "devices.view_device",
    "accounts.view_customer",
    "alarms.add_annotation",
    "alarms.view_annotation",
]
DISPATCHER_PERMS = [
    "tasks.view_workorder",
    "tasks.add_workorder",
    "tasks.change_workorder",
    "tasks.dispatch_workorder",
    "tasks.verify_workorder",
]


@dataclass
class Field:
    world: object
    users: dict

    def __getitem__(self, key):
        return self.users[key]


@pytest.fixture(autouse=True)
def _fresh_throttle_counts():
    # The throttle's counters live in the cache, which outlives a test's database rollback.
    cache.clear()
    yield
    cache.clear()


@pytest.fixture
def frozen():
    with time_machine.travel(NOW, tick=False) as traveller:
        yield traveller


@pytest.fixture
def field(world) -> Field:
    tasks_perms = list(Permission.objects.filter(content_type__app_label="tasks"))
    for role in Role.objects.filter(name="Administrator"):
        role.permissions.add(*tasks_perms, *perms(["alarms.add_annotation"]))
    installer_role = Role.objects.get(name="Installer")
    installer_role.permissions.add(*perms(WORKER_PERMS))
    c = world.customers
    worker_role = Role.objects.create(customer=c["platform"], name="Field worker")
    worker_role.permissions.set(perms(WORKER_PERMS))
    dispatcher = Role.objects.create(customer=c["a"], name="Dispatcher")
    dispatcher.permissions.set(perms([*DISPATCHER_PERMS, "vehicles.view_vehicle"]))

    def worker(username, customer, kind, role=worker_role):
        return UserFactory(
            username=username,
            customer=c[customer],
            role=role,
            kind=kind,
            is_staff=False,
            first_name=username.title(),
        )

    users = dict(world.users)
    users["a1_installer2"] = worker("a1_installer2", "a1", User.Kind.INSTALLER)
    users["a2_installer"] = worker("a2_installer", "a2", User.Kind.INSTALLER)
    users["a_installer"] = worker("a_installer", "a", User.Kind.INSTALLER)
    users["b_installer"] = worker("b_installer", "b", User.Kind.INSTALLER)
    users["a1_salesman"] = worker("a1_salesman", "a1", User.Kind.SALESMAN)
    users["a1_recovery"] = worker("a1_recovery", "a1", User.Kind.RECOVERY)
    users["a1_dispatcher"] = UserFactory(
        username="a1_dispatcher", customer=c["a1"], role=dispatcher, kind=User.Kind.STAFF
    )
    return Field(world=world, users=users)


def make_order(field, *, kind="install", vehicle_key="a1", by="a_admin", assignee=None, **extra):
    """An order created (and assigned) through the services, as the back office would."""
    world = field.world
    return services.work_order_create(
        by=field[by],
        kind=kind,
        vehicle=world.vehicles[vehicle_key],
        assignee=field[assignee] if assignee else None,
        **extra,
    )


def started(field, *, kind="install", worker="a1_installer", vehicle_key="a1", **extra):
    """An order assigned to `worker`, accepted and in progress."""
    order = make_order(field, kind=kind, vehicle_key=vehicle_key, assignee=worker, **extra)
    services.work_order_accept(order=order, by=field[worker])
    return services.work_order_start(order=order, by=field[worker])
