"""Django validators over the pure checks in `carloan.identifiers` (for fields and forms)."""

from __future__ import annotations

from django.core.exceptions import ValidationError
from django.utils.translation import gettext_lazy as _

from carloan import identifiers


def validate_plate(value: str) -> None:
    if not identifiers.is_valid_plate(value):
        raise ValidationError(
            _("%(value)s is not a valid Chinese licence plate (e.g. 陕A12345, 陕AD12345)."),
            code="invalid_plate",
            params={"value": value},
        )


def validate_vin(value: str) -> None:
    vin = identifiers.normalize_vin(value)
    if len(vin) != 17:
        raise ValidationError(_("A VIN has 17 characters."), code="invalid_vin")
    if not identifiers.is_valid_vin(vin):
        raise ValidationError(
            _(
                "%(value)s is not a valid VIN "
                "(letters I, O, Q are not used; check digit at position 9)."
            ),
            code="invalid_vin",
            params={"value": value},
        )


def validate_id_number(value: str) -> None:
    if not identifiers.is_valid_id_number(value):
        raise ValidationError(
            _("%(value)s is not a valid resident ID number (GB 11643: 18 characters, checksum)."),
            code="invalid_id_number",
            params={"value": value},
        )


def validate_mobile(value: str) -> None:
    if not identifiers.is_valid_mobile(value):
        raise ValidationError(
            _("%(value)s is not a valid mainland mobile number (11 digits starting with 1)."),
            code="invalid_phone",
            params={"value": value},
        )


def validate_iccid(value: str) -> None:
    if not identifiers.is_valid_iccid(value):
        raise ValidationError(
            _("%(value)s is not a valid ICCID (19-20 characters starting with 89)."),
            code="invalid_iccid",
            params={"value": value},
        )
