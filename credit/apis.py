"""REST API of credit decisions (FEATURES.md C7, issue 5 item 8).

    POST /api/v1/credit/applications/               submit: answers synchronously with the
                                                    decision, score, band, reasons, quota, steps
    GET  /api/v1/credit/applications/               list (scoped; ?status= ?dealer= ?since= ...)
    GET  /api/v1/credit/applications/{id}/          detail with every step
    POST /api/v1/credit/applications/{id}/review/   {"decision": "approve"|"reject", "reason"}
    POST /api/v1/credit/applications/{id}/loan/     the loan of an approved application
    POST /api/v1/credit/applications/{id}/outcome/  {"outcome": "good"|"bad"|"unknown"}

Rights: `credit.view_application` to read, `credit.add_application` to submit,
`credit.review_application` to decide a review, `credit.add_loan` for loans,
`credit.change_application` for outcomes. Another tenant's id is a 404.
"""

from __future__ import annotations

import copy

from django.utils.translation import gettext_lazy as _
from django_filters import rest_framework as filters
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema, extend_schema_field
from rest_framework import serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.response import Response

from accounts.apis import ActionPermissions, request_user
from accounts.selectors import customers_visible_to, home_customer
from credit import services
from credit.models import Application, Dealer, DecisionStep, Loan, Product
from credit.selectors import (
    application_detail,
    applications_for_list,
    customer_with_bounds,
    dealers_visible_to,
    in_subtree_of,
    products_visible_to,
    related_to,
    with_owner,
)

DECISION_OF_STATUS = {
    Application.Status.SUBMITTED: None,
    Application.Status.APPROVED: "approve",
    Application.Status.REVIEW: "review",
    Application.Status.REJECTED: "reject",
    Application.Status.LOAN_CREATED: "approve",
}


# --- Input ----------------------------------------------------------------------------------
@extend_schema_field(OpenApiTypes.INT)
class _VisibleField(serializers.PrimaryKeyRelatedField):
    """A related id chosen among what the caller may see (the selector gives the choices).

    A submitted id is read by primary key with its owner's tree columns (`fetch`) and checked in
    Python (`visible(user, owner)`, the selector's rule on the bounds in hand): the same answer
    as looking it up in the selector's queryset, without compiling the visibility subquery on
    every decision (this runs three times per POST on the 50 ms path)."""

    def __init__(self, *, selector, fetch, visible, **kwargs):
        self.selector = selector
        self.fetch = fetch
        self.visible = visible
        super().__init__(**kwargs)

    def get_queryset(self):
        return self.selector(request_user(self))

    def to_internal_value(self, data):
        if isinstance(data, bool):
            self.fail("incorrect_type", data_type=type(data).__name__)
        if isinstance(data, float) and not data.is_integer():
            self.fail("incorrect_type", data_type=type(data).__name__)
        try:
            pk = int(data)
        except (TypeError, ValueError, OverflowError):
            self.fail("incorrect_type", data_type=type(data).__name__)
        # Out of the id column's range: no such row (the SQL below must not overflow it).
        obj = self.fetch(pk) if 0 < pk < 2**63 else None
        if obj is None or not self.visible(request_user(self), obj):
            self.fail("does_not_exist", pk_value=data)
        return obj


def _fetch_customer(pk: int):
    return customer_with_bounds(pk)


def _fetch_product(pk: int):
    return with_owner(Product, pk)


def _fetch_dealer(pk: int):
    return with_owner(Dealer, pk)


def _owner_related(user, obj) -> bool:
    return related_to(user, obj.customer)


class ApplicantInputSerializer(serializers.Serializer):
    name = serializers.CharField(max_length=50)
    id_number = serializers.CharField(max_length=20, help_text=_("Resident ID number (GB 11643)."))
    phone = serializers.CharField(max_length=20, help_text=_("Mainland mobile number."))
    address = serializers.CharField(max_length=300, required=False, allow_blank=True)
    employer = serializers.CharField(max_length=200, required=False, allow_blank=True)
    monthly_income = serializers.DecimalField(
        max_digits=14, decimal_places=2, min_value=0, help_text=_("Monthly income, yuan.")
    )


