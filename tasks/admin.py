"""Back office of field work: work orders (dispatch, cancel, verify) and the field workers'
presence. Configuration only; every write goes through tasks.services."""

from __future__ import annotations

from django import forms
from django.contrib import admin, messages
from django.urls import reverse
from django.utils import timezone
from django.utils.html import format_html, format_html_join
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext

from carloan.admin import (
    BulkForm,
    ReadOnlyAdmin,
    ScopedHistoryAdmin,
    VisibleCustomerFilter,
    admin_site,
    bulk_form_action,
)
from tasks import services
from tasks.models import WorkerPresence, WorkOrder, WorkOrderDevice, WorkOrderRecord
from tasks.selectors import (
    field_workers_visible_to,
    work_orders_visible_to,
    workers_eligible_for,
    workers_suggested_for,
)


class WorkOrderForm(forms.ModelForm):
    """The order's target position as two numbers (no map widget loaded from a CDN)."""

    lat = forms.FloatField(label=_("latitude"), required=False, min_value=-90, max_value=90)
    lon = forms.FloatField(label=_("longitude"), required=False, min_value=-180, max_value=180)

    class Meta:
        model = WorkOrder
        fields = ["kind", "vehicle", "due_at", "address", "instructions", "assignee"]

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if self.instance.pk and self.instance.location is not None:
            self.initial.setdefault("lat", self.instance.location.y)
            self.initial.setdefault("lon", self.instance.location.x)

    def clean(self):
        data = super().clean()
        if (data.get("lat") is None) != (data.get("lon") is None):
            raise forms.ValidationError(_("Give both latitude and longitude, or neither."))
        return data


class RecordInline(admin.TabularInline):
    model = WorkOrderRecord
    fields = ["at", "kind", "author", "status_from", "status_to", "note", "photo_link", "where"]
    readonly_fields = fields
    extra = 0
    can_delete = False
    verbose_name_plural = _("records")

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("author").order_by("at", "id")

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    @admin.display(description=_("photo"))
    def photo_link(self, record):
        if not record.photo:
            return "-"
        url = reverse("task-record-photo", kwargs={"pk": record.pk})
        return format_html(
            '<a href="{}" target="_blank"><img src="{}" alt="" style="max-height:80px"></a>',
            url,
            url,
        )

    @admin.display(description=_("worker's position"))
    def where(self, record):
        if record.point is None:
            return "-"
        return f"{record.point.y:.6f}, {record.point.x:.6f}"


class DeviceInline(admin.TabularInline):
    model = WorkOrderDevice
    fields = ["at", "action", "device"]
    readonly_fields = fields
    extra = 0
    can_delete = False

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False


class AssignForm(BulkForm):
    assignee = forms.ModelChoiceField(label=_("assignee"), queryset=None)

    def __init__(self, *args, user=None, **kwargs):
        super().__init__(*args, user=user, **kwargs)
        self.fields["assignee"].queryset = field_workers_visible_to(user)


class CancelForm(BulkForm):
    reason = forms.CharField(label=_("reason"), max_length=2000)


def _assign(request, queryset, data):
    count = 0
    for order in queryset:
        services.work_order_assign(order=order, assignee=data["assignee"], by=request.user)
        count += 1
    return ngettext("%d order assigned.", "%d orders assigned.", count) % count


def _cancel(request, queryset, data):
    count = 0
    for order in queryset:
        services.work_order_cancel(order=order, by=request.user, reason=data["reason"])
        count += 1
    return ngettext("%d order cancelled.", "%d orders cancelled.", count) % count


