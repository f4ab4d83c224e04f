"""carloan settings: everything comes from the environment (and an optional `.env` file).

Every variable is documented in `.env.example`. Bad values fail loudly at start-up.
"""

# pyenv's CPython is built without `enable_load_extension`, which SpatiaLite needs. pysqlite3 built
# from source against Debian's SQLite has it; swap it in before Django imports the sqlite backend.
# Settings load before any database backend (manage.py, pytest-django, daphne, qcluster).
import sqlite3 as _stdlib_sqlite3
import sys

if not hasattr(
    _stdlib_sqlite3.Connection, "enable_load_extension"
):  # pragma: no cover - env specific
    import pysqlite3
    import pysqlite3.dbapi2

    sys.modules["sqlite3"] = pysqlite3
    sys.modules["sqlite3.dbapi2"] = pysqlite3.dbapi2

from pathlib import Path  # noqa: E402

import environ  # noqa: E402

# shapely's bundled GEOS must load before SpatiaLite pulls Debian's GEOS into the process: the
# other order wires shapely to the older library's internals (wrong WKT, crashes in prepared
# geometries; see alarms/regions.py). The alarm engine and the places index use shapely.
import shapely  # noqa: E402,F401
from django.core.exceptions import ImproperlyConfigured  # noqa: E402
from django.utils.translation import gettext_lazy as _  # noqa: E402

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = BASE_DIR / "var"

env = environ.Env()
_env_file = Path(env.str("CARLOAN_ENV_FILE", default=str(BASE_DIR / ".env")))
if _env_file.is_file():
    env.read_env(str(_env_file))

DEBUG = env.bool("DEBUG", default=False)

_DEV_SECRET_KEY = "django-insecure-dev-only-key-never-use-in-production"
SECRET_KEY = env.str("SECRET_KEY", default=_DEV_SECRET_KEY if DEBUG else "")
if not SECRET_KEY:
    raise ImproperlyConfigured("SECRET_KEY must be set when DEBUG is off (see .env.example).")

ALLOWED_HOSTS = env.list(
    "ALLOWED_HOSTS", default=["localhost", "127.0.0.1", "[::1]"] if DEBUG else []
)
CSRF_TRUSTED_ORIGINS = env.list("CSRF_TRUSTED_ORIGINS", default=[])

INSTALLED_APPS = [
    # daphne must come before staticfiles: it overrides runserver with the ASGI server.
    "daphne",
    "django.contrib.admin.apps.SimpleAdminConfig",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django.contrib.gis",
    "rest_framework",
    "rest_framework.authtoken",
    "django_filters",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "guardian",
    "mptt",
    "simple_history",
    "channels",
    "django_q",
    "carloan",
    "accounts",
    "devices",
    "vehicles",
    "gateway",
    "alarms",
    "credit",
    "tasks",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.locale.LocaleMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    # Records the acting user on every simple-history row written during the request.
    "simple_history.middleware.HistoryRequestMiddleware",
]

ROOT_URLCONF = "carloan.urls"
WSGI_APPLICATION = "carloan.wsgi.application"
ASGI_APPLICATION = "carloan.asgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "django.template.context_processors.i18n",
                "accounts.context_processors.branding",
                "carloan.pages.context.page_i18n",
            ],
        },
    },
]

# --- Databases -------------------------------------------------------------------------------
# Default: an embedded SpatiaLite file under var/. Production: postgis://user:pass@host:port/db.
VAR_DIR.mkdir(exist_ok=True)
DATABASES = {
    "default": env.db_url("DATABASE_URL", default=f"spatialite:///{VAR_DIR / 'carloan.sqlite3'}"),
}
_engine = DATABASES["default"]["ENGINE"]
if _engine not in (
    "django.contrib.gis.db.backends.spatialite",
    "django.contrib.gis.db.backends.postgis",
):
    raise ImproperlyConfigured(
        f"DATABASE_URL must be spatialite:// or postgis:// (GeoDjango is required), got {_engine}."
    )
if _engine.endswith("postgis"):
    DATABASES["default"].setdefault("CONN_MAX_AGE", env.int("DB_CONN_MAX_AGE", default=60))
    DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
