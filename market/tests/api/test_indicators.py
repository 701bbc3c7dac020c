"""GET /api/market/indicators/{symbol}: TA-Lib series aligned with the historical candles of the same query."""

from datetime import timedelta

import numpy as np
import pandas as pd
import pytest
import talib

from market.indicators import SUPPORTED, InvalidIndicator, compute_indicators, parse_indicators
from market.tests.api.test_market_api import OPEN_NOW, frozen, use_provider  # noqa: F401
from market.tests.factories import FrameProvider, make_candles
from market.timeframes import Timeframe

pytestmark = pytest.mark.django_db


@pytest.fixture
def daily(use_provider):  # noqa: F811
    candles = make_candles(120, start=OPEN_NOW - timedelta(days=200))
    use_provider(FrameProvider({("TCS.NS", Timeframe.D1): candles}))
    return candles


def test_series_align_with_the_historical_candles_and_warm_up_as_null(auth_client, daily, frozen):  # noqa: F811
    query = "timeframe=1D&limit=100"
    history = auth_client.get(f"/api/market/historical/TCS?{query}").json()
    body = auth_client.get(
        f"/api/market/indicators/TCS?{query}&names=sma:50,rsi:14,macd:12:26:9,bbands:20:2,vwap"
    ).json()
    assert body["indicators"] == ["sma:50", "rsi:14", "macd:12:26:9", "bbands:20:2", "vwap"]
    assert [(r["timestamp"], r["date"]) for r in body["rows"]] == [
        (c["timestamp"], c["date"]) for c in history["candles"]
    ]
    # Warmed up with the 20 stored bars before the window: null only where the history itself is too short.
    everything = auth_client.get("/api/market/historical/TCS?timeframe=1D&limit=120").json()["candles"]
    closes = np.array([c["close"] for c in everything])
    expected = talib.SMA(closes, timeperiod=50)[-100:]
    assert [r["sma:50"] for r in body["rows"][:29]] == [None] * 29
    assert [r["sma:50"] for r in body["rows"][29:]] == pytest.approx(list(expected[29:]), abs=1e-4)
    last = body["rows"][-1]
    assert set(last["macd:12:26:9"]) == {"macd", "signal", "hist"}
    assert last["bbands:20:2"]["lower"] < last["bbands:20:2"]["middle"] < last["bbands:20:2"]["upper"]
    assert body["rows"][0]["vwap"] is not None  # anchored at the first daily bar


def test_a_bars_values_do_not_depend_on_the_window_it_is_read_in(auth_client, daily, frozen):  # noqa: F811
    # RSI and MACD are recursive: computed over the window alone, the same bar's value changed with `limit`
    # (a dashboard's 30-bar view and its 100-bar view disagreed), and SMA-20 was null for the first 19 rows.
    names = "names=rsi:14,macd:12:26:9,sma:20,ema:10"
    short = auth_client.get(f"/api/market/indicators/TCS?timeframe=1D&limit=30&{names}").json()["rows"]
    long = auth_client.get(f"/api/market/indicators/TCS?timeframe=1D&limit=100&{names}").json()["rows"]
    assert [r["timestamp"] for r in short] == [r["timestamp"] for r in long[-30:]]
    for mine, theirs in zip(short, long[-30:], strict=True):
        assert mine["sma:20"] == theirs["sma:20"] is not None
        assert mine["rsi:14"] == pytest.approx(theirs["rsi:14"], abs=2e-3)
        assert mine["ema:10"] == pytest.approx(theirs["ema:10"], abs=2e-3)
        assert mine["macd:12:26:9"]["macd"] == pytest.approx(theirs["macd:12:26:9"]["macd"], abs=2e-3)


def test_a_query_with_start_and_limit_gives_the_same_bars_as_historical(auth_client, daily, frozen):  # noqa: F811
    """ "One row per candle of the same historical query": with a start, historical's default order keeps the
    first `limit` bars from it, so the indicators of that query must describe those bars, not the latest."""
    start = (OPEN_NOW - timedelta(days=150)).date().isoformat()
    query = f"timeframe=1D&start={start}&limit=10"
    history = auth_client.get(f"/api/market/historical/TCS?{query}").json()
    body = auth_client.get(f"/api/market/indicators/TCS?{query}&names=sma:5").json()
    assert [r["timestamp"] for r in body["rows"]] == [c["timestamp"] for c in history["candles"]]


@pytest.mark.parametrize("names", ["bogus:3", "sma:0", "sma:5:6", "macd:26:12:9", "rsi:x", ""])
def test_bad_names_are_400(auth_client, daily, frozen, names):  # noqa: F811
    response = auth_client.get(f"/api/market/indicators/TCS?names={names}")
    assert response.status_code == 400
    assert "names" in response.json()["error"]["details"]


