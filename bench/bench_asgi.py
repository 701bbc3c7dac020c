"""Hot read endpoints through Django's ASGI handler in process (issue 12): what a uvicorn worker runs, minus
the network.

    python -m bench.bench_asgi            (or bench/run.sh for every benchmark)

Each request is handed to tradingdash.asgi's application (our handler, middleware and async views) on an event
loop, as uvicorn hands it over: a scope, the request body, and once the response is complete a disconnect. So the
async hot paths (tradingdash.async_views) answer from memory as in a worker, and a miss reaches the DRF view in
a thread of its own, started per request as in a worker. The process is set up as gunicorn.conf.py and
tradingdash.workers set up a worker (`worker_like`): DATABASE_POOL=1 (a request's thread takes a pooled
connection instead of opening one), two malloc arenas, the URLconf loaded and the market data provider's module
imported, the start-up objects frozen out of the garbage collector's sight.

Figures: the wall time from handing the request over to its last body message (what a client waits for,
without the network), the time until the application returned (it closes the response after sending it:
`request_finished`, the connection back to the pool, tradingdash.after_response's cache writes), and the
process's CPU time (every thread) per request.

The historical miss asks each time for the same latest 2,500 daily candles with a distinct `end` far in the
future: it misses the response cache only, as a real miss does (the per-process and Redis caches of the symbol's
version, the catalogue and the user stay warm, and so do the rendered months the process holds: a worker's first
miss of a symbol is sent every month's contents, bench/README.md, "Eleventh look").
"""

from __future__ import annotations

import asyncio
import contextvars
import os
import time

from bench.harness import Report, cli, finish, jwt_client, pct, setup, spread, store_daily_candles

SYMBOL = "RELIANCE.NS"  # in the seeded catalogue, so the synthetic provider serves it
HISTORY_BARS = 2500
REQUESTS = 200
WARM_UP = 10
MISS_TARGET_MS = 6.0  # issue 12: historical cache miss p50 in process


def far_end(i: int) -> str:
    """A distinct `end` per i (i < 86,400), decades after the stored candles."""
    return f"2099-01-01T{i // 3600:02d}:{i // 60 % 60:02d}:{i % 60:02d}Z"


async def asgi_get(path: str, authorization: str) -> tuple[int, float, float]:
    """(status, ms to the last body message, ms until the application returned) of one GET."""
    from tradingdash.asgi import application

    path, _, query = path.partition("?")
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "GET",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": query.encode(),
        "root_path": "",
        "headers": [(b"host", b"127.0.0.1"), (b"authorization", authorization.encode())],
        "client": ("127.0.0.1", 50000),
        "server": ("127.0.0.1", 8000),
    }
    incoming = [{"type": "http.request", "body": b"", "more_body": False}]
    complete = asyncio.Event()
    status, last = [0], [0.0]

    async def receive():
        if incoming:
            return incoming.pop()
        await complete.wait()
        return {"type": "http.disconnect"}

    async def send(message):
        if message["type"] == "http.response.start":
            status[0] = message["status"]
        elif not message.get("more_body"):
            last[0] = time.perf_counter()
            complete.set()

    started = time.perf_counter()
    # In a context of its own, as a server's task for the connection.
    await contextvars.Context().run(asyncio.create_task, application(scope, receive, send))
    done = time.perf_counter()
    return status[0], (last[0] - started) * 1000, (done - started) * 1000


async def measure(authorization: str, target) -> tuple[list[float], list[float], list[float]]:
    times, done, cpu = [], [], []
    for i in range(1, REQUESTS + WARM_UP + 1):
        started_cpu = time.process_time()
        status, last_ms, done_ms = await asgi_get(target(i), authorization)
        cpu_ms = (time.process_time() - started_cpu) * 1000
        assert status == 200, (status, target(i))
        if i > WARM_UP:  # the first ones fill the per-process caches
            times.append(last_ms)
            done.append(done_ms)
            cpu.append(cpu_ms)
    return times, done, cpu


def bench_endpoints(report: Report) -> None:
    from django.core.cache import cache

    stored = store_daily_candles(SYMBOL, bars=HISTORY_BARS)
    authorization = jwt_client()._credentials["HTTP_AUTHORIZATION"]
    bare = SYMBOL.removesuffix(".NS")
    history = f"/api/market/historical/{bare}?timeframe=1D&limit={HISTORY_BARS}"
    cases = {
        "GET /api/market/historical, 2,500 daily candles, cache miss (a distinct far-future end each)": (
            lambda i: f"{history}&end={far_end(i)}"
        ),
        "GET /api/market/historical, 2,500 daily candles, cache hit": lambda i: f"{history}&end={far_end(0)}",
        "GET /api/market/quote, cache hit": lambda i: f"/api/market/quote/{bare}",
    }
    cache.clear()  # no body from an earlier run under these ends

    async def run():
        return {name: await measure(authorization, target) for name, target in cases.items()}

    for name, (times, done, cpu) in asyncio.run(run()).items():
        miss = "miss" in name
        p50 = pct(times, 50)
        report.add(
            area="ASGI",
            name=name,
            value=f"p50 {p50:.2f} ms",
            target=f"p50 ≤ {MISS_TARGET_MS:g} ms" if miss else "—",
            passed=(p50 <= MISS_TARGET_MS) if miss else None,
            detail=(
                f"to the last body byte: {spread(times)}; application returned p50 {pct(done, 50):.2f} ms; "
                f"CPU p50 {pct(cpu, 50):.2f} ms per request; {stored:,} candles stored"
            ),
        )


def worker_like() -> None:
    """What tradingdash.workers.AsgiWorker does in each worker once Django is set up: the URLconf loaded and the
    market data provider's module imported, then the start-up objects frozen out of the garbage collector's sight
    and its young-generation threshold raised."""
    from django.urls import get_resolver

    from market.sources import provider_preload
    from tradingdash.workers import DEFAULT_GC_THRESHOLD, GC_THRESHOLD_ENV, settle_gc

    get_resolver().url_patterns  # noqa: B018 - loads the URLconf
    provider_preload()
    settle_gc(int(os.environ.get(GC_THRESHOLD_ENV, DEFAULT_GC_THRESHOLD)))


def main() -> None:
    args = cli(__doc__.splitlines()[0])
    # As tradingdash/gunicorn.conf.py sets up every worker before it loads the app: a pooled connection per
    # request thread, at most WEB_MALLOC_ARENA_MAX malloc arenas (before the pool's threads make their own).
    os.environ["DATABASE_POOL"] = "1"
    from tradingdash.malloc import malloc_arena_max_set

    malloc_arena_max_set(int(os.environ.get("WEB_MALLOC_ARENA_MAX", "2")))
    setup()
    worker_like()
    report = Report()
    bench_endpoints(report)
    finish(report, args.json)


if __name__ == "__main__":
    main()
