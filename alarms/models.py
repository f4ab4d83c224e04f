"""Alarms and what they are measured against (FEATURES.md R1–R7).

- `Alarm`: one occurrence of a condition on a vehicle (or a device), with its lifecycle
  open -> acknowledged -> closed; at most one alarm per vehicle + kind + target is not closed.
- `AlarmEvent`: the handling history of an alarm (raised, repeated, acknowledged, closed, auto
  closed), who and when, with the note.
- `AlarmSetting`: per-kind overrides (enabled, level, rule parameters) set on a customer (and
  inherited down its subtree) or on one vehicle; the rule's defaults apply where nobody set one.
- `RiskPoint` (server-wide), `Annotation` (per customer, shared or private), `Geofence` (per
  customer, bound to chosen vehicles), `UsualArea` and `Arming` (per vehicle), `CustomAlarmType`.
- `VehicleState`: the engine's per-vehicle memory (fence/risk-point membership, parking start,
  overspeed start ...) written back so a restart raises no false enter / leave alarms.

Coordinates are WGS-84 (SRID 4326); radii in metres.
"""

from __future__ import annotations

from django.contrib.gis.db import models as gis_models
from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _

from accounts.models import Customer
from alarms import kinds
from carloan.fields import user_reference
from devices.models import Device
from vehicles.models import Vehicle


class Level(models.IntegerChoices):
    INFO = 1, _("info")
    WARNING = 2, _("warning")
    CRITICAL = 3, _("critical")


class Alarm(models.Model):
    class Status(models.TextChoices):
        OPEN = "open", _("open")
        ACKNOWLEDGED = "acknowledged", _("acknowledged")
        CLOSED = "closed", _("closed")

    # The only moves a service may make (alarms.services.alarm_transition).
    TRANSITIONS = {
        Status.OPEN: {Status.ACKNOWLEDGED, Status.CLOSED},
        Status.ACKNOWLEDGED: {Status.CLOSED},
        Status.CLOSED: set(),
    }
    NOT_CLOSED = (Status.OPEN, Status.ACKNOWLEDGED)

    customer = models.ForeignKey(
        Customer,
        verbose_name=_("customer"),
        on_delete=models.CASCADE,
        related_name="alarms",
        help_text=_("The vehicle's customer when the alarm was raised (visibility)."),
    )
    vehicle = models.ForeignKey(
        Vehicle,
        verbose_name=_("vehicle"),
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="alarms",
    )
    device = models.ForeignKey(
        Device,
        verbose_name=_("device"),
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="alarms",
    )
    kind = models.CharField(_("kind"), max_length=40, choices=kinds.choices, db_index=True)
    # What the alarm is about besides the vehicle: "riskpoint:12", "fence:3", "province:61",
    # "device:7" ... ("" when the kind needs none). Part of the one-open-alarm key.
    target = models.CharField(_("target"), max_length=64, blank=True)
    target_name = models.CharField(_("target name"), max_length=200, blank=True)
    level = models.PositiveSmallIntegerField(
        _("level"), choices=Level.choices, default=Level.WARNING
    )
    status = models.CharField(
        _("status"), max_length=20, choices=Status.choices, default=Status.OPEN, db_index=True
    )
    started_at = models.DateTimeField(_("started"), help_text=_("When the condition began."))
    raised_at = models.DateTimeField(_("raised"), db_index=True)
    last_seen_at = models.DateTimeField(_("last seen"), help_text=_("Last time it still held."))
    occurrences = models.PositiveIntegerField(_("occurrences"), default=1)
    point = gis_models.PointField(_("position"), srid=4326, null=True, blank=True)
    speed_kmh = models.FloatField(_("speed (km/h)"), null=True, blank=True)
    message = models.CharField(_("message"), max_length=300, blank=True)
    details = models.JSONField(_("details"), default=dict, blank=True)
    acknowledged_at = models.DateTimeField(_("acknowledged"), null=True, blank=True)
    acknowledged_by = user_reference(_("acknowledged by"))
    closed_at = models.DateTimeField(_("closed"), null=True, blank=True)
    closed_by = user_reference(_("closed by"))
    auto_closed = models.BooleanField(_("closed automatically"), default=False)
    note = models.TextField(_("handling note"), blank=True)

    class Meta:
        verbose_name = _("alarm")
        verbose_name_plural = _("alarms")
        ordering = ["-raised_at", "-id"]
        permissions = [("handle_alarm", _("Can acknowledge and close alarms"))]
        constraints = [
            models.UniqueConstraint(
                fields=["vehicle", "kind", "target"],
                condition=Q(status__in=["open", "acknowledged"]),
                name="alarm_one_open_per_vehicle_kind_target",
            )
        ]
        indexes = [
            models.Index(fields=["customer", "-raised_at"], name="alarm_customer_raised"),
            models.Index(fields=["vehicle", "-raised_at"], name="alarm_vehicle_raised"),
        ]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} {self.vehicle_id or ''} {self.raised_at:%Y-%m-%d %H:%M}"

    def can_transition(self, to: str) -> bool:
        return to in self.TRANSITIONS.get(self.status, set())


