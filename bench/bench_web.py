"""The web process: gunicorn with one worker on the bench database, a few API calls, then the worker's resident
memory and whether TensorFlow is mapped into it. The server is always stopped afterwards.

    python -m bench.bench_web               (or bench/run.sh for every benchmark)

Then a probe of the one request path that predicts inside the web process: POST /api/predictions/generate with
model=lstm while an LSTM model is active (a small one is trained for it here; its accuracy is irrelevant).
"""

from __future__ import annotations

import json
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

from bench.harness import REPO, Report, bench_env, cli, finish, setup, store_daily_candles

SYMBOL = "RELIANCE.NS"
BARE = "RELIANCE"
START_TIMEOUT_S = 60
STOP_TIMEOUT_S = 20
# Tiny, so that preparing the probe takes seconds; the probe only asks which libraries the web worker loads.
PROBE_LSTM = {"epochs": 1, "units": 4, "lookback": 10, "patience": 1}
ENDPOINTS = [
    ("GET", "/health"),
    ("GET", "/api/market/status"),
    ("GET", "/api/market/symbols"),
    ("GET", f"/api/market/quote/{BARE}"),
    ("GET", f"/api/market/historical/{BARE}?timeframe=1D&limit=2500"),
    ("GET", f"/api/market/multiple?symbols={BARE},TCS,INFY"),
    ("POST", f"/api/signals/generate/{BARE}"),
    ("GET", f"/api/signals/{BARE}"),
    ("GET", f"/api/signals/{BARE}/backtest"),
    ("GET", f"/api/predictions/{BARE}"),
    ("GET", f"/api/predictions/models/{BARE}"),
    ("GET", f"/api/predictions/{BARE}/accuracy"),
]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def request(base: str, method: str, path: str, token: str, body: dict | None = None) -> int:
    data = json.dumps(body or {}).encode() if method == "POST" else None
    req = urllib.request.Request(  # noqa: S310 - a URL we build, to our own local server
        base + path,
        data=data,
        method=method,
        headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
    )
    try:
        with urllib.request.urlopen(req, timeout=60) as response:  # noqa: S310
            response.read()
            return response.status
    except urllib.error.HTTPError as exc:
        return exc.code


def healthy(base: str) -> bool:
    try:
        return request(base, "GET", "/health", "") == 200
    except (urllib.error.URLError, ConnectionError):
        return False


def worker_pid(master: int) -> int:
    """The one worker gunicorn forked (a child of the master)."""
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        children = Path(f"/proc/{master}/task/{master}/children").read_text().split()
        if children:
            return int(children[0])
        time.sleep(0.1)
    raise RuntimeError("gunicorn started no worker")


def memory(pid: int) -> dict[str, int]:
    """VmRSS and VmHWM (peak) of a process, in KiB."""
    status = Path(f"/proc/{pid}/status").read_text()
    return {key: int(re.search(rf"^{key}:\s+(\d+) kB", status, re.M).group(1)) for key in ("VmRSS", "VmHWM")}


def mapped(pid: int, pattern: str) -> list[str]:
    """Distinct files mapped into the process whose path matches `pattern`."""
    files = {line.split()[-1] for line in Path(f"/proc/{pid}/maps").read_text().splitlines() if "/" in line}
    return sorted(f for f in files if re.search(pattern, f))


def probe_model() -> None:
    """An active LSTM model for SYMBOL (trained small, here, in this bench process), if there is none."""
    from market.timeframes import Timeframe
    from predictions.services import active_model, models_train

    if active_model(symbol=SYMBOL, timeframe=Timeframe.D1, horizon=1, algorithm="lstm") is None:
        trained = models_train(
            symbol=SYMBOL, timeframe=Timeframe.D1, algorithms=["lstm"], params={"lstm": PROBE_LSTM}
        )
        lstm = next(t for t in trained if t.algorithm == "lstm")
        if not lstm.is_active:
            from predictions.services import model_activate

            model_activate(trained=lstm)


def token() -> str:
    from django.contrib.auth import get_user_model
    from rest_framework_simplejwt.tokens import AccessToken

    user, _ = get_user_model().objects.get_or_create(
        username="bench", defaults={"email": "bench@example.com"}
    )
    return str(AccessToken.for_user(user))


def stop(server: subprocess.Popen) -> None:
    """SIGTERM the master (it stops its worker), SIGKILL it if it has not exited in time."""
    if server.poll() is not None:
        return
    server.send_signal(signal.SIGTERM)
    try:
        server.wait(timeout=STOP_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        server.kill()
        server.wait(timeout=STOP_TIMEOUT_S)


def main() -> None:
    args = cli(__doc__.splitlines()[0])
    setup()
    store_daily_candles(SYMBOL)
    probe_model()
    access = token()
    report = Report()

    port = free_port()
    base = f"http://127.0.0.1:{port}"
    gunicorn = str(Path(sys.executable).with_name("gunicorn"))
    command = [gunicorn, "tradingdash.wsgi:application", "-w", "1", "-b", f"127.0.0.1:{port}"]
    env = {key: value for key, value in bench_env().items() if not key.startswith("GUNICORN_")}
    server = subprocess.Popen(
        command, cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        started = time.monotonic()
        while not healthy(base):
            if server.poll() is not None or time.monotonic() - started > START_TIMEOUT_S:
                raise RuntimeError("gunicorn did not answer /health")
            time.sleep(0.2)
        ready_s = time.monotonic() - started
        worker = worker_pid(server.pid)
        statuses = [f"{method} {path} → {request(base, method, path, access)}" for method, path in ENDPOINTS]
        after_api = memory(worker)
        tf_after_api = mapped(worker, r"tensorflow")
        sklearn_after_api = mapped(worker, r"sklearn|scikit")

        probe_status = request(base, "POST", f"/api/predictions/generate/{BARE}", access, {"model": "lstm"})
        after_probe = memory(worker)
        tf_after_probe = mapped(worker, r"tensorflow")
    finally:
        stop(server)
    assert server.returncode is not None, "gunicorn is still running"

    report.add(
        area="Web",
        name=f"gunicorn worker RSS after {len(ENDPOINTS)} API calls",
        value=f"{after_api['VmRSS'] / 1024:.0f} MiB",
        detail=f"peak (VmHWM) {after_api['VmHWM'] / 1024:.0f} MiB; `{' '.join(command[1:])}`, "
        f"answered /health {ready_s:.1f} s after start; scikit-learn libraries mapped: {len(sklearn_after_api)}",
    )
    report.add(
        area="Web",
        name="TensorFlow in the web worker after those calls",
        value="not loaded" if not tf_after_api else f"loaded ({len(tf_after_api)} files)",
        target="not loaded",
        passed=not tf_after_api,
        detail="files in /proc/&lt;worker&gt;/maps matching `tensorflow`: "
        + (", ".join(Path(f).name for f in tf_after_api[:3]) or "none"),
    )
    report.add(
        area="Web",
        name="Probe: POST /api/predictions/generate model=lstm with an active LSTM model",
        value=("not loaded" if not tf_after_probe else "TensorFlow loaded") + f" (HTTP {probe_status})",
        target="not loaded",
        passed=not tf_after_probe,
        detail=f"worker RSS {after_probe['VmRSS'] / 1024:.0f} MiB after it (peak {after_probe['VmHWM'] / 1024:.0f} "
        f"MiB); {len(tf_after_probe)} tensorflow files mapped",
    )
    report.tables["Web worker: API calls made before measuring"] = "\n".join(
        ["| Request → status |", "|---|"] + [f"| {line} |" for line in statuses]
    )
    finish(report, args.json)


if __name__ == "__main__":
    main()
