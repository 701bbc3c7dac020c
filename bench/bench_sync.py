"""Whole-market sync (issue 13): a 10-year daily backfill and a nightly incremental run of 2,000 symbols.

    python -m bench.bench_sync                      (2,000 symbols, 1 then 2 Celery worker processes)
    python -m bench.bench_sync --symbols 200 --workers 1

The synthetic provider serves the symbols (BENCHSYNC0000.NS ...; added to the bench catalogue, inactive so
nothing else syncs them). For each worker count, a real `celery worker -c N` runs against the bench database
and Redis db: the backfill plans a SyncRun of MARKET_SYNC_DAYS (10 years) for symbols with nothing stored,
dispatches its batches as a Celery group and is timed until the run is finished; then every symbol's coverage is
moved back to half an hour after the close of the session before the latest one, and the bars after it
deleted, so the next run is what the nightly sync does after one session; that run is timed the same way. Rows/s is rows inserted over the wall time of the run. `--inline`
runs the batches in this process instead (no worker; the smoke test uses it).
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

from bench.harness import REPO, Report, bench_env, finish, setup

PREFIX = "BENCHSYNC"
WORKER_START_TIMEOUT = 60
RUN_TIMEOUT = 1800


@dataclass(frozen=True, kw_only=True)
class Measured:
    seconds: float
    batches: int
    inserted: int
    updated: int
    failed: int

    @property
    def rows_per_second(self) -> float:
        return (self.inserted + self.updated) / self.seconds if self.seconds else 0.0


def bench_symbols(count: int) -> list[str]:
    return [f"{PREFIX}{i:04d}.NS" for i in range(count)]


def prepare(symbols: list[str]) -> None:
    """The symbols in the catalogue (the synthetic provider serves catalogue symbols), inactive."""
    from market.models import Instrument

    existing = set(Instrument.objects.filter(symbol__in=symbols).values_list("symbol", flat=True))
    Instrument.objects.bulk_create(
        [Instrument(symbol=s, name=s, exchange="NSE", active=False) for s in symbols if s not in existing]
    )


def reset(symbols: list[str]) -> None:
    """Nothing stored for the symbols: no candles, no coverage."""
    from django.db import connection

    from market.models import CandleSeries

    with connection.cursor() as cursor:
        cursor.execute("DELETE FROM market_marketdata WHERE symbol LIKE %s", [f"{PREFIX}%"])
    CandleSeries.objects.filter(symbol__in=symbols).delete()


def rewind(symbols: list[str]) -> datetime:
    """As if the last sync had run half an hour after the session before the latest one closed (a nightly run
    a day ago): coverage ends there and the bars after it are gone. Returns that time."""
    from django.db import connection
    from django.utils import timezone

    from market.models import CoverageInterval
    from market.sources import calendar_for

    calendar, now = calendar_for("NSE"), timezone.now()
    day = now.astimezone(calendar.tz).date()
    while not calendar.is_trading_day(day) or calendar.session_close(day) > now:
        day = calendar.previous_trading_day(day)
    cut = calendar.session_close(calendar.previous_trading_day(day)) + timedelta(minutes=30)
    CoverageInterval.objects.filter(
        series__symbol__in=symbols, series__timeframe="1D", covered_to__gt=cut
    ).update(covered_to=cut, last_synced_at=cut)
    with connection.cursor() as cursor:
        cursor.execute(
            "DELETE FROM market_marketdata WHERE symbol LIKE %s AND timeframe = '1D' AND \"timestamp\" >= %s",
            [f"{PREFIX}%", cut],
        )
    return cut


def run_inline(run_id: int) -> None:
    from market.services import sync_run_inline

    sync_run_inline(run_id=run_id)


def run_on_workers(run_id: int) -> None:
    from market.models import SyncRun
    from market.services import sync_run_resume

    sync_run_resume(run_id=run_id)
    deadline = time.monotonic() + RUN_TIMEOUT
    while not SyncRun.objects.filter(pk=run_id, finished_at__isnull=False).exists():
        if time.monotonic() > deadline:
            raise RuntimeError(f"sync run {run_id} did not finish in {RUN_TIMEOUT} s")
        time.sleep(0.2)


def measure(symbols: list[str], *, batch_size: int, runner) -> Measured:
    """Plan a run of the symbols and run it with `runner`, timed from the plan to the run's end."""
    from market.selectors import sync_runs_with_progress
    from market.services import sync_run_plan
    from market.timeframes import Timeframe

    started = time.perf_counter()
    run = sync_run_plan(
        timeframe=Timeframe.D1,
        symbols=symbols,
        batch_size=batch_size,
        provider_name="synthetic",
        trigger="bench",
    )
    runner(run.pk)
    seconds = time.perf_counter() - started
    run = sync_runs_with_progress().get(pk=run.pk)
    return Measured(
        seconds=seconds,
        batches=run.batches_total,
        inserted=run.rows_inserted,
        updated=run.rows_updated,
        failed=run.batches_failed,
    )


