from django.core.management.base import BaseCommand, CommandError

from market.models import Instrument
from market.services import candles_sync
from market.sources import get_provider
from market.timeframes import Timeframe
from tradingdash.commands import MAX_DAYS, int_between


class Command(BaseCommand):
    help = (
        "Fill the active watchlist with synthetic daily candles (stored with source='synthetic') for demos."
    )

    def add_arguments(self, parser):
        parser.add_argument("--days", type=int_between(1, MAX_DAYS), default=5 * 365)
        parser.add_argument("--timeframe", default="1D")

    def handle(self, *args, days, timeframe, **options):
        try:
            tf = Timeframe.parse(timeframe)
        except ValueError as exc:
            raise CommandError(str(exc)) from exc
        provider = get_provider("synthetic")
        for symbol in Instrument.objects.filter(active=True).values_list("symbol", flat=True):
            result = candles_sync(symbol=symbol, timeframe=tf, days=days, provider=provider)
            self.stdout.write(f"{symbol}: {result.inserted} inserted, {result.updated} updated (synthetic)")
