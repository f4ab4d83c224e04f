"""The field workers' mobile API (FEATURES.md S2, K1–K4), under `/api/v1/mobile/`.

Token auth (`POST /api/v1/auth/token/`), then: `me/`, `location/` (periodic position and
on-duty flag), `orders/` (my orders) and per order `accept/`, `decline/`, `start/`,
`complete/`, `fail/`, `notes/`, `photos/` (multipart) and `vehicle-live/` (repossession: where
the car is and where it stood still), `vehicles/?plate=` / `?vin=` (lookup within what the
worker may see) and `annotations/` (a place at the worker's position). New assignments arrive on
the WebSocket `/ws/live/?token=...` as `{"type": "task", "event": "assigned", ...}` items.

Every view is throttled per user (`TASKS_MOBILE_THROTTLE_RATE`, default 240/min: a phone
reporting its position every 15 s uses 4). One view per operation; each validates, calls one
service or selector, serializes.
"""

from __future__ import annotations

from django.conf import settings
from django.http import Http404
from django.utils.translation import gettext_lazy as _
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import exceptions, permissions, status
from rest_framework.parsers import FormParser, MultiPartParser
from rest_framework.response import Response
from rest_framework.throttling import UserRateThrottle
from rest_framework.views import APIView

from carloan.api import Pagination
from carloan.identifiers import normalize_plate, normalize_vin
from tasks import services
from tasks.completion import Completion
from tasks.kinds import KINDS
from tasks.models import WorkOrder
from tasks.selectors import my_work_orders, presence_of, vehicle_live, work_orders_visible_to
from tasks.serializers import (
    MobileAnnotationInputSerializer,
    MobileAnnotationOutputSerializer,
    MobileMeOutputSerializer,
    MobileOrderDetailSerializer,
    MobileVehicleOutputSerializer,
    TaskCompleteInputSerializer,
    TaskFailInputSerializer,
    TaskLocationInputSerializer,
    TaskNoteInputSerializer,
    TaskPhotoInputSerializer,
    TaskPositionInputSerializer,
    TaskPresenceOutputSerializer,
    TaskReasonInputSerializer,
    TaskRecordOutputSerializer,
    VehicleLiveOutputSerializer,
    WorkOrderOutputSerializer,
    WorkOrderPageSerializer,
)

TAG = ["mobile"]


class MobileThrottle(UserRateThrottle):
    scope = "mobile"

    def get_rate(self):
        return getattr(settings, "TASKS_MOBILE_THROTTLE_RATE", "240/min")


def has_perms(*perms: str) -> type[permissions.BasePermission]:
    class HasPerms(permissions.BasePermission):
        def has_permission(self, request, view):
            user = request.user
            return bool(user and user.is_authenticated and user.has_perms(perms))

    HasPerms.__name__ = "HasPerms_" + "_".join(p.replace(".", "_") for p in perms)
    return HasPerms


WORKER = has_perms("tasks.work_workorder")


class MobileApi(APIView):
    permission_classes = [WORKER]
    throttle_classes = [MobileThrottle]

    def valid(self, serializer_class, data=None):
        serializer = serializer_class(data=self.request.data if data is None else data)
        serializer.is_valid(raise_exception=True)
        return serializer

    def my_order(self, pk) -> WorkOrder:
        """One of the caller's orders; anyone else's is a 404 (not confirmed to exist)."""
        order = work_orders_visible_to(self.request.user).filter(
            pk=pk, assignee_id=self.request.user.pk
        )
        order = order.first()
        if order is None:
            raise Http404
        return order

    def detail(self, order: WorkOrder) -> dict:
        return MobileOrderDetailSerializer(self.my_order(order.pk)).data


