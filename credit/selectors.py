"""Reads of the credit app, scoped by visibility (accounts.selectors): every admin and API queryset
comes from here. Another tenant's rows are simply not in these querysets (404 upstream).

- Applications, applicants, loans, decision steps, rule sets, lenders' list entries, alerts: the
  caller's customer subtree (`scope`).
- Products and dealers: the subtree plus the line of ancestors (`customers_related_to`), because a
  branch sells its lender's products through its lender's dealers; only the subtree's are
  changeable.
- Platform-wide list entries (no customer) and scorecard models (one set for the whole server):
  the platform's own users (the root customer) and platform admins.
"""

from __future__ import annotations

from django.db import connection
from django.db.models import Q, QuerySet

from accounts.models import Customer
from accounts.selectors import customers_related_to, home_customer, is_platform_admin, scope
from credit.models import (
    Applicant,
    Application,
    CreditRule,
    Dealer,
    DecisionStep,
    ListEntry,
    Loan,
    MonitoringAlert,
    Product,
    RuleSet,
    ScorecardModel,
)


def is_platform_user(user) -> bool:
    """A platform admin, or an active user of the root customer (the platform operator's staff),
    who may manage what every lender shares: scorecards and platform-wide lists."""
    if is_platform_admin(user):
        return True
    customer = home_customer(user)
    return customer is not None and customer.level == 0


# --- The tree -------------------------------------------------------------------------------
def customer_bounds(customer_id: int) -> Customer:
    """A fresh copy of the tree columns (held copies go stale when the tree changes)."""
    return Customer.objects.only("id", "tree_id", "lft", "rght", "level", "name").get(
        pk=customer_id
    )


def ancestors_q(customer: Customer, field: str = "customer") -> Q:
    """`field` is `customer` or one of its ancestors."""
    return Q(
        **{
            f"{field}__tree_id": customer.tree_id,
            f"{field}__lft__lte": customer.lft,
            f"{field}__rght__gte": customer.rght,
        }
    )


def lender_of(customer: Customer) -> Customer:
    """The lender a customer belongs to: its ancestor just under the root (level 1), or the
    customer itself at the root or at level 1. Fraud links are looked for within a lender."""
    if customer.level <= 1:
        return customer
    return Customer.objects.only("id", "tree_id", "lft", "rght", "level").get(
        tree_id=customer.tree_id, lft__lte=customer.lft, rght__gte=customer.rght, level=1
    )


def customer_line(customer_id: int) -> list[Customer]:
    """The customer and its ancestors, root first (tree columns and name only), in one query;
    empty when there is no such customer. Raw SQL because it runs on every credit decision:
    the self-join costs the ORM more to compile than the database to answer."""
    table = connection.ops.quote_name(Customer._meta.db_table)
    return list(
        Customer.objects.raw(
            f"SELECT a.id, a.name, a.tree_id, a.lft, a.rght, a.level FROM {table} a "  # noqa: S608
            f"JOIN {table} c ON c.tree_id = a.tree_id AND a.lft <= c.lft AND a.rght >= c.rght "
            "WHERE c.id = %s ORDER BY a.level",
            [customer_id],
        )
    )


def customer_with_bounds(pk: int) -> Customer | None:
    """Customer `pk` with its tree columns and name only (None: no such customer). SQL: it runs
    on every credit decision, where the ORM's compile time showed up in the 50 ms budget."""
    table = connection.ops.quote_name(Customer._meta.db_table)
    rows = Customer.objects.raw(
        f"SELECT id, name, tree_id, lft, rght, level FROM {table} WHERE id = %s",  # noqa: S608
        [pk],
    )
    return next(iter(rows), None)


def with_owner(model: type[Product] | type[Dealer], pk: int) -> Product | Dealer | None:
    """Product or dealer `pk` with its owner (`customer`: tree columns and name) in one SQL
    query, for the visibility check of a submitted id (`related_to`); None: no such row."""
    table = connection.ops.quote_name(model._meta.db_table)
    owners = connection.ops.quote_name(Customer._meta.db_table)
    rows = model.objects.raw(
        f"SELECT t.*, c.name AS owner_name, c.tree_id AS owner_tree_id, "  # noqa: S608
        f"c.lft AS owner_lft, c.rght AS owner_rght, c.level AS owner_level "
        f"FROM {table} t JOIN {owners} c ON c.id = t.customer_id WHERE t.id = %s",
        [pk],
    )
    obj = next(iter(rows), None)
    if obj is not None:
        obj.customer = Customer(
            pk=obj.customer_id,
            name=obj.owner_name,
            tree_id=obj.owner_tree_id,
            lft=obj.owner_lft,
            rght=obj.owner_rght,
            level=obj.owner_level,
        )
    return obj


def in_subtree_of(user, customer: Customer) -> bool:
    """`customer` (with its tree columns) is in the user's subtree: the same answer as
    `customers_visible_to(user)`, from the bounds in hand instead of a query."""
    if is_platform_admin(user):
        return True
    home = home_customer(user)
    return (
        home is not None
        and customer.tree_id == home.tree_id
        and home.lft <= customer.lft <= home.rght
    )


def related_to(user, customer: Customer) -> bool:
    """`customer` is in the user's subtree or line of ancestors: the same answer as
    `customers_related_to(user)` (whose products and dealers the user may use), in Python."""
    if in_subtree_of(user, customer):
        return True
    home = home_customer(user)
    return (
        home is not None
        and customer.tree_id == home.tree_id
        and customer.lft <= home.lft
        and customer.rght >= home.rght
    )


