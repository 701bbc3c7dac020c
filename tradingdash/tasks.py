"""The compute task: what a web worker hands over (tradingdash.offload), run here and answered through Redis."""

from __future__ import annotations

import structlog
from celery import shared_task
from django.conf import settings

from tradingdash.offload import TASK_NAME, answer, run_offloaded


# Time limits near the request's wait: work that outlives the request that asked for it is stopped soon after.
@shared_task(
    name=TASK_NAME,
    acks_late=False,
    ignore_result=True,
    soft_time_limit=settings.COMPUTE_TIMEOUT + 5,
    time_limit=settings.COMPUTE_TIMEOUT + 15,
)
def compute(name: str, kwargs: dict, reply: str, request_id: str | None = None) -> None:
    """Acknowledged on receipt: a worker lost half-way leaves the request to its timeout (a 503 the client may
    retry) instead of a redelivery that would run the work again for an answer nobody waits for. Its log lines
    carry the web request's id."""
    with structlog.contextvars.bound_contextvars(request_id=request_id, offloaded=name):
        answer(reply=reply, encoded=run_offloaded(name=name, kwargs=kwargs))
