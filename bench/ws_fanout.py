"""Live-stream fan-out: N concurrent WebSocket clients (default 1,000), each subscribed to the quotes of 10 of 50
symbols, against gunicorn with W uvicorn workers (default 1) on the bench database and Redis channel layer; quotes
are published from this process through `stream.publish.publish_to_symbol` (the path every Celery task takes).

    python -m bench.ws_fanout [--clients 1000] [--publishes 100] [--interval 0.1] [--workers 1]
                              [--client-procs 2] [--profile DIR]

The clients run in `--client-procs` processes of their own (asyncio, `websockets`), so the server's cost can be
told from theirs. Measures publish-to-receive latency (the publisher stamps `time.time()` in each message; every
client notes when it arrives: same machine, same clock) and the server workers' resident memory per open,
authenticated, subscribed connection ((RSS with the clients - RSS before) / clients). `--profile DIR` records each
server worker with py-spy (`PY_SPY` or `py-spy` on PATH) while quotes are published: DIR/worker-PID.txt, collapsed
stacks. The server is always stopped afterwards.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from multiprocessing.connection import Connection
from pathlib import Path

import numpy as np

from bench.harness import REPO, Report, bench_env, finish, setup

SYMBOLS = [f"BENCHWS{n}.NS" for n in range(50)]
PER_CLIENT = 10
CONNECT_BATCH = 50
TARGET_P99_MS = 250.0
START_TIMEOUT_S = 90
DRAIN_TIMEOUT_S = 15


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError(f"no VmRSS for {pid}")


def cpu_seconds(pid: int) -> float:
    """User + system CPU time the process has used so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def worker_pids(master: int, count: int) -> list[int]:
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        children = Path(f"/proc/{master}/task/{master}/children").read_text().split()
        if len(children) >= count:
            return [int(child) for child in children]
        time.sleep(0.2)
    raise RuntimeError(f"gunicorn started fewer than {count} workers")


def client_symbols(index: int) -> list[str]:
    """10 distinct symbols per client, spread so each symbol has clients/5 subscribers."""
    start = (index * PER_CLIENT) % len(SYMBOLS)
    return [SYMBOLS[(start + k) % len(SYMBOLS)] for k in range(PER_CLIENT)]


# --- The clients (in their own processes)


async def open_client(url: str, token: str, index: int, latencies: list[float]):
    import websockets

    ws = await websockets.connect(url, open_timeout=120, ping_interval=None, max_queue=None)
    await ws.send(json.dumps({"type": "auth", "token": token}))
    await ws.send(json.dumps({"type": "subscribe", "symbols": client_symbols(index), "topics": ["quote"]}))
    while json.loads(await ws.recv())["type"] != "subscribed":
        pass

    async def listen():
        async for raw in ws:
            received = time.time()
            message = json.loads(raw)
            if message.get("type") == "quote" and "bench_sent" in message:
                latencies.append((received - message["bench_sent"]) * 1000)

    return ws, asyncio.ensure_future(listen())


async def clients_main(url: str, token: str, indices: range, conn: Connection) -> None:
    latencies: list[float] = []
    opened = []
    for first in range(indices.start, indices.stop, CONNECT_BATCH):
        batch = range(first, min(first + CONNECT_BATCH, indices.stop))
        opened += await asyncio.gather(*(open_client(url, token, i, latencies) for i in batch))
    conn.send("ready")
    loop = asyncio.get_running_loop()
    expected = await loop.run_in_executor(None, conn.recv)  # sent once every quote is published
    deadline = time.monotonic() + DRAIN_TIMEOUT_S
    while len(latencies) < expected and time.monotonic() < deadline:
        await asyncio.sleep(0.1)
    conn.send(latencies)
    for ws, listener in opened:
        listener.cancel()
        await ws.close()


