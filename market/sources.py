"""Wiring of the pure market modules to settings and the database: which provider, which holidays and special
sessions, which exchange and price tick a symbol has."""

from __future__ import annotations

import functools
import threading
from datetime import UTC, date
from decimal import Decimal
from importlib import import_module
from zoneinfo import ZoneInfo

import structlog
from django.conf import settings
from django.core.cache import cache

from market.calendar import (
    TABLE_EXCHANGES,
    ExchangeCalendar,
    SessionOverride,
    UnknownExchange,
    library_calendar,
)
from market.models import Instrument, MarketHoliday, MarketSession
from market.presentation import default_tick
from market.providers import PROVIDER_NAMES, build_provider, provider_import
from market.providers.base import Provider
from market.symbols import (
    InvalidSymbol,
    currency_for_symbol,
    exchange_for_symbol,
    suffix_exchange,
    supported_suffixes,
)
from market.timeframes import STORED_TIMEFRAMES, Timeframe
from tradingdash import offload
from tradingdash.cache import LocalTTLCache

logger = structlog.get_logger(__name__)

_HOLIDAYS_KEY = "market:holidays:{exchange}"
_SESSIONS_KEY = "market:sessions:{exchange}"
_HOLIDAYS_TTL = 3600
# Every quote asks the calendar whether the market is open: the holidays also sit in a per-process layer.
_holidays_local = LocalTTLCache(ttl_setting="HOLIDAYS_LOCAL_CACHE_SECONDS")
# And which exchange a symbol trades on (a catalogue edit is seen within that lifetime).
_exchanges_local = LocalTTLCache(ttl_setting="HOLIDAYS_LOCAL_CACHE_SECONDS")
_providers: dict[str, Provider] = {}
_lock = threading.Lock()


def holidays_for(exchange: str = "NSE") -> dict[date, str]:
    key = _HOLIDAYS_KEY.format(exchange=exchange)
    holidays = _holidays_local.get(key)
    if holidays is None:
        holidays = cache.get(key)
        if holidays is None:
            holidays = dict(
                MarketHoliday.objects.filter(exchange=exchange).values_list("date", "description")
            )
            cache.set(key, holidays, _HOLIDAYS_TTL)
        _holidays_local.set(key, holidays)
    return holidays


def holidays_invalidate(exchange: str = "NSE") -> None:
    """After staff change holidays: this process sees it at once, others within HOLIDAYS_LOCAL_CACHE_SECONDS."""
    cache.delete(_HOLIDAYS_KEY.format(exchange=exchange))
    _holidays_local.delete(_HOLIDAYS_KEY.format(exchange=exchange))


def sessions_for(exchange: str = "NSE") -> dict[date, SessionOverride]:
    """Staff's session overrides of `exchange` (MarketSession), cached like the holidays."""
    key = _SESSIONS_KEY.format(exchange=exchange)
    sessions = _holidays_local.get(key)
    if sessions is None:
        sessions = cache.get(key)
        if sessions is None:
            rows = MarketSession.objects.filter(exchange=exchange).values_list(
                "date", "open_time", "close_time", "description"
            )
            sessions = {
                day: SessionOverride(open=opens, close=closes, description=description)
                for day, opens, closes, description in rows
            }
            cache.set(key, sessions, _HOLIDAYS_TTL)
        _holidays_local.set(key, sessions)
    return sessions


def sessions_invalidate(exchange: str = "NSE") -> None:
    """After staff change special sessions: seen here at once, elsewhere within HOLIDAYS_LOCAL_CACHE_SECONDS."""
    cache.delete(_SESSIONS_KEY.format(exchange=exchange))
    _holidays_local.delete(_SESSIONS_KEY.format(exchange=exchange))