@pytest.mark.parametrize(
    ("names", "said"),
    [
        ("foo", "Unknown indicator 'foo'"),
        ("bogus:3", "Unknown indicator 'bogus'"),
        ("sma,foo", "Unknown indicator 'foo'"),
        ("rsi:x", "parameters are numbers"),
        ("sma:abc", "parameters are numbers"),
        ("sma:50,,rsi", "comma-separated"),
    ],
)
def test_an_unknown_or_malformed_name_is_named_and_the_supported_ones_listed(
    auth_client,
    daily,
    frozen,  # noqa: F811
    names,
    said,
):
    response = auth_client.get(f"/api/market/indicators/TCS?names={names}")
    [message] = response.json()["error"]["details"]["names"]
    assert said in message
    assert SUPPORTED in message


@pytest.mark.parametrize(
    ("names", "said"),
    [
        ("sma:100000", "'sma:100000': parameter 1 must be a whole number from 2 to 500"),
        ("bbands:20:-2", "'bbands:20:-2': parameter 2 must be a number from 0.1 to 10"),
    ],
)
def test_a_parameter_out_of_range_is_named_with_its_range(auth_client, daily, frozen, names, said):  # noqa: F811
    response = auth_client.get(f"/api/market/indicators/TCS?names={names}")
    assert response.json()["error"]["details"]["names"] == [said]


def test_limit_is_bounded(auth_client, daily, frozen):  # noqa: F811
    assert auth_client.get("/api/market/indicators/TCS?names=sma:5&limit=5001").status_code == 400


def test_vwap_restarts_each_session_for_intraday_bars():
    frame = make_candles(6)
    frame["volume"] = 100
    series = compute_indicators(frame, parse_indicators("vwap"), session_days=["d1"] * 3 + ["d2"] * 3)
    typical = ((frame["high"] + frame["low"] + frame["close"]) / 3).to_numpy()
    assert series["vwap"][3] == pytest.approx(typical[3], abs=1e-4)  # the second session starts afresh
    assert series["vwap"][2] == pytest.approx(typical[:3].mean(), abs=1e-4)


def test_vwap_by_session_matches_a_grouped_cumulative_sum():
    """The NumPy running sums per session give what pandas' groupby().cumsum() gave (the implementation before
    the indicators endpoint stopped loading pandas), sessions of uneven lengths included."""
    frame = make_candles(40, seed=7)
    sessions = [f"d{i}" for i, size in enumerate([1, 7, 3, 12, 5, 2, 10]) for _ in range(size)]
    series = compute_indicators(frame, parse_indicators("vwap"), session_days=sessions)
    typical = (frame["high"] + frame["low"] + frame["close"]) / 3
    groups = pd.Series(sessions, index=frame.index)
    expected = (typical * frame["volume"]).groupby(groups).cumsum() / frame["volume"].groupby(groups).cumsum()
    assert series["vwap"] == [round(v, 4) for v in expected]
    anchored = compute_indicators(frame, parse_indicators("vwap"))["vwap"]
    assert anchored == [round(v, 4) for v in (typical * frame["volume"]).cumsum() / frame["volume"].cumsum()]


def test_vwap_skips_a_missing_value_as_pandas_did_and_refuses_misaligned_sessions():
    columns = {"open": [1.0] * 5, "high": [1.0, None, 2.0, 4.0, 1.0], "low": [1.0, 1.0, 2.0, 4.0, 1.0]}
    columns.update(close=[1.0, 1.0, 2.0, 4.0, 1.0], volume=[1, 1, 2, 3, None])
    # typical x volume 1, missing, 4, 12, missing; volume 1, 1, 2, 3, missing. The running sums skip what is missing
    # (the second bar's volume still counts): 1/1, missing, 5/4, 17/7, missing, as pandas' cumsum gave.
    assert compute_indicators(columns, parse_indicators("vwap"))["vwap"] == [1.0, None, 1.25, 2.4286, None]
    with pytest.raises(ValueError, match="3 session days for 5 candles"):
        compute_indicators(columns, parse_indicators("vwap"), session_days=["d1"] * 3)


def test_parse_normalises_and_defaults():
    assert [i.name for i in parse_indicators("SMA:50, ema, bbands:20:2.5")] == [
        "sma:50",
        "ema:20",
        "bbands:20:2.5",
    ]
    with pytest.raises(InvalidIndicator, match="supported"):
        parse_indicators("ichimoku")
