"""Our hot read paths against the seed's own stack (bench/peer/), side by side on the same rows.

    bench/side_by_side.sh                      (make bench-peer; creates bench/peer/.venv first)
    bench/side_by_side.sh --duration 10 --rounds 3
    bench/side_by_side.sh --wsgi               (also ours under the old WSGI gthread worker, for comparison)

Same database (the bench database of bench/harness.py), same symbol and 2,500 daily candles, one worker per
server, wrk with 16 connections. For each endpoint the servers take turns (ours, peer; again), so a noisy
machine slows all of them alike; the ratio is ours / peer within one round. Prints one markdown table of every
run and one of the ratios against the issue-12 targets.

Servers: ours as in production (tradingdash/gunicorn.conf.py: gunicorn with tradingdash.workers.AsgiWorker
serving tradingdash/asgi.py, one worker, DEBUG off, JSON INFO request logs, Prometheus in multiprocess mode);
with --wsgi also tradingdash.wsgi under a gthread worker with 2 threads; the peer under gunicorn with one
UvicornWorker.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

from bench.harness import REPO, bench_env, setup, store_daily_candles

SYMBOL = "TCS.NS"
BARS = 2500
PEER_DIR = REPO / "bench" / "peer"
PEER_BIN = PEER_DIR / ".venv" / "bin"
LUA = PEER_DIR / "report.lua"
START_TIMEOUT_S = 120
HISTORY = f"/api/market/historical/TCS?timeframe=1D&limit={BARS}"
ENDPOINTS = {
    "quote": "/api/market/quote/TCS",
    "historical, cache hit": HISTORY,
    "historical, cache miss": HISTORY,  # a distinct `end` per request (report.lua): every request misses
}
# Minimum ratio ours / peer (req/s, same round) per endpoint: issue 12.
TARGETS = {"quote": 2.5, "historical, cache hit": 10.0, "historical, cache miss": 4.0}


@dataclass
class Server:
    name: str
    command: list[str]
    env: dict[str, str]
    cwd: Path
    log: Path
    process: subprocess.Popen | None = None
    base: str = ""

    def start(self, port: int) -> None:
        self.base = f"http://127.0.0.1:{port}"
        self.command = [arg.replace("{port}", str(port)) for arg in self.command]
        self.env = {key: value.replace("{port}", str(port)) for key, value in self.env.items()}
        self.process = subprocess.Popen(
            self.command, cwd=self.cwd, env=self.env, stdout=self.log.open("w"), stderr=subprocess.STDOUT
        )

    def wait_ready(self, token: str) -> None:
        started = time.monotonic()
        while True:
            try:
                status, _ = get(self.base + ENDPOINTS["quote"], token)
                if status == 200:
                    return
            except OSError:  # not listening yet, or still importing (URLError, timeouts)
                pass
            if self.process.poll() is not None or time.monotonic() - started > START_TIMEOUT_S:
                raise RuntimeError(f"{self.name} did not start: see {self.log}")
            time.sleep(0.3)

    def worker_rss_mib(self) -> float | None:
        children = Path(f"/proc/{self.process.pid}/task/{self.process.pid}/children").read_text().split()
        if not children:
            return None
        status = Path(f"/proc/{children[0]}/status").read_text()
        return int(re.search(r"^VmRSS:\s+(\d+) kB", status, re.M).group(1)) / 1024

    def worker_cpu_s(self) -> float:
        """User + system CPU seconds the worker has used: per request, a cost the machine's noise barely moves."""
        children = Path(f"/proc/{self.process.pid}/task/{self.process.pid}/children").read_text().split()
        fields = Path(f"/proc/{children[0]}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def worker_maps(self, pattern: str) -> bool:
        children = Path(f"/proc/{self.process.pid}/task/{self.process.pid}/children").read_text().split()
        return (
            bool(children) and re.search(pattern, Path(f"/proc/{children[0]}/maps").read_text()) is not None
        )

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=20)


@dataclass
class Run:
    endpoint: str
    server: str
    round: int
    rps: float
    p50_ms: float
    p99_ms: float
    errors: int
    cpu_ms: float  # worker CPU per request


