"""E-mail / SMS notifications of new alarms: exactly the users who may see the alarm and
subscribed to it, never another tenant; rate limit per user, vehicle and channel; quiet hours;
failures logged with the backend's error; one delivery per alarm, user and channel; the hook
queues the work on django-q2 (synchronous in tests) or runs it inline."""

from __future__ import annotations

import datetime as dt
import json

import pytest
from django.contrib.auth.models import Permission
from django.core import mail
from django_q.models import Task

from accounts.services import objects_share
from alarms.models import Alarm
from alarms.notify.models import NotificationDelivery, NotificationSubscription
from alarms.notify.services import (
    alarm_notify,
    notification_subscription_delete,
    notification_subscription_set,
    notifications_deliver,
)
from alarms.services import lifecycle
from carloan.errors import ApplicationError
from tests.alarms.test_alarm_visibility import T0, grant_alarm_perms, raise_alarm
from tests.factories import UserFactory

NOW = T0 + dt.timedelta(minutes=5)  # 16:05 in Asia/Shanghai


@pytest.fixture
def people(world, settings, tmp_path):
    """Alarm rights as in the visibility tests; everyone has an address; e-mail through Django's
    (in-memory) mail backend, SMS into a file under tmp_path."""
    settings.NOTIFY_EMAIL_BACKEND = "email"
    settings.NOTIFY_SMS_BACKEND = "file"
    settings.NOTIFY_FILE_DIR = str(tmp_path)
    settings.NOTIFY_DELIVERY = "inline"
    settings.NOTIFY_RATE_LIMIT, settings.NOTIFY_RATE_WINDOW_S = 3, 600
    grant_alarm_perms(world)
    for i, user in enumerate(world.users.values()):
        user.email = f"{user.username}@example.com"
        user.phone = f"1380013{i:04d}"
        user.save(update_fields=["email", "phone"])
    world.sms_log = tmp_path / "sms.jsonl"
    return world.users


def subscribe(user, channel="email", **fields):
    return notification_subscription_set(user=user, channel=channel, by=user, **fields)


def recipients(alarm) -> dict[str, str]:
    """Persona (or username) -> delivery status of this alarm."""
    return {
        persona(d.user): d.status
        for d in NotificationDelivery.objects.filter(alarm=alarm).select_related("user")
    }


def persona(user) -> str:
    return "platform_admin" if user.is_superuser else user.username  # "root" in the world


def sms_sent(world) -> list[str]:
    if not world.sms_log.exists():
        return []
    return [json.loads(line)["to"] for line in world.sms_log.read_text().splitlines()]


def test_only_subscribed_users_who_may_see_the_alarm_are_told(world, people):
    for persona in ("platform_admin", "a_admin", "b_admin", "a1_installer"):
        subscribe(people[persona])
    subscribe(people["a1_operator"], "sms")
    UserFactory(username="a1_quiet", customer=world.customers["a1"], email="q@example.com")
    alarm = raise_alarm(world.vehicles["a1"])

    counts = notifications_deliver(alarm_ids=[alarm.pk], now=NOW)

    # b_admin (another lender) and the installer (no alarm rights) are never told; the other
    # user of Branch A1 did not subscribe.
    assert recipients(alarm) == {"platform_admin": "sent", "a_admin": "sent", "a1_operator": "sent"}
    assert counts == {"sent": 3}
    assert sorted(m.to[0] for m in mail.outbox) == ["a_admin@example.com", "root@example.com"]
    assert sms_sent(world) == [people["a1_operator"].phone]


def test_a_sibling_branch_and_the_other_lender_hear_nothing(world, people):
    subscribe(people["a1_operator"])
    subscribe(people["b_admin"])
    alarm = raise_alarm(world.vehicles["a2"])
    notifications_deliver(alarm_ids=[alarm.pk], now=NOW)
    assert recipients(alarm) == {}
    assert mail.outbox == []


def test_a_vehicle_shared_with_a_user_of_another_lender_reaches_them(world, people):
    subscribe(people["b_admin"])
    objects_share(objects=[world.vehicles["a1"]], username="b_admin", by=people["a_admin"])
    shared, other = raise_alarm(world.vehicles["a1"]), raise_alarm(world.vehicles["a2"])
    notifications_deliver(alarm_ids=[shared.pk, other.pk], now=NOW)
    assert recipients(shared) == {"b_admin": "sent"}
    assert recipients(other) == {}


def test_kinds_and_minimum_level_filter_the_subscription(world, people):
    subscribe(people["a_admin"], kinds=["overspeed", "sos"], min_level=3)
    sos = raise_alarm(world.vehicles["a"], "sos")  # critical
    overspeed = raise_alarm(world.vehicles["a"], "overspeed")  # warning: below the minimum
    power = raise_alarm(world.vehicles["a"], "power_cut")  # critical, not chosen
    notifications_deliver(alarm_ids=[sos.pk, overspeed.pk, power.pk], now=NOW)
    assert [m.subject for m in mail.outbox] == [
        f"[carloan] critical alarm: SOS / anti-robbery, {world.vehicles['a'].plate}"
    ]


