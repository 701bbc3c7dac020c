"""YFinanceProvider driving the real yfinance against Yahoo played back from fixtures (no network)."""

import copy
import threading
from datetime import UTC, date, datetime, time, timedelta
from itertools import pairwise
from zoneinfo import ZoneInfo

import pytest
import requests

from market.adjust import Action
from market.calendar import SessionOverride
from market.providers.base import CANDLE_COLUMNS, LookbackExceeded
from market.providers.errors import ProviderUnavailable, RateLimited, SymbolNotFound
from market.tests.providers.fake_clock import FakeClock
from market.tests.providers.fake_yahoo import FakeYahooSession, load_chart
from market.timeframes import Timeframe

pytestmark = pytest.mark.filterwarnings(
    # yfinance 1.7 itself calls pandas APIs that pandas 3.1 deprecates.
    "ignore::pandas.errors.Pandas4Warning",
)

IST = ZoneInfo("Asia/Kolkata")
NOW = datetime(2026, 11, 11, 12, 0, tzinfo=UTC)  # Wednesday 17:30 IST, after the close

DAILY = {("RELIANCE.NS", "1d"): "reliance_ns_1d_2026-10.json"}


def ist(*args: int) -> datetime:
    return datetime(*args, tzinfo=IST)


def quote_of(name: str) -> dict:
    return load_chart(name)["chart"]["result"][0]["indicators"]["quote"][0]


def no_sleep(seconds: float) -> None:
    raise AssertionError(f"unexpected sleep of {seconds}s")


@pytest.fixture
def make_provider(yfinance_module, yfinance_cache_dir, nse_calendar):
    """Providers with a fixed clock, a private fake-clock limiter and no real sleeping."""
    from yfinance.data import YfData

    # yfinance memoises responses of past windows for the whole process; start every test afresh.
    YfData.cache_get.cache_clear()

    def make(session: FakeYahooSession, **options):
        limiter_clock = FakeClock()
        settings = {
            "session": session,
            "cache_dir": yfinance_cache_dir,
            "calendar": nse_calendar,
            "clock": lambda: NOW,
            "sleep": no_sleep,
            "limiter": yfinance_module.SlidingWindowLimiter(clock=limiter_clock, sleep=limiter_clock.sleep),
        }
        settings.update(options)
        return yfinance_module.YFinanceProvider(**settings)

    return make


def test_daily_nse_candles_are_stamped_at_ist_midnight_in_utc(make_provider):
    session = FakeYahooSession(DAILY)
    candles = make_provider(session).fetch_candles(
        "RELIANCE.NS", Timeframe.D1, start=ist(2026, 10, 12), end=ist(2026, 10, 24)
    )

    quote = quote_of("reliance_ns_1d_2026-10.json")
    assert list(candles.columns) == list(CANDLE_COLUMNS)
    assert candles.dtypes.astype(str).tolist() == ["float64"] * 4 + ["int64"]
    assert candles.index.name == "timestamp"
    assert str(candles.index.tz) == "UTC"
    assert candles.index[0] == datetime(2026, 10, 11, 18, 30, tzinfo=UTC)  # 12 Oct 00:00 IST
    assert (candles.index.hour == 18).all() and (candles.index.minute == 30).all()
    assert candles.index.is_monotonic_increasing and candles.index.is_unique
    assert date(2026, 10, 20) not in set(candles.index.tz_convert(IST).date)  # Dussehra
    assert len(candles) == 9
    assert candles["close"].tolist() == quote["close"]
    assert candles["open"].tolist() == quote["open"]
    assert candles["volume"].tolist() == quote["volume"]

    # The window asked for, then the splits since its end (Yahoo's prices are adjusted for them too): through the
    # close of the next session, as NSE is closed at NOW (Yahoo adjusts before an ex-date's open); asked from a
    # week before the window's end, so that the answer has bars to carry them.
    window, later = session.chart_windows()
    assert window["interval"] == "1d"
    assert window["period1"] == int(ist(2026, 10, 12).timestamp())
    assert window["period2"] == int(ist(2026, 10, 24).timestamp())
    assert window["includePrePost"] is False
    assert (later["interval"], later["period1"], later["period2"]) == (
        "1d",
        int(ist(2026, 10, 17).timestamp()),
        int(ist(2026, 11, 12, 15, 30).timestamp()),
    )


def test_quote_compares_last_close_with_previous_close(make_provider):
    provider = make_provider(FakeYahooSession(DAILY), clock=lambda: ist(2026, 10, 24, 12, 0))
    quote = provider.fetch_quote("RELIANCE.NS")

    closes = quote_of("reliance_ns_1d_2026-10.json")["close"]
    assert quote.price == closes[-1]
    assert quote.previous_close == closes[-2]
    assert quote.change == pytest.approx(closes[-1] - closes[-2])
    assert quote.change_percent == pytest.approx((closes[-1] / closes[-2] - 1) * 100)
    assert quote.timestamp == datetime(2026, 10, 22, 18, 30, tzinfo=UTC)
    assert (quote.symbol, quote.currency, quote.source) == ("RELIANCE.NS", "INR", "yfinance")


