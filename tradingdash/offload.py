"""Computation a web request needs, run in a Celery worker instead of the web worker (issue 12's memory budget).

A web worker serves reads from its caches, Redis and PostgreSQL with Django, DRF and NumPy: about 130 MiB. Asking
the market data provider (pandas; yfinance and its HTTP stack), computing indicators (TA-Lib, which loads pandas),
signals and backtests (pandas), a prediction (scikit-learn) or a library exchange calendar (exchange_calendars)
would load 30-150 MiB more into every web worker that ever served one such request, for as long as it lives.
So a function that does such work is marked `@offloaded(...)`; called in a web worker, it runs in a worker of the
`compute` queue (COMPUTE_QUEUE), which has all of it loaded already (tradingdash.celery.computation_preload),
and the request waits for its answer. Everywhere else (Celery workers, management commands, tests,
`make run`'s development server) it runs in place, as before.

The call and its answer cross as JSON (kombu's: datetimes, dates, decimals and bytes keep their types; an
argument annotated with an Enum, such as Timeframe, is made one again), the answer through a Redis list the
request blocks on (BLPOP), not the result backend, which would be polled every half second. An exception the
function declares (`errors=`) is raised again in the web worker with its class, arguments and attributes, so the
view maps it as it did in process (404, 422, 503 with the provider's reason); any other is a failure.

When no worker of the compute queue has beat within ALIVE_WITHIN seconds (tradingdash.heartbeats), or the broker cannot take
the task, the function runs in place: serving the request matters more than the memory, and /health reports the
missing worker. A worker that takes the task but does not answer within COMPUTE_TIMEOUT seconds is a 503
(`compute_unavailable`), never a hung request; the task expires with the wait, so it is not run later for no one.
"""

from __future__ import annotations

import functools
import importlib
import importlib.util
import inspect
import threading
import time
import typing
import uuid
from collections.abc import Callable
from datetime import datetime
from enum import Enum
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import structlog
from django.conf import settings
from kombu.utils.json import dumps, loads

logger = structlog.get_logger(__name__)

TASK_NAME = "tradingdash.compute"
REPLY_SECONDS = 60  # an answer nobody waits for any more is gone after this
# A compute worker's heartbeat (written every heartbeats.WRITE_EVERY seconds) older than this: none is alive, the
# call runs in place rather than wait COMPUTE_TIMEOUT for nobody. Tighter than /health's minute.
ALIVE_WITHIN = 25.0

_web_process = False
_client_lock = threading.Lock()
_client = None


class ComputeUnavailable(Exception):
    """No compute worker answered in time: the request may be retried shortly (503 compute_unavailable)."""

    retry_after = 5


class ComputeFailed(Exception):
    """The offloaded function raised something it does not declare: a bug, as it would be in process (500)."""


def web_process_mark(marked: bool = True) -> None:
    """This process serves web requests (tradingdash.workers.AsgiWorker at start; tests): offloaded functions
    called here run in compute workers when COMPUTE_OFFLOAD is on."""
    global _web_process
    _web_process = marked


def configured() -> bool:
    """Offloading applies in this process: a web worker, COMPUTE_OFFLOAD on, and a real broker and Redis (without
    REDIS_URL tasks run eagerly in process anyway)."""
    return (
        _web_process
        and settings.COMPUTE_OFFLOAD
        and bool(settings.REDIS_URL)
        and not settings.CELERY_TASK_ALWAYS_EAGER
    )


def _workers_alive() -> bool:
    from tradingdash.heartbeats import worker_ages

    age = worker_ages().get(settings.COMPUTE_QUEUE)
    return age is not None and age < ALIVE_WITHIN


def _redis():
    """This process's client for the answers: its own, since the cache's client times out in half a second and an
    answer may take COMPUTE_TIMEOUT."""
    global _client
    with _client_lock:
        if _client is None:
            import redis

            _client = redis.Redis.from_url(
                settings.REDIS_URL,
                socket_connect_timeout=settings.REDIS_CONNECT_TIMEOUT,
                socket_timeout=settings.COMPUTE_TIMEOUT + 5,
                health_check_interval=30,
            )
        return _client


def client_reset() -> None:
    """Tests: the next answer is read over a new connection (a test may point REDIS_URL elsewhere)."""
    global _client
    with _client_lock:
        _client = None


# "module:qualname" -> the decorated function, filled as modules are imported.
_registry: dict[str, Callable] = {}
# Called in the web worker with each offloaded call's keyword arguments once a compute worker answered (whatever
# the answer): what that work may have changed in shared state, this process may hold copies of (market drops its
# per-process copy of the symbol's version, as a write in this process would have replaced it).
_answered_hooks: list[Callable[[dict], None]] = []


