"""Weighted average of fitted models that beat the naive baseline out of sample (more than by luck); naive when
none does."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Self

import numpy as np

from predictions.ml.algorithms import forecaster_class
from predictions.ml.base import Forecaster, dump_bundle, load_bundle
from predictions.ml.evaluation import Evaluation
from predictions.ml.significance import beats_naive

if TYPE_CHECKING:
    import pandas as pd


class Ensemble(Forecaster):
    """Members are (fitted forecaster, weight) with weights summing to 1; with no members it predicts no change.

    Its lookback is the longest of its members', and it returns one value per row with a full window for that
    member (the Forecaster contract), averaging each member's prediction for the same row.
    """

    algorithm = "ensemble"

    def __init__(self, members: Sequence[tuple[Forecaster, float]] = ()) -> None:
        super().__init__()
        total = float(sum(weight for _, weight in members))
        if members and (total <= 0 or any(weight < 0 for _, weight in members)):
            raise ValueError("ensemble weights must be non-negative with a positive sum")
        self.members: list[tuple[Forecaster, float]] = [(m, float(w) / total) for m, w in members]
        self.lookback = max((m.lookback for m, _ in self.members), default=1)

    @classmethod
    def from_candidates(cls, candidates: Sequence[tuple[Forecaster, Evaluation]]) -> Ensemble:
        """Keep the candidates that beat naive on their walk-forward (MAE/naive < 1 and Diebold–Mariano
        p < 0.10, see significance.beats_naive), weighted by 1 / MAE.

        Candidates must have been evaluated on the same candles and horizon, or their MAEs do not compare.
        """
        if len({(e.horizon, e.data_start, e.data_end) for _, e in candidates}) > 1:
            raise ValueError("ensemble candidates must be evaluated on the same data and horizon")
        chosen = [
            (forecaster, 1.0 / evaluation.metrics["mae"])
            for forecaster, evaluation in candidates
            if forecaster.algorithm != "naive"
            and beats_naive(evaluation.metrics)
            and evaluation.metrics["mae"] > 0
        ]
        return cls(chosen)

    @property
    def is_naive(self) -> bool:
        return not self.members

    @property
    def description(self) -> str:
        if self.is_naive:
            return "naive fallback: no model beat the naive baseline out of sample"
        parts = ", ".join(f"{m.algorithm} {w:.0%}" for m, w in self.members)
        return f"weighted ensemble ({parts}), weights proportional to 1 / walk-forward MAE among models that beat naive"

    def fit(self, X: pd.DataFrame, y: pd.Series) -> Self:
        """Refit every member on new data, keeping the weights chosen out of sample."""
        self._check_training_data(X, y)
        for member, _ in self.members:
            member.fit(X, y)
        return self

    def predict_returns(self, X: pd.DataFrame) -> np.ndarray:
        count = len(X) - self.lookback + 1
        if count < 1:
            raise ValueError(f"ensemble needs at least {self.lookback} rows to predict, got {len(X)}")
        combined = np.zeros(count, dtype="float64")
        for member, weight in self.members:
            combined += weight * member.predict_returns(X)[-count:]
        return combined

    def hyperparameters(self) -> dict[str, Any]:
        return {
            "members": [
                {"algorithm": m.algorithm, "weight": w, "hyperparameters": m.hyperparameters()}
                for m, w in self.members
            ]
        }

    def to_bytes(self) -> bytes:
        return dump_bundle(
            {
                "algorithm": self.algorithm,
                "members": [(m.algorithm, m.to_bytes(), w) for m, w in self.members],
            }
        )

    @classmethod
    def from_bytes(cls, data: bytes) -> Self:
        bundle = load_bundle(data, cls.algorithm)
        return cls([(forecaster_class(name).from_bytes(blob), w) for name, blob, w in bundle["members"]])
