"""Admin actions that start a Celery task tell staff what really happened to it."""

from __future__ import annotations

import structlog
from celery import Task
from celery.result import EagerResult
from django.contrib import messages
from kombu.exceptions import OperationalError

logger = structlog.get_logger(__name__)


def task_start_from_admin(
    modeladmin, request, *, task: Task, args: list, label: str, task_id: str | None = None
) -> bool:
    """Start `task` (under `task_id` when given) and say so in the admin: its id when queued; its outcome when it
    ran here at once (no broker: tasks run inline); an error, not a 500 page, when the queue is down or the
    inline run failed. Returns whether it was queued (or ran)."""
    try:
        result = task.apply_async(args=args, task_id=task_id)
    except OperationalError as exc:
        logger.warning("admin_task_not_queued", task=task.name, error=str(exc))
        modeladmin.message_user(
            request, f"{label}: not started, the task queue is unavailable ({exc}).", messages.ERROR
        )
        return False
    except Exception as exc:  # inline (no broker), the task itself failed here
        logger.warning("admin_task_failed_inline", task=task.name, error=str(exc))
        modeladmin.message_user(request, f"{label}: failed: {type(exc).__name__}: {exc}", messages.ERROR)
        return True
    if not isinstance(result, EagerResult):
        modeladmin.message_user(request, f"{label}: enqueued as task {result.id}", messages.SUCCESS)
    elif result.successful():
        modeladmin.message_user(request, f"{label}: done (task {result.id} ran inline)", messages.SUCCESS)
    else:
        modeladmin.message_user(
            request, f"{label}: failed (task {result.id}): {result.result}", messages.ERROR
        )
    return True