def on_answered(hook: Callable[[dict], None]) -> None:
    if hook not in _answered_hooks:
        _answered_hooks.append(hook)


def _qualified(func: Callable) -> str:
    return f"{func.__module__}:{func.__qualname__}"


def _project_module(module: str) -> bool:
    """`module` is one of the project's own (under BASE_DIR), the only ones a message may have imported."""
    spec = importlib.util.find_spec(module.partition(".")[0])
    origin = spec and (spec.origin or next(iter(spec.submodule_search_locations or []), None))
    return bool(origin) and Path(origin).resolve().is_relative_to(Path(settings.BASE_DIR).resolve())


def _resolve(name: str) -> Callable:
    """The offloaded function called `name` ("module:qualname"): nothing else may be run by a compute task. Its
    module is imported first when this worker has not yet, if it is one of the project's."""
    module = name.partition(":")[0]
    if name not in _registry and _project_module(module):
        importlib.import_module(module)
    try:
        return _registry[name]
    except KeyError:
        raise ComputeFailed(f"{name} is not an offloaded function") from None


def _enum_arguments(func: Callable) -> dict[str, type[Enum]]:
    """The keyword arguments of `func` annotated with an Enum (Timeframe, or `Timeframe | None`), which JSON
    carries as plain values. A string annotation (`from __future__ import annotations`) is read by looking its
    names up in the function's module, not evaluated; a name only a type checker sees is skipped."""
    found = {}
    for name, annotation in inspect.get_annotations(func).items():
        candidates = typing.get_args(annotation) or (annotation,)
        if isinstance(annotation, str):
            candidates = tuple(_named(part.strip(), func.__globals__) for part in annotation.split("|"))
        for candidate in candidates:
            if isinstance(candidate, type) and issubclass(candidate, Enum):
                found[name] = candidate
                break
    return found


def _named(dotted: str, namespace: dict) -> Any:
    head, *rest = dotted.split(".")
    target = namespace.get(head)
    for part in rest:
        target = getattr(target, part, None)
    return target


def _error_wire(exc: Exception) -> dict:
    attrs = {}
    for key, value in vars(exc).items():
        try:
            dumps(value)
        except TypeError:
            value = str(value)
        attrs[key] = value
    args = []
    for value in exc.args:
        try:
            dumps(value)
        except TypeError:
            value = str(value)
        args.append(value)
    cls = type(exc)
    return {"type": f"{cls.__module__}:{cls.__qualname__}", "args": args, "attrs": attrs}


def _error_from_wire(wire: dict, declared: tuple[type[Exception], ...]) -> Exception:
    module, _, qualname = wire["type"].partition(":")
    cls: Any = None
    try:
        if _project_module(module):
            cls = importlib.import_module(module)
            for part in qualname.split("."):
                cls = getattr(cls, part)
    except (ImportError, AttributeError):
        cls = None
    if not (isinstance(cls, type) and issubclass(cls, declared)):
        return ComputeFailed(f"{wire['type']}: {wire['args']}")
    try:
        exc = cls.__new__(cls)
        exc.args = tuple(wire["args"])
        exc.__dict__.update(wire["attrs"])
    except (
        Exception
    ) as rebuilding:  # a class that refuses it (a frozen dataclass): a bug to fix, said as such
        return ComputeFailed(f"{wire['type']} {wire['args']} could not be rebuilt: {rebuilding!r}")
    return exc


def offloaded(
    *,
    errors: tuple[type[Exception], ...] = (),
    encode: Callable[[Any], Any] | None = None,
    decode: Callable[[Any], Any] | None = None,
) -> Callable[[Callable], Callable]:
    """Mark a keyword-only function whose work does not belong in a web worker (see the module's docstring).

    `errors`: the exceptions it raises as answers (raised again in the web worker as they are); `encode` turns its
    return value into JSON-able data in the compute worker and `decode` back in the web worker (a dataclass:
    `dataclasses.asdict` and the class). A call with an argument JSON cannot carry (a provider object, as tests
    pass) runs in place."""

    def decorate(func: Callable) -> Callable:
        name = _qualified(func)
        keyword_only = all(
            parameter.kind is inspect.Parameter.KEYWORD_ONLY
            for parameter in inspect.signature(func).parameters.values()
        )
        if not keyword_only:
            raise TypeError(f"{name}: an offloaded function takes keyword arguments only")
        if "<locals>" in func.__qualname__:
            raise TypeError(
                f"{name}: an offloaded function is defined at a module's top level (a worker finds it)"
            )

        @functools.wraps(func)
        def call(**kwargs):
            if not configured():
                return func(**kwargs)
            try:
                payload = dumps(_zoned_out(kwargs))
            except TypeError:
                return func(**kwargs)
            return _run_remote(
                name=name, func=func, payload=payload, errors=errors, decode=decode, kwargs=kwargs
            )

        call.offloaded = True
        call.in_place = func
        call.errors = errors
        call.encode = encode
        _registry[name] = call
        return call

    return decorate


