from django.core.management.base import BaseCommand, CommandError

from market.services import holidays_load_csv


class Command(BaseCommand):
    help = "Load an exchange's published trading holidays from a CSV with the header date,description."

    def add_arguments(self, parser):
        parser.add_argument("csv_path")
        parser.add_argument("--exchange", default="NSE")

    def handle(self, *args, csv_path, exchange, **options):
        try:
            created, updated = holidays_load_csv(path=csv_path, exchange=exchange)
        except (OSError, ValueError) as exc:
            raise CommandError(str(exc)) from exc
        self.stdout.write(f"{exchange}: {created} holidays added, {updated} updated")
