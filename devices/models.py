from __future__ import annotations

import simple_history
from django.conf import settings
from django.contrib.gis.db import models as gis_models
from django.core.exceptions import ValidationError
from django.db import models
from django.utils.translation import gettext_lazy as _
from guardian.models import UserObjectPermissionBase
from simple_history.models import HistoricalRecords

from accounts.models import Customer
from carloan.errors import InvalidTransition
from carloan.fields import user_reference
from carloan.softdelete import SoftDeleteModel
from carloan.validators import validate_iccid, validate_mobile
from devices import commands, work_modes
from devices.protocols import PROTOCOLS, normalize_identifier, protocol_choices


class DeviceKind(models.TextChoices):
    WIRED = "wired", _("wired")
    WIRELESS = "wireless", _("wireless")


class WorkMode(models.TextChoices):
    REALTIME = work_modes.REALTIME, _("realtime")
    ALARM_CLOCK = work_modes.ALARM_CLOCK, _("alarm clock")
    DEEP_SLEEP = work_modes.DEEP_SLEEP, _("deep sleep")
    VIBRATION = work_modes.VIBRATION, _("vibration-triggered realtime")


class Manufacturer(models.Model):
    """Device makers are user-defined (V5). `customer` empty = the platform-wide catalogue."""

    name = models.CharField(_("name"), max_length=100)
    customer = models.ForeignKey(
        Customer,
        verbose_name=_("owner"),
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        help_text=_("Empty: shared by the whole platform."),
    )
    contact = models.CharField(_("contact"), max_length=100, blank=True)
    history = HistoricalRecords()

    class Meta:
        verbose_name = _("manufacturer")
        verbose_name_plural = _("manufacturers")
        ordering = ["name"]
        constraints = [
            models.UniqueConstraint(fields=["customer", "name"], name="manufacturer_unique_name")
        ]

    def __str__(self) -> str:
        return self.name


class DeviceModel(models.Model):
    name = models.CharField(_("name"), max_length=100)
    manufacturer = models.ForeignKey(
        Manufacturer,
        verbose_name=_("manufacturer"),
        on_delete=models.PROTECT,
        related_name="models",
    )
    customer = models.ForeignKey(
        Customer,
        verbose_name=_("owner"),
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        help_text=_("Empty: shared by the whole platform."),
    )
    protocol = models.CharField(_("protocol"), max_length=20, choices=protocol_choices)
    kind = models.CharField(_("wired / wireless"), max_length=10, choices=DeviceKind.choices)
    battery_capacity_mah = models.PositiveIntegerField(
        _("battery capacity (mAh)"), null=True, blank=True
    )
    battery_life_days = models.PositiveIntegerField(
        _("battery life (days)"), null=True, blank=True, help_text=_("At the default work mode.")
    )
    default_work_mode = models.CharField(
        _("default work mode"), max_length=20, choices=WorkMode.choices, default=WorkMode.REALTIME
    )
    lenient = models.BooleanField(
        _("lenient checksums"),
        default=False,
        help_text=_("Accept frames with bad checksums from devices of this model."),
    )
    history = HistoricalRecords()

    class Meta:
        verbose_name = _("device model")
        verbose_name_plural = _("device models")
        ordering = ["manufacturer__name", "name"]
        constraints = [
            models.UniqueConstraint(
                fields=["manufacturer", "name"], name="devicemodel_unique_name_per_manufacturer"
            )
        ]

    def __str__(self) -> str:
        return f"{self.manufacturer.name} {self.name}"


# Fields the gateway rewrites on every fix: kept out of the operation log.
STATE_FIELDS = [
    "online",
    "last_seen_at",
    "last_fix_at",
    "last_position",
    "last_speed_kmh",
    "last_course",
    "last_acc",
    "battery_pct",
    "external_voltage",
    "gsm_signal",
    "satellites",
    "odometer_km",
    "frames_dropped",
    "last_drop_reason",
]