def _run_remote(*, name, func, payload, errors, decode, kwargs):
    from tradingdash.metrics import COMPUTE_OFFLOADED

    if not _workers_alive():
        logger.warning("compute_in_place", function=name, reason="no compute worker alive")
        COMPUTE_OFFLOADED.labels(function=name, outcome="in_place").inc()
        return func(**kwargs)
    timeout = settings.COMPUTE_TIMEOUT
    reply = f"{settings.CACHE_KEY_PREFIX}:compute:{uuid.uuid4().hex}"
    started = time.monotonic()
    try:
        from tradingdash.celery import app

        request_id = structlog.contextvars.get_contextvars().get("request_id")
        app.send_task(
            TASK_NAME,
            kwargs={"name": name, "kwargs": loads(payload), "reply": reply, "request_id": request_id},
            queue=settings.COMPUTE_QUEUE,
            expires=timeout,
        )
    except Exception as exc:  # the broker refused the task: nothing runs it, serve the request in place
        logger.warning("compute_in_place", function=name, reason=repr(exc))
        COMPUTE_OFFLOADED.labels(function=name, outcome="in_place").inc()
        return func(**kwargs)
    try:
        popped = _redis().blpop([reply], timeout=timeout)
    except Exception as exc:  # sent, so it may run: never a second time here
        logger.error("compute_answer_lost", function=name, error=repr(exc))
        popped = None
    if popped is None:
        logger.error("compute_timeout", function=name, seconds=timeout)
        COMPUTE_OFFLOADED.labels(function=name, outcome="timeout").inc()
        raise ComputeUnavailable(
            f"No compute worker answered within {timeout} s (queue {settings.COMPUTE_QUEUE!r}); try again shortly."
        )
    answer = loads(popped[1])
    logger.debug("compute_answered", function=name, ms=round((time.monotonic() - started) * 1000, 1))
    for hook in _answered_hooks:
        hook(kwargs)
    if "error" in answer:
        COMPUTE_OFFLOADED.labels(function=name, outcome="error").inc()
        raise _error_from_wire(answer["error"], errors)
    if "failed" in answer:
        COMPUTE_OFFLOADED.labels(function=name, outcome="failed").inc()
        raise ComputeFailed(f"{name} failed in a compute worker: {answer['failed']}")
    COMPUTE_OFFLOADED.labels(function=name, outcome="ok").inc()
    value = answer["value"]
    return decode(value) if decode is not None else value


def run_offloaded(*, name: str, kwargs: dict) -> str:
    """The compute task's work: run the function called `name` in place and wrap its answer (or the exception it
    declares) for the web worker waiting on it, encoded. Whatever fails on this side (a name this worker does not
    know, an argument it cannot convert, an answer JSON cannot carry) is answered too, as a failure: the request
    is told at once rather than after COMPUTE_TIMEOUT."""
    try:
        call = _resolve(name)
        kwargs = _zoned_in(kwargs)
        for key, enum in _enum_arguments(call.in_place).items():
            if isinstance(kwargs.get(key), str):
                kwargs[key] = enum(kwargs[key])
        try:
            envelope = {"value": call.in_place(**kwargs)}
            if call.encode is not None:
                envelope["value"] = call.encode(envelope["value"])
        except call.errors as exc:
            envelope = {"error": _error_wire(exc)}
        return dumps(envelope)
    except Exception as exc:
        logger.exception("compute_failed", function=name)
        return dumps({"failed": repr(exc)})


def answer(*, reply: str, encoded: str) -> None:
    """Hand the encoded envelope to the web worker blocked on `reply` (kept REPLY_SECONDS for one that is late)."""
    client = _redis()
    with client.pipeline() as pipe:
        pipe.rpush(reply, encoded)
        pipe.expire(reply, REPLY_SECONDS)
        pipe.execute()


_ZONED = "__zoned__"


def _zoned_out(kwargs: dict) -> dict:
    """Datetimes in a named zone (an API date read in the exchange's zone) keep it across: JSON's offset alone
    would lose the zone's rules, and arithmetic across a DST change would differ from the call in place."""
    return {
        key: {_ZONED: value.isoformat(), "zone": value.tzinfo.key}
        if isinstance(value, datetime) and isinstance(value.tzinfo, ZoneInfo)
        else value
        for key, value in kwargs.items()
    }


def _zoned_in(kwargs: dict) -> dict:
    return {
        key: datetime.fromisoformat(value[_ZONED]).astimezone(ZoneInfo(value["zone"]))
        if isinstance(value, dict) and set(value) == {_ZONED, "zone"}
        else value
        for key, value in kwargs.items()
    }
