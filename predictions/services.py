"""Training, promotion, prediction and scoring. The models and their evaluation are pure (predictions.ml);
this module stores what they produce and decides which version is active."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import timedelta

import structlog
from celery import Task
from django.conf import settings
from django.core.cache import cache
from django.core.files.base import ContentFile
from django.db import IntegrityError, transaction
from django.db.models import Max
from django.utils import timezone
from kombu.exceptions import OperationalError

from market.bars import bar_close, bars_ahead, closed_only
from market.models import MarketData
from market.selectors import candles_frame
from market.services import candles_ensure
from market.sources import get_calendar
from market.timeframes import Timeframe
from predictions.features import WARMUP_BARS
from predictions.loading import forecaster_load
from predictions.ml import registry
from predictions.ml.ensemble_evaluation import ensemble_train
from predictions.models import Algorithm, Prediction, TaskRecord, TrainedModel
from tradingdash import events
from tradingdash.exceptions import ServiceUnavailable
from tradingdash.metrics import PREDICTIONS_MADE

logger = structlog.get_logger(__name__)

MIN_TRAINING_ROWS = 200  # usable rows after indicator warm-up
DEFAULT_ALGORITHMS = [Algorithm.RANDOM_FOREST.value, Algorithm.SVR.value, Algorithm.LSTM.value]
_ARTIFACT_SUFFIX = {"lstm": "keras.bundle", "ensemble": "ensemble.joblib"}
_PENDING_STATES = {"PENDING", "RECEIVED", "STARTED", "PROGRESS", "RETRY"}

Progress = Callable[[float, str], None]


@dataclass(frozen=True)
class NotEnoughHistory(Exception):
    needed: int
    available: int

    def __str__(self) -> str:
        return f"Training needs at least {self.needed} candles; {self.available} are stored."


class NoActiveModel(Exception):
    """No trained, active model for this symbol, timeframe, horizon and algorithm yet."""


def history_needed(horizon: int) -> int:
    return WARMUP_BARS + MIN_TRAINING_ROWS + horizon


def predictions_invalidate(symbol: str) -> None:
    cache.set(f"predictions:version:{symbol}", uuid.uuid4().hex[:12], 7 * 24 * 3600)


def predictions_cache_version(symbol: str) -> str:
    return cache.get(f"predictions:version:{symbol}") or "0"


def training_candles(*, symbol: str, timeframe: Timeframe, ensure: bool = True):
    """Closed stored candles (fetching the default history first if none was ever fetched)."""
    if ensure:
        candles_ensure(symbol=symbol, timeframe=timeframe, start=None, end=None)
    candles = candles_frame(symbol=symbol, timeframe=timeframe, limit=settings.PREDICTION_TRAINING_BARS)
    return closed_only(candles, get_calendar(), timeframe, timezone.now())


def _store_version(
    *, symbol: str, timeframe: Timeframe, horizon: int, output, extra_metrics=None
) -> TrainedModel:
    data = registry.serialize(output.forecaster)
    algorithm = output.algorithm
    metrics = {**output.evaluation.metrics, **(extra_metrics or {})}
    for _ in range(3):  # a concurrent training may take the same version number: take the next one
        try:
            with transaction.atomic():
                latest = TrainedModel.objects.filter(
                    symbol=symbol, timeframe=timeframe.value, horizon=horizon, algorithm=algorithm
                ).aggregate(v=Max("version"))["v"]
                version = (latest or 0) + 1
                trained = TrainedModel(
                    symbol=symbol,
                    timeframe=timeframe.value,
                    horizon=horizon,
                    algorithm=algorithm,
                    version=version,
                    data_start=output.data_start,
                    data_end=output.data_end,
                    n_samples=output.n_samples,
                    features=output.feature_columns,
                    hyperparameters=output.hyperparameters,
                    metrics=metrics,
                    fold_metrics=output.evaluation.fold_metrics,
                    residual_quantiles=output.evaluation.residual_quantiles,
                    artifact_sha256=registry.sha256(data),
                )
                suffix = _ARTIFACT_SUFFIX.get(algorithm, "joblib")
                trained.artifact.save(
                    f"{algorithm}-v{version}-{uuid.uuid4().hex[:8]}.{suffix}", ContentFile(data), save=False
                )
                trained.save()
                return trained
        except IntegrityError:
            continue
    raise RuntimeError("could not allocate a model version")


def model_promote_if_better(*, trained: TrainedModel) -> bool:
    """Activate `trained` when its walk-forward MAE is no worse than the active version's."""
    with transaction.atomic():
        active = (
            TrainedModel.objects.select_for_update()
            .filter(
                symbol=trained.symbol,
                timeframe=trained.timeframe,
                horizon=trained.horizon,
                algorithm=trained.algorithm,
                is_active=True,
            )
            .exclude(pk=trained.pk)
            .first()
        )
        if not registry.should_promote(trained.metrics, active.metrics if active else None):
            return False
        model_activate(trained=trained)
    return True


