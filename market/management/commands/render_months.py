from django.core.management.base import BaseCommand, CommandError
from django.db import connection

from market.services import rendered_months_rebuild, rendered_months_refresh_all
from market.symbols import InvalidSymbol, parse_symbol


class Command(BaseCommand):
    help = (
        "Render the stale months of daily bars that fast historical reads join (market.models.RenderedMonth), as "
        "the beat task market.render_stale_months does; with --rebuild, every month again, rows of months missing "
        "one included (after restoring candles with triggers off). PostgreSQL only; idempotent."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--rebuild", action="store_true", help="render every month, not only the stale ones"
        )
        parser.add_argument("--symbol", help="only this symbol's months (with --rebuild)")

    def handle(self, *args, rebuild, symbol, **options):
        if connection.vendor != "postgresql":
            self.stdout.write("Rendered months are kept on PostgreSQL only: nothing to do.")
            return
        if symbol is not None and not rebuild:
            raise CommandError("--symbol goes with --rebuild")
        if symbol is not None:
            try:
                symbol = parse_symbol(symbol)
            except InvalidSymbol as exc:
                raise CommandError(str(exc)) from exc
        rendered = rendered_months_rebuild(symbol=symbol) if rebuild else rendered_months_refresh_all()
        self.stdout.write(f"Months rendered: {rendered}")
