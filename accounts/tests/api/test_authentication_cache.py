"""The per-process cache of the JWT user (accounts/authentication.py): no query per request, and a deactivated
or deleted user refused at most AUTH_USER_CACHE_SECONDS after the change."""

from datetime import timedelta

import pytest
import time_machine
from django.contrib.auth import get_user_model
from django.utils import timezone
from rest_framework_simplejwt.tokens import AccessToken

from accounts.tests.factories import UserFactory

pytestmark = pytest.mark.django_db
User = get_user_model()


@pytest.fixture
def jwt_client(api_client, user):
    api_client.credentials(HTTP_AUTHORIZATION=f"Bearer {AccessToken.for_user(user)}")
    return api_client


def test_a_known_user_costs_no_query(jwt_client, user, django_assert_num_queries):
    assert jwt_client.get("/api/auth/me").status_code == 200
    with django_assert_num_queries(0):
        response = jwt_client.get("/api/auth/me")
    assert response.status_code == 200 and response.json()["id"] == user.pk


@pytest.mark.parametrize("change", ["deactivate", "delete"])
def test_a_removed_user_is_refused_within_the_cache_lifetime(jwt_client, user, settings, change):
    settings.AUTH_USER_CACHE_SECONDS = 30
    with time_machine.travel(timezone.now(), tick=False) as clock:
        assert jwt_client.get("/api/auth/me").status_code == 200
        if change == "deactivate":
            User.objects.filter(pk=user.pk).update(is_active=False)
        else:
            User.objects.filter(pk=user.pk).delete()
        clock.shift(timedelta(seconds=31))
        response = jwt_client.get("/api/auth/me")
    assert response.status_code == 401


def test_access_tokens_issued_before_a_password_change_are_refused_at_once(
    api_client, user, django_capture_on_commit_callbacks
):
    from accounts.services import password_change

    old = AccessToken.for_user(user)
    api_client.credentials(HTTP_AUTHORIZATION=f"Bearer {old}")
    assert api_client.get("/api/auth/me").status_code == 200  # cached in this process
    with django_capture_on_commit_callbacks(execute=True):
        password_change(user=user, new_password="An0ther-long-trading-passphrase")
    response = api_client.get("/api/auth/me")
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "password_changed"
    api_client.credentials(HTTP_AUTHORIZATION=f"Bearer {AccessToken.for_user(user)}")  # a new login's token
    assert api_client.get("/api/auth/me").status_code == 200


def test_a_password_changed_by_another_process_is_seen_within_the_cache_lifetime(jwt_client, user, settings):
    # Another web process changed it: this one's cached user still has the old hash until its entry expires.
    settings.AUTH_USER_CACHE_SECONDS = 30
    with time_machine.travel(timezone.now(), tick=False) as clock:
        assert jwt_client.get("/api/auth/me").status_code == 200
        user.set_password("An0ther-long-trading-passphrase")
        User.objects.filter(pk=user.pk).update(password=user.password)
        clock.shift(timedelta(seconds=31))
        assert jwt_client.get("/api/auth/me").status_code == 401


def test_inactive_users_are_never_cached(api_client, settings):
    inactive = UserFactory(is_active=False)
    api_client.credentials(HTTP_AUTHORIZATION=f"Bearer {AccessToken.for_user(inactive)}")
    assert api_client.get("/api/auth/me").status_code == 401
    User.objects.filter(pk=inactive.pk).update(is_active=True)
    assert api_client.get("/api/auth/me").status_code == 200


def test_zero_seconds_reads_the_user_on_every_request(jwt_client, user, settings):
    settings.AUTH_USER_CACHE_SECONDS = 0
    assert jwt_client.get("/api/auth/me").status_code == 200
    User.objects.filter(pk=user.pk).update(is_active=False)
    assert jwt_client.get("/api/auth/me").status_code == 401


def test_token_expiry_is_still_checked(jwt_client, user):
    assert jwt_client.get("/api/auth/me").status_code == 200
    with time_machine.travel(timezone.now() + timedelta(minutes=31)):
        assert jwt_client.get("/api/auth/me").status_code == 401


def test_each_request_gets_its_own_user_object(jwt_client, user):
    from accounts.authentication import CachedUserJWTAuthentication

    token = AccessToken.for_user(user)
    auth = CachedUserJWTAuthentication()
    first, second = auth.get_user(token), auth.get_user(token)
    first.email = "changed@example.com"
    assert second.email == user.email and auth.get_user(token).email == user.email


def test_an_expired_token_is_refused_even_after_it_was_cached(jwt_client, settings):
    settings.AUTH_USER_CACHE_SECONDS = 3600  # longer than the token's 30 minutes
    assert jwt_client.get("/api/auth/me").status_code == 200
    with time_machine.travel(timezone.now() + timedelta(minutes=31)):
        response = jwt_client.get("/api/auth/me")
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "token_not_valid"


def test_a_tampered_token_is_refused_though_its_original_was_cached(jwt_client, user):
    token = str(AccessToken.for_user(user))
    jwt_client.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
    assert jwt_client.get("/api/auth/me").status_code == 200
    tampered = token[:-2] + ("AA" if token[-2:] != "AA" else "BB")
    jwt_client.credentials(HTTP_AUTHORIZATION=f"Bearer {tampered}")
    assert jwt_client.get("/api/auth/me").status_code == 401


def test_a_known_token_is_not_decoded_again(jwt_client, user, monkeypatch):
    import jwt as pyjwt

    assert jwt_client.get("/api/auth/me").status_code == 200
    monkeypatch.setattr(pyjwt, "decode", lambda *a, **k: pytest.fail("decoded again"))
    monkeypatch.setattr(pyjwt.PyJWT, "decode", lambda *a, **k: pytest.fail("decoded again"))
    assert jwt_client.get("/api/auth/me").status_code == 200


@pytest.mark.django_db(transaction=True)
def test_a_row_read_just_before_a_password_change_committed_is_not_kept_after_it(user, settings):
    """A request that read the user's row while another request of this process was committing a password
    change cached that old row after the change had emptied the cache: the tokens the change revoked were then
    accepted here for another AUTH_USER_CACHE_SECONDS, though a change is seen in its own process at once."""
    import threading

    from django.db import connection, connections
    from rest_framework.exceptions import AuthenticationFailed

    from accounts.authentication import CachedUserJWTAuthentication
    from accounts.services import password_change

    settings.AUTH_USER_CACHE_SECONDS = 60
    token = AccessToken.for_user(user)
    changed = []

    def change_in_another_thread():
        password_change(user=User.objects.get(pk=user.pk), new_password="An0ther-long-trading-passphrase")
        connections.close_all()

    def password_changed_meanwhile(execute, sql, params, many, context):
        result = execute(sql, params, many, context)
        if not changed and 'FROM "accounts_user"' in sql:
            changed.append(True)
            thread = threading.Thread(target=change_in_another_thread)
            thread.start()
            thread.join()
        return result

    auth = CachedUserJWTAuthentication()
    with connection.execute_wrapper(password_changed_meanwhile):
        auth.get_user(token)  # read the row before the change committed: this request itself is served
    assert changed
    with pytest.raises(AuthenticationFailed):
        auth.get_user(token)  # the next one is not
