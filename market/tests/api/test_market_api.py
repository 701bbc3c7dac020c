import json
from datetime import UTC, datetime, timedelta

import pytest
import time_machine
from django.db import connection
from django.test.utils import CaptureQueriesContext

from market import sources
from market.models import MarketData
from market.presentation import price
from market.providers.errors import ProviderUnavailable, SymbolNotFound
from market.services import candles_upsert, market_reads_invalidate
from market.tests.factories import FrameProvider, InstrumentFactory, make_candles, provider_configured
from market.timeframes import Timeframe

pytestmark = pytest.mark.django_db
# Monday 2026-06-01, 12:00 IST: NSE is open.
OPEN_NOW = datetime(2026, 6, 1, 6, 30, tzinfo=UTC)


@pytest.fixture
def frozen():
    with time_machine.travel(OPEN_NOW, tick=False):
        yield


@pytest.fixture
def use_provider(monkeypatch):
    """Make the API use the given provider (Yahoo's place at the boundary)."""

    def install(provider):
        provider_configured(monkeypatch, provider)
        return provider

    return install


class TestStatus:
    @pytest.mark.parametrize(
        ("instant", "session", "reason"),
        [
            (datetime(2026, 6, 1, 6, 30, tzinfo=UTC), "open", None),
            (datetime(2026, 6, 1, 3, 33, tzinfo=UTC), "pre_open", "pre-open order entry"),
            (datetime(2026, 6, 1, 11, 0, tzinfo=UTC), "closed", "after hours"),
            (datetime(2026, 6, 6, 6, 0, tzinfo=UTC), "closed", "weekend"),
            (datetime(2026, 11, 24, 6, 0, tzinfo=UTC), "closed", "Prakash Gurpurb Sri Guru Nanak Dev"),
        ],
    )
    def test_session_at_fixed_instants(self, auth_client, instant, session, reason):
        with time_machine.travel(instant, tick=False):
            body = auth_client.get("/api/market/status").json()
        assert body["session"] == session
        assert body["is_open"] is (session == "open")
        assert body["reason"] == reason
        assert body["exchange"] == "NSE" and body["timezone"] == "Asia/Kolkata"

    def test_next_open_after_friday_close_is_monday(self, auth_client):
        with time_machine.travel(datetime(2026, 6, 5, 11, 0, tzinfo=UTC), tick=False):
            body = auth_client.get("/api/market/status").json()
        assert body["next_open"] == "2026-06-08T09:15:00+05:30"

    def test_requires_authentication(self, api_client):
        assert api_client.get("/api/market/status").status_code == 401

    def test_status_of_another_exchange_on_its_own_clock(self, auth_client):
        # Wednesday 2026-06-03 15:00 UTC: 20:30 in India (NSE closed), 11:00 in New York (NYSE open).
        with time_machine.travel(datetime(2026, 6, 3, 15, 0, tzinfo=UTC), tick=False):
            nyse = auth_client.get("/api/market/status?exchange=nyse").json()
            nse = auth_client.get("/api/market/status").json()
        assert (nyse["exchange"], nyse["timezone"], nyse["is_open"]) == ("NYSE", "America/New_York", True)
        assert nyse["next_close"] == "2026-06-03T16:00:00-04:00"
        assert (nse["exchange"], nse["is_open"]) == ("NSE", False)

    def test_unknown_exchange_is_a_400(self, auth_client):
        response = auth_client.get("/api/market/status?exchange=MOON")
        assert response.status_code == 400
        assert "MOON" in json.dumps(response.json())


def test_symbols_lists_the_seeded_catalogue(auth_client):
    symbols = {row["symbol"] for row in auth_client.get("/api/market/symbols").json()["results"]}
    assert {"RELIANCE.NS", "TCS.NS", "^NSEI", "^BSESN"} <= symbols