@dataclass
class Results:
    runs: list[Run] = field(default_factory=list)

    def of(self, endpoint: str, server: str) -> list[Run]:
        return [r for r in self.runs if r.endpoint == endpoint and r.server == server]


def get(url: str, token: str) -> tuple[int, bytes]:
    request = urllib.request.Request(url, headers={"Authorization": f"Bearer {token}"})  # noqa: S310
    try:
        with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310 - our local servers
            return response.status, response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wrk(url: str, token: str, *, seconds: int, connections: int, vary: int | None) -> dict:
    env = {**os.environ}
    if vary is not None:
        env["SBS_VARY_END"] = str(vary)
    command = ["wrk", "--latency", "-t", "2", "-c", str(connections), "-d", f"{seconds}s", "--timeout", "10s"]
    command += ["-s", str(LUA), "-H", f"Authorization: Bearer {token}", url]
    out = subprocess.run(
        command, capture_output=True, text=True, env=env, timeout=seconds + 60, check=True
    ).stdout
    return json.loads(next(line for line in out.splitlines() if line.startswith("{")))


def servers(workdir: Path, logs: Path, database_url: str, *, wsgi: bool = False) -> list[Server]:
    gunicorn = str(Path(sys.executable).with_name("gunicorn"))
    ours_env = {
        **{k: v for k, v in bench_env().items() if not k.startswith("GUNICORN_")},
        "DEBUG": "0",
        "ALLOWED_HOSTS": "127.0.0.1",
        "LOG_LEVEL": "INFO",
        "LOG_FORMAT": "json",
        "GUNICORN_WORKERS": "1",
        "GUNICORN_BIND": "127.0.0.1:{port}",
        "PROMETHEUS_MULTIPROC_DIR": str(workdir / "prometheus"),
    }
    (workdir / "prometheus").mkdir()
    # Production: gunicorn.conf.py's worker class (tradingdash.workers.AsgiWorker) and its DATABASE_POOL.
    listed = [
        Server(
            name="ours",
            command=[gunicorn, "tradingdash.asgi:application", "-c", "tradingdash/gunicorn.conf.py"],
            env=ours_env,
            cwd=REPO,
            log=logs / "ours-asgi.log",
        )
    ]
    if wsgi:
        listed.append(
            Server(
                name="ours (WSGI)",
                command=[
                    gunicorn,
                    "tradingdash.wsgi:application",
                    "-c",
                    "tradingdash/gunicorn.conf.py",
                    "-k",
                    "gthread",
                    "--threads",
                    "2",
                ],
                env=ours_env,
                cwd=REPO,
                log=logs / "ours-wsgi.log",
            )
        )
    peer_env = {
        "PATH": os.environ["PATH"],
        "PEER_DATABASE_URL": database_url.replace("postgres://", "postgresql+psycopg://", 1),
        "PEER_JWT_SIGNING_KEY": bench_env()["JWT_SIGNING_KEY"],
    }
    listed.append(
        Server(
            name="peer",
            command=[
                str(PEER_BIN / "gunicorn"),
                "app:app",
                "-w",
                "1",
                "-k",
                "uvicorn.workers.UvicornWorker",
                "-b",
                "127.0.0.1:{port}",
            ],
            env=peer_env,
            cwd=PEER_DIR,
            log=logs / "peer.log",
        )
    )
    return listed


def check_responses(listed: list[Server], token: str) -> None:
    """Both stacks answer the same question with the same rows before anything is timed."""
    closes = set()
    for server in listed:
        status, body = get(server.base + HISTORY, token)
        assert status == 200, (server.name, status, body[:300])
        payload = json.loads(body)
        assert payload["count"] == BARS, (server.name, payload["count"])
        closes.add((payload["candles"][0]["close"], payload["candles"][-1]["close"]))
        status, body = get(server.base + ENDPOINTS["quote"], token)
        assert status == 200 and json.loads(body)["symbol"] == SYMBOL, (server.name, status, body[:300])
    assert len(closes) == 1, f"the servers returned different candles: {closes}"


