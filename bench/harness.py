"""What every benchmark shares: the bench environment (its own PostgreSQL database and Redis db), Django set-up,
timing statistics, synthetic candles, and the report (a markdown table, or JSON for `bench.run` to merge)."""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parent.parent
# Forced, so a shell pointed at the development database can never run the benchmarks against it.
FORCED_ENV = {
    "DATABASE_URL": os.environ.get(
        "BENCH_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/tradingdash_bench"
    ),
    "REDIS_URL": os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/14"),
    "SECRET_KEY": "bench-only-secret-key-0123456789-abcdefghijklmnopqrstuvwxyz",  # DEBUG off: tradingdash.E004
    "JWT_SIGNING_KEY": "bench-only-jwt-signing-key-0123456789abcdef",  # PyJWT warns about keys under 32 bytes
    "DJANGO_SETTINGS_MODULE": "tradingdash.settings",
    "MARKET_DATA_PROVIDER": "synthetic",  # no network, and the same numbers on every run
    # Model artifacts and other files go outside the repository.
    "DATA_DIR": os.path.join(tempfile.gettempdir(), "tradingdash-bench"),
}
DEFAULT_ENV = {
    # The endpoint benchmarks POST far more than the production 30 a minute; the throttle check itself still runs.
    "GENERATION_THROTTLE_RATE": "1000000/minute",
    "TF_CPP_MIN_LOG_LEVEL": "2",
    "TF_ENABLE_ONEDNN_OPTS": "0",
}
# "Now" for the pure benchmarks, so they see the same synthetic series on every run.
BENCH_CLOCK = datetime(2026, 1, 30, 12, 0, tzinfo=UTC)
# Calendar days of synthetic history asked for: a little more than 2,500 daily bars.
HISTORY_DAYS = 3700


def bench_env() -> dict[str, str]:
    """The environment of a benchmark process (and of the gunicorn it starts)."""
    env = {**DEFAULT_ENV, **os.environ, **FORCED_ENV}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))
    return env


def setup(*, migrate: bool = True) -> None:
    """Point this process at the bench database and Redis db, create and migrate the database, start Django."""
    os.environ.update(bench_env())
    import django

    django.setup()
    if migrate and not os.environ.get("BENCH_SKIP_MIGRATE"):
        create_database()
        from django.core.management import call_command

        call_command("migrate", interactive=False, verbosity=0)


def create_database() -> None:
    """CREATE DATABASE tradingdash_bench when it does not exist yet."""
    import environ
    import psycopg
    from psycopg import sql

    config = environ.Env.db_url_config(os.environ["DATABASE_URL"])
    params = {
        "host": config.get("HOST") or None,
        "port": config.get("PORT") or None,
        "user": config.get("USER") or None,
        "password": config.get("PASSWORD") or None,
    }
    with psycopg.connect(dbname="postgres", autocommit=True, **params) as conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [config["NAME"]]).fetchone()
        if not exists:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(config["NAME"])))


# --- timing


def sample(fn: Callable[[], Any], *, repeat: int, before: Callable[[], Any] | None = None) -> list[float]:
    """Milliseconds of `repeat` calls of fn; `before` runs ahead of each call, outside the timing."""
    times = []
    for _ in range(repeat):
        if before is not None:
            before()
        started = time.perf_counter()
        fn()
        times.append((time.perf_counter() - started) * 1000)
    return times


def timed(fn: Callable[[], Any]) -> tuple[float, Any]:
    """(seconds, result) of one call."""
    started = time.perf_counter()
    result = fn()
    return time.perf_counter() - started, result


def pct(times: list[float], q: float) -> float:
    return float(np.percentile(times, q))


def spread(times: list[float]) -> str:
    """p50 / p99 / max of a sample of milliseconds, for the detail column."""
    return (
        f"p50 {pct(times, 50):.2f} ms, p99 {pct(times, 99):.2f} ms, max {max(times):.2f} ms, n={len(times)}"
    )


# --- synthetic candles


def synthetic_provider(symbols: list[str], *, clock: Callable[[], datetime] | None = None):
    """The project's synthetic provider on the bundled NSE calendar, as the brief prescribes."""
    from market.calendar import ExchangeCalendar, bundled_nse_holidays
    from market.providers import build_provider

    return build_provider(
        "synthetic",
        symbols=symbols,
        calendar=ExchangeCalendar(bundled_nse_holidays()),
        history_days=HISTORY_DAYS,
        clock=clock,
    )


