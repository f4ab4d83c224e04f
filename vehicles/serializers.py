"""Input and output serializers of the vehicle, binding and recycle-bin APIs."""

from __future__ import annotations

from django.utils.translation import gettext_lazy as _
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from accounts.apis import request_user
from accounts.selectors import customers_visible_to
from carloan.identifiers import normalize_plate, normalize_vin
from devices.models import Device
from vehicles.models import DeviceBinding, Vehicle
from vehicles.selectors import active_bindings_of
from vehicles.services import VEHICLE_EDITABLE

# --- Vehicles -----------------------------------------------------------------------------------
_VEHICLE_DATA = list(VEHICLE_EDITABLE)


# Output rows come from `vehicles_for_list` (customer joined, `device_count` annotated).
class VehicleOutputSerializer(serializers.ModelSerializer):
    customer_name = serializers.CharField(source="customer.name")
    device_count = serializers.IntegerField(help_text=_("Devices mounted now."))

    class Meta:
        model = Vehicle
        fields = [
            "id",
            "customer",
            "customer_name",
            *_VEHICLE_DATA,
            "device_count",
            "created_at",
            "updated_at",
        ]
        read_only_fields = fields


# An active binding seen from its vehicle: which device is mounted since when.
class MountedDeviceSerializer(serializers.ModelSerializer):
    identifier = serializers.CharField(source="device.identifier")
    protocol = serializers.CharField(source="device.protocol")
    kind = serializers.CharField(source="device.kind")

    class Meta:
        model = DeviceBinding
        fields = ["id", "device", "identifier", "protocol", "kind", "bound_at"]
        read_only_fields = fields


class VehicleDetailOutputSerializer(VehicleOutputSerializer):
    bindings = serializers.SerializerMethodField(help_text=_("Devices mounted now."))

    class Meta(VehicleOutputSerializer.Meta):
        fields = [*VehicleOutputSerializer.Meta.fields, "bindings"]
        read_only_fields = fields

    @extend_schema_field(MountedDeviceSerializer(many=True))
    def get_bindings(self, vehicle) -> list:
        # Detail only: one query for the devices.
        return MountedDeviceSerializer(active_bindings_of(vehicle), many=True).data


class _VehicleInputSerializer(serializers.ModelSerializer):
    def _unique_among_live(self, field: str, value: str):
        # Plates and VINs are unique among live vehicles only (conditional constraints, which
        # Django reports without naming the field): check here so the error names it.
        others = Vehicle.objects.filter(**{field: value})
        if self.instance is not None:
            others = others.exclude(pk=self.instance.pk)
        if others.exists():
            raise serializers.ValidationError(_("Another vehicle already uses this value."))
        return value

    def validate_plate(self, value: str) -> str:
        return self._unique_among_live("plate", normalize_plate(value))

    def validate_vin(self, value: str) -> str:
        return self._unique_among_live("vin", normalize_vin(value))


class VehicleCreateInputSerializer(_VehicleInputSerializer):
    class Meta:
        model = Vehicle
        fields = ["customer", *_VEHICLE_DATA]

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        # Only the caller's customers: another tenant's id reads as "does not exist".
        self.fields["customer"].queryset = customers_visible_to(request_user(self))


# The customer is not edited here: moving a vehicle moves its devices too.
class VehicleUpdateInputSerializer(_VehicleInputSerializer):
    class Meta:
        model = Vehicle
        fields = _VEHICLE_DATA


# --- Bindings -----------------------------------------------------------------------------------
# Rows come from `bindings_visible_to` (vehicle, device and users joined).
class BindingOutputSerializer(serializers.ModelSerializer):
    plate = serializers.CharField(source="vehicle.plate")
    identifier = serializers.CharField(source="device.identifier")
    protocol = serializers.CharField(source="device.protocol")
    kind = serializers.CharField(source="device.kind")
    bound_by = serializers.CharField(source="bound_by.username", allow_null=True, default=None)
    unbound_by = serializers.CharField(source="unbound_by.username", allow_null=True, default=None)
    active = serializers.BooleanField(source="is_active")
    end_reason = serializers.ChoiceField(DeviceBinding.EndReason.choices, allow_blank=True)

    class Meta:
        model = DeviceBinding
        fields = [
            "id",
            "vehicle",
            "plate",
            "device",
            "identifier",
            "protocol",
            "kind",
            "bound_at",
            "bound_by",
            "unbound_at",
            "unbound_by",
            "end_reason",
            "active",
        ]
        read_only_fields = fields


class BindingCreateInputSerializer(serializers.Serializer):
    vehicle = serializers.IntegerField(min_value=1, help_text=_("Vehicle id."))
    device = serializers.IntegerField(min_value=1, help_text=_("Device id."))


class UnbindInputSerializer(serializers.Serializer):
    device_status = serializers.ChoiceField(
        choices=[
            (Device.Status.STOCK, Device.Status.STOCK.label),
            (Device.Status.FAULTY, Device.Status.FAULTY.label),
        ],
        default=Device.Status.STOCK,
        help_text=_("Where the device goes: back to stock, or faulty."),
    )


# --- Recycle bin --------------------------------------------------------------------------------
# Rows of the recycle bin's union query (see vehicles.apis.RecycleBinListApi).
class RecycleBinItemSerializer(serializers.Serializer):
    # A plain string in the schema: an enum here would collide with the device `kind` enum.
    kind = serializers.CharField(source="bin_kind", help_text=_("vehicle or device"))
    id = serializers.IntegerField()
    label = serializers.CharField(source="bin_label", help_text=_("Plate or device id."))
    customer = serializers.IntegerField(source="bin_customer")
    customer_name = serializers.CharField(source="bin_customer_name")
    deleted_at = serializers.DateTimeField(source="bin_deleted_at")
    deleted_by = serializers.CharField(
        source="bin_deleted_by", allow_null=True, help_text=_("Username.")
    )


class RestoreOutputSerializer(serializers.Serializer):
    restored = serializers.BooleanField()
    skipped = serializers.ListField(
        child=serializers.CharField(), help_text=_("Devices that could not be re-mounted, and why.")
    )
