from datetime import UTC, date, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pandas as pd
import pytest
import time_machine

from market.adjust import Action
from market.providers.base import CANDLE_COLUMNS
from market.providers.csv import CsvProvider
from market.providers.errors import ProviderError, SymbolNotFound, UnreadableData
from market.symbols import InvalidSymbol
from market.timeframes import Timeframe

IST = ZoneInfo("Asia/Kolkata")
FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "csv"


def ist(*args: int) -> datetime:
    return datetime(*args, tzinfo=IST)


@pytest.fixture
def provider() -> CsvProvider:
    return CsvProvider(directory=FIXTURES)


def write(directory: Path, name: str, text: str) -> None:
    (directory / name).write_text(text, encoding="utf-8")


def test_reads_a_yfinance_daily_export(provider):
    candles = provider.fetch_candles("RELIANCE.NS", Timeframe.D1)
    raw = pd.read_csv(FIXTURES / "RELIANCE.NS_1D.csv")

    assert list(candles.columns) == list(CANDLE_COLUMNS)  # Adj Close, Dividends, Stock Splits dropped
    assert candles.dtypes.astype(str).tolist() == ["float64"] * 4 + ["int64"]
    assert candles.index.name == "timestamp" and str(candles.index.tz) == "UTC"
    assert candles.index[0] == datetime(2026, 10, 11, 18, 30, tzinfo=UTC)  # 2026-10-12 00:00:00+05:30
    assert len(candles) == len(raw) == 9
    assert candles["open"].tolist() == raw["Open"].tolist()
    assert candles["close"].tolist() == raw["Close"].tolist()
    assert candles["volume"].tolist() == raw["Volume"].tolist()


def test_reads_an_intraday_export_with_a_datetime_column(provider):
    candles = provider.fetch_candles("RELIANCE.NS", Timeframe.M5)
    assert len(candles) == 12
    assert candles.index[0] == datetime(2026, 11, 9, 3, 45, tzinfo=UTC)  # 09:15 IST
    assert candles.index[-1] == datetime(2026, 11, 9, 4, 40, tzinfo=UTC)


def test_reads_an_index_with_zero_volume(provider):
    candles = provider.fetch_candles("^NSEI", Timeframe.D1)
    assert len(candles) == 5
    assert (candles["volume"] == 0).all()
    assert candles["volume"].dtype == "int64"


def test_filters_to_the_half_open_window(provider):
    candles = provider.fetch_candles(
        "RELIANCE.NS", Timeframe.D1, start=ist(2026, 10, 13), end=ist(2026, 10, 16)
    )
    assert list(candles.index.tz_convert(IST).day) == [13, 14, 15]


def test_missing_symbol_is_not_found(provider):
    with pytest.raises(SymbolNotFound) as caught:
        provider.fetch_candles("INFY.NS", Timeframe.D1)
    assert caught.value.symbol == "INFY.NS"


def test_known_symbol_without_this_timeframe_is_empty(provider):
    candles = provider.fetch_candles("RELIANCE.NS", Timeframe.M15)
    assert candles.empty
    assert list(candles.columns) == list(CANDLE_COLUMNS)


@pytest.mark.parametrize("symbol", ["../RELIANCE.NS", "..", "sub/RELIANCE.NS", "..\\x", "A\x00", ""])
def test_path_traversal_is_refused(provider, symbol):
    with pytest.raises(InvalidSymbol):
        provider.fetch_candles(symbol, Timeframe.D1)


def test_symlink_leaving_the_directory_is_refused(tmp_path):
    outside = tmp_path / "outside.csv"
    outside.write_text("Date,Open,High,Low,Close,Volume\n", encoding="utf-8")
    directory = tmp_path / "data"
    directory.mkdir()
    (directory / "EVIL.NS_1D.csv").symlink_to(outside)
    with pytest.raises(InvalidSymbol):
        CsvProvider(directory=directory).fetch_candles("EVIL.NS", Timeframe.D1)


