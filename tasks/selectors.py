"""Reads of work orders, field workers and installer performance, scoped by visibility.

The rule (DESIGN.md, visibility): the back office sees the orders of its customer's subtree; a
field worker (installer, salesman, repossession team) sees only the orders assigned to them now,
whatever their customer may see otherwise.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from dataclasses import dataclass, field

from django.conf import settings
from django.db.models import Count, Q, QuerySet
from django.utils import timezone

from accounts.models import Customer, User
from accounts.selectors import is_platform_admin, scope, users_visible_to
from carloan.geo import haversine_m
from tasks import kinds
from tasks.models import WorkerPresence, WorkOrder, WorkOrderRecord
from tasks.stops import Stop, detect_stops

REWORK_WINDOW = dt.timedelta(days=30)
STOPS_WINDOW = dt.timedelta(days=7)
MAX_STOP_FIXES = 100_000  # 7 days at one fix every 6 s: enough for any tracker we know
MAP_MAX_ORDERS = 2_000


def worker_fresh_for() -> dt.timedelta:
    """How old a worker's last position may be for them to count as "available" on the map."""
    return dt.timedelta(minutes=int(getattr(settings, "TASKS_WORKER_FRESH_MINUTES", 30)))


def is_field_worker(user) -> bool:
    return (
        bool(user and user.is_authenticated)
        and getattr(user, "kind", None) in kinds.FIELD_WORKER_KINDS
        and not is_platform_admin(user)
    )


# --- Orders -------------------------------------------------------------------------------------
def work_orders_visible_to(user) -> QuerySet[WorkOrder]:
    """Orders of the user's subtree; a field worker's own assigned orders only."""
    qs = scope(
        WorkOrder.objects.select_related("customer", "vehicle", "assignee", "created_by"), user
    )
    if is_field_worker(user):
        qs = qs.filter(assignee_id=user.pk)
    return qs


def my_work_orders(user, *, status: str = "open") -> QuerySet[WorkOrder]:
    """The phone's list: `status` "open" (default: what is still to do), "closed" or "all".
    Open ones by due time (soonest first, no due time last), closed ones newest first."""
    qs = work_orders_visible_to(user).filter(assignee_id=getattr(user, "pk", None))
    if status == "open":
        from django.db.models import F

        return qs.filter(status__in=WorkOrder.WITH_WORKER).order_by(
            F("due_at").asc(nulls_last=True), "id"
        )
    if status == "closed":
        qs = qs.exclude(status__in=WorkOrder.WITH_WORKER)
    return qs.order_by("-created_at", "-id")


def records_visible_to(user) -> QuerySet[WorkOrderRecord]:
    return WorkOrderRecord.objects.select_related("author").filter(
        order__in=work_orders_visible_to(user).values("pk")
    )


def order_records(order: WorkOrder) -> QuerySet[WorkOrderRecord]:
    return order.records.select_related("author").order_by("at", "id")


# --- Positions ----------------------------------------------------------------------------------
@dataclass(frozen=True)
class Fix:
    lat: float
    lon: float
    at: dt.datetime | None


def current_fixes(vehicle_ids) -> dict[int, Fix]:
    """The position now of each vehicle (the freshest valid fix of its mounted devices, as
    `alarms.selectors.vehicle_current_fix` reads it), for many vehicles in one query."""
    from vehicles.models import DeviceBinding

    out: dict[int, Fix] = {}
    rows = (
        DeviceBinding.objects.filter(
            vehicle_id__in=set(vehicle_ids),
            unbound_at__isnull=True,
            device__last_position__isnull=False,
            device__last_fix_at__isnull=False,
        )
        .values_list("vehicle_id", "device__last_position", "device__last_fix_at")
        .order_by("vehicle_id", "-device__last_fix_at")
    )
    for vehicle_id, point, at in rows:
        if vehicle_id not in out:
            out[vehicle_id] = Fix(lat=point.y, lon=point.x, at=at)
    return out


def order_target(order: WorkOrder) -> Fix | None:
    """Where the order takes the worker: its location, else where its vehicle is now."""
    if order.location is not None:
        return Fix(lat=order.location.y, lon=order.location.x, at=None)
    return current_fixes([order.vehicle_id]).get(order.vehicle_id)


@dataclass(frozen=True)
class VehicleLive:
    position: Fix | None
    stops: list[Stop] = field(default_factory=list)


def vehicle_live(vehicle, *, now: dt.datetime | None = None) -> VehicleLive:
    """A repossession team's view of the car: where it is now and where it stood still (>= 10
    min within 100 m) over the last 7 days, latest first. Valid fixes only; blind-area fixes
    fall into place by their own time."""
    from gateway.selectors import positions_for_track

    now = now or timezone.now()
    fixes = list(
        positions_for_track(vehicle, now - STOPS_WINDOW, now)
        .filter(valid=True)
        .values_list("fix_time", "point")[:MAX_STOP_FIXES]
    )
    stops = detect_stops((at, point.y, point.x) for at, point in fixes)
    stops.reverse()
    return VehicleLive(position=current_fixes([vehicle.pk]).get(vehicle.pk), stops=stops)


