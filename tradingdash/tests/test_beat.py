"""Beat seeds the code's schedule into django-celery-beat at every start; staff edit and pause it in admin."""

import json
from datetime import timedelta

import pytest
from celery.utils.imports import symbol_by_name
from django.conf import settings
from django.utils import timezone
from django_celery_beat.models import CrontabSchedule, PeriodicTask

from tradingdash.beat import STANDBY_SECONDS
from tradingdash.celery import app
from tradingdash.schedule import BEAT_SCHEDULE

# Transactional: the scheduler closes connections it finds inside a transaction, as beat does between ticks.
pytestmark = pytest.mark.django_db(transaction=True)


def start_beat(schedule: dict | None = None) -> None:
    """What `celery beat` does at start with the configured scheduler: load the schedule from the database after
    writing the code's entries into it."""
    app.conf.beat_schedule = schedule or BEAT_SCHEDULE
    try:
        symbol_by_name(settings.CELERY_BEAT_SCHEDULER)(app=app)
    finally:
        app.conf.beat_schedule = BEAT_SCHEDULE


def test_staff_edits_survive_a_restart_of_beat():
    start_beat()
    signals = PeriodicTask.objects.get(name="signals-daily")
    signals.crontab = CrontabSchedule.objects.create(
        minute="0", hour="17", day_of_week="mon-fri", timezone=signals.crontab.timezone
    )
    signals.kwargs = json.dumps({"timeframe": "1W"})
    signals.save()
    PeriodicTask.objects.filter(name="predictions-retrain-nightly").update(enabled=False)

    start_beat()  # a deploy restarts beat

    signals = PeriodicTask.objects.get(name="signals-daily")
    assert (signals.crontab.hour, signals.crontab.minute) == ("17", "0")
    assert json.loads(signals.kwargs) == {"timeframe": "1W"}
    assert PeriodicTask.objects.get(name="predictions-retrain-nightly").enabled is False


def test_an_entry_nobody_edited_follows_the_code():
    start_beat()
    changed = {**BEAT_SCHEDULE, "market-repair-nightly": {**BEAT_SCHEDULE["market-repair-nightly"]}}
    changed["market-repair-nightly"]["kwargs"] = {"timeframes": ["1D", "1W"]}
    start_beat(changed)
    repair = PeriodicTask.objects.get(name="market-repair-nightly")
    assert json.loads(repair.kwargs) == {"timeframes": ["1D", "1W"]}
    assert set(BEAT_SCHEDULE) <= set(PeriodicTask.objects.values_list("name", flat=True))


def _beat(schedule: dict):
    app.conf.beat_schedule = schedule
    try:
        return symbol_by_name(settings.CELERY_BEAT_SCHEDULER)(app=app)
    finally:
        app.conf.beat_schedule = BEAT_SCHEDULE


def _renamed(old: str, new: str) -> dict:
    return {(new if name == old else name): entry for name, entry in BEAT_SCHEDULE.items()}


def test_an_entry_renamed_in_the_code_is_scheduled_once():
    """The old row stayed enabled in django-celery-beat's table and beat kept scheduling it beside the renamed
    entry: the nightly repair ran twice every night, for ever."""
    _beat(BEAT_SCHEDULE)
    scheduler = _beat(_renamed("market-repair-nightly", "market-repair-nightly-v2"))
    # Beat schedules every enabled row (django-celery-beat loads those due within a few hours at a time).
    scheduled = PeriodicTask.objects.filter(enabled=True, task="market.repair_watchlist")
    assert list(scheduled.values_list("name", flat=True)) == ["market-repair-nightly-v2"]
    assert "market-repair-nightly" not in scheduler.schedule


def test_a_removed_entry_staff_changed_or_created_is_kept():
    _beat(BEAT_SCHEDULE)
    PeriodicTask.objects.filter(name="market-repair-nightly").update(
        kwargs=json.dumps({"timeframes": ["1W"]})
    )
    PeriodicTask.objects.create(
        name="staff-extra-scoring",
        task="predictions.score_predictions",
        crontab=CrontabSchedule.objects.create(minute="30", timezone="Asia/Kolkata"),
    )
    _beat({name: e for name, e in BEAT_SCHEDULE.items() if name != "market-repair-nightly"})
    kept = PeriodicTask.objects.filter(
        enabled=True, name__in=["market-repair-nightly", "staff-extra-scoring"]
    )
    assert kept.count() == 2


def _due_every_minute(scheduler, sent: list) -> None:
    """A minute-interval entry last run a day ago (due now); what beat sends is recorded, not published."""
    row = PeriodicTask.objects.get(name="score-every-minute")
    row.last_run_at = timezone.now() - timedelta(days=1)
    row.save()
    scheduler.apply_entry = lambda entry, producer=None: sent.append(entry.name)


def test_a_second_beat_stands_by_while_the_first_sends():
    """Two beats (scaled by mistake, `make beat` beside compose's) each sent every task: syncs, signals and
    retraining ran twice per period."""
    schedule = {"score-every-minute": {"task": "predictions.score_predictions", "schedule": 60.0}}
    first, second = _beat(schedule), _beat(schedule)
    sent_first, sent_second = [], []
    _due_every_minute(first, sent_first)
    _due_every_minute(second, sent_second)
    first.tick()
    second.tick()
    assert sent_first == ["score-every-minute"] and sent_second == []
    assert second.tick() == STANDBY_SECONDS
    first.close()  # the first beat stops (recording its run): the second takes over at its next tick
    second.tick()
    assert sent_second == []  # the run the first one sent is not sent again
    _due_every_minute(second, sent_second)
    second.tick()
    assert sent_second == ["score-every-minute"]
    second.close()


def test_daily_signals_follow_the_daily_sync_onto_weekend_sessions():
    """A budget-day Saturday or a Muhurat Sunday is a session with a daily bar: the signals run was Monday to
    Friday only, so such a bar never got its scheduled signal while the sync stored it."""
    signals, sync = BEAT_SCHEDULE["signals-daily"]["schedule"], BEAT_SCHEDULE["market-sync-daily"]["schedule"]
    assert signals.day_of_week == sync.day_of_week == set(range(7))
