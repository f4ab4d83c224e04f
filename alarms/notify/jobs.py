"""django-q2 entry points of notifications: take ids, call one service."""

from __future__ import annotations


def deliver_notifications(alarm_ids: list[int]) -> dict:
    from alarms.notify.services import notifications_deliver

    return notifications_deliver(alarm_ids=alarm_ids)
