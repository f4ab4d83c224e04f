"""Admin of notifications: everyone who may see alarms manages their own subscriptions and
nobody else's; the delivery log shows a tenant its own alarms and people, with the errors."""

from __future__ import annotations

import pytest
from django.urls import reverse

from alarms.notify.models import NotificationDelivery, NotificationSubscription
from alarms.notify.services import notification_subscription_set, notifications_deliver
from tests.alarms.test_alarm_visibility import T0, grant_alarm_perms, raise_alarm

SUBS = "admin:alarms_notificationsubscription_changelist"
ADD = "admin:alarms_notificationsubscription_add"
LOG = "admin:alarms_notificationdelivery_changelist"


@pytest.fixture
def people(world, settings):
    settings.NOTIFY_EMAIL_BACKEND = "email"
    settings.NOTIFY_DELIVERY = "inline"
    grant_alarm_perms(world)
    for user in world.users.values():
        user.email = f"{user.username}@example.com"
        user.save(update_fields=["email"])
    return world.users


def form(**fields):
    data = {
        "channel": "email",
        "min_level": "2",
        "enabled": "on",
        "quiet_from": "",
        "quiet_to": "",
        "critical_in_quiet_hours": "on",
    }
    data.update(fields)
    return data


def test_a_user_subscribes_themselves_in_the_admin(world, people, client):
    client.force_login(people["a1_operator"])  # may view alarms: enough to subscribe
    response = client.post(
        reverse(ADD), form(kinds=["sos", "power_cut"], quiet_from="22:00", quiet_to="07:00")
    )
    assert response.status_code == 302, response.content.decode()[:2000]
    sub = NotificationSubscription.objects.get()
    assert (sub.user_id, sub.kinds, sub.quiet_from.hour) == (
        people["a1_operator"].pk,
        ["power_cut", "sos"],
        22,
    )
    # The same channel twice is refused on the form.
    again = client.post(reverse(ADD), form())
    assert again.status_code == 200
    assert "You already have a subscription for this channel." in again.content.decode()
    # Change: the level, through the service.
    url = reverse("admin:alarms_notificationsubscription_change", args=[sub.pk])
    assert client.post(url, form(min_level="3")).status_code == 302
    sub.refresh_from_db()
    assert (sub.min_level, sub.kinds) == (3, [])


def test_half_quiet_hours_are_refused_on_the_form(world, people, client):
    client.force_login(people["a_admin"])
    response = client.post(reverse(ADD), form(quiet_from="22:00"))
    assert response.status_code == 200
    assert "Quiet hours need both a start and an end." in response.content.decode()
    assert not NotificationSubscription.objects.exists()


def test_nobody_sees_or_changes_anyone_elses_subscriptions(world, people, client):
    theirs = notification_subscription_set(user=people["a1_operator"], channel="sms")
    mine = notification_subscription_set(user=people["a_admin"], channel="email")
    for persona in ("a_admin", "platform_admin"):
        client.force_login(people[persona])
        listed = [s.pk for s in client.get(reverse(SUBS)).context["cl"].result_list]
        assert theirs.pk not in listed
        url = reverse("admin:alarms_notificationsubscription_change", args=[theirs.pk])
        assert client.get(url).status_code == 404
        assert client.post(url, form(enabled="")).status_code == 404
    client.force_login(people["a_admin"])
    assert [s.pk for s in client.get(reverse(SUBS)).context["cl"].result_list] == [mine.pk]
    theirs.refresh_from_db()
    assert theirs.enabled


def test_without_alarm_rights_there_is_no_subscription_page(world, people, client):
    people["a1_operator"].role.permissions.clear()
    people["a1_operator"].role.permissions.add(
        *people["a_admin"].role.permissions.filter(content_type__app_label="vehicles")
    )
    client.force_login(people["a1_operator"])
    assert client.get(reverse(SUBS)).status_code == 403


def test_the_delivery_log_is_scoped_and_shows_errors(world, people, client, settings):
    for persona in ("platform_admin", "a_admin", "b_admin"):
        notification_subscription_set(user=people[persona], channel="email")
    notification_subscription_set(user=people["a1_operator"], channel="sms")
    people["a1_operator"].phone = ""
    people["a1_operator"].save(update_fields=["phone"])
    a1, b1 = raise_alarm(world.vehicles["a1"]), raise_alarm(world.vehicles["b1"])
    notifications_deliver(alarm_ids=[a1.pk, b1.pk], now=T0)
    rows = {(d.alarm_id, d.user_id): d.pk for d in NotificationDelivery.objects.all()}
    u = {p: people[p].pk for p in people}
    assert set(rows) == {
        (a1.pk, u["platform_admin"]),
        (a1.pk, u["a_admin"]),
        (a1.pk, u["a1_operator"]),
        (b1.pk, u["platform_admin"]),
        (b1.pk, u["b_admin"]),
    }

    def log(persona) -> set[tuple[int, int]]:
        client.force_login(people[persona])
        response = client.get(reverse(LOG))
        assert response.status_code == 200
        return {(d.alarm_id, d.user_id) for d in response.context["cl"].result_list}

    # A tenant sees its alarms' deliveries to its own people, not to the platform's admins.
    assert log("a_admin") == {(a1.pk, u["a_admin"]), (a1.pk, u["a1_operator"])}
    assert log("b_admin") == {(b1.pk, u["b_admin"])}
    assert log("platform_admin") == set(rows)
    client.force_login(people["a_admin"])
    page = client.get(reverse(LOG), {"status__exact": "failed"}).content.decode()
    assert "the account has no phone" in page
    # The operator may see alarms but not the log.
    client.force_login(people["a1_operator"])
    assert client.get(reverse(LOG)).status_code == 403