# --- Me and my position ------------------------------------------------------------------------
class MobileMeApi(MobileApi):
    @extend_schema(tags=TAG, responses=MobileMeOutputSerializer)
    def get(self, request):
        """Who I am, my last reported position and on-duty flag, how many orders I have open."""
        user = request.user
        customer = user.customer
        return Response(
            MobileMeOutputSerializer(
                {
                    "id": user.pk,
                    "username": user.username,
                    "name": user.get_full_name() or user.username,
                    "kind": user.kind,
                    "kind_display": user.get_kind_display(),
                    "customer": customer,
                    "presence": TaskPresenceOutputSerializer.of(presence_of(user)),
                    "open_orders": my_work_orders(user).count(),
                    "order_kinds": [k for k, v in KINDS.items() if user.kind in v.worker_kinds],
                }
            ).data
        )


class MobileLocationApi(MobileApi):
    @extend_schema(
        tags=TAG, request=TaskLocationInputSerializer, responses={200: TaskPresenceOutputSerializer}
    )
    def post(self, request):
        """The app's periodic report: my position (with its fix time) and / or whether I take
        new orders (`on_duty`), and the phone's battery."""
        serializer = self.valid(TaskLocationInputSerializer)
        data = serializer.validated_data
        presence = services.worker_location_report(
            user=request.user,
            here=serializer.here(),
            at=data.get("at"),
            on_duty=data.get("on_duty"),
            battery_pct=data.get("battery_pct"),
        )
        return Response(TaskPresenceOutputSerializer.of(presence))


# --- My orders ---------------------------------------------------------------------------------
class MyOrderListApi(MobileApi):
    @extend_schema(
        tags=TAG,
        parameters=[
            OpenApiParameter(
                "status",
                str,
                enum=["open", "closed", "all"],
                description=_("open (default): still to do; closed: done, failed, ..."),
            ),
            OpenApiParameter("kind", str, enum=list(KINDS)),
        ],
        responses=WorkOrderPageSerializer,
        operation_id="mobile_orders_list",
    )
    def get(self, request):
        """My orders: open ones by due time, soonest first."""
        wanted = request.query_params.get("status", "open")
        if wanted not in ("open", "closed", "all"):
            raise exceptions.ValidationError({"status": [_("open, closed or all.")]})
        qs = my_work_orders(request.user, status=wanted)
        kind = request.query_params.get("kind")
        if kind:
            if kind not in KINDS:
                raise exceptions.ValidationError({"kind": [_("Unknown kind.")]})
            qs = qs.filter(kind=kind)
        paginator = Pagination()
        page = paginator.paginate_queryset(qs, request, view=self)
        return paginator.get_paginated_response(WorkOrderOutputSerializer(page, many=True).data)


class MyOrderDetailApi(MobileApi):
    @extend_schema(tags=TAG, responses=MobileOrderDetailSerializer)
    def get(self, request, pk: int):
        """One of my orders with its records and devices."""
        return Response(MobileOrderDetailSerializer(self.my_order(pk)).data)


class MyOrderAcceptApi(MobileApi):
    @extend_schema(
        tags=TAG,
        request=TaskPositionInputSerializer,
        responses={200: MobileOrderDetailSerializer, 400: OpenApiTypes.OBJECT},
    )
    def post(self, request, pk: int):
        """assigned -> accepted."""
        here = self.valid(TaskPositionInputSerializer).here()
        order = services.work_order_accept(order=self.my_order(pk), by=request.user, here=here)
        return Response(self.detail(order))


class MyOrderDeclineApi(MobileApi):
    @extend_schema(
        tags=TAG,
        request=TaskReasonInputSerializer,
        responses={200: WorkOrderOutputSerializer, 409: OpenApiTypes.OBJECT},
    )
    def post(self, request, pk: int):
        """Give an order I have not accepted back to the back office, saying why. It is no
        longer mine afterwards (the answer is the order as it is now)."""
        serializer = self.valid(TaskReasonInputSerializer)
        order = services.work_order_decline(
            order=self.my_order(pk),
            by=request.user,
            reason=serializer.validated_data["reason"],
            here=serializer.here(),
        )
        return Response(WorkOrderOutputSerializer(order).data)


