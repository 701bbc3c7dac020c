"""What an instrument's chart page draws, read through the same selectors and services as the API: the candles
of /api/market/historical, the signals and predictions stored for them, and the backtest of /api/signals/…/backtest.

Two things make them line up on one chart:
* times are the exchange's wall clock, each at its own UTC offset (summer and winter time alike), given as UNIX
  seconds read as UTC: the chart library has no time zones and draws what it is given;
* prices are in the candles' series (the page's `adjust`, split-adjusted by default). Signals and their levels
  are stored as traded on their candle, predictions in the as-traded prices of their base bar; across a split
  (or, for a total-return series, a dividend) they are scaled as the candles are.
"""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta, tzinfo

import numpy as np
from django.utils import timezone

from market.adjust import Adjustment, day_factors, split_ratio_between
from market.selectors import candles_history, corporate_actions
from market.sources import time_zone_for_symbol
from market.timeframes import Timeframe
from predictions.models import Prediction
from signals.models import TradingSignal
from signals.services import EmptyRange, NotEnoughCandles, signal_backtest

_SIGNAL_FIELDS = ("candle_timestamp", "signal_type", "strength", "entry_price", "reasoning", "factors")
_PREDICTION_FIELDS = (
    "target_time",
    "base_timestamp",
    "model_used",
    "horizon",
    "predicted_price",
    "lower_bound",
    "upper_bound",
    "realized_price",
)


def _wall_seconds(value: datetime | str, tz: tzinfo) -> int:
    """The exchange's wall clock at `value` as UNIX seconds read as UTC: what the chart library shows as an
    exchange-local time."""
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    return int(value.astimezone(tz).replace(tzinfo=UTC).timestamp())


class _Series:
    """Where stored prices and times go on the chart of `symbol`'s `adjust` series."""

    def __init__(self, symbol: str, adjust: Adjustment):
        self.tz = time_zone_for_symbol(symbol)
        self.adjust = adjust
        # As the candles are adjusted (market.selectors._adjusted): for the actions gone ex by today.
        today = timezone.now().astimezone(self.tz).date()
        self.actions = [a for a in corporate_actions(symbol=symbol, adjust=adjust) if a.ex_date <= today]
        self.splits = corporate_actions(symbol=symbol, adjust="splits")

    def time(self, value: datetime | str) -> int:
        return _wall_seconds(value, self.tz)

    def day(self, value: datetime) -> date:
        return value.astimezone(self.tz).date()

    def factor(self, traded_on: datetime, price: float) -> float:
        """What a price as traded on the day of `traded_on` is multiplied by to read in the series (1 when no
        action after that day applies)."""
        if not self.actions:
            return 1.0
        days = np.array([self.day(traded_on)], dtype="datetime64[D]")
        prices, _ = day_factors(days, [price], self.actions, mode=self.adjust)
        return float(prices[0])

    def base_to_target(self, base: datetime, target: datetime) -> float:
        """A price as traded on the day of `base`, in the as-traded prices of the day of `target`."""
        return 1.0 / split_ratio_between(self.splits, after=self.day(base), through=self.day(target))


def _scaled(value: float | None, factor: float) -> float | None:
    return None if value is None else value * factor


def _signals(
    series: _Series, symbol: str, timeframe: Timeframe, first: datetime, last: datetime
) -> list[dict]:
    rows = (
        TradingSignal.objects.filter(
            symbol=symbol, timeframe=timeframe.value, candle_timestamp__range=(first, last)
        )
        .exclude(signal_type=TradingSignal.Type.HOLD)
        .order_by("candle_timestamp", "created_at")
        .values(*_SIGNAL_FIELDS)
    )
    latest: dict[int, dict] = {}
    for row in rows:  # one marker per candle: the newest call on it
        time = series.time(row["candle_timestamp"])
        latest[time] = {
            "time": time,
            "type": row["signal_type"],
            "strength": row["strength"],
            "price": row["entry_price"] * series.factor(row["candle_timestamp"], row["entry_price"]),
            "reasoning": row["reasoning"],
        }
    return list(latest.values())


def _predictions(series: _Series, symbol: str, timeframe: Timeframe, first: datetime) -> list[dict]:
    rows = (
        Prediction.objects.filter(symbol=symbol, timeframe=timeframe.value, base_timestamp__gte=first)
        .order_by("target_time", "created_at")
        .values(*_PREDICTION_FIELDS)
    )
    latest: dict[int, dict] = {}
    for row in rows:  # one point per target bar: the newest forecast of it
        # Drawn on its target bar: in that bar's as-traded prices, then as the series shows that bar.
        target = row["target_time"]
        traded = series.base_to_target(row["base_timestamp"], target)
        factor = traded * series.factor(target, row["predicted_price"] * traded)
        time = series.time(target)
        latest[time] = {
            "time": time,
            "model": row["model_used"],
            "horizon": row["horizon"],
            "predicted": row["predicted_price"] * factor,
            "lower": _scaled(row["lower_bound"], factor),
            "upper": _scaled(row["upper_bound"], factor),
            "realized": _scaled(row["realized_price"], factor),
        }
    return list(latest.values())


