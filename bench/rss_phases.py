"""Our web worker's memory after each phase of the side-by-side workload (issue 12's RSS budget).

    BENCH_DATABASE_URL=postgres://postgres@127.0.0.1:5432/td_perf_bench \\
    BENCH_REDIS_URL=redis://127.0.0.1:6379/6 .venv/bin/python -m bench.rss_phases [PATH ...]

Starts our server alone as bench/side_by_side.sh does (gunicorn, one tradingdash.workers.AsgiWorker), then
prints the worker's RSS, anonymous and file-backed memory (/proc/<pid>/smaps_rollup) once it answers, and after
3 x 5 s of wrk at 16 connections on each endpoint (cached quote, historical hit, historical miss); each extra
PATH is then requested once and measured too (an indicators or signals endpoint, say).
"""

import os
import sys
import tempfile
from pathlib import Path

from bench import side_by_side as sbs
from bench.harness import setup

PHASES = ("quote", "historical, cache hit", "historical, cache miss")


def memory(pid: str) -> str:
    fields = {}
    for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines()[1:]:
        key, value = line.split(":")
        fields[key] = int(value.split()[0]) // 1024
    return f"RSS {fields['Rss']} MiB (anonymous {fields['Anonymous']}, files {fields['Rss'] - fields['Anonymous']})"


def worker_pid(server: sbs.Server) -> str:
    return Path(f"/proc/{server.process.pid}/task/{server.process.pid}/children").read_text().split()[0]


def main() -> None:
    setup()
    sbs.store_daily_candles(sbs.SYMBOL, bars=sbs.BARS)
    from django.contrib.auth import get_user_model
    from django.core.cache import cache
    from rest_framework_simplejwt.tokens import AccessToken

    user, _ = get_user_model().objects.get_or_create(
        username="bench", defaults={"email": "bench@example.com"}
    )
    token = str(AccessToken.for_user(user))
    cache.clear()
    with tempfile.TemporaryDirectory(prefix="tradingdash-rss-") as tmp:
        server = sbs.servers(Path(tmp), Path(tmp), os.environ["DATABASE_URL"])[0]
        server.start(sbs.free_port())
        try:
            server.wait_ready(token)
            print(f"ready (one quote answered): {memory(worker_pid(server))}", flush=True)
            vary = 0
            for phase in PHASES:
                for _ in range(3):
                    vary += 1
                    miss = phase.endswith("miss")
                    url = server.base + sbs.ENDPOINTS[phase]
                    sbs.wrk(url, token, seconds=5, connections=16, vary=vary if miss else None)
                print(f"after {phase}: {memory(worker_pid(server))}", flush=True)
            for path in sys.argv[1:]:
                status, _ = sbs.get(server.base + path, token)
                print(f"after {path} ({status}): {memory(worker_pid(server))}", flush=True)
            maps = Path(f"/proc/{worker_pid(server)}/maps").read_text()
            print(
                f"mapped: pandas {'pandas' in maps}, TA-Lib {'talib' in maps}, TensorFlow {'tensorflow' in maps}"
            )
        finally:
            server.stop()
            cache.clear()


if __name__ == "__main__":
    main()
