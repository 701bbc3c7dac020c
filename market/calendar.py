"""Exchange trading calendars: trading days, session hours and market status, one calendar per exchange.

Pure Python: holidays come in as a mapping. NSE's (and BSE's, which publishes the same trading holidays and
hours) come from the database, or from the exchange's CSV via `load_holidays_csv`; every other exchange's
sessions, holidays and early closes come from the `exchange_calendars` library (`library_calendar`). Weekdays
missing from the mapping are trading days, so a year whose holiday list has not been loaded yet is treated as
if every weekday traded.

Every calendar also takes session overrides (`SessionOverride`, staff's `MarketSession` rows): a day with its own
open and close, which replace the regular session of that day. A special session on a holiday or a weekend
(Muhurat trading on Diwali, a budget-day Saturday) makes that day a trading day with those hours; a shortened
day keeps the regular open and closes early. A day has at most one session.
"""

from __future__ import annotations

import csv
import functools
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Literal
from zoneinfo import ZoneInfo

import numpy as np

if TYPE_CHECKING:
    import pandas as pd

BUNDLED_DATA_DIR = Path(__file__).resolve().parent / "data"

Session = Literal["pre_open", "open", "closed"]

# No exchange closes for longer than this; a search running past it means a broken holiday table.
_MAX_CLOSED_RUN = timedelta(days=31)

# Exchanges whose sessions come from the staff-edited holiday table and NSE's hours. BSE publishes the same
# trading holidays and the same 09:15-15:30 IST session as NSE, so it shares them (with its own table rows).
TABLE_EXCHANGES = ("NSE", "BSE")
# Every other supported exchange: its ISO MIC code in the `exchange_calendars` library.
LIBRARY_EXCHANGES = {"NYSE": "XNYS", "NASDAQ": "XNAS", "LSE": "XLON"}
EXCHANGES = (*TABLE_EXCHANGES, *LIBRARY_EXCHANGES)
# First session the library calendars are built from (Yahoo daily history starts around 1990).
LIBRARY_START = "1990-01-01"


class UnknownExchange(ValueError):
    """No calendar is known for this exchange name."""


@dataclass(frozen=True, kw_only=True)
class SessionOverride:
    """The hours of one day that differ from the regular session, in exchange local time."""

    open: time
    close: time
    description: str = ""

    def __post_init__(self):
        if not self.open < self.close:
            raise ValueError(f"A session must open before it closes ({self.open} >= {self.close})")


@dataclass(frozen=True, kw_only=True)
class MarketStatus:
    """Where the exchange stands at `now`, with the next session boundaries (all in exchange time)."""

    exchange: str
    timezone: str
    is_open: bool
    session: Session
    reason: str | None
    now: datetime
    next_open: datetime
    next_close: datetime
    # The description of today's session override (Muhurat trading, a shortened day), if there is one.
    special_session: str | None = None


