"""Account writes and token issuance."""

from __future__ import annotations

from dataclasses import dataclass

from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import transaction
from rest_framework_simplejwt.token_blacklist.models import BlacklistedToken, OutstandingToken
from rest_framework_simplejwt.tokens import RefreshToken

from accounts.authentication import user_forget

User = get_user_model()


@dataclass(frozen=True, kw_only=True)
class TokenPair:
    access: str
    refresh: str
    expires_in: int
    token_type: str = "Bearer"  # noqa: S105 (a scheme name, not a secret)


def user_register(*, username: str, email: str, password: str) -> User:
    """Create an ordinary (never staff) user; validation happened in the API serializer."""
    with transaction.atomic():
        return User.objects.create_user(username=username, email=email, password=password)


def tokens_issue(*, user: User) -> TokenPair:
    refresh = RefreshToken.for_user(user)
    lifetime = settings.SIMPLE_JWT["ACCESS_TOKEN_LIFETIME"]
    return TokenPair(
        access=str(refresh.access_token), refresh=str(refresh), expires_in=int(lifetime.total_seconds())
    )


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
