"""Replay the signal rules bar by bar, with no look-ahead, and measure the result.

Rules of the replay:

* the signal of bar t is computed on its close (from candles[:t+1] only); any order it triggers fills at the open
  of bar t+1; the stop loss and target are those `evaluate` reports at bar t;
* long and short: BUY opens a long, SELL a short (`allow_short=False` makes SELL only close longs, as in the
  Indian cash segment, where delivery shorts are not possible);
* the replay, and buy-and-hold beside it, starts no earlier than the first bar a trade can open on (the
  `required_bars` before it only warm the indicators up: holding the rules flat there while buy-and-hold runs
  compares them over bars they could not trade);
* a position leaves at its stop or target, checked against each bar's low/high from the entry bar on; when both
  are touched in one bar the stop is assumed first (conservative); a bar that opens beyond a level fills at the
  open (that level was met first: a gap beyond the target is a target exit even if the bar then reaches the
  stop); an opposite signal closes it at the next open (and reverses it when that side is allowed); a position
  still open at the end is closed at the last close;
* commission c = commission_bps / 10 000 is charged on each side as a fraction of equity, so a trade returns
  (1 − c)² · (1 + side · (exit / entry − 1)) − 1; buy-and-hold pays the same two commissions;
* equity starts at 1 and is marked to market at every close; Sharpe is the mean over the standard deviation of
  those per-bar returns, times √(periods per year), with a zero risk-free rate;
* `warnings` say, in words, what the figures cannot carry: fewer than MIN_TRADES trades (a win rate of 1.0 from
  one trade is luck, not skill), and no costs at all (commission 0; slippage is never modelled).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from datetime import date, datetime, timedelta
from typing import TYPE_CHECKING

import numpy as np

from signals.config import DEFAULT_CONFIG, SignalConfig
from signals.levels import compute_levels
from signals.rules import evaluate_series, required_bars

if TYPE_CHECKING:
    import pandas as pd

# Bar spacing alone cannot say how long an exchange's session is: inferring intraday bars per year assumes NSE's
# continuous session, 09:15-15:30 IST. Callers that know the exchange pass periods_per_year (intraday_periods_per_year).
_SESSION_MINUTES = 375
TRADING_DAYS = 252
# Fewer closed trades than this and the win rate and Sharpe ratio say more about luck than about the rules (the
# standard error of a 50% win rate over 30 trades is still 9 points): a rule of thumb, said beside the figures.
MIN_TRADES = 30


@dataclass(frozen=True, kw_only=True)
class BacktestResult:
    """Outcome of a replay. Every return (each trade's and the totals), the drawdown, the win rate and the
    exposure are fractions (0.12 = 12%), one unit throughout. Drawdown is a positive magnitude. Without trades
    there is no win rate (None). `warnings` say what the figures cannot carry (too few trades, no costs)."""

    start: pd.Timestamp
    end: pd.Timestamp
    trades: list[dict]
    win_rate: float | None
    total_return: float
    buy_and_hold_return: float
    max_drawdown: float
    sharpe: float
    exposure: float
    periods_per_year: float
    equity_curve: list[dict]
    warnings: list[str]

    def to_dict(self) -> dict[str, object]:
        return asdict(self)


@dataclass
class _Position:
    """An open trade; side is +1 for long, -1 for short."""

    side: int
    entry_index: int
    entry_price: float
    stop_loss: float
    price_target: float
    equity_at_entry: float

    def value(self, price: float) -> float:
        """Equity if closed at `price`, before the exit commission."""
        return self.equity_at_entry * (1.0 + self.side * (price / self.entry_price - 1.0))


def run_backtest(
    candles: pd.DataFrame,
    *,
    config: SignalConfig = DEFAULT_CONFIG,
    commission_bps: float = 0.0,
    start: datetime | date | str | None = None,
    end: datetime | date | str | None = None,
    max_curve_points: int = 500,
    allow_short: bool = True,
    periods_per_year: float | None = None,
    predicted_returns: pd.Series | None = None,
) -> BacktestResult:
    """Trade the signals over the candles between `start` and `end`, inclusive. Earlier candles warm the
    indicators up, and a signal on the bar before `start` may open a position at `start`'s open. The replay
    (and buy-and-hold) starts no earlier than the first bar a trade can open on, `required_bars` in; a `start`
    before it is moved there, and `warnings` say so.
    `periods_per_year` is inferred from the bar spacing when not given (252 for daily bars)."""
    if not (math.isfinite(commission_bps) and 0 <= commission_bps < 10_000):
        raise ValueError(f"commission_bps must be in [0, 10000), got {commission_bps!r}")
    if max_curve_points < 2:
        raise ValueError("max_curve_points must be at least 2")
    if periods_per_year is not None and not (math.isfinite(periods_per_year) and periods_per_year > 0):
        raise ValueError(f"periods_per_year must be positive, got {periods_per_year!r}")
    frame = evaluate_series(candles, config, predicted_returns)  # also validates the candles
    index = candles.index
    first = 0 if start is None else int(index.searchsorted(_utc(start), side="left"))
    last = len(index) - 1 if end is None else int(index.searchsorted(_utc(end), side="right")) - 1
    if first > last:
        raise ValueError("no candles between start and end")
    # The first bar a trade can open on: the signal of the bar before it needs `required_bars` of history.
    # Replaying earlier bars held the rules flat while buy-and-hold ran (a start at the first stored bar did
    # so for 210 daily bars), and diluted Sharpe and exposure: the replay starts there instead, and says so.
    moved_from = None
    tradable = required_bars(config)
    if first < tradable:
        moved_from = index[first] if start is not None else None
        first = min(tradable, last)  # none tradable: the last bar alone, no trade, and the warning says why
    if periods_per_year is None:
        periods_per_year = infer_periods_per_year(index)

    side_of = {"BUY": 1, "SELL": -1}
    signals = [side_of.get(signal, 0) for signal in frame["signal"].tolist()]
    atr = frame["atr"].tolist()
    # Plain float lists: fast to index in the bar loop, and plain floats in the trades.
    opens, highs, lows, closes = (
        candles[column].to_numpy(dtype=np.float64).tolist() for column in ("open", "high", "low", "close")
    )
    cost = commission_bps / 10_000

    equity = 1.0
    position: _Position | None = None
    trades: list[dict] = []
    curve = np.empty(last - first + 1)
    bars_in_market = 0

    def close(trade: _Position, i: int, price: float, reason: str) -> float:
        """Record the trade and return the equity after the exit commission."""
        trade_return = (1.0 - cost) ** 2 * (1.0 + trade.side * (price / trade.entry_price - 1.0)) - 1.0
        trades.append(
            {
                "side": "LONG" if trade.side > 0 else "SHORT",
                "entry_time": index[trade.entry_index],
                "entry_price": trade.entry_price,
                "exit_time": index[i],
                "exit_price": price,
                "exit_reason": reason,
                "return": trade_return,
                "stop_loss": trade.stop_loss,
                "price_target": trade.price_target,
            }
        )
        return trade.value(price) * (1.0 - cost)

    for i in range(first, last + 1):
        signal = signals[i - 1] if i > 0 else 0
        if position is not None and signal == -position.side:
            equity, position = close(position, i, opens[i], "signal"), None
        if position is None and (signal > 0 or (signal < 0 and allow_short)):
            levels = compute_levels(
                candles.iloc[max(0, i - config.pivot_lookback) : i],
                signal_type="BUY" if signal > 0 else "SELL",
                entry=closes[i - 1],
                atr=atr[i - 1],
                config=config,
            )
            position = _Position(
                side=signal,
                entry_index=i,
                entry_price=opens[i],
                stop_loss=levels.stop_loss,
                price_target=levels.price_target,
                equity_at_entry=equity * (1.0 - cost),
            )
        if position is not None:
            bars_in_market += 1
            exit_price, reason = _intrabar_exit(position, opens[i], highs[i], lows[i])
            if reason is not None:
                equity, position = close(position, i, exit_price, reason), None
        if position is not None and i == last:
            equity, position = close(position, i, closes[i], "end"), None
        curve[i - first] = equity if position is None else position.value(closes[i])

    wins = sum(trade["return"] > 0 for trade in trades)
    return BacktestResult(
        start=index[first],
        end=index[last],
        trades=trades,
        win_rate=wins / len(trades) if trades else None,
        total_return=float(curve[-1] - 1.0),
        buy_and_hold_return=(1.0 - cost) ** 2 * closes[last] / opens[first] - 1.0,
        max_drawdown=_max_drawdown(curve),
        sharpe=_sharpe(curve, periods_per_year),
        exposure=bars_in_market / len(curve),
        periods_per_year=periods_per_year,
        equity_curve=_downsample(index[first : last + 1], curve, max_curve_points),
        warnings=_warnings(
            trades=len(trades),
            commission_bps=commission_bps,
            moved_from=moved_from,
            moved_to=index[first] if first >= tradable else None,
            needed=tradable,
        ),
    )


def _warnings(
    *,
    trades: int,
    commission_bps: float,
    moved_from: pd.Timestamp | None,
    moved_to: pd.Timestamp | None,
    needed: int,
) -> list[str]:
    """What a reader must know before trusting the figures, in words."""
    warnings = []
    if moved_to is None:
        warnings.append(
            f"No bar in this range has the {needed} bars of history before it that the rules' indicators need: "
            "no trade could open, whatever the rules."
        )
    elif moved_from is not None:
        warnings.append(
            f"The range asked for starts at {moved_from.isoformat()}, with too little history before it for "
            f"the rules' indicators ({needed} bars): the replay, and buy-and-hold beside it, start at "
            f"{moved_to.isoformat()}, the first bar a trade can open on."
        )
    if trades == 0:
        warnings.append(
            "No trades in this range: there is no win rate, and the Sharpe ratio (0) is that of money left idle."
        )
    elif trades < MIN_TRADES:
        warnings.append(
            f"Only {trades} trade{'' if trades == 1 else 's'}: the win rate and Sharpe ratio rest on too few "
            f"trades to mean much (at least {MIN_TRADES} are needed for a rough estimate)."
        )
    if commission_bps == 0:
        warnings.append(
            "No costs: commission_bps is 0 and slippage is not modelled, so returns are before brokerage, "
            "taxes and fills worse than the open, stop or target."
        )
    return warnings


def infer_periods_per_year(index: pd.DatetimeIndex) -> float:
    """Bars per year from the median bar spacing: 252 for daily, 52 weekly, 12 monthly, sessions × bars intraday."""
    import pandas as pd

    if len(index) < 2:
        return float(TRADING_DAYS)
    spacing = pd.Series(index).diff().median()
    if spacing >= pd.Timedelta(days=25):
        return 12.0
    if spacing >= pd.Timedelta(days=5):
        return 52.0
    if spacing >= pd.Timedelta(hours=20):
        return float(TRADING_DAYS)
    return float(TRADING_DAYS * math.ceil(_SESSION_MINUTES / (spacing / pd.Timedelta(minutes=1))))


def intraday_periods_per_year(session: timedelta, bar: timedelta) -> float:
    """Bars per year of `bar`-long bars in a regular `session`: the last bar may be cut short by the close."""
    return float(TRADING_DAYS * math.ceil(session / bar))


def _intrabar_exit(position: _Position, open_: float, high: float, low: float) -> tuple[float, str | None]:
    """Exit price and reason if the bar touches the stop or the target; the stop wins a tie. A bar that opens at
    or beyond a level has met it at the open, before anything else in the bar: no tie, it fills at the open."""
    if position.side > 0 and open_ >= position.price_target:
        return open_, "target"
    if position.side < 0 and open_ <= position.price_target:
        return open_, "target"
    if position.side > 0:
        if low <= position.stop_loss:
            return min(open_, position.stop_loss), "stop"
        if high >= position.price_target:
            return max(open_, position.price_target), "target"
    else:
        if high >= position.stop_loss:
            return max(open_, position.stop_loss), "stop"
        if low <= position.price_target:
            return min(open_, position.price_target), "target"
    return math.nan, None


def _utc(moment: datetime | date | str) -> pd.Timestamp:
    import pandas as pd

    stamp = pd.Timestamp(moment)
    return stamp.tz_localize("UTC") if stamp.tzinfo is None else stamp.tz_convert("UTC")


def _max_drawdown(curve: np.ndarray) -> float:
    peaks = np.maximum.accumulate(np.concatenate([[1.0], curve]))[1:]
    return float(np.max(1.0 - curve / peaks))


def _sharpe(curve: np.ndarray, periods_per_year: float) -> float:
    returns = np.diff(np.concatenate([[1.0], curve])) / np.concatenate([[1.0], curve[:-1]])
    if len(returns) < 2:
        return 0.0
    deviation = float(np.std(returns, ddof=1))
    if deviation == 0 or not math.isfinite(deviation):
        return 0.0
    return float(np.mean(returns) / deviation * math.sqrt(periods_per_year))


def _downsample(index: pd.DatetimeIndex, curve: np.ndarray, max_points: int) -> list[dict]:
    """At most `max_points` evenly spaced points, always keeping the first and the last."""
    positions = np.arange(len(curve))
    if len(curve) > max_points:
        positions = np.unique(np.linspace(0, len(curve) - 1, max_points).round().astype(int))
    return [{"timestamp": index[p], "equity": float(curve[p])} for p in positions.tolist()]