def model_activate(*, trained: TrainedModel) -> None:
    """Make `trained` the active version of its key (staff may also do this by hand in admin)."""
    with transaction.atomic():
        TrainedModel.objects.filter(
            symbol=trained.symbol,
            timeframe=trained.timeframe,
            horizon=trained.horizon,
            algorithm=trained.algorithm,
            is_active=True,
        ).exclude(pk=trained.pk).update(is_active=False)
        TrainedModel.objects.filter(pk=trained.pk).update(is_active=True)
        trained.is_active = True
    predictions_invalidate(trained.symbol)


def models_train(
    *,
    symbol: str,
    timeframe: Timeframe,
    horizon: int = 1,
    algorithms: Sequence[str] | None = None,
    params: dict | None = None,
    progress: Progress | None = None,
) -> list[TrainedModel]:
    """Walk-forward evaluate and fit each algorithm, store every version, promote the ones no worse than
    the active version, and store an ensemble of this run's models that beat naive."""
    algorithms = list(algorithms or DEFAULT_ALGORITHMS)
    params = {**settings.PREDICTION_MODEL_PARAMS, **(params or {})}
    progress = progress or (lambda fraction, stage: None)
    candles = training_candles(symbol=symbol, timeframe=timeframe)
    needed = history_needed(horizon)
    if len(candles) < needed:
        raise NotEnoughHistory(needed=needed, available=len(candles))
    outputs, stored = [], []
    steps = len(algorithms) + 1
    for index, algorithm in enumerate(algorithms):
        progress(index / steps, f"training {algorithm}")
        output = registry.train(algorithm, candles, horizon=horizon, params=params.get(algorithm))
        outputs.append(output)
        trained = _store_version(symbol=symbol, timeframe=timeframe, horizon=horizon, output=output)
        trained.promoted = model_promote_if_better(trained=trained)
        stored.append(trained)
        logger.info("model_trained", model=str(trained), mae_vs_naive=trained.metrics.get("mae_vs_naive"))
    progress(len(algorithms) / steps, "building ensemble")
    ensemble = ensemble_train(outputs)
    trained = _store_version(
        symbol=symbol,
        timeframe=timeframe,
        horizon=horizon,
        output=ensemble,
        extra_metrics={"description": ensemble.forecaster.description},
    )
    trained.promoted = model_promote_if_better(trained=trained)
    stored.append(trained)
    progress(1.0, "done")
    return stored


def active_model(*, symbol: str, timeframe: Timeframe, horizon: int, algorithm: str) -> TrainedModel | None:
    return TrainedModel.objects.filter(
        symbol=symbol, timeframe=timeframe.value, horizon=horizon, algorithm=algorithm, is_active=True
    ).first()


