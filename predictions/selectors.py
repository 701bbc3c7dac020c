from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from django.conf import settings
from django.core.cache import cache
from django.db.models import Count, F, Min, Q
from django.utils import timezone

from market.adjust import split_ratio_between
from market.selectors import corporate_actions, symbol_require_known
from market.services import StaleMarketData
from market.sources import time_zone_for_symbol
from market.timeframes import Timeframe
from predictions.ml.significance import beats_naive
from predictions.models import TRAINABLE, Prediction, TaskRecord, TrainedModel
from predictions.services import (
    ModelUnavailable,
    NoActiveModel,
    NotEnoughHistory,
    WorkerLost,
    predictions_cache_version,
)

TRAINABLE_NAMES = frozenset(algorithm.value for algorithm in TRAINABLE)
PREDICTION_FIELDS = (
    "id",
    "symbol",
    "timeframe",
    "horizon",
    "time_horizon",
    "model_used",
    "model_version",
    "predicted_price",
    "confidence_score",
    "lower_bound",
    "upper_bound",
    "base_price",
    "base_timestamp",
    "target_time",
    "realized_price",
    "realized_at",
    "error",
    "replayed",
    "source",
    "created_at",
)
_DATES = ("base_timestamp", "target_time", "realized_at", "created_at")
METRIC_KEYS = (
    "mae",
    "rmse",
    "mape",
    "directional_accuracy",
    "mae_vs_naive",
    "dm_stat",
    "dm_p_value",
    "coverage_80",
    "coverage_80_calm",
    "coverage_80_volatile",
    "n_samples",
    "folds",
)
FOLD_KEYS = ("fold", "test_start", "test_end", "n", "mae", "naive_mae", "mae_vs_naive")


def prediction_to_dict(row: dict, *, model_data_revised_at: datetime | None = None) -> dict:
    dates = {k: row[k].isoformat() if row[k] is not None else None for k in _DATES}
    revised = model_data_revised_at.astimezone(UTC).isoformat() if model_data_revised_at is not None else None
    return {**row, **dates, "source": row["source"] or None, "model_data_revised_at": revised}


def predictions_to_dicts(rows: list[dict]) -> list[dict]:
    """Rows of PREDICTION_FIELDS in the API's shape, each with `model_data_revised_at`: when the candles of a
    model it was made with (an ensemble's members too) were found revised before it was made (the model's
    data_revised_at; its 201 body said so in `warnings`), else null. A revision found after it was made is not its
    own: the prediction said what the model knew then. One query for all the rows."""
    ids = [row["id"] for row in rows]
    revised = {}
    if ids:
        through = Prediction.trained_models.through
        revised = dict(
            through.objects.filter(
                prediction_id__in=ids,
                trainedmodel__data_revised_at__isnull=False,
                trainedmodel__data_revised_at__lte=F("prediction__created_at"),
            )
            .values("prediction_id")
            .annotate(first=Min("trainedmodel__data_revised_at"))
            .values_list("prediction_id", "first")
        )
    return [prediction_to_dict(row, model_data_revised_at=revised.get(row["id"])) for row in rows]


def prediction_row(prediction: Prediction) -> dict:
    return predictions_to_dicts([{field: getattr(prediction, field) for field in PREDICTION_FIELDS}])[0]


def prediction_made(prediction: Prediction) -> dict:
    """A prediction just made, with what the response must say about it: which model (`model`), whether it
    beats naive, why it was the default and why confidence_score is null, when that is so, and what to beware of
    (a model trained on candles revised since)."""
    return {
        **prediction_row(prediction),
        "model": prediction.model_used,
        "beats_naive": getattr(prediction, "beats_naive", None),
        "default_reason": getattr(prediction, "default_reason", None),
        "confidence_reason": getattr(prediction, "confidence_reason", None),
        "warnings": getattr(prediction, "warnings", []),
    }


