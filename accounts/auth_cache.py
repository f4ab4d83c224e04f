"""API token authentication results, kept per process for `API_AUTH_CACHE_SECONDS`.

Authenticating a token costs five queries (token + user, the customer, whether a customer above
is deactivated, the user's own and role / group permissions) and ~10 ms of CPU: more than a credit
decision's whole pipeline. A client such as a dealer system or the mobile app sends the same token
again and again, so the outcome (the user with its customer and its permission sets filled in) is
kept for a few seconds and each request gets its own shallow copy.

Revocation stays immediate: saving or deleting a user, token, role, group or customer, or changing
anyone's permissions, roles or groups, clears this process's entries and bumps a generation
number in the shared cache (Redis in production), which every process checks on each request
before it reuses an entry (one cache read). Changes that bypass model signals
(`QuerySet.update()`) are bounded by the time to live. `API_AUTH_CACHE_SECONDS = 0` switches the
cache off.
"""

from __future__ import annotations

import copy
import logging
import threading
from time import monotonic

from django.conf import settings
from django.core.cache import cache

GENERATION_KEY = "accounts:auth-generation"
MAX_ENTRIES = 10_000
logger = logging.getLogger(__name__)

_lock = threading.Lock()
# token key -> (expires at, generation, user, token)
_entries: dict[str, tuple[float, int, object, object]] = {}


def ttl_seconds() -> float:
    return float(getattr(settings, "API_AUTH_CACHE_SECONDS", 10))


def generation() -> int | None:
    """The shared generation; None when the shared cache cannot answer (then nothing is reused)."""
    try:
        return int(cache.get(GENERATION_KEY, 0))
    except Exception:  # noqa: BLE001 - a cache outage must not stop authentication
        logger.warning("auth cache: the shared cache is unavailable", exc_info=True)
        return None


def get(key: str):
    """(user, token) authenticated earlier for `key` and still valid, else None."""
    if ttl_seconds() <= 0:
        return None
    entry = _entries.get(key)
    if entry is None:
        return None
    expires, stamp, user, token = entry
    if monotonic() >= expires or stamp != generation():
        with _lock:
            _entries.pop(key, None)
        return None
    return copy.copy(user), token


def put(key: str, user, token, stamp: int | None) -> None:
    """Remember an authenticated (user, token). `stamp` is `generation()` read before the
    user was: a change committed meanwhile makes the entry stale at once. Fills the user's
    permission caches and its home customer (the visibility bounds) first, so every copy handed
    out answers has_perm and the selectors without a query."""
    from accounts.selectors import home_customer

    if ttl_seconds() <= 0 or stamp is None:
        return
    user.get_all_permissions()
    home_customer(user)
    now = monotonic()
    with _lock:
        if len(_entries) >= MAX_ENTRIES:
            for stale in [k for k, e in _entries.items() if e[0] <= now] or list(_entries):
                del _entries[stale]
        _entries[key] = (now + ttl_seconds(), stamp, user, token)


def invalidate(*args, **kwargs) -> None:
    """Forget every entry, here and (through the shared generation) in every other process."""
    with _lock:
        _entries.clear()
    try:
        cache.add(GENERATION_KEY, 0, None)
        cache.incr(GENERATION_KEY)
    except Exception:  # noqa: BLE001
        logger.warning("auth cache: could not bump the shared generation", exc_info=True)


def connect_signals() -> None:
    """Every change that can alter who a token authenticates as, or what they may do."""
    from django.contrib.auth.models import Group
    from django.db.models.signals import m2m_changed, post_delete, post_save
    from rest_framework.authtoken.models import Token

    from accounts.models import Customer, Role, User

    for model in (User, Token, Customer, Role, Group):
        post_save.connect(
            invalidate, sender=model, dispatch_uid=f"auth_cache_save_{model.__name__}"
        )
        post_delete.connect(
            invalidate, sender=model, dispatch_uid=f"auth_cache_delete_{model.__name__}"
        )
    for through in (
        User.user_permissions.through,
        User.groups.through,
        Role.permissions.through,
        Group.permissions.through,
    ):
        m2m_changed.connect(invalidate, sender=through, dispatch_uid=f"auth_cache_m2m_{through}")
