"""The migration to one version per training task and algorithm resolves the duplicates two workers holding one
task could store before it: one keeps the task id (the active one, else a complete one, else the first stored),
the others lose it; none is deleted."""

from datetime import UTC, datetime

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

BEFORE = [("predictions", "0009_trained_on_revision")]
AFTER = [("predictions", "0010_one_version_per_training")]
START = datetime(2026, 1, 1, tzinfo=UTC)


@pytest.mark.django_db(transaction=True)
def test_duplicate_versions_of_one_training_keep_one_linked_to_it_and_none_is_deleted():
    executor = MigrationExecutor(connection)
    executor.migrate(BEFORE)
    TrainedModel = executor.loader.project_state(BEFORE).apps.get_model("predictions", "TrainedModel")
    versions = iter(range(1, 100))

    def stored(algorithm: str, task_id: str, **fields) -> int:
        return TrainedModel.objects.create(
            symbol="TCS.NS",
            timeframe="1D",
            horizon=1,
            algorithm=algorithm,
            version=next(versions),
            data_start=START,
            data_end=START,
            n_samples=100,
            artifact=f"models/{algorithm}.joblib",
            artifact_sha256="0" * 64,
            training_task_id=task_id,
            **fields,
        ).pk

    # Finished run held twice: the second holder's svr was promoted over the first's.
    first_svr = stored("svr", "run-1")
    served_svr = stored("svr", "run-1", is_active=True)
    # A run whose first holder finished and whose second died half-way.
    done_rf = stored("random_forest", "run-2")
    stored("random_forest", "run-2", training_complete=False)
    # An unfinished run held twice: the first stored stays.
    first_lstm = stored("lstm", "run-3", training_complete=False)
    stored("lstm", "run-3", training_complete=False)
    # Not duplicates: no task (manage.py train_models), or one version per task.
    untracked = [stored("ensemble", ""), stored("ensemble", "")]
    single = stored("ensemble", "run-4")

    executor = MigrationExecutor(connection)
    executor.loader.build_graph()
    executor.migrate(AFTER)
    TrainedModel = executor.loader.project_state(AFTER).apps.get_model("predictions", "TrainedModel")
    linked = dict(TrainedModel.objects.values_list("pk", "training_task_id"))
    assert len(linked) == 9  # none deleted
    assert {pk for pk, task_id in linked.items() if task_id} == {served_svr, done_rf, first_lstm, single}
    assert linked[first_svr] == "" and all(linked[pk] == "" for pk in untracked)

    executor = MigrationExecutor(connection)
    executor.loader.build_graph()
    executor.migrate(executor.loader.graph.leaf_nodes())