class ApplicationInputSerializer(serializers.Serializer):
    customer = _VisibleField(
        selector=customers_visible_to,
        fetch=_fetch_customer,
        visible=in_subtree_of,
        required=False,
        help_text=_("Customer (branch) the application belongs to; default: the caller's own."),
    )
    product = _VisibleField(
        selector=products_visible_to, fetch=_fetch_product, visible=_owner_related
    )
    dealer = _VisibleField(
        selector=dealers_visible_to,
        fetch=_fetch_dealer,
        visible=_owner_related,
        required=False,
        allow_null=True,
    )
    applicant = ApplicantInputSerializer()
    used_car = serializers.BooleanField(default=False)
    car_price = serializers.DecimalField(max_digits=14, decimal_places=2, min_value=0)
    amount = serializers.DecimalField(max_digits=14, decimal_places=2, min_value=0)
    term_months = serializers.IntegerField(min_value=1, max_value=120)
    down_payment = serializers.DecimalField(max_digits=14, decimal_places=2, min_value=0)
    vin = serializers.CharField(max_length=20, required=False, allow_blank=True)
    plate = serializers.CharField(max_length=12, required=False, allow_blank=True)
    device_fingerprint = serializers.CharField(max_length=128, required=False, allow_blank=True)
    ip_address = serializers.IPAddressField(required=False, allow_null=True)
    bank_card = serializers.CharField(max_length=30, required=False, allow_blank=True)
    attributes = serializers.DictField(
        required=False,
        help_text=_("Scorecard characteristics (the German credit attribute names)."),
    )
    checks = serializers.DictField(
        required=False,
        help_text=_(
            "Results of checks made elsewhere, by feature name: "
            "applicant.name_id_match, bureau.overdue_count_24m, ..."
        ),
    )


class ReviewInputSerializer(serializers.Serializer):
    decision = serializers.ChoiceField(choices=["approve", "reject"])
    reason = serializers.CharField(max_length=2000)


class OutcomeInputSerializer(serializers.Serializer):
    outcome = serializers.ChoiceField(choices=Application.Outcome.choices)


# --- Output ---------------------------------------------------------------------------------
class _BuiltOnce:
    """A ModelSerializer whose fields are built from the model once per class and copied per
    instance (as a plain Serializer copies its declared fields), not introspected on every
    response: the decision answers within 50 ms."""

    def get_fields(self):
        cls = type(self)
        built = cls.__dict__.get("_built_fields")
        if built is None:
            built = super().get_fields()
            cls._built_fields = built
        return copy.deepcopy(built)


class StepOutputSerializer(_BuiltOnce, serializers.ModelSerializer):
    class Meta:
        model = DecisionStep
        fields = ["order", "step", "outcome", "reason_codes", "details", "duration_us"]
        read_only_fields = fields


class ApplicationOutputSerializer(_BuiltOnce, serializers.ModelSerializer):
    decision = serializers.SerializerMethodField()
    customer_name = serializers.CharField(source="customer.name")
    applicant_name = serializers.CharField(source="applicant.name")
    applicant_id_number = serializers.SerializerMethodField(help_text=_("Masked."))
    product_code = serializers.CharField(source="product.code")
    dealer_code = serializers.CharField(source="dealer.code", default=None)
    rule_set_version = serializers.IntegerField(source="rule_set.version", default=None)
    scorecard_model = serializers.SerializerMethodField()

    class Meta:
        model = Application
        fields = [
            "id",
            "status",
            "decision",
            "score",
            "band",
            "reasons",
            "quota",
            "customer",
            "customer_name",
            "applicant_name",
            "applicant_id_number",
            "product",
            "product_code",
            "dealer",
            "dealer_code",
            "used_car",
            "car_price",
            "amount",
            "term_months",
            "down_payment",
            "rule_set_version",
            "scorecard_model",
            "challenger_score",
            "link_group",
            "outcome",
            "review_reason",
            "duration_ms",
            "created_at",
            "decided_at",
        ]
        read_only_fields = fields

    def get_decision(self, obj) -> str | None:
        return DECISION_OF_STATUS.get(obj.status)

    def get_applicant_id_number(self, obj) -> str:
        number = obj.applicant.id_number
        return f"{number[:6]}********{number[-4:]}"

    def get_scorecard_model(self, obj) -> str | None:
        if not obj.scorecard_id:
            return None
        label = getattr(obj, "scorecard_label", None)  # set on a just-decided application
        return label or f"{obj.scorecard.name} {obj.scorecard.version}"


class ApplicationDetailOutputSerializer(ApplicationOutputSerializer):
    steps = serializers.SerializerMethodField()

    class Meta(ApplicationOutputSerializer.Meta):
        fields = [*ApplicationOutputSerializer.Meta.fields, "steps"]
        read_only_fields = fields

    @extend_schema_field(StepOutputSerializer(many=True))
    def get_steps(self, obj) -> list:
        # A just-decided application carries the steps it stored; otherwise they were
        # prefetched by the detail selector.
        steps = getattr(obj, "stored_steps", None)
        if steps is None:
            steps = obj.steps.all()
        return StepOutputSerializer(steps, many=True).data


