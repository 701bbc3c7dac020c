"""Run every benchmark, each in its own process, and print one markdown report.

    bench/run.sh                 (the same as: .venv/bin/python -m bench.run)
    bench/run.sh --only market signals

Each benchmark also runs alone (python -m bench.bench_market, ...). Its log lines go to a temporary file,
printed only when it fails. Missing a target is reported, not an error; a crashed benchmark exits non-zero.
"""

from __future__ import annotations

import argparse
import os
import platform
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

from bench.harness import REPO, Report, bench_env, load_report, report_markdown, setup

# Module and time limit in seconds; the limits add up to 10 minutes (a whole run takes about 3.5).
BENCHMARKS = {
    "market": ("bench.bench_market", 150),
    "asgi": ("bench.bench_asgi", 30),
    "predictions": ("bench.bench_predictions", 240),
    "signals": ("bench.bench_signals", 60),
    "web": ("bench.bench_web", 120),
}


def machine() -> str:
    cpuinfo = Path("/proc/cpuinfo").read_text()
    model = next(
        (line.split(":", 1)[1].strip() for line in cpuinfo.splitlines() if "model name" in line), "?"
    )
    memory_kib = int(Path("/proc/meminfo").read_text().split()[1])
    cores = len(os.sched_getaffinity(0))
    load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    return (
        f"nproc {cores}, CPU `{model}`, {memory_kib / 1024**2:.1f} GiB RAM, "
        f"Python {platform.python_version()}, {postgres_version()}, load average at start {load}"
    )


def postgres_version() -> str:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SHOW server_version")
        return f"PostgreSQL {cursor.fetchone()[0].split()[0]}"


def revision() -> str:
    def git(*args: str) -> str:
        return subprocess.run(
            ["git", *args], cwd=REPO, capture_output=True, text=True, check=False
        ).stdout.strip()

    head = git("rev-parse", "--short", "HEAD") or "unknown"
    changed = [line for line in git("status", "--porcelain").splitlines() if line]
    return f"{head}" + (f" + {len(changed)} uncommitted paths" if changed else "")


def run_one(name: str, module: str, timeout: int, workdir: Path) -> tuple[Report, float, str | None]:
    out, log = workdir / f"{name}.json", workdir / f"{name}.log"
    env = {**bench_env(), "BENCH_SKIP_MIGRATE": "1"}
    started = time.perf_counter()
    try:
        with log.open("w") as handle:
            result = subprocess.run(
                [sys.executable, "-m", module, "--json", str(out)],
                cwd=REPO,
                env=env,
                stdout=handle,
                stderr=subprocess.STDOUT,
                timeout=timeout,
                check=False,
            )
        error = None if result.returncode == 0 else f"exit status {result.returncode}"
    except subprocess.TimeoutExpired:
        error = f"timed out after {timeout} s"
    elapsed = time.perf_counter() - started
    if error is not None:
        tail = "\n".join(log.read_text(errors="replace").splitlines()[-40:])
        print(f"### {name} failed ({error})\n```\n{tail}\n```", file=sys.stderr)
        return Report(), elapsed, error
    return load_report(out), elapsed, None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", nargs="+", choices=sorted(BENCHMARKS), help="run only these benchmarks")
    args = parser.parse_args()
    names = args.only or list(BENCHMARKS)

    setup()  # create and migrate the bench database once, before the benchmarks start
    started_at, host, tree = datetime.now(UTC), machine(), revision()
    merged = Report()
    timings, failures = [], []
    with tempfile.TemporaryDirectory(prefix="tradingdash-bench-") as workdir:
        for name in names:
            module, timeout = BENCHMARKS[name]
            print(f"running {module} …", file=sys.stderr, flush=True)
            report, elapsed, error = run_one(name, module, timeout, Path(workdir))
            timings.append(f"{name} {elapsed:.0f} s")
            if error:
                failures.append(f"{name}: {error}")
            merged.figures += report.figures
            merged.tables.update(report.tables)
            merged.notes += report.notes

    total = sum(float(t.split()[1]) for t in timings)
    print(f"Measured {started_at:%Y-%m-%d %H:%M} UTC on {host}; tree {tree}.")
    print(
        f"Command: `bench/run.sh{' --only ' + ' '.join(names) if args.only else ''}` — {total:.0f} s "
        f"({', '.join(timings)}).\n"
    )
    print(report_markdown(merged))
    if failures:
        print("\nFailed: " + "; ".join(failures))
        sys.exit(1)


if __name__ == "__main__":
    main()
