from __future__ import annotations

import simple_history
from django.contrib.auth.models import AbstractUser, Permission
from django.db import models
from django.utils.translation import gettext_lazy as _
from mptt.models import MPTTModel, TreeForeignKey
from simple_history.models import HistoricalRecords

from carloan.validators import validate_mobile


class Customer(MPTTModel):
    """A node of the customer tree: the platform, lenders, their branches, ... (any depth).

    A user sees their customer's whole subtree; a parent always sees its children (A1)."""

    name = models.CharField(_("name"), max_length=100)
    code = models.SlugField(
        _("code"),
        max_length=50,
        unique=True,
        help_text=_("Short unique code used in imports and the API (letters, digits, - and _)."),
    )
    parent = TreeForeignKey(
        "self",
        verbose_name=_("parent customer"),
        null=True,
        blank=True,
        related_name="children",
        on_delete=models.PROTECT,
    )
    contact_name = models.CharField(_("contact person"), max_length=50, blank=True)
    contact_phone = models.CharField(_("contact phone"), max_length=20, blank=True)
    brand_title = models.CharField(
        _("brand title"),
        max_length=100,
        blank=True,
        help_text=_("Shown in the header for this customer and its subtree; empty = inherited."),
    )
    brand_logo = models.ImageField(
        _("brand logo"),
        upload_to="branding/",
        blank=True,
        help_text=_("PNG/JPEG/GIF/WebP, shown in the header; empty = inherited."),
    )
    is_active = models.BooleanField(_("active"), default=True)
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)

    class MPTTMeta:
        order_insertion_by = ["name"]

    class Meta:
        verbose_name = _("customer")
        verbose_name_plural = _("customers")

    def __str__(self) -> str:
        return self.name


# MPTT models cannot carry HistoricalRecords() as a field (the tree columns break saves).
simple_history.register(Customer, app=__package__)


class Role(models.Model):
    """A named set of function permissions owned by a customer (A2). Usable by users of that
    customer and of its whole subtree."""

    customer = models.ForeignKey(
        Customer, verbose_name=_("customer"), on_delete=models.CASCADE, related_name="roles"
    )
    name = models.CharField(_("name"), max_length=50)
    description = models.CharField(_("description"), max_length=200, blank=True)
    permissions = models.ManyToManyField(
        Permission, verbose_name=_("permissions"), blank=True, related_name="roles"
    )
    history = HistoricalRecords(m2m_fields=[permissions])

    class Meta:
        verbose_name = _("role")
        verbose_name_plural = _("roles")
        constraints = [
            models.UniqueConstraint(
                fields=["customer", "name"], name="role_unique_name_per_customer"
            )
        ]

    def __str__(self) -> str:
        return self.name


class User(AbstractUser):
    class Kind(models.TextChoices):
        STAFF = "staff", _("back-office staff")
        INSTALLER = "installer", _("installer")
        SALESMAN = "salesman", _("salesman")
        RECOVERY = "recovery", _("repossession team")

    customer = models.ForeignKey(
        Customer,
        verbose_name=_("customer"),
        on_delete=models.PROTECT,
        related_name="users",
        null=True,
        blank=True,
        help_text=_("The customer this user belongs to; they see its whole subtree."),
    )
    kind = models.CharField(_("kind"), max_length=20, choices=Kind.choices, default=Kind.STAFF)
    phone = models.CharField(_("phone"), max_length=20, blank=True, validators=[validate_mobile])
    role = models.ForeignKey(
        Role,
        verbose_name=_("role"),
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="users",
    )
    history = HistoricalRecords(excluded_fields=["password", "last_login"])

    class Meta(AbstractUser.Meta):
        verbose_name = _("user")
        verbose_name_plural = _("users")
        swappable = "AUTH_USER_MODEL"


class AuthEvent(models.Model):
    """Login, logout and failed-login events for the operation log (A3)."""

    class Kind(models.TextChoices):
        LOGIN = "login", _("login")
        LOGOUT = "logout", _("logout")
        LOGIN_FAILED = "login_failed", _("failed login")

    kind = models.CharField(_("event"), max_length=20, choices=Kind.choices)
    user = models.ForeignKey(
        User, verbose_name=_("user"), null=True, blank=True, on_delete=models.SET_NULL
    )
    username = models.CharField(_("username"), max_length=150, blank=True)
    customer = models.ForeignKey(
        Customer, verbose_name=_("customer"), null=True, blank=True, on_delete=models.SET_NULL
    )
    ip_address = models.GenericIPAddressField(_("IP address"), null=True, blank=True)
    user_agent = models.CharField(_("user agent"), max_length=300, blank=True)
    at = models.DateTimeField(_("time"), db_index=True)

    class Meta:
        verbose_name = _("login event")
        verbose_name_plural = _("login events")
        ordering = ["-at"]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} {self.username} {self.at:%Y-%m-%d %H:%M:%S}"
