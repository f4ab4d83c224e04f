from __future__ import annotations

from django import forms
from django.contrib import admin, messages
from django.urls import path, reverse
from django.utils.html import format_html
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext

from alarms.admin_places import AnnotationFromVehicleForm, annotations_from_vehicles
from carloan.admin import (
    BulkForm,
    MoveForm,
    RecycleBinAdmin,
    ScopedHistoryAdmin,
    ShareAdmin,
    VisibleCustomerFilter,
    admin_site,
    bulk_form_action,
    share_action,
    xlsx_export_action,
)
from devices.models import Device
from devices.selectors import devices_visible_to
from vehicles import services
from vehicles.models import DeletedVehicle, DeviceBinding, Vehicle, VehicleUserObjectPermission
from vehicles.selectors import (
    bindings_visible_to,
    deleted_vehicles_visible_to,
    vehicles_for_list,
    vehicles_visible_to,
)


class ActiveBindingInline(admin.TabularInline):
    """The devices on the vehicle now (read-only: binding goes through the binding form)."""

    model = DeviceBinding
    verbose_name = _("mounted device")
    verbose_name_plural = _("mounted devices")
    fields = ["device", "device_kind", "bound_at", "bound_by"]
    readonly_fields = fields
    extra = 0
    can_delete = False
    show_change_link = True

    def get_queryset(self, request):
        return (
            super()
            .get_queryset(request)
            .filter(unbound_at__isnull=True)
            .select_related("device", "bound_by")
        )

    @admin.display(description=_("wired / wireless"))
    def device_kind(self, obj):
        return obj.device.get_kind_display()

    def has_add_permission(self, request, obj=None):
        return False


class VehicleEditForm(BulkForm):
    """Bulk edit of vehicles: only the fields filled in are changed."""

    repayment_status = forms.ChoiceField(
        label=_("repayment status"),
        required=False,
        choices=[("", _("— keep —")), *Vehicle.RepaymentStatus.choices],
    )
    overdue_days = forms.IntegerField(label=_("overdue days"), required=False, min_value=0)
    brand = forms.CharField(label=_("brand"), required=False, max_length=50)
    model_name = forms.CharField(label=_("model"), required=False, max_length=50)
    colour = forms.CharField(label=_("colour"), required=False, max_length=20)
    remark = forms.CharField(label=_("remark"), required=False, max_length=200)


def _bulk_edit(request, queryset, data):
    fields = {k: v for k, v in data.items() if v not in ("", None)}
    count = services.vehicles_bulk_update(vehicles=list(queryset), by=request.user, **fields)
    return ngettext("%d vehicle updated.", "%d vehicles updated.", count) % count


def _move(request, queryset, data):
    count = services.vehicles_move(
        vehicles=list(queryset), to_customer=data["to_customer"], by=request.user
    )
    return ngettext("%(n)d vehicle moved to %(c)s.", "%(n)d vehicles moved to %(c)s.", count) % {
        "n": count,
        "c": data["to_customer"],
    }


def _vehicles_xlsx(queryset):
    from vehicles.exports import vehicles_xlsx

    return vehicles_xlsx(queryset)


@admin.register(Vehicle, site=admin_site)
class VehicleAdmin(ScopedHistoryAdmin):
    list_display = [
        "plate",
        "vin",
        "customer",
        "brand",
        "borrower_name",
        "borrower_phone",
        "repayment_status",
        "overdue_days",
        "device_count",
        "created_at",
    ]
    list_filter = ["repayment_status", ("customer", VisibleCustomerFilter)]
    search_fields = [
        "plate",
        "vin",
        "borrower_name",
        "borrower_phone",
        "borrower_id_number",
        "bindings__device__identifier",
    ]
    autocomplete_fields = ["customer"]
    readonly_fields = ["created_at", "updated_at", "bind_link"]
    inlines = [ActiveBindingInline]
    fieldsets = [
        (None, {"fields": ["customer", "plate", "vin", "brand", "model_name", "colour"]}),
        (_("Borrower"), {"fields": ["borrower_name", "borrower_phone", "borrower_id_number"]}),
        (
            _("Loan"),
            {
                "fields": [
                    "loan_principal",
                    "loan_term_months",
                    "loan_start_date",
                    "repayment_status",
                    "overdue_days",
                ]
            },
        ),
        (None, {"fields": ["remark", "bind_link", "created_at", "updated_at"]}),
    ]
    actions = [
        bulk_form_action(
            form_class=MoveForm,
            apply=_move,
            description=_("Move to another customer"),
            permission="change",
        ),
        bulk_form_action(
            form_class=VehicleEditForm,
            apply=_bulk_edit,
            description=_("Bulk edit selected vehicles"),
            permission="change",
        ),
        xlsx_export_action(
            build=_vehicles_xlsx,
            filename="vehicles.xlsx",
            description=_("Export selected vehicles to Excel"),
        ),
        share_action(_("Share selected vehicles with a user")),
        bulk_form_action(
            form_class=AnnotationFromVehicleForm,
            apply=annotations_from_vehicles,
            description=_("Create an annotation at the current position"),
            permission="add_annotation",
        ),
        "soft_delete",
    ]
    change_list_template = "admin/vehicles/vehicle/change_list.html"

    def visible_queryset(self, request):
        return vehicles_for_list(request.user)

    def has_add_annotation_permission(self, request):
        return request.user.has_perm("alarms.add_annotation")

    def changeable_queryset(self, request):
        return vehicles_visible_to(request.user, for_change=True)

    def get_readonly_fields(self, request, obj=None):
        # The owner changes through the "move" action so mounted devices follow.
        return [*self.readonly_fields, "customer"] if obj else self.readonly_fields

    def get_urls(self):
        return [
            path(
                "import/",
                self.admin_site.admin_view(self.import_view),
                name="vehicles_vehicle_import",
            ),
        ] + super().get_urls()

    def changelist_view(self, request, extra_context=None):
        from vehicles.admin_views import IMPORT_PERMISSIONS

        extra_context = {
            **(extra_context or {}),
            "can_import": request.user.has_perms(IMPORT_PERMISSIONS),
        }
        return super().changelist_view(request, extra_context)

    def import_view(self, request):
        from vehicles.admin_views import fleet_import_view

        return fleet_import_view(request, self)

    @admin.display(description=_("devices"), ordering="device_count")
    def device_count(self, obj):
        return obj.device_count

    @admin.display(description=_("bind a device"))
    def bind_link(self, obj):
        if not obj or not obj.pk:
            return "-"
        url = reverse("admin:vehicles_devicebinding_add") + f"?vehicle={obj.pk}"
        return format_html('<a class="button" href="{}">{}</a>', url, _("Bind a device"))

    def save_model(self, request, obj, form, change):
        data = form.cleaned_data
        if change:
            fields = {f: data[f] for f in form.changed_data if f in services.VEHICLE_EDITABLE}
            services.vehicle_update(vehicle=obj, by=request.user, **fields)
        else:
            fields = {f: data[f] for f in services.VEHICLE_EDITABLE if f in data}
            created = services.vehicle_create(by=request.user, customer=data["customer"], **fields)
            obj.pk = created.pk

    def save_related(self, request, form, formsets, change):
        pass  # the only inline is read-only

    def delete_model(self, request, obj):
        services.vehicle_soft_delete(vehicle=obj, by=request.user)

    def delete_queryset(self, request, queryset):
        for vehicle in queryset:
            services.vehicle_soft_delete(vehicle=vehicle, by=request.user)

    @admin.action(
        description=_("Delete selected vehicles (to the recycle bin)"), permissions=["delete"]
    )
    def soft_delete(self, request, queryset):
        count = 0
        for vehicle in self.only_changeable(request, queryset):
            services.vehicle_soft_delete(vehicle=vehicle, by=request.user)
            count += 1
        self.message_user(
            request,
            ngettext(
                "%d vehicle moved to the recycle bin.",
                "%d vehicles moved to the recycle bin.",
                count,
            )
            % count,
            messages.SUCCESS,
        )


