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
    isin = models.CharField(
        max_length=12, unique=True, null=True, blank=True, help_text="Stable key of listed securities."
    )
    series = models.CharField(
        max_length=4, blank=True, db_default="", help_text="NSE series (EQ, BE, …); blank for indices."
    )
    listed_on = models.DateField(null=True, blank=True)
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


class CandleSeries(models.Model):
    """What we know about the provider's history of one symbol and timeframe; its row also serialises the
    writers of the series' coverage intervals."""

    symbol = models.CharField(max_length=20)
    timeframe = models.CharField(max_length=3, choices=Timeframe.choices)
    history_starts_at = models.DateTimeField(
        null=True,
        blank=True,
        help_text="The provider has nothing before this (its first bar); reads do not ask for earlier bars.",
    )

    class Meta:
        verbose_name_plural = "candle series"
        constraints = [models.UniqueConstraint(fields=["symbol", "timeframe"], name="market_series_unique")]

    def __str__(self) -> str:
        return f"{self.symbol} {self.timeframe}"


class CoverageInterval(models.Model):
    """A range [covered_from, covered_to) of a series we asked the provider for, so reads fetch only what was
    never asked. A series' intervals are disjoint: ranges that touch or overlap are merged into one."""

    series = models.ForeignKey(CandleSeries, on_delete=models.CASCADE, related_name="intervals")
    covered_from = models.DateTimeField()
    covered_to = models.DateTimeField()
    last_synced_at = models.DateTimeField(help_text="When the end of this interval was last fetched.")
    source = models.CharField(max_length=20)

    class Meta:
        ordering = ["series", "covered_from"]
        indexes = [models.Index(fields=["series", "covered_from"], name="market_interval_series_from")]
        constraints = [
            models.CheckConstraint(
                condition=Q(covered_from__lt=F("covered_to")), name="market_interval_not_empty"
            )
        ]

    def __str__(self) -> str:
        return f"{self.series}: {self.covered_from:%Y-%m-%d %H:%M} → {self.covered_to:%Y-%m-%d %H:%M}"


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


class DataIssue(models.Model):
    """A data-quality finding for one symbol and timeframe (market/quality.py), kept until a later check no
    longer finds it; `unavailable` marks missing bars the provider could not supply when asked."""

    class Kind(models.TextChoices):
        MISSING = "missing", "Missing bars"
        OUTSIDE_SESSION = "outside_session", "Bar outside the session"
        DUPLICATE = "duplicate", "Duplicate bar time"
        NON_MONOTONIC = "non_monotonic", "Bars out of order"
        JUMP = "jump", "Jump without a corporate action"
        ZERO_VOLUME = "zero_volume", "Run of zero volume"
        STALE = "stale", "Stale last bar"

    symbol = models.CharField(max_length=20)
    timeframe = models.CharField(max_length=3, choices=Timeframe.choices)
    kind = models.CharField(max_length=20, choices=Kind.choices)
    start = models.DateTimeField()
    end = models.DateTimeField()
    details = models.JSONField(default=dict, blank=True)
    unavailable = models.BooleanField(default=False, help_text="The provider had nothing for it when asked.")
    resolved = models.BooleanField(default=False)
    detected_at = models.DateTimeField()
    checked_at = models.DateTimeField()
    resolved_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["symbol", "timeframe", "start"]
        constraints = [
            models.UniqueConstraint(
                fields=["symbol", "timeframe", "kind", "start"], name="market_dataissue_unique"
            )
        ]
        indexes = [models.Index(fields=["resolved", "symbol", "timeframe"], name="market_dataissue_open")]

    def __str__(self) -> str:
        return f"{self.symbol} {self.timeframe} {self.kind} {self.start:%Y-%m-%d %H:%M}"