def model_default(*, symbol: str, timeframe: Timeframe, horizon: int) -> TrainedModel | None:
    """The model to use when none is named: of the active versions that beat naive on their walk-forward
    (MAE/naive < 1 and Diebold-Mariano p < 0.10), the one with the lowest MAE/naive. None means naive.

    The best of several on the rows that chose it looks better than it is (and one of several passing p < 0.10
    is not p < 0.10), so the choice must also beat naive out of sample as a choice: chosen on earlier folds,
    scored on later ones, among exactly these active versions (`metrics["default_selection"]`, recorded at
    training; predictions.ml.default_selection). Without that record (versions stored before it, or staff
    activating another version since), the default is naive. The returned model carries that record as
    `default_selection`: the figures to report for it."""
    active = list(
        TrainedModel.objects.filter(
            symbol=symbol, timeframe=timeframe.value, horizon=horizon, is_active=True
        ).exclude(algorithm="naive")
    )
    beating = [model for model in active if model.beats_naive]
    chosen = min(beating, key=lambda model: (model.metrics["mae_vs_naive"], model.pk), default=None)
    if chosen is None:
        return None
    selection = chosen.metrics.get("default_selection")
    if not isinstance(selection, dict) or selection.get("candidates") != sorted(m.pk for m in active):
        return None
    if not beats_naive(selection):
        return None
    chosen.default_selection = selection
    return chosen


@dataclass(frozen=True, kw_only=True)
class Retraining:
    """One training of the nightly retraining: a key and the algorithms to train (None: every default one)."""

    symbol: str
    timeframe: str
    horizon: int
    algorithms: list[str] | None


def models_retraining_plan(*, timeframe: Timeframe, horizon: int) -> list[Retraining]:
    """What the nightly retraining trains: every active instrument at (timeframe, horizon), and every other
    (symbol, timeframe, horizon) with an active model (another timeframe or horizon a user asked for, a symbol
    staff trained), each with the algorithms active there (an ensemble's: those it was built from). Without
    them, those models would be served as current while their fit ages."""
    from market.models import Instrument

    plan: dict[tuple[str, str, int], set[str] | None] = {
        (symbol, timeframe.value, horizon): None
        for symbol in Instrument.objects.filter(active=True).values_list("symbol", flat=True)
    }
    active = TrainedModel.objects.filter(is_active=True).exclude(algorithm="naive").order_by("pk")
    trained: dict[tuple[str, str, int], set[str]] = {}
    for model in active.only("symbol", "timeframe", "horizon", "algorithm", "hyperparameters"):
        key = (model.symbol, model.timeframe, model.horizon)
        if model.algorithm == "ensemble":
            listed = model.hyperparameters.get("candidates") or model.hyperparameters.get("members") or []
            names = {candidate["algorithm"] for candidate in listed} - {"naive"}
        else:
            names = {model.algorithm}
        trained.setdefault(key, set()).update(names)
    for key, names in trained.items():
        if key not in plan:
            plan[key] = names
    return [
        Retraining(
            symbol=symbol,
            timeframe=tf,
            horizon=h,
            algorithms=sorted(names) if names and names != set(TRAINABLE_NAMES) else None,
        )
        for (symbol, tf, h), names in sorted(plan.items())
    ]


def predictions_list(*, symbol: str, timeframe: Timeframe, user, limit: int = 20) -> dict:
    """Newest first, with realized values where known: the user's own predictions and the system's (staff see
    everyone's), as for the detail. Cached 15 minutes per viewer until a new prediction or model.
    An unknown symbol (not in the catalogue, not known to the provider) is a 404, as for quotes."""
    symbol_require_known(symbol=symbol)
    viewer = "staff" if user.is_staff else f"user{user.pk}"
    version = predictions_cache_version(symbol)
    key = f"predictions:list:{symbol}:{timeframe.value}:{limit}:{viewer}:{version}"
    cached = cache.get(key)
    if cached is not None:
        return cached
    rows = _visible_to(Prediction.objects.filter(symbol=symbol, timeframe=timeframe.value), user)
    payload = {"results": predictions_to_dicts(list(rows.values(*PREDICTION_FIELDS)[:limit]))}
    cache.set(key, payload, settings.PREDICTION_CACHE_TTL)
    return payload


