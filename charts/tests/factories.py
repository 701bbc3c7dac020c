"""Rows for a chart page: synthetic candles (through the same read as the API), BUY and SELL signals on two of
them, and predictions (one realized, one still ahead)."""

from __future__ import annotations

import json
from datetime import datetime, timedelta

from market.models import Instrument
from market.selectors import candles_history
from market.timeframes import Timeframe
from predictions.models import Prediction
from signals.models import TradingSignal


def seed_chart(symbol: str = "TCS.NS", bars: int = 400) -> list[dict]:
    """Store `bars` daily candles of `symbol` and a few signals and predictions on them; returns the candles."""
    # In the catalogue (transactional tests flush the one the migrations load), so the synthetic provider has it.
    Instrument.objects.get_or_create(symbol=symbol, defaults={"name": symbol})
    candles = json.loads(candles_history(symbol=symbol, timeframe=Timeframe.D1, limit=bars))["candles"]
    for position, kind in ((-120, "BUY"), (-60, "SELL"), (-20, "HOLD")):
        candle = candles[position]
        TradingSignal.objects.create(
            symbol=symbol,
            timeframe="1D",
            signal_type=kind,
            strength=0.6,
            score=0.6 if kind == "BUY" else -0.6,
            entry_price=candle["close"],
            price_target=candle["close"] * 1.05,
            stop_loss=candle["close"] * 0.97,
            support_level=candle["close"] * 0.95,
            resistance_level=candle["close"] * 1.08,
            candle_timestamp=datetime.fromisoformat(candle["timestamp"]),
            reasoning=f"{kind}: RSI and MACD agree (test reasoning)",
            factors=[{"name": "rsi", "score": 0.5, "weight": 0.3, "explanation": "RSI 28, oversold"}],
        )
    for position, realized in ((-10, True), (-1, False)):
        candle = candles[position]
        base = datetime.fromisoformat(candle["timestamp"])
        target_index = position + 5
        Prediction.objects.create(
            symbol=symbol,
            timeframe="1D",
            horizon=5,
            time_horizon="1D x 5",
            model_used="random_forest",
            model_version="random_forest v1",
            predicted_price=candle["close"] * 1.01,
            confidence_score=0.55,
            lower_bound=candle["close"] * 0.97,
            upper_bound=candle["close"] * 1.05,
            base_price=candle["close"],
            base_timestamp=base,
            target_time=(
                datetime.fromisoformat(candles[target_index]["timestamp"])
                if target_index < 0
                else base + timedelta(days=7)
            ),
            realized_price=candles[target_index]["close"] if realized else None,
        )
    return candles
