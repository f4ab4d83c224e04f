from __future__ import annotations

from django import forms
from django.contrib import admin, messages
from django.forms.models import BaseInlineFormSet
from django.urls import reverse
from django.utils.html import format_html
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext

from accounts.selectors import is_platform_admin
from carloan.admin import (
    BulkForm,
    MoveForm,
    ReadOnlyAdmin,
    RecycleBinAdmin,
    ScopedHistoryAdmin,
    ShareAdmin,
    VisibleCustomerFilter,
    admin_site,
    bulk_form_action,
    share_action,
    xlsx_export_action,
)
from devices import commands, services
from devices.models import (
    STATE_FIELDS,
    Command,
    CommandJob,
    DeletedDevice,
    Device,
    DeviceModel,
    DeviceUserObjectPermission,
    Manufacturer,
    StockMove,
    WorkMode,
)
from devices.selectors import (
    command_jobs_visible_to,
    commands_visible_to,
    deleted_devices_visible_to,
    device_models_visible_to,
    devices_for_list,
    devices_visible_to,
    manufacturers_visible_to,
    stock_moves_visible_to,
)


class CatalogueAdmin(ScopedHistoryAdmin):
    """Manufacturers and device models: a platform catalogue plus customer-owned entries."""

    def has_change_permission(self, request, obj=None):
        if obj is not None and obj.customer_id is None and not is_platform_admin(request.user):
            return False  # the shared catalogue is read-only for tenants
        return super().has_change_permission(request, obj)

    def has_delete_permission(self, request, obj=None):
        return self.has_change_permission(request, obj) and super().has_delete_permission(
            request, obj
        )

    def save_model(self, request, obj, form, change):
        data = {
            f: form.cleaned_data[f] for f in self.get_fields(request, obj) if f in form.cleaned_data
        }
        saved = type(self).save_service(
            by=request.user, **{self.service_arg: obj if change else None}, **data
        )
        obj.pk = saved.pk


@admin.register(Manufacturer, site=admin_site)
class ManufacturerAdmin(CatalogueAdmin):
    list_display = ["name", "customer", "contact"]
    fields = ["name", "customer", "contact"]
    save_service, service_arg = staticmethod(services.manufacturer_save), "manufacturer"
    search_fields = ["name"]
    list_select_related = ["customer"]
    autocomplete_fields = ["customer"]

    def visible_queryset(self, request):
        return manufacturers_visible_to(request.user).select_related("customer")


@admin.register(DeviceModel, site=admin_site)
class DeviceModelAdmin(CatalogueAdmin):
    list_display = [
        "name",
        "manufacturer",
        "protocol",
        "kind",
        "default_work_mode",
        "battery_capacity_mah",
        "battery_life_days",
        "customer",
    ]
    list_filter = ["protocol", "kind", "default_work_mode"]
    search_fields = ["name", "manufacturer__name"]
    list_select_related = ["manufacturer", "customer"]
    autocomplete_fields = ["manufacturer", "customer"]
    fields = [
        "name",
        "manufacturer",
        "customer",
        "protocol",
        "kind",
        "battery_capacity_mah",
        "battery_life_days",
        "default_work_mode",
    ]
    save_service, service_arg = staticmethod(services.device_model_save), "device_model"

    def visible_queryset(self, request):
        return device_models_visible_to(request.user).select_related("customer")


class DeviceEditForm(BulkForm):
    """Bulk edit of devices: only the fields filled in are changed."""

    work_mode = forms.ChoiceField(
        label=_("work mode"), required=False, choices=[("", _("— keep —")), *WorkMode.choices]
    )
    status = forms.ChoiceField(
        label=_("inventory status"),
        required=False,
        choices=[
            ("", _("— keep —")),
            (Device.Status.STOCK, _("in stock")),
            (Device.Status.FAULTY, _("faulty")),
            (Device.Status.SCRAPPED, _("scrapped")),
        ],
    )
    remark = forms.CharField(label=_("remark"), required=False, max_length=200)


def _bulk_edit(request, queryset, data):
    fields = {k: v for k, v in data.items() if v not in ("", None)}
    if "work_mode" in fields:
        fields["work_params"] = {}  # the new mode's defaults
    count = 0
    for device in queryset:
        services.device_update(device=device, by=request.user, **fields)
        count += 1
    return ngettext("%d device updated.", "%d devices updated.", count) % count


