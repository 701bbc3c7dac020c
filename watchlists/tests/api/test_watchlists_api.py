from datetime import UTC, datetime, timedelta

import pytest
import time_machine

from accounts.tests.factories import UserFactory
from conftest import _client_for
from market.models import Instrument
from market.presentation import price
from market.tests.factories import FrameProvider, InstrumentFactory, make_candles, provider_configured
from market.timeframes import Timeframe
from watchlists.models import Watchlist

pytestmark = pytest.mark.django_db


@pytest.fixture
def catalogue(db):
    for symbol in ("RELIANCE.NS", "TCS.NS", "INFY.NS"):
        InstrumentFactory(symbol=symbol)
    InstrumentFactory(symbol="OLD.NS", active=False)


def _create(client, **body):
    return client.post("/api/watchlists", {"name": "Banks", "symbols": ["TCS"], **body}, format="json")


def test_first_get_gives_a_default_list_of_active_instruments(auth_client, catalogue):
    active = sorted(Instrument.objects.filter(active=True).values_list("symbol", flat=True))
    body = auth_client.get("/api/watchlists").json()
    assert [(w["name"], w["symbols"]) for w in body["results"]] == [("Default", active)]
    assert "OLD.NS" not in active and "INFY.NS" in active
    assert set(body["results"][0]) == {"id", "name", "symbols", "created_at"}


def test_deleted_default_list_does_not_come_back(auth_client, catalogue):
    default = auth_client.get("/api/watchlists").json()["results"][0]
    assert auth_client.delete(f"/api/watchlists/{default['id']}").status_code == 204
    assert auth_client.get("/api/watchlists").json()["results"] == []


def test_create_normalises_and_deduplicates_symbols(auth_client, catalogue):
    response = _create(auth_client, symbols=["reliance", "RELIANCE.NS", " TCS "])
    assert response.status_code == 201, response.json()
    body = response.json()
    assert body["name"] == "Banks" and body["symbols"] == ["RELIANCE.NS", "TCS.NS"]
    assert Watchlist.objects.get(pk=body["id"]).symbols == ["RELIANCE.NS", "TCS.NS"]


def test_unknown_and_invalid_symbols_are_400_naming_each(auth_client, catalogue):
    response = _create(auth_client, symbols=["TCS", "NOSUCH", "ALSONOT.NS"])
    assert response.status_code == 400
    messages = response.json()["error"]["details"]["symbols"]
    assert any("NOSUCH.NS" in m for m in messages) and any("ALSONOT.NS" in m for m in messages)
    bad = _create(auth_client, symbols=["TC S", "TCS"])
    assert bad.status_code == 400 and "TC S" in str(bad.json()["error"]["details"]["symbols"])


def test_at_most_50_symbols_a_list(auth_client, settings, catalogue):
    symbols = [f"S{i}.NS" for i in range(51)]
    for symbol in symbols:
        InstrumentFactory(symbol=symbol)
    assert _create(auth_client, symbols=symbols[:50]).status_code == 201
    response = _create(auth_client, name="Too many", symbols=symbols)
    assert response.status_code == 400 and "50" in str(response.json()["error"]["details"]["symbols"])


def test_at_most_20_lists_a_user(auth_client, catalogue):
    auth_client.get("/api/watchlists")  # the Default list counts
    for i in range(19):
        assert _create(auth_client, name=f"List {i}").status_code == 201
    response = _create(auth_client, name="One too many")
    assert response.status_code == 400
    assert "20" in response.json()["error"]["details"]["non_field_errors"][0]


def test_duplicate_name_is_400(auth_client, catalogue):
    assert _create(auth_client).status_code == 201
    response = _create(auth_client)
    assert response.status_code == 400 and "Banks" in response.json()["error"]["details"]["name"][0]


