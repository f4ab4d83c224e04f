"""Who sees which alarm (`alarms_visible_to`): the customer's subtree, vehicles shared one by
one, platform admins; nobody else. Also the helpers the other alarm / notification test files
share (`grant_alarm_perms`, `raise_alarm`, the `alarms` fixture)."""

from __future__ import annotations

import datetime as dt

import pytest
from django.contrib.auth.models import Permission
from django.db import connection
from django.test.utils import CaptureQueriesContext

from accounts.services import objects_share
from alarms.alarm_selectors import alarms_for_list, alarms_visible_to
from alarms.services import lifecycle
from tests.conftest import PERSONAS
from vehicles.services import vehicle_soft_delete

T0 = dt.datetime(2026, 11, 22, 8, 0, tzinfo=dt.UTC)


def grant_alarm_perms(world) -> None:
    """Alarm rights on top of the personas' roles: the lender admins get every alarms
    permission, the branch operator may read alarms but not handle them, the installer none."""
    everything = list(Permission.objects.filter(content_type__app_label="alarms"))
    for persona in ("a_admin", "b_admin"):
        world.users[persona].role.permissions.add(*everything)
    world.users["a1_operator"].role.permissions.add(
        Permission.objects.get(content_type__app_label="alarms", codename="view_alarm")
    )


def raise_alarm(vehicle, kind="sos", *, at=T0, now=None, target="", **extra):
    alarm = lifecycle.alarm_raise(
        vehicle_id=vehicle.pk,
        customer_id=vehicle.customer_id,
        kind=kind,
        target=target,
        at=at,
        now=now or at,
        **extra,
    )
    assert alarm is not None
    return alarm


def make_alarms(world) -> dict:
    """Alarm rights granted, then one open alarm per customer of the world (key -> Alarm),
    raised a minute apart in the world's order (platform, a, a1, a2, b, b1)."""
    grant_alarm_perms(world)
    out = {}
    for i, (key, vehicle) in enumerate(world.vehicles.items()):
        at = T0 + dt.timedelta(minutes=i)
        out[key] = raise_alarm(vehicle, "sos", at=at, lat=34.26, lon=108.94, speed_kmh=12.0)
    return out


@pytest.fixture
def alarms(world):
    return make_alarms(world)


@pytest.mark.parametrize("persona", PERSONAS)
def test_each_persona_sees_exactly_the_alarms_of_its_subtree(world, alarms, persona):
    ids = set(alarms_visible_to(world.users[persona]).values_list("pk", flat=True))
    assert ids == {alarms[k].pk for k in world.visible_keys(persona)}


def test_a_shared_vehicle_shows_its_alarms_and_only_them(world, alarms):
    b_admin = world.users["b_admin"]
    objects_share(objects=[world.vehicles["a1"]], username="b_admin", by=world.users["a_admin"])
    ids = set(alarms_visible_to(b_admin).values_list("pk", flat=True))
    assert ids == {alarms["b"].pk, alarms["b1"].pk, alarms["a1"].pk}


def test_a_shared_vehicle_in_the_recycle_bin_hides_its_alarms_from_the_share(world, alarms):
    objects_share(objects=[world.vehicles["a1"]], username="b_admin", by=world.users["a_admin"])
    vehicle_soft_delete(vehicle=world.vehicles["a1"], by=world.users["a_admin"])
    assert not alarms_visible_to(world.users["b_admin"]).filter(pk=alarms["a1"].pk).exists()
    # The owner still has the history.
    assert alarms_visible_to(world.users["a_admin"]).filter(pk=alarms["a1"].pk).exists()


def test_inactive_and_anonymous_users_see_nothing(world, alarms):
    from django.contrib.auth.models import AnonymousUser

    user = world.users["a_admin"]
    user.is_active = False
    assert not alarms_visible_to(user).exists()
    assert not alarms_visible_to(AnonymousUser()).exists()


def test_the_list_selector_annotates_plate_customer_and_handler(world, alarms):
    a_admin = world.users["a_admin"]
    lifecycle.alarm_acknowledge(alarm=alarms["a1"], by=a_admin, note="on it")
    rows = {a.pk: a for a in alarms_for_list(a_admin)}
    row = rows[alarms["a1"].pk]
    assert (row.plate, row.customer_name, row.handler) == (
        world.vehicles["a1"].plate,
        "Branch A1",
        "a_admin",
    )
    assert rows[alarms["a2"].pk].handler is None
    # Newest first.
    assert list(rows) == [alarms[k].pk for k in ("a2", "a1", "a")]


def test_the_list_costs_the_same_number_of_queries_for_3_or_30_alarms(world, alarms):
    user = world.users["a_admin"]
    vehicle = world.vehicles["a2"]

    def count() -> int:
        fresh = type(user).objects.get(pk=user.pk)  # no cached customer
        with CaptureQueriesContext(connection) as ctx:
            rows = list(alarms_for_list(fresh))
            _ = [(r.plate, r.customer_name, r.handler, r.device_identifier) for r in rows]
        return len(ctx.captured_queries)

    before = count()
    for i in range(27):
        # An hour apart: flood control allows ALARM_MAX_PER_HOUR per vehicle and kind.
        raise_alarm(vehicle, "overspeed", at=T0 + dt.timedelta(hours=2 + i), target=str(i))
    assert count() == before
