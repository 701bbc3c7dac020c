"""The whole-market sync: plans cut into batches, batches run through Celery (eager here), resumed after a
crash or a failure without fetching done batches again or duplicating rows."""

from datetime import UTC, datetime, timedelta
from io import StringIO

import pytest
import time_machine
from celery.exceptions import Retry
from django.core.management import CommandError, call_command

from market import tasks
from market.models import CoverageInterval, Instrument, MarketData, SyncBatch, SyncRun
from market.providers.errors import ProviderUnavailable
from market.selectors import sync_run_percent, sync_runs_with_progress
from market.services import sync_batch_run, sync_run_plan, sync_run_resume
from market.tests.factories import FrameProvider, InstrumentFactory, make_candles
from market.tests.providers.fake_clock import FakeClock
from market.tests.providers.fake_yahoo import FakeYahooSession
from market.timeframes import Timeframe

pytestmark = pytest.mark.django_db

# Wednesday 3 June 2026, 16:30 IST: NSE closed an hour ago.
NOW = datetime(2026, 6, 3, 11, 0, tzinfo=UTC)
HISTORY_START = datetime(2025, 6, 1, 18, 30, tzinfo=UTC)
D1 = Timeframe.D1


class SwitchableProvider(FrameProvider):
    """Frames per symbol; `down` symbols fail with an outage until they are removed from it."""

    def __init__(self, symbols, down=()):
        frames = {
            (symbol, D1): make_candles(365, start=HISTORY_START, seed=i) for i, symbol in enumerate(symbols)
        }
        super().__init__(frames)
        self.down = set(down)
        self.batches: list[list[str]] = []

    def fetch_history_batch(self, symbols, timeframe, *, start=None, end=None):
        self.batches.append(list(symbols))
        return super().fetch_history_batch(symbols, timeframe, start=start, end=end)

    def fetch_candles(self, symbol, timeframe, *, start=None, end=None):
        if symbol in self.down:
            self.calls.append((symbol, timeframe, start, end))
            raise ProviderUnavailable("Yahoo Finance did not answer")
        return super().fetch_candles(symbol, timeframe, start=start, end=end)


@pytest.fixture
def clock():
    with time_machine.travel(NOW, tick=False) as traveller:
        yield traveller


@pytest.fixture
def catalogue():
    Instrument.objects.update(active=False)  # the seeded demo catalogue
    symbols = [f"S{i:02d}.NS" for i in range(7)]
    for symbol in symbols:
        InstrumentFactory(symbol=symbol)
    InstrumentFactory(symbol="OFF.NS", active=False)
    return symbols


@pytest.fixture
def provider(monkeypatch, catalogue):
    provider = SwitchableProvider(catalogue)
    monkeypatch.setattr("market.services.get_provider", lambda name=None: provider)
    return provider


@pytest.fixture
def run_now(django_capture_on_commit_callbacks):
    """Start (or resume) a run; its Celery group runs eagerly when the transaction commits."""

    def start(run_id):
        with django_capture_on_commit_callbacks(execute=True):
            return sync_run_resume(run_id=run_id)

    return start


def progress(run_id):
    return sync_runs_with_progress().get(pk=run_id)


def test_plan_splits_the_active_symbols_into_batches_of_the_given_size(clock, catalogue):
    run = sync_run_plan(timeframe=D1, batch_size=3, days=400)

    batches = list(run.batches.order_by("number"))
    assert [len(batch.symbols) for batch in batches] == [3, 3, 1]
    assert [
        symbol for batch in batches for symbol in batch.symbols
    ] == catalogue  # each once, inactive left out
    assert all(batch.pending == batch.symbols for batch in batches)
    assert {(batch.start, batch.end) for batch in batches} == {(datetime(2025, 4, 29, tzinfo=UTC), NOW)}
    assert (run.batches_total, run.symbols_total, run.timeframe) == (3, 7, "1D")


def test_run_stores_every_symbol_and_reports_progress(clock, catalogue, provider, run_now):
    run = sync_run_plan(timeframe=D1, batch_size=3, days=400)
    assert sync_run_percent(progress(run.pk)) == 0

    assert run_now(run.pk) == 3

    row = progress(run.pk)
    stored = MarketData.objects.count()
    assert stored == 7 * 365
    assert (row.batches_done, row.batches_failed, row.rows_inserted, row.rows_updated) == (3, 0, stored, 0)
    assert sync_run_percent(row) == 100 and row.finished_at is not None
    assert provider.batches == [catalogue[:3], catalogue[3:6], catalogue[6:]]  # one request per batch


