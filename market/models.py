from __future__ import annotations

from django.db import models
from django.db.models import F, Q

from market.timeframes import Timeframe


class Instrument(models.Model):
    """A tradable symbol or index in the catalogue; `active` ones form the watchlist that scheduled sync covers."""

    class Kind(models.TextChoices):
        EQUITY = "equity", "Equity"
        INDEX = "index", "Index"

    symbol = models.CharField(max_length=20, unique=True)
    name = models.CharField(max_length=100)
    exchange = models.CharField(max_length=10, default="NSE")
    currency = models.CharField(max_length=3, default="INR")
    kind = models.CharField(max_length=10, choices=Kind.choices, default=Kind.EQUITY)
    active = models.BooleanField(default=True, help_text="Included in the scheduled sync (the watchlist).")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["symbol"]

    def __str__(self) -> str:
        return self.symbol


class MarketData(models.Model):
    """One OHLCV candle (the seed's fields) and the provider that wrote it; timestamp is the bar's open, UTC."""

    symbol = models.CharField(max_length=20)
    timeframe = models.CharField(max_length=3, choices=Timeframe.choices)
    timestamp = models.DateTimeField()
    open_price = models.FloatField()
    high_price = models.FloatField()
    low_price = models.FloatField()
    close_price = models.FloatField()
    volume = models.BigIntegerField()
    source = models.CharField(
        max_length=20, help_text="Provider that wrote this candle (yfinance, csv, synthetic…)."
    )
    final = models.BooleanField(
        default=False,
        help_text="The bar had closed (per its exchange calendar) when it was fetched; a partial bar is not final.",
    )
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = "market data"
        verbose_name_plural = "market data"
        constraints = [
            # Also the index for "candles of one symbol and timeframe in time order".
            models.UniqueConstraint(fields=["symbol", "timeframe", "timestamp"], name="market_candle_unique"),
            models.CheckConstraint(
                condition=Q(low_price__gt=0)
                & Q(low_price__lte=F("open_price"))
                & Q(low_price__lte=F("close_price"))
                & Q(high_price__gte=F("open_price"))
                & Q(high_price__gte=F("close_price"))
                & Q(volume__gte=0),
                name="market_candle_ohlcv_valid",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.symbol} {self.timeframe} {self.timestamp:%Y-%m-%d %H:%M}"


class CandleCoverage(models.Model):
    """Which span of a symbol's candles we have fetched, so reads know when to go to the provider."""

    symbol = models.CharField(max_length=20)
    timeframe = models.CharField(max_length=3, choices=Timeframe.choices)
    covered_from = models.DateTimeField()
    covered_to = models.DateTimeField()
    last_synced_at = models.DateTimeField()
    source = models.CharField(max_length=20)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["symbol", "timeframe"], name="market_coverage_unique")]

    def __str__(self) -> str:
        return (
            f"{self.symbol} {self.timeframe}: {self.covered_from:%Y-%m-%d} → {self.covered_to:%Y-%m-%d %H:%M}"
        )


class MarketHoliday(models.Model):
    """A weekday on which the exchange does not trade, as published by the exchange."""

    date = models.DateField()
    exchange = models.CharField(max_length=10, default="NSE")
    description = models.CharField(max_length=200)

    class Meta:
        ordering = ["date"]
        constraints = [models.UniqueConstraint(fields=["exchange", "date"], name="market_holiday_unique")]

    def __str__(self) -> str:
        return f"{self.exchange} {self.date}: {self.description}"
