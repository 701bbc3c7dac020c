import dataclasses
import math

import numpy as np
import pandas as pd
import pytest

from signals.backtest import infer_periods_per_year, run_backtest
from signals.config import SignalConfig
from signals.rules import SignalType, evaluate, evaluate_series, required_bars
from signals.tests.engine.factories import append_bar, frame, from_closes, random_walk, zigzag

# Only RSI votes: a sideways zigzag is neutral, a run of falls is oversold (BUY), a run of rises overbought (SELL).
RSI_ONLY = SignalConfig(macd_weight=0, bollinger_weight=0, trend_weight=0, volume_weight=0)
FALL = np.concatenate([zigzag(40), 99 - np.arange(1, 15)])
RISE = np.concatenate([zigzag(40), 101 + np.arange(1, 15)])
COST = 10 / 10_000  # 10 bps per side


def first_signal(closes: np.ndarray, config: SignalConfig = RSI_ONLY) -> pd.DataFrame:
    """The candles up to and including the first bar with a BUY or SELL."""
    candles = from_closes(closes)
    signals = evaluate_series(candles, config)["signal"]
    t = int(np.flatnonzero(signals.isin(["BUY", "SELL"]).to_numpy())[0])
    return candles.iloc[: t + 1]


def test_one_winning_long_enters_at_the_next_open_and_exits_at_the_target():
    prefix = first_signal(FALL)
    signal = evaluate(prefix, config=RSI_ONLY)
    assert signal.signal_type == SignalType.BUY
    entry = signal.entry_price + 0.1
    candles = append_bar(
        prefix, open=entry, high=signal.price_target + 1, low=entry - 0.1, close=signal.price_target + 0.5
    )
    # Afterwards the market goes sideways again: no further signal may fire.
    for close in zigzag(6, level=signal.price_target):
        candles = append_bar(candles, open=close, high=close + 0.2, low=close - 0.2, close=close)
    assert set(evaluate_series(candles, RSI_ONLY)["signal"].iloc[len(prefix) :]) == {"HOLD"}

    result = run_backtest(candles, config=RSI_ONLY, commission_bps=10)

    expected_return = (1 - COST) ** 2 * signal.price_target / entry - 1
    assert result.trades == [
        {
            "side": "LONG",
            "entry_time": candles.index[len(prefix)],
            "entry_price": entry,
            "exit_time": candles.index[len(prefix)],
            "exit_price": signal.price_target,
            "exit_reason": "target",
            "return": pytest.approx(expected_return),
            "stop_loss": signal.stop_loss,
            "price_target": signal.price_target,
        }
    ]
    assert expected_return > 0
    assert result.win_rate == 1.0
    assert result.total_return == pytest.approx(expected_return)
    # The replay starts at the first bar a trade can open on (the bars before only warm the indicators up).
    assert result.exposure == pytest.approx(1 / (len(candles) - required_bars(RSI_ONLY)))


def test_stop_is_assumed_first_when_a_bar_touches_both_levels():
    prefix = first_signal(FALL)
    signal = evaluate(prefix, config=RSI_ONLY)
    entry = signal.entry_price
    candles = append_bar(
        prefix, open=entry, high=signal.price_target + 1, low=signal.stop_loss - 1, close=entry
    )
    [trade] = run_backtest(candles, config=RSI_ONLY, commission_bps=10).trades
    assert (trade["exit_reason"], trade["exit_price"]) == ("stop", signal.stop_loss)
    assert trade["return"] == pytest.approx((1 - COST) ** 2 * signal.stop_loss / entry - 1)


def test_a_gap_through_the_stop_fills_at_the_open():
    prefix = first_signal(FALL)
    stop = evaluate(prefix, config=RSI_ONLY).stop_loss
    candles = append_bar(prefix, open=stop - 5, high=stop - 4, low=stop - 6, close=stop - 5)
    [trade] = run_backtest(candles, config=RSI_ONLY).trades
    assert trade["exit_reason"] == "stop"
    assert trade["entry_price"] == trade["exit_price"] == stop - 5  # filled at the open, stopped at the open
    assert trade["return"] == 0.0


