"""Account writes and token issuance."""

from __future__ import annotations

from dataclasses import dataclass

from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import IntegrityError, transaction
from django.utils import timezone
from rest_framework_simplejwt.exceptions import TokenError
from rest_framework_simplejwt.settings import api_settings as jwt_settings
from rest_framework_simplejwt.token_blacklist.models import BlacklistedToken, OutstandingToken
from rest_framework_simplejwt.tokens import RefreshToken

from accounts.authentication import user_forget
from accounts.selectors import email_taken

User = get_user_model()


@dataclass(frozen=True, kw_only=True)
class TokenPair:
    access: str
    refresh: str
    expires_in: int
    token_type: str = "Bearer"  # noqa: S105 (a scheme name, not a secret)


class AccountTaken(Exception):
    """Another registration took the username or email after validation checked them (a concurrent request)."""

    def __init__(self, fields: list[str]):
        self.fields = fields
        super().__init__(f"Already taken: {', '.join(fields)}")


def user_register(*, username: str, email: str, password: str) -> User:
    """Create an ordinary (never staff) user; validation happened in the API serializer. The database's unique
    constraints decide a race with a concurrent registration of the same username or email (AccountTaken)."""
    try:
        with transaction.atomic():
            return User.objects.create_user(username=username, email=email, password=password)
    except IntegrityError as exc:
        taken = [
            field
            for field, exists in (
                ("username", User.objects.filter(username=username).exists()),
                ("email", email_taken(email=User.objects.normalize_email(email))),
            )
            if exists
        ]
        if not taken:
            raise
        raise AccountTaken(taken) from exc


def user_log_in(*, user: User) -> TokenPair:
    """A token pair for a user whose credentials were checked, recording the login in `last_login` (what the
    admin's user list shows; simplejwt's own login view would do it under UPDATE_LAST_LOGIN, ours must)."""
    user.last_login = timezone.now()
    User.objects.filter(pk=user.pk).update(last_login=user.last_login)
    return tokens_issue(user=user)


def tokens_issue(*, user: User) -> TokenPair:
    refresh = RefreshToken.for_user(user)
    lifetime = settings.SIMPLE_JWT["ACCESS_TOKEN_LIFETIME"]
    return TokenPair(
        access=str(refresh.access_token), refresh=str(refresh), expires_in=int(lifetime.total_seconds())
    )


def refresh_token_lock(raw: str) -> None:
    """Lock the outstanding-token row of refresh token `raw` until the transaction ends, so that checking the
    blacklist and blacklisting it (rotation, logout) happen for one request at a time. Nothing to lock for a
    token that does not decode (its validation refuses it next)."""
    try:
        jti = RefreshToken(raw, verify=False).get(jwt_settings.JTI_CLAIM)
    except TokenError:
        return
    # Unverified yet: only a jti that could be stored is looked up (a forged one may hold anything).
    if isinstance(jti, str) and "\x00" not in jti and len(jti) <= 255:
        OutstandingToken.objects.select_for_update().filter(jti=jti).first()


def password_change(*, user: User, new_password: str) -> int:
    """Set a new password (validated by the caller) and blacklist every refresh token the user still holds.
    Access tokens issued before it stop working too (they carry a hash of the password they were issued
    under: SIMPLE_JWT's CHECK_REVOKE_TOKEN), in this process at once and in others within
    AUTH_USER_CACHE_SECONDS. Returns how many refresh tokens were revoked."""
    with transaction.atomic():
        user.set_password(new_password)
        user.save(update_fields=["password"])
        outstanding = OutstandingToken.objects.filter(user=user, blacklistedtoken__isnull=True)
        revoked = BlacklistedToken.objects.bulk_create(
            [BlacklistedToken(token=token) for token in outstanding], ignore_conflicts=True
        )
        transaction.on_commit(lambda: user_forget(user.pk))  # the old row, not re-read before the commit
    return len(revoked)