def test_unknown_symbols_are_counted_and_do_not_fail_the_batch(clock, catalogue, provider, run_now):
    InstrumentFactory(symbol="GONE.NS")
    run = sync_run_plan(timeframe=D1, batch_size=10, days=400)
    run_now(run.pk)

    (batch,) = run.batches.all()
    assert batch.status == SyncBatch.Status.DONE and batch.not_found == 1
    assert batch.errors["GONE.NS"].startswith("SymbolNotFound")
    assert progress(run.pk).symbols_not_found == 1


def test_failing_batch_is_retried_recorded_failed_then_resumed_without_duplicating_rows(
    clock, catalogue, provider, run_now
):
    provider.down = {"S05.NS"}
    run = sync_run_plan(timeframe=D1, batch_size=3, days=400)
    batch_ids = list(run.batches.order_by("number").values_list("pk", flat=True))

    results = [sync_batch_run(batch_id=pk, last_attempt=False) for pk in batch_ids]
    assert [r.status for r in results] == ["done", "pending", "done"] and results[1].retry == ["S05.NS"]
    retried = sync_batch_run(batch_id=batch_ids[1], last_attempt=True)

    assert provider.batches[-1] == ["S05.NS"]  # the retry asked only for the symbol that failed
    failed = SyncBatch.objects.get(pk=batch_ids[1])
    assert retried.status == failed.status == SyncBatch.Status.FAILED and failed.pending == ["S05.NS"]
    assert failed.attempts == 2 and "ProviderUnavailable" in failed.errors["S05.NS"]
    row = progress(run.pk)
    assert (row.batches_done, row.batches_failed) == (2, 1) and row.finished_at is not None
    assert MarketData.objects.count() == row.rows_inserted == 6 * 365

    provider.down = set()
    provider.batches.clear()
    assert run_now(run.pk) == 1  # only the failed batch

    assert provider.batches == [["S05.NS"]]
    failed.refresh_from_db()
    assert failed.status == SyncBatch.Status.DONE and failed.pending == [] and failed.errors == {}
    row = progress(run.pk)
    assert (row.batches_done, row.batches_failed, row.rows_inserted) == (3, 0, 7 * 365)
    assert MarketData.objects.count() == 7 * 365


def test_batch_task_retries_outages_with_the_sync_backoff_until_its_last_attempt(
    clock, catalogue, provider, monkeypatch, settings
):
    settings.MARKET_SYNC_RETRY_BACKOFF = 7
    settings.MARKET_SYNC_RETRY_BACKOFF_MAX = 9
    provider.down = {"S06.NS"}
    batch = sync_run_plan(timeframe=D1, batch_size=10, days=400).batches.get()
    seen = {}

    def fake_retry(*, countdown):
        seen["countdown"] = countdown
        return Retry(when=countdown)

    monkeypatch.setattr(tasks.sync_run_batch, "retry", fake_retry)
    with pytest.raises(Retry):
        tasks.sync_run_batch.run(batch.pk)
    assert 0 <= seen["countdown"] <= 9
    batch.refresh_from_db()
    assert batch.status == SyncBatch.Status.PENDING and batch.pending == ["S06.NS"]

    last = tasks.sync_run_batch.apply(args=[batch.pk], retries=tasks.sync_run_batch.max_retries).get()
    assert last["status"] == "failed" and last["retry"] == ["S06.NS"]


def test_resumed_run_skips_done_batches_and_takes_over_a_crashed_workers_batch(
    clock, catalogue, provider, run_now, settings
):
    run = sync_run_plan(timeframe=D1, batch_size=3, days=400)
    sync_batch_run(batch_id=run.batches.get(number=1).pk)  # done before the crash
    # A worker took batch 2 and died; batch 3 never started.
    SyncBatch.objects.filter(run=run, number=2).update(status=SyncBatch.Status.RUNNING, claimed_at=NOW)
    provider.batches.clear()

    assert run_now(run.pk) == 1  # batch 2's claim is fresh: its worker may still be at it
    assert provider.batches == [catalogue[6:]]
    assert progress(run.pk).finished_at is None

    clock.shift(timedelta(seconds=settings.CELERY_TASK_TIME_LIMIT + 1))
    provider.batches.clear()
    assert run_now(run.pk) == 1

    assert provider.batches == [catalogue[3:6]]
    row = progress(run.pk)
    assert row.batches_done == 3 and row.finished_at is not None
    assert MarketData.objects.count() == row.rows_inserted == 7 * 365


