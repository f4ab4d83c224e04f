"""REST API of alarms and their settings (R7, issue 3).

- `GET /api/v1/alarms/`: visible alarms, newest first, paginated; filters `kind`, `category`
  (device / platform), `status`, `level`, `min_level`, `vehicle` (id), `plate` (part of it),
  `customer` (id), `since` / `until` (raised at, ISO 8601).
- `GET /api/v1/alarms/{id}/`: one alarm with its handling history (`events`).
- `POST /api/v1/alarms/{id}/acknowledge/`, `/close/`, `/note/` with `{"note": "..."}`: need
  `alarms.handle_alarm` (403); an alarm whose status does not allow it is a 409; another
  tenant's alarm is a 404.
- `GET /api/v1/alarm-settings/`: the overrides on the caller's customers and vehicles (filters
  `kind`, `customer`, `vehicle`); `PUT` sets one (`{"kind", "customer" | "vehicle", "enabled",
  "level", "params"}`; `null` keeps the inherited value).

Reading alarms needs `alarms.view_alarm`; settings `alarms.view_alarmsetting` /
`alarms.change_alarmsetting`. Every row comes from a visibility selector.
"""

from __future__ import annotations

from django.http import Http404
from django.utils.translation import gettext_lazy as _
from django_filters import rest_framework as filters
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.apis import ActionPermissions, object_for_change
from accounts.selectors import customers_visible_to
from alarms import kinds
from alarms.alarm_selectors import alarms_for_detail, alarms_for_list
from alarms.models import Alarm, AlarmEvent, AlarmSetting, Level
from alarms.selectors import alarm_settings_visible_to
from alarms.services import lifecycle
from alarms.services.places import alarm_setting_upsert
from carloan.api import Pagination
from carloan.errors import ConflictError, InvalidTransition
from carloan.identifiers import normalize_plate
from vehicles.selectors import vehicles_visible_to

_CATEGORIES = {kinds.DEVICE: kinds.DEVICE_KINDS, kinds.PLATFORM: kinds.PLATFORM_KINDS}


# --- Filters -------------------------------------------------------------------------------------
class AlarmFilter(filters.FilterSet):
    kind = filters.ChoiceFilter(choices=kinds.choices, help_text=_("Alarm kind."))
    category = filters.ChoiceFilter(
        method="filter_category",
        choices=[(kinds.DEVICE, _("device alarms")), (kinds.PLATFORM, _("platform alarms"))],
        help_text=_("device: reported by the tracker; platform: found by the platform's rules."),
    )
    status = filters.ChoiceFilter(choices=Alarm.Status.choices, help_text=_("Alarm status."))
    level = filters.TypedChoiceFilter(choices=Level.choices, coerce=int, help_text=_("Level."))
    min_level = filters.TypedChoiceFilter(
        field_name="level",
        lookup_expr="gte",
        choices=Level.choices,
        coerce=int,
        help_text=_("This level or above."),
    )
    vehicle = filters.NumberFilter(
        field_name="vehicle", min_value=1, max_value=2**63 - 1, help_text=_("Vehicle id.")
    )
    plate = filters.CharFilter(method="filter_plate", help_text=_("Plate or part of it."))
    customer = filters.NumberFilter(
        field_name="customer", min_value=1, max_value=2**63 - 1, help_text=_("Customer id.")
    )
    since = filters.IsoDateTimeFilter(
        field_name="raised_at", lookup_expr="gte", help_text=_("Raised at or after (ISO 8601).")
    )
    until = filters.IsoDateTimeFilter(
        field_name="raised_at", lookup_expr="lt", help_text=_("Raised before (ISO 8601).")
    )

    class Meta:
        model = Alarm
        fields = [
            "kind",
            "category",
            "status",
            "level",
            "min_level",
            "vehicle",
            "plate",
            "customer",
            "since",
            "until",
        ]

    def filter_category(self, queryset, name, value):
        return queryset.filter(kind__in=sorted(_CATEGORIES[value]))

    def filter_plate(self, queryset, name, value):
        return queryset.filter(vehicle__plate__icontains=normalize_plate(value))


