"""Is a model's edge over naive more than luck? The Diebold–Mariano test on out-of-sample absolute errors.

Pure numpy/scipy, no ORM: `models.TrainedModel.beats_naive` and the ensemble use the same rule.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

# "Beats naive" needs MAE/naive < 1 and a Diebold–Mariano p-value below this (two-sided).
DM_ALPHA = 0.10


@dataclass(frozen=True)
class DieboldMariano:
    """stat < 0 means the model's absolute errors are smaller than naive's; p_value is two-sided."""

    stat: float | None
    p_value: float | None


def diebold_mariano(model_errors: np.ndarray, naive_errors: np.ndarray, horizon: int) -> DieboldMariano:
    """DM test of equal mean absolute error with the Harvey–Leybourne–Newbold small-sample correction.

    h-bar forecasts made every bar overlap, so the loss differential is autocorrelated up to lag h-1: its
    variance is Newey–West (Bartlett weights, lag h-1). The statistic is compared with Student's t, T-1 df.
    None/None when it is undefined (fewer than 3 rows, or identical losses).
    """
    model_errors = np.asarray(model_errors, dtype="float64")
    naive_errors = np.asarray(naive_errors, dtype="float64")
    if model_errors.shape != naive_errors.shape:
        raise ValueError("model and naive errors must be on the same rows")
    d = np.abs(model_errors) - np.abs(naive_errors)
    if len(d) < 3:
        return DieboldMariano(None, None)
    n = len(d)
    lag = max(0, min(int(horizon) - 1, n - 1))
    centred = d - d.mean()
    variance = float(centred @ centred) / n
    for k in range(1, lag + 1):
        variance += 2.0 * (1.0 - k / (lag + 1)) * float(centred[k:] @ centred[:-k]) / n
    if not variance > 0:
        return DieboldMariano(None, None)
    stat = float(d.mean()) / math.sqrt(variance / n)
    h = lag + 1
    correction = (n + 1 - 2 * h + h * (h - 1) / n) / n
    if correction > 0:
        stat *= math.sqrt(correction)
    # Imported here, not at module level: predictions.models imports this module in every web process, and
    # scipy.stats cost the web worker ~57 MiB of its 160 MiB budget (bench/README.md, side by side).
    from scipy import stats

    p_value = float(2.0 * stats.t.sf(abs(stat), df=n - 1))
    return DieboldMariano(stat, p_value)


def beats_naive(metrics: Mapping[str, Any]) -> bool:
    """True only when walk-forward MAE is below naive's and Diebold–Mariano says it is not luck (p < 0.10).
    Metrics stored before the test existed have no p-value and do not count as beating naive."""
    ratio, p_value = metrics.get("mae_vs_naive"), metrics.get("dm_p_value")
    return (
        isinstance(ratio, (int, float))
        and isinstance(p_value, (int, float))
        and math.isfinite(ratio)
        and ratio < 1
        and p_value < DM_ALPHA
    )
