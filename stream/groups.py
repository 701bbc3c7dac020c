"""Channel-layer group names. Group names allow only ASCII letters, digits, '-', '_' and '.', so the two other
characters a symbol may hold ('^' of indices, '&' as in M&M) are spelled out; symbols never contain '_'."""

from __future__ import annotations

TOPICS = ("quote", "candle", "signal", "prediction")
_ESCAPES = {"^": "_x5e", "&": "_x26"}


def symbol_group(topic: str, symbol: str) -> str:
    """The group of one topic of one symbol, e.g. `quote.RELIANCE.NS`, `quote._x5eNSEI`."""
    if topic not in TOPICS:
        raise ValueError(f"Unknown topic {topic!r}")
    for char, escape in _ESCAPES.items():
        symbol = symbol.replace(char, escape)
    return f"{topic}.{symbol}"


def user_group(user_id: int) -> str:
    """The private group of one user: alerts and task updates go here only."""
    return f"user.{int(user_id)}"
