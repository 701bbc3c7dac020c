"""The memory-first path of the hot reads (tradingdash.async_views, accounts.authentication's
authenticate_from_memory) refuses what DRF's path refuses, within the bounds the README gives: a deleted user or
a password changed by another process at most AUTH_USER_CACHE_SECONDS later, a password changed here at once."""

import time

import pytest
from django.contrib.auth import get_user_model
from rest_framework_simplejwt.tokens import AccessToken

from market.tests.factories import InstrumentFactory
from tradingdash.tests.asgi import asgi_request

# The DRF path runs in asgiref's thread, with its own database connection: the test's rows must be committed.
pytestmark = pytest.mark.django_db(transaction=True)
User = get_user_model()
QUOTE = "/api/market/quote/TCS"
NEW = "An0ther-long-trading-passphrase"


@pytest.fixture(autouse=True)
def _setup(db, monkeypatch, settings):
    from django.db import connections

    InstrumentFactory(symbol="TCS.NS", name="Tata Consultancy Services")
    monkeypatch.setitem(connections["default"].settings_dict, "CONN_MAX_AGE", 0)
    settings.MARKET_LOCAL_CACHE_SECONDS = 60
    settings.AUTH_USER_CACHE_SECONDS = 1


@pytest.fixture
def token(user) -> str:
    token = str(AccessToken.for_user(user))
    assert asgi_request("GET", QUOTE, token=token).status == 200  # token, user and quote now in memory
    assert asgi_request("GET", QUOTE, token=token).thread_hops == 0  # served on the event loop
    return token


def test_a_deleted_user_is_refused_once_the_user_cache_lifetime_passed(user, token):
    User.objects.filter(pk=user.pk).delete()
    time.sleep(1.1)
    refused = asgi_request("GET", QUOTE, token=token)
    assert refused.status == 401 and b"user_not_found" in refused.body


def test_a_password_changed_by_another_process_is_refused_once_the_lifetime_passed(user, token):
    user.set_password(NEW)
    User.objects.filter(pk=user.pk).update(password=user.password)
    time.sleep(1.1)
    refused = asgi_request("GET", QUOTE, token=token)
    assert refused.status == 401 and b"password_changed" in refused.body


def test_a_password_changed_in_this_process_is_refused_at_once(user, token, settings):
    from accounts.services import password_change

    settings.AUTH_USER_CACHE_SECONDS = 60
    password_change(user=User.objects.get(pk=user.pk), new_password=NEW)  # committed: its on_commit ran
    refused = asgi_request("GET", QUOTE, token=token)
    assert refused.status == 401 and b"password_changed" in refused.body
