"""Query-parameter filters of the vehicle and binding lists."""

from __future__ import annotations

from django.db.models import Exists, OuterRef, Q
from django.utils.translation import gettext_lazy as _
from django_filters import rest_framework as filters

from carloan.identifiers import normalize_phone, normalize_plate, normalize_vin
from devices.protocols import normalize_identifier
from vehicles.models import DeviceBinding, Vehicle


def _carrying(identifier: str):
    """Vehicles a device with this id is mounted on now."""
    return Exists(
        DeviceBinding.objects.filter(
            vehicle=OuterRef("pk"),
            unbound_at__isnull=True,
            device__identifier=normalize_identifier(identifier),
        )
    )


class VehicleFilter(filters.FilterSet):
    plate = filters.CharFilter(
        method="filter_plate", help_text=_("Plate or part of it (spaces, dots and case ignored).")
    )
    vin = filters.CharFilter(method="filter_vin", help_text=_("VIN or part of it."))
    customer = filters.NumberFilter(
        field_name="customer", min_value=1, max_value=2**63 - 1, help_text=_("Customer id.")
    )
    status = filters.ChoiceFilter(
        field_name="repayment_status",
        choices=Vehicle.RepaymentStatus.choices,
        help_text=_("Repayment status."),
    )
    borrower = filters.CharFilter(
        method="filter_borrower", help_text=_("Borrower name or phone, or part of it.")
    )
    imei = filters.CharFilter(
        method="filter_imei", help_text=_("Id of a device mounted on the vehicle now.")
    )
    q = filters.CharFilter(
        method="filter_q", help_text=_("Search plate, VIN, borrower name and phone.")
    )

    class Meta:
        model = Vehicle
        fields = ["plate", "vin", "customer", "status", "borrower", "imei", "q"]

    def filter_plate(self, queryset, name, value):
        return queryset.filter(plate__icontains=normalize_plate(value))

    def filter_vin(self, queryset, name, value):
        return queryset.filter(vin__icontains=normalize_vin(value))

    def filter_borrower(self, queryset, name, value):
        return queryset.filter(self._borrower_q(value))

    def filter_imei(self, queryset, name, value):
        return queryset.filter(_carrying(value))

    def filter_q(self, queryset, name, value):
        q = self._borrower_q(value)
        if plate := normalize_plate(value):
            q |= Q(plate__icontains=plate)
        if vin := normalize_vin(value):
            q |= Q(vin__icontains=vin)
        return queryset.filter(q)

    @staticmethod
    def _borrower_q(value: str) -> Q:
        q = Q(borrower_name__icontains=value.strip())
        # Phones are stored normalised (no +86, no separators); only search digits as a phone.
        phone = normalize_phone(value)
        if phone.isdigit():
            q |= Q(borrower_phone__contains=phone)
        return q


class BindingFilter(filters.FilterSet):
    vehicle = filters.NumberFilter(
        field_name="vehicle", min_value=1, max_value=2**63 - 1, help_text=_("Vehicle id.")
    )
    imei = filters.CharFilter(
        field_name="device__identifier",
        lookup_expr="startswith",
        help_text=_("Device id, whole or its first digits."),
    )
    active = filters.BooleanFilter(
        field_name="unbound_at",
        lookup_expr="isnull",
        help_text=_("true: mounted now; false: ended bindings."),
    )

    class Meta:
        model = DeviceBinding
        fields = ["vehicle", "imei", "active"]
