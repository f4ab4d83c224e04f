"""REST API plumbing shared by every app: permissions, pagination, error mapping."""

from __future__ import annotations

from django.core.exceptions import ValidationError as DjangoValidationError
from django.http import Http404
from django.utils.translation import gettext_lazy as _
from rest_framework import authentication, exceptions, pagination, permissions, status
from rest_framework.response import Response

from carloan.errors import ApplicationError, ConflictError, ImportRowsError


class TokenAuthentication(authentication.TokenAuthentication):
    """DRF token auth that also refuses users of a deactivated customer (as the login does).
    Outcomes are kept a few seconds per process (accounts.auth_cache; changes invalidate them)."""

    def authenticate_credentials(self, key):
        from accounts import auth_cache
        from accounts.backends import RoleModelBackend

        cached = auth_cache.get(key)
        if cached is not None:
            return cached
        generation = auth_cache.generation()
        user, token = super().authenticate_credentials(key)
        if not RoleModelBackend().user_can_authenticate(user):
            raise exceptions.AuthenticationFailed(_("User inactive or deleted."))
        auth_cache.put(key, user, token, generation)
        return user, token


class ModelPermissions(permissions.DjangoModelPermissions):
    """Function permissions (role + own grants) for every method, reads included: a user
    needs `view_<model>` to list or read. Visibility of rows is the selectors' job."""

    perms_map = {
        **permissions.DjangoModelPermissions.perms_map,
        "GET": ["%(app_label)s.view_%(model_name)s"],
        "HEAD": ["%(app_label)s.view_%(model_name)s"],
        "OPTIONS": [],
    }


class Pagination(pagination.PageNumberPagination):
    page_size = 50
    page_size_query_param = "page_size"
    max_page_size = 500


def exception_handler(exc, context):
    """Map domain errors once: ApplicationError -> 400 (409 for conflicts), Django validation
    errors -> 400 with field messages, 'not visible' -> 404."""
    # Imported here: rest_framework.views reads DEFAULT_PERMISSION_CLASSES (this module) on import.
    from rest_framework.views import exception_handler as drf_exception_handler

    if isinstance(exc, ApplicationError):
        if exc.code == "not_found":
            exc = Http404(exc.message)
        elif exc.code == "permission_denied":
            exc = exceptions.PermissionDenied(exc.message)
        else:
            body = {"detail": exc.message, "code": exc.code}
            if isinstance(exc, ImportRowsError):
                body["errors"] = exc.extra["errors"]
            code = (
                status.HTTP_409_CONFLICT
                if isinstance(exc, ConflictError)
                else status.HTTP_400_BAD_REQUEST
            )
            return Response(body, status=code)
    elif isinstance(exc, DjangoValidationError):
        detail = (
            exc.message_dict if hasattr(exc, "error_dict") else {"non_field_errors": exc.messages}
        )
        exc = exceptions.ValidationError(detail)
    return drf_exception_handler(exc, context)
