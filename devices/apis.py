"""REST API of devices: inventory CRUD with last-known state, stock moves, and downlink
commands (`/api/v1/commands/`)."""

from __future__ import annotations

import datetime as dt

from django.http import Http404
from django.utils.translation import gettext_lazy as _
from django_filters import rest_framework as filters
from drf_spectacular.utils import extend_schema, extend_schema_field
from rest_framework import mixins, serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.response import Response

from accounts.apis import ActionPermissions, object_for_change, request_user
from accounts.models import Customer
from accounts.selectors import customers_visible_to
from carloan.identifiers import normalize_plate
from devices import commands
from devices.models import Command, Device, DeviceKind
from devices.protocols import normalize_identifier, protocol_choices
from devices.selectors import (
    commands_visible_to,
    device_models_visible_to,
    devices_for_list,
    devices_visible_to,
)
from devices.services import (
    command_send,
    device_create,
    device_soft_delete,
    device_update,
    devices_move,
)


class DeviceFilter(filters.FilterSet):
    imei = filters.CharFilter(
        field_name="identifier",
        lookup_expr="startswith",
        help_text=_("Device id (IMEI / terminal id), whole or its first digits."),
    )
    status = filters.ChoiceFilter(choices=Device.Status.choices)
    protocol = filters.ChoiceFilter(choices=protocol_choices)
    kind = filters.ChoiceFilter(choices=DeviceKind.choices)
    customer = filters.NumberFilter(
        field_name="customer", min_value=1, max_value=2**63 - 1, help_text=_("Customer id.")
    )
    plate = filters.CharFilter(
        method="filter_plate", help_text=_("Plate of the vehicle carrying the device (part of it).")
    )

    class Meta:
        model = Device
        fields = ["imei", "status", "protocol", "kind", "customer", "plate"]

    def filter_plate(self, queryset, name, value):
        # `current_plate` is annotated by devices_for_list (the active binding's vehicle).
        return queryset.filter(current_plate__icontains=normalize_plate(value))


# Rows come from `devices_for_list` (customer, model and current vehicle already joined).
class DeviceOutputSerializer(serializers.ModelSerializer):
    """A device with its current vehicle and last-known state."""

    customer_name = serializers.CharField(source="customer.name")
    model_name = serializers.SerializerMethodField()
    current_vehicle = serializers.IntegerField(source="current_vehicle_id", allow_null=True)
    current_plate = serializers.CharField(allow_null=True)
    lat = serializers.SerializerMethodField(help_text=_("Last position, WGS-84 latitude."))
    lon = serializers.SerializerMethodField(help_text=_("Last position, WGS-84 longitude."))
    speed_kmh = serializers.FloatField(source="last_speed_kmh", allow_null=True)
    course = serializers.IntegerField(source="last_course", allow_null=True)
    acc = serializers.BooleanField(source="last_acc", allow_null=True)

    class Meta:
        model = Device
        fields = [
            "id",
            "identifier",
            "protocol",
            "kind",
            "model",
            "model_name",
            "customer",
            "customer_name",
            "status",
            "sim_iccid",
            "sim_number",
            "work_mode",
            "work_params",
            "remark",
            "current_vehicle",
            "current_plate",
            "online",
            "last_seen_at",
            "last_fix_at",
            "lat",
            "lon",
            "speed_kmh",
            "course",
            "acc",
            "battery_pct",
            "external_voltage",
            "gsm_signal",
            "satellites",
            "odometer_km",
            "created_at",
            "updated_at",
        ]
        read_only_fields = fields

    def get_model_name(self, device) -> str | None:
        return str(device.model) if device.model_id else None

    def get_lat(self, device) -> float | None:
        return device.last_position.y if device.last_position else None

    def get_lon(self, device) -> float | None:
        return device.last_position.x if device.last_position else None


class _DeviceInputSerializer(serializers.ModelSerializer):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        user = request_user(self)
        self.fields["model"].queryset = device_models_visible_to(user)
        if "customer" in self.fields:
            self.fields["customer"].queryset = customers_visible_to(user)

    def validate_identifier(self, value: str) -> str:
        # Ids are unique among live devices only (a conditional constraint, which Django reports
        # without naming the field): check here so the error points at `identifier`.
        value = normalize_identifier(value)
        others = Device.objects.filter(identifier=value)
        if self.instance is not None:
            others = others.exclude(pk=self.instance.pk)
        if others.exists():
            raise serializers.ValidationError(_("Another device already uses this id."))
        return value


