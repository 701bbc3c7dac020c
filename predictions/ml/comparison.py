"""Like with like: the walk-forward of a stored version's configuration on the same candles (hence the same folds
and rows) as a new version, so that promotion compares errors on identical rows rather than rupee MAEs from
different windows (a stock that doubled doubles its MAE). Pure computation, no ORM."""

from __future__ import annotations

import json
from collections.abc import Mapping, MutableMapping
from typing import TYPE_CHECKING, Any

from predictions.ml.ensemble_evaluation import ensemble_out_of_sample
from predictions.ml.evaluation import MIN_FOLDS, Evaluation, evaluation_from_out_of_sample, walk_forward

if TYPE_CHECKING:
    import pandas as pd

Known = MutableMapping[tuple[str, str], Evaluation]


def config_key(algorithm: str, hyperparameters: Mapping[str, Any]) -> tuple[str, str]:
    """What identifies a configuration: the algorithm and its hyperparameters (an ensemble's candidates)."""
    if algorithm == "ensemble":
        hyperparameters = {"candidates": _candidates(hyperparameters)}
    return algorithm, json.dumps(hyperparameters, sort_keys=True, default=str)


def _candidates(hyperparameters: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The models an ensemble chose from; versions stored before candidates were recorded: their members."""
    listed = hyperparameters.get("candidates") or hyperparameters.get("members") or []
    return [{"algorithm": c["algorithm"], "hyperparameters": c.get("hyperparameters", {})} for c in listed]


def evaluate_config(
    algorithm: str,
    hyperparameters: Mapping[str, Any],
    candles: pd.DataFrame,
    *,
    horizon: int,
    folds: int = MIN_FOLDS,
    known: Known | None = None,
) -> Evaluation:
    """The walk-forward evaluation of this configuration on `candles`, reusing `known` evaluations (same candles)
    of identical configurations. An ensemble is re-run from its candidates with the same earlier-folds rule;
    one with no candidates is naive."""
    known = {} if known is None else known
    key = config_key(algorithm, hyperparameters)
    if key in known:
        return known[key]
    if algorithm == "ensemble":
        candidates = _candidates(hyperparameters) or [{"algorithm": "naive", "hyperparameters": {}}]
        members = [
            evaluate_config(
                c["algorithm"], c["hyperparameters"], candles, horizon=horizon, folds=folds, known=known
            )
            for c in candidates
        ]
        out_of_sample, used = ensemble_out_of_sample(
            [m.out_of_sample for m in members], [c["algorithm"] for c in candidates], horizon
        )
        evaluation = evaluation_from_out_of_sample(
            "ensemble",
            out_of_sample,
            horizon=horizon,
            folds=folds,
            candles=candles,
            fold_details=[{"weights": weights} for weights in used],
        )
    else:
        evaluation = walk_forward(
            candles, algorithm, horizon=horizon, folds=folds, params=dict(hyperparameters)
        )
    known[key] = evaluation
    return evaluation