class MyOrderStartApi(MobileApi):
    @extend_schema(
        tags=TAG,
        request=TaskPositionInputSerializer,
        responses={200: MobileOrderDetailSerializer, 400: OpenApiTypes.OBJECT},
    )
    def post(self, request, pk: int):
        """accepted -> in progress (I am at the car)."""
        here = self.valid(TaskPositionInputSerializer).here()
        order = services.work_order_start(order=self.my_order(pk), by=request.user, here=here)
        return Response(self.detail(order))


class MyOrderCompleteApi(MobileApi):
    @extend_schema(
        tags=TAG,
        request=TaskCompleteInputSerializer,
        responses={
            200: MobileOrderDetailSerializer,
            400: OpenApiTypes.OBJECT,
            409: OpenApiTypes.OBJECT,
        },
    )
    def post(self, request, pk: int):
        """in progress -> done. Install: `imeis` (scanned) are bound to the car and marked
        installed. Repair: `removed_imeis` are unbound (faulty), `imeis` bound. Covert visit:
        `car_found` and `owner_found`. Repossession: the car is recovered."""
        serializer = self.valid(TaskCompleteInputSerializer)
        data = serializer.validated_data
        order = services.work_order_complete(
            order=self.my_order(pk),
            by=request.user,
            data=Completion(
                imeis=tuple(data["imeis"]),
                removed_imeis=tuple(data["removed_imeis"]),
                car_found=data["car_found"],
                owner_found=data["owner_found"],
            ),
            note=data["note"],
            here=serializer.here(),
        )
        return Response(self.detail(order))


class MyOrderFailApi(MobileApi):
    @extend_schema(
        tags=TAG,
        request=TaskFailInputSerializer,
        responses={200: MobileOrderDetailSerializer, 400: OpenApiTypes.OBJECT},
    )
    def post(self, request, pk: int):
        """in progress -> failed, saying why."""
        serializer = self.valid(TaskFailInputSerializer)
        data = serializer.validated_data
        order = services.work_order_fail(
            order=self.my_order(pk),
            by=request.user,
            reason=data["reason"],
            car_found=data["car_found"],
            owner_found=data["owner_found"],
            here=serializer.here(),
        )
        return Response(self.detail(order))


class MyOrderNoteApi(MobileApi):
    @extend_schema(
        tags=TAG,
        request=TaskNoteInputSerializer,
        responses={201: TaskRecordOutputSerializer, 409: OpenApiTypes.OBJECT},
    )
    def post(self, request, pk: int):
        serializer = self.valid(TaskNoteInputSerializer)
        record = services.work_order_note_add(
            order=self.my_order(pk),
            by=request.user,
            note=serializer.validated_data["note"],
            here=serializer.here(),
        )
        return Response(TaskRecordOutputSerializer(record).data, status=status.HTTP_201_CREATED)


class MyOrderPhotoApi(MobileApi):
    parser_classes = [MultiPartParser, FormParser]

    @extend_schema(
        tags=TAG,
        request={"multipart/form-data": TaskPhotoInputSerializer},
        responses={201: TaskRecordOutputSerializer, 400: OpenApiTypes.OBJECT},
    )
    def post(self, request, pk: int):
        """A photo (JPEG, PNG or WebP, checked by content, at most TASKS_PHOTO_MAX_BYTES,
        default 10 MB) with an optional caption and my position."""
        order = self.my_order(pk)
        serializer = self.valid(TaskPhotoInputSerializer)
        data = serializer.validated_data
        record = services.work_order_photo_add(
            order=order,
            by=request.user,
            upload=data["photo"],
            caption=data["caption"],
            here=serializer.here(),
        )
        return Response(TaskRecordOutputSerializer(record).data, status=status.HTTP_201_CREATED)


