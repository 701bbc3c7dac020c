"""Settings for tradingdash: every knob comes from the environment (see .env.example), with safe defaults
for development and strict checks for production."""

from __future__ import annotations

import ipaddress
from datetime import timedelta
from pathlib import Path

from django.core.exceptions import ImproperlyConfigured

from tradingdash import __version__
from tradingdash.environment import Env, env_file_read

BASE_DIR = Path(__file__).resolve().parent.parent

# An empty variable is not set (`.env.example` leaves `KEY=` for "the default"): tradingdash/environment.py.
env = Env()
# A local .env file is read when present (never committed), as compose reads it; real environment variables win.
env_file_read(BASE_DIR / ".env")

DEBUG = env.bool("DEBUG", default=False)
SECRET_KEY = env("SECRET_KEY", default="" if not DEBUG else "dev-only-insecure-key-do-not-use-in-production")
if not SECRET_KEY:
    raise ImproperlyConfigured("SECRET_KEY must be set when DEBUG is off")

VERSION = __version__
ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=["localhost", "127.0.0.1", "[::1]", "testserver"])
CSRF_TRUSTED_ORIGINS = env.list("CSRF_TRUSTED_ORIGINS", default=[])

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "corsheaders",
    "rest_framework",
    "rest_framework_simplejwt.token_blacklist",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "django_prometheus",
    "django_celery_beat",
    "django_celery_results",
    "accounts",
    "market",
    "predictions",
    "signals",
    "watchlists",
    "alerts",
    "stream",
    "charts",
    "tradingdash.apps.TradingdashConfig",  # system checks only (tradingdash/checks.py)
]
# Django's deploy checks look for its security, clickjacking and CSRF middleware by dotted path; ours subclass
# them, and tradingdash/checks.py runs those checks against ours instead.
SILENCED_SYSTEM_CHECKS = ["security.W001", "security.W002", "security.W003"]

# Each one async-capable without thread hops under ASGI (tradingdash/middleware.py): Django's own and
# django-prometheus' run their hooks through sync_to_async in async mode, WhiteNoise's is sync only.
MIDDLEWARE = [
    "tradingdash.middleware.PrometheusBeforeMiddleware",
    "tradingdash.middleware.RequestIDMiddleware",
    # Cache writes the answer does not need run once it is sent (tradingdash/after_response.py).
    "tradingdash.after_response.AfterResponseMiddleware",
    "tradingdash.middleware.SecurityMiddleware",
    # Static files (admin, API docs, charts) straight from gunicorn: compressed, immutable hashed names.
    "tradingdash.middleware.WhiteNoiseMiddleware",
    "tradingdash.middleware.CorsMiddleware",
    # Sessions, Django's auth and messages serve the admin; /api/ requests skip them (tradingdash/middleware.py).
    "tradingdash.middleware.SessionMiddleware",
    "tradingdash.middleware.CommonMiddleware",
    "tradingdash.middleware.CsrfViewMiddleware",
    "tradingdash.middleware.AuthenticationMiddleware",
    "tradingdash.middleware.MessageMiddleware",
    "tradingdash.middleware.XFrameOptionsMiddleware",
    "tradingdash.middleware.PrometheusAfterMiddleware",
]

ROOT_URLCONF = "tradingdash.urls"
WSGI_APPLICATION = "tradingdash.wsgi.application"
ASGI_APPLICATION = "tradingdash.asgi.application"
APPEND_SLASH = False

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "tradingdash" / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

# --- Database
DATABASES = {"default": env.db("DATABASE_URL", default=f"sqlite:///{BASE_DIR / 'trading_dashboard.db'}")}
DATABASES["default"]["CONN_MAX_AGE"] = env.int("CONN_MAX_AGE", default=60)
DATABASES["default"]["CONN_HEALTH_CHECKS"] = env.bool("CONN_HEALTH_CHECKS", default=True)
if DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql":
    DATABASES["default"].setdefault("OPTIONS", {}).setdefault(
        "connect_timeout", env.int("DB_CONNECT_TIMEOUT", 5)
    )