class ExchangeCalendar:
    """Trading sessions of one exchange: Monday to Friday minus the given holidays, with the hours of the
    overridden days (`sessions`) in place of the regular ones, and the overridden days trading even on a
    holiday or weekend."""

    def __init__(
        self,
        holidays: Mapping[date, str],
        tz: str = "Asia/Kolkata",
        pre_open: tuple[time, time] = (time(9, 0), time(9, 8)),
        open: time = time(9, 15),
        close: time = time(15, 30),
        exchange: str = "NSE",
        special_opens: Mapping[date, time] | None = None,
        special_closes: Mapping[date, time] | None = None,
        sessions: Mapping[date, SessionOverride] | None = None,
    ):
        """`special_opens`/`special_closes`: days whose session opens later or closes earlier than usual
        (NYSE's 13:00 close the day after Thanksgiving). `sessions`: staff's overrides, which win over both and
        over a holiday or weekend."""
        if not pre_open[0] <= pre_open[1] <= open < close:
            raise ValueError("Session times must satisfy pre-open start <= pre-open end <= open < close")
        self.sessions: dict[date, SessionOverride] = dict(sessions or {})
        self.holidays: dict[date, str] = {d: name for d, name in holidays.items() if d not in self.sessions}
        self.special_opens: dict[date, time] = {
            **(special_opens or {}),
            **{d: s.open for d, s in self.sessions.items()},
        }
        self.special_closes: dict[date, time] = {
            **(special_closes or {}),
            **{d: s.close for d, s in self.sessions.items()},
        }
        self.tz = ZoneInfo(tz)
        self.pre_open = pre_open
        self.open = open
        self.close = close
        self.exchange = exchange
        self._holiday_array = np.array(sorted(self.holidays), dtype="datetime64[D]")
        # Weekend days with a session (weekday ones are trading days already once they are no holiday).
        self._weekend_sessions = np.array(
            sorted(d for d in self.sessions if d.weekday() >= 5), dtype="datetime64[D]"
        )

    def __repr__(self) -> str:
        return (
            f"ExchangeCalendar(exchange={self.exchange!r}, tz={self.tz.key!r}, holidays={len(self.holidays)}, "
            f"sessions={len(self.sessions)})"
        )

    def facts(self) -> dict:
        """What the calendar is built from, as plain values (JSON-able with kombu's encoder), for `from_facts`:
        a library calendar read in a compute worker is rebuilt in a web worker without the library or pandas
        (tradingdash/offload.py)."""
        return {
            "holidays": sorted(self.holidays.items()),
            "tz": self.tz.key,
            "pre_open": list(self.pre_open),
            "open": self.open,
            "close": self.close,
            "exchange": self.exchange,
            "special_opens": sorted(self.special_opens.items()),
            "special_closes": sorted(self.special_closes.items()),
            "sessions": [
                [day, override.open, override.close, override.description]
                for day, override in sorted(self.sessions.items())
            ],
        }

    @classmethod
    def from_facts(cls, facts: Mapping) -> ExchangeCalendar:
        sessions = {
            day: SessionOverride(open=o, close=c, description=text) for day, o, c, text in facts["sessions"]
        }
        return cls(
            dict(facts["holidays"]),
            tz=facts["tz"],
            pre_open=tuple(facts["pre_open"]),
            open=facts["open"],
            close=facts["close"],
            exchange=facts["exchange"],
            special_opens={day: moment for day, moment in facts["special_opens"] if day not in sessions},
            special_closes={day: moment for day, moment in facts["special_closes"] if day not in sessions},
            sessions=sessions,
        )

    def with_sessions(self, sessions: Mapping[date, SessionOverride]) -> ExchangeCalendar:
        """This calendar with more session overrides (they win over the ones it has)."""
        return ExchangeCalendar(
            self.holidays,
            tz=self.tz.key,
            pre_open=self.pre_open,
            open=self.open,
            close=self.close,
            exchange=self.exchange,
            special_opens=self.special_opens,
            special_closes=self.special_closes,
            sessions={**self.sessions, **sessions},
        )

    # Days

    def is_trading_day(self, d: date) -> bool:
        """A weekday that is not an exchange holiday, or any day with a session override."""
        return (d.weekday() < 5 and d not in self.holidays) or d in self.sessions

    def trading_days(self, start: date, end: date) -> list[date]:
        """Trading days from `start` to `end`, both inclusive, in order."""
        return self.trading_days_array(start, end).tolist()

    def trading_days_array(self, start: date, end: date) -> np.ndarray:
        """`trading_days` as a numpy datetime64[D] array, for vectorised callers."""
        if end < start:
            return np.array([], dtype="datetime64[D]")
        days = np.arange(np.datetime64(start, "D"), np.datetime64(end, "D") + 1)
        return days[self.trading_mask(days)]

    def trading_mask(self, days: np.ndarray) -> np.ndarray:
        """Which of the datetime64[D] `days` are trading days (vectorised `is_trading_day`)."""
        trading = np.is_busday(days, holidays=self._holiday_array)
        if self._weekend_sessions.size:
            trading |= np.isin(days, self._weekend_sessions)
        return trading

    def next_trading_day(self, d: date) -> date:
        """The first trading day strictly after `d`."""
        return self._step_to_trading_day(d, timedelta(days=1))

    def previous_trading_day(self, d: date) -> date:
        """The last trading day strictly before `d`."""
        return self._step_to_trading_day(d, timedelta(days=-1))

    # Sessions

    def session_hours(self, day: date) -> tuple[datetime, datetime]:
        """Open and close of the session on `day` (its override's hours if it has one), aware in exchange time."""
        if not self.is_trading_day(day):
            raise ValueError(f"{day} is not an {self.exchange} trading day")
        opens_at = datetime.combine(day, self.special_opens.get(day, self.open), self.tz)
        return (opens_at, datetime.combine(day, self.special_closes.get(day, self.close), self.tz))

    def session_close(self, day: date) -> datetime:
        """Close of the session on `day` (aware, exchange time); the regular close on a closed day."""
        return datetime.combine(day, self.special_closes.get(day, self.close), self.tz)

    def close_minutes(self, days: np.ndarray) -> np.ndarray:
        """Minutes after local midnight at which the session of each datetime64[D] day closes (vectorised
        `session_close`: early closes, shortened days and special sessions included)."""
        return _minutes_by_day(days, self.close, self.special_closes)

    def session_bars(self, day: date, bar: timedelta) -> list[datetime]:
        """UTC open times of the `bar`-long bars of the session on `day` (none on a closed day).

        Bars start at the open and step by `bar` while they start before the close, so the last bar
        may be cut short by the close (NSE's 1h bars: 09:15, 10:15, ... 15:15).
        """
        if bar <= timedelta(0):
            raise ValueError("Bar length must be positive")
        if not self.is_trading_day(day):
            return []
        opens_at, closes_at = self.session_hours(day)
        count = -(-(closes_at - opens_at) // bar)  # ceiling division
        start = opens_at.astimezone(UTC)
        return [start + i * bar for i in range(count)]

    def session_mask(self, index: pd.DatetimeIndex) -> np.ndarray:
        """Boolean mask of the timestamps of an aware index that fall inside a session."""
        if index.tz is None:
            raise ValueError("session_mask needs a timezone-aware index")
        return self.session_mask_seconds(index.as_unit("ns").asi8 // 1_000_000_000)

    def session_mask_seconds(self, seconds: np.ndarray) -> np.ndarray:
        """Which of the UTC epoch seconds fall inside a session (session_mask without pandas)."""
        from market.presentation import local_seconds

        local = local_seconds(seconds, self.tz)
        days = (local // 86400).astype("datetime64[D]")
        minutes = local % 86400 // 60
        opens = _minutes_by_day(days, self.open, self.special_opens)
        closes = _minutes_by_day(days, self.close, self.special_closes)
        return np.asarray(self.trading_mask(days) & (minutes >= opens) & (minutes < closes))

    # Status

    def status(self, now: datetime) -> MarketStatus:
        """Open/closed state at `now`, why it is closed, and the next open and close. The pre-open phases
        belong to the regular open: a day whose session opens at another time has none."""
        local = self._to_local(now)
        session: Session = "closed"
        reason: str | None
        day, clock = local.date(), local.timetz().replace(tzinfo=None)
        opens_at = self.special_opens.get(day, self.open)
        closes_at = self.special_closes.get(day, self.close)
        if not self.is_trading_day(day):
            reason = self.holidays.get(day, "weekend")
        elif clock < opens_at:
            if opens_at != self.open or clock < self.pre_open[0]:
                reason = "before market hours"
            elif clock < self.pre_open[1]:
                session, reason = "pre_open", "pre-open order entry"
            else:
                session, reason = "pre_open", "pre-open order matching"
        elif clock < closes_at:
            session, reason = "open", None
        else:
            reason = "after hours"
        override = self.sessions.get(day)
        return MarketStatus(
            exchange=self.exchange,
            timezone=self.tz.key,
            is_open=session == "open",
            session=session,
            reason=reason,
            now=local,
            next_open=self.next_open(local),
            next_close=self.next_close(local),
            special_session=(override.description or "special session") if override else None,
        )

    def next_open(self, now: datetime) -> datetime:
        """The first session open strictly after `now`, in exchange time."""
        local = self._to_local(now)
        day = local.date()
        if self.is_trading_day(day) and local < self.session_hours(day)[0]:
            return self.session_hours(day)[0]
        return self.session_hours(self.next_trading_day(day))[0]

    def next_close(self, now: datetime) -> datetime:
        """The close of the session in progress, else of the next session, in exchange time."""
        local = self._to_local(now)
        day = local.date()
        if self.is_trading_day(day) and local < self.session_close(day):
            return self.session_close(day)
        return self.session_close(self.next_trading_day(day))

    def _to_local(self, now: datetime) -> datetime:
        if now.tzinfo is None or now.utcoffset() is None:
            raise ValueError("Naive datetime given; pass a timezone-aware datetime")
        return now.astimezone(self.tz)

    def _step_to_trading_day(self, d: date, step: timedelta) -> date:
        candidate = d
        for _ in range(_MAX_CLOSED_RUN.days):
            candidate += step
            if self.is_trading_day(candidate):
                return candidate
        raise RuntimeError(f"No {self.exchange} trading day within {_MAX_CLOSED_RUN.days} days of {d}")


def _minutes_by_day(days: np.ndarray, regular: time, special: Mapping[date, time]) -> np.ndarray:
    """Minutes after midnight of each day's open or close: `regular`, or the day's entry in `special`."""
    minutes = np.full(days.shape, regular.hour * 60 + regular.minute, dtype=np.int64)
    if special:
        special_days = np.array(list(special), dtype="datetime64[D]")
        special_minutes = np.array([t.hour * 60 + t.minute for t in special.values()], dtype=np.int64)
        order = np.argsort(special_days)
        special_days, special_minutes = special_days[order], special_minutes[order]
        position = np.clip(np.searchsorted(special_days, days), 0, len(special_days) - 1)
        hit = special_days[position] == days
        minutes[hit] = special_minutes[position[hit]]
    return minutes


def library_calendar(exchange: str) -> ExchangeCalendar:
    """The calendar of an exchange kept by the `exchange_calendars` library (NYSE, NASDAQ, LSE): its time zone,
    regular hours, holidays (weekdays without a session) and early closes / late opens, through the end of next
    year. Built once per process and calendar year (about two seconds): a process that outlives the year it
    built the calendar in gets the following years' holidays instead of taking every weekday for a session.
    The library is imported only here, so NSE-only processes never load it."""
    code = LIBRARY_EXCHANGES.get(exchange)
    if code is None:
        raise UnknownExchange(f"Unknown exchange {exchange!r}; use one of {', '.join(EXCHANGES)}")
    return _library_calendar(exchange, code, date.today().year)


@functools.lru_cache(maxsize=8)
def _library_calendar(exchange: str, code: str, year: int) -> ExchangeCalendar:
    import exchange_calendars
    import pandas as pd

    library = exchange_calendars.get_calendar(code, start=LIBRARY_START, end=f"{year + 1}-12-31")
    tz = library.tz.key
    opens = library.opens.dt.tz_convert(tz)
    closes = library.closes.dt.tz_convert(tz)
    regular_open = opens.dt.time.mode().iloc[0]
    regular_close = closes.dt.time.mode().iloc[0]
    sessions = {ts.date() for ts in library.sessions}
    first, last = library.first_session.date(), library.last_session.date()
    names = (
        library.regular_holidays.holidays(first, last, return_name=True) if library.regular_holidays else {}
    )
    names = {ts.date(): name for ts, name in dict(names).items()}
    holidays = {
        day.date(): names.get(day.date(), "exchange holiday")
        for day in pd.bdate_range(first, last)
        if day.date() not in sessions
    }
    return ExchangeCalendar(
        holidays,
        tz=tz,
        pre_open=(regular_open, regular_open),
        open=regular_open,
        close=regular_close,
        exchange=exchange,
        special_opens={ts.date(): ts.time() for ts in opens if ts.time() != regular_open},
        special_closes={ts.date(): ts.time() for ts in closes if ts.time() != regular_close},
    )


def load_holidays_csv(path: str | Path) -> dict[date, str]:
    """Read an exchange holiday list: a CSV with the header `date,description` and ISO dates."""
    path = Path(path)
    holidays: dict[date, str] = {}
    with path.open(newline="", encoding="utf-8-sig") as handle:
        reader = csv.reader(handle)
        header = next(reader, None)
        if header is None or [cell.strip().lower() for cell in header] != ["date", "description"]:
            raise ValueError(f"{path.name} line 1: expected the header 'date,description', got {header!r}")
        for row in reader:
            line = reader.line_num
            if not row or all(not cell.strip() for cell in row):
                continue
            if len(row) != 2:
                raise ValueError(f"{path.name} line {line}: expected 2 columns, got {len(row)}")
            raw_date, description = row[0].strip(), row[1].strip()
            try:
                day = date.fromisoformat(raw_date)
            except ValueError:
                raise ValueError(f"{path.name} line {line}: invalid ISO date {raw_date!r}") from None
            if not description:
                raise ValueError(f"{path.name} line {line}: missing description for {day}")
            if day in holidays:
                raise ValueError(f"{path.name} line {line}: {day} is listed twice")
            holidays[day] = description
    return holidays


SESSION_KINDS = ("special", "shortened")
_SESSIONS_HEADER = ["date", "kind", "open_time", "close_time", "description", "source"]


@dataclass(frozen=True, kw_only=True)
class PublishedSession:
    """One row of a special-session list: a day's hours as the exchange announced them."""

    date: date
    kind: str
    open: time
    close: time
    description: str
    source: str


def load_sessions_csv(path: str | Path) -> list[PublishedSession]:
    """Read a list of special sessions and shortened days: a CSV with the header
    `date,kind,open_time,close_time,description,source`, ISO dates, HH:MM times in exchange local time, kind
    `special` or `shortened`, source optional. Every bad row is reported, with the file and line, in one
    ValueError."""
    path = Path(path)
    sessions: dict[date, PublishedSession] = {}
    errors: list[str] = []
    with path.open(newline="", encoding="utf-8-sig") as handle:
        reader = csv.reader(handle)
        header = next(reader, None)
        if header is None or [cell.strip().lower() for cell in header] != _SESSIONS_HEADER:
            raise ValueError(
                f"{path.name} line 1: expected the header '{','.join(_SESSIONS_HEADER)}', got {header!r}"
            )
        for row in reader:
            if not row or all(not cell.strip() for cell in row):
                continue
            try:
                session = _session_row(row)
            except ValueError as exc:
                errors.append(f"{path.name} line {reader.line_num}: {exc}")
                continue
            if session.date in sessions:
                errors.append(f"{path.name} line {reader.line_num}: {session.date} is listed twice")
                continue
            sessions[session.date] = session
    if errors:
        raise ValueError("\n".join(errors))
    return list(sessions.values())


def _session_row(row: list[str]) -> PublishedSession:
    if len(row) != len(_SESSIONS_HEADER):
        raise ValueError(f"expected {len(_SESSIONS_HEADER)} columns, got {len(row)}")
    raw_date, kind, raw_open, raw_close, description, source = (cell.strip() for cell in row)
    try:
        day = date.fromisoformat(raw_date)
    except ValueError:
        raise ValueError(f"invalid ISO date {raw_date!r}") from None
    if kind not in SESSION_KINDS:
        raise ValueError(f"kind must be one of {', '.join(SESSION_KINDS)}, got {kind!r}")
    opens, closes = _clock(raw_open, "open_time"), _clock(raw_close, "close_time")
    if not opens < closes:
        raise ValueError(f"the session must open before it closes ({raw_open} to {raw_close})")
    if not description:
        raise ValueError(f"missing description for {day}")
    return PublishedSession(
        date=day, kind=kind, open=opens, close=closes, description=description, source=source
    )


def _clock(raw: str, column: str) -> time:
    try:
        parsed = datetime.strptime(raw, "%H:%M")
    except ValueError:
        raise ValueError(f"{column} must be HH:MM (exchange local time), got {raw!r}") from None
    return parsed.time()


def bundled_nse_holidays() -> dict[date, str]:
    """All NSE holiday lists shipped in `market/data/nse_holidays_*.csv`, merged."""
    holidays: dict[date, str] = {}
    for path in sorted(BUNDLED_DATA_DIR.glob("nse_holidays_*.csv")):
        holidays.update(load_holidays_csv(path))
    return holidays
