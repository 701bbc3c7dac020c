"""Reactions to other apps' events (tradingdash.events), subscribed in PredictionsConfig.ready. Each handler only
enqueues a task after the announcing transaction commits; the work happens in the worker (re-scoring: here, when
the broker cannot take it)."""

from __future__ import annotations

from datetime import datetime, time, timedelta

import structlog
from django.db import transaction
from django.db.models import Max, Min
from kombu.exceptions import OperationalError

from market.sources import time_zone_for_symbol
from predictions.models import Prediction, TaskRecord
from predictions.services import models_flag_readjusted, models_flag_revised, task_announce
from tradingdash.events import CandlesDeleted, CandlesStored, CorporateActionsChanged

logger = structlog.get_logger(__name__)


def _rescore_after_commit(args: list[str]) -> None:
    """Queue the re-scoring once the announcing transaction commits; with the broker unreachable, re-score at once
    (a few rows, the database only) rather than lose it: nothing else would ever re-score those predictions."""
    from predictions.tasks import rescore_predictions

    def enqueue() -> None:
        try:
            rescore_predictions.delay(*args)
        except OperationalError as exc:
            logger.warning("rescore_inline", reason="broker unavailable", error=str(exc), args=args)
            rescore_predictions(*args)

    transaction.on_commit(enqueue)


def rescore_on_candles_stored(event: CandlesStored) -> None:
    """Candles were stored or changed (a partial bar completed): re-score the predictions that target them.
    Nothing is enqueued when no prediction targets the range, which is the case for most syncs."""
    if event.first is None or event.last is None:
        return
    targeted = Prediction.objects.filter(
        symbol=event.symbol,
        timeframe=event.timeframe,
        target_time__gte=event.first,
        target_time__lte=event.last,
    ).exists()
    if not targeted:
        return
    _rescore_after_commit([event.symbol, event.timeframe, event.first.isoformat(), event.last.isoformat()])


def flag_models_on_candles_stored(event: CandlesStored) -> None:
    """Bars were inserted or rewritten: the model versions whose training window holds one of them were trained
    on other candles than those now stored (bars appended after a window leave it alone). Done here, not queued:
    it is a select of a key's versions and one update, no more than the re-scoring's check before it queues, and
    a task lost with the broker would leave the versions claiming bars they never saw. Announced after commit."""
    models_flag_revised(symbol=event.symbol, timeframe=event.timeframe, stamps=event.written)


def flag_models_on_candles_deleted(event: CandlesDeleted) -> None:
    """Bars were deleted: the versions trained on them no longer describe the stored candles (as above)."""
    models_flag_revised(symbol=event.symbol, timeframe=event.timeframe, stamps=event.deleted)


def flag_models_on_corporate_actions(event: CorporateActionsChanged) -> None:
    """A split or bonus was entered, changed or deleted: the versions trained on split-adjusted candles from before
    its ex-date were trained on other prices than a read gives now (a dividend changes nothing they read)."""
    if event.share_count:
        tz = time_zone_for_symbol(event.symbol)
        models_flag_readjusted(symbol=event.symbol, before=datetime.combine(event.last, time(), tz))


def rescore_on_corporate_actions(event: CorporateActionsChanged) -> None:
    """A split or bonus going ex between a prediction's base bar and its target changes the ratio its realized
    close is converted to the base bar's prices by (one staff enter after scoring): re-score those predictions."""
    tz = time_zone_for_symbol(event.symbol)
    across = (
        Prediction.objects.filter(
            symbol=event.symbol,
            target_time__gte=datetime.combine(event.first, time(), tz),
            base_timestamp__lt=datetime.combine(event.last + timedelta(days=1), time(), tz),
        )
        .values("timeframe")
        .annotate(first=Min("target_time"), last=Max("target_time"))
    )
    for row in across:
        _rescore_after_commit(
            [event.symbol, row["timeframe"], row["first"].isoformat(), row["last"].isoformat()]
        )


def announce_task_finished(
    sender=None, task_id: str | None = None, state: str | None = None, **kwargs
) -> None:
    """A task ended (SUCCESS, FAILURE or RETRY): tell its owner, if someone started it through the API."""
    if task_id and state:
        task_announce(task_id=task_id, state=state, progress=1.0 if state == "SUCCESS" else None)
    if task_id and state == "FAILURE":
        _followers_end(task_id=task_id, state="FAILURE")


def announce_task_revoked(sender=None, request=None, **kwargs) -> None:
    """A task was revoked (an operator's `celery control revoke`, or expired): it never runs, so no task_postrun
    tells its owner, nor the users whose predictions wait on it."""
    task_id = getattr(request, "id", None)
    if task_id:
        task_announce(task_id=task_id, state="REVOKED")
        _followers_end(task_id=task_id, state="REVOKED")


def _followers_end(*, task_id: str, state: str) -> None:
    """The followers of a training that ended without releasing them will never start: their end is its end."""
    followers = TaskRecord.objects.filter(follows__task_id=task_id, follows__released_at__isnull=True)
    for follower_id in followers.values_list("task_id", flat=True):
        task_announce(task_id=follower_id, state=state)
