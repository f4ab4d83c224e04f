"""Back office of credit evaluation: applications (submit, read why, decide reviews, loans,
outcomes), rule sets (drafts with rule inlines compiled on save, publish, replay), scorecard
models (register, promote, metrics, the monitoring page), products, dealers (rating), black /
white lists, loans and monitoring alerts. Every queryset comes from credit.selectors; every
write goes through credit.services."""

from __future__ import annotations

import json

from django import forms
from django.contrib import admin, messages
from django.contrib.admin import helpers
from django.core.exceptions import PermissionDenied, ValidationError
from django.db.models import Count
from django.http import Http404
from django.template.response import TemplateResponse
from django.urls import path
from django.utils.html import format_html, format_html_join
from django.utils.translation import gettext, ngettext
from django.utils.translation import gettext_lazy as _

from carloan.admin import (
    BulkForm,
    ReadOnlyAdmin,
    ScopedAdmin,
    VisibleCustomerFilter,
    admin_site,
    bulk_form_action,
)
from carloan.errors import ApplicationError
from credit import monitoring, services
from credit.models import (
    Applicant,
    Application,
    CreditRule,
    Dealer,
    DecisionStep,
    ListEntry,
    Loan,
    MonitoringAlert,
    Product,
    RuleSet,
    ScorecardModel,
)
from credit.rules import RuleError
from credit.rules.errors import RuleDefinitionError
from credit.scorecard.metrics import PSI_REBUILD_ABOVE, PSI_WATCH_FROM
from credit.selectors import (
    applicants_visible_to,
    applications_for_list,
    applications_visible_to,
    dealers_visible_to,
    is_platform_user,
    list_entries_visible_to,
    loans_visible_to,
    monitoring_alerts_visible_to,
    products_visible_to,
    rule_sets_visible_to,
    scorecard_models_visible_to,
)
from credit.services.rulesets import DEFAULT_REPLAY, MAX_REPLAY, credit_rule_check
from credit.services.scorecards import artefact_files, scorecard_register_file

_CREDIT_SELECTORS = {
    Product: products_visible_to,
    Dealer: dealers_visible_to,
    RuleSet: rule_sets_visible_to,
    Applicant: applicants_visible_to,
}


def _pretty(value) -> str:
    return format_html(
        '<pre class="credit-json">{}</pre>', json.dumps(value, ensure_ascii=False, indent=1)
    )


def _adopt(obj, created) -> None:
    """Give the admin's unsaved `obj` the identity of the row a service created, so the admin's
    log entry and redirect point at it."""
    for f in created._meta.concrete_fields:
        setattr(obj, f.attname, getattr(created, f.attname))
    obj._state.adding = False


class CreditAdmin(ScopedAdmin):
    """ScopedAdmin whose credit foreign keys offer only visible rows."""

    def formfield_for_foreignkey(self, db_field, request, **kwargs):
        selector = _CREDIT_SELECTORS.get(db_field.related_model)
        if selector is not None:
            kwargs["queryset"] = selector(request.user)
        return super().formfield_for_foreignkey(db_field, request, **kwargs)


# --- Products and dealers ---------------------------------------------------------------------
@admin.register(Product, site=admin_site)
class ProductAdmin(CreditAdmin):
    list_display = [
        "code",
        "name",
        "customer",
        "min_amount",
        "max_amount",
        "terms",
        "annual_rate",
        "max_debt_to_income",
        "active",
    ]
    list_filter = ["active", ("customer", VisibleCustomerFilter)]
    search_fields = ["code", "name"]
    list_select_related = ["customer"]

    def visible_queryset(self, request):
        return products_visible_to(request.user)

    def changeable_queryset(self, request):
        return products_visible_to(request.user, for_change=True)

    def has_delete_permission(self, request, obj=None):
        return False  # applications keep their product: deactivate it instead

    def save_model(self, request, obj, form, change):
        services.product_save(product=obj, by=request.user)


