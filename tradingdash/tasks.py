"""The compute task: what a web worker hands over (tradingdash.offload), run here and answered through Redis."""

from __future__ import annotations

import structlog
from celery import shared_task

from tradingdash.offload import TASK_NAME, answer, run_offloaded


@shared_task(name=TASK_NAME, acks_late=False, ignore_result=True)
def compute(name: str, kwargs: dict, reply: str, request_id: str | None = None) -> None:
    """Acknowledged on receipt: a worker lost half-way leaves the request to its timeout (a 503 the client may
    retry) instead of a redelivery that would run the work again for an answer nobody waits for. Its log lines
    carry the web request's id."""
    with structlog.contextvars.bound_contextvars(request_id=request_id, offloaded=name):
        answer(reply=reply, envelope=run_offloaded(name=name, kwargs=kwargs))