def _move(request, queryset, data):
    count = services.devices_move(
        devices=list(queryset), to_customer=data["to_customer"], by=request.user, note=data["note"]
    )
    return ngettext("%(n)d device moved to %(c)s.", "%(n)d devices moved to %(c)s.", count) % {
        "n": count,
        "c": data["to_customer"],
    }


class SendCommandForm(BulkForm):
    """The "send command" action's page: one command for every selected device."""

    kind = forms.ChoiceField(label=_("command"), choices=commands.kind_choices)
    params = forms.JSONField(
        label=_("parameters"),
        required=False,
        initial=dict,
        help_text=_(
            'set report interval: {"seconds": 60} (5-65535); set work mode: {"mode": '
            '"alarm_clock", "times": ["08:00", "20:00"]}, {"mode": "deep_sleep", "days": 7}, '
            '{"mode": "realtime"} or {"mode": "vibration"}; the others take none.'
        ),
    )
    defer_until_stopped = forms.BooleanField(
        label=_("fuel cut: wait until the vehicle stops"),
        required=False,
        help_text=_(
            "A fuel cut is refused while the vehicle was last over 20 km/h or its last position "
            "is older than 5 minutes; with this box it waits instead and goes out once a fresh "
            "position shows the vehicle standing."
        ),
    )

    def clean(self):
        data = super().clean()
        kind = data.get("kind")
        if kind:
            try:
                data["params"] = commands.clean_params(kind, data.get("params"))
            except ValueError as exc:
                self.add_error("params", str(exc))
        return data


def _send_command(request, queryset, data):
    """One device: that command (a refusal is shown as an error). Several: a broadcast whose
    refused devices are failed rows of the job."""
    devices = list(queryset)
    kind, params, defer = data["kind"], data["params"], data["defer_until_stopped"]
    if len(devices) == 1:
        command = services.command_send(
            device=devices[0], kind=kind, params=params, by=request.user, defer_until_stopped=defer
        )
        return _("Command “%(kind)s” queued for %(device)s.") % {
            "kind": command.get_kind_display(),
            "device": devices[0].identifier,
        }
    job = services.command_broadcast(
        devices=devices, kind=kind, params=params, by=request.user, defer_until_stopped=defer
    )
    failed = job.commands.filter(status=Command.Status.FAILED).count()
    return _(
        "Broadcast #%(job)d: %(queued)d queued, %(failed)d refused (see the broadcast for why)."
    ) % {"job": job.pk, "queued": len(devices) - failed, "failed": failed}


class LimitedFormSet(BaseInlineFormSet):
    """An inline showing its first `limit` rows only (a device's latest commands; a broadcast's
    first devices, the outcome counts link to all of them)."""

    limit = 20

    def get_queryset(self):
        return super().get_queryset()[: self.limit]


class FirstHundredFormSet(LimitedFormSet):
    limit = 100


COMMAND_FIELDS = [
    "created_at",
    "kind",
    "params",
    "status",
    "defer_until_stopped",
    "created_by",
    "sent_at",
    "answered_at",
    "reply_text",
    "failure_reason",
]


class CommandInline(admin.TabularInline):
    """Commands of a device, most recent first (read-only: commands are sent with the action)."""

    model = Command
    formset = LimitedFormSet
    verbose_name = _("command")
    verbose_name_plural = _("latest commands")
    fields = COMMAND_FIELDS
    readonly_fields = COMMAND_FIELDS
    extra = 0
    can_delete = False
    show_change_link = True
    ordering = ["-created_at", "-id"]

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("created_by")

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    def has_view_permission(self, request, obj=None):
        return request.user.has_perm("devices.view_command")


def _devices_xlsx(queryset):
    from vehicles.exports import devices_xlsx

    return devices_xlsx(queryset)


