"""WebSocket `/ws/live/`: the live feed of positions, device status, alarms and commands.

Authentication: the session cookie (pages of the site) or a DRF token (the mobile app), as
`?token=<key>` or an `Authorization: Token <key>` header. Anonymous connections and bad tokens
are accepted and closed at once with code 4401 (so clients can tell "log in again" from a
network error); a user without `vehicles.view_vehicle` gets 4403.

Server -> client (JSON):
    {"type": "batch", "items": [{"type": "position" | "device_status" | "alarm" | "command"
                                         | "task",
                                 "vehicle_id": ..., "customer_id": ..., ...}, ...]}
    {"type": "pong"}
    {"type": "subscribed", "vehicles": [ids] | null}
    {"type": "error", "code": "bad_request", "detail": "..."}
Client -> server:
    {"type": "ping"}
    {"type": "subscribe", "vehicles": [ids]}    only these vehicles from now on (null: all)

Items addressed to one user (`carloan.realtime.ADDRESSEE`, e.g. a work order assigned to a
field worker, which arrive through the user's own group `user_group(id)`) reach that user only,
whatever vehicles they subscribed to.

Authorization lives in `gateway.selectors.live_scope_for` (the same visibility rule as
everywhere else); it is read again at most every `LIVE_RECHECK_SECONDS` while messages flow, so
a deactivated user is cut off and a vehicle that is no longer theirs stops arriving.
"""

from __future__ import annotations

import json
import time
from urllib.parse import parse_qs

from channels.auth import AuthMiddlewareStack
from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncJsonWebsocketConsumer
from channels.security.websocket import AllowedHostsOriginValidator
from django.conf import settings
from django.contrib.auth.models import AnonymousUser
from django.utils.translation import gettext as _

from carloan.errors import ApplicationError
from carloan.realtime import ADDRESSEE, user_group

CLOSE_UNAUTHENTICATED = 4401
CLOSE_FORBIDDEN = 4403
CLOSE_CODES = {"not_authenticated": CLOSE_UNAUTHENTICATED, "permission_denied": CLOSE_FORBIDDEN}
MAX_SUBSCRIBE = 10_000  # vehicle ids in one subscribe message


def _scope_for(user):
    from gateway.selectors import live_scope_for

    return live_scope_for(user)


