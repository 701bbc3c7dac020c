"""The Celery app. Configuration comes from Django settings (CELERY_*); the beat schedule from
tradingdash.schedule, loaded into django-celery-beat so staff can see and edit it in admin."""

import os

from celery import Celery
from celery.signals import heartbeat_sent, worker_init, worker_ready

from tradingdash.schedule import BEAT_SCHEDULE

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tradingdash.settings")

app = Celery("tradingdash")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.conf.beat_schedule = BEAT_SCHEDULE
app.autodiscover_tasks()


@worker_init.connect
def computation_preload(**kwargs) -> None:
    """In a worker's main process, before its pool forks: pandas and TA-Lib (which the app's modules import only
    where they compute, to keep them out of web workers) and the configured market data provider, so the pool's
    processes share them from the fork instead of each importing them (~0.5-1.5 s and ~35 MiB) on its first task.
    Not TensorFlow: it is imported only where an LSTM is trained or run, after the fork."""
    import django
    from django.apps import apps

    if (
        not apps.ready
    ):  # Celery's Django fixup sets Django up before worker_init, when it imports the task modules
        django.setup()
    import pandas  # noqa: F401
    import talib  # noqa: F401

    from market.sources import provider_preload

    provider_preload()


@worker_ready.connect
def heartbeat_consumer(sender=None, **kwargs) -> None:
    """Remember the worker's consumer: its heartbeats say which queues it consumes."""
    from tradingdash.heartbeats import worker_consumer_set

    worker_consumer_set(sender)


@heartbeat_sent.connect
def heartbeat_for_health(sender=None, **kwargs) -> None:
    """Celery's worker heartbeat (every 2 s, while connected to the broker), written for /health per queue."""
    from tradingdash.heartbeats import worker_alive

    worker_alive()
