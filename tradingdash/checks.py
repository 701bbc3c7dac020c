"""Django's deploy checks for its security, clickjacking and CSRF middleware, run against ours.

Django finds those middleware by dotted path in MIDDLEWARE; ours subclass them to run their hooks on the event
loop (tradingdash/middleware.py). Django's own checks would therefore report them missing (security.W001,
W002, W003, silenced in settings) and skip every check that depends on them (HSTS, SSL redirect, nosniff,
X-Frame-Options DENY, referrer and opener policies, secure CSRF cookie). This check runs all of those with
Django's paths in place of ours and reports what they find; a middleware really missing is reported under
this module's ids (tradingdash.W001, W002, W003).

Also checked (every command that runs checks, migrate included): MARKET_DATA_PROVIDER names a provider
(tradingdash.E001).
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