class CorporateAction(models.Model):
    """A split, bonus issue, dividend or other price adjustment of one instrument, effective from `ex_date`.

    Candles are stored as traded; reads apply the factors of the actions after each bar (market/adjust.py).
    `ratio` is new shares per old share (a 1:2 split or a 1:1 bonus is 2.0); `amount` is a cash dividend per
    share; `factor` is a price multiplier for bars before `ex_date`, for events the provider misses (a demerger:
    staff enter the exchange's cost-of-acquisition split, e.g. 0.955)."""

    class Kind(models.TextChoices):
        SPLIT = "split", "Split"
        BONUS = "bonus", "Bonus issue"
        DIVIDEND = "dividend", "Dividend"
        ADJUSTMENT = "adjustment", "Other adjustment (demerger, rights…)"

    symbol = models.CharField(max_length=20)
    ex_date = models.DateField()
    kind = models.CharField(max_length=12, choices=Kind.choices)
    ratio = models.FloatField(null=True, blank=True, help_text="Split/bonus: new shares per old share.")
    amount = models.FloatField(null=True, blank=True, help_text="Dividend per share, in the quote currency.")
    factor = models.FloatField(
        null=True, blank=True, help_text="Adjustment: price multiplier before ex_date."
    )
    source = models.CharField(
        max_length=20, default="staff", help_text="Provider that reported it, or 'staff'."
    )
    note = models.CharField(max_length=200, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["symbol", "ex_date"]
        constraints = [
            models.UniqueConstraint(fields=["symbol", "ex_date", "kind"], name="market_action_unique"),
            models.CheckConstraint(
                condition=(
                    Q(kind__in=["split", "bonus"], ratio__gt=0)
                    | Q(kind="dividend", amount__gt=0)
                    | Q(kind="adjustment", factor__gt=0, factor__lte=1)
                ),
                name="market_action_values_valid",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.symbol} {self.ex_date} {self.kind}"


class SyncRun(models.Model):
    """One sync of every active instrument for a timeframe, cut into batches of symbols (SyncBatch) that share a
    fetch window. Progress and totals are read from its batches; running it again resumes it (done batches are
    skipped)."""

    timeframe = models.CharField(max_length=3, choices=Timeframe.choices)
    provider = models.CharField(max_length=100, help_text="Provider name the batches fetch from.")
    days = models.PositiveIntegerField(help_text="History wanted: the run fetches what coverage lacks of it.")
    batch_size = models.PositiveIntegerField()
    trigger = models.CharField(max_length=20, default="command", help_text="beat, command or admin.")
    batches_total = models.PositiveIntegerField(default=0)
    symbols_total = models.PositiveIntegerField(default=0)
    planned_at = models.DateTimeField(help_text="'Now' of the plan: every batch's window ends here.")
    started_at = models.DateTimeField(null=True, blank=True, help_text="Last (re)start.")
    finished_at = models.DateTimeField(
        null=True, blank=True, help_text="When no batch was left pending or running."
    )

    class Meta:
        ordering = ["-planned_at"]

    def __str__(self) -> str:
        return f"sync run {self.pk} {self.timeframe} {self.planned_at:%Y-%m-%d %H:%M}"


class SyncBatch(models.Model):
    """Symbols of one SyncRun fetched by one provider request over one window [start, end). `pending` holds the
    symbols still to fetch (a retry fetches only those); `errors` the last error of each symbol that had one."""

    class Status(models.TextChoices):
        PENDING = "pending", "Pending"
        RUNNING = "running", "Running"
        DONE = "done", "Done"
        FAILED = "failed", "Failed"

    run = models.ForeignKey(SyncRun, on_delete=models.CASCADE, related_name="batches")
    number = models.PositiveIntegerField()
    symbols = models.JSONField()
    pending = models.JSONField()
    start = models.DateTimeField()
    end = models.DateTimeField()
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.PENDING)
    attempts = models.PositiveIntegerField(default=0)
    inserted = models.PositiveIntegerField(default=0)
    updated = models.PositiveIntegerField(default=0)
    not_found = models.PositiveIntegerField(default=0, help_text="Symbols the provider has no data for.")
    errors = models.JSONField(default=dict, blank=True)
    claimed_at = models.DateTimeField(null=True, blank=True, help_text="When a worker last took it.")
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["run", "number"]
        constraints = [models.UniqueConstraint(fields=["run", "number"], name="market_syncbatch_unique")]
        indexes = [models.Index(fields=["run", "status"], name="market_syncbatch_run_status")]

    def __str__(self) -> str:
        return f"{self.run_id}/{self.number} {self.status}"
