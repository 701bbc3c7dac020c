"""Every provider failure is stored data marked stale, or a 503 with Retry-After naming the cause: never a 500.

Yahoo is played by the fake session at yfinance's `session=` seam (the real yfinance code runs); the CSV provider
reads a corrupt file from a temporary directory."""

from datetime import UTC, datetime, timedelta

import pytest
import requests
import time_machine

from market.providers.csv import CsvProvider
from market.services import candles_upsert
from market.tests.factories import make_candles, provider_configured
from market.tests.providers.fake_clock import FakeClock
from market.tests.providers.fake_yahoo import FakeYahooSession
from market.timeframes import Timeframe

pytestmark = [pytest.mark.django_db, pytest.mark.filterwarnings("ignore::pandas.errors.Pandas4Warning")]
NOW = datetime(2026, 11, 11, 12, 0, tzinfo=UTC)  # Wednesday, after the close


def _http_error(status: int) -> requests.HTTPError:
    response = requests.Response()
    response.status_code = status
    return requests.HTTPError(f"{status} Client Error", response=response)


def _failures(yfinance_errors):
    return {
        "http_403": (_http_error(403), "HTTP 403"),
        "invalid_period": (
            yfinance_errors.YFInvalidPeriodError("TCS.NS", "1d", "1d, 5d"),
            "Yahoo Finance rejected the request",
        ),
        "unknown_exception": (RuntimeError("parser exploded"), "RuntimeError: parser exploded"),
    }


FAILURES = ["http_403", "invalid_period", "unknown_exception"]


@pytest.fixture
def install(monkeypatch):
    def install(provider):
        provider_configured(monkeypatch, provider)
        return provider

    with time_machine.travel(NOW, tick=False):
        yield install


@pytest.fixture
def failing_yahoo(install, yfinance_module, yfinance_cache_dir, nse_calendar):
    """Install a Yahoo whose every chart request for a window fails the given way; returns the expected text."""
    import yfinance.exceptions
    from yfinance.data import YfData

    def make(kind: str) -> str:
        YfData.cache_get.cache_clear()
        error, message = _failures(yfinance.exceptions)[kind]
        session = FakeYahooSession({("TCS.NS", "1d"): "tcs_ns_1d_2026-11_gaps.json"})
        session.window_outcomes = [error] * 20
        clock = FakeClock()
        install(
            yfinance_module.YFinanceProvider(
                session=session,
                cache_dir=yfinance_cache_dir,
                calendar=nse_calendar,
                clock=lambda: NOW,
                retries=0,
                sleep=clock.sleep,
                limiter=yfinance_module.SlidingWindowLimiter(clock=clock, sleep=clock.sleep),
            )
        )
        return message

    return make


def _store_some():
    candles_upsert(
        symbol="TCS.NS",
        timeframe=Timeframe.D1,
        candles=make_candles(20, start=NOW - timedelta(days=30)),
        source="yfinance",
    )


def _assert_503(response, cause: str):
    assert response.status_code == 503, response.content
    assert int(response["Retry-After"]) > 0
    assert cause in response.json()["error"]["message"]


@pytest.mark.parametrize("kind", FAILURES)
class TestYahooFailures:
    def test_historical_without_stored_data_is_503(self, auth_client, failing_yahoo, kind):
        cause = failing_yahoo(kind)
        _assert_503(auth_client.get("/api/market/historical/TCS?start=2026-10-01"), cause)

    def test_historical_with_stored_data_is_stale(self, auth_client, failing_yahoo, kind):
        failing_yahoo(kind)
        _store_some()
        body = auth_client.get("/api/market/historical/TCS?start=2026-09-01").json()
        assert body["stale"] is True and body["count"] == 20

    def test_quote_without_stored_data_is_503(self, auth_client, failing_yahoo, kind):
        cause = failing_yahoo(kind)
        _assert_503(auth_client.get("/api/market/quote/TCS"), cause)

    def test_quote_with_stored_data_is_stale(self, auth_client, failing_yahoo, kind):
        failing_yahoo(kind)
        _store_some()
        body = auth_client.get("/api/market/quote/TCS").json()
        assert body["stale"] is True and body["source"] == "yfinance"

    def test_multiple_reports_the_failure_per_symbol(self, auth_client, failing_yahoo, kind):
        cause = failing_yahoo(kind)
        response = auth_client.get("/api/market/multiple?symbols=TCS")
        assert response.status_code == 200
        assert cause in response.json()["errors"]["TCS.NS"]

    def test_sync_is_503(self, staff_client, failing_yahoo, kind):
        cause = failing_yahoo(kind)
        response = staff_client.post("/api/market/sync/TCS", {"timeframe": "1D", "days": 5}, format="json")
        _assert_503(response, cause)

    def test_signal_generate_is_503(self, auth_client, failing_yahoo, kind):
        cause = failing_yahoo(kind)
        _assert_503(auth_client.post("/api/signals/generate/TCS", {}, format="json"), cause)

    def test_prediction_generate_is_503(self, auth_client, failing_yahoo, kind):
        cause = failing_yahoo(kind)
        _assert_503(auth_client.post("/api/predictions/generate/TCS", {}, format="json"), cause)