@admin.register(Dealer, site=admin_site)
class DealerAdmin(CreditAdmin):
    list_display = [
        "code",
        "name",
        "customer",
        "status",
        "rating",
        "cooperation",
        "years_in_business",
        "registered_capital",
        "monthly_sales",
        "rated_at",
    ]
    list_filter = ["status", "rating", "cooperation", ("customer", VisibleCustomerFilter)]
    search_fields = ["code", "name"]
    list_select_related = ["customer"]
    readonly_fields = ["rating", "cooperation", "rated_at", "rating_breakdown"]
    actions = ["rate"]

    def visible_queryset(self, request):
        return dealers_visible_to(request.user)

    def changeable_queryset(self, request):
        return dealers_visible_to(request.user, for_change=True)

    def has_delete_permission(self, request, obj=None):
        return False

    def get_fields(self, request, obj=None):
        fields = [
            "customer",
            "code",
            "name",
            "years_in_business",
            "registered_capital",
            "staff",
            "monthly_sales",
        ]
        if obj is None:
            return fields  # admission decides the status
        return [*fields, "status", *self.readonly_fields]

    @admin.display(description=_("rating details"))
    def rating_breakdown(self, obj):
        return _pretty(obj.rating_details or {})

    def save_model(self, request, obj, form, change):
        services.dealer_save(dealer=obj, by=request.user)
        if not change and obj.status != Dealer.Status.ADMITTED:
            failures = obj.rating_details.get("admission", {}).get("failures", [])
            self.message_user(
                request,
                gettext("Not admitted: %(failures)s") % {"failures": ", ".join(failures)},
                messages.WARNING,
            )

    @admin.action(description=_("Rate the selected dealers (A-D)"), permissions=["change"])
    def rate(self, request, queryset):
        done = [
            services.dealer_rate(dealer=d, by=request.user)
            for d in self.only_changeable(request, queryset)
        ]
        self.message_user(
            request,
            ", ".join(f"{d.code}: {d.rating}" for d in done) or gettext("Nothing rated."),
            messages.SUCCESS,
        )


# --- Lists ---------------------------------------------------------------------------------------
@admin.register(ListEntry, site=admin_site)
class ListEntryAdmin(CreditAdmin):
    list_display = ["kind", "field", "value", "customer", "source", "reason", "expires_at"]
    list_filter = ["kind", "field"]
    search_fields = ["value", "source", "reason"]
    list_select_related = ["customer"]
    fields = ["kind", "field", "value", "customer", "source", "reason", "expires_at"]
    actions = ["remove"]

    def visible_queryset(self, request):
        return list_entries_visible_to(request.user)

    def formfield_for_foreignkey(self, db_field, request, **kwargs):
        field = super().formfield_for_foreignkey(db_field, request, **kwargs)
        if db_field.name == "customer" and not is_platform_user(request.user):
            field.required = True  # platform-wide entries are the platform's to keep
        return field

    def save_model(self, request, obj, form, change):
        services.catalogue.list_entry_save(entry=obj, by=request.user)

    def delete_model(self, request, obj):
        services.list_entry_delete(entry=obj, by=request.user)

    @admin.action(
        description=_("Remove the selected entries from their lists"), permissions=["delete"]
    )
    def remove(self, request, queryset):
        count = 0
        for entry in queryset:
            services.list_entry_delete(entry=entry, by=request.user)
            count += 1
        self.message_user(
            request,
            ngettext("%d entry removed.", "%d entries removed.", count) % count,
            messages.SUCCESS,
        )


# --- Rule sets ------------------------------------------------------------------------------------
class CreditRuleForm(forms.ModelForm):
    """Compiles the expression when the form is validated: a bad rule comes back on the form
    with the message and a caret under the bad token."""

    class Meta:
        model = CreditRule
        fields = ["code", "name", "expression", "action", "reason_code", "priority", "enabled"]
        widgets = {
            "expression": forms.Textarea(
                attrs={"rows": 2, "cols": 60, "class": "vLargeTextField rule-expression"}
            )
        }

    def clean(self):
        data = super().clean()
        if self.errors or not data.get("expression") or data.get("DELETE"):
            return data
        candidate = CreditRule(
            code=data.get("code") or "",
            name=data.get("name") or "",
            expression=data["expression"],
            action=data.get("action") or "",
            reason_code=data.get("reason_code") or "",
            priority=data.get("priority") if data.get("priority") is not None else 100,
            enabled=bool(data.get("enabled")),
        )
        try:
            credit_rule_check(candidate)
        except RuleError as exc:
            self.add_error(
                "expression",
                ValidationError(
                    format_html(
                        '{}<pre class="rule-caret">{}</pre>', exc.render(gettext), exc.caret()
                    ),
                    code=exc.code,
                ),
            )
        except RuleDefinitionError as exc:
            raise ValidationError(exc.render(gettext)) from None
        return data


