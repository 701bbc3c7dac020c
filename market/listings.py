"""Reading an exchange's list of securities: NSE's `EQUITY_L.csv` (SYMBOL, NAME OF COMPANY, SERIES, DATE OF
LISTING, PAID UP VALUE, MARKET LOT, ISIN NUMBER, FACE VALUE). Pure: rows in, `Listing`s out, every bad row
reported with its line number rather than dropped silently."""

from __future__ import annotations

import csv
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import date, datetime

from market.symbols import InvalidSymbol, parse_symbol

_ISIN = re.compile(r"^[A-Z]{2}[A-Z0-9]{9}[0-9]$")
_DATE_FORMATS = ("%d-%b-%Y", "%Y-%m-%d", "%d-%m-%Y", "%d/%m/%Y")


@dataclass(frozen=True, kw_only=True)
class Listing:
    symbol: str  # Yahoo-style, e.g. RELIANCE.NS
    name: str
    series: str
    isin: str
    listed_on: date | None


@dataclass(frozen=True, kw_only=True)
class BadRow:
    line: int
    reason: str


def _header(name: str) -> str:
    return " ".join(name.strip().upper().split())


def _date(text: str) -> date | None:
    text = text.strip()
    if not text:
        return None
    for fmt in _DATE_FORMATS:
        try:
            return datetime.strptime(text, fmt).date()  # a calendar date, no time
        except ValueError:
            continue
    raise ValueError(f"unreadable date {text!r}")


def read_equity_list(lines: Iterable[str], *, suffix: str = ".NS") -> Iterator[Listing | BadRow]:
    """Each data row as a Listing, or a BadRow naming its line and what is wrong with it."""
    reader = csv.DictReader(lines)
    if reader.fieldnames is None:
        return
    fields = {_header(name): name for name in reader.fieldnames}
    needed = {"SYMBOL", "NAME OF COMPANY", "SERIES", "ISIN NUMBER"}
    missing = needed - fields.keys()
    if missing:
        raise ValueError(f"not an equity list: missing column(s) {', '.join(sorted(missing))}")
    for row in reader:
        line = reader.line_num
        value = {key: (row.get(original) or "").strip() for key, original in fields.items()}
        isin = value["ISIN NUMBER"].upper()
        if not _ISIN.match(isin):
            yield BadRow(line=line, reason=f"invalid ISIN {isin!r}")
            continue
        try:
            symbol = parse_symbol(value["SYMBOL"], default_suffix=suffix)
            listed_on = _date(value.get("DATE OF LISTING", ""))
        except (InvalidSymbol, ValueError) as exc:
            yield BadRow(line=line, reason=str(exc))
            continue
        yield Listing(
            symbol=symbol,
            name=value["NAME OF COMPANY"][:100] or symbol,
            series=value["SERIES"].upper()[:4],
            isin=isin,
            listed_on=listed_on,
        )
