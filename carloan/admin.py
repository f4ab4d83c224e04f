"""The back office's admin site: branding per customer, scoped admins, the operation log."""

from __future__ import annotations

from django.contrib import admin, messages
from django.core.exceptions import ValidationError
from django.utils.translation import gettext_lazy as _

from carloan.errors import ApplicationError


class CarloanAdminSite(admin.AdminSite):
    site_title = _("carloan back office")
    index_title = _("Back office")

    def each_context(self, request):
        from accounts.selectors import branding_for_user

        context = super().each_context(request)
        branding = branding_for_user(request.user) if request.user.is_authenticated else None
        if branding is None:
            from accounts.selectors import branding_for

            branding = branding_for(None)
        context["branding"] = branding
        context["site_header"] = branding.title
        return context

    def get_urls(self):
        from django.urls import path

        from accounts.oplog import operation_log_view

        return [
            path("operation-log/", self.admin_view(operation_log_view), name="operation_log"),
        ] + super().get_urls()


admin_site = CarloanAdminSite(name="admin")


def _related_selectors() -> dict:
    """Related model -> visibility selector, for FK/M2M choices and autocompletes."""
    from accounts.models import Customer, Role, User
    from accounts.selectors import customers_visible_to, roles_visible_to, users_visible_to
    from devices.models import Device, DeviceModel, Manufacturer
    from devices.selectors import device_models_visible_to, devices_visible_to, manufacturers_visible_to
    from vehicles.models import Vehicle
    from vehicles.selectors import vehicles_visible_to

    return {
        Customer: customers_visible_to,
        Role: roles_visible_to,
        User: users_visible_to,
        Device: devices_visible_to,
        DeviceModel: device_models_visible_to,
        Manufacturer: manufacturers_visible_to,
        Vehicle: vehicles_visible_to,
    }


class ScopedAdmin(admin.ModelAdmin):
    """Every changelist, form choice, filter and autocomplete limited to what the user may see.

    Subclasses set `visible_queryset(request)`. Writes go through services: subclasses implement
    `save_via_service` / `delete_via_service`; ApplicationErrors become admin messages."""

    list_per_page = 50
    show_full_result_count = False  # one COUNT less per page on big tables

    def visible_queryset(self, request):  # pragma: no cover - every subclass sets it
        raise NotImplementedError

    def get_queryset(self, request):
        qs = self.visible_queryset(request)
        ordering = self.get_ordering(request)
        return qs.order_by(*ordering) if ordering else qs

    def formfield_for_foreignkey(self, db_field, request, **kwargs):
        selector = _related_selectors().get(db_field.related_model)
        if selector is not None:
            kwargs["queryset"] = selector(request.user)
        return super().formfield_for_foreignkey(db_field, request, **kwargs)

    def formfield_for_manytomany(self, db_field, request, **kwargs):
        selector = _related_selectors().get(db_field.related_model)
        if selector is not None:
            kwargs["queryset"] = selector(request.user)
        return super().formfield_for_manytomany(db_field, request, **kwargs)

    def run_service(self, request, func, **kwargs):
        """Call a service; show a domain error as an admin message. Returns None on error."""
        try:
            return func(**kwargs)
        except ApplicationError as exc:
            self.message_user(request, exc.message, messages.ERROR)
        except ValidationError as exc:
            self.message_user(request, "; ".join(exc.messages), messages.ERROR)
        return None

    def get_actions(self, request):
        actions = super().get_actions(request)
        # Hard delete never goes through the stock bulk delete; subclasses add their own.
        actions.pop("delete_selected", None)
        return actions
