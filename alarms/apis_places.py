"""REST API of the places of risk control: risk points (R1), annotations (R2, also what the
mobile app posts from a vehicle's position), geofences (R3, GeoJSON in and out, circles as centre
+ radius) and in-place arming (`/vehicles/{id}/arm/`, `/vehicles/{id}/disarm/`).

Querysets come from `alarms.selectors`, writes go through `alarms.services.places`. Another
tenant's object answers 404; a missing function permission (role) answers 403, and so does a
write that only platform admins may make (risk points) or only an annotation's author.
"""

from __future__ import annotations

from django.db.models import QuerySet
from django.http import Http404
from django.utils.translation import gettext_lazy as _
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema, extend_schema_field
from rest_framework import exceptions, serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.apis import ActionPermissions, IdNameSerializer
from accounts.selectors import customers_visible_to
from alarms import selectors
from alarms.imports import parse_kind
from alarms.models import Annotation, Arming, Geofence, RiskPoint
from alarms.services import places as services
from vehicles.selectors import vehicles_visible_to

MAX_NEAR_RADIUS_M = 50_000


# --- Query parameters shared by the point lists ---------------------------------------------------
def _floats(text: str, count: int, name: str) -> list[float]:
    parts = [p for p in (text or "").split(",") if p.strip()]
    try:
        values = [float(p) for p in parts]
    except ValueError:
        values = []
    if len(values) != count:
        raise exceptions.ValidationError({name: _("Expected %d comma-separated numbers.") % count})
    return values


def _place_filters(request, qs: QuerySet) -> QuerySet:
    """`?near=lat,lon&radius=m` (nearest first, with the distance), `?bbox=min_lon,min_lat,
    max_lon,max_lat`, `?search=` (name)."""
    params = request.query_params
    if params.get("near"):
        lat, lon = _floats(params["near"], 2, "near")
        try:
            radius = float(params.get("radius", 1_000))
        except ValueError as exc:
            raise exceptions.ValidationError({"radius": _("A number of metres.")}) from exc
        if not (-90 <= lat <= 90 and -180 <= lon <= 180):
            raise exceptions.ValidationError({"near": _("Latitude, longitude out of range.")})
        if not 0 < radius <= MAX_NEAR_RADIUS_M:
            raise exceptions.ValidationError(
                {"radius": _("Between 1 and %d metres.") % MAX_NEAR_RADIUS_M}
            )
        qs = selectors.near(qs, lat=lat, lon=lon, radius_m=radius)
    if params.get("bbox"):
        min_lon, min_lat, max_lon, max_lat = _floats(params["bbox"], 4, "bbox")
        if min_lon >= max_lon or min_lat >= max_lat:
            raise exceptions.ValidationError({"bbox": _("min_lon,min_lat,max_lon,max_lat.")})
        qs = selectors.in_bbox(qs, (min_lon, min_lat, max_lon, max_lat))
    if params.get("search"):
        qs = qs.filter(name__icontains=params["search"].strip())
    return qs


NEAR_PARAMETERS = [
    OpenApiParameter("near", str, description="lat,lon: only places within `radius` metres"),
    OpenApiParameter("radius", float, description="metres around `near` (default 1000)"),
    OpenApiParameter("bbox", str, description="min_lon,min_lat,max_lon,max_lat"),
    OpenApiParameter("search", str, description="part of the name"),
]


class PointFields(serializers.Serializer):
    """lat / lon of a model's `point`, and `distance_m` when the list was asked `?near=`."""

    lat = serializers.SerializerMethodField()
    lon = serializers.SerializerMethodField()
    distance_m = serializers.SerializerMethodField()

    def get_lat(self, obj) -> float:
        return obj.point.y

    def get_lon(self, obj) -> float:
        return obj.point.x

    @extend_schema_field(serializers.FloatField(allow_null=True))
    def get_distance_m(self, obj) -> float | None:
        distance = getattr(obj, "distance", None)
        return round(distance.m, 1) if distance is not None else None


# --- Risk points ----------------------------------------------------------------------------------
class RiskPointOutputSerializer(PointFields, serializers.ModelSerializer):
    kind_label = serializers.CharField(source="get_kind_display")

    class Meta:
        model = RiskPoint
        fields = [
            "id",
            "name",
            "kind",
            "kind_label",
            "lat",
            "lon",
            "radius_m",
            "address",
            "distance_m",
            "created_at",
            "updated_at",
        ]


