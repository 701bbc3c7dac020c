"""Ticker symbols as users type them, checked and turned into Yahoo-style symbols (RELIANCE -> RELIANCE.NS).

Symbols reach file names (CSV provider), URLs (Yahoo) and cache keys, so anything outside a narrow
alphabet is refused here, once, at the edge.
"""

from __future__ import annotations

import re

_SYMBOL_RE = re.compile(r"^[A-Z0-9^.&-]{1,20}$")
_SUFFIX_RE = re.compile(r"^(\.[A-Z]{1,4})?$")


class InvalidSymbol(ValueError):
    """The text is not an acceptable ticker symbol."""


def parse_symbol(raw: str, default_suffix: str = ".NS") -> str:
    """Normalise a user-typed symbol: strip, upper-case, validate, add the exchange suffix to bare names.

    `RELIANCE` -> `RELIANCE.NS`; `TCS.BO`, `M&M.NS` and indices such as `^NSEI` pass through.
    """
    if not isinstance(raw, str):
        raise InvalidSymbol(f"Symbol must be text, not {type(raw).__name__}")
    if not _SUFFIX_RE.match(default_suffix):
        raise ValueError(f"Invalid default suffix {default_suffix!r}; use e.g. '.NS', '.BO' or ''")
    symbol = raw.strip().upper()
    shown = _shorten(raw)
    if not symbol:
        raise InvalidSymbol("Symbol is empty")
    if not _SYMBOL_RE.match(symbol):
        raise InvalidSymbol(
            f"Invalid symbol {shown}: use 1-20 letters, digits or the characters ^ . & - (e.g. RELIANCE, ^NSEI)"
        )
    if "^" in symbol[1:]:
        raise InvalidSymbol(f"Invalid symbol {shown}: '^' may only start an index symbol (e.g. ^NSEI)")
    body = symbol.removeprefix("^")
    if not any(ch.isalnum() for ch in body):
        raise InvalidSymbol(f"Invalid symbol {shown}: it needs at least one letter or digit")
    if any(not part for part in body.split(".")):
        raise InvalidSymbol(f"Invalid symbol {shown}: dots must separate a name and an exchange suffix")
    if not symbol.startswith("^") and "." not in symbol:
        symbol += default_suffix
        if len(symbol) > 20:
            raise InvalidSymbol(f"Invalid symbol {shown}: too long with the exchange suffix {default_suffix}")
    return symbol


def _shorten(raw: str, limit: int = 32) -> str:
    text = raw if len(raw) <= limit else raw[:limit] + "…"
    return repr(text)


# Which exchange a Yahoo-style symbol trades on, when the instrument catalogue does not say (Instrument.exchange
# wins). Suffixes first; index symbols (^...) by name; a bare symbol is a US listing, as on Yahoo.
DEFAULT_EXCHANGE = "NSE"
_SUFFIX_EXCHANGES = {".NS": "NSE", ".BO": "BSE", ".L": "LSE"}
_INDEX_EXCHANGES = {
    "^NSEI": "NSE",
    "^NSEBANK": "NSE",
    "^CNXIT": "NSE",
    "^INDIAVIX": "NSE",
    "^BSESN": "BSE",
    "^GSPC": "NYSE",
    "^DJI": "NYSE",
    "^IXIC": "NASDAQ",
    "^FTSE": "LSE",
}
_INDEX_PREFIXES = {"^NSE": "NSE", "^CNX": "NSE", "^BSE": "BSE"}


def exchange_for_symbol(symbol: str) -> str:
    """The exchange a symbol's suffix or index name implies: RELIANCE.NS -> NSE, TCS.BO -> BSE, ^GSPC -> NYSE,
    AAPL -> NYSE. A suffix not listed here gets NSE, the catalogue's default exchange (Instrument.exchange); the
    API refuses such symbols unless the catalogue lists them (market.sources.symbol_require_supported)."""
    return suffix_exchange(symbol) or DEFAULT_EXCHANGE


def suffix_exchange(symbol: str) -> str | None:
    """The exchange the symbol's suffix or index name names, None for a suffix not listed here (RY.TO, 7203.T):
    its exchange's clock, sessions and tick are unknown."""
    symbol = symbol.upper()
    if symbol.startswith("^"):
        if symbol in _INDEX_EXCHANGES:
            return _INDEX_EXCHANGES[symbol]
        prefix = next((p for p in _INDEX_PREFIXES if symbol.startswith(p)), None)
        return _INDEX_PREFIXES[prefix] if prefix else "NYSE"
    if "." not in symbol:
        return "NYSE"
    return _SUFFIX_EXCHANGES.get("." + symbol.rsplit(".", 1)[1])


# The currency each exchange's prices are quoted in, as Yahoo quotes them: London equities in pence (GBp), its
# indices in points read as pounds.
_EXCHANGE_CURRENCIES = {"NSE": "INR", "BSE": "INR", "NYSE": "USD", "NASDAQ": "USD", "LSE": "GBp"}


def currency_for_symbol(symbol: str, exchange: str | None = None) -> str:
    """The quote currency of `symbol` on `exchange` (default: the one its suffix implies): RELIANCE.NS INR, AAPL
    and ^GSPC USD, VOD.L GBp (pence), ^FTSE GBP. An exchange without an entry is the catalogue default's, NSE."""
    exchange = (exchange or exchange_for_symbol(symbol)).strip().upper()
    if exchange == "LSE" and symbol.startswith("^"):
        return "GBP"
    return _EXCHANGE_CURRENCIES.get(exchange, _EXCHANGE_CURRENCIES[DEFAULT_EXCHANGE])


def supported_suffixes() -> str:
    """The suffixes an unlisted symbol may carry, for error messages."""
    return ", ".join(f"{suffix} ({exchange})" for suffix, exchange in _SUFFIX_EXCHANGES.items())
