"""Which model is used and promoted: like with like on the same rows, and never a default worse than naive."""

import pytest

from market.timeframes import Timeframe
from predictions.ml import registry
from predictions.models import TrainedModel
from predictions.selectors import model_default
from predictions.services import _store_version, model_activate, model_promote_if_better
from predictions.tests.factories import TrainedModelFactory, record_default_choice
from predictions.tests.ml.synthetic import make_candles

pytestmark = pytest.mark.django_db


def _row(algorithm: str, *, active: bool = True, **metrics) -> TrainedModel:
    """A stored version with given walk-forward metrics (its artifact is never loaded here)."""
    return TrainedModelFactory(algorithm=algorithm, metrics=metrics, is_active=active)


def test_default_is_the_best_active_model_that_beats_naive():
    _row("random_forest", mae_vs_naive=0.95, dm_p_value=0.01)
    best = _row("svr", mae_vs_naive=0.90, dm_p_value=0.04)
    _row("ensemble", mae_vs_naive=0.80, dm_p_value=0.30)  # lower, but could be luck
    _row("lstm", active=False, mae_vs_naive=0.50, dm_p_value=0.001)  # not active
    choice = record_default_choice()
    default = model_default(symbol="TCS.NS", timeframe=Timeframe.D1, horizon=1)
    assert default == best
    assert default.default_selection == choice  # the figures to report: the choice's, not svr's own 0.90


def test_default_is_naive_when_choosing_it_did_not_beat_naive_on_the_folds_that_did_not_choose():
    # Each beats naive on its own walk-forward, but the best of two on the rows that chose it is the winner's
    # curse: chosen on earlier folds and scored on later ones, the choice did not beat naive.
    _row("random_forest", mae_vs_naive=0.95, dm_p_value=0.01)
    _row("svr", mae_vs_naive=0.90, dm_p_value=0.04)
    record_default_choice(beats=False)
    assert model_default(symbol="TCS.NS", timeframe=Timeframe.D1, horizon=1) is None


def test_default_is_naive_without_a_record_of_choosing_among_the_active_versions():
    svr = _row("svr", mae_vs_naive=0.90, dm_p_value=0.04)  # stored before choices were scored
    assert model_default(symbol="TCS.NS", timeframe=Timeframe.D1, horizon=1) is None
    record_default_choice()
    assert model_default(symbol="TCS.NS", timeframe=Timeframe.D1, horizon=1) == svr
    # Staff activate another version by hand: the record was of a choice among other versions.
    _row("random_forest", mae_vs_naive=0.97, dm_p_value=0.05)
    assert model_default(symbol="TCS.NS", timeframe=Timeframe.D1, horizon=1) is None


def test_default_is_naive_when_no_active_model_beats_naive():
    _row("svr", mae_vs_naive=1.02, dm_p_value=0.01)  # significantly worse
    _row("ensemble", mae_vs_naive=1.0)  # fell back to naive
    _row("random_forest", mae_vs_naive=0.97)  # stored before the Diebold-Mariano test: not proven
    assert model_default(symbol="TCS.NS", timeframe=Timeframe.D1, horizon=1) is None
    assert model_default(symbol="TCS.NS", timeframe=Timeframe.D1, horizon=5) is None


def _version(candles, params):
    output = registry.train("svr", candles, horizon=1, params=params)
    return _store_version(symbol="TCS.NS", timeframe=Timeframe.D1, horizon=1, output=output)


def test_promotion_compares_versions_on_the_same_rows_of_a_trending_series():
    # Prices rise about fourfold: a version evaluated on the later, higher-priced window has a larger rupee MAE
    # even when it is the better model. Only errors on identical rows say which is better.
    candles = make_candles(700, seed=4, phi=0.35, sigma=0.01, drift=0.002)
    earlier, later = candles.iloc[:450], candles.iloc[100:]
    flat = {"C": 1e-4}  # so little capacity it predicts the mean return: misses the autocorrelation
    old = _version(earlier, flat)
    model_activate(trained=old)

    better = _version(later, {})
    assert better.metrics["mae"] > old.metrics["mae"]  # in rupees, from a later window
    assert model_promote_if_better(trained=better, candles=later) is True
    assert TrainedModel.objects.get(is_active=True) == better

    worse = _version(later, flat)
    assert model_promote_if_better(trained=worse, candles=later) is False
    assert TrainedModel.objects.get(is_active=True) == better


def test_an_active_version_this_code_cannot_rerun_does_not_block_promotion():
    candles = make_candles(450, seed=2)
    stale = _version(candles, {})
    TrainedModel.objects.filter(pk=stale.pk).update(
        hyperparameters={"kernel_size": 3}
    )  # no longer an svr setting
    model_activate(trained=stale)
    new = _version(candles, {})
    assert model_promote_if_better(trained=new, candles=candles) is True
    assert TrainedModel.objects.get(is_active=True) == new