class KindField(serializers.CharField):
    """A risk point kind: its code or its Chinese / English label."""

    def to_internal_value(self, data):
        kind = parse_kind(super().to_internal_value(data))
        if kind is None:
            raise serializers.ValidationError(
                _("Unknown kind; one of: %s") % ", ".join(RiskPoint.Kind.values)
            )
        return kind


class RiskPointInputSerializer(serializers.Serializer):
    name = serializers.CharField(max_length=200)
    kind = KindField()
    lat = serializers.FloatField(min_value=-90, max_value=90)
    lon = serializers.FloatField(min_value=-180, max_value=180)
    radius_m = serializers.IntegerField(min_value=10, max_value=50_000, default=200)
    address = serializers.CharField(max_length=300, required=False, allow_blank=True, default="")


class RiskPointViewSet(viewsets.GenericViewSet):
    """Risk points shared by the whole server (R1). Anyone with the view right lists them;
    creating, changing and deleting is for platform admins (bulk: `import_risk_points`).
    `?kind=` takes a code or a Chinese label (车管所 ...)."""

    lookup_value_regex = r"\d+"
    filter_backends: list = []

    def get_queryset(self):
        qs = selectors.risk_points_visible_to(self.request.user)
        if self.action != "list":
            return qs
        kind = self.request.query_params.get("kind")
        if kind:
            code = parse_kind(kind)
            if code is None:
                raise exceptions.ValidationError({"kind": _("Unknown kind.")})
            qs = qs.filter(kind=code)
        return _place_filters(self.request, qs)

    def get_serializer_class(self):
        if self.action in ("create", "update", "partial_update"):
            return RiskPointInputSerializer
        return RiskPointOutputSerializer

    @extend_schema(
        parameters=[
            OpenApiParameter("kind", str, description="code or Chinese label"),
            *NEAR_PARAMETERS,
        ],
        responses=RiskPointOutputSerializer(many=True),
    )
    def list(self, request):
        page = self.paginate_queryset(self.get_queryset())
        return self.get_paginated_response(RiskPointOutputSerializer(page, many=True).data)

    @extend_schema(responses=RiskPointOutputSerializer)
    def retrieve(self, request, pk=None):
        return Response(RiskPointOutputSerializer(self.get_object()).data)

    @extend_schema(request=RiskPointInputSerializer, responses={201: RiskPointOutputSerializer})
    def create(self, request):
        data = self._valid(request.data)
        point = services.risk_point_create(by=request.user, **data)
        return Response(RiskPointOutputSerializer(point).data, status=status.HTTP_201_CREATED)

    def _valid(self, data, partial: bool = False) -> dict:
        serializer = RiskPointInputSerializer(data=data, partial=partial)
        serializer.is_valid(raise_exception=True)
        return serializer.validated_data

    @extend_schema(request=RiskPointInputSerializer, responses=RiskPointOutputSerializer)
    def update(self, request, pk=None, partial=False):
        point = self.get_object()
        data = self._valid(request.data, partial=partial)
        services.risk_point_update(risk_point=point, by=request.user, **data)
        return Response(RiskPointOutputSerializer(point).data)

    @extend_schema(request=RiskPointInputSerializer, responses=RiskPointOutputSerializer)
    def partial_update(self, request, pk=None):
        return self.update(request, pk=pk, partial=True)

    @extend_schema(responses={204: None})
    def destroy(self, request, pk=None):
        services.risk_point_delete(risk_point=self.get_object(), by=request.user)
        return Response(status=status.HTTP_204_NO_CONTENT)


# --- Annotations ----------------------------------------------------------------------------------
class AnnotationOutputSerializer(PointFields, serializers.ModelSerializer):
    customer = IdNameSerializer()
    created_by = serializers.CharField(source="created_by.username", default=None)

    class Meta:
        model = Annotation
        fields = [
            "id",
            "customer",
            "name",
            "lat",
            "lon",
            "radius_m",
            "shared",
            "note",
            "distance_m",
            "created_by",
            "created_at",
            "updated_at",
        ]


def _visible(queryset: QuerySet, pk):
    """The object `pk` of a visibility-scoped queryset; another tenant's id is a 404."""
    obj = queryset.filter(pk=pk).first()
    if obj is None:
        raise Http404
    return obj