else:
    # SQLite: wait for the writer lock instead of failing at once when web and workers share a file.
    DATABASES["default"].setdefault("OPTIONS", {})["timeout"] = 20
    # Write-ahead log: readers (web) do not block the writer (gateway) and a commit is one fsync
    # of the log (~3 ms here) instead of the rollback journal's several (~16 ms, p99 23 ms),
    # a third of the credit decision's 50 ms budget. synchronous stays FULL: a commit survives
    # a power cut, so an acked position is never lost. (A no-op for the in-memory test database.)
    DATABASES["default"]["OPTIONS"].setdefault("init_command", "PRAGMA journal_mode=WAL;")
    # Transactions take the write lock when they begin: a deferred one that read first and then
    # writes cannot wait for the lock (SQLite answers "database is locked" at once) when the
    # gateway, the worker and the web server share the file.
    DATABASES["default"]["OPTIONS"].setdefault("transaction_mode", "IMMEDIATE")

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- Redis (optional) -------------------------------------------------------------------------
REDIS_URL = env.str("REDIS_URL", default="")
if REDIS_URL:
    CACHES = {
        "default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": REDIS_URL}
    }
    CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "channels_redis.core.RedisChannelLayer",
            "CONFIG": {"hosts": [REDIS_URL]},
        }
    }
else:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
    CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}

# --- Auth -------------------------------------------------------------------------------------
AUTH_USER_MODEL = "accounts.User"
AUTHENTICATION_BACKENDS = [
    # Model permissions = the user's role + the user's own grants (+ Django groups).
    "accounts.backends.RoleModelBackend",
    # Object permissions: single objects shared with a user outside their subtree.
    "guardian.backends.ObjectPermissionBackend",
]
# No guardian anonymous user: anonymous users never see anything here.
ANONYMOUS_USER_NAME = None
GUARDIAN_RAISE_403 = False
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
LOGIN_URL = "login"  # the pages' login; the back office keeps /admin/login/
LOGIN_REDIRECT_URL = "dashboard"
LOGOUT_REDIRECT_URL = "login"
# Map tiles (carloan.maps): osm (WGS-84, default), amap / tencent (GCJ-02), baidu (BD-09, Baidu's
# tile grid); MAP_TILE_URL overrides the URL (an intranet tile server on closed networks).
MAP_PROVIDER = env.str("MAP_PROVIDER", default="osm")
MAP_TILE_URL = env.str("MAP_TILE_URL", default="")

# --- i18n -------------------------------------------------------------------------------------
LANGUAGE_CODE = "zh-hans"
LANGUAGES = [("zh-hans", _("Simplified Chinese")), ("en", _("English"))]
LOCALE_PATHS = [BASE_DIR / "locale"]
TIME_ZONE = env.str("TIME_ZONE", default="Asia/Shanghai")
USE_I18N = True
USE_TZ = True

# --- Static and media -------------------------------------------------------------------------
STATIC_URL = "static/"
STATIC_ROOT = Path(env.str("STATIC_ROOT", default=str(VAR_DIR / "static")))
STATIC_ROOT.mkdir(parents=True, exist_ok=True)  # WhiteNoise warns on every request otherwise
STATICFILES_DIRS = [BASE_DIR / "static"]
MEDIA_URL = "media/"
MEDIA_ROOT = Path(env.str("MEDIA_ROOT", default=str(VAR_DIR / "media")))
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"
        if not DEBUG
        else "django.contrib.staticfiles.storage.StaticFilesStorage"
    },
}
# In DEBUG the web process serves files straight from the apps (no collectstatic needed).
WHITENOISE_USE_FINDERS = DEBUG
DATA_UPLOAD_MAX_NUMBER_FIELDS = 20000  # bulk admin actions post one field per selected row

# --- Security (production = DEBUG off) --------------------------------------------------------
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SESSION_COOKIE_SECURE = env.bool("SESSION_COOKIE_SECURE", default=not DEBUG)
CSRF_COOKIE_SECURE = env.bool("CSRF_COOKIE_SECURE", default=not DEBUG)
SECURE_SSL_REDIRECT = env.bool("SECURE_SSL_REDIRECT", default=not DEBUG)
SECURE_HSTS_SECONDS = env.int("SECURE_HSTS_SECONDS", default=0 if DEBUG else 31536000)
SECURE_HSTS_INCLUDE_SUBDOMAINS = not DEBUG
SECURE_HSTS_PRELOAD = not DEBUG
SECURE_CONTENT_TYPE_NOSNIFF = True
X_FRAME_OPTIONS = "DENY"

SILENCED_SYSTEM_CHECKS = [
    # Debian 12 ships GDAL 3.6; Django 5.2 prefers a newer one but works with it (ctypes bindings).
    "gis.W001",
]

