"""System checks of the notification settings: a backend that is switched on but incomplete
stops every command (runserver, migrate, run_gateway, qcluster ...) at start-up with a clear
message, instead of failing on the first alarm."""

from __future__ import annotations

from django.conf import settings
from django.core import checks

DELIVERY_MODES = ("queue", "inline")


@checks.register(checks.Tags.compatibility)
def check_notification_settings(app_configs=None, **kwargs) -> list[checks.CheckMessage]:
    from alarms.notify.registry import CHANNELS, NOTIFIERS, backend_name, notifier_class

    problems: list[checks.CheckMessage] = []
    for channel in CHANNELS.values():
        name = backend_name(channel.code)
        if name not in NOTIFIERS:
            problems.append(
                checks.Error(
                    f"{channel.backend_setting}={name!r} is not a notification backend.",
                    hint="One of: " + ", ".join(NOTIFIERS),
                    id="alarms.E001",
                )
            )
            continue
        for error in notifier_class(name).config_errors(settings):
            problems.append(
                checks.Error(
                    f"{channel.backend_setting}={name}: {error}.",
                    hint="Complete the settings (see .env.example) or choose another backend.",
                    id="alarms.E002",
                )
            )
    mode = getattr(settings, "NOTIFY_DELIVERY", "queue")
    if mode not in DELIVERY_MODES:
        problems.append(
            checks.Error(
                f"NOTIFY_DELIVERY={mode!r}: use 'queue' or 'inline'.",
                id="alarms.E003",
            )
        )
    elif mode == "queue" and "django_q" not in settings.INSTALLED_APPS:
        problems.append(
            checks.Warning(
                "NOTIFY_DELIVERY=queue but django-q2 is not installed: notifications are sent "
                "inline by the process that raised the alarm.",
                id="alarms.W001",
            )
        )
    limit = getattr(settings, "NOTIFY_RATE_LIMIT", 3)
    window = getattr(settings, "NOTIFY_RATE_WINDOW_S", 600)
    if not (isinstance(limit, int) and limit >= 1 and isinstance(window, int) and window >= 1):
        problems.append(
            checks.Error(
                "NOTIFY_RATE_LIMIT and NOTIFY_RATE_WINDOW_S must be whole numbers >= 1.",
                id="alarms.E004",
            )
        )
    map_url = getattr(settings, "ALARM_MAP_URL", "")
    try:
        map_url.format(lat=0.0, lon=0.0)
    except (KeyError, IndexError, ValueError, AttributeError):
        problems.append(
            checks.Error(
                "ALARM_MAP_URL may use only the placeholders {lat} and {lon}.",
                id="alarms.E005",
            )
        )
    return problems
