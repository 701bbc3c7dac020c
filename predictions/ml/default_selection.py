"""The default model's skill after it was chosen: selection on earlier folds, scored on later ones.

`selectors.model_default` picks, among the active models, the one that beats naive with the lowest MAE/naive on
its walk-forward. Reporting that model's walk-forward figures as its expected skill would score the choice on the
rows that made it: with several candidates, the best of them on those rows looks better than it is (the winner's
curse), and one of several passing a p < 0.10 test is no longer p < 0.10. So the figures reported for the default
are those of the choosing rule itself, replayed walk-forward: for test fold k the rule picks from the rows whose
outcome is known when fold k starts (folds < k, purged by the horizon, as the ensemble chooses its members), and
fold k scores that pick (naive when nothing beat naive on those rows). Fold 1, with nothing to choose on, is left
out. Pure computation, no ORM.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import numpy as np

from predictions.ml.evaluation import known_before, score_rows
from predictions.ml.significance import beats_naive

if TYPE_CHECKING:
    import pandas as pd


def default_pick(
    base: np.ndarray, actual: np.ndarray, predicted: Mapping[Any, np.ndarray], horizon: int
) -> Any | None:
    """model_default's rule on these rows: of the candidates that beat naive (MAE/naive < 1 and Diebold-Mariano
    p < 0.10), the one with the lowest MAE/naive; None (naive) when none does."""
    best, best_ratio = None, None
    if len(actual) == 0:
        return None
    for label, values in predicted.items():
        metrics = score_rows(base, values, actual, horizon)
        if beats_naive(metrics) and (best_ratio is None or metrics["mae_vs_naive"] < best_ratio):
            best, best_ratio = label, metrics["mae_vs_naive"]
    return best


def default_selection_metrics(frames: Mapping[Any, pd.DataFrame], horizon: int) -> dict[str, Any]:
    """The choosing rule's out-of-sample figures over folds 2..k: mae_vs_naive, dm_stat, dm_p_value (all rows,
    naive where it picked nothing), directional_accuracy (the rows where it picked a model, which call a
    direction; None if it never did), n_samples, and `picks`: per fold, the candidate it chose (None: naive).

    `frames` are the candidates' walk-forward out-of-sample rows, on identical rows (same candles and folds)."""
    labels = list(frames)
    if not labels:
        raise ValueError("the default is chosen among at least one candidate")
    first = frames[labels[0]]
    if any(not frames[label].index.equals(first.index) for label in labels[1:]):
        raise ValueError("candidates must be evaluated on the same rows")
    fold_ids = first["fold"].to_numpy()
    base = first["base"].to_numpy(dtype="float64")
    actual = first["actual"].to_numpy(dtype="float64")
    predicted = {label: frames[label]["predicted"].to_numpy(dtype="float64") for label in labels}
    chosen = np.zeros(len(first))
    scored = np.zeros(len(first), dtype=bool)
    called = np.zeros(len(first), dtype=bool)
    picks: list[Any | None] = []
    for number in np.unique(fold_ids)[1:]:
        known, current = known_before(fold_ids, number, horizon), fold_ids == number
        pick = default_pick(base[known], actual[known], {k: v[known] for k, v in predicted.items()}, horizon)
        picks.append(pick)
        scored |= current
        if pick is not None:
            chosen[current] = predicted[pick][current]
            called |= current
    metrics = score_rows(base[scored], chosen[scored], actual[scored], horizon)
    directional = (
        score_rows(base[called], chosen[called], actual[called], horizon)["directional_accuracy"]
        if called.any()
        else None
    )
    return {
        "mae_vs_naive": metrics["mae_vs_naive"],
        "dm_stat": metrics["dm_stat"],
        "dm_p_value": metrics["dm_p_value"],
        "directional_accuracy": directional,
        "n_samples": int(scored.sum()),
        "picks": picks,
    }
