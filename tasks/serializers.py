"""Input and output serializers of the work-order APIs (back office and mobile)."""

from __future__ import annotations

from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from tasks.kinds import KINDS, kind_choices
from tasks.models import WorkOrder, WorkOrderDevice, WorkOrderRecord
from tasks.selectors import Suggestion


# --- Small pieces -------------------------------------------------------------------------------
class TaskPersonSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    username = serializers.CharField()
    name = serializers.SerializerMethodField()
    kind = serializers.CharField()

    def get_name(self, user) -> str:
        return user.get_full_name() or user.username


class TaskCustomerRefSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    code = serializers.CharField()
    name = serializers.CharField()


class TaskVehicleRefSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    plate = serializers.CharField()
    vin = serializers.CharField()
    brand = serializers.CharField()
    model_name = serializers.CharField()
    colour = serializers.CharField()


class TaskPositionInputSerializer(serializers.Serializer):
    """The worker's position when the phone sends one with an action (optional, WGS-84)."""

    lat = serializers.FloatField(min_value=-90, max_value=90, required=False)
    lon = serializers.FloatField(min_value=-180, max_value=180, required=False)
    accuracy_m = serializers.FloatField(
        min_value=0, max_value=100_000, required=False, help_text=_("The fix's accuracy.")
    )

    def validate(self, attrs):
        if ("lat" in attrs) != ("lon" in attrs):
            raise serializers.ValidationError(_("Give both lat and lon, or neither."))
        return attrs

    def here(self):
        from tasks.services import Here

        data = self.validated_data
        if "lat" not in data:
            return None
        return Here(data["lat"], data["lon"], data.get("accuracy_m"))


def _lat(point) -> float | None:
    return round(point.y, 7) if point is not None else None


def _lon(point) -> float | None:
    return round(point.x, 7) if point is not None else None


# --- Orders -------------------------------------------------------------------------------------
class WorkOrderOutputSerializer(serializers.ModelSerializer):
    kind_display = serializers.CharField(source="get_kind_display")
    status_display = serializers.CharField(source="get_status_display")
    customer = TaskCustomerRefSerializer()
    vehicle = TaskVehicleRefSerializer()
    assignee = TaskPersonSerializer(allow_null=True)
    lat = serializers.SerializerMethodField()
    lon = serializers.SerializerMethodField()
    overdue = serializers.SerializerMethodField()

    class Meta:
        model = WorkOrder
        fields = [
            "id",
            "kind",
            "kind_display",
            "status",
            "status_display",
            "customer",
            "vehicle",
            "assignee",
            "due_at",
            "overdue",
            "address",
            "lat",
            "lon",
            "instructions",
            "car_found",
            "owner_found",
            "result_note",
            "created_at",
            "assigned_at",
            "accepted_at",
            "started_at",
            "finished_at",
            "verified_at",
            "cancelled_at",
        ]
        read_only_fields = fields

    def get_lat(self, order) -> float | None:
        return _lat(order.location)

    def get_lon(self, order) -> float | None:
        return _lon(order.location)

    def get_overdue(self, order) -> bool:
        return order.is_overdue(timezone.now())


class TaskRecordOutputSerializer(serializers.ModelSerializer):
    kind_display = serializers.CharField(source="get_kind_display")
    # Declared: a read-only model field loses allow_blank, and the schema would then refuse the
    # "" of records that are not status changes (and of the first one, which has no "from").
    status_from = serializers.ChoiceField(
        choices=WorkOrder.Status.choices, allow_blank=True, read_only=True
    )
    status_to = serializers.ChoiceField(
        choices=WorkOrder.Status.choices, allow_blank=True, read_only=True
    )
    author = serializers.CharField(source="author.username", default=None)
    lat = serializers.SerializerMethodField()
    lon = serializers.SerializerMethodField()
    photo_url = serializers.SerializerMethodField(
        help_text=_("Download link (the same authentication as the API).")
    )

    class Meta:
        model = WorkOrderRecord
        fields = [
            "id",
            "kind",
            "kind_display",
            "at",
            "author",
            "note",
            "status_from",
            "status_to",
            "lat",
            "lon",
            "accuracy_m",
            "photo_url",
            "photo_type",
            "photo_bytes",
            "photo_width",
            "photo_height",
        ]
        read_only_fields = fields

    def get_lat(self, record) -> float | None:
        return _lat(record.point)

    def get_lon(self, record) -> float | None:
        return _lon(record.point)

    def get_photo_url(self, record) -> str | None:
        if not record.photo:
            return None
        return reverse("task-record-photo", kwargs={"pk": record.pk})


class TaskOrderDeviceOutputSerializer(serializers.ModelSerializer):
    imei = serializers.CharField(source="device.identifier")

    class Meta:
        model = WorkOrderDevice
        fields = ["device", "imei", "action", "at"]
        read_only_fields = fields