class AnnotationCreateInputSerializer(serializers.Serializer):
    """Either `lat` + `lon` (a map click) or `vehicle` (where that vehicle is now)."""

    name = serializers.CharField(max_length=200)
    lat = serializers.FloatField(min_value=-90, max_value=90, required=False)
    lon = serializers.FloatField(min_value=-180, max_value=180, required=False)
    vehicle = serializers.IntegerField(
        required=False, help_text=_("Use this vehicle's position (its id).")
    )
    customer = serializers.IntegerField(
        required=False, help_text=_("Owner (id); default: your own customer.")
    )
    radius_m = serializers.IntegerField(min_value=10, max_value=50_000, default=200)
    shared = serializers.BooleanField(default=True)
    note = serializers.CharField(max_length=300, required=False, allow_blank=True, default="")

    def validate(self, attrs):
        has_point = "lat" in attrs or "lon" in attrs
        if "vehicle" in attrs and has_point:
            raise serializers.ValidationError(_("Give lat and lon, or a vehicle, not both."))
        if "vehicle" in attrs and "customer" in attrs:
            raise serializers.ValidationError(
                _("An annotation made from a vehicle belongs to the vehicle's customer.")
            )
        if "vehicle" not in attrs and not ("lat" in attrs and "lon" in attrs):
            raise serializers.ValidationError(_("Give lat and lon, or a vehicle."))
        return attrs


class AnnotationUpdateInputSerializer(serializers.Serializer):
    name = serializers.CharField(max_length=200, required=False)
    lat = serializers.FloatField(min_value=-90, max_value=90, required=False)
    lon = serializers.FloatField(min_value=-180, max_value=180, required=False)
    radius_m = serializers.IntegerField(min_value=10, max_value=50_000, required=False)
    shared = serializers.BooleanField(required=False)
    note = serializers.CharField(max_length=300, required=False, allow_blank=True)


class AnnotationViewSet(viewsets.GenericViewSet):
    """Annotations (R2): the shared ones of your subtree and your own private ones. POST with
    `lat`/`lon` (a map click) or with `vehicle` (its current position: what the mobile app
    sends); `?customer=` and `?shared=` filter the list."""

    lookup_value_regex = r"\d+"
    filter_backends: list = []

    def get_queryset(self):
        qs = selectors.annotations_visible_to(self.request.user)
        if self.action != "list":
            return qs
        params = self.request.query_params
        if params.get("customer"):
            if not params["customer"].isdigit():
                raise exceptions.ValidationError({"customer": _("A customer id.")})
            qs = qs.filter(customer_id=int(params["customer"]))
        if params.get("shared") in ("true", "false"):
            qs = qs.filter(shared=params["shared"] == "true")
        return _place_filters(self.request, qs)

    def get_serializer_class(self):
        return {
            "create": AnnotationCreateInputSerializer,
            "update": AnnotationUpdateInputSerializer,
            "partial_update": AnnotationUpdateInputSerializer,
        }.get(self.action, AnnotationOutputSerializer)

    def _output(self, note) -> dict:
        return AnnotationOutputSerializer(self.get_queryset().get(pk=note.pk)).data

    @extend_schema(
        parameters=[
            OpenApiParameter("customer", int),
            OpenApiParameter("shared", bool),
            *NEAR_PARAMETERS,
        ],
        responses=AnnotationOutputSerializer(many=True),
    )
    def list(self, request):
        page = self.paginate_queryset(self.get_queryset())
        return self.get_paginated_response(AnnotationOutputSerializer(page, many=True).data)

    @extend_schema(responses=AnnotationOutputSerializer)
    def retrieve(self, request, pk=None):
        return Response(AnnotationOutputSerializer(self.get_object()).data)

    @extend_schema(
        request=AnnotationCreateInputSerializer, responses={201: AnnotationOutputSerializer}
    )
    def create(self, request):
        serializer = self.get_serializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = dict(serializer.validated_data)
        vehicle_id, customer_id = data.pop("vehicle", None), data.pop("customer", None)
        if vehicle_id is not None:
            vehicle = _visible(
                vehicles_visible_to(request.user).select_related("customer"), vehicle_id
            )
            note = services.annotation_from_vehicle(vehicle=vehicle, by=request.user, **data)
        else:
            if customer_id is not None:
                customer = _visible(customers_visible_to(request.user), customer_id)
            else:
                customer = request.user.customer
            if customer is None:
                raise exceptions.ValidationError({"customer": _("Choose a customer.")})
            note = services.annotation_create(customer=customer, by=request.user, **data)
        return Response(self._output(note), status=status.HTTP_201_CREATED)

    @extend_schema(request=AnnotationUpdateInputSerializer, responses=AnnotationOutputSerializer)
    def update(self, request, pk=None, partial=True):
        note = self.get_object()
        serializer = AnnotationUpdateInputSerializer(data=request.data, partial=True)
        serializer.is_valid(raise_exception=True)
        services.annotation_update(annotation=note, by=request.user, **serializer.validated_data)
        return Response(self._output(note))

    @extend_schema(request=AnnotationUpdateInputSerializer, responses=AnnotationOutputSerializer)
    def partial_update(self, request, pk=None):
        return self.update(request, pk=pk)

    @extend_schema(responses={204: None})
    def destroy(self, request, pk=None):
        services.annotation_delete(annotation=self.get_object(), by=request.user)
        return Response(status=status.HTTP_204_NO_CONTENT)