class TestSymbolValidation:
    @pytest.mark.parametrize(
        "bad", ["..", "http:evil.com", "A" * 200, "RE LIANCE", "%00", "^^NSEI", "A.", "%E2%82%AC"]
    )
    def test_bad_symbols_are_400_before_any_provider_call(self, auth_client, use_provider, bad):
        provider = use_provider(FrameProvider())
        response = auth_client.get(f"/api/market/quote/{bad}")
        assert response.status_code == 400
        assert response.json()["error"]["code"] == "validation_error"
        assert "symbol" in response.json()["error"]["details"]
        assert provider.calls == []

    @pytest.mark.parametrize("path", ["quote/RY.TO", "historical/7203.T?timeframe=1D", "indicators/SAP.DE"])
    def test_a_suffix_naming_no_known_exchange_is_400_before_any_provider_call(
        self, auth_client, use_provider, path
    ):
        # NSE's clock would be wrong for them: a Toronto daily bar final before Toronto opens, a Tokyo one dated
        # the day before.
        provider = use_provider(FrameProvider())
        response = auth_client.get(f"/api/market/{path}")
        assert response.status_code == 400
        assert "Unsupported exchange suffix" in json.dumps(response.json())
        assert provider.calls == []

    def test_the_unsupported_suffix_message_offers_no_bare_us_symbol_while_bare_names_get_ns(
        self, auth_client, use_provider
    ):
        # With DEFAULT_SYMBOL_SUFFIX=.NS (the default), AAPL means AAPL.NS: suggesting "a US symbol without a
        # suffix" sent users to a 404.
        use_provider(FrameProvider())
        message = json.dumps(auth_client.get("/api/market/quote/RY.TO").json())
        assert "without a suffix" not in message
        assert "^GSPC" in message

    def test_the_unsupported_suffix_message_offers_bare_us_symbols_when_they_get_no_suffix(
        self, auth_client, use_provider, settings
    ):
        settings.DEFAULT_SYMBOL_SUFFIX = ""
        use_provider(FrameProvider())
        message = json.dumps(auth_client.get("/api/market/quote/RY.TO").json())
        assert "a US symbol without a suffix" in message

    def test_a_listed_instrument_with_its_exchange_is_served_whatever_its_suffix(
        self, auth_client, use_provider
    ):
        InstrumentFactory(symbol="VOD.IL", exchange="LSE")
        sources.catalogue_invalidate()
        candles = make_candles(5, start=datetime(2026, 6, 1, 23, 0, tzinfo=UTC))  # London midnight (BST)
        use_provider(FrameProvider({("VOD.IL", Timeframe.D1): candles}))
        with time_machine.travel(datetime(2026, 6, 8, 12, 0, tzinfo=UTC), tick=False):
            response = auth_client.get("/api/market/historical/VOD.IL?timeframe=1D&start=2026-06-01")
        assert response.status_code == 200, response.content
        assert response.json()["candles"][0]["timestamp"].endswith("+01:00")  # London's clock, not India's

    @pytest.mark.parametrize("bad", ["..%2F..%2Fetc%2Fpasswd", "http:%2F%2Fevil.com"])
    def test_slashes_never_reach_a_view(self, auth_client, use_provider, bad):
        provider = use_provider(FrameProvider())
        assert auth_client.get(f"/api/market/quote/{bad}").status_code == 404
        assert provider.calls == []

    def test_unknown_symbol_is_404(self, auth_client, frozen):
        response = auth_client.get("/api/market/historical/NOSUCHCO")
        assert response.status_code == 404
        assert response.json()["error"]["code"] == "symbol_not_found"


class TestQuote:
    def test_quote_shape_and_cache(self, auth_client, frozen):
        first = auth_client.get("/api/market/quote/reliance")
        assert first.status_code == 200
        body = first.json()
        assert body["symbol"] == "RELIANCE.NS"
        assert body["source"] == "synthetic"
        assert body["market_status"] == "open"
        assert body["cached"] is False and body["stale"] is False
        assert body["change"] == pytest.approx(body["price"] - body["previous_close"])
        second = auth_client.get("/api/market/quote/RELIANCE.NS").json()
        assert second["cached"] is True
        assert second["price"] == body["price"]

    def test_provider_down_serves_stored_data_as_stale(self, auth_client, use_provider, frozen):
        candles_upsert(symbol="TCS.NS", timeframe=Timeframe.D1, candles=make_candles(3), source="yfinance")
        use_provider(FrameProvider(fail=ProviderUnavailable("Yahoo timed out")))
        body = auth_client.get("/api/market/quote/TCS").json()
        assert body["stale"] is True
        assert body["source"] == "yfinance"

    def test_provider_down_and_nothing_stored_is_503_with_retry_after(
        self, auth_client, use_provider, frozen
    ):
        use_provider(FrameProvider(fail=ProviderUnavailable("Yahoo timed out", retry_after=42)))
        response = auth_client.get("/api/market/quote/TCS")
        assert response.status_code == 503
        assert response["Retry-After"] == "42"
        assert response.json()["error"] == {"code": "provider_unavailable", "message": "Yahoo timed out"}