class AlarmEvent(models.Model):
    class Action(models.TextChoices):
        RAISED = "raised", _("raised")
        REPEATED = "repeated", _("repeated")
        ACKNOWLEDGED = "acknowledged", _("acknowledged")
        CLOSED = "closed", _("closed")
        AUTO_CLOSED = "auto_closed", _("closed automatically")
        NOTE = "note", _("note")

    alarm = models.ForeignKey(
        Alarm, verbose_name=_("alarm"), on_delete=models.CASCADE, related_name="events"
    )
    at = models.DateTimeField(_("time"))
    action = models.CharField(_("action"), max_length=20, choices=Action.choices)
    by = user_reference(_("by"))
    note = models.TextField(_("note"), blank=True)

    class Meta:
        verbose_name = _("alarm event")
        verbose_name_plural = _("alarm events")
        ordering = ["at", "id"]

    def __str__(self) -> str:
        return f"{self.alarm_id} {self.action}"


class AlarmSetting(models.Model):
    """An override of one alarm kind for a customer's subtree or one vehicle. Resolution, most
    specific last: the rule's defaults, then each ancestor customer from the root down, then the
    vehicle. Only the keys present in `params` override."""

    kind = models.CharField(_("kind"), max_length=40, choices=kinds.choices)
    customer = models.ForeignKey(
        Customer,
        verbose_name=_("customer"),
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="alarm_settings",
    )
    vehicle = models.ForeignKey(
        Vehicle,
        verbose_name=_("vehicle"),
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="alarm_settings",
    )
    enabled = models.BooleanField(_("enabled"), null=True, blank=True)
    level = models.PositiveSmallIntegerField(
        _("level"), choices=Level.choices, null=True, blank=True
    )
    params = models.JSONField(
        _("parameters"), default=dict, blank=True, help_text=_("Rule parameters to override.")
    )
    updated_at = models.DateTimeField(_("updated"), auto_now=True)

    class Meta:
        verbose_name = _("alarm setting")
        verbose_name_plural = _("alarm settings")
        constraints = [
            models.CheckConstraint(
                condition=Q(customer__isnull=False, vehicle__isnull=True)
                | Q(customer__isnull=True, vehicle__isnull=False),
                name="alarmsetting_customer_xor_vehicle",
            ),
            models.UniqueConstraint(
                fields=["kind", "customer"],
                condition=Q(customer__isnull=False),
                name="alarmsetting_unique_customer_kind",
            ),
            models.UniqueConstraint(
                fields=["kind", "vehicle"],
                condition=Q(vehicle__isnull=False),
                name="alarmsetting_unique_vehicle_kind",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} @ {self.vehicle or self.customer}"

    def clean(self) -> None:
        if bool(self.customer_id) == bool(self.vehicle_id):
            raise ValidationError(_("Set either a customer or a vehicle."))
        if not isinstance(self.params, dict):
            raise ValidationError({"params": _("Parameters must be a JSON object.")})


class RiskPoint(models.Model):
    """A sensitive place shared by the whole server (R1): entering, leaving and staying too long
    alarm for every vehicle, with no binding."""

    class Kind(models.TextChoices):
        REGISTRATION_OFFICE = "registration_office", _("vehicle registration office")
        SECOND_PLEDGE = "second_pledge", _("second-pledge spot")
        REPAIR_SHOP = "repair_shop", _("repair shop")
        USED_CAR_MARKET = "used_car_market", _("used-car market")
        CUSTOM = "custom", _("custom")

    name = models.CharField(_("name"), max_length=200)
    kind = models.CharField(_("kind"), max_length=30, choices=Kind.choices, db_index=True)
    point = gis_models.PointField(_("position"), srid=4326)
    radius_m = models.PositiveIntegerField(
        _("radius (m)"), default=200, validators=[MinValueValidator(10), MaxValueValidator(50_000)]
    )
    address = models.CharField(_("address"), max_length=300, blank=True)
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)
    updated_at = models.DateTimeField(_("updated at"), auto_now=True, db_index=True)

    class Meta:
        verbose_name = _("risk point")
        verbose_name_plural = _("risk points")
        ordering = ["name", "id"]

    def __str__(self) -> str:
        return self.name