def calendar_for(exchange: str = "NSE") -> ExchangeCalendar:
    """The calendar of `exchange`: NSE (and BSE, which shares NSE's hours and published holidays) with the
    holidays staff maintain in admin; NYSE, NASDAQ and LSE from the exchange_calendars library. Every one
    with staff's special sessions and shortened days (MarketSession) on top; BSE's are NSE's plus any entered
    for BSE alone, like its holidays. UnknownExchange for any other name."""
    exchange = exchange.strip().upper()
    if exchange == "NSE":
        return ExchangeCalendar(
            holidays_for("NSE"),
            tz=settings.EXCHANGE_TIME_ZONE,
            exchange=exchange,
            sessions=sessions_for("NSE"),
        )
    if exchange in TABLE_EXCHANGES:  # BSE: NSE's holidays and sessions plus any loaded for BSE alone
        holidays = {**holidays_for("NSE"), **holidays_for(exchange)}
        sessions = {**sessions_for("NSE"), **sessions_for(exchange)}
        return ExchangeCalendar(
            holidays, tz=settings.EXCHANGE_TIME_ZONE, exchange=exchange, sessions=sessions
        )
    calendar = _library(exchange)
    sessions = sessions_for(exchange)
    if not sessions:
        return calendar
    return _library_calendar_with(exchange, tuple(sorted(sessions.items())), date.today().year)


@functools.lru_cache(maxsize=16)
def _library_calendar_with(
    exchange: str, sessions: tuple[tuple[date, SessionOverride], ...], year: int
) -> ExchangeCalendar:
    """A library calendar with staff's overrides, rebuilt only when they change (it holds 35 years of
    holidays) or the year does (library_calendar's schedule reaches the end of the next year)."""
    return _library(exchange).with_sessions(dict(sessions))


def _library(exchange: str) -> ExchangeCalendar:
    """library_calendar(exchange). In a web worker its schedule is read in a compute worker and rebuilt here
    from plain values, once per process and year: exchange_calendars and pandas (~40 MiB) stay out of it."""
    if not offload.configured():
        return library_calendar(exchange)
    return _library_rebuilt(exchange, date.today().year)


@functools.lru_cache(maxsize=8)
def _library_rebuilt(exchange: str, year: int) -> ExchangeCalendar:
    return ExchangeCalendar.from_facts(library_calendar_facts(exchange=exchange))


@offload.offloaded(errors=(UnknownExchange,))
def library_calendar_facts(*, exchange: str) -> dict:
    """The library calendar of `exchange` as plain values (ExchangeCalendar.facts)."""
    return library_calendar(exchange).facts()


def _catalogue() -> tuple[dict[str, str], dict[str, Decimal | None], dict[str, date], dict[str, str]]:
    """(symbol -> exchange, symbol -> price tick, symbol -> listing date, symbol -> currency) of the catalogue, read
    in one query and kept per process for HOLIDAYS_LOCAL_CACHE_SECONDS, so a page of many symbols costs no query
    per symbol."""
    catalogue = _exchanges_local.get("catalogue")
    if catalogue is None:
        exchanges, ticks, listed, currencies = {}, {}, {}, {}
        rows = Instrument.objects.values_list(
            "symbol", "exchange", "kind", "tick_size", "listed_on", "currency"
        )
        for symbol, exchange, kind, tick_size, listed_on, currency in rows:
            exchange = (exchange or "").strip().upper()
            if exchange:
                exchanges[symbol] = exchange
            ticks[symbol] = tick_size or default_tick(exchange or exchange_for_symbol(symbol), kind)
            if listed_on is not None:
                listed[symbol] = listed_on
            if currency:
                currencies[symbol] = currency
        catalogue = (exchanges, ticks, listed, currencies)
        _exchanges_local.set("catalogue", catalogue)
    return catalogue


def catalogue_invalidate() -> None:
    """After staff edit an instrument: this process sees its exchange, tick and listing date at once, others within
    HOLIDAYS_LOCAL_CACHE_SECONDS."""
    _exchanges_local.delete("catalogue")


def listing_date_of(symbol: str) -> date | None:
    """The catalogue's listing date of `symbol` (Instrument.listed_on): it had no session before."""
    return _catalogue()[2].get(symbol)