def test_a_gap_beyond_the_target_fills_at_the_open_even_if_the_bar_later_touches_the_stop():
    # The bar opens above a long's target: the target was reached at the open, before any later fall to the
    # stop, so there is no tie to resolve conservatively.
    prefix = first_signal(FALL)
    signal = evaluate(prefix, config=RSI_ONLY)
    entry, target, stop = signal.entry_price, signal.price_target, signal.stop_loss
    candles = append_bar(prefix, open=entry, high=entry + 0.1, low=entry - 0.1, close=entry)
    candles = append_bar(candles, open=target + 2, high=target + 3, low=stop - 1, close=entry)
    trade = run_backtest(candles, config=RSI_ONLY).trades[0]
    assert (trade["exit_reason"], trade["exit_price"]) == ("target", target + 2)


def test_a_short_gapping_below_its_target_fills_at_the_open_even_if_the_bar_later_touches_the_stop():
    prefix = first_signal(RISE)
    signal = evaluate(prefix, config=RSI_ONLY)
    entry, target, stop = signal.entry_price, signal.price_target, signal.stop_loss
    candles = append_bar(prefix, open=entry, high=entry + 0.1, low=entry - 0.1, close=entry)
    candles = append_bar(candles, open=target - 2, high=stop + 1, low=target - 3, close=entry)
    trade = run_backtest(candles, config=RSI_ONLY).trades[0]
    assert (trade["side"], trade["exit_reason"], trade["exit_price"]) == ("SHORT", "target", target - 2)


def test_one_winning_short_exits_at_its_target():
    prefix = first_signal(RISE)
    signal = evaluate(prefix, config=RSI_ONLY)
    assert signal.signal_type == SignalType.SELL
    entry = signal.entry_price
    candles = append_bar(prefix, open=entry, high=entry + 0.1, low=signal.price_target - 1, close=entry - 1)
    [trade] = run_backtest(candles, config=RSI_ONLY, commission_bps=10).trades
    assert (trade["side"], trade["exit_reason"], trade["exit_price"]) == (
        "SHORT",
        "target",
        signal.price_target,
    )
    expected = (1 - COST) ** 2 * (2 - signal.price_target / entry) - 1
    assert trade["return"] == pytest.approx(expected)
    assert expected > 0


def test_long_only_ignores_sell_entries():
    prefix = first_signal(RISE)
    entry = prefix["close"].iloc[-1]
    candles = append_bar(prefix, open=entry, high=entry + 0.1, low=entry - 30, close=entry - 1)
    assert run_backtest(candles, config=RSI_ONLY, allow_short=False).trades == []


def _long_then_sell_signal() -> tuple[pd.DataFrame, int, int]:
    """A fall (first BUY at t0) then a rise (first SELL after it at t1), two bars past t1."""
    closes = np.concatenate([FALL, 85 + 3 * np.arange(1, 16)])
    signals = evaluate_series(from_closes(closes), RSI_ONLY)["signal"].to_numpy()
    t0 = int(np.flatnonzero(signals == "BUY")[0])
    t1 = t0 + int(np.flatnonzero(signals[t0:] == "SELL")[0])
    return from_closes(closes[: t1 + 3]), t0, t1


WIDE = dataclasses.replace(RSI_ONLY, atr_multiple=10.0, risk_reward=20.0)


def test_an_opposite_signal_exits_at_the_next_open_and_reverses():
    candles, t0, t1 = _long_then_sell_signal()
    result = run_backtest(candles, config=WIDE, commission_bps=10)
    long, short = result.trades
    opens, index = candles["open"], candles.index
    assert (long["side"], long["entry_time"], long["entry_price"]) == (
        "LONG",
        index[t0 + 1],
        opens.iloc[t0 + 1],
    )
    assert (long["exit_time"], long["exit_price"], long["exit_reason"]) == (
        index[t1 + 1],
        opens.iloc[t1 + 1],
        "signal",
    )
    assert long["return"] == pytest.approx((1 - COST) ** 2 * opens.iloc[t1 + 1] / opens.iloc[t0 + 1] - 1)
    assert (short["side"], short["entry_time"], short["entry_price"]) == (
        "SHORT",
        index[t1 + 1],
        opens.iloc[t1 + 1],
    )
    assert (short["exit_time"], short["exit_reason"]) == (index[-1], "end")
    assert short["exit_price"] == candles["close"].iloc[-1]
    growth = np.prod([1 + trade["return"] for trade in result.trades])
    assert result.total_return == pytest.approx(growth - 1)
    assert result.exposure == pytest.approx((len(candles) - t0 - 1) / (len(candles) - required_bars(WIDE)))


