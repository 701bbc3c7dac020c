"""Coverage as disjoint intervals per (symbol, timeframe) instead of one merged span.

The old span claimed everything between its ends as fetched, also the holes between two far-apart reads. The
intervals are rebuilt from the candles actually stored inside the old span: one interval per run of candles,
split wherever two stored bars are further apart than any exchange closure (two weeks, or three bars), each
from its first bar's open to its last bar's close. Nothing stored means nothing claimed: the next read fetches."""

from datetime import timedelta

import django.db.models.deletion
from django.db import migrations, models

# The timeframes' bar lengths when this was written (market.timeframes), frozen for the migration.
BARS = {
    "1m": timedelta(minutes=1),
    "5m": timedelta(minutes=5),
    "15m": timedelta(minutes=15),
    "1H": timedelta(hours=1),
    "1D": timedelta(days=1),
    "1W": timedelta(weeks=1),
}


def _runs(timestamps, gap):
    """(first, last) of each run of timestamps without a gap longer than `gap`."""
    first = last = None
    for stamp in timestamps:
        if first is None:
            first = last = stamp
        elif stamp - last > gap:
            yield first, last
            first = last = stamp
        else:
            last = stamp
    if first is not None:
        yield first, last


def intervals_from_stored_candles(apps, schema_editor):
    CandleCoverage = apps.get_model("market", "CandleCoverage")
    CandleSeries = apps.get_model("market", "CandleSeries")
    CoverageInterval = apps.get_model("market", "CoverageInterval")
    MarketData = apps.get_model("market", "MarketData")
    for coverage in CandleCoverage.objects.order_by("symbol", "timeframe").iterator():
        bar = BARS[coverage.timeframe]
        series, _ = CandleSeries.objects.get_or_create(symbol=coverage.symbol, timeframe=coverage.timeframe)
        stamps = (
            MarketData.objects.filter(
                symbol=coverage.symbol,
                timeframe=coverage.timeframe,
                timestamp__gte=coverage.covered_from,
                timestamp__lte=coverage.covered_to,
            )
            .order_by("timestamp")
            .values_list("timestamp", flat=True)
            .iterator(chunk_size=10_000)
        )
        CoverageInterval.objects.bulk_create(
            CoverageInterval(
                series=series,
                covered_from=first,
                covered_to=last + bar,
                last_synced_at=coverage.last_synced_at,
                source=coverage.source,
            )
            for first, last in _runs(stamps, max(timedelta(days=14), 3 * bar))
        )


class Migration(migrations.Migration):

    dependencies = [
        ('market', '0002_seed_catalogue_and_holidays'),
    ]

    operations = [
        migrations.CreateModel(
            name='CandleSeries',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('symbol', models.CharField(max_length=20)),
                ('timeframe', models.CharField(choices=[('1m', '1 minute'), ('5m', '5 minutes'), ('15m', '15 minutes'), ('1H', '1 hour'), ('1D', '1 day'), ('1W', '1 week')], max_length=3)),
                ('history_starts_at', models.DateTimeField(blank=True, help_text='The provider has nothing before this (its first bar); reads do not ask for earlier bars.', null=True)),
            ],
            options={
                'verbose_name_plural': 'candle series',
            },
        ),
        migrations.CreateModel(
            name='CoverageInterval',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('covered_from', models.DateTimeField()),
                ('covered_to', models.DateTimeField()),
                ('last_synced_at', models.DateTimeField(help_text='When the end of this interval was last fetched.')),
                ('source', models.CharField(max_length=20)),
            ],
            options={
                'ordering': ['series', 'covered_from'],
            },
        ),
        migrations.AddConstraint(
            model_name='candleseries',
            constraint=models.UniqueConstraint(fields=('symbol', 'timeframe'), name='market_series_unique'),
        ),
        migrations.AddField(
            model_name='coverageinterval',
            name='series',
            field=models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='intervals', to='market.candleseries'),
        ),
        migrations.AddIndex(
            model_name='coverageinterval',
            index=models.Index(fields=['series', 'covered_from'], name='market_interval_series_from'),
        ),
        migrations.AddConstraint(
            model_name='coverageinterval',
            constraint=models.CheckConstraint(condition=models.Q(('covered_from__lt', models.F('covered_to'))), name='market_interval_not_empty'),
        ),
        migrations.RunPython(intervals_from_stored_candles, migrations.RunPython.noop),
        migrations.DeleteModel(
            name='CandleCoverage',
        ),
    ]
