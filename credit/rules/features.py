"""The default feature schema for car loans: every name a credit rule may read, its type and what
it means. The pipeline fills a dict with these names (nested or dotted); anything missing is null.

Money is in yuan (CNY), ratios are fractions (0.3 = 30 %), ages and durations are whole numbers.
`score.*` only has values in rule sets that run after the scorecard (C5); in the rules step (C4)
of the pipeline, which runs before it, they are null.
"""

from __future__ import annotations

import datetime as dt

from carloan.identifiers import parse_id_number
from credit.rules.errors import gettext_noop
from credit.rules.functions import age_in_years
from credit.rules.types import FeatureSchema, Field, parse_type

# The date rules are evaluated at (today(), age_at(x)) unless the caller passes `as_of`.
AS_OF_FIELD = "application.date"


def _field(name: str, type_: str, description: str) -> Field:
    return Field(name, parse_type(type_), description)


_FIELDS: tuple[Field, ...] = (
    # applicant (C1): identity, derived from the resident ID number where marked
    _field(
        "applicant.id_valid",
        "bool",
        gettext_noop("The ID number passes GB 11643 (format, date, check character)."),
    ),
    _field(
        "applicant.age",
        "number",
        gettext_noop("Age in whole years on the application date (from the ID number)."),
    ),
    _field("applicant.birth_date", "date", gettext_noop("Birth date (from the ID number).")),
    _field("applicant.sex", "string", gettext_noop('"male" or "female" (from the ID number).')),
    _field(
        "applicant.province_code",
        "string",
        gettext_noop('Province code of the ID number, 2 digits (GB/T 2260, e.g. "61" Shaanxi).'),
    ),
    _field(
        "applicant.region_code", "string", gettext_noop("Region code of the ID number, 6 digits.")
    ),
    _field(
        "applicant.phone", "string", gettext_noop("Mobile number, normalised (no +86, no spaces).")
    ),
    _field(
        "applicant.phone_valid",
        "bool",
        gettext_noop("The mobile number is a mainland mobile number."),
    ),
    _field(
        "applicant.phone_tenure_months",
        "number",
        gettext_noop("Months the mobile number has been in service (operator check)."),
    ),
    _field(
        "applicant.name_id_match",
        "bool",
        gettext_noop("Name and ID number match (identity check)."),
    ),
    _field(
        "applicant.phone_id_match",
        "bool",
        gettext_noop("Mobile number is registered to this ID number (operator check)."),
    ),
    _field(
        "applicant.marital_status",
        "string",
        gettext_noop('"single", "married", "divorced" or "widowed".'),
    ),
    _field(
        "applicant.monthly_income",
        "number",
        gettext_noop("Declared or verified monthly income, yuan."),
    ),
    _field(
        "applicant.monthly_debt",
        "number",
        gettext_noop("Monthly repayments of other debts, yuan (credit report)."),
    ),
    _field(
        "applicant.employment_months", "number", gettext_noop("Months with the current employer.")
    ),
    _field(
        "applicant.resident_province_code",
        "string",
        gettext_noop("Province code where the applicant lives, 2 digits."),
    ),
    # credit report (征信)
    _field(
        "bureau.overdue_count_24m",
        "number",
        gettext_noop("Overdue repayments in the last 24 months."),
    ),
    _field("bureau.max_overdue_days", "number", gettext_noop("Longest overdue period ever, days.")),
    _field(
        "bureau.queries_3m",
        "number",
        gettext_noop("Credit report queries by lenders in the last 3 months."),
    ),
    # application and vehicle
    _field(
        "application.date",
        "date",
        gettext_noop("Date of the application (rules are evaluated at this date)."),
    ),
    _field("application.amount", "number", gettext_noop("Financed amount, yuan.")),
    _field("application.term_months", "number", gettext_noop("Loan term, months.")),
    _field(
        "application.monthly_payment", "number", gettext_noop("Estimated monthly instalment, yuan.")
    ),
    _field(
        "application.down_payment_ratio",
        "number",
        gettext_noop("Down payment / vehicle price, 0 to 1."),
    ),
    _field("application.vehicle_price", "number", gettext_noop("Vehicle price, yuan.")),
    _field("application.vehicle_condition", "string", gettext_noop('"new" or "used".')),
    _field(
        "application.vehicle_age_months",
        "number",
        gettext_noop("Age of a used vehicle, months (0 for new)."),
    ),
    _field("application.new_energy", "bool", gettext_noop("New-energy vehicle (green plate).")),
    _field(
        "application.province_code",
        "string",
        gettext_noop("Province code where the vehicle is registered, 2 digits."),
    ),
    # dealer (channel)
    _field("dealer.code", "string", gettext_noop("Dealer code.")),
    _field("dealer.rating", "string", gettext_noop('Dealer rating, "A" (best) to "D".')),
    _field(
        "dealer.province_code", "string", gettext_noop("Province code of the dealer, 2 digits.")
    ),
    _field(
        "dealer.overdue_rate",
        "number",
        gettext_noop("Share of the dealer's active loans overdue 30+ days, 0 to 1."),
    ),
    # fraud links (C3)
    _field(
        "links.group_size",
        "number",
        gettext_noop("Applications in the linked group, this one included (1 = no links)."),
    ),
    _field(
        "links.direct_links",
        "number",
        gettext_noop("Applications sharing a value directly with this one."),
    ),
    _field(
        "links.bad_members",
        "number",
        gettext_noop("Members of the group with a bad outcome (fraud, default)."),
    ),
    _field(
        "links.kinds",
        "list[string]",
        gettext_noop("Kinds of shared values in the group: phone, device, address, bank_card."),
    ),
    # black / white lists (C2)
    _field(
        "lists.hits",
        "list[string]",
        gettext_noop('Codes of the list entries matched, e.g. "blacklist.phone".'),
    ),
    _field("lists.blacklist", "bool", gettext_noop("A black list entry matched.")),
    _field("lists.whitelist", "bool", gettext_noop("A white list entry matched.")),
    # scorecard (C5), only after scoring
    _field("score.value", "number", gettext_noop("Application score, 300 to 1000.")),
    _field("score.band", "string", gettext_noop('Score band: "reject", "review" or "approve".')),
)

DEFAULT_SCHEMA = FeatureSchema(_FIELDS)


def applicant_from_id_number(id_number: str, *, on: dt.date) -> dict[str, object]:
    """The applicant features an ID number gives, as of `on` (the application date).
    An invalid number gives `applicant.id_valid: False` and nothing else."""
    info = parse_id_number(id_number, today=on)
    if info is None:
        return {"applicant.id_valid": False}
    return {
        "applicant.id_valid": True,
        "applicant.age": age_in_years(info.birth_date, on),
        "applicant.birth_date": info.birth_date,
        "applicant.sex": info.sex,
        "applicant.province_code": info.region_code[:2],
        "applicant.region_code": info.region_code,
    }