class CreditRuleInline(admin.TabularInline):
    model = CreditRule
    form = CreditRuleForm
    extra = 1
    fields = ["priority", "code", "name", "expression", "action", "reason_code", "enabled"]
    ordering = ["priority", "code"]

    def _draft(self, obj) -> bool:
        return obj is None or obj.status == RuleSet.Status.DRAFT

    def has_add_permission(self, request, obj=None):
        return self._draft(obj) and super().has_add_permission(request, obj)

    def has_change_permission(self, request, obj=None):
        return self._draft(obj) and super().has_change_permission(request, obj)

    def has_delete_permission(self, request, obj=None):
        return self._draft(obj) and super().has_delete_permission(request, obj)


class ReplayForm(forms.Form):
    last = forms.IntegerField(
        label=_("Replay over the last N applications"),
        min_value=1,
        max_value=MAX_REPLAY,
        initial=DEFAULT_REPLAY,
    )


@admin.register(RuleSet, site=admin_site)
class RuleSetAdmin(CreditAdmin):
    list_display = [
        "__str__",
        "customer",
        "version",
        "name",
        "status",
        "rule_count",
        "published_at",
        "published_by",
    ]
    list_filter = ["status", ("customer", VisibleCustomerFilter)]
    search_fields = ["name"]
    list_select_related = ["customer", "published_by"]
    inlines = [CreditRuleInline]
    actions = ["publish", "replay", "copy_to_draft"]

    def visible_queryset(self, request):
        return rule_sets_visible_to(request.user).annotate(rule_count=Count("rules"))

    @admin.display(description=_("rules"), ordering="rule_count")
    def rule_count(self, obj):
        return obj.rule_count

    def get_fields(self, request, obj=None):
        if obj is None:
            return ["customer", "name"]
        return ["customer", "version", "name", "status", "published_at", "published_by"]

    def get_readonly_fields(self, request, obj=None):
        if obj is None:
            return []
        return ["customer", "version", "status", "published_at", "published_by"]

    def has_change_permission(self, request, obj=None):
        # Published and retired versions never change: their page is read-only.
        if obj is not None and obj.status != RuleSet.Status.DRAFT:
            return False
        return super().has_change_permission(request, obj)

    def has_delete_permission(self, request, obj=None):
        return False

    def has_publish_permission(self, request):
        return request.user.has_perm("credit.publish_ruleset")

    def save_model(self, request, obj, form, change):
        if change:
            services.rulesets.ruleset_update(rule_set=obj, name=obj.name, by=request.user)
        else:
            created = services.ruleset_create(customer=obj.customer, name=obj.name, by=request.user)
            _adopt(obj, created)

    def save_formset(self, request, form, formset, change):
        for deleted in formset.deleted_forms:
            if deleted.instance.pk:
                services.credit_rule_delete(rule=deleted.instance, by=request.user)
        for inline_form in formset.forms:
            if inline_form in formset.deleted_forms or not inline_form.has_changed():
                continue
            rule = inline_form.save(commit=False)
            rule.rule_set = form.instance
            services.credit_rule_save(rule=rule, by=request.user)
        formset.new_objects, formset.changed_objects, formset.deleted_objects = [], [], []

    @admin.action(description=_("Publish the selected draft"), permissions=["publish"])
    def publish(self, request, queryset):
        done = []
        for rule_set in queryset:
            try:
                done.append(services.ruleset_publish(rule_set=rule_set, by=request.user))
            except RuleError as exc:
                raise ApplicationError(exc.render(gettext)) from exc
            except ApplicationError as exc:
                if hasattr(exc, "render"):
                    raise ApplicationError(exc.render(gettext), code=exc.code) from exc
                raise
        self.message_user(
            request,
            gettext("Published: %(versions)s. New applications are decided with it.")
            % {"versions": ", ".join(str(r) for r in done)},
            messages.SUCCESS,
        )

    @admin.action(description=_("Replay against the last N applications"), permissions=["view"])
    def replay(self, request, queryset):
        rule_sets = list(queryset[:2])
        if len(rule_sets) != 1:
            self.message_user(request, gettext("Choose one rule set to replay."), messages.ERROR)
            return None
        rule_set = rule_sets[0]
        confirmed = "apply" in request.POST
        form = ReplayForm(request.POST if confirmed else None)
        diff = None
        if confirmed and form.is_valid():
            try:
                diff = services.ruleset_replay(
                    rule_set=rule_set, last=form.cleaned_data["last"], by=request.user
                )
            except ApplicationError as exc:
                text = exc.render(gettext) if hasattr(exc, "render") else exc.message
                self.message_user(request, text, messages.ERROR)
                return None
        context = {
            **self.admin_site.each_context(request),
            "title": gettext("Replay of %(rule_set)s") % {"rule_set": rule_set},
            "opts": self.model._meta,
            "rule_set": rule_set,
            "form": form,
            "diff": diff,
            "rows": _replay_rows(diff) if diff else [],
            "action_checkbox_name": helpers.ACTION_CHECKBOX_NAME,
            "selected": [rule_set.pk],
        }
        return TemplateResponse(request, "credit/replay.html", context)

    @admin.action(description=_("Copy to a new draft"), permissions=["add"])
    def copy_to_draft(self, request, queryset):
        made = [
            services.ruleset_create(customer=r.customer, name=r.name, copy_from=r, by=request.user)
            for r in queryset
        ]
        self.message_user(
            request,
            gettext("New drafts: %(drafts)s") % {"drafts": ", ".join(str(r) for r in made)},
            messages.SUCCESS,
        )


