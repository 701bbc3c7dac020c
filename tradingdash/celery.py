"""The Celery app. Configuration comes from Django settings (CELERY_*); the beat schedule from
tradingdash.schedule, loaded into django-celery-beat so staff can see and edit it in admin."""

import os

from celery import Celery

from tradingdash.schedule import BEAT_SCHEDULE

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tradingdash.settings")

app = Celery("tradingdash")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.conf.beat_schedule = BEAT_SCHEDULE
app.autodiscover_tasks()