class Device(SoftDeleteModel):
    class Status(models.TextChoices):
        STOCK = "stock", _("in stock")
        INSTALLED = "installed", _("installed")
        FAULTY = "faulty", _("faulty")
        SCRAPPED = "scrapped", _("scrapped")

    identifier = models.CharField(
        _("device id (IMEI)"),
        max_length=20,
        help_text=_(
            "As the protocol knows it: IMEI for GT06, terminal id for JT/T 808, id for H02."
        ),
    )
    protocol = models.CharField(_("protocol"), max_length=20, choices=protocol_choices)
    kind = models.CharField(_("wired / wireless"), max_length=10, choices=DeviceKind.choices)
    model = models.ForeignKey(
        DeviceModel,
        verbose_name=_("device model"),
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="devices",
    )
    customer = models.ForeignKey(
        Customer, verbose_name=_("customer"), on_delete=models.PROTECT, related_name="devices"
    )
    status = models.CharField(
        _("inventory status"),
        max_length=20,
        choices=Status.choices,
        default=Status.STOCK,
        db_index=True,
    )
    sim_iccid = models.CharField(
        _("SIM ICCID"), max_length=20, blank=True, validators=[validate_iccid]
    )
    sim_number = models.CharField(
        _("SIM number"), max_length=20, blank=True, validators=[validate_mobile]
    )
    work_mode = models.CharField(
        _("work mode"), max_length=20, choices=WorkMode.choices, default=WorkMode.REALTIME
    )
    work_params = models.JSONField(
        _("work mode parameters"),
        default=dict,
        blank=True,
        help_text=_(
            'realtime: {"moving_interval_s": 30, "still_interval_s": 60}; alarm clock: '
            '{"times": ["08:00", "20:00"]} (up to 6); deep sleep: {"days": 1-30}; '
            'vibration: {"interval_s": 30}.'
        ),
    )
    remark = models.CharField(_("remark"), max_length=200, blank=True)
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)
    updated_at = models.DateTimeField(_("updated at"), auto_now=True)

    # Last-known state, written by the gateway once per batch (T6).
    online = models.BooleanField(_("online"), default=False)
    last_seen_at = models.DateTimeField(_("last seen"), null=True, blank=True)
    last_fix_at = models.DateTimeField(_("last fix time"), null=True, blank=True)
    last_position = gis_models.PointField(_("last position"), srid=4326, null=True, blank=True)
    last_speed_kmh = models.FloatField(_("speed (km/h)"), null=True, blank=True)
    last_course = models.PositiveSmallIntegerField(_("course"), null=True, blank=True)
    last_acc = models.BooleanField(_("ACC on"), null=True, blank=True)
    battery_pct = models.PositiveSmallIntegerField(_("battery %"), null=True, blank=True)
    external_voltage = models.FloatField(_("external voltage (V)"), null=True, blank=True)
    gsm_signal = models.PositiveSmallIntegerField(_("GSM signal"), null=True, blank=True)
    satellites = models.PositiveSmallIntegerField(_("satellites"), null=True, blank=True)
    odometer_km = models.FloatField(_("odometer (km)"), null=True, blank=True)
    # Bad input from this device (bad checksum, oversized frame ...), counted by the gateway.
    frames_dropped = models.PositiveIntegerField(_("frames dropped"), default=0)
    last_drop_reason = models.CharField(_("last drop reason"), max_length=200, blank=True)
    # JT/T 808 auth code: generated by the platform once, sent in 0x8100, checked on 0x0102.
    auth_code = models.CharField(_("auth code"), max_length=32, blank=True, editable=False)

    history = HistoricalRecords(excluded_fields=STATE_FIELDS + ["updated_at", "auth_code"])

    class Meta:
        verbose_name = _("device")
        verbose_name_plural = _("devices")
        ordering = ["-id"]
        constraints = [
            # One live device per identifier; a deleted one may be re-created.
            models.UniqueConstraint(
                fields=["identifier"],
                condition=models.Q(deleted_at__isnull=True),
                name="device_unique_live_identifier",
                violation_error_message=_("Another device already has this id."),
            )
        ]
        indexes = [models.Index(fields=["customer", "status"])]

    def __str__(self) -> str:
        return self.identifier

    def clean(self) -> None:
        errors: dict[str, list] = {}
        self.identifier = normalize_identifier(self.identifier)
        protocol = PROTOCOLS.get(self.protocol)
        if protocol and not protocol.identifier_ok(self.identifier):
            errors.setdefault("identifier", []).append(
                ValidationError(
                    _("%(id)s is not valid for %(protocol)s: expected %(expected)s."),
                    code="invalid_identifier",
                    params={
                        "id": self.identifier,
                        "protocol": protocol.label,
                        "expected": protocol.identifier_help,
                    },
                )
            )
        if self.model_id and self.model:
            if self.model.protocol != self.protocol:
                errors.setdefault("protocol", []).append(
                    ValidationError(
                        _("The device model speaks %(p)s."),
                        params={"p": self.model.get_protocol_display()},
                    )
                )
            if self.model.kind != self.kind:
                errors.setdefault("kind", []).append(
                    ValidationError(
                        _("The device model is %(k)s."), params={"k": self.model.get_kind_display()}
                    )
                )
        try:
            self.work_params = work_modes.clean_work_params(self.work_mode, self.work_params)
        except ValueError as exc:
            errors.setdefault("work_params", []).append(ValidationError(str(exc)))
        if errors:
            raise ValidationError(errors)


