"""Django's deploy checks for its security, clickjacking and CSRF middleware, run against ours.

Django finds those middleware by dotted path in MIDDLEWARE; ours subclass them to run their hooks on the event
loop (tradingdash/middleware.py). Django's own checks would therefore report them missing (security.W001,
W002, W003, silenced in settings) and skip every check that depends on them (HSTS, SSL redirect, nosniff,
X-Frame-Options DENY, referrer and opener policies, secure CSRF cookie). This check runs all of those with
Django's paths in place of ours and reports what they find; a middleware really missing is reported under
this module's ids (tradingdash.W001, W002, W003).

Also checked (every command that runs checks, migrate included, so `make run` and compose's web, worker and beat
never start): MARKET_DATA_PROVIDER names a provider (tradingdash.E001); the live stream's and alerts' limits and
durations are in range (tradingdash.E002, E003); with DEBUG off, SECRET_KEY and JWT_SIGNING_KEY are not weak
(tradingdash.E004), and behind a TLS proxy cookies are Secure and the https redirect cannot loop (E005); Celery's time
limits are set and consistent (E006), and within the broker's visibility timeout (W006).
"""

from __future__ import annotations

from django.conf import settings
from django.core import checks
from django.core.checks.security import base, csrf

# Ours -> the Django class it subclasses.
DJANGO_PATHS = {
    "tradingdash.middleware.SecurityMiddleware": "django.middleware.security.SecurityMiddleware",
    "tradingdash.middleware.CsrfViewMiddleware": "django.middleware.csrf.CsrfViewMiddleware",
    "tradingdash.middleware.XFrameOptionsMiddleware": "django.middleware.clickjacking.XFrameOptionsMiddleware",
}
# Django's checks that look for those middleware (django/core/checks/security/base.py and csrf.py).
_MIDDLEWARE_CHECKS = (
    base.check_security_middleware,
    base.check_xframe_options_middleware,
    base.check_sts,
    base.check_sts_include_subdomains,
    base.check_sts_preload,
    base.check_content_type_nosniff,
    base.check_ssl_redirect,
    base.check_xframe_deny,
    base.check_referrer_policy,
    base.check_cross_origin_opener_policy,
    csrf.check_csrf_middleware,
    csrf.check_csrf_cookie_secure,
)
SILENCED = ["security.W001", "security.W002", "security.W003"]  # settings.SILENCED_SYSTEM_CHECKS


@checks.register(checks.Tags.security, deploy=True)
def check_security_middleware_subclasses(app_configs, **kwargs) -> list[checks.CheckMessage]:
    listed = list(settings.MIDDLEWARE)
    settings.MIDDLEWARE = [DJANGO_PATHS.get(path, path) for path in listed]
    try:
        messages = [message for check in _MIDDLEWARE_CHECKS for message in check(app_configs)]
    finally:
        settings.MIDDLEWARE = listed
    for message in messages:
        if message.id in SILENCED:
            message.id = message.id.replace("security.", "tradingdash.")
    return messages


@checks.register()
def check_market_data_provider(app_configs, **kwargs) -> list[checks.CheckMessage]:
    """MARKET_DATA_PROVIDER names a provider: a typo would otherwise pass migrate and start the server, and answer
    every market request with a 500."""
    from market.providers import PROVIDER_NAMES

    name = settings.MARKET_DATA_PROVIDER
    module, colon, factory = name.partition(":")
    if name in PROVIDER_NAMES or (colon and module and factory):
        return []
    return [
        checks.Error(
            f"MARKET_DATA_PROVIDER={name!r} names no market data provider",
            hint=f"Use one of {', '.join(PROVIDER_NAMES)}, or package.module:factory for your own.",
            id="tradingdash.E001",
        )
    ]


