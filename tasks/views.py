"""Back-office pages of field work: the task board, the map of open orders and field workers,
and installer performance with its Excel export. Server-rendered; every query goes through the
visibility selectors (another tenant's customer in a filter reads as "all of mine")."""

from __future__ import annotations

import datetime as dt

from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import JsonResponse
from django.shortcuts import render
from django.urls import reverse
from django.utils import timezone
from django.utils.dateparse import parse_date
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET

from accounts.selectors import customers_visible_to
from carloan.maps import map_config
from tasks.kinds import kind_choices
from tasks.models import WorkOrder
from tasks.selectors import (
    field_workers_visible_to,
    installer_performance,
    map_snapshot,
    work_orders_visible_to,
)

BOARD_COLUMNS = [
    WorkOrder.Status.CREATED,
    WorkOrder.Status.ASSIGNED,
    WorkOrder.Status.ACCEPTED,
    WorkOrder.Status.IN_PROGRESS,
    WorkOrder.Status.DONE,
    WorkOrder.Status.FAILED,
]
CARDS_PER_COLUMN = 100


def _require_view(request) -> None:
    if not request.user.has_perm("tasks.view_workorder"):
        raise PermissionDenied


def _int(value: str | None) -> int | None:
    return int(value) if value and value.isdigit() else None


def _filters(request) -> dict:
    """The board's and the map's filters, each checked against what the user may see."""
    customers = (
        customers_visible_to(request.user).only("pk", "name", "level").order_by("tree_id", "lft")
    )
    customer_id = _int(request.GET.get("customer"))
    if customer_id is not None and not customers.filter(pk=customer_id).exists():
        customer_id = None
    kind = request.GET.get("kind") or ""
    kinds = dict(kind_choices())
    if kind not in kinds:
        kind = ""
    status = request.GET.get("status") or ""
    if status not in WorkOrder.Status.values:
        status = ""
    assignee_id = _int(request.GET.get("assignee"))
    workers = (
        field_workers_visible_to(request.user)
        .select_related(None)
        .only("pk", "username", "first_name", "last_name", "kind")
    )
    return {
        "customers": customers,
        "customer_id": customer_id,
        "kinds": kind_choices(),
        "kind": kind,
        "statuses": WorkOrder.Status.choices,
        "status": status,
        "workers": workers,
        "assignee_id": assignee_id,
    }


@login_required
@require_GET
def board(request):
    """The task board of a customer (its subtree): one column per status, filtered by kind,
    status and assignee; overdue cards stand out."""
    _require_view(request)
    f = _filters(request)
    qs = work_orders_visible_to(request.user)
    if f["customer_id"] is not None:
        customer = customers_visible_to(request.user).get(pk=f["customer_id"])
        qs = qs.filter(
            customer__tree_id=customer.tree_id,
            customer__lft__gte=customer.lft,
            customer__lft__lte=customer.rght,
        )
    if f["kind"]:
        qs = qs.filter(kind=f["kind"])
    if f["assignee_id"] is not None:
        qs = qs.filter(assignee_id=f["assignee_id"])
    statuses = [f["status"]] if f["status"] else BOARD_COLUMNS
    now = timezone.now()
    columns = []
    for status in statuses:
        in_column = qs.filter(status=status)
        ordering = ("due_at", "id") if status in WorkOrder.OPEN else ("-finished_at", "-id")
        cards = list(in_column.order_by(*ordering)[:CARDS_PER_COLUMN])
        total = len(cards) if len(cards) < CARDS_PER_COLUMN else in_column.count()
        columns.append(
            {
                "status": status,
                "label": WorkOrder.Status(status).label,
                "cards": [{"order": o, "overdue": o.is_overdue(now)} for o in cards],
                "total": total,
                "more": total - len(cards),
            }
        )
    return render(
        request,
        "tasks/board.html",
        {
            "title": _("Task board"),
            "columns": columns,
            "can_open_admin": request.user.is_staff,
            **f,
        },
    )


@login_required
@require_GET
def task_map(request):
    _require_view(request)
    f = _filters(request)
    labels = {
        "assignee": _("Assignee"),
        "unassigned": _("unassigned"),
        "due": _("Due"),
        "overdue": _("overdue"),
        "at vehicle": _("at the vehicle's position now"),
        "no position": _("without a position"),
        "last position": _("Last position"),
        "on duty": _("on duty"),
        "off duty": _("off duty"),
        "stale": _("position is old"),
        "open in admin": _("Open"),
        "updated": _("Updated"),
        "failed": _("Could not load the map data."),
    }
    return render(
        request,
        "tasks/map.html",
        {
            "title": _("Field work map"),
            "map_labels": labels,
            "admin_change_url": (
                reverse("admin:tasks_workorder_change", args=[0]) if request.user.is_staff else ""
            ),
            **f,
            "map_config": map_config(),
        },
    )


@login_required
@require_GET
def map_data(request):
    """Open orders and field workers for the map, in one call."""
    _require_view(request)
    f = _filters(request)
    return JsonResponse(map_snapshot(request.user, customer_id=f["customer_id"]))


def _date(value: str | None) -> dt.date | None:
    """A YYYY-MM-DD date, or None (parse_date raises for a well-formed impossible date)."""
    try:
        return parse_date(value) if value else None
    except ValueError:
        return None


def _period(request) -> tuple[dt.date, dt.date, list[str]]:
    """[since, until] as dates (until inclusive); default the current month so far."""
    today = timezone.localdate()
    errors = []
    since, until = _date(request.GET.get("since")), _date(request.GET.get("until"))
    if request.GET.get("since") and since is None:
        errors.append(_("The start date is not a date (YYYY-MM-DD)."))
    if request.GET.get("until") and until is None:
        errors.append(_("The end date is not a date (YYYY-MM-DD)."))
    since = since or today.replace(day=1)
    until = until or today
    if since > until:
        errors.append(_("The start date is after the end date."))
        since, until = until, since
    if (until - since).days > 366:
        errors.append(_("At most one year at a time; the period was shortened."))
        since = until - dt.timedelta(days=366)
    return since, until, errors


def _bounds(since: dt.date, until: dt.date) -> tuple[dt.datetime, dt.datetime]:
    tz = timezone.get_current_timezone()
    start = dt.datetime.combine(since, dt.time.min, tzinfo=tz)
    end = dt.datetime.combine(until + dt.timedelta(days=1), dt.time.min, tzinfo=tz)
    return start, end


@login_required
@require_GET
def performance(request):
    """Installer performance (K1) over a period: installs, on-time rate, rework rate (repairs
    within 30 days of an install), average duration; `?format=xlsx` downloads it."""
    _require_view(request)
    f = _filters(request)
    since, until, errors = _period(request)
    start, end = _bounds(since, until)
    rows = installer_performance(request.user, since=start, until=end, customer_id=f["customer_id"])
    if request.GET.get("format") == "xlsx":
        from tasks.exports import performance_xlsx_response

        return performance_xlsx_response(rows, since=since, until=until)
    query = request.GET.copy()
    query["format"] = "xlsx"
    return render(
        request,
        "tasks/performance.html",
        {
            "title": _("Installer performance"),
            "rows": rows,
            "since": since,
            "until": until,
            "errors": errors,
            "xlsx_query": query.urlencode(),
            **f,
        },
    )