class DeviceUserObjectPermission(UserObjectPermissionBase):
    """Direct-FK guardian table: a device shared with a user outside its customer's subtree."""

    content_object = models.ForeignKey(Device, verbose_name=_("device"), on_delete=models.CASCADE)

    class Meta(UserObjectPermissionBase.Meta):
        verbose_name = _("shared device")
        verbose_name_plural = _("shared devices")


# Who shared what with whom belongs in the operation log.
simple_history.register(DeviceUserObjectPermission, app=__package__)


class StockMove(models.Model):
    """A device moved from one customer's stock to another's (V2)."""

    device = models.ForeignKey(
        Device, verbose_name=_("device"), on_delete=models.CASCADE, related_name="stock_moves"
    )
    from_customer = models.ForeignKey(
        Customer, verbose_name=_("from"), on_delete=models.PROTECT, related_name="+"
    )
    to_customer = models.ForeignKey(
        Customer, verbose_name=_("to"), on_delete=models.PROTECT, related_name="+"
    )
    moved_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, verbose_name=_("moved by"), null=True, on_delete=models.SET_NULL
    )
    moved_at = models.DateTimeField(_("moved at"), db_index=True)
    note = models.CharField(_("note"), max_length=200, blank=True)

    class Meta:
        verbose_name = _("stock move")
        verbose_name_plural = _("stock moves")
        ordering = ["-moved_at", "-id"]

    def __str__(self) -> str:
        return f"{self.device} {self.from_customer} → {self.to_customer}"


class DeletedDevice(Device):
    """The recycle bin's view of devices (V6): only soft-deleted rows."""

    class Meta:
        proxy = True
        default_manager_name = "deleted_objects"
        verbose_name = _("deleted device")
        verbose_name_plural = _("recycle bin: devices")


