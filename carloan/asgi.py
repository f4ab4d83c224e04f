"""ASGI entry point (daphne): HTTP, and the WebSocket live feed at /ws/live/ (carloan.consumers).

WebSocket connections are authenticated by a DRF token (`?token=` or `Authorization: Token`,
the mobile app) or by the session cookie behind the Origin check (the site's pages)."""

import gc
import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "carloan.settings")
django_asgi_app = get_asgi_application()

from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402
from django.urls import path  # noqa: E402

from carloan.consumers import LiveConsumer, TokenOrSessionAuth  # noqa: E402

websocket_urlpatterns = [path("ws/live/", LiveConsumer.as_asgi(), name="ws-live")]

application = ProtocolTypeRouter(
    {
        "http": django_asgi_app,
        "websocket": TokenOrSessionAuth(URLRouter(websocket_urlpatterns)),
    }
)

# Everything imported so far lives as long as the process: keep it out of the garbage
# collector's full passes, which otherwise land on one request in ~100 (60-150 ms, bench/credit).
gc.freeze()