@admin.register(Device, site=admin_site)
class DeviceAdmin(ScopedHistoryAdmin):
    list_display = [
        "identifier",
        "protocol",
        "kind",
        "model",
        "customer",
        "status",
        "current_plate",
        "work_mode",
        "online",
        "last_seen_at",
    ]
    list_filter = [
        "status",
        "protocol",
        "kind",
        "work_mode",
        "online",
        ("customer", VisibleCustomerFilter),
    ]
    search_fields = ["identifier", "sim_iccid", "sim_number", "bindings__vehicle__plate"]
    autocomplete_fields = ["customer", "model"]
    readonly_fields = [*STATE_FIELDS, "created_at", "updated_at"]
    fieldsets = [
        (None, {"fields": ["identifier", "protocol", "kind", "model", "customer", "status"]}),
        (_("SIM card"), {"fields": ["sim_iccid", "sim_number"]}),
        (_("Work mode"), {"fields": ["work_mode", "work_params"]}),
        (_("Last known state"), {"fields": readonly_fields}),
        (None, {"fields": ["remark"]}),
    ]
    actions = [
        bulk_form_action(
            form_class=MoveForm,
            apply=_move,
            description=_("Move to another customer"),
            permission="change",
        ),
        bulk_form_action(
            form_class=DeviceEditForm,
            apply=_bulk_edit,
            description=_("Bulk edit selected devices"),
            permission="change",
        ),
        xlsx_export_action(
            build=_devices_xlsx,
            filename="devices.xlsx",
            description=_("Export selected devices to Excel"),
        ),
        share_action(_("Share selected devices with a user")),
        bulk_form_action(
            form_class=SendCommandForm,
            apply=_send_command,
            description=_("Send a command to the selected devices"),
            permission="send_command",
        ),
        "soft_delete",
    ]
    inlines = [CommandInline]

    def has_send_command_permission(self, request):
        return request.user.has_perm(commands.SEND_PERMISSION)

    def visible_queryset(self, request):
        return devices_for_list(request.user)

    def changeable_queryset(self, request):
        return devices_visible_to(request.user, for_change=True)

    def get_readonly_fields(self, request, obj=None):
        # The owner changes through the "move" action so every move is recorded.
        return [*self.readonly_fields, "customer"] if obj else self.readonly_fields

    @admin.display(description=_("vehicle"), ordering="current_plate")
    def current_plate(self, obj):
        return obj.current_plate or "-"

    def save_model(self, request, obj, form, change):
        if change:
            fields = {
                f: form.cleaned_data[f] for f in form.changed_data if f in services.DEVICE_EDITABLE
            }
            services.device_update(device=obj, by=request.user, **fields)
        else:
            # A new device always starts in stock; binding makes it installed.
            data = {f: v for f, v in form.cleaned_data.items() if f != "status"}
            created = services.device_create(by=request.user, **data)
            obj.pk = created.pk

    def delete_model(self, request, obj):
        services.device_soft_delete(device=obj, by=request.user)

    def delete_queryset(self, request, queryset):
        for device in queryset:
            services.device_soft_delete(device=device, by=request.user)

    @admin.action(
        description=_("Delete selected devices (to the recycle bin)"), permissions=["delete"]
    )
    def soft_delete(self, request, queryset):
        count = 0
        for device in self.only_changeable(request, queryset):
            services.device_soft_delete(device=device, by=request.user)
            count += 1
        self.message_user(
            request,
            ngettext(
                "%d device moved to the recycle bin.", "%d devices moved to the recycle bin.", count
            )
            % count,
            messages.SUCCESS,
        )


@admin.register(DeletedDevice, site=admin_site)
class DeletedDeviceAdmin(RecycleBinAdmin):
    list_display = ["identifier", "protocol", "customer", "deleted_at", "deleted_by"]
    search_fields = ["identifier"]
    list_filter = [("customer", VisibleCustomerFilter)]
    base_model, service_arg = Device, "device"
    restore_service = staticmethod(services.device_restore)
    erase_service = staticmethod(services.device_hard_delete)

    def visible_queryset(self, request):
        return deleted_devices_visible_to(request.user)


@admin.register(StockMove, site=admin_site)
class StockMoveAdmin(ReadOnlyAdmin):
    list_display = ["moved_at", "device", "from_customer", "to_customer", "moved_by", "note"]
    search_fields = ["device__identifier", "note"]
    date_hierarchy = "moved_at"

    def visible_queryset(self, request):
        return stock_moves_visible_to(request.user)


