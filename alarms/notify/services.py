"""Notification services: live push of new alarms, e-mail / SMS delivery with its log, and the
users' own subscriptions.

Who is told (R7): exactly the users who may see the alarm (`alarm_selectors.alarms_visible_to`:
the customer's subtree, the vehicle's shares, platform admins), who hold `alarms.view_alarm`,
can log in, and subscribed to the channel for the alarm's kind at or above its level. Nobody
else, whatever they subscribed to.

Flood control per recipient: at most `NOTIFY_RATE_LIMIT` messages per user, vehicle and channel
within `NOTIFY_RATE_WINDOW_S` seconds (sent, failed and in-flight ones count). Further alarms of
that vehicle are logged as suppressed; the next message that goes out says how many were held
back (within the last day) instead of sending them later. Quiet hours suppress the same way,
except critical alarms when the subscription lets them through.

Every decision is one `NotificationDelivery` row (unique per alarm, user and channel, so a
retried job never sends twice): sent, failed with the backend's error, or suppressed with why.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections import Counter
from collections.abc import Iterable

from django.conf import settings
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from accounts.selectors import is_platform_admin
from alarms.alarm_selectors import subscriptions_for_alarms
from alarms.models import Alarm, Level
from alarms.notify.backends.base import DeliveryError
from alarms.notify.messages import render
from alarms.notify.models import NotificationDelivery, NotificationSubscription
from alarms.notify.registry import CHANNELS, backend_name, notifier_for
from carloan.errors import ApplicationError
from carloan.services import model_save

logger = logging.getLogger("carloan.alarms.notify")

Status = NotificationDelivery.Status
COUNTED = (Status.SENT, Status.FAILED, Status.SENDING)  # what the rate limit counts
DIGEST_LOOKBACK = dt.timedelta(days=1)
MAX_ERROR = 1000


# --- The hook --------------------------------------------------------------------------------
def delivery_mode() -> str:
    """'queue' (django-q2 worker) or 'inline' (this process), from NOTIFY_DELIVERY."""
    mode = getattr(settings, "NOTIFY_DELIVERY", "queue")
    if mode == "queue" and "django_q" in settings.INSTALLED_APPS:
        return "queue"
    return "inline"


def alarm_notify(*, alarm_ids: Iterable[int]) -> None:
    """New alarms were committed: push them on the live feed now, and deliver e-mail / SMS from
    the worker (or inline, per NOTIFY_DELIVERY). Called by `alarm_raise` through
    `transaction.on_commit`, so on the gateway's writer thread: nothing here waits on a mail
    server or an SMS gateway unless delivery is configured inline."""
    ids = sorted({int(i) for i in alarm_ids})
    if not ids:
        return
    alarms_publish(alarm_ids=ids)
    if not NotificationSubscription.objects.filter(enabled=True).exists():
        return  # nobody subscribed to anything: no job to queue
    if delivery_mode() == "queue":
        from django_q.tasks import async_task

        async_task("alarms.notify.jobs.deliver_notifications", ids)
    else:
        notifications_deliver(alarm_ids=ids)


def alarm_live_item(alarm: Alarm) -> dict:
    """The live-feed item of an alarm (type "alarm"): codes, not labels (the page translates),
    WGS-84 position. `customer_id` is the alarm's customer: the consumer's visibility filter
    then applies the same rule as `alarms_visible_to`."""
    return {
        "alarm_id": alarm.pk,
        "customer_id": alarm.customer_id,
        "vehicle_id": alarm.vehicle_id,
        "plate": alarm.vehicle.plate if alarm.vehicle is not None else "",
        "device_id": alarm.device_id,
        "kind": alarm.kind,
        "level": alarm.level,
        "status": alarm.status,
        "target": alarm.target,
        "target_name": alarm.target_name,
        "message": alarm.message,
        "started_at": alarm.started_at,
        "raised_at": alarm.raised_at,
        "occurrences": alarm.occurrences,
        "lat": round(alarm.point.y, 7) if alarm.point is not None else None,
        "lon": round(alarm.point.x, 7) if alarm.point is not None else None,
        "speed_kmh": alarm.speed_kmh,
    }


def alarms_publish(*, alarm_ids: Iterable[int]) -> int:
    """Publish alarms on the live feed (`carloan.realtime`, type "alarm"), to the group of the
    alarm's customer; sent when the current transaction commits. Alarms without a live vehicle
    are not on anyone's map and are skipped. Returns how many were published."""
    from carloan.realtime import customer_group, publish

    alarms = Alarm.objects.filter(
        pk__in=list(alarm_ids), vehicle__isnull=False, vehicle__deleted_at__isnull=True
    ).select_related("vehicle")
    count = 0
    for alarm in alarms:
        publish(customer_group(alarm.customer_id), "alarm", alarm_live_item(alarm))
        count += 1
    return count


# --- E-mail / SMS ----------------------------------------------------------------------------
def notifications_deliver(*, alarm_ids: Iterable[int], now: dt.datetime | None = None) -> dict:
    """Deliver the alarms to their subscribed audience; one log row per alarm, user and channel.
    Idempotent (a retried job skips what is logged). Returns counts per status."""
    now = now or timezone.now()
    alarms = list(
        Alarm.objects.filter(pk__in=list(alarm_ids))
        .select_related("vehicle", "customer", "device")
        .order_by("raised_at", "id")
    )
    by_id = {a.pk: a for a in alarms}
    counts: Counter[str] = Counter()
    for alarm_id, subscriptions in subscriptions_for_alarms(alarms).items():
        alarm = by_id[alarm_id]
        for subscription in subscriptions:
            status = _deliver(alarm, subscription, now)
            if status is not None:
                counts[status] += 1
    return dict(counts)


