"""Authentication by username or email, with the same timing for unknown users and wrong passwords."""

from __future__ import annotations

from django.contrib.auth import get_user_model
from django.contrib.auth.backends import ModelBackend

from accounts.selectors import login_account


def password_candidates(password: str) -> list[str]:
    """The password as typed, then, when it has outer whitespace, trimmed. Until 30 Nov 2026 the API trimmed
    passwords (DRF's CharField default) at registration, login and change, while the admin and createsuperuser
    keep them exact: an account registered through the API as "  secret " stores "secret", and its owner still
    types the spaces. Passwords are now taken exactly everywhere; the trimmed form keeps those accounts working."""
    trimmed = password.strip()
    return [password, trimmed] if trimmed and trimmed != password else [password]


def password_matches(user, password: str) -> bool:
    """Whether `password` (exactly as typed, or as the API used to store it: password_candidates) is the user's."""
    return any(user.check_password(candidate) for candidate in password_candidates(password))


class UsernameOrEmailBackend(ModelBackend):
    """`username` may be the account's username (as typed or NFKC-normalised) or its email (any case)."""

    def authenticate(self, request, username=None, password=None, **kwargs):
        User = get_user_model()
        if username is None:
            username = kwargs.get(User.USERNAME_FIELD)
        if username is None or password is None:
            return None
        # A username match wins over another account whose email happens to be that string.
        user = login_account(name=username)
        if user is None:
            # Run the hasher anyway (as often as a wrong password for a known account would) so response time
            # does not reveal whether the account exists.
            for candidate in password_candidates(password):
                User().set_password(candidate)
            return None
        if password_matches(user, password) and self.user_can_authenticate(user):
            return user
        return None
