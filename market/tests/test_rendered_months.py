"""Stored rendered months of daily bars (market.models.RenderedMonth): a historical read of the latest daily
candles joins them instead of reading and rendering every bar, and must answer exactly what reading the bars
answers, whatever wrote the bars and whenever."""

import threading
from datetime import UTC, date, datetime, time
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
import time_machine
from django.core.cache import cache
from django.core.management import CommandError, call_command
from django.db import connection, transaction

from market import selectors, services
from market.calendar import ExchangeCalendar, bundled_nse_holidays
from market.models import CorporateAction, Instrument, MarketData, RenderedMonth
from market.services import candles_upsert, market_reads_invalidate, rendered_months_refresh
from market.sources import catalogue_invalidate
from market.tests.factories import FrameProvider, make_candles_at, provider_configured
from market.timeframes import Timeframe

pytestmark = pytest.mark.django_db
IST = ZoneInfo("Asia/Kolkata")
NSE = ExchangeCalendar(bundled_nse_holidays())
SYMBOL = "TCS.NS"
DAYS = NSE.trading_days(date(2025, 9, 1), date(2026, 11, 27))
CANDLES = make_candles_at([datetime.combine(day, time(), IST) for day in DAYS], seed=7)
NOW = datetime(2026, 11, 28, 6, 0, tzinfo=UTC)  # a Saturday


@pytest.fixture
def provider(monkeypatch):
    provider = FrameProvider({(SYMBOL, Timeframe.D1): CANDLES.copy()})
    provider_configured(monkeypatch, provider)
    with time_machine.travel(NOW, tick=False):
        yield provider


def history(**query) -> bytes:
    cache.clear()  # each read renders: the body cache would answer the second
    return selectors.candles_history(symbol=SYMBOL, timeframe=Timeframe.D1, **query)


def from_rows(monkeypatch, **query) -> bytes:
    """What reading the bars answers (the rendered months left unused)."""
    with monkeypatch.context() as patch:
        patch.setattr(selectors, "_rendered_latest", lambda **_: None)
        return history(**query)


@pytest.fixture
def used(monkeypatch):
    """How many reads the rendered months answered."""
    answered = []
    original = selectors._rendered_latest

    def spy(**kwargs):
        rendered = original(**kwargs)
        answered.append(rendered is not None)
        return rendered

    monkeypatch.setattr(selectors, "_rendered_latest", spy)
    return answered


def month_row(day: date) -> RenderedMonth:
    return RenderedMonth.objects.get(symbol=SYMBOL, timeframe="1D", month=day.replace(day=1))


