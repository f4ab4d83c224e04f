"""Back-office pages of the vehicles app that are not plain model admin: the fleet import (V4).

The Vehicle admin mounts `fleet_import_view` at `admin/vehicles/vehicle/import/` (through
`admin_site.admin_view`, which requires a logged-in staff user)."""

from __future__ import annotations

from django import forms
from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.http import HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import NoReverseMatch, reverse
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from accounts.models import Customer
from accounts.selectors import customers_visible_to
from carloan.errors import ApplicationError, ImportRowsError
from devices.protocols import PROTOCOLS
from vehicles.imports import COLUMNS, REQUIRED_COLUMNS, fleet_import, read_fleet_file

# Importing creates vehicles and devices and binds them.
IMPORT_PERMISSIONS = ("vehicles.add_vehicle", "devices.add_device", "vehicles.add_devicebinding")
# More errors than this are summarised: a wrong file can produce one per row.
MAX_ERRORS_SHOWN = 500


class CustomerChoiceField(forms.ModelChoiceField):
    def label_from_instance(self, obj: Customer) -> str:
        return f"{obj.name} ({obj.code})"


class FleetImportForm(forms.Form):
    file = forms.FileField(
        label=gettext_lazy("File"),
        help_text=gettext_lazy("A .csv (UTF-8 or GBK) or .xlsx file, first row the header."),
    )
    customer = CustomerChoiceField(
        label=gettext_lazy("Default customer"),
        queryset=Customer.objects.none(),
        required=False,
        help_text=gettext_lazy("Used for rows whose customer column is missing or empty."),
    )
    dry_run = forms.BooleanField(
        label=gettext_lazy("Dry run"),
        required=False,
        help_text=gettext_lazy("Check the file and report what would happen; save nothing."),
    )

    def __init__(self, *args, user, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["customer"].queryset = customers_visible_to(user).order_by("tree_id", "lft")

    def clean_file(self):
        upload = self.cleaned_data["file"]
        if not upload.name.lower().endswith((".csv", ".xlsx", ".xlsm")):
            raise forms.ValidationError(
                _("Upload a .csv or .xlsx file (save .xls files as .xlsx).")
            )
        return upload


def _admin_urls(site, opts) -> tuple[str, str]:
    """The vehicle list and the app index, or the admin home while they are not registered."""
    try:
        return (
            reverse(f"admin:{opts.app_label}_{opts.model_name}_changelist", current_app=site.name),
            reverse("admin:app_list", kwargs={"app_label": opts.app_label}, current_app=site.name),
        )
    except NoReverseMatch:
        home = reverse("admin:index", current_app=site.name)
        return home, home


def fleet_import_view(request, model_admin):
    """GET: the upload form. POST: import the file as `request.user`; success redirects to the
    vehicle list with the counts, bad rows come back as a table (and nothing is imported)."""
    if not request.user.has_perms(IMPORT_PERMISSIONS):
        raise PermissionDenied
    site = model_admin.admin_site
    opts = model_admin.model._meta
    changelist_url, app_url = _admin_urls(site, opts)
    row_errors: list[tuple[int, str]] = []
    error_message = None

    if request.method == "POST":
        form = FleetImportForm(request.POST, request.FILES, user=request.user)
        if form.is_valid():
            upload = form.cleaned_data["file"]
            try:
                rows = read_fleet_file(upload, upload.name)
                result = fleet_import(
                    rows_source=rows,
                    by=request.user,
                    default_customer=form.cleaned_data["customer"],
                    dry_run=form.cleaned_data["dry_run"],
                )
            except ImportRowsError as exc:
                error_message, row_errors = exc.message, exc.errors
            except ApplicationError as exc:
                form.add_error(None, exc.message)
            else:
                if not result.dry_run:
                    model_admin.message_user(request, result.summary(), messages.SUCCESS)
                    return HttpResponseRedirect(changelist_url)
                model_admin.message_user(request, result.summary(), messages.INFO)
    else:
        form = FleetImportForm(user=request.user)

    context = {
        **site.each_context(request),
        "title": _("Import fleet"),
        "opts": opts,
        "app_label": opts.app_label,
        "changelist_url": changelist_url,
        "app_url": app_url,
        "form": form,
        "media": model_admin.media + form.media,
        "required_columns": ", ".join(REQUIRED_COLUMNS),
        "optional_columns": ", ".join(c for c in COLUMNS if c not in REQUIRED_COLUMNS),
        "protocols": ", ".join(f"{key} ({p.label})" for key, p in PROTOCOLS.items()),
        "error_message": error_message,
        "row_errors": row_errors[:MAX_ERRORS_SHOWN],
        "hidden_errors": max(0, len(row_errors) - MAX_ERRORS_SHOWN),
    }
    return TemplateResponse(request, "admin/vehicles/import_fleet.html", context)