# --- Geofences ------------------------------------------------------------------------------------
class GeofenceOutputSerializer(serializers.ModelSerializer):
    customer = IdNameSerializer()
    geometry = serializers.SerializerMethodField(
        help_text="GeoJSON: the Polygon, or the circle's centre as a Point"
    )
    center = serializers.SerializerMethodField()
    vehicles = serializers.SerializerMethodField()

    class Meta:
        model = Geofence
        fields = [
            "id",
            "customer",
            "name",
            "shape",
            "geometry",
            "center",
            "radius_m",
            "alarm_enter",
            "alarm_leave",
            "alarm_inside",
            "alarm_parking",
            "parking_minutes",
            "vehicles",
            "created_at",
            "updated_at",
        ]

    @extend_schema_field(OpenApiTypes.OBJECT)
    def get_geometry(self, obj) -> dict | None:
        geometry = obj.polygon if obj.shape == Geofence.Shape.POLYGON else obj.center
        if geometry is None:
            return None
        coords = geometry.coords
        if geometry.geom_type == "Point":
            return {"type": "Point", "coordinates": list(coords)}
        return {"type": "Polygon", "coordinates": [[list(c) for c in ring] for ring in coords]}

    @extend_schema_field(OpenApiTypes.OBJECT)
    def get_center(self, obj) -> dict | None:
        return {"lat": obj.center.y, "lon": obj.center.x} if obj.center else None

    def get_vehicles(self, obj) -> list[int]:
        # A visible fence's vehicles are of its customer's subtree, so visible too (the default
        # manager leaves vehicles in the recycle bin out).
        return sorted(v.pk for v in obj.vehicles.all())


@extend_schema_field(OpenApiTypes.OBJECT)
class CenterField(serializers.Field):
    """{"lat": .., "lon": ..} or a GeoJSON Point."""

    def to_internal_value(self, data):
        if not isinstance(data, dict):
            raise serializers.ValidationError(_('{"lat": .., "lon": ..} or a GeoJSON Point.'))
        return data

    def to_representation(self, value):
        return value


class GeofenceInputSerializer(serializers.Serializer):
    customer = serializers.IntegerField(
        required=False, help_text=_("Owner (id); default: your own customer.")
    )
    name = serializers.CharField(max_length=200)
    shape = serializers.ChoiceField(choices=Geofence.Shape.choices)
    geometry = serializers.JSONField(
        required=False, help_text="GeoJSON Polygon (holes allowed) for a polygon fence"
    )
    center = CenterField(required=False, help_text="a circle's centre")
    radius_m = serializers.IntegerField(min_value=10, max_value=500_000, required=False)
    alarm_enter = serializers.BooleanField(required=False)
    alarm_leave = serializers.BooleanField(required=False)
    alarm_inside = serializers.BooleanField(required=False)
    alarm_parking = serializers.BooleanField(required=False)
    parking_minutes = serializers.IntegerField(min_value=1, max_value=100_000, required=False)
    vehicles = serializers.ListField(
        child=serializers.IntegerField(min_value=1, max_value=2**63 - 1),
        required=False,
        help_text=_("Ids of the bound vehicles (replaces the list)."),
    )


class VehicleIdsInputSerializer(serializers.Serializer):
    vehicles = serializers.ListField(
        child=serializers.IntegerField(min_value=1, max_value=2**63 - 1), allow_empty=False
    )


_OPTIONS = ("alarm_enter", "alarm_leave", "alarm_inside", "alarm_parking", "parking_minutes")


