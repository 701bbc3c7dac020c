"""Rate limits for the public auth endpoints, per client IP and per username, kept in the shared cache so they
hold across gunicorn workers."""

from __future__ import annotations

from django.conf import settings
from django.contrib.auth import get_user_model
from rest_framework.throttling import SimpleRateThrottle


class _SettingRateThrottle(SimpleRateThrottle):
    """Reads its rate from a Django setting at request time (so settings overrides apply)."""

    rate_setting = "AUTH_THROTTLE_RATE"

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
    """One throttle identity per account, however login names it: the username (exact) or the account's email
    (any case), as accounts.backends resolves it; a name of no account stands for itself, lower-cased."""
    if "\x00" in name:  # no account has it (and PostgreSQL refuses NUL in a query): the login is a 400 anyway
        return name.lower()
    User = get_user_model()
    pk = User._default_manager.filter(username=name).values_list("pk", flat=True).first()
    if pk is None and "@" in name:
        pk = User._default_manager.filter(email__iexact=name).values_list("pk", flat=True).first()
    return f"account-{pk}" if pk is not None else name.lower()


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
