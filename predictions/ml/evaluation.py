"""Walk-forward evaluation: the only source of the numbers we show about a model.

Expanding training window, time-ordered disjoint test folds, and a purge gap of `horizon` rows between the
end of training and the start of each test fold, so no training target (which looks `horizon` bars ahead)
reaches into the test period. Every metric is out of sample and set against the naive "price unchanged" model.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from dataclasses import dataclass, field, fields
from datetime import datetime
from typing import TYPE_CHECKING, Any

import numpy as np

from predictions.features import build_dataset, validate_horizon
from predictions.ml.algorithms import make_forecaster
from predictions.ml.significance import diebold_mariano

if TYPE_CHECKING:
    import pandas as pd

MIN_FOLDS = 5
MIN_TRAIN_ROWS = 100
MIN_TEST_ROWS_PER_FOLD = 5
INTERVAL_QUANTILES = {"q10": 0.10, "q90": 0.90}  # an 80% prediction interval
# The volatility known at prediction time that scales residuals for the locally adaptive interval: ATR(14)
# relative to the close, a feature of the prediction row itself (so it uses only bars up to that row).
VOLATILITY_COLUMN = "atr_14_rel"


class InsufficientHistory(ValueError):
    """Too few candles for the requested evaluation or prediction."""


@dataclass(frozen=True)
class Fold:
    """Row ranges of one walk-forward step: train on [0, train_stop), test on [test_start, test_stop)."""

    number: int
    train_stop: int
    test_start: int
    test_stop: int

    @property
    def train(self) -> slice:
        return slice(0, self.train_stop)

    @property
    def test(self) -> slice:
        return slice(self.test_start, self.test_stop)


@dataclass(frozen=True, kw_only=True)
class Evaluation:
    """Out-of-sample results of a walk-forward run; `metrics` and `fold_metrics` are JSON-serialisable.

    metrics: mae, rmse (price units), mape (percent), directional_accuracy (0-1, None if the price never
    moved or the model never called a direction), naive_mae, naive_rmse, mae_vs_naive (model MAE / naive MAE),
    dm_stat and dm_p_value (Diebold–Mariano on absolute errors vs naive, see significance.py), coverage_80 and
    coverage_80_calm / coverage_80_volatile (share of fold 2..k outcomes inside the 80% interval built from
    earlier folds only, purged by the horizon; overall, in the calmest and in the most volatile third of those rows), n_samples,
    folds, horizon. residual_quantiles: "q10"/"q90" of actual - predicted log return, and "scaled_q10"/
    "scaled_q90" of that residual divided by the volatility known at prediction time (VOLATILITY_COLUMN).
    """

    algorithm: str
    horizon: int
    metrics: dict[str, Any]
    fold_metrics: list[dict[str, Any]]
    residual_quantiles: dict[str, float]
    n_samples: int
    data_start: datetime
    data_end: datetime
    # Per tested row (index: the row's timestamp): fold, base price, predicted and actual log return. Lets an
    # ensemble of models evaluated on the same rows be scored out of sample too. Not part of to_dict().
    out_of_sample: pd.DataFrame | None = field(default=None, repr=False, compare=False)

    def to_dict(self) -> dict[str, Any]:
        """Everything but the out-of-sample rows as JSON-ready values (datetimes as ISO 8601 strings)."""
        data = {f.name: getattr(self, f.name) for f in fields(self) if f.name != "out_of_sample"}
        data["data_start"] = self.data_start.isoformat()
        data["data_end"] = self.data_end.isoformat()
        return data


def folds(n: int, k: int, min_train: int, gap: int) -> Iterator[Fold]:
    """k expanding-window folds over n rows: the first trains on min_train rows, test blocks tile the rest
    in order, and `gap` rows are left out between each training end and its test start."""
    if k < 1 or min_train < 1 or gap < 0:
        raise ValueError("need k >= 1, min_train >= 1 and gap >= 0")
    first_test = min_train + gap
    test_rows = n - first_test
    if test_rows < k:
        raise InsufficientHistory(
            f"{n} rows cannot hold {min_train} training rows, a gap of {gap} and {k} folds"
        )
    bounds = [first_test + test_rows * i // k for i in range(k + 1)]
    for number, (start, stop) in enumerate(itertools.pairwise(bounds), start=1):
        yield Fold(number=number, train_stop=start - gap, test_start=start, test_stop=stop)


_folds = folds  # walk_forward's `folds` count argument shadows the generator inside it


def default_min_train(n: int) -> int:
    """Half the rows train the first fold (at least MIN_TRAIN_ROWS): enough to learn, enough left to test."""
    return max(MIN_TRAIN_ROWS, n // 2)


def score_rows(base: np.ndarray, predicted: np.ndarray, actual: np.ndarray, horizon: int) -> dict[str, Any]:
    """Price-space error metrics of predicted vs actual log returns from the same base prices, beside naive's
    on the same rows, with the Diebold–Mariano test of the difference."""
    predicted_price = base * np.exp(predicted)
    actual_price = base * np.exp(actual)
    error = predicted_price - actual_price
    naive_error = base - actual_price
    dm = diebold_mariano(error, naive_error, horizon)
    mae = float(np.mean(np.abs(error)))
    naive_mae = float(np.mean(np.abs(naive_error)))
    # A bar with no move has no direction to get right; a zero prediction calls no direction and counts as wrong.
    # A model that never calls a direction (naive, an ensemble that fell back to it) has no accuracy at all.
    moved = actual != 0
    called = bool(np.any(predicted != 0))
    directional = (
        float(np.mean(np.sign(predicted[moved]) == np.sign(actual[moved])))
        if moved.any() and called
        else None
    )
    return {
        "mae": mae,
        "rmse": float(np.sqrt(np.mean(error**2))),
        "mape": float(np.mean(np.abs(error) / actual_price) * 100),
        "directional_accuracy": directional,
        "naive_mae": naive_mae,
        "naive_rmse": float(np.sqrt(np.mean(naive_error**2))),
        "mae_vs_naive": mae / naive_mae if naive_mae > 0 else None,
        "dm_stat": dm.stat,
        "dm_p_value": dm.p_value,
        "n_samples": len(actual),
    }


def known_before(fold_ids: np.ndarray, number: int, horizon: int) -> np.ndarray:
    """Mask of the out-of-sample rows whose outcome is known when fold `number` starts: row r's target is the
    return to bar r + horizon, so only rows r <= start - horizon, purged like walk-forward training. The rows
    are consecutive dataset rows, as walk_forward's test folds tile them in order."""
    start = int(np.argmax(fold_ids == number))
    known = np.zeros(len(fold_ids), dtype=bool)
    known[: max(0, start - horizon + 1)] = True
    return known