def test_timestamps_without_offset_are_exchange_local(tmp_path):
    write(tmp_path, "TCS.NS_1D.csv", "Date,Open,High,Low,Close,Volume\n2026-11-02,3070,3090,3050,3080,1000\n")
    candles = CsvProvider(directory=tmp_path).fetch_candles("TCS.NS", Timeframe.D1)
    assert candles.index[0] == datetime(2026, 11, 1, 18, 30, tzinfo=UTC)


def test_missing_prices_are_dropped_and_a_missing_volume_is_zero(tmp_path):
    write(
        tmp_path,
        "TCS.NS_1D.csv",
        "Date,Open,High,Low,Close,Volume\n"
        "2026-11-03 00:00:00+05:30,3071,3091,3051,3081,1100\n"
        "2026-11-02 00:00:00+05:30,3000,3010,2990,3005,900\n"
        "2026-11-04 00:00:00+05:30,,3091,3051,3081,1100\n"
        "2026-11-05 00:00:00+05:30,3071,3091,3051,3081,\n",
    )
    candles = CsvProvider(directory=tmp_path).fetch_candles("TCS.NS", Timeframe.D1)
    assert list(candles.index.tz_convert(IST).day) == [2, 3, 5]
    assert candles["open"].tolist() == [3000, 3071, 3071]
    assert candles["volume"].tolist() == [900, 1100, 0]


CSV_HEADER = "Date,Open,High,Low,Close,Volume\n"


@pytest.mark.parametrize(
    ("rows", "line", "message"),
    [
        # Two versions of one bar: keeping either would store a price nobody can vouch for.
        (
            "2026-11-03 00:00:00+05:30,3070,3090,3050,3080,1000\n"
            "2026-11-02 00:00:00+05:30,3000,3010,2990,3005,900\n"
            "2026-11-03 00:00:00+05:30,3071,3091,3051,3081,1100\n",
            4,
            "listed twice \\(also on line 2\\)",
        ),
        ("2026-11-02,3000,3010,2990,3005,900\n2026-11-03,-3000,3010,-3020,3005,900\n", 3, "open -3000"),
        (
            "2026-11-02,3000,3010,2990,3005,900\n2026-11-03,3000,2990,3010,3005,900\n",
            3,
            "high 2990, low 3010",
        ),
        ("2026-11-02,3000,3010,2990,3005,900\n2026-11-03,3000,3010,2990,3020,900\n", 3, "close 3020"),
        ("2026-11-02,3000,3010,2990,3005,-5\n", 2, "volume -5"),
        # NSE daily bars written in UTC: 2 Nov at 05:30 IST would be filed as a bar opening mid-morning.
        ("2026-11-02 00:00:00+00:00,3000,3010,2990,3005,900\n", 2, "another time zone"),
        ("2026-11-02,3000,3010,2990,3005,900\n2026-02-30,3000,3010,2990,3005,900\n", 3, "not a timestamp"),
    ],
)
def test_impossible_rows_are_refused_naming_their_line(tmp_path, rows, line, message):
    write(tmp_path, "TCS.NS_1D.csv", CSV_HEADER + rows)
    with pytest.raises(UnreadableData, match=message) as caught:
        CsvProvider(directory=tmp_path).fetch_candles("TCS.NS", Timeframe.D1)
    assert (caught.value.file, caught.value.line) == ("TCS.NS_1D.csv", line)


def test_daily_bars_of_a_new_york_file_open_at_new_yorks_midnight_across_dst(tmp_path):
    # 6 Mar 2026 is EST (-05:00), 9 Mar EDT (-04:00): both midnights are the exchange's, so both are read.
    write(
        tmp_path,
        "AAPL_1D.csv",
        CSV_HEADER
        + "2026-03-06 00:00:00-05:00,250,252,248,251,100\n2026-03-09 00:00:00-04:00,251,253,249,252,100\n",
    )
    provider = CsvProvider(directory=tmp_path, tz=lambda symbol: "America/New_York")
    candles = provider.fetch_candles("AAPL", Timeframe.D1)
    assert list(candles.index) == [datetime(2026, 3, 6, 5, tzinfo=UTC), datetime(2026, 3, 9, 4, tzinfo=UTC)]
    # The same file stamped with London's midnight is another exchange's day boundary.
    write(tmp_path, "AAPL_1D.csv", CSV_HEADER + "2026-03-06 00:00:00+00:00,250,252,248,251,100\n")
    with pytest.raises(UnreadableData, match="America/New_York"):
        provider.fetch_candles("AAPL", Timeframe.D1)


