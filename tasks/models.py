"""Field work (FEATURES.md K1–K4): work orders, what the workers record on them, and where the
workers are."""

from __future__ import annotations

import datetime as dt
import uuid

from django.conf import settings
from django.contrib.gis.db import models as gis_models
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.utils.translation import gettext_lazy as _
from simple_history.models import HistoricalRecords

from accounts.models import Customer
from carloan.errors import InvalidTransition
from carloan.fields import user_reference
from devices.models import Device
from tasks.kinds import kind_choices
from vehicles.models import Vehicle


class WorkOrder(models.Model):
    """One job for one field worker on one vehicle: install, repair, covert visit (暗访) or
    repossession (追车 / 拖车). Its status moves only through `TRANSITIONS`, in the services."""

    class Status(models.TextChoices):
        CREATED = "created", _("created")
        ASSIGNED = "assigned", _("assigned")
        ACCEPTED = "accepted", _("accepted")
        IN_PROGRESS = "in_progress", _("in progress")
        DONE = "done", _("done")
        FAILED = "failed", _("failed")
        VERIFIED = "verified", _("verified")
        CANCELLED = "cancelled", _("cancelled")

    # Who may move an order where; only tasks.services calls transition_to() (STYLE.md).
    TRANSITIONS: dict[str, set[str]] = {
        Status.CREATED: {Status.ASSIGNED, Status.CANCELLED},
        # -> assigned: given to someone else; -> created: the worker declined it.
        Status.ASSIGNED: {Status.ASSIGNED, Status.ACCEPTED, Status.CREATED, Status.CANCELLED},
        Status.ACCEPTED: {Status.ASSIGNED, Status.IN_PROGRESS, Status.CANCELLED},
        Status.IN_PROGRESS: {Status.DONE, Status.FAILED, Status.CANCELLED},
        # The back office checks the outcome, good or bad, and closes the order.
        Status.DONE: {Status.VERIFIED},
        Status.FAILED: {Status.VERIFIED},
        Status.VERIFIED: set(),
        Status.CANCELLED: set(),
    }
    OPEN = (Status.CREATED, Status.ASSIGNED, Status.ACCEPTED, Status.IN_PROGRESS)
    # Statuses in which the assigned worker holds the order (it is on their phone as "to do").
    WITH_WORKER = (Status.ASSIGNED, Status.ACCEPTED, Status.IN_PROGRESS)

    customer = models.ForeignKey(
        Customer,
        verbose_name=_("customer"),
        on_delete=models.PROTECT,
        related_name="work_orders",
        help_text=_("The vehicle's customer when the order was created."),
    )
    kind = models.CharField(_("kind"), max_length=20, choices=kind_choices)
    vehicle = models.ForeignKey(
        Vehicle, verbose_name=_("vehicle"), on_delete=models.PROTECT, related_name="work_orders"
    )
    status = models.CharField(
        _("status"), max_length=20, choices=Status.choices, default=Status.CREATED
    )
    assignee = user_reference(_("assignee"), related_name="work_orders", on_delete=models.PROTECT)
    due_at = models.DateTimeField(_("due"), null=True, blank=True)
    address = models.CharField(_("address"), max_length=200, blank=True)
    location = gis_models.PointField(
        _("location"), srid=4326, null=True, blank=True, help_text=_("Where to go (WGS-84).")
    )
    instructions = models.CharField(_("instructions"), max_length=2000, blank=True)

    # Outcome. car_found / owner_found: covert visits (and a recovered car on repossession).
    car_found = models.BooleanField(_("car found"), null=True, blank=True)
    owner_found = models.BooleanField(_("owner found"), null=True, blank=True)
    result_note = models.CharField(_("result"), max_length=2000, blank=True)

    created_by = user_reference(_("created by"))
    created_at = models.DateTimeField(_("created at"), db_index=True)
    assigned_at = models.DateTimeField(_("assigned at"), null=True, blank=True)
    accepted_at = models.DateTimeField(_("accepted at"), null=True, blank=True)
    started_at = models.DateTimeField(_("started at"), null=True, blank=True)
    finished_at = models.DateTimeField(_("finished at"), null=True, blank=True)
    verified_at = models.DateTimeField(_("verified at"), null=True, blank=True)
    verified_by = user_reference(_("verified by"))
    cancelled_at = models.DateTimeField(_("cancelled at"), null=True, blank=True)
    updated_at = models.DateTimeField(_("updated at"), auto_now=True)

    history = HistoricalRecords(excluded_fields=["updated_at"])

    class Meta:
        verbose_name = _("work order")
        verbose_name_plural = _("work orders")
        ordering = ["-created_at", "-id"]
        permissions = [
            ("dispatch_workorder", _("Can assign and cancel work orders")),
            ("verify_workorder", _("Can verify finished work orders")),
            ("work_workorder", _("Can work on the orders assigned to them (mobile app)")),
        ]
        indexes = [
            # The board (a customer's orders by status) and "my orders" on the phone.
            models.Index(fields=["customer", "status"], name="workorder_customer_status"),
            models.Index(fields=["assignee", "status"], name="workorder_assignee_status"),
            # Rework: repairs of a vehicle after an install, by time.
            models.Index(fields=["vehicle", "kind", "created_at"], name="workorder_vehicle_kind"),
        ]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} #{self.pk}"

    def can_transition(self, to: str) -> bool:
        return to in self.TRANSITIONS.get(self.status, set())

    def transition_to(self, to: str) -> None:
        if not self.can_transition(to):
            raise InvalidTransition(
                _("A work order cannot go from %(from)s to %(to)s.")
                % {
                    "from": self.Status(self.status).label,
                    "to": self.Status(to).label if to in self.Status.values else to,
                }
            )
        self.status = to

    @property
    def is_open(self) -> bool:
        return self.status in self.OPEN

    def is_overdue(self, now: dt.datetime) -> bool:
        return self.is_open and self.due_at is not None and self.due_at < now

    @property
    def on_time(self) -> bool | None:
        """Finished by the due time; None when there was no due time or it is not finished."""
        if self.finished_at is None or self.due_at is None:
            return None
        return self.finished_at <= self.due_at


