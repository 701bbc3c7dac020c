from django.core.management.base import BaseCommand, CommandError
from tqdm import tqdm

from market.models import Instrument
from market.providers.errors import ProviderError
from market.services import candles_sync
from market.sources import get_provider
from market.symbols import InvalidSymbol, parse_symbol
from market.timeframes import Timeframe
from tradingdash.commands import MAX_DAYS, int_between


class Command(BaseCommand):
    help = "Fetch and store candles for the given symbols (default: the active watchlist). Idempotent."

    def add_arguments(self, parser):
        parser.add_argument("symbols", nargs="*", help="e.g. RELIANCE TCS.NS ^NSEI")
        parser.add_argument("--timeframe", default="1D", help="1m, 5m, 15m, 1H, 1D or 1W")
        parser.add_argument(
            "--days",
            type=int_between(1, MAX_DAYS),
            default=None,
            help="Fetch this many days back (default: incremental)",
        )
        parser.add_argument("--provider", default=None, help="yfinance, synthetic or csv (default: settings)")

    def handle(self, *args, symbols, timeframe, days, provider, **options):
        try:
            tf = Timeframe.parse(timeframe)
            symbols = [parse_symbol(s) for s in symbols] or list(
                Instrument.objects.filter(active=True).values_list("symbol", flat=True)
            )
            source = get_provider(provider)
        except (ValueError, InvalidSymbol) as exc:
            raise CommandError(str(exc)) from exc
        failures = 0
        for symbol in tqdm(
            symbols, desc=f"sync {tf.value}", unit="symbol", disable=options["verbosity"] == 0
        ):
            try:
                result = candles_sync(symbol=symbol, timeframe=tf, days=days, provider=source)
            except (ProviderError, ValueError) as exc:
                failures += 1
                self.stderr.write(f"{symbol}: {exc}")
                continue
            self.stdout.write(
                f"{symbol} {tf.value}: {result.inserted} inserted, {result.updated} updated, "
                f"{result.unchanged} unchanged from {result.source}"
                + (
                    f"; {result.off_session} rows outside the sessions not stored"
                    if result.off_session
                    else ""
                )
            )
        if failures:
            raise CommandError(f"{failures} of {len(symbols)} symbols failed")
