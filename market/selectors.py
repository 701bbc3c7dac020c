"""Reads of market data, shaped for the API. Hot paths build plain dicts from values_list."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, time, timedelta, tzinfo
from typing import TYPE_CHECKING

import numpy as np
import psycopg
import structlog
from django.conf import settings
from django.core.cache import cache
from django.db import connection, transaction
from django.db.models import Count, Max, Q, QuerySet, Sum
from django.db.models.functions import Coalesce
from django.utils import timezone
from psycopg import pq
from psycopg.adapt import Loader

from market import resample
from market.adjust import (
    SERIES_NAMES,
    SHARE_COUNT_KINDS,
    Action,
    Adjustment,
    adjust_candles,
    day_factors,
    split_ratio_between_times,
)
from market.bars import bar_close
from market.caching import history_body_get, history_key, market_version, quote_cache_get
from market.columns import (
    BarColumns,
    columns_from_rows,
    columns_in_time_order,
    empty_columns,
)
from market.indicators import compute_indicators, parse_indicators, warmup_bars
from market.models import (
    BAR_FIELDS,
    CandleSeries,
    CorporateAction,
    DataIssue,
    Instrument,
    MarketData,
    SyncBatch,
    SyncRun,
)
from market.presentation import DAY_TIMEFRAMES, candle_objects, candles_json, local_seconds
from market.providers.base import CANDLE_COLUMNS, LookbackExceeded, Provider, empty_candles
from market.providers.errors import ProviderError
from market.services import (
    EnsureResult,
    candles_ensure,
    candles_ensure_nothing,
    quote_fetch,
    quotes_refresh,
    tick_text,
    utc_month_start,
    zone_name,
)
from market.sources import (
    calendar_for,
    calendar_for_symbol,
    currency_of,
    get_provider,
    listing_date_of,
    price_tick_for_symbol,
    provider_timeframes,
    time_zone_for_symbol,
)
from market.timeframes import BUILT_FROM, Timeframe
from tradingdash import offload
from tradingdash.cache import LocalTTLCache, cache_is_down, cache_set_after_response
from tradingdash.offload import ComputeUnavailable

if TYPE_CHECKING:
    import pandas as pd

logger = structlog.get_logger(__name__)

# The latest candles as columns (market.columns) in one row of arrays over a binary-protocol cursor: PostgreSQL
# aggregates the picked bars into one array per column and NumPy takes each array's bytes as they come
# (_ArrayColumnLoader), so no Python object is made per bar but a bar's source. A row per bar cost a tuple and
# eight objects each and then a pass to turn them into columns: 2.9 ms for 2,500 bars, of which PostgreSQL's own
# work was 0.45 ms; as arrays 0.6 ms in PostgreSQL and ~2 ms in all (bench/README.md, "Fourth pass"). Decoding
# text timestamps was the costly part of the ORM read before that. Times load as epoch seconds, truncated as
# the API shows them, from the microseconds a binary timestamptz is (_TimestampArrayLoader): exact, and
# PostgreSQL computes nothing per bar (date_part per bar was a quarter of its work). Constant SQL; values are
# parameters.
_PG_HISTORY_SQL = """
SELECT array_agg("timestamp"), array_agg(open_price), array_agg(high_price), array_agg(low_price),
       array_agg(close_price), array_agg(volume), array_agg(final), array_agg(source)
FROM (
    SELECT "timestamp", open_price, high_price, low_price, close_price, volume, final, source
    FROM market_marketdata
    WHERE symbol = %(symbol)s AND timeframe = %(timeframe)s
      AND (%(start)s::timestamptz IS NULL OR "timestamp" >= %(start)s::timestamptz)
      AND (%(end)s::timestamptz IS NULL OR "timestamp" < %(end)s::timestamptz)
    ORDER BY "timestamp" DESC
    LIMIT %(limit)s
) AS picked
"""
# The first `limit` bars from the start instead of the latest.
_PG_HISTORY_FROM_START_SQL = _PG_HISTORY_SQL.replace('ORDER BY "timestamp" DESC', 'ORDER BY "timestamp" ASC')


class _ArrayColumnLoader(Loader):
    """A one-dimensional PostgreSQL array of a fixed-size type without NULLs, in binary, as a NumPy array. The
    binary form is a header (dimensions, a NULL flag, the element type, then size and lower bound per
    dimension) and per element its length (int32) and its bytes, big-endian: one structured view reads them."""

    format = pq.Format.BINARY
    element: str  # NumPy's big-endian dtype of the element

    def load(self, data) -> np.ndarray:
        header = np.frombuffer(data, ">i4", count=3)
        dimensions, has_null = int(header[0]), int(header[1])
        if dimensions == 0:
            return np.empty(0, np.dtype(self.element).newbyteorder("="))
        if dimensions != 1 or has_null:
            raise psycopg.DataError(
                f"expected a one-dimensional array without NULLs, got {dimensions} dimension(s)"
            )
        count = int(np.frombuffer(data, ">i4", count=1, offset=12)[0])
        items = np.frombuffer(data, [("size", ">i4"), ("value", self.element)], count=count, offset=20)
        if (items["size"] != items.dtype["value"].itemsize).any():
            raise psycopg.DataError("array elements of an unexpected size")
        return items["value"].astype(items.dtype["value"].newbyteorder("="))


class _Int8ArrayLoader(_ArrayColumnLoader):
    element = ">i8"


class _Float8ArrayLoader(_ArrayColumnLoader):
    element = ">f8"


class _BoolArrayLoader(_ArrayColumnLoader):
    element = "?"


class _TimestampArrayLoader(_ArrayColumnLoader):
    """timestamptz[] as UTC epoch seconds (int64), truncated towards the past: a binary timestamptz is the
    microseconds since 2000-01-01 00:00 UTC."""

    element = ">i8"
    _EPOCH_2000 = 946_684_800
    _INFINITIES = (np.iinfo(np.int64).min, np.iinfo(np.int64).max)  # -infinity and infinity

    def load(self, data) -> np.ndarray:
        micros = super().load(data)
        if np.isin(micros, self._INFINITIES).any():
            raise psycopg.DataError("an infinite timestamp has no epoch seconds")
        return micros // 1_000_000 + self._EPOCH_2000


# By the arrays' type OIDs (int8[], float8[], bool[], timestamptz[]): psycopg takes a name such as "int8[]" as the
# element's.
_ARRAY_LOADERS = {
    1016: _Int8ArrayLoader,
    1022: _Float8ArrayLoader,
    1000: _BoolArrayLoader,
    1185: _TimestampArrayLoader,
}


def _binary_cursor(*, array_columns: bool = False):
    """A server-side-binding, binary-result psycopg cursor on Django's connection, wrapped like Django's own
    (query logging, execute wrappers). Django's cursors bind client-side, which cannot return binary results.
    With `array_columns`, arrays of int8, float8, bool and timestamptz (as epoch seconds) load as NumPy arrays
    (on this cursor only)."""
    connection.close_if_health_check_failed()
    connection.ensure_connection()
    raw = psycopg.Cursor(connection.connection)
    raw.format = pq.Format.BINARY
    if array_columns:
        for oid, loader in _ARRAY_LOADERS.items():
            raw.adapters.register_loader(oid, loader)
    return connection.make_debug_cursor(raw) if connection.queries_logged else connection.make_cursor(raw)


def _history_columns(
    *,
    symbol: str,
    timeframe: Timeframe,
    start: datetime | None,
    end: datetime | None,
    limit: int,
    from_start: bool = False,
) -> BarColumns:
    """Stored bars in time order: the latest `limit` in [start, end), or with `from_start` the first `limit`."""
    if connection.vendor == "postgresql":
        with _binary_cursor(array_columns=True) as cursor:
            cursor.execute(
                _PG_HISTORY_FROM_START_SQL if from_start else _PG_HISTORY_SQL,
                {"symbol": symbol, "timeframe": timeframe.value, "start": start, "end": end, "limit": limit},
            )
            time, open_, high, low, close, volume, final, source = cursor.fetchone()
        if time is None:  # no bar: array_agg of nothing is NULL
            return empty_columns()
        # An aggregate sees the rows in the order its subquery sorted them in practice, which SQL does not
        # promise: the times say.
        return columns_in_time_order(
            descending=not from_start,
            time=time, open=open_, high=high, low=low, close=close, volume=volume, final=final, source=source,
        )  # fmt: skip
    stored = MarketData.objects.filter(symbol=symbol, timeframe=timeframe.value)
    if start is not None:
        stored = stored.filter(timestamp__gte=start)
    if end is not None:
        stored = stored.filter(timestamp__lt=end)
    rows = list(stored.order_by("timestamp" if from_start else "-timestamp").values_list(*BAR_FIELDS)[:limit])
    bars = columns_from_rows(rows)
    return bars if from_start else bars.reversed()


def _candles_json(
    *, symbol: str, timeframe: Timeframe, bars: BarColumns, columns: bool = False
) -> tuple[int, bytes, str | None]:
    """(count, JSON of the candles in time order, comma-joined sources): times in the exchange's clock, daily
    and weekly bars with their trading day, prices at the instrument's tick (market.presentation)."""
    body = candles_json(
        bars,
        tz=time_zone_for_symbol(symbol),
        tick=price_tick_for_symbol(symbol),
        by_day=timeframe.value in DAY_TIMEFRAMES,
        table=columns,
    )
    return len(bars), body, bars.sources


