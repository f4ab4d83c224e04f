"""Admin: the alarm list and its handling (acknowledge, close, notes), and the notification
admins (one's own subscriptions, the delivery log: `alarms.notify.admin`).

Alarms are written only by the lifecycle services (`alarms.services.lifecycle`): the detail
page is read-only, handling is the "acknowledge" / "close" actions (an intermediate page asks
for the note) and needs `alarms.handle_alarm`. Rows come from `alarms_for_list(user)`: another
tenant's alarm answers 404.
"""

from __future__ import annotations

import json

from django import forms
from django.contrib import admin
from django.utils.html import format_html
from django.utils.text import capfirst
from django.utils.translation import gettext, ngettext
from django.utils.translation import gettext_lazy as _

from alarms import kinds
from alarms.alarm_selectors import alarms_for_list
from alarms.models import Alarm, AlarmEvent
from alarms.notify.messages import map_url
from alarms.services import lifecycle
from carloan.admin import (
    BulkForm,
    ReadOnlyAdmin,
    VisibleCustomerFilter,
    admin_site,
    bulk_form_action,
    xlsx_export_action,
)
from carloan.errors import InvalidTransition


class CategoryFilter(admin.SimpleListFilter):
    title = _("category")
    parameter_name = "category"

    def lookups(self, request, model_admin):
        return [(kinds.DEVICE, _("device alarms")), (kinds.PLATFORM, _("platform alarms"))]

    def queryset(self, request, queryset):
        codes = {kinds.DEVICE: kinds.DEVICE_KINDS, kinds.PLATFORM: kinds.PLATFORM_KINDS}
        chosen = codes.get(self.value())
        return queryset.filter(kind__in=sorted(chosen)) if chosen is not None else queryset


class AlarmEventInline(admin.TabularInline):
    """The handling history: raised, repeated, acknowledged, notes, closed (read-only)."""

    model = AlarmEvent
    fields = ["at", "action", "by", "note"]
    readonly_fields = fields
    extra = 0
    can_delete = False

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("by")

    # Whoever may see the alarm sees its history (no separate event permission to hand out).
    def has_view_permission(self, request, obj=None):
        return request.user.has_perm("alarms.view_alarm")

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


class HandlingNoteForm(BulkForm):
    note = forms.CharField(
        label=_("Handling note"),
        required=False,
        max_length=2000,
        widget=forms.Textarea(attrs={"rows": 3}),
        help_text=_("What was done or found; kept in each alarm's history."),
    )


def _handle(request, queryset, note: str, service, done) -> str:
    """Apply `service` to each alarm; alarms whose status does not allow it are skipped."""
    handled = skipped = 0
    for alarm in queryset.order_by("raised_at", "id"):
        try:
            service(alarm=alarm, by=request.user, note=note)
        except InvalidTransition:
            skipped += 1
        else:
            handled += 1
    text = done(handled) % {"n": handled}
    if skipped:
        text += " " + ngettext(
            "%(n)d was skipped (its status does not allow it).",
            "%(n)d were skipped (their status does not allow it).",
            skipped,
        ) % {"n": skipped}
    return text


def acknowledge(request, queryset, data):
    return _handle(
        request,
        queryset,
        data["note"],
        lifecycle.alarm_acknowledge,
        lambda n: ngettext("%(n)d alarm acknowledged.", "%(n)d alarms acknowledged.", n),
    )


def close(request, queryset, data):
    return _handle(
        request,
        queryset,
        data["note"],
        lifecycle.alarm_close,
        lambda n: ngettext("%(n)d alarm closed.", "%(n)d alarms closed.", n),
    )