class LiveConsumer(AsyncJsonWebsocketConsumer):
    """Authenticate from scope["user"], authorize with `live_scope_for`, join the customer
    groups, forward the items the user may see. Nothing else."""

    clock = staticmethod(time.monotonic)

    @property
    def recheck_seconds(self) -> float:
        return float(getattr(settings, "LIVE_RECHECK_SECONDS", 5.0))

    async def connect(self):
        self.live = None
        self.only: frozenset[int] | None = None
        user = self.scope.get("user")
        if user is None or not user.is_authenticated:
            await self.accept()
            await self.close(code=CLOSE_UNAUTHENTICATED)
            return
        try:
            live = await database_sync_to_async(_scope_for)(user)
        except ApplicationError as exc:
            await self.accept()
            await self.close(code=CLOSE_CODES.get(exc.code, CLOSE_FORBIDDEN))
            return
        # Join before accepting: nothing published after the handshake can be missed.
        await self._join(live)
        await self.accept()

    def _groups_for(self, live) -> frozenset[str]:
        # The customers' groups, plus the user's own for items addressed to them.
        return live.groups | {user_group(self.scope["user"].pk)}

    async def _join(self, live) -> None:
        old = self._groups_for(self.live) if self.live is not None else frozenset()
        new = self._groups_for(live)
        for group in new - old:
            await self.channel_layer.group_add(group, self.channel_name)
        for group in old - new:
            await self.channel_layer.group_discard(group, self.channel_name)
        self.live = live
        self.checked_at = self.clock()

    async def disconnect(self, code):
        if getattr(self, "live", None) is not None:
            for group in self._groups_for(self.live):
                await self.channel_layer.group_discard(group, self.channel_name)
            self.live = None

    async def live_batch(self, event):
        """A channel-layer message of carloan.realtime: forward what the user may see."""
        if self.live is None:
            return
        if self.clock() - self.checked_at >= self.recheck_seconds:
            try:
                await self._join(await database_sync_to_async(_scope_for)(self.scope["user"]))
            except ApplicationError as exc:
                await self.disconnect(None)
                await self.close(code=CLOSE_CODES.get(exc.code, CLOSE_FORBIDDEN))
                return
        live, only, me = self.live, self.only, self.scope["user"].pk
        items = [
            item
            for item in event.get("items", ())
            if live.allows(item)
            and (
                item[ADDRESSEE] == me
                if ADDRESSEE in item
                else only is None or item.get("vehicle_id") in only
            )
        ]
        if items:
            await self.send_json({"type": "batch", "items": items})

    async def receive(self, text_data=None, bytes_data=None, **kwargs):
        try:
            content = json.loads(text_data if text_data is not None else bytes_data)
        except (TypeError, ValueError, UnicodeDecodeError):
            await self._error(_("Send JSON objects."))
            return
        await self.receive_json(content)

    async def receive_json(self, content, **kwargs):
        kind = content.get("type") if isinstance(content, dict) else None
        if kind == "ping":
            await self.send_json({"type": "pong"})
        elif kind == "subscribe":
            vehicles = content.get("vehicles")
            if vehicles is not None and not (
                isinstance(vehicles, list)
                and len(vehicles) <= MAX_SUBSCRIBE
                and all(isinstance(v, int) and not isinstance(v, bool) for v in vehicles)
            ):
                await self._error(
                    _("vehicles must be a list of at most %(n)d vehicle ids, or null.")
                    % {"n": MAX_SUBSCRIBE}
                )
                return
            self.only = frozenset(vehicles) if vehicles is not None else None
            await self.send_json(
                {
                    "type": "subscribed",
                    "vehicles": sorted(self.only) if self.only is not None else None,
                }
            )
        else:
            await self._error(_('Unknown message; send {"type": "ping"} or "subscribe".'))

    async def _error(self, detail: str) -> None:
        await self.send_json({"type": "error", "code": "bad_request", "detail": str(detail)})


# --- Authentication for the router -------------------------------------------------------------
def _token_from_scope(scope) -> str | None:
    for name, value in scope.get("headers", ()):
        if name == b"authorization":
            keyword, _sep, key = value.decode("latin1").partition(" ")
            if keyword.lower() == "token" and key.strip():
                return key.strip()
    values = parse_qs(scope.get("query_string", b"").decode("latin1")).get("token")
    return values[0] if values else None


def _user_for_token(key: str):
    from rest_framework.exceptions import AuthenticationFailed

    from carloan.api import TokenAuthentication

    try:
        user, _token = TokenAuthentication().authenticate_credentials(key)
    except AuthenticationFailed:
        return AnonymousUser()
    return user


class TokenOrSessionAuth:
    """Connections that carry a DRF token (the mobile app) are authenticated by it; all others
    by the session cookie, behind the Origin check. A token is an explicit credential that a
    foreign page cannot borrow, so it needs no Origin (native WebSocket clients send none); the
    cookie is ambient, so cookie connections must come from one of ALLOWED_HOSTS (cross-site
    WebSocket hijacking). A bad token is anonymous, never a fallback to the cookie."""

    def __init__(self, inner):
        self.inner = inner
        self.session_app = AllowedHostsOriginValidator(AuthMiddlewareStack(inner))

    async def __call__(self, scope, receive, send):
        key = _token_from_scope(scope)
        if key is None:
            return await self.session_app(scope, receive, send)
        user = await database_sync_to_async(_user_for_token)(key)
        return await self.inner({**scope, "user": user}, receive, send)
