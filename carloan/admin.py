"""The back office's admin site: branding per customer, scoped admins, the operation log."""

from __future__ import annotations

from django import forms
from django.contrib import admin, messages
from django.contrib.admin import helpers
from django.contrib.admin.utils import unquote
from django.core.exceptions import ValidationError
from django.db import transaction
from django.http import Http404, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.utils.translation import gettext_lazy as _
from simple_history.admin import SimpleHistoryAdmin

from carloan.errors import ApplicationError


class CarloanAdminSite(admin.AdminSite):
    site_title = _("carloan back office")
    index_title = _("Back office")

    def each_context(self, request):
        from accounts.selectors import branding_for_user

        context = super().each_context(request)
        branding = branding_for_user(request.user)
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
    from devices.selectors import (
        device_models_visible_to,
        devices_visible_to,
        manufacturers_visible_to,
    )
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


class VisibleCustomerFilter(admin.RelatedFieldListFilter):
    """Filter by customer with the choices of the user's subtree (a DISTINCT over the whole
    changelist, as RelatedOnlyFieldListFilter does, costs more than the page itself at 10k rows)."""

    def field_choices(self, field, request, model_admin):
        from accounts.selectors import customers_visible_to

        return [
            (c.pk, str(c))
            for c in customers_visible_to(request.user)
            .only("pk", "name")
            .order_by("tree_id", "lft")
        ]


class ScopedAdmin(admin.ModelAdmin):
    """Every changelist, form choice, filter and autocomplete limited to what the user may see.

    Subclasses set `visible_queryset(request)`. Writes go through services: subclasses implement
    `save_via_service` / `delete_via_service`; ApplicationErrors become admin messages."""

    list_per_page = 50
    show_full_result_count = False  # one COUNT less per page on big tables

    def visible_queryset(self, request):  # pragma: no cover - every subclass sets it
        raise NotImplementedError

    def changeable_queryset(self, request):
        """Rows the user may edit, when that differs from what they see (objects shared with
        them read-only). None: every visible row."""
        return None

    def only_changeable(self, request, queryset):
        changeable = self.changeable_queryset(request)
        return queryset if changeable is None else queryset.filter(pk__in=changeable.values("pk"))

    def _may_change(self, request, obj) -> bool:
        changeable = self.changeable_queryset(request)
        return obj is None or changeable is None or changeable.filter(pk=obj.pk).exists()

    def has_change_permission(self, request, obj=None):
        return super().has_change_permission(request, obj) and self._may_change(request, obj)

    def has_delete_permission(self, request, obj=None):
        return super().has_delete_permission(request, obj) and self._may_change(request, obj)

    def get_ordering(self, request):
        # Explicit: Meta.ordering is dropped from the annotated (GROUP BY) list querysets.
        return super().get_ordering(request) or self.model._meta.ordering or ["-pk"]

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

    def _refused(self, request, exc) -> HttpResponseRedirect:
        text = exc.message if isinstance(exc, ApplicationError) else "; ".join(exc.messages)
        self.message_user(request, text, messages.ERROR)
        return HttpResponseRedirect(request.get_full_path())

    def _get_obj_does_not_exist_redirect(self, request, opts, object_id):
        # Another tenant's id, or a deleted row: 404 like the API, never a hint that it exists.
        raise Http404

    def changeform_view(self, request, object_id=None, form_url="", extra_context=None):
        # save_model calls services; a refusal rolls the whole form back (the view is atomic)
        # and comes back as a message on the same page, never as a false "saved".
        try:
            return super().changeform_view(request, object_id, form_url, extra_context)
        except (ApplicationError, ValidationError) as exc:
            return self._refused(request, exc)

    def response_action(self, request, queryset):
        try:
            with transaction.atomic():
                return super().response_action(request, queryset)
        except (ApplicationError, ValidationError) as exc:
            return self._refused(request, exc)

    def get_actions(self, request):
        actions = super().get_actions(request)
        # Hard delete never goes through the stock bulk delete; subclasses add their own.
        actions.pop("delete_selected", None)
        return actions


class ScopedHistoryAdmin(ScopedAdmin, SimpleHistoryAdmin):
    """ScopedAdmin with simple-history's per-object history page, limited to visible objects
    (simple-history would otherwise fall back to any historical row, even another tenant's)."""

    def _require_visible(self, request, object_id) -> None:
        if not self.get_queryset(request).filter(pk=unquote(object_id)).exists():
            raise Http404

    def history_view(self, request, object_id, extra_context=None):
        self._require_visible(request, object_id)
        return super().history_view(request, object_id, extra_context)

    def history_form_view(self, request, object_id, version_id, extra_context=None):
        self._require_visible(request, object_id)
        return super().history_form_view(request, object_id, version_id, extra_context)


class BulkForm(forms.Form):
    """Base of the intermediate pages of bulk actions; `user` scopes any customer choice."""

    def __init__(self, *args, user=None, **kwargs):
        super().__init__(*args, **kwargs)
        self.user = user


class MoveForm(BulkForm):
    to_customer = forms.ModelChoiceField(label=_("Move to customer"), queryset=None)
    note = forms.CharField(label=_("Note"), required=False, max_length=200)

    def __init__(self, *args, user=None, **kwargs):
        super().__init__(*args, user=user, **kwargs)
        from accounts.selectors import customers_visible_to

        self.fields["to_customer"].queryset = customers_visible_to(user).order_by("tree_id", "lft")