# --- Field workers ------------------------------------------------------------------------------
def field_workers_visible_to(user) -> QuerySet[User]:
    """Active field workers of the user's subtree, with their presence row (may be missing)."""
    return (
        users_visible_to(user)
        .filter(kind__in=kinds.FIELD_WORKER_KINDS, is_active=True)
        .select_related("field_presence")
        .order_by("username")
    )


def workers_eligible_for(order: WorkOrder) -> QuerySet[User]:
    """Active users of the kinds this order's kind may go to, belonging to the order's customer
    or one of its ancestors (so they see its vehicle). Function permissions are checked by the
    assign service, per person."""
    bounds = Customer.objects.filter(pk=order.customer_id).values("tree_id", "lft", "rght").first()
    if bounds is None:
        return User.objects.none()
    return User.objects.filter(
        is_active=True,
        kind__in=kinds.kind_of(order.kind).worker_kinds,
        customer__tree_id=bounds["tree_id"],
        customer__lft__lte=bounds["lft"],
        customer__rght__gte=bounds["rght"],
    )


@dataclass(frozen=True)
class Suggestion:
    user: User
    distance_m: float | None
    position_at: dt.datetime | None
    open_orders: int


def workers_suggested_for(
    order: WorkOrder, *, now: dt.datetime | None = None, limit: int = 5
) -> list[Suggestion]:
    """The nearest available workers for an order: eligible, on duty, with a position reported
    within `worker_fresh_for()`, who may work on orders; nearest to the order's target first
    (fewest open orders first when the order has no position)."""
    now = now or timezone.now()
    target = order_target(order)
    candidates = (
        workers_eligible_for(order)
        .filter(
            field_presence__on_duty=True,
            field_presence__point__isnull=False,
            field_presence__at__gte=now - worker_fresh_for(),
        )
        .exclude(pk=order.assignee_id)
        .select_related("field_presence", "customer")
        .annotate(
            n_open=Count("work_orders", filter=Q(work_orders__status__in=WorkOrder.WITH_WORKER))
        )
    )
    out = []
    for user in candidates:
        if not user.has_perm("tasks.work_workorder"):
            continue
        presence = user.field_presence
        distance = (
            haversine_m(target.lat, target.lon, presence.point.y, presence.point.x)
            if target is not None
            else None
        )
        out.append(Suggestion(user, distance, presence.at, user.n_open))
    out.sort(
        key=lambda s: (
            s.distance_m if s.distance_m is not None else float("inf"),
            s.open_orders,
            s.user.username,
        )
    )
    return out[:limit]


# --- The map of open orders and workers --------------------------------------------------------
def map_snapshot(user, *, customer_id: int | None = None, now: dt.datetime | None = None) -> dict:
    """Open orders (at their location, else where their vehicle is now) and the field workers
    with a position, for the back office's map. Three queries."""
    now = now or timezone.now()
    orders = work_orders_visible_to(user).filter(status__in=WorkOrder.OPEN)
    workers = field_workers_visible_to(user).filter(field_presence__point__isnull=False)
    if customer_id is not None:
        orders = orders.filter(customer_id=customer_id)
        workers = workers.filter(customer_id=customer_id)
    orders = list(orders.order_by("due_at", "id")[:MAP_MAX_ORDERS])
    fixes = current_fixes(o.vehicle_id for o in orders if o.location is None)
    order_rows = []
    for o in orders:
        where = (
            Fix(o.location.y, o.location.x, None)
            if o.location is not None
            else fixes.get(o.vehicle_id)
        )
        order_rows.append(
            {
                "id": o.pk,
                "kind": o.kind,
                "kind_display": str(o.get_kind_display()),
                "status": o.status,
                "status_display": str(o.get_status_display()),
                "plate": o.vehicle.plate,
                "assignee": o.assignee.username if o.assignee_id else None,
                "due_at": timezone.localtime(o.due_at).isoformat() if o.due_at else None,
                "overdue": o.is_overdue(now),
                "address": o.address,
                "lat": round(where.lat, 7) if where else None,
                "lon": round(where.lon, 7) if where else None,
                "at_vehicle": o.location is None,
            }
        )
    fresh = now - worker_fresh_for()
    worker_rows = []
    for w in workers:
        presence = w.field_presence
        worker_rows.append(
            {
                "id": w.pk,
                "username": w.username,
                "name": w.get_full_name() or w.username,
                "kind": w.kind,
                "kind_display": str(w.get_kind_display()),
                "lat": round(presence.point.y, 7),
                "lon": round(presence.point.x, 7),
                "at": timezone.localtime(presence.at).isoformat() if presence.at else None,
                "on_duty": presence.on_duty,
                "fresh": presence.at is not None and presence.at >= fresh,
            }
        )
    return {"orders": order_rows, "workers": worker_rows}


