"""Alarm notifications (R7): live push, e-mail and SMS.

`alarm_notify(alarm_ids)` is the hook `alarms.services.lifecycle.alarm_raise` calls after the
commit that stored new alarms (never for repeats of an open alarm). It publishes each alarm on
the live feed at once and hands e-mail / SMS delivery to the worker (`NOTIFY_DELIVERY=queue`,
django-q2) or runs it inline (`inline`). See `alarms.notify.services` for who receives what.

This package is imported while the alarms app loads (its models are the app's): keep this
module free of model imports.
"""

from __future__ import annotations

from alarms.notify import checks  # noqa: F401  (registers the system checks)


def alarm_notify(alarm_ids: list[int]) -> None:
    from alarms.notify.services import alarm_notify as notify

    notify(alarm_ids=alarm_ids)


__all__ = ["alarm_notify"]