class DeviceCreateInputSerializer(_DeviceInputSerializer):
    class Meta:
        model = Device
        fields = [
            "customer",
            "identifier",
            "protocol",
            "kind",
            "model",
            "sim_iccid",
            "sim_number",
            "work_mode",
            "work_params",
            "remark",
        ]


class DeviceUpdateInputSerializer(_DeviceInputSerializer):
    class Meta:
        model = Device
        fields = [
            "identifier",
            "protocol",
            "kind",
            "model",
            "status",
            "sim_iccid",
            "sim_number",
            "work_mode",
            "work_params",
            "remark",
        ]


class DeviceMoveInputSerializer(serializers.Serializer):
    device_ids = serializers.ListField(
        child=serializers.IntegerField(min_value=1), min_length=1, max_length=1000
    )
    to_customer = serializers.PrimaryKeyRelatedField(queryset=Customer.objects.none())
    note = serializers.CharField(max_length=200, required=False, allow_blank=True, default="")

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["to_customer"].queryset = customers_visible_to(request_user(self))


class DeviceMoveOutputSerializer(serializers.Serializer):
    moved = serializers.IntegerField(help_text=_("Devices whose customer changed."))


class DeviceViewSet(viewsets.GenericViewSet):
    """Devices of the caller's subtree (plus devices shared with them). Writes go through the
    device services; DELETE moves a device to the recycle bin."""

    filterset_class = DeviceFilter
    lookup_value_regex = r"\d+"
    permission_classes = [ActionPermissions]
    action_perms = {"move": ["devices.change_device"]}

    def get_queryset(self):
        if self.action in ("list", "retrieve"):
            return devices_for_list(self.request.user)
        return devices_visible_to(self.request.user)

    def get_serializer_class(self):
        return {
            "create": DeviceCreateInputSerializer,
            "update": DeviceUpdateInputSerializer,
            "partial_update": DeviceUpdateInputSerializer,
            "move": DeviceMoveInputSerializer,
        }.get(self.action, DeviceOutputSerializer)

    def _output(self, device: Device) -> dict:
        return DeviceOutputSerializer(devices_for_list(self.request.user).get(pk=device.pk)).data

    def _for_change(self, pk, *, own: bool = False) -> Device:
        """`own`: only a device of the caller's subtree; a share lends view or change rights,
        never the right to delete."""
        user = self.request.user
        changeable = devices_visible_to(user, for_change=True)
        if own:
            changeable = changeable.filter(customer__in=customers_visible_to(user))
        return object_for_change(devices_visible_to(user), changeable, pk)

    @extend_schema(responses=DeviceOutputSerializer(many=True))
    def list(self, request):
        page = self.paginate_queryset(self.filter_queryset(self.get_queryset()))
        return self.get_paginated_response(DeviceOutputSerializer(page, many=True).data)

    @extend_schema(responses=DeviceOutputSerializer)
    def retrieve(self, request, pk=None):
        return Response(DeviceOutputSerializer(self.get_object()).data)

    @extend_schema(request=DeviceCreateInputSerializer, responses={201: DeviceOutputSerializer})
    def create(self, request):
        serializer = self.get_serializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        device = device_create(by=request.user, **serializer.validated_data)
        return Response(self._output(device), status=status.HTTP_201_CREATED)

    @extend_schema(request=DeviceUpdateInputSerializer, responses=DeviceOutputSerializer)
    def update(self, request, pk=None, partial=False):
        device = self._for_change(pk)
        serializer = self.get_serializer(device, data=request.data, partial=partial)
        serializer.is_valid(raise_exception=True)
        device_update(device=device, by=request.user, **serializer.validated_data)
        return Response(self._output(device))

    @extend_schema(request=DeviceUpdateInputSerializer, responses=DeviceOutputSerializer)
    def partial_update(self, request, pk=None):
        return self.update(request, pk=pk, partial=True)

    @extend_schema(responses={204: None})
    def destroy(self, request, pk=None):
        device_soft_delete(device=self._for_change(pk, own=True), by=request.user)
        return Response(status=status.HTTP_204_NO_CONTENT)

    @extend_schema(request=DeviceMoveInputSerializer, responses=DeviceMoveOutputSerializer)
    @action(detail=False, methods=["post"])
    def move(self, request):
        """Move devices to another customer's stock. Every id must be one of the caller's own
        devices (a share is not ownership), else the whole batch answers 404."""
        serializer = self.get_serializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        user = request.user
        ids = set(data["device_ids"])
        devices = list(
            devices_visible_to(user, for_change=True)
            .filter(pk__in=ids, customer__in=customers_visible_to(user))
            .order_by("pk")
        )
        if len(devices) != len(ids):
            raise Http404(_("Some of these devices do not exist."))
        moved = devices_move(
            devices=devices, to_customer=data["to_customer"], by=user, note=data["note"]
        )
        return Response({"moved": moved})