def _replay_rows(diff) -> list[dict]:
    rows = []
    for before, after, count in diff.rows():
        ids = list(diff.changed.get((before, after), ()))
        rows.append(
            {
                "before": before,
                "after": after,
                "count": count,
                "changed": before != after,
                "ids": ids[:50],
                "more": max(len(ids) - 50, 0),
            }
        )
    return rows


# --- Scorecard models and monitoring --------------------------------------------------------------
class ScorecardRegisterForm(forms.ModelForm):
    file = forms.FileField(
        label=_("Artefact file (JSON)"),
        required=False,
        help_text=_("Written by manage.py train_scorecard."),
    )
    committed = forms.ChoiceField(
        label=_("Or a committed artefact"),
        required=False,
        help_text=_("From credit/scorecard/models/."),
    )

    class Meta:
        model = ScorecardModel
        fields: list[str] = []

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["committed"].choices = [("", "---------")] + [
            (name, name) for name in artefact_files()
        ]

    def clean(self):
        data = super().clean()
        if bool(data.get("file")) == bool(data.get("committed")):
            raise ValidationError(_("Upload a file or choose a committed artefact (one of them)."))
        return data


@admin.register(ScorecardModel, site=admin_site)
class ScorecardModelAdmin(ScopedAdmin):
    list_display = ["name", "version", "status", "auc", "ks", "created_at"]
    list_filter = ["status"]
    search_fields = ["name", "version"]
    actions = ["make_champion", "make_challenger", "retire"]
    change_list_template = "credit/scorecard_change_list.html"

    def visible_queryset(self, request):
        return scorecard_models_visible_to(request.user).defer("artefact")

    def get_form(self, request, obj=None, change=False, **kwargs):
        if obj is None:
            kwargs["form"] = ScorecardRegisterForm
        return super().get_form(request, obj, change, **kwargs)

    def get_fields(self, request, obj=None):
        if obj is None:
            return ["file", "committed"]
        return ["name", "version", "status", "created_at", "training", "fingerprint"]

    def get_readonly_fields(self, request, obj=None):
        return [] if obj is None else self.get_fields(request, obj)

    def has_add_permission(self, request):
        return super().has_add_permission(request) and is_platform_user(request.user)

    def has_change_permission(self, request, obj=None):
        return False if obj is not None else super().has_change_permission(request, obj)

    def has_delete_permission(self, request, obj=None):
        return False

    def has_promote_permission(self, request):
        return request.user.has_perm("credit.promote_scorecardmodel") and is_platform_user(
            request.user
        )

    def _metric(self, obj, name):
        value = ((obj.metrics or {}).get("metrics") or {}).get(name)
        return f"{value:.3f}" if isinstance(value, int | float) else "-"

    @admin.display(description="AUC")
    def auc(self, obj):
        return self._metric(obj, "auc")

    @admin.display(description="KS")
    def ks(self, obj):
        return self._metric(obj, "ks")

    @admin.display(description=_("fingerprint"))
    def fingerprint(self, obj):
        return (obj.artefact or {}).get("fingerprint", "")

    @admin.display(description=_("training"))
    def training(self, obj):
        metrics = obj.metrics or {}
        bands = metrics.get("bands") or []
        head = format_html_join(
            " ",
            "<b>{}</b> {}",
            (
                (key.upper(), f"{value:.3f}")
                for key, value in (metrics.get("metrics") or {}).items()
                if isinstance(value, int | float)
            ),
        )
        rows = format_html_join(
            "",
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            (
                (
                    b.get("band"),
                    b.get("count"),
                    f"{100 * (b.get('share') or 0):.1f} %",
                    "-" if b.get("bad_rate") is None else f"{100 * b['bad_rate']:.1f} %",
                )
                for b in bands
            ),
        )
        return format_html(
            "<p>{}</p><table><thead><tr><th>{}</th><th>{}</th><th>{}</th><th>{}</th></tr>"
            "</thead><tbody>{}</tbody></table>",
            head,
            gettext("band"),
            gettext("applicants"),
            gettext("share"),
            gettext("bad rate"),
            rows,
        )

    def save_model(self, request, obj, form, change):
        upload = form.cleaned_data.get("file")
        if upload:
            created = services.scorecard_register(artefact=upload.read(), by=request.user)
        else:
            created = scorecard_register_file(
                filename=form.cleaned_data["committed"], by=request.user
            )
        _adopt(obj, created)

    def _promote(self, request, queryset, to):
        done = [services.scorecard_promote(model=m, to=to, by=request.user) for m in queryset[:2]]
        self.message_user(
            request,
            gettext("%(models)s: now %(status)s.")
            % {
                "models": ", ".join(f"{m.name} {m.version}" for m in done),
                "status": ScorecardModel.Status(to).label,
            },
            messages.SUCCESS,
        )

    @admin.action(description=_("Promote to champion"), permissions=["promote"])
    def make_champion(self, request, queryset):
        if queryset.count() != 1:
            raise ApplicationError(gettext("Choose one model to be the champion."))
        self._promote(request, queryset, ScorecardModel.Status.CHAMPION)

    @admin.action(description=_("Make challenger (scored in shadow)"), permissions=["promote"])
    def make_challenger(self, request, queryset):
        if queryset.count() != 1:
            raise ApplicationError(gettext("Choose one model to be the challenger."))
        self._promote(request, queryset, ScorecardModel.Status.CHALLENGER)

    @admin.action(description=_("Retire"), permissions=["promote"])
    def retire(self, request, queryset):
        for model in queryset:
            services.scorecard_promote(
                model=model, to=ScorecardModel.Status.RETIRED, by=request.user
            )
        self.message_user(request, gettext("Retired."), messages.SUCCESS)

    def get_urls(self):
        return [
            path(
                "monitoring/",
                self.admin_site.admin_view(self.monitoring_view),
                name="credit_monitoring",
            ),
        ] + super().get_urls()

    def monitoring_view(self, request):
        return monitoring_view(request, self)


