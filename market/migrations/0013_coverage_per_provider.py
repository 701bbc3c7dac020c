"""Coverage per provider: CandleSeries.history_source names the provider whose first bar history_starts_at is.
A claim already stored is kept for the provider of the series' earliest interval (the one that found the
start); a series without intervals keeps none."""

from django.db import migrations, models


def claims_to_their_provider(apps, schema_editor):
    CandleSeries = apps.get_model("market", "CandleSeries")
    CoverageInterval = apps.get_model("market", "CoverageInterval")
    for series in CandleSeries.objects.filter(history_starts_at__isnull=False).iterator():
        first = CoverageInterval.objects.filter(series=series).order_by("covered_from").first()
        if first is None:
            series.history_starts_at = None
        else:
            series.history_source = first.source
        series.save(update_fields=["history_starts_at", "history_source"])


class Migration(migrations.Migration):
    dependencies = [
        ("market", "0012_sync_runs"),
    ]

    operations = [
        migrations.AddField(
            model_name="candleseries",
            name="history_source",
            field=models.CharField(
                blank=True, default="", help_text="The provider history_starts_at is a claim about.", max_length=20
            ),
        ),
        migrations.AlterField(
            model_name="candleseries",
            name="history_starts_at",
            field=models.DateTimeField(
                blank=True,
                help_text="history_source has nothing before this (its first bar); its reads do not ask for earlier bars.",
                null=True,
            ),
        ),
        migrations.RunPython(claims_to_their_provider, migrations.RunPython.noop),
    ]