class WorkOrderDetailOutputSerializer(WorkOrderOutputSerializer):
    records = serializers.SerializerMethodField()
    devices = serializers.SerializerMethodField()

    class Meta(WorkOrderOutputSerializer.Meta):
        fields = [*WorkOrderOutputSerializer.Meta.fields, "records", "devices"]
        read_only_fields = fields

    @extend_schema_field(TaskRecordOutputSerializer(many=True))
    def get_records(self, order) -> list:
        from tasks.selectors import order_records

        return TaskRecordOutputSerializer(order_records(order), many=True).data

    @extend_schema_field(TaskOrderDeviceOutputSerializer(many=True))
    def get_devices(self, order) -> list:
        rows = order.devices.select_related("device").order_by("at", "id")
        return TaskOrderDeviceOutputSerializer(rows, many=True).data


class WorkOrderCreateInputSerializer(serializers.Serializer):
    kind = serializers.ChoiceField(choices=kind_choices())
    vehicle = serializers.IntegerField(min_value=1, help_text=_("Vehicle id."))
    due_at = serializers.DateTimeField(required=False, allow_null=True)
    address = serializers.CharField(max_length=200, required=False, allow_blank=True)
    lat = serializers.FloatField(min_value=-90, max_value=90, required=False, allow_null=True)
    lon = serializers.FloatField(min_value=-180, max_value=180, required=False, allow_null=True)
    instructions = serializers.CharField(max_length=2000, required=False, allow_blank=True)
    assignee = serializers.IntegerField(
        min_value=1, required=False, allow_null=True, help_text=_("User id: assign at once.")
    )

    def validate(self, attrs):
        if (attrs.get("lat") is None) != (attrs.get("lon") is None):
            raise serializers.ValidationError(_("Give both lat and lon, or neither."))
        return attrs


class WorkOrderUpdateInputSerializer(serializers.Serializer):
    due_at = serializers.DateTimeField(required=False, allow_null=True)
    address = serializers.CharField(max_length=200, required=False, allow_blank=True)
    lat = serializers.FloatField(min_value=-90, max_value=90, required=False, allow_null=True)
    lon = serializers.FloatField(min_value=-180, max_value=180, required=False, allow_null=True)
    instructions = serializers.CharField(max_length=2000, required=False, allow_blank=True)

    def validate(self, attrs):
        if ("lat" in attrs) != ("lon" in attrs) or (
            (attrs.get("lat") is None) != (attrs.get("lon") is None)
        ):
            raise serializers.ValidationError(_("Give both lat and lon, or neither."))
        return attrs


class TaskAssignInputSerializer(serializers.Serializer):
    assignee = serializers.IntegerField(min_value=1, help_text=_("User id."))


class TaskReasonInputSerializer(TaskPositionInputSerializer):
    reason = serializers.CharField(max_length=2000)


class TaskCancelInputSerializer(serializers.Serializer):
    reason = serializers.CharField(max_length=2000)


class TaskVerifyInputSerializer(serializers.Serializer):
    note = serializers.CharField(max_length=2000, required=False, allow_blank=True, default="")


class TaskSuggestionOutputSerializer(serializers.Serializer):
    user = TaskPersonSerializer()
    distance_m = serializers.FloatField(allow_null=True)
    position_at = serializers.DateTimeField(allow_null=True)
    open_orders = serializers.IntegerField()

    @classmethod
    def rows(cls, suggestions: list[Suggestion]) -> list:
        return cls(
            [
                {
                    "user": s.user,
                    "distance_m": round(s.distance_m) if s.distance_m is not None else None,
                    "position_at": s.position_at,
                    "open_orders": s.open_orders,
                }
                for s in suggestions
            ],
            many=True,
        ).data


# --- Mobile inputs ------------------------------------------------------------------------------
class TaskCompleteInputSerializer(TaskPositionInputSerializer):
    note = serializers.CharField(max_length=2000, required=False, allow_blank=True, default="")
    imeis = serializers.ListField(
        child=serializers.CharField(max_length=20),
        required=False,
        default=list,
        max_length=50,
        help_text=_("Install / repair: the scanned IMEIs of the devices now on the car."),
    )
    removed_imeis = serializers.ListField(
        child=serializers.CharField(max_length=20),
        required=False,
        default=list,
        max_length=50,
        help_text=_("Repair: the IMEIs of the faulty devices taken off."),
    )
    car_found = serializers.BooleanField(required=False, allow_null=True, default=None)
    owner_found = serializers.BooleanField(required=False, allow_null=True, default=None)


class TaskFailInputSerializer(TaskReasonInputSerializer):
    car_found = serializers.BooleanField(required=False, allow_null=True, default=None)
    owner_found = serializers.BooleanField(required=False, allow_null=True, default=None)


class TaskNoteInputSerializer(TaskPositionInputSerializer):
    note = serializers.CharField(max_length=2000)


class TaskPhotoInputSerializer(TaskPositionInputSerializer):
    photo = serializers.FileField(
        help_text=_("JPEG, PNG or WebP; checked by content; at most TASKS_PHOTO_MAX_BYTES.")
    )
    caption = serializers.CharField(max_length=2000, required=False, allow_blank=True, default="")