# --- Serializers ---------------------------------------------------------------------------------
class AlarmOutputSerializer(serializers.ModelSerializer):
    """One alarm as lists show it; rows come from `alarms_for_list` (joins annotated)."""

    kind_label = serializers.CharField(source="get_kind_display")
    category = serializers.SerializerMethodField()
    level_label = serializers.CharField(source="get_level_display")
    status_label = serializers.CharField(source="get_status_display")
    customer_name = serializers.CharField()
    plate = serializers.CharField(allow_null=True)
    device_identifier = serializers.CharField(allow_null=True)
    lat = serializers.SerializerMethodField(help_text=_("WGS-84 latitude."))
    lon = serializers.SerializerMethodField(help_text=_("WGS-84 longitude."))
    acknowledged_by = serializers.CharField(source="acknowledged_by_name", allow_null=True)
    closed_by = serializers.CharField(source="closed_by_name", allow_null=True)

    class Meta:
        model = Alarm
        fields = [
            "id",
            "kind",
            "kind_label",
            "category",
            "level",
            "level_label",
            "status",
            "status_label",
            "customer",
            "customer_name",
            "vehicle",
            "plate",
            "device",
            "device_identifier",
            "target",
            "target_name",
            "message",
            "started_at",
            "raised_at",
            "last_seen_at",
            "occurrences",
            "lat",
            "lon",
            "speed_kmh",
            "acknowledged_at",
            "acknowledged_by",
            "closed_at",
            "closed_by",
            "auto_closed",
            "note",
        ]
        read_only_fields = fields

    def get_category(self, obj) -> str:
        spec = kinds.KINDS.get(obj.kind)
        return spec.category if spec else ""

    def get_lat(self, obj) -> float | None:
        return round(obj.point.y, 7) if obj.point is not None else None

    def get_lon(self, obj) -> float | None:
        return round(obj.point.x, 7) if obj.point is not None else None


class AlarmEventOutputSerializer(serializers.ModelSerializer):
    action_label = serializers.CharField(source="get_action_display")
    by = serializers.SlugRelatedField(slug_field="username", read_only=True, allow_null=True)

    class Meta:
        model = AlarmEvent
        fields = ["at", "action", "action_label", "by", "note"]
        read_only_fields = fields


class AlarmDetailOutputSerializer(AlarmOutputSerializer):
    events = AlarmEventOutputSerializer(many=True, read_only=True)

    class Meta(AlarmOutputSerializer.Meta):
        fields = [*AlarmOutputSerializer.Meta.fields, "details", "events"]
        read_only_fields = fields


class HandleInputSerializer(serializers.Serializer):
    note = serializers.CharField(
        required=False, allow_blank=True, default="", max_length=2000, trim_whitespace=True
    )


class NoteInputSerializer(serializers.Serializer):
    note = serializers.CharField(max_length=2000, trim_whitespace=True)


# --- Alarms --------------------------------------------------------------------------------------
class AlarmViewSet(viewsets.GenericViewSet):
    """Visible alarms (the caller's subtree plus vehicles shared with them), newest first.
    Handling goes through the lifecycle services; the status table decides what is allowed."""

    filterset_class = AlarmFilter
    lookup_value_regex = r"\d+"
    permission_classes = [ActionPermissions]
    action_perms = {
        "acknowledge": ["alarms.handle_alarm"],
        "close": ["alarms.handle_alarm"],
        "note": ["alarms.handle_alarm"],
    }

    def get_queryset(self):
        if self.action == "list":
            return alarms_for_list(self.request.user)
        return alarms_for_detail(self.request.user)

    def get_serializer_class(self):
        return {
            "list": AlarmOutputSerializer,
            "acknowledge": HandleInputSerializer,
            "close": HandleInputSerializer,
            "note": NoteInputSerializer,
        }.get(self.action, AlarmDetailOutputSerializer)

    def _alarm(self, pk) -> Alarm:
        alarm = alarms_for_detail(self.request.user).filter(pk=pk).first()
        if alarm is None:
            raise Http404
        return alarm

    def _detail(self, pk) -> dict:
        return AlarmDetailOutputSerializer(self._alarm(pk)).data

    @extend_schema(responses=AlarmOutputSerializer(many=True))
    def list(self, request):
        page = self.paginate_queryset(self.filter_queryset(self.get_queryset()))
        return self.get_paginated_response(AlarmOutputSerializer(page, many=True).data)

    @extend_schema(responses={200: AlarmDetailOutputSerializer, 404: OpenApiTypes.OBJECT})
    def retrieve(self, request, pk=None):
        return Response(self._detail(pk))

    def _handle(self, request, pk, service):
        alarm = self._alarm(pk)
        serializer = self.get_serializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        try:
            service(alarm=alarm, by=request.user, note=serializer.validated_data["note"])
        except InvalidTransition as exc:
            # The alarm exists and is visible; its current status forbids the move.
            raise ConflictError(exc.message, code=exc.code) from exc
        return Response(self._detail(pk))

    _HANDLE_RESPONSES = {
        200: AlarmDetailOutputSerializer,
        403: OpenApiResponse(description=_("Without the permission to handle alarms.")),
        404: OpenApiResponse(description=_("No such alarm, or not visible to the caller.")),
        409: OpenApiResponse(description=_("The alarm's status does not allow this.")),
    }

    @extend_schema(request=HandleInputSerializer, responses=_HANDLE_RESPONSES)
    @action(detail=True, methods=["post"])
    def acknowledge(self, request, pk=None):
        """open -> acknowledged: someone is on it (who, when and the note are recorded)."""
        return self._handle(request, pk, lifecycle.alarm_acknowledge)

    @extend_schema(request=HandleInputSerializer, responses=_HANDLE_RESPONSES)
    @action(detail=True, methods=["post"])
    def close(self, request, pk=None):
        """open | acknowledged -> closed, with the handling note."""
        return self._handle(request, pk, lifecycle.alarm_close)

    @extend_schema(request=NoteInputSerializer, responses=_HANDLE_RESPONSES)
    @action(detail=True, methods=["post"])
    def note(self, request, pk=None):
        """Add a note to the history without changing the status (a closed alarm too)."""
        return self._handle(request, pk, lifecycle.alarm_note)


