"""A task delivered again (acks_late: a worker lost after its work was stored) or retried does again only what
it has not done: a prediction is stored and announced once, a finished training is not repeated."""

from datetime import UTC, datetime, timedelta

import pytest
import time_machine

from market.providers.errors import ProviderUnavailable
from market.services import candles_sync
from market.sources import get_provider
from market.tests.factories import FrameProvider
from market.timeframes import Timeframe
from predictions.models import Prediction, TrainedModel
from predictions.tasks import generate_prediction, train_models
from tradingdash import events

pytestmark = pytest.mark.django_db
NOON = datetime(2026, 6, 4, 6, 30, tzinfo=UTC)


def test_a_prediction_task_delivered_twice_stores_and_announces_one_prediction(announcements):
    stored = announcements(events.PredictionStored)
    with time_machine.travel(NOON, tick=False):
        candles_sync(symbol="TCS.NS", timeframe=Timeframe.D1, days=900, provider=get_provider("synthetic"))
        first, again = (
            generate_prediction.apply(
                args=("TCS.NS", "1D"), kwargs={"model": "naive"}, task_id="task-1"
            ).get()
            for _ in range(2)
        )
        other = generate_prediction.apply(
            args=("TCS.NS", "1D"), kwargs={"model": "naive"}, task_id="task-2"
        ).get()
    assert first == again
    assert other["prediction_id"] != first["prediction_id"]  # another request is another prediction
    assert Prediction.objects.count() == 2
    assert [event.prediction_id for event in stored] == [first["prediction_id"], other["prediction_id"]]


class RecoveringProvider(FrameProvider):
    """Yahoo down for its first `failures` requests, then answering."""

    def __init__(self, frames, *, failures: int):
        super().__init__(frames)
        self.failures = failures

    def fetch_candles(self, symbol, timeframe, *, start=None, end=None):
        if self.failures:
            self.failures -= 1
            raise ProviderUnavailable("Yahoo Finance did not answer", retry_after=30)
        return super().fetch_candles(symbol, timeframe, start=start, end=end)


# Wednesday 2026-06-03 17:00 IST (the day's bar closed), then Monday 2026-06-08 17:00 IST, three sessions later.
STORED = datetime(2026, 6, 3, 11, 30, tzinfo=UTC)
LATER = datetime(2026, 6, 8, 11, 30, tzinfo=UTC)


def _daily_frames() -> dict:
    with time_machine.travel(LATER, tick=False):
        daily = get_provider("synthetic").fetch_candles(
            "TCS.NS", Timeframe.D1, start=LATER - timedelta(days=900), end=LATER
        )
    return {("TCS.NS", Timeframe.D1): daily}


def test_a_training_delivered_again_after_it_finished_trains_nothing_again():
    """acks_late: a worker lost after the training (and its prediction) finished gets the task again."""
    with time_machine.travel(NOON, tick=False):
        candles_sync(symbol="TCS.NS", timeframe=Timeframe.D1, days=900, provider=get_provider("synthetic"))
        first, again = (
            train_models.apply(
                args=("TCS.NS", "1D"),
                kwargs={"algorithms": ["svr"], "then_predict": "svr"},
                task_id="train-1",
            ).get()
            for _ in range(2)
        )
    assert first == again
    assert [(m.algorithm, m.version) for m in TrainedModel.objects.order_by("pk")] == [
        ("svr", 1),
        ("ensemble", 1),
    ]
    assert Prediction.objects.count() == 1


def test_a_prediction_retried_after_the_training_does_not_train_again(monkeypatch):
    """The training ends on stale candles (the provider is down): the prediction after it is refused and the task
    retried; the retry predicts once the provider answers, with the versions already trained."""
    provider = RecoveringProvider(_daily_frames(), failures=0)
    monkeypatch.setattr("market.services.get_provider", lambda name=None: provider)
    with time_machine.travel(STORED, tick=False):
        candles_sync(symbol="TCS.NS", timeframe=Timeframe.D1, days=900, provider=provider)
    provider.failures = 2  # the training's read and the first prediction's
    with time_machine.travel(LATER, tick=False):
        run = train_models.apply(  # not propagating: the eager run retries as a worker would
            args=("TCS.NS", "1D"),
            kwargs={"algorithms": ["svr"], "then_predict": "svr"},
            task_id="train-1",
            throw=False,
        )
    result = run.get()
    assert [(m.algorithm, m.version) for m in TrainedModel.objects.order_by("pk")] == [
        ("svr", 1),
        ("ensemble", 1),
    ]
    assert [(m["algorithm"], m["version"]) for m in result["models"]] == [("svr", 1), ("ensemble", 1)]
    prediction = Prediction.objects.get()
    assert prediction.pk == result["prediction_id"]
    assert prediction.base_timestamp == _daily_frames()[("TCS.NS", Timeframe.D1)].index[-1]
    assert prediction.target_time > LATER  # a forecast: from the latest closed bar
    assert provider.failures == 0


