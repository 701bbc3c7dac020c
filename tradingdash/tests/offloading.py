"""Test helpers for offloaded functions (tradingdash/offload.py), beside the root conftest's `compute_worker`."""

from collections.abc import Iterator
from contextlib import contextmanager

from tradingdash import offload


@contextmanager
def in_process() -> Iterator[None]:
    """This process as one that is no web worker for a while (a Celery worker, a command, a test's own setup):
    offloaded functions run in place."""
    offload.web_process_mark(False)
    try:
        yield
    finally:
        offload.web_process_mark(True)
