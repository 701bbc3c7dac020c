from django.core.management.base import BaseCommand, CommandError
from tqdm import tqdm

from market.models import Instrument
from market.providers.errors import ProviderError
from market.services import StaleMarketData
from market.symbols import InvalidSymbol, parse_symbol
from market.timeframes import Timeframe
from signals.services import (
    TRANSIENT_ERRORS,
    NotEnoughCandles,
    signal_catch_up_clear,
    signal_catch_up_mark,
    signal_generate,
)


class Command(BaseCommand):
    help = "Generate a trading signal for the given symbols (default: the active watchlist)."

    def add_arguments(self, parser):
        parser.add_argument("symbols", nargs="*")
        parser.add_argument("--timeframe", default="1D")

    def handle(self, *args, symbols, timeframe, **options):
        try:
            tf = Timeframe.parse(timeframe)
            symbols = [parse_symbol(s) for s in symbols] or list(
                Instrument.objects.filter(active=True).values_list("symbol", flat=True)
            )
        except (ValueError, InvalidSymbol) as exc:
            raise CommandError(str(exc)) from exc
        failures = 0
        for symbol in tqdm(symbols, desc="signals", unit="symbol", disable=options["verbosity"] == 0):
            try:
                signal = signal_generate(symbol=symbol, timeframe=tf, once_per_bar=True)
            except (NotEnoughCandles, ProviderError, StaleMarketData) as exc:
                if isinstance(exc, TRANSIENT_ERRORS):  # made when its candles arrive (signals.receivers)
                    signal_catch_up_mark(symbol=symbol, timeframe=tf)
                self.stderr.write(f"{symbol}: {exc}")
                failures += 1
                continue
            signal_catch_up_clear(symbol=symbol, timeframe=tf)
            self.stdout.write(f"{symbol}: {signal.signal_type} ({signal.strength:.2f}) — {signal.reasoning}")
        if failures:
            raise CommandError(f"{failures} of {len(symbols)} symbols failed")