def _visible_to(rows, user):
    """A user's predictions are theirs alone (staff read any); system predictions, made for signals, are public."""
    if user.is_staff:
        return rows
    return rows.filter(Q(requested_by_id=user.pk) | Q(requested_by__isnull=True))


def models_overview(*, symbol: str, timeframe: Timeframe) -> dict:
    """Every stored version with its walk-forward metrics beside the naive baseline's on the same folds, and
    whether the training that stored it finished, and when the candles of its training window were revised since
    it was trained (an unknown symbol is a 404, as for the list)."""
    symbol_require_known(symbol=symbol)
    rows = (
        TrainedModel.objects.filter(symbol=symbol, timeframe=timeframe.value)
        .defer("checkpoint")
        .order_by("horizon", "algorithm", "-version")
    )
    results = []
    for model in rows:
        metrics = model.metrics
        results.append(
            {
                "id": model.pk,
                "algorithm": model.algorithm,
                "version": model.version,
                "horizon": model.horizon,
                "is_active": model.is_active,
                # False: stored by a training still running, or lost half-way (not promoted while it trains).
                "training_complete": model.training_complete,
                "trained_at": model.trained_at.isoformat(),
                "data_start": model.data_start.isoformat(),
                "data_end": model.data_end.isoformat(),
                "n_samples": model.n_samples,
                "metrics": {k: metrics.get(k) for k in METRIC_KEYS},
                "fold_metrics": [_fold_row(fold) for fold in model.fold_metrics or []],
                "naive": {"mae": metrics.get("naive_mae"), "rmse": metrics.get("naive_rmse")},
                "beats_naive": model.beats_naive,
                "description": metrics.get("description"),
                "data_revised_at": model.data_revised_at.isoformat() if model.data_revised_at else None,
            }
        )
    return {"symbol": symbol, "timeframe": timeframe.value, "results": results}


def _fold_row(fold: dict) -> dict:
    """One walk-forward test fold: its window and enough to recompute the baseline (older rows: nulls)."""
    row = {**fold, "n": fold.get("n", fold.get("n_samples"))}
    return {k: row.get(k) for k in FOLD_KEYS}


def predictions_accuracy(*, symbol: str, timeframe: Timeframe, user=None) -> dict:
    """How past predictions did once their target bar closed: direction hit rate (of the predictions that called a
    direction; None when none did), MAE beside the naive baseline's on the same predictions (the base price as
    the forecast), interval coverage. Over the predictions `user` may see (their own and the system's; staff:
    all), as for the list; without a user, over all of them.

    A live prediction stored after its target bar had closed (made from stale candles, before they were
    refused) was no forecast and is not scored as one; replayed ones are made afterwards by design."""
    symbol_require_known(symbol=symbol)  # an unknown symbol is a 404, as for the list
    visible = Prediction.objects.filter(symbol=symbol, timeframe=timeframe.value)
    if user is not None:
        visible = _visible_to(visible, user)
    scored = visible.filter(realized_price__isnull=False).exclude(
        replayed=False, realized_at__lte=F("created_at")
    )
    # A hit is a direction called and come true: a prediction of no change (naive) calls none, so it is neither
    # a hit nor a miss, and a price that did not move has no direction to get right.
    moved = scored.exclude(realized_price=F("base_price")).exclude(predicted_price=F("base_price"))
    summary = scored.aggregate(
        count=Count("id"),
        inside=Count(
            "id", filter=Q(realized_price__gte=F("lower_bound"), realized_price__lte=F("upper_bound"))
        ),
    )
    hits = moved.filter(
        Q(predicted_price__gt=F("base_price"), realized_price__gt=F("base_price"))
        | Q(predicted_price__lt=F("base_price"), realized_price__lt=F("base_price"))
    ).count()
    moved_count = moved.count()
    rows = list(scored.values_list("error", "base_price", "realized_price", "base_timestamp"))
    errors = _errors_in_todays_shares(symbol=symbol, rows=[(error, base) for error, _, _, base in rows])
    # The naive baseline on the same predictions: "no change" from each base price, in the same prices.
    naive_errors = _errors_in_todays_shares(
        symbol=symbol, rows=[(price - realized, base) for _, price, realized, base in rows]
    )
    count = summary["count"]
    mae = sum(abs(e) for e in errors) / count if count else None
    naive_mae = sum(abs(e) for e in naive_errors) / count if count else None
    return {
        "symbol": symbol,
        "timeframe": timeframe.value,
        "total": visible.count(),
        "scored": count,
        "hit_rate": hits / moved_count if moved_count else None,
        "mae": mae,
        "naive_mae": naive_mae,
        "mae_vs_naive": mae / naive_mae if naive_mae else None,
        "interval_coverage": summary["inside"] / count if count else None,
    }


