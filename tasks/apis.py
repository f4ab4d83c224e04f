"""REST API of work orders for the back office (`/api/v1/tasks/`) and the photo download shared
with the mobile app. The field workers' own API is `tasks.mobile`."""

from __future__ import annotations

from django import forms
from django.db.models import Q
from django.http import FileResponse, Http404
from django.utils.translation import gettext_lazy as _
from django_filters import rest_framework as filters
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import exceptions, permissions, status, viewsets
from rest_framework.decorators import action
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.apis import ActionPermissions
from accounts.selectors import users_visible_to
from tasks import services
from tasks.kinds import kind_choices
from tasks.models import WorkOrder
from tasks.selectors import records_visible_to, work_orders_visible_to, workers_suggested_for
from tasks.serializers import (
    TaskAssignInputSerializer,
    TaskCancelInputSerializer,
    TaskSuggestionOutputSerializer,
    TaskVerifyInputSerializer,
    WorkOrderCreateInputSerializer,
    WorkOrderDetailOutputSerializer,
    WorkOrderOutputSerializer,
    WorkOrderUpdateInputSerializer,
)
from vehicles.selectors import vehicles_visible_to

MAX_ID = 2**63 - 1  # the largest 64-bit primary key
STATUS_FILTER_CHOICES = [("open", _("open (not done yet)")), *WorkOrder.Status.choices]


class IdFilter(filters.NumberFilter):
    """A row id: a whole number a database column holds. A bare NumberFilter passes 1e30 or
    2**70 on to SQLite, which cannot bind it (OverflowError, a 500); this answers 400."""

    field_class = forms.IntegerField

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("min_value", 1)
        kwargs.setdefault("max_value", MAX_ID)
        super().__init__(*args, **kwargs)


class WorkOrderFilter(filters.FilterSet):
    kind = filters.ChoiceFilter(choices=kind_choices, help_text=_("Kind of work."))
    status = filters.ChoiceFilter(
        choices=STATUS_FILTER_CHOICES,
        method="filter_status",
        help_text=_("A status, or 'open' for every status before done."),
    )
    assignee = IdFilter(field_name="assignee", help_text=_("User id."))
    vehicle = IdFilter(field_name="vehicle", help_text=_("Vehicle id."))
    customer = IdFilter(field_name="customer", help_text=_("Customer id."))

    class Meta:
        model = WorkOrder
        fields = ["kind", "status", "assignee", "vehicle", "customer"]

    def filter_status(self, queryset, name, value):
        if value == "open":
            return queryset.filter(status__in=WorkOrder.OPEN)
        return queryset.filter(status=value)


def _visible_vehicle(user, pk: int):
    vehicle = vehicles_visible_to(user).filter(pk=pk).first()
    if vehicle is None:
        raise exceptions.ValidationError({"vehicle": [_("No such vehicle.")]})
    return vehicle


def _visible_user(user, pk: int, field: str = "assignee"):
    person = users_visible_to(user).filter(pk=pk).first()
    if person is None:
        raise exceptions.ValidationError({field: [_("No such user.")]})
    return person


