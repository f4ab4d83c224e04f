"""The operation log (A3): who did what, when, across every logged model, plus login events,
limited to the viewer's subtree.

Each logged model's simple-history table is scoped by the customer it belongs to, reduced to the
same columns and merged with UNION ALL, so one page costs one query for the rows (+ one per model
on the page to show what changed)."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from django import forms
from django.apps import apps
from django.core.exceptions import PermissionDenied
from django.core.paginator import Paginator
from django.db.models import CharField, F, Q, Value
from django.db.models.functions import Cast
from django.template.response import TemplateResponse
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from accounts.models import AuthEvent
from accounts.selectors import customers_visible_to, is_platform_admin, subtree_q

# model label -> (path from the historical row to its Customer, field shown as the object's name)
LOGGED_MODELS: dict[str, tuple[str, str]] = {
    "accounts.customer": ("", "name"),
    "accounts.user": ("customer", "username"),
    "accounts.role": ("customer", "name"),
    "devices.manufacturer": ("customer", "name"),
    "devices.devicemodel": ("customer", "name"),
    "devices.device": ("customer", "identifier"),
    "vehicles.vehicle": ("customer", "plate"),
    "vehicles.devicebinding": ("vehicle__customer", "device__identifier"),
    "vehicles.vehicleuserobjectpermission": ("content_object__customer", "content_object__plate"),
    "devices.deviceuserobjectpermission": (
        "content_object__customer",
        "content_object__identifier",
    ),
    "devices.command": ("device__customer", "device__identifier"),
    "devices.commandjob": ("customer", "kind"),
}
AUTH_LABEL = "accounts.authevent"
ACTIONS = {"+": _("created"), "~": _("changed"), "-": _("deleted")}
COLUMNS = ["log_hid", "log_at", "log_action", "log_user", "log_model", "log_object", "log_label"]


def _history_model(label: str):
    return apps.get_model(label).history.model


def _model_rows(user, label: str):
    path, name_field = LOGGED_MODELS[label]
    qs = _history_model(label).objects.all()
    if path == "":
        if not is_platform_admin(user):
            qs = qs.filter(id__in=customers_visible_to(user).values("id"))
    else:
        q = subtree_q(user, path)
        if q is not None:
            qs = qs.filter(q)
    # No ORDER BY inside the parts of a UNION (the models' Meta.ordering would add one).
    return qs.order_by().values(
        log_hid=F("history_id"),
        log_at=F("history_date"),
        log_action=F("history_type"),
        log_user=F("history_user_id"),
        log_model=Value(label, output_field=CharField()),
        log_object=F("id"),
        log_label=Cast(name_field, output_field=CharField()),
    )


def _auth_rows(user):
    q = subtree_q(user, "customer")
    qs = AuthEvent.objects.all() if q is None else AuthEvent.objects.filter(q)
    return qs.order_by().values(
        log_hid=F("id"),
        log_at=F("at"),
        log_action=F("kind"),
        log_user=F("user_id"),
        log_model=Value(AUTH_LABEL, output_field=CharField()),
        log_object=F("user_id"),
        log_label=F("username"),
    )


class OperationLogFilter(forms.Form):
    model = forms.ChoiceField(label=_("What"), required=False)
    username = forms.CharField(label=_("Who (username)"), required=False, max_length=150)
    since = forms.DateField(
        label=_("From"), required=False, widget=forms.DateInput(attrs={"type": "date"})
    )
    until = forms.DateField(
        label=_("To"), required=False, widget=forms.DateInput(attrs={"type": "date"})
    )

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        choices = [("", _("everything"))]
        for label in LOGGED_MODELS:
            choices.append((label, apps.get_model(label)._meta.verbose_name_plural))
        choices.append((AUTH_LABEL, AuthEvent._meta.verbose_name_plural))
        self.fields["model"].choices = choices


def operation_log_rows(
    user,
    *,
    model: str = "",
    username: str = "",
    since: dt.date | None = None,
    until: dt.date | None = None,
):
    """The merged, scoped log as a queryset of dicts (COLUMNS), newest first."""
    labels = (
        [model] if model in LOGGED_MODELS else ([] if model == AUTH_LABEL else list(LOGGED_MODELS))
    )
    parts = [_model_rows(user, label) for label in labels]
    if model in ("", AUTH_LABEL):
        parts.append(_auth_rows(user))
    tz = timezone.get_current_timezone()
    filtered = []
    for qs in parts:
        if username:
            from accounts.models import User

            ids = User.objects.filter(username__icontains=username).values("id")
            qs = qs.filter(Q(log_user__in=ids))
        if since:
            qs = qs.filter(log_at__gte=dt.datetime.combine(since, dt.time.min, tzinfo=tz))
        if until:
            qs = qs.filter(
                log_at__lt=dt.datetime.combine(until + dt.timedelta(days=1), dt.time.min, tzinfo=tz)
            )
        filtered.append(qs)
    first, rest = filtered[0], filtered[1:]
    return (first.union(*rest, all=True) if rest else first).order_by("-log_at", "-log_hid")


@dataclass
class LogEntry:
    at: dt.datetime
    action: str
    actor: str
    model: str
    object_label: str
    changes: list[tuple[str, str, str]]  # (field, before, after)
    url: str | None


def _changes(record) -> list[tuple[str, str, str]]:
    if record is None or record.history_type != "~":
        return []
    prev = record.prev_record
    if prev is None:
        return []
    delta = record.diff_against(prev)
    out = []
    for change in delta.changes:
        try:
            name = str(record.instance_type._meta.get_field(change.field).verbose_name)
        except Exception:  # noqa: BLE001 - an m2m or a removed field keeps its raw name
            name = change.field
        out.append(
            (
                name,
                "" if change.old is None else str(change.old),
                "" if change.new is None else str(change.new),
            )
        )
    return out


def _entries(rows) -> list[LogEntry]:
    from django.urls import NoReverseMatch, reverse

    from accounts.models import User

    users = {
        u.pk: u.username
        for u in User.objects.filter(pk__in={r["log_user"] for r in rows if r["log_user"]})
    }
    records = {}
    for label in {r["log_model"] for r in rows} - {AUTH_LABEL}:
        ids = [r["log_hid"] for r in rows if r["log_model"] == label]
        for rec in _history_model(label).objects.filter(history_id__in=ids):
            records[(label, rec.history_id)] = rec
    out = []
    for r in rows:
        label = r["log_model"]
        if label == AUTH_LABEL:
            action = dict(AuthEvent.Kind.choices).get(r["log_action"], r["log_action"])
            model_name, record, url = AuthEvent._meta.verbose_name, None, None
        else:
            model_cls = apps.get_model(label)
            action = ACTIONS.get(r["log_action"], r["log_action"])
            model_name = model_cls._meta.verbose_name
            record = records.get((label, r["log_hid"]))
            try:
                url = reverse(
                    f"admin:{model_cls._meta.app_label}_{model_cls._meta.model_name}_history",
                    args=[r["log_object"]],
                )
            except NoReverseMatch:
                url = None
        out.append(
            LogEntry(
                at=r["log_at"],
                action=str(action),
                actor=users.get(r["log_user"]) or str(_("system")),
                model=str(model_name),
                object_label=r["log_label"] or "",
                changes=_changes(record),
                url=url,
            )
        )
    return out


def operation_log_view(request):
    """Admin page: the operation log. Needs the `accounts.view_authevent` right (or superuser)."""
    from carloan.admin import admin_site

    if not request.user.has_perm("accounts.view_authevent"):
        raise PermissionDenied
    form = OperationLogFilter(request.GET or None)
    filters = form.cleaned_data if form.is_valid() else {}
    rows = operation_log_rows(
        request.user,
        model=filters.get("model") or "",
        username=filters.get("username") or "",
        since=filters.get("since"),
        until=filters.get("until"),
    )
    page = Paginator(rows, 50).get_page(request.GET.get("p"))
    query = request.GET.copy()
    query.pop("p", None)
    context = {
        **admin_site.each_context(request),
        "title": _("Operation log"),
        "form": form,
        "page": page,
        "entries": _entries(list(page.object_list)),
        "query": query.urlencode(),
    }
    return TemplateResponse(request, "admin/operation_log.html", context)
