"""Test settings: the real settings with test-only speed-ups."""

import os
import re

os.environ.setdefault("DEBUG", "true")
# The suite must not depend on a developer's .env file.
os.environ.setdefault("CARLOAN_ENV_FILE", "/nonexistent")

from carloan.settings import *  # noqa: E402,F403

PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}
LANGUAGE_CODE = "en"
# One directory per pytest-xdist worker: parallel tests must not see each other's uploads.
MEDIA_ROOT = VAR_DIR / f"test-media-{os.environ.get('PYTEST_XDIST_WORKER', 'main')}"  # noqa: F405
REST_FRAMEWORK = {**REST_FRAMEWORK, "DEFAULT_THROTTLE_RATES": {"login": "1000/min"}}  # noqa: F405
Q_CLUSTER = {**Q_CLUSTER, "sync": True}  # noqa: F405  (async_task runs inline in tests)
ALARM_AUTO_CLOSE_AFTER_S = 0
if DATABASES["default"]["ENGINE"].endswith("spatialite"):  # noqa: F405
    # In memory, also under pytest-xdist (which otherwise derives a file name from NAME).
    DATABASES["default"].setdefault("TEST", {})["NAME"] = ":memory:"  # noqa: F405
# Each pytest-xdist worker (and each run) gets its own key space in a shared Redis cache: counters
# such as throttles and the auth cache's generation must not leak between parallel tests. And its
# own Redis database: `cache.clear()` (FLUSHDB) in one worker must not wipe the channel-layer keys
# another worker's WebSocket test has in database 0.
_WORKER = os.environ.get("PYTEST_XDIST_WORKER", "main")
CACHES = {
    alias: {**config, "KEY_PREFIX": f"test-{_WORKER}-{os.getpid()}"}
    for alias, config in CACHES.items()  # noqa: F405
}
if CACHES["default"]["BACKEND"].endswith("RedisCache"):
    _db = 1 + (int(_WORKER[2:]) % 15 if _WORKER.startswith("gw") else 0)
    CACHES["default"]["LOCATION"] = re.sub(r"(/\d*)?$", f"/{_db}", REDIS_URL.rstrip("/"), count=1)  # noqa: F405
# Tests invalidate the API auth cache through the models (or say so); an entry expiring on a slow,
# loaded machine between two requests of a query-count test must not make the count flaky.
API_AUTH_CACHE_SECONDS = 3600.0