def test_intraday_bars_keep_their_minutes(provider):
    candles = provider.fetch_candles("RELIANCE.NS", Timeframe.M5)
    assert candles.index[0] == ist(2026, 11, 9, 9, 15)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("When,Open,High,Low,Close,Volume\n2026-11-02,1,1,1,1,1\n", "first column"),
        ("Date,Open,High,Low,Volume\n2026-11-02 00:00:00+05:30,1,1,1,1\n", "close"),
        (
            "Date,Open,High,Low,Close,Volume\n2026-11-02 00:00:00+05:30,1,1,1,1,1\n2026-11-03,1,1,1,1,1\n",
            "mix",
        ),
        ("Date,Open,High,Low,Close,Volume\nyesterday,1,1,1,1,1\n", "TCS.NS_1D.csv"),
    ],
)
def test_malformed_files_raise_provider_error_naming_the_file(tmp_path, text, message):
    write(tmp_path, "TCS.NS_1D.csv", text)
    with pytest.raises(ProviderError, match=message):
        CsvProvider(directory=tmp_path).fetch_candles("TCS.NS", Timeframe.D1)


@time_machine.travel(datetime(2026, 11, 9, 12, 0, tzinfo=UTC), tick=False)
def test_quote_from_the_file(provider):
    quote = provider.fetch_quote("^NSEI")
    assert quote.price == pytest.approx(25938.75)
    assert quote.previous_close == pytest.approx(25775.94921875)
    assert quote.change_percent == pytest.approx((25938.75 / 25775.94921875 - 1) * 100)
    assert quote.volume == 0
    assert (quote.source, quote.currency) == ("csv", "INR")


ACTIONS = Path(__file__).resolve().parents[1] / "fixtures" / "csv_actions"
SPLIT = Action(ex_date=date(2026, 6, 4), kind="split", ratio=2.0)
DIVIDEND = Action(ex_date=date(2026, 6, 9), kind="dividend", amount=5.0)


def test_dividends_and_stock_splits_columns_are_the_actions_of_their_day():
    history = CsvProvider(directory=ACTIONS).fetch_history("ACME.NS", Timeframe.D1)

    assert history.actions == [SPLIT, DIVIDEND]
    assert history.candles["close"].iloc[:4].tolist() == [1000.0, 1004.0, 1010.0, 506.0]  # stored as traded
    assert CsvProvider(directory=ACTIONS).fetch_candles("ACME.NS", Timeframe.D1).equals(history.candles)


def test_only_the_actions_of_the_window_are_reported():
    provider = CsvProvider(directory=ACTIONS)
    assert provider.fetch_history("ACME.NS", Timeframe.D1, start=ist(2026, 6, 5)).actions == [DIVIDEND]
    assert provider.fetch_history("ACME.NS", Timeframe.D1, end=ist(2026, 6, 9)).actions == [SPLIT]


def test_files_without_the_columns_have_no_actions(provider):
    assert provider.fetch_history("RELIANCE.NS", Timeframe.D1).actions == []


def test_a_split_adjusted_file_is_read_back_as_traded(tmp_path):
    raw = pd.read_csv(ACTIONS / "ACME.NS_1D.csv")
    before = raw.index < 3
    raw.loc[before, ["Open", "High", "Low", "Close"]] /= 2  # what yfinance's export of the same days holds
    raw.loc[before, "Volume"] *= 2
    raw.to_csv(tmp_path / "ACME.NS_1D.csv", index=False)

    history = CsvProvider(directory=tmp_path, split_adjusted=True).fetch_history("ACME.NS", Timeframe.D1)
    expected = CsvProvider(directory=ACTIONS).fetch_history("ACME.NS", Timeframe.D1)
    pd.testing.assert_frame_equal(history.candles, expected.candles)
    assert history.actions == expected.actions


