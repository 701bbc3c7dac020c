"""Smoke test of bench/bench_sync.py with a handful of symbols, batches run in-process (the benchmark itself,
with 2,000 symbols and real Celery workers, is not part of the suite)."""

from datetime import UTC, datetime

import pytest
import time_machine

from bench import bench_sync
from market.models import MarketData

pytestmark = pytest.mark.django_db


def test_backfill_then_nightly_on_a_handful_of_symbols(settings):
    settings.MARKET_SYNC_DAYS = 400
    symbols = bench_sync.bench_symbols(3)
    wednesday_after_the_close = datetime(2026, 6, 3, 11, 0, tzinfo=UTC)
    with time_machine.travel(wednesday_after_the_close, tick=False):
        bench_sync.prepare(symbols)
        backfill, nightly = bench_sync.backfill_and_nightly(
            symbols, batch_size=2, runner=bench_sync.run_inline
        )

    assert (backfill.batches, backfill.failed, backfill.updated) == (2, 0, 0)
    assert backfill.inserted > 3 * 250 and backfill.rows_per_second > 0
    # The nightly run re-fetches the few sessions since the previous one: the latest bar is new, the overlap
    # comes back as stored (unchanged: not rewritten, not counted as updated); nothing is stored twice.
    assert (nightly.batches, nightly.failed, nightly.inserted) == (2, 0, 3)
    assert nightly.updated == 0
    assert MarketData.objects.filter(symbol__in=symbols).count() == backfill.inserted
