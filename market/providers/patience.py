"""How long a provider call may wait for a rate-limit slot in the current context.

Web requests keep the provider's short default (a thread held for a minute is an outage of its own); Celery
tasks wait longer (market.receivers sets it around every task)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

_patience: ContextVar[float | None] = ContextVar("provider_patience", default=None)


def current_patience() -> float | None:
    """Seconds a call may wait in this context, or None for the provider's own default."""
    return _patience.get()


def set_patience(seconds: float | None) -> None:
    _patience.set(seconds)


@contextmanager
def patience(seconds: float | None) -> Iterator[None]:
    token = _patience.set(seconds)
    try:
        yield
    finally:
        _patience.reset(token)