def test_a_bad_dividend_names_its_line(tmp_path):
    text = (ACTIONS / "ACME.NS_1D.csv").read_text().replace(",5.0,0.0", ",five,0.0")
    write(tmp_path, "ACME.NS_1D.csv", text)
    with pytest.raises(ProviderError, match="line 8"):
        CsvProvider(directory=tmp_path).fetch_history("ACME.NS", Timeframe.D1)


@time_machine.travel(datetime(2026, 3, 10, 22, 0, tzinfo=UTC), tick=False)
def test_a_new_york_quote_is_in_dollars(tmp_path):
    write(
        tmp_path,
        "AAPL_1D.csv",
        CSV_HEADER + "2026-03-06,250,252,248,251,100\n2026-03-09,251,253,249,252,100\n",
    )
    quote = CsvProvider(directory=tmp_path, tz=lambda symbol: "America/New_York").fetch_quote("AAPL")
    assert (quote.price, quote.currency) == (252, "USD")


def test_intraday_bars_outside_the_exchanges_sessions_are_refused(tmp_path, nse_calendar):
    """An NSE 5-minute file written in UTC without offsets: 03:45 is read as 03:45 IST, hours before the open."""
    write(
        tmp_path,
        "TCS.NS_5m.csv",
        "Datetime,Open,High,Low,Close,Volume\n"
        "2026-11-09 09:15:00,3070,3090,3050,3080,1000\n"
        "2026-11-09 03:50:00,3080,3095,3075,3090,900\n",
    )
    with pytest.raises(UnreadableData, match="outside the NSE sessions") as caught:
        CsvProvider(directory=tmp_path, calendar=nse_calendar).fetch_candles("TCS.NS", Timeframe.M5)
    assert caught.value.line == 3
    # The session bars of a file in the exchange's own clock are read.
    write(
        tmp_path,
        "TCS.NS_5m.csv",
        "Datetime,Open,High,Low,Close,Volume\n2026-11-09 09:15:00,3070,3090,3050,3080,1000\n",
    )
    candles = CsvProvider(directory=tmp_path, calendar=nse_calendar).fetch_candles("TCS.NS", Timeframe.M5)
    assert list(candles.index) == [ist(2026, 11, 9, 9, 15)]


def test_the_configured_csv_provider_checks_each_symbols_sessions(settings, tmp_path, db):
    from market.sources import _build

    settings.MARKET_DATA_CSV_DIR = tmp_path
    write(
        tmp_path,
        "AAPL_5m.csv",
        "Datetime,Open,High,Low,Close,Volume\n2026-11-09 09:00:00,250,251,249,250,10\n",
    )
    with pytest.raises(UnreadableData, match="outside the NYSE sessions"):
        _build("csv").fetch_candles("AAPL", Timeframe.M5)


def test_a_daily_row_on_a_holiday_is_left_out_reported_and_never_quoted(tmp_path, nse_calendar):
    """An export ending on Diwali-Balipratipada (Tue 10 Nov 2026) with Monday's prices repeated: no bar, no quote."""
    write(
        tmp_path,
        "TCS.NS_1D.csv",
        CSV_HEADER + "2026-11-06,3070,3090,3050,3080,1000\n2026-11-09,3080,3100,3070,3095,1200\n"
        "2026-11-10,3095,3095,3095,3095,0\n",
    )
    provider = CsvProvider(directory=tmp_path, calendar=nse_calendar)
    history = provider.fetch_history("TCS.NS", Timeframe.D1)
    assert list(history.candles.index) == [ist(2026, 11, 6), ist(2026, 11, 9)]
    assert list(history.off_session) == [ist(2026, 11, 10)]

    with time_machine.travel(ist(2026, 11, 10, 12, 0), tick=False):
        quote = provider.fetch_quote("TCS.NS")
    assert (quote.timestamp, quote.price, quote.previous_close) == (ist(2026, 11, 9), 3095, 3080)
