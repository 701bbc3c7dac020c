"""Candle frames for engine tests: constructed shapes, seeded random walks and a hypothesis strategy."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
from hypothesis import strategies as st


def frame(
    opens: Sequence[float],
    highs: Sequence[float],
    lows: Sequence[float],
    closes: Sequence[float],
    volumes: Sequence[int] | None = None,
    *,
    start: str = "2020-01-01",
    freq: str = "B",
) -> pd.DataFrame:
    """A candle frame in the project convention (UTC bar-open timestamps, float prices, int volume)."""
    index = pd.date_range(start, periods=len(closes), freq=freq, tz="UTC", name="timestamp")
    return pd.DataFrame(
        {
            "open": np.asarray(opens, dtype=np.float64),
            "high": np.asarray(highs, dtype=np.float64),
            "low": np.asarray(lows, dtype=np.float64),
            "close": np.asarray(closes, dtype=np.float64),
            "volume": np.asarray(volumes if volumes is not None else [1000] * len(closes), dtype=np.int64),
        },
        index=index,
    )


def from_closes(
    closes: Sequence[float], *, wick: float = 0.2, volumes: Sequence[int] | None = None, **kwargs
) -> pd.DataFrame:
    """Each bar opens at the previous close and has a wick of `wick` (a fraction of the price) on each side."""
    closes = np.asarray(closes, dtype=np.float64)
    opens = np.concatenate([[closes[0]], closes[:-1]])
    highs = np.maximum(opens, closes) * (1 + wick / 100)
    lows = np.minimum(opens, closes) * (1 - wick / 100)
    return frame(opens, highs, lows, closes, volumes, **kwargs)


def zigzag(bars: int, *, level: float = 100.0, amplitude: float = 1.0, drift: float = 0.0) -> np.ndarray:
    """Alternating up/down closes around a drifting level: neutral RSI, no trend beyond the drift."""
    steps = np.arange(bars)
    return level + drift * steps + amplitude * np.where(steps % 2 == 0, 1.0, -1.0)


def random_walk(
    bars: int, *, seed: int, start_price: float = 100.0, volatility: float = 0.015
) -> pd.DataFrame:
    """A seeded geometric random walk with realistic gaps and wicks."""
    rng = np.random.default_rng(seed)
    closes = start_price * np.exp(np.cumsum(rng.normal(0, volatility, bars)))
    opens = np.concatenate([[start_price], closes[:-1]]) * np.exp(rng.normal(0, volatility / 3, bars))
    highs = np.maximum(opens, closes) * np.exp(np.abs(rng.normal(0, volatility / 2, bars)))
    lows = np.minimum(opens, closes) * np.exp(-np.abs(rng.normal(0, volatility / 2, bars)))
    return frame(opens, highs, lows, closes, rng.integers(1_000, 100_000, bars))


@st.composite
def candle_frames(draw: st.DrawFn, *, min_bars: int = 1, max_bars: int = 60) -> pd.DataFrame:
    """Valid candles (0 < low <= open, close <= high) from a log-uniform start price in [1e-4, 1e5]."""
    bars = draw(st.integers(min_bars, max_bars))
    start = float(np.exp(draw(st.floats(np.log(1e-4), np.log(1e5)))))
    unit = st.floats(0.0, 1.0)
    moves = np.array(draw(st.lists(st.floats(-0.3, 0.3), min_size=bars, max_size=bars)))
    shape = np.array(draw(st.lists(st.tuples(unit, unit, unit, unit), min_size=bars, max_size=bars)))
    mid = start * np.exp(np.cumsum(moves))
    opens = mid * np.exp(0.1 * (shape[:, 0] - 0.5))
    closes = mid * np.exp(0.1 * (shape[:, 1] - 0.5))
    highs = np.maximum(opens, closes) * np.exp(0.1 * shape[:, 2])
    lows = np.minimum(opens, closes) * np.exp(-0.1 * shape[:, 3])
    volumes = draw(st.lists(st.integers(0, 10**7), min_size=bars, max_size=bars))
    return frame(opens, highs, lows, closes, volumes)


def append_bar(
    candles: pd.DataFrame, *, open: float, high: float, low: float, close: float, volume: int = 1000
) -> pd.DataFrame:
    """The candles plus one business-day bar after the last."""
    bar = frame([open], [high], [low], [close], [volume], start=str(candles.index[-1] + pd.offsets.BDay()))
    return pd.concat([candles, bar])