def prediction_generate(
    *,
    symbol: str,
    timeframe: Timeframe,
    horizon: int = 1,
    model: str = "ensemble",
    user_id: int | None = None,
) -> Prediction:
    """Forecast from the latest closed candle with the active model and store it."""
    trained = active_model(symbol=symbol, timeframe=timeframe, horizon=horizon, algorithm=model)
    if trained is None:
        raise NoActiveModel(f"No active {model} model for {symbol} {timeframe.value} horizon {horizon}")
    candles = training_candles(symbol=symbol, timeframe=timeframe)
    forecaster = forecaster_load(trained)
    forecast = registry.predict(
        forecaster, candles, horizon=horizon, residual_quantiles=trained.residual_quantiles
    )
    calendar = get_calendar()
    description = trained.metrics.get("description")
    prediction = Prediction.objects.create(
        symbol=symbol,
        timeframe=timeframe.value,
        horizon=horizon,
        time_horizon=f"{timeframe.value} x {horizon}",
        model_used=model,
        model_version=f"{trained.algorithm} v{trained.version}"
        + (f" ({description})" if description else ""),
        predicted_price=forecast.predicted_price,
        confidence_score=trained.metrics.get("directional_accuracy"),
        lower_bound=forecast.lower,
        upper_bound=forecast.upper,
        base_price=forecast.base_price,
        base_timestamp=forecast.base_time,
        target_time=bars_ahead(calendar, timeframe, forecast.base_time, horizon),
        requested_by_id=user_id,
    )
    prediction.trained_models.add(trained)
    predictions_invalidate(symbol)
    events.announce(
        events.PredictionStored(
            prediction_id=prediction.pk, symbol=symbol, timeframe=timeframe.value, user_id=user_id
        )
    )
    PREDICTIONS_MADE.labels(model, timeframe.value).inc()
    logger.info("prediction_made", symbol=symbol, model=prediction.model_version, horizon=horizon)
    return prediction


def predictions_score(*, now=None) -> int:
    """Fill realized_price/error for predictions whose target bar has closed and is stored."""
    now = now or timezone.now()
    calendar = get_calendar()
    scored = 0
    pending = Prediction.objects.filter(realized_price__isnull=True, target_time__lte=now).order_by(
        "target_time"
    )
    for prediction in pending.iterator(chunk_size=500):
        timeframe = Timeframe.parse(prediction.timeframe)
        if bar_close(calendar, timeframe, prediction.target_time) > now:
            continue
        close = (
            MarketData.objects.filter(
                symbol=prediction.symbol, timeframe=prediction.timeframe, timestamp=prediction.target_time
            )
            .values_list("close_price", flat=True)
            .first()
        )
        if close is None:
            continue
        Prediction.objects.filter(pk=prediction.pk).update(
            realized_price=close, realized_at=prediction.target_time, error=prediction.predicted_price - close
        )
        predictions_invalidate(prediction.symbol)
        events.announce(
            events.PredictionStored(
                prediction_id=prediction.pk,
                symbol=prediction.symbol,
                timeframe=prediction.timeframe,
                user_id=prediction.requested_by_id,
                scored=True,
            )
        )
        scored += 1
    return scored


# --- Background tasks started from the API


def task_in_flight(*, key: str) -> TaskRecord | None:
    """The newest task with this key that is still queued or running (within the task time limit)."""
    from celery.result import AsyncResult

    since = timezone.now() - timedelta(seconds=settings.CELERY_TASK_TIME_LIMIT)
    for record in TaskRecord.objects.filter(key=key, created_at__gte=since)[:3]:
        if AsyncResult(record.task_id).state in _PENDING_STATES:
            return record
    return None


def task_enqueue(*, task: Task, kwargs: dict, key: str, user_id: int | None) -> tuple[TaskRecord, bool]:
    """Start `task` unless the same work (same key) is already in flight; returns (record, created).
    A dead broker is a 503, not a 500."""
    existing = task_in_flight(key=key)
    if existing is not None:
        return existing, False
    task_id = uuid.uuid4().hex
    record = TaskRecord.objects.create(task_id=task_id, name=task.name, key=key, user_id=user_id)
    try:
        task.apply_async(kwargs=kwargs, task_id=task_id)
    except OperationalError as exc:
        record.delete()
        logger.warning("broker_unavailable", task=task.name, error=str(exc))
        raise ServiceUnavailable(
            "The task queue is unavailable; try again shortly.", code="queue_unavailable", retry_after=30
        ) from exc
    return record, True


def task_announce(
    *, task_id: str, state: str, progress: float | None = None, stage: str | None = None
) -> None:
    """Tell listeners (the live stream) how a task started from the API is doing; tasks nobody started through
    the API (no TaskRecord: scheduled work) have no owner to tell."""
    record = TaskRecord.objects.filter(task_id=task_id).values("name", "user_id").first()
    if record is None:
        return
    events.announce(
        events.TaskUpdated(
            task_id=task_id,
            name=record["name"],
            user_id=record["user_id"],
            state=state,
            progress=progress,
            stage=stage,
        )
    )
