"""Walk-forward folds are ordered, disjoint and purged; metrics are out of sample and compared with naive."""

from __future__ import annotations

import itertools
import json

import numpy as np
import pytest

from predictions.features import build_dataset, compute_features, warmup_bars
from predictions.ml import registry
from predictions.ml.evaluation import InsufficientHistory, folds, walk_forward
from predictions.tests.ml.synthetic import make_candles


@pytest.mark.parametrize(
    ("n", "k", "min_train", "gap"),
    [(100, 5, 50, 1), (1000, 5, 500, 30), (237, 7, 100, 3), (60, 5, 50, 0), (500, 10, 120, 5)],
)
def test_folds_are_time_ordered_disjoint_expanding_and_purged(n, k, min_train, gap):
    result = list(folds(n, k, min_train, gap))
    assert [f.number for f in result] == list(range(1, k + 1))
    assert result[0].train_stop == min_train
    assert result[0].test_start == min_train + gap
    assert result[-1].test_stop == n
    for fold in result:
        assert fold.test_start < fold.test_stop
        assert fold.train_stop == fold.test_start - gap  # exactly `gap` rows between training and testing
        assert fold.train == slice(0, fold.train_stop)
    for earlier, later in itertools.pairwise(result):
        assert earlier.test_stop == later.test_start  # contiguous, hence disjoint and ordered
        assert later.train_stop > earlier.train_stop  # expanding window
    tested = np.concatenate([np.arange(n)[f.test] for f in result])
    assert len(tested) == len(set(tested)) == n - min_train - gap


def test_folds_refuse_impossible_splits():
    with pytest.raises(InsufficientHistory):
        list(folds(54, 5, 50, 1))
    with pytest.raises(ValueError):
        list(folds(100, 0, 50, 1))


@pytest.fixture(scope="module")
def naive_evaluation(candles):
    return walk_forward(candles, "naive", horizon=3)


def test_naive_evaluation_is_its_own_baseline(naive_evaluation):
    metrics = naive_evaluation.metrics
    assert metrics["mae"] == pytest.approx(metrics["naive_mae"])
    assert metrics["mae_vs_naive"] == pytest.approx(1.0)
    # Naive never calls a direction, so it has no directional accuracy (not 0.0), and no edge to test.
    assert metrics["directional_accuracy"] is None
    assert metrics["dm_stat"] is None and metrics["dm_p_value"] is None
    assert metrics["folds"] == 5 and metrics["horizon"] == 3
    assert (
        naive_evaluation.n_samples
        == metrics["n_samples"]
        == sum(f["n_samples"] for f in naive_evaluation.fold_metrics)
    )


def test_evaluation_is_json_serialisable_and_dated(naive_evaluation, candles):
    data = json.loads(json.dumps(naive_evaluation.to_dict()))
    assert data["data_start"] == candles.index[0].isoformat()
    assert data["data_end"] == candles.index[-1].isoformat()
    assert set(data["residual_quantiles"]) == {"q10", "q90", "scaled_q10", "scaled_q90"}
    assert data["residual_quantiles"]["q10"] < 0 < data["residual_quantiles"]["q90"]


@pytest.mark.parametrize("algorithm", ["naive", "random_forest", "lstm"])
def test_no_training_target_reaches_into_its_test_fold(trained, candles, algorithm):
    evaluation = trained[algorithm].evaluation
    horizon = evaluation.horizon
    position = {ts.isoformat(): i for i, ts in enumerate(candles.index)}
    for fold in evaluation.fold_metrics:
        last_train = position[fold["train_end"]]
        first_test = position[fold["test_start"]]
        # The last training target looks `horizon` bars ahead; that close must come before the test starts.
        assert last_train + horizon < first_test
        assert first_test - last_train == horizon + 1


def test_test_folds_cover_the_tail_without_overlap(trained, candles):
    evaluation = trained["svr"].evaluation
    X, _ = build_dataset(candles, evaluation.horizon)
    starts = [fold["test_start"] for fold in evaluation.fold_metrics]
    ends = [fold["test_end"] for fold in evaluation.fold_metrics]
    assert starts == sorted(starts) and all(e < s for e, s in zip(ends, starts[1:], strict=False))
    assert ends[-1] == X.index[-1].isoformat()


def test_walk_forward_needs_five_folds_and_enough_history(candles):
    with pytest.raises(ValueError, match="at least 5 folds"):
        walk_forward(candles, "naive", folds=3)
    with pytest.raises(InsufficientHistory):
        walk_forward(candles.iloc[: warmup_bars() + 120], "naive")
    with pytest.raises(ValueError, match="unknown algorithm"):
        walk_forward(candles, "xgboost")


@pytest.mark.parametrize(("algorithm", "params"), [("naive", None), ("random_forest", {"n_estimators": 30})])
def test_80_percent_interval_from_walk_forward_residuals_covers_later_outcomes(algorithm, params):
    candles = make_candles(3000, seed=21, phi=0.1)
    first, later_start = candles.iloc[:1500], 1500
    output = registry.train(algorithm, first, horizon=1, params=params)
    q = output.evaluation.residual_quantiles

    features = compute_features(candles)
    close = candles["close"]
    rows = features.index[features.index >= candles.index[later_start]][:-1]  # the last row has no outcome
    predicted = output.forecaster.predict_returns(features.loc[rows])
    base = close.loc[rows].to_numpy()
    outcome = close.shift(-1).loc[rows].to_numpy()
    inside = (outcome >= base * np.exp(predicted + q["q10"])) & (
        outcome <= base * np.exp(predicted + q["q90"])
    )
    assert len(inside) > 1400
    assert 0.75 <= inside.mean() <= 0.85
    # The evaluation's own honest coverage (quantiles from earlier folds only) tells the same story.
    assert 0.75 <= output.evaluation.metrics["coverage_80"] <= 0.85
