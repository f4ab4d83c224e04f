"""Positions (read-only, scoped), unknown devices (platform admins add them in one click), the
gateway processes' status page and the devices whose frames were dropped."""

from __future__ import annotations

import datetime as dt

from django import forms
from django.contrib import admin
from django.utils import timezone
from django.utils.html import format_html, format_html_join
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext

from accounts.selectors import is_platform_admin
from carloan.admin import BulkForm, ReadOnlyAdmin, admin_site, bulk_form_action
from devices.models import DeviceKind
from gateway import services
from gateway.models import DeviceDrop, GatewayStatus, Position, UnknownDevice
from gateway.selectors import (
    device_drops_visible_to,
    gateway_status_visible_to,
    positions_visible_to,
    unknown_devices_visible_to,
)


class AddDeviceForm(BulkForm):
    customer = forms.ModelChoiceField(label=_("Customer"), queryset=None)
    kind = forms.ChoiceField(label=_("wired / wireless"), choices=DeviceKind.choices)
    model = forms.ModelChoiceField(label=_("device model"), queryset=None, required=False)

    def __init__(self, *args, user=None, **kwargs):
        super().__init__(*args, user=user, **kwargs)
        from accounts.selectors import customers_visible_to
        from devices.selectors import device_models_visible_to

        self.fields["customer"].queryset = customers_visible_to(user).order_by("tree_id", "lft")
        self.fields["model"].queryset = device_models_visible_to(user)


def add_as_device(request, queryset, data):
    count = 0
    for unknown in queryset:
        services.device_from_unknown(
            unknown=unknown,
            customer=data["customer"],
            kind=data["kind"],
            model=data["model"],
            by=request.user,
        )
        count += 1
    return ngettext("%(n)d device added to %(c)s.", "%(n)d devices added to %(c)s.", count) % {
        "n": count,
        "c": data["customer"],
    }


@admin.register(UnknownDevice, site=admin_site)
class UnknownDeviceAdmin(ReadOnlyAdmin):
    list_display = [
        "identifier",
        "protocol",
        "remote_address",
        "first_seen",
        "last_seen",
        "frame_count",
    ]
    list_filter = ["protocol"]
    search_fields = ["identifier", "remote_address"]
    actions = [
        bulk_form_action(
            form_class=AddDeviceForm,
            apply=add_as_device,
            description=_("Add as device"),
            permission="add_device",
        )
    ]

    def visible_queryset(self, request):
        return unknown_devices_visible_to(request.user)

    def has_module_permission(self, request):
        return is_platform_admin(request.user)

    def has_view_permission(self, request, obj=None):
        return is_platform_admin(request.user)

    def has_add_device_permission(self, request):
        return is_platform_admin(request.user)


@admin.register(Position, site=admin_site)
class PositionAdmin(ReadOnlyAdmin):
    list_display = [
        "fix_time",
        "device_identifier",
        "vehicle_plate",
        "lat_display",
        "lon_display",
        "speed_kmh",
        "valid",
        "realtime",
        "flags",
        "received_at",
    ]
    list_filter = ["valid", "realtime", "source"]
    # Exact matches only: the table is huge, and these hit the identifier / plate indexes.
    search_fields = ["=device__identifier", "=vehicle__plate"]
    search_help_text = _("Exact device id (IMEI) or plate.")
    list_select_related = ["device", "vehicle"]
    date_hierarchy = "fix_time"
    show_full_result_count = False
    ordering = ["-fix_time", "-id"]
    exclude = ["point"]
    readonly_fields = ["lat_display", "lon_display"]

    def visible_queryset(self, request):
        return positions_visible_to(request.user)

    @admin.display(description=_("device"), ordering="device__identifier")
    def device_identifier(self, obj):
        return obj.device.identifier

    @admin.display(description=_("vehicle"))
    def vehicle_plate(self, obj):
        return obj.vehicle.plate if obj.vehicle_id else "-"

    @admin.display(description=_("latitude"))
    def lat_display(self, obj):
        return f"{obj.point.y:.6f}"

    @admin.display(description=_("longitude"))
    def lon_display(self, obj):
        return f"{obj.point.x:.6f}"


