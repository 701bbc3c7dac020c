from django.core.management.base import BaseCommand, CommandError
from tqdm import tqdm

from market.providers.errors import ProviderError
from market.symbols import InvalidSymbol, parse_symbol
from market.timeframes import Timeframe
from predictions.services import NotEnoughHistory, predictions_backfill


class Command(BaseCommand):
    help = (
        "Give symbols a track record: replay predictions on their last N matured bars, each made with only the "
        "data known at its bar (a model fitted on earlier bars), stored as replayed predictions and scored."
    )

    def add_arguments(self, parser):
        parser.add_argument("symbols", nargs="+", help="e.g. RELIANCE TCS.NS")
        parser.add_argument("--bars", type=int, default=60, help="how many past bars to replay (default 60)")
        parser.add_argument("--timeframe", default="1D")
        parser.add_argument("--horizon", type=int, default=1)
        parser.add_argument("--model", default="svr", help="svr, random_forest or naive")

    def handle(self, *args, symbols, bars, timeframe, horizon, model, **options):
        if not 1 <= bars <= 2000:
            raise CommandError("--bars must be from 1 to 2000")
        try:
            tf = Timeframe.parse(timeframe)
            symbols = [parse_symbol(s) for s in symbols]
        except (ValueError, InvalidSymbol) as exc:
            raise CommandError(str(exc)) from exc
        for symbol in tqdm(symbols, desc="backfill", unit="symbol", disable=options["verbosity"] == 0):
            try:
                result = predictions_backfill(
                    symbol=symbol, timeframe=tf, bars=bars, horizon=horizon, algorithm=model
                )
            except (NotEnoughHistory, ProviderError) as exc:
                raise CommandError(f"{symbol}: {exc}") from exc
            except ValueError as exc:
                raise CommandError(str(exc)) from exc
            self.stdout.write(
                f"{symbol}: {result.created} replayed predictions ({result.scored} scored) with {result.model_version}"
            )
