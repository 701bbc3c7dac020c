"""Seeded synthetic candles for tests (a geometric random walk whose log returns follow an AR(1)) and
fast model settings."""

from __future__ import annotations

import numpy as np
import pandas as pd

# Small models keep the suite fast; the defaults differ only in size, not in code path.
FAST_PARAMS: dict[str, dict] = {
    "naive": {},
    "random_forest": {"n_estimators": 40, "n_jobs": 2},
    "svr": {},
    "lstm": {"epochs": 2, "units": 8, "lookback": 10, "batch_size": 64},
}


def make_candles(
    n: int = 800,
    *,
    seed: int = 0,
    phi: float = 0.2,
    sigma: float = 0.012,
    drift: float = 0.0002,
    start_price: float = 100.0,
    zero_volume: bool = False,
) -> pd.DataFrame:
    """Daily (business-day) UTC candles following the project's candle convention."""
    rng = np.random.default_rng(seed)
    shocks = rng.normal(0.0, sigma, n)
    returns = np.empty(n)
    previous = 0.0
    for i, shock in enumerate(shocks):
        previous = drift + phi * (previous - drift) + shock
        returns[i] = previous
    close = start_price * np.exp(np.cumsum(returns))
    open_ = np.concatenate([[start_price], close[:-1]]) * np.exp(rng.normal(0.0, sigma / 4, n))
    high = np.maximum(open_, close) * np.exp(np.abs(rng.normal(0.0, sigma / 2, n)))
    low = np.minimum(open_, close) * np.exp(-np.abs(rng.normal(0.0, sigma / 2, n)))
    volume = np.zeros(n, dtype="int64") if zero_volume else rng.integers(100_000, 5_000_000, n, dtype="int64")
    index = pd.bdate_range("2012-01-02", periods=n, tz="UTC", name="timestamp")
    return pd.DataFrame(
        {"open": open_, "high": high, "low": low, "close": close, "volume": volume}, index=index
    )
