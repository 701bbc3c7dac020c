"""JWT authentication without a database query per request."""

from __future__ import annotations

import copy

from drf_spectacular.contrib.rest_framework_simplejwt import SimpleJWTScheme
from rest_framework.exceptions import AuthenticationFailed
from rest_framework_simplejwt.authentication import JWTAuthentication
from rest_framework_simplejwt.exceptions import ExpiredTokenError, InvalidToken, TokenError
from rest_framework_simplejwt.settings import api_settings
from rest_framework_simplejwt.utils import aware_utcnow, get_md5_hash_password

from tradingdash.cache import LocalTTLCache

# user id -> the active user row, for AUTH_USER_CACHE_SECONDS.
_users = LocalTTLCache(ttl_setting="AUTH_USER_CACHE_SECONDS")
# raw access token -> the token it decoded to, once its signature checked out (a dashboard sends the same token
# with every poll; HMAC and base64/JSON decoding were 15% of a cached quote's CPU). Expiry is checked each time.
_tokens = LocalTTLCache(ttl_setting="AUTH_USER_CACHE_SECONDS")
# user id (str) -> how often this process forgot that user: a row read before a forget is not cached after it.
_forgets: dict[str, int] = {}


def password_claim_matches(token, password: str) -> bool:
    """Whether `token` was issued under the user's current password hash `password` (simplejwt's
    CHECK_REVOKE_TOKEN claim): a password change revokes every access token issued before it."""
    if not api_settings.CHECK_REVOKE_TOKEN:
        return True
    return token.get(api_settings.REVOKE_TOKEN_CLAIM) == get_md5_hash_password(password)


def user_forget(user_id: int) -> None:
    """Drop a user from this process's cache, so that its next request reads the row (after a password change).
    Cached under the token's user id claim: a string in tokens simplejwt issues now, a number in older ones."""
    _forgets[str(user_id)] = _forgets.get(str(user_id), 0) + 1
    _users.delete(str(user_id))
    _users.delete(user_id)


def _user_keep(user_id, user, *, forgets: int) -> None:
    """Cache the row of `user_id` read when the user had been forgotten `forgets` times: unless a forget
    (a password change committed meanwhile) came between that read and now, which would keep the old row."""
    if _forgets.get(str(user_id), 0) == forgets:
        _users.set(user_id, copy.copy(user))


class CachedUserJWTAuthentication(JWTAuthentication):
    """simplejwt's JWTAuthentication (signature, expiry and token type checked on every request), whose user
    row is kept per process for AUTH_USER_CACHE_SECONDS: loading it was a database query on every request,
    half of a cached quote's time. Only found, active users are kept, so a deactivated or deleted user, and
    a token issued before a password change, are refused at most AUTH_USER_CACHE_SECONDS after the change
    (well within the access token's lifetime); refresh tokens are checked against the blacklist as before
    (refresh does not go through here)."""

    def get_validated_token(self, raw_token: bytes):
        token = _tokens.get(raw_token)
        if token is not None:
            try:
                token.check_exp(current_time=aware_utcnow())
                return token
            except TokenError:
                _tokens.delete(raw_token)  # expired: simplejwt's own path below says so
        try:
            token = super().get_validated_token(raw_token)
        except InvalidToken:
            if _expired(raw_token):
                raise InvalidToken({"detail": EXPIRED_MESSAGE, "code": InvalidToken.default_code}) from None
            raise
        _tokens.set(raw_token, token)
        return token

    def get_user(self, validated_token):
        user_id = validated_token.get(api_settings.USER_ID_CLAIM)
        cached = _users.get(user_id) if user_id is not None else None
        if cached is not None:
            if not password_claim_matches(validated_token, cached.password):
                raise AuthenticationFailed("The user's password has been changed.", code="password_changed")
            # A copy: a view that changes request.user must not change what other requests see.
            return copy.copy(cached)
        forgets = _forgets.get(str(user_id), 0)
        # Raises for unknown and inactive users, and for a token issued under another password.
        user = super().get_user(validated_token)
        _user_keep(user_id, user, forgets=forgets)
        return user


def user_reread(validated_token):
    """The token's user as the database has it now, not the copy this process keeps, for requests that change
    the account itself (the password): a deactivation or a password change another process made counts at once
    there. With the cached copy, a token from before a password change, with the old password, could change it
    back within AUTH_USER_CACHE_SECONDS. Raises AuthenticationFailed as authentication does (unknown or
    inactive user, token issued under another password); refreshes the cached copy."""
    user_id = validated_token.get(api_settings.USER_ID_CLAIM)
    forgets = _forgets.get(str(user_id), 0)
    user = JWTAuthentication().get_user(validated_token)  # simplejwt's own checks, on the row read now
    _user_keep(user_id, user, forgets=forgets)
    return user


EXPIRED_MESSAGE = "Access token expired: get a new one from POST /api/auth/refresh with your refresh token, or log in again."


def _expired(raw_token: bytes) -> bool:
    """Whether a token every class refused is one of ours, well signed, whose only fault is its expiry (simplejwt
    answers "Given token not valid for any token type" for that and for a forged one alike)."""
    for token_class in api_settings.AUTH_TOKEN_CLASSES:
        try:
            token_class(raw_token)
        except ExpiredTokenError:
            return True
        except TokenError:
            continue
    return False


def authenticate_from_memory(request) -> tuple | None:
    """(user, token) for a request whose access token and user this process has already verified and loaded,
    with the expiry checked now; None for anything else (no or malformed header, a token or user not seen
    within AUTH_USER_CACHE_SECONDS, an expired token), which the caller sends through
    CachedUserJWTAuthentication in a thread: its answer, or its error, is the API's. No I/O, so async views
    call it on the event loop."""
    authentication = CachedUserJWTAuthentication()
    header = authentication.get_header(request)
    try:
        raw_token = authentication.get_raw_token(header) if header is not None else None
    except AuthenticationFailed:
        return None
    token = _tokens.get(raw_token) if raw_token is not None else None
    if token is None:
        return None
    try:
        token.check_exp(current_time=aware_utcnow())
    except TokenError:
        return None
    user_id = token.get(api_settings.USER_ID_CLAIM)
    user = _users.get(user_id) if user_id is not None else None
    if user is None or not password_claim_matches(token, user.password):
        return None
    return copy.copy(user), token


class CachedUserJWTScheme(SimpleJWTScheme):
    """The OpenAPI security scheme (jwtAuth, bearer) of simplejwt's class, for this one."""

    target_class = "accounts.authentication.CachedUserJWTAuthentication"