def _errors_in_todays_shares(*, symbol: str, rows) -> list[float]:
    """The (error, base_timestamp) rows' errors in today's share count: each is in the prices of its base bar, so
    one from before a split or bonus issue is divided by its ratio (an MAE over both sides of a 1:2 split counted
    the older errors double)."""
    actions = corporate_actions(symbol=symbol, adjust="splits")
    if not actions:
        return [error for error, _ in rows]
    tz = time_zone_for_symbol(symbol)
    today = timezone.now().astimezone(tz).date()
    return [
        error / split_ratio_between(actions, after=base.astimezone(tz).date(), through=today)
        for error, base in rows
    ]


def prediction_system_for_bar(*, trained: TrainedModel, base_timestamp) -> Prediction | None:
    """The system's (user=None) prediction by `trained` from the bar opening at `base_timestamp`, if made."""
    return (
        Prediction.objects.filter(
            symbol=trained.symbol,
            timeframe=trained.timeframe,
            horizon=trained.horizon,
            requested_by__isnull=True,
            base_timestamp=base_timestamp,
            trained_models=trained,
        )
        .order_by("-created_at")
        .first()
    )


def prediction_get(*, prediction_id: int, user) -> dict | None:
    """One prediction for its owner (staff read any; system predictions, made for signals, are public)."""
    row = _visible_to(Prediction.objects.filter(pk=prediction_id), user).values(*PREDICTION_FIELDS).first()
    return predictions_to_dicts([row])[0] if row is not None else None


_PENDING = {"PENDING", "RECEIVED", "STARTED", "PROGRESS", "RETRY"}
# States a worker stores while it holds the task (a retry waits in the worker for its countdown): each stamps
# the time it was stored, so a silence too long for a live worker tells that worker was lost.
_HELD = {"STARTED": "started", "PROGRESS": "running", "RETRY": "waiting to be retried"}


@dataclass(frozen=True, kw_only=True)
class _State:
    state: str
    progress: float | None = None
    stage: str | None = None
    payload: object = None
    error: str | None = None
    heard: datetime | None = None  # when a worker last reported it running (None: never, or unknown here)


def _task_state(task_id: str) -> _State:
    from celery.result import AsyncResult

    result = AsyncResult(task_id)
    state, info = result.state, result.info
    if state == "PROGRESS" and isinstance(info, dict):
        return _unless_lost(
            _State(state=state, progress=info.get("progress"), stage=info.get("stage"), heard=_heard(result))
        )
    if state in _HELD:
        return _unless_lost(_State(state=state, heard=_heard(result)))
    if state == "SUCCESS":
        return _State(state=state, progress=1.0, payload=info)
    if state == "FAILURE":
        return _State(state=state, error=_public_error(info))
    return _State(state=state)


def _heard(result) -> datetime | None:
    """When the worker last stored the task's state (the django-db backend stamps every update; others keep
    no time for a running task)."""
    moment = result.date_done
    if moment is None:
        return None
    return moment if timezone.is_aware(moment) else moment.replace(tzinfo=UTC)