def customer_is_ancestor_or_self(ancestor_id: int, customer: Customer) -> bool:
    return Customer.objects.filter(
        pk=ancestor_id, tree_id=customer.tree_id, lft__lte=customer.lft, rght__gte=customer.rght
    ).exists()


# --- Applications ---------------------------------------------------------------------------
def applications_visible_to(user) -> QuerySet[Application]:
    return scope(Application.objects.all(), user)


def applications_for_list(user) -> QuerySet[Application]:
    return (
        applications_visible_to(user)
        .select_related("customer", "applicant", "product", "dealer", "rule_set", "scorecard")
        .defer("scorecard__artefact", "scorecard__metrics")  # ~25 kB of JSON per model
    )


def application_detail(user, pk) -> Application:
    """One visible application with its steps and loan (DoesNotExist when not visible)."""
    return (
        applications_for_list(user)
        .select_related("reviewed_by")
        .prefetch_related("steps")
        .get(pk=pk)
    )


def applicants_visible_to(user) -> QuerySet[Applicant]:
    return scope(Applicant.objects.select_related("customer"), user)


def decision_steps_visible_to(user) -> QuerySet[DecisionStep]:
    return scope(DecisionStep.objects.all(), user, "application__customer")


def loans_visible_to(user) -> QuerySet[Loan]:
    return scope(
        Loan.objects.select_related("application__applicant", "application__customer"),
        user,
        "application__customer",
    )


# --- Catalogue: products and dealers ---------------------------------------------------------
def products_visible_to(user, *, for_change: bool = False) -> QuerySet[Product]:
    qs = Product.objects.select_related("customer")
    if for_change:
        return scope(qs, user)
    return qs.filter(customer__in=customers_related_to(user))


def dealers_visible_to(user, *, for_change: bool = False) -> QuerySet[Dealer]:
    qs = Dealer.objects.select_related("customer")
    if for_change:
        return scope(qs, user)
    return qs.filter(customer__in=customers_related_to(user))


def products_for(customer: Customer) -> QuerySet[Product]:
    """Products an application of `customer` may use: active ones of it or an ancestor."""
    return Product.objects.filter(ancestors_q(customer), active=True)


def dealers_for(customer: Customer) -> QuerySet[Dealer]:
    return Dealer.objects.filter(ancestors_q(customer))


# --- Rules ----------------------------------------------------------------------------------
def rule_sets_visible_to(user) -> QuerySet[RuleSet]:
    return scope(RuleSet.objects.select_related("customer", "published_by"), user)


def credit_rules_visible_to(user) -> QuerySet[CreditRule]:
    return scope(CreditRule.objects.select_related("rule_set"), user, "rule_set__customer")


def published_rule_set_in_line(line: dict[int, int]) -> RuleSet | None:
    """`published_rule_set_for` when the line (customer id -> level of the customer and its
    ancestors) is known: the published version of the nearest customer up the line. SQL on an
    indexed column because it runs on every decision (no join on the tree, nothing to compile)."""
    if not line:
        return None
    ids = sorted(line)
    rows = RuleSet.objects.raw(
        "SELECT id, customer_id, version, status, published_at FROM "  # noqa: S608
        f"{connection.ops.quote_name(RuleSet._meta.db_table)} WHERE status = %s "
        f"AND customer_id IN ({', '.join(['%s'] * len(ids))})",
        [RuleSet.Status.PUBLISHED.value, *ids],
    )
    return max(rows, key=lambda r: line[r.customer_id], default=None)


def published_rule_set_for(customer: Customer) -> RuleSet | None:
    """The rule set applications of `customer` are decided with: the published version of the
    nearest customer up the line (a branch without its own rules uses its lender's)."""
    return (
        RuleSet.objects.filter(ancestors_q(customer), status=RuleSet.Status.PUBLISHED)
        .order_by("-customer__level")
        .only("id", "version", "customer_id", "status", "published_at")
        .first()
    )


def replay_cases(rule_set: RuleSet, last: int) -> list[dict]:
    """The recorded features of the last `last` decided applications of the rule set's
    customer subtree, newest first (what a replay runs over)."""
    owner = customer_bounds(rule_set.customer_id)
    rows = (
        Application.objects.filter(
            customer__tree_id=owner.tree_id,
            customer__lft__gte=owner.lft,
            customer__lft__lte=owner.rght,
        )
        .exclude(features={})
        .order_by("-created_at", "-id")
        .values_list("id", "features")[:last]
    )
    cases = []
    for pk, features in rows:
        case = dict(features)
        case["application.id"] = pk
        cases.append(case)
    return cases


# --- Lists ----------------------------------------------------------------------------------
def list_entries_visible_to(user) -> QuerySet[ListEntry]:
    qs = ListEntry.objects.select_related("customer")
    if is_platform_admin(user):
        return qs
    scoped = scope(qs, user)
    if is_platform_user(user):
        return qs.filter(Q(pk__in=scoped.values("pk")) | Q(customer__isnull=True))
    return scoped


# --- Scorecards and monitoring --------------------------------------------------------------
def scorecard_models_visible_to(user) -> QuerySet[ScorecardModel]:
    """Scorecards are one set for the whole server; any signed-in user with the view right may
    read them (they hold no tenant data). Changing them is for platform users."""
    if not (user and user.is_authenticated and user.is_active):
        return ScorecardModel.objects.none()
    return ScorecardModel.objects.all()


def monitoring_alerts_visible_to(user) -> QuerySet[MonitoringAlert]:
    return scope(MonitoringAlert.objects.select_related("scorecard", "customer"), user)
