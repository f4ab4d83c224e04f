from __future__ import annotations

import simple_history
from django.core.validators import MinValueValidator
from django.db import models
from django.utils.translation import gettext_lazy as _
from guardian.models import UserObjectPermissionBase
from simple_history.models import HistoricalRecords

from accounts.models import Customer
from carloan import identifiers
from carloan.fields import user_reference
from carloan.softdelete import SoftDeleteModel
from carloan.validators import validate_id_number, validate_mobile, validate_plate, validate_vin
from devices.models import Device


class Vehicle(SoftDeleteModel):
    """The financed car: asset, borrower and loan (V3)."""

    class RepaymentStatus(models.TextChoices):
        NORMAL = "normal", _("normal")
        OVERDUE = "overdue", _("overdue")
        SETTLED = "settled", _("settled")
        WRITTEN_OFF = "written_off", _("written off")

    customer = models.ForeignKey(
        Customer, verbose_name=_("customer"), on_delete=models.PROTECT, related_name="vehicles"
    )
    plate = models.CharField(_("plate"), max_length=10, validators=[validate_plate])
    vin = models.CharField(_("VIN"), max_length=17, validators=[validate_vin])
    brand = models.CharField(_("brand"), max_length=50, blank=True)
    model_name = models.CharField(_("model"), max_length=50, blank=True)
    colour = models.CharField(_("colour"), max_length=20, blank=True)

    borrower_name = models.CharField(_("borrower"), max_length=50, blank=True)
    borrower_phone = models.CharField(
        _("borrower phone"), max_length=20, blank=True, validators=[validate_mobile]
    )
    borrower_id_number = models.CharField(
        _("borrower ID number"), max_length=18, blank=True, validators=[validate_id_number]
    )

    loan_principal = models.DecimalField(
        _("loan principal (CNY)"),
        max_digits=12,
        decimal_places=2,
        null=True,
        blank=True,
        validators=[MinValueValidator(0)],
    )
    loan_term_months = models.PositiveSmallIntegerField(
        _("loan term (months)"), null=True, blank=True
    )
    loan_start_date = models.DateField(_("loan start date"), null=True, blank=True)
    repayment_status = models.CharField(
        _("repayment status"),
        max_length=20,
        choices=RepaymentStatus.choices,
        default=RepaymentStatus.NORMAL,
        db_index=True,
    )
    overdue_days = models.PositiveIntegerField(_("overdue days"), default=0)
    remark = models.CharField(_("remark"), max_length=200, blank=True)
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)
    updated_at = models.DateTimeField(_("updated at"), auto_now=True)

    history = HistoricalRecords(excluded_fields=["updated_at"])

    class Meta:
        verbose_name = _("vehicle")
        verbose_name_plural = _("vehicles")
        ordering = ["-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["plate"],
                condition=models.Q(deleted_at__isnull=True),
                name="vehicle_unique_live_plate",
                violation_error_message=_("Another vehicle already has this plate."),
            ),
            models.UniqueConstraint(
                fields=["vin"],
                condition=models.Q(deleted_at__isnull=True),
                name="vehicle_unique_live_vin",
                violation_error_message=_("Another vehicle already has this VIN."),
            ),
        ]
        indexes = [models.Index(fields=["customer", "repayment_status"])]

    def __str__(self) -> str:
        return self.plate

    def clean(self) -> None:
        # Store one spelling of each identifier so searches and uniqueness work.
        self.plate = identifiers.normalize_plate(self.plate)
        self.vin = identifiers.normalize_vin(self.vin)
        self.borrower_id_number = identifiers.normalize_id_number(self.borrower_id_number)
        self.borrower_phone = identifiers.normalize_phone(self.borrower_phone)
        if self.repayment_status != self.RepaymentStatus.OVERDUE:
            self.overdue_days = 0


class VehicleUserObjectPermission(UserObjectPermissionBase):
    """Direct-FK guardian table: a vehicle shared with a user outside its customer's subtree."""

    content_object = models.ForeignKey(Vehicle, verbose_name=_("vehicle"), on_delete=models.CASCADE)

    class Meta(UserObjectPermissionBase.Meta):
        verbose_name = _("shared vehicle")
        verbose_name_plural = _("shared vehicles")


# Who shared what with whom belongs in the operation log.
simple_history.register(VehicleUserObjectPermission, app=__package__)


class DeviceBinding(models.Model):
    """A device mounted on a vehicle from `bound_at` until `unbound_at` (V1). History is kept:
    a device is on at most one vehicle at a time; a vehicle carries any number of devices."""

    class EndReason(models.TextChoices):
        UNBOUND = "unbound", _("unbound")
        VEHICLE_DELETED = "vehicle_deleted", _("vehicle deleted")
        DEVICE_DELETED = "device_deleted", _("device deleted")

    vehicle = models.ForeignKey(
        Vehicle, verbose_name=_("vehicle"), on_delete=models.CASCADE, related_name="bindings"
    )
    device = models.ForeignKey(
        Device, verbose_name=_("device"), on_delete=models.CASCADE, related_name="bindings"
    )
    bound_at = models.DateTimeField(_("bound at"))
    bound_by = user_reference(_("bound by"))
    unbound_at = models.DateTimeField(_("unbound at"), null=True, blank=True)
    unbound_by = user_reference(_("unbound by"))
    end_reason = models.CharField(
        _("end reason"), max_length=20, choices=EndReason.choices, blank=True
    )
    history = HistoricalRecords()

    class Meta:
        verbose_name = _("device binding")
        verbose_name_plural = _("device bindings")
        ordering = ["-bound_at", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["device"],
                condition=models.Q(unbound_at__isnull=True),
                name="binding_one_active_per_device",
                violation_error_message=_("This device is already mounted on a vehicle."),
            )
        ]
        indexes = [models.Index(fields=["vehicle", "unbound_at"])]

    def __str__(self) -> str:
        return f"{self.device} @ {self.vehicle}"

    @property
    def is_active(self) -> bool:
        return self.unbound_at is None


class DeletedVehicle(Vehicle):
    """The recycle bin's view of vehicles (V6): only soft-deleted rows."""

    class Meta:
        proxy = True
        default_manager_name = "deleted_objects"
        verbose_name = _("deleted vehicle")
        verbose_name_plural = _("recycle bin: vehicles")