def test_disabled_subscriptions_deactivated_customers_and_lost_rights_stop_it(world, people):
    subscribe(people["a_admin"], enabled=False)
    subscribe(people["a1_operator"])
    subscribe(people["platform_admin"])
    # Branch A1 deactivated: its users cannot log in, so they are not told either.
    branch = world.customers["a1"]
    branch.is_active = False
    branch.save(update_fields=["is_active"])
    alarm = raise_alarm(world.vehicles["a1"])
    notifications_deliver(alarm_ids=[alarm.pk], now=NOW)
    assert recipients(alarm) == {"platform_admin": "sent"}

    branch.is_active = True
    branch.save(update_fields=["is_active"])
    people["a1_operator"].role.permissions.remove(
        Permission.objects.get(content_type__app_label="alarms", codename="view_alarm")
    )
    again = raise_alarm(world.vehicles["a1"], "power_cut")
    notifications_deliver(alarm_ids=[again.pk], now=NOW)
    assert recipients(again) == {"platform_admin": "sent"}


def test_a_flapping_vehicle_cannot_flood_a_user(world, people):
    subscribe(people["a_admin"])
    subscribe(people["a_admin"], "sms")
    vehicle = world.vehicles["a1"]
    statuses = []
    for i in range(6):
        at = NOW + dt.timedelta(minutes=i)
        alarm = raise_alarm(vehicle, "area_enter", at=at, target=f"riskpoint:{i}")
        notifications_deliver(alarm_ids=[alarm.pk], now=at)
        statuses.append(recipients(alarm)["a_admin"])
    # Three per vehicle per channel in 10 minutes; the rest are logged, not sent.
    assert statuses == ["sent"] * 3 + ["suppressed"] * 3
    assert len(mail.outbox) == 3 and len(sms_sent(world)) == 3
    suppressed = NotificationDelivery.objects.filter(status="suppressed").first()
    assert suppressed.error == "rate limit: 3 messages per 10 minutes for this vehicle"

    # Another vehicle is not held back by the first one's flood.
    other = raise_alarm(world.vehicles["a2"], at=NOW + dt.timedelta(minutes=6))
    notifications_deliver(alarm_ids=[other.pk], now=NOW + dt.timedelta(minutes=6))
    assert recipients(other) == {"a_admin": "sent"}

    # Once the window has passed the vehicle's next alarm goes out and says what was held back.
    later = NOW + dt.timedelta(minutes=12)
    alarm = raise_alarm(vehicle, "area_enter", at=later, target="riskpoint:99")
    notifications_deliver(alarm_ids=[alarm.pk], now=later)
    assert recipients(alarm) == {"a_admin": "sent"}
    assert "3 earlier alarm(s) of this vehicle were not sent" in mail.outbox[-1].body
    last_sms = json.loads(world.sms_log.read_text().splitlines()[-1])
    assert last_sms["text"].endswith("(+3 not sent)")


def test_a_failed_delivery_is_logged_and_the_others_still_go(world, people, settings):
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST, settings.EMAIL_PORT, settings.EMAIL_TIMEOUT = "127.0.0.1", 1, 2
    subscribe(people["a_admin"])  # e-mail: the mail server refuses
    subscribe(people["a1_operator"], "sms")
    people["platform_admin"].phone = ""
    people["platform_admin"].save(update_fields=["phone"])
    subscribe(people["platform_admin"], "sms")  # no phone number
    alarm = raise_alarm(world.vehicles["a1"])

    counts = notifications_deliver(alarm_ids=[alarm.pk], now=NOW)

    assert counts == {"failed": 2, "sent": 1}
    rows = {persona(d.user): d for d in NotificationDelivery.objects.select_related("user")}
    assert rows["a_admin"].status == "failed"
    assert "ConnectionRefusedError" in rows["a_admin"].error
    assert rows["a_admin"].finished_at is not None
    assert (rows["platform_admin"].status, rows["platform_admin"].error) == (
        "failed",
        "the account has no phone",
    )
    assert rows["a1_operator"].status == "sent"


@pytest.mark.parametrize(
    ("kind", "critical_passes", "expected"),
    [
        ("vibration", True, "suppressed"),  # info
        ("sos", True, "sent"),  # critical, let through
        ("sos", False, "suppressed"),
    ],
)
def test_quiet_hours(world, people, kind, critical_passes, expected):
    subscribe(
        people["a_admin"],
        min_level=1,
        quiet_from=dt.time(22, 0),
        quiet_to=dt.time(7, 0),
        critical_in_quiet_hours=critical_passes,
    )
    night = dt.datetime(2026, 11, 22, 15, 30, tzinfo=dt.UTC)  # 23:30 in Asia/Shanghai
    alarm = raise_alarm(world.vehicles["a"], kind, at=night)
    notifications_deliver(alarm_ids=[alarm.pk], now=night)
    assert recipients(alarm) == {"a_admin": expected}
    if expected == "suppressed":
        assert NotificationDelivery.objects.get().error == "quiet hours"