def test_intraday_keeps_only_regular_session_bars(make_provider):
    name = "reliance_ns_5m_2026-11.json"
    session = FakeYahooSession({("RELIANCE.NS", "5m"): name})
    candles = make_provider(session).fetch_candles(
        "RELIANCE.NS", Timeframe.M5, start=ist(2026, 11, 6), end=ist(2026, 11, 10)
    )

    raw_days = {
        datetime.fromtimestamp(stamp, IST).date()
        for stamp in load_chart(name)["chart"]["result"][0]["timestamp"]
    }
    assert date(2026, 11, 8) in raw_days  # Yahoo sends the Sunday Muhurat session...
    local = candles.index.tz_convert(IST)
    assert set(local.date) == {date(2026, 11, 6), date(2026, 11, 9)}  # ...which is not a regular session
    assert len(candles) == 2 * 75
    assert candles.index[0] == datetime(2026, 11, 6, 3, 45, tzinfo=UTC)
    assert candles.index[-1] == datetime(2026, 11, 9, 9, 55, tzinfo=UTC)
    minutes = local.hour * 60 + local.minute
    assert minutes.min() == 9 * 60 + 15 and minutes.max() == 15 * 60 + 25
    assert (minutes % 5 == 0).all()
    assert session.chart_windows()[0]["interval"] == "5m"


def test_unknown_symbol_raises_symbol_not_found(make_provider):
    provider = make_provider(FakeYahooSession())
    # yfinance resolves the timezone through its info endpoint twice per process, then reports it missing:
    # both paths must end in SymbolNotFound.
    for _ in range(3):
        with pytest.raises(SymbolNotFound) as caught:
            provider.fetch_candles("NOSUCH.NS", Timeframe.D1, start=ist(2026, 11, 2))
        assert caught.value.symbol == "NOSUCH.NS"


def test_chart_error_for_a_known_symbol_raises_symbol_not_found(make_provider):
    session = FakeYahooSession(DAILY)
    session.window_outcomes = [404, 404]
    with pytest.raises(SymbolNotFound, match="symbol may be delisted"):
        make_provider(session).fetch_candles("RELIANCE.NS", Timeframe.D1, start=ist(2026, 10, 12))


def test_window_without_bars_is_an_empty_frame(make_provider):
    candles = make_provider(FakeYahooSession(DAILY)).fetch_candles(
        "RELIANCE.NS", Timeframe.D1, start=ist(2026, 10, 20), end=ist(2026, 10, 21)
    )
    assert candles.empty
    assert list(candles.columns) == list(CANDLE_COLUMNS)
    assert str(candles.index.tz) == "UTC"


def test_http_429_raises_rate_limited_after_backing_off(make_provider):
    session = FakeYahooSession(DAILY)
    session.window_outcomes = [429] * 10
    sleeps: list[float] = []
    provider = make_provider(session, sleep=sleeps.append, retries=2, backoff=1.0)

    with pytest.raises(RateLimited):
        provider.fetch_candles("RELIANCE.NS", Timeframe.D1, start=ist(2026, 10, 12))
    assert sleeps == [1.0, 2.0]


def test_server_error_is_retried_then_succeeds(make_provider):
    session = FakeYahooSession(DAILY)
    session.window_outcomes = [503, 503]  # yfinance itself retries once with its other cookie strategy
    sleeps: list[float] = []
    provider = make_provider(session, sleep=sleeps.append, backoff=0.5)

    candles = provider.fetch_candles(
        "RELIANCE.NS", Timeframe.D1, start=ist(2026, 10, 12), end=ist(2026, 10, 24)
    )
    assert len(candles) == 9
    assert sleeps == [0.5]


def test_connection_error_raises_provider_unavailable(make_provider):
    session = FakeYahooSession(DAILY)
    session.down = True
    sleeps: list[float] = []

    with pytest.raises(ProviderUnavailable) as caught:
        make_provider(session, sleep=sleeps.append).fetch_candles(
            "RELIANCE.NS", Timeframe.D1, start=ist(2026, 10, 12)
        )
    assert not isinstance(caught.value, RateLimited)
    assert isinstance(caught.value.__cause__, requests.exceptions.ConnectionError)
    assert sleeps == [1.0, 2.0]


def test_rows_with_missing_prices_are_dropped(make_provider):
    name = "tcs_ns_1d_2026-11_gaps.json"
    provider = make_provider(
        FakeYahooSession({("TCS.NS", "1d"): name}), clock=lambda: ist(2026, 11, 14, 12, 0)
    )
    candles = provider.fetch_candles("TCS.NS", Timeframe.D1, start=ist(2026, 11, 2), end=ist(2026, 11, 14))

    days = list(candles.index.tz_convert(IST).date)
    assert date(2026, 11, 6) not in days  # every field null
    assert date(2026, 11, 11) not in days  # open null
    assert len(candles) == 7
    assert not candles.isna().any().any()
    assert candles.loc[candles.index.tz_convert(IST).date == date(2026, 11, 12), "volume"].item() == 0


SPLIT_CHART = "reliance_ns_1d_2024-10_split.json"  # the 28 Oct 2024 1:1 bonus, as Yahoo's 2:1 split


