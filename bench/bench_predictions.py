"""Predictions (issue 4): training time with walk-forward, prediction latency, feature computation, and the
walk-forward metrics of every model against naive, on synthetic daily candles.

    python -m bench.bench_predictions       (or bench/run.sh for every benchmark)

Pure computation (predictions.ml, no database): candles come from the synthetic provider at a fixed clock, so
every run sees the same series. Training is `registry.train` with default hyperparameters (5 walk-forward folds,
then the final fit on all rows); latency is `registry.predict` with a forecaster loaded from its artifact.
"""

from __future__ import annotations

import numpy as np

from bench.harness import Report, cli, daily_candles, finish, sample, setup, timed

SYMBOLS = ("RELIANCE.NS", "TCS.NS", "INFY.NS")
TRAIN_BARS = 1250  # about 5 years of daily candles
FEATURE_BARS = 2500  # about 10 years
ALGORITHMS = ("naive", "random_forest", "svr", "lstm")
TRAIN_TARGET_S = {"random_forest": 10.0, "svr": 10.0, "lstm": 60.0}
PREDICT_TARGET_MS = 50.0
PREDICT_CALLS = 50
FEATURE_TARGET_MS = 50.0


def _fmt(value, digits: int = 3) -> str:
    return "—" if value is None else f"{value:.{digits}f}"


def main() -> None:
    args = cli(__doc__.splitlines()[0])
    setup(migrate=False)
    from predictions.features import compute_features
    from predictions.ml import registry

    report = Report()
    outputs: dict[tuple[str, str], registry.TrainOutput] = {}
    seconds: dict[tuple[str, str], float] = {}
    for symbol in SYMBOLS:
        candles = daily_candles(symbol, TRAIN_BARS)
        for algorithm in ALGORITHMS:
            took, output = timed(lambda c=candles, a=algorithm: registry.train(a, c, horizon=1))
            outputs[symbol, algorithm] = output
            seconds[symbol, algorithm] = took

    for algorithm, target in TRAIN_TARGET_S.items():
        runs = [seconds[symbol, algorithm] for symbol in SYMBOLS]
        report.add(
            area="Predictions",
            name=f"Training {algorithm}, {TRAIN_BARS:,} daily candles, incl. 5-fold walk-forward",
            value=f"{max(runs):.2f} s (slowest of 3 symbols)",
            target=f"≤ {target:g} s",
            passed=max(runs) <= target,
            detail=", ".join(f"{s}: {seconds[s, algorithm]:.2f} s" for s in SYMBOLS)
            + "; default hyperparameters",
        )

    first = SYMBOLS[0]
    candles = daily_candles(first, TRAIN_BARS)
    for algorithm in ALGORITHMS:
        output = outputs[first, algorithm]
        artifact = registry.serialize(output.forecaster)
        load_s, forecaster = timed(
            lambda a=algorithm, d=artifact: registry.load_verified(a, d, registry.sha256(d))
        )
        quantiles = output.evaluation.residual_quantiles

        def call(f=forecaster, q=quantiles):
            return registry.predict(f, candles, horizon=1, residual_quantiles=q)

        first_call = sample(call, repeat=1)[0]
        report.add_median(
            area="Predictions",
            name=f"`registry.predict` latency, loaded {algorithm} model",
            times=sample(call, repeat=PREDICT_CALLS),
            target_ms=PREDICT_TARGET_MS,
            detail=f"first call after load {first_call:.1f} ms; "
            f"artifact {len(artifact) / 1024:,.1f} KiB loaded in {load_s * 1000:.0f} ms",
        )

    ten_years = daily_candles(first, FEATURE_BARS)
    compute_features(ten_years)
    report.add_median(
        area="Predictions",
        name=f"`compute_features` on {FEATURE_BARS:,} daily candles (10 years)",
        times=sample(lambda: compute_features(ten_years), repeat=100),
        target_ms=FEATURE_TARGET_MS,
    )

    from predictions.ml.ensemble_evaluation import ensemble_train

    lines = [
        "| Symbol | Model | MAE (₹) | MAE / naive | DM p-value | Directional accuracy | coverage_80 "
        "| calm / volatile third | Tested rows | Train time |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for symbol in SYMBOLS:
        ensemble = ensemble_train([outputs[symbol, a] for a in ALGORITHMS])
        for algorithm in (*ALGORITHMS, "ensemble"):
            output = ensemble if algorithm == "ensemble" else outputs[symbol, algorithm]
            m = output.evaluation.metrics
            took = "" if algorithm == "ensemble" else f"{seconds[symbol, algorithm]:.2f} s"
            lines.append(
                f"| {symbol} | {algorithm} | {m['mae']:.2f} | {_fmt(m['mae_vs_naive'])} | "
                f"{_fmt(m['dm_p_value'])} | {_fmt(m['directional_accuracy'])} | {_fmt(m['coverage_80'])} | "
                f"{_fmt(m['coverage_80_calm'])} / {_fmt(m['coverage_80_volatile'])} | {m['n_samples']} | {took} |"
            )
        actual = outputs[symbol, "naive"].evaluation.out_of_sample["actual"].to_numpy()
        moved = actual[actual != 0]
        up_share = float(np.mean(moved > 0)) if moved.size else None
        lines.append(
            f'| {symbol} | *always "up" (reference)* | | | | {_fmt(up_share)} | | | {moved.size} | |'
        )
    report.tables[
        f"Walk-forward metrics, horizon 1 day, {TRAIN_BARS:,} synthetic daily candles per symbol (out of sample)"
    ] = "\n".join(lines)
    finish(report, args.json)


if __name__ == "__main__":
    main()