class TestQuoteCurrency:
    """A quote is in its exchange's currency, whichever provider sent it: the S&P 500 in dollars, not rupees."""

    @pytest.mark.parametrize(
        ("path", "symbol", "currency"), [("%5EGSPC", "^GSPC", "USD"), ("%5EFTSE", "^FTSE", "GBP")]
    )
    def test_a_symbol_outside_the_catalogue_is_in_its_exchanges_currency(
        self, auth_client, use_provider, frozen, path, symbol, currency
    ):
        use_provider(
            FrameProvider({(symbol, Timeframe.D1): make_candles(5, start=OPEN_NOW - timedelta(days=8))})
        )
        assert auth_client.get(f"/api/market/quote/{path}").json()["currency"] == currency

    def test_the_catalogue_currency_wins(self, auth_client, use_provider, frozen):
        InstrumentFactory(symbol="SHEL.L", exchange="LSE", currency="GBX")
        sources.catalogue_invalidate()
        use_provider(
            FrameProvider({("SHEL.L", Timeframe.D1): make_candles(5, start=OPEN_NOW - timedelta(days=8))})
        )
        assert auth_client.get("/api/market/quote/SHEL.L").json()["currency"] == "GBX"

    def test_a_stale_quote_is_in_its_exchanges_currency_too(self, auth_client, use_provider, frozen):
        candles_upsert(
            symbol="^GSPC",
            timeframe=Timeframe.D1,
            candles=make_candles(3, start=OPEN_NOW - timedelta(days=8)),
            source="yfinance",
        )
        use_provider(FrameProvider({}, fail=ProviderUnavailable("Yahoo is down")))
        body = auth_client.get("/api/market/quote/%5EGSPC").json()
        assert body["stale"] is True and body["currency"] == "USD"