# The ASGI web server runs each request's sync code on a thread lent to it (tradingdash/asgi_handler.py; at most 8
# idle ones kept), so Django's per-thread persistent connections would come and go with those threads: there, a
# pool shared by the process keeps them instead (gunicorn.conf.py sets DATABASE_POOL=1; Celery keeps CONN_MAX_AGE).
if (
    env.bool("DATABASE_POOL", default=False)
    and DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql"
):
    _pool = {
        "min_size": env.int("DATABASE_POOL_MIN_SIZE", default=2),
        "max_size": env.int("DATABASE_POOL_MAX_SIZE", default=10),
        "timeout": env.float("DATABASE_POOL_TIMEOUT", default=10),
    }
    DATABASES["default"]["CONN_MAX_AGE"] = 0  # Django checks pooled connections when CONN_HEALTH_CHECKS is on
    DATABASES["default"]["OPTIONS"]["pool"] = _pool
# django-prometheus' wrappers of the same engines count connections, queries, errors and query latency.
_INSTRUMENTED_ENGINES = {
    "django.db.backends.postgresql": "django_prometheus.db.backends.postgresql",
    "django.db.backends.sqlite3": "django_prometheus.db.backends.sqlite3",
}
DATABASES["default"]["ENGINE"] = _INSTRUMENTED_ENGINES.get(
    DATABASES["default"]["ENGINE"], DATABASES["default"]["ENGINE"]
)
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- Cache and broker
REDIS_URL = env("REDIS_URL", default="")
CACHE_KEY_PREFIX = env("CACHE_KEY_PREFIX", default="tradingdash")
# A dead Redis must cost milliseconds, not seconds.
REDIS_CONNECT_TIMEOUT = env.float("REDIS_CONNECT_TIMEOUT", default=0.25)
REDIS_SOCKET_TIMEOUT = env.float("REDIS_SOCKET_TIMEOUT", default=0.5)
if REDIS_URL:
    CACHES = {
        "default": {
            "BACKEND": "tradingdash.cache.ResilientRedisCache",
            "LOCATION": REDIS_URL,
            "KEY_PREFIX": CACHE_KEY_PREFIX,
            "OPTIONS": {
                "CLIENT_CLASS": "django_redis.client.DefaultClient",
                "SOCKET_CONNECT_TIMEOUT": REDIS_CONNECT_TIMEOUT,
                "SOCKET_TIMEOUT": REDIS_SOCKET_TIMEOUT,
                "IGNORE_EXCEPTIONS": True,
            },
        }
    }
else:
    CACHES = {
        "default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache", "LOCATION": "tradingdash"}
    }

# --- Channel layer (the live stream's fan-out): Redis when configured, so every web process and worker shares
# it; in memory (one process, development only) without REDIS_URL.
if REDIS_URL:
    CHANNEL_LAYERS = {
        "default": {
            # Pub/sub: a group message is published once and each web process fans it out to its own sockets
            # (bench/ws_fanout.py); live messages are not stored, so a client that was away catches up over the API.
            "BACKEND": "stream.layers.PubSubChannelLayer",
            "CONFIG": {
                "hosts": [
                    {
                        "address": REDIS_URL,
                        "socket_connect_timeout": env.float("REDIS_CONNECT_TIMEOUT", 0.25),
                        # A frozen Redis fails a publish within this; subscribers read without a timeout.
                        "socket_timeout": 10,
                    }
                ],
                "prefix": f"{env('CACHE_KEY_PREFIX', default='tradingdash')}:asgi",
            },
        }
    }
else:
    CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}

# --- Auth
AUTH_USER_MODEL = "accounts.User"
AUTHENTICATION_BACKENDS = ["accounts.backends.UsernameOrEmailBackend"]
PASSWORD_HASHERS = [
    # bcrypt truncates at 72 bytes; the SHA256 variant hashes the whole password first.
    "django.contrib.auth.hashers.BCryptSHA256PasswordHasher",
    "django.contrib.auth.hashers.PBKDF2PasswordHasher",
    "django.contrib.auth.hashers.ScryptPasswordHasher",
]
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

