"""The ensemble as a model of its own, scored out of sample for real.

Its members come from one training run (same candles, same folds). For test fold k the members and their weights
are chosen from folds 1..k-1 only, purged by the horizon (just the rows whose outcome is known when fold k starts)
— the members that beat naive there (MAE/naive < 1 and Diebold–Mariano p < 0.10), weighted by 1/MAE on those
rows — and fold 1, with nothing before it, is naive. The ensemble's metrics come from those fold-wise
combinations, so choosing members never sees the rows that score it. The ensemble that is stored (to predict
with) uses the same rule on all folds, i.e. what it would have chosen for the next fold.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np

from predictions.ml.ensemble import Ensemble
from predictions.ml.evaluation import evaluation_from_out_of_sample, known_before, score_rows
from predictions.ml.registry import TrainOutput
from predictions.ml.significance import beats_naive

if TYPE_CHECKING:
    import pandas as pd


def ensemble_weights(
    base: np.ndarray,
    actual: np.ndarray,
    predicted: Sequence[np.ndarray],
    algorithms: Sequence[str],
    horizon: int,
) -> np.ndarray:
    """Weights (summing to 1, or all 0 for naive) of the members that beat naive on these rows, by 1 / MAE."""
    weights = np.zeros(len(predicted))
    if len(actual) == 0:
        return weights
    for i, (member, algorithm) in enumerate(zip(predicted, algorithms, strict=True)):
        if algorithm == "naive":
            continue
        metrics = score_rows(base, member, actual, horizon)
        if beats_naive(metrics) and metrics["mae"] > 0:
            weights[i] = 1.0 / metrics["mae"]
    total = weights.sum()
    return weights / total if total > 0 else weights


def ensemble_out_of_sample(
    frames: Sequence[pd.DataFrame], algorithms: Sequence[str], horizon: int
) -> tuple[pd.DataFrame, list[dict[str, float]]]:
    """The ensemble's out-of-sample rows (fold k combined with weights chosen on the rows of folds < k whose
    outcome is known when fold k starts) and, per fold, the weights it used."""
    first = frames[0]
    if any(not frame.index.equals(first.index) for frame in frames[1:]):
        raise ValueError("ensemble members must be evaluated on the same rows")
    fold_ids = first["fold"].to_numpy()
    base = first["base"].to_numpy(dtype="float64")
    actual = first["actual"].to_numpy(dtype="float64")
    members = [frame["predicted"].to_numpy(dtype="float64") for frame in frames]
    combined = np.zeros(len(first))
    used: list[dict[str, float]] = []
    for number in np.unique(fold_ids):
        earlier, current = known_before(fold_ids, number, horizon), fold_ids == number
        weights = ensemble_weights(
            base[earlier], actual[earlier], [m[earlier] for m in members], algorithms, horizon
        )
        for weight, member in zip(weights, members, strict=True):
            if weight > 0:
                combined[current] += weight * member[current]
        used.append({a: float(w) for a, w in zip(algorithms, weights, strict=True) if w > 0})
    out_of_sample = first.copy()
    out_of_sample["predicted"] = combined
    return out_of_sample, used


def ensemble_train(outputs: Sequence[TrainOutput]) -> TrainOutput:
    """An Ensemble TrainOutput from fitted members of one run; naive (and saying so) when none beats naive."""
    import pandas as pd

    if not outputs:
        raise ValueError("an ensemble needs at least one trained member")
    first = outputs[0]
    frames = [o.evaluation.out_of_sample for o in outputs]
    if any(frame is None for frame in frames):
        raise ValueError("members need their out-of-sample rows")
    algorithms = [o.algorithm for o in outputs]
    out_of_sample, used = ensemble_out_of_sample(frames, algorithms, first.horizon)
    ensemble = Ensemble.from_candidates([(o.forecaster, o.evaluation) for o in outputs])
    evaluation = evaluation_from_out_of_sample(
        "ensemble",
        out_of_sample,
        horizon=first.horizon,
        folds=first.evaluation.metrics["folds"],
        candles=pd.DataFrame(index=pd.DatetimeIndex([first.data_start, first.data_end])),
        fold_details=[{"weights": weights} for weights in used],
    )
    candidates = [{"algorithm": o.algorithm, "hyperparameters": o.hyperparameters} for o in outputs]
    return TrainOutput(
        algorithm="ensemble",
        horizon=first.horizon,
        forecaster=ensemble,
        evaluation=evaluation,
        feature_columns=first.feature_columns,
        hyperparameters={**ensemble.hyperparameters(), "candidates": candidates},
        n_samples=first.n_samples,
        data_start=first.data_start,
        data_end=first.data_end,
    )
