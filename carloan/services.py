"""Helpers shared by every app's services."""

from __future__ import annotations

from collections.abc import Iterable

from django.db import models


def model_save(
    obj: models.Model,
    *,
    by=None,
    update_fields: Iterable[str] | None = None,
    exclude_clean: Iterable[str] | None = None,
) -> models.Model:
    """Validate (`full_clean`, constraints included) and save, recording `by` as the acting user
    in the operation log. Existing rows are saved with `update_fields` when given."""
    if by is not None and getattr(by, "is_authenticated", False):
        obj._history_user = by
    obj.full_clean(exclude=list(exclude_clean) if exclude_clean else None)
    if update_fields is not None and obj.pk:
        fields = set(update_fields)
        if any(f.name == "updated_at" for f in obj._meta.concrete_fields):
            fields.add("updated_at")
        obj.save(update_fields=sorted(fields))
    else:
        obj.save()
    return obj