@admin.register(DeviceUserObjectPermission, site=admin_site)
class DeviceUserObjectPermissionAdmin(ShareAdmin):
    pass


class CommandStatusFilter(admin.SimpleListFilter):
    title = _("status")
    parameter_name = "status"

    def lookups(self, request, model_admin):
        return Command.Status.choices

    def queryset(self, request, queryset):
        return queryset.filter(status=self.value()) if self.value() else queryset


@admin.register(Command, site=admin_site)
class CommandAdmin(ReadOnlyAdmin):
    """Every command to the devices the user sees; written by the command services only."""

    list_display = [
        "created_at",
        "device",
        "kind",
        "params",
        "status",
        "created_by",
        "sent_at",
        "answered_at",
        "outcome",
        "job",
    ]
    list_filter = [CommandStatusFilter, "kind", "defer_until_stopped"]
    search_fields = ["device__identifier"]
    date_hierarchy = "created_at"
    fields = [
        "device",
        "job",
        *COMMAND_FIELDS,
        "expires_at",
        "serial",
        "match_key",
    ]
    readonly_fields = fields
    actions = ["cancel"]

    def visible_queryset(self, request):
        return commands_visible_to(request.user)

    @admin.display(description=_("reply / reason"))
    def outcome(self, obj):
        return obj.failure_reason or obj.reply_text or "-"

    def has_cancel_permission(self, request):
        return request.user.has_perm(commands.SEND_PERMISSION)

    @admin.action(description=_("Cancel the selected queued commands"), permissions=["cancel"])
    def cancel(self, request, queryset):
        count = 0
        for command in queryset.filter(status=Command.Status.QUEUED):
            services.command_cancel(command=command, by=request.user)
            count += 1
        self.message_user(
            request,
            ngettext("%d command cancelled.", "%d commands cancelled.", count) % count,
            messages.SUCCESS,
        )


class JobCommandInline(CommandInline):
    """The per-device outcome of a broadcast (only the devices the user sees)."""

    formset = FirstHundredFormSet
    verbose_name_plural = _("commands (the first 100 devices)")
    fields = ["device", "status", "sent_at", "answered_at", "reply_text", "failure_reason"]
    readonly_fields = fields
    ordering = ["device__identifier"]

    def get_queryset(self, request):
        return commands_visible_to(request.user).order_by("device__identifier")


@admin.register(CommandJob, site=admin_site)
class CommandJobAdmin(ReadOnlyAdmin):
    """Broadcasts (群发) with their commands counted by outcome."""

    list_display = [
        "created_at",
        "kind",
        "params",
        "created_by",
        "customer",
        "n_total",
        "n_queued",
        "n_sent",
        "n_acked",
        "n_failed",
        "n_expired",
    ]
    list_filter = ["kind"]
    date_hierarchy = "created_at"
    fields = ["kind", "params", "defer_until_stopped", "customer", "created_by", "created_at"]
    readonly_fields = fields
    inlines = [JobCommandInline]

    def visible_queryset(self, request):
        return command_jobs_visible_to(request.user)

    def _count(self, obj, status: str):
        value = getattr(obj, f"n_{status}")
        if not value:
            return value
        url = reverse("admin:devices_command_changelist")
        return format_html(
            '<a href="{}?job__id__exact={}&status={}">{}</a>', url, obj.pk, status, value
        )

    @admin.display(description=_("devices"), ordering="n_total")
    def n_total(self, obj):
        return obj.n_total

    @admin.display(description=_("queued"), ordering="n_queued")
    def n_queued(self, obj):
        return self._count(obj, Command.Status.QUEUED)

    @admin.display(description=_("sent"), ordering="n_sent")
    def n_sent(self, obj):
        return self._count(obj, Command.Status.SENT)

    @admin.display(description=_("acknowledged"), ordering="n_acked")
    def n_acked(self, obj):
        return self._count(obj, Command.Status.ACKED)

    @admin.display(description=_("failed"), ordering="n_failed")
    def n_failed(self, obj):
        return self._count(obj, Command.Status.FAILED)

    @admin.display(description=_("expired"), ordering="n_expired")
    def n_expired(self, obj):
        return self._count(obj, Command.Status.EXPIRED)