class MyOrderVehicleLiveApi(MobileApi):
    @extend_schema(tags=TAG, responses={200: VehicleLiveOutputSerializer, 404: OpenApiTypes.OBJECT})
    def get(self, request, pk: int):
        """Repossession: where the car is now and where it stood still (>= 10 minutes within
        100 m) over the last 7 days, latest first. Only while the order is open."""
        order = self.my_order(pk)
        if not KINDS[order.kind].shows_vehicle_live or not order.is_open:
            raise exceptions.NotFound(_("This order has no live view of its vehicle."))
        live = vehicle_live(order.vehicle)
        return Response(
            VehicleLiveOutputSerializer(
                {
                    "vehicle": order.vehicle,
                    "position": live.position,
                    "stops": [
                        {
                            "start": s.start,
                            "end": s.end,
                            "minutes": int(s.duration.total_seconds() // 60),
                            "lat": round(s.lat, 7),
                            "lon": round(s.lon, 7),
                            "fixes": s.fixes,
                        }
                        for s in live.stops
                    ],
                }
            ).data
        )


# --- Vehicles and annotations ------------------------------------------------------------------
class MobileVehicleLookupApi(MobileApi):
    permission_classes = [has_perms("vehicles.view_vehicle")]

    @extend_schema(
        tags=TAG,
        parameters=[
            OpenApiParameter("plate", str, description=_("The whole plate.")),
            OpenApiParameter("vin", str, description=_("The whole VIN.")),
        ],
        responses=MobileVehicleOutputSerializer(many=True),
    )
    def get(self, request):
        """Find a vehicle I may see by its whole plate or VIN (an empty list otherwise). The
        borrower is shown to salesmen and repossession teams only."""
        from vehicles.selectors import vehicles_visible_to

        plate, vin = request.query_params.get("plate"), request.query_params.get("vin")
        if bool(plate) == bool(vin):
            raise exceptions.ValidationError(_("Give plate or vin (one of them)."))
        if len(plate or vin) > 40:
            raise exceptions.ValidationError(_("Too long for a plate or a VIN."))
        qs = vehicles_visible_to(request.user).select_related("customer")
        qs = qs.filter(plate=normalize_plate(plate)) if plate else qs.filter(vin=normalize_vin(vin))
        meets_borrower = request.user.kind in ("salesman", "recovery")
        rows = []
        for vehicle in qs[:5]:
            rows.append(
                {
                    "id": vehicle.pk,
                    "plate": vehicle.plate,
                    "vin": vehicle.vin,
                    "brand": vehicle.brand,
                    "model_name": vehicle.model_name,
                    "colour": vehicle.colour,
                    "customer": vehicle.customer,
                    "imeis": list(
                        vehicle.bindings.filter(unbound_at__isnull=True).values_list(
                            "device__identifier", flat=True
                        )
                    ),
                    "borrower_name": vehicle.borrower_name if meets_borrower else None,
                    "borrower_phone": vehicle.borrower_phone if meets_borrower else None,
                }
            )
        return Response(MobileVehicleOutputSerializer(rows, many=True).data)


class MobileAnnotationApi(MobileApi):
    permission_classes = [has_perms("alarms.add_annotation")]

    @extend_schema(
        tags=TAG,
        request=MobileAnnotationInputSerializer,
        responses={201: MobileAnnotationOutputSerializer, 400: OpenApiTypes.OBJECT},
    )
    def post(self, request):
        """An annotation (a named place with a radius) where I stand, owned by my customer."""
        from alarms.services.places import annotation_create

        serializer = self.valid(MobileAnnotationInputSerializer)
        data = serializer.validated_data
        customer = request.user.customer
        if customer is None:
            raise exceptions.ValidationError(_("You belong to no customer."))
        note = annotation_create(
            customer=customer,
            name=data["name"],
            lat=data["lat"],
            lon=data["lon"],
            radius_m=data["radius_m"],
            shared=data["shared"],
            note=data["note"],
            by=request.user,
        )
        return Response(
            MobileAnnotationOutputSerializer(
                {
                    "id": note.pk,
                    "name": note.name,
                    "lat": round(note.point.y, 7),
                    "lon": round(note.point.x, 7),
                    "radius_m": note.radius_m,
                    "shared": note.shared,
                    "note": note.note,
                    "customer": customer,
                }
            ).data,
            status=status.HTTP_201_CREATED,
        )