def test_a_prediction_task_on_stale_candles_is_retried_then_fails_saying_why(monkeypatch, user):
    from predictions.models import TaskRecord
    from predictions.selectors import task_status

    provider = RecoveringProvider(_daily_frames(), failures=0)
    monkeypatch.setattr("market.services.get_provider", lambda name=None: provider)
    with time_machine.travel(STORED, tick=False):
        candles_sync(symbol="TCS.NS", timeframe=Timeframe.D1, days=900, provider=provider)
    provider.failures = 1  # down for the first attempt only
    with time_machine.travel(LATER, tick=False):
        healed = generate_prediction.apply(
            args=("TCS.NS", "1D"), kwargs={"model": "naive"}, task_id="predict-1", throw=False
        ).get()
    assert datetime.fromisoformat(healed["prediction"]["target_time"]) > LATER

    provider.failures = 100  # down for good: the user reads why, not "the task failed"
    monkeypatch.setitem(
        generate_prediction.app.conf, "task_eager_propagates", False
    )  # retried as by a worker
    record = TaskRecord.objects.create(
        task_id="predict-2", name="predictions.generate_prediction", key="k", user=user
    )
    with time_machine.travel(LATER + timedelta(days=3), tick=False):
        generate_prediction.apply(
            args=("TCS.NS", "1D"), kwargs={"model": "naive"}, task_id="predict-2", throw=False
        )
        status = task_status(record=record)
    assert provider.failures == 100 - 4  # tried, and retried three times
    assert status["state"] == "FAILURE"
    assert status["error"].startswith("Market data is stale") and "2026-06-08 bar" in status["error"]
    assert Prediction.objects.count() == 1


class WorkerKilled(BaseException):
    """The worker process dying (out of memory, SIGKILL): nothing of the task's code runs after it."""


class KillingProvider(FrameProvider):
    """Every request kills the worker asking: the training dies mid-run on every delivery."""

    def fetch_candles(self, symbol, timeframe, *, start=None, end=None):
        self.calls.append((symbol, timeframe, start, end))
        raise WorkerKilled


def test_a_training_that_kills_its_worker_every_time_is_not_delivered_for_ever(monkeypatch, user):
    """acks_late with reject_on_worker_lost: a worker lost mid-training puts the message back at once. A training
    that kills its worker each time (an LSTM out of memory) was handed out, killed a worker and stored what it
    had finished, for ever. It starts three times at most, then fails saying why."""
    from predictions.models import TaskRecord
    from predictions.selectors import task_status

    provider = KillingProvider()
    monkeypatch.setattr("market.services.get_provider", lambda name=None: provider)
    monkeypatch.setitem(train_models.app.conf, "task_eager_propagates", False)
    record = TaskRecord.objects.create(task_id="train-oom", name=train_models.name, key="k", user=user)
    with time_machine.travel(NOON, tick=False):
        for _ in range(3):  # the first delivery and two after a lost worker
            with pytest.raises(WorkerKilled):
                train_models.apply(args=("TCS.NS", "1D"), kwargs={"algorithms": ["svr"]}, task_id="train-oom")
        assert len(provider.calls) == 3
        train_models.apply(args=("TCS.NS", "1D"), kwargs={"algorithms": ["svr"]}, task_id="train-oom")
        status = task_status(record=record)
    assert len(provider.calls) == 3  # not run a fourth time
    assert status["state"] == "FAILURE", status
    assert status["error"].startswith("The worker running this task was lost 3 times"), status


def test_a_training_that_ends_is_not_counted_as_lost(monkeypatch):
    provider = RecoveringProvider(_daily_frames(), failures=0)
    monkeypatch.setattr("market.services.get_provider", lambda name=None: provider)
    with time_machine.travel(LATER, tick=False):
        for _ in range(
            4
        ):  # delivered again after it finished (lost before the ack): done once, never refused
            result = train_models.apply(
                args=("TCS.NS", "1D"), kwargs={"algorithms": ["svr"]}, task_id="train-ok"
            ).get()
    assert [(m["algorithm"], m["version"]) for m in result["models"]] == [("svr", 1), ("ensemble", 1)]