def alarms_xlsx(queryset) -> bytes:
    """One row per alarm of the selection (already scoped by the changelist): one query."""
    from vehicles.exports import CHUNK_SIZE, _local, _workbook

    def label(name: str) -> str:
        return str(capfirst(Alarm._meta.get_field(name).verbose_name))

    header = [
        label("raised_at"),
        label("started_at"),
        label("last_seen_at"),
        gettext("Plate"),
        gettext("VIN"),
        label("customer"),
        label("device"),
        label("kind"),
        gettext("Category"),
        label("level"),
        label("target_name"),
        label("message"),
        label("status"),
        label("occurrences"),
        gettext("Handler"),
        label("acknowledged_at"),
        label("closed_at"),
        label("note"),
        gettext("Latitude"),
        gettext("Longitude"),
    ]
    categories = {kinds.DEVICE: gettext("device alarm"), kinds.PLATFORM: gettext("platform alarm")}

    def rows():
        for a in queryset.iterator(chunk_size=CHUNK_SIZE):
            spec = kinds.KINDS.get(a.kind)
            yield [
                _local(a.raised_at),
                _local(a.started_at),
                _local(a.last_seen_at),
                a.plate or "",
                a.vin or "",
                a.customer_name,
                a.device_identifier or "",
                a.get_kind_display(),
                categories.get(spec.category, "") if spec else "",
                a.get_level_display(),
                a.target_name,
                a.message,
                a.get_status_display(),
                a.occurrences,
                a.handler or "",
                _local(a.acknowledged_at),
                _local(a.closed_at),
                a.note,
                round(a.point.y, 6) if a.point is not None else None,
                round(a.point.x, 6) if a.point is not None else None,
            ]

    return _workbook(str(capfirst(Alarm._meta.verbose_name_plural)), header, rows())


@admin.register(Alarm, site=admin_site)
class AlarmAdmin(ReadOnlyAdmin):
    list_display = [
        "raised_at",
        "plate",
        "customer_name",
        "kind",
        "level",
        "target_name",
        "status",
        "occurrences",
        "handler",
    ]
    list_filter = [
        "status",
        "kind",
        "level",
        CategoryFilter,
        ("customer", VisibleCustomerFilter),
        ("raised_at", admin.DateFieldListFilter),
    ]
    search_fields = ["vehicle__plate", "vehicle__vin", "device__identifier"]
    ordering = ["-raised_at", "-id"]
    inlines = [AlarmEventInline]
    fieldsets = [
        (
            None,
            {
                "fields": [
                    "kind",
                    "level",
                    "status",
                    "customer",
                    "vehicle",
                    "device",
                    "target_name",
                    "message",
                ]
            },
        ),
        (_("Time"), {"fields": ["started_at", "raised_at", "last_seen_at", "occurrences"]}),
        (_("Position"), {"fields": ["map_link", "speed_kmh"]}),
        (
            _("Handling"),
            {
                "fields": [
                    "acknowledged_at",
                    "acknowledged_by",
                    "closed_at",
                    "closed_by",
                    "auto_closed",
                    "note",
                ]
            },
        ),
        (_("Details"), {"fields": ["details_text"], "classes": ["collapse"]}),
    ]
    readonly_fields = ["map_link", "details_text"]
    actions = [
        bulk_form_action(
            form_class=HandlingNoteForm,
            apply=acknowledge,
            description=_("Acknowledge selected alarms"),
            permission="handle",
        ),
        bulk_form_action(
            form_class=HandlingNoteForm,
            apply=close,
            description=_("Close selected alarms"),
            permission="handle",
        ),
        xlsx_export_action(
            build=alarms_xlsx,
            filename="alarms.xlsx",
            description=_("Export selected alarms to Excel"),
        ),
    ]

    def visible_queryset(self, request):
        return alarms_for_list(request.user)

    def has_handle_permission(self, request):
        return request.user.has_perm("alarms.handle_alarm")

    @admin.display(description=_("plate"), ordering="plate")
    def plate(self, obj):
        return obj.plate or "-"

    @admin.display(description=_("customer"), ordering="customer_name")
    def customer_name(self, obj):
        return obj.customer_name

    @admin.display(description=_("handler"))
    def handler(self, obj):
        if obj.handler:
            return obj.handler
        return gettext("(automatic)") if obj.auto_closed else "-"

    @admin.display(description=_("position"))
    def map_link(self, obj):
        if obj.point is None:
            return "-"
        return format_html(
            '<a href="{}" target="_blank" rel="noopener noreferrer">{}, {}</a>',
            map_url(obj),
            f"{obj.point.y:.6f}",
            f"{obj.point.x:.6f}",
        )

    @admin.display(description=_("details"))
    def details_text(self, obj):
        if not obj.details:
            return "-"
        return format_html(
            "<pre>{}</pre>", json.dumps(obj.details, ensure_ascii=False, indent=2, default=str)
        )


from alarms.notify import admin as _notify_admin  # noqa: E402,F401  (registers its admins)