def currency_of(symbol: str) -> str:
    """The instrument's quote currency from the catalogue (Instrument.currency), else its exchange's: a quote of
    ^GSPC or AAPL is in dollars whichever provider sent it."""
    return _catalogue()[3].get(symbol) or currency_for_symbol(symbol, exchange_of(symbol))


def exchange_of(symbol: str) -> str:
    """The instrument's exchange from the catalogue, else what the symbol's suffix implies (market.symbols)."""
    return _catalogue()[0].get(symbol) or exchange_for_symbol(symbol)


def symbol_require_supported(symbol: str) -> None:
    """Raise InvalidSymbol (400) for a symbol whose exchange nothing names: neither the catalogue
    (Instrument.exchange) nor its suffix (market.symbols). Its session hours, holidays, time zone and tick are
    unknown, and NSE's would be wrong: a Toronto daily bar would be final before Toronto opened, a Tokyo one
    dated the day before."""
    if suffix_exchange(symbol) is None and symbol not in _catalogue()[0]:
        suffix = symbol.rsplit(".", 1)[1]
        # A bare name gets DEFAULT_SYMBOL_SUFFIX (AAPL -> AAPL.NS): only without one is it a US listing.
        bare = "" if settings.DEFAULT_SYMBOL_SUFFIX else "a US symbol without a suffix, "
        raise InvalidSymbol(
            f"Unsupported exchange suffix .{suffix} in {symbol!r}: use {supported_suffixes()}, {bare}or an index "
            "such as ^NSEI or ^GSPC (staff can list other instruments with their exchange)"
        )


def price_tick_for_symbol(symbol: str) -> Decimal | None:
    """The step the symbol's traded prices are shown in (Instrument.price_tick); a symbol outside the catalogue
    gets its exchange's default: an equity on NSE 0.05, an index (^NSEI) none, i.e. two decimals."""
    ticks = _catalogue()[1]
    if symbol in ticks:
        return ticks[symbol]
    kind = Instrument.Kind.INDEX if symbol.startswith("^") else Instrument.Kind.EQUITY
    return default_tick(exchange_for_symbol(symbol), kind)


def time_zone_for_symbol(symbol: str):
    """The zone of the symbol's exchange (for presenting times), UTC for a catalogue row naming no known one.
    NSE and BSE need no holiday table for that."""
    exchange = exchange_of(symbol)
    if exchange == "NSE" or exchange in TABLE_EXCHANGES:
        return ZoneInfo(settings.EXCHANGE_TIME_ZONE)
    try:
        return _library(exchange).tz
    except UnknownExchange:
        return UTC


def calendar_for_symbol(symbol: str) -> ExchangeCalendar:
    """The calendar of the exchange `symbol` trades on. A catalogue row naming an unknown exchange is a data
    error, reported as such."""
    exchange = exchange_of(symbol)
    try:
        return calendar_for(exchange)
    except UnknownExchange as exc:
        raise UnknownExchange(f"Instrument {symbol}: {exc}") from None


def _time_zone_of(symbol: str) -> str:
    return calendar_for_symbol(symbol).tz.key


def get_calendar(exchange: str = "NSE") -> ExchangeCalendar:
    """The calendar of `exchange` (NSE by default); see `calendar_for`."""
    return calendar_for(exchange)


def _catalogue_symbols() -> set[str]:
    return set(Instrument.objects.values_list("symbol", flat=True))


def _build(name: str) -> Provider:
    if name == "yfinance":
        return build_provider(
            "yfinance",
            cache_dir=settings.DATA_DIR / "yfinance",
            timeout=settings.YFINANCE_TIMEOUT,
            auto_adjust=settings.YFINANCE_AUTO_ADJUST,
            max_requests_per_minute=settings.YFINANCE_MAX_REQUESTS_PER_MINUTE,
            max_wait=settings.YFINANCE_LIMITER_MAX_WAIT_SECONDS,
            calendar=calendar_for_symbol,
            limiter=_yfinance_limiter(),
        )
    if name == "synthetic":
        return build_provider("synthetic", symbols=_catalogue_symbols, calendar=calendar_for_symbol)
    if name == "csv":
        return build_provider(
            "csv",
            directory=settings.MARKET_DATA_CSV_DIR,
            tz=_time_zone_of,
            split_adjusted=settings.MARKET_DATA_CSV_SPLIT_ADJUSTED,
            calendar=calendar_for_symbol,
        )
    if ":" in name:
        return _build_from_path(name)
    return build_provider(name)  # raises ValueError naming the known providers