def _rate_limit() -> tuple[int, dt.timedelta]:
    return (
        int(getattr(settings, "NOTIFY_RATE_LIMIT", 3)),
        dt.timedelta(seconds=int(getattr(settings, "NOTIFY_RATE_WINDOW_S", 600))),
    )


def _same_stream(subscription: NotificationSubscription, alarm: Alarm):
    return NotificationDelivery.objects.filter(
        user_id=subscription.user_id, channel=subscription.channel, vehicle_id=alarm.vehicle_id
    )


def _decide(alarm: Alarm, subscription: NotificationSubscription, address: str, now: dt.datetime):
    """(status, reason) for this alarm and recipient, before anything is sent."""
    critical = alarm.level >= Level.CRITICAL
    if subscription.is_quiet(timezone.localtime(now).time()) and not (
        critical and subscription.critical_in_quiet_hours
    ):
        return Status.SUPPRESSED, _("quiet hours")
    if not address:
        field = CHANNELS[subscription.channel].address_field
        return Status.FAILED, _("the account has no %(field)s") % {
            "field": subscription.user._meta.get_field(field).verbose_name
        }
    limit, window = _rate_limit()
    recent = _same_stream(subscription, alarm).filter(at__gte=now - window, status__in=COUNTED)
    if recent.count() >= limit:
        return Status.SUPPRESSED, _(
            "rate limit: %(n)d messages per %(minutes)d minutes for this vehicle"
        ) % {"n": limit, "minutes": max(1, round(window.total_seconds() / 60))}
    return Status.SENDING, ""


def _held_back(alarm: Alarm, subscription: NotificationSubscription, now: dt.datetime) -> int:
    """Alarms of the same vehicle suppressed for this recipient since the last message sent."""
    stream = _same_stream(subscription, alarm).exclude(alarm_id=alarm.pk)
    last = stream.filter(status=Status.SENT).order_by("-at").values_list("at", flat=True).first()
    since = max(last, now - DIGEST_LOOKBACK) if last else now - DIGEST_LOOKBACK
    return stream.filter(status=Status.SUPPRESSED, at__gt=since).count()


def _deliver(alarm: Alarm, subscription: NotificationSubscription, now: dt.datetime):
    user = subscription.user
    channel = subscription.channel
    address = (getattr(user, CHANNELS[channel].address_field, "") or "").strip()
    with transaction.atomic():
        # One decision at a time per user and channel (PostgreSQL row lock; SQLite serialises
        # writers anyway): two workers must not both pass the rate limit.
        list(NotificationSubscription.objects.select_for_update().filter(pk=subscription.pk))
        if NotificationDelivery.objects.filter(
            alarm_id=alarm.pk, user_id=user.pk, channel=channel
        ).exists():
            return None  # handled by an earlier run of this job
        status, reason = _decide(alarm, subscription, address, now)
        delivery = NotificationDelivery.objects.create(
            alarm=alarm,
            user=user,
            vehicle_id=alarm.vehicle_id,
            channel=channel,
            backend=backend_name(channel),
            address=address,
            status=status,
            error=reason,
            at=now,
            finished_at=None if status == Status.SENDING else now,
        )
    if status != Status.SENDING:
        return status
    error = ""
    try:
        message = render(alarm, channel, held_back=_held_back(alarm, subscription, now))
        notifier_for(channel).send(address, message)
    except DeliveryError as exc:
        error = str(exc)
    except Exception as exc:  # a broken backend must not stop the other recipients
        logger.exception("notification %s failed", delivery.pk)
        error = f"{exc.__class__.__name__}: {exc}"
    status = Status.FAILED if error else Status.SENT
    if error:
        logger.warning("notification of alarm %s to user %s failed: %s", alarm.pk, user.pk, error)
    NotificationDelivery.objects.filter(pk=delivery.pk).update(
        status=status, error=error[:MAX_ERROR], finished_at=timezone.now()
    )
    return status


# --- Subscriptions ---------------------------------------------------------------------------
SUBSCRIPTION_FIELDS = (
    "kinds",
    "min_level",
    "enabled",
    "quiet_from",
    "quiet_to",
    "critical_in_quiet_hours",
)


def _require_self(user, by) -> None:
    if by is not None and by.pk != user.pk and not is_platform_admin(by):
        raise ApplicationError(
            _("You can only change your own notification subscriptions."),
            code="permission_denied",
        )


@transaction.atomic
def notification_subscription_set(*, user, channel: str, by=None, **fields):
    """Create or change `user`'s subscription to `channel` (one per user and channel). Only the
    user themselves (or a platform admin) may; unknown kinds and half-set quiet hours are
    refused by the model's validation."""
    _require_self(user, by)
    unknown = set(fields) - set(SUBSCRIPTION_FIELDS)
    if unknown:
        raise ApplicationError(
            _("These fields cannot be set here: %s") % ", ".join(sorted(unknown))
        )
    if channel not in CHANNELS:
        raise ApplicationError(_("Unknown channel: %s") % channel)
    subscription = (
        NotificationSubscription.objects.select_for_update()
        .filter(user_id=user.pk, channel=channel)
        .first()
    )
    if subscription is None:
        subscription = NotificationSubscription(user=user, channel=channel)
    if "kinds" in fields:
        fields["kinds"] = sorted(set(fields["kinds"] or ()))
    for name, value in fields.items():
        setattr(subscription, name, value)
    if subscription.pk:
        return model_save(subscription, by=by, update_fields=list(fields))
    return model_save(subscription, by=by)


def notification_subscription_delete(*, subscription: NotificationSubscription, by=None) -> None:
    _require_self(subscription.user, by)
    subscription.delete()