class WorkOrderViewSet(viewsets.GenericViewSet):
    """Work orders of the caller's subtree (a field worker: their own). POST creates one (and
    assigns it when `assignee` is given); `assign`, `cancel` and `verify` move it; the status
    filter takes `open` for everything not done yet."""

    filterset_class = WorkOrderFilter
    lookup_value_regex = r"\d+"
    permission_classes = [ActionPermissions]
    action_perms = {
        "assign": ["tasks.dispatch_workorder"],
        "cancel": ["tasks.dispatch_workorder"],
        "suggestions": ["tasks.dispatch_workorder"],
        "verify": ["tasks.verify_workorder"],
    }

    def get_queryset(self):
        return work_orders_visible_to(self.request.user).order_by("-created_at", "-id")

    def get_serializer_class(self):
        return {
            "create": WorkOrderCreateInputSerializer,
            "partial_update": WorkOrderUpdateInputSerializer,
            "assign": TaskAssignInputSerializer,
            "cancel": TaskCancelInputSerializer,
            "verify": TaskVerifyInputSerializer,
            "retrieve": WorkOrderDetailOutputSerializer,
        }.get(self.action, WorkOrderOutputSerializer)

    def _valid(self, serializer_class, data) -> dict:
        serializer = serializer_class(data=data)
        serializer.is_valid(raise_exception=True)
        return dict(serializer.validated_data)

    def _detail(self, order) -> dict:
        return WorkOrderDetailOutputSerializer(self.get_queryset().get(pk=order.pk)).data

    @extend_schema(responses=WorkOrderOutputSerializer(many=True))
    def list(self, request):
        page = self.paginate_queryset(self.filter_queryset(self.get_queryset()))
        return self.get_paginated_response(WorkOrderOutputSerializer(page, many=True).data)

    @extend_schema(responses=WorkOrderDetailOutputSerializer)
    def retrieve(self, request, pk=None):
        return Response(WorkOrderDetailOutputSerializer(self.get_object()).data)

    @extend_schema(
        request=WorkOrderCreateInputSerializer,
        responses={201: WorkOrderDetailOutputSerializer, 409: OpenApiTypes.OBJECT},
    )
    def create(self, request):
        data = self._valid(WorkOrderCreateInputSerializer, request.data)
        data["vehicle"] = _visible_vehicle(request.user, data["vehicle"])
        if data.get("assignee") is not None:
            data["assignee"] = _visible_user(request.user, data["assignee"])
        order = services.work_order_create(by=request.user, **data)
        return Response(self._detail(order), status=status.HTTP_201_CREATED)

    @extend_schema(
        request=WorkOrderUpdateInputSerializer,
        responses={200: WorkOrderDetailOutputSerializer, 409: OpenApiTypes.OBJECT},
    )
    def partial_update(self, request, pk=None):
        order = self.get_object()
        data = self._valid(WorkOrderUpdateInputSerializer, request.data)
        services.work_order_update(order=order, by=request.user, **data)
        return Response(self._detail(order))

    @extend_schema(
        request=TaskAssignInputSerializer,
        responses={200: WorkOrderDetailOutputSerializer, 400: OpenApiTypes.OBJECT},
    )
    @action(detail=True, methods=["post"])
    def assign(self, request, pk=None):
        """Give the order to a field worker (or to another one): they get a push."""
        order = self.get_object()
        data = self._valid(TaskAssignInputSerializer, request.data)
        assignee = _visible_user(request.user, data["assignee"])
        services.work_order_assign(order=order, assignee=assignee, by=request.user)
        return Response(self._detail(order))

    @extend_schema(request=TaskCancelInputSerializer, responses=WorkOrderDetailOutputSerializer)
    @action(detail=True, methods=["post"])
    def cancel(self, request, pk=None):
        order = self.get_object()
        data = self._valid(TaskCancelInputSerializer, request.data)
        services.work_order_cancel(order=order, by=request.user, reason=data["reason"])
        return Response(self._detail(order))

    @extend_schema(request=TaskVerifyInputSerializer, responses=WorkOrderDetailOutputSerializer)
    @action(detail=True, methods=["post"])
    def verify(self, request, pk=None):
        """The back office checked a done or failed order: close it."""
        order = self.get_object()
        data = self._valid(TaskVerifyInputSerializer, request.data)
        services.work_order_verify(order=order, by=request.user, note=data["note"])
        return Response(self._detail(order))

    @extend_schema(responses=TaskSuggestionOutputSerializer(many=True))
    # A short list, not a page (and the schema must not announce one).
    @action(detail=True, methods=["get"], pagination_class=None)
    def suggestions(self, request, pk=None):
        """The nearest available field workers for this order (on duty, with a recent position,
        of a kind the order may go to), nearest first."""
        order = self.get_object()
        return Response(TaskSuggestionOutputSerializer.rows(workers_suggested_for(order)))


class MayReadOrders(permissions.BasePermission):
    """Back office (`view_workorder`) or field worker (`work_workorder`)."""

    def has_permission(self, request, view):
        user = request.user
        return bool(
            user
            and user.is_authenticated
            and (user.has_perm("tasks.view_workorder") or user.has_perm("tasks.work_workorder"))
        )


class RecordPhotoApi(APIView):
    """The photo of a work-order record, for whoever may see the order (never a public URL:
    photos show borrowers' cars and addresses)."""

    permission_classes = [MayReadOrders]

    @extend_schema(
        responses={
            (200, "image/*"): OpenApiResponse(OpenApiTypes.BINARY, description=_("The photo.")),
            404: OpenApiTypes.OBJECT,
        }
    )
    def get(self, request, pk: int):
        record = records_visible_to(request.user).filter(~Q(photo=""), pk=pk).first()
        if record is None:
            raise Http404
        try:
            handle = record.photo.open("rb")
        except FileNotFoundError as exc:
            raise Http404 from exc
        response = FileResponse(handle, content_type=record.photo_type or "image/jpeg")
        response["Cache-Control"] = "private, max-age=3600"
        response["X-Content-Type-Options"] = "nosniff"
        return response
