"""A training task handed to a second worker while the first still runs it (the broker's visibility timeout below
the task's time limit: tradingdash.W006) is held by two workers at once. The run still stores one version per
algorithm: the worker that loses the race to store one takes the other's, as a resumed run would, deletes the
file it wrote for it, and carries on; both promoting the run's versions leaves one active version per key."""

import contextlib
from datetime import UTC, datetime
from pathlib import Path

import pytest
import time_machine
from django.db import IntegrityError, transaction

from market.services import candles_sync
from market.sources import get_provider
from market.timeframes import Timeframe
from predictions.models import TrainedModel
from predictions.services import models_train
from predictions.tests.factories import TrainedModelFactory

pytestmark = pytest.mark.django_db
NOON = datetime(2026, 6, 4, 6, 30, tzinfo=UTC)
ALGORITHMS = ["random_forest", "svr"]
TASK = "train-held-twice"


class WorkerStopped(BaseException):
    """The other worker, frozen where a test needs it (it still holds the task: nothing of it is cleaned up)."""


def _train(**kwargs) -> list[TrainedModel]:
    return models_train(
        symbol="TCS.NS", timeframe=Timeframe.D1, algorithms=ALGORITHMS, task_id=TASK, **kwargs
    )


def _other_worker_at(stage: str, *, stops_at: str | None = None):
    """A progress callback: when this worker reaches `stage`, the second holder of the task runs it, to the end or
    until it reaches `stops_at` (still running there when this worker carries on)."""
    ran = []

    def stop(fraction: float, reached: str) -> None:
        if reached == stops_at:
            raise WorkerStopped

    def progress(fraction: float, reached: str) -> None:
        if reached == stage and not ran:
            ran.append(reached)
            with contextlib.suppress(WorkerStopped):
                _train(progress=stop)

    return progress


def _stored_files(settings) -> set[str]:
    root = Path(settings.MEDIA_ROOT)
    return {path.relative_to(root).as_posix() for path in root.rglob("*") if path.is_file()}


@pytest.fixture
def candles():
    with time_machine.travel(NOON, tick=False):
        candles_sync(symbol="TCS.NS", timeframe=Timeframe.D1, days=900, provider=get_provider("synthetic"))
        yield


def test_a_worker_that_loses_the_race_to_store_a_version_takes_the_finished_run_of_the_other(
    candles, settings
):
    """The other worker stores svr (and finishes the run) while this one trains svr: this one stores nothing."""
    models = _train(progress=_other_worker_at("training svr"))

    stored = list(TrainedModel.objects.order_by("pk"))
    assert [(m.algorithm, m.version) for m in stored] == [("random_forest", 1), ("svr", 1), ("ensemble", 1)]
    assert [m.pk for m in models] == [m.pk for m in stored]
    assert all(m.training_complete and m.checkpoint is None and m.is_active for m in stored)
    assert _stored_files(settings) == {m.artifact.name for m in stored}  # none left for the refused svr


def test_a_worker_that_loses_the_race_while_the_other_still_runs_finishes_the_run_with_its_version(
    candles, settings
):
    """The other worker stored svr and is still building its ensemble: this one resumes from its svr, as a
    redelivery would, and finishes the run, one version per algorithm."""
    models = _train(progress=_other_worker_at("training svr", stops_at="building ensemble"))

    stored = list(TrainedModel.objects.order_by("pk"))
    assert [(m.algorithm, m.version) for m in stored] == [("random_forest", 1), ("svr", 1), ("ensemble", 1)]
    assert [m.pk for m in models] == [m.pk for m in stored]
    assert all(m.training_complete and m.checkpoint is None and m.is_active for m in stored)
    assert all(m.promoted for m in models)
    assert {(m.data_start, m.data_end, m.n_samples) for m in stored} == {
        (stored[0].data_start, stored[0].data_end, stored[0].n_samples)
    }
    assert _stored_files(settings) == {m.artifact.name for m in stored}


def test_a_worker_that_loses_the_race_for_the_ensemble_takes_the_others(candles, settings):
    """Both stored their members in turn; the other stores the ensemble first."""
    models = _train(progress=_other_worker_at("building ensemble", stops_at="promoting the versions"))

    stored = list(TrainedModel.objects.order_by("pk"))
    assert [(m.algorithm, m.version) for m in stored] == [("random_forest", 1), ("svr", 1), ("ensemble", 1)]
    assert [m.pk for m in models] == [m.pk for m in stored]
    assert all(m.training_complete and m.is_active for m in stored)
    assert _stored_files(settings) == {m.artifact.name for m in stored}


def test_both_workers_promoting_the_run_leave_its_versions_active_once(candles):
    """The other worker promotes and finishes the run while this one is about to promote the same versions."""
    models = _train(progress=_other_worker_at("promoting the versions"))

    stored = list(TrainedModel.objects.order_by("pk"))
    assert [(m.algorithm, m.version) for m in stored] == [("random_forest", 1), ("svr", 1), ("ensemble", 1)]
    assert [m.pk for m in models] == [m.pk for m in stored]
    assert all(m.is_active and m.training_complete for m in stored)
    assert all(m.promoted for m in models)


