"""Reads of alarms, scoped by visibility (see accounts.selectors), and who may be told of them.

An alarm is visible to a user when its customer (the vehicle's customer when it was raised) is
in the user's subtree, or when its vehicle is shared with the user (django-guardian, a live
vehicle); a platform admin sees every alarm; an inactive or customer-less user none. The same
rule decides the admin, the API, the live push and the e-mail / SMS recipients.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable

from django.db.models import F, Prefetch, Q, QuerySet
from django.db.models.functions import Coalesce

from accounts.selectors import subtree_q
from alarms.models import Alarm, AlarmEvent
from vehicles.models import VehicleUserObjectPermission


def _shared_vehicle_ids(user) -> list[int]:
    if not (user and user.is_authenticated and user.is_active):
        return []
    return list(
        VehicleUserObjectPermission.objects.filter(
            user_id=user.pk, permission__codename="view_vehicle"
        ).values_list("content_object_id", flat=True)
    )


def alarms_visible_to(user) -> QuerySet[Alarm]:
    """Alarms of the user's subtree plus those of vehicles shared with them."""
    qs = Alarm.objects.all()
    q = subtree_q(user)
    if q is None:
        return qs
    # The (few) shared ids are read first, as accounts.selectors.shared_q does: an OR over a
    # subquery would keep the planner off the customer index for everyone.
    shared = _shared_vehicle_ids(user)
    if shared:
        q |= Q(vehicle_id__in=shared, vehicle__deleted_at__isnull=True)
    return qs.filter(q)


def alarms_for_list(user) -> QuerySet[Alarm]:
    """Visible alarms with what a list shows, newest first: the vehicle's plate and VIN, the
    customer's name, the device id and the handler (who closed it, else who acknowledged it)
    come from joins, so a page costs the same number of queries at any size."""
    return (
        alarms_visible_to(user)
        .annotate(
            plate=F("vehicle__plate"),
            vin=F("vehicle__vin"),
            customer_name=F("customer__name"),
            device_identifier=F("device__identifier"),
            acknowledged_by_name=F("acknowledged_by__username"),
            closed_by_name=F("closed_by__username"),
            handler=Coalesce(F("closed_by__username"), F("acknowledged_by__username")),
        )
        .order_by("-raised_at", "-id")
    )


def alarm_events(alarm_id: int) -> QuerySet[AlarmEvent]:
    return AlarmEvent.objects.filter(alarm_id=alarm_id).select_related("by").order_by("at", "id")


def alarms_for_detail(user) -> QuerySet[Alarm]:
    """Visible alarms with their relations and handling history loaded (three queries)."""
    return alarms_for_list(user).prefetch_related(
        Prefetch("events", queryset=AlarmEvent.objects.select_related("by").order_by("at", "id"))
    )


def deliveries_visible_to(user) -> QuerySet:
    """The notification log a user may read: deliveries of alarms of their subtree to users of
    their subtree (platform admins stay out of tenants' lists, as in `users_visible_to`), plus
    the deliveries to themselves."""
    from alarms.notify.models import NotificationDelivery

    qs = NotificationDelivery.objects.all()
    q = subtree_q(user)
    if q is None:
        return qs
    if not (user and user.is_authenticated and user.is_active):
        return qs.none()
    tenant = subtree_q(user, "alarm__customer") & subtree_q(user, "user__customer")
    return qs.filter((tenant & Q(user__is_superuser=False)) | Q(user_id=user.pk))


# --- Who may be told ---------------------------------------------------------------------------
def subscriptions_for_alarms(alarms: Iterable[Alarm]) -> dict[int, list]:
    """For each alarm id, the enabled subscriptions (with `user`) that want it and whose user may
    see it now: an active user who can log in, holds `alarms.view_alarm`, and to whom
    `alarms_visible_to` shows the alarm. Nobody else, whatever they subscribed to.

    Candidates are narrowed in SQL (users of the alarm customers' ancestor line, users the
    vehicles are shared with, platform admins); each candidate is then confirmed with the very
    selector the admin and the API use: a few queries per subscribed candidate, not per alarm."""
    from accounts.backends import RoleModelBackend
    from accounts.models import Customer
    from alarms.notify.models import NotificationSubscription

    alarms = list(alarms)
    result: dict[int, list] = {a.pk: [] for a in alarms}
    if not alarms:
        return result
    lines = Q(pk__in=[])
    for bounds in Customer.objects.filter(pk__in={a.customer_id for a in alarms}).values(
        "tree_id", "lft", "rght"
    ):
        # The user's customer is the alarm's customer or one of its ancestors.
        lines |= Q(
            user__customer__tree_id=bounds["tree_id"],
            user__customer__lft__lte=bounds["lft"],
            user__customer__rght__gte=bounds["rght"],
        )
    vehicle_ids = {a.vehicle_id for a in alarms if a.vehicle_id}
    if vehicle_ids:
        lines |= Q(
            user_id__in=VehicleUserObjectPermission.objects.filter(
                content_object_id__in=vehicle_ids, permission__codename="view_vehicle"
            ).values("user_id")
        )
    candidates = (
        NotificationSubscription.objects.filter(enabled=True, user__is_active=True)
        .filter(lines | Q(user__is_superuser=True))
        .select_related("user", "user__customer")
        .order_by("user_id", "channel")
    )
    by_user: dict[int, list] = defaultdict(list)
    for sub in candidates:
        by_user[sub.user_id].append(sub)
    backend = RoleModelBackend()
    ids = [a.pk for a in alarms]
    for subs in by_user.values():
        user = subs[0].user
        if not backend.user_can_authenticate(user) or not user.has_perm("alarms.view_alarm"):
            continue
        visible = set(alarms_visible_to(user).filter(pk__in=ids).values_list("pk", flat=True))
        for alarm in alarms:
            if alarm.pk not in visible:
                continue
            result[alarm.pk].extend(s for s in subs if s.matches(alarm.kind, alarm.level))
    return result
