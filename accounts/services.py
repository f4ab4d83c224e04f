"""Writes of accounts: customers, users, roles, login events."""

from __future__ import annotations

from django.contrib.auth.models import Permission
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from accounts.models import AuthEvent, Customer, Role, User
from accounts.selectors import (
    customer_is_visible_to,
    customer_is_within,
    is_platform_admin,
    roles_assignable_to,
)
from carloan.errors import ApplicationError
from carloan.services import model_save


def _require_visible_customer(by, customer: Customer | None) -> None:
    if by is None or customer is None:
        return
    if not customer_is_visible_to(by, customer.pk):
        raise ApplicationError(
            _("That customer is outside your part of the tree."), code="not_found"
        )


def customer_create(*, by=None, parent: Customer | None, **fields) -> Customer:
    """Create a customer under `parent` (only a platform admin may create a root)."""
    if parent is None and by is not None and not is_platform_admin(by):
        raise ApplicationError(_("Only a platform administrator can create a top-level customer."))
    _require_visible_customer(by, parent)
    customer = Customer(parent=parent, **fields)
    return model_save(customer, by=by)


def customer_update(*, customer: Customer, by=None, **fields) -> Customer:
    if "parent" in fields:
        parent = fields["parent"]
        _require_visible_customer(by, parent)
        if parent is not None and customer_is_within(parent.pk, customer.pk):
            raise ApplicationError(_("A customer cannot move under itself or its own subtree."))
        if parent is None and by is not None and not is_platform_admin(by):
            raise ApplicationError(
                _("Only a platform administrator can create a top-level customer.")
            )
    for name, value in fields.items():
        setattr(customer, name, value)
    # MPTT recomputes the tree columns on save, so no update_fields here.
    return model_save(customer, by=by)


def _check_grantable(by, permissions) -> None:
    """Nobody hands out a right they do not hold themselves (no privilege escalation)."""
    if by is None or is_platform_admin(by):
        return
    held = by.get_all_permissions()
    missing = sorted(
        f"{p.content_type.app_label}.{p.codename}"
        for p in permissions
        if f"{p.content_type.app_label}.{p.codename}" not in held
    )
    if missing:
        raise ApplicationError(
            _("You cannot grant permissions you do not have: %(perms)s")
            % {"perms": ", ".join(missing)}
        )


@transaction.atomic
def role_save(
    *,
    by=None,
    role: Role | None = None,
    customer: Customer,
    name: str,
    description: str = "",
    permissions=(),
) -> Role:
    permissions = list(
        Permission.objects.filter(pk__in=[p.pk for p in permissions]).select_related("content_type")
    )
    _require_visible_customer(by, customer)
    _check_grantable(by, permissions)
    role = role or Role()
    role.customer, role.name, role.description = customer, name, description
    model_save(role, by=by)
    role.permissions.set(permissions)
    return role


def _check_role(customer: Customer | None, role: Role | None) -> None:
    if role is not None and (
        customer is None or not roles_assignable_to(customer).filter(pk=role.pk).exists()
    ):
        raise ApplicationError(_("That role belongs to another customer's line."))


@transaction.atomic
def user_create(
    *,
    by=None,
    username: str,
    password: str | None,
    customer: Customer | None,
    kind: str = User.Kind.STAFF,
    role: Role | None = None,
    user_permissions=(),
    **fields,
) -> User:
    _require_visible_customer(by, customer)
    _check_role(customer, role)
    if customer is None and not fields.get("is_superuser"):
        raise ApplicationError(_("A user must belong to a customer."))
    if fields.get("is_superuser") and by is not None and not is_platform_admin(by):
        raise ApplicationError(_("Only a platform administrator can create another one."))
    user = User(username=username, customer=customer, kind=kind, role=role, **fields)
    if password:
        user.set_password(password)
    else:
        user.set_unusable_password()
    model_save(user, by=by)
    if user_permissions:
        _check_grantable(by, user_permissions)
        user.user_permissions.set(user_permissions)
    return user


@transaction.atomic
def user_update(*, user: User, by=None, user_permissions=None, **fields) -> User:
    customer = fields.get("customer", user.customer)
    if "customer" in fields:
        _require_visible_customer(by, customer)
    if "role" in fields or "customer" in fields:
        _check_role(customer, fields.get("role", user.role))
    if fields.get("is_superuser") and by is not None and not is_platform_admin(by):
        raise ApplicationError(_("Only a platform administrator can grant that."))
    for name, value in fields.items():
        setattr(user, name, value)
    model_save(user, by=by, exclude_clean=["password"])
    if user_permissions is not None:
        _check_grantable(
            by, [p for p in user_permissions if p not in set(user.user_permissions.all())]
        )
        user.user_permissions.set(user_permissions)
    return user


def auth_event_record(
    *, kind: str, user: User | None, username: str = "", request=None
) -> AuthEvent:
    ip, agent = None, ""
    if request is not None:
        meta = getattr(request, "META", {})
        ip = meta.get("REMOTE_ADDR") or None
        agent = meta.get("HTTP_USER_AGENT", "")[:300]
    return AuthEvent.objects.create(
        kind=kind,
        user=user,
        username=(username or (user.get_username() if user else ""))[:150],
        customer_id=getattr(user, "customer_id", None),
        ip_address=ip,
        user_agent=agent,
        at=timezone.now(),
    )


def user_login_record(*, user: User, request=None) -> AuthEvent:
    """A successful login: stamp last_login (without an operation-log row) and log the event."""
    user.last_login = timezone.now()
    User.objects.filter(pk=user.pk).update(last_login=user.last_login)
    return auth_event_record(kind=AuthEvent.Kind.LOGIN, user=user, request=request)


# --- Sharing single objects (django-guardian) ------------------------------------------------
def objects_share(*, objects, username: str, can_change: bool = False, by=None) -> int:
    """Share vehicles or devices one by one with a user outside their customer's subtree (A1).
    The user then sees them (and edits them when `can_change`). Only objects of the sharer's own
    subtree can be shared (no re-sharing of what was shared with you). Returns how many objects
    were newly shared."""
    from guardian.shortcuts import assign_perm

    target = User.objects.filter(username=username, is_active=True).first()
    if target is None:
        raise ApplicationError(_("There is no active user %(u)s.") % {"u": username})
    count = 0
    for obj in objects:
        _require_visible_customer(by, obj.customer)
        opts = obj._meta
        for action in ("view", "change") if can_change else ("view",):
            assign_perm(f"{opts.app_label}.{action}_{opts.model_name}", target, obj)
        count += 1
    return count


def share_revoke(*, share) -> None:
    """Withdraw one share row (a user's permission on one object)."""
    share.delete()