def clients_process(url: str, token: str, indices: range, conn: Connection) -> None:
    try:
        asyncio.run(clients_main(url, token, indices, conn))
    except Exception as exc:
        conn.send(f"clients {indices.start}-{indices.stop - 1} failed: {type(exc).__name__}: {exc}")
        raise


def receive(pipe: Connection, proc, timeout: float):
    """The next thing a client process says, or why it will never say it."""
    deadline = time.monotonic() + timeout
    while not pipe.poll(1):
        if not proc.is_alive():
            raise RuntimeError(f"a client process exited ({proc.exitcode})")
        if time.monotonic() > deadline:
            raise RuntimeError("a client process did not answer in time")
    answer = pipe.recv()
    if isinstance(answer, str) and answer != "ready":
        raise RuntimeError(answer)
    return answer


# --- The publisher (this process)


def publish_quotes(publishes: int, interval: float) -> None:
    from stream.publish import publish_to_symbol

    for n in range(publishes):
        symbol = SYMBOLS[n % len(SYMBOLS)]
        message = {
            "type": "quote",
            "symbol": symbol,
            "price": 100.0 + n,
            "stale": False,
            "bench_sent": time.time(),
        }
        publish_to_symbol(topic="quote", symbol=symbol, message=message)
        time.sleep(interval)


def expected_deliveries(indices: range, publishes: int) -> int:
    subscribed = [set(client_symbols(i)) for i in indices]
    return sum(sum(1 for s in subscribed if SYMBOLS[n % len(SYMBOLS)] in s) for n in range(publishes))