# Empty means unset (.env.example lists it empty, and compose passes that on): PyJWT refuses an empty HMAC key.
JWT_SIGNING_KEY = env("JWT_SIGNING_KEY", default="") or SECRET_KEY
ACCESS_TOKEN_EXPIRE_MINUTES = env.int("ACCESS_TOKEN_EXPIRE_MINUTES", default=30)
REFRESH_TOKEN_EXPIRE_DAYS = env.int("REFRESH_TOKEN_EXPIRE_DAYS", default=7)
SIMPLE_JWT = {
    "ALGORITHM": "HS256",
    "SIGNING_KEY": JWT_SIGNING_KEY,
    "ACCESS_TOKEN_LIFETIME": timedelta(minutes=ACCESS_TOKEN_EXPIRE_MINUTES),
    "REFRESH_TOKEN_LIFETIME": timedelta(days=REFRESH_TOKEN_EXPIRE_DAYS),
    "ROTATE_REFRESH_TOKENS": True,
    "BLACKLIST_AFTER_ROTATION": True,
    "UPDATE_LAST_LOGIN": True,
    "AUTH_HEADER_TYPES": ("Bearer",),
    # Tokens carry a hash of the password they were issued under: a password change revokes every access token
    # issued before it (refresh tokens are blacklisted as well: accounts.services.password_change).
    "CHECK_REVOKE_TOKEN": True,
}
# Seconds an authenticated user's row is kept per web process (accounts/authentication.py): a deactivated user,
# or a token issued before a password change, is refused at most this long after the change. 0 reads the user
# on every request.
AUTH_USER_CACHE_SECONDS = env.float("AUTH_USER_CACHE_SECONDS", default=30)

AUTH_THROTTLE_RATE = env("AUTH_THROTTLE_RATE", default="5/minute")
GENERATION_THROTTLE_RATE = env("GENERATION_THROTTLE_RATE", default="30/minute")

# --- REST framework and OpenAPI
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": ["accounts.authentication.CachedUserJWTAuthentication"],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_RENDERER_CLASSES": ["tradingdash.renderers.PresentingJSONRenderer"],
    # ?format= is the historical endpoint's rows/columns choice, not DRF's renderer override.
    "URL_FORMAT_OVERRIDE": None,
    "DEFAULT_PARSER_CLASSES": ["tradingdash.parsers.JSONParser"],
    "DEFAULT_SCHEMA_CLASS": "tradingdash.openapi.AutoSchema",
    "EXCEPTION_HANDLER": "tradingdash.exceptions.api_exception_handler",
    "UNAUTHENTICATED_USER": "django.contrib.auth.models.AnonymousUser",
    # Client IPs (throttles) come from REMOTE_ADDR unless trusted proxies are declared: with DRF's default
    # (None) any client could pick its own address with a forged X-Forwarded-For.
    "NUM_PROXIES": int(env("NUM_PROXIES", default="") or 0),
}
if DEBUG:
    REST_FRAMEWORK["DEFAULT_RENDERER_CLASSES"].append("rest_framework.renderers.BrowsableAPIRenderer")

SPECTACULAR_SETTINGS = {
    "TITLE": "tradingdash API",
    "DESCRIPTION": "Market data, ML price predictions and trading signals for NSE instruments.",
    "VERSION": __version__,
    "SERVE_INCLUDE_SCHEMA": False,
    "SERVE_PERMISSIONS": ["rest_framework.permissions.AllowAny"],
    "SERVE_AUTHENTICATION": [],
    "COMPONENT_SPLIT_REQUEST": True,
    "SCHEMA_PATH_PREFIX": r"/api/",
    "PREPROCESSING_HOOKS": ["tradingdash.routing.drop_trailing_slash_aliases"],
    "ENUM_NAME_OVERRIDES": {
        "SessionEnum": ["pre_open", "open", "closed"],
        "AlertKindEnum": "alerts.models.AlertKind",
        "AlertChannelEnum": "alerts.models.Channel",
        "NotificationChannelKindEnum": "alerts.models.NotificationChannel.Kind",
    },
    # Swagger UI and ReDoc from our own static files (drf-spectacular-sidecar), never a CDN: /docs works offline.
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
}