def test_a_recorded_split_comes_back_as_traded_with_the_split_reported(make_provider):
    session = FakeYahooSession({("RELIANCE.NS", "1d"): SPLIT_CHART})
    history = make_provider(session).fetch_history(
        "RELIANCE.NS", Timeframe.D1, start=ist(2024, 10, 21), end=ist(2024, 11, 1)
    )

    candles = history.candles
    quote = load_chart(SPLIT_CHART)["chart"]["result"][0]["indicators"]["quote"][0]
    days = list(candles.index.tz_convert(IST).date)
    split_at = days.index(date(2024, 10, 28))
    assert history.actions == [Action(ex_date=date(2024, 10, 28), kind="split", ratio=2.0)]
    # Yahoo's prices are split-adjusted: the bars before the ex-date are multiplied back to what was traded.
    assert candles["close"].tolist() == pytest.approx(
        [2 * c for c in quote["close"][:split_at]] + quote["close"][split_at:]
    )
    assert (
        candles["volume"].tolist()
        == [round(v / 2) for v in quote["volume"][:split_at]] + quote["volume"][split_at:]
    )
    assert candles["close"].iloc[split_at] / candles["close"].iloc[split_at - 1] < 0.51  # what was traded


def test_a_window_before_a_split_is_unadjusted_with_the_splits_after_it(make_provider):
    session = FakeYahooSession({("RELIANCE.NS", "1d"): SPLIT_CHART})
    history = make_provider(session).fetch_history(
        "RELIANCE.NS", Timeframe.D1, start=ist(2024, 10, 21), end=ist(2024, 10, 26)
    )

    quote = load_chart(SPLIT_CHART)["chart"]["result"][0]["indicators"]["quote"][0]
    assert history.actions == []  # the split is after the window: the daily sync reports it
    assert history.candles["close"].tolist() == pytest.approx([2 * c for c in quote["close"][:5]])
    window, later = session.chart_windows()
    assert window["period2"] == int(ist(2024, 10, 26).timestamp())
    assert later["period1"] == int(ist(2024, 10, 19).timestamp())  # a week before, so that it carries bars


def test_dividends_are_reported_as_traded(make_provider):
    session = FakeYahooSession({("RELIANCE.NS", "1d"): SPLIT_CHART})
    chart = session.charts[("RELIANCE.NS", "1d")]["chart"]["result"][0]
    # An invented dividend of 5.00 a share (Yahoo's split-adjusted amount) going ex on 23 Oct 2024.
    stamp = int(ist(2024, 10, 23, 9, 15).timestamp())
    chart["events"]["dividends"] = {str(stamp): {"amount": 5.0, "date": stamp}}
    history = make_provider(session).fetch_history(
        "RELIANCE.NS", Timeframe.D1, start=ist(2024, 10, 21), end=ist(2024, 11, 1)
    )

    assert history.actions == [
        Action(ex_date=date(2024, 10, 23), kind="dividend", amount=10.0),
        Action(ex_date=date(2024, 10, 28), kind="split", ratio=2.0),
    ]


def test_quote_on_a_split_day_is_no_crash(make_provider):
    session = FakeYahooSession({("RELIANCE.NS", "1d"): SPLIT_CHART})
    quote = make_provider(session, clock=lambda: ist(2024, 10, 28, 16, 0)).fetch_quote("RELIANCE.NS")

    closes = load_chart(SPLIT_CHART)["chart"]["result"][0]["indicators"]["quote"][0]["close"]
    assert quote.price == pytest.approx(closes[5])
    assert quote.previous_close == pytest.approx(closes[4])  # the traded close, divided by the split
    assert abs(quote.change_percent) < 1


def test_auto_adjust_uses_adjusted_closes(make_provider):
    provider = make_provider(FakeYahooSession({("RELIANCE.NS", "1d"): SPLIT_CHART}), auto_adjust=True)
    history = provider.fetch_history(
        "RELIANCE.NS", Timeframe.D1, start=ist(2024, 10, 21), end=ist(2024, 11, 1)
    )

    adjclose = load_chart(SPLIT_CHART)["chart"]["result"][0]["indicators"]["adjclose"][0]["adjclose"]
    assert history.candles["close"].tolist() == pytest.approx(adjclose)
    assert history.actions == []  # already applied: reads must not apply them again


@pytest.mark.parametrize(
    ("timeframe", "days", "message"),
    [
        (Timeframe.M1, 31, "1m candles are available for the last 30 days only"),
        (Timeframe.M5, 61, "5m candles are available for the last 60 days only"),
        (Timeframe.H1, 731, "1H candles are available for the last 730 days only"),
    ],
)
def test_lookback_beyond_yahoo_limit_is_refused_before_any_request(make_provider, timeframe, days, message):
    session = FakeYahooSession(DAILY)
    with pytest.raises(LookbackExceeded, match=message):
        make_provider(session).fetch_candles("RELIANCE.NS", timeframe, start=NOW - timedelta(days=days))
    assert session.log == []