@dataclass(frozen=True, kw_only=True)
class RenderedCandles:
    """The latest candles of a daily series as their rendered JSON array, with what the response says of them."""

    count: int
    body: bytes  # the JSON array
    sources: str | None  # the distinct sources, sorted and comma-joined
    first_time: int  # the first and last bars' opens, UTC epoch seconds
    last_time: int
    last_final: bool


_RENDERED_MONTHS_SQL = """
WITH span AS (  -- the months to read: back from the newest one holding bars before `end`
    SELECT (max(month) - make_interval(months => %(months)s))::date AS first
    FROM market_renderedmonth
    WHERE symbol = %(symbol)s AND timeframe = %(timeframe)s AND (%(last)s::date IS NULL OR month <= %(last)s::date)
),
held AS (  -- the row versions this process holds the contents of (_months_held): not sent again
    SELECT * FROM unnest(%(held_months)s::text::date[], %(held_xmins)s::text::bigint[]) AS held (month, xmin)
)
SELECT month.month, month.stale, month.time_zone, month.tick, month.xmin::text::bigint,
       CASE WHEN held.month IS NULL THEN month.times END, CASE WHEN held.month IS NULL THEN month.ends END,
       CASE WHEN held.month IS NULL THEN month.finals END, CASE WHEN held.month IS NULL THEN month.sources END,
       CASE WHEN held.month IS NULL THEN month.body END
FROM market_renderedmonth AS month CROSS JOIN span
LEFT JOIN held ON held.month = month.month AND held.xmin = month.xmin::text::bigint
WHERE month.symbol = %(symbol)s AND month.timeframe = %(timeframe)s AND month.month >= span.first
  AND (%(last)s::date IS NULL OR month.month <= %(last)s::date)
UNION ALL  -- one row without a month: whether months before the span hold bars too (in `stale`'s column)
SELECT NULL, min(month) < (SELECT first FROM span), NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL
FROM market_renderedmonth
WHERE symbol = %(symbol)s AND timeframe = %(timeframe)s
"""
# Months read per `limit` bars: a month of daily bars holds 19 sessions or more on the exchanges here. A series
# sparser than that (a listing's first month, gaps) is read the usual way. The months are a range from the newest,
# not "the latest N" (ORDER BY ... LIMIT): sorting ~120 rows of 3 KB each in PostgreSQL cost more than the rest of
# the read; Python sorts them by month.
_BARS_PER_MONTH = 19


# The contents (times, ends, finals, sources, body) of the current rendered months this process read last, per
# symbol: ({month: (xmin, contents)}, the months and xmins as array literals). A read names the row versions it holds and PostgreSQL sends the contents of
# the others only: ~400 KB of a 10-year read that it would otherwise decompress and send each time (bench/README.md,
# "Eleventh look"). A row's xmin changes with every write of it (an update, the triggers marking it stale, a delete
# and insert), so a row whose xmin is the one held is the row held. Each read keeps only the months it read (each
# version checked by it), and the entry of a symbol not read for the TTL goes: well short of the 2^32 transactions
# after which an xmin could recur. Only reads outside a caller's transaction use it: that transaction's own writes
# of a row all carry its one xid.
# At most 8 symbols (~0.46 MB each for 10 years of daily bars): ~4 MB of a web worker's 160 MiB budget.
_months_held = LocalTTLCache(ttl_setting="MARKET_DATA_CACHE_TTL", maxsize=8)


class _NeedsSnapshot(Exception):
    """A month of the read must be rendered from its bars: a second statement."""


def _rendered_latest(*, symbol: str, end: datetime | None, limit: int) -> RenderedCandles | None:
    """The latest `limit` daily candles opening before `end`, unadjusted, from the stored rendered months
    (market.models.RenderedMonth): the rows of months that are current as they are, the bars of the others (stale,
    or rendered in another zone or at another tick) read and rendered here. None when the months read do not hold
    `limit` bars but more months may (the caller reads the bars), or when there is no bar.

    The months' rows and a stale month's bars are two statements: a write committed between them (a repair of
    bars in two months, a bar moved across a month's edge) would show in one month and not in the other, or the
    same bar twice. Such a read is made again in one REPEATABLE READ snapshot, both statements seeing the same
    commits; inside a caller's transaction its isolation can no longer change, and the read is made as it is."""
    if connection.in_atomic_block:
        return _rendered_latest_read(symbol=symbol, end=end, limit=limit, render_stale=True, held=False)
    try:
        return _rendered_latest_read(symbol=symbol, end=end, limit=limit, render_stale=False)
    except _NeedsSnapshot:
        with transaction.atomic():
            with connection.cursor() as cursor:
                cursor.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
            return _rendered_latest_read(symbol=symbol, end=end, limit=limit, render_stale=True)


