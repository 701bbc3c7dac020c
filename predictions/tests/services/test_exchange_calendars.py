"""Predictions on the instrument's own exchange calendar, scored against final bars only."""

from datetime import UTC, datetime, timedelta

import pytest
import time_machine

from market.models import MarketData
from market.services import candles_sync, candles_upsert
from market.sources import get_provider
from market.tests.factories import InstrumentFactory, make_candles
from market.timeframes import Timeframe
from predictions.models import Prediction
from predictions.services import models_train, prediction_generate, predictions_score, training_candles

pytestmark = pytest.mark.django_db

NEW_YEAR_2019 = datetime(2019, 1, 1, 12, 0, tzinfo=UTC)  # NYSE closed (New Year's Day); NSE open
LAST_2018_BAR = datetime(2018, 12, 31, 5, 0, tzinfo=UTC)  # ^GSPC's daily bar: midnight in New York
FIRST_2019_BAR = datetime(2019, 1, 2, 5, 0, tzinfo=UTC)


def _prediction(symbol: str, timeframe: str, target_time: datetime, predicted: float = 100.0) -> Prediction:
    return Prediction.objects.create(
        symbol=symbol,
        timeframe=timeframe,
        horizon=1,
        time_horizon=f"{timeframe} x 1",
        model_used="svr",
        model_version="svr v1",
        predicted_price=predicted,
        lower_bound=predicted - 5,
        upper_bound=predicted + 5,
        base_price=predicted,
        base_timestamp=target_time - timedelta(days=1),
        target_time=target_time,
    )


@pytest.fixture
def gspc_csv(tmp_path, settings, monkeypatch):
    """^GSPC in the catalogue on NYSE, its daily bars read from a CSV file of the given rows (the csv provider,
    built afresh for this directory); returns a function writing those rows."""
    InstrumentFactory(symbol="^GSPC", exchange="NYSE", currency="USD", kind="index")
    settings.MARKET_DATA_CSV_DIR = tmp_path
    monkeypatch.setattr("market.sources._providers", {})

    def write(*rows: str) -> None:
        (tmp_path / "^GSPC_1D.csv").write_text(
            "Date,Open,High,Low,Close,Volume\n" + "".join(f"{r}\n" for r in rows)
        )

    return write


def test_gspc_prediction_targets_the_next_nyse_session():
    InstrumentFactory(symbol="^GSPC", exchange="NYSE", currency="USD", kind="index")
    with time_machine.travel(NEW_YEAR_2019, tick=False):
        candles_sync(symbol="^GSPC", timeframe=Timeframe.D1, days=900, provider=get_provider("synthetic"))
        assert MarketData.objects.filter(symbol="^GSPC").latest("timestamp").timestamp == LAST_2018_BAR
        models_train(symbol="^GSPC", timeframe=Timeframe.D1, algorithms=["svr"])
        prediction = prediction_generate(symbol="^GSPC", timeframe=Timeframe.D1, model="svr")
    assert prediction.base_timestamp == LAST_2018_BAR
    # 2019-01-02 in New York, skipping New Year's Day; NSE's clock would give 2018-12-31 18:30 UTC.
    assert prediction.target_time == FIRST_2019_BAR


def test_gspc_csv_history_is_scored_on_the_nyse_close(gspc_csv):
    gspc_csv("2018-12-31,2498.9,2509.2,2482.8,2506.9,0", "2019-01-02,2476.9,2519.5,2467.5,2510.0,0")
    prediction = _prediction("^GSPC", "1D", FIRST_2019_BAR, predicted=2500.0)
    # 15:30 in New York on 2019-01-02: the bar is stored but not final, so not scored.
    with time_machine.travel(datetime(2019, 1, 2, 20, 30, tzinfo=UTC), tick=False):
        candles_sync(symbol="^GSPC", timeframe=Timeframe.D1, days=10, provider=get_provider("csv"))
        assert predictions_score() == 0
    with time_machine.travel(datetime(2019, 1, 2, 21, 5, tzinfo=UTC), tick=False):
        candles_sync(symbol="^GSPC", timeframe=Timeframe.D1, days=10, provider=get_provider("csv"))
        assert predictions_score() == 1
    prediction.refresh_from_db()
    assert prediction.realized_price == 2510.0
    assert prediction.error == pytest.approx(-10.0)


# NSE 1H bars of Wednesday 2026-06-03: 09:15 ... 15:15 IST.
HOURLY = make_candles(7, start=datetime(2026, 6, 3, 3, 45, tzinfo=UTC), step=timedelta(hours=1))
LAST_HOUR = HOURLY.index[-1].to_pydatetime()


def _half_way(candles):
    forming = candles.copy()
    forming.iloc[-1, forming.columns.get_loc("close")] = forming["open"].iloc[-1]
    forming.iloc[-1, forming.columns.get_loc("high")] = forming[["open", "high"]].iloc[-1].max()
    return forming


