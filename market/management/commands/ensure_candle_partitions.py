from django.core.management.base import BaseCommand

from market.partitions import MONTHS_AHEAD, candle_partitions, candle_partitions_ensure


class Command(BaseCommand):
    help = (
        "Create the candle table's monthly partitions for this month and the next ones, and move rows that landed "
        "in its default partition into partitions of their own (PostgreSQL; idempotent)."
    )

    def add_arguments(self, parser):
        parser.add_argument("--months-ahead", type=int, default=MONTHS_AHEAD)
        parser.add_argument(
            "--list", dest="show", action="store_true", help="print every partition and its bounds after"
        )

    def handle(self, *args, months_ahead, show, **options):
        result = candle_partitions_ensure(months_ahead=max(months_ahead, 0))
        if not result.partitioned:
            self.stdout.write("The candle table is not partitioned on this database: nothing to do.")
            return
        created = ", ".join(result.created) or "none"
        self.stdout.write(
            f"Partitions created: {created}; rows moved out of the default partition: {result.moved}"
        )
        if show:
            for name, bounds in candle_partitions():
                self.stdout.write(f"{name}  {bounds}")
