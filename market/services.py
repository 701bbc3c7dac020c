"""Writes of market data: idempotent candle and corporate-action upserts, incremental sync, on-demand backfill,
holidays."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, NamedTuple

import numpy as np
import structlog
from celery import group
from django.conf import settings
from django.db import connection, transaction
from django.db.models import F, Max, Min, Q, QuerySet
from django.utils import timezone

from market.adjust import SHARE_COUNT_KINDS, Action
from market.bars import bar_close, bars_ahead
from market.caching import market_version_bump, quote_cache_set
from market.calendar import (
    EXCHANGES,
    TABLE_EXCHANGES,
    ExchangeCalendar,
    MarketStatus,
    UnknownExchange,
    load_holidays_csv,
    load_sessions_csv,
)
from market.columns import columns_from_rows
from market.listings import Listing
from market.models import (
    BAR_FIELDS,
    CandleSeries,
    CorporateAction,
    CoverageInterval,
    DataIssue,
    Instrument,
    MarketData,
    MarketHoliday,
    MarketSession,
    RenderedMonth,
    SyncBatch,
    SyncRun,
)
from market.presentation import candle_objects
from market.providers.base import (
    History,
    LookbackExceeded,
    Provider,
    Quote,
    empty_candles,
    validate_candles,
)
from market.providers.errors import ProviderError, ProviderUnavailable, SymbolNotFound
from market.quality import check_candles
from market.sources import (
    calendar_for_symbol,
    currency_of,
    exchange_of,
    get_provider,
    holidays_invalidate,
    price_tick_for_symbol,
    provider_name,
    sessions_invalidate,
    time_zone_for_symbol,
)
from market.timeframes import Timeframe
from tradingdash import offload
from tradingdash.events import (
    CandlesDeleted,
    CandlesStored,
    CorporateActionsChanged,
    QuoteRefreshed,
    announce,
)
from tradingdash.metrics import CANDLES_SYNCED

if TYPE_CHECKING:
    import pandas as pd

logger = structlog.get_logger(__name__)

# History fetched for a symbol seen for the first time (within Yahoo's lookback limits).
DEFAULT_DAYS = {
    Timeframe.M1: 7,
    Timeframe.M5: 59,
    Timeframe.M15: 59,
    Timeframe.H1: 365,
    Timeframe.D1: 5 * 365,
    Timeframe.W1: 10 * 365,
}
# Re-fetch this much before the last stored candle so a bar that was still forming gets its final values.
OVERLAP = {
    Timeframe.M1: timedelta(minutes=2),
    Timeframe.M5: timedelta(minutes=10),
    Timeframe.M15: timedelta(minutes=30),
    Timeframe.H1: timedelta(hours=2),
    Timeframe.D1: timedelta(days=3),
    Timeframe.W1: timedelta(weeks=1),
}
_UPSERT_BATCH = 5000
_UPDATE_FIELDS = [
    "open_price",
    "high_price",
    "low_price",
    "close_price",
    "volume",
    "source",
    "final",
    "updated_at",
]
# No bar lasts longer than this after its open (a week, plus a daily bar's close on the next UTC day), so
# older bars are final without asking the calendar.
_LONGEST_BAR = timedelta(days=8)


@dataclass(frozen=True, kw_only=True)
class UpsertResult:
    inserted: int
    updated: int  # stored bars whose values (or source, or finality) changed
    unchanged: int  # valid bars sent that left the stored row as it was (the same values; partial ones of a final bar)
    rejected: int
    first: datetime | None
    last: datetime | None
    # Rows the provider sent on days (or at times) that are not sessions of the exchange: not stored (History).
    off_session: int = 0


@dataclass(frozen=True, kw_only=True)
class SyncResult:
    symbol: str
    timeframe: str
    inserted: int
    updated: int
    unchanged: int
    rejected: int
    first: datetime | None
    last: datetime | None
    source: str
    message: str | None = None
    off_session: int = 0  # rows the provider sent outside the exchange's sessions (a holiday): not stored


def candles_upsert(
    *,
    symbol: str,
    timeframe: Timeframe,
    candles: pd.DataFrame,
    source: str,
    fetched_at: datetime | None = None,
) -> UpsertResult:
    """Store candles, replacing stored bars with the same timestamp whose values differ; a bar sent as it is
    stored is left alone and counted `unchanged` (a re-sync's overlap changes nothing, so nothing is announced or
    invalidated for it). Invalid OHLCV rows are logged, not stored.
    Safe to repeat and to run concurrently: the unique constraint makes every write an upsert. Each bar is stored
    `final` only if it had closed (on the symbol's exchange calendar) at `fetched_at`, the time the provider was
    asked (default: now, for candles that come from no request): values read before the close are partial however
    late they are stored. A later fetch that completes a partial bar turns it final; a stored final bar is never
    overwritten by partial values (an out-of-order or slow write). After commit, announces CandlesStored
    (re-scoring listens) when any bar was inserted or changed."""
    valid, rejected = validate_candles(candles)
    valid = valid[~valid.index.duplicated(keep="last")].sort_index()
    if len(rejected):
        logger.warning(
            "candles_rejected",
            symbol=symbol,
            timeframe=timeframe.value,
            count=len(rejected),
            first=rejected.index[0].isoformat(),
        )
    if valid.empty:
        return UpsertResult(inserted=0, updated=0, unchanged=0, rejected=len(rejected), first=None, last=None)
    now = timezone.now()
    as_of = min(fetched_at, now) if fetched_at is not None else now
    valid = valid.assign(final=_final_mask(symbol=symbol, timeframe=timeframe, index=valid.index, now=as_of))
    write = _upsert_copy if connection.vendor == "postgresql" else _upsert_orm
    inserted, updated, written = write(
        symbol=symbol, timeframe=timeframe, candles=valid, source=source, now=now
    )
    unchanged = len(valid) - inserted - updated
    CANDLES_SYNCED.labels(source, timeframe.value, "inserted").inc(inserted)
    CANDLES_SYNCED.labels(source, timeframe.value, "updated").inc(updated)
    CANDLES_SYNCED.labels(source, timeframe.value, "unchanged").inc(unchanged)
    result = UpsertResult(
        inserted=inserted,
        updated=updated,
        unchanged=unchanged,
        rejected=len(rejected),
        first=valid.index[0].to_pydatetime(),
        last=valid.index[-1].to_pydatetime(),
    )
    if not (inserted or updated):
        return result  # nothing changed: nothing to re-score, re-evaluate or stream
    if timeframe == Timeframe.D1:
        rendered_months_refresh(symbol=symbol, months=utc_months(valid.index.as_unit("s").asi8))
    stored = CandlesStored(
        symbol=symbol,
        timeframe=timeframe.value,
        first=result.first,
        last=result.last,
        inserted=inserted,
        updated=updated,
        source=source,
        written=tuple(sorted(written)),
    )
    transaction.on_commit(lambda: announce(stored))
    return result


def utc_months(seconds) -> list[date]:
    """The first days of the UTC months of the epoch `seconds`, each once, in order."""
    months = np.unique(np.asarray(seconds, dtype=np.int64).astype("datetime64[s]").astype("datetime64[M]"))
    return [month.astype("datetime64[D]").item() for month in months]


def zone_name(tz) -> str:
    """How RenderedMonth records the time zone it was rendered in."""
    return getattr(tz, "key", None) or str(tz)


def tick_text(tick) -> str:
    """How RenderedMonth records the tick it was rendered at ("" for none: two decimals)."""
    return "" if tick is None else format(Decimal(str(tick)).normalize(), "f")  # 0.0500 and 0.05 alike


_RENDERED_MONTHS_UPDATE_SQL = """
UPDATE market_renderedmonth AS month
SET stale = false, time_zone = %(zone)s, tick = %(tick)s, rendered_at = %(now)s, times = rendered.times,
    ends = rendered.ends, finals = rendered.finals, sources = rendered.sources, body = rendered.body
FROM unnest(%(ids)s::bigint[], %(times)s::bytea[], %(ends)s::bytea[], %(finals)s::bytea[], %(sources)s::text[],
            %(bodies)s::bytea[]) AS rendered (id, times, ends, finals, sources, body)
WHERE month.id = rendered.id
"""


def rendered_months_refresh(*, symbol: str, months: list[date] | None = None) -> int:
    """Render again the stale months of the symbol's daily bars, and those rendered in another zone or at another
    tick (only those among `months` when given), in its exchange's time zone at its current tick; a month whose
    bars are all gone loses its row. The months' rows are locked before their bars are read and until the commit,
    and the triggers that mark a month stale take the same locks: a write of its bars either waits for this to
    commit and marks the month stale again, or is committed before the bars are read. One read and one rendering
    for all the months. PostgreSQL only (the triggers); returns how many months were rendered."""
    if connection.vendor != "postgresql":
        return 0
    tz, tick = time_zone_for_symbol(symbol), price_tick_for_symbol(symbol)
    zone, tick_as_text = zone_name(tz), tick_text(tick)
    with transaction.atomic():
        outdated = Q(stale=True) | ~Q(time_zone=zone) | ~Q(tick=tick_as_text)
        rows = RenderedMonth.objects.select_for_update().filter(
            outdated, symbol=symbol, timeframe=Timeframe.D1.value
        )
        if months is not None:
            rows = rows.filter(month__in=months)
        chosen = list(rows.order_by("month").values_list("id", "month"))
        if not chosen:
            return 0
        bars = columns_from_rows(
            MarketData.objects.filter(
                symbol=symbol,
                timeframe=Timeframe.D1.value,
                timestamp__gte=utc_month_start(chosen[0][1]),
                timestamp__lt=utc_month_start(chosen[-1][1], after=1),
            )
            .order_by("timestamp")
            .values_list(*BAR_FIELDS)
        )
        body, ends = candle_objects(bars, tz=tz, tick=tick, by_day=True)
        bar_months = bars.time.astype("datetime64[s]").astype("datetime64[M]")
        rendered, emptied = [], []
        for row_id, month in chosen:
            month = np.datetime64(month, "M")
            first, stop = np.searchsorted(bar_months, [month, month + 1]).tolist()
            if first == stop:
                emptied.append(row_id)
                continue
            offset = 0 if first == 0 else int(ends[first - 1]) + 1
            rendered.append(
                (
                    row_id,
                    bars.time[first:stop].astype("<i8").tobytes(),
                    (ends[first:stop] - offset).astype("<i4").tobytes(),
                    bars.final[first:stop].astype(np.bool_).tobytes(),
                    "\n".join(bars.source[first:stop]),
                    body[offset : int(ends[stop - 1])],
                )
            )
        RenderedMonth.objects.filter(id__in=emptied).delete()
        if rendered:
            ids, times, month_ends, finals, sources, bodies = (
                list(column) for column in zip(*rendered, strict=True)
            )
            with connection.cursor() as cursor:  # one statement: bulk_update's CASE took 0.6 s for 120 months
                cursor.execute(
                    _RENDERED_MONTHS_UPDATE_SQL,
                    {
                        "zone": zone, "tick": tick_as_text, "now": timezone.now(), "ids": ids, "times": times,
                        "ends": month_ends, "finals": finals, "sources": sources, "bodies": bodies,
                    },
                )  # fmt: skip
    return len(rendered)


def utc_month_start(month: date, *, after: int = 0) -> datetime:
    """Midnight UTC opening `month` (its first day), or the month `after` months later."""
    index = month.year * 12 + month.month - 1 + after
    return datetime(index // 12, index % 12 + 1, 1, tzinfo=UTC)


# The rows there are (a month whose bars were all deleted with the triggers off has no bar left to name it, and
# its row, still current, would be served), then the rows of months with bars and none; in the triggers' lock order.
_RENDERED_MONTHS_STALE_SQL = """
UPDATE market_renderedmonth SET stale = true
WHERE id IN (
    SELECT id FROM market_renderedmonth
    WHERE timeframe = '1D' AND (%(symbol)s::text IS NULL OR symbol = %(symbol)s::text)
    ORDER BY symbol, timeframe, month
    FOR UPDATE
)
"""
_RENDERED_MONTHS_REBUILD_SQL = """
INSERT INTO market_renderedmonth (symbol, timeframe, month, stale, time_zone, tick, times, ends, finals, sources, body)
SELECT DISTINCT symbol, timeframe, date_trunc('month', "timestamp" AT TIME ZONE 'UTC')::date, true,
       '', '', ''::bytea, ''::bytea, ''::bytea, '', ''::bytea
FROM market_marketdata
WHERE timeframe = '1D' AND (%(symbol)s::text IS NULL OR symbol = %(symbol)s::text)
ORDER BY 1, 2, 3
ON CONFLICT (symbol, timeframe, month) DO UPDATE SET stale = true
"""


def rendered_months_rebuild(*, symbol: str | None = None) -> int:
    """Mark every month of daily bars stale (of `symbol`, or of all), its rows and the rows of months that have
    bars and none (rows restored, written or deleted with the triggers off), then render them all again (a row
    whose month has no bar left is deleted). Returns how many were rendered. Writes with the triggers off bumped
    no version: the symbols' cached reads are dropped too, or those cached from the months as they were would
    outlive the rebuild."""
    if connection.vendor != "postgresql":
        return 0
    with connection.cursor() as cursor:
        cursor.execute(_RENDERED_MONTHS_STALE_SQL, {"symbol": symbol})
        cursor.execute(_RENDERED_MONTHS_REBUILD_SQL, {"symbol": symbol})
    if symbol is not None:
        rendered, symbols = rendered_months_refresh(symbol=symbol), [symbol]
    else:
        # Before the refresh deletes the rows of months left without bars.
        symbols = list(RenderedMonth.objects.values_list("symbol", flat=True).distinct().order_by("symbol"))
        rendered = rendered_months_refresh_all()
    for each in symbols:
        market_reads_invalidate(symbol=each)
    return rendered


def rendered_months_refresh_all() -> int:
    """rendered_months_refresh for every symbol with a stale month (the months staff edited or deleted bars of,
    those stored before the triggers) or one rendered in a zone or at a tick the catalogue no longer gives (an
    instrument whose tick or exchange staff changed: nothing marks those stale, and until they are rendered again
    every read of the symbol renders them from their bars)."""
    kept = RenderedMonth.objects.filter(timeframe=Timeframe.D1.value).values_list(
        "symbol", "stale", "time_zone", "tick"
    )
    symbols = {
        symbol
        for symbol, stale, zone, tick in kept.distinct()
        if stale
        or zone != zone_name(time_zone_for_symbol(symbol))
        or tick != tick_text(price_tick_for_symbol(symbol))
    }
    return sum(rendered_months_refresh(symbol=symbol) for symbol in sorted(symbols))


def _final_mask(*, symbol: str, timeframe: Timeframe, index: pd.DatetimeIndex, now: datetime) -> np.ndarray:
    """Which bars had closed by `now` on the symbol's exchange calendar (market.bars.bar_close): a bar fetched
    before its close holds partial values and is stored non-final until a later fetch completes it."""
    final = np.asarray(index < now - _LONGEST_BAR)
    recent = np.flatnonzero(~final)
    if recent.size:
        calendar = calendar_for_symbol(symbol)
        for i in recent:
            final[i] = bar_close(calendar, timeframe, index[i].to_pydatetime()) <= now
    return final


def _candle_rows(candles: pd.DataFrame):
    final = candles["final"].tolist() if "final" in candles else [False] * len(candles)
    return zip(
        candles.index.to_pydatetime(),
        candles["open"].tolist(),
        candles["high"].tolist(),
        candles["low"].tolist(),
        candles["close"].tolist(),
        candles["volume"].tolist(),
        final,
        strict=True,
    )


_STAGE_SQL = """
CREATE TEMP TABLE IF NOT EXISTS market_candle_stage (
    "timestamp" timestamptz NOT NULL, open_price float8 NOT NULL, high_price float8 NOT NULL,
    low_price float8 NOT NULL, close_price float8 NOT NULL, volume int8 NOT NULL, final bool NOT NULL
) ON COMMIT DROP;
TRUNCATE market_candle_stage
"""
# Inserted or updated: a row keeps its id on update, so the rows returned with one of the fresh ids proposed
# here are the inserted ones. A stored row whose values are those proposed is not written (nor returned), nor
# is a final row that partial values would overwrite: neither is counted. (RETURNING xmax = 0 would say it
# directly, but PostgreSQL refuses system columns in RETURNING on the partitioned candle table.) The open times
# of the rows written come back too (CandlesStored.written).
_MERGE_SQL = """
WITH proposed AS MATERIALIZED (
    SELECT nextval(pg_get_serial_sequence('market_marketdata', 'id')) AS id, * FROM market_candle_stage
),
written AS (
    INSERT INTO market_marketdata
        (id, symbol, timeframe, "timestamp", open_price, high_price, low_price, close_price, volume, source,
         final, updated_at)
    SELECT id, %(symbol)s, %(timeframe)s, "timestamp", open_price, high_price, low_price, close_price, volume,
           %(source)s, final, %(now)s
    FROM proposed
    ORDER BY "timestamp"  -- one lock order for concurrent writers
    ON CONFLICT (symbol, timeframe, "timestamp") DO UPDATE SET
        open_price = EXCLUDED.open_price, high_price = EXCLUDED.high_price, low_price = EXCLUDED.low_price,
        close_price = EXCLUDED.close_price, volume = EXCLUDED.volume, source = EXCLUDED.source,
        final = EXCLUDED.final, updated_at = EXCLUDED.updated_at
    WHERE (EXCLUDED.final OR NOT market_marketdata.final)  -- partial values never replace a final bar
      AND (market_marketdata.open_price, market_marketdata.high_price, market_marketdata.low_price,
           market_marketdata.close_price, market_marketdata.volume, market_marketdata.source,
           market_marketdata.final)
          IS DISTINCT FROM (EXCLUDED.open_price, EXCLUDED.high_price, EXCLUDED.low_price, EXCLUDED.close_price,
                            EXCLUDED.volume, EXCLUDED.source, EXCLUDED.final)
    RETURNING id, "timestamp"
)
SELECT count(proposed.id), count(*) - count(proposed.id), array_agg(written."timestamp")
FROM written LEFT JOIN proposed USING (id)
"""


def _upsert_copy(
    *, symbol: str, timeframe: Timeframe, candles: pd.DataFrame, source: str, now: datetime
) -> tuple[int, int, list[datetime]]:
    """PostgreSQL: binary COPY into a temporary table, then one INSERT ... ON CONFLICT. About ten times faster
    than bulk_create for large batches (bench/README.md), and the counts are exact. Returns (inserted, updated,
    the open times of the bars written)."""
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(_STAGE_SQL)
        with cursor.cursor.copy("COPY market_candle_stage FROM STDIN (FORMAT BINARY)") as copy:
            copy.set_types(["timestamptz", "float8", "float8", "float8", "float8", "int8", "bool"])
            for row in _candle_rows(candles):
                copy.write_row(row)
        cursor.execute(
            _MERGE_SQL, {"symbol": symbol, "timeframe": timeframe.value, "source": source, "now": now}
        )
        inserted, updated, written = cursor.fetchone()
    return inserted, updated, written or []


def _upsert_orm(
    *, symbol: str, timeframe: Timeframe, candles: pd.DataFrame, source: str, now: datetime
) -> tuple[int, int, list[datetime]]:
    """Any other database (SQLite in development): bulk_create with update_conflicts, without the rows stored
    with the same values nor the partial rows whose bar is stored final (bulk_create has no conditional
    update). Returns what _upsert_copy returns."""
    rows = [
        MarketData(
            symbol=symbol,
            timeframe=timeframe.value,
            timestamp=ts,
            open_price=o,
            high_price=h,
            low_price=lo,
            close_price=c,
            volume=v,
            source=source,
            final=final,
            updated_at=now,
        )
        for ts, o, h, lo, c, v, final in _candle_rows(candles)
    ]
    values = ("open_price", "high_price", "low_price", "close_price", "volume", "source", "final")
    with transaction.atomic():
        stored = {
            timestamp: tuple(rest)
            for timestamp, *rest in MarketData.objects.filter(
                symbol=symbol, timeframe=timeframe.value, timestamp__in=[row.timestamp for row in rows]
            ).values_list("timestamp", *values)
        }
        rows = [
            row
            for row in rows
            if row.timestamp not in stored
            or (
                (row.final or not stored[row.timestamp][-1])
                and stored[row.timestamp] != tuple(getattr(row, name) for name in values)
            )
        ]
        existing = sum(row.timestamp in stored for row in rows)
        MarketData.objects.bulk_create(
            rows,
            batch_size=_UPSERT_BATCH,
            update_conflicts=True,
            unique_fields=["symbol", "timeframe", "timestamp"],
            update_fields=_UPDATE_FIELDS,
        )
    return len(rows) - existing, existing, [row.timestamp for row in rows]


def _lookback_floor(timeframe: Timeframe, now: datetime) -> datetime | None:
    limit = timeframe.spec.max_lookback
    # A minute's margin so a window computed "now" is still inside the limit when the provider checks it.
    return now - limit + timedelta(minutes=1) if limit is not None else None


def check_lookback(*, timeframe: Timeframe, start: datetime | None, now: datetime | None = None) -> None:
    """Refuse a start further back than Yahoo serves this timeframe, naming the limit."""
    limit = timeframe.spec.max_lookback
    now = now or timezone.now()
    if start is not None and limit is not None and start < now - limit:
        raise LookbackExceeded(f"{timeframe.value} candles are available for the last {limit.days} days only")


def history_gap(timeframe: Timeframe) -> timedelta:
    """Stored or fetched bars further apart than this are not one run: no exchange closes this long (two
    weeks, or three bars of the timeframe). Used to tell "before the provider's history" from a holiday."""
    return max(timedelta(days=14), 3 * timeframe.spec.bar)


def missing_ranges(
    intervals: list[tuple[datetime, datetime]], start: datetime, end: datetime
) -> list[tuple[datetime, datetime]]:
    """The parts of [start, end) outside every interval, in time order."""
    gaps: list[tuple[datetime, datetime]] = []
    cursor = start
    for covered_from, covered_to in sorted(intervals):
        if covered_to <= cursor:
            continue
        if covered_from >= end:
            break
        if covered_from > cursor:
            gaps.append((cursor, covered_from))
        cursor = covered_to
    if cursor < end:
        gaps.append((cursor, end))
    return gaps


def _coverage_add(
    *,
    symbol: str,
    timeframe: Timeframe,
    start: datetime,
    end: datetime,
    source: str,
    first: datetime | None,
    synced_at: datetime,
) -> None:
    """Record that [start, end) was fetched at `synced_at` (when the provider was asked: its answer is as of
    then) with first bar `first` (None when empty): merge it with the intervals it touches or overlaps, and learn
    where the provider's history starts."""
    now = synced_at
    with transaction.atomic():
        series, _ = CandleSeries.objects.select_for_update().get_or_create(
            symbol=symbol, timeframe=timeframe.value
        )
        touching = list(series.intervals.filter(source=source, covered_from__lte=end, covered_to__gte=start))
        latest = max(touching, key=lambda interval: interval.covered_to, default=None)
        merged = CoverageInterval(
            series=series,
            covered_from=min([start, *(interval.covered_from for interval in touching)]),
            covered_to=max(end, latest.covered_to) if latest else end,
            last_synced_at=now if latest is None or end >= latest.covered_to else latest.last_synced_at,
            source=source,
        )
        series.intervals.filter(pk__in=[interval.pk for interval in touching]).delete()
        merged.save()
        known = series.history_starts_at if series.history_source == source else None
        if first is not None and (known is None or first < known):
            # Nothing in [start, first) and nothing stored before it: this provider's history starts at first.
            starts_here = (
                first - start > history_gap(timeframe)
                and not (
                    MarketData.objects.filter(
                        symbol=symbol, timeframe=timeframe.value, timestamp__lt=first
                    ).exists()
                )
                and not _listed_before(symbol=symbol, when=start)
            )
            claim = first if starts_here else None
            # One claim per series: this provider's replaces another's, but no claim leaves another's alone.
            if (claim is not None or series.history_source == source) and (
                series.history_starts_at,
                series.history_source,
            ) != (claim, source):
                series.history_starts_at, series.history_source = claim, source
                series.save(update_fields=["history_starts_at", "history_source"])


def candles_delete(*, candles: QuerySet[MarketData], refetch: bool = True) -> int:
    """Delete stored candles (staff, in the admin) and forget that their bars were fetched: coverage that still
    claimed them would keep every read from asking the provider again (a silent hole), and cached reads of
    their symbols still show them. Without `refetch` (bars that lie outside the sessions: the provider leaves
    those out) their coverage stays: each bar's range cut out would be one more provider request of the next read.
    After commit, announces CandlesDeleted per symbol and timeframe (what was computed from those bars no longer
    describes the stored ones). Returns how many were deleted."""
    rows = list(candles.values_list("pk", "symbol", "timeframe", "timestamp"))
    if not rows:
        return 0
    with transaction.atomic():
        MarketData.objects.filter(pk__in=[pk for pk, *_ in rows]).delete()
        holes: dict[tuple[str, str], list[datetime]] = {}
        for _, symbol, timeframe, timestamp in rows:
            holes.setdefault((symbol, timeframe), []).append(timestamp)
        for (symbol, timeframe), stamps in holes.items() if refetch else ():
            bar = Timeframe(timeframe).spec.bar
            _coverage_remove(symbol=symbol, timeframe=timeframe, ranges=[(ts, ts + bar) for ts in stamps])
        for symbol in {symbol for symbol, _ in holes}:
            market_reads_invalidate(symbol=symbol)
        for (symbol, timeframe), stamps in holes.items():
            deleted = CandlesDeleted(symbol=symbol, timeframe=timeframe, deleted=tuple(sorted(stamps)))
            transaction.on_commit(lambda deleted=deleted: announce(deleted))
    logger.info("candles_deleted", count=len(rows), symbols=sorted({symbol for _, symbol, *_ in rows}))
    return len(rows)


def _coverage_remove(*, symbol: str, timeframe: str, ranges: list[tuple[datetime, datetime]]) -> None:
    """Cut the [from, to) `ranges` out of the series' fetched intervals, so reads fetch them again."""
    series = CandleSeries.objects.select_for_update().filter(symbol=symbol, timeframe=timeframe).first()
    if series is None:
        return
    for cut_from, cut_to in sorted(ranges):
        for interval in series.intervals.filter(covered_from__lt=cut_to, covered_to__gt=cut_from):
            pieces = [(interval.covered_from, cut_from), (cut_to, interval.covered_to)]
            kept = [(a, b) for a, b in pieces if a < b]
            interval.delete()
            for a, b in kept:
                CoverageInterval.objects.create(
                    series=series,
                    covered_from=a,
                    covered_to=b,
                    last_synced_at=interval.last_synced_at,
                    source=interval.source,
                )


def _listed_before(*, symbol: str, when: datetime) -> bool:
    """The catalogue's listing date of `symbol` is before `when`: it traded then, so a window from `when` whose
    first bar comes weeks later met a gap in its trading (a suspension), not the start of its history."""
    listed_on = Instrument.objects.filter(symbol=symbol).values_list("listed_on", flat=True).first()
    return listed_on is not None and listed_on < when.date()


def _fetch_and_store(
    *, symbol: str, timeframe: Timeframe, start: datetime, end: datetime, provider: Provider
) -> UpsertResult:
    fetched_at = timezone.now()  # before the request: what it answers is as of then at the latest
    history = provider.fetch_history(symbol, timeframe, start=start, end=end)
    return _store_window(
        symbol=symbol,
        timeframe=timeframe,
        start=start,
        end=end,
        history=history,
        source=provider.name,
        fetched_at=fetched_at,
    )


def _store_window(
    *,
    symbol: str,
    timeframe: Timeframe,
    start: datetime,
    end: datetime,
    history: History,
    source: str,
    fetched_at: datetime,
) -> UpsertResult:
    """Upsert what the provider sent for [start, end) when asked at `fetched_at` (candles and corporate actions)
    and record the window as fetched then. The rows it sent outside the exchange's sessions (History.off_session:
    a holiday's row, the previous session repeated) are not bars: they are logged and counted, not stored."""
    result = candles_upsert(
        symbol=symbol, timeframe=timeframe, candles=history.candles, source=source, fetched_at=fetched_at
    )
    if history.off_session:
        result = replace(result, off_session=len(history.off_session))
        _off_session_report(symbol=symbol, timeframe=timeframe, source=source, stamps=history.off_session)
    actions_stored = corporate_actions_upsert(symbol=symbol, actions=history.actions, source=source)
    _coverage_add(
        symbol=symbol,
        timeframe=timeframe,
        start=start,
        end=end,
        source=source,
        first=result.first,
        synced_at=fetched_at,
    )
    if actions_stored:
        corporate_actions_changed(
            symbol=symbol,
            ex_dates=[action.ex_date for action in history.actions],
            kinds=[action.kind for action in history.actions],
        )
    elif result.inserted or result.updated:
        market_reads_invalidate(symbol=symbol)
    return result


def _off_session_report(
    *, symbol: str, timeframe: Timeframe, source: str, stamps: tuple[datetime, ...]
) -> None:
    """Tell staff a provider sent rows for times its exchange did not trade (logs and the synced-candles metric):
    a day listed here that did trade is a special session missing from the calendar (`load_sessions`)."""
    CANDLES_SYNCED.labels(source, timeframe.value, "off_session").inc(len(stamps))
    tz = calendar_for_symbol(symbol).tz
    logger.warning(
        "candles_off_session",
        symbol=symbol,
        timeframe=timeframe.value,
        source=source,
        count=len(stamps),
        days=sorted({stamp.astimezone(tz).date().isoformat() for stamp in stamps})[:20],
    )


def market_reads_invalidate(*, symbol: str) -> None:
    """Every cached read of `symbol` (candles, adjusted or not, quotes, indicators) is out of date."""
    market_version_bump(symbol)
    # Inside a caller's transaction, readers may cache what they read under this version before the
    # change is visible to them: bump once more when it is.
    transaction.on_commit(lambda: market_version_bump(symbol))


def corporate_actions_changed(*, symbol: str, ex_dates: list[date], kinds: list[str] | None = None) -> None:
    """Actions of `symbol` on `ex_dates` (of `kinds`, when known) were stored, changed or deleted: its cached reads
    are out of date, and after commit the listeners re-check what they computed across those days (predictions'
    scores, models trained on split-adjusted candles)."""
    market_reads_invalidate(symbol=symbol)
    if ex_dates:
        share_count = kinds is None or any(kind in SHARE_COUNT_KINDS for kind in kinds)
        event = CorporateActionsChanged(
            symbol=symbol, first=min(ex_dates), last=max(ex_dates), share_count=share_count
        )
        transaction.on_commit(lambda: announce(event))


def _action_group(kind: str) -> str:
    # A bonus issue is a split to the prices (Yahoo reports one as a split): one per day, whoever reported it.
    return "shares" if kind in SHARE_COUNT_KINDS else kind


def corporate_actions_upsert(*, symbol: str, actions: list[Action], source: str) -> int:
    """Store the corporate actions a provider reported: new ones are inserted, provider rows whose values changed
    are updated, and rows staff entered (source "staff") are never touched, nor doubled by a provider's split
    on the day staff entered a bonus. Idempotent and safe to run concurrently (the unique constraint).
    Returns how many rows were inserted or changed; the caller invalidates cached reads when any were."""
    if not actions:
        return 0
    existing = {
        (row.ex_date, _action_group(row.kind)): row
        for row in CorporateAction.objects.filter(symbol=symbol, ex_date__in={a.ex_date for a in actions})
    }
    new, changed = [], 0
    for action in actions:
        values = {"ratio": action.ratio, "amount": action.amount, "factor": action.factor}
        row = existing.get((action.ex_date, _action_group(action.kind)))
        if row is None:
            new.append(
                CorporateAction(
                    symbol=symbol, ex_date=action.ex_date, kind=action.kind, source=source, **values
                )
            )
            continue
        if row.source == CorporateAction.STAFF:
            continue
        same = row.source == source and all(
            (getattr(row, name) is None) == (value is None)
            and (value is None or math.isclose(getattr(row, name), value, rel_tol=1e-9))
            for name, value in values.items()
        )
        if not same:
            # Conditional on the row still being the provider's: staff may have taken it over meanwhile.
            changed += (
                CorporateAction.objects.filter(pk=row.pk)
                .exclude(source=CorporateAction.STAFF)
                .update(source=source, **values)
            )
    if new:
        CorporateAction.objects.bulk_create(new, ignore_conflicts=True)
    stored = len(new) + changed
    if stored:
        logger.info(
            "corporate_actions_stored", symbol=symbol, inserted=len(new), updated=changed, source=source
        )
    return stored


def _history_start(symbol: str, timeframe: Timeframe, source: str) -> datetime | None:
    """Where the provider `source` was seen to have nothing earlier, if it was."""
    return (
        CandleSeries.objects.filter(symbol=symbol, timeframe=timeframe.value, history_source=source)
        .values_list("history_starts_at", flat=True)
        .first()
    )


def _sync_result(data: dict) -> SyncResult:
    return SyncResult(**data)


@offload.offloaded(errors=(ProviderError, LookbackExceeded), encode=asdict, decode=_sync_result)
def candles_sync(
    *, symbol: str, timeframe: Timeframe, days: int | None = None, provider: Provider | None = None
) -> SyncResult:
    """Fetch candles since the last stored one (with a small overlap) or, with `days` or for a new symbol, the
    last `days` days, and upsert them. Running it twice inserts nothing the second time. An explicit `days`
    asks the provider even before where its history was seen to start (staff may re-check it)."""
    provider = provider or get_provider()
    now = timezone.now()
    if days is not None:
        start = now - timedelta(days=days)
        check_lookback(timeframe=timeframe, start=start, now=now)
    else:
        last = MarketData.objects.filter(symbol=symbol, timeframe=timeframe.value).aggregate(
            last=Max("timestamp")
        )["last"]
        start = last - OVERLAP[timeframe] if last else now - timedelta(days=DEFAULT_DAYS[timeframe])
        history_start = _history_start(symbol, timeframe, provider.name)
        if history_start is not None:
            start = max(start, history_start)
    floor = _lookback_floor(timeframe, now)
    if floor is not None:
        start = max(start, floor)
    result = _fetch_and_store(symbol=symbol, timeframe=timeframe, start=start, end=now, provider=provider)
    message = None
    if not (result.inserted or result.updated or result.unchanged or result.rejected):
        message = _nothing_stored_reason(
            symbol=symbol, timeframe=timeframe, start=start, end=now, source=provider.name
        )
        if result.off_session:
            message = (
                f"the provider sent only {result.off_session} {timeframe.value} bar(s) outside the sessions of "
                f"{symbol}'s exchange calendar (a holiday or weekend), not stored; {message}"
            )
    logger.info(
        "candles_synced",
        symbol=symbol,
        timeframe=timeframe.value,
        inserted=result.inserted,
        updated=result.updated,
        unchanged=result.unchanged,
        off_session=result.off_session,
        source=provider.name,
    )
    return SyncResult(
        symbol=symbol,
        timeframe=timeframe.value,
        inserted=result.inserted,
        updated=result.updated,
        unchanged=result.unchanged,
        rejected=result.rejected,
        first=result.first,
        last=result.last,
        source=provider.name,
        message=message,
        off_session=result.off_session,
    )


def _nothing_stored_reason(
    *, symbol: str, timeframe: Timeframe, start: datetime, end: datetime, source: str
) -> str:
    """Why a sync stored nothing, with the earliest bar we know the provider has."""
    earliest = (
        _history_start(symbol, timeframe, source)
        or (
            MarketData.objects.filter(symbol=symbol, timeframe=timeframe.value).aggregate(
                first=Min("timestamp")
            )["first"]
        )
    )
    reason = (
        f"the provider has no {timeframe.value} data in this window "
        f"({start.isoformat(timespec='minutes')} to {end.isoformat(timespec='minutes')})"
    )
    if earliest is not None:
        reason += f"; earliest available is {earliest.isoformat()}"
    return reason


def quote_store(*, quote: Quote, status: MarketStatus) -> dict:
    """Cache a freshly fetched quote for as long as it may be served (quote_seconds, by its exchange's
    `status` when it was fetched) and announce it; returns its payload in the quote endpoint's shape."""
    payload = asdict(quote)
    # The catalogue's currency, else its exchange's, whatever the provider said.
    payload["currency"] = currency_of(quote.symbol)
    payload["timestamp"] = quote.timestamp.isoformat()
    missed = _quote_missed_sessions(quote=quote, now=status.now)
    payload["stale"] = missed is not None
    payload["stale_seconds"] = missed
    quote_cache_set(quote.symbol, payload, quote_seconds(status))
    announce(QuoteRefreshed(symbol=quote.symbol, quote=payload))
    return payload


@offload.offloaded(errors=(ProviderError,))
def quote_fetch(*, symbol: str, provider: Provider | None = None) -> dict:
    """Ask the (configured) provider for `symbol`'s quote now, then cache and announce it (quote_store)."""
    fetched = (provider or get_provider()).fetch_quote(symbol)
    return quote_store(quote=fetched, status=calendar_for_symbol(symbol).status(timezone.now()))


def _quote_missed_sessions(*, quote: Quote, now: datetime) -> int | None:
    """How old the provider's quote is (seconds since its day's close) when a later session of its exchange has
    closed without it (a CSV file last written days ago, a suspended listing): its price is not the latest the
    exchange made, whatever the provider says. None while it is the day of the latest closed session or later."""
    calendar = calendar_for_symbol(quote.symbol)
    day = quote.timestamp.astimezone(calendar.tz).date()
    if calendar.session_close(calendar.next_trading_day(day)) > now:
        return None
    ended = min(bar_close(calendar, Timeframe.D1, quote.timestamp), now)
    return int((now - ended).total_seconds())


def quote_seconds(status: MarketStatus) -> int:
    """How long a quote fetched at `status.now` may be served from the cache: QUOTE_CACHE_TTL_OPEN while its
    exchange is open; while it is closed MARKET_DATA_CACHE_TTL, but never past the next open (a second after):
    the session's first reads ask for its prices instead of being served the quote from before it."""
    if status.is_open:
        return settings.QUOTE_CACHE_TTL_OPEN
    until_open = math.ceil((status.next_open - status.now).total_seconds()) + 1
    return int(min(settings.MARKET_DATA_CACHE_TTL, max(1, until_open)))


@dataclass(frozen=True, kw_only=True)
class QuotesRefreshResult:
    refreshed: list[str]
    missing: list[str]
    requests: int
    # Why the batches stopped early (the provider failed a later batch): the earlier ones' quotes were stored.
    error: str | None = None


def _refresh_result(data: dict) -> QuotesRefreshResult:
    return QuotesRefreshResult(**data)


@offload.offloaded(errors=(ProviderError,), encode=asdict, decode=_refresh_result)
def quotes_refresh(*, symbols: list[str], provider: Provider | None = None) -> QuotesRefreshResult:
    """Fetch quotes for many symbols in batches (one provider call per batch of QUOTE_BATCH_SIZE), cache and
    announce each. Symbols the provider has no quote for are reported in `missing`, never fail the others. A
    provider failure on the first batch is raised; on a later one the batches stop there (an outage or a rate
    limit is not asked again at once), and what the earlier ones stored is reported, with the `error`."""
    provider = provider or get_provider()
    now = timezone.now()
    wanted = sorted(set(symbols))
    size = max(1, settings.QUOTE_BATCH_SIZE)
    refreshed: list[str] = []
    requests = 0
    error = None
    for index in range(0, len(wanted), size):
        try:
            quotes = provider.fetch_quotes(wanted[index : index + size])
        except ProviderError as exc:
            if not requests:
                raise
            error = str(exc)
            logger.warning(
                "quotes_refresh_stopped", batch=requests + 1, refreshed=len(refreshed), error=error
            )
            break
        requests += 1
        for symbol, quote in quotes.items():
            quote_store(quote=quote, status=calendar_for_symbol(symbol).status(now))
            refreshed.append(symbol)
    missing = sorted(set(wanted) - set(refreshed))
    logger.info("quotes_refreshed", refreshed=len(refreshed), missing=len(missing), requests=requests)
    return QuotesRefreshResult(refreshed=sorted(refreshed), missing=missing, requests=requests, error=error)


@dataclass(frozen=True, kw_only=True)
class EnsureResult:
    fetched: bool
    stale: bool
    stale_reason: str | None = None
    # What the coverage read says of where the series begins, after this call's fetches: the provider's known
    # history start, and the earliest moment it was ever asked for (None: never, or not known).
    history_start: datetime | None = None
    fetched_from: datetime | None = None


class Covered(NamedTuple):
    """A fetched interval of a series (CoverageInterval's times)."""

    covered_from: datetime
    covered_to: datetime
    last_synced_at: datetime


def _coverage_of(*, symbol: str, timeframe: Timeframe, source: str) -> tuple[list[Covered], datetime | None]:
    """The series' intervals fetched from the provider `source` in time order, and where that provider's history
    starts (None: not known). As plain values: every historical read asks, and model instances cost twice the
    query."""
    if connection.vendor == "postgresql":  # the ORM's compiling was most of this query's cost
        with connection.cursor() as cursor:
            cursor.execute(_COVERAGE_SQL, [source, symbol, timeframe.value, source])
            rows = cursor.fetchall()
    else:  # SQLite's driver returns naive times; the ORM makes them aware
        rows = [
            (*row[:3], row[3] if row[4] == source else None)
            for row in CoverageInterval.objects.filter(
                series__symbol=symbol, series__timeframe=timeframe.value, source=source
            )
            .order_by("covered_from")
            .values_list(
                "covered_from",
                "covered_to",
                "last_synced_at",
                "series__history_starts_at",
                "series__history_source",
            )
        ]
    return [Covered(*row[:3]) for row in rows], rows[0][3] if rows else None


_COVERAGE_SQL = """
SELECT covered.covered_from, covered.covered_to, covered.last_synced_at,
       CASE WHEN series.history_source = %s THEN series.history_starts_at END
FROM market_coverageinterval AS covered
JOIN market_candleseries AS series ON series.id = covered.series_id
WHERE series.symbol = %s AND series.timeframe = %s AND covered.source = %s
ORDER BY covered.covered_from
"""


def _windows_to_fetch(
    *,
    intervals: list[Covered],
    timeframe: Timeframe,
    want_from: datetime,
    want_to: datetime,
    now: datetime,
    freshness: timedelta,
    calendar: ExchangeCalendar,
) -> list[tuple[datetime, datetime]]:
    """The never-fetched parts of [want_from, want_to). A gap right after an interval that reached the present
    when it was fetched is the growing tail: refetched at most every `freshness`, and only once a bar has closed
    since that fetch (a new one, or the one then forming, whose stored values are partial until refetched)."""
    ends = {interval.covered_to: interval for interval in intervals}
    windows = []
    spans = [(interval.covered_from, interval.covered_to) for interval in intervals]
    for gap_from, gap_to in missing_ranges(spans, want_from, want_to):
        before = ends.get(gap_from)
        if before is None:
            windows.append((gap_from, gap_to))
            continue
        reached_present = before.covered_to >= before.last_synced_at - freshness
        if reached_present and (
            before.last_synced_at >= now - freshness
            or not _bar_closed_since(
                calendar=calendar, timeframe=timeframe, since=before.last_synced_at, now=now
            )
        ):
            continue  # the tail: refreshed moments ago, or no bar has closed since it was fetched
        # Re-fetch a little before the interval's end so a bar that was still forming gets its final values.
        # (Never before what was asked for: reads store nothing older than their start.)
        windows.append((max(gap_from - OVERLAP[timeframe], want_from), gap_to))
    return windows


def _source_of(provider: Provider | None) -> str:
    """The name `provider` (the configured one when None) records as the source of what it fetches. A web worker
    that may hand fetches to compute workers reads it from the setting, not from a built provider, which would
    import it and pandas (tradingdash/offload.py)."""
    if provider is not None:
        return provider.name
    return provider_name() if offload.configured() else get_provider().name


def candles_ensure(
    *,
    symbol: str,
    timeframe: Timeframe,
    start: datetime | None,
    end: datetime | None,
    provider: Provider | None = None,
    freshness: timedelta = timedelta(minutes=5),
    limit: int | None = None,
) -> EnsureResult:
    """Make sure the requested range is stored: fetch exactly the sub-ranges never fetched (once each) and
    refresh a stale tail at most every `freshness`. Without `start`: the `limit` bars before `end` (or now) that the
    latest-`limit` read will show, whatever was fetched before; the default history (or more, for the limit) when
    nothing was fetched yet or no limit is given.

    When the provider fails but candles are stored, they are served marked stale; when nothing is stored,
    the provider's error propagates (404 for an unknown symbol, 503 for any other failure)."""
    now = timezone.now()
    check_lookback(timeframe=timeframe, start=start, now=now)
    source = _source_of(provider)
    intervals, history_start = _coverage_of(symbol=symbol, timeframe=timeframe, source=source)
    calendar = calendar_for_symbol(symbol)
    want_to = min(end, now) if end is not None else now
    if start is not None:
        want_from = start
    else:
        # No start: the latest bars before want_to, however narrow or late the ranges fetched so far are: the
        # `limit` a read shows, or the default history when nothing was fetched yet (or no limit is given).
        want_from = want_to - timedelta(days=DEFAULT_DAYS[timeframe])
        if limit is not None:
            shown_from = _bars_span_start(calendar=calendar, timeframe=timeframe, limit=limit, end=want_to)
            want_from = min(want_from, shown_from) if not intervals else shown_from
    floor = _lookback_floor(timeframe, now)
    if floor is not None:
        want_from = max(want_from, floor)
    if history_start is not None:
        want_from = max(want_from, history_start)
    windows = _windows_to_fetch(
        intervals=intervals,
        timeframe=timeframe,
        want_from=want_from,
        want_to=want_to,
        now=now,
        freshness=freshness,
        calendar=calendar,
    )
    known = {"history_start": history_start, "fetched_from": intervals[0].covered_from if intervals else None}
    if not windows:
        return EnsureResult(fetched=False, stale=False, **known)
    if provider is None and offload.configured():
        # A fetch: in a compute worker, which reads the coverage again there (a fetch in between leaves it
        # nothing to do), not in this web worker (tradingdash/offload.py). None answering in time is served as
        # a provider failing would be: what is stored, marked stale, else the error.
        try:
            return candles_ensure_fetched(
                symbol=symbol,
                timeframe=timeframe,
                start=start,
                end=end,
                freshness_seconds=freshness.total_seconds(),
                limit=limit,
            )
        except offload.ComputeUnavailable as exc:
            if not MarketData.objects.filter(symbol=symbol, timeframe=timeframe.value).exists():
                raise
            logger.warning("serving_stale_candles", symbol=symbol, timeframe=timeframe.value, error=str(exc))
            return EnsureResult(fetched=False, stale=True, stale_reason=str(exc), **known)
    provider = provider or get_provider()
    try:
        for window_start, window_end in windows:
            if floor is not None:
                window_start = max(window_start, floor)
            if window_start < window_end:
                _fetch_and_store(
                    symbol=symbol, timeframe=timeframe, start=window_start, end=window_end, provider=provider
                )
                if known["fetched_from"] is None or window_start < known["fetched_from"]:
                    known["fetched_from"] = window_start
    except SymbolNotFound:
        if not intervals:
            raise
        return EnsureResult(fetched=False, stale=False, **known)
    except ProviderError as exc:
        if not MarketData.objects.filter(symbol=symbol, timeframe=timeframe.value).exists():
            raise
        logger.warning("serving_stale_candles", symbol=symbol, timeframe=timeframe.value, error=str(exc))
        return EnsureResult(fetched=False, stale=True, stale_reason=str(exc), **known)
    # A fetch may just have found where the provider's history starts.
    known["history_start"] = _history_start(symbol, timeframe, provider.name)
    return EnsureResult(fetched=True, stale=False, **known)


def _ensure_result(data: dict) -> EnsureResult:
    return EnsureResult(**data)


@offload.offloaded(errors=(ProviderError, LookbackExceeded), encode=asdict, decode=_ensure_result)
def candles_ensure_fetched(
    *,
    symbol: str,
    timeframe: Timeframe,
    start: datetime | None,
    end: datetime | None,
    freshness_seconds: float,
    limit: int | None,
) -> EnsureResult:
    """candles_ensure with the configured provider, for a web worker whose read needs a fetch."""
    return candles_ensure(
        symbol=symbol,
        timeframe=timeframe,
        start=start,
        end=end,
        provider=get_provider(),
        freshness=timedelta(seconds=freshness_seconds),
        limit=limit,
    )


class StaleMarketData(Exception):
    """The stored candles end before the latest bar that has closed on the exchange's calendar (the provider is
    down, or has not returned that bar): what is decided "now" from their last bar (a forecast, a trading signal)
    would be decided on a bar that is no longer the latest. Built from its message alone, so a task's failure
    reads back the same."""

    retry_after = 60


def candles_ensure_current(*, symbol: str, timeframe: Timeframe, consequence: str) -> EnsureResult:
    """candles_ensure for a decision on the latest closed bar: the bar after the last closed final bar stored must
    not have closed on the exchange's calendar. A bar that closed within `freshness` of the last fetch is fetched
    now (the provider is asked only when a bar has closed since). Candles the provider could not bring up to date
    raise StaleMarketData, whose message says how old they are and why, then the caller's `consequence`."""
    ensured = candles_ensure(symbol=symbol, timeframe=timeframe, start=None, end=None)
    calendar = calendar_for_symbol(symbol)
    last, missed = _missed_close(symbol=symbol, timeframe=timeframe, calendar=calendar)
    if missed is not None and not ensured.stale:
        ensured = candles_ensure(
            symbol=symbol, timeframe=timeframe, start=None, end=None, freshness=timedelta(0)
        )
        last, missed = _missed_close(symbol=symbol, timeframe=timeframe, calendar=calendar)
    if missed is None:
        return ensured
    why = (
        f"the market data provider failed ({ensured.stale_reason})"
        if ensured.stale
        else "the market data provider has not returned a newer bar"
    )
    age = timezone.now() - missed
    raise StaleMarketData(
        f"Market data is stale: the last closed {timeframe.value} bar stored for {symbol} is "
        f"{_bar_label(last, calendar=calendar, timeframe=timeframe)}, and the bar after it closed at "
        f"{_local_time(missed, calendar=calendar)} ({_duration(age)} ago); {why}. {consequence}"
    )


def _missed_close(
    *, symbol: str, timeframe: Timeframe, calendar: ExchangeCalendar
) -> tuple[datetime | None, datetime | None]:
    """The last closed final bar stored (what signals and forecasts read as the latest), and when the bar after
    it closed if it has (that bar is missing); else None for it."""
    now = timezone.now()
    latest = (
        MarketData.objects.filter(symbol=symbol, timeframe=timeframe.value, final=True)
        .order_by("-timestamp")
        .values_list("timestamp", flat=True)[:2]
    )
    last = next((opened for opened in latest if bar_close(calendar, timeframe, opened) <= now), None)
    if last is None:
        return None, None
    closes = bar_close(calendar, timeframe, bars_ahead(calendar, timeframe, last, 1))
    return last, (closes if closes <= now else None)


def _bar_label(opened_at: datetime, *, calendar: ExchangeCalendar, timeframe: Timeframe) -> str:
    """A bar for people, in the exchange's time: a daily (or longer) bar by its session's date."""
    if not timeframe.is_intraday:
        return f"the {opened_at.astimezone(calendar.tz).date().isoformat()} bar"
    return f"the bar of {_local_time(opened_at, calendar=calendar)}"


def _local_time(moment: datetime, *, calendar: ExchangeCalendar) -> str:
    return moment.astimezone(calendar.tz).strftime("%Y-%m-%d %H:%M %Z")


def _duration(delta: timedelta) -> str:
    minutes = max(0, int(delta.total_seconds() // 60))
    if minutes < 120:
        return f"{minutes} minutes"
    if minutes < 48 * 60:
        return f"{minutes // 60} hours"
    return f"{minutes // (24 * 60)} days"


def candles_ensure_nothing(
    *, symbol: str, timeframe: Timeframe, provider: Provider | None = None
) -> EnsureResult:
    """candles_ensure's answer for a range wholly beyond the provider's reach, which it does not fetch: nothing
    fetched, and what the coverage says of where the series begins (so a derived bar reads the same from any
    window)."""
    source = _source_of(provider)
    intervals, history_start = _coverage_of(symbol=symbol, timeframe=timeframe, source=source)
    return EnsureResult(
        fetched=False,
        stale=False,
        history_start=history_start,
        fetched_from=intervals[0].covered_from if intervals else None,
    )


def _bars_span_start(
    *, calendar: ExchangeCalendar, timeframe: Timeframe, limit: int, end: datetime
) -> datetime:
    """A start (local midnight of a trading day) from which [start, end) holds at least `limit` bars of
    `timeframe` on the calendar, with a session to spare (end's may have just begun, a short one may lack bars)."""
    last = end.astimezone(calendar.tz).date()
    if timeframe is Timeframe.W1:
        return end - timedelta(weeks=limit + 1)
    per_session = 1
    if timeframe.is_intraday:
        regular = last if calendar.is_trading_day(last) else calendar.previous_trading_day(last)
        per_session = max(1, len(calendar.session_bars(regular, timeframe.spec.bar)))
    sessions = -(-limit // per_session) + 1
    first = last - timedelta(days=sessions * 7 // 5 + 14)
    days = calendar.trading_days_array(first, last)
    while len(days) < sessions:
        first -= timedelta(days=sessions * 7 // 5 + 14)
        days = calendar.trading_days_array(first, last)
    day = days[-sessions].astype(object)
    return datetime.combine(day, datetime.min.time(), calendar.tz).astimezone(end.tzinfo)


def holidays_load_csv(*, path: Path | str, exchange: str = "NSE") -> tuple[int, int]:
    """Load an exchange's published holiday list (CSV: date,description). Returns (created, updated).
    Only NSE and BSE keep a holiday table; other exchanges' calendars come from the exchange_calendars library."""
    exchange = exchange.strip().upper()
    if exchange not in TABLE_EXCHANGES:
        raise ValueError(
            f"Holidays are loaded for {' and '.join(TABLE_EXCHANGES)} only; {exchange!r} uses its library calendar"
        )
    holidays = load_holidays_csv(path)
    created = updated = 0
    with transaction.atomic():
        for day, description in sorted(holidays.items()):
            _, was_created = MarketHoliday.objects.update_or_create(
                exchange=exchange, date=day, defaults={"description": description}
            )
            created += was_created
            updated += not was_created
    holidays_invalidate(exchange)
    return created, updated


@dataclass(frozen=True, kw_only=True)
class LoadResult:
    created: int
    updated: int
    unchanged: int


def sessions_load_csv(*, path: Path | str, exchange: str = "NSE") -> LoadResult:
    """Load an exchange's announced special sessions and shortened days (market.calendar.load_sessions_csv),
    keyed by (exchange, date): a changed row is updated, an equal one left alone, so loading twice changes
    nothing. Rows of other days are kept. Nothing is written when any row is bad."""
    exchange = exchange.strip().upper()
    if exchange not in EXCHANGES:
        raise ValueError(f"Unknown exchange {exchange!r}; use one of {', '.join(EXCHANGES)}")
    sessions = load_sessions_csv(path)
    created = updated = unchanged = 0
    changed: list[date] = []
    with transaction.atomic():
        existing = {
            row.date: row
            for row in MarketSession.objects.select_for_update().filter(
                exchange=exchange, date__in=[s.date for s in sessions]
            )
        }
        for session in sessions:
            fields = {
                "kind": session.kind,
                "open_time": session.open,
                "close_time": session.close,
                "description": session.description,
                "source": session.source,
            }
            row = existing.get(session.date)
            if row is None:
                MarketSession.objects.create(exchange=exchange, date=session.date, **fields)
                created += 1
                changed.append(session.date)
            elif any(getattr(row, name) != value for name, value in fields.items()):
                MarketSession.objects.filter(pk=row.pk).update(**fields)
                updated += 1
                changed.append(session.date)
            else:
                unchanged += 1
    if created or updated:
        sessions_invalidate(exchange)
        sessions_coverage_reopen(exchange=exchange, dates=changed)
    return LoadResult(created=created, updated=updated, unchanged=unchanged)


def sessions_coverage_reopen(*, exchange: str, dates: list[date]) -> int:
    """Cut the days of sessions staff just announced (or changed) out of the fetched coverage of every series
    traded on `exchange` (BSE's calendar takes NSE's sessions too), so the next read or sync asks the provider
    for those days again. Until a special session is in the calendar, the provider's rows of that day are left
    out as off-session (market.bars.in_sessions) while the window they came in counts as fetched: without this,
    a Muhurat session loaded the day after would never be stored. Returns how many series were cut."""
    if not dates:
        return 0
    exchanges = {exchange} | ({"BSE"} if exchange == "NSE" else set())
    # Two days either side: whatever stamp a provider gives a day's bars (its local midnight, the session's open,
    # UTC midnight), they fall inside; asking again for a few stored days only finds them unchanged.
    ranges = [
        (
            datetime.combine(day - timedelta(days=2), datetime.min.time(), UTC),
            datetime.combine(day + timedelta(days=3), datetime.min.time(), UTC),
        )
        for day in sorted(set(dates))
    ]
    cut = 0
    for symbol, timeframe in CandleSeries.objects.values_list("symbol", "timeframe").order_by(
        "symbol", "timeframe"
    ):
        if exchange_of(symbol) not in exchanges:
            continue
        with transaction.atomic():
            _coverage_remove(symbol=symbol, timeframe=timeframe, ranges=ranges)
        market_reads_invalidate(symbol=symbol)  # a cached read answered from the coverage just cut
        cut += 1
    if cut:
        logger.info(
            "sessions_coverage_reopened", exchange=exchange, days=[d.isoformat() for d in dates], series=cut
        )
    return cut


def instrument_upsert_listing(*, listing: Listing, exchange: str = "NSE", activate: bool = False) -> str:
    """Add or update one listed security, keyed by ISIN (a renamed symbol keeps its row); an instrument first
    added by hand under the same symbol is adopted. Returns "created", "updated" or "unchanged"."""
    fields = {
        "symbol": listing.symbol,
        "name": listing.name,
        "series": listing.series,
        "listed_on": listing.listed_on,
        "exchange": exchange,
        "kind": Instrument.Kind.EQUITY,
    }
    with transaction.atomic():
        instrument = (
            Instrument.objects.select_for_update().filter(isin=listing.isin).first()
            or Instrument.objects.select_for_update().filter(symbol=listing.symbol, isin__isnull=True).first()
        )
        if instrument is None:
            Instrument.objects.create(isin=listing.isin, active=activate, currency="INR", **fields)
            return "created"
        changed = {k: v for k, v in {**fields, "isin": listing.isin}.items() if getattr(instrument, k) != v}
        if activate and not instrument.active:
            changed["active"] = True
        if not changed:
            return "unchanged"
        for key, value in changed.items():
            setattr(instrument, key, value)
        instrument.save(update_fields=[*changed, "updated_at"])
        return "updated"


@dataclass(frozen=True, kw_only=True)
class QualityResult:
    symbol: str
    timeframe: str
    open: int
    new: int
    resolved: int
    refetched: int = 0
    unavailable: int = 0


def quality_check(*, symbol: str, timeframe: Timeframe, now: datetime | None = None) -> QualityResult:
    """Check every stored candle of (symbol, timeframe) against its exchange calendar and record the findings:
    new ones are added, ones still present keep their row, ones no longer found are marked resolved."""
    now = now or timezone.now()
    instrument = Instrument.objects.filter(symbol=symbol).first()
    calendar = calendar_for_symbol(symbol)
    candles = _all_candles(symbol=symbol, timeframe=timeframe)
    findings = check_candles(
        candles,
        calendar=calendar,
        intraday_bar=timeframe.spec.bar if timeframe.is_intraday else None,
        now=now,
        expect_volume=not (instrument and instrument.kind == Instrument.Kind.INDEX)
        and not symbol.startswith("^"),
        # A jump on an ex-date is the action (stored candles are as traded), not bad data.
        action_days=set(CorporateAction.objects.filter(symbol=symbol).values_list("ex_date", flat=True)),
    )
    if timeframe is Timeframe.W1:  # weekly bars are checked through the daily series they come from
        findings = [f for f in findings if f.kind not in ("missing", "outside_session", "stale")]
    existing = {
        (row.kind, row.start): row
        for row in DataIssue.objects.filter(symbol=symbol, timeframe=timeframe.value, resolved=False)
    }
    seen, new = set(), 0
    with transaction.atomic():
        for finding in findings:
            key = (finding.kind, finding.start)
            seen.add(key)
            # "The provider could not supply it" holds for the run that was asked for: one that has grown since
            # (a tail run a day longer) or come back after it was resolved holds bars nobody asked for yet.
            same = existing.get(key)
            _, created = DataIssue.objects.update_or_create(
                symbol=symbol,
                timeframe=timeframe.value,
                kind=finding.kind,
                start=finding.start,
                defaults={
                    "end": finding.end,
                    "details": finding.details,
                    "unavailable": same is not None and same.unavailable and same.end == finding.end,
                    "resolved": False,
                    "resolved_at": None,
                    "checked_at": now,
                },
                create_defaults={
                    "end": finding.end,
                    "details": finding.details,
                    "detected_at": now,
                    "checked_at": now,
                },
            )
            new += created
        gone = [row.pk for key, row in existing.items() if key not in seen]
        DataIssue.objects.filter(pk__in=gone).update(resolved=True, resolved_at=now, checked_at=now)
    logger.info("quality_checked", symbol=symbol, timeframe=timeframe.value, open=len(findings), new=new)
    return QualityResult(
        symbol=symbol, timeframe=timeframe.value, open=len(findings), new=new, resolved=len(gone)
    )


def quality_repair(
    *, symbol: str, timeframe: Timeframe, provider: Provider | None = None, now: datetime | None = None
) -> QualityResult:
    """Ask the provider again for every missing run it has not been asked for yet, then re-check; runs it still
    cannot supply stay open, marked `unavailable` so the nightly repair does not ask for them again."""
    provider = provider or get_provider()
    now = now or timezone.now()
    quality_check(symbol=symbol, timeframe=timeframe, now=now)
    missing = DataIssue.objects.filter(
        symbol=symbol,
        timeframe=timeframe.value,
        kind=DataIssue.Kind.MISSING,
        resolved=False,
        unavailable=False,
    )
    refetched = 0
    floor = _lookback_floor(timeframe, now)
    for issue in missing:
        if floor is not None and issue.end < floor:
            continue  # older than the provider serves: it can never be supplied
        end = issue.end + (timeframe.spec.bar if timeframe.is_intraday else timedelta(days=1))
        start = max(issue.start, floor) if floor is not None else issue.start
        try:
            result = _fetch_and_store(
                symbol=symbol, timeframe=timeframe, start=start, end=end, provider=provider
            )
        except SymbolNotFound:
            # Yahoo's answer for a window it has nothing for ("No data found"): this run cannot be supplied
            # (marked below), the next ones may be.
            continue
        refetched += result.inserted
    result = quality_check(symbol=symbol, timeframe=timeframe, now=now)
    unavailable = DataIssue.objects.filter(
        symbol=symbol, timeframe=timeframe.value, kind=DataIssue.Kind.MISSING, resolved=False
    ).update(unavailable=True)
    return QualityResult(**{**result.__dict__, "refetched": refetched, "unavailable": unavailable})


@dataclass(frozen=True, kw_only=True)
class OutsideSessionsResult:
    deleted: int  # bars deleted, their issues resolved
    in_session: int  # issues whose bar the calendar now puts inside a session: left for the next check
    skipped: int  # not an open outside_session issue of a daily or intraday series of a known exchange


def candles_outside_sessions_delete(*, issues: QuerySet[DataIssue]) -> OutsideSessionsResult:
    """Delete the bars the quality check found outside their exchange's sessions (stored before reads and syncs
    dropped such bars, or on a day made a holiday since), each checked again against the calendar as it is now: a
    bar that a special session entered since puts inside a session stays. Deleted through candles_delete (cached
    reads dropped, CandlesDeleted announced; their coverage kept, as nothing is to be fetched again); their issues
    are marked resolved."""
    now = timezone.now()
    chosen = [
        issue
        for issue in issues.filter(kind=DataIssue.Kind.OUTSIDE_SESSION, resolved=False)
        if Timeframe(issue.timeframe).is_intraday or issue.timeframe == Timeframe.D1.value
    ]
    skipped = issues.count() - len(chosen)
    outside: list[DataIssue] = []
    in_session = 0
    calendars: dict[str, ExchangeCalendar | None] = {}
    for issue in chosen:
        if issue.symbol not in calendars:
            try:
                calendars[issue.symbol] = calendar_for_symbol(issue.symbol)
            except UnknownExchange:
                calendars[issue.symbol] = None
        calendar = calendars[issue.symbol]
        if calendar is None:
            skipped += 1
            continue
        if Timeframe(issue.timeframe).is_intraday:
            inside = bool(calendar.session_mask_seconds(np.array([int(issue.start.timestamp())]))[0])
        else:
            inside = calendar.is_trading_day(issue.start.astimezone(calendar.tz).date())
        if inside:
            in_session += 1
        else:
            outside.append(issue)
    bars = Q(pk__in=[])
    for issue in outside:
        bars |= Q(symbol=issue.symbol, timeframe=issue.timeframe, timestamp=issue.start)
    with transaction.atomic():
        # Their coverage stays: the provider has no bar outside the sessions to send again.
        deleted = candles_delete(candles=MarketData.objects.filter(bars), refetch=False) if outside else 0
        DataIssue.objects.filter(pk__in=[issue.pk for issue in outside]).update(
            resolved=True, resolved_at=now
        )
    logger.info("candles_outside_sessions_deleted", deleted=deleted, in_session=in_session, skipped=skipped)
    return OutsideSessionsResult(deleted=deleted, in_session=in_session, skipped=skipped)


def _all_candles(*, symbol: str, timeframe: Timeframe) -> pd.DataFrame:
    """Every stored candle in time order, as a candle frame (quality checks need all of them)."""
    import pandas as pd

    values = list(
        MarketData.objects.filter(symbol=symbol, timeframe=timeframe.value)
        .order_by("timestamp")
        .values_list("timestamp", "open_price", "high_price", "low_price", "close_price", "volume")
    )
    if not values:
        return empty_candles()
    frame = pd.DataFrame(values, columns=["timestamp", "open", "high", "low", "close", "volume"])
    frame = frame.set_index(pd.DatetimeIndex(frame.pop("timestamp"), name="timestamp").tz_convert("UTC"))
    return frame


# --- Whole-market sync: every active instrument, in batches of symbols that share one fetch window


@dataclass(frozen=True, kw_only=True)
class BatchRunResult:
    batch_id: int
    status: str  # a SyncBatch.Status, or "skipped" when another worker holds the batch or it is done
    inserted: int = 0
    updated: int = 0
    unchanged: int = 0  # not kept on the batch row: bars fetched again as they were stored
    off_session: int = 0  # not kept on the batch row either: rows sent outside the sessions, not stored
    not_found: int = 0
    retry: list[str] = field(default_factory=list)  # symbols that hit an outage, still pending


def sync_run_plan(
    *,
    timeframe: Timeframe,
    symbols: list[str] | None = None,
    days: int | None = None,
    batch_size: int | None = None,
    provider_name: str | None = None,
    trigger: str = "command",
) -> SyncRun:
    """Plan a sync of `symbols` (default: every active instrument): for each, the parts of the last `days` its
    coverage lacks (the tail only once a bar has closed since it was fetched), and symbols that need the same
    window cut into batches of `batch_size`, one provider request each. Nothing is fetched yet."""
    now = timezone.now()
    days = days or settings.MARKET_SYNC_DAYS
    batch_size = max(1, batch_size or settings.MARKET_SYNC_BATCH_SIZE)
    if symbols is None:
        symbols = list(Instrument.objects.filter(active=True).values_list("symbol", flat=True))
    symbols = sorted(set(symbols))
    intervals: dict[str, list[tuple[datetime, datetime]]] = {}
    provider_name = provider_name or settings.MARKET_DATA_PROVIDER
    source = get_provider(provider_name).name  # what the batches' provider records on what it fetches
    for symbol, covered_from, covered_to in CoverageInterval.objects.filter(
        series__timeframe=timeframe.value, source=source
    ).values_list("series__symbol", "covered_from", "covered_to"):
        intervals.setdefault(symbol, []).append((covered_from, covered_to))
    history_starts = dict(
        CandleSeries.objects.filter(
            timeframe=timeframe.value, history_starts_at__isnull=False, history_source=source
        ).values_list("symbol", "history_starts_at")
    )
    want_from = now - timedelta(days=days)
    floor = _lookback_floor(timeframe, now)
    if floor is not None:
        want_from = max(want_from, floor)
    calendars: dict[str, ExchangeCalendar | None] = {}
    by_window: dict[tuple[datetime, datetime], list[str]] = {}
    for symbol in symbols:
        exchange = exchange_of(symbol)
        if exchange not in calendars:
            try:
                calendars[exchange] = calendar_for_symbol(symbol)
            except UnknownExchange as exc:
                calendars[exchange] = None
                logger.warning("sync_run_unknown_exchange", exchange=exchange, error=str(exc))
        if calendars[exchange] is None:
            continue  # a catalogue typo: reported, and the other instruments still sync
        start = max(want_from, history_starts.get(symbol, want_from))
        for window in _sync_windows(
            spans=intervals.get(symbol, []),
            timeframe=timeframe,
            want_from=start,
            now=now,
            calendar=calendars[exchange],
            floor=floor,
        ):
            by_window.setdefault(window, []).append(symbol)
    with transaction.atomic():
        run = SyncRun.objects.create(
            timeframe=timeframe.value,
            provider=provider_name,
            days=days,
            batch_size=batch_size,
            trigger=trigger,
            symbols_total=len(symbols),
            planned_at=now,
        )
        batches = [
            SyncBatch(run=run, symbols=chunk, pending=chunk, start=start, end=end)
            for (start, end), members in sorted(by_window.items())
            for chunk in (members[i : i + batch_size] for i in range(0, len(members), batch_size))
        ]
        for number, batch in enumerate(batches, start=1):
            batch.number = number
        SyncBatch.objects.bulk_create(batches)
        run.batches_total = len(batches)
        run.save(update_fields=["batches_total"])
    logger.info(
        "sync_run_planned", run=run.pk, timeframe=timeframe.value, symbols=len(symbols), batches=len(batches)
    )
    return run


def _sync_windows(
    *,
    spans: list[tuple[datetime, datetime]],
    timeframe: Timeframe,
    want_from: datetime,
    now: datetime,
    calendar: ExchangeCalendar,
    floor: datetime | None,
) -> list[tuple[datetime, datetime]]:
    """The windows one symbol needs: the gaps of its coverage in [want_from, now), the tail re-fetched from a
    little before the last fetch (a bar then forming gets its final values) and only once a bar has closed since.
    Starts are rounded down to the UTC day so symbols fetched at slightly different times share a window."""
    latest_end = max((covered_to for _, covered_to in spans), default=None)
    windows = []
    for gap_from, gap_to in missing_ranges(spans, want_from, now):
        if gap_from == latest_end and gap_to == now:
            if not _bar_closed_since(calendar=calendar, timeframe=timeframe, since=gap_from, now=now):
                continue
            gap_from -= OVERLAP[timeframe]
        start = gap_from.replace(hour=0, minute=0, second=0, microsecond=0)
        if floor is not None:
            start = max(start, floor)
        windows.append((start, gap_to))
    return windows


def _bar_closed_since(
    *, calendar: ExchangeCalendar, timeframe: Timeframe, since: datetime, now: datetime
) -> bool:
    """Whether a bar of `timeframe` can have closed in (since, now] on the exchange's calendar: for daily and
    weekly bars, a session closed in between; intraday, at least one bar's length passed, or the bar forming at
    `since` closed (a bar boundary or the session's close lies in between)."""
    if timeframe.is_intraday:
        if now - since >= timeframe.spec.bar:
            return True
        days = {since.astimezone(calendar.tz).date(), now.astimezone(calendar.tz).date()}
        return any(
            since < bar_close(calendar, timeframe, opened_at) <= now
            for day in days
            for opened_at in calendar.session_bars(day, timeframe.spec.bar)
        )
    if now - since > timedelta(days=7):
        return True
    first, last = since.astimezone(calendar.tz).date(), now.astimezone(calendar.tz).date()
    return any(since < calendar.session_close(day) <= now for day in calendar.trading_days(first, last))


def sync_run_resume(*, run_id: int) -> int:
    """(Re)start a run: enqueue one task per batch not done (failed batches included; one a crashed worker left
    running once its claim is older than the task time limit), as a Celery group after commit. Batches already
    done are skipped, so running it again never fetches them twice. Returns how many batches were enqueued."""
    from market.tasks import sync_run_batch

    with transaction.atomic():
        run = SyncRun.objects.select_for_update().get(pk=run_id)
        run.batches.filter(status=SyncBatch.Status.FAILED).update(status=SyncBatch.Status.PENDING)
        batch_ids = list(_claimable(run.batches.all(), timezone.now()).values_list("pk", flat=True))
        run.started_at = timezone.now()
        run.finished_at = None
        run.save(update_fields=["started_at", "finished_at"])
        if batch_ids:
            transaction.on_commit(lambda: group(sync_run_batch.si(pk) for pk in batch_ids).apply_async())
    if not batch_ids:
        _sync_run_close_if_complete(run_id=run_id)
    logger.info("sync_run_started", run=run_id, batches=len(batch_ids))
    return len(batch_ids)


def _claimable(batches, now: datetime):
    """Batches a worker may take: pending, or running under a claim older than any task may run (its worker
    died)."""
    stale = now - timedelta(seconds=settings.CELERY_TASK_TIME_LIMIT)
    return batches.filter(
        Q(status=SyncBatch.Status.PENDING) | Q(status=SyncBatch.Status.RUNNING, claimed_at__lt=stale)
    )


def sync_batch_run(
    *, batch_id: int, last_attempt: bool = True, provider: Provider | None = None
) -> BatchRunResult:
    """Fetch a batch's pending symbols with one batch request and store each symbol's candles (idempotent
    upserts that record coverage and announce CandlesStored). Symbols the provider does not know, or sent
    unreadable data for, are recorded and not asked again; symbols that hit an outage stay pending, so a retry
    fetches only them, and fail the batch on the `last_attempt`. The batch finishing last closes the run."""
    now = timezone.now()
    if not _claimable(SyncBatch.objects.filter(pk=batch_id), now).update(
        status=SyncBatch.Status.RUNNING, claimed_at=now, attempts=F("attempts") + 1
    ):
        return BatchRunResult(batch_id=batch_id, status="skipped")
    batch = SyncBatch.objects.select_related("run").get(pk=batch_id)
    timeframe = Timeframe(batch.run.timeframe)
    provider = provider or get_provider(batch.run.provider)
    fetched_at = (
        timezone.now()
    )  # before the (long, multi-ticker) download: its bars are as of then at the latest
    try:
        fetched = provider.fetch_history_batch(batch.pending, timeframe, start=batch.start, end=batch.end)
        histories, errors = fetched.histories, dict(fetched.errors)
    except (ProviderError, ValueError) as exc:
        histories, errors = {}, dict.fromkeys(batch.pending, exc)
    inserted = updated = unchanged = off_session = 0
    for symbol, history in histories.items():
        result = _store_window(
            symbol=symbol,
            timeframe=timeframe,
            start=batch.start,
            end=batch.end,
            history=history,
            source=provider.name,
            fetched_at=fetched_at,
        )
        inserted += result.inserted
        updated += result.updated
        unchanged += result.unchanged
        off_session += result.off_session
    retry = sorted(symbol for symbol, error in errors.items() if isinstance(error, ProviderUnavailable))
    not_found = sum(isinstance(error, SymbolNotFound) for error in errors.values())
    if not retry:
        status = SyncBatch.Status.DONE
    else:
        status = SyncBatch.Status.FAILED if last_attempt else SyncBatch.Status.PENDING
    messages = {symbol: message for symbol, message in batch.errors.items() if symbol not in histories}
    messages.update({symbol: f"{type(error).__name__}: {error}" for symbol, error in errors.items()})
    SyncBatch.objects.filter(pk=batch_id).update(
        status=status,
        pending=retry,
        inserted=F("inserted") + inserted,
        updated=F("updated") + updated,
        not_found=F("not_found") + not_found,
        errors=messages,
        claimed_at=None,
        finished_at=None if status == SyncBatch.Status.PENDING else timezone.now(),
    )
    logger.info(
        "sync_batch_run",
        run=batch.run_id,
        batch=batch.number,
        status=status,
        symbols=len(batch.pending),
        inserted=inserted,
        updated=updated,
        unchanged=unchanged,
        off_session=off_session,
        not_found=not_found,
        retry=len(retry),
    )
    if status != SyncBatch.Status.PENDING:
        _sync_run_close_if_complete(run_id=batch.run_id)
    return BatchRunResult(
        batch_id=batch_id,
        status=status,
        inserted=inserted,
        updated=updated,
        unchanged=unchanged,
        off_session=off_session,
        not_found=not_found,
        retry=retry,
    )


def _sync_run_close_if_complete(*, run_id: int) -> None:
    """Mark the run finished once no batch is pending or running. Each batch commits its own status before
    taking the run's lock, so the last of two batches finishing together sees both done."""
    with transaction.atomic():
        run = SyncRun.objects.select_for_update().get(pk=run_id)
        busy = run.batches.filter(status__in=[SyncBatch.Status.PENDING, SyncBatch.Status.RUNNING]).exists()
        if run.finished_at is None and not busy:
            run.finished_at = timezone.now()
            run.save(update_fields=["finished_at"])
            logger.info("sync_run_finished", run=run_id)


def sync_run_inline(*, run_id: int, on_batch=None) -> list[BatchRunResult]:
    """Run a run's remaining batches in this process, one after another (no worker needed: development, the
    management command's --inline). An outage fails the batch at once; resuming the run retries it."""
    with transaction.atomic():
        run = SyncRun.objects.select_for_update().get(pk=run_id)
        run.batches.filter(status=SyncBatch.Status.FAILED).update(status=SyncBatch.Status.PENDING)
        run.started_at, run.finished_at = timezone.now(), None
        run.save(update_fields=["started_at", "finished_at"])
    results = []
    for batch_id in _claimable(SyncBatch.objects.filter(run_id=run_id), timezone.now()).values_list(
        "pk", flat=True
    ):
        results.append(sync_batch_run(batch_id=batch_id, last_attempt=True))
        if on_batch is not None:
            on_batch(results[-1])
    _sync_run_close_if_complete(run_id=run_id)
    return results
