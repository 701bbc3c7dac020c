"""The ensemble as a model of its own: members from one training run (same candles, same folds), combined with
weights 1/MAE among those that beat naive, and scored out of sample by combining the members' walk-forward
predictions row by row. The weights are chosen on those same out-of-sample rows, so the ensemble's figures are
slightly optimistic; members are few and weights smooth, which keeps that small."""

from __future__ import annotations

from collections.abc import Sequence

import pandas as pd

from predictions.ml.ensemble import Ensemble
from predictions.ml.evaluation import evaluation_from_out_of_sample
from predictions.ml.registry import TrainOutput


def ensemble_train(outputs: Sequence[TrainOutput]) -> TrainOutput:
    """An Ensemble TrainOutput from fitted members of one run; naive (and saying so) when none beats naive."""
    if not outputs:
        raise ValueError("an ensemble needs at least one trained member")
    first = outputs[0]
    ensemble = Ensemble.from_candidates([(o.forecaster, o.evaluation) for o in outputs])
    frames = [o.evaluation.out_of_sample for o in outputs]
    if any(frame is None for frame in frames):
        raise ValueError("members need their out-of-sample rows")
    base = frames[0]
    if any(not frame.index.equals(base.index) for frame in frames[1:]):
        raise ValueError("ensemble members must be evaluated on the same rows")
    weights = {id(member): weight for member, weight in ensemble.members}
    predicted = pd.Series(0.0, index=base.index)
    for output, frame in zip(outputs, frames, strict=True):
        predicted += weights.get(id(output.forecaster), 0.0) * frame["predicted"]
    out_of_sample = base.assign(predicted=predicted)
    evaluation = evaluation_from_out_of_sample(
        "ensemble",
        out_of_sample,
        horizon=first.horizon,
        folds=first.evaluation.metrics["folds"],
        fold_metrics=[],
        candles=pd.DataFrame(index=pd.DatetimeIndex([first.data_start, first.data_end])),
    )
    return TrainOutput(
        algorithm="ensemble",
        horizon=first.horizon,
        forecaster=ensemble,
        evaluation=evaluation,
        feature_columns=first.feature_columns,
        hyperparameters=ensemble.hyperparameters(),
        n_samples=first.n_samples,
        data_start=first.data_start,
        data_end=first.data_end,
    )
