from django.core.management.base import BaseCommand, CommandError

from market.services import sessions_load_csv


class Command(BaseCommand):
    help = (
        "Load an exchange's announced special sessions (Muhurat trading, a Saturday session) and shortened days "
        "from a CSV with the header date,kind,open_time,close_time,description,source (times HH:MM in exchange "
        "local time; kind special or shortened). Running it twice changes nothing."
    )

    def add_arguments(self, parser):
        parser.add_argument("csv_path")
        parser.add_argument("--exchange", default="NSE")

    def handle(self, *args, csv_path, exchange, **options):
        try:
            result = sessions_load_csv(path=csv_path, exchange=exchange)
        except (OSError, ValueError) as exc:
            raise CommandError(str(exc)) from exc
        self.stdout.write(
            f"{exchange.strip().upper()}: {result.created} sessions added, {result.updated} updated, "
            f"{result.unchanged} unchanged"
        )
