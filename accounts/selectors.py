"""Account reads that must agree with the database's own rules."""

from __future__ import annotations

from django.contrib.auth import get_user_model
from django.db.models import Q, Value
from django.db.models.functions import Lower


def email_taken(*, email: str) -> bool:
    """An account's email equals `email` as the unique index compares them (LOWER(email)): Django's iexact
    compares UPPER(), which differs for a few letters (the Kelvin sign lower-cases to "k", not upper-cases to
    "K"), so it would let an address through that the index then refuses. Either comparison counts: login by
    email looks accounts up with iexact, which must find one account only."""
    User = get_user_model()
    same = Q(email__iexact=email) | Q(lowered=Lower(Value(email)))  # iexact: what login by email looks up
    return User.objects.annotate(lowered=Lower("email")).filter(same).exists()


def username_taken_any_case(*, username: str) -> bool:
    """An account's username equals `username` in any case (iexact or LOWER(), as email_taken compares): a new
    username must not be a look-alike of another in case only, nor an address that is another account's email
    (login tries the username before the email)."""
    User = get_user_model()
    same = Q(username__iexact=username) | Q(lowered=Lower(Value(username)))
    return User.objects.annotate(lowered=Lower("username")).filter(same).exists()


def login_account(*, name: str):
    """The account a login name stands for: the username exactly as typed, else NFKC-normalised as registration
    stores it (fullwidth "ａｌｉｃｅ" is "alice"), else, for a name with "@", the account with that email in any
    case. Login and its per-account throttle both resolve names here, so every form of a name shares a budget."""
    User = get_user_model()
    accounts = User._default_manager
    for username in dict.fromkeys([name, User.normalize_username(name)]):
        user = accounts.filter(username=username).first()
        if user is not None:
            return user
    return accounts.filter(email__iexact=name).first() if "@" in name else None
