"""REST API of vehicles: vehicle CRUD, device bindings and the recycle bin (V6)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from django.db.models import CharField, F, QuerySet, Value
from django.db.models.functions import Cast
from django.http import Http404
from django.utils.translation import gettext_lazy as _
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import exceptions, generics, permissions, status, viewsets
from rest_framework.decorators import action
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.apis import ActionPermissions, object_for_change
from accounts.selectors import customers_visible_to
from devices.selectors import deleted_devices_visible_to, devices_visible_to
from devices.services import device_hard_delete, device_restore
from vehicles.filters import BindingFilter, VehicleFilter
from vehicles.selectors import (
    bindings_visible_to,
    deleted_vehicles_visible_to,
    vehicles_for_list,
    vehicles_visible_to,
)
from vehicles.serializers import (
    BindingCreateInputSerializer,
    BindingOutputSerializer,
    RecycleBinItemSerializer,
    RestoreOutputSerializer,
    UnbindInputSerializer,
    VehicleCreateInputSerializer,
    VehicleDetailOutputSerializer,
    VehicleOutputSerializer,
    VehicleUpdateInputSerializer,
)
from vehicles.services import (
    device_bind,
    device_unbind,
    vehicle_create,
    vehicle_hard_delete,
    vehicle_restore,
    vehicle_soft_delete,
    vehicle_update,
)


# --- Vehicles -----------------------------------------------------------------------------------
class VehicleViewSet(viewsets.GenericViewSet):
    """Vehicles of the caller's subtree (plus vehicles shared with them). Writes go through the
    vehicle services; DELETE moves a vehicle to the recycle bin, unmounting its devices."""

    filterset_class = VehicleFilter
    lookup_value_regex = r"\d+"

    def get_queryset(self):
        if self.action in ("list", "retrieve"):
            # Meta.ordering does not apply to aggregating queries (device_count): order here.
            return vehicles_for_list(self.request.user).order_by("-id")
        return vehicles_visible_to(self.request.user)

    def get_serializer_class(self):
        return {
            "create": VehicleCreateInputSerializer,
            "update": VehicleUpdateInputSerializer,
            "partial_update": VehicleUpdateInputSerializer,
            "retrieve": VehicleDetailOutputSerializer,
        }.get(self.action, VehicleOutputSerializer)

    def _output(self, vehicle) -> dict:
        row = vehicles_for_list(self.request.user).get(pk=vehicle.pk)
        return VehicleDetailOutputSerializer(row).data

    def _for_change(self, pk, *, own: bool = False):
        """`own`: only a vehicle of the caller's subtree; a share lends view or change rights,
        never the right to delete."""
        user = self.request.user
        changeable = vehicles_visible_to(user, for_change=True)
        if own:
            changeable = changeable.filter(customer__in=customers_visible_to(user))
        return object_for_change(vehicles_visible_to(user), changeable, pk)

    @extend_schema(responses=VehicleOutputSerializer(many=True))
    def list(self, request):
        page = self.paginate_queryset(self.filter_queryset(self.get_queryset()))
        return self.get_paginated_response(VehicleOutputSerializer(page, many=True).data)

    @extend_schema(responses=VehicleDetailOutputSerializer)
    def retrieve(self, request, pk=None):
        return Response(VehicleDetailOutputSerializer(self.get_object()).data)

    @extend_schema(
        request=VehicleCreateInputSerializer, responses={201: VehicleDetailOutputSerializer}
    )
    def create(self, request):
        serializer = self.get_serializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        vehicle = vehicle_create(by=request.user, **serializer.validated_data)
        return Response(self._output(vehicle), status=status.HTTP_201_CREATED)

    @extend_schema(request=VehicleUpdateInputSerializer, responses=VehicleDetailOutputSerializer)
    def update(self, request, pk=None, partial=False):
        vehicle = self._for_change(pk)
        serializer = self.get_serializer(vehicle, data=request.data, partial=partial)
        serializer.is_valid(raise_exception=True)
        vehicle_update(vehicle=vehicle, by=request.user, **serializer.validated_data)
        return Response(self._output(vehicle))

    @extend_schema(request=VehicleUpdateInputSerializer, responses=VehicleDetailOutputSerializer)
    def partial_update(self, request, pk=None):
        return self.update(request, pk=pk, partial=True)

    @extend_schema(responses={204: None})
    def destroy(self, request, pk=None):
        vehicle_soft_delete(vehicle=self._for_change(pk, own=True), by=request.user)
        return Response(status=status.HTTP_204_NO_CONTENT)


# --- Bindings -----------------------------------------------------------------------------------
class BindingViewSet(viewsets.GenericViewSet):
    """Device bindings of visible vehicles, current and past. POST mounts a device on a vehicle;
    `unbind` ends a binding."""

    filterset_class = BindingFilter
    lookup_value_regex = r"\d+"
    permission_classes = [ActionPermissions]
    action_perms = {"unbind": ["vehicles.change_devicebinding"]}

    def get_queryset(self):
        return bindings_visible_to(self.request.user)

    def get_serializer_class(self):
        return {
            "create": BindingCreateInputSerializer,
            "unbind": UnbindInputSerializer,
        }.get(self.action, BindingOutputSerializer)

    def _output(self, binding) -> dict:
        return BindingOutputSerializer(
            bindings_visible_to(self.request.user).get(pk=binding.pk)
        ).data

    @extend_schema(responses=BindingOutputSerializer(many=True))
    def list(self, request):
        page = self.paginate_queryset(self.filter_queryset(self.get_queryset()))
        return self.get_paginated_response(BindingOutputSerializer(page, many=True).data)

    @extend_schema(responses=BindingOutputSerializer)
    def retrieve(self, request, pk=None):
        return Response(BindingOutputSerializer(self.get_object()).data)

    @extend_schema(
        request=BindingCreateInputSerializer,
        responses={201: BindingOutputSerializer, 409: OpenApiTypes.OBJECT},
    )
    def create(self, request):
        """Mount a device on a vehicle. Both must be the caller's to change (404 when not
        visible at all); a device already on another vehicle, faulty or scrapped is a 409."""
        serializer = self.get_serializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        user = request.user
        vehicle = object_for_change(
            vehicles_visible_to(user),
            vehicles_visible_to(user, for_change=True).select_related("customer"),
            serializer.validated_data["vehicle"],
        )
        device = object_for_change(
            devices_visible_to(user),
            devices_visible_to(user, for_change=True),
            serializer.validated_data["device"],
        )
        binding = device_bind(vehicle=vehicle, device=device, by=user)
        return Response(self._output(binding), status=status.HTTP_201_CREATED)

    @extend_schema(
        request=UnbindInputSerializer,
        responses={200: BindingOutputSerializer, 409: OpenApiTypes.OBJECT},
    )
    @action(detail=True, methods=["post"])
    def unbind(self, request, pk=None):
        """End a binding; the device goes back to stock (or is marked faulty)."""
        binding = self.get_object()
        serializer = self.get_serializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        user = request.user
        # Visible through a read-only share of the vehicle: not theirs to change.
        object_for_change(
            vehicles_visible_to(user),
            vehicles_visible_to(user, for_change=True),
            binding.vehicle_id,
        )
        device_unbind(
            binding=binding, by=user, device_status=serializer.validated_data["device_status"]
        )
        return Response(self._output(binding))


# --- Recycle bin (V6) ---------------------------------------------------------------------------
@dataclass(frozen=True)
class BinKind:
    """One kind of object the recycle bin holds and the services that act on it."""

    deleted_visible_to: Callable[..., QuerySet]
    label_field: str
    view_perm: str
    delete_perm: str
    restore: Callable[..., list[str]]
    hard_delete: Callable[..., None]


BIN_KINDS: dict[str, BinKind] = {
    "vehicle": BinKind(
        deleted_visible_to=deleted_vehicles_visible_to,
        label_field="plate",
        view_perm="vehicles.view_vehicle",
        delete_perm="vehicles.delete_vehicle",
        restore=lambda obj, by: vehicle_restore(vehicle=obj, by=by),
        hard_delete=lambda obj, by: vehicle_hard_delete(vehicle=obj, by=by),
    ),
    "device": BinKind(
        deleted_visible_to=deleted_devices_visible_to,
        label_field="identifier",
        view_perm="devices.view_device",
        delete_perm="devices.delete_device",
        restore=lambda obj, by: device_restore(device=obj, by=by),
        hard_delete=lambda obj, by: device_hard_delete(device=obj, by=by),
    ),
}
_KIND_PARAM = OpenApiParameter(
    "kind", OpenApiTypes.STR, OpenApiParameter.PATH, enum=list(BIN_KINDS)
)
_ID_PARAM = OpenApiParameter("id", OpenApiTypes.INT, OpenApiParameter.PATH)


class RecycleBinPermission(permissions.BasePermission):
    """Listing: the right to see vehicles or devices. Restoring and erasing an item: the right
    to delete its kind (who may delete may undo; erasing is further kept to platform admins by
    the services)."""

    def has_permission(self, request, view):
        user = request.user
        if not (user and user.is_authenticated):
            return False
        if request.method in permissions.SAFE_METHODS:
            return any(user.has_perm(kind.view_perm) for kind in BIN_KINDS.values())
        return user.has_perm(BIN_KINDS[view.kwargs["kind"]].delete_perm)


def _deleted_object(request, kind: str, pk):
    obj = BIN_KINDS[kind].deleted_visible_to(request.user).filter(pk=pk).first()
    if obj is None:
        raise Http404
    return obj


class RecycleBinListApi(generics.ListAPIView):
    """Deleted vehicles and devices of the caller's subtree, most recently deleted first."""

    permission_classes = [RecycleBinPermission]
    serializer_class = RecycleBinItemSerializer
    filter_backends: list = []

    def get_queryset(self):
        user = self.request.user
        wanted = self.request.query_params.get("kind")
        if wanted and wanted not in BIN_KINDS:
            raise exceptions.ValidationError({"kind": [_("Choose vehicle or device.")]})
        parts = [
            self._rows(key, kind)
            for key, kind in BIN_KINDS.items()
            if (not wanted or key == wanted) and user.has_perm(kind.view_perm)
        ]
        if not parts:  # asked for a kind they may not see
            return self._rows("vehicle", BIN_KINDS["vehicle"]).none()
        rows = parts[0].union(*parts[1:], all=True) if len(parts) > 1 else parts[0]
        return rows.order_by("-bin_deleted_at", "bin_kind", "-id")

    def _rows(self, key: str, kind: BinKind) -> QuerySet:
        # One SELECT per kind with the same columns, UNIONed: one count and one page query.
        return (
            kind.deleted_visible_to(self.request.user)
            .annotate(
                # Cast: PostgreSQL needs a typed column on both sides of the UNION.
                bin_kind=Cast(Value(key), output_field=CharField()),
                bin_label=F(kind.label_field),
                bin_customer=F("customer_id"),
                bin_customer_name=F("customer__name"),
                bin_deleted_at=F("deleted_at"),
                bin_deleted_by=F("deleted_by__username"),
            )
            .values(
                "id",
                "bin_kind",
                "bin_label",
                "bin_customer",
                "bin_customer_name",
                "bin_deleted_at",
                "bin_deleted_by",
            )
            .order_by()  # the union is ordered as a whole
        )

    @extend_schema(
        parameters=[
            OpenApiParameter(
                "kind", OpenApiTypes.STR, enum=list(BIN_KINDS), description=_("Only this kind.")
            )
        ]
    )
    def get(self, request, *args, **kwargs):
        return super().get(request, *args, **kwargs)


class RecycleBinRestoreApi(APIView):
    permission_classes = [RecycleBinPermission]

    @extend_schema(
        request=None,
        parameters=[_KIND_PARAM, _ID_PARAM],
        responses={200: RestoreOutputSerializer, 409: OpenApiTypes.OBJECT},
    )
    def post(self, request, kind: str, pk: str):
        """Bring a deleted vehicle or device back, with the devices / vehicle it was mounted
        on when possible (`skipped` says what could not be put back)."""
        skipped = BIN_KINDS[kind].restore(_deleted_object(request, kind, pk), request.user)
        return Response({"restored": True, "skipped": skipped})


class RecycleBinItemApi(APIView):
    permission_classes = [RecycleBinPermission]

    @extend_schema(parameters=[_KIND_PARAM, _ID_PARAM], responses={204: None})
    def delete(self, request, kind: str, pk: str):
        """Erase a deleted vehicle or device for good (platform administrators only)."""
        BIN_KINDS[kind].hard_delete(_deleted_object(request, kind, pk), request.user)
        return Response(status=status.HTTP_204_NO_CONTENT)
