"""Rows a provider sends for days its exchange did not trade (a holiday, a weekend) are not stored as bars: the
sync leaves them out, counts them and says so. Special sessions the calendar holds are sessions; a year whose
holidays are not loaded yet loses no weekday."""

from datetime import UTC, date, datetime, time
from zoneinfo import ZoneInfo

import pytest
import time_machine

from market.models import MarketData, MarketSession
from market.providers.csv import CsvProvider
from market.services import candles_ensure, candles_sync, sessions_load_csv
from market.sources import calendar_for_symbol, sessions_invalidate
from market.tests.providers.fake_yahoo import FakeYahooSession
from market.timeframes import Timeframe

pytestmark = [pytest.mark.django_db, pytest.mark.filterwarnings("ignore::pandas.errors.Pandas4Warning")]
IST = ZoneInfo("Asia/Kolkata")


def stored_days(symbol: str) -> list[date]:
    stamps = MarketData.objects.filter(symbol=symbol, timeframe="1D").order_by("timestamp")
    return [stamp.astimezone(IST).date() for stamp in stamps.values_list("timestamp", flat=True)]


@pytest.fixture
def muhurat():
    MarketSession.objects.create(
        exchange="NSE",
        date=date(2026, 11, 8),
        kind=MarketSession.Kind.SPECIAL,
        open_time=time(18, 0),
        close_time=time(19, 0),
        description="Muhurat trading",
    )
    sessions_invalidate("NSE")
    yield
    sessions_invalidate("NSE")


def test_a_yahoo_sync_stores_no_bar_for_a_holiday_or_a_weekend(yfinance_module, yfinance_cache_dir, muhurat):
    from yfinance.data import YfData

    YfData.cache_get.cache_clear()
    now = datetime(2026, 11, 13, 6, 30, tzinfo=UTC)  # Friday 12:00 IST
    provider = yfinance_module.YFinanceProvider(
        session=FakeYahooSession({("RELIANCE.NS", "1d"): "reliance_ns_1d_2026-11_off_session.json"}),
        cache_dir=yfinance_cache_dir,
        calendar=calendar_for_symbol,  # as market.sources builds it: the holidays and sessions in the database
        clock=lambda: now,
        limiter=yfinance_module.SlidingWindowLimiter(sleep=lambda seconds: None),
    )
    with time_machine.travel(now, tick=False):
        first = candles_sync(symbol="RELIANCE.NS", timeframe=Timeframe.D1, days=9, provider=provider)
        again = candles_sync(symbol="RELIANCE.NS", timeframe=Timeframe.D1, days=9, provider=provider)

    # Sat 7 Nov (Friday repeated) and Tue 10 Nov (Diwali-Balipratipada, Monday repeated) are not bars; the
    # Sunday's Muhurat session is.
    assert stored_days("RELIANCE.NS") == [
        date(2026, 11, 5),
        date(2026, 11, 6),
        date(2026, 11, 8),
        date(2026, 11, 9),
        date(2026, 11, 11),
        date(2026, 11, 12),
    ]
    assert (first.inserted, first.off_session) == (6, 2)
    assert (again.inserted, again.unchanged, again.off_session) == (0, 6, 2)


def write_daily(tmp_path, symbol: str, days: list[str]) -> None:
    rows = "".join(f"{day},100,101,99,100.5,{1000 + n}\n" for n, day in enumerate(days))
    (tmp_path / f"{symbol}_1D.csv").write_text("Date,Open,High,Low,Close,Volume\n" + rows)