# Settings that must be at least this (counts) or above zero (durations, rates), and what a value out of range
# quietly does: nothing fails at start-up, the feature just stops working for everyone.
_AT_LEAST_ONE = {
    "STREAM_MAX_SYMBOLS": "every subscribe is refused as too many symbols",
    "STREAM_MAX_PER_USER": "every stream is refused as one too many (4429)",
    "STREAM_MESSAGE_BURST": "the first client message closes the socket as a flood",
    "WATCHLIST_MAX_SYMBOLS": "no watchlist can hold a symbol",
    "WATCHLIST_MAX_LISTS": "no user can create a watchlist",
    "ALERT_MAX_PER_USER": "no user can create an alert",
    "ALERT_MAX_CHANNELS": "no user can add a notification channel",
    "ALERT_EVALUATE_MAX_BARS": "stored bars never reach price and change alerts",
}
_ABOVE_ZERO = {
    "STREAM_HEARTBEAT_SECONDS": "each stream sends heartbeats without pause",
    "STREAM_AUTH_TIMEOUT_SECONDS": "every socket is closed (4401) before it can authenticate",
    "STREAM_MESSAGE_RATE": "client messages beyond the first burst are refused for good",
    "STREAM_SEND_TIMEOUT_SECONDS": "clients are dropped as not reading",
    "STREAM_SUBSCRIPTION_TTL": "no subscribed symbol stays in the live set: its quotes are not refreshed",
    "QUOTE_REFRESH_SECONDS": "quotes are refreshed without pause and symbols reported stale between two quotes",
    "ALERT_WEBHOOK_TIMEOUT": "every webhook delivery fails",
    "ALERT_DELIVERY_RETRY_BACKOFF": "failed deliveries are retried without pause",
    "ALERT_DELIVERY_RETRY_BACKOFF_MAX": "failed deliveries are retried without pause",
    "ALERT_DELIVERY_MAX_AGE": "a delivery that fails once is never retried",
    "ALERT_DELIVERY_OVERDUE": "deliveries are queued again alongside their own retry",
}


@checks.register()
def check_limits(app_configs, **kwargs) -> list[checks.CheckMessage]:
    """The stream's, watchlists' and alerts' counts are at least 1 and their durations and rates above 0."""
    errors = []
    for names, in_range, allowed in (
        (_AT_LEAST_ONE, lambda value: value >= 1, "at least 1"),
        (_ABOVE_ZERO, lambda value: value > 0, "above 0"),
    ):
        for name, breaks in names.items():
            value = getattr(settings, name)
            if not in_range(value):  # NaN is out of range too
                errors.append(
                    checks.Error(
                        f"{name}={value!r} is out of range: {breaks}",
                        hint=f"Set {name} {allowed}.",
                        id="tradingdash.E002",
                    )
                )
    # A stream's heartbeat refreshes its symbols in the live set at most once a heartbeat period per process
    # (stream.live.live_symbols_due), so two refreshes can be almost two periods apart.
    ttl, heartbeat = settings.STREAM_SUBSCRIPTION_TTL, settings.STREAM_HEARTBEAT_SECONDS
    if ttl > 0 and heartbeat > 0 and not ttl > 2 * heartbeat:
        errors.append(
            checks.Error(
                f"STREAM_SUBSCRIPTION_TTL={ttl!r} is out of range: subscribed symbols lapse from the live set "
                f"between two heartbeats (STREAM_HEARTBEAT_SECONDS={heartbeat!r}) and their quotes stop",
                hint="Set STREAM_SUBSCRIPTION_TTL above 2 x STREAM_HEARTBEAT_SECONDS.",
                id="tradingdash.E003",
            )
        )
    return errors


@checks.register()
def check_production_secrets(app_configs, **kwargs) -> list[checks.CheckMessage]:
    """With DEBUG off, the keys that sign sessions and tokens are long and random. Django says so only under
    `check --deploy`, as a warning: `.env.example`'s `SECRET_KEY=change-me` passed compose's migrate and signed
    admin sessions and (as JWT_SIGNING_KEY's default) every API token with a key anyone can read."""
    if settings.DEBUG:
        return []
    errors = []
    secret_key = settings.SECRET_KEY
    if (
        len(secret_key) < base.SECRET_KEY_MIN_LENGTH
        or len(set(secret_key)) < base.SECRET_KEY_MIN_UNIQUE_CHARACTERS
        or secret_key.startswith(base.SECRET_KEY_INSECURE_PREFIX)
    ):
        errors.append(
            checks.Error(
                f"SECRET_KEY is too weak for DEBUG off: {len(secret_key)} characters, "
                f"{len(set(secret_key))} distinct",
                hint=f"Set SECRET_KEY to a random value of at least {base.SECRET_KEY_MIN_LENGTH} characters "
                f"and {base.SECRET_KEY_MIN_UNIQUE_CHARACTERS} distinct ones, e.g. "
                "python -c 'import secrets; print(secrets.token_urlsafe(50))'.",
                id="tradingdash.E004",
            )
        )
    signing_key = settings.SIMPLE_JWT["SIGNING_KEY"]
    if signing_key != secret_key and len(signing_key) < JWT_SIGNING_KEY_MIN_LENGTH:
        errors.append(
            checks.Error(
                f"JWT_SIGNING_KEY is too weak for DEBUG off: {len(signing_key)} characters",
                hint=f"Set JWT_SIGNING_KEY to a random value of at least {JWT_SIGNING_KEY_MIN_LENGTH} characters "
                "(HS256 needs a 256-bit key), or leave it unset to use SECRET_KEY.",
                id="tradingdash.E004",
            )
        )
    return errors


