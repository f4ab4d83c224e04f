"""Model fields shared by the apps."""

from __future__ import annotations

from django.conf import settings
from django.db import models


def user_reference(
    verbose_name, *, related_name: str = "+", on_delete=models.SET_NULL
) -> models.ForeignKey:
    """A "done by" user (created by, acknowledged by, assignee ...): optional, and the record is
    kept with the reference emptied when the user is deleted (unless `on_delete` says otherwise)."""
    return models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=verbose_name,
        null=True,
        blank=True,
        on_delete=on_delete,
        related_name=related_name,
    )