# A status row older than this: the process stopped without saying so, or hangs.
STALE_AFTER = dt.timedelta(seconds=60)
_COUNTER_LABELS = [
    ("connections", _("connections")),
    ("frames", _("frames")),
    ("bad_frames", _("bad frames")),
    ("positions", _("positions")),
    ("acked", _("acked")),
    ("unknown", _("unknown devices refused")),
    ("closed_bad", _("closed for bad frames")),
]


@admin.register(GatewayStatus, site=admin_site)
class GatewayStatusAdmin(ReadOnlyAdmin):
    """The operators' view of the running gateways: listeners, load, per-protocol counters."""

    list_display = [
        "name",
        "state",
        "started_at",
        "updated_at",
        "connections",
        "sessions",
        "stored_per_s",
        "traffic",
        "queue_depth",
        "rss_mb",
    ]
    fields = [
        "name",
        "state",
        "ports",
        "started_at",
        "updated_at",
        "stopped_at",
        "connections",
        "sessions",
        "queue_depth",
        "rss_mb",
        "counter_table",
    ]
    readonly_fields = fields

    def visible_queryset(self, request):
        return gateway_status_visible_to(request.user)

    def has_module_permission(self, request):
        return is_platform_admin(request.user)

    def has_view_permission(self, request, obj=None):
        return is_platform_admin(request.user)

    @admin.display(description=_("state"))
    def state(self, obj):
        if obj.stopped_at:
            return _("stopped")
        if timezone.now() - obj.updated_at > STALE_AFTER:
            return format_html('<strong style="color:#ba2121">{}</strong>', _("not reporting"))
        return _("running")

    @admin.display(description=_("stored positions/s"))
    def stored_per_s(self, obj):
        return obj.rates.get("all", {}).get("stored", 0)

    @admin.display(description=_("per protocol: frames/s, positions/s, bad frames/s"))
    def traffic(self, obj):
        rows = [
            (protocol, rate.get("frames", 0), rate.get("positions", 0), rate.get("bad_frames", 0))
            for protocol, rate in sorted(obj.rates.items())
            if protocol != "all"
        ]
        return format_html_join(", ", "{}: {} / {} / {}", rows) or "-"

    @admin.display(description=_("counters since start"))
    def counter_table(self, obj):
        protocols = sorted(p for p in obj.counters if p != "all")
        head = format_html_join("", "<th>{}</th>", ((p,) for p in protocols))
        body = format_html_join(
            "",
            "<tr><th>{}</th>{}</tr>",
            (
                (
                    label,
                    format_html_join(
                        "",
                        "<td>{}</td>",
                        ((obj.counters[p].get(key, 0),) for p in protocols),
                    ),
                )
                for key, label in _COUNTER_LABELS
            ),
        )
        return format_html("<table><tr><th></th>{}</tr>{}</table>", head, body)


@admin.register(DeviceDrop, site=admin_site)
class DeviceDropAdmin(ReadOnlyAdmin):
    """Devices whose frames the gateway dropped, the worst first: a wrong protocol setting, a
    faulty unit or a device model that needs "lenient checksums"."""

    list_display = [
        "identifier",
        "protocol",
        "customer",
        "frames_dropped",
        "last_drop_reason",
        "last_seen_at",
        "online",
    ]
    list_filter = ["protocol", "online"]
    search_fields = ["=identifier"]
    list_select_related = ["customer"]
    ordering = ["-frames_dropped", "identifier"]
    fields = list_display
    readonly_fields = list_display

    def visible_queryset(self, request):
        return device_drops_visible_to(request.user)

    # Whoever may see devices may see their drops (the proxy has no permissions of its own).
    def has_module_permission(self, request):
        return request.user.has_perm("devices.view_device")

    def has_view_permission(self, request, obj=None):
        return request.user.has_perm("devices.view_device")