def test_promoting_a_version_again_keeps_it_the_one_active(candles):
    from predictions.services import model_promote_if_better

    first = models_train(symbol="TCS.NS", timeframe=Timeframe.D1, algorithms=["svr"], task_id="train-1")[0]
    second = models_train(symbol="TCS.NS", timeframe=Timeframe.D1, algorithms=["svr"], task_id="train-2")[0]
    active = TrainedModel.objects.get(algorithm="svr", is_active=True)
    other = second if active.pk == first.pk else first
    stale = TrainedModel.objects.get(pk=active.pk)
    stale.is_active = False  # as the holder that loaded it before the other promoted it

    assert model_promote_if_better(trained=stale) is True
    assert model_promote_if_better(trained=TrainedModel.objects.get(pk=active.pk)) is True
    assert list(
        TrainedModel.objects.filter(algorithm="svr", is_active=True).values_list("pk", flat=True)
    ) == [active.pk]
    assert not TrainedModel.objects.get(pk=other.pk).is_active


def test_the_database_refuses_a_second_version_of_an_algorithm_for_one_training_task():
    TrainedModelFactory(training_task_id=TASK, training_complete=False)
    with pytest.raises(IntegrityError), transaction.atomic():
        TrainedModelFactory(training_task_id=TASK, training_complete=False)
    # Another algorithm, horizon or task, and versions of no task (manage.py train_models), are not limited.
    TrainedModelFactory(training_task_id=TASK, algorithm="random_forest")
    TrainedModelFactory(training_task_id=TASK, horizon=5)
    TrainedModelFactory(training_task_id="another-task")
    TrainedModelFactory(training_task_id="")
    TrainedModelFactory(training_task_id="")
    assert TrainedModel.objects.filter(algorithm="svr", horizon=1).count() == 4


def test_a_run_lost_during_its_promotions_whose_candles_changed_trains_again_and_finishes(candles):
    """A version promoted before its worker was lost stays (it is served) when the redelivered run cannot be
    resumed; it no longer belongs to the run, whose new versions the database would otherwise refuse as a second
    version of the task: the run trained its first algorithm again and again, then failed."""
    from market.models import MarketData

    with time_machine.travel(NOON, tick=False):
        _train()
        TrainedModel.objects.update(training_complete=False, is_active=False)  # lost during its promotions:
        TrainedModel.objects.filter(algorithm="random_forest").update(is_active=True)  # one promoted
        kept = TrainedModel.objects.get(algorithm="random_forest")
        inside = MarketData.objects.filter(
            symbol="TCS.NS", timeframe="1D", timestamp__gt=kept.data_start, timestamp__lt=kept.data_end
        )
        inside.order_by("timestamp")[100].delete()  # staff deleted a bar of its window before the redelivery
        stages = []
        models = _train(progress=lambda fraction, stage: stages.append(stage))
    assert stages.count("training random_forest") == 1
    assert sorted((model.algorithm, model.version) for model in models) == [
        ("ensemble", 1),  # the unfinished, inactive versions were deleted: their numbers are free again
        ("random_forest", 2),
        ("svr", 1),
    ]
    assert all(model.training_complete for model in models)
    kept.refresh_from_db()
    assert kept.training_task_id == "" and TrainedModel.objects.filter(training_task_id=TASK).count() == 3


def test_a_worker_that_finds_the_runs_candles_changed_leaves_the_other_workers_versions_and_retries(candles):
    """The other worker holds the run (it stored svr first) and is still running; the run's candles changed since
    it read them. Starting over, this worker discarded the other's unfinished versions under it and trained
    everything again; it now leaves them and is retried (the task retries TrainingHeldElsewhere)."""
    from market.models import MarketData
    from predictions.services import TrainingHeldElsewhere
    from predictions.tasks import train_models

    other = _other_worker_at("training svr", stops_at="building ensemble")

    def progress(fraction: float, reached: str) -> None:
        other(fraction, reached)
        if (
            reached == "training svr"
        ):  # the other has stored svr and stopped; staff delete a bar of the window
            first = TrainedModel.objects.order_by("pk").first()
            MarketData.objects.filter(
                symbol="TCS.NS", timeframe="1D", timestamp__gt=first.data_start, timestamp__lt=first.data_end
            ).order_by("timestamp")[50].delete()

    with time_machine.travel(NOON, tick=False), pytest.raises(TrainingHeldElsewhere):
        _train(progress=progress)
    assert sorted(TrainedModel.objects.values_list("algorithm", "training_complete")) == [
        ("random_forest", False),
        ("svr", False),
    ]  # the run as the other worker left it
    assert TrainingHeldElsewhere in train_models.autoretry_for