class Annotation(models.Model):
    """A user-made place (R2): shared with the customer's subtree, or private to its author."""

    customer = models.ForeignKey(
        Customer, verbose_name=_("customer"), on_delete=models.CASCADE, related_name="annotations"
    )
    name = models.CharField(_("name"), max_length=200)
    point = gis_models.PointField(_("position"), srid=4326)
    radius_m = models.PositiveIntegerField(
        _("radius (m)"), default=200, validators=[MinValueValidator(10), MaxValueValidator(50_000)]
    )
    shared = models.BooleanField(
        _("shared"), default=True, help_text=_("Off: only its author sees it and its alarms.")
    )
    note = models.CharField(_("note"), max_length=300, blank=True)
    created_by = user_reference(_("created by"), related_name="annotations")
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)
    updated_at = models.DateTimeField(_("updated at"), auto_now=True, db_index=True)

    class Meta:
        verbose_name = _("annotation")
        verbose_name_plural = _("annotations")
        ordering = ["name", "id"]

    def __str__(self) -> str:
        return self.name


class Geofence(models.Model):
    """A polygon or circle bound to chosen vehicles (R3), with the alarm kinds chosen per fence."""

    class Shape(models.TextChoices):
        POLYGON = "polygon", _("polygon")
        CIRCLE = "circle", _("circle")

    customer = models.ForeignKey(
        Customer, verbose_name=_("customer"), on_delete=models.CASCADE, related_name="geofences"
    )
    name = models.CharField(_("name"), max_length=200)
    shape = models.CharField(_("shape"), max_length=10, choices=Shape.choices)
    polygon = gis_models.PolygonField(_("polygon"), srid=4326, null=True, blank=True)
    center = gis_models.PointField(_("centre"), srid=4326, null=True, blank=True)
    radius_m = models.PositiveIntegerField(
        _("radius (m)"),
        null=True,
        blank=True,
        validators=[MinValueValidator(10), MaxValueValidator(500_000)],
    )
    alarm_enter = models.BooleanField(_("alarm on enter"), default=True)
    alarm_leave = models.BooleanField(_("alarm on leave"), default=True)
    alarm_inside = models.BooleanField(_("alarm while inside"), default=False)
    alarm_parking = models.BooleanField(_("alarm when parked too long inside"), default=False)
    parking_minutes = models.PositiveIntegerField(_("parking limit (minutes)"), default=60)
    vehicles = models.ManyToManyField(
        Vehicle, verbose_name=_("vehicles"), blank=True, related_name="geofences"
    )
    created_by = user_reference(_("created by"))
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)
    updated_at = models.DateTimeField(_("updated at"), auto_now=True, db_index=True)

    class Meta:
        verbose_name = _("geofence")
        verbose_name_plural = _("geofences")
        ordering = ["name", "id"]

    def __str__(self) -> str:
        return self.name

    def clean(self) -> None:
        if self.shape == self.Shape.POLYGON:
            if self.polygon is None:
                raise ValidationError({"polygon": _("A polygon fence needs its polygon.")})
            if not self.polygon.valid:
                raise ValidationError({"polygon": _("The polygon intersects itself.")})
        elif self.shape == self.Shape.CIRCLE and (self.center is None or not self.radius_m):
            raise ValidationError(_("A circle fence needs a centre and a radius."))