def photo_path(record: WorkOrderRecord, filename: str) -> str:
    # The extension comes from the checked content (services), never from the client's name.
    ext = filename.rsplit(".", 1)[-1].lower() if "." in filename else "bin"
    return f"tasks/{record.order_id}/{uuid.uuid4().hex}.{ext}"


class WorkOrderRecord(models.Model):
    """Something that happened on an order: a note, a photo, a status change or a device
    installed / removed, with the worker's position when the phone sent one."""

    class Kind(models.TextChoices):
        NOTE = "note", _("note")
        PHOTO = "photo", _("photo")
        STATUS = "status", _("status change")

    order = models.ForeignKey(
        WorkOrder, verbose_name=_("work order"), on_delete=models.CASCADE, related_name="records"
    )
    kind = models.CharField(_("kind"), max_length=10, choices=Kind.choices)
    author = user_reference(_("by"))
    at = models.DateTimeField(_("time"))
    note = models.CharField(_("note"), max_length=2000, blank=True)
    status_from = models.CharField(
        _("from"), max_length=20, choices=WorkOrder.Status.choices, blank=True
    )
    status_to = models.CharField(
        _("to"), max_length=20, choices=WorkOrder.Status.choices, blank=True
    )
    photo = models.ImageField(
        _("photo"),
        upload_to=photo_path,
        blank=True,
        width_field="photo_width",
        height_field="photo_height",
    )
    photo_width = models.PositiveIntegerField(_("width"), null=True, blank=True)
    photo_height = models.PositiveIntegerField(_("height"), null=True, blank=True)
    photo_bytes = models.PositiveIntegerField(_("size (bytes)"), null=True, blank=True)
    photo_type = models.CharField(_("content type"), max_length=30, blank=True)
    point = gis_models.PointField(_("worker's position"), srid=4326, null=True, blank=True)
    accuracy_m = models.FloatField(
        _("accuracy (m)"), null=True, blank=True, validators=[MinValueValidator(0)]
    )

    class Meta:
        verbose_name = _("work order record")
        verbose_name_plural = _("work order records")
        ordering = ["at", "id"]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} {self.at:%Y-%m-%d %H:%M}"


class WorkOrderDevice(models.Model):
    """A device an order mounted on or took off its vehicle (installs and repairs)."""

    class Action(models.TextChoices):
        INSTALLED = "installed", _("installed")
        REMOVED = "removed", _("removed")

    order = models.ForeignKey(
        WorkOrder, verbose_name=_("work order"), on_delete=models.CASCADE, related_name="devices"
    )
    device = models.ForeignKey(
        Device, verbose_name=_("device"), on_delete=models.PROTECT, related_name="+"
    )
    action = models.CharField(_("action"), max_length=10, choices=Action.choices)
    at = models.DateTimeField(_("time"))

    class Meta:
        verbose_name = _("device of a work order")
        verbose_name_plural = _("devices of work orders")
        ordering = ["at", "id"]
        constraints = [
            models.UniqueConstraint(
                fields=["order", "device", "action"], name="workorderdevice_unique"
            )
        ]

    def __str__(self) -> str:
        return f"{self.get_action_display()} {self.device_id}"


class WorkerLocation(models.Model):
    """A position the mobile app reported (K4), kept as the worker's track."""

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("worker"),
        on_delete=models.CASCADE,
        related_name="+",
    )
    point = gis_models.PointField(_("position"), srid=4326, spatial_index=False)
    accuracy_m = models.FloatField(
        _("accuracy (m)"), null=True, blank=True, validators=[MinValueValidator(0)]
    )
    at = models.DateTimeField(_("fix time"))
    received_at = models.DateTimeField(_("received at"))

    class Meta:
        verbose_name = _("field-worker position")
        verbose_name_plural = _("field-worker positions")
        ordering = ["-at", "-id"]
        indexes = [models.Index(fields=["user", "at"], name="workerlocation_user_at")]

    def __str__(self) -> str:
        return f"{self.user_id} @ {self.at:%Y-%m-%d %H:%M:%S}"


class WorkerPresence(models.Model):
    """A field worker's latest position and whether they take new orders: what the map shows
    and what "nearest available" reads (one row per worker)."""

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL,
        verbose_name=_("worker"),
        on_delete=models.CASCADE,
        primary_key=True,
        related_name="field_presence",
    )
    point = gis_models.PointField(_("position"), srid=4326, null=True, blank=True)
    accuracy_m = models.FloatField(_("accuracy (m)"), null=True, blank=True)
    at = models.DateTimeField(_("position time"), null=True, blank=True)
    on_duty = models.BooleanField(
        _("on duty"), default=True, help_text=_("Off: not suggested for new orders.")
    )
    battery_pct = models.PositiveSmallIntegerField(
        _("phone battery %"), null=True, blank=True, validators=[MaxValueValidator(100)]
    )
    updated_at = models.DateTimeField(_("updated at"), auto_now=True)

    class Meta:
        verbose_name = _("field worker")
        verbose_name_plural = _("field workers")

    def __str__(self) -> str:
        return str(self.user_id)
