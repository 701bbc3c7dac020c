"""Rate limits for the public auth endpoints, per client IP and per username, kept in the shared cache so they
hold across gunicorn workers."""

from __future__ import annotations

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.cache import cache
from django.core.cache.backends.locmem import LocMemCache
from rest_framework.throttling import SimpleRateThrottle

from accounts.selectors import login_account
from tradingdash.cache import cache_is_down, local_layer_register

_MISS = object()


class _ThrottleStore:
    """The shared cache (Redis) for throttle histories, and while it is unreachable this process's memory: a
    down Redis answers every read with a miss and drops every write, which left the limits off for the whole
    outage. Meanwhile each process counts on its own (a client spread over N processes gets N times the rate,
    not an unlimited one); counting is shared again once Redis answers."""

    def __init__(self):
        self.local = LocMemCache("throttle-fallback", {"OPTIONS": {"MAX_ENTRIES": 10000}})
        local_layer_register(self)

    def clear(self) -> None:
        self.local.clear()

    def get(self, key, default=None):
        value = cache.get(key, _MISS)
        if value is _MISS:
            return self.local.get(key, default) if cache_is_down() else default
        return value

    def set(self, key, value, timeout=None):
        if not cache.set(key, value, timeout) and cache_is_down():
            self.local.set(key, value, timeout)


class _SettingRateThrottle(SimpleRateThrottle):
    """Reads its rate from a Django setting at request time (so settings overrides apply)."""

    rate_setting = "AUTH_THROTTLE_RATE"
    cache = _ThrottleStore()

    def get_rate(self) -> str:
        return getattr(settings, self.rate_setting)


class AuthIPThrottle(_SettingRateThrottle):
    scope = "auth_ip"

    def get_cache_key(self, request, view):
        return self.cache_format % {"scope": self.scope, "ident": self.get_ident(request)}


class AuthUsernameThrottle(_SettingRateThrottle):
    scope = "auth_username"

    def get_cache_key(self, request, view):
        data = request.data if hasattr(request, "data") else {}
        username = data.get("username") if isinstance(data, dict) else None
        if not isinstance(username, str) or not username.strip():
            return None
        return self.cache_format % {"scope": self.scope, "ident": _account_ident(username.strip()[:254])}


def _account_ident(name: str) -> str:
    """One throttle identity per account, however login names it: the username (any Unicode form) or the
    account's email (any case), as accounts.backends resolves it (accounts.selectors.login_account); a name of
    no account stands for itself, NFKC-normalised and lower-cased."""
    if "\x00" in name:  # no account has it (and PostgreSQL refuses NUL in a query): the login is a 400 anyway
        return name.lower()
    account = login_account(name=name)
    return (
        f"account-{account.pk}" if account is not None else get_user_model().normalize_username(name).lower()
    )


class AuthUserThrottle(_SettingRateThrottle):
    """Per signed-in user, at the login rate: for password changes, where a stolen access token could otherwise
    guess the current password as fast as it likes."""

    scope = "auth_user"

    def get_cache_key(self, request, view):
        if not (request.user and request.user.is_authenticated):
            return None
        return self.cache_format % {"scope": self.scope, "ident": request.user.pk}


class GenerationThrottle(_SettingRateThrottle):
    """Per-user limit for endpoints that start expensive work (sync, training, generation)."""

    scope = "generation"
    rate_setting = "GENERATION_THROTTLE_RATE"

    def get_cache_key(self, request, view):
        ident = request.user.pk if request.user and request.user.is_authenticated else self.get_ident(request)
        return self.cache_format % {"scope": self.scope, "ident": ident}
