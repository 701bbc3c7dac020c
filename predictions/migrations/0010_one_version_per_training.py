"""At most one version per algorithm (and key) for one training task.

Before this, two workers holding one training task at once (a redelivery while it still ran, tradingdash.W006)
could each store a version of the same algorithm. Such duplicates are resolved before the constraint is added:
in each group one version keeps the task id and the others lose it (`training_task_id` emptied). None is deleted,
since predictions may reference any of them and their files stay with their rows; a detached version is an ordinary
old version (kept for audit), and a detached unfinished one is deleted with its file by the daily
`prune_unfinished_models` two days after it was stored, as any run that nothing will resume.

The one kept, in this order:
- the active one: it is served, so a redelivery of the task returns the version that is served;
- else a complete one over an unfinished one: a redelivery treats a run as finished only when all its versions are
  complete, so keeping an unfinished one would have a finished run resumed (and trained) again;
- else the first stored (lowest id): the first insert is the one the constraint keeps from now on (the worker
  whose insert is refused takes it), so the past is resolved as the code resolves the race.

Written with the ORM only (no SQL), so it runs on PostgreSQL and SQLite alike.
"""

from django.db import migrations, models

KEY = ("training_task_id", "symbol", "timeframe", "horizon", "algorithm")


def detach_duplicate_versions(apps, schema_editor):
    TrainedModel = apps.get_model("predictions", "TrainedModel")
    groups = list(
        TrainedModel.objects.exclude(training_task_id="")
        .order_by()
        .values(*KEY)
        .annotate(stored=models.Count("pk"))
        .filter(stored__gt=1)
        .values_list(*KEY)
    )
    for group in groups:
        versions = list(
            TrainedModel.objects.filter(**dict(zip(KEY, group, strict=True)))
            .order_by("-is_active", "-training_complete", "pk")
            .values_list("pk", flat=True)
        )
        TrainedModel.objects.filter(pk__in=versions[1:]).update(training_task_id="")


class Migration(migrations.Migration):
    dependencies = [
        ("predictions", "0009_trained_on_revision"),
    ]

    operations = [
        migrations.RunPython(detach_duplicate_versions, migrations.RunPython.noop, elidable=True),
        migrations.AddConstraint(
            model_name="trainedmodel",
            constraint=models.UniqueConstraint(
                condition=models.Q(("training_task_id", ""), _negated=True),
                fields=("training_task_id", "symbol", "timeframe", "horizon", "algorithm"),
                name="predictions_one_version_per_training",
            ),
        ),
    ]