class UsualArea(models.Model):
    """Where the vehicle normally goes (home, work); "not entering the usual area" alarms when it
    has not been inside any of its usual areas for N days."""

    vehicle = models.ForeignKey(
        Vehicle, verbose_name=_("vehicle"), on_delete=models.CASCADE, related_name="usual_areas"
    )
    name = models.CharField(_("name"), max_length=100)
    point = gis_models.PointField(_("position"), srid=4326)
    radius_m = models.PositiveIntegerField(
        _("radius (m)"), default=500, validators=[MinValueValidator(50), MaxValueValidator(50_000)]
    )

    class Meta:
        verbose_name = _("usual area")
        verbose_name_plural = _("usual areas")

    def __str__(self) -> str:
        return self.name


class Arming(models.Model):
    """In-place arming (原地设防): the vehicle is armed at its spot; leaving the radius alarms."""

    vehicle = models.OneToOneField(
        Vehicle, verbose_name=_("vehicle"), on_delete=models.CASCADE, related_name="arming"
    )
    point = gis_models.PointField(_("armed at"), srid=4326)
    radius_m = models.PositiveIntegerField(
        _("radius (m)"), default=200, validators=[MinValueValidator(20), MaxValueValidator(10_000)]
    )
    armed_at = models.DateTimeField(_("armed at (time)"))
    armed_by = user_reference(_("armed by"))

    class Meta:
        verbose_name = _("in-place arming")
        verbose_name_plural = _("in-place armings")

    def __str__(self) -> str:
        return f"{self.vehicle}"


class CustomAlarmType(models.Model):
    """A named condition (R4): speed range, inside an area, time of day, ACC, held for a time."""

    customer = models.ForeignKey(
        Customer,
        verbose_name=_("customer"),
        on_delete=models.CASCADE,
        related_name="custom_alarm_types",
    )
    name = models.CharField(_("name"), max_length=100)
    level = models.PositiveSmallIntegerField(
        _("level"), choices=Level.choices, default=Level.WARNING
    )
    min_speed_kmh = models.FloatField(_("speed at least (km/h)"), null=True, blank=True)
    max_speed_kmh = models.FloatField(_("speed at most (km/h)"), null=True, blank=True)
    geofence = models.ForeignKey(
        Geofence,
        verbose_name=_("inside fence"),
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="+",
    )
    annotation = models.ForeignKey(
        Annotation,
        verbose_name=_("inside annotation"),
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="+",
    )
    time_from = models.TimeField(_("from (local time)"), null=True, blank=True)
    time_to = models.TimeField(_("to (local time)"), null=True, blank=True)
    acc = models.BooleanField(_("ACC"), null=True, blank=True, help_text=_("Empty: either."))
    duration_s = models.PositiveIntegerField(_("held for (seconds)"), default=0)
    enabled = models.BooleanField(_("enabled"), default=True)
    updated_at = models.DateTimeField(_("updated at"), auto_now=True, db_index=True)

    class Meta:
        verbose_name = _("custom alarm type")
        verbose_name_plural = _("custom alarm types")
        constraints = [
            models.UniqueConstraint(fields=["customer", "name"], name="customalarmtype_unique_name")
        ]

    def __str__(self) -> str:
        return self.name


class VehicleState(models.Model):
    """The engine's memory of one vehicle, written back after each batch that changed it."""

    vehicle = models.OneToOneField(
        Vehicle,
        verbose_name=_("vehicle"),
        on_delete=models.CASCADE,
        primary_key=True,
        related_name="alarm_state",
    )
    state = models.JSONField(_("state"), default=dict)
    updated_at = models.DateTimeField(_("updated"))
    # Scans claim a vehicle once per run: claimed_at < run start -> claim (see alarms.jobs).
    scanned_at = models.DateTimeField(_("scanned"), null=True, blank=True)

    class Meta:
        verbose_name = _("vehicle alarm state")
        verbose_name_plural = _("vehicle alarm states")

    def __str__(self) -> str:
        return f"{self.vehicle_id}"


from alarms.notify.models import NotificationDelivery, NotificationSubscription  # noqa: E402,F401