def table(results: Results) -> str:
    lines = [
        "| endpoint | server | round | req/s | p50 ms | p99 ms | errors |",
        "|---|---|---:|---:|---:|---:|---:|",
    ]
    lines += [
        f"| {r.endpoint} | {r.server} | {r.round} | {r.rps:,.0f} | {r.p50_ms:.1f} | {r.p99_ms:.1f} | {r.errors} |"
        for r in results.runs
    ]
    return "\n".join(lines)


def ratios(results: Results, names: list[str]) -> tuple[str, bool]:
    lines = [
        "| endpoint | server | req/s (median) | p50 ms | p99 ms | CPU ms/req | ratio to peer per round | target "
        "| result |",
        "|---|---|---:|---:|---:|---:|---|---|---|",
    ]
    passed = True
    for endpoint, target in TARGETS.items():
        peer = {r.round: r for r in results.of(endpoint, "peer")}
        for name in names:
            runs = results.of(endpoint, name)
            if not runs:
                continue
            median = statistics.median(r.rps for r in runs)
            p50 = statistics.median(r.p50_ms for r in runs)
            p99 = statistics.median(r.p99_ms for r in runs)
            cpu = statistics.median(r.cpu_ms for r in runs)
            if name == "peer":
                lines.append(
                    f"| {endpoint} | peer | {median:,.0f} | {p50:.1f} | {p99:.1f} | {cpu:.2f} | — | — | — |"
                )
                continue
            per_round = [r.rps / peer[r.round].rps for r in runs if peer.get(r.round) and peer[r.round].rps]
            ok = bool(per_round) and min(per_round) >= target and not any(r.errors for r in runs)
            passed &= ok or name != "ours"
            shown = ", ".join(f"{x:.1f}×" for x in per_round)
            lines.append(
                f"| {endpoint} | {name} | {median:,.0f} | {p50:.1f} | {p99:.1f} | {cpu:.2f} | {shown} | ≥ {target:g}× | "
                f"{'pass' if ok else '**FAIL**'} |"
            )
    return "\n".join(lines), passed


