"""REST API of accounts: token login, the caller's profile, customers.

Also the small pieces of API plumbing every app's views share for visibility: a permission class
for extra actions and the lookup of an object the caller wants to change.
"""

from __future__ import annotations

from django.contrib.auth.models import AnonymousUser
from django.db.models import QuerySet
from django.http import Http404
from django.utils.translation import gettext_lazy as _
from django_filters import rest_framework as filters
from drf_spectacular.utils import extend_schema, extend_schema_field
from rest_framework import exceptions, serializers, status, viewsets
from rest_framework.authtoken.models import Token
from rest_framework.authtoken.serializers import AuthTokenSerializer
from rest_framework.permissions import AllowAny, IsAuthenticated
from rest_framework.response import Response
from rest_framework.throttling import ScopedRateThrottle
from rest_framework.views import APIView

from accounts.models import Customer
from accounts.selectors import branding_for_user, customers_visible_to
from accounts.services import customer_create, customer_update, user_login_record
from carloan.api import ModelPermissions


# --- Shared plumbing --------------------------------------------------------------------------
class ActionPermissions(ModelPermissions):
    """Model permissions, except that a viewset's extra actions name their own:
    `action_perms = {"move": ["devices.change_device"]}`. (The HTTP method alone cannot tell
    "add a binding" from "end a binding": both are POSTs.)"""

    def has_permission(self, request, view):
        perms = getattr(view, "action_perms", {}).get(getattr(view, "action", None))
        if perms is None:
            return super().has_permission(request, view)
        return bool(
            request.user and request.user.is_authenticated and request.user.has_perms(perms)
        )


def object_for_change(visible: QuerySet, changeable: QuerySet, pk):
    """The object `pk` the caller wants to change. Not visible at all: 404 (another tenant's ids
    are not confirmed to exist). Visible only through a read-only share: 403."""
    obj = changeable.filter(pk=pk).first()
    if obj is not None:
        return obj
    if visible.filter(pk=pk).exists():
        raise exceptions.PermissionDenied(_("This object is shared with you read-only."))
    raise Http404


def request_user(serializer):
    """The caller, for serializers that offer only visible choices. Anonymous when there is no
    request (schema generation instantiates serializers without context): no choices then."""
    request = serializer.context.get("request")
    return request.user if request is not None else AnonymousUser()


class IdNameSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    code = serializers.CharField()
    name = serializers.CharField()


# --- Token login ------------------------------------------------------------------------------
class TokenOutputSerializer(serializers.Serializer):
    token = serializers.CharField()


class TokenObtainApi(APIView):
    """Exchange a username and password for the API token (`Authorization: Token <t>`)."""

    authentication_classes: list = []
    permission_classes = [AllowAny]
    throttle_classes = [ScopedRateThrottle]
    throttle_scope = "login"

    @extend_schema(request=AuthTokenSerializer, responses=TokenOutputSerializer, auth=[])
    def post(self, request):
        # authenticate() inside the serializer fires user_login_failed on a bad password, which
        # the accounts receiver records as a failed login.
        serializer = AuthTokenSerializer(data=request.data, context={"request": request})
        serializer.is_valid(raise_exception=True)
        user = serializer.validated_data["user"]
        token, _created = Token.objects.get_or_create(user=user)
        user_login_record(user=user, request=request)
        return Response({"token": token.key})


# --- The caller -------------------------------------------------------------------------------
class BrandingSerializer(serializers.Serializer):
    title = serializers.CharField()
    logo_url = serializers.CharField(allow_null=True)


class MeOutputSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    username = serializers.CharField()
    name = serializers.CharField(source="get_full_name")
    kind = serializers.CharField()
    phone = serializers.CharField()
    customer = IdNameSerializer(allow_null=True)
    role = serializers.CharField(source="role.name", allow_null=True, default=None)
    permissions = serializers.SerializerMethodField()
    branding = serializers.SerializerMethodField()

    def get_permissions(self, user) -> list[str]:
        return sorted(user.get_all_permissions())

    @extend_schema_field(BrandingSerializer)
    def get_branding(self, user) -> dict:
        branding = branding_for_user(user)
        return {"title": branding.title, "logo_url": branding.logo_url}


class MeApi(APIView):
    """Who the caller is: profile, customer, role, function permissions and branding."""

    permission_classes = [IsAuthenticated]

    @extend_schema(responses=MeOutputSerializer)
    def get(self, request):
        return Response(MeOutputSerializer(request.user).data)


# --- Customers --------------------------------------------------------------------------------
class CustomerFilter(filters.FilterSet):
    code = filters.CharFilter(field_name="code", help_text=_("Exact customer code."))
    parent = filters.NumberFilter(
        field_name="parent",
        min_value=1,
        max_value=2**63 - 1,
        help_text=_("Id of the parent customer."),
    )

    class Meta:
        model = Customer
        fields = ["code", "parent"]


class CustomerOutputSerializer(serializers.ModelSerializer):
    class Meta:
        model = Customer
        fields = [
            "id",
            "code",
            "name",
            "parent",
            "level",
            "contact_name",
            "contact_phone",
            "brand_title",
            "is_active",
        ]
        read_only_fields = fields


class CustomerInputSerializer(serializers.ModelSerializer):
    class Meta:
        model = Customer
        fields = [
            "code",
            "name",
            "parent",
            "contact_name",
            "contact_phone",
            "brand_title",
            "is_active",
        ]

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        # The parent is chosen among the caller's customers: others read as "does not exist".
        self.fields["parent"].queryset = customers_visible_to(request_user(self))


class CustomerViewSet(viewsets.GenericViewSet):
    """Customers of the caller's subtree. Creating and editing go through the account services."""

    filterset_class = CustomerFilter
    lookup_value_regex = r"\d+"

    def get_queryset(self):
        return customers_visible_to(self.request.user).order_by("tree_id", "lft")

    def get_serializer_class(self):
        if self.action in ("create", "update", "partial_update"):
            return CustomerInputSerializer
        return CustomerOutputSerializer

    @extend_schema(responses=CustomerOutputSerializer(many=True))
    def list(self, request):
        page = self.paginate_queryset(self.filter_queryset(self.get_queryset()))
        return self.get_paginated_response(CustomerOutputSerializer(page, many=True).data)

    @extend_schema(responses=CustomerOutputSerializer)
    def retrieve(self, request, pk=None):
        return Response(CustomerOutputSerializer(self.get_object()).data)

    @extend_schema(request=CustomerInputSerializer, responses={201: CustomerOutputSerializer})
    def create(self, request):
        serializer = self.get_serializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = dict(serializer.validated_data)
        customer = customer_create(by=request.user, parent=data.pop("parent", None), **data)
        return Response(CustomerOutputSerializer(customer).data, status=status.HTTP_201_CREATED)

    @extend_schema(request=CustomerInputSerializer, responses=CustomerOutputSerializer)
    def update(self, request, pk=None, partial=False):
        customer = self.get_object()
        serializer = self.get_serializer(customer, data=request.data, partial=partial)
        serializer.is_valid(raise_exception=True)
        customer = customer_update(customer=customer, by=request.user, **serializer.validated_data)
        return Response(CustomerOutputSerializer(customer).data)

    @extend_schema(request=CustomerInputSerializer, responses=CustomerOutputSerializer)
    def partial_update(self, request, pk=None):
        return self.update(request, pk=pk, partial=True)