def test_one_minute_windows_are_split_into_week_long_requests_and_paced(make_provider, yfinance_module):
    session = FakeYahooSession({("RELIANCE.NS", "1m"): "reliance_ns_1m_2026-11.json"})
    clock = FakeClock()
    limiter = yfinance_module.SlidingWindowLimiter(clock=clock, sleep=clock.sleep)
    provider = make_provider(session, limiter=limiter, max_requests_per_minute=2)

    candles = provider.fetch_candles("RELIANCE.NS", Timeframe.M1, start=ist(2026, 10, 20))

    windows = [w for w in session.chart_windows() if w["interval"] == "1m"]
    spans = [timedelta(seconds=w["period2"] - w["period1"]) for w in windows]
    assert len(windows) == 4  # 20 Oct 00:00 IST to 11 Nov 17:30 IST
    assert all(span <= timedelta(days=7) for span in spans)
    assert all(a["period2"] == b["period1"] for a, b in pairwise(windows))
    assert clock.sleeps[0] == 60.0  # the third request waited for the first minute to pass
    # NSE is closed: then a daily request for the splits Yahoo may have applied before the next session opens.
    assert {(w["interval"], w["period2"]) for w in session.chart_windows()[4:]} == {
        ("1d", int(ist(2026, 11, 12, 15, 30).timestamp()))
    }
    assert len(candles) == 3 * 20
    assert set(candles.index.tz_convert(IST).date) == {
        date(2026, 10, 26),
        date(2026, 11, 2),
        date(2026, 11, 9),
    }


def test_naive_window_is_rejected(make_provider):
    with pytest.raises(ValueError, match="aware"):
        make_provider(FakeYahooSession(DAILY)).fetch_candles(
            "RELIANCE.NS", Timeframe.D1, start=datetime(2026, 10, 12)
        )


def test_providers_share_one_process_wide_limiter(yfinance_module, yfinance_cache_dir):
    first = yfinance_module.YFinanceProvider(cache_dir=yfinance_cache_dir)
    second = yfinance_module.YFinanceProvider(cache_dir=yfinance_cache_dir, max_requests_per_minute=10)
    assert first.limiter is second.limiter


