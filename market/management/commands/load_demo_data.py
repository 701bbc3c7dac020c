from django.core.management.base import BaseCommand, CommandError

from market.models import Instrument, MarketData
from market.services import candles_sync
from market.sources import get_provider
from market.timeframes import Timeframe
from tradingdash.commands import MAX_DAYS, int_between


class Command(BaseCommand):
    help = (
        "Fill the active watchlist with synthetic daily candles (stored with source='synthetic') for demos. A "
        "symbol that already has candles of the timeframe from another source (real market data) is skipped: "
        "synthetic bars would replace them. --replace-real replaces them anyway."
    )

    def add_arguments(self, parser):
        parser.add_argument("--days", type=int_between(1, MAX_DAYS), default=5 * 365)
        parser.add_argument("--timeframe", default="1D")
        parser.add_argument(
            "--replace-real",
            action="store_true",
            help="also overwrite candles another provider stored (they are lost: synthetic ones take their place)",
        )

    def handle(self, *args, days, timeframe, replace_real, **options):
        try:
            tf = Timeframe.parse(timeframe)
        except ValueError as exc:
            raise CommandError(str(exc)) from exc
        provider = get_provider("synthetic")
        for symbol in Instrument.objects.filter(active=True).values_list("symbol", flat=True):
            real = (
                MarketData.objects.filter(symbol=symbol, timeframe=tf.value)
                .exclude(source=provider.name)
                .values_list("source", flat=True)
                .first()
            )
            if real is not None and not replace_real:
                self.stdout.write(
                    f"{symbol}: skipped, it has {tf.value} candles from {real} (--replace-real to overwrite them)"
                )
                continue
            result = candles_sync(symbol=symbol, timeframe=tf, days=days, provider=provider)
            self.stdout.write(f"{symbol}: {result.inserted} inserted, {result.updated} updated (synthetic)")
