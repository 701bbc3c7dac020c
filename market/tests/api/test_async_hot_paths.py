"""Quote and historical under ASGI (tradingdash.async_views): a request this process can answer from memory is
served on the event loop, without a thread, with the same bytes and headers as the DRF view; everything else
(first sight of a token or user, expired tokens, deactivated users past AUTH_USER_CACHE_SECONDS, cache misses,
bad input, other methods and media types) is the DRF view's answer."""

import time
from datetime import timedelta

import pytest
from rest_framework_simplejwt.tokens import AccessToken

from market.tests.factories import InstrumentFactory
from tradingdash.cache import local_caches_clear
from tradingdash.tests.asgi import asgi_request

# The sync DRF path runs in asgiref's thread, with its own database connection: the test's rows must be committed.
pytestmark = pytest.mark.django_db(transaction=True)

QUOTE = "/api/market/quote/TCS"
HISTORY = "/api/market/historical/TCS?timeframe=1D&limit=30"


@pytest.fixture
def token(user) -> str:
    return str(AccessToken.for_user(user))


@pytest.fixture(autouse=True)
def _instrument(db):
    """In the catalogue (transactional tests start from empty tables)."""
    InstrumentFactory(symbol="TCS.NS", name="Tata Consultancy Services")


@pytest.fixture(autouse=True)
def _no_persistent_connections(monkeypatch):
    """The threads asgiref starts per request close their connection at request_finished, as with the pool in
    production: none is left open when the test database is dropped."""
    from django.db import connections

    monkeypatch.setitem(connections["default"].settings_dict, "CONN_MAX_AGE", 0)


@pytest.fixture(autouse=True)
def _long_local_lifetimes(settings):
    settings.MARKET_LOCAL_CACHE_SECONDS = 60
    settings.AUTH_USER_CACHE_SECONDS = 60


def drf_answer(path: str, token: str):
    """The DRF view's answer to the same request: with no per-process caches, the async view declines."""
    local_caches_clear()
    return asgi_request("GET", path, token=token)


@pytest.mark.parametrize("path", [QUOTE, HISTORY])
def test_a_request_answered_from_memory_starts_no_thread_and_matches_the_drf_view(path, token):
    first = asgi_request("GET", path, token=token)  # verifies the token, loads the user, fills the caches
    assert first.status == 200 and first.thread_hops >= 1

    from_memory = asgi_request("GET", path, token=token)
    assert from_memory.status == 200
    assert from_memory.thread_hops == 0

    drf = drf_answer(path, token)
    assert drf.thread_hops >= 1
    assert from_memory.body == drf.body
    assert from_memory.comparable_headers() == drf.comparable_headers()
    assert from_memory.headers["content-type"] == "application/json"
    assert from_memory.headers["x-frame-options"] == "DENY"  # the middleware ran
    assert from_memory.headers["x-content-type-options"] == "nosniff"
    assert len(from_memory.headers["x-request-id"]) == 32


@pytest.mark.parametrize("path", [QUOTE, HISTORY])
def test_an_expired_local_entry_is_refilled_from_redis_without_a_thread(path, token):
    from market import caching

    asgi_request("GET", path, token=token)
    caching._local.clear()  # what MARKET_LOCAL_CACHE_SECONDS does every second under load
    again = asgi_request("GET", path, token=token)
    assert again.status == 200 and again.thread_hops == 0


def test_quote_from_memory_says_cached(token):
    asgi_request("GET", QUOTE, token=token)
    body = asgi_request("GET", QUOTE, token=token)
    assert body.thread_hops == 0 and b'"cached":true' in body.body


def test_an_expired_token_is_refused_though_this_process_verified_it(user):
    short = AccessToken.for_user(user)
    short.set_exp(lifetime=timedelta(seconds=1))
    assert asgi_request("GET", QUOTE, token=str(short)).status == 200
    time.sleep(1.1)
    refused = asgi_request("GET", QUOTE, token=str(short))
    assert refused.status == 401
    assert b"token_not_valid" in refused.body


def test_a_deactivated_user_is_refused_once_the_user_cache_lifetime_passed(user, token, settings):
    settings.AUTH_USER_CACHE_SECONDS = 1
    assert asgi_request("GET", QUOTE, token=token).status == 200
    user.is_active = False
    user.save()
    time.sleep(1.1)
    refused = asgi_request("GET", QUOTE, token=token)
    assert refused.status == 401