def bulk_form_action(*, form_class, apply, description, permission):
    """An admin action with an intermediate form page: first shows `form_class` for the selected
    rows, then on confirmation calls `apply(request, queryset, cleaned_data) -> message`."""

    def action(modeladmin, request, queryset):
        confirmed = "apply" in request.POST
        form = form_class(request.POST if confirmed else None, user=request.user)
        if confirmed and form.is_valid():
            message = apply(
                request, modeladmin.only_changeable(request, queryset), form.cleaned_data
            )
            modeladmin.message_user(request, message, messages.SUCCESS)
            return None
        opts = modeladmin.model._meta
        context = {
            **modeladmin.admin_site.each_context(request),
            "title": description,
            "form": form,
            "queryset": queryset,
            "count": queryset.count(),
            "preview": list(queryset[:20]),
            "opts": opts,
            "action_name": action.__name__,
            "select_across": request.POST.get("select_across", "0"),
            "selected": request.POST.getlist(helpers.ACTION_CHECKBOX_NAME),
            "action_checkbox_name": helpers.ACTION_CHECKBOX_NAME,
            "media": modeladmin.media + form.media,
        }
        return TemplateResponse(request, "admin/carloan/bulk_form.html", context)

    action.__name__ = apply.__name__
    action.short_description = description
    action.allowed_permissions = (permission,)
    return admin.action(description=description, permissions=[permission])(action)


def xlsx_export_action(*, build, filename, description):
    """An admin action that downloads the selected rows as an XLSX file."""

    def export_xlsx(modeladmin, request, queryset):
        from vehicles.exports import xlsx_response

        return xlsx_response(build(queryset), filename)

    return admin.action(description=description, permissions=["view"])(export_xlsx)


class ReadOnlyAdmin(ScopedAdmin):
    """Logs and records written only by services: listed and read, never edited here."""

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


class RecycleBinAdmin(ReadOnlyAdmin):
    """The recycle bin of a soft-deleted model (V6). Seeing it needs the model's view right;
    restoring needs its delete right (who may delete may undo); erasing is for platform admins.
    Subclasses set `base_model`, `restore_service` and `erase_service` (keyword `obj` name in
    `service_arg`)."""

    base_model = None
    service_arg = ""
    actions = ["restore", "erase"]

    def _perm(self, action: str) -> str:
        opts = self.base_model._meta
        return f"{opts.app_label}.{action}_{opts.model_name}"

    def has_module_permission(self, request):
        return request.user.has_perm(self._perm("view"))

    def has_view_permission(self, request, obj=None):
        return request.user.has_perm(self._perm("view"))

    def has_restore_permission(self, request):
        return request.user.has_perm(self._perm("delete"))

    def has_erase_permission(self, request):
        from accounts.selectors import is_platform_admin

        return is_platform_admin(request.user)

    @admin.action(description=_("Restore selected items"), permissions=["restore"])
    def restore(self, request, queryset):
        for obj in queryset:
            for reason in type(self).restore_service(**{self.service_arg: obj, "by": request.user}):
                self.message_user(request, reason, messages.WARNING)
        self.message_user(request, _("Restored."), messages.SUCCESS)

    @admin.action(description=_("Delete selected items permanently"), permissions=["erase"])
    def erase(self, request, queryset):
        for obj in queryset:
            type(self).erase_service(**{self.service_arg: obj, "by": request.user})
        self.message_user(request, _("Deleted permanently."), messages.SUCCESS)


class ShareForm(BulkForm):
    username = forms.CharField(
        label=_("Share with user (username)"),
        max_length=150,
        help_text=_("A user of another customer; they will see the selected rows."),
    )
    can_change = forms.BooleanField(label=_("They may also edit them"), required=False)


def share_action(description):
    """Admin action: share the selected rows with one user (django-guardian)."""

    def _share(request, queryset, data):
        from accounts.services import objects_share

        count = objects_share(
            objects=list(queryset),
            username=data["username"],
            can_change=data["can_change"],
            by=request.user,
        )
        return _("%(n)d shared with %(u)s.") % {"n": count, "u": data["username"]}

    return bulk_form_action(
        form_class=ShareForm, apply=_share, description=description, permission="change"
    )


class ShareAdmin(ReadOnlyAdmin):
    """Who an object of the user's subtree is shared with; the revoke action withdraws it."""

    list_display = ["content_object", "user", "permission"]
    search_fields = ["user__username"]
    list_select_related = ["content_object", "user", "permission"]
    actions = ["revoke"]

    def visible_queryset(self, request):
        from accounts.selectors import scope

        return scope(self.model.objects.all(), request.user, "content_object__customer")

    def has_module_permission(self, request):
        return self.has_view_permission(request)

    def has_view_permission(self, request, obj=None):
        opts = self.model.content_object.field.related_model._meta
        return request.user.has_perm(f"{opts.app_label}.change_{opts.model_name}")

    def has_revoke_permission(self, request):
        return self.has_view_permission(request)

    @admin.action(description=_("Withdraw the selected shares"), permissions=["revoke"])
    def revoke(self, request, queryset):
        from accounts.services import share_revoke

        count = 0
        for share in queryset:
            share_revoke(share=share)
            count += 1
        self.message_user(request, _("%d shares withdrawn.") % count, messages.SUCCESS)