# --- REST API ---------------------------------------------------------------------------------
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "carloan.api.TokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["carloan.api.ModelPermissions"],
    "DEFAULT_PAGINATION_CLASS": "carloan.api.Pagination",
    "PAGE_SIZE": 50,
    "DEFAULT_FILTER_BACKENDS": ["django_filters.rest_framework.DjangoFilterBackend"],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "EXCEPTION_HANDLER": "carloan.api.exception_handler",
    "DEFAULT_THROTTLE_RATES": {"login": env.str("LOGIN_THROTTLE_RATE", default="20/min")},
}
# Seconds a process reuses an API token's authentication (user, customer, permissions); changes
# through the models invalidate at once everywhere (accounts/auth_cache.py). 0: off.
API_AUTH_CACHE_SECONDS = env.float("API_AUTH_CACHE_SECONDS", default=10.0)
SPECTACULAR_SETTINGS = {
    "TITLE": "carloan API",
    "DESCRIPTION": "Risk control for car-loan lenders: customers, vehicles, devices and bindings.",
    "VERSION": "1",
    "SERVE_INCLUDE_SCHEMA": False,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "COMPONENT_SPLIT_REQUEST": True,
    # Several models call a field kind or status with different choice sets: name each set.
    "ENUM_NAME_OVERRIDES": {
        "DeviceKindEnum": "devices.models.DeviceKind",
        "DeviceStatusEnum": "devices.models.Device.Status",
        "CommandStatusEnum": "devices.models.Command.Status",
        "AlarmKindEnum": "alarms.kinds.choices",
        "AlarmStatusEnum": "alarms.models.Alarm.Status",
        "WorkOrderKindEnum": "tasks.kinds.kind_choices",
        "WorkOrderStatusEnum": "tasks.models.WorkOrder.Status",
        "ApplicationStatusEnum": "credit.models.Application.Status",
    },
}


# --- Worker (django-q2: manage.py qcluster; schedules from manage.py setup_schedules) ----------
# Redis is the broker when REDIS_URL is set, else the database (the zero-server default).
Q_CLUSTER = {
    "name": "carloan",
    "workers": env.int("Q_WORKERS", default=2),
    "timeout": 300,  # seconds a task may run
    "retry": 360,  # must exceed timeout
    "max_attempts": 1,
    "catch_up": False,  # after downtime run a missed schedule once, not once per missed slot
    "save_limit": 500,
    "label": _("Worker"),
    **({"redis": REDIS_URL} if REDIS_URL else {"orm": "default"}),
}
ALARM_SCAN_MINUTES = env.int("ALARM_SCAN_MINUTES", default=1)
# Flood control: new alarms per vehicle and kind per hour; further ones count as occurrences.
ALARM_MAX_PER_HOUR = env.int("ALARM_MAX_PER_HOUR", default=10)
# Tolerance: an alarm auto-closes only once its condition was last seen this long before.
ALARM_AUTO_CLOSE_AFTER_S = env.int("ALARM_AUTO_CLOSE_AFTER_S", default=60)
# Map link of an alarm's position (admin, e-mails): {lat} / {lon} are WGS-84 degrees.
ALARM_MAP_URL = env.str(
    "ALARM_MAP_URL", default="https://www.openstreetmap.org/?mlat={lat}&mlon={lon}&zoom=16"
)

# --- Alarm notifications (R7, alarms/notify; checked at start-up by alarms.notify.checks) -----
# Backend per channel, from alarms.notify.registry.NOTIFIERS: console | file | email | sms_http.
NOTIFY_EMAIL_BACKEND = env.str("NOTIFY_EMAIL_BACKEND", default="console")
NOTIFY_SMS_BACKEND = env.str("NOTIFY_SMS_BACKEND", default="file")
NOTIFY_FILE_DIR = env.str("NOTIFY_FILE_DIR", default=str(VAR_DIR / "notifications"))
NOTIFY_EMAIL_FROM = env.str("NOTIFY_EMAIL_FROM", default="")  # empty: DEFAULT_FROM_EMAIL
NOTIFY_SMS_HTTP_URL = env.str("NOTIFY_SMS_HTTP_URL", default="")
NOTIFY_SMS_HTTP_AUTH_HEADER = env.str("NOTIFY_SMS_HTTP_AUTH_HEADER", default="")
NOTIFY_SMS_HTTP_BODY = env.str("NOTIFY_SMS_HTTP_BODY", default="")  # empty: the backend's
NOTIFY_SMS_HTTP_TIMEOUT_S = env.float("NOTIFY_SMS_HTTP_TIMEOUT_S", default=5.0)
# At most NOTIFY_RATE_LIMIT messages per user, vehicle and channel per NOTIFY_RATE_WINDOW_S.
NOTIFY_RATE_LIMIT = env.int("NOTIFY_RATE_LIMIT", default=3)
NOTIFY_RATE_WINDOW_S = env.int("NOTIFY_RATE_WINDOW_S", default=600)
# queue: e-mail / SMS go out from the worker (django-q2), never from the gateway's writer;
# inline: sent by the process that raised the alarm (single-process setups, tests).
NOTIFY_DELIVERY = env.str("NOTIFY_DELIVERY", default="queue")
NOTIFY_SITE_URL = env.str("NOTIFY_SITE_URL", default="")  # back-office links in e-mails