def _rendered_latest_read(
    *, symbol: str, end: datetime | None, limit: int, render_stale: bool, held: bool = True
) -> RenderedCandles | None:
    """_rendered_latest's read; _NeedsSnapshot before reading a month's bars unless `render_stale`. With `held`,
    the months' contents this process holds (_months_held) are not sent again."""
    tz, tick = time_zone_for_symbol(symbol), price_tick_for_symbol(symbol)
    zone, tick_as_text = zone_name(tz), tick_text(tick)
    end_micros = _epoch_micros(end) if end is not None else None
    last = (
        (end - timedelta(microseconds=1)).astimezone(UTC).date().replace(day=1) if end is not None else None
    )
    holding, held_months, held_xmins = (_months_held.get(symbol) if held else None) or ({}, "{}", "{}")
    with _binary_cursor() as cursor:
        cursor.execute(
            _RENDERED_MONTHS_SQL,
            {
                "symbol": symbol,
                "timeframe": Timeframe.D1.value,
                "last": last,
                "months": limit // _BARS_PER_MONTH + 1,
                "held_months": held_months,  # as literals: psycopg's dumping of two lists cost 0.2 ms
                "held_xmins": held_xmins,
            },
        )
        found = cursor.fetchall()
    older = next(row[1] for row in found if row[0] is None)  # the UNION's row without a month
    rows, kept, sent = (
        [],
        {},
        False,
    )  # kept: the current months just read, each version as checked by this read
    for month, stale, row_zone, row_tick, xmin, *contents in found:
        if month is None:
            continue
        if contents[4] is None:  # not sent: the version held
            contents = holding[month][1]
        else:
            sent = True
        if not stale and row_zone == zone and row_tick == tick_as_text:
            kept[month] = (xmin, contents)
        rows.append((month, stale, row_zone, row_tick, *contents))
    if held:
        if sent or kept.keys() != holding.keys():
            held_months = "{" + ",".join(month.isoformat() for month in kept) + "}"
            held_xmins = "{" + ",".join(str(xmin) for xmin, _ in kept.values()) + "}"
        _months_held.set(symbol, (kept, held_months, held_xmins))
    rows.sort(key=lambda row: row[0], reverse=True)
    pieces = []  # newest first: (body, times, finals, first and stop of the bars kept, sources) of each month
    count = 0
    for month, stale, row_zone, row_tick, times, ends, finals, sources, body in rows:
        if stale or row_zone != zone or row_tick != tick_as_text:
            if not render_stale:
                raise _NeedsSnapshot
            times, ends, finals, sources, body = _month_rendered_now(symbol, month, end, tz, tick)
        bars = len(ends) // 4
        stop = bars
        if end_micros is not None and month == last:  # only the month holding `end` has bars from it on
            stop = int(np.searchsorted(np.frombuffer(times, dtype="<i8") * _MICROS, end_micros))
        first = max(0, stop - (limit - count))
        if stop > first:
            if (
                first or stop < bars
            ):  # cut: from the end of the object before `first` to the end of the last kept
                body = body[_int_at(ends, first - 1, 4) + 1 if first else 0 : _int_at(ends, stop - 1, 4)]
                sources = "\n".join(sources.split("\n")[first:stop])
            pieces.append((body, times, finals, first, stop, sources))
            count += stop - first
        if count == limit:
            break
    else:
        if not count or older:  # none, or months before those read hold more
            return None
    pieces.reverse()
    _, times, _, first, _, _ = pieces[0]
    _, last_times, last_finals, _, stop, _ = pieces[-1]
    return RenderedCandles(
        count=count,
        body=b"[" + b",".join(piece[0] for piece in pieces) + b"]",
        sources=",".join(sorted(_distinct_lines(piece[5] for piece in pieces))) or None,
        first_time=_int_at(times, first, 8),
        last_time=_int_at(last_times, stop - 1, 8),
        last_final=bool(last_finals[stop - 1]),
    )


def _int_at(packed: bytes, index: int, size: int) -> int:
    """The `index`-th little-endian signed integer of `size` bytes in `packed`."""
    return int.from_bytes(packed[index * size : (index + 1) * size], "little", signed=True)


def _distinct_lines(texts) -> set[str]:
    """The distinct lines of the texts; a text seen before is not split again (most months read alike)."""
    lines, seen = set(), set()
    for text in texts:
        if text not in seen:
            seen.add(text)
            lines.update(text.split("\n"))
    return lines


def _month_rendered_now(symbol: str, month: date, end: datetime | None, tz: tzinfo, tick):
    """(times, ends, finals, sources, body) of the daily bars of the UTC month `month` opening before `end`,
    read and rendered now, packed as RenderedMonth stores them."""
    month_end = utc_month_start(month, after=1)
    bars = _history_columns(
        symbol=symbol,
        timeframe=Timeframe.D1,
        start=utc_month_start(month),
        end=month_end if end is None else min(end, month_end),
        limit=366,
        from_start=True,
    )
    body, ends = candle_objects(bars, tz=tz, tick=tick, by_day=True)
    # Packed as a stored row is (RenderedMonth).
    return (
        bars.time.astype("<i8").tobytes(),
        ends.astype("<i4").tobytes(),
        bars.final.astype(np.bool_).tobytes(),
        "\n".join(bars.source),
        body,
    )


def _rendered_unadjusted(*, symbol: str, first_time: int, adjust: Adjustment) -> bool:
    """Whether the `adjust` adjustment changes no bar from the one opening at `first_time` on: no action it
    applies goes ex after that bar's day, through today (_adjusted)."""
    tz = time_zone_for_symbol(symbol)
    today = timezone.now().astimezone(tz).date()
    first_day = datetime.fromtimestamp(first_time, tz).date()
    return not any(
        first_day < action.ex_date <= today for action in corporate_actions(symbol=symbol, adjust=adjust)
    )


def _history_candles_json(
    *,
    symbol: str,
    timeframe: Timeframe,
    start: datetime | None,
    end: datetime | None,
    limit: int,
    from_start: bool = False,
    columns: bool = False,
    adjust: Adjustment = "none",
) -> tuple[int, bytes, str | None]:
    """(count, JSON array of candle objects in time order, comma-joined sources): the latest `limit` stored
    candles, or with `from_start` the first `limit`, with the `adjust` corporate-action adjustment applied."""
    bars = _history_columns(
        symbol=symbol, timeframe=timeframe, start=start, end=end, limit=limit, from_start=from_start
    )
    bars = _adjusted(symbol=symbol, bars=bars, adjust=adjust, tz=time_zone_for_symbol(symbol))
    return _candles_json(symbol=symbol, timeframe=timeframe, bars=bars, columns=columns)


