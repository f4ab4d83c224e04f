from __future__ import annotations

from django import forms
from django.contrib import admin, messages
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
from devices import services
from devices.models import (
    STATE_FIELDS,
    DeletedDevice,
    Device,
    DeviceModel,
    DeviceUserObjectPermission,
    Manufacturer,
    StockMove,
    WorkMode,
)
from devices.selectors import (
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
        "soft_delete",
    ]

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