CORS_ALLOWED_ORIGINS = env.list(
    "CORS_ALLOWED_ORIGINS", default=["http://localhost:3000", "http://localhost:8000"]
)
# A dashboard on another origin reads when to retry a 429/503 and the id to quote in a bug report.
CORS_EXPOSE_HEADERS = ["Retry-After", "X-Request-ID"]

# --- Security (production values come from the environment; see README "Production")
SECURE_PROXY_SSL_HEADER = (
    ("HTTP_X_FORWARDED_PROTO", "https") if env.bool("USE_X_FORWARDED_PROTO", False) else None
)
SECURE_SSL_REDIRECT = env.bool("SECURE_SSL_REDIRECT", default=False)
SECURE_HSTS_SECONDS = env.int("SECURE_HSTS_SECONDS", default=0)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env.bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", default=SECURE_HSTS_SECONDS > 0)
SECURE_HSTS_PRELOAD = env.bool("SECURE_HSTS_PRELOAD", default=SECURE_HSTS_SECONDS > 0)
SESSION_COOKIE_SECURE = env.bool("SESSION_COOKIE_SECURE", default=False)
CSRF_COOKIE_SECURE = env.bool("CSRF_COOKIE_SECURE", default=False)
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"
DATA_UPLOAD_MAX_MEMORY_SIZE = env.int("DATA_UPLOAD_MAX_MEMORY_SIZE", default=1024 * 1024)
# /metrics: open to staff and to these client addresses or networks (e.g. the Prometheus host, 10.0.0.0/8).
METRICS_ALLOWED_IPS = env.list("METRICS_ALLOWED_IPS", default=["127.0.0.1", "::1"] if DEBUG else [])
for _entry in METRICS_ALLOWED_IPS:
    try:
        ipaddress.ip_network(_entry, strict=False)
    except ValueError as exc:
        raise ImproperlyConfigured(f"METRICS_ALLOWED_IPS: {_entry!r} is not an address or network") from exc

# --- I18N, static, media
LANGUAGE_CODE = "en-us"
# People read Indian Standard Time in the admin; storage stays UTC (USE_TZ), beat's zone is CELERY_TIMEZONE, and
# the API renders its own times explicitly (see accounts' serializers for the one ModelSerializer datetime).
TIME_ZONE = "Asia/Kolkata"
USE_I18N = True
USE_TZ = True
EXCHANGE_TIME_ZONE = "Asia/Kolkata"
STATIC_URL = "static/"
STATIC_ROOT = Path(env("STATIC_ROOT", default=str(BASE_DIR / "staticfiles")))
DATA_DIR = Path(env("DATA_DIR", default=str(BASE_DIR / "var")))
MEDIA_ROOT = Path(env("MEDIA_ROOT", default=str(DATA_DIR / "media")))
MEDIA_URL = "media/"
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    # `collectstatic` writes hashed, compressed copies and a manifest into STATIC_ROOT (the Docker image does it
    # at build time); WhiteNoise serves them. With DEBUG=1 the unhashed files come straight from the apps.
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"},
}

