"""Products (quota terms), dealers (admission and rating, C11) and black / white list entries
(C2)."""

from __future__ import annotations

import datetime as dt
from typing import Any

from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Count
from django.utils import timezone
from django.utils.translation import gettext as _

from accounts.selectors import customer_is_visible_to
from carloan.errors import ApplicationError, ConflictError
from carloan.services import model_save
from carloan.validators import validate_id_number, validate_mobile, validate_plate, validate_vin
from credit import dealers as dealer_rules
from credit import pipeline
from credit.models import Application, Dealer, ListEntry, Product
from credit.quota import QuotaConfigError, band_terms_from
from credit.selectors import is_platform_user

PRODUCT_FIELDS = (
    "code",
    "name",
    "min_amount",
    "max_amount",
    "terms",
    "min_down_payment_ratio",
    "max_debt_to_income",
    "annual_rate",
    "band_terms",
    "active",
)
DEALER_FIELDS = (
    "code",
    "name",
    "years_in_business",
    "registered_capital",
    "staff",
    "monthly_sales",
    "status",
)


def _require_visible(by, customer_id: int | None, what: str) -> None:
    if by is None:
        return
    if customer_id is None:
        if not is_platform_user(by):
            raise ApplicationError(
                _("Only the platform's staff may keep platform-wide %(what)s.") % {"what": what},
                code="permission_denied",
            )
    elif not customer_is_visible_to(by, customer_id):
        raise ApplicationError(
            _("That customer is outside your part of the tree."), code="not_found"
        )


# --- Products --------------------------------------------------------------------------------
def product_save(*, product: Product, by=None) -> Product:
    """Create or change a product. Its terms per band are checked (unknown bands or keys,
    ratios outside 0-1, a rate add-on above 0.5 are refused on the `band_terms` field)."""
    _require_visible(by, product.customer_id, _("products"))
    try:
        band_terms_from(product.band_terms)
    except QuotaConfigError as exc:
        raise ValidationError({"band_terms": str(exc)}) from None
    return model_save(product, by=by, exclude_clean=["customer"])


# --- Dealers ---------------------------------------------------------------------------------
def _figures(dealer: Dealer, *, with_outcomes: bool = False) -> dealer_rules.DealerFigures:
    known = bad = 0
    if with_outcomes and dealer.pk:
        counts = dict(
            Application.objects.filter(
                dealer=dealer, outcome__in=[Application.Outcome.GOOD, Application.Outcome.BAD]
            )
            .values_list("outcome")
            .annotate(n=Count("id"))
            .values_list("outcome", "n")
        )
        bad = counts.get(Application.Outcome.BAD, 0)
        known = bad + counts.get(Application.Outcome.GOOD, 0)
    return dealer_rules.DealerFigures(
        years_in_business=dealer.years_in_business,
        registered_capital=dealer.registered_capital,
        staff=dealer.staff,
        monthly_sales=dealer.monthly_sales,
        outcomes_known=known,
        bad_outcomes=bad,
    )


@transaction.atomic
def dealer_save(*, dealer: Dealer, by=None) -> Dealer:
    """Create or change a dealer. A new dealer is admitted when it meets the admission criteria
    (credit.dealers.ADMISSION) and recorded as not admitted otherwise; a dealer that does not
    meet them cannot be set back to admitted. Rating fields belong to `dealer_rate`."""
    _require_visible(by, dealer.customer_id, _("dealers"))
    failures = dealer_rules.admission_failures(_figures(dealer))
    if dealer.pk is None:
        dealer.status = Dealer.Status.REJECTED if failures else Dealer.Status.ADMITTED
    elif dealer.status == Dealer.Status.ADMITTED and failures:
        raise ValidationError(
            {
                "status": _("The dealer does not meet the admission criteria: %(failures)s")
                % {"failures": ", ".join(failures)}
            }
        )
    details = dict(dealer.rating_details or {})
    details["admission"] = {"failures": failures, "checked_at": timezone.now().isoformat()}
    dealer.rating_details = details
    return model_save(dealer, by=by, exclude_clean=["customer"])