def _dies_at(stage: str):
    """A training's progress callback whose worker is killed when the run reaches `stage`."""

    def progress(fraction: float, reached: str) -> None:
        if reached == stage:
            raise WorkerKilled

    return progress


def _train_lost(*, algorithms: list[str], at: str, task_id: str = "train-lost") -> None:
    """models_train run by the task `task_id` whose worker is killed when it reaches the stage `at`."""
    from predictions.services import models_train

    with pytest.raises(WorkerKilled):
        models_train(
            symbol="TCS.NS",
            timeframe=Timeframe.D1,
            algorithms=algorithms,
            task_id=task_id,
            progress=_dies_at(at),
        )


def test_a_training_lost_half_way_serves_nothing_of_it_and_its_redelivery_trains_only_what_was_missing():
    """The worker dies after storing random_forest, before svr: that version must not be served (active, or
    inside the default's choice) as if the training had completed, and the message delivered again must not
    train random_forest a second time (nor store it twice), even with a newer bar stored meanwhile."""

    with time_machine.travel(NOON, tick=False):
        candles_sync(symbol="TCS.NS", timeframe=Timeframe.D1, days=900, provider=get_provider("synthetic"))
        _train_lost(algorithms=["random_forest", "svr"], at="training svr")
    half = TrainedModel.objects.get()
    assert (half.algorithm, half.is_active, half.training_complete) == ("random_forest", False, False)

    # Delivered again the next evening, after the next daily bar was stored.
    with time_machine.travel(NOON + timedelta(days=1, hours=6), tick=False):
        candles_sync(symbol="TCS.NS", timeframe=Timeframe.D1, days=5, provider=get_provider("synthetic"))
        result = train_models.apply(
            args=("TCS.NS", "1D"), kwargs={"algorithms": ["random_forest", "svr"]}, task_id="train-lost"
        ).get()
    models = list(TrainedModel.objects.order_by("pk"))
    assert [(m.algorithm, m.version) for m in models] == [("random_forest", 1), ("svr", 1), ("ensemble", 1)]
    assert [m["id"] for m in result["models"]] == [m.pk for m in models] and models[0].pk == half.pk
    assert all(m.training_complete and m.checkpoint is None and m.is_active for m in models)
    # One run, one window: the versions trained after the redelivery were evaluated on the same candles.
    assert {(m.data_start, m.data_end, m.n_samples) for m in models} == {
        (half.data_start, half.data_end, half.n_samples)
    }


def test_a_resumed_training_stores_the_ensemble_an_uninterrupted_one_does():
    """The resumed run rebuilds the ensemble from the stored member's evaluation (its out-of-sample rows, kept
    while the run is unfinished): the same figures as a run that was never lost."""
    from predictions.services import models_train

    with time_machine.travel(NOON, tick=False):
        candles_sync(symbol="TCS.NS", timeframe=Timeframe.D1, days=900, provider=get_provider("synthetic"))
        _train_lost(algorithms=["svr", "random_forest"], at="building ensemble")
        resumed = models_train(
            symbol="TCS.NS", timeframe=Timeframe.D1, algorithms=["svr", "random_forest"], task_id="train-lost"
        )
        whole = models_train(
            symbol="TCS.NS",
            timeframe=Timeframe.D1,
            algorithms=["svr", "random_forest"],
            task_id="train-whole",
        )
    assert [(m.algorithm, m.version) for m in resumed] == [("svr", 1), ("random_forest", 1), ("ensemble", 1)]
    assert TrainedModel.objects.filter(training_task_id="train-lost").count() == 3
    for mine, theirs in zip(resumed, whole, strict=True):
        assert mine.algorithm == theirs.algorithm
        assert mine.metrics["mae"] == pytest.approx(theirs.metrics["mae"], rel=1e-12)
    assert resumed[-1].hyperparameters["members"] == whole[-1].hyperparameters["members"]