def profile_workers(pids: list[int], directory: Path, seconds: float) -> list[subprocess.Popen]:
    py_spy = os.environ.get("PY_SPY") or shutil.which("py-spy")
    if py_spy is None:
        raise SystemExit("--profile needs py-spy (PY_SPY=/path/to/py-spy or on PATH)")
    directory.mkdir(parents=True, exist_ok=True)
    return [
        subprocess.Popen(
            [
                py_spy,
                "record",
                "-p",
                str(pid),
                "-d",
                str(int(seconds) + 1),
                "-r",
                "200",
                "--format",
                "raw",
                "-o",
                str(directory / f"worker-{pid}.txt"),
                "--nonblocking",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        for pid in pids
    ]


def run(args: argparse.Namespace, url: str, token: str, pids: list[int]):
    rss_before = sum(rss_kib(pid) for pid in pids)
    context = multiprocessing.get_context("spawn")
    per_proc = -(-args.clients // args.client_procs)
    groups = [range(i, min(i + per_proc, args.clients)) for i in range(0, args.clients, per_proc)]
    pipes, procs = [], []
    started = time.monotonic()
    for indices in groups:
        mine, theirs = context.Pipe()
        proc = context.Process(target=clients_process, args=(url, token, indices, theirs), daemon=True)
        proc.start()
        pipes.append(mine)
        procs.append(proc)
    try:
        for pipe, proc in zip(pipes, procs, strict=True):
            receive(pipe, proc, 600)
        connect_s = time.monotonic() - started
        time.sleep(2)
        rss_after = sum(rss_kib(pid) for pid in pids)
        profilers = (
            profile_workers(pids, args.profile, args.publishes * args.interval) if args.profile else []
        )
        cpu_before = sum(cpu_seconds(pid) for pid in pids)
        publish_quotes(args.publishes, args.interval)
        for pipe, indices in zip(pipes, groups, strict=True):
            pipe.send(expected_deliveries(indices, args.publishes))
        latencies = []
        for pipe, proc in zip(pipes, procs, strict=True):
            latencies += receive(pipe, proc, DRAIN_TIMEOUT_S + 60)
        # Includes the heartbeats and the clients' pings of those seconds: small next to the deliveries.
        cpu = sum(cpu_seconds(pid) for pid in pids) - cpu_before
        for profiler in profilers:
            profiler.wait(timeout=60)
    finally:
        for proc in procs:
            proc.join(timeout=30)
            if proc.is_alive():
                proc.kill()
    expected = sum(expected_deliveries(indices, args.publishes) for indices in groups)
    return latencies, expected, rss_before, rss_after, connect_s, cpu


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=1000)
    parser.add_argument("--publishes", type=int, default=100)
    parser.add_argument("--interval", type=float, default=0.1, help="seconds between publishes")
    parser.add_argument("--workers", type=int, default=1, help="gunicorn's uvicorn workers")
    parser.add_argument("--client-procs", type=int, default=2, help="processes the clients run in")
    parser.add_argument(
        "--profile", type=Path, help="record the server workers with py-spy into this directory"
    )
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()

    setup()
    from django.contrib.auth import get_user_model
    from rest_framework_simplejwt.tokens import AccessToken

    from market.models import Instrument

    for symbol in SYMBOLS:
        Instrument.objects.get_or_create(symbol=symbol, defaults={"name": symbol, "active": False})
    user, _ = get_user_model().objects.get_or_create(
        username="bench-ws", defaults={"email": "ws@example.com"}
    )
    token = str(AccessToken.for_user(user))

    port = free_port()
    env = {k: v for k, v in bench_env().items() if not k.startswith("GUNICORN_")}
    env.update(
        {
            "GUNICORN_BIND": f"127.0.0.1:{port}",
            "GUNICORN_WORKERS": str(args.workers),
            "LOG_LEVEL": "WARNING",
            "STREAM_MAX_PER_USER": str(args.clients),  # every client is the one bench user
        }
    )
    gunicorn = str(Path(sys.executable).with_name("gunicorn"))
    command = [gunicorn, "tradingdash.asgi:application", "--config", "tradingdash/gunicorn.conf.py"]
    command += ["--no-control-socket", "--max-requests", "0"]
    server = subprocess.Popen(
        command, cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        pids = worker_pids(server.pid, args.workers)
        import urllib.request

        deadline = time.monotonic() + START_TIMEOUT_S
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=5):
                    break
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.5)
        latencies, expected, before, after, connect_s, cpu = run(
            args, f"ws://127.0.0.1:{port}/ws/stream", token, pids
        )
    finally:
        server.send_signal(signal.SIGTERM)
        try:
            server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()

    report = Report()
    times = np.array(latencies) if latencies else np.array([float("nan")])
    p50, p99 = float(np.percentile(times, 50)), float(np.percentile(times, 99))
    detail = (
        f"{len(latencies)} of {expected} deliveries received; {args.clients} clients x {PER_CLIENT} symbols in "
        f"{args.client_procs} processes, {args.workers} server worker(s); {args.publishes} quotes published every "
        f"{args.interval:g} s to {args.clients * PER_CLIENT // len(SYMBOLS)} subscribers each; "
        f"max {float(np.max(times)):.0f} ms"
    )
    report.add(
        area="stream",
        name="publish-to-receive latency p99",
        value=f"{p99:.0f} ms (p50 {p50:.0f} ms)",
        target=f"≤ {TARGET_P99_MS:g} ms",
        passed=p99 <= TARGET_P99_MS and len(latencies) == expected,
        detail=detail,
    )
    report.add(
        area="stream",
        name="server CPU per delivery",
        value=f"{cpu / max(len(latencies), 1) * 1e6:.0f} µs",
        detail=f"{cpu:.1f} s of worker CPU (user + system) from the first publish until every client had its "
        f"messages; less sensitive to a loaded machine than the latencies",
    )
    report.add(
        area="stream",
        name="server memory per connection",
        value=f"{(after - before) / args.clients:.1f} KiB",
        detail=f"workers' RSS {before / 1024:.0f} MiB before, {after / 1024:.0f} MiB with {args.clients} clients "
        f"(connected, authenticated and subscribed in {connect_s:.1f} s)",
    )
    finish(report, args.json)


if __name__ == "__main__":
    main()
