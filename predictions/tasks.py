"""Training and scoring tasks. Training runs on the `ml` queue; models load inside the worker that uses them."""

from __future__ import annotations

from dataclasses import asdict
from datetime import datetime

import structlog
from celery import shared_task

from market.providers.errors import ProviderUnavailable, RateLimited
from market.services import StaleMarketData
from market.timeframes import Timeframe
from predictions.selectors import models_retraining_plan, prediction_made
from predictions.services import (
    Progress,
    RequesterDeleted,
    TaskStarted,
    TrainingHeldElsewhere,
    models_prune_unfinished,
    models_retrain_enqueue,
    models_train,
    prediction_generate,
    predictions_rescore,
    predictions_score,
    task_announce,
    task_followers_release,
)

logger = structlog.get_logger(__name__)


@shared_task(
    name="predictions.train_models",
    bind=True,
    # TrainingHeldElsewhere: another worker holds the same run (redelivered while it runs); retried, the task
    # finds that run finished, or lost and resumable.
    autoretry_for=(ProviderUnavailable, RateLimited, StaleMarketData, TrainingHeldElsewhere),
    retry_backoff=60,
    max_retries=3,
    acks_late=True,
)
def train_models(
    self,
    symbol: str,
    timeframe: str,
    horizon: int = 1,
    algorithms: list[str] | None = None,
    then_predict: str | None = None,
    user_id: int | None = None,
) -> dict:
    """Train (and, with `then_predict`, predict with the resulting active model), then start the tasks of the
    users who were waiting for this training. Reports progress. Each step is done once per task id: a retry
    (the provider down, or candles too stale to forecast from, after the training) redoes only what failed."""

    def progress(fraction: float, stage: str) -> None:
        if not self.request.called_directly:
            self.update_state(state="PROGRESS", meta={"progress": round(fraction, 3), "stage": stage})
            task_announce(task_id=self.request.id, state="PROGRESS", progress=round(fraction, 3), stage=stage)

    with TaskStarted(task_id=self.request.id):  # a worker lost under it each time: not delivered for ever
        return _train_then_predict(
            task_id=self.request.id,
            progress=progress,
            symbol=symbol,
            tf=Timeframe.parse(timeframe),
            horizon=horizon,
            algorithms=algorithms,
            then_predict=then_predict,
            user_id=user_id,
        )


def _train_then_predict(
    *,
    task_id: str,
    progress: Progress,
    symbol: str,
    tf: Timeframe,
    horizon: int,
    algorithms: list[str] | None,
    then_predict: str | None,
    user_id: int | None,
) -> dict:
    trained = models_train(
        symbol=symbol,
        timeframe=tf,
        horizon=horizon,
        algorithms=algorithms,
        progress=progress,
        task_id=task_id,
    )
    result = {
        "models": [
            {
                "id": m.pk,
                "algorithm": m.algorithm,
                "version": m.version,
                "promoted": m.promoted,
                "mae_vs_naive": m.metrics.get("mae_vs_naive"),
            }
            for m in trained
        ]
    }
    if then_predict:
        try:
            prediction = prediction_generate(
                symbol=symbol,
                timeframe=tf,
                horizon=horizon,
                model=then_predict,
                user_id=user_id,
                task_id=task_id,
            )
        except RequesterDeleted as exc:
            # The training is the system's now (models.keep_trainings_as_the_systems): it still starts the
            # predictions of the users who joined it.
            logger.info("prediction_requester_deleted", task_id=task_id, user_id=user_id)
            result["prediction_skipped"] = str(exc)
        else:
            result.update(prediction_id=prediction.pk, prediction=prediction_made(prediction))
    result["followers_started"] = task_followers_release(task_id=task_id)
    return result


@shared_task(
    name="predictions.generate_prediction",
    bind=True,
    autoretry_for=(StaleMarketData,),
    retry_backoff=60,
    max_retries=3,
    acks_late=True,
)
def generate_prediction(
    self, symbol: str, timeframe: str, horizon: int = 1, model: str = "ensemble", user_id: int | None = None
) -> dict:
    """Predict with the active model in a worker (the web process never loads TensorFlow models). The result
    carries the prediction in the shape of POST /api/predictions/generate's 201 body; delivered again (a worker
    lost after storing it: acks_late), it answers with the same prediction. Candles too stale to forecast from
    (the provider down) are retried a few times, then the task fails saying so."""
    with TaskStarted(task_id=self.request.id):  # an LSTM run out of memory each time: not delivered for ever
        prediction = prediction_generate(
            symbol=symbol,
            timeframe=Timeframe.parse(timeframe),
            horizon=horizon,
            model=model,
            user_id=user_id,
            task_id=self.request.id,
        )
    return {"prediction_id": prediction.pk, "prediction": prediction_made(prediction)}


@shared_task(name="predictions.retrain_all")
def retrain_all(timeframe: str = "1D", horizon: int = 1) -> dict:
    """Fan out one training per active instrument at (timeframe, horizon) and per other configuration with an
    active model, so no active model is left to age (nightly). Each is queued once a day, however often this
    task is delivered (services.models_retrain_enqueue)."""
    plan = models_retraining_plan(timeframe=Timeframe.parse(timeframe), horizon=horizon)
    return asdict(models_retrain_enqueue(plan=plan, expires=6 * 3600))


@shared_task(name="predictions.prune_unfinished_models")
def prune_unfinished_models() -> dict:
    """Daily: the versions of trainings lost half-way that nothing will resume (services.models_prune_unfinished)."""
    return {"deleted": models_prune_unfinished()}


@shared_task(name="predictions.score_predictions")
def score_predictions() -> dict:
    return {"scored": predictions_score()}


@shared_task(name="predictions.rescore_predictions", acks_late=True)
def rescore_predictions(symbol: str, timeframe: str, first: str, last: str) -> dict:
    """Re-score predictions whose target bar in [first, last] (ISO datetimes) was rewritten; safe to repeat."""
    rescored = predictions_rescore(
        symbol=symbol,
        timeframe=timeframe,
        first=datetime.fromisoformat(first),
        last=datetime.fromisoformat(last),
    )
    return {"rescored": rescored}