def test_the_versions_served_stay_those_of_the_last_finished_training_while_one_is_lost_half_way():
    from predictions.selectors import models_overview
    from predictions.services import active_model, models_train

    with time_machine.travel(NOON, tick=False):
        candles_sync(symbol="TCS.NS", timeframe=Timeframe.D1, days=900, provider=get_provider("synthetic"))
        finished = models_train(
            symbol="TCS.NS", timeframe=Timeframe.D1, algorithms=["svr"], task_id="train-1"
        )
        _train_lost(algorithms=["svr"], at="building ensemble", task_id="train-2")
    served = active_model(symbol="TCS.NS", timeframe=Timeframe.D1, horizon=1, algorithm="svr")
    assert served.pk == finished[0].pk  # not the lost run's svr v2, though it is no worse on the same rows
    lost = TrainedModel.objects.get(training_task_id="train-2")
    assert (lost.version, lost.is_active, lost.training_complete) == (2, False, False)
    # GET /api/predictions/models/{symbol} says which version comes from a training that did not finish.
    listed = models_overview(symbol="TCS.NS", timeframe=Timeframe.D1)["results"]
    assert [(row["version"], row["training_complete"]) for row in listed if row["algorithm"] == "svr"] == [
        (2, False),
        (1, True),
    ]


def test_a_training_lost_half_way_whose_candles_changed_since_is_trained_again_without_its_old_versions():
    """Resuming needs the very rows the lost run trained on (the ensemble and promotion compare row by row):
    when a bar of that window is no longer stored as it was, its unfinished versions are deleted (never served)
    and the redelivery trains from the stored candles."""
    from market.models import MarketData
    from predictions.services import models_train

    with time_machine.travel(NOON, tick=False):
        candles_sync(symbol="TCS.NS", timeframe=Timeframe.D1, days=900, provider=get_provider("synthetic"))
        _train_lost(algorithms=["random_forest", "svr"], at="training svr")
        half = TrainedModel.objects.get()
        MarketData.objects.filter(symbol="TCS.NS", timeframe="1D", timestamp=half.data_start).update(
            final=False
        )
        models = models_train(
            symbol="TCS.NS", timeframe=Timeframe.D1, algorithms=["random_forest", "svr"], task_id="train-lost"
        )
    assert not TrainedModel.objects.filter(pk=half.pk).exists()
    assert not half.artifact.storage.exists(half.artifact.name)
    assert [m.algorithm for m in TrainedModel.objects.order_by("pk")] == ["random_forest", "svr", "ensemble"]
    assert len({(m.data_start, m.data_end, m.n_samples) for m in models}) == 1  # one window, read anew
    assert all(m.training_complete for m in models)


def test_the_versions_of_a_run_nothing_will_resume_are_deleted_after_two_days(settings, tmp_path):
    """A training lost half-way by `manage.py train_models` (no task to deliver it again), or one that failed on
    every delivery, left its unfinished versions and their files for good."""
    from predictions.tasks import prune_unfinished_models
    from predictions.tests.factories import TrainedModelFactory

    settings.MEDIA_ROOT = tmp_path
    (tmp_path / "models").mkdir()

    def version(name: str, *, age: timedelta, **fields) -> TrainedModel:
        (tmp_path / "models" / f"{name}.joblib").write_bytes(b"model")
        with time_machine.travel(NOON - age, tick=False):
            return TrainedModelFactory(artifact=f"models/{name}.joblib", **fields)

    lost = version("lost", age=timedelta(days=2, minutes=1), training_complete=False, checkpoint={"rows": []})
    resumable = version("resumable", age=timedelta(days=1), training_complete=False, checkpoint={"rows": []})
    finished = version("finished", age=timedelta(days=30))
    served = version("served", age=timedelta(days=30), training_complete=False, is_active=True)
    with time_machine.travel(NOON, tick=False):
        assert prune_unfinished_models.apply().get() == {"deleted": 1}
        assert prune_unfinished_models.apply().get() == {"deleted": 0}

    assert set(TrainedModel.objects.values_list("pk", flat=True)) == {resumable.pk, finished.pk, served.pk}
    assert not (tmp_path / "models" / "lost.joblib").exists()
    assert (tmp_path / "models" / "resumable.joblib").exists()
    assert lost.pk not in TrainedModel.objects.values_list("pk", flat=True)


def test_the_daily_schedule_prunes_unfinished_versions():
    from tradingdash.schedule import BEAT_SCHEDULE

    assert BEAT_SCHEDULE["predictions-prune-unfinished"]["task"] == "predictions.prune_unfinished_models"