def _adjusted(*, symbol: str, bars: BarColumns, adjust: Adjustment, tz: tzinfo) -> BarColumns:
    """Stored bars with the factors of the `adjust` actions after each bar applied (the bars themselves when
    none applies)."""

    # Today's share count: an action going ex on a later day (staff enter splits ahead) has changed no price yet.
    today = timezone.now().astimezone(tz).date()
    actions = (
        [a for a in corporate_actions(symbol=symbol, adjust=adjust) if a.ex_date <= today]
        if len(bars)
        else []
    )
    if not actions:
        return bars
    days = local_seconds(bars.time, tz).astype("datetime64[s]").astype("datetime64[D]")
    prices, volumes = day_factors(days, bars.close, actions, mode=adjust)
    return bars.scaled(prices, volumes)


# Corporate actions per (symbol, version, adjustment), kept per process: every cache-miss read of a symbol asks
# for them, and they change only where the symbol's version is bumped (storing actions or daily bars, staff
# edits: market.services.market_reads_invalidate), so an entry under a version is as true as a body cached
# under it. Not kept while Redis is down: versions are not shared between processes then.
_actions_local = LocalTTLCache(ttl_setting="MARKET_DATA_CACHE_TTL")


def corporate_actions(*, symbol: str, adjust: Adjustment = "all") -> list[Action]:
    """The symbol's stored corporate actions that the `adjust` adjustment applies, oldest first. A dividend
    carries the stored daily close of the session before its ex-date, so its factor does not depend on the
    window read."""
    if adjust == "none":
        return []
    key = (symbol, market_version(symbol), adjust)
    actions = _actions_local.get(key)
    if actions is None:
        actions = tuple(_corporate_actions_stored(symbol=symbol, adjust=adjust))
        if not cache_is_down():
            _actions_local.set(key, actions)
    return list(actions)


def _corporate_actions_stored(*, symbol: str, adjust: Adjustment) -> list[Action]:
    rows = CorporateAction.objects.filter(symbol=symbol).order_by("ex_date", "kind")
    if adjust == "splits":
        rows = rows.filter(kind__in=SHARE_COUNT_KINDS)
    actions = [
        Action(ex_date=ex_date, kind=kind, ratio=ratio, amount=amount, factor=factor)
        for ex_date, kind, ratio, amount, factor in rows.values_list(
            "ex_date", "kind", "ratio", "amount", "factor"
        )
    ]
    if any(action.kind == CorporateAction.Kind.DIVIDEND for action in actions):
        tz = time_zone_for_symbol(symbol)
        actions = [
            _with_previous_close(symbol, action, tz)
            if action.kind == CorporateAction.Kind.DIVIDEND
            else action
            for action in actions
        ]
    return actions


def _with_previous_close(symbol: str, action: Action, tz) -> Action:
    previous_close = (
        MarketData.objects.filter(
            symbol=symbol,
            timeframe=Timeframe.D1.value,
            timestamp__lt=datetime.combine(action.ex_date, time(), tz),
        )
        .order_by("-timestamp")
        .values_list("close_price", flat=True)
        .first()
    )
    return Action(
        ex_date=action.ex_date, kind=action.kind, amount=action.amount, previous_close=previous_close
    )


def _timeframes_served(provider: Provider | None) -> frozenset[Timeframe]:
    """The timeframes `provider` (the configured one when None) serves; in a web worker that hands fetches to
    compute workers, without building (importing) the configured one (market.sources.provider_timeframes)."""
    if provider is not None:
        return provider.timeframes
    return provider_timeframes() if offload.configured() else get_provider().timeframes


def _built_from(
    *, symbol: str, timeframe: Timeframe, start: datetime | None, provider: Provider | None
) -> Timeframe | None:
    """The stored timeframe to build `timeframe` from on this read, None to read its own stored bars: weeks and
    months from days, 4H from 15m/5m, 1H from them only when the provider lacks 1H or `start` lies beyond its
    lookback (Yahoo: 730 days). Of several finer ones, the first the symbol has a series of."""
    parts = BUILT_FROM.get(timeframe)
    if not parts:
        return None
    served = timeframe.is_stored and timeframe.is_intraday and not _beyond_lookback(timeframe, start)
    if served and timeframe in _timeframes_served(provider):
        return None
    if len(parts) == 1:
        return parts[0]
    have = set(
        CandleSeries.objects.filter(symbol=symbol, timeframe__in=[p.value for p in parts]).values_list(
            "timeframe", flat=True
        )
    )
    return next((part for part in parts if part.value in have), parts[0])


def _parts_span(
    timeframe: Timeframe, start: datetime | None, end: datetime | None, calendar
) -> tuple[datetime | None, datetime | None]:
    """Where the finer bars of the `timeframe` bars opening in [start, end) lie: whole periods, from the
    midnight opening the first period's first trading day to the one closing the last period's last trading day
    (so building a week asks nothing of the provider for its weekend)."""

    def midnight(day: date) -> datetime:
        return datetime.combine(day, time(), calendar.tz)

    def period(when: datetime) -> tuple[date, date, list[date]]:
        first, last = resample.period_days(timeframe.value, when.astimezone(calendar.tz).date())
        return first, last, calendar.trading_days(first, last)

    span_from = span_to = None
    if start is not None:
        first, _, days = period(start)
        span_from = midnight(days[0] if days else first)
    if end is not None:
        _, last, days = period(end - timedelta(microseconds=1))
        span_to = midnight((days[-1] if days else last) + timedelta(days=1))
    return span_from, span_to