# --- Celery
# "memory://localhost/": with no host kombu logs "No hostname was supplied" on every connection (every request).
CELERY_BROKER_URL = env("CELERY_BROKER_URL", default=REDIS_URL or "memory://localhost/")
# Without a broker (zero-setup development) tasks run inline; with Redis they go to the workers.
CELERY_TASK_ALWAYS_EAGER = env.bool(
    "CELERY_TASK_ALWAYS_EAGER", default=not (REDIS_URL or env("CELERY_BROKER_URL", default=""))
)
CELERY_TASK_EAGER_PROPAGATES = True
CELERY_RESULT_BACKEND = env("CELERY_RESULT_BACKEND", default="django-db")
CELERY_RESULT_EXTENDED = True
CELERY_CACHE_BACKEND = "default"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TASK_SERIALIZER = "json"
CELERY_RESULT_SERIALIZER = "json"
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_TIME_LIMIT = env.int("CELERY_TASK_TIME_LIMIT", default=30 * 60)
CELERY_TASK_SOFT_TIME_LIMIT = env.int("CELERY_TASK_SOFT_TIME_LIMIT", default=25 * 60)
CELERY_TASK_TRACK_STARTED = True
CELERY_TASK_DEFAULT_QUEUE = "default"
CELERY_TASK_ROUTES = {
    "predictions.train_models": {"queue": "ml"},
    "predictions.retrain_all": {"queue": "ml"},
    "predictions.generate_prediction": {"queue": "ml"},
    "tradingdash.compute": {"queue": "compute"},
}
# Work a web request needs that would load pandas, TA-Lib, scikit-learn or a provider's HTTP stack into the web
# worker (provider fetches, indicators, signals, backtests, predictions) runs in a worker of COMPUTE_QUEUE; the
# request waits up to COMPUTE_TIMEOUT seconds (tradingdash/offload.py). Off: it runs in the web worker.
COMPUTE_OFFLOAD = env.bool("COMPUTE_OFFLOAD", default=True)
COMPUTE_QUEUE = CELERY_TASK_ROUTES["tradingdash.compute"]["queue"]
COMPUTE_TIMEOUT = env.int("COMPUTE_TIMEOUT", default=30)
CELERY_TASK_STORE_EAGER_RESULT = True
CELERY_BROKER_TRANSPORT_OPTIONS = {
    "visibility_timeout": env.int("CELERY_VISIBILITY_TIMEOUT", default=3600),
    # kombu waits forever on a broker that stops answering without closing the connection (frozen, failing
    # over, dropped by a firewall); bounded, a publish from a request fails in seconds (a 503), not never.
    "socket_timeout": env.float("CELERY_BROKER_SOCKET_TIMEOUT", default=2.0),
    "socket_connect_timeout": env.float("CELERY_BROKER_CONNECT_TIMEOUT", default=2.0),
}
# Two retries instead of Celery's three: a broker that does not answer costs a request about 3 x 2 s at most.
CELERY_TASK_PUBLISH_RETRY_POLICY = {
    "max_retries": 2,
    "interval_start": 0,
    "interval_step": 0.2,
    "interval_max": 0.5,
}
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_BEAT_SCHEDULER = "tradingdash.beat:Scheduler"  # django-celery-beat's, keeping staff edits (beat.py)
CELERY_TIMEZONE = EXCHANGE_TIME_ZONE  # beat crontabs read in exchange time
CELERY_WORKER_HIJACK_ROOT_LOGGER = False

