"""Admin of notifications: each user's own subscriptions, and the delivery log.

- Subscriptions: anyone who may see alarms (`alarms.view_alarm`) manages their own, and only
  their own (a platform admin included: nobody subscribes someone else). Writes go through
  `notification_subscription_set` / `_delete`.
- Delivery log: read-only; what was sent, failed (with the backend's error) or suppressed, for
  alarms the viewer may see and recipients of their subtree (plus their own deliveries); needs
  `alarms.view_notificationdelivery`.
"""

from __future__ import annotations

from django import forms
from django.contrib import admin
from django.utils.translation import gettext_lazy as _

from alarms import kinds
from alarms.alarm_selectors import deliveries_visible_to
from alarms.notify import services
from alarms.notify.models import NotificationDelivery, NotificationSubscription
from carloan.admin import ReadOnlyAdmin, ScopedAdmin, admin_site


class SubscriptionForm(forms.ModelForm):
    kinds = forms.MultipleChoiceField(
        label=_("alarm kinds"),
        choices=kinds.choices,
        required=False,
        widget=forms.CheckboxSelectMultiple,
        help_text=_("Tick none to receive every kind."),
    )

    class Meta:
        model = NotificationSubscription
        fields = [
            "channel",
            "kinds",
            "min_level",
            "enabled",
            "quiet_from",
            "quiet_to",
            "critical_in_quiet_hours",
        ]

    def __init__(self, *args, user=None, **kwargs):
        super().__init__(*args, **kwargs)
        self.user = user
        if user is not None and self.instance.user_id is None:
            self.instance.user = user  # always one's own

    def clean(self):
        data = super().clean()
        channel = data.get("channel") or self.instance.channel
        if (
            self.user is not None
            and not self.instance.pk
            and NotificationSubscription.objects.filter(
                user_id=self.user.pk, channel=channel
            ).exists()
        ):
            self.add_error("channel", _("You already have a subscription for this channel."))
        return data


@admin.register(NotificationSubscription, site=admin_site)
class NotificationSubscriptionAdmin(ScopedAdmin):
    form = SubscriptionForm
    list_display = ["channel", "kinds_text", "min_level", "enabled", "quiet_hours", "updated_at"]
    list_filter = ["channel", "enabled"]

    def visible_queryset(self, request):
        return NotificationSubscription.objects.filter(user_id=request.user.pk)

    def _may_subscribe(self, request) -> bool:
        return request.user.is_active and request.user.has_perm("alarms.view_alarm")

    def _own(self, request, obj) -> bool:
        return obj is None or obj.user_id == request.user.pk

    def has_module_permission(self, request):
        return self._may_subscribe(request)

    def has_view_permission(self, request, obj=None):
        return self._may_subscribe(request) and self._own(request, obj)

    def has_add_permission(self, request):
        return self._may_subscribe(request)

    def has_change_permission(self, request, obj=None):
        return self._may_subscribe(request) and self._own(request, obj)

    def has_delete_permission(self, request, obj=None):
        return self._may_subscribe(request) and self._own(request, obj)

    def get_form(self, request, obj=None, change=False, **kwargs):
        form_class = super().get_form(request, obj, change, **kwargs)
        user = request.user

        class BoundForm(form_class):
            def __init__(self, *args, **kw):
                super().__init__(*args, user=user, **kw)

        return BoundForm

    def get_readonly_fields(self, request, obj=None):
        # The channel is the subscription's key: another channel is another subscription.
        return ["channel"] if obj is not None else []

    @admin.display(description=_("alarm kinds"))
    def kinds_text(self, obj):
        if not obj.kinds:
            return _("all")
        labels = dict(kinds.choices())
        return ", ".join(str(labels.get(k, k)) for k in obj.kinds)

    @admin.display(description=_("quiet hours"))
    def quiet_hours(self, obj):
        if obj.quiet_from is None:
            return "-"
        return f"{obj.quiet_from:%H:%M}–{obj.quiet_to:%H:%M}"

    def save_model(self, request, obj, form, change):
        data = form.cleaned_data
        fields = {f: data[f] for f in services.SUBSCRIPTION_FIELDS if f in data}
        saved = services.notification_subscription_set(
            user=request.user,
            channel=obj.channel if change else data["channel"],
            by=request.user,
            **fields,
        )
        obj.pk = saved.pk

    def delete_model(self, request, obj):
        services.notification_subscription_delete(subscription=obj, by=request.user)

    def delete_queryset(self, request, queryset):
        for subscription in queryset:
            services.notification_subscription_delete(subscription=subscription, by=request.user)


@admin.register(NotificationDelivery, site=admin_site)
class NotificationDeliveryAdmin(ReadOnlyAdmin):
    list_display = ["at", "alarm_text", "user", "channel", "backend", "address", "status", "error"]
    list_filter = ["status", "channel", ("at", admin.DateFieldListFilter)]
    search_fields = ["user__username", "address", "alarm__vehicle__plate"]
    list_select_related = ["alarm", "alarm__vehicle", "user"]
    ordering = ["-at", "-id"]

    def visible_queryset(self, request):
        return deliveries_visible_to(request.user)

    @admin.display(description=_("alarm"))
    def alarm_text(self, obj):
        alarm = obj.alarm
        plate = alarm.vehicle.plate if alarm.vehicle_id else "-"
        return f"{plate} {alarm.get_kind_display()} ({alarm.get_level_display()})"