CORRUPT = {
    "bad_price": (
        "Date,Open,High,Low,Close,Volume\n2026-11-02,1,2,0.5,1.5,10\n2026-11-03,1,2,oops,1.5,10\n",
        3,
    ),
    "bad_timestamp": (
        "Date,Open,High,Low,Close,Volume\n2026-11-02,1,2,0.5,1.5,10\nnot-a-day,1,2,0.5,1.5,10\n",
        3,
    ),
    "extra_field": (
        "Date,Open,High,Low,Close,Volume\n2026-11-02,1,2,0.5,1.5,10\n2026-11-03,1,2,0.5,1.5,10,7,8\n",
        3,
    ),
}


@pytest.mark.parametrize("kind", list(CORRUPT))
class TestCorruptCsv:
    @pytest.fixture
    def csv_dir(self, tmp_path, install, kind):
        text, _ = CORRUPT[kind]
        (tmp_path / "TCS.NS_1D.csv").write_text(text)
        install(CsvProvider(directory=tmp_path))
        return tmp_path

    def test_historical_names_file_and_line(self, auth_client, csv_dir, kind):
        response = auth_client.get("/api/market/historical/TCS?start=2026-10-01")
        _assert_503(response, f"TCS.NS_1D.csv, line {CORRUPT[kind][1]}")

    def test_historical_with_stored_data_is_stale(self, auth_client, csv_dir, kind):
        _store_some()
        body = auth_client.get("/api/market/historical/TCS?start=2026-09-01").json()
        assert body["stale"] is True and body["count"] == 20

    def test_quote_names_file_and_line(self, auth_client, csv_dir, kind):
        _assert_503(auth_client.get("/api/market/quote/TCS"), f"TCS.NS_1D.csv, line {CORRUPT[kind][1]}")


class TestRequestBudget:
    """The Yahoo request budget never holds a web request past its deadline; tasks wait for it."""

    @pytest.fixture
    def busy_yahoo(self, install, yfinance_module, yfinance_cache_dir, nse_calendar):
        from yfinance.data import YfData

        YfData.cache_get.cache_clear()
        clock = FakeClock()
        limiter = yfinance_module.SlidingWindowLimiter(clock=clock, sleep=clock.sleep)
        limiter.acquire(1)  # the minute's only request is spent
        install(
            yfinance_module.YFinanceProvider(
                session=FakeYahooSession({("TCS.NS", "1d"): "tcs_ns_1d_2026-11_gaps.json"}),
                cache_dir=yfinance_cache_dir,
                calendar=nse_calendar,
                clock=lambda: NOW,
                max_requests_per_minute=1,
                max_wait=2.0,
                sleep=clock.sleep,
                limiter=limiter,
            )
        )
        return clock

    def test_web_read_without_stored_data_is_503_at_once(self, auth_client, busy_yahoo):
        response = auth_client.get("/api/market/historical/TCS?start=2026-11-01")
        _assert_503(response, "budget")
        assert response.json()["error"]["code"] == "rate_limited" and response["Retry-After"] == "60"
        assert busy_yahoo.sleeps == []

    def test_web_read_with_stored_data_is_stale_at_once(self, auth_client, busy_yahoo):
        _store_some()
        body = auth_client.get("/api/market/historical/TCS?start=2026-09-01").json()
        assert body["stale"] is True and busy_yahoo.sleeps == []

    def test_a_task_waits_for_the_budget(self, busy_yahoo):
        from market.tasks import sync_symbol

        result = sync_symbol.apply(args=["TCS.NS", "1D"], kwargs={"days": 10})
        assert result.successful(), result.traceback
        assert result.result["inserted"] > 0
        assert busy_yahoo.sleeps == [60.0]