# --- Market data
MARKET_DATA_PROVIDER = env("MARKET_DATA_PROVIDER", default="yfinance")
MARKET_DATA_CSV_DIR = Path(env("MARKET_DATA_CSV_DIR", default=str(DATA_DIR / "csv")))
# The CSV files hold split-adjusted prices (yfinance's own export): read them back as traded.
MARKET_DATA_CSV_SPLIT_ADJUSTED = env.bool("MARKET_DATA_CSV_SPLIT_ADJUSTED", default=False)
DEFAULT_SYMBOL_SUFFIX = env("DEFAULT_SYMBOL_SUFFIX", default=".NS")
YFINANCE_TIMEOUT = env.int("YFINANCE_TIMEOUT", default=10)
YFINANCE_MAX_REQUESTS_PER_MINUTE = env.int("YFINANCE_MAX_REQUESTS_PER_MINUTE", default=60)
YFINANCE_AUTO_ADJUST = env.bool("YFINANCE_AUTO_ADJUST", default=False)
# Longest wait for a slot of the request budget: web requests answer stale data or 503 after this; tasks wait more.
YFINANCE_LIMITER_MAX_WAIT_SECONDS = env.float("YFINANCE_LIMITER_MAX_WAIT_SECONDS", default=2.0)
YFINANCE_LIMITER_TASK_MAX_WAIT_SECONDS = env.float("YFINANCE_LIMITER_TASK_MAX_WAIT_SECONDS", default=120.0)
MARKET_DATA_CACHE_TTL = env.int("MARKET_DATA_CACHE_TTL", default=300)
QUOTE_CACHE_TTL_OPEN = env.int("QUOTE_CACHE_TTL_OPEN", default=15)
# Per-process layers in front of Redis (market/caching.py, market/sources.py): how long another process's sync
# (a new quote, a new version of a symbol's candles) or holiday edit can go unseen by this one. 0 turns them off.
MARKET_LOCAL_CACHE_SECONDS = env.float("MARKET_LOCAL_CACHE_SECONDS", default=1)
HOLIDAYS_LOCAL_CACHE_SECONDS = env.float("HOLIDAYS_LOCAL_CACHE_SECONDS", default=60)
MARKET_MULTIPLE_MAX_SYMBOLS = 50
# Retries of a scheduled sync after a provider outage or rate limit: jittered, doubling from this many seconds.
MARKET_SYNC_RETRY_BACKOFF = env.int("MARKET_SYNC_RETRY_BACKOFF", default=30)
MARKET_SYNC_RETRY_BACKOFF_MAX = env.int("MARKET_SYNC_RETRY_BACKOFF_MAX", default=600)
# The whole-market sync (SyncRun): symbols per provider request, and the history it keeps complete (days).
MARKET_SYNC_BATCH_SIZE = env.int("MARKET_SYNC_BATCH_SIZE", default=50)
MARKET_SYNC_DAYS = env.int("MARKET_SYNC_DAYS", default=3650)

# Quotes of watched and live-subscribed symbols are refreshed this often while their exchange is open, in
# batches of QUOTE_BATCH_SIZE symbols per provider call.
QUOTE_REFRESH_SECONDS = env.int("QUOTE_REFRESH_SECONDS", default=60)
QUOTE_BATCH_SIZE = env.int("QUOTE_BATCH_SIZE", default=50)

# --- Live stream (WebSocket /ws/stream)
STREAM_HEARTBEAT_SECONDS = env.float("STREAM_HEARTBEAT_SECONDS", default=15)
STREAM_AUTH_TIMEOUT_SECONDS = env.float("STREAM_AUTH_TIMEOUT_SECONDS", default=10)
STREAM_MAX_SYMBOLS = env.int("STREAM_MAX_SYMBOLS", default=100)
# Open authenticated streams per user, across every web process (stream.slots); one more is refused (4429).
STREAM_MAX_PER_USER = env.int("STREAM_MAX_PER_USER", default=5)
# Client messages per connection: a burst of this many, then this many a second (each subscribe costs a query and
# up to 4 x STREAM_MAX_SYMBOLS Redis subscriptions); beyond, each is refused, and as many refusals in a row close.
STREAM_MESSAGE_BURST = env.int("STREAM_MESSAGE_BURST", default=20)
STREAM_MESSAGE_RATE = env.float("STREAM_MESSAGE_RATE", default=2)
# A client that reads nothing for this long is dropped from its groups and closed (1008).
STREAM_SEND_TIMEOUT_SECONDS = env.float("STREAM_SEND_TIMEOUT_SECONDS", default=30)
# A live subscription keeps its symbol in the refresh set this long after the client's last heartbeat.
STREAM_SUBSCRIPTION_TTL = env.int("STREAM_SUBSCRIPTION_TTL", default=120)