def test_long_only_just_closes_on_the_opposite_signal():
    candles, _, t1 = _long_then_sell_signal()
    [long] = run_backtest(candles, config=WIDE, allow_short=False).trades
    assert (long["exit_time"], long["exit_reason"]) == (candles.index[t1 + 1], "signal")


LOOSE = SignalConfig(buy_threshold=0.1)


@pytest.mark.parametrize("seed", [21, 22, 23])
def test_changing_later_bars_leaves_earlier_trades_unchanged(seed):
    candles = random_walk(600, seed=seed)
    t = 420
    later = random_walk(len(candles) - t - 1, seed=seed + 100, start_price=float(candles["close"].iloc[t]))
    changed = candles.copy()
    changed.iloc[t + 1 :] = later.to_numpy()
    cutoff = candles.index[t]

    def closed_by_cutoff(trades):
        return [trade for trade in trades if trade["exit_time"] <= cutoff]

    original = run_backtest(candles, config=LOOSE, commission_bps=5).trades
    assert len(closed_by_cutoff(original)) >= 5
    assert closed_by_cutoff(run_backtest(changed, config=LOOSE, commission_bps=5).trades) == closed_by_cutoff(
        original
    )
    truncated = run_backtest(candles.iloc[: t + 1], config=LOOSE, commission_bps=5).trades
    assert [trade for trade in truncated if trade["exit_reason"] != "end"] == closed_by_cutoff(original)


def test_trades_use_the_levels_evaluate_reports_on_the_signal_bar():
    candles = random_walk(500, seed=31)
    result = run_backtest(candles, config=LOOSE)
    assert len(result.trades) >= 5
    for trade in result.trades:
        entry_index = candles.index.get_loc(trade["entry_time"])
        signal = evaluate(candles.iloc[:entry_index], config=LOOSE)
        assert signal.signal_type == ("BUY" if trade["side"] == "LONG" else "SELL")
        assert (trade["stop_loss"], trade["price_target"]) == (signal.stop_loss, signal.price_target)
        assert trade["entry_price"] == candles["open"].iloc[entry_index]


def test_summary_statistics_are_consistent_with_trades_and_curve():
    candles = random_walk(700, seed=41)
    result = run_backtest(candles, config=LOOSE, commission_bps=10, max_curve_points=10_000)
    returns = [trade["return"] for trade in result.trades]
    assert result.total_return == pytest.approx(np.prod([1 + r for r in returns]) - 1)
    assert result.win_rate == pytest.approx(sum(r > 0 for r in returns) / len(returns))
    first = required_bars(LOOSE)  # the first bar a trade can open on
    first_open, last_close = candles["open"].iloc[first], candles["close"].iloc[-1]
    assert result.buy_and_hold_return == pytest.approx((1 - COST) ** 2 * last_close / first_open - 1)
    curve = np.array([point["equity"] for point in result.equity_curve])
    assert len(curve) == len(candles) - first and curve[-1] == pytest.approx(1 + result.total_return)
    peaks = np.maximum.accumulate(np.concatenate([[1.0], curve]))[1:]
    assert result.max_drawdown == pytest.approx(np.max(1 - curve / peaks)) and result.max_drawdown > 0
    bar_returns = np.diff(np.concatenate([[1.0], curve])) / np.concatenate([[1.0], curve[:-1]])
    assert result.sharpe == pytest.approx(bar_returns.mean() / bar_returns.std(ddof=1) * math.sqrt(252))
    assert result.periods_per_year == 252
    assert 0 < result.exposure < 1


def test_equity_curve_is_downsampled_keeping_both_ends():
    candles = random_walk(700, seed=41)
    full = run_backtest(candles, config=LOOSE, max_curve_points=10_000).equity_curve
    small = run_backtest(candles, config=LOOSE, max_curve_points=50).equity_curve
    assert len(small) <= 50
    assert small[0] == full[0] and small[-1] == full[-1]
    assert small[-1]["timestamp"] == candles.index[-1]


def test_start_and_end_restrict_trading_but_not_indicator_warmup():
    candles = random_walk(700, seed=41)
    start, end = candles.index[400], candles.index[600]
    result = run_backtest(candles, config=LOOSE, start=start.isoformat(), end=end.to_pydatetime())
    assert (result.start, result.end) == (start, end)
    assert result.trades and all(start <= t["entry_time"] and t["exit_time"] <= end for t in result.trades)
    assert result.buy_and_hold_return == pytest.approx(
        candles["close"].iloc[600] / candles["open"].iloc[400] - 1
    )
    assert result.equity_curve[0]["timestamp"] == start and result.equity_curve[-1]["timestamp"] == end


