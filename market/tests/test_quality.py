"""Quality checks on constructed NSE series with known gaps, jumps, a split and bad rows."""

from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import numpy as np
import pandas as pd

from market.calendar import ExchangeCalendar, bundled_nse_holidays
from market.quality import check_candles, last_expected_bar

IST = ZoneInfo("Asia/Kolkata")
NSE = ExchangeCalendar(bundled_nse_holidays())
NOW = datetime(2026, 11, 27, 20, 0, tzinfo=IST)  # Friday evening, after the close


def _daily(days, closes=None, volumes=None):
    closes = closes if closes is not None else 100 + np.sin(np.arange(len(days)))
    index = pd.DatetimeIndex([datetime.combine(d, time(), IST) for d in days], name="timestamp").tz_convert(
        UTC
    )
    frame = pd.DataFrame({"close": closes}, index=index)
    frame["open"] = frame["close"].shift().fillna(frame["close"].iloc[0])
    frame["high"] = frame[["open", "close"]].max(axis=1) + 1
    frame["low"] = frame[["open", "close"]].min(axis=1) - 1
    frame["volume"] = volumes if volumes is not None else 1000
    return frame[["open", "high", "low", "close", "volume"]]


def _kinds(findings):
    return [f.kind for f in findings]


DAYS = NSE.trading_days(date(2026, 9, 1), date(2026, 11, 27))


def test_a_clean_series_has_no_findings():
    assert check_candles(_daily(DAYS), calendar=NSE, intraday_bar=None, now=NOW) == []


def test_missing_sessions_are_one_finding_per_gap():
    days = [d for d in DAYS if d not in (date(2026, 10, 5), date(2026, 10, 6), date(2026, 11, 3))]
    findings = check_candles(_daily(days), calendar=NSE, intraday_bar=None, now=NOW)
    missing = [f for f in findings if f.kind == "missing"]
    assert [
        (f.start.astimezone(IST).date(), f.end.astimezone(IST).date(), f.details["bars"]) for f in missing
    ] == [
        (date(2026, 10, 5), date(2026, 10, 6), 2),
        (date(2026, 11, 3), date(2026, 11, 3), 1),
    ]


def test_holidays_are_not_missing_and_bars_on_them_are_outside_the_session():
    assert date(2026, 11, 24) not in DAYS  # Prakash Gurpurb: NSE closed, so no session is missing that day
    with_holiday = _daily(sorted([*DAYS, date(2026, 11, 24)]))
    outside = [
        f
        for f in check_candles(with_holiday, calendar=NSE, intraday_bar=None, now=NOW)
        if f.kind == "outside_session"
    ]
    assert [f.start.astimezone(IST).date() for f in outside] == [date(2026, 11, 24)]


def test_a_stale_last_bar():
    findings = check_candles(_daily(DAYS[:-3]), calendar=NSE, intraday_bar=None, now=NOW)
    assert "stale" in _kinds(findings)
    # Before Friday's close plus grace, Thursday's bar is the newest one due.
    assert last_expected_bar(NSE, None, datetime(2026, 11, 27, 15, 0, tzinfo=IST)) == datetime(
        2026, 11, 26, tzinfo=IST
    ).astimezone(UTC)


def test_a_jump_is_flagged_unless_a_corporate_action_explains_it():
    closes = 100 + np.sin(np.arange(len(DAYS)))
    split_at = 40
    closes[split_at:] = closes[split_at:] / 2  # a 1:2 split on DAYS[40]
    series = _daily(DAYS, closes=closes)
    jumps = [f for f in check_candles(series, calendar=NSE, intraday_bar=None, now=NOW) if f.kind == "jump"]
    assert [f.start.astimezone(IST).date() for f in jumps] == [DAYS[split_at]]
    assert jumps[0].details["atr_multiple"] > 8
    explained = check_candles(series, calendar=NSE, intraday_bar=None, now=NOW, action_days={DAYS[split_at]})
    assert "jump" not in _kinds(explained)


def test_zero_volume_runs_but_not_for_indices():
    volumes = np.full(len(DAYS), 1000)
    volumes[10:14] = 0
    volumes[20] = 0  # a single quiet bar is not a run
    series = _daily(DAYS, volumes=volumes)
    runs = [
        f for f in check_candles(series, calendar=NSE, intraday_bar=None, now=NOW) if f.kind == "zero_volume"
    ]
    assert [f.details["bars"] for f in runs] == [4]
    assert check_candles(series, calendar=NSE, intraday_bar=None, now=NOW, expect_volume=False) == []


def test_duplicates_and_out_of_order_rows():
    series = _daily(DAYS)
    shuffled = pd.concat([series.iloc[:5], series.iloc[[3]], series.iloc[5:]])
    findings = check_candles(shuffled, calendar=NSE, intraday_bar=None, now=NOW)
    assert {"duplicate", "non_monotonic"} <= set(_kinds(findings))
    assert "missing" not in _kinds(findings)


def test_intraday_missing_bars_and_bars_outside_hours():
    day = date(2026, 11, 27)
    bars = NSE.session_bars(day, timedelta(minutes=15))
    kept = [ts for i, ts in enumerate(bars) if i not in (4, 5)] + [datetime(2026, 11, 27, 16, 0, tzinfo=IST)]
    index = pd.DatetimeIndex([ts.astimezone(UTC) for ts in sorted(kept)], name="timestamp")
    frame = pd.DataFrame({"open": 10.0, "high": 11.0, "low": 9.0, "close": 10.0, "volume": 5}, index=index)
    findings = check_candles(frame, calendar=NSE, intraday_bar=timedelta(minutes=15), now=NOW)
    missing = [f for f in findings if f.kind == "missing"]
    assert len(missing) == 1 and missing[0].details["bars"] == 2
    assert missing[0].start.astimezone(IST).strftime("%H:%M") == "10:15"
    assert [f.start.astimezone(IST).strftime("%H:%M") for f in findings if f.kind == "outside_session"] == [
        "16:00"
    ]