JWT_SIGNING_KEY_MIN_LENGTH = 32


@checks.register()
def check_tls_proxy(app_configs, **kwargs) -> list[checks.CheckMessage]:
    """Behind a TLS-terminating proxy (DEBUG off): only the app can mark its cookies Secure, and it must know the
    proxy's scheme header before it redirects to https. Django reports either only under `check --deploy`, as a
    warning, or not at all: a plain-http request carried the admin's session cookie in clear, and
    SECURE_SSL_REDIRECT behind a proxy without USE_X_FORWARDED_PROTO redirected every request to itself."""
    if settings.DEBUG:
        return []
    errors = []
    behind_tls_proxy = settings.SECURE_PROXY_SSL_HEADER is not None
    if behind_tls_proxy:
        for name in ("SESSION_COOKIE_SECURE", "CSRF_COOKIE_SECURE"):
            if not getattr(settings, name):
                errors.append(
                    checks.Error(
                        f"USE_X_FORWARDED_PROTO is on (TLS ends at a proxy) but {name} is off: the cookie is "
                        "also sent over plain http",
                        hint=f"Set {name}=1.",
                        id="tradingdash.E005",
                    )
                )
    elif settings.SECURE_SSL_REDIRECT and settings.REST_FRAMEWORK.get("NUM_PROXIES"):
        errors.append(
            checks.Error(
                "SECURE_SSL_REDIRECT is on behind a proxy (NUM_PROXIES) without USE_X_FORWARDED_PROTO: every "
                "request reaches the app as http and is redirected to https again, for ever",
                hint="Set USE_X_FORWARDED_PROTO=1 when the proxy terminates TLS and sets X-Forwarded-Proto.",
                id="tradingdash.E005",
            )
        )
    return errors


@checks.register()
def check_task_limits(app_configs, **kwargs) -> list[checks.CheckMessage]:
    """Celery's time limits against Redis' visibility timeout. Tasks are acknowledged late: a message still
    unacknowledged after CELERY_VISIBILITY_TIMEOUT is handed to another worker, so a timeout not above the hard
    time limit let a long task (a training) run twice at once; a soft limit not below the hard one never fires,
    so tasks are killed without their clean-up."""
    errors = []
    hard, soft = settings.CELERY_TASK_TIME_LIMIT, settings.CELERY_TASK_SOFT_TIME_LIMIT
    visibility = settings.CELERY_BROKER_TRANSPORT_OPTIONS.get("visibility_timeout")
    if not hard or hard <= 0:
        errors.append(
            checks.Error(
                f"CELERY_TASK_TIME_LIMIT={hard!r}: tasks have no time limit",
                hint="Set CELERY_TASK_TIME_LIMIT to the longest a task may run, in seconds (1800 by default).",
                id="tradingdash.E006",
            )
        )
    elif visibility is not None and not visibility > hard:
        # A warning: the end-to-end tests shorten the timeout on purpose, to see a lost worker's task handed out.
        errors.append(
            checks.Warning(
                f"CELERY_VISIBILITY_TIMEOUT={visibility!r} is not above CELERY_TASK_TIME_LIMIT={hard!r}: a task "
                "still running is handed to a second worker and runs twice at once",
                hint="Set CELERY_VISIBILITY_TIMEOUT above CELERY_TASK_TIME_LIMIT.",
                id="tradingdash.W006",
            )
        )
    if hard and hard > 0 and soft is not None and not 0 < soft < hard:
        errors.append(
            checks.Error(
                f"CELERY_TASK_SOFT_TIME_LIMIT={soft!r} is not between 0 and CELERY_TASK_TIME_LIMIT={hard!r}: tasks "
                "are killed without the soft limit's chance to stop cleanly",
                hint="Set CELERY_TASK_SOFT_TIME_LIMIT below CELERY_TASK_TIME_LIMIT.",
                id="tradingdash.E006",
            )
        )
    return errors
