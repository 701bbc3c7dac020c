import django.utils.timezone
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("alerts", "0004_alert_threshold_set_at"),
    ]

    operations = [
        migrations.AlterField(
            model_name="alert",
            name="threshold_set_at",
            field=models.DateTimeField(
                default=django.utils.timezone.now,
                help_text="When the threshold (or symbol) was set: a price threshold is in the share count of "
                "that day, scaled by the splits and bonus issues going ex since.",
            ),
        ),
    ]