# --- Alarm settings ------------------------------------------------------------------------------
class AlarmSettingFilter(filters.FilterSet):
    kind = filters.ChoiceFilter(choices=kinds.choices, help_text=_("Alarm kind."))
    customer = filters.NumberFilter(
        field_name="customer", min_value=1, max_value=2**63 - 1, help_text=_("Customer id.")
    )
    vehicle = filters.NumberFilter(
        field_name="vehicle", min_value=1, max_value=2**63 - 1, help_text=_("Vehicle id.")
    )

    class Meta:
        model = AlarmSetting
        fields = ["kind", "customer", "vehicle"]


class AlarmSettingOutputSerializer(serializers.ModelSerializer):
    kind_label = serializers.CharField(source="get_kind_display")
    customer_name = serializers.SerializerMethodField()
    plate = serializers.SerializerMethodField()

    class Meta:
        model = AlarmSetting
        fields = [
            "id",
            "kind",
            "kind_label",
            "customer",
            "customer_name",
            "vehicle",
            "plate",
            "enabled",
            "level",
            "params",
            "updated_at",
        ]
        read_only_fields = fields

    def get_customer_name(self, obj) -> str | None:
        return obj.customer.name if obj.customer_id else None

    def get_plate(self, obj) -> str | None:
        return obj.vehicle.plate if obj.vehicle_id else None


class AlarmSettingInputSerializer(serializers.Serializer):
    kind = serializers.ChoiceField(choices=kinds.choices())
    customer = serializers.IntegerField(
        required=False, allow_null=True, help_text=_("Set on this customer and its subtree.")
    )
    vehicle = serializers.IntegerField(
        required=False, allow_null=True, help_text=_("Set on this vehicle only.")
    )
    enabled = serializers.BooleanField(
        required=False, allow_null=True, default=None, help_text=_("null: inherited.")
    )
    level = serializers.ChoiceField(
        choices=Level.choices, required=False, allow_null=True, default=None
    )
    params = serializers.JSONField(
        required=False, default=dict, help_text=_("Rule parameters to override (a JSON object).")
    )

    def validate(self, attrs):
        if (attrs.get("customer") is None) == (attrs.get("vehicle") is None):
            raise serializers.ValidationError(
                {"non_field_errors": [_("Give either a customer or a vehicle.")]}
            )
        return attrs


class AlarmSettingsApi(APIView):
    """Alarm setting overrides on the caller's customers (inherited down the subtree) and
    vehicles (win over every customer); the rules' defaults apply where nobody set one."""

    pagination_class = Pagination  # also tells the schema that GET answers a page

    def get_queryset(self):
        return alarm_settings_visible_to(self.request.user).order_by("kind", "id")

    @extend_schema(
        parameters=[
            OpenApiParameter("kind", OpenApiTypes.STR, enum=list(kinds.KINDS)),
            OpenApiParameter("customer", OpenApiTypes.INT, description=_("Customer id.")),
            OpenApiParameter("vehicle", OpenApiTypes.INT, description=_("Vehicle id.")),
        ],
        responses=AlarmSettingOutputSerializer(many=True),
    )
    def get(self, request):
        filterset = AlarmSettingFilter(request.query_params, queryset=self.get_queryset())
        if not filterset.is_valid():
            raise serializers.ValidationError(filterset.errors)
        paginator = self.pagination_class()
        page = paginator.paginate_queryset(filterset.qs, request, view=self)
        return paginator.get_paginated_response(AlarmSettingOutputSerializer(page, many=True).data)

    @extend_schema(
        request=AlarmSettingInputSerializer,
        responses={
            200: AlarmSettingOutputSerializer,
            400: OpenApiTypes.OBJECT,
            403: OpenApiTypes.OBJECT,
            404: OpenApiTypes.OBJECT,
        },
    )
    def put(self, request):
        """Create or replace the override of one kind on a customer or a vehicle."""
        serializer = AlarmSettingInputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = dict(serializer.validated_data)
        user = request.user
        target = {}
        if data.get("customer") is not None:
            customer = customers_visible_to(user).filter(pk=data["customer"]).first()
            if customer is None:
                raise Http404
            target["customer"] = customer
        else:
            target["vehicle"] = object_for_change(
                vehicles_visible_to(user),
                vehicles_visible_to(user, for_change=True),
                data["vehicle"],
            )
        setting = alarm_setting_upsert(
            kind=data["kind"],
            enabled=data["enabled"],
            level=data["level"],
            params=data["params"],
            by=user,
            **target,
        )
        row = alarm_settings_visible_to(user).get(pk=setting.pk)
        return Response(AlarmSettingOutputSerializer(row).data, status=status.HTTP_200_OK)
