"""Our web worker's memory after each phase of the side-by-side workload (issue 12's RSS budget).

    BENCH_DATABASE_URL=postgres://postgres@127.0.0.1:5432/td_perf_bench \\
    BENCH_REDIS_URL=redis://127.0.0.1:6379/6 .venv/bin/python -m bench.rss_phases [PATH ...]

Starts our server alone as bench/side_by_side.sh does (gunicorn, one tradingdash.workers.AsgiWorker) and, as
production runs it beside the web workers, one Celery worker of the compute queue (tradingdash/offload.py), then
prints the web worker's RSS, anonymous and file-backed memory (/proc/<pid>/smaps_rollup) once it answers, and
after 3 x 5 s of wrk at 16 connections on each endpoint (cached quote, historical hit, historical miss). Then each
request of COMPUTING (a quote of a symbol never fetched, indicators, a library exchange's status, a backtest, a
signal, a prediction: the work that loads pandas, TA-Lib or scikit-learn) and each extra PATH is made once and
measured too, and finally which of those libraries the web worker has mapped. `--no-compute-worker`: the same
without the compute worker (the requests are then served in place, as COMPUTE_OFFLOAD=0 would).
"""

import argparse
import json
import os
import tempfile
import urllib.request
from pathlib import Path

from bench import side_by_side as sbs
from bench.harness import setup

PHASES = ("quote", "historical, cache hit", "historical, cache miss")
# (method, path, body): what a web request computes, each made once after the phases.
COMPUTING = (
    ("GET", "/api/market/quote/INFY.NS", None),
    ("GET", "/api/market/indicators/TCS.NS?timeframe=1D&limit=500&names=sma:20,rsi:14,macd,bbands", None),
    ("GET", "/api/market/status?exchange=NYSE", None),
    ("GET", "/api/signals/TCS.NS/backtest", None),
    ("POST", "/api/signals/generate/TCS.NS", {"timeframe": "1D"}),
    ("POST", "/api/predictions/generate/TCS.NS", {"model": "naive", "timeframe": "1D", "horizon": 1}),
)
# Native libraries, seen in /proc/<pid>/maps (exchange_calendars and yfinance are pure Python but load pandas).
LIBRARIES = ("pandas", "talib", "sklearn", "curl_cffi", "tensorflow")


def memory(pid: str) -> str:
    fields = {}
    for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines()[1:]:
        key, value = line.split(":")
        fields[key] = int(value.split()[0]) // 1024
    return f"RSS {fields['Rss']} MiB (anonymous {fields['Anonymous']}, files {fields['Rss'] - fields['Anonymous']})"


def worker_pid(server: sbs.Server) -> str:
    return Path(f"/proc/{server.process.pid}/task/{server.process.pid}/children").read_text().split()[0]


def request(url: str, token: str, method: str, body: dict | None) -> int:
    data = json.dumps(body).encode() if body is not None else None
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
    req = urllib.request.Request(url, data=data, method=method, headers=headers)  # noqa: S310 - our server
    try:
        with urllib.request.urlopen(req, timeout=60) as response:  # noqa: S310
            return response.status
    except urllib.error.HTTPError as exc:
        return exc.code


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("paths", nargs="*", help="more GET paths, each requested once and measured")
    parser.add_argument(
        "--no-compute-worker", action="store_true", help="serve the computing requests in place"
    )
    args = parser.parse_args()
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
        worker = None if args.no_compute_worker else sbs.compute_worker(Path(tmp))
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
            for method, path, body in COMPUTING:
                status = request(server.base + path, token, method, body)
                print(f"after {method} {path} ({status}): {memory(worker_pid(server))}", flush=True)
            for path in args.paths:
                status, _ = sbs.get(server.base + path, token)
                print(f"after {path} ({status}): {memory(worker_pid(server))}", flush=True)
            maps = Path(f"/proc/{worker_pid(server)}/maps").read_text()
            print("mapped in the web worker: " + ", ".join(f"{name} {name in maps}" for name in LIBRARIES))
        finally:
            server.stop()
            if worker is not None:
                worker.terminate()
                worker.wait(timeout=30)
            cache.clear()


if __name__ == "__main__":
    main()