class TestHistorical:
    def test_fetches_missing_range_once_then_serves_from_database(self, auth_client, frozen):
        first = auth_client.get("/api/market/historical/TCS?timeframe=1d&start=2026-01-01")
        assert first.status_code == 200
        body = first.json()
        assert body["timeframe"] == "1D" and body["source"] == "synthetic"
        stamps = [c["timestamp"] for c in body["candles"]]
        assert stamps == sorted(stamps) and body["count"] == len(stamps) > 90
        stored = MarketData.objects.filter(symbol="TCS.NS", timeframe="1D").count()
        auth_client.get("/api/market/historical/TCS?timeframe=1D&start=2026-02-01")
        assert MarketData.objects.filter(symbol="TCS.NS", timeframe="1D").count() == stored

    def test_limit_with_order_desc_returns_latest_candles_in_time_order(
        self, auth_client, use_provider, frozen
    ):
        use_provider(FrameProvider({("TCS.NS", Timeframe.D1): make_candles(50)}))
        query = "start=2024-01-01&end=2024-12-31&limit=10&order=desc"
        body = auth_client.get(f"/api/market/historical/TCS?{query}").json()
        assert body["count"] == 10
        assert datetime.fromisoformat(body["candles"][-1]["timestamp"]) == make_candles(50).index[-1]

    def test_limit_with_start_returns_the_first_candles_from_start(self, auth_client, use_provider, frozen):
        use_provider(FrameProvider({("TCS.NS", Timeframe.D1): make_candles(50)}))
        body = auth_client.get("/api/market/historical/TCS?start=1990-01-01&limit=3").json()
        assert [datetime.fromisoformat(c["timestamp"]) for c in body["candles"]] == list(
            make_candles(50).index[:3]
        )

    def test_without_start_limit_keeps_the_latest(self, auth_client, use_provider, frozen):
        candles = make_candles(50, start=OPEN_NOW - timedelta(days=60))
        use_provider(FrameProvider({("TCS.NS", Timeframe.D1): candles}))
        body = auth_client.get("/api/market/historical/TCS?limit=3").json()
        assert [datetime.fromisoformat(c["timestamp"]) for c in body["candles"]] == list(candles.index[-3:])

    @pytest.mark.parametrize(
        "query",
        [
            "limit=5001",
            "limit=0",
            "limit=abc",
            "timeframe=2D",
            "start=2026-05-01&end=2026-04-01",
            "start=not-a-date",
            "start=0001-01-01",
            "start=2026-01-01T00:00:00",
            "timeframe=5m&start=2025-01-01",
            "timeframe=1m&start=2026-04-01",
            "order=newest",
        ],
    )
    def test_bad_queries_are_400(self, auth_client, query, frozen):
        response = auth_client.get(f"/api/market/historical/TCS?{query}")
        assert response.status_code == 400, response.json()
        assert response.json()["error"]["code"] == "validation_error"

    def test_lookback_error_names_the_limit(self, auth_client, frozen):
        response = auth_client.get("/api/market/historical/TCS?timeframe=15m&start=2025-01-01")
        assert "last 60 days" in str(response.json()["error"]["details"])

    def test_provider_down_serves_stored_candles_as_stale(self, auth_client, use_provider, frozen):
        candles_upsert(symbol="TCS.NS", timeframe=Timeframe.D1, candles=make_candles(20), source="yfinance")
        use_provider(FrameProvider(fail=ProviderUnavailable("Yahoo timed out")))
        body = auth_client.get("/api/market/historical/TCS?start=2024-01-01").json()
        assert body["stale"] is True and body["count"] == 20

    def test_hot_path_query_count_is_pinned(self, auth_client, use_provider):
        candles = make_candles(2500, start=datetime(2016, 1, 1, 18, 30, tzinfo=UTC))
        use_provider(FrameProvider({("TCS.NS", Timeframe.D1): candles}))
        now = candles.index[-1].to_pydatetime() + timedelta(hours=1)
        with time_machine.travel(now, tick=False):
            auth_client.get("/api/market/historical/TCS?start=2015-01-01&limit=5000")  # fetch and store once
            with CaptureQueriesContext(connection) as queries:
                response = auth_client.get("/api/market/historical/TCS?start=2015-06-01&limit=5000")
            with CaptureQueriesContext(connection) as unadjusted:
                auth_client.get("/api/market/historical/TCS?start=2015-06-01&limit=5000&adjust=none")
            market_reads_invalidate(symbol="TCS.NS")  # a new version: its splits are read again
            with CaptureQueriesContext(connection) as new_version:
                auth_client.get("/api/market/historical/TCS?start=2015-06-01&limit=4000")
        assert response.json()["count"] == 2500
        # coverage + candles: the symbol's splits (the default adjust=splits) were read under this version by the
        # first request
        assert len(queries) == 2, [q["sql"] for q in queries]
        assert len(unadjusted) == 2, [q["sql"] for q in unadjusted]  # coverage + candles
        assert len(new_version) == 3, [q["sql"] for q in new_version]  # coverage + candles + splits
        assert "market_corporateaction" in new_version[2]["sql"]

    def test_cached_response_needs_no_candle_query(self, auth_client, frozen):
        auth_client.get("/api/market/historical/TCS?start=2026-05-01")
        with CaptureQueriesContext(connection) as queries:
            auth_client.get("/api/market/historical/TCS?start=2026-05-01")
        assert not any("market_marketdata" in q["sql"] for q in queries)

    def test_sync_invalidates_cached_history(self, staff_client, frozen):
        staff_client.get("/api/market/historical/TCS?start=2026-05-01")
        MarketData.objects.filter(symbol="TCS.NS").delete()
        staff_client.post("/api/market/sync/TCS", {"timeframe": "1D", "days": 10}, format="json")
        body = staff_client.get("/api/market/historical/TCS?start=2026-05-01").json()
        assert (
            body["count"]
            == MarketData.objects.filter(
                symbol="TCS.NS", timestamp__gte=datetime(2026, 4, 30, 18, 30, tzinfo=UTC)
            ).count()
        )