class GeofenceViewSet(viewsets.GenericViewSet):
    """Geofences (R3) of your subtree: a GeoJSON Polygon (`geometry`) or a circle (`center`
    + `radius_m`), with the alarms chosen per fence, bound to vehicles of the fence customer's
    subtree (`vehicles` on create / update replaces the list; `bind` / `unbind` add and remove)."""

    lookup_value_regex = r"\d+"
    filter_backends: list = []
    permission_classes = [ActionPermissions]
    action_perms = {
        "bind": ["alarms.change_geofence"],
        "unbind": ["alarms.change_geofence"],
    }

    def get_queryset(self):
        qs = selectors.geofences_visible_to(self.request.user).prefetch_related("vehicles")
        if self.action == "list" and self.request.query_params.get("customer", "").isdigit():
            qs = qs.filter(customer_id=int(self.request.query_params["customer"]))
        return qs

    def get_serializer_class(self):
        if self.action in ("create", "update", "partial_update"):
            return GeofenceInputSerializer
        if self.action in ("bind", "unbind"):
            return VehicleIdsInputSerializer
        return GeofenceOutputSerializer

    def _output(self, fence) -> dict:
        fresh = self.get_queryset().get(pk=fence.pk)
        return GeofenceOutputSerializer(fresh).data

    def _vehicles(self, ids: list[int]) -> list:
        """Visible vehicles by id; any other id (another tenant's, unknown) is a 404."""
        found = list(vehicles_visible_to(self.request.user).filter(pk__in=ids))
        if set(ids) - {v.pk for v in found}:
            raise Http404
        return found

    @staticmethod
    def _geometry(data: dict) -> dict:
        out = {}
        if "geometry" in data:
            out["polygon"] = data.pop("geometry")
        if "center" in data:
            out["center"] = data.pop("center")
        if "radius_m" in data:
            out["radius_m"] = data.pop("radius_m")
        return out

    @extend_schema(
        parameters=[OpenApiParameter("customer", int)],
        responses=GeofenceOutputSerializer(many=True),
    )
    def list(self, request):
        page = self.paginate_queryset(self.get_queryset())
        return self.get_paginated_response(GeofenceOutputSerializer(page, many=True).data)

    @extend_schema(responses=GeofenceOutputSerializer)
    def retrieve(self, request, pk=None):
        return Response(GeofenceOutputSerializer(self.get_object()).data)

    @extend_schema(request=GeofenceInputSerializer, responses={201: GeofenceOutputSerializer})
    def create(self, request):
        serializer = GeofenceInputSerializer(data=request.data, context={"request": request})
        serializer.is_valid(raise_exception=True)
        data = dict(serializer.validated_data)
        customer_id = data.pop("customer", None)
        if customer_id is not None:
            customer = _visible(customers_visible_to(request.user), customer_id)
        else:
            customer = request.user.customer
        if customer is None:
            raise exceptions.ValidationError({"customer": _("Choose a customer.")})
        vehicles = self._vehicles(data.pop("vehicles", []))
        fence = services.geofence_create(
            customer=customer,
            name=data.pop("name"),
            shape=data.pop("shape"),
            vehicles=vehicles,
            by=request.user,
            **self._geometry(data),
            **data,
        )
        return Response(self._output(fence), status=status.HTTP_201_CREATED)

    @extend_schema(request=GeofenceInputSerializer, responses=GeofenceOutputSerializer)
    def update(self, request, pk=None, partial=False):
        fence = self.get_object()
        serializer = GeofenceInputSerializer(
            data=request.data, partial=partial, context={"request": request}
        )
        serializer.is_valid(raise_exception=True)
        data = dict(serializer.validated_data)
        if "customer" in data and data.pop("customer") != fence.customer_id:
            raise exceptions.ValidationError({"customer": _("A fence keeps its customer.")})
        vehicles = data.pop("vehicles", None)
        services.geofence_update(geofence=fence, by=request.user, **self._geometry(data), **data)
        if vehicles is not None:
            services.geofence_set_vehicles(
                geofence=fence, vehicles=self._vehicles(vehicles), by=request.user
            )
        return Response(self._output(fence))

    @extend_schema(request=GeofenceInputSerializer, responses=GeofenceOutputSerializer)
    def partial_update(self, request, pk=None):
        return self.update(request, pk=pk, partial=True)

    @extend_schema(responses={204: None})
    def destroy(self, request, pk=None):
        services.geofence_delete(geofence=self.get_object(), by=request.user)
        return Response(status=status.HTTP_204_NO_CONTENT)

    @extend_schema(request=VehicleIdsInputSerializer, responses=GeofenceOutputSerializer)
    @action(detail=True, methods=["post"])
    def bind(self, request, pk=None):
        """Bind vehicles (of the fence customer's subtree) to the fence."""
        fence = self.get_object()
        serializer = VehicleIdsInputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        vehicles = self._vehicles(serializer.validated_data["vehicles"])
        services.geofence_bind(geofence=fence, vehicles=vehicles, by=request.user)
        return Response(self._output(fence))

    @extend_schema(request=VehicleIdsInputSerializer, responses=GeofenceOutputSerializer)
    @action(detail=True, methods=["post"])
    def unbind(self, request, pk=None):
        fence = self.get_object()
        serializer = VehicleIdsInputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        vehicles = self._vehicles(serializer.validated_data["vehicles"])
        services.geofence_unbind(geofence=fence, vehicles=vehicles, by=request.user)
        return Response(self._output(fence))