def test_get_patch_delete_own_list(auth_client, catalogue):
    created = _create(auth_client).json()
    url = f"/api/watchlists/{created['id']}"
    assert auth_client.get(url).json() == created
    patched = auth_client.patch(url, {"symbols": ["INFY", "TCS"]}, format="json")
    assert patched.status_code == 200 and patched.json()["symbols"] == ["INFY.NS", "TCS.NS"]
    assert patched.json()["name"] == "Banks"
    renamed = auth_client.patch(url, {"name": "IT"}, format="json").json()
    assert renamed["name"] == "IT" and renamed["symbols"] == ["INFY.NS", "TCS.NS"]
    assert auth_client.patch(url, {"symbols": ["NOSUCH"]}, format="json").status_code == 400
    assert auth_client.delete(url).status_code == 204
    assert auth_client.get(url).status_code == 404


def test_an_edit_of_a_list_deleted_meanwhile_is_404_not_500(auth_client, catalogue):
    """The list was deleted (another tab) after this PATCH found it and before it locked the row to write."""
    from django.db import connection

    created = _create(auth_client).json()

    def deleted_meanwhile(execute, sql, params, many, context):
        if "FOR UPDATE" in sql and "watchlists_watchlist" in sql:
            execute('DELETE FROM "watchlists_watchlist" WHERE "id" = %s', [created["id"]], False, context)
        return execute(sql, params, many, context)

    with connection.execute_wrapper(deleted_meanwhile):
        response = auth_client.patch(f"/api/watchlists/{created['id']}", {"name": "IT"}, format="json")
    assert response.status_code == 404, response.content
    assert response.json()["error"]["code"] == "not_found"


def test_another_users_list_is_404(auth_client, catalogue):
    created = _create(auth_client).json()
    other = _client_for(UserFactory())
    url = f"/api/watchlists/{created['id']}"
    assert other.get(url).status_code == 404
    assert other.patch(url, {"name": "Mine"}, format="json").status_code == 404
    assert other.delete(url).status_code == 404
    assert other.get(f"{url}/quotes").status_code == 404
    assert Watchlist.objects.get(pk=created["id"]).name == "Banks"
    assert [w["name"] for w in other.get("/api/watchlists").json()["results"]] == ["Default"]


def test_unauthenticated_is_401(api_client):
    assert api_client.get("/api/watchlists").status_code == 401


def test_quotes_of_a_list_with_per_symbol_errors(auth_client, catalogue, monkeypatch):
    now = datetime(2026, 6, 3, 12, 0, tzinfo=UTC)
    candles = make_candles(10, start=now - timedelta(days=10))
    provider = FrameProvider({("TCS.NS", Timeframe.D1): candles})
    provider_configured(monkeypatch, provider)
    created = _create(auth_client, symbols=["TCS", "INFY"]).json()
    with time_machine.travel(now, tick=False):
        response = auth_client.get(f"/api/watchlists/{created['id']}/quotes")
    assert response.status_code == 200
    body = response.json()
    assert [q["symbol"] for q in body["quotes"]] == ["TCS.NS"]
    assert body["quotes"][0]["price"] == price(candles["close"].iloc[-1], tick=0.05)
    assert list(body["errors"]) == ["INFY.NS"]


def test_a_list_over_the_limit_is_refused_before_each_symbol_is_looked_up(
    auth_client, settings, catalogue, django_assert_max_num_queries
):
    """70,000 symbols (half a megabyte) were deduplicated in quadratic time, looked up in the catalogue and
    answered with an error each: 36 s of a web worker and a 2 MB answer, for a list refused anyway."""
    settings.WATCHLIST_MAX_SYMBOLS = 3
    auth_client.get("/api/watchlists")
    with django_assert_max_num_queries(0):  # no catalogue query
        response = _create(auth_client, symbols=[f"NOPE{i}" for i in range(5000)])
    assert response.status_code == 400
    assert response.json()["error"]["details"]["symbols"] == ["At most 3 symbols per watchlist."]
