"""Notification models (R7): who wants which alarms by e-mail or SMS, and what was sent.

Imported at the end of `alarms/models.py`, so they belong to the alarms app (migrations in
`alarms/migrations/`).

- `NotificationSubscription`: one per user and channel: the kinds (empty = every kind), the
  minimum level, on/off, optional quiet hours (local time) with or without critical alarms.
- `NotificationDelivery`: the delivery log, one row per alarm, user and channel: sent, failed
  (with the backend's error), suppressed (quiet hours, rate limit) or still sending. The unique
  key makes a retried job skip what it already handled.
"""

from __future__ import annotations

import datetime as dt

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models
from django.utils.translation import gettext_lazy as _

from alarms import kinds
from alarms.models import Alarm, Level
from alarms.notify.registry import channel_choices
from vehicles.models import Vehicle


class NotificationSubscription(models.Model):
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("user"),
        on_delete=models.CASCADE,
        related_name="notification_subscriptions",
    )
    channel = models.CharField(_("channel"), max_length=20, choices=channel_choices)
    kinds = models.JSONField(
        _("alarm kinds"),
        default=list,
        blank=True,
        help_text=_("Leave empty to receive every kind."),
    )
    min_level = models.PositiveSmallIntegerField(
        _("minimum level"), choices=Level.choices, default=Level.WARNING
    )
    enabled = models.BooleanField(_("enabled"), default=True)
    quiet_from = models.TimeField(
        _("quiet hours from"), null=True, blank=True, help_text=_("Local time; may wrap midnight.")
    )
    quiet_to = models.TimeField(_("quiet hours until"), null=True, blank=True)
    critical_in_quiet_hours = models.BooleanField(
        _("critical alarms even in quiet hours"), default=True
    )
    updated_at = models.DateTimeField(_("updated"), auto_now=True)

    class Meta:
        verbose_name = _("notification subscription")
        verbose_name_plural = _("notification subscriptions")
        ordering = ["user_id", "channel"]
        constraints = [
            models.UniqueConstraint(
                fields=["user", "channel"],
                name="notificationsubscription_one_per_user_channel",
                violation_error_message=_("You already have a subscription for this channel."),
            )
        ]

    def __str__(self) -> str:
        return f"{self.user} / {self.get_channel_display()}"

    def clean(self) -> None:
        if not isinstance(self.kinds, list) or not all(isinstance(k, str) for k in self.kinds):
            raise ValidationError({"kinds": _("A list of alarm kinds.")})
        unknown = sorted(set(self.kinds) - set(kinds.KINDS))
        if unknown:
            raise ValidationError(
                {"kinds": _("Unknown alarm kinds: %(kinds)s") % {"kinds": ", ".join(unknown)}}
            )
        if (self.quiet_from is None) != (self.quiet_to is None):
            raise ValidationError(_("Quiet hours need both a start and an end."))
        if self.quiet_from is not None and self.quiet_from == self.quiet_to:
            raise ValidationError(_("Quiet hours must not start and end at the same time."))

    def matches(self, kind: str, level: int) -> bool:
        """Does an alarm of `kind` at `level` concern this subscription (on/off aside)?"""
        return (not self.kinds or kind in self.kinds) and level >= self.min_level

    def is_quiet(self, local: dt.time) -> bool:
        """Is `local` (the site's wall-clock time) inside the quiet hours? [from, to), and a
        range like 22:00-07:00 wraps midnight."""
        start, end = self.quiet_from, self.quiet_to
        if start is None or end is None:
            return False
        if start < end:
            return start <= local < end
        return local >= start or local < end


class NotificationDelivery(models.Model):
    class Status(models.TextChoices):
        SENDING = "sending", _("sending")
        SENT = "sent", _("sent")
        FAILED = "failed", _("failed")
        SUPPRESSED = "suppressed", _("suppressed")

    alarm = models.ForeignKey(
        Alarm, verbose_name=_("alarm"), on_delete=models.CASCADE, related_name="deliveries"
    )
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("recipient"),
        on_delete=models.CASCADE,
        related_name="+",
    )
    # The alarm's vehicle, copied: the rate limit counts per user, vehicle and channel.
    vehicle = models.ForeignKey(
        Vehicle,
        verbose_name=_("vehicle"),
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="+",
    )
    channel = models.CharField(_("channel"), max_length=20, choices=channel_choices)
    backend = models.CharField(_("backend"), max_length=20, blank=True)
    address = models.CharField(_("address"), max_length=254, blank=True)
    status = models.CharField(_("status"), max_length=20, choices=Status.choices)
    error = models.TextField(_("error"), blank=True)
    at = models.DateTimeField(_("time"), db_index=True)
    finished_at = models.DateTimeField(_("finished"), null=True, blank=True)

    class Meta:
        verbose_name = _("notification delivery")
        verbose_name_plural = _("notification deliveries")
        ordering = ["-at", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["alarm", "user", "channel"], name="notificationdelivery_once"
            )
        ]
        indexes = [
            # The rate limit: recent deliveries of one user, channel and vehicle.
            models.Index(fields=["user", "channel", "vehicle", "-at"], name="notifdelivery_rate")
        ]

    def __str__(self) -> str:
        return f"{self.alarm_id} -> {self.user_id} ({self.channel}): {self.status}"