@pytest.mark.parametrize(
    ("headers", "path", "status"),
    [
        ({}, "/api/market/quote/TC%20S", 400),  # invalid symbol
        ({}, "/api/market/historical/TCS?limit=0", 400),  # invalid query
        ({}, "/api/market/historical/TCS?timeframe=7D", 400),
        ({"Accept": "text/html"}, QUOTE, 406),  # DRF's content negotiation
    ],
)
def test_what_memory_cannot_answer_gets_the_drf_views_error(token, headers, path, status):
    asgi_request("GET", QUOTE, token=token)  # token and user known to this process
    response = asgi_request("GET", path, token=token, **headers)
    assert response.status == status
    assert b'"error"' in response.body
    assert response.thread_hops >= 1


def test_without_a_token_the_answer_is_drfs_401():
    response = asgi_request("GET", QUOTE)
    assert response.status == 401
    assert response.headers["www-authenticate"].startswith("Bearer")


def test_other_methods_get_drfs_405(token):
    asgi_request("GET", QUOTE, token=token)
    response = asgi_request("POST", QUOTE, token=token)
    assert response.status == 405  # DRF's answer, not a CSRF 403: the async view stays csrf-exempt
    assert response.headers["allow"] == "GET, HEAD, OPTIONS"


def test_the_schema_still_documents_both_endpoints(auth_client):
    schema = auth_client.get("/api/schema", HTTP_ACCEPT="application/vnd.oai.openapi+json").json()
    quote = schema["paths"]["/api/market/quote/{symbol}"]["get"]
    history = schema["paths"]["/api/market/historical/{symbol}"]["get"]
    assert quote["tags"] == ["market"] and "200" in quote["responses"]
    assert {p["name"] for p in history["parameters"]} >= {"symbol", "timeframe", "limit", "start", "end"}
    assert quote["security"] == [{"jwtAuth": []}]


def test_a_miss_validates_its_query_once_though_both_paths_read_it(token, monkeypatch):
    """The event loop validates the query to look for a cached body; on a miss the DRF view in its thread uses
    that validation instead of repeating it, and answers as it would have."""
    from market.api.serializers import HistoricalQuerySerializer

    asgi_request("GET", HISTORY, token=token)  # the token and user seen, the caches warm
    calls = []
    validate = HistoricalQuerySerializer.is_valid

    def counted(self, *args, **kwargs):
        calls.append(self)
        return validate(self, *args, **kwargs)

    monkeypatch.setattr(HistoricalQuerySerializer, "is_valid", counted)
    miss = asgi_request("GET", HISTORY + "&end=2099-01-01T00:00:00Z", token=token)
    assert miss.status == 200 and miss.thread_hops >= 1  # the DRF view answered
    assert len(calls) == 1
    assert miss.body == drf_answer(HISTORY + "&end=2099-01-01T00:00:00Z", token).body
    calls.clear()
    invalid = asgi_request("GET", HISTORY + "&end=not-a-time", token=token)
    # Not kept: each path raises, and the DRF view answers the 400.
    assert invalid.status == 400 and len(calls) == 2


def test_a_miss_asks_redis_for_the_body_once_and_stores_it_after_answering(token, monkeypatch):
    """The event loop's read of the cached body missed: the DRF view in its thread does not ask Redis again, and
    stores the body it rendered only once the response was sent (tradingdash.after_response), so the next
    request is served from memory."""
    from tradingdash.cache import ResilientRedisCache

    asgi_request("GET", HISTORY, token=token)  # the token and user seen, the caches warm
    asked, stored = [], []
    get, set_ = ResilientRedisCache.get, ResilientRedisCache.set

    def counted_get(self, key, *args, **kwargs):
        if key.startswith("market:history:"):
            asked.append(key)
        return get(self, key, *args, **kwargs)

    def counted_set(self, key, *args, **kwargs):
        if key.startswith("market:history:"):
            stored.append(key)
        return set_(self, key, *args, **kwargs)

    monkeypatch.setattr(ResilientRedisCache, "get", counted_get)
    monkeypatch.setattr(ResilientRedisCache, "set", counted_set)
    miss = asgi_request("GET", HISTORY + "&end=2099-01-02T00:00:00Z", token=token)
    assert miss.status == 200 and miss.thread_hops >= 1  # the DRF view rendered it
    assert asked == [] and len(stored) == 1
    hit = asgi_request("GET", HISTORY + "&end=2099-01-02T00:00:00Z", token=token)
    assert hit.thread_hops == 0 and hit.body == miss.body