def test_a_batch_task_delivered_twice_runs_once(clock, catalogue, provider):
    run = sync_run_plan(timeframe=D1, batch_size=10, days=400)
    batch = run.batches.get()

    first = tasks.sync_run_batch.run(batch.pk)
    second = tasks.sync_run_batch.run(batch.pk)

    assert first["status"] == "done" and second["status"] == "skipped"
    assert len(provider.batches) == 1


def test_incremental_run_fetches_only_what_coverage_lacks(clock, catalogue, provider, run_now):
    run_now(sync_run_plan(timeframe=D1, batch_size=10, days=400).pk)

    # Later the same evening: no session closed since the last fetch, nothing to do.
    clock.shift(timedelta(hours=2))
    assert sync_run_plan(timeframe=D1, days=400).batches_total == 0

    # Next evening: one batch, from a little before the last fetch (the overlap) to now.
    clock.shift(timedelta(hours=22))
    run = sync_run_plan(timeframe=D1, batch_size=10, days=400)
    (batch,) = run.batches.all()
    assert batch.symbols == catalogue
    assert batch.start == datetime(2026, 5, 31, tzinfo=UTC)  # last fetch 3 June 11:00 less 3 days, to the day
    assert batch.end == NOW + timedelta(hours=24)


def test_a_new_listing_gets_its_own_backfill_window(clock, catalogue, provider, run_now):
    run_now(sync_run_plan(timeframe=D1, batch_size=10, days=400).pk)
    InstrumentFactory(symbol="NEW.NS")
    clock.shift(timedelta(hours=24))

    run = sync_run_plan(timeframe=D1, batch_size=10, days=400)

    windows = {tuple(batch.symbols): (batch.start, batch.end) for batch in run.batches.all()}
    assert windows[("NEW.NS",)][0] == datetime(2025, 4, 30, tzinfo=UTC)  # the whole 400 days
    assert windows[tuple(catalogue)][0] == datetime(2026, 5, 31, tzinfo=UTC)


@pytest.mark.parametrize(
    ("now", "runs"),
    [
        (datetime(2026, 6, 3, 10, 30, tzinfo=UTC), 1),  # Wednesday 16:00 IST, after the close
        (datetime(2026, 6, 6, 10, 30, tzinfo=UTC), 0),  # Saturday: Friday's close was 24.5 hours ago
        (datetime(2026, 11, 24, 10, 30, tzinfo=UTC), 0),  # Guru Nanak Jayanti, a Tuesday: NSE holiday
    ],
)
def test_nightly_entry_runs_after_a_session_closed_on_the_exchange_calendar(
    catalogue, monkeypatch, now, runs
):
    started = []
    monkeypatch.setattr(tasks, "sync_run_resume", lambda run_id: started.append(run_id))
    with time_machine.travel(now, tick=False):
        result = tasks.sync_all(["1D"])
    assert len(result["runs"]) == len(started) == runs
    assert SyncRun.objects.count() == runs


def test_nightly_entry_takes_an_exchange_whose_session_closed_overnight(catalogue, monkeypatch):
    InstrumentFactory(symbol="^GSPC", exchange="NYSE")
    monkeypatch.setattr(tasks, "sync_run_resume", lambda run_id: None)
    with time_machine.travel(datetime(2026, 6, 6, 10, 30, tzinfo=UTC), tick=False):  # Saturday 16:00 IST
        result = tasks.sync_all(["1D"])
    (run,) = SyncRun.objects.all()
    assert result["symbols"] == run.symbols_total == 1  # NYSE's Friday session closed at 01:30 IST