@transaction.atomic
def dealer_rate(*, dealer: Dealer, by=None, at: dt.datetime | None = None) -> Dealer:
    """Rate a dealer A-D from its figures and the outcomes of its applications
    (credit.dealers.rate_dealer) and set the cooperation mode that goes with the rating."""
    _require_visible(by, dealer.customer_id, _("dealers"))
    figures = _figures(dealer, with_outcomes=True)
    result = dealer_rules.rate_dealer(figures)
    details = dict(dealer.rating_details or {})
    details.update(result.as_dict())
    details["outcomes_known"] = figures.outcomes_known
    details["bad_outcomes"] = figures.bad_outcomes
    dealer.rating = result.rating
    dealer.cooperation = result.cooperation
    dealer.rating_details = details
    dealer.rated_at = at or timezone.now()
    return model_save(
        dealer,
        by=by,
        update_fields=["rating", "cooperation", "rating_details", "rated_at"],
        exclude_clean=["customer"],
    )


# --- Lists -----------------------------------------------------------------------------------
_FORMAT_CHECKS = {
    ListEntry.Field.ID_NUMBER: validate_id_number,
    ListEntry.Field.PHONE: validate_mobile,
    ListEntry.Field.VIN: validate_vin,
    ListEntry.Field.PLATE: validate_plate,
}


def _clean_entry(entry: ListEntry) -> None:
    if entry.field not in ListEntry.Field.values:
        raise ValidationError({"field": _("Unknown field.")})
    value = pipeline.normalise_list_value(entry.field, entry.value)
    if not value:
        raise ValidationError({"value": _("The value is empty once normalised.")})
    check = _FORMAT_CHECKS.get(entry.field)
    if check is not None:
        try:
            check(value)
        except ValidationError as exc:
            raise ValidationError({"value": exc.messages}) from None
    entry.value = value
    duplicate = ListEntry.objects.filter(
        customer_id=entry.customer_id, kind=entry.kind, field=entry.field, value=value
    ).exclude(pk=entry.pk)
    if duplicate.exists():
        raise ConflictError(
            _("This value is on the list already (entry #%(id)s).")
            % {"id": duplicate.values_list("pk", flat=True).first()}
        )


def list_entry_create(
    *,
    kind: str,
    field: str,
    value: str,
    customer=None,
    source: str = "",
    reason: str = "",
    expires_at: dt.datetime | None = None,
    by=None,
) -> ListEntry:
    """Put a value on a black or white list, the lender's own (`customer`) or platform-wide
    (no customer: platform staff only). The value is normalised as applications' values are
    (credit.pipeline.normalise_list_value) and checked for its format."""
    entry = ListEntry(
        customer=customer,
        kind=kind,
        field=field,
        value=value,
        source=source,
        reason=reason,
        expires_at=expires_at,
    )
    return list_entry_save(entry=entry, by=by)


def list_entry_save(*, entry: ListEntry, by=None) -> ListEntry:
    _require_visible(by, entry.customer_id, _("list entries"))
    _clean_entry(entry)
    return model_save(entry, by=by, exclude_clean=["customer"])


def list_entry_update(*, entry: ListEntry, by=None, **fields: Any) -> ListEntry:
    allowed = {"kind", "field", "value", "source", "reason", "expires_at"}
    unknown = set(fields) - allowed
    if unknown:
        raise ApplicationError(_("Unknown fields: %s") % ", ".join(sorted(unknown)))
    _require_visible(by, entry.customer_id, _("list entries"))
    for name, value in fields.items():
        setattr(entry, name, value)
    return list_entry_save(entry=entry, by=by)


def list_entry_delete(*, entry: ListEntry, by=None) -> None:
    _require_visible(by, entry.customer_id, _("list entries"))
    entry.delete()