def _yfinance_limiter():
    """The yfinance request budget: shared by every process through Redis when REDIS_URL is set (falling back to
    this process's budget while Redis is unreachable); without Redis, None (the provider's per-process budget)."""
    if not settings.REDIS_URL:
        return None
    import redis

    from market.providers.ratelimit import RedisSlidingWindowLimiter
    from market.providers.yfinance import process_limiter

    client = redis.Redis.from_url(
        settings.REDIS_URL,
        socket_connect_timeout=settings.REDIS_CONNECT_TIMEOUT,
        socket_timeout=settings.REDIS_SOCKET_TIMEOUT,
    )
    return RedisSlidingWindowLimiter(
        client=client, key=f"{settings.CACHE_KEY_PREFIX}:ratelimit:yfinance", fallback=process_limiter
    )


def _build_from_path(path: str) -> Provider:
    """A provider that lives outside this project, named `package.module:factory` (a callable taking no
    arguments that returns a Provider)."""
    module_name, _, attribute = path.partition(":")
    factory = getattr(import_module(module_name), attribute, None)
    if not callable(factory):
        raise ValueError(f"Market data provider {path!r}: {module_name} has no callable {attribute!r}")
    provider = factory()
    if not isinstance(provider, Provider):
        raise TypeError(f"Market data provider {path!r} returned {type(provider).__name__}, not a Provider")
    return provider


def provider_preload() -> None:
    """Import the configured provider's module without building it: in a web worker at start
    (tradingdash.workers.AsgiWorker), and in a Celery worker's main process before its pool forks
    (tradingdash.celery.computation_preload).

    A quote that misses the cache asks the provider, so a web worker loads it (and pandas, ~31 MiB; yfinance
    ~16 MiB more) with its first such request anyway. Loaded at start instead, that request is not slowed by the
    imports, and their objects are frozen out of the garbage collector's sight with the rest of the start-up
    (settle_gc); loaded later they would be walked by every full collection. A provider that cannot be imported
    (a bad name, a module that raises) is logged and left to fail where it is used, as before: the worker starts
    and serves what does not need it."""
    name = settings.MARKET_DATA_PROVIDER
    try:
        if not provider_import(name):
            logger.warning("provider_preload_failed", provider=name, error="not a known provider name")
        import pandas  # noqa: F401 - what every provider's fetch returns (the synthetic one imports it lazily)
    except Exception as exc:
        logger.warning("provider_preload_failed", provider=name, error=repr(exc), exc_info=True)


def provider_name(name: str | None = None) -> str:
    """The `name` a provider records as the source of what it fetches, for the configured one by default; without
    importing it for the built-in ones (whose name is the setting's), so a web worker reading coverage does not
    load the provider and pandas."""
    name = name or settings.MARKET_DATA_PROVIDER
    return name if name in PROVIDER_NAMES else get_provider(name).name


def provider_timeframes(name: str | None = None) -> frozenset[Timeframe]:
    """The timeframes the (configured) provider serves; likewise without importing a built-in one: every stored
    timeframe (Provider.timeframes, which none of them narrows)."""
    name = name or settings.MARKET_DATA_PROVIDER
    return frozenset(STORED_TIMEFRAMES) if name in PROVIDER_NAMES else get_provider(name).timeframes


def get_provider(name: str | None = None) -> Provider:
    """The configured provider (MARKET_DATA_PROVIDER), built once per process (it holds rate-limit state)."""
    name = name or settings.MARKET_DATA_PROVIDER
    if name == "synthetic":
        # Cheap to build, and it must see the current catalogue and holidays.
        return _build(name)
    with _lock:
        if name not in _providers:
            _providers[name] = _build(name)
        return _providers[name]
