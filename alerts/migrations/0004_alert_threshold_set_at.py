from django.db import migrations, models
from django.db.models import F


def from_created_at(apps, schema_editor):
    """An existing alert's threshold was last set no earlier than its creation: the best date there is."""
    apps.get_model("alerts", "Alert").objects.update(threshold_set_at=F("created_at"))


class Migration(migrations.Migration):
    dependencies = [
        ("alerts", "0003_delivery_next_attempt_at"),
    ]

    operations = [
        migrations.AddField(
            model_name="alert",
            name="threshold_set_at",
            field=models.DateTimeField(null=True),
        ),
        migrations.RunPython(from_created_at, migrations.RunPython.noop),
    ]