def _derived_values(
    *,
    symbol: str,
    timeframe: Timeframe,
    part: Timeframe,
    start: datetime | None,
    end: datetime | None,
    limit: int,
    from_start: bool,
    adjust: Adjustment = "none",
    since: int | None = None,
) -> BarColumns:
    """`timeframe` bars opening in [start, end) built from the stored `part` bars of whole periods
    (market/resample.py); the source of each is that of its parts. The parts are adjusted for `adjust` before
    they are built into bars (a split inside a week moves the days before it). `since`: where the part series
    begins (_series_begins); its sessions before it are not missing."""
    calendar = calendar_for_symbol(symbol)
    read_from, read_to = _parts_span(timeframe, start, end, calendar)
    # Enough parts for `limit` bars plus one that the cut may have left incomplete (dropped below).
    most = _parts_needed(timeframe, part, limit)
    parts = _history_columns(
        symbol=symbol, timeframe=part, start=read_from, end=read_to, limit=most, from_start=from_start
    )
    read = len(parts)
    if not read:
        return empty_columns()
    parts = _adjusted(symbol=symbol, bars=parts, adjust=adjust, tz=calendar.tz)
    if timeframe.spec.bar >= timedelta(days=1):
        bars = resample.daily_to(parts, timeframe.value, calendar, since=since)
    else:
        # A stray bar outside the sessions is in no hour.
        parts = parts.take(np.flatnonzero(calendar.session_mask_seconds(parts.time)))
        bars = resample.intraday_to(
            parts, part=part.spec.bar, bar=timeframe.spec.bar, calendar=calendar, since=since
        )
    if read == most and len(bars):
        bars = bars.take(
            np.arange(len(bars) - 1) if from_start else np.arange(1, len(bars))
        )  # the bar at the cut may lack parts
    kept = np.ones(len(bars), dtype=bool)
    if start is not None:
        kept &= bars.time * _MICROS >= _epoch_micros(start)
    if end is not None:
        kept &= bars.time * _MICROS < _epoch_micros(end)
    chosen = np.flatnonzero(kept)
    bars = bars.take(chosen[:limit] if from_start else chosen[-limit:])
    if not len(bars):
        return empty_columns()
    last = datetime.fromtimestamp(int(bars.time[-1]), UTC) + timedelta(microseconds=1)
    _, last_end = _parts_span(timeframe, None, last, calendar)
    used = (parts.time >= bars.time[0]) & (parts.time * _MICROS < _epoch_micros(last_end))
    source = ",".join(sorted({parts.source[i] for i in np.flatnonzero(used).tolist()}))
    return replace(bars, source=[source] * len(bars))


_MICROS = 1_000_000
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def _epoch_micros(when: datetime) -> int:
    return (when - _EPOCH) // timedelta(microseconds=1)


def _ensure_parts(
    *,
    symbol: str,
    timeframe: Timeframe,
    part: Timeframe,
    start: datetime | None,
    end: datetime | None,
    limit: int,
    provider: Provider | None,
) -> EnsureResult:
    """Fetch the never-fetched `part` bars of the periods [start, end) touches, as far back as the provider
    serves `part` (older ones are built from what is stored); without `start`, as many as _derived_values reads
    for the latest `limit` bars."""
    want_from, want_to = _parts_span(timeframe, start, end, calendar_for_symbol(symbol))
    lookback = part.spec.max_lookback
    if lookback is not None and want_from is not None:
        floor = timezone.now() - lookback + timedelta(minutes=1)
        if want_to is not None and want_to <= floor:  # all beyond the provider's reach
            return candles_ensure_nothing(symbol=symbol, timeframe=part, provider=provider)
        want_from = max(want_from, floor)
    return candles_ensure(
        symbol=symbol,
        timeframe=part,
        start=want_from,
        end=want_to,
        provider=provider,
        limit=None if want_from is not None else _parts_needed(timeframe, part, limit),
    )


def _series_begins(*, symbol: str, part: Timeframe, ensured: EnsureResult) -> int | None:
    """Where the stored `part` series of `symbol` begins, in UTC epoch seconds: no part before it can ever be
    stored, so a derived bar's sessions (slots) before it are not missing. The latest of the listing date
    (the catalogue's, read per process), where the provider's history is known to start, and, for parts a
    provider serves only so far back (Yahoo's 60 days of 15m), the earliest time it was asked for once that is
    beyond its reach. None when nothing is known: every session counts, as one merely not fetched yet must.
    On the listing day itself, intraday parts begin with the first one stored that day: a new listing trades from
    its first match (an NSE IPO after its special pre-open, at 10:00), so the slots of that session before it could
    never have a part, and the first 4H bar of a stock listed at 10:00 would otherwise never be final."""
    starts = []
    listed = listing_date_of(symbol)
    if listed is not None:
        begins = datetime.combine(listed, time(), calendar_for_symbol(symbol).tz)
        if part.is_intraday:
            first = (
                MarketData.objects.filter(
                    symbol=symbol,
                    timeframe=part.value,
                    timestamp__gte=begins,
                    timestamp__lt=begins + timedelta(days=1),
                )
                .order_by("timestamp")
                .values_list("timestamp", flat=True)
                .first()
            )
            begins = first or begins
        starts.append(begins)
    if ensured.history_start is not None:
        starts.append(ensured.history_start)
    lookback = part.spec.max_lookback
    floor = timezone.now() - lookback + timedelta(minutes=1) if lookback is not None else None
    if floor is not None and ensured.fetched_from is not None and ensured.fetched_from <= floor:
        starts.append(ensured.fetched_from)
    return int(max(starts).timestamp()) if starts else None


def _parts_needed(timeframe: Timeframe, part: Timeframe, limit: int) -> int:
    """How many `part` bars a read of `limit` `timeframe` bars takes: enough for one more, which the cut may
    leave incomplete."""
    return (limit + 1) * math.ceil(timeframe.spec.bar / part.spec.bar)


def candles_history_key(
    *,
    symbol: str,
    timeframe: Timeframe,
    start: datetime | None = None,
    end: datetime | None = None,
    limit: int = 500,
    order: str = "desc",
    format: str = "rows",
    adjust: Adjustment = "splits",
) -> str:
    """The cache key of candles_history's body for the same arguments, computed without a query (async views
    read it without a thread). Which finer timeframe a derived read is built from is not in it: that follows the
    stored series, and storing any bumps the symbol's version, which is; only the lookback cut-off, which moves
    with the clock, is."""
    from_start = start is not None and order == "asc"
    parts = (
        start and start.isoformat(),
        end and end.isoformat(),
        limit,
        from_start,
        format,
        adjust,
        _beyond_lookback(timeframe, start),
    )
    return history_key(symbol, timeframe.value, *parts)


def _beyond_lookback(timeframe: Timeframe, start: datetime | None) -> bool:
    """`start` lies beyond how far back providers serve the (intraday) timeframe (Yahoo's 1H: 730 days)."""
    lookback = timeframe.spec.max_lookback
    return start is not None and lookback is not None and start < timezone.now() - lookback


