from __future__ import annotations

from decimal import Decimal

from django.core.exceptions import ValidationError
from django.core.validators import MinValueValidator
from django.db import models
from django.db.models import F, Q

from market.calendar import EXCHANGES
from market.presentation import default_tick
from market.timeframes import STORED_TIMEFRAME_CHOICES


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
    tick_size = models.DecimalField(
        max_digits=10,
        decimal_places=4,
        null=True,
        blank=True,
        validators=[MinValueValidator(Decimal("0.0001"))],
        help_text=(
            "Price step in the quote currency; API prices of this instrument are rounded to it. Blank: 0.05 for "
            "NSE and BSE equities (issue #10: 'tick 0.05 for NSE equities where it applies'), two decimals for "
            "indices and other exchanges. Set it where the exchange's tick for this instrument differs."
        ),
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["symbol"]
        constraints = [
            models.CheckConstraint(
                condition=Q(tick_size__isnull=True) | Q(tick_size__gt=0),
                name="market_instrument_tick_positive",
            )
        ]

    def __str__(self) -> str:
        return self.symbol

    @property
    def price_tick(self) -> Decimal | None:
        """The step API prices are rounded to: staff's tick_size, else the exchange's equity default."""
        return self.tick_size or default_tick(self.exchange.strip().upper(), self.kind)


class MarketData(models.Model):
    """One OHLCV candle (the seed's fields) and the provider that wrote it; timestamp is the bar's open, UTC.

    On PostgreSQL the table is partitioned by `timeframe`, minute bars then by month on `timestamp` (migration
    0011, market/partitions.py): its primary key there is (id, timeframe, timestamp) while Django keeps `id` (a
    CompositePrimaryKey would shut the model out of the admin). So every unique constraint must include
    `timeframe` and `timestamp`, their column types cannot be altered in place, and no foreign key can point
    here."""

    symbol = models.CharField(max_length=20)
    timeframe = models.CharField(max_length=3, choices=STORED_TIMEFRAME_CHOICES)
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
            # Also the index for "candles of one symbol and timeframe in time order". Includes the partition
            # columns, as any unique constraint of this model must (market_candle_unique is the upserts' target).
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


# A candle's fields in the order market.columns.columns_from_rows takes them.
BAR_FIELDS = (
    "timestamp",
    "open_price",
    "high_price",
    "low_price",
    "close_price",
    "volume",
    "final",
    "source",
)


class RenderedMonth(models.Model):
    """A UTC calendar month of one symbol's stored daily bars as a historical response renders them (the JSON
    objects of market.presentation.candle_objects, unadjusted, in the exchange's clock at the instrument's tick),
    so that a read of 2,500 candles joins ~120 of these instead of reading and rendering 2,500 rows (bench/README.md,
    "Ninth look").

    On PostgreSQL, triggers on market_marketdata and its daily partition (migrations 0014-0016) mark a month
    `stale` in the same transaction as any insert, update or delete of its daily bars, by whatever path (upserts,
    the admin, SQL), create the row of a month that had none and drop them all on a TRUNCATE: every month with
    daily bars has a row, and a row not stale is what its bars render to now. Readers use a row only when it is
    not stale and was rendered with the symbol's current time zone and tick, and read the other months' bars
    themselves; writers re-render (market.services.rendered_months_refresh) holding the row's lock, which the
    triggers also take. Unused on other databases."""

    symbol = models.CharField(max_length=20)
    timeframe = models.CharField(max_length=3, choices=STORED_TIMEFRAME_CHOICES)
    month = models.DateField(
        help_text="The first day of the UTC month whose bars (by their open) this holds."
    )
    stale = models.BooleanField(default=True, help_text="A bar of the month changed since it was rendered.")
    time_zone = models.CharField(
        max_length=64, blank=True, default="", help_text="The zone it was rendered in."
    )
    tick = models.CharField(
        max_length=24, blank=True, default="", help_text="The price tick it was rendered at."
    )
    times = models.BinaryField(
        default=b"", help_text="Each bar's open, UTC epoch seconds (int64, native order)."
    )
    ends = models.BinaryField(default=b"", help_text="Where each bar's object ends in `body` (int32).")
    finals = models.BinaryField(default=b"", help_text="Each bar's `final` (one byte each).")
    sources = models.TextField(blank=True, default="", help_text="Each bar's source, one per line.")
    body = models.BinaryField(
        default=b"", help_text="The bars' JSON objects, comma-separated, in time order."
    )
    rendered_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["symbol", "timeframe", "month"], name="market_rendered_month_unique"
            )
        ]

    def __str__(self) -> str:
        return f"{self.symbol} {self.timeframe} {self.month:%Y-%m}"