def test_too_short_a_history_simply_has_no_trades():
    candles = random_walk(100, seed=1)
    result = run_backtest(candles)
    assert (
        result.trades == [] and result.total_return == 0.0 and result.exposure == 0.0 and result.sharpe == 0.0
    )


def test_without_trades_the_win_rate_is_none_not_zero():
    """No trade won and none lost: "win_rate": 0.0 read as a strategy that lost every trade."""
    assert run_backtest(random_walk(100, seed=1)).win_rate is None


@pytest.mark.parametrize(
    ("freq", "expected"),
    [
        ("B", 252),
        ("D", 252),
        ("W-MON", 52),
        ("MS", 12),
        ("5min", 252 * 75),
        ("1h", 252 * 7),
        ("15min", 252 * 25),
    ],
)
def test_periods_per_year_are_inferred_from_bar_spacing(freq, expected):
    index = pd.date_range("2024-01-01", periods=50, freq=freq, tz="UTC")
    assert infer_periods_per_year(index) == expected


@pytest.mark.parametrize(
    "kwargs",
    [
        {"commission_bps": -1.0},
        {"max_curve_points": 1},
        {"start": "2030-01-01"},
        {"periods_per_year": 0.0},
    ],
)
def test_invalid_arguments_are_rejected(kwargs):
    with pytest.raises(ValueError):
        run_backtest(frame([1.0], [1.0], [1.0], [1.0]), **kwargs)


def test_a_win_rate_from_too_few_trades_comes_with_a_warning():
    """One winning trade read as "win rate 100%, Sharpe 3.1" with nothing saying it rests on one trade."""
    candles = random_walk(700, seed=41)
    few = run_backtest(candles, config=LOOSE, commission_bps=10, start=candles.index[600])
    assert 0 < len(few.trades) < 30
    assert few.warnings == [
        f"Only {len(few.trades)} trades: the win rate and Sharpe ratio rest on too few trades to mean much "
        "(at least 30 are needed for a rough estimate)."
    ]
    many = run_backtest(candles, config=LOOSE, commission_bps=10)
    assert len(many.trades) >= 30 and many.warnings == []
    none = run_backtest(random_walk(100, seed=1), commission_bps=10)
    assert none.trades == [] and any(w.startswith("No trades in this range") for w in none.warnings)


def test_a_backtest_without_costs_says_so():
    candles = random_walk(700, seed=41)
    warnings = run_backtest(candles, config=LOOSE).warnings
    assert len(warnings) == 1 and warnings[0].startswith("No costs: commission_bps is 0")


def test_the_replay_and_buy_and_hold_start_at_the_first_bar_a_trade_can_open_on():
    """Replayed from the first stored bar, the rules were held flat for the 210 bars their indicators need while
    buy-and-hold ran from that first open: "rules +5% against buy-and-hold +40%" over a period the rules could
    not trade, with Sharpe and exposure diluted. A start asked for inside that warm-up is moved, and said so."""
    candles = random_walk(700, seed=41)
    ready = required_bars(LOOSE)
    result = run_backtest(candles, config=LOOSE, commission_bps=10)
    assert result.start == candles.index[ready]
    assert result.buy_and_hold_return == pytest.approx(
        (1 - COST) ** 2 * candles["close"].iloc[-1] / candles["open"].iloc[ready] - 1
    )
    assert not any(w.startswith("The range asked for") for w in result.warnings)

    early = run_backtest(candles, config=LOOSE, commission_bps=10, start=candles.index[50])
    assert early.start == candles.index[ready]
    assert early.total_return == result.total_return and early.trades == result.trades
    assert early.warnings[0] == (
        f"The range asked for starts at {candles.index[50].isoformat()}, with too little history before it for "
        f"the rules' indicators ({ready} bars): the replay, and buy-and-hold beside it, start at "
        f"{candles.index[ready].isoformat()}, the first bar a trade can open on."
    )

    inside = run_backtest(
        candles, config=LOOSE, commission_bps=10, start=candles.index[50], end=candles.index[99]
    )
    assert inside.trades == [] and inside.warnings[0].startswith(
        f"No bar in this range has the {ready} bars of history"
    )
