from __future__ import annotations

from django.contrib import admin
from django.contrib.auth.admin import UserAdmin as DjangoUserAdmin
from django.contrib.auth.models import Group, Permission
from django.utils.translation import gettext_lazy as _
from mptt.admin import MPTTModelAdmin
from rest_framework.authtoken.models import TokenProxy

from accounts import services
from accounts.models import AuthEvent, Customer, Role, User
from accounts.selectors import (
    auth_events_visible_to,
    customers_visible_to,
    is_platform_admin,
    roles_visible_to,
    users_visible_to,
)
from carloan.admin import ReadOnlyAdmin, ScopedHistoryAdmin, VisibleCustomerFilter, admin_site


def grantable_permissions(user):
    """Permissions a user may hand out: all for a platform admin, else the ones they hold."""
    qs = Permission.objects.select_related("content_type").filter(
        content_type__app_label__in=["accounts", "devices", "vehicles", "authtoken"]
    )
    if is_platform_admin(user):
        return qs
    held = user.get_all_permissions()
    ids = [p.pk for p in qs if f"{p.content_type.app_label}.{p.codename}" in held]
    return qs.filter(pk__in=ids)


@admin.register(Customer, site=admin_site)
class CustomerAdmin(ScopedHistoryAdmin, MPTTModelAdmin):
    list_display = ["name", "code", "contact_name", "contact_phone", "brand_title", "is_active"]
    list_filter = ["is_active"]
    search_fields = ["name", "code", "contact_name", "contact_phone"]
    autocomplete_fields = ["parent"]
    mptt_level_indent = 20
    fieldsets = [
        (None, {"fields": ["name", "code", "parent", "is_active"]}),
        (_("Contact"), {"fields": ["contact_name", "contact_phone"]}),
        (_("Branding"), {"fields": ["brand_title", "brand_logo"]}),
    ]

    def visible_queryset(self, request):
        return customers_visible_to(request.user)

    def get_ordering(self, request):
        return ["tree_id", "lft"]

    def save_model(self, request, obj, form, change):
        data = {f: form.cleaned_data[f] for f in form.fields if f in form.cleaned_data}
        parent = data.pop("parent", None)
        if change:
            changed = {f: data[f] for f in form.changed_data if f in data}
            if "parent" in form.changed_data:
                changed["parent"] = parent
            services.customer_update(customer=obj, by=request.user, **changed)
        else:
            created = services.customer_create(by=request.user, parent=parent, **data)
            obj.pk = created.pk

    def has_delete_permission(self, request, obj=None):
        # Customers are deactivated, not deleted (their history and devices must stay).
        return False


@admin.register(Role, site=admin_site)
class RoleAdmin(ScopedHistoryAdmin):
    list_display = ["name", "customer", "description"]
    list_filter = [("customer", VisibleCustomerFilter)]
    search_fields = ["name", "customer__name"]
    list_select_related = ["customer"]
    filter_horizontal = ["permissions"]
    autocomplete_fields = ["customer"]

    def visible_queryset(self, request):
        return roles_visible_to(request.user)

    def formfield_for_manytomany(self, db_field, request, **kwargs):
        if db_field.name == "permissions":
            kwargs["queryset"] = grantable_permissions(request.user)
            return admin.ModelAdmin.formfield_for_manytomany(self, db_field, request, **kwargs)
        return super().formfield_for_manytomany(db_field, request, **kwargs)

    def save_model(self, request, obj, form, change):
        # Permissions are an M2M: the service sets them, so save_related must not.
        role = services.role_save(
            by=request.user,
            role=obj if change else None,
            customer=form.cleaned_data["customer"],
            name=form.cleaned_data["name"],
            description=form.cleaned_data.get("description", ""),
            permissions=form.cleaned_data.get("permissions", []),
        )
        obj.pk = role.pk

    def save_related(self, request, form, formsets, change):
        for formset in formsets:
            self.save_formset(request, form, formset, change=change)


