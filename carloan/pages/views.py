"""The monitoring pages (FEATURES.md M1–M4): dashboard, live map, track playback, alarm centre.

Server-rendered; the live parts are small vendored-JS front ends fed by JSON endpoints here and
in the REST API, and by the WebSocket `/ws/live/`. Every endpoint is scoped by visibility: another
tenant's vehicle answers 404."""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.http import Http404, JsonResponse
from django.shortcuts import render
from django.utils.translation import gettext as _
from django.views.decorators.gzip import gzip_page
from django.views.decorators.http import require_GET

from carloan.maps import map_config
from carloan.pages import selectors
from vehicles.selectors import vehicles_visible_to


@login_required
def dashboard(request):
    return render(
        request,
        "pages/dashboard.html",
        {"title": _("Home"), "counts": selectors.dashboard_counts(request.user)},
    )


@login_required
def monitor(request):
    return render(
        request,
        "pages/monitor.html",
        {
            "title": _("Live monitoring"),
            # The sidebar's tree: small (one row per customer), so it rides in the page, not
            # in the snapshot the page re-reads after every reconnect.
            "customer_tree": selectors.customer_tree(request.user),
            "map_config": map_config(),
        },
    )


@login_required
def playback(request):
    vehicle = None
    if request.GET.get("vehicle"):
        vehicle = vehicles_visible_to(request.user).filter(pk=request.GET["vehicle"]).first()
    return render(
        request,
        "pages/playback.html",
        {"title": _("Track playback"), "vehicle": vehicle, "map_config": map_config()},
    )


@login_required
def alarm_centre(request):
    return render(
        request,
        "pages/alarms.html",
        {
            "title": _("Alarm centre"),
            # The buttons are hidden without the permission; the API refuses anyway (403).
            "can_handle": request.user.has_perm("alarms.handle_alarm"),
        },
    )


@login_required
@require_GET
@gzip_page  # ~1 MB of JSON for 10,000 vehicles, a few hundred kB compressed; holds no secret
def snapshot(request):
    """Every visible vehicle in one compact call (the live map's first paint)."""
    return JsonResponse(selectors.live_snapshot(request.user))


@login_required
@require_GET
def vehicle_panel(request, pk: int):
    panel = selectors.vehicle_panel(request.user, pk)
    if panel is None:
        raise Http404
    return JsonResponse(panel)
