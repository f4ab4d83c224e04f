"""Model permissions = the user's role + the user's own grants (A2), plus Django groups."""

from __future__ import annotations

from django.contrib.auth.backends import ModelBackend
from django.contrib.auth.models import Permission
from django.db.models import Q


class RoleModelBackend(ModelBackend):
    def _get_group_permissions(self, user_obj):
        # ModelBackend caches the result per user object, so this runs once per request.
        return Permission.objects.filter(
            Q(group__user=user_obj) | Q(roles__users=user_obj)
        ).distinct()

    def user_can_authenticate(self, user):
        # A user of a deactivated customer, or of a customer under a deactivated one, cannot log in.
        if not super().user_can_authenticate(user):
            return False
        customer = getattr(user, "customer", None)
        if customer is None:
            return True
        return not customer.get_ancestors(include_self=True).filter(is_active=False).exists()