def _unless_lost(running: _State) -> _State:
    """A running (or retrying) task whose worker has been silent longer than the time limit is not running: a
    live worker ends it by then (a failure is stored; a retry's countdown is shorter) or reports it, so its
    worker was lost (killed, its machine gone). Its message was not acknowledged (acks_late), so the broker
    hands it out again once the visibility timeout has passed, and it starts over: until then it is queued, not
    making the progress it last reported. A task still not taken back long after that has no worker coming
    back for it: it failed."""
    if running.heard is None:
        return running
    silent = timezone.now() - running.heard
    limit = timedelta(seconds=settings.CELERY_TASK_TIME_LIMIT)
    if silent <= limit:
        return running
    redelivered_by = running.heard + _visibility_timeout()
    stopped = (
        f"No worker has reported on this task since {running.heard:%Y-%m-%d %H:%M} UTC (then: "
        f"{running.stage or _HELD[running.state]}): the worker running it was lost"
    )
    if timezone.now() <= redelivered_by + limit:
        return _State(
            state="PENDING",
            stage=f"{stopped}; it is queued to start over when a worker takes it back, by "
            f"{redelivered_by:%Y-%m-%d %H:%M} UTC",
            heard=running.heard,
        )
    return _State(
        state="FAILURE",
        error=f"{stopped}, and none has taken it back since; ask again.",
        heard=running.heard,
    )


def _visibility_timeout() -> timedelta:
    """How long the broker leaves a message handed out but not acknowledged before handing it out again."""
    options = settings.CELERY_BROKER_TRANSPORT_OPTIONS or {}
    return timedelta(seconds=options.get("visibility_timeout", 3600))


def task_status(*, record: TaskRecord) -> dict:
    """A task's state as its owner sees it. A follower not started yet reports the training it waits for:
    that training's failure is its failure, and that training's progress its stage. A task whose worker was
    lost reports it, not the progress it last made (_unless_lost)."""
    return _task_status(record)[0]


def task_pending(*, record: TaskRecord) -> bool:
    """Whether the task will still run or finish: running, re-queued after its worker was lost, or queued. A
    queued task (never heard from) counts only within the time limit of its creation: its message may be lost."""
    status, current = _task_status(record)
    if status["state"] not in _PENDING:
        return False
    if current.heard is not None:
        return True
    since = timezone.now() - timedelta(seconds=settings.CELERY_TASK_TIME_LIMIT)
    return record.created_at >= since


def _task_status(record: TaskRecord) -> tuple[dict, _State]:
    current = _task_state(record.task_id)
    state, progress, stage, error = current.state, current.progress, current.stage, current.error
    kept = _results_kept()
    if state == "PENDING" and kept is not None and record.created_at < timezone.now() - kept:
        # The backend keeps results for result_expires only (beat's celery.backend_cleanup): no result is not
        # "still queued" for a task this old, whose outcome is simply gone.
        return {
            "task_id": record.task_id,
            "name": record.name,
            "state": "EXPIRED",
            "progress": None,
            "stage": None,
            "result": None,
            "error": f"This task was started more than {kept.total_seconds() / 3600:g} hours ago; its outcome "
            "is no longer kept.",
        }, current
    lead = record.follows
    if state == "PENDING" and lead is not None and lead.released_at is None:
        training = _task_state(lead.task_id)
        if training.state == "FAILURE":
            state, error = "FAILURE", training.error
        elif training.state == "REVOKED":
            # Nothing will start this task: the training it waited for was cancelled.
            state, error = "REVOKED", "The training this prediction waited for was cancelled; ask again."
        elif training.state in _PENDING:
            stage = f"waiting for training ({training.stage or training.state.lower()})"
    return {
        "task_id": record.task_id,
        "name": record.name,
        "state": state,
        "progress": progress,
        "stage": stage,
        "result": current.payload,
        "error": error,
    }, current


def _results_kept() -> timedelta | None:
    """How long the result backend keeps a task's result (None: for ever)."""
    from celery import current_app

    expires = current_app.conf.result_expires
    if not expires:
        return None
    return expires if isinstance(expires, timedelta) else timedelta(seconds=expires)


def _public_error(info) -> str:
    """What went wrong, for the user: our own errors say it; anything else does not leak internals."""
    if isinstance(info, NotEnoughHistory | StaleMarketData | ModelUnavailable | NoActiveModel | WorkerLost):
        return str(info)
    from market.providers.errors import ProviderError

    if isinstance(info, ProviderError):
        return str(info)
    return "The task failed; staff can see the details in the task results admin."