# --- Gateway (manage.py run_gateway; command-line options override) ---------------------------
def _protocol_map(name: str, default: dict, cast) -> dict:
    """`gt06=5023,jt808=5015`: per-protocol values; fails loudly on a malformed entry."""
    raw = env.str(name, default="")
    values = dict(default)
    for entry in filter(None, (e.strip() for e in raw.split(","))):
        key, sep, value = entry.partition("=")
        try:
            if not sep:
                raise ValueError
            values[key.strip().lower()] = cast(value)
        except ValueError:
            msg = f"{name}: expected PROTO=VALUE pairs, got {entry!r}"
            raise ImproperlyConfigured(msg) from None
    return values


GATEWAY_HOST = env.str("GATEWAY_HOST", default="127.0.0.1")
GATEWAY_PORTS = _protocol_map("GATEWAY_PORTS", {"gt06": 5023, "jt808": 5015, "h02": 5013}, int)
GATEWAY_IDLE_TIMEOUT = env.float("GATEWAY_IDLE_TIMEOUT", default=300.0)
GATEWAY_IDLE_TIMEOUTS = _protocol_map("GATEWAY_IDLE_TIMEOUTS", {}, float)
GATEWAY_MAX_BAD_FRAMES = env.int("GATEWAY_MAX_BAD_FRAMES", default=10)
GATEWAY_BATCH_SIZE = env.int("GATEWAY_BATCH_SIZE", default=500)
GATEWAY_BATCH_WAIT_MS = env.int("GATEWAY_BATCH_WAIT_MS", default=100)
GATEWAY_SUBPACKAGE_TIMEOUT_S = env.float("GATEWAY_SUBPACKAGE_TIMEOUT_S", default=30.0)
GATEWAY_STATUS_INTERVAL_S = env.float("GATEWAY_STATUS_INTERVAL_S", default=10.0)
GATEWAY_STATS_LOG_INTERVAL_S = env.float("GATEWAY_STATS_LOG_INTERVAL_S", default=60.0)
# Position hygiene (FEATURES.md T5)
GATEWAY_FUTURE_TOLERANCE_S = env.int("GATEWAY_FUTURE_TOLERANCE_S", default=600)
GATEWAY_MAX_IMPLIED_SPEED_KMH = env.float("GATEWAY_MAX_IMPLIED_SPEED_KMH", default=300.0)
GATEWAY_DRIFT_RADIUS_M = env.float("GATEWAY_DRIFT_RADIUS_M", default=50.0)

# --- Field work (tasks/, docs/TASKS.md) ---------------------------------------------------------
# Largest work-order photo accepted (bytes); the type is checked from the content.
TASKS_PHOTO_MAX_BYTES = env.int("TASKS_PHOTO_MAX_BYTES", default=10 * 1024 * 1024)
# Requests per field worker to the mobile API (DRF rate: N/s, N/min, N/hour, N/day).
TASKS_MOBILE_THROTTLE_RATE = env.str("TASKS_MOBILE_THROTTLE_RATE", default="240/min")
_count, _sep, _unit = TASKS_MOBILE_THROTTLE_RATE.partition("/")
if not (_count.isdigit() and _unit in ("s", "sec", "m", "min", "h", "hour", "d", "day")):
    raise ImproperlyConfigured(
        f"TASKS_MOBILE_THROTTLE_RATE: expected N/min (or /s, /hour, /day), "
        f"got {TASKS_MOBILE_THROTTLE_RATE!r}"
    )
# A field worker whose last position is older than this is not suggested for new orders.
TASKS_WORKER_FRESH_MINUTES = env.int("TASKS_WORKER_FRESH_MINUTES", default=30)

# --- Product ----------------------------------------------------------------------------------
PLATFORM_TITLE = env.str("PLATFORM_TITLE", default="carloan")
# Simple-history: no history rows for bulk updates that bypass services.
SIMPLE_HISTORY_REVERT_DISABLED = True

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": env.str("LOG_LEVEL", default="INFO")},
}