class TestSlidingWindowLimiter:
    def test_paces_calls_to_the_limit_per_window(self, yfinance_module):
        clock = FakeClock()
        limiter = yfinance_module.SlidingWindowLimiter(window=60.0, clock=clock, sleep=clock.sleep)
        starts = []
        for _ in range(7):
            limiter.acquire(3)
            starts.append(clock.now)
        assert starts == [0, 0, 0, 60, 60, 60, 120]

    def test_waits_only_as_long_as_the_oldest_call_needs(self, yfinance_module):
        clock = FakeClock()
        limiter = yfinance_module.SlidingWindowLimiter(window=60.0, clock=clock, sleep=clock.sleep)
        limiter.acquire(2)
        clock.now = 45.0
        limiter.acquire(2)
        assert limiter.acquire(2) == pytest.approx(15.0)  # the first call leaves the window at 60s
        assert clock.now == pytest.approx(60.0)

    def test_threads_share_the_budget(self, yfinance_module):
        clock = FakeClock()
        limiter = yfinance_module.SlidingWindowLimiter(window=60.0, clock=clock, sleep=clock.sleep)
        waits: list[float] = []

        def call() -> None:
            waits.append(limiter.acquire(3))

        threads = [threading.Thread(target=call) for _ in range(6)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        # Three start at once; the fourth waits out the window; the last two then fit beside it.
        assert sorted(waits) == [0, 0, 0, 0, 0, 60]
        assert clock.sleeps == [60]

    def test_past_the_deadline_raises_rate_limited_without_waiting(self, yfinance_module):
        clock = FakeClock()
        limiter = yfinance_module.SlidingWindowLimiter(window=60.0, clock=clock, sleep=clock.sleep)
        limiter.acquire(1)
        clock.now = 10.0
        with pytest.raises(RateLimited) as raised:
            limiter.acquire(1, max_wait=2.0)
        assert raised.value.retry_after == 50
        assert clock.sleeps == []

    def test_waits_when_the_slot_frees_within_the_deadline(self, yfinance_module):
        clock = FakeClock()
        limiter = yfinance_module.SlidingWindowLimiter(window=60.0, clock=clock, sleep=clock.sleep)
        limiter.acquire(1)
        clock.now = 58.5
        assert limiter.acquire(1, max_wait=2.0) == pytest.approx(1.5)

    def test_a_caller_queued_behind_a_waiting_one_gives_up_at_the_deadline(self, yfinance_module):
        release = threading.Event()
        waiting = threading.Event()

        def blocking_sleep(seconds: float) -> None:  # the first caller waits out the window until released
            waiting.set()
            release.wait(5)

        clock = FakeClock()
        limiter = yfinance_module.SlidingWindowLimiter(window=60.0, clock=clock, sleep=blocking_sleep)
        limiter.acquire(1)
        first = threading.Thread(target=lambda: limiter.acquire(1, max_wait=None))
        first.start()
        assert waiting.wait(5)
        try:
            with pytest.raises(RateLimited):
                limiter.acquire(1, max_wait=0.05)
        finally:
            clock.now = 60.0
            release.set()
            first.join(5)

    def test_limit_must_allow_a_call(self, yfinance_module):
        with pytest.raises(ValueError):
            yfinance_module.SlidingWindowLimiter().acquire(0)


def test_quotes_of_many_symbols_come_from_one_download_and_leave_unknown_symbols_out(make_provider):
    charts = {**DAILY, ("TCS.NS", "1d"): "tcs_ns_1d_2026-11_gaps.json"}
    session = FakeYahooSession(charts)
    provider = make_provider(session, clock=lambda: ist(2026, 10, 24, 12, 0))

    quotes = provider.fetch_quotes(["RELIANCE.NS", "NOPE.NS"])

    assert set(quotes) == {"RELIANCE.NS"}
    assert quotes["RELIANCE.NS"] == provider.fetch_quote("RELIANCE.NS")
    assert all(window["interval"] == "1d" for window in session.chart_windows())
    assert provider.fetch_quotes([]) == {}


def test_batch_comes_from_one_multi_ticker_download_and_equals_single_fetches(
    make_provider, yfinance_module, monkeypatch
):
    charts = {**DAILY, ("TCS.NS", "1d"): "tcs_ns_1d_2026-11_gaps.json"}
    session = FakeYahooSession(charts)
    provider = make_provider(session)
    start, end = ist(2026, 10, 12), ist(2026, 11, 14)
    downloads = []
    real_download = yfinance_module.yf.download

    def download(**kwargs):
        downloads.append(kwargs)
        return real_download(**kwargs)

    monkeypatch.setattr(yfinance_module.yf, "download", download)

    batch = provider.fetch_history_batch(["RELIANCE.NS", "TCS.NS"], Timeframe.D1, start=start, end=end)

    (call,) = downloads
    assert call["tickers"] == ["RELIANCE.NS", "TCS.NS"] and call["group_by"] == "ticker"
    assert call["session"] is session
    windows = session.chart_windows()
    assert sorted(window["period1"] for window in windows) == [int(start.timestamp())] * 2  # one per ticker
    assert all(window["interval"] == "1d" for window in windows)
    assert batch.errors == {}
    assert set(batch.histories) == {"RELIANCE.NS", "TCS.NS"}
    # Each symbol's frame is its own: not padded with the other ticker's dates, gaps dropped as alone.
    assert len(batch.histories["RELIANCE.NS"].candles) == 9
    assert batch.histories["TCS.NS"].candles.index.min() >= ist(2026, 11, 2)  # no rows from RELIANCE's dates
    for symbol, history in batch.histories.items():
        candles = history.candles
        assert list(candles.columns) == list(CANDLE_COLUMNS) and str(candles.index.tz) == "UTC"
        alone = provider.fetch_history(symbol, Timeframe.D1, start=start, end=end)
        assert candles.equals(alone.candles), symbol
        assert history.actions == alone.actions, symbol


def test_batch_carries_a_recorded_split_as_a_single_fetch_does(make_provider):
    """The whole-market sync stores corporate actions too: a batch's history of a symbol with a split in its
    window is the single fetch's (as-traded candles, the split reported)."""
    session = FakeYahooSession(
        {("RELIANCE.NS", "1d"): SPLIT_CHART, ("TCS.NS", "1d"): "tcs_ns_1d_2026-11_gaps.json"}
    )
    provider = make_provider(session)
    window = {"start": ist(2024, 10, 21), "end": ist(2024, 11, 1)}

    batch = provider.fetch_history_batch(["RELIANCE.NS"], Timeframe.D1, **window)
    alone = provider.fetch_history("RELIANCE.NS", Timeframe.D1, **window)

    history = batch.histories["RELIANCE.NS"]
    assert history.actions == [Action(ex_date=date(2024, 10, 28), kind="split", ratio=2.0)] == alone.actions
    assert history.candles.equals(alone.candles)
    closes = history.candles["close"]
    split_at = list(closes.index.tz_convert(IST).date).index(date(2024, 10, 28))
    assert closes.iloc[split_at] / closes.iloc[split_at - 1] < 0.51  # as traded, not Yahoo's adjusted prices


def test_batch_asks_a_symbol_missing_from_the_download_again_alone(make_provider):
    session = FakeYahooSession(DAILY)
    provider = make_provider(session)

    batch = provider.fetch_history_batch(
        ["RELIANCE.NS", "NOPE.NS"], Timeframe.D1, start=ist(2026, 10, 12), end=ist(2026, 10, 24)
    )

    assert set(batch.histories) == {"RELIANCE.NS"} and len(batch.histories["RELIANCE.NS"].candles) == 9
    assert isinstance(batch.errors["NOPE.NS"], SymbolNotFound) and batch.errors["NOPE.NS"].symbol == "NOPE.NS"
    asked = [url.rsplit("/", 1)[1] for url, params in session.log if "/v8/finance/chart/" in url]
    assert asked.count("RELIANCE.NS") >= 1 and "NOPE.NS" in asked


def test_batch_window_without_bars_is_empty_for_every_symbol_not_an_error(make_provider):
    session = FakeYahooSession({**DAILY, ("TCS.NS", "1d"): "tcs_ns_1d_2026-11_gaps.json"})
    batch = make_provider(session).fetch_history_batch(
        ["RELIANCE.NS"], Timeframe.D1, start=ist(2026, 10, 20), end=ist(2026, 10, 21)
    )
    assert batch.errors == {} and batch.histories["RELIANCE.NS"].candles.empty


def test_batch_during_an_outage_reports_every_symbol_unavailable(make_provider):
    session = FakeYahooSession({**DAILY, ("TCS.NS", "1d"): "tcs_ns_1d_2026-11_gaps.json"})
    session.down = True
    provider = make_provider(session, retries=0)

    batch = provider.fetch_history_batch(["RELIANCE.NS", "TCS.NS"], Timeframe.D1, start=ist(2026, 10, 12))

    assert batch.histories == {}
    assert set(batch.errors) == {"RELIANCE.NS", "TCS.NS"}
    assert all(isinstance(error, ProviderUnavailable) for error in batch.errors.values())


def test_batch_takes_one_rate_limit_slot_per_ticker(make_provider, yfinance_module):
    session = FakeYahooSession({**DAILY, ("TCS.NS", "1d"): "tcs_ns_1d_2026-11_gaps.json"})
    clock = FakeClock()
    limiter = yfinance_module.SlidingWindowLimiter(clock=clock, sleep=clock.sleep)
    provider = make_provider(session, limiter=limiter, max_requests_per_minute=1)

    provider.fetch_history_batch(["RELIANCE.NS", "TCS.NS"], Timeframe.D1, start=ist(2026, 10, 12))

    assert sum(clock.sleeps) == pytest.approx(60)  # the second ticker waited for the first one's minute


ONE_MINUTE_TWO_TICKERS = {
    ("RELIANCE.NS", "1m"): "reliance_ns_1m_2026-11.json",
    ("TCS.NS", "1m"): "reliance_ns_1m_2026-11.json",
}


def test_batch_asks_a_symbol_again_alone_when_its_request_for_one_chunk_failed(make_provider):
    """A 1m batch goes out in week-long downloads; yfinance logs a ticker's failed request in one of them and
    leaves its columns empty. That week must not come back as a history without it (the sync would record the
    window fetched): the symbol is asked again alone."""
    session = FakeYahooSession(ONE_MINUTE_TWO_TICKERS)
    # RELIANCE's request for the second week fails, and so does yfinance's own retry of it.
    session.symbol_outcomes = {"RELIANCE.NS": [None, 500, 500]}
    provider = make_provider(session, retries=0)

    batch = provider.fetch_history_batch(["RELIANCE.NS", "TCS.NS"], Timeframe.M1, start=ist(2026, 10, 20))

    assert batch.errors == {}
    for symbol in ("RELIANCE.NS", "TCS.NS"):
        assert set(batch.histories[symbol].candles.index.tz_convert(IST).date) == {
            date(2026, 10, 26),
            date(2026, 11, 2),
            date(2026, 11, 9),
        }, symbol


def test_batch_reports_a_symbol_whose_chunk_fails_alone_too_as_unavailable(make_provider):
    session = FakeYahooSession(ONE_MINUTE_TWO_TICKERS)
    session.symbol_outcomes = {"RELIANCE.NS": [None, 500, 500, None, *[500] * 10]}
    provider = make_provider(session, retries=0)

    batch = provider.fetch_history_batch(["RELIANCE.NS", "TCS.NS"], Timeframe.M1, start=ist(2026, 10, 20))

    assert "RELIANCE.NS" not in batch.histories
    assert isinstance(batch.errors["RELIANCE.NS"], ProviderUnavailable)
    assert len(batch.histories["TCS.NS"].candles) == 60


def test_batch_window_empty_for_every_ticker_in_a_chunk_is_no_reason_to_ask_again(make_provider):
    session = FakeYahooSession(ONE_MINUTE_TWO_TICKERS)
    provider = make_provider(session)

    # The last week-long chunk (10 Nov to now) has no bars for anyone: a quiet window, not a failure.
    batch = provider.fetch_history_batch(["RELIANCE.NS", "TCS.NS"], Timeframe.M1, start=ist(2026, 10, 20))

    assert batch.errors == {} and {len(h.candles) for h in batch.histories.values()} == {60}
    # Four week-long downloads of two tickers, nothing alone; then each ticker's daily request for the splits
    # Yahoo may have applied before the next session (NSE is closed at NOW).
    windows = session.chart_windows()
    assert [w["interval"] for w in windows[: 2 * 4]] == ["1m"] * 2 * 4
    assert {w["interval"] for w in windows[2 * 4 :]} == {"1d"}


# 08:00 IST on 28 Oct 2024, the bonus's ex-date, before the open: Yahoo has no bar of the day yet, but it lists the
# split and has already divided every earlier bar by it.
EX_DATE_MORNING = ist(2024, 10, 28, 8, 0)


def yahoo_before_the_ex_date_opens(session: FakeYahooSession) -> FakeYahooSession:
    """The split chart as Yahoo serves it before 28 Oct's session: bars to 25 Oct (split-adjusted), the split kept."""
    result = session.charts[("RELIANCE.NS", "1d")]["chart"]["result"][0]
    keep = [i for i, stamp in enumerate(result["timestamp"]) if stamp < EX_DATE_MORNING.timestamp()]
    result["timestamp"] = [result["timestamp"][i] for i in keep]
    for series in (result["indicators"]["quote"][0], result["indicators"]["adjclose"][0]):
        for key in series:
            series[key] = [series[key][i] for i in keep]
    return session


def test_bars_before_an_ex_date_fetched_before_its_open_come_back_as_traded(make_provider):
    """Yahoo adjusts yesterday's bar for a split before the ex-date's session opens: those bars must still be
    stored as traded (the split applied back), never as Yahoo's halved prices beside the traded ones stored before
    them, and the split is reported on its ex-date."""
    session = yahoo_before_the_ex_date_opens(FakeYahooSession({("RELIANCE.NS", "1d"): SPLIT_CHART}))
    provider = make_provider(session, clock=lambda: EX_DATE_MORNING)
    history = provider.fetch_history("RELIANCE.NS", Timeframe.D1, start=ist(2024, 10, 21))

    adjusted = quote_of(SPLIT_CHART)["close"][:5]
    assert list(history.candles.index.tz_convert(IST).day) == [21, 22, 23, 24, 25]
    assert history.candles["close"].tolist() == pytest.approx([2 * c for c in adjusted])
    assert history.actions == [Action(ex_date=date(2024, 10, 28), kind="split", ratio=2.0)]
    assert len(session.chart_windows()) == 1  # the daily request itself reaches the next session


def test_a_batch_before_an_ex_date_opens_stores_the_bars_as_traded_as_a_single_fetch_does(make_provider):
    session = yahoo_before_the_ex_date_opens(
        FakeYahooSession(
            {("RELIANCE.NS", "1d"): SPLIT_CHART, ("TCS.NS", "1d"): "tcs_ns_1d_2026-11_gaps.json"}
        )
    )
    provider = make_provider(session, clock=lambda: EX_DATE_MORNING)

    batch = provider.fetch_history_batch(["RELIANCE.NS"], Timeframe.D1, start=ist(2024, 10, 21))
    alone = provider.fetch_history("RELIANCE.NS", Timeframe.D1, start=ist(2024, 10, 21))

    history = batch.histories["RELIANCE.NS"]
    assert history.candles["close"].tolist() == pytest.approx(
        [2 * c for c in quote_of(SPLIT_CHART)["close"][:5]]
    )
    assert history.candles.equals(alone.candles)
    assert history.actions == alone.actions == [Action(ex_date=date(2024, 10, 28), kind="split", ratio=2.0)]


def test_while_the_exchange_is_open_a_split_of_tomorrow_is_not_applied(make_provider):
    """During a session, tomorrow's split (were Yahoo to list it already) is not in today's prices."""
    session = FakeYahooSession({("RELIANCE.NS", "1d"): SPLIT_CHART})
    provider = make_provider(session, clock=lambda: ist(2024, 10, 25, 11, 0))
    history = provider.fetch_history("RELIANCE.NS", Timeframe.D1, start=ist(2024, 10, 21))

    assert history.candles["close"].tolist() == pytest.approx(quote_of(SPLIT_CHART)["close"][:5])
    assert history.actions == []


def test_intraday_bars_before_an_ex_date_fetched_before_its_open_come_back_as_traded(make_provider):
    """The same for 5-minute bars: yfinance drops an intraday answer's split dated after its last bar, so the
    daily chart is asked for the splits Yahoo has already applied."""
    session = yahoo_before_the_ex_date_opens(FakeYahooSession({("RELIANCE.NS", "1d"): SPLIT_CHART}))
    five = copy.deepcopy(load_chart(SPLIT_CHART))
    result = five["chart"]["result"][0]
    result["meta"]["dataGranularity"] = "5m"
    opens, closes = ist(2024, 10, 25, 9, 15), ist(2024, 10, 25, 15, 30)
    result["meta"]["tradingPeriods"] = [
        [
            {
                "timezone": "IST",
                "start": int(opens.timestamp()),
                "end": int(closes.timestamp()),
                "gmtoffset": 19800,
            }
        ]
    ]
    result["timestamp"] = [int(ist(2024, 10, 25, 9, 15 + 5 * i).timestamp()) for i in range(3)]
    adjusted = [652.4, 653.1, 652.9]  # Yahoo's halved prices of 25 Oct's first bars
    result["indicators"] = {
        "quote": [
            {
                "open": adjusted,
                "high": [p + 1 for p in adjusted],
                "low": [p - 1 for p in adjusted],
                "close": adjusted,
                "volume": [20000, 12000, 9000],
            }
        ]
    }
    session.charts[("RELIANCE.NS", "5m")] = five
    provider = make_provider(session, clock=lambda: EX_DATE_MORNING)

    history = provider.fetch_history("RELIANCE.NS", Timeframe.M5, start=ist(2024, 10, 25))

    assert history.candles["close"].tolist() == pytest.approx([2 * p for p in adjusted])
    assert history.candles["volume"].tolist() == [10000, 6000, 4500]


def test_quotes_of_many_symbols_before_an_ex_date_opens_agree_with_the_single_quote(make_provider):
    """Before the ex-date's open Yahoo's closes are already halved; the batch quote (watchlists, /multiple, the
    stream) must not show half of the last traded price while /quote shows the traded one."""
    session = yahoo_before_the_ex_date_opens(FakeYahooSession({("RELIANCE.NS", "1d"): SPLIT_CHART}))
    provider = make_provider(session, clock=lambda: EX_DATE_MORNING)

    batch = provider.fetch_quotes(["RELIANCE.NS"])["RELIANCE.NS"]
    alone = provider.fetch_quote("RELIANCE.NS")

    closes = quote_of(SPLIT_CHART)["close"]
    assert batch.price == pytest.approx(2 * closes[4])  # 25 Oct's close as traded
    assert batch.previous_close == pytest.approx(2 * closes[3])
    assert batch == alone


def test_quotes_of_many_symbols_on_a_split_day_compare_with_the_split_previous_close(make_provider):
    session = FakeYahooSession({("RELIANCE.NS", "1d"): SPLIT_CHART})
    provider = make_provider(session, clock=lambda: ist(2024, 10, 28, 16, 0))
    quote = provider.fetch_quotes(["RELIANCE.NS"])["RELIANCE.NS"]
    closes = quote_of(SPLIT_CHART)["close"]
    assert quote.price == pytest.approx(closes[5])
    assert quote.previous_close == pytest.approx(closes[4])  # the traded close, divided by the split
    assert quote == provider.fetch_quote("RELIANCE.NS")


# Yahoo's daily rows for days NSE did not trade: Sat 7 Nov (Friday repeated, no volume), Sun 8 Nov (the Muhurat
# session), Tue 10 Nov (Diwali-Balipratipada, a published holiday: Monday repeated, no volume).
OFF_SESSION = {("RELIANCE.NS", "1d"): "reliance_ns_1d_2026-11_off_session.json"}
MUHURAT = {
    date(2026, 11, 8): SessionOverride(open=time(18, 0), close=time(19, 0), description="Muhurat trading")
}


def test_daily_rows_on_days_without_a_session_are_left_out_and_reported(make_provider, nse_calendar):
    provider = make_provider(
        FakeYahooSession(OFF_SESSION),
        calendar=nse_calendar.with_sessions(MUHURAT),
        clock=lambda: ist(2026, 11, 13, 12, 0),
    )
    history = provider.fetch_history(
        "RELIANCE.NS", Timeframe.D1, start=ist(2026, 11, 5), end=ist(2026, 11, 13)
    )

    assert list(history.candles.index.tz_convert(IST).date) == [
        date(2026, 11, 5),
        date(2026, 11, 6),
        date(2026, 11, 8),  # Muhurat trading is a session of the calendar: its bar is kept
        date(2026, 11, 9),
        date(2026, 11, 11),
        date(2026, 11, 12),
    ]
    assert [stamp.astimezone(IST).date() for stamp in history.off_session] == [
        date(2026, 11, 7),
        date(2026, 11, 10),
    ]


def test_a_special_session_the_calendar_lacks_is_reported_not_kept(make_provider):
    """As for intraday bars: a day is a session when the calendar says so (staff load special sessions)."""
    provider = make_provider(FakeYahooSession(OFF_SESSION), clock=lambda: ist(2026, 11, 13, 12, 0))
    history = provider.fetch_history(
        "RELIANCE.NS", Timeframe.D1, start=ist(2026, 11, 5), end=ist(2026, 11, 13)
    )

    assert date(2026, 11, 8) not in set(history.candles.index.tz_convert(IST).date)
    assert [stamp.astimezone(IST).date() for stamp in history.off_session] == [
        date(2026, 11, 7),
        date(2026, 11, 8),
        date(2026, 11, 10),
    ]


@pytest.mark.parametrize("batch", [False, True], ids=["fetch_quote", "fetch_quotes"])
def test_a_quote_on_a_holiday_is_the_last_sessions_not_the_holidays_row(make_provider, nse_calendar, batch):
    """On Diwali-Balipratipada Yahoo's last daily row is the holiday, Monday's prices again: quoted as it is, the
    holiday would read as a session that closed unchanged."""
    provider = make_provider(
        FakeYahooSession(OFF_SESSION),
        calendar=nse_calendar.with_sessions(MUHURAT),
        clock=lambda: ist(2026, 11, 10, 12, 0),
    )
    quote = (
        provider.fetch_quotes(["RELIANCE.NS"])["RELIANCE.NS"]
        if batch
        else provider.fetch_quote("RELIANCE.NS")
    )

    closes = quote_of("reliance_ns_1d_2026-11_off_session.json")["close"]
    assert quote.timestamp == ist(2026, 11, 9)  # Monday's session
    assert quote.price == closes[4]
    assert quote.previous_close == closes[3]  # the Muhurat session's close
    assert quote.change == pytest.approx(closes[4] - closes[3])
