"""ML numbers that mean what they say: an ensemble scored on rows it did not choose on, a "beats naive" that is more
than luck (Diebold–Mariano), and 80% intervals that hold in calm and in volatile markets."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from predictions.ml.ensemble_evaluation import ensemble_train
from predictions.ml.evaluation import evaluation_from_out_of_sample, folds, walk_forward
from predictions.ml.naive import NaiveForecaster
from predictions.ml.random_forest import RandomForestForecaster
from predictions.ml.registry import TrainOutput
from predictions.ml.significance import beats_naive, diebold_mariano
from predictions.ml.svr import SvrForecaster

# --- Diebold–Mariano


def test_diebold_mariano_finds_a_real_edge_significant():
    rng = np.random.default_rng(1)
    naive = rng.normal(0, 1.0, 400)
    model = 0.6 * naive + rng.normal(0, 0.2, 400)  # clearly smaller errors, on the same rows
    result = diebold_mariano(model, naive, horizon=1)
    assert result.stat < -5 and result.p_value < 0.001


def test_diebold_mariano_does_not_call_noise_an_edge():
    rng = np.random.default_rng(2)
    naive = rng.normal(0, 1.0, 400)
    model = naive + rng.normal(0, 0.05, 400)  # the same errors, slightly shuffled
    result = diebold_mariano(model, naive, horizon=1)
    assert result.p_value > 0.10


def test_overlapping_horizon_errors_widen_the_test_newey_west():
    # h-bar forecasts made every bar share h-1 shocks: the loss differential is autocorrelated, and treating it
    # as independent (lag 0) would overstate the evidence.
    rng = np.random.default_rng(3)
    shocks = rng.normal(0, 1.0, 605)
    overlapping = np.convolve(shocks, np.ones(5), mode="valid")[:600]  # MA(4), like a 5-bar horizon
    naive = overlapping
    model = overlapping * 0.97 + rng.normal(0, 0.05, 600)
    as_if_one_bar = diebold_mariano(model, naive, horizon=1)
    honest = diebold_mariano(model, naive, horizon=5)
    assert honest.p_value > as_if_one_bar.p_value
    assert abs(honest.stat) < abs(as_if_one_bar.stat)


def test_identical_errors_have_no_test():
    errors = np.linspace(-1, 1, 50)
    result = diebold_mariano(errors, errors, horizon=3)
    assert result.stat is None and result.p_value is None


def test_beats_naive_needs_a_lower_mae_and_significance():
    assert beats_naive({"mae_vs_naive": 0.9, "dm_p_value": 0.05})
    assert not beats_naive({"mae_vs_naive": 0.9, "dm_p_value": 0.2})  # lower, but could be luck
    assert not beats_naive({"mae_vs_naive": 1.1, "dm_p_value": 0.01})  # significantly worse
    assert not beats_naive({"mae_vs_naive": 0.9})  # stored before the test existed
    assert not beats_naive({"mae_vs_naive": None, "dm_p_value": None})


# --- Ensemble scored out of sample for real


def _random_walk_outputs(seed: int, n: int = 300, horizon: int = 5) -> list[TrainOutput]:
    """Three members evaluated on the same walk-forward rows of a pure random walk: no member has any skill
    (momentum, reversal, naive), so any "edge" they show is luck."""
    rng = np.random.default_rng(seed)
    log_price = np.cumsum(rng.normal(0, 0.01, n + horizon + 10))
    index = pd.bdate_range("2020-01-01", periods=n, tz="UTC", name="timestamp")
    now = log_price[10 : 10 + n]
    actual = log_price[10 + horizon : 10 + horizon + n] - now
    past = now - log_price[5 : 5 + n]
    fold = np.zeros(n, dtype=int)
    for f in folds(n, 5, n // 2, horizon):
        fold[f.test] = f.number
    tested = fold > 0
    members = [
        (SvrForecaster(), 0.2 * past + rng.normal(0, 0.002, n)),
        (RandomForestForecaster(), -0.2 * past + rng.normal(0, 0.002, n)),
        (NaiveForecaster(), np.zeros(n)),
    ]
    outputs = []
    for forecaster, predicted in members:
        frame = pd.DataFrame(
            {"fold": fold, "base": 100 * np.exp(now), "predicted": predicted, "actual": actual},
            index=index,
        )[tested]
        evaluation = evaluation_from_out_of_sample(
            forecaster.algorithm, frame, horizon=horizon, folds=5, candles=pd.DataFrame(index=index)
        )
        outputs.append(_trained(forecaster, evaluation, horizon=horizon, index=index))
    return outputs


def _trained(forecaster, evaluation, *, horizon: int, index: pd.DatetimeIndex) -> TrainOutput:
    """What training would hand the ensemble: the member and its out-of-sample evaluation over `index`."""
    return TrainOutput(
        algorithm=forecaster.algorithm,
        horizon=horizon,
        forecaster=forecaster,
        evaluation=evaluation,
        feature_columns=[],
        hyperparameters={},
        n_samples=len(index),
        data_start=index[0].to_pydatetime(),
        data_end=index[-1].to_pydatetime(),
    )


def test_ensemble_on_a_random_walk_does_not_beat_naive_by_construction():
    ensemble_ratios, best_member_ratios = [], []
    for seed in range(24):
        outputs = _random_walk_outputs(seed)
        ensemble = ensemble_train(outputs)
        ensemble_ratios.append(ensemble.evaluation.metrics["mae_vs_naive"])
        best_member_ratios.append(min(o.evaluation.metrics["mae_vs_naive"] for o in outputs[:2]))
    ensemble_ratios = np.array(ensemble_ratios)
    # Choosing members on the rows that score them made the ratio <= 1 every time and < 1 most times; chosen on
    # earlier folds only, it is as often above 1 as below, and no better than the best member in hindsight.
    assert ensemble_ratios.mean() >= 0.998
    assert (ensemble_ratios < 1).mean() <= 0.25
    assert ensemble_ratios.mean() >= np.mean(best_member_ratios)


def test_ensemble_fold_one_is_naive_and_later_folds_use_only_earlier_rows():
    outputs = _random_walk_outputs(0)
    ensemble = ensemble_train(outputs)
    fold_metrics = ensemble.evaluation.fold_metrics
    assert fold_metrics[0]["weights"] == {}  # nothing before fold 1 to choose from
    assert fold_metrics[0]["mae_vs_naive"] == pytest.approx(1.0)
    assert [f["fold"] for f in fold_metrics] == [1, 2, 3, 4, 5]
    for fold in fold_metrics:
        assert {"test_start", "test_end", "n_samples", "mae", "naive_mae", "mae_vs_naive"} <= set(fold)
    # Naive everywhere: no direction is ever called, so there is no directional accuracy to show.
    if all(not f["weights"] for f in fold_metrics):
        assert ensemble.evaluation.metrics["directional_accuracy"] is None


def _two_folds(horizon: int, fold_rows: int = 40) -> tuple[pd.DataFrame, np.ndarray]:
    """Out-of-sample rows of two folds of `fold_rows` consecutive rows, and a mask of the fold-1 rows whose
    target (the return to row r + horizon) is realized only inside fold 2: the last horizon - 1 of fold 1."""
    rng = np.random.default_rng(3)
    n = 2 * fold_rows
    frame = pd.DataFrame(
        {
            "fold": np.repeat([1, 2], fold_rows),
            "base": np.full(n, 100.0),
            "actual": rng.normal(0, 0.01, n),
            "volatility": np.ones(n),
        },
        index=pd.bdate_range("2020-01-01", periods=n, tz="UTC", name="timestamp"),
    )
    rows = np.arange(n)
    leaked = (frame["fold"].to_numpy() == 1) & (rows + horizon > fold_rows)
    return frame, leaked


def test_ensemble_weights_for_a_fold_use_no_outcome_realized_inside_it():
    horizon = 5
    frame, leaked = _two_folds(horizon)
    actual = frame["actual"].to_numpy()
    # Half naive's error on every row whose outcome was known when fold 2 started, far worse on the 4 leaked ones.
    member = np.where(leaked, actual + 0.5, 0.5 * actual)
    outputs = []
    for forecaster, predicted in ((SvrForecaster(), member), (NaiveForecaster(), np.zeros(len(frame)))):
        rows = frame.assign(predicted=predicted)
        evaluation = evaluation_from_out_of_sample(
            forecaster.algorithm, rows, horizon=horizon, folds=2, candles=pd.DataFrame(index=frame.index)
        )
        outputs.append(_trained(forecaster, evaluation, horizon=horizon, index=frame.index))
    weights = [fold["weights"] for fold in ensemble_train(outputs).evaluation.fold_metrics]
    # Chosen on the rows known at fold 2's start the member beats naive; the leaked rows would have dropped it.
    assert weights == [{}, {"svr": 1.0}]


def test_interval_coverage_of_a_fold_uses_no_outcome_realized_inside_it():
    horizon = 5
    frame, leaked = _two_folds(horizon)
    fold_2 = frame["fold"].to_numpy() == 2
    # Residuals 0 on fold-1 rows known at fold 2's start, 1 on the 4 leaked ones, 0.05 on fold 2: the interval
    # from known rows is [0, 0] and covers nothing of fold 2; with the leaked rows its q90 is 0.1, covering all.
    residual = np.where(leaked, 1.0, np.where(fold_2, 0.05, 0.0))
    rows = frame.assign(predicted=frame["actual"] - residual)
    metrics = evaluation_from_out_of_sample(
        "naive", rows, horizon=horizon, folds=2, candles=pd.DataFrame(index=frame.index)
    ).metrics
    assert metrics["coverage_80"] == 0.0


# --- Locally adaptive conformal intervals


def _volatility_regimes(n: int = 2000, seed: int = 5, period: int = 400) -> pd.DataFrame:
    """A random walk whose volatility swings sixfold between calm and volatile regimes (0.5% to 3% a day)."""
    rng = np.random.default_rng(seed)
    sigma = 0.012 * np.exp(0.9 * np.sin(2 * np.pi * np.arange(n) / period))
    close = 100 * np.exp(np.cumsum(rng.normal(0, sigma)))
    open_ = np.concatenate([[100.0], close[:-1]])
    high = np.maximum(open_, close) * np.exp(np.abs(rng.normal(0, sigma / 2)))
    low = np.minimum(open_, close) * np.exp(-np.abs(rng.normal(0, sigma / 2)))
    index = pd.bdate_range("2010-01-01", periods=n, tz="UTC", name="timestamp")
    volume = rng.integers(100_000, 1_000_000, n)
    return pd.DataFrame(
        {"open": open_, "high": high, "low": low, "close": close, "volume": volume}, index=index
    )


def test_80_percent_interval_holds_in_calm_and_in_volatile_markets():
    metrics = walk_forward(_volatility_regimes(), "naive", horizon=1).metrics
    # One interval width for all rows covers calm rows ~100% and volatile ones far less; scaled by the
    # volatility known at prediction time it holds in both.
    assert 0.75 <= metrics["coverage_80"] <= 0.85
    assert 0.75 <= metrics["coverage_80_calm"] <= 0.85
    assert 0.75 <= metrics["coverage_80_volatile"] <= 0.85