class CandleSeries(models.Model):
    """What we know about the providers' history of one symbol and timeframe; its row also serialises the
    writers of the series' coverage intervals. Coverage is per provider (CoverageInterval.source): what one
    provider answered says nothing of what another would (a CSV file of two years, synthetic bars in a demo
    database later served by Yahoo)."""

    symbol = models.CharField(max_length=20)
    timeframe = models.CharField(max_length=3, choices=STORED_TIMEFRAME_CHOICES)
    history_starts_at = models.DateTimeField(
        null=True,
        blank=True,
        help_text="history_source has nothing before this (its first bar); its reads do not ask for earlier bars.",
    )
    history_source = models.CharField(
        max_length=20, blank=True, default="", help_text="The provider history_starts_at is a claim about."
    )

    class Meta:
        verbose_name_plural = "candle series"
        constraints = [models.UniqueConstraint(fields=["symbol", "timeframe"], name="market_series_unique")]

    def __str__(self) -> str:
        return f"{self.symbol} {self.timeframe}"


class CoverageInterval(models.Model):
    """A range [covered_from, covered_to) of a series we asked the provider `source` for, so reads from that
    provider fetch only what it was never asked. A series' intervals of one source are disjoint: ranges that
    touch or overlap are merged into one."""

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


class MarketSession(models.Model):
    """A day on which an exchange trades other hours than its regular session, as the exchange announced it:
    a special session on a holiday or weekend (Diwali's Muhurat trading, a budget-day Saturday) or a shortened
    day. Its hours replace that day's regular session (market.calendar.SessionOverride); one per day."""

    class Kind(models.TextChoices):
        SPECIAL = "special", "Special session"
        SHORTENED = "shortened", "Shortened day"

    exchange = models.CharField(max_length=10, default="NSE", choices=[(name, name) for name in EXCHANGES])
    date = models.DateField(help_text="The trading day, in the exchange's calendar.")
    kind = models.CharField(max_length=10, choices=Kind.choices, default=Kind.SPECIAL)
    open_time = models.TimeField(help_text="Session open, exchange local time (NSE: IST).")
    close_time = models.TimeField(help_text="Session close, exchange local time (NSE: IST).")
    description = models.CharField(max_length=200)
    source = models.CharField(
        max_length=300, blank=True, help_text="Where the exchange announced it (circular number or URL)."
    )

    class Meta:
        ordering = ["date"]
        constraints = [
            models.UniqueConstraint(fields=["exchange", "date"], name="market_session_unique"),
            models.CheckConstraint(
                condition=Q(open_time__lt=F("close_time")), name="market_session_opens_before_close"
            ),
        ]

    def __str__(self) -> str:
        return (
            f"{self.exchange} {self.date} {self.open_time:%H:%M}-{self.close_time:%H:%M}: {self.description}"
        )


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
    timeframe = models.CharField(max_length=3, choices=STORED_TIMEFRAME_CHOICES)
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

    STAFF = "staff"  # the source of rows entered in admin, which a sync never overwrites

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

    def clean(self) -> None:
        """One share-count action per day: a bonus is a split to the prices (Yahoo reports a 1:1 bonus as a 2:1
        split), so a bonus and a split of the same day would divide every earlier price twice."""
        share_count = (self.Kind.SPLIT, self.Kind.BONUS)
        if self.kind not in share_count or not self.symbol or not self.ex_date:
            return
        other = (
            CorporateAction.objects.filter(symbol=self.symbol, ex_date=self.ex_date, kind__in=share_count)
            .exclude(pk=self.pk)
            .first()
        )
        if other is not None:
            raise ValidationError(
                {
                    "kind": f"A {other.get_kind_display().lower()} of {other.ratio:g} from {other.source} is "
                    f"already stored for {self.symbol} on {self.ex_date}; change that one instead."
                }
            )


class SyncRun(models.Model):
    """One sync of every active instrument for a timeframe, cut into batches of symbols (SyncBatch) that share a
    fetch window. Progress and totals are read from its batches; running it again resumes it (done batches are
    skipped)."""

    timeframe = models.CharField(max_length=3, choices=STORED_TIMEFRAME_CHOICES)
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
