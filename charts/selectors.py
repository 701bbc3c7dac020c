"""What an instrument's chart page draws, read through the same selectors and services as the API: the candles
of /api/market/historical, the signals and predictions stored for them, and the backtest of /api/signals/…/backtest."""

from __future__ import annotations

import json
from datetime import datetime, timedelta

import numpy as np
from django.utils import timezone

from market.adjust import Adjustment
from market.presentation import utc_offsets
from market.selectors import candles_history
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


def _seconds(value: datetime | str) -> int:
    """UNIX seconds, the time unit of the chart library."""
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    return int(value.timestamp())


def _signals(symbol: str, timeframe: Timeframe, first: datetime, last: datetime) -> list[dict]:
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
        latest[_seconds(row["candle_timestamp"])] = {
            "time": _seconds(row["candle_timestamp"]),
            "type": row["signal_type"],
            "strength": row["strength"],
            "price": row["entry_price"],
            "reasoning": row["reasoning"],
        }
    return list(latest.values())


def _predictions(symbol: str, timeframe: Timeframe, first: datetime) -> list[dict]:
    rows = (
        Prediction.objects.filter(symbol=symbol, timeframe=timeframe.value, base_timestamp__gte=first)
        .order_by("target_time", "created_at")
        .values(*_PREDICTION_FIELDS)
    )
    latest: dict[int, dict] = {}
    for row in rows:  # one point per target bar: the newest forecast of it
        latest[_seconds(row["target_time"])] = {
            "time": _seconds(row["target_time"]),
            "model": row["model_used"],
            "horizon": row["horizon"],
            "predicted": row["predicted_price"],
            "lower": row["lower_bound"],
            "upper": row["upper_bound"],
            "realized": row["realized_price"],
        }
    return list(latest.values())


def _levels(symbol: str, timeframe: Timeframe, last: datetime) -> dict:
    """Support and resistance of the newest signal on or before the last candle shown."""
    row = (
        TradingSignal.objects.filter(symbol=symbol, timeframe=timeframe.value, candle_timestamp__lte=last)
        .order_by("-candle_timestamp", "-created_at")
        .values("support_level", "resistance_level", "candle_timestamp")
        .first()
    )
    if row is None:
        return {"support": None, "resistance": None, "as_of": None}
    return {
        "support": row["support_level"],
        "resistance": row["resistance_level"],
        "as_of": _seconds(row["candle_timestamp"]),
    }


def _backtest(symbol: str, timeframe: Timeframe, first: datetime, last: datetime, closes: dict) -> dict:
    """The rules' equity curve over the candles shown, against buy-and-hold from the same first close."""
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
    equity = [{"time": _seconds(p["timestamp"]), "value": p["equity"]} for p in result["equity_curve"]]
    base = closes.get(equity[0]["time"]) if equity else None
    buy_and_hold = [
        {"time": p["time"], "value": closes[p["time"]] / base} for p in equity if base and p["time"] in closes
    ]
    summary = {
        key: result[key]
        for key in ("total_return", "buy_and_hold_return", "max_drawdown", "sharpe", "win_rate", "exposure")
    }
    return {"error": None, "equity": equity, "buy_and_hold": buy_and_hold, "summary": summary}


def _display_offsets(payload: dict, tz) -> list[dict]:
    """The exchange's UTC offset in force from each time drawn on: [{"from": UNIX seconds, "offset": seconds}]
    in time order, one entry per change. The page shifts every point by the offset at its own time, so a bar
    from the other side of a daylight-saving change is still drawn at its own exchange time (and day)."""
    backtest = payload["backtest"]
    times = sorted(
        {
            point["time"]
            for series in (
                payload["candles"],
                payload["signals"],
                payload["predictions"],
                backtest["equity"],
                backtest["buy_and_hold"],
            )
            for point in series
        }
    )
    if not times:
        return []
    changes: list[dict] = []
    for second, offset in zip(times, utc_offsets(np.array(times, dtype=np.int64), tz).tolist(), strict=True):
        if not changes or changes[-1]["offset"] != offset:
            changes.append({"from": second, "offset": offset})
    return changes


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
    """Everything one chart page draws, times in UNIX seconds (UTC) plus the exchange's offsets for display
    (`display_offsets`, one per daylight-saving period drawn; `display_offset_seconds` is today's). Candles
    split-adjusted by default, the series signals, levels and backtests are computed on."""
    history = json.loads(
        candles_history(
            symbol=symbol, timeframe=timeframe, start=start, end=end, limit=limit, order=order, adjust=adjust
        )
    )
    tz = time_zone_for_symbol(symbol)
    candles = [
        {
            "time": _seconds(c["timestamp"]),
            "open": c["open"],
            "high": c["high"],
            "low": c["low"],
            "close": c["close"],
            "volume": c["volume"],
        }
        for c in history["candles"]
    ]
    payload = {
        "symbol": symbol,
        "timeframe": timeframe.value,
        "source": history["source"],
        "adjust": history["adjust"],
        "stale": history["stale"],
        "display_offset_seconds": int(tz.utcoffset(timezone.now()).total_seconds()),
        "display_offsets": [],
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
    closes = {c["time"]: c["close"] for c in candles}
    payload.update(
        signals=_signals(symbol, timeframe, first, last),
        predictions=_predictions(symbol, timeframe, first),
        levels=_levels(symbol, timeframe, last),
        backtest=_backtest(symbol, timeframe, first, last, closes),
    )
    payload["display_offsets"] = _display_offsets(payload, tz)
    return payload