@admin.register(User, site=admin_site)
class UserAdmin(ScopedHistoryAdmin, DjangoUserAdmin):
    list_display = [
        "username",
        "first_name",
        "customer",
        "kind",
        "role",
        "phone",
        "is_active",
        "is_staff",
    ]
    list_filter = ["kind", "is_active", "is_staff", ("customer", VisibleCustomerFilter)]
    search_fields = ["username", "first_name", "last_name", "phone", "email"]
    list_select_related = ["customer", "role"]
    autocomplete_fields = ["customer"]
    filter_horizontal = ["user_permissions"]
    fieldsets = [
        (None, {"fields": ["username", "password"]}),
        (_("Personal info"), {"fields": ["first_name", "last_name", "email", "phone"]}),
        (_("Organisation"), {"fields": ["customer", "kind", "role"]}),
        (_("Rights"), {"fields": ["is_active", "is_staff", "is_superuser", "user_permissions"]}),
        (_("Important dates"), {"fields": ["last_login", "date_joined"]}),
    ]
    add_fieldsets = [
        (
            None,
            {
                "classes": ["wide"],
                "fields": ["username", "usable_password", "password1", "password2"],
            },
        ),
        (_("Organisation"), {"fields": ["customer", "kind", "role", "phone", "is_staff"]}),
    ]
    readonly_fields = ["last_login", "date_joined"]

    def visible_queryset(self, request):
        return users_visible_to(request.user)

    def get_ordering(self, request):
        return ["username"]

    def get_fieldsets(self, request, obj=None):
        fieldsets = super().get_fieldsets(request, obj)
        if is_platform_admin(request.user):
            return fieldsets
        # Only platform administrators create or see superuser switches.
        return [
            (name, {**opts, "fields": [f for f in opts["fields"] if f != "is_superuser"]})
            for name, opts in fieldsets
        ]

    def formfield_for_manytomany(self, db_field, request, **kwargs):
        if db_field.name == "user_permissions":
            kwargs["queryset"] = grantable_permissions(request.user)
            return admin.ModelAdmin.formfield_for_manytomany(self, db_field, request, **kwargs)
        return super().formfield_for_manytomany(db_field, request, **kwargs)

    def save_model(self, request, obj, form, change):
        data = form.cleaned_data
        if change:
            fields = {
                f: data[f]
                for f in form.changed_data
                if f in data
                and f not in ("password", "user_permissions", "last_login", "date_joined")
            }
            services.user_update(user=obj, by=request.user, **fields)
        else:
            user = services.user_create(
                by=request.user,
                username=data["username"],
                password=data.get("password1"),
                customer=data.get("customer"),
                kind=data.get("kind") or User.Kind.STAFF,
                role=data.get("role"),
                phone=data.get("phone", ""),
                is_staff=data.get("is_staff", False),
            )
            obj.pk = user.pk

    def save_related(self, request, form, formsets, change):
        if "user_permissions" in form.cleaned_data and form.instance.pk:
            services.user_update(
                user=form.instance,
                by=request.user,
                user_permissions=list(form.cleaned_data["user_permissions"]),
            )


@admin.register(AuthEvent, site=admin_site)
class AuthEventAdmin(ReadOnlyAdmin):
    list_display = ["at", "kind", "username", "customer", "ip_address", "user_agent"]
    list_filter = ["kind"]
    search_fields = ["username", "ip_address"]
    date_hierarchy = "at"
    list_select_related = ["user", "customer"]

    def visible_queryset(self, request):
        return auth_events_visible_to(request.user)


# Django groups and the raw token table are platform plumbing: platform administrators only.
@admin.register(Group, site=admin_site)
class GroupAdmin(admin.ModelAdmin):
    search_fields = ["name"]
    filter_horizontal = ["permissions"]

    def has_module_permission(self, request):
        return is_platform_admin(request.user)

    def get_queryset(self, request):
        qs = super().get_queryset(request)
        return qs if is_platform_admin(request.user) else qs.none()


@admin.register(TokenProxy, site=admin_site)
class TokenAdmin(admin.ModelAdmin):
    list_display = ["key", "user", "created"]
    search_fields = ["user__username"]
    raw_id_fields = ["user"]

    def has_module_permission(self, request):
        return is_platform_admin(request.user)

    def get_queryset(self, request):
        qs = super().get_queryset(request)
        return qs if is_platform_admin(request.user) else qs.none()
