"""The text of an alarm notification: a one-line SMS and an e-mail, in the site's language
(`LANGUAGE_CODE`; accounts carry no language of their own yet)."""

from __future__ import annotations

from django.conf import settings
from django.urls import reverse
from django.utils import timezone, translation
from django.utils.translation import gettext as _

from alarms.models import Alarm
from alarms.notify.backends.base import Message

SMS_MAX = 300  # characters; gateways split longer texts into several billed messages


def map_url(alarm: Alarm) -> str:
    if alarm.point is None:
        return ""
    return settings.ALARM_MAP_URL.format(lat=round(alarm.point.y, 6), lon=round(alarm.point.x, 6))


def admin_url(alarm: Alarm) -> str:
    base = getattr(settings, "NOTIFY_SITE_URL", "").rstrip("/")
    if not base:
        return ""
    return base + reverse("admin:alarms_alarm_change", args=[alarm.pk])


def _subject_of(alarm: Alarm) -> str:
    if alarm.vehicle_id is not None and alarm.vehicle is not None:
        return alarm.vehicle.plate
    if alarm.device_id is not None and alarm.device is not None:
        return alarm.device.identifier
    return "-"


def render(alarm: Alarm, channel: str, *, held_back: int = 0) -> Message:
    with translation.override(settings.LANGUAGE_CODE):
        values = {
            "title": settings.PLATFORM_TITLE,
            "vehicle": _subject_of(alarm),
            "kind": alarm.get_kind_display(),
            "level": alarm.get_level_display(),
            "time": timezone.localtime(alarm.started_at).strftime("%Y-%m-%d %H:%M"),
        }
        subject = _("[%(title)s] %(level)s alarm: %(kind)s, %(vehicle)s") % values
        text = _("%(title)s: %(vehicle)s %(kind)s (%(level)s) at %(time)s") % values
        if alarm.target_name:
            text += f" {alarm.target_name}"
        if alarm.message:
            text += f" {alarm.message}"
        lines = [
            _("Alarm: %(kind)s") % values,
            _("Level: %(level)s") % values,
            _("Vehicle: %(vehicle)s") % values,
            _("Customer: %(customer)s") % {"customer": alarm.customer.name},
            _("Since: %(time)s") % values,
        ]
        if alarm.target_name:
            lines.append(_("Where: %(target)s") % {"target": alarm.target_name})
        if alarm.message:
            lines.append(alarm.message)
        if alarm.speed_kmh is not None:
            lines.append(_("Speed: %(speed).0f km/h") % {"speed": alarm.speed_kmh})
        if alarm.point is not None:
            lines.append(
                _("Position: %(lat).6f, %(lon).6f %(url)s")
                % {"lat": alarm.point.y, "lon": alarm.point.x, "url": map_url(alarm)}
            )
        link = admin_url(alarm)
        if link:
            lines.append(_("Handle it: %(url)s") % {"url": link})
        if held_back:
            note = _(
                "%(n)d earlier alarm(s) of this vehicle were not sent to you (quiet hours or "
                "the rate limit); they are in the alarm list."
            ) % {"n": held_back}
            lines.append(note)
            text += " " + _("(+%(n)d not sent)") % {"n": held_back}
    return Message(
        channel=channel, subject=subject, text=text[:SMS_MAX], body="\n".join(lines) + "\n"
    )
