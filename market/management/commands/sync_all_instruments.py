import time

from django.core.management.base import BaseCommand, CommandError
from tqdm import tqdm

from market.models import SyncRun
from market.selectors import sync_runs_with_progress
from market.services import sync_run_inline, sync_run_plan, sync_run_resume
from market.timeframes import Timeframe
from tradingdash.commands import MAX_DAYS, int_between


class Command(BaseCommand):
    help = (
        "Sync every active instrument in batches of symbols per provider request (a SyncRun), through the Celery "
        "workers or --inline; --resume ID continues a run, skipping its done batches. Shows a progress bar."
    )

    def add_arguments(self, parser):
        parser.add_argument("--timeframe", default="1D", help="1m, 5m, 15m, 1H, 1D or 1W")
        parser.add_argument(
            "--days",
            type=int_between(1, MAX_DAYS),
            default=None,
            help="History kept complete (MARKET_SYNC_DAYS)",
        )
        parser.add_argument(
            "--batch-size",
            type=int_between(1),
            default=None,
            help="Symbols per request (MARKET_SYNC_BATCH_SIZE)",
        )
        parser.add_argument(
            "--resume", type=int, metavar="RUN_ID", help="Continue this run instead of planning one"
        )
        parser.add_argument(
            "--inline", action="store_true", help="Run the batches in this process, not on workers"
        )
        parser.add_argument(
            "--no-wait", action="store_true", help="Enqueue and return without watching progress"
        )

    def handle(self, *args, timeframe, days, batch_size, resume, inline, no_wait, **options):
        if resume is not None:
            if not SyncRun.objects.filter(pk=resume).exists():
                raise CommandError(f"No sync run {resume}")
            run_id = resume
        else:
            try:
                tf = Timeframe.parse(timeframe)
            except ValueError as exc:
                raise CommandError(str(exc)) from exc
            run_id = sync_run_plan(timeframe=tf, days=days, batch_size=batch_size, trigger="command").pk
        run = sync_runs_with_progress().get(pk=run_id)
        self.stdout.write(f"sync run {run_id}: {run.symbols_total} symbols in {run.batches_total} batches")
        bar = tqdm(
            total=run.batches_total,
            initial=run.batches_done,
            desc=f"run {run_id} {run.timeframe}",
            unit="batch",
            disable=options["verbosity"] == 0,
        )
        if inline:
            sync_run_inline(run_id=run_id, on_batch=lambda result: bar.update(1))
        else:
            sync_run_resume(run_id=run_id)
            while not no_wait:
                run = sync_runs_with_progress().get(pk=run_id)
                bar.update(run.batches_done + run.batches_failed - bar.n)
                if run.finished_at is not None:
                    break
                time.sleep(1)
        bar.close()
        run = sync_runs_with_progress().get(pk=run_id)
        self.stdout.write(
            f"sync run {run_id}: {run.batches_done} of {run.batches_total} batches done, {run.batches_failed} failed; "
            f"{run.rows_inserted} rows inserted, {run.rows_updated} updated, {run.symbols_not_found} symbols not found"
        )
        if run.finished_at is not None and run.batches_failed:
            raise CommandError(f"{run.batches_failed} batches failed; resume with --resume {run_id}")
