"""tradingdash/offload.py: what crosses to a compute worker and back, and when a call stays in place."""

import time
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
from django.core.cache import cache
from structlog.testing import capture_logs

from market.providers.errors import ProviderUnavailable
from market.timeframes import Timeframe
from tradingdash import heartbeats, offload
from tradingdash.celery import app

pytestmark = pytest.mark.django_db


class Refused(Exception):
    pass


@offload.offloaded(errors=(ProviderUnavailable, Refused))
def echo(
    *, timeframe: Timeframe, when: datetime, price: Decimal, body: bytes, day: date | None = None
) -> dict:
    """What arrives, with the types it arrives with."""
    return {
        "timeframe": timeframe,
        "is_timeframe": isinstance(timeframe, Timeframe),
        "spec_bar": timeframe.spec.bar.total_seconds(),
        "when": when,
        "price": price,
        "body": body,
        "day": day,
        "in_web": offload.configured(),
    }


@offload.offloaded(errors=(ProviderUnavailable,))
def fails(*, kind: str) -> None:
    if kind == "provider":
        raise ProviderUnavailable("Yahoo Finance did not answer", retry_after=42)
    raise KeyError(kind)


def not_marked(*, value: int) -> int:
    return value


ARGS = {
    "timeframe": Timeframe.H1,
    "when": datetime(2026, 6, 1, 6, 30, tzinfo=UTC),
    "price": Decimal("2450.05"),
    "body": b'{"a":1}',
    "day": date(2026, 6, 1),
}


def test_arguments_and_answers_keep_their_types_across(compute_worker):
    answer = echo(**ARGS)
    assert compute_worker == ["tradingdash.tests.test_offload:echo"]
    assert answer["in_web"] is False  # it ran on the compute worker's side
    assert answer["is_timeframe"] is True and answer["spec_bar"] == 3600
    assert answer["timeframe"] == "1H"  # an answer's Enum comes back as its value, like any JSON
    assert (answer["when"], answer["price"], answer["body"], answer["day"]) == (
        ARGS["when"],
        ARGS["price"],
        ARGS["body"],
        ARGS["day"],
    )


def test_a_declared_error_is_raised_again_with_its_class_and_attributes(compute_worker):
    with pytest.raises(ProviderUnavailable, match="Yahoo Finance did not answer") as raised:
        fails(kind="provider")
    assert raised.value.retry_after == 42
    assert compute_worker == ["tradingdash.tests.test_offload:fails"]


def test_an_undeclared_error_is_a_failure_not_an_answer(compute_worker):
    with pytest.raises(offload.ComputeFailed, match="KeyError"):
        fails(kind="bug")


def test_outside_a_web_worker_everything_runs_in_place(settings):
    settings.CELERY_TASK_ALWAYS_EAGER = False
    settings.COMPUTE_OFFLOAD = True
    assert not offload.configured()
    assert echo(**ARGS)["is_timeframe"] is True


def test_offload_switched_off_runs_in_place(compute_worker, settings):
    settings.COMPUTE_OFFLOAD = False
    assert echo(**ARGS)["in_web"] is False
    assert compute_worker == []


@offload.offloaded()
def takes(*, thing) -> str:
    return type(thing).__name__


def test_an_argument_json_cannot_carry_runs_in_place(compute_worker):
    assert takes(thing=object()) == "object"
    assert compute_worker == []


def test_a_function_inside_another_cannot_be_offloaded():
    with pytest.raises(TypeError, match="top level"):

        @offload.offloaded()
        def inner(*, value: int) -> int:
            return value


RUNS: list[str] = []


@offload.offloaded()
def side_effect(*, tag: str) -> str:
    RUNS.append(tag)
    return tag


def test_a_lost_answer_is_unavailable_never_a_second_run_in_place(compute_worker, monkeypatch):
    """Sent, the work may have run (a prediction stored, a sync made): the web worker must not run it again."""

    real = offload._redis()

    class Frozen:
        pipeline = real.pipeline  # the compute side answers

        def blpop(self, *args, **kwargs):  # the web side's read of it fails
            raise ConnectionError("Timeout reading from socket")

    RUNS.clear()
    monkeypatch.setattr(offload, "_redis", Frozen)
    with pytest.raises(offload.ComputeUnavailable):
        side_effect(tag="once")
    assert RUNS == ["once"]  # by the compute side only


@offload.offloaded()
def numpy_answer() -> int:
    import numpy as np

    return np.int64(3)


def test_an_answer_json_cannot_carry_is_a_prompt_failure_not_a_timeout(compute_worker, settings):
    settings.COMPUTE_TIMEOUT = 5
    started = time.monotonic()
    with pytest.raises(offload.ComputeFailed, match="int64"):
        numpy_answer()
    assert time.monotonic() - started < 2


def test_a_name_the_worker_does_not_know_is_answered_as_a_failure(settings):
    from kombu.utils.json import loads

    assert "not an offloaded function" in loads(offload.run_offloaded(name="os:getcwd", kwargs={}))["failed"]
    answer = loads(offload.run_offloaded(name="tradingdash.tests.test_offload:renamed", kwargs={}))
    assert "not an offloaded function" in answer["failed"]
    bad_enum = {**ARGS, "timeframe": "7X"}
    answer = loads(offload.run_offloaded(name="tradingdash.tests.test_offload:echo", kwargs=bad_enum))
    assert "7X" in answer["failed"]


