"""Live-stream fan-out: N concurrent WebSocket clients (default 1,000), each subscribed to the quotes of 10 of 50
symbols, against gunicorn with ONE uvicorn worker on the bench database and Redis channel layer; quotes are
published from this process through `stream.publish.publish_to_symbol` (the path every Celery task takes).

    python -m bench.ws_fanout [--clients 1000] [--publishes 100] [--interval 0.1]

Measures publish-to-receive latency (the publisher stamps `time.time()` in each message; every client notes when
it arrives: same machine, same clock) and the server worker's resident memory per open, authenticated,
subscribed connection ((RSS with the clients - RSS before) / clients). The server is always stopped afterwards.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from bench.harness import REPO, Report, bench_env, finish, setup

SYMBOLS = [f"BENCHWS{n}.NS" for n in range(50)]
PER_CLIENT = 10
CONNECT_BATCH = 50
TARGET_P99_MS = 250.0
START_TIMEOUT_S = 90


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError(f"no VmRSS for {pid}")


def worker_pid(master: int) -> int:
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        children = Path(f"/proc/{master}/task/{master}/children").read_text().split()
        if children:
            return int(children[0])
        time.sleep(0.2)
    raise RuntimeError("gunicorn started no worker")


def client_symbols(index: int) -> list[str]:
    """10 distinct symbols per client, spread so each symbol has clients/5 subscribers."""
    start = (index * PER_CLIENT) % len(SYMBOLS)
    return [SYMBOLS[(start + k) % len(SYMBOLS)] for k in range(PER_CLIENT)]


async def open_client(url: str, token: str, index: int, latencies: list[float]):
    import websockets

    ws = await websockets.connect(url, open_timeout=60, ping_interval=None, max_queue=None)
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


async def run_clients(url: str, token: str, clients: int, publishes: int, interval: float, server_pid: int):
    from asgiref.sync import sync_to_async

    from stream.publish import publish_to_symbol

    latencies: list[float] = []
    rss_before = rss_kib(server_pid)
    opened = []
    started = time.monotonic()
    for first in range(0, clients, CONNECT_BATCH):
        batch = range(first, min(first + CONNECT_BATCH, clients))
        opened += await asyncio.gather(*(open_client(url, token, i, latencies) for i in batch))
    connect_s = time.monotonic() - started
    await asyncio.sleep(2)
    rss_after = rss_kib(server_pid)

    publish = sync_to_async(publish_to_symbol, thread_sensitive=False)
    expected = 0
    for n in range(publishes):
        symbol = SYMBOLS[n % len(SYMBOLS)]
        expected += sum(1 for i in range(clients) if symbol in client_symbols(i))
        message = {
            "type": "quote",
            "symbol": symbol,
            "price": 100.0 + n,
            "stale": False,
            "bench_sent": time.time(),
        }
        await publish(topic="quote", symbol=symbol, message=message)
        await asyncio.sleep(interval)
    deadline = time.monotonic() + 10
    while len(latencies) < expected and time.monotonic() < deadline:
        await asyncio.sleep(0.1)
    for ws, listener in opened:
        listener.cancel()
        await ws.close()
    return latencies, expected, rss_before, rss_after, connect_s


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=1000)
    parser.add_argument("--publishes", type=int, default=100)
    parser.add_argument("--interval", type=float, default=0.1, help="seconds between publishes")
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
    env.update({"GUNICORN_BIND": f"127.0.0.1:{port}", "GUNICORN_WORKERS": "1", "LOG_LEVEL": "WARNING"})
    gunicorn = str(Path(sys.executable).with_name("gunicorn"))
    command = [gunicorn, "tradingdash.asgi:application", "--config", "tradingdash/gunicorn.conf.py"]
    command += ["--no-control-socket", "--max-requests", "0"]
    server = subprocess.Popen(
        command, cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        pid = worker_pid(server.pid)
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
        latencies, expected, before, after, connect_s = asyncio.run(
            run_clients(
                f"ws://127.0.0.1:{port}/ws/stream", token, args.clients, args.publishes, args.interval, pid
            )
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
        f"{len(latencies)} of {expected} deliveries received; {args.clients} clients x {PER_CLIENT} symbols, "
        f"{args.publishes} quotes published every {args.interval:g} s to {args.clients * PER_CLIENT // len(SYMBOLS)} "
        f"subscribers each; max {float(np.max(times)):.0f} ms"
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
        name="server memory per connection",
        value=f"{(after - before) / args.clients:.1f} KiB",
        detail=f"worker RSS {before / 1024:.0f} MiB before, {after / 1024:.0f} MiB with {args.clients} clients "
        f"(connected, authenticated and subscribed in {connect_s:.1f} s)",
    )
    finish(report, args.json)


if __name__ == "__main__":
    main()