def test_delivering_twice_sends_once(world, people):
    subscribe(people["a_admin"])
    alarm = raise_alarm(world.vehicles["a"])
    assert notifications_deliver(alarm_ids=[alarm.pk], now=NOW) == {"sent": 1}
    assert notifications_deliver(alarm_ids=[alarm.pk], now=NOW) == {}
    assert len(mail.outbox) == 1


def test_the_message_says_what_where_and_links_to_the_map_and_the_alarm(world, people, settings):
    settings.NOTIFY_SITE_URL = "https://carloan.example"
    subscribe(people["a_admin"])
    vehicle = world.vehicles["a1"]
    alarm = raise_alarm(
        vehicle, "area_enter", target_name="Xi'an used-car market", lat=34.2611, lon=108.9422
    )
    notifications_deliver(alarm_ids=[alarm.pk], now=NOW)
    body = mail.outbox[0].body
    assert f"Vehicle: {vehicle.plate}" in body
    assert "Where: Xi'an used-car market" in body
    assert "Customer: Branch A1" in body
    assert "Since: 2026-11-22 16:00" in body  # local time
    assert "https://www.openstreetmap.org/?mlat=34.2611&mlon=108.9422&zoom=16" in body
    assert f"https://carloan.example/admin/alarms/alarm/{alarm.pk}/change/" in body


# --- The hook (alarm_raise -> on commit -> alarm_notify) -----------------------------------------
def test_a_new_alarm_is_queued_on_the_worker_and_a_repeat_is_not(
    world, people, settings, django_capture_on_commit_callbacks
):
    settings.NOTIFY_DELIVERY = "queue"  # tests run django-q2 synchronously
    subscribe(people["a_admin"])
    vehicle = world.vehicles["a"]
    with django_capture_on_commit_callbacks(execute=True):
        alarm = lifecycle.alarm_raise(
            vehicle_id=vehicle.pk, customer_id=vehicle.customer_id, kind="sos", at=NOW
        )
    with django_capture_on_commit_callbacks(execute=True):
        repeat = lifecycle.alarm_raise(
            vehicle_id=vehicle.pk,
            customer_id=vehicle.customer_id,
            kind="sos",
            at=NOW + dt.timedelta(seconds=30),
        )
    assert repeat is None and Alarm.objects.get().occurrences == 2
    assert recipients(alarm) == {"a_admin": "sent"}
    assert len(mail.outbox) == 1
    [task] = Task.objects.all()
    assert (task.func, task.args, task.success) == (
        "alarms.notify.jobs.deliver_notifications",
        ([alarm.pk],),
        True,
    )


def test_inline_delivery_needs_no_worker(world, people, django_capture_on_commit_callbacks):
    subscribe(people["a_admin"])
    with django_capture_on_commit_callbacks(execute=True):
        alarm = raise_alarm(world.vehicles["a"])
    assert recipients(alarm) == {"a_admin": "sent"}
    assert not Task.objects.exists()


def test_nothing_is_queued_when_nobody_subscribed(world, people, settings):
    settings.NOTIFY_DELIVERY = "queue"
    alarm = raise_alarm(world.vehicles["a"])
    alarm_notify(alarm_ids=[alarm.pk])
    assert not Task.objects.exists() and not NotificationDelivery.objects.exists()


# --- Subscriptions -------------------------------------------------------------------------------
def test_subscriptions_are_ones_own(world, people):
    mine = subscribe(people["a_admin"], kinds=["sos", "sos", "overspeed"])
    assert mine.kinds == ["overspeed", "sos"]
    with pytest.raises(ApplicationError, match="only change your own"):
        notification_subscription_set(user=people["a1_operator"], channel="sms", by=mine.user)
    with pytest.raises(ApplicationError, match="only change your own"):
        notification_subscription_delete(subscription=mine, by=people["b_admin"])
    # One per channel: setting again changes it.
    again = subscribe(people["a_admin"], min_level=1)
    assert again.pk == mine.pk and NotificationSubscription.objects.count() == 1


def test_bad_subscriptions_are_refused(world, people):
    from django.core.exceptions import ValidationError

    with pytest.raises(ValidationError, match="Unknown alarm kinds: teleport"):
        subscribe(people["a_admin"], kinds=["teleport"])
    with pytest.raises(ValidationError, match="both a start and an end"):
        subscribe(people["a_admin"], quiet_from=dt.time(22, 0))
    with pytest.raises(ApplicationError, match="Unknown channel"):
        subscribe(people["a_admin"], "pager")