@offload.offloaded()
def zoned(*, when: datetime) -> dict:
    return {"zone": when.tzinfo.key, "a_day_before": (when - timedelta(days=1)).isoformat()}


def test_a_datetime_keeps_its_zone_across(compute_worker):
    """A day before 8 March 2026 09:30 in New York (EDT since 02:00) is 09:30 EST, not 08:30 as a fixed -04:00
    gives."""
    when = datetime(2026, 3, 8, 9, 30, tzinfo=ZoneInfo("America/New_York"))
    assert zoned(when=when) == zoned.in_place(when=when)
    assert zoned(when=when) == {"zone": "America/New_York", "a_day_before": "2026-03-07T09:30:00-05:00"}


def test_without_a_live_compute_worker_the_call_runs_in_place(compute_worker, settings):
    cache.delete(heartbeats.WORKER_KEY.format(queue=settings.COMPUTE_QUEUE))
    with capture_logs() as logs:
        answer = echo(**ARGS)
    assert compute_worker == []
    assert answer["in_web"] is True  # served here, by the web worker
    assert any(log["event"] == "compute_in_place" for log in logs)


def test_a_broker_that_refuses_the_task_leaves_the_call_in_place(compute_worker, monkeypatch):
    def refuse(*args, **kwargs):
        raise ConnectionError("broker down")

    monkeypatch.setattr(app, "send_task", refuse)
    assert echo(**ARGS)["in_web"] is True


def test_no_answer_in_time_is_compute_unavailable(compute_worker, monkeypatch, settings):
    settings.COMPUTE_TIMEOUT = 1
    sent = []
    monkeypatch.setattr(app, "send_task", lambda name, **kwargs: sent.append(kwargs))
    with pytest.raises(offload.ComputeUnavailable, match="No compute worker answered within 1 s"):
        echo(**ARGS)
    assert sent[0]["expires"] == 1  # nobody runs it after the request gave up


def test_a_compute_task_runs_only_offloaded_functions():
    from kombu.utils.json import loads

    answer = loads(
        offload.run_offloaded(name="tradingdash.tests.test_offload:not_marked", kwargs={"value": 1})
    )
    assert "not an offloaded function" in answer["failed"]


def test_only_keyword_only_functions_can_be_offloaded():
    with pytest.raises(TypeError, match="keyword arguments only"):

        @offload.offloaded()
        def positional(value):
            return value


def test_the_compute_task_is_routed_to_the_compute_queue(settings):
    assert settings.CELERY_TASK_ROUTES[offload.TASK_NAME] == {"queue": settings.COMPUTE_QUEUE}
    assert settings.COMPUTE_QUEUE in heartbeats.queues_routed()  # /health wants a worker on it
    settings.COMPUTE_OFFLOAD = False
    assert settings.COMPUTE_QUEUE not in heartbeats.queues_routed()  # nothing goes there
    app.loader.import_default_modules()  # what a worker imports at start (autodiscovery)
    assert offload.TASK_NAME in app.tasks


@offload.offloaded()
def patience_seen() -> float | None:
    from market.providers.patience import current_patience

    return current_patience()


def test_the_compute_task_keeps_a_web_requests_patience_for_the_provider(settings):
    """Tasks wait up to YFINANCE_LIMITER_TASK_MAX_WAIT_SECONDS for a rate-limit slot; the compute task serves a
    request that waits COMPUTE_TIMEOUT at most, so it keeps the request's short wait (a prompt 503)."""
    from kombu.utils.json import loads

    from market.receivers import task_patience_end, task_patience_start
    from market.tasks import sync_symbol
    from tradingdash.tasks import compute

    reply = f"{settings.CACHE_KEY_PREFIX}:compute:test-patience"
    compute.apply(
        kwargs={"name": "tradingdash.tests.test_offload:patience_seen", "kwargs": {}, "reply": reply}
    )
    _, raw = offload._redis().blpop([reply], timeout=5)
    assert loads(raw) == {"value": None}  # the provider's own (web) default
    task_patience_start(sender=sync_symbol)
    try:
        assert patience_seen() == settings.YFINANCE_LIMITER_TASK_MAX_WAIT_SECONDS
    finally:
        task_patience_end(sender=sync_symbol)


@offload.offloaded()
def log_context() -> dict:
    import structlog

    return structlog.contextvars.get_contextvars()


def test_the_compute_tasks_log_lines_carry_the_web_requests_id(settings):
    from kombu.utils.json import loads

    from tradingdash.tasks import compute

    reply = f"{settings.CACHE_KEY_PREFIX}:compute:test-request-id"
    name = "tradingdash.tests.test_offload:log_context"
    compute.apply(kwargs={"name": name, "kwargs": {}, "reply": reply, "request_id": "f00d"})
    _, raw = offload._redis().blpop([reply], timeout=5)
    assert loads(raw)["value"] == {"request_id": "f00d", "offloaded": name}
