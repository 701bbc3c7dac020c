"""Celery signal receivers, connected in PredictionsConfig.ready."""

from __future__ import annotations

from predictions.services import task_announce


def announce_task_finished(
    sender=None, task_id: str | None = None, state: str | None = None, **kwargs
) -> None:
    """A task ended (SUCCESS, FAILURE or RETRY): tell its owner, if someone started it through the API."""
    if task_id and state:
        task_announce(task_id=task_id, state=state, progress=1.0 if state == "SUCCESS" else None)