def test_a_year_whose_holidays_are_not_loaded_loses_no_weekday(tmp_path):
    """Only 2026's NSE holidays are loaded: 26 Jan 2026 (Republic Day) is no session, 26 Jan 2027 is taken for one
    until 2027's list is loaded (the calendar's rule), and a Saturday is never one."""
    write_daily(tmp_path, "TCS.NS", ["2026-01-23", "2026-01-26", "2026-01-27", "2027-01-26", "2027-01-30"])
    provider = CsvProvider(directory=tmp_path, calendar=calendar_for_symbol)
    with time_machine.travel(datetime(2027, 2, 1, 12, 0, tzinfo=UTC), tick=False):
        result = candles_sync(symbol="TCS.NS", timeframe=Timeframe.D1, days=400, provider=provider)

    assert stored_days("TCS.NS") == [date(2026, 1, 23), date(2026, 1, 27), date(2027, 1, 26)]
    assert (result.inserted, result.off_session) == (3, 2)


def test_a_sync_of_holiday_rows_only_says_why_nothing_was_stored(tmp_path):
    write_daily(tmp_path, "TCS.NS", ["2026-11-10"])
    provider = CsvProvider(directory=tmp_path, calendar=calendar_for_symbol)
    with time_machine.travel(datetime(2026, 11, 11, 12, 0, tzinfo=UTC), tick=False):
        result = candles_sync(symbol="TCS.NS", timeframe=Timeframe.D1, days=5, provider=provider)

    assert (result.inserted, result.off_session) == (0, 1)
    assert "sent only 1 1D bar(s) outside the sessions" in result.message
    assert not MarketData.objects.exists()


def test_a_special_session_loaded_after_its_rows_were_left_out_is_fetched_again(tmp_path):
    """Until staff load a special session, the provider's row of that day is left out as off-session while the
    window it came in counts as fetched: without re-opening that day, reads would never ask for it again and the
    Muhurat bar would stay missing for good."""
    write_daily(tmp_path, "TCS.NS", ["2026-11-05", "2026-11-06", "2026-11-08", "2026-11-09"])
    provider = CsvProvider(directory=tmp_path, calendar=calendar_for_symbol)
    start = datetime(2026, 11, 4, tzinfo=UTC)
    with time_machine.travel(datetime(2026, 11, 10, 12, 0, tzinfo=UTC), tick=False):
        candles_ensure(symbol="TCS.NS", timeframe=Timeframe.D1, start=start, end=None, provider=provider)
        assert stored_days("TCS.NS") == [date(2026, 11, 5), date(2026, 11, 6), date(2026, 11, 9)]

        sessions = tmp_path / "sessions.csv"
        sessions.write_text(
            "date,kind,open_time,close_time,description,source\n"
            "2026-11-08,special,18:00,19:00,Muhurat trading,NSE circular\n"
        )
        sessions_load_csv(path=sessions, exchange="NSE")
        candles_ensure(symbol="TCS.NS", timeframe=Timeframe.D1, start=start, end=None, provider=provider)

    assert stored_days("TCS.NS") == [
        date(2026, 11, 5),
        date(2026, 11, 6),
        date(2026, 11, 8),
        date(2026, 11, 9),
    ]


def test_a_special_session_added_in_the_admin_reopens_its_day(admin_client, tmp_path):
    write_daily(tmp_path, "TCS.NS", ["2026-11-06", "2026-11-08", "2026-11-09"])
    provider = CsvProvider(directory=tmp_path, calendar=calendar_for_symbol)
    start = datetime(2026, 11, 5, tzinfo=UTC)
    with time_machine.travel(datetime(2026, 11, 10, 12, 0, tzinfo=UTC), tick=False):
        candles_ensure(symbol="TCS.NS", timeframe=Timeframe.D1, start=start, end=None, provider=provider)
        response = admin_client.post(
            "/admin/market/marketsession/add/",
            {
                "exchange": "NSE",
                "date": "2026-11-08",
                "kind": "special",
                "open_time": "18:00",
                "close_time": "19:00",
                "description": "Muhurat trading",
                "source": "",
            },
        )
        assert response.status_code == 302
        candles_ensure(symbol="TCS.NS", timeframe=Timeframe.D1, start=start, end=None, provider=provider)

    assert date(2026, 11, 8) in stored_days("TCS.NS")