class TestSync:
    def test_staff_sync_is_incremental_and_idempotent(self, staff_client, frozen):
        first = staff_client.post("/api/market/sync/INFY", {"timeframe": "1D", "days": 30}, format="json")
        assert first.status_code == 200
        body = first.json()
        assert body["symbol"] == "INFY.NS" and body["inserted"] > 15 and body["source"] == "synthetic"
        assert body["off_session"] == 0  # the synthetic provider's bars are all on the calendar's sessions
        second = staff_client.post("/api/market/sync/INFY", {"timeframe": "1D"}, format="json").json()
        # The overlap it fetched again came back as stored: unchanged, not updated.
        assert (second["inserted"], second["updated"]) == (0, 0) and second["unchanged"] > 0
        assert second["message"] is None

    def test_non_staff_get_403(self, auth_client):
        response = auth_client.post("/api/market/sync/INFY", {"timeframe": "1D"}, format="json")
        assert response.status_code == 403
        assert response.json()["error"]["code"] == "permission_denied"

    def test_bad_body_is_400(self, staff_client):
        response = staff_client.post("/api/market/sync/INFY", {"timeframe": "1D", "days": -3}, format="json")
        assert response.status_code == 400


class TestMultiple:
    def test_one_bad_symbol_never_fails_the_others(self, auth_client, frozen):
        body = auth_client.get("/api/market/multiple?symbols=TCS,NOSUCHCO,INFY.NS").json()
        assert [q["symbol"] for q in body["quotes"]] == ["TCS.NS", "INFY.NS"]
        assert set(body["errors"]) == {"NOSUCHCO.NS"}

    def test_unreachable_symbol_reported_per_symbol(self, auth_client, use_provider, frozen):
        class Flaky(FrameProvider):
            def fetch_candles(self, symbol, timeframe, *, start=None, end=None):
                if symbol == "SBIN.NS":
                    raise ProviderUnavailable("timeout")
                if symbol == "TCS.NS":
                    return make_candles(5, start=OPEN_NOW - timedelta(days=6))
                raise SymbolNotFound(symbol)

        use_provider(Flaky())
        body = auth_client.get("/api/market/multiple?symbols=TCS,SBIN").json()
        assert [q["symbol"] for q in body["quotes"]] == ["TCS.NS"]
        assert body["errors"] == {"SBIN.NS": "timeout"}

    def test_quotes_not_cached_are_asked_for_together(self, auth_client, use_provider, frozen, settings):
        # A cold watchlist of many symbols was a provider request per symbol (50 Yahoo round trips).
        settings.QUOTE_BATCH_SIZE = 50

        class Counting(FrameProvider):
            def __init__(self):
                super().__init__()
                self.batches, self.singles = [], []

            def fetch_quotes(self, symbols):
                self.batches.append(sorted(symbols))
                return super().fetch_quotes(symbols)

            def fetch_quote(self, symbol):
                self.singles.append(symbol)
                return super().fetch_quote(symbol)

            def fetch_candles(self, symbol, timeframe, *, start=None, end=None):
                if symbol == "NOSUCHCO.NS":
                    raise SymbolNotFound(symbol)
                return make_candles(5, start=OPEN_NOW - timedelta(days=6))

        provider = use_provider(Counting())
        body = auth_client.get("/api/market/multiple?symbols=TCS,INFY,SBIN,NOSUCHCO").json()
        assert [q["symbol"] for q in body["quotes"]] == ["TCS.NS", "INFY.NS", "SBIN.NS"]
        assert set(body["errors"]) == {"NOSUCHCO.NS"}
        assert provider.batches == [["INFY.NS", "NOSUCHCO.NS", "SBIN.NS", "TCS.NS"]]
        # One call each inside the batch (FrameProvider has no batch endpoint), and only the unknown symbol again.
        assert sorted(provider.singles) == ["INFY.NS", "NOSUCHCO.NS", "NOSUCHCO.NS", "SBIN.NS", "TCS.NS"]
        assert auth_client.get("/api/market/multiple?symbols=TCS,INFY").json()["errors"] == {}
        assert provider.batches == [["INFY.NS", "NOSUCHCO.NS", "SBIN.NS", "TCS.NS"]]  # cached now

    def test_more_than_50_symbols_is_400(self, auth_client):
        symbols = ",".join(f"S{i}" for i in range(51))
        assert auth_client.get(f"/api/market/multiple?symbols={symbols}").status_code == 400

    def test_missing_symbols_is_400(self, auth_client):
        assert auth_client.get("/api/market/multiple").status_code == 400


