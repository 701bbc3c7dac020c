from collections import Counter

from django.core.management.base import BaseCommand, CommandError
from tqdm import tqdm

from market.listings import BadRow, read_equity_list
from market.services import instrument_upsert_listing


class Command(BaseCommand):
    help = (
        "Import an equity list in the format of NSE's EQUITY_L.csv into the catalogue, keyed by ISIN. "
        "Running it again changes nothing; instruments added by hand (indices) stay."
    )

    def add_arguments(self, parser):
        parser.add_argument("csv_path")
        parser.add_argument("--exchange", default="NSE")
        parser.add_argument("--suffix", default=".NS", help="Yahoo suffix added to the symbols (NSE: .NS)")
        parser.add_argument(
            "--series",
            default="EQ",
            help="Comma-separated series to import (default EQ; 'all' for every one)",
        )
        parser.add_argument(
            "--activate",
            action="store_true",
            help="Make the imported instruments active (in the scheduled sync); new ones are inactive otherwise",
        )

    def handle(self, *args, csv_path, exchange, suffix, series, activate, **options):
        wanted = None if series.strip().lower() == "all" else {s.strip().upper() for s in series.split(",")}
        try:
            with open(csv_path, newline="", encoding="utf-8-sig") as handle:
                rows = list(read_equity_list(handle, suffix=suffix))
        except (OSError, UnicodeDecodeError, ValueError) as exc:
            raise CommandError(f"{csv_path}: {exc}") from exc
        counts: Counter[str] = Counter()
        for row in tqdm(rows, desc="instruments", unit="row", disable=options["verbosity"] == 0):
            if isinstance(row, BadRow):
                counts["rejected"] += 1
                self.stderr.write(f"{csv_path}:{row.line}: {row.reason}")
            elif wanted is not None and row.series not in wanted:
                counts["other series"] += 1
            else:
                counts[instrument_upsert_listing(listing=row, exchange=exchange, activate=activate)] += 1
        self.stdout.write(
            ", ".join(
                f"{counts[key]} {key}"
                for key in ("created", "updated", "unchanged", "other series", "rejected")
            )
        )