def daily_candles(symbol: str, bars: int):
    """The latest `bars` synthetic daily candles of `symbol` at BENCH_CLOCK (no database)."""
    from market.timeframes import Timeframe

    provider = synthetic_provider([symbol], clock=lambda: BENCH_CLOCK)
    candles = provider.fetch_candles(symbol, Timeframe.D1)
    if len(candles) < bars:
        raise RuntimeError(f"synthetic history has {len(candles)} daily bars, fewer than {bars}")
    return candles.iloc[-bars:]


def store_daily_candles(symbol: str, *, bars: int = 2500) -> int:
    """Make sure at least `bars` daily candles of `symbol` are stored and their coverage is fresh (so no request
    in the timed loops goes to the provider). Returns the number stored."""
    from market.selectors import candles_count
    from market.services import candles_sync, rendered_months_refresh
    from market.timeframes import Timeframe

    provider = synthetic_provider([symbol])
    days = None if candles_count(symbol=symbol, timeframe=Timeframe.D1) >= bars else HISTORY_DAYS
    candles_sync(symbol=symbol, timeframe=Timeframe.D1, days=days, provider=provider)
    # Months stored before their rendering existed, or at another tick: as the quarter-hourly task leaves them.
    rendered_months_refresh(symbol=symbol)
    stored = candles_count(symbol=symbol, timeframe=Timeframe.D1)
    if stored < bars:
        raise RuntimeError(f"only {stored} daily candles of {symbol} stored, {bars} needed")
    return stored


def jwt_client():
    """A DRF test client authenticated the way the frontend is: a Bearer access token of a real user."""
    from django.contrib.auth import get_user_model
    from rest_framework.test import APIClient
    from rest_framework_simplejwt.tokens import AccessToken

    user, _ = get_user_model().objects.get_or_create(
        username="bench", defaults={"email": "bench@example.com"}
    )
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {AccessToken.for_user(user)}")
    return client


# --- report


@dataclass(frozen=True, kw_only=True)
class Figure:
    """One measured figure; `passed` is None when there is no target."""

    area: str
    name: str
    value: str
    target: str = "—"
    passed: bool | None = None
    detail: str = ""


@dataclass
class Report:
    figures: list[Figure] = field(default_factory=list)
    tables: dict[str, str] = field(default_factory=dict)  # title -> markdown
    notes: list[str] = field(default_factory=list)

    def add(self, **kwargs: Any) -> None:
        self.figures.append(Figure(**kwargs))

    def add_median(
        self, *, area: str, name: str, times: list[float], target_ms: float, digits: int = 2, detail: str = ""
    ) -> None:
        """A latency figure: the median of `times` (ms) against `target_ms`, with p95 and the call count."""
        median = float(np.median(times))
        summary = f"p95 {pct(times, 95):.{digits}f} ms over {len(times)} calls"
        self.add(
            area=area,
            name=name,
            value=f"{median:.{digits}f} ms (median)",
            target=f"≤ {target_ms:g} ms",
            passed=median <= target_ms,
            detail=f"{summary}; {detail}" if detail else summary,
        )


def verdict(passed: bool | None) -> str:
    return "—" if passed is None else "pass" if passed else "**FAIL**"


def figures_markdown(figures: list[Figure]) -> str:
    lines = [
        "| Area | Figure | Measured | Target | Result | Detail |",
        "|---|---|---|---|---|---|",
    ]
    lines += [
        f"| {f.area} | {f.name} | {f.value} | {f.target} | {verdict(f.passed)} | {f.detail} |"
        for f in figures
    ]
    return "\n".join(lines)


def report_markdown(report: Report) -> str:
    parts = [figures_markdown(report.figures)]
    for title, table in report.tables.items():
        parts.append(f"**{title}**\n\n{table}")
    if report.notes:
        parts.append("\n".join(f"- {note}" for note in report.notes))
    return "\n\n".join(parts)


def cli(description: str | None) -> argparse.Namespace:
    """The options every benchmark script takes (parsed before any work, so --help is instant)."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--json", type=Path, help="write the figures as JSON here instead of printing them")
    return parser.parse_args()


def finish(report: Report, json_path: Path | None) -> None:
    """Print the report as markdown, or write it as JSON for bench.run."""
    if json_path:
        json_path.write_text(json.dumps(asdict(report), indent=2))
    else:
        print(report_markdown(report))


def load_report(path: Path) -> Report:
    data = json.loads(path.read_text())
    return Report(figures=[Figure(**f) for f in data["figures"]], tables=data["tables"], notes=data["notes"])