# --- In-place arming ------------------------------------------------------------------------------
class ArmingOutputSerializer(serializers.Serializer):
    vehicle = serializers.IntegerField()
    armed = serializers.BooleanField()
    lat = serializers.FloatField(allow_null=True)
    lon = serializers.FloatField(allow_null=True)
    radius_m = serializers.IntegerField(allow_null=True)
    armed_at = serializers.DateTimeField(allow_null=True)
    armed_by = serializers.CharField(allow_null=True)


class ArmInputSerializer(serializers.Serializer):
    radius_m = serializers.IntegerField(min_value=20, max_value=10_000, default=200)


def _arming_data(vehicle_id: int, arming: Arming | None) -> dict:
    if arming is None:
        return {
            "vehicle": vehicle_id,
            "armed": False,
            "lat": None,
            "lon": None,
            "radius_m": None,
            "armed_at": None,
            "armed_by": None,
        }
    return {
        "vehicle": vehicle_id,
        "armed": True,
        "lat": arming.point.y,
        "lon": arming.point.x,
        "radius_m": arming.radius_m,
        "armed_at": arming.armed_at,
        "armed_by": arming.armed_by.username if arming.armed_by else None,
    }


class _ArmingApi(APIView):
    """Shared: the vehicle must be visible (404), the role must allow the operation (403)."""

    permission_classes: list = []  # checked in `initial`, per method, below
    perms: dict[str, list[str]] = {}

    def initial(self, request, *args, **kwargs):
        super().initial(request, *args, **kwargs)
        if not request.user or not request.user.is_authenticated:
            raise exceptions.NotAuthenticated()
        needed = self.perms.get(request.method, [])
        if not request.user.has_perms(needed):
            raise exceptions.PermissionDenied()

    def vehicle(self, pk):
        vehicle = vehicles_visible_to(self.request.user).filter(pk=pk).first()
        if vehicle is None:
            raise Http404
        return vehicle

    def arming(self, vehicle) -> Arming | None:
        return selectors.armings_visible_to(self.request.user).filter(vehicle=vehicle).first()


class VehicleArmApi(_ArmingApi):
    """In-place arming (原地设防) of one vehicle. GET: whether and where it is armed. POST: arm it
    where it is now (its freshest valid device fix), `radius_m` 20..10,000 (default 200); arming
    again moves the spot. A vehicle with no position yet: 400 `no_position`."""

    perms = {"GET": ["alarms.view_arming"], "POST": ["alarms.add_arming"]}

    @extend_schema(responses=ArmingOutputSerializer)
    def get(self, request, pk):
        vehicle = self.vehicle(pk)
        return Response(ArmingOutputSerializer(_arming_data(vehicle.pk, self.arming(vehicle))).data)

    @extend_schema(request=ArmInputSerializer, responses=ArmingOutputSerializer)
    def post(self, request, pk):
        vehicle = self.vehicle(pk)
        serializer = ArmInputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        services.vehicle_arm(
            vehicle=vehicle, radius_m=serializer.validated_data["radius_m"], by=request.user
        )
        data = _arming_data(vehicle.pk, self.arming(vehicle))
        return Response(ArmingOutputSerializer(data).data)


class VehicleDisarmApi(_ArmingApi):
    """POST: end the vehicle's in-place arming (nothing happens if it was not armed)."""

    perms = {"POST": ["alarms.delete_arming"]}

    @extend_schema(request=None, responses=ArmingOutputSerializer)
    def post(self, request, pk):
        vehicle = self.vehicle(pk)
        services.vehicle_disarm(vehicle=vehicle, by=request.user)
        return Response(ArmingOutputSerializer(_arming_data(vehicle.pk, None)).data)