def stored_month(day: date):
    start = datetime(day.year, day.month, 1, tzinfo=UTC)
    end = datetime(day.year + day.month // 12, day.month % 12 + 1, 1, tzinfo=UTC)
    return MarketData.objects.filter(symbol=SYMBOL, timeframe="1D", timestamp__gte=start, timestamp__lt=end)


@pytest.mark.parametrize(
    "query",
    [
        {"limit": 250},
        {"limit": 1},
        {"limit": 7},
        {"limit": 5000},
        {"limit": 30, "end": datetime(2026, 3, 17, 12, tzinfo=UTC)},  # mid-month: cut inside a month
        {"limit": 100, "end": datetime(2026, 6, 30, 18, 30, tzinfo=UTC)},  # a month's last IST midnight
        {"limit": 40, "adjust": "none"},
        {"limit": 40, "adjust": "all"},
    ],
)
def test_the_rendered_months_answer_what_the_bars_do(provider, used, monkeypatch, query):
    history(limit=5000)  # every bar stored (and its month rendered), those after an `end` below included
    expected = from_rows(monkeypatch, **query)
    assert history(**query) == expected
    assert used[-1] is True
    assert not RenderedMonth.objects.filter(stale=True).exists()  # the upserts rendered what they stored


def test_a_bar_changed_outside_an_upsert_is_served_changed(provider, used, monkeypatch):
    history(limit=500)  # stores and renders
    day = date(2026, 10, 14)
    bar = stored_month(day).filter(timestamp=datetime.combine(day, time(), IST))
    bar.update(
        close_price=1.5, low_price=1.0, open_price=1.5, high_price=1.5
    )  # as staff in the admin, or SQL
    assert month_row(day).stale
    body = history(limit=500)
    assert b'"close":1.5,' in body
    assert body == from_rows(monkeypatch, limit=500)
    assert used[-1] is True  # the changed month read from its bars, the others as rendered
    assert rendered_months_refresh(symbol=SYMBOL) == 1
    assert not month_row(day).stale
    assert history(limit=500) == body


def test_deleted_bars_are_gone_and_so_is_an_emptied_month(provider, used, monkeypatch):
    history(limit=500)
    stored_month(date(2026, 2, 1)).delete()
    stored_month(date(2026, 5, 1)).filter(timestamp__day__gte=10).delete()
    body = history(limit=500, end=datetime(2026, 11, 1, tzinfo=UTC))
    assert body == from_rows(monkeypatch, limit=500, end=datetime(2026, 11, 1, tzinfo=UTC))
    assert b'"date":"2026-02-' not in body
    rendered_months_refresh(symbol=SYMBOL)
    assert not RenderedMonth.objects.filter(month=date(2026, 2, 1)).exists()
    assert history(limit=500, end=datetime(2026, 11, 1, tzinfo=UTC)) == body


@pytest.mark.parametrize("deleted", ["one month", "every month of the symbol"])
def test_a_hand_deleted_month_row_comes_back_stale_while_its_bars_remain(
    provider, used, monkeypatch, deleted
):
    """A row deleted by hand (SQL, a shell) while its month still has bars: a read that joined the other months
    would answer short, or with a month missing in the middle. It comes back stale in the same statement, and is
    read from its bars until the beat renders it again."""
    history(limit=200)
    gone, months = month_row(DAYS[-60]), RenderedMonth.objects.filter(symbol=SYMBOL).count()
    with connection.cursor() as cursor:
        if deleted == "one month":
            cursor.execute("DELETE FROM market_renderedmonth WHERE id = %s", [gone.pk])
        else:
            cursor.execute("DELETE FROM market_renderedmonth WHERE symbol = %s", [SYMBOL])
    assert month_row(gone.month).stale
    assert RenderedMonth.objects.filter(symbol=SYMBOL).count() == months
    body = history(limit=200)
    assert body == from_rows(monkeypatch, limit=200)
    assert body.count(b'"date":') == 200
    rendered_months_refresh(symbol=SYMBOL)
    assert not month_row(gone.month).stale
    assert history(limit=200) == body


def test_an_identical_resync_leaves_the_months_rendered(provider, used):
    history(limit=500)
    rendered = dict(RenderedMonth.objects.values_list("month", "rendered_at"))
    candles_upsert(symbol=SYMBOL, timeframe=Timeframe.D1, candles=CANDLES, source="frame", fetched_at=NOW)
    assert dict(RenderedMonth.objects.values_list("month", "rendered_at")) == rendered
    assert not RenderedMonth.objects.filter(stale=True).exists()


def test_a_new_tick_is_rendered_at_once(provider, used, monkeypatch):
    history(limit=300)
    Instrument.objects.update_or_create(symbol=SYMBOL, defaults={"tick_size": Decimal("0.5")})  # staff edit
    catalogue_invalidate()
    body = history(limit=300)
    assert body == from_rows(monkeypatch, limit=300)
    assert b".05," not in body.split(b'"candles":')[1]  # no price at the old tick
    assert used[-1] is True
    assert rendered_months_refresh(symbol=SYMBOL) == RenderedMonth.objects.count()
    assert set(RenderedMonth.objects.values_list("tick", flat=True)) == {"0.5"}
    assert history(limit=300) == body


def test_a_split_inside_the_window_is_applied_from_the_bars(provider, used, monkeypatch):
    history(limit=100)
    CorporateAction.objects.create(
        symbol=SYMBOL, ex_date=date(2026, 10, 5), kind="split", ratio=2.0, source=CorporateAction.STAFF
    )
    market_reads_invalidate(symbol=SYMBOL)
    body = history(limit=100)
    assert body == from_rows(monkeypatch, limit=100)
    assert history(limit=100, adjust="none") != body  # the bars before 5 October are halved
    assert history(limit=20) == from_rows(monkeypatch, limit=20)  # all after the ex-date: nothing to adjust
    assert used[-1] is True


def test_a_split_on_the_first_bars_day_changes_nothing_in_the_window(provider, used, monkeypatch):
    first = DAYS[-20]
    CorporateAction.objects.create(
        symbol=SYMBOL, ex_date=first, kind="split", ratio=2.0, source=CorporateAction.STAFF
    )
    body = history(limit=20)
    assert body == from_rows(monkeypatch, limit=20)
    assert used[-1] is True
    assert history(limit=21) == from_rows(monkeypatch, limit=21)  # one bar before the ex-date: from the bars


def test_intraday_bars_have_no_rendered_months(provider):
    history(limit=10)
    MarketData.objects.create(
        symbol=SYMBOL,
        timeframe="15m",
        timestamp=datetime(2026, 11, 27, 4, 0, tzinfo=UTC),
        open_price=10,
        high_price=11,
        low_price=9,
        close_price=10,
        volume=1,
        source="frame",
    )
    assert set(RenderedMonth.objects.values_list("timeframe", flat=True)) == {"1D"}


def test_a_sparse_series_is_read_from_its_bars(monkeypatch, used):
    months = [datetime(2024 + i // 12, i % 12 + 1, 15, tzinfo=IST) for i in range(30)]  # one bar a month
    provider = FrameProvider({(SYMBOL, Timeframe.D1): make_candles_at(months)})
    provider_configured(monkeypatch, provider)
    with time_machine.travel(datetime(2026, 7, 1, tzinfo=UTC), tick=False):
        body = history(limit=25)
        assert body.count(b'"timestamp"') == 25
        assert used[-1] is False  # 3 months asked for hold 3 bars: the bars are read instead
        assert body == from_rows(monkeypatch, limit=25)


def test_bars_written_to_their_partition_directly_are_served_as_written(provider, used, monkeypatch):
    """SQL naming the partition that holds the daily bars fires that partition's triggers, not the candle table's."""
    history(limit=50)
    day = DAYS[-3]
    with connection.cursor() as cursor:
        cursor.execute(
            "UPDATE market_marketdata_coarse SET volume = 5 WHERE symbol = %s AND timeframe = '1D'"
            " AND timestamp = %s",
            [SYMBOL, datetime.combine(day, time(), IST)],
        )
        cursor.execute(
            "DELETE FROM market_marketdata_coarse WHERE symbol = %s AND timeframe = '1D' AND timestamp = %s",
            [SYMBOL, datetime.combine(DAYS[-30], time(), IST)],
        )
    body = history(limit=50)
    assert b'"volume":5,' in body
    assert body == from_rows(monkeypatch, limit=50)
    assert used[-1] is True
    assert month_row(day).stale and month_row(DAYS[-30]).stale  # for the beat task to render


@pytest.mark.parametrize("table", ["market_marketdata", "market_marketdata_coarse"])
def test_truncated_bars_are_not_served_from_their_months(provider, used, monkeypatch, table):
    """TRUNCATE fires no insert, update or delete trigger; the months of the bars it removes go with them."""
    history(limit=50)
    with connection.cursor() as cursor:
        cursor.execute(f"TRUNCATE {table}")  # the candle table, or the partition that holds the daily bars
    body = history(limit=50)
    assert b'"count":0,' in body
    assert body == from_rows(monkeypatch, limit=50)
    assert not RenderedMonth.objects.exists()


@pytest.mark.django_db(transaction=True)
def test_a_write_during_a_refresh_leaves_the_month_stale(provider, monkeypatch):
    """The refresh reads a month's bars holding its row's lock; a write of that month waits for it to commit and
    marks the month stale again, so the render of the bars from before the write is never served as current."""
    history(limit=50)
    day = DAYS[-3]
    stamp = datetime.combine(day, time(), IST)
    stored_month(day).filter(timestamp=stamp).update(volume=1)  # stale: the refresh below renders it
    read, proceed, wrote = threading.Event(), threading.Event(), threading.Event()
    real_columns = services.columns_from_rows

    def slow_columns(rows):
        bars = real_columns(rows)
        read.set()
        assert proceed.wait(10)
        return bars

    monkeypatch.setattr(services, "columns_from_rows", slow_columns)
    errors = []

    def refresh():
        try:
            rendered_months_refresh(symbol=SYMBOL)
        except Exception as exc:  # surfaced below
            errors.append(exc)
        finally:
            connection.close()

    def write():
        try:
            stored_month(day).filter(timestamp=stamp).update(volume=2)
            wrote.set()
        finally:
            connection.close()

    refresher = threading.Thread(target=refresh)
    refresher.start()
    assert read.wait(10)
    writer = threading.Thread(target=write)
    writer.start()
    assert not wrote.wait(0.5)  # the write waits for the refresh's lock
    proceed.set()
    refresher.join(10)
    writer.join(10)
    assert not errors and wrote.is_set()
    row = month_row(day)
    assert row.stale  # rendered from volume=1, then volume=2 was written: not current
    assert b'"volume":2,' in history(limit=50)


def test_the_quarter_hourly_task_renders_what_staff_changed(provider):
    from market.tasks import render_stale_months

    history(limit=50)
    day = DAYS[-30]
    stored_month(day).update(volume=7)  # every bar of the month, as a bulk edit
    assert render_stale_months() == {"rendered": 1}
    assert not month_row(day).stale
    assert b'"volume":7,' in bytes(month_row(day).body)
    assert render_stale_months() == {"rendered": 0}


def test_the_quarter_hourly_task_renders_the_months_of_a_new_tick(provider):
    """Nothing marks a month stale when staff change the instrument's tick: the task finds the months rendered at
    another tick itself, or every read of the symbol would render all of them from their bars, for good."""
    from market.tasks import render_stale_months

    history(limit=50)
    months = RenderedMonth.objects.count()
    Instrument.objects.update_or_create(symbol=SYMBOL, defaults={"tick_size": Decimal("0.5")})  # staff edit
    catalogue_invalidate()
    assert render_stale_months() == {"rendered": months}
    assert set(RenderedMonth.objects.values_list("tick", flat=True)) == {"0.5"}
    assert render_stale_months() == {"rendered": 0}


def test_rebuild_after_writes_with_the_triggers_off_renders_every_month(provider, monkeypatch):
    history(limit=50)
    with connection.cursor() as cursor:  # a restore with triggers off: neither stale nor a row of its own
        cursor.execute("SET session_replication_role = replica")
        cursor.execute(
            "UPDATE market_marketdata SET volume = 9 WHERE symbol = %s AND timeframe = '1D' AND timestamp >= %s",
            [SYMBOL, datetime(2026, 11, 1, tzinfo=UTC)],
        )
        cursor.execute("DELETE FROM market_renderedmonth WHERE month = %s", [date(2026, 10, 1)])
        cursor.execute("SET session_replication_role = origin")
    assert b'"volume":9,' not in history(limit=50)  # what the rows it holds say: why the rebuild exists
    call_command("render_months", "--rebuild", "--symbol", "TCS")
    assert RenderedMonth.objects.filter(month=date(2026, 10, 1)).exists()
    body = history(limit=50)
    assert b'"volume":9,' in body
    assert body == from_rows(monkeypatch, limit=50)


def test_rebuild_drops_the_bodies_cached_before_it(provider, monkeypatch):
    """Bars written with the triggers off bump no version: the answers cached from the months as they were must not
    outlive the rebuild that renders them again."""
    history(limit=50)
    with connection.cursor() as cursor:
        cursor.execute("SET session_replication_role = replica")
        cursor.execute(
            "UPDATE market_marketdata SET volume = 9 WHERE symbol = %s AND timeframe = '1D' AND timestamp >= %s",
            [SYMBOL, datetime(2026, 11, 1, tzinfo=UTC)],
        )
        cursor.execute("SET session_replication_role = origin")
    assert b'"volume":9,' not in history(limit=50)  # cached, as any read of it before the rebuild
    call_command("render_months", "--rebuild")
    body = selectors.candles_history(symbol=SYMBOL, timeframe=Timeframe.D1, limit=50)  # the cache not cleared
    assert b'"volume":9,' in body
    assert body == from_rows(monkeypatch, limit=50)


def test_rebuild_after_deletes_with_the_triggers_off_serves_no_deleted_bar(provider, monkeypatch):
    """A month whose bars were all deleted with the triggers off has no bar left to mark it: the rebuild must
    render its row again too (and so drop it), not only the rows of months that still hold bars."""
    history(limit=50)
    with (
        connection.cursor() as cursor
    ):  # a restore that lost a month, with triggers off: its row still current
        cursor.execute("SET session_replication_role = replica")
        cursor.execute(
            "DELETE FROM market_marketdata WHERE symbol = %s AND timeframe = '1D' AND timestamp >= %s"
            " AND timestamp < %s",
            [SYMBOL, datetime(2026, 10, 1, tzinfo=UTC), datetime(2026, 11, 1, tzinfo=UTC)],
        )
        cursor.execute("SET session_replication_role = origin")
    call_command("render_months", "--rebuild")
    assert not RenderedMonth.objects.filter(month=date(2026, 10, 1)).exists()
    body = history(limit=50)
    assert b'"date":"2026-10-15"' not in body
    assert body == from_rows(monkeypatch, limit=50)


def test_render_months_refuses_a_symbol_without_rebuild(db):
    with pytest.raises(CommandError, match="--symbol goes with --rebuild"):
        call_command("render_months", "--symbol", "TCS")


@pytest.mark.django_db(transaction=True)
def test_a_write_committed_between_the_months_and_a_stale_months_bars_is_not_half_served(
    provider, monkeypatch
):
    """A stale month is read from its bars after the other months' rows: a repair of bars in two months committed
    in between showed in the stale month and not in the other. The read is made in one snapshot instead."""
    history(limit=80)
    october, november = date(2026, 10, 14), date(2026, 11, 12)
    stored_month(november).filter(timestamp=datetime.combine(november, time(), IST)).update(volume=7)  # stale
    real = selectors._month_rendered_now
    wrote = []

    def repair_meanwhile(*args, **kwargs):
        if not wrote:

            def repair():
                try:
                    with transaction.atomic():  # one repair of a bar in each month
                        for day in (october, november):
                            stamp = datetime.combine(day, time(), IST)
                            stored_month(day).filter(timestamp=stamp).update(volume=99)
                    wrote.append(True)
                finally:
                    connection.close()

            writer = threading.Thread(target=repair)
            writer.start()
            writer.join(10)
        return real(*args, **kwargs)

    monkeypatch.setattr(selectors, "_month_rendered_now", repair_meanwhile)
    body = history(limit=80)
    assert wrote
    # Both bars as before the repair (the snapshot the months were read in), never one of each.
    assert body.count(b'"volume":99,') == 0
    assert b'"volume":7,' in body
    monkeypatch.setattr(selectors, "_month_rendered_now", real)
    assert history(limit=80).count(b'"volume":99,') == 2


@pytest.fixture
def sent(monkeypatch):
    """How many months' contents each read of the rendered months was sent (selectors._months_held)."""
    counts = []
    real = selectors._binary_cursor

    class Counting:
        def __init__(self, cursor):
            self.cursor = cursor

        def __enter__(self):
            self.inner = self.cursor.__enter__()
            return self

        def __exit__(self, *exc):
            return self.cursor.__exit__(*exc)

        def __getattr__(self, name):
            return getattr(self.inner, name)

        def execute(self, sql, params=None):
            self.months = sql is selectors._RENDERED_MONTHS_SQL
            return self.inner.execute(sql, params)

        def fetchall(self):
            rows = self.inner.fetchall()
            if self.months:
                counts.append(sum(row[0] is not None and row[-1] is not None for row in rows))
            return rows

    monkeypatch.setattr(selectors, "_binary_cursor", lambda **kwargs: Counting(real(**kwargs)))
    # Each read renders, without cache.clear() (which empties the per-process layers, the months held too).
    monkeypatch.setattr(selectors, "history_body_get", lambda key: None)
    return counts


def read(**query) -> bytes:
    return selectors.candles_history(symbol=SYMBOL, timeframe=Timeframe.D1, **query)


@pytest.mark.django_db(transaction=True)
def test_months_held_are_not_sent_again_and_answer_the_same(provider, monkeypatch, sent):
    expected = from_rows(monkeypatch, limit=250)
    assert read(limit=250) == expected
    assert read(limit=250) == expected
    assert read(limit=250) == expected
    assert sent[0] > 0 and sent[1:] == [0, 0]  # the later reads were sent no month's contents
    selectors._months_held.clear()
    assert read(limit=250) == expected
    assert sent[-1] == sent[0]


@pytest.mark.django_db(transaction=True)
def test_a_month_rendered_again_after_it_was_held_is_served_as_rendered_now(provider, monkeypatch, sent):
    """A held month's row rewritten (here a bar changed outside an upsert, then the month rendered again: not
    stale, same zone and tick) is a new row version: its new contents are sent and served."""
    read(limit=80)
    day = date(2026, 11, 12)
    stored_month(day).filter(timestamp=datetime.combine(day, time(), IST)).update(volume=4242)
    rendered_months_refresh(symbol=SYMBOL)
    assert not month_row(day).stale
    body = read(limit=80)
    assert sent[-1] == 1  # that month's contents only
    assert b'"volume":4242,' in body
    assert body == from_rows(monkeypatch, limit=80)


@pytest.mark.django_db(transaction=True)
def test_reads_inside_a_callers_transaction_neither_use_nor_keep_held_months(provider, monkeypatch, sent):
    """A transaction's writes of a row carry its one xid: a month written twice in it is the same xmin with other
    contents, so what a read inside it saw is neither used nor kept."""
    read(limit=80)  # stores and renders, and holds the months
    month = month_row(date(2026, 11, 12))
    lines = month.sources.count("\n") + 1
    with transaction.atomic():
        assert b'"source":"frame"' in read(limit=80)
        assert sent[-1] == sent[0]  # everything sent: nothing held is used in a transaction
        for source in ("first", "second"):  # no savepoint between them: one xid
            RenderedMonth.objects.filter(pk=month.pk).update(sources="\n".join([source] * lines))
            sources = ",".join(sorted(["frame", source]))
            assert f'"source":"{sources}"'.encode() in read(limit=80)
        assert selectors._months_held.get(SYMBOL)[0][month.month][1][3] == month.sources  # the read before it
    assert b'"source":"frame,second"' in read(limit=80)