def _quantiles(residuals: np.ndarray) -> dict[str, float]:
    return {name: float(np.quantile(residuals, q)) for name, q in INTERVAL_QUANTILES.items()}


def walk_forward(
    candles: pd.DataFrame,
    algorithm: str,
    *,
    horizon: int = 1,
    folds: int = MIN_FOLDS,
    min_train: int | None = None,
    params: dict[str, Any] | None = None,
) -> Evaluation:
    """Fit on each expanding training window, predict the purged test fold after it, score out of sample."""
    import pandas as pd

    horizon = validate_horizon(horizon)
    if folds < MIN_FOLDS:
        raise ValueError(f"walk-forward needs at least {MIN_FOLDS} folds, got {folds}")
    X, y = build_dataset(candles, horizon)
    n = len(X)
    min_train = default_min_train(n) if min_train is None else min_train
    if n - min_train - horizon < folds * MIN_TEST_ROWS_PER_FOLD:
        raise InsufficientHistory(
            f"{n} usable rows after warm-up: need {min_train} to train, {horizon} to purge and "
            f"{folds * MIN_TEST_ROWS_PER_FOLD} to test"
        )
    base_prices = candles["close"].reindex(X.index).to_numpy(dtype="float64")
    volatility = X[VOLATILITY_COLUMN].to_numpy(dtype="float64")
    targets = y.to_numpy(dtype="float64")

    fold_details: list[dict[str, Any]] = []
    predictions: list[tuple[slice, np.ndarray]] = []
    for fold in _folds(n, folds, min_train, horizon):
        forecaster = make_forecaster(algorithm, params)
        if fold.train_stop < forecaster.lookback:
            raise InsufficientHistory(f"{algorithm} needs more than {fold.train_stop} training rows")
        forecaster.fit(X.iloc[fold.train], y.iloc[fold.train])
        # Rows before the test fold supply only the input window (features known at that time), never targets.
        history_start = fold.test_start - (forecaster.lookback - 1)
        predicted = forecaster.predict_returns(X.iloc[history_start : fold.test_stop])
        actual = targets[fold.test]
        if predicted.shape != actual.shape:
            raise RuntimeError(f"{algorithm} returned {predicted.shape} predictions for {actual.shape} rows")
        predictions.append((fold.test, predicted))
        fold_details.append(
            {
                "train_start": X.index[0].isoformat(),
                "train_end": X.index[fold.train_stop - 1].isoformat(),
                "n_train": fold.train_stop,
            }
        )

    tested = np.concatenate([np.arange(n)[f] for f, _ in predictions])
    fold_numbers = np.concatenate([np.full(len(p), i + 1) for i, (_, p) in enumerate(predictions)])
    out_of_sample = pd.DataFrame(
        {
            "fold": fold_numbers,
            "base": base_prices[tested],
            "predicted": np.concatenate([p for _, p in predictions]),
            "actual": targets[tested],
            "volatility": volatility[tested],
        },
        index=X.index[tested],
    )
    return evaluation_from_out_of_sample(
        algorithm, out_of_sample, horizon=horizon, folds=folds, fold_details=fold_details, candles=candles
    )