def backfill_and_nightly(symbols: list[str], *, batch_size: int, runner) -> tuple[Measured, Measured]:
    reset(symbols)
    backfill = measure(symbols, batch_size=batch_size, runner=runner)
    rewind(symbols)
    nightly = measure(symbols, batch_size=batch_size, runner=runner)
    return backfill, nightly


class Workers:
    """`celery worker -c N` on the bench environment, stopped (warm shutdown) on exit."""

    def __init__(self, processes: int, log: Path):
        self.processes = processes
        self.log = log
        self.name = f"benchsync{processes}-{os.getpid()}@%h"

    def __enter__(self) -> Workers:
        from tradingdash.celery import app

        app.control.purge()
        self.handle = self.log.open("w")
        self.process = subprocess.Popen(
            [
                *(sys.executable, "-m", "celery", "-A", "tradingdash", "worker", "-c", str(self.processes)),
                *("-n", self.name, "-Q", "default", "--without-gossip", "--without-mingle", "-l", "WARNING"),
            ],
            cwd=REPO,
            env={**bench_env(), "BENCH_SKIP_MIGRATE": "1"},
            stdout=self.handle,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group: the pool's children are stopped with it
        )
        deadline = time.monotonic() + WORKER_START_TIMEOUT
        while not app.control.ping(timeout=0.5):
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"celery worker did not start; see {self.log}")
        return self

    def __exit__(self, *exc) -> None:
        os.killpg(self.process.pid, signal.SIGTERM)
        try:
            self.process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()
        self.handle.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", type=Path, help="write the figures as JSON here instead of printing them")
    parser.add_argument("--symbols", type=int, default=2000)
    parser.add_argument(
        "--workers", type=int, nargs="+", default=[1, 2], help="worker process counts to compare"
    )
    parser.add_argument("--batch-size", type=int, default=50)
    parser.add_argument("--inline", action="store_true", help="run batches in this process (no worker)")
    args = parser.parse_args()
    setup()
    from django.conf import settings

    symbols = bench_symbols(args.symbols)
    prepare(symbols)
    report = Report()
    results = {}
    if args.inline:
        results["inline"] = backfill_and_nightly(symbols, batch_size=args.batch_size, runner=run_inline)
    else:
        for processes in args.workers:
            log = Path(tempfile.gettempdir()) / f"bench-sync-worker-{processes}.log"
            with Workers(processes, log):
                results[processes] = backfill_and_nightly(
                    symbols, batch_size=args.batch_size, runner=run_on_workers
                )
    for key, (backfill, nightly) in results.items():
        who = "in-process" if key == "inline" else f"{key} worker process{'es' if key != 1 else ''}"
        for name, m in (
            (f"{settings.MARKET_SYNC_DAYS // 365}-year daily backfill", backfill),
            ("nightly incremental (last synced after the previous session)", nightly),
        ):
            report.add(
                area="Sync",
                name=f"{len(symbols):,} symbols, {name}, {who}",
                value=f"{m.seconds:.1f} s",
                detail=f"{m.rows_per_second:,.0f} rows/s; {m.inserted:,} inserted, {m.updated:,} updated; "
                f"{m.batches} batches of ≤ {args.batch_size}, {m.failed} failed",
            )
    if 1 in results and 2 in results:
        for index, name in ((0, "backfill"), (1, "nightly")):
            one, two = results[1][index], results[2][index]
            report.add(
                area="Sync",
                name=f"Scaling 1 → 2 worker processes, {name}",
                value=f"× {one.seconds / two.seconds:.2f}",
                detail=f"{one.seconds:.1f} s → {two.seconds:.1f} s, same run",
            )
    report.notes.append(
        f"Sync figures: load average at the end {', '.join(f'{x:.2f}' for x in os.getloadavg())} on "
        f"{len(os.sched_getaffinity(0))} shared cores; the machine is shared, so they are noisy."
    )
    finish(report, args.json)


if __name__ == "__main__":
    main()
