from django.core.management.base import BaseCommand, CommandError
from tqdm import tqdm

from market.models import Instrument
from market.providers.errors import ProviderError
from market.symbols import InvalidSymbol, parse_symbol
from market.timeframes import Timeframe
from predictions.features import MAX_HORIZON, MIN_HORIZON
from predictions.ml.registry import ALGORITHMS
from predictions.services import NotEnoughHistory, models_train
from tradingdash.commands import int_between


class Command(BaseCommand):
    help = (
        "Train, walk-forward evaluate and (if no worse) activate models for symbols (default: the watchlist)."
    )

    def add_arguments(self, parser):
        parser.add_argument("symbols", nargs="*")
        parser.add_argument("--timeframe", default="1D")
        parser.add_argument("--horizon", type=int_between(MIN_HORIZON, MAX_HORIZON), default=1)
        parser.add_argument("--models", default="random_forest,svr,lstm", help="comma-separated algorithms")

    def handle(self, *args, symbols, timeframe, horizon, models, **options):
        algorithms = [m.strip() for m in models.split(",") if m.strip()]
        trainable = sorted(set(ALGORITHMS) - {"naive"})
        unknown = sorted(set(algorithms) - set(trainable))
        if unknown:
            raise CommandError(f"unknown models: {', '.join(unknown)}")
        if not algorithms:  # models_train would take an empty list for "the default ones", LSTM included
            raise CommandError(f"--models names no model; use one or more of {', '.join(trainable)}")
        try:
            tf = Timeframe.parse(timeframe)
            symbols = [parse_symbol(s) for s in symbols] or list(
                Instrument.objects.filter(active=True).values_list("symbol", flat=True)
            )
        except (ValueError, InvalidSymbol) as exc:
            raise CommandError(str(exc)) from exc
        bar = tqdm(
            total=len(symbols) * (len(algorithms) + 1), unit="model", disable=options["verbosity"] == 0
        )
        failures = 0
        for symbol in symbols:
            done = 0

            def progress(fraction, stage, symbol=symbol):
                nonlocal done
                bar.set_description(f"{symbol}: {stage}")
                step = round(fraction * (len(algorithms) + 1))
                bar.update(step - done)
                done = step

            try:
                trained = models_train(
                    symbol=symbol, timeframe=tf, horizon=horizon, algorithms=algorithms, progress=progress
                )
            except (NotEnoughHistory, ProviderError) as exc:
                self.stderr.write(f"{symbol}: {exc}")
                bar.update(len(algorithms) + 1 - done)
                failures += 1
                continue
            for model in trained:
                ratio = model.metrics.get("mae_vs_naive")
                verdict = "beats naive" if model.beats_naive else "does not beat naive"
                state = "activated" if model.promoted else "kept inactive"
                self.stdout.write(
                    f"{model}: MAE/naive {ratio if ratio is None else round(ratio, 3)} ({verdict}); {state}"
                )
        bar.close()
        if failures:
            raise CommandError(f"{failures} of {len(symbols)} symbols failed")
