"""A market data provider that fails on cue, for the end-to-end fault tests.

The worker and gunicorn select it with MARKET_DATA_PROVIDER=e2e.faults:build_provider (market.sources builds a
`module:factory` provider); the test scripts its failures in a JSON file (E2E_FAULTS_FILE) that every process
reads on each fetch, under an exclusive lock, so "fail the next 3 calls" holds across worker and web processes.
Symbols without a script get the synthetic provider's candles unchanged; every call is appended to an attempt
log next to the script, so the test can count attempts and see which ones failed.

Script, per symbol: {"down": true} fails every call; {"fail_next": 3} fails the next three calls. Failures cycle
through `errors` (default: a 429, then a timeout): "rate_limited" raises RateLimited (what the yfinance
provider raises on HTTP 429), "timeout" waits `timeout_seconds` and raises ProviderUnavailable (what it raises
when Yahoo does not answer in time).
"""

from __future__ import annotations

import fcntl
import json
import os
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pandas as pd

from market.providers.base import Provider
from market.providers.errors import ProviderUnavailable, RateLimited
from market.timeframes import Timeframe

DEFAULT_ERRORS = ("rate_limited", "timeout")


class FaultScript:
    """The shared script file and its attempt log; used by the provider (in the app's processes) and the test."""

    def __init__(self, path: Path | str):
        self.path = Path(path)
        self.log_path = self.path.with_suffix(".attempts.jsonl")

    @contextmanager
    def _locked(self) -> Iterator[dict[str, Any]]:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.path.with_suffix(".lock"), "a+") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                script = json.loads(self.path.read_text()) if self.path.exists() else {}
                yield script
                tmp = self.path.with_suffix(".tmp")
                tmp.write_text(json.dumps(script))
                tmp.replace(self.path)
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)

    def set(self, symbol: str, **rule: Any) -> None:
        """Replace the rule of `symbol` (no keyword arguments: the symbol is healthy again)."""
        with self._locked() as script:
            if rule:
                script[symbol] = {"errors": list(DEFAULT_ERRORS), "timeout_seconds": 0.5, **rule, "calls": 0}
            else:
                script.pop(symbol, None)

    def take(self, symbol: str) -> dict[str, Any] | None:
        """The failure for this call of `symbol`, if any (consuming one of `fail_next`)."""
        with self._locked() as script:
            rule = script.get(symbol)
            if not rule:
                return None
            if not rule.get("down"):
                if rule.get("fail_next", 0) <= 0:
                    return None
                rule["fail_next"] -= 1
            errors = rule["errors"]
            error = errors[rule["calls"] % len(errors)]
            rule["calls"] += 1
            return {"error": error, "timeout_seconds": rule["timeout_seconds"]}

    def record(self, **entry: Any) -> None:
        line = json.dumps({"at": datetime.now(UTC).isoformat(), "pid": os.getpid(), **entry}) + "\n"
        with open(self.log_path, "a") as log:
            fcntl.flock(log, fcntl.LOCK_EX)
            log.write(line)

    def attempts(self, symbol: str | None = None) -> list[dict[str, Any]]:
        if not self.log_path.exists():
            return []
        rows = [json.loads(line) for line in self.log_path.read_text().splitlines() if line.strip()]
        return [row for row in rows if symbol is None or row["symbol"] == symbol]


class FaultyProvider(Provider):
    """The synthetic provider behind a scripted fault injector."""

    name = "e2e-synthetic"

    def __init__(self, *, inner: Callable[[], Provider], script: FaultScript):
        self.inner = inner  # built per call, like market.sources does for the synthetic provider
        self.script = script

    def fetch_candles(
        self,
        symbol: str,
        timeframe: Timeframe,
        *,
        start: datetime | None = None,
        end: datetime | None = None,
    ) -> pd.DataFrame:
        fault = self.script.take(symbol)
        if fault is None:
            candles = self.inner().fetch_candles(symbol, timeframe, start=start, end=end)
            self.script.record(symbol=symbol, timeframe=timeframe.value, outcome="ok", rows=len(candles))
            return candles
        self.script.record(symbol=symbol, timeframe=timeframe.value, outcome=fault["error"])
        if fault["error"] == "timeout":
            time.sleep(fault["timeout_seconds"])
            raise ProviderUnavailable(f"Timed out after {fault['timeout_seconds']}s waiting for the provider")
        raise RateLimited("HTTP 429 Too Many Requests", retry_after=1)


def build_provider() -> Provider:
    """The factory MARKET_DATA_PROVIDER names: synthetic candles for the catalogue, faults from the script."""
    from market.sources import get_provider

    return FaultyProvider(
        inner=lambda: get_provider("synthetic"), script=FaultScript(os.environ["E2E_FAULTS_FILE"])
    )