def compute_worker(logs: Path) -> subprocess.Popen:
    """One Celery worker of the compute queue, started and beating (its heartbeat in the cache)."""
    from django.conf import settings
    from django.core.cache import cache

    from tradingdash.heartbeats import WORKER_KEY

    celery = str(Path(sys.executable).with_name("celery"))
    env = {**os.environ, "DEBUG": "0", "LOG_LEVEL": "WARNING"}
    command = [
        celery,
        "-A",
        "tradingdash",
        "worker",
        "-Q",
        settings.COMPUTE_QUEUE,
        "-c",
        "1",
        "-l",
        "warning",
    ]
    command += ["--without-gossip", "--without-mingle", "-n", f"rss-{os.getpid()}@%h"]
    process = subprocess.Popen(
        command, env=env, stdout=(logs / "compute.log").open("w"), stderr=subprocess.STDOUT
    )
    key = WORKER_KEY.format(queue=settings.COMPUTE_QUEUE)
    cache.delete(key)
    deadline = time.monotonic() + 60
    while cache.get(key) is None:
        if process.poll() is not None or time.monotonic() > deadline:
            raise SystemExit(
                f"the compute worker did not start: {(logs / 'compute.log').read_text()[-2000:]}"
            )
        time.sleep(0.5)
    return process


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=int, default=5, help="seconds per wrk run (5)")
    parser.add_argument("--rounds", type=int, default=2, help="alternating rounds per endpoint (2)")
    parser.add_argument("--connections", type=int, default=16, help="wrk connections (16)")
    parser.add_argument("--only", nargs="+", choices=sorted(ENDPOINTS), help="measure only these endpoints")
    parser.add_argument(
        "--wsgi", action="store_true", help="also ours under WSGI (gthread), as before issue 11"
    )
    parser.add_argument(
        "--no-compute-worker",
        action="store_true",
        help="without the Celery worker of the compute queue production runs beside (tradingdash/offload.py)",
    )
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        sys.exit("wrk is required (Debian/Ubuntu: apt-get install -y wrk)")
    if not (PEER_BIN / "gunicorn").exists():
        sys.exit("bench/peer/.venv is missing: run bench/side_by_side.sh (it creates it)")

    setup()
    stored = store_daily_candles(SYMBOL, bars=BARS)
    from django.contrib.auth import get_user_model
    from django.core.cache import cache
    from rest_framework_simplejwt.tokens import AccessToken

    user, _ = get_user_model().objects.get_or_create(
        username="bench", defaults={"email": "bench@example.com"}
    )
    token = str(AccessToken.for_user(user))
    cache.clear()

    load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    started_at = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    results = Results()
    logs = REPO / "var" / "side_by_side"
    logs.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="tradingdash-sbs-") as tmp:
        # As production runs it: what our web worker hands over (a first quote's fetch) runs there.
        worker = None if args.no_compute_worker else compute_worker(logs)
        listed = servers(Path(tmp), logs, os.environ["DATABASE_URL"], wsgi=args.wsgi)
        try:
            for server in listed:
                server.start(free_port())
            for server in listed:
                server.wait_ready(token)
            check_responses(listed, token)
            endpoints = [e for e in ENDPOINTS if not args.only or e in args.only]
            vary = int(time.time()) % 1000
            for endpoint in endpoints:
                miss = endpoint.endswith("miss")
                for server in listed:  # warm-up, not recorded
                    vary += 1
                    wrk(
                        server.base + ENDPOINTS[endpoint],
                        token,
                        seconds=1,
                        connections=args.connections,
                        vary=vary if miss else None,
                    )
                for round_ in range(1, args.rounds + 1):
                    for server in listed:
                        vary += 1
                        cpu_before = server.worker_cpu_s()
                        figures = wrk(
                            server.base + ENDPOINTS[endpoint],
                            token,
                            seconds=args.duration,
                            connections=args.connections,
                            vary=vary if miss else None,
                        )
                        run = Run(
                            endpoint=endpoint,
                            server=server.name,
                            round=round_,
                            rps=figures["requests"] / (figures["duration_us"] / 1e6),
                            p50_ms=figures["p50_us"] / 1000,
                            p99_ms=figures["p99_us"] / 1000,
                            errors=figures["errors"],
                            cpu_ms=(server.worker_cpu_s() - cpu_before) * 1000 / max(figures["requests"], 1),
                        )
                        results.runs.append(run)
                        print(
                            f"{endpoint} / {server.name} / round {round_}: {run.rps:,.0f} req/s, "
                            f"p50 {run.p50_ms:.1f} ms, p99 {run.p99_ms:.1f} ms, errors {run.errors}, "
                            f"worker CPU {run.cpu_ms:.2f} ms/request",
                            file=sys.stderr,
                            flush=True,
                        )
            memory = {s.name: s.worker_rss_mib() for s in listed}
            tensorflow = {s.name: s.worker_maps("tensorflow") for s in listed if s.name != "peer"}
        finally:
            for server in listed:
                server.stop()
            if worker is not None:
                worker.terminate()
                worker.wait(timeout=30)
            cache.clear()
        if any("Traceback" in s.log.read_text(errors="replace") for s in listed):
            for s in listed:
                print(f"--- {s.name} log tail\n" + s.log.read_text(errors="replace")[-3000:], file=sys.stderr)
            sys.exit("a server logged a traceback")

    names = [s.name for s in listed]
    summary, passed = ratios(results, names)
    print(
        f"Measured {started_at} on {os.cpu_count()} cores (load average at start {load}); {stored:,} daily candles "
        f"of {SYMBOL} stored; one worker per server; wrk 2 threads, {args.connections} connections, "
        f"{args.duration} s per run, {args.rounds} alternating rounds.\n"
    )
    print(summary + "\n")
    print(table(results) + "\n")
    print(
        "Worker RSS after the runs: "
        + ", ".join(f"{name} {mib:.0f} MiB" for name, mib in memory.items() if mib is not None)
        + "; TensorFlow mapped in ours: "
        + ", ".join(f"{name} {'yes' if loaded else 'no'}" for name, loaded in tensorflow.items())
    )
    sys.exit(0 if passed else 1)


if __name__ == "__main__":
    main()
