"""Positions (read-only, scoped) and unknown devices (platform admins add them in one click)."""

from __future__ import annotations

from django import forms
from django.contrib import admin
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext

from accounts.selectors import is_platform_admin
from carloan.admin import BulkForm, ReadOnlyAdmin, admin_site, bulk_form_action
from devices.models import DeviceKind
from gateway import services
from gateway.models import Position, UnknownDevice
from gateway.selectors import positions_visible_to, unknown_devices_visible_to


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