def candles_history(
    *,
    symbol: str,
    timeframe: Timeframe,
    start: datetime | None = None,
    end: datetime | None = None,
    limit: int = 500,
    order: str = "desc",
    format: str = "rows",
    adjust: Adjustment = "splits",
    provider: Provider | None = None,
) -> bytes:
    """`limit` candles in [start, end), in time order, as the rendered JSON response body: the first ones from
    `start` with order "asc", else the latest; adjusted at read time for the `adjust` corporate actions (stored
    candles are as traded). Fetches a never-fetched range once first. Timeframes the provider lacks (or lacks
    that far back) are built from finer stored bars, fetched likewise (`derived_from`). The rendered bytes are
    cached (under the symbol's version, which storing a new action bumps): rendering 2,500 candles costs more
    than reading them (bench/README.md)."""
    from_start = start is not None and order == "asc"
    part = _built_from(symbol=symbol, timeframe=timeframe, start=start, provider=provider)
    query = {"start": start, "end": end, "limit": limit, "order": order, "format": format, "adjust": adjust}
    key = candles_history_key(symbol=symbol, timeframe=timeframe, **query)
    cached = history_body_get(key)
    if cached is not None:
        return cached
    if part is None:
        ensured = candles_ensure(
            symbol=symbol, timeframe=timeframe, start=start, end=end, provider=provider, limit=limit
        )
    else:
        ensured = _ensure_parts(
            symbol=symbol,
            timeframe=timeframe,
            part=part,
            start=start,
            end=end,
            limit=limit,
            provider=provider,
        )
    if ensured.fetched:
        # What we stored bumped the version.
        key = candles_history_key(symbol=symbol, timeframe=timeframe, **query)
    # The key is fixed before the read: a sync committing after this point bumps the version, so what we read
    # is cached under the older version at worst, never old candles under the new one.
    rendered = (
        _rendered_latest(symbol=symbol, end=end, limit=limit)
        if part is None and timeframe == Timeframe.D1 and start is None and format == "rows"
        and connection.vendor == "postgresql"
        else None
    )  # fmt: skip
    if rendered is not None and (
        adjust == "none" or _rendered_unadjusted(symbol=symbol, first_time=rendered.first_time, adjust=adjust)
    ):
        count, candles, sources = rendered.count, rendered.body, rendered.sources
        last = (rendered.last_time, rendered.last_final)
    else:
        window = {"start": start, "end": end, "limit": limit, "from_start": from_start}
        if part is None:
            bars = _history_columns(symbol=symbol, timeframe=timeframe, **window)
            bars = _adjusted(symbol=symbol, bars=bars, adjust=adjust, tz=time_zone_for_symbol(symbol))
        else:
            since = _series_begins(symbol=symbol, part=part, ensured=ensured)
            bars = _derived_values(
                symbol=symbol, timeframe=timeframe, part=part, adjust=adjust, since=since, **window
            )
        count, candles, sources = _candles_json(
            symbol=symbol, timeframe=timeframe, bars=bars, columns=format == "columns"
        )
        last = (int(bars.time[-1]), bool(bars.final[-1])) if len(bars) else None
    meta = {
        "symbol": symbol,
        "timeframe": timeframe.value,
        "source": sources,
        "derived_from": part and part.value,
        "adjust": adjust,
        "series": SERIES_NAMES[adjust],
        "count": count,
        "stale": ensured.stale,
    }
    body = (
        (json.dumps(meta, ensure_ascii=False, separators=(",", ":"))[:-1] + ',"candles":').encode()
        + candles
        + b"}"
    )
    if not ensured.stale:
        # For the next reader, once this one has its answer (tradingdash.after_response).
        seconds = _body_seconds(symbol=symbol, timeframe=timeframe, last=last, adjust=adjust)
        cache_set_after_response(key, body, seconds)
    return body


def _body_seconds(
    *, symbol: str, timeframe: Timeframe, last: tuple[int, bool] | None, adjust: Adjustment
) -> int:
    """How long a rendered body may be served: MARKET_DATA_CACHE_TTL, or until its last bar closes when it is
    still forming (a second after), so that no read after the close is answered with the bar's values from
    before it: the next one re-fetches the tail (candles_ensure) and shows them final. Never past the next
    ex-date of an `adjust` action (_until_next_ex_date)."""
    if last is None or last[1]:
        seconds = settings.MARKET_DATA_CACHE_TTL
    else:
        seconds = _forming_bar_seconds(
            symbol=symbol, timeframe=timeframe, opened=datetime.fromtimestamp(last[0], UTC)
        )
    return min(seconds, _until_next_ex_date(symbol=symbol, adjust=adjust))


def _until_next_ex_date(*, symbol: str, adjust: Adjustment) -> int:
    """Seconds until the midnight (a second after) opening the next ex-date of the symbol's `adjust` actions, in
    its exchange's clock; MARKET_DATA_CACHE_TTL at most. An action staff entered ahead adjusts reads from that
    midnight on (_adjusted) with nothing written, so no version bump: a read cached before must not outlive it."""
    ttl = settings.MARKET_DATA_CACHE_TTL
    actions = corporate_actions(symbol=symbol, adjust=adjust)
    if not actions:
        return ttl
    tz = time_zone_for_symbol(symbol)
    now = timezone.now()
    today = now.astimezone(tz).date()
    upcoming = [action.ex_date for action in actions if action.ex_date > today]
    if not upcoming:
        return ttl
    midnight = datetime.combine(min(upcoming), time(), tz)
    return int(min(ttl, max(1, math.ceil((midnight - now).total_seconds()) + 1)))


def _forming_bar_seconds(*, symbol: str, timeframe: Timeframe, opened: datetime) -> int:
    """Seconds until the bar opened at `opened` closes (and one more), at most MARKET_DATA_CACHE_TTL."""
    closes = bar_close(calendar_for_symbol(symbol), timeframe, opened)
    ttl = settings.MARKET_DATA_CACHE_TTL
    return int(min(ttl, max(1, math.ceil((closes - timezone.now()).total_seconds()) + 1)))


def _quote_as_of(symbol: str, stored: dict, *, now: datetime) -> datetime:
    """When the stored quote's price was last true: its daily bar's close on the symbol's exchange calendar (15:30
    IST; 16:00 in New York, whatever its UTC offset that day), or, for a bar stored before that close (a forming
    day), when it was fetched: its values are as of then, however long ago."""
    ended = bar_close(calendar_for_symbol(symbol), Timeframe.D1, stored["timestamp"])
    if not stored["final"]:
        ended = min(ended, stored["fetched"])
    return min(ended, now)


def _quote_from_store(symbol: str) -> dict | None:
    """The last stored daily close against the one before it, for when the provider is down."""
    rows = list(
        MarketData.objects.filter(symbol=symbol, timeframe=Timeframe.D1)
        .order_by("-timestamp")
        .values_list(
            "timestamp",
            "open_price",
            "high_price",
            "low_price",
            "close_price",
            "volume",
            "source",
            "final",
            "updated_at",
        )[:2]
    )
    if not rows:
        return None
    ts, o, h, lo, c, v, source, final, fetched = rows[0]
    previous = (
        rows[1][4] / split_ratio_between_bars(symbol=symbol, earlier=rows[1][0], later=ts)
        if len(rows) > 1
        else None
    )
    change = c - previous if previous is not None else None
    return {
        "symbol": symbol,
        "price": c,
        "change": change,
        "change_percent": change / previous * 100 if change is not None and previous else None,
        "open": o,
        "high": h,
        "low": lo,
        "previous_close": previous,
        "volume": v,
        "timestamp": ts,
        "currency": _currency(symbol),
        "source": source,
        "final": final,
        "fetched": fetched,
    }