# --- Predictions
PREDICTION_TRAINING_BARS = env.int("PREDICTION_TRAINING_BARS", default=2500)
PREDICTION_CACHE_TTL = env.int("PREDICTION_CACHE_TTL", default=900)
# Hyperparameter overrides per algorithm, e.g. {"lstm": {"epochs": 30}}
PREDICTION_MODEL_PARAMS = env.json("PREDICTION_MODEL_PARAMS", default={})
MODEL_CACHE_SIZE = env.int("MODEL_CACHE_SIZE", default=8)
# Trainings a non-staff user may start per rolling 24 hours (joining one already queued does not count).
TRAINING_QUOTA_PER_DAY = env.int("TRAINING_QUOTA_PER_DAY", default=20)

# --- Signals: overrides of signals.config.SignalConfig (weights, thresholds), e.g. {"buy_threshold": 0.25}
SIGNAL_RULES = env.json("SIGNAL_RULES", default={})
SIGNAL_CACHE_TTL = env.int("SIGNAL_CACHE_TTL", default=600)

# --- Watchlists and alerts
WATCHLIST_MAX_SYMBOLS = env.int("WATCHLIST_MAX_SYMBOLS", default=50)
WATCHLIST_MAX_LISTS = env.int("WATCHLIST_MAX_LISTS", default=20)
ALERT_MAX_PER_USER = env.int("ALERT_MAX_PER_USER", default=100)
ALERT_MAX_CHANNELS = env.int("ALERT_MAX_CHANNELS", default=10)
# Bars one evaluation of price/change alerts reads after a sync stored several (the newest kept, the cut logged):
# a years-long backfill must not make one task run for minutes.
ALERT_EVALUATE_MAX_BARS = env.int("ALERT_EVALUATE_MAX_BARS", default=500)
# Webhook/Apprise targets on private, loopback or link-local addresses are refused unless this is set (tests only).
ALERT_WEBHOOK_ALLOW_PRIVATE = env.bool("ALERT_WEBHOOK_ALLOW_PRIVATE", default=False)
ALERT_WEBHOOK_TIMEOUT = env.float("ALERT_WEBHOOK_TIMEOUT", default=5.0)
# PEM file of the authorities https webhooks are verified against; empty: certifi's bundle (public CAs).
ALERT_WEBHOOK_CA_BUNDLE = env("ALERT_WEBHOOK_CA_BUNDLE", default="")
# Failed deliveries (timeouts, 5xx) retry after 60 s, doubling up to 1 h, until 24 h after the alert fired.
ALERT_DELIVERY_RETRY_BACKOFF = env.int("ALERT_DELIVERY_RETRY_BACKOFF", default=60)
ALERT_DELIVERY_RETRY_BACKOFF_MAX = env.int("ALERT_DELIVERY_RETRY_BACKOFF_MAX", default=3600)
ALERT_DELIVERY_MAX_AGE = env.int("ALERT_DELIVERY_MAX_AGE", default=24 * 3600)
# A pending delivery this many seconds past its due try lost its task: the sweeper (beat, 5 min) queues it again.
ALERT_DELIVERY_OVERDUE = env.int("ALERT_DELIVERY_OVERDUE", default=600)

# --- Logging
LOG_LEVEL = env("LOG_LEVEL", default="INFO")
LOG_FORMAT = env("LOG_FORMAT", default="console" if DEBUG else "json")
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {
        "structured": {"()": "tradingdash.logging.make_formatter", "fmt": LOG_FORMAT},
    },
    "filters": {
        "uncaught_exceptions": {
            "()": "django.utils.log.CallbackFilter",
            "callback": lambda record: record.exc_info is not None,
        },
    },
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "structured"}},
    "root": {"handlers": ["console"], "level": LOG_LEVEL},
    "loggers": {
        "django.server": {"level": "WARNING"},
        # Our own middleware logs every request once, with its id; Django's duplicate line per 4xx/5xx response
        # is dropped, except for an exception no view handled (admin, chart pages): its traceback is only there.
        "django.request": {"level": "ERROR", "filters": ["uncaught_exceptions"]},
        "django_redis": {"level": "CRITICAL"},
        # TensorFlow's "triggered tf.function retracing" warnings on every walk-forward fold say nothing actionable.
        "tensorflow": {"level": "ERROR"},
    },
}