def presence_of(user) -> WorkerPresence | None:
    return WorkerPresence.objects.filter(user_id=user.pk).first()


# --- Installer performance (K1) -----------------------------------------------------------------
@dataclass
class InstallerStats:
    user_id: int
    username: str
    name: str
    customer: str
    installs: int = 0
    with_due: int = 0
    on_time: int = 0
    reworked: int = 0
    failed: int = 0
    repairs: int = 0
    durations: list[float] = field(default_factory=list)  # minutes, start -> finish

    @property
    def on_time_rate(self) -> float | None:
        return self.on_time / self.with_due if self.with_due else None

    @property
    def rework_rate(self) -> float | None:
        return self.reworked / self.installs if self.installs else None

    @property
    def average_minutes(self) -> float | None:
        return sum(self.durations) / len(self.durations) if self.durations else None


def installer_performance(
    user, *, since: dt.datetime, until: dt.datetime, customer_id: int | None = None
) -> list[InstallerStats]:
    """Per installer, orders finished in [since, until) among the orders `user` sees:
    installs done (done or verified), on time (finished by the due time, among those that had
    one), reworked (the vehicle got a repair order, not cancelled, within 30 days after the
    install finished), failed installs, repairs done, and the average time from start to finish.
    Orders of `customer_id`'s subtree only when given. Three queries."""
    finished = WorkOrder.Status.DONE, WorkOrder.Status.VERIFIED
    qs = work_orders_visible_to(user).filter(
        kind__in=(kinds.INSTALL, kinds.REPAIR),
        assignee__isnull=False,
        finished_at__gte=since,
        finished_at__lt=until,
        status__in=(*finished, WorkOrder.Status.FAILED),
    )
    if customer_id is not None:
        bounds = Customer.objects.filter(pk=customer_id).values("tree_id", "lft", "rght").first()
        if bounds is None:
            return []
        qs = qs.filter(
            customer__tree_id=bounds["tree_id"],
            customer__lft__gte=bounds["lft"],
            customer__lft__lte=bounds["rght"],
        )
    rows = list(
        qs.values(
            "pk",
            "kind",
            "status",
            "vehicle_id",
            "due_at",
            "started_at",
            "finished_at",
            "assignee_id",
            "assignee__username",
            "assignee__first_name",
            "assignee__last_name",
            "assignee__customer__name",
        )
    )
    installs = [r for r in rows if r["kind"] == kinds.INSTALL and r["status"] in finished]
    # Repairs of those vehicles (any customer's, any time after the first install): a repair
    # after an install says the install was not right, whoever repaired it.
    repairs_by_vehicle: dict[int, list[dt.datetime]] = defaultdict(list)
    if installs:
        earliest = min(r["finished_at"] for r in installs)
        for vehicle_id, created_at in (
            WorkOrder.objects.filter(
                kind=kinds.REPAIR,
                vehicle_id__in={r["vehicle_id"] for r in installs},
                created_at__gt=earliest,
            )
            .exclude(status=WorkOrder.Status.CANCELLED)
            .values_list("vehicle_id", "created_at")
        ):
            repairs_by_vehicle[vehicle_id].append(created_at)

    stats: dict[int, InstallerStats] = {}
    for r in rows:
        s = stats.get(r["assignee_id"])
        if s is None:
            name = f"{r['assignee__first_name']} {r['assignee__last_name']}".strip()
            s = stats[r["assignee_id"]] = InstallerStats(
                user_id=r["assignee_id"],
                username=r["assignee__username"],
                name=name or r["assignee__username"],
                customer=r["assignee__customer__name"] or "",
            )
        if r["kind"] == kinds.REPAIR:
            if r["status"] in finished:
                s.repairs += 1
            continue
        if r["status"] == WorkOrder.Status.FAILED:
            s.failed += 1
            continue
        s.installs += 1
        if r["due_at"] is not None:
            s.with_due += 1
            s.on_time += r["finished_at"] <= r["due_at"]
        if r["started_at"] is not None:
            s.durations.append((r["finished_at"] - r["started_at"]).total_seconds() / 60)
        end = r["finished_at"] + REWORK_WINDOW
        if any(r["finished_at"] < t <= end for t in repairs_by_vehicle.get(r["vehicle_id"], ())):
            s.reworked += 1
    return sorted(stats.values(), key=lambda s: (-s.installs, s.username))