def test_admin_lists_runs_with_percent_and_counts_read_only(clock, catalogue, provider, staff_user, client):
    run = sync_run_plan(timeframe=D1, batch_size=3, days=400)
    sync_batch_run(batch_id=run.batches.get(number=1).pk)
    staff_user.is_superuser = True
    staff_user.save()
    client.force_login(staff_user)

    page = client.get("/admin/market/syncrun/").content.decode()

    assert 'value="33"' in page and "1 / 3" in page and str(3 * 365) in page
    detail = client.get(f"/admin/market/syncrun/{run.pk}/change/")
    assert detail.status_code == 200 and "S06.NS" not in detail.content.decode()  # counts, not symbol lists
    assert client.get("/admin/market/syncrun/add/").status_code == 403


def test_command_runs_inline_with_a_progress_bar_and_resumes_a_run(clock, catalogue, provider):
    out = StringIO()
    call_command(
        "sync_all_instruments", "--inline", "--days", "400", "--batch-size", "3", stdout=out, verbosity=0
    )
    run = SyncRun.objects.get()
    assert "3 of 3 batches done, 0 failed" in out.getvalue() and MarketData.objects.count() == 7 * 365

    provider.batches.clear()
    call_command("sync_all_instruments", "--inline", "--resume", str(run.pk), stdout=StringIO(), verbosity=0)
    assert provider.batches == []  # every batch was done
    with pytest.raises(CommandError, match="No sync run"):
        call_command("sync_all_instruments", "--resume", "999999", stdout=StringIO(), verbosity=0)


def test_plan_leaves_out_an_instrument_on_an_unknown_exchange(clock, catalogue):
    InstrumentFactory(symbol="TYPO.NS", exchange="NSEE")
    run = sync_run_plan(timeframe=D1, batch_size=50, days=400)
    (batch,) = run.batches.all()
    assert batch.symbols == catalogue


@pytest.mark.filterwarnings("ignore::pandas.errors.Pandas4Warning")
def test_a_symbol_whose_week_failed_in_a_one_minute_batch_is_not_recorded_as_fetched(
    yfinance_module, yfinance_cache_dir, nse_calendar
):
    """A 1m batch over three weeks is three downloads; yfinance swallows TCS's failed request of the second
    (and its retries, also alone): the week is not claimed as fetched, TCS stays pending for the retry."""
    yfinance_module._forget_cached_responses()  # yfinance memoises past windows for the whole process
    now = datetime(2026, 11, 11, 12, 0, tzinfo=UTC)
    session = FakeYahooSession(
        {
            ("RELIANCE.NS", "1m"): "reliance_ns_1m_2026-11.json",
            ("TCS.NS", "1m"): "reliance_ns_1m_2026-11.json",
        }
    )
    session.symbol_outcomes = {"TCS.NS": [None, *[500] * 20]}
    clock = FakeClock()
    provider = yfinance_module.YFinanceProvider(
        session=session,
        cache_dir=yfinance_cache_dir,
        calendar=nse_calendar,
        clock=lambda: now,
        retries=0,
        sleep=lambda seconds: None,
        limiter=yfinance_module.SlidingWindowLimiter(clock=clock, sleep=clock.sleep),
    )
    with time_machine.travel(now, tick=False):
        run = sync_run_plan(timeframe=Timeframe.M1, symbols=["RELIANCE.NS", "TCS.NS"], days=21)
        (batch,) = run.batches.all()
        result = sync_batch_run(batch_id=batch.pk, last_attempt=False, provider=provider)

    assert result.retry == ["TCS.NS"]
    assert not CoverageInterval.objects.filter(series__symbol="TCS.NS").exists()
    assert MarketData.objects.filter(symbol="RELIANCE.NS", timeframe="1m").count() == 60


def test_a_nightly_run_that_gets_back_the_stored_bars_counts_no_update(catalogue, provider, run_now):
    with time_machine.travel(NOW, tick=False):
        run_now(sync_run_plan(timeframe=D1, batch_size=10, days=400).pk)
    # Thursday after the close: the tail is fetched again from a few days back, and the provider's last bar
    # (Sunday 31 May) comes back as it was stored.
    with time_machine.travel(NOW + timedelta(days=1), tick=False):
        nightly = sync_run_plan(timeframe=D1, batch_size=10, days=400)
        run_now(nightly.pk)
    (batch,) = nightly.batches.all()
    assert batch.status == SyncBatch.Status.DONE and batch.end == NOW + timedelta(days=1)
    assert provider.calls[-1][2] <= make_candles(365, start=HISTORY_START).index[-1]  # it was asked again
    row = progress(nightly.pk)
    assert (row.rows_inserted, row.rows_updated) == (0, 0)
