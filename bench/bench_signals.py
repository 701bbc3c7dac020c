"""Signals (issue 5): rule evaluation and a full backtest over 10 years of daily candles, and the signal
generation and backtest endpoints' server times with stored candles.

    python -m bench.bench_signals           (or bench/run.sh for every benchmark)

`evaluate` and `run_backtest` are pure and get synthetic candles at a fixed clock. The endpoints go through the
Django test client with a JWT-authenticated user; their time is everything around client.post()/get().
"""

from __future__ import annotations

from bench.harness import (
    Report,
    cli,
    daily_candles,
    finish,
    jwt_client,
    pct,
    sample,
    setup,
    spread,
    store_daily_candles,
)

SYMBOL = "RELIANCE.NS"
BARS = 2500  # about 10 years of daily candles
EVALUATE_TARGET_MS = 50.0
BACKTEST_TARGET_MS = 500.0
REQUESTS = 100


def main() -> None:
    args = cli(__doc__.splitlines()[0])
    setup()
    from signals.backtest import run_backtest
    from signals.models import TradingSignal
    from signals.rules import evaluate, required_bars
    from signals.services import _EXTRA_BARS

    report = Report()
    candles = daily_candles(SYMBOL, BARS)

    evaluate(candles)
    report.add_median(
        area="Signals",
        name=f"`rules.evaluate`, {BARS:,} daily candles",
        times=sample(lambda: evaluate(candles), repeat=100),
        target_ms=EVALUATE_TARGET_MS,
    )

    result = run_backtest(candles)
    report.add_median(
        area="Signals",
        name=f"`backtest.run_backtest`, {BARS:,} daily candles",
        times=sample(lambda: run_backtest(candles), repeat=20),
        target_ms=BACKTEST_TARGET_MS,
        digits=1,
        detail=f"{len(result.trades)} trades",
    )

    stored = store_daily_candles(SYMBOL, bars=BARS)
    client = jwt_client()
    bare = SYMBOL.removesuffix(".NS")
    before = set(TradingSignal.objects.filter(symbol=SYMBOL).values_list("pk", flat=True))

    def generate():
        response = client.post(f"/api/signals/generate/{bare}", {"timeframe": "1D"}, format="json")
        assert response.status_code == 201, (response.status_code, response.content[:300])

    def backtest():
        response = client.get(f"/api/signals/{bare}/backtest?timeframe=1D")
        assert response.status_code == 200, (response.status_code, response.content[:300])

    try:
        sample(generate, repeat=5)
        times = sample(generate, repeat=REQUESTS)
    finally:
        TradingSignal.objects.filter(symbol=SYMBOL).exclude(pk__in=before).delete()
    report.add(
        area="Signals",
        name="POST /api/signals/generate/{symbol}, stored candles",
        value=f"p50 {pct(times, 50):.2f} ms",
        detail=f"{spread(times)}; the service reads the latest {required_bars() + _EXTRA_BARS} of "
        f"{stored:,} stored candles, evaluates and stores a signal",
    )

    backtest()
    times = sample(backtest, repeat=20)
    report.add(
        area="Signals",
        name="GET /api/signals/{symbol}/backtest, all stored candles",
        value=f"p50 {pct(times, 50):.1f} ms",
        detail=f"{spread(times)}; {stored:,} stored candles",
    )
    finish(report, args.json)


if __name__ == "__main__":
    main()