def split_ratio_between_bars(*, symbol: str, earlier: datetime, later: datetime) -> float:
    """The ratio of the splits and bonus issues going ex after the day of the bar opening at `earlier`, through
    the day of the one opening at `later`: what a price of the earlier bar is divided by to compare it with one
    of the later (a split between yesterday's close and today's price is no change of price)."""
    tz = time_zone_for_symbol(symbol)
    if earlier.astimezone(tz).date() >= later.astimezone(tz).date():
        return 1.0
    return split_ratio_between_times(
        corporate_actions(symbol=symbol, adjust="splits"), earlier=earlier, later=later, tz=tz
    )


def _currency(symbol: str) -> str:
    return currency_of(symbol)


def _serialize_quote(payload: dict) -> dict:
    ts = payload["timestamp"]
    shown = {key: value for key, value in payload.items() if key not in ("final", "fetched")}
    return {**shown, "timestamp": ts.isoformat() if isinstance(ts, datetime) else ts}


def quote_get(
    *, symbol: str, provider: Provider | None = None, unavailable: ComputeUnavailable | None = None
) -> dict:
    """Latest quote: from the cache, else the provider (cached briefly while its exchange is open, longer while
    it is closed but never past its next open: market.services.quote_seconds), else, when the provider fails or
    has no live quote (e.g. CSV files without recent bars), from the last stored daily candles, marked stale with
    `stale_seconds` (how old its price is: _quote_as_of). With `unavailable` (no compute worker answered this
    request already), the provider is not asked: the stored quote, else that error."""
    now = timezone.now()
    status = calendar_for_symbol(symbol).status(now)
    cached = quote_cache_get(symbol)
    if cached is not None:
        return {**cached, "market_status": status.session, "cached": True}
    try:
        if unavailable is not None:
            raise unavailable
        quote = quote_fetch(symbol=symbol, provider=provider)
    except (ProviderError, ComputeUnavailable) as exc:
        stored = _quote_from_store(symbol)
        if stored is None:
            raise
        logger.warning("serving_stale_quote", symbol=symbol, error=str(exc))
        return {
            **_serialize_quote(stored),
            "market_status": status.session,
            "cached": False,
            "stale": True,
            "stale_seconds": int((now - _quote_as_of(symbol, stored, now=now)).total_seconds()),
        }
    return {**quote, "market_status": status.session, "cached": False}


def quotes_multiple(*, symbols: list[str], provider: Provider | None = None) -> dict:
    """Quotes for many symbols; one failing symbol is reported in `errors` and never fails the others. Those
    not cached are asked of the provider together (quotes_refresh: a request per QUOTE_BATCH_SIZE symbols), not
    a request each: a cold watchlist of 50 took 50 Yahoo round trips."""
    missing = [symbol for symbol in symbols if quote_cache_get(symbol) is None]
    unavailable = None  # no compute worker answered: the others are not asked again, each a wait of its own
    if len(missing) > 1:
        try:
            quotes_refresh(symbols=missing, provider=provider)
        except ComputeUnavailable as exc:
            unavailable = exc
            logger.warning("quotes_batch_failed", symbols=len(missing), error=str(exc))
        except ProviderError as exc:
            # Each symbol gets its own answer below: stale from the store, or its error.
            logger.warning("quotes_batch_failed", symbols=len(missing), error=str(exc))
    quotes, errors = [], {}
    for symbol in symbols:
        try:
            quotes.append(quote_get(symbol=symbol, provider=provider, unavailable=unavailable))
        except (ProviderError, ComputeUnavailable) as exc:
            errors[symbol] = str(exc)
    return {"quotes": quotes, "errors": errors}


def market_status(*, exchange: str = "NSE") -> dict:
    """Open/closed state of `exchange` now (UnknownExchange for a name without a calendar)."""
    status = calendar_for(exchange).status(timezone.now())
    return {
        "exchange": status.exchange,
        "timezone": status.timezone,
        "is_open": status.is_open,
        "session": status.session,
        "reason": status.reason,
        "now": status.now.isoformat(),
        "next_open": status.next_open.isoformat(),
        "next_close": status.next_close.isoformat(),
        "special_session": status.special_session,
    }


def instruments_list() -> list[dict]:
    return list(Instrument.objects.values("symbol", "name", "exchange", "currency", "kind", "active"))


def candles_frame(
    *,
    symbol: str,
    timeframe: Timeframe,
    end: datetime | None = None,
    limit: int | None = None,
    final_only: bool = False,
    adjust: Adjustment = "none",
) -> pd.DataFrame:
    """Stored candles as a candle frame (the pure modules' input), the latest `limit` before `end`. With
    `final_only`, only bars stored after their close: scoring, signals, training and backtests never see a
    partial bar. `adjust`: the corporate-action adjustment applied (signals and training read "splits", so a
    split day is no crash to them), in the prices of the last bar returned (which is as traded)."""
    import pandas as pd

    rows = MarketData.objects.filter(symbol=symbol, timeframe=timeframe.value)
    if final_only:
        rows = rows.filter(final=True)
    if end is not None:
        rows = rows.filter(timestamp__lt=end)
    rows = rows.order_by("-timestamp").values_list(
        "timestamp", "open_price", "high_price", "low_price", "close_price", "volume"
    )
    values = list(rows[:limit] if limit else rows)
    if not values:
        return empty_candles()
    values.reverse()
    frame = pd.DataFrame(values, columns=["timestamp", *CANDLE_COLUMNS]).set_index("timestamp")
    frame.index = pd.DatetimeIndex(frame.index).tz_convert("UTC").as_unit("us")
    frame["volume"] = frame["volume"].astype("int64")
    actions = corporate_actions(symbol=symbol, adjust=adjust)
    if actions:
        tz = time_zone_for_symbol(symbol)
        # Into the prices of the last bar read, as traded: an action going ex after it (today's, while today's
        # bar is still forming or left out as partial; a split staff entered ahead of its ex-date) has not
        # changed any price read yet, so it scales nothing.
        last_day = frame.index[-1].tz_convert(tz).date()
        actions = [action for action in actions if action.ex_date <= last_day]
        frame = adjust_candles(frame, actions, mode=adjust, tz=tz)
    return frame


def candles_count(*, symbol: str, timeframe: Timeframe) -> int:
    return MarketData.objects.filter(symbol=symbol, timeframe=timeframe.value).count()


