from django.core.management.base import BaseCommand, CommandError
from tqdm import tqdm

from market.models import Instrument
from market.providers.errors import ProviderError
from market.services import quality_check, quality_repair
from market.sources import get_provider
from market.symbols import InvalidSymbol, parse_symbol
from market.timeframes import Timeframe


class Command(BaseCommand):
    help = (
        "Check stored candles against the exchange calendar (missing sessions, bars outside sessions, "
        "duplicates, jumps, zero-volume runs, stale data) and, with --repair, re-fetch what is missing."
    )

    def add_arguments(self, parser):
        parser.add_argument("symbols", nargs="*", help="e.g. RELIANCE TCS.NS (default: active instruments)")
        parser.add_argument("--timeframe", default="1D")
        parser.add_argument(
            "--repair", action="store_true", help="Re-fetch missing sessions from the provider"
        )
        parser.add_argument("--provider", default=None, help="yfinance, synthetic or csv (default: settings)")

    def handle(self, *args, symbols, timeframe, repair, provider, **options):
        try:
            tf = Timeframe.parse(timeframe)
            symbols = [parse_symbol(s) for s in symbols] or list(
                Instrument.objects.filter(active=True).values_list("symbol", flat=True)
            )
            source = get_provider(provider) if repair else None
        except (ValueError, InvalidSymbol) as exc:
            raise CommandError(str(exc)) from exc
        failures = 0
        for symbol in tqdm(
            symbols, desc=f"quality {tf.value}", unit="symbol", disable=options["verbosity"] == 0
        ):
            try:
                if repair:
                    result = quality_repair(symbol=symbol, timeframe=tf, provider=source)
                else:
                    result = quality_check(symbol=symbol, timeframe=tf)
            except ProviderError as exc:
                failures += 1
                self.stderr.write(f"{symbol}: {exc}")
                continue
            line = f"{symbol} {tf.value}: {result.open} open ({result.new} new), {result.resolved} resolved"
            if repair:
                line += f"; {result.refetched} bars re-fetched, {result.unavailable} gaps the provider lacks"
            self.stdout.write(line)
        if failures:
            raise CommandError(f"{failures} symbol(s) failed")