def monitoring_view(request, model_admin):
    """Model monitoring (C8) and dealer-level figures (C11) over the applications the user may
    see: score and characteristic PSI by month against the training baseline, KS / AUC once
    outcomes are known, the months and measures outside the stable band, stored alerts."""
    user = request.user
    if not (
        user.has_perm("credit.view_scorecardmodel") and user.has_perm("credit.view_application")
    ):
        raise PermissionDenied
    models = list(
        scorecard_models_visible_to(user).defer("artefact").order_by("status", "-created_at")
    )
    chosen = None
    wanted = request.GET.get("model")
    if wanted and wanted.isdigit():
        chosen = next((m for m in models if m.pk == int(wanted)), None)
        if chosen is None:
            raise Http404
    chosen = chosen or next(
        (m for m in models if m.status == ScorecardModel.Status.CHAMPION),
        models[0] if models else None,
    )
    try:
        months = int(request.GET.get("months", monitoring.DEFAULT_MONTHS))
        since, until = monitoring.period(months)
    except ValueError:
        months = monitoring.DEFAULT_MONTHS
        since, until = monitoring.period(months)
    applications = applications_visible_to(user)
    in_period = applications.filter(created_at__gte=since, created_at__lt=until)
    report = (
        monitoring.model_monitoring(applications, chosen, since=since, until=until)
        if chosen is not None
        else None
    )
    alerts = (
        list(monitoring_alerts_visible_to(user).filter(scorecard=chosen)[:100])
        if chosen is not None
        else []
    )
    context = {
        **model_admin.admin_site.each_context(request),
        "title": gettext("Model monitoring"),
        "opts": model_admin.model._meta,
        "models": models,
        "chosen": chosen,
        "months": months,
        "month_choices": [3, 6, 12, 24],
        "report": report,
        "chart": _chart_data(report) if report else None,
        "dealers": monitoring.dealer_figures(in_period),
        "mix": monitoring.decision_mix(in_period),
        "stored_alerts": alerts,
        "psi_watch": PSI_WATCH_FROM,
        "psi_rebuild": PSI_REBUILD_ABOVE,
    }
    return TemplateResponse(request, "credit/monitoring.html", context)