def fold_scores(out_of_sample: pd.DataFrame, horizon: int) -> list[dict[str, Any]]:
    """Per test fold: its window (first and last row), n, and the model's and naive's errors on it."""
    scores = []
    for number, rows in out_of_sample.groupby("fold", sort=True):
        scores.append(
            {
                "fold": int(number),
                "test_start": rows.index[0].isoformat(),
                "test_end": rows.index[-1].isoformat(),
                **score_rows(
                    rows["base"].to_numpy(dtype="float64"),
                    rows["predicted"].to_numpy(dtype="float64"),
                    rows["actual"].to_numpy(dtype="float64"),
                    horizon,
                ),
            }
        )
    return scores


def _scale(out_of_sample: pd.DataFrame) -> np.ndarray:
    """The volatility of each row, floored so a flat stretch cannot divide by zero; 1 (no scaling) for
    out-of-sample rows recorded without it."""
    if "volatility" not in out_of_sample:
        return np.ones(len(out_of_sample))
    volatility = out_of_sample["volatility"].to_numpy(dtype="float64")
    return np.maximum(np.nan_to_num(volatility, nan=0.0), 1e-8)


def evaluation_from_out_of_sample(
    algorithm: str,
    out_of_sample: pd.DataFrame,
    *,
    horizon: int,
    folds: int,
    candles: pd.DataFrame,
    fold_details: list[dict[str, Any]] | None = None,
) -> Evaluation:
    """Metrics, interval quantiles and fold-wise coverage from out-of-sample rows (fold, base, predicted,
    actual, volatility). The interval is locally adaptive conformal: residuals divided by the volatility
    known at prediction time; the coverage of fold i uses the scaled residuals of folds 1..i-1 only (those whose
    outcome is known when fold i starts: known_before), times the row's own volatility."""
    residuals = (out_of_sample["actual"] - out_of_sample["predicted"]).to_numpy(dtype="float64")
    scale = _scale(out_of_sample)
    scaled = residuals / scale
    fold_ids = out_of_sample["fold"].to_numpy()
    covered, covered_scale = [], []
    for number in np.unique(fold_ids)[1:]:
        known = known_before(fold_ids, number, horizon)
        if not known.any():
            continue
        earlier = _quantiles(scaled[known])
        current = fold_ids == number
        covered.append((scaled[current] >= earlier["q10"]) & (scaled[current] <= earlier["q90"]))
        covered_scale.append(scale[current])
    metrics = score_rows(
        out_of_sample["base"].to_numpy(dtype="float64"),
        out_of_sample["predicted"].to_numpy(dtype="float64"),
        out_of_sample["actual"].to_numpy(dtype="float64"),
        horizon,
    )
    metrics.update(_coverage(covered, covered_scale))
    metrics["folds"] = folds
    metrics["horizon"] = horizon
    fold_metrics = fold_scores(out_of_sample, horizon)
    for details, scores in zip(fold_details or [], fold_metrics, strict=False):
        scores.update(details)
    quantiles = _quantiles(residuals)
    quantiles.update({f"scaled_{name}": value for name, value in _quantiles(scaled).items()})
    return Evaluation(
        algorithm=algorithm,
        horizon=horizon,
        metrics=metrics,
        fold_metrics=fold_metrics,
        residual_quantiles=quantiles,
        n_samples=len(out_of_sample),
        data_start=candles.index[0].to_pydatetime(),
        data_end=candles.index[-1].to_pydatetime(),
        out_of_sample=out_of_sample,
    )


def _coverage(covered: list[np.ndarray], scale: list[np.ndarray]) -> dict[str, float | None]:
    """Share of outcomes inside the interval: over all scored rows, and in the calmest and the most volatile
    third of them (by the volatility known when each prediction was made)."""
    if not covered:
        return {"coverage_80": None, "coverage_80_calm": None, "coverage_80_volatile": None}
    inside = np.concatenate(covered)
    order = np.argsort(np.concatenate(scale), kind="stable")
    third = len(order) // 3
    return {
        "coverage_80": float(np.mean(inside)),
        "coverage_80_calm": float(np.mean(inside[order[:third]])) if third else None,
        "coverage_80_volatile": float(np.mean(inside[order[-third:]])) if third else None,
    }