class BindingForm(forms.ModelForm):
    class Meta:
        model = DeviceBinding
        fields = ["vehicle", "device"]


@admin.register(DeviceBinding, site=admin_site)
class DeviceBindingAdmin(ScopedHistoryAdmin):
    list_display = [
        "device",
        "vehicle",
        "bound_at",
        "bound_by",
        "unbound_at",
        "unbound_by",
        "end_reason",
    ]
    list_filter = ["end_reason", ("unbound_at", admin.EmptyFieldListFilter)]
    search_fields = ["device__identifier", "vehicle__plate", "vehicle__vin"]
    autocomplete_fields = ["vehicle", "device"]
    form = BindingForm
    date_hierarchy = "bound_at"
    actions = ["unbind"]

    def visible_queryset(self, request):
        return bindings_visible_to(request.user)

    def get_fields(self, request, obj=None):
        if obj is None:
            return ["vehicle", "device"]
        return [
            "vehicle",
            "device",
            "bound_at",
            "bound_by",
            "unbound_at",
            "unbound_by",
            "end_reason",
        ]

    def get_readonly_fields(self, request, obj=None):
        return self.get_fields(request, obj) if obj else []

    def formfield_for_foreignkey(self, db_field, request, **kwargs):
        if db_field.name == "device":
            # Bind only devices in stock (or already installed, refused with a clear reason).
            kwargs["queryset"] = devices_visible_to(request.user, for_change=True).exclude(
                status__in=[Device.Status.FAULTY, Device.Status.SCRAPPED]
            )
        elif db_field.name == "vehicle":
            kwargs["queryset"] = vehicles_visible_to(request.user, for_change=True)
        return super().formfield_for_foreignkey(db_field, request, **kwargs)

    def has_change_permission(self, request, obj=None):
        return False if obj is not None else super().has_change_permission(request, obj)

    def has_delete_permission(self, request, obj=None):
        return False

    def save_model(self, request, obj, form, change):
        binding = services.device_bind(
            vehicle=form.cleaned_data["vehicle"],
            device=form.cleaned_data["device"],
            by=request.user,
        )
        obj.pk = binding.pk

    @admin.action(description=_("Unbind selected devices (back to stock)"), permissions=["add"])
    def unbind(self, request, queryset):
        count = 0
        for binding in queryset.filter(unbound_at__isnull=True):
            services.device_unbind(binding=binding, by=request.user)
            count += 1
        self.message_user(
            request,
            ngettext("%d device unbound.", "%d devices unbound.", count) % count,
            messages.SUCCESS,
        )


@admin.register(DeletedVehicle, site=admin_site)
class DeletedVehicleAdmin(RecycleBinAdmin):
    list_display = ["plate", "vin", "customer", "borrower_name", "deleted_at", "deleted_by"]
    search_fields = ["plate", "vin", "borrower_name"]
    list_filter = [("customer", VisibleCustomerFilter)]
    base_model, service_arg = Vehicle, "vehicle"
    restore_service = staticmethod(services.vehicle_restore)
    erase_service = staticmethod(services.vehicle_hard_delete)

    def visible_queryset(self, request):
        return deleted_vehicles_visible_to(request.user)


@admin.register(VehicleUserObjectPermission, site=admin_site)
class VehicleUserObjectPermissionAdmin(ShareAdmin):
    pass