class TestRedisDown:
    def test_endpoints_answer_from_database_when_cache_is_down(self, auth_client, dead_cache, frozen):
        assert auth_client.get("/api/market/quote/TCS").status_code == 200
        assert auth_client.get("/api/market/historical/TCS?start=2026-05-01").status_code == 200
        assert auth_client.get("/api/market/status").status_code == 200


@pytest.mark.parametrize("microsecond", [999, 999_999])
def test_postgres_rendered_candles_equal_the_python_rendering(monkeypatch, microsecond):
    """The binary-cursor path (epoch seconds floored in SQL) and the ORM path (Python datetimes) give the same
    JSON values, floats to the last bit and sub-second times truncated alike."""
    import json

    from market.selectors import _history_candles_json

    candles = make_candles(
        40, start=datetime(2026, 1, 5, 3, 45, 0, microsecond, tzinfo=UTC), step=timedelta(minutes=15)
    )
    candles["close"] = candles["close"] * (1 + 1e-13)  # awkward floats
    candles["high"] = candles[["high", "close"]].max(axis=1)
    candles_upsert(symbol="TCS.NS", timeframe=Timeframe.M15, candles=candles, source="csv")
    kwargs = {"symbol": "TCS.NS", "timeframe": Timeframe.M15, "start": None, "end": None, "limit": 25}
    in_sql = _history_candles_json(**kwargs)
    monkeypatch.setattr(connection, "vendor", "sqlite")
    in_python = _history_candles_json(**kwargs)
    assert in_sql[0] == in_python[0] == 25 and in_sql[2] == in_python[2] == "csv"
    assert json.loads(in_sql[1]) == json.loads(in_python[1])
    # The 16th bar of 40, to the second.
    assert json.loads(in_sql[1])[0]["timestamp"] == "2026-01-05T13:00:00+05:30"


class TestPresentation:
    """What a trader reads: exchange-local times, the trading day of daily bars, prices at two decimals."""

    def test_daily_bars_read_in_ist_with_their_trading_day(self, auth_client, use_provider, frozen):
        candles = make_candles(5, start=OPEN_NOW - timedelta(days=8))
        candles["close"] = candles["close"] + 1e-9  # float noise a provider hands over
        use_provider(FrameProvider({("TCS.NS", Timeframe.D1): candles}))
        body = auth_client.get("/api/market/historical/TCS?limit=5&order=desc").json()
        bar = body["candles"][-1]
        assert bar["timestamp"].endswith("+05:30")
        assert bar["date"] == bar["timestamp"][:10]
        assert datetime.fromisoformat(bar["timestamp"]) == candles.index[-1]
        assert bar["close"] == price(candles["close"].iloc[-1], tick=0.05)  # an NSE equity's tick

    def test_quote_in_exchange_time_with_readable_numbers(self, auth_client, use_provider, frozen):
        candles = make_candles(5, start=OPEN_NOW - timedelta(days=8))
        use_provider(FrameProvider({("TCS.NS", Timeframe.D1): candles}))
        quote = auth_client.get("/api/market/quote/TCS").json()
        assert quote["timestamp"].endswith("+05:30")
        assert quote["price"] == price(quote["price"], tick=0.05)
        assert quote["change_percent"] == round(quote["change_percent"], 2)

    def test_columns_for_charting_libraries(self, auth_client, use_provider, frozen):
        candles = make_candles(5, start=OPEN_NOW - timedelta(days=8))
        use_provider(FrameProvider({("TCS.NS", Timeframe.D1): candles}))
        rows = auth_client.get("/api/market/historical/TCS?limit=5").json()
        body = auth_client.get("/api/market/historical/TCS?limit=5&format=columns").json()
        table = body["candles"]
        assert body["count"] == 5 and set(table) == {
            "time",
            "open",
            "high",
            "low",
            "close",
            "volume",
            "final",
            "date",
        }
        assert table["time"] == [int(ts.timestamp()) for ts in candles.index]
        assert table["close"] == [bar["close"] for bar in rows["candles"]]
        assert table["date"] == [bar["date"] for bar in rows["candles"]]
        assert auth_client.get("/api/market/historical/TCS?format=csv").status_code == 400
