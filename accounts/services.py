"""Account writes and token issuance."""

from __future__ import annotations

from dataclasses import dataclass

from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import IntegrityError, transaction
from rest_framework_simplejwt.token_blacklist.models import BlacklistedToken, OutstandingToken
from rest_framework_simplejwt.tokens import RefreshToken

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


def tokens_issue(*, user: User) -> TokenPair:
    refresh = RefreshToken.for_user(user)
    lifetime = settings.SIMPLE_JWT["ACCESS_TOKEN_LIFETIME"]
    return TokenPair(
        access=str(refresh.access_token), refresh=str(refresh), expires_in=int(lifetime.total_seconds())
    )


def password_change(*, user: User, new_password: str) -> int:
    """Set a new password (validated by the caller) and blacklist every refresh token the user still holds, so
    sessions elsewhere end when their access tokens expire. Returns how many tokens were revoked."""
    with transaction.atomic():
        user.set_password(new_password)
        user.save(update_fields=["password"])
        outstanding = OutstandingToken.objects.filter(user=user, blacklistedtoken__isnull=True)
        revoked = BlacklistedToken.objects.bulk_create(
            [BlacklistedToken(token=token) for token in outstanding], ignore_conflicts=True
        )
    return len(revoked)