def test_half_way_bar_is_not_scored_and_completing_it_scores_the_prediction(
    django_capture_on_commit_callbacks,
):
    prediction = _prediction("TCS.NS", "1H", LAST_HOUR)
    with time_machine.travel(datetime(2026, 6, 3, 9, 55, tzinfo=UTC), tick=False):  # 15:25 IST
        with django_capture_on_commit_callbacks(execute=True):
            candles_upsert(symbol="TCS.NS", timeframe=Timeframe.H1, candles=_half_way(HOURLY), source="frame")
        prediction.refresh_from_db()
        assert prediction.realized_price is None  # the re-score found no final bar
    with time_machine.travel(
        datetime(2026, 6, 3, 10, 1, tzinfo=UTC), tick=False
    ):  # closed, not fetched again
        assert predictions_score() == 0  # the stored bar is partial: never scored against it
    with (
        time_machine.travel(datetime(2026, 6, 3, 10, 5, tzinfo=UTC), tick=False),  # the 15:35 IST sync
        django_capture_on_commit_callbacks(execute=True),
    ):
        candles_upsert(symbol="TCS.NS", timeframe=Timeframe.H1, candles=HOURLY, source="frame")
    prediction.refresh_from_db()
    assert prediction.realized_price == pytest.approx(HOURLY["close"].iloc[-1])
    assert prediction.error == pytest.approx(100.0 - HOURLY["close"].iloc[-1])


def test_a_prediction_scored_against_a_partial_bar_is_rescored_when_it_completes(
    django_capture_on_commit_callbacks,
):
    prediction = _prediction("TCS.NS", "1H", LAST_HOUR)
    forming = _half_way(HOURLY)
    with time_machine.travel(datetime(2026, 6, 3, 9, 55, tzinfo=UTC), tick=False):
        candles_upsert(symbol="TCS.NS", timeframe=Timeframe.H1, candles=forming, source="frame")
    # As the code before final bars did: scored with the partial close.
    Prediction.objects.filter(pk=prediction.pk).update(
        realized_price=forming["close"].iloc[-1], realized_at=LAST_HOUR, error=0.0
    )
    with (
        time_machine.travel(datetime(2026, 6, 3, 10, 5, tzinfo=UTC), tick=False),
        django_capture_on_commit_callbacks(execute=True),
    ):
        candles_upsert(symbol="TCS.NS", timeframe=Timeframe.H1, candles=HOURLY, source="frame")
    prediction.refresh_from_db()
    assert prediction.realized_price == pytest.approx(HOURLY["close"].iloc[-1])


def test_training_leaves_out_the_partial_bar():
    with time_machine.travel(datetime(2026, 6, 3, 9, 55, tzinfo=UTC), tick=False):
        candles_upsert(symbol="TCS.NS", timeframe=Timeframe.H1, candles=_half_way(HOURLY), source="frame")
    # Later, with the bar closed but never fetched complete: still partial, still left out.
    with time_machine.travel(datetime(2026, 6, 3, 12, 0, tzinfo=UTC), tick=False):
        candles = training_candles(symbol="TCS.NS", timeframe=Timeframe.H1, ensure=False)
    assert candles.index[-1] == HOURLY.index[-2]


def test_realized_at_is_when_the_target_bar_closed_not_when_it_opened(django_capture_on_commit_callbacks):
    # The 15:15 IST hourly bar is cut short by the 15:30 close: its price is realized then, not at 15:15.
    hourly = _prediction("TCS.NS", "1H", LAST_HOUR)
    with (
        time_machine.travel(datetime(2026, 6, 3, 10, 5, tzinfo=UTC), tick=False),
        django_capture_on_commit_callbacks(execute=True),
    ):
        candles_upsert(symbol="TCS.NS", timeframe=Timeframe.H1, candles=HOURLY, source="frame")
        predictions_score()
    hourly.refresh_from_db()
    assert hourly.realized_price is not None
    assert hourly.realized_at == datetime(2026, 6, 3, 10, 0, tzinfo=UTC)  # 15:30 IST


def test_a_daily_prediction_is_realized_at_its_exchanges_session_close(gspc_csv):
    gspc_csv("2019-01-02,2476.9,2519.5,2467.5,2510.0,0")
    prediction = _prediction("^GSPC", "1D", FIRST_2019_BAR, predicted=2500.0)
    with time_machine.travel(datetime(2019, 1, 3, 1, 0, tzinfo=UTC), tick=False):
        candles_sync(symbol="^GSPC", timeframe=Timeframe.D1, days=10, provider=get_provider("csv"))
        assert predictions_score() == 1
    prediction.refresh_from_db()
    # 16:00 in New York on 2 January, not the bar's open at midnight (before anything traded).
    assert prediction.realized_at == datetime(2019, 1, 2, 21, 0, tzinfo=UTC)