class TestQuoteWithoutLiveQuote:
    def test_csv_without_recent_bars_answers_the_last_stored_bar_with_its_age(
        self, auth_client, install, tmp_path
    ):
        (tmp_path / "TCS.NS_1D.csv").write_text(
            "Date,Open,High,Low,Close,Volume\n2026-09-01,10,12,9,11,100\n2026-09-02,11,13,10,12,100\n"
        )
        install(CsvProvider(directory=tmp_path))
        assert auth_client.get("/api/market/historical/TCS?start=2026-09-01").json()["count"] == 2
        body = auth_client.get("/api/market/quote/TCS").json()
        assert body["stale"] is True and body["price"] == 12 and body["previous_close"] == 11
        # The 2 September bar ended with its session, at 15:30 IST (10:00 UTC): its price is as old as that.
        assert body["stale_seconds"] == int((NOW - datetime(2026, 9, 2, 10, 0, tzinfo=UTC)).total_seconds())

    def test_a_new_york_bar_is_as_old_as_new_yorks_close_after_the_dst_change(
        self, auth_client, install, tmp_path
    ):
        # 9 March 2026 is New York's first day on EDT: its 16:00 close is 20:00 UTC (21:00 UTC the Friday before).
        (tmp_path / "^GSPC_1D.csv").write_text(
            "Date,Open,High,Low,Close,Volume\n2026-03-06,5000,5010,4990,5005,0\n2026-03-09,5005,5020,5000,5015,0\n"
        )
        install(CsvProvider(directory=tmp_path, tz=lambda symbol: "America/New_York"))
        assert auth_client.get("/api/market/historical/%5EGSPC?start=2026-03-06").json()["count"] == 2
        body = auth_client.get("/api/market/quote/%5EGSPC").json()
        assert body["stale"] is True and body["price"] == 5015
        assert body["stale_seconds"] == int((NOW - datetime(2026, 3, 9, 20, 0, tzinfo=UTC)).total_seconds())

    def test_a_day_stored_while_forming_is_as_old_as_its_fetch(self, auth_client, install, tmp_path):
        """A bar fetched at 10:00 IST and served from the store at 14:00 IST (the provider failing) holds 10:00's
        price: four hours old, not fresh."""
        install(CsvProvider(directory=tmp_path))  # no file: every fetch fails
        today = datetime(2026, 11, 10, 18, 30, tzinfo=UTC)  # Wed 11 Nov 00:00 IST
        with time_machine.travel(datetime(2026, 11, 11, 4, 30, tzinfo=UTC), tick=False):  # 10:00 IST
            candles_upsert(
                symbol="TCS.NS",
                timeframe=Timeframe.D1,
                candles=make_candles(2, start=today - timedelta(days=1)),
                source="yfinance",
            )
        with time_machine.travel(datetime(2026, 11, 11, 8, 30, tzinfo=UTC), tick=False):  # 14:00 IST, open
            body = auth_client.get("/api/market/quote/TCS").json()
        assert body["stale"] is True and body["market_status"] == "open"
        assert body["stale_seconds"] == 4 * 3600
        assert "final" not in body and "fetched" not in body

    def test_a_split_on_the_last_stored_day_is_no_change_in_the_stale_quote(
        self, auth_client, install, tmp_path
    ):
        (tmp_path / "TCS.NS_1D.csv").write_text(
            "Date,Open,High,Low,Close,Volume,Dividends,Stock Splits\n"
            "2026-09-01,20,24,18,22,100,0,0\n2026-09-02,11,13,10,12,200,0,2\n"
        )
        install(CsvProvider(directory=tmp_path))
        assert auth_client.get("/api/market/historical/TCS?start=2026-09-01").json()["count"] == 2
        body = auth_client.get("/api/market/quote/TCS").json()
        assert body["stale"] is True and body["price"] == 12 and body["previous_close"] == 11
        assert body["change_percent"] == pytest.approx(9.09, abs=0.01)

    def test_a_quote_the_provider_answers_from_days_old_bars_is_stale(self, auth_client, install, tmp_path):
        """A CSV file last written on Friday 6 November, read on Wednesday 11 November (NOW, after the close): the
        provider answers, but with a price three sessions old. Served as live it would pass for today's."""
        (tmp_path / "TCS.NS_1D.csv").write_text(
            "Date,Open,High,Low,Close,Volume\n2026-11-05,10,12,9,11,100\n2026-11-06,11,13,10,12,100\n"
        )
        install(CsvProvider(directory=tmp_path))
        body = auth_client.get("/api/market/quote/TCS").json()
        assert body["price"] == 12 and body["cached"] is False
        assert body["stale"] is True
        assert body["stale_seconds"] == int((NOW - datetime(2026, 11, 6, 10, 0, tzinfo=UTC)).total_seconds())

    def test_a_quote_of_the_latest_closed_session_is_live(self, auth_client, install, tmp_path):
        (tmp_path / "TCS.NS_1D.csv").write_text(
            "Date,Open,High,Low,Close,Volume\n2026-11-10,10,12,9,11,100\n2026-11-11,11,13,10,12,100\n"
        )
        install(CsvProvider(directory=tmp_path))
        body = auth_client.get("/api/market/quote/TCS").json()
        assert body["price"] == 12 and body["stale"] is False and body["stale_seconds"] is None
        # The next morning, before the open, it is still the latest session's price.
        with time_machine.travel(datetime(2026, 11, 12, 3, 0, tzinfo=UTC), tick=False):
            from django.core.cache import cache

            cache.clear()
            body = auth_client.get("/api/market/quote/TCS").json()
        assert body["stale"] is False

    def test_unknown_csv_symbol_is_still_404(self, auth_client, install, tmp_path):
        install(CsvProvider(directory=tmp_path))
        assert auth_client.get("/api/market/quote/TCS").status_code == 404

    def test_live_quote_has_no_age(self, auth_client):
        with time_machine.travel(NOW, tick=False):
            body = auth_client.get("/api/market/quote/TCS").json()
        assert body["stale"] is False and body["stale_seconds"] is None