class TaskLocationInputSerializer(TaskPositionInputSerializer):
    at = serializers.DateTimeField(
        required=False, help_text=_("The fix time (with offset); default: now.")
    )
    on_duty = serializers.BooleanField(required=False)
    battery_pct = serializers.IntegerField(min_value=0, max_value=100, required=False)


class TaskPresenceOutputSerializer(serializers.Serializer):
    on_duty = serializers.BooleanField()
    lat = serializers.FloatField(allow_null=True)
    lon = serializers.FloatField(allow_null=True)
    accuracy_m = serializers.FloatField(allow_null=True)
    at = serializers.DateTimeField(allow_null=True)
    battery_pct = serializers.IntegerField(allow_null=True)

    @classmethod
    def of(cls, presence) -> dict:
        if presence is None:
            return cls(
                {
                    "on_duty": True,
                    "lat": None,
                    "lon": None,
                    "accuracy_m": None,
                    "at": None,
                    "battery_pct": None,
                }
            ).data
        return cls(
            {
                "on_duty": presence.on_duty,
                "lat": _lat(presence.point),
                "lon": _lon(presence.point),
                "accuracy_m": presence.accuracy_m,
                "at": presence.at,
                "battery_pct": presence.battery_pct,
            }
        ).data


class MobileMeOutputSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    username = serializers.CharField()
    name = serializers.CharField()
    kind = serializers.CharField()
    kind_display = serializers.CharField()
    customer = TaskCustomerRefSerializer(allow_null=True)
    presence = TaskPresenceOutputSerializer()
    open_orders = serializers.IntegerField()
    order_kinds = serializers.ListField(
        child=serializers.CharField(), help_text=_("Kinds of orders this person can be sent.")
    )


class MobileVehicleOutputSerializer(serializers.Serializer):
    """What a field worker sees of a vehicle: identification and its devices, and the borrower
    only for the kinds of work that meet them (covert visits, repossessions)."""

    id = serializers.IntegerField()
    plate = serializers.CharField()
    vin = serializers.CharField()
    brand = serializers.CharField()
    model_name = serializers.CharField()
    colour = serializers.CharField()
    customer = TaskCustomerRefSerializer()
    imeis = serializers.ListField(child=serializers.CharField(), help_text=_("Mounted now."))
    borrower_name = serializers.CharField(allow_null=True)
    borrower_phone = serializers.CharField(allow_null=True)


class MobileOrderDetailSerializer(WorkOrderDetailOutputSerializer):
    shows_vehicle_live = serializers.SerializerMethodField()
    asks_found = serializers.SerializerMethodField()

    class Meta(WorkOrderDetailOutputSerializer.Meta):
        fields = [*WorkOrderDetailOutputSerializer.Meta.fields, "shows_vehicle_live", "asks_found"]
        read_only_fields = fields

    def get_shows_vehicle_live(self, order) -> bool:
        return KINDS[order.kind].shows_vehicle_live

    def get_asks_found(self, order) -> bool:
        return KINDS[order.kind].asks_found


class TaskFixOutputSerializer(serializers.Serializer):
    lat = serializers.FloatField()
    lon = serializers.FloatField()
    at = serializers.DateTimeField(allow_null=True)


class TaskStopOutputSerializer(serializers.Serializer):
    start = serializers.DateTimeField()
    end = serializers.DateTimeField()
    minutes = serializers.IntegerField()
    lat = serializers.FloatField()
    lon = serializers.FloatField()
    fixes = serializers.IntegerField()


class VehicleLiveOutputSerializer(serializers.Serializer):
    vehicle = TaskVehicleRefSerializer()
    position = TaskFixOutputSerializer(allow_null=True)
    stops = TaskStopOutputSerializer(many=True)


class MobileAnnotationInputSerializer(TaskPositionInputSerializer):
    """An annotation (R2) where the worker stands: lat / lon are required here."""

    name = serializers.CharField(max_length=200)
    radius_m = serializers.IntegerField(min_value=10, max_value=50_000, default=200)
    shared = serializers.BooleanField(default=True)
    note = serializers.CharField(max_length=300, required=False, allow_blank=True, default="")

    def validate(self, attrs):
        attrs = super().validate(attrs)
        if "lat" not in attrs:
            raise serializers.ValidationError(_("Send your position (lat and lon)."))
        return attrs


class MobileAnnotationOutputSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    name = serializers.CharField()
    lat = serializers.FloatField()
    lon = serializers.FloatField()
    radius_m = serializers.IntegerField()
    shared = serializers.BooleanField()
    note = serializers.CharField()
    customer = TaskCustomerRefSerializer()


class WorkOrderPageSerializer(serializers.Serializer):
    """A page of orders (the project's page-number pagination)."""

    count = serializers.IntegerField()
    next = serializers.URLField(allow_null=True)
    previous = serializers.URLField(allow_null=True)
    results = WorkOrderOutputSerializer(many=True)