class LoanOutputSerializer(serializers.ModelSerializer):
    class Meta:
        model = Loan
        fields = [
            "id",
            "application",
            "principal",
            "term_months",
            "annual_rate",
            "monthly_payment",
            "created_at",
        ]
        read_only_fields = fields


# --- Filters and views ----------------------------------------------------------------------
class ApplicationFilter(filters.FilterSet):
    status = filters.ChoiceFilter(choices=Application.Status.choices)
    dealer = filters.NumberFilter(
        field_name="dealer", min_value=1, max_value=2**63 - 1, help_text=_("Dealer id.")
    )
    product = filters.NumberFilter(
        field_name="product", min_value=1, max_value=2**63 - 1, help_text=_("Product id.")
    )
    customer = filters.NumberFilter(
        field_name="customer", min_value=1, max_value=2**63 - 1, help_text=_("Customer id.")
    )
    link_group = filters.CharFilter(field_name="link_group", help_text=_("Fraud-link group."))
    since = filters.IsoDateTimeFilter(field_name="created_at", lookup_expr="gte")
    until = filters.IsoDateTimeFilter(field_name="created_at", lookup_expr="lt")

    class Meta:
        model = Application
        fields = ["status", "dealer", "product", "customer", "link_group", "since", "until"]


class ApplicationViewSet(viewsets.GenericViewSet):
    """Credit applications of the caller's subtree. POST decides a new one in real time."""

    filterset_class = ApplicationFilter
    permission_classes = [ActionPermissions]
    lookup_value_regex = r"\d+"
    action_perms = {
        "review": ["credit.review_application"],
        "loan": ["credit.add_loan"],
        "outcome": ["credit.change_application"],
    }

    def get_queryset(self):
        if self.action == "create":
            # Read only by the permission check, for its model: nothing scoped to build on the
            # 50 ms path (the submission is scoped by its own fields and the service).
            return Application.objects.none()
        return applications_for_list(self.request.user).order_by("-created_at", "-id")

    def get_serializer_class(self):
        return {
            "create": ApplicationInputSerializer,
            "review": ReviewInputSerializer,
            "outcome": OutcomeInputSerializer,
            "retrieve": ApplicationDetailOutputSerializer,
        }.get(self.action, ApplicationOutputSerializer)

    def _detail(self, pk) -> dict:
        return ApplicationDetailOutputSerializer(application_detail(self.request.user, pk)).data

    @extend_schema(responses=ApplicationOutputSerializer(many=True))
    def list(self, request):
        page = self.paginate_queryset(self.filter_queryset(self.get_queryset()))
        return self.get_paginated_response(ApplicationOutputSerializer(page, many=True).data)

    @extend_schema(responses=ApplicationDetailOutputSerializer)
    def retrieve(self, request, pk=None):
        application = self.get_object()
        return Response(self._detail(application.pk))

    @extend_schema(
        request=ApplicationInputSerializer, responses={201: ApplicationDetailOutputSerializer}
    )
    def create(self, request):
        serializer = self.get_serializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = dict(serializer.validated_data)
        customer = data.pop("customer", None) or home_customer(request.user)
        if customer is None:
            raise serializers.ValidationError({"customer": [_("Choose a customer.")]})
        application = services.application_submit(customer=customer, by=request.user, **data)
        # Answered from the objects just stored: no second read on the 50 ms path.
        return Response(
            ApplicationDetailOutputSerializer(application).data, status=status.HTTP_201_CREATED
        )

    @extend_schema(request=ReviewInputSerializer, responses=ApplicationDetailOutputSerializer)
    @action(detail=True, methods=["post"])
    def review(self, request, pk=None):
        application = self.get_object()
        serializer = ReviewInputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        services.application_review_decide(
            application=application, by=request.user, **serializer.validated_data
        )
        return Response(self._detail(application.pk))

    @extend_schema(request=None, responses={201: LoanOutputSerializer})
    @action(detail=True, methods=["post"])
    def loan(self, request, pk=None):
        loan = services.loan_create(application=self.get_object(), by=request.user)
        return Response(LoanOutputSerializer(loan).data, status=status.HTTP_201_CREATED)

    @extend_schema(request=OutcomeInputSerializer, responses=ApplicationOutputSerializer)
    @action(detail=True, methods=["post"])
    def outcome(self, request, pk=None):
        application = self.get_object()
        serializer = OutcomeInputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        services.application_outcome_set(
            application=application, by=request.user, **serializer.validated_data
        )
        return Response(self._detail(application.pk))