@admin.register(WorkOrder, site=admin_site)
class WorkOrderAdmin(ScopedHistoryAdmin):
    form = WorkOrderForm
    list_display = [
        "id",
        "kind",
        "status",
        "vehicle",
        "customer",
        "assignee",
        "due_at",
        "overdue",
        "created_at",
    ]
    list_display_links = ["id", "kind"]
    list_filter = ["kind", "status", ("customer", VisibleCustomerFilter)]
    search_fields = ["vehicle__plate", "vehicle__vin", "address", "assignee__username"]
    list_select_related = ["vehicle", "customer", "assignee"]
    autocomplete_fields = ["vehicle"]
    date_hierarchy = "created_at"
    inlines = [RecordInline, DeviceInline]
    readonly_fields = [
        "status",
        "customer",
        "suggested_workers",
        "car_found",
        "owner_found",
        "result_note",
        "created_by",
        "created_at",
        "assigned_at",
        "accepted_at",
        "started_at",
        "finished_at",
        "verified_at",
        "verified_by",
        "cancelled_at",
    ]
    actions = [
        bulk_form_action(
            form_class=AssignForm,
            apply=_assign,
            description=_("Assign to a field worker"),
            permission="dispatch",
        ),
        bulk_form_action(
            form_class=CancelForm,
            apply=_cancel,
            description=_("Cancel the selected orders"),
            permission="dispatch",
        ),
        "verify",
    ]

    def get_fieldsets(self, request, obj=None):
        order = [(None, {"fields": ["kind", "vehicle", "due_at", "address", "instructions"]})]
        where = (_("Position"), {"fields": ["lat", "lon"]})
        if obj is None:
            return [*order, where, (_("Dispatch"), {"fields": ["assignee"]})]
        return [
            (None, {"fields": ["status", "customer", "kind", "vehicle", "due_at"]}),
            (None, {"fields": ["address", "instructions"]}),
            where,
            (_("Dispatch"), {"fields": ["assignee", "suggested_workers"]}),
            (_("Outcome"), {"fields": ["car_found", "owner_found", "result_note"]}),
            (
                _("Times"),
                {
                    "fields": [
                        "created_by",
                        "created_at",
                        "assigned_at",
                        "accepted_at",
                        "started_at",
                        "finished_at",
                        "verified_at",
                        "verified_by",
                        "cancelled_at",
                    ],
                    "classes": ["collapse"],
                },
            ),
        ]

    def get_readonly_fields(self, request, obj=None):
        fields = list(self.readonly_fields)
        if obj is not None:
            # Kind and vehicle make the order what it is; dispatch needs its own right; a
            # closed order is a record.
            fields += ["kind", "vehicle"]
            if not request.user.has_perm("tasks.dispatch_workorder"):
                fields.append("assignee")
            if not obj.is_open:
                fields += ["due_at", "address", "instructions", "assignee"]
        return fields

    def get_form(self, request, obj=None, change=False, **kwargs):
        form = super().get_form(request, obj, change=change, **kwargs)
        if obj is not None and "assignee" in form.base_fields:
            # Only the people this order can go to (kind, customer line), among the visible.
            form.base_fields["assignee"].queryset = field_workers_visible_to(request.user).filter(
                pk__in=workers_eligible_for(obj).values("pk")
            )
        if obj is not None and not obj.is_open:
            for name in ("lat", "lon"):
                if name in form.base_fields:
                    form.base_fields[name].disabled = True
        return form

    def visible_queryset(self, request):
        return work_orders_visible_to(request.user)

    def formfield_for_foreignkey(self, db_field, request, **kwargs):
        if db_field.name == "assignee":
            kwargs["queryset"] = field_workers_visible_to(request.user)
        return super().formfield_for_foreignkey(db_field, request, **kwargs)

    def has_dispatch_permission(self, request):
        return request.user.has_perm("tasks.dispatch_workorder")

    def has_verify_permission(self, request):
        return request.user.has_perm("tasks.verify_workorder")

    @admin.display(description=_("overdue"), boolean=True)
    def overdue(self, order):
        return order.is_overdue(timezone.now())

    @admin.display(description=_("nearest available workers"))
    def suggested_workers(self, order):
        if order is None or order.pk is None or not order.is_open:
            return "-"
        rows = workers_suggested_for(order)
        if not rows:
            return _("Nobody on duty with a recent position.")
        return format_html(
            "<ol>{}</ol>",
            format_html_join(
                "",
                "<li>{} ({}) · {} · {}</li>",
                (
                    (
                        s.user.get_full_name() or s.user.username,
                        s.user.username,
                        f"{s.distance_m / 1000:.1f} km" if s.distance_m is not None else "-",
                        ngettext("%d open order", "%d open orders", s.open_orders) % s.open_orders,
                    )
                    for s in rows
                ),
            ),
        )

    def save_model(self, request, obj, form, change):
        data = form.cleaned_data
        if not change:
            created = services.work_order_create(
                by=request.user,
                kind=data["kind"],
                vehicle=data["vehicle"],
                due_at=data.get("due_at"),
                address=data.get("address", ""),
                lat=data.get("lat"),
                lon=data.get("lon"),
                instructions=data.get("instructions", ""),
                assignee=data.get("assignee"),
            )
            obj.pk = created.pk
            return
        changed = set(form.changed_data)
        fields = {
            f: data[f] for f in ("due_at", "address", "instructions") if f in changed and f in data
        }
        if {"lat", "lon"} & changed:
            fields["lat"], fields["lon"] = data.get("lat"), data.get("lon")
        if fields:
            services.work_order_update(order=obj, by=request.user, **fields)
        if "assignee" in changed and data.get("assignee") is not None:
            services.work_order_assign(order=obj, assignee=data["assignee"], by=request.user)

    @admin.action(description=_("Verify the selected done / failed orders"), permissions=["verify"])
    def verify(self, request, queryset):
        count = 0
        for order in queryset.filter(status__in=[WorkOrder.Status.DONE, WorkOrder.Status.FAILED]):
            services.work_order_verify(order=order, by=request.user)
            count += 1
        self.message_user(
            request,
            ngettext("%d order verified.", "%d orders verified.", count) % count,
            messages.SUCCESS if count else messages.WARNING,
        )


@admin.register(WorkerPresence, site=admin_site)
class WorkerPresenceAdmin(ReadOnlyAdmin):
    """Field workers' last reported position and duty flag (the map shows them)."""

    list_display = ["user", "kind", "customer", "on_duty", "at", "where", "battery_pct"]
    list_filter = ["on_duty", "user__kind"]
    search_fields = ["user__username", "user__first_name", "user__last_name"]
    list_select_related = ["user", "user__customer"]
    ordering = ["-at"]

    def visible_queryset(self, request):
        return WorkerPresence.objects.filter(user__in=field_workers_visible_to(request.user))

    def has_view_permission(self, request, obj=None):
        return request.user.has_perm("tasks.view_workorder")

    def has_module_permission(self, request):
        return self.has_view_permission(request)

    @admin.display(description=_("kind"))
    def kind(self, presence):
        return presence.user.get_kind_display()

    @admin.display(description=_("customer"))
    def customer(self, presence):
        return presence.user.customer

    @admin.display(description=_("position"))
    def where(self, presence):
        if presence.point is None:
            return "-"
        return f"{presence.point.y:.6f}, {presence.point.x:.6f}"