class CommandJob(models.Model):
    """A command broadcast (群发, T3 / V4): one kind and parameters for many devices, one Command
    per device with its own outcome. Scoped by the customer of the user who sent it."""

    kind = models.CharField(_("command"), max_length=30, choices=commands.kind_choices)
    params = models.JSONField(_("parameters"), default=dict, blank=True)
    defer_until_stopped = models.BooleanField(_("wait until the vehicle stops"), default=False)
    customer = models.ForeignKey(
        Customer,
        verbose_name=_("customer"),
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
        help_text=_("The customer of the user who sent it."),
    )
    created_by = user_reference(_("sent by"))
    created_at = models.DateTimeField(_("created at"), db_index=True)
    history = HistoricalRecords()

    class Meta:
        verbose_name = _("command broadcast")
        verbose_name_plural = _("command broadcasts")
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} #{self.pk}"


class Command(models.Model):
    """One downlink command to one device (T3): queued until the device is connected, sent,
    then acked or failed by its reply (or its silence); expired if never sent in time."""

    class Status(models.TextChoices):
        QUEUED = "queued", _("queued")
        SENT = "sent", _("sent")
        ACKED = "acked", _("acknowledged")
        FAILED = "failed", _("failed")
        EXPIRED = "expired", _("expired")

    # Who may move a command where; only services call transition_to() (STYLE.md).
    TRANSITIONS: dict[str, set[str]] = {
        Status.QUEUED: {Status.SENT, Status.FAILED, Status.EXPIRED},
        # -> queued: claimed, but the connection closed before the frame was written.
        Status.SENT: {Status.ACKED, Status.FAILED, Status.QUEUED},
        Status.ACKED: set(),
        Status.FAILED: set(),
        Status.EXPIRED: set(),
    }

    device = models.ForeignKey(
        Device, verbose_name=_("device"), on_delete=models.CASCADE, related_name="commands"
    )
    job = models.ForeignKey(
        CommandJob,
        verbose_name=_("broadcast"),
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="commands",
    )
    kind = models.CharField(_("command"), max_length=30, choices=commands.kind_choices)
    params = models.JSONField(_("parameters"), default=dict, blank=True)
    status = models.CharField(
        _("status"), max_length=10, choices=Status.choices, default=Status.QUEUED
    )
    defer_until_stopped = models.BooleanField(
        _("wait until the vehicle stops"),
        default=False,
        help_text=_("Fuel cut only: sent once a fresh position shows the vehicle standing."),
    )
    created_by = user_reference(_("sent by"))
    created_at = models.DateTimeField(_("created at"))
    expires_at = models.DateTimeField(_("expires at"))
    sent_at = models.DateTimeField(_("sent at"), null=True, blank=True)
    answered_at = models.DateTimeField(_("answered at"), null=True, blank=True)
    # The reference number on the wire (GT06 server flag, JT808 serial) and the key the
    # device's reply is matched on (devices.commands).
    serial = models.PositiveBigIntegerField(_("serial"), null=True, blank=True)
    match_key = models.CharField(_("reply match key"), max_length=64, blank=True)
    reply_text = models.CharField(_("reply"), max_length=300, blank=True)
    failure_reason = models.CharField(_("failure reason"), max_length=300, blank=True)
    history = HistoricalRecords()

    class Meta:
        verbose_name = _("command")
        verbose_name_plural = _("commands")
        ordering = ["-created_at", "-id"]
        permissions = [("send_fuel_cut", _("Can send fuel cut commands"))]
        indexes = [
            # The gateway's claim (queued) and the expiry scan (queued / sent by time).
            models.Index(fields=["status", "expires_at"], name="command_status_expires"),
            models.Index(fields=["status", "sent_at"], name="command_status_sent"),
            # Reply matching and the device page.
            models.Index(fields=["device", "status"], name="command_device_status"),
        ]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} #{self.pk}"

    def can_transition(self, to: str) -> bool:
        return to in self.TRANSITIONS.get(self.status, set())

    def transition_to(self, to: str) -> None:
        if not self.can_transition(to):
            raise InvalidTransition(
                _("A command cannot go from %(from)s to %(to)s.") % {"from": self.status, "to": to}
            )
        self.status = to

    @property
    def is_final(self) -> bool:
        return not self.TRANSITIONS.get(self.status)
