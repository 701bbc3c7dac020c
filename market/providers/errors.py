"""Typed errors every market data provider raises; the API maps them to 404 / 503."""

from __future__ import annotations


class ProviderError(Exception):
    """Base class for failures of a market data provider. Any one that is not SymbolNotFound maps to stored
    data marked stale, or 503 with Retry-After when nothing is stored."""

    retry_after: int = 60


class SymbolNotFound(ProviderError):
    """The provider has no data for this symbol (maps to 404)."""

    def __init__(self, symbol: str, message: str | None = None):
        self.symbol = symbol
        super().__init__(message or f"No market data for symbol {symbol!r}")


class ProviderUnavailable(ProviderError):
    """The provider could not be reached or failed transiently (maps to 503 with Retry-After)."""

    def __init__(self, message: str = "Market data provider is unavailable", retry_after: int = 60):
        self.retry_after = retry_after
        super().__init__(message)


class RateLimited(ProviderUnavailable):
    """The provider refused us for sending too many requests (maps to 503 with Retry-After)."""

    def __init__(self, message: str = "Market data provider rate limit reached", retry_after: int = 60):
        super().__init__(message, retry_after=retry_after)


class UnreadableData(ProviderError):
    """The provider's data could not be read (a corrupt file, an answer we do not understand); says where."""

    def __init__(
        self, message: str, *, file: str | None = None, line: int | None = None, retry_after: int = 300
    ):
        self.file = file
        self.line = line
        self.retry_after = retry_after
        where = ", ".join(part for part in (file, f"line {line}" if line is not None else None) if part)
        super().__init__(f"{where}: {message}" if where else message)