# --- Commands (T3) ------------------------------------------------------------------------------
class CommandFilter(filters.FilterSet):
    imei = filters.CharFilter(
        field_name="device__identifier",
        lookup_expr="startswith",
        help_text=_("Device id (IMEI / terminal id), whole or its first digits."),
    )
    status = filters.ChoiceFilter(choices=Command.Status.choices)
    kind = filters.ChoiceFilter(choices=commands.kind_choices)
    job = filters.NumberFilter(
        field_name="job", min_value=1, max_value=2**63 - 1, help_text=_("Broadcast id.")
    )

    class Meta:
        model = Command
        fields = ["imei", "status", "kind", "job"]


# "kind" is a common field name: an enum of another choice set under the same name would make
# drf-spectacular's enum component names collide, so the kinds are listed in the description.
@extend_schema_field(
    {"type": "string", "description": "One of: " + ", ".join(commands.KINDS) + "."}
)
class CommandKindField(serializers.ChoiceField):
    pass


@extend_schema_field({"type": "string", "enum": list(Command.Status.values)})
class CommandStatusField(serializers.ChoiceField):
    pass


class CommandOutputSerializer(serializers.ModelSerializer):
    """A command and where it stands: queued, sent, acked (with the device's reply), failed
    (with the reason) or expired."""

    imei = serializers.CharField(source="device.identifier")
    kind = CommandKindField(choices=commands.kind_choices())
    status = CommandStatusField(choices=Command.Status.choices)
    created_by = serializers.CharField(source="created_by.username", allow_null=True, default=None)

    class Meta:
        model = Command
        fields = [
            "id",
            "device",
            "imei",
            "kind",
            "params",
            "status",
            "defer_until_stopped",
            "created_by",
            "created_at",
            "expires_at",
            "sent_at",
            "answered_at",
            "reply_text",
            "failure_reason",
            "job",
        ]
        read_only_fields = fields


class CommandInputSerializer(serializers.Serializer):
    device = serializers.IntegerField(
        min_value=1, required=False, help_text=_("Device id (or give `imei`).")
    )
    imei = serializers.CharField(
        max_length=20, required=False, help_text=_("Device IMEI / terminal id (or give `device`).")
    )
    kind = CommandKindField(choices=commands.kind_choices())
    params = serializers.JSONField(
        required=False,
        default=dict,
        help_text=_('set_interval: {"seconds": 60}; set_mode: {"mode": "deep_sleep", "days": 7}.'),
    )
    defer_until_stopped = serializers.BooleanField(
        required=False,
        default=False,
        help_text=_("Fuel cut only: wait until a fresh position shows the vehicle standing."),
    )
    expires_in_s = serializers.IntegerField(
        required=False,
        min_value=60,
        max_value=31 * 24 * 3600,
        help_text=_("Seconds the command may wait for its device (default one day)."),
    )

    def validate(self, data):
        if ("device" in data) == ("imei" in data):
            raise serializers.ValidationError(_("Give either `device` or `imei`."))
        return data


class CommandViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """Downlink commands to the caller's devices. POST queues one: the gateway sends it when the
    device is connected. Refusals (unsupported by the device's protocol, bad parameters, unsafe
    fuel cut) answer 400 with the reason; a fuel cut without its permission 403; a device the
    caller cannot see 404."""

    filterset_class = CommandFilter
    lookup_value_regex = r"\d+"
    serializer_class = CommandOutputSerializer

    def get_queryset(self):
        return commands_visible_to(self.request.user)

    def get_serializer_class(self):
        return CommandInputSerializer if self.action == "create" else CommandOutputSerializer

    @extend_schema(request=CommandInputSerializer, responses={201: CommandOutputSerializer})
    def create(self, request):
        serializer = self.get_serializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        visible = devices_visible_to(request.user)
        if "device" in data:
            device = visible.filter(pk=data["device"]).first()
        else:
            device = visible.filter(identifier=normalize_identifier(data["imei"])).first()
        if device is None:
            raise Http404(_("That device does not exist."))
        seconds = data.get("expires_in_s")
        command = command_send(
            device=device,
            kind=data["kind"],
            params=data["params"],
            by=request.user,
            defer_until_stopped=data["defer_until_stopped"],
            expires_in=dt.timedelta(seconds=seconds) if seconds is not None else None,
        )
        return Response(
            CommandOutputSerializer(self.get_queryset().get(pk=command.pk)).data,
            status=status.HTTP_201_CREATED,
        )
