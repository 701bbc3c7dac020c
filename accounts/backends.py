"""Authentication by username or email, with the same timing for unknown users and wrong passwords."""

from __future__ import annotations

from django.contrib.auth import get_user_model
from django.contrib.auth.backends import ModelBackend

from accounts.selectors import login_account


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
            # Run the hasher anyway so response time does not reveal whether the account exists.
            User().set_password(password)
            return None
        if user.check_password(password) and self.user_can_authenticate(user):
            return user
        return None
