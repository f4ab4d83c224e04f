"""Login, logout and failed-login events for the operation log (A3).

Django reports these only through its auth signals; the receivers just hand them to the service.
"""

from __future__ import annotations

from django.contrib.auth.models import update_last_login
from django.contrib.auth.signals import user_logged_in, user_logged_out, user_login_failed
from django.dispatch import receiver

from accounts.models import AuthEvent, User
from accounts.services import auth_event_record, user_login_record

# Django's own receiver saves the user to stamp last_login, which would add a "user changed"
# row to the operation log at every login; the login event says it already.
user_logged_in.disconnect(update_last_login, dispatch_uid="update_last_login")


@receiver(user_logged_in, dispatch_uid="accounts_login")
def _logged_in(sender, request, user, **kwargs):
    user_login_record(user=user, request=request)


@receiver(user_logged_out, dispatch_uid="accounts_logout")
def _logged_out(sender, request, user, **kwargs):
    if user is not None:
        auth_event_record(kind=AuthEvent.Kind.LOGOUT, user=user, request=request)


@receiver(user_login_failed, dispatch_uid="accounts_login_failed")
def _login_failed(sender, credentials, request=None, **kwargs):
    username = str(credentials.get("username", ""))
    # Link the event to the account when the name exists, so its customer's admins see it.
    user = User.objects.filter(username=username).first()
    auth_event_record(
        kind=AuthEvent.Kind.LOGIN_FAILED, user=user, username=username, request=request
    )