def _chart_data(report) -> dict:
    rows = report["months"]
    names = report["characteristics"]
    return {
        "months": [r["month"] for r in rows],
        "n": [r["n"] for r in rows],
        "score_psi": [round(r["score_psi"], 4) for r in rows],
        "ks": [None if r["ks"] is None else round(r["ks"], 4) for r in rows],
        "auc": [None if r["auc"] is None else round(r["auc"], 4) for r in rows],
        "characteristics": names,
        "heat": [
            [i, j, round(r["characteristics"][name]["psi"], 4)]
            for i, r in enumerate(rows)
            for j, name in enumerate(names)
        ],
        "watch": PSI_WATCH_FROM,
        "rebuild": PSI_REBUILD_ABOVE,
    }


# --- Applications ---------------------------------------------------------------------------------
class ApplicationSubmitForm(forms.ModelForm):
    """Submitting an application from the back office: the applicant's data with the
    application's; the decision is made when it is saved."""

    name = forms.CharField(label=_("applicant name"), max_length=50)
    id_number = forms.CharField(label=_("ID number"), max_length=18)
    phone = forms.CharField(label=_("phone"), max_length=20)
    address = forms.CharField(label=_("address"), max_length=300, required=False)
    employer = forms.CharField(label=_("employer"), max_length=200, required=False)
    monthly_income = forms.DecimalField(label=_("monthly income (CNY)"), min_value=0)
    attributes_json = forms.JSONField(
        label=_("scorecard attributes"),
        required=False,
        initial=dict,
        help_text=_('JSON object, e.g. {"credit_history": "existing credits paid back duly"}'),
    )
    checks_json = forms.JSONField(
        label=_("checks"),
        required=False,
        initial=dict,
        help_text=_('Results of outside checks, e.g. {"bureau.overdue_count_24m": 0}'),
    )

    class Meta:
        model = Application
        fields = [
            "customer",
            "product",
            "dealer",
            "used_car",
            "car_price",
            "down_payment",
            "amount",
            "term_months",
            "vin",
            "plate",
            "device_fingerprint",
            "ip_address",
            "bank_card",
        ]


class DecisionStepInline(admin.TabularInline):
    model = DecisionStep
    fields = ["order", "step", "outcome", "reason_codes", "details_pretty", "duration_us"]
    readonly_fields = fields
    extra = 0
    can_delete = False
    ordering = ["order"]

    @admin.display(description=_("details"))
    def details_pretty(self, obj):
        return _pretty(obj.details)

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False


class ReviewForm(BulkForm):
    decision = forms.ChoiceField(
        label=_("Decision"), choices=[("approve", _("approve")), ("reject", _("reject"))]
    )
    reason = forms.CharField(label=_("Reason"), widget=forms.Textarea(attrs={"rows": 3}))


