"""Soft delete (V6): deleted rows vanish from every default queryset but stay restorable."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Manager as PlainManager
from django.utils.translation import gettext_lazy as _


class LiveManager(models.Manager):
    """The default manager: only rows that are not deleted. Admin, API and selectors use it."""

    def get_queryset(self):
        return super().get_queryset().filter(deleted_at__isnull=True)


class DeletedManager(models.Manager):
    """Only soft-deleted rows: the recycle bin."""

    def get_queryset(self):
        return super().get_queryset().filter(deleted_at__isnull=False)


class SoftDeleteModel(models.Model):
    deleted_at = models.DateTimeField(_("deleted at"), null=True, blank=True, editable=False)
    deleted_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("deleted by"),
        null=True,
        blank=True,
        editable=False,
        on_delete=models.SET_NULL,
        related_name="+",
    )

    objects = LiveManager()
    deleted_objects = DeletedManager()
    all_objects = PlainManager()  # noqa: DJ012 - everything, deleted rows included

    class Meta:
        # Related-object access (binding.vehicle) uses Django's plain base manager, so it still
        # reaches deleted rows.
        abstract = True

    @property
    def is_deleted(self) -> bool:
        return self.deleted_at is not None
