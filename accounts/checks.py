"""System checks of the account settings (accounts.E001, E002, E003): run by every command that runs checks,
migrate included, so a value that would quietly break sign-in, or stretch the README's bound on how long a
deactivated user is served, stops `make run` and compose's services from starting, naming the setting."""

from __future__ import annotations

import math

from django.conf import settings
from django.core import checks
from rest_framework.throttling import SimpleRateThrottle


@checks.register()
def check_auth_settings(app_configs, **kwargs) -> list[checks.CheckMessage]:
    errors = []
    for name, unit, breaks in (
        ("ACCESS_TOKEN_EXPIRE_MINUTES", "minute", "every access token is expired when it is issued"),
        ("REFRESH_TOKEN_EXPIRE_DAYS", "day", "every refresh token is expired when it is issued"),
    ):
        value = getattr(settings, name)
        if not value >= 1:
            errors.append(
                checks.Error(
                    f"{name}={value!r} is out of range: {breaks}",
                    hint=f"Set {name} to at least 1 ({unit}).",
                    id="accounts.E001",
                )
            )
    cache, lifetime = settings.AUTH_USER_CACHE_SECONDS, settings.ACCESS_TOKEN_EXPIRE_MINUTES * 60
    if not (math.isfinite(cache) and 0 <= cache < max(lifetime, 1)):
        errors.append(
            checks.Error(
                f"AUTH_USER_CACHE_SECONDS={cache!r} is out of range: a deactivated user, or a token issued "
                "before a password change, would be served that long by a web process that saw it",
                hint=f"Set AUTH_USER_CACHE_SECONDS from 0 to below the access token's lifetime ({lifetime} s).",
                id="accounts.E002",
            )
        )
    for name, limited in (
        ("AUTH_THROTTLE_RATE", "login, registration and password change"),
        ("GENERATION_THROTTLE_RATE", "sync, training, generation and channel tests"),
    ):
        rate = getattr(settings, name)
        try:
            count, _ = SimpleRateThrottle.parse_rate(None, rate)  # what each throttled request does with it
        except (AttributeError, IndexError, KeyError, TypeError, ValueError):
            count = None
        if count is None or count < 1:
            errors.append(
                checks.Error(
                    f"{name}={rate!r} is not a rate: every {limited} request fails"
                    + (" (a 500)" if count is None else " (a 429)"),
                    hint=f"Set {name} as requests/period, e.g. 5/minute (period: second, minute, hour or day).",
                    id="accounts.E003",
                )
            )
    return errors