class OutcomeForm(BulkForm):
    outcome = forms.ChoiceField(label=_("Outcome"), choices=Application.Outcome.choices)


def _review(request, queryset, data):
    count = 0
    for application in queryset:
        services.application_review_decide(
            application=application,
            decision=data["decision"],
            reason=data["reason"],
            by=request.user,
        )
        count += 1
    return ngettext("%d application decided.", "%d applications decided.", count) % count


def _outcome(request, queryset, data):
    count = 0
    for application in queryset:
        services.application_outcome_set(
            application=application, outcome=data["outcome"], by=request.user
        )
        count += 1
    return ngettext("%d outcome recorded.", "%d outcomes recorded.", count) % count


@admin.register(Application, site=admin_site)
class ApplicationAdmin(CreditAdmin):
    list_display = [
        "id",
        "created_at",
        "customer",
        "applicant",
        "dealer",
        "amount",
        "status",
        "score",
        "band",
        "reasons_short",
        "link_group",
        "outcome",
        "duration_ms",
    ]
    list_filter = [
        "status",
        "band",
        "outcome",
        ("customer", VisibleCustomerFilter),
    ]
    search_fields = ["applicant__name", "applicant__id_number", "applicant__phone", "link_group"]
    list_select_related = ["customer", "applicant", "dealer"]
    date_hierarchy = "created_at"
    inlines = [DecisionStepInline]
    readonly_fields = [
        "explanation",
        "customer",
        "applicant",
        "product",
        "dealer",
        "status",
        "score",
        "band",
        "challenger_score",
        "quota_pretty",
        "rule_set",
        "scorecard",
        "link_group",
        "used_car",
        "car_price",
        "down_payment",
        "amount",
        "term_months",
        "vin",
        "plate",
        "device_fingerprint",
        "ip_address",
        "bank_card",
        "attributes",
        "reviewed_by",
        "review_reason",
        "outcome",
        "created_at",
        "decided_at",
        "duration_ms",
    ]
    actions = [
        bulk_form_action(
            form_class=ReviewForm,
            apply=_review,
            description=_("Decide the selected reviews"),
            permission="review",
        ),
        "create_loans",
        bulk_form_action(
            form_class=OutcomeForm,
            apply=_outcome,
            description=_("Record the outcome (good / bad)"),
            permission="outcome",
        ),
    ]

    def visible_queryset(self, request):
        return applications_for_list(request.user)

    def get_form(self, request, obj=None, change=False, **kwargs):
        if obj is None:
            kwargs["form"] = ApplicationSubmitForm
        return super().get_form(request, obj, change, **kwargs)

    def get_fieldsets(self, request, obj=None):
        if obj is not None:
            return [(None, {"fields": self.readonly_fields})]
        return [
            (None, {"fields": ["customer", "product", "dealer"]}),
            (
                _("Applicant"),
                {"fields": ["name", "id_number", "phone", "address", "employer", "monthly_income"]},
            ),
            (
                _("Car and loan"),
                {
                    "fields": [
                        "used_car",
                        "car_price",
                        "down_payment",
                        "amount",
                        "term_months",
                        "vin",
                        "plate",
                    ]
                },
            ),
            (
                _("Device and payment"),
                {"fields": ["device_fingerprint", "ip_address", "bank_card"]},
            ),
            (_("Scorecard and checks"), {"fields": ["attributes_json", "checks_json"]}),
        ]

    def get_readonly_fields(self, request, obj=None):
        return self.readonly_fields if obj is not None else []

    def get_inlines(self, request, obj):
        return self.inlines if obj is not None else []

    def has_change_permission(self, request, obj=None):
        # Decided by the pipeline: the page of an application is read-only; the actions
        # (review, loan, outcome) have their own rights.
        return False if obj is not None else super().has_change_permission(request, obj)

    def has_delete_permission(self, request, obj=None):
        return False

    def has_review_permission(self, request):
        return request.user.has_perm("credit.review_application")

    def has_loan_permission(self, request):
        return request.user.has_perm("credit.add_loan")

    def has_outcome_permission(self, request):
        return request.user.has_perm("credit.change_application")

    @admin.action(description=_("Create the loans of the selected approvals"), permissions=["loan"])
    def create_loans(self, request, queryset):
        made = [services.loan_create(application=a, by=request.user) for a in queryset]
        self.message_user(
            request,
            ngettext("%d loan created.", "%d loans created.", len(made)) % len(made),
            messages.SUCCESS,
        )

    def save_model(self, request, obj, form, change):
        data = form.cleaned_data
        created = services.application_submit(
            customer=data["customer"],
            product=data["product"],
            dealer=data.get("dealer"),
            applicant={
                k: data.get(k)
                for k in ("name", "id_number", "phone", "address", "employer", "monthly_income")
            },
            used_car=data.get("used_car", False),
            car_price=data["car_price"],
            amount=data["amount"],
            term_months=data["term_months"],
            down_payment=data["down_payment"],
            vin=data.get("vin", ""),
            plate=data.get("plate", ""),
            device_fingerprint=data.get("device_fingerprint", ""),
            ip_address=data.get("ip_address"),
            bank_card=data.get("bank_card", ""),
            attributes=data.get("attributes_json") or {},
            checks=data.get("checks_json") or {},
            by=request.user,
        )
        _adopt(obj, created)
        self.message_user(
            request,
            gettext("Decision: %(status)s (score %(score)s). Reasons: %(reasons)s")
            % {
                "status": created.get_status_display(),
                "score": created.score if created.score is not None else "-",
                "reasons": ", ".join(created.reasons) or "-",
            },
            messages.INFO,
        )

    def changeform_view(self, request, object_id=None, form_url="", extra_context=None):
        try:
            return super().changeform_view(request, object_id, form_url, extra_context)
        except ValidationError as exc:
            if not hasattr(exc, "error_dict"):
                raise
            for field, errors in exc.message_dict.items():
                self.message_user(request, f"{field}: {'; '.join(errors)}", messages.ERROR)
            return self._refused(request, ApplicationError(gettext("Nothing was saved.")))

    @admin.display(description=_("reasons"))
    def reasons_short(self, obj):
        codes = obj.reasons or []
        return ", ".join(codes[:3]) + (" …" if len(codes) > 3 else "")

    @admin.display(description=_("quota"))
    def quota_pretty(self, obj):
        return _pretty(obj.quota or {})

    @admin.display(description=_("why"))
    def explanation(self, obj):
        """The decision in one table: each step, its outcome and its reason codes."""
        rows = format_html_join(
            "",
            "<tr><td>{}</td><td><b>{}</b></td><td>{}</td><td>{}</td></tr>",
            (
                (s.order, s.step, s.outcome, ", ".join(s.reason_codes) or "-")
                for s in obj.steps.all().order_by("order")
            ),
        )
        return format_html(
            '<table class="credit-why"><thead><tr><th>#</th><th>{}</th><th>{}</th><th>{}</th>'
            "</tr></thead><tbody>{}</tbody></table>",
            gettext("step"),
            gettext("outcome"),
            gettext("reason codes"),
            rows,
        )


# --- Read-only records ----------------------------------------------------------------------------
@admin.register(Applicant, site=admin_site)
class ApplicantAdmin(ReadOnlyAdmin):
    list_display = ["__str__", "customer", "phone", "sex", "birth_date", "created_at"]
    search_fields = ["name", "id_number", "phone"]
    list_select_related = ["customer"]

    def visible_queryset(self, request):
        return applicants_visible_to(request.user)


@admin.register(Loan, site=admin_site)
class LoanAdmin(ReadOnlyAdmin):
    list_display = [
        "application",
        "principal",
        "term_months",
        "annual_rate",
        "monthly_payment",
        "created_at",
    ]
    list_select_related = ["application__applicant"]

    def visible_queryset(self, request):
        return loans_visible_to(request.user)


@admin.register(MonitoringAlert, site=admin_site)
class MonitoringAlertAdmin(ReadOnlyAdmin):
    list_display = ["month", "scorecard", "customer", "metric", "psi", "band", "applications"]
    list_filter = ["band", "month"]
    list_select_related = ["scorecard", "customer"]

    def visible_queryset(self, request):
        return monitoring_alerts_visible_to(request.user).defer("scorecard__artefact")
