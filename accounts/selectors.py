"""Visibility: the only way any interface gets a queryset of tenant data.

A platform superuser sees everything. Any other user sees their customer's whole subtree (A1), plus
single objects shared with them through django-guardian, and nothing else. A user without a
customer, an inactive user or an anonymous one sees nothing.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.conf import settings
from django.db.models import Q, QuerySet

from accounts.models import AuthEvent, Customer, Role, User

_NOTHING = Q(pk__in=[])


def is_platform_admin(user) -> bool:
    return bool(user and user.is_authenticated and user.is_active and user.is_superuser)


def home_customer(user) -> Customer | None:
    """The user's customer, loaded once per user object (tree bounds are needed by every scope)."""
    if not (user and user.is_authenticated and user.is_active):
        return None
    cached = getattr(user, "_home_customer_cache", False)
    if cached is False:
        cached = (
            Customer.objects.only("id", "tree_id", "lft", "rght", "level", "name")
            .filter(pk=user.customer_id)
            .first()
            if user.customer_id
            else None
        )
        user._home_customer_cache = cached
    return cached


def subtree_q(user, field: str = "customer") -> Q | None:
    """A Q limiting `field` (a path to a Customer) to the user's subtree; None = no limit."""
    if is_platform_admin(user):
        return None
    customer = home_customer(user)
    if customer is None:
        return _NOTHING
    prefix = f"{field}__" if field else ""
    # MPTT: a node's descendants have lft inside (lft, rght) of the same tree.
    return Q(
        **{
            f"{prefix}tree_id": customer.tree_id,
            f"{prefix}lft__gte": customer.lft,
            f"{prefix}lft__lte": customer.rght,
        }
    )


def shared_q(user, permission_model, codename: str) -> Q | None:
    """Rows shared with the user one by one (django-guardian direct-FK table `permission_model`)
    under permission `codename`; None when there are none."""
    if not (user and user.is_authenticated and user.is_active):
        return None
    # Read the (few) shared ids first: an "OR id IN (subquery)" would keep the planner off the
    # customer index for everyone, and most users have nothing shared.
    ids = list(
        permission_model.objects.filter(user_id=user.pk, permission__codename=codename).values_list(
            "content_object_id", flat=True
        )
    )
    return Q(pk__in=ids) if ids else None


def scope(qs: QuerySet, user, field: str = "customer", *, shared: tuple | None = None) -> QuerySet:
    """Limit `qs` to the rows whose `field` customer is in the user's subtree, plus the rows
    shared with the user when `shared` = (guardian direct-FK model, permission codename)."""
    q = subtree_q(user, field)
    if q is None:
        return qs
    extra = shared_q(user, *shared) if shared else None
    return qs.filter(q | extra if extra is not None else q)


def customers_visible_to(user) -> QuerySet[Customer]:
    return scope(Customer.objects.all(), user, field="")


def customer_is_visible_to(user, customer_id: int | None) -> bool:
    return customer_id is not None and customers_visible_to(user).filter(pk=customer_id).exists()


def customers_related_to(user) -> QuerySet[Customer]:
    """The subtree plus the line of ancestors: whose catalogues (roles, device models) apply."""
    if is_platform_admin(user):
        return Customer.objects.all()
    customer = home_customer(user)
    if customer is None:
        return Customer.objects.none()
    ancestors = Q(tree_id=customer.tree_id, lft__lte=customer.lft, rght__gte=customer.rght)
    return Customer.objects.filter(ancestors | subtree_q(user, field=""))


def users_visible_to(user) -> QuerySet[User]:
    qs = User.objects.select_related("customer", "role")
    if is_platform_admin(user):
        return qs
    # Platform superusers belong to no tenant and stay out of tenants' lists.
    return scope(qs, user).filter(is_superuser=False)


def roles_visible_to(user) -> QuerySet[Role]:
    return scope(Role.objects.select_related("customer"), user)


def _tree_bounds(customer_id: int) -> dict | None:
    # Read fresh: the tree columns of a Customer held in memory go stale as soon as another node
    # is inserted before it, and a stale lft/rght silently answers the wrong subtree.
    return Customer.objects.filter(pk=customer_id).values("tree_id", "lft", "rght").first()


def customer_is_within(customer_id: int, ancestor_id: int) -> bool:
    """Is `customer_id` the customer `ancestor_id` or one of its descendants?"""
    ancestor = _tree_bounds(ancestor_id)
    return (
        ancestor is not None
        and Customer.objects.filter(
            pk=customer_id,
            tree_id=ancestor["tree_id"],
            lft__gte=ancestor["lft"],
            lft__lte=ancestor["rght"],
        ).exists()
    )


def roles_assignable_to(customer: Customer) -> QuerySet[Role]:
    """Roles a user of `customer` may hold: those owned by the customer or one of its ancestors."""
    bounds = _tree_bounds(customer.pk)
    if bounds is None:
        return Role.objects.none()
    return Role.objects.filter(
        customer__tree_id=bounds["tree_id"],
        customer__lft__lte=bounds["lft"],
        customer__rght__gte=bounds["rght"],
    )


def auth_events_visible_to(user) -> QuerySet[AuthEvent]:
    return scope(AuthEvent.objects.select_related("user", "customer"), user)


# --- Branding (A4) -----------------------------------------------------------------------------
@dataclass(frozen=True)
class Branding:
    title: str
    logo_url: str | None


def branding_for(customer: Customer | None) -> Branding:
    """The nearest title and logo up the customer's line of ancestors, else the platform default.
    One query."""
    title, logo = None, None
    if customer is not None:
        line = (
            Customer.objects.filter(
                tree_id=customer.tree_id, lft__lte=customer.lft, rght__gte=customer.rght
            )
            .order_by("-level")
            .only("brand_title", "brand_logo")
        )
        for node in line:
            title = title or node.brand_title or None
            logo = logo or (node.brand_logo.url if node.brand_logo else None)
            if title and logo:
                break
    return Branding(title=title or settings.PLATFORM_TITLE, logo_url=logo)


def branding_for_user(user) -> Branding:
    """Cached on the user object: the admin asks for it more than once per page."""
    cached = getattr(user, "_branding_cache", None)
    if cached is None:
        cached = branding_for(home_customer(user))
        if user is not None and user.is_authenticated:
            user._branding_cache = cached
    return cached