def quality_report(*, symbol: str, timeframe: Timeframe, include_resolved: bool = False) -> dict:
    """The stored findings of the last quality checks of (symbol, timeframe), open ones first."""
    rows = DataIssue.objects.filter(symbol=symbol, timeframe=timeframe.value)
    checked_at = rows.aggregate(last=Max("checked_at"))["last"]
    if not include_resolved:
        rows = rows.filter(resolved=False)
    issues = list(
        rows.order_by("resolved", "start").values(
            "id",
            "kind",
            "start",
            "end",
            "details",
            "unavailable",
            "resolved",
            "detected_at",
            "checked_at",
            "resolved_at",
        )
    )
    open_by_kind: dict[str, int] = {}
    for issue in issues:
        if not issue["resolved"]:
            open_by_kind[issue["kind"]] = open_by_kind.get(issue["kind"], 0) + 1
    return {
        "symbol": symbol,
        "timeframe": timeframe.value,
        "checked_at": checked_at,
        "open": open_by_kind,
        "issues": issues,
    }


def symbol_require_known(*, symbol: str, provider: Provider | None = None) -> None:
    """Raise SymbolNotFound (404) for a symbol neither in the catalogue, nor stored, nor known to the provider
    (asked for a quote, like the quote endpoint). A yes is remembered for a day: list endpoints stay cheap."""
    key = f"market:known:{symbol}"
    if cache.get(key):
        return
    stored = MarketData.objects.filter(symbol=symbol).exists()
    if not stored and not Instrument.objects.filter(symbol=symbol).exists():
        quote_get(symbol=symbol, provider=provider)
    cache.set(key, True, 24 * 3600)


def indicators_history(
    *,
    symbol: str,
    timeframe: Timeframe,
    indicators: list,
    start: datetime | None = None,
    end: datetime | None = None,
    limit: int = 500,
    order: str = "desc",
    adjust: Adjustment = "splits",
    provider: Provider | None = None,
) -> dict:
    """Indicator series aligned bar for bar with the candles the historical endpoint gives for the same query
    (same `timestamp`/`date`, same adjustment), warm-up bars null; cached like historical, until the symbol's
    next sync."""
    names = ",".join(ind.name for ind in indicators)
    key = history_key(
        symbol,
        timeframe.value,
        start and start.isoformat(),
        end and end.isoformat(),
        limit,
        order,
        names,
        adjust,
    )
    cached = cache.get(key)
    if cached is not None:
        return cached
    return indicators_computed(
        symbol=symbol,
        timeframe=timeframe,
        names=names,
        start=start,
        end=end,
        limit=limit,
        order=order,
        adjust=adjust,
        key=key,
        provider=provider,
    )


@offload.offloaded(errors=(ProviderError, LookbackExceeded))
def indicators_computed(
    *,
    symbol: str,
    timeframe: Timeframe,
    names: str,
    start: datetime | None,
    end: datetime | None,
    limit: int,
    order: str,
    adjust: Adjustment,
    key: str,
    provider: Provider | None = None,
) -> dict:
    """indicators_history's series on a cache miss, cached under `key`: in a compute worker when a web worker
    asks (TA-Lib, which loads pandas, stays out of it: tradingdash/offload.py)."""
    indicators = parse_indicators(names)
    history = json.loads(
        candles_history(
            symbol=symbol,
            timeframe=timeframe,
            start=start,
            end=end,
            limit=limit,
            order=order,
            adjust=adjust,
            provider=provider,
        )
    )
    candles = history["candles"]
    # The bars before the window its values depend on (read like it: the same adjustment, fetched where never
    # fetched), so that a bar's RSI does not change with the window it is shown in.
    session_bars = math.ceil(timedelta(days=1) / timeframe.spec.bar) if timeframe.is_intraday else None
    warmup = warmup_bars(indicators, intraday_session_bars=session_bars) if candles else 0
    before = []
    if warmup:
        first = datetime.fromisoformat(candles[0]["timestamp"])
        before = json.loads(
            candles_history(
                symbol=symbol, timeframe=timeframe, end=first, limit=warmup, adjust=adjust, provider=provider
            )
        )["candles"]
    read = before + candles
    columns = {field: [c[field] for c in read] for field in ("open", "high", "low", "close", "volume")}
    sessions = [c["timestamp"][:10] for c in read] if timeframe.is_intraday else None
    series = compute_indicators(columns, indicators, session_days=sessions)
    skip = len(before)
    series = {
        name: (
            {line: points[skip:] for line, points in values.items()}
            if isinstance(values, dict)
            else values[skip:]
        )
        for name, values in series.items()
    }
    anchored = [ind for ind in indicators if ind.kind == "vwap" and not timeframe.is_intraday]
    if anchored and skip:  # a daily VWAP is anchored at the window's first bar, not at the warm-up's
        window = {field: values[skip:] for field, values in columns.items()}
        series.update(compute_indicators(window, anchored))
    rows = []
    for i, candle in enumerate(candles):
        row = {k: candle[k] for k in ("timestamp", "date") if k in candle}
        for name, values in series.items():
            row[name] = (
                {line: points[i] for line, points in values.items()}
                if isinstance(values, dict)
                else values[i]
            )
        rows.append(row)
    payload = {
        "symbol": symbol,
        "timeframe": timeframe.value,
        "derived_from": history.get("derived_from"),
        "count": len(rows),
        "stale": history["stale"],
        "adjust": adjust,
        "indicators": [ind.name for ind in indicators],
        "rows": rows,
    }
    if not history["stale"]:
        # Like the historical body: a series over a bar still forming is kept only until that bar closes.
        ttl = settings.MARKET_DATA_CACHE_TTL
        if candles and not candles[-1]["final"]:
            opened = datetime.fromisoformat(candles[-1]["timestamp"])
            ttl = _forming_bar_seconds(symbol=symbol, timeframe=timeframe, opened=opened)
        cache.set(key, payload, min(ttl, _until_next_ex_date(symbol=symbol, adjust=adjust)))
    return payload


def sync_runs_with_progress(queryset: QuerySet[SyncRun] | None = None) -> QuerySet[SyncRun]:
    """Runs with their progress counted from their batches in the same query (admin list, command)."""
    queryset = SyncRun.objects.all() if queryset is None else queryset
    status = "batches__status"
    return queryset.annotate(
        batches_done=Count("batches", filter=Q(**{status: SyncBatch.Status.DONE})),
        batches_failed=Count("batches", filter=Q(**{status: SyncBatch.Status.FAILED})),
        batches_running=Count("batches", filter=Q(**{status: SyncBatch.Status.RUNNING})),
        rows_inserted=Coalesce(Sum("batches__inserted"), 0),
        rows_updated=Coalesce(Sum("batches__updated"), 0),
        symbols_not_found=Coalesce(Sum("batches__not_found"), 0),
        batches_with_errors=Count("batches", filter=~Q(batches__errors={})),
    )


def sync_run_percent(run: SyncRun) -> float:
    """Share of a run's batches that are finished (done or failed), in percent; 100 for a run with none.
    `run` comes from sync_runs_with_progress."""
    if not run.batches_total:
        return 100.0
    return 100.0 * (run.batches_done + run.batches_failed) / run.batches_total
