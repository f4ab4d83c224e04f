"""What the gateway stores: positions (high volume, no per-row history), unknown devices and
the gateway processes' status."""

from __future__ import annotations

from django.contrib.gis.db import models as gis_models
from django.db import models
from django.utils.translation import gettext_lazy as _

from devices.models import Device
from devices.protocols import protocol_choices


class Position(models.Model):
    """One fix as the device reported it (raw values kept; hygiene only adds `flags`).

    Written only by `gateway.ingest.ingest_batch` with bulk inserts: no operation log, no
    signals. `vehicle` is the vehicle the device was mounted on when the fix arrived, so tracks
    stay right after the device moves to another car."""

    class Source(models.TextChoices):
        GPS = "gps", _("GPS")
        LBS = "lbs", _("cell towers (LBS)")
        WIFI = "wifi", _("Wi-Fi")

    id = models.BigAutoField(primary_key=True)
    # No single-column FK indexes: the (device, fix_time) and (vehicle, fix_time) indexes below
    # serve every lookup by device or vehicle, and each index costs every insert.
    device = models.ForeignKey(
        Device,
        verbose_name=_("device"),
        on_delete=models.PROTECT,
        related_name="positions",
        db_index=False,
    )
    vehicle = models.ForeignKey(
        "vehicles.Vehicle",
        verbose_name=_("vehicle"),
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="positions",
        db_index=False,
    )
    fix_time = models.DateTimeField(_("fix time"))
    received_at = models.DateTimeField(_("received at"))
    # No spatial index: positions are read by device/vehicle and time; a GiST index on the
    # biggest, append-only table would cost every insert for queries the product does not make
    # (place-based reports go through vehicles' tracks or the engine's in-memory indexes).
    point = gis_models.PointField(_("position"), srid=4326, spatial_index=False)
    valid = models.BooleanField(_("valid fix"), default=True)
    source = models.CharField(_("source"), max_length=4, choices=Source.choices, default=Source.GPS)
    speed_kmh = models.FloatField(_("speed (km/h)"), null=True, blank=True)
    course = models.PositiveSmallIntegerField(_("course"), null=True, blank=True)
    altitude_m = models.FloatField(_("altitude (m)"), null=True, blank=True)
    satellites = models.PositiveSmallIntegerField(_("satellites"), null=True, blank=True)
    acc = models.BooleanField(_("ACC on"), null=True, blank=True)
    fuel_cut = models.BooleanField(_("fuel cut"), null=True, blank=True)
    battery_pct = models.PositiveSmallIntegerField(_("battery %"), null=True, blank=True)
    external_voltage = models.FloatField(_("external voltage (V)"), null=True, blank=True)
    gsm_signal = models.PositiveSmallIntegerField(_("GSM signal"), null=True, blank=True)
    odometer_km = models.FloatField(_("odometer (km)"), null=True, blank=True)
    sleeping = models.BooleanField(_("sleeping"), null=True, blank=True)
    realtime = models.BooleanField(
        _("realtime"), default=True, help_text=_("Off: re-uploaded from the blind-area buffer.")
    )
    alarms = models.JSONField(_("device alarms"), default=list, blank=True)
    flags = models.JSONField(
        _("hygiene flags"),
        default=list,
        blank=True,
        help_text=_("invalid_fix, drift, implied_speed, lbs ..."),
    )
    extra = models.JSONField(_("raw data"), default=dict, blank=True)

    class Meta:
        verbose_name = _("position")
        verbose_name_plural = _("positions")
        ordering = ["-fix_time", "-id"]
        indexes = [
            # Tracks and "last fix before" lookups: one device, a time range.
            models.Index(fields=["device", "fix_time"], name="position_device_fix_time"),
            models.Index(fields=["vehicle", "fix_time"], name="position_vehicle_fix_time"),
        ]

    def __str__(self) -> str:
        return f"{self.device_id} @ {self.fix_time:%Y-%m-%d %H:%M:%S}"

    @property
    def lat(self) -> float:
        return self.point.y

    @property
    def lon(self) -> float:
        return self.point.x


class UnknownDevice(models.Model):
    """A device that talked to the gateway without being registered: refused, listed for the
    operators, who add it in one click (`gateway.services.device_from_unknown`)."""

    protocol = models.CharField(_("protocol"), max_length=20, choices=protocol_choices)
    identifier = models.CharField(_("device id (IMEI)"), max_length=20)
    remote_address = models.CharField(_("remote address"), max_length=64, blank=True)
    first_seen = models.DateTimeField(_("first seen"))
    last_seen = models.DateTimeField(_("last seen"), db_index=True)
    frame_count = models.PositiveIntegerField(_("frames"), default=0)

    class Meta:
        verbose_name = _("unknown device")
        verbose_name_plural = _("unknown devices")
        ordering = ["-last_seen", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["protocol", "identifier"], name="unknowndevice_unique_protocol_identifier"
            )
        ]

    def __str__(self) -> str:
        return f"{self.identifier} ({self.protocol})"


class GatewayStatus(models.Model):
    """What one `run_gateway` process reports about itself every few seconds: listeners and
    per-protocol counters (`gateway.server.ProtocolStats`). Shown on the operators' status page;
    a row not refreshed for a while is a gateway that stopped or hung."""

    name = models.CharField(_("process"), max_length=100, unique=True)  # host:pid
    host = models.CharField(_("host"), max_length=100)
    ports = models.JSONField(_("ports"), default=dict)
    started_at = models.DateTimeField(_("started"))
    updated_at = models.DateTimeField(_("updated"), db_index=True)
    stopped_at = models.DateTimeField(_("stopped"), null=True, blank=True)
    connections = models.PositiveIntegerField(_("connections"), default=0)
    sessions = models.PositiveIntegerField(_("devices online"), default=0)
    queue_depth = models.PositiveIntegerField(_("writer queue"), default=0)
    rss_mb = models.FloatField(_("memory (MB)"), null=True, blank=True)
    # {protocol: {counter: total}} since the process started, and the same as rates per second
    # over the last interval.
    counters = models.JSONField(_("counters"), default=dict)
    rates = models.JSONField(_("rates per second"), default=dict)

    class Meta:
        verbose_name = _("gateway status")
        verbose_name_plural = _("gateway status")
        ordering = ["-updated_at"]

    def __str__(self) -> str:
        return self.name


class DeviceDrop(Device):
    """Devices whose frames the gateway dropped (bad checksum, malformed, garbage): the
    operators' view of `Device.frames_dropped` / `last_drop_reason`."""

    class Meta:
        proxy = True
        verbose_name = _("device with dropped frames")
        verbose_name_plural = _("devices with dropped frames")