def _levels(series: _Series, symbol: str, timeframe: Timeframe, last: datetime) -> dict:
    """Support and resistance of the newest signal on or before the last candle shown."""
    row = (
        TradingSignal.objects.filter(symbol=symbol, timeframe=timeframe.value, candle_timestamp__lte=last)
        .order_by("-candle_timestamp", "-created_at")
        .values("support_level", "resistance_level", "candle_timestamp")
        .first()
    )
    if row is None:
        return {"support": None, "resistance": None, "as_of": None}
    on = row["candle_timestamp"]
    return {
        "support": _scaled(row["support_level"], series.factor(on, row["support_level"] or 0.0)),
        "resistance": _scaled(row["resistance_level"], series.factor(on, row["resistance_level"] or 0.0)),
        "as_of": series.time(on),
    }


def _backtest(
    series: _Series,
    symbol: str,
    timeframe: Timeframe,
    first: datetime,
    last: datetime,
    closes: dict,
    opens: dict,
) -> dict:
    """The rules' equity curve over the candles shown, against buy-and-hold bought at the open of the same first
    bar, as the backtest's `buy_and_hold_return` is (the line ends where the summary's figure says); `stale`
    when the provider failed and the stored candles were replayed (the page says so beside the figures)."""
    if not timeframe.is_stored:  # 4H and 1M bars are built on read; the rules run on stored series
        return {
            "error": f"No backtest on {timeframe.value} bars (built from finer ones).",
            "equity": [],
            "buy_and_hold": [],
        }
    try:
        result = signal_backtest(
            symbol=symbol, timeframe=timeframe, start=first, end=last + timedelta(microseconds=1)
        )
    except (NotEnoughCandles, EmptyRange) as exc:
        return {"error": str(exc), "equity": [], "buy_and_hold": []}
    equity = [{"time": series.time(p["timestamp"]), "value": p["equity"]} for p in result["equity_curve"]]
    base = opens.get(equity[0]["time"]) if equity else None
    buy_and_hold = [
        {"time": p["time"], "value": closes[p["time"]] / base} for p in equity if base and p["time"] in closes
    ]
    summary = {
        key: result[key]
        for key in ("total_return", "buy_and_hold_return", "max_drawdown", "sharpe", "win_rate", "exposure")
    }
    return {
        "error": None,
        "equity": equity,
        "buy_and_hold": buy_and_hold,
        "summary": summary,
        "stale": result["stale"],
        "warnings": result["warnings"],
    }


def chart_data(
    *,
    symbol: str,
    timeframe: Timeframe,
    start: datetime | None = None,
    end: datetime | None = None,
    limit: int = 500,
    order: str = "desc",
    adjust: Adjustment = "splits",
) -> dict:
    """Everything one chart page draws, in the candles' `adjust` series (split-adjusted by default, the series
    signals, levels and backtests are computed on), times in the exchange's wall clock (module docstring)."""
    window = {
        "symbol": symbol,
        "timeframe": timeframe,
        "start": start,
        "end": end,
        "limit": limit,
        "order": order,
    }
    history = json.loads(candles_history(**window, adjust=adjust))
    series = _Series(symbol, adjust)
    candles = [
        {
            "time": series.time(c["timestamp"]),
            "open": c["open"],
            "high": c["high"],
            "low": c["low"],
            "close": c["close"],
            "volume": c["volume"],
            # A bar fetched before it closed holds partial values: drawn apart, never as a finished bar.
            "final": c["final"],
        }
        for c in history["candles"]
    ]
    payload = {
        "symbol": symbol,
        "timeframe": timeframe.value,
        "source": history["source"],
        "adjust": history["adjust"],
        "stale": history["stale"],
        "time_zone": str(series.tz),
        "candles": candles,
        "signals": [],
        "predictions": [],
        "levels": {"support": None, "resistance": None, "as_of": None},
        "backtest": {"error": "No candles in this range.", "equity": [], "buy_and_hold": []},
    }
    if not candles:
        return payload
    first = datetime.fromisoformat(history["candles"][0]["timestamp"])
    last = datetime.fromisoformat(history["candles"][-1]["timestamp"])
    # Buy-and-hold beside the backtest, in the backtest's own (split-adjusted) series.
    if adjust != "splits":
        history = json.loads(candles_history(**window, adjust="splits"))
    closes = {series.time(c["timestamp"]): c["close"] for c in history["candles"]}
    opens = {series.time(c["timestamp"]): c["open"] for c in history["candles"]}
    payload.update(
        signals=_signals(series, symbol, timeframe, first, last),
        predictions=_predictions(series, symbol, timeframe, first),
        levels=_levels(series, symbol, timeframe, last),
        backtest=_backtest(series, symbol, timeframe, first, last, closes, opens),
    )
    return payload
