"""Beat's scheduler: django-celery-beat's database scheduler, seeding the code's schedule (tradingdash.schedule)
at every start without undoing what staff changed in admin.

django-celery-beat writes each code entry over its row at every start, so an edited crontab, kwargs or expiry
went back to the code's at the next restart (a deploy), silently. Here each row seeded from code carries a
fingerprint of what was seeded (in its description); at start a row still as seeded follows the code (so a
changed schedule in code is deployed), and a row staff changed since is left as they set it. A row
seeded from code whose entry the code no longer has (removed or renamed), unchanged since, is deleted: every
enabled row is scheduled, so it would otherwise run for ever, a renamed one beside its successor.

Exactly one beat sends: each holds a lease in the shared cache (Redis), renewed at every tick; a second beat
(scaled by mistake, `make beat` beside compose's, an old container still stopping) waits on standby until the
lease lapses, instead of sending every task a second time."""

from __future__ import annotations

import hashlib
import re
import uuid

import structlog
from django.core.cache import cache
from django_celery_beat.models import PeriodicTask
from django_celery_beat.schedulers import DatabaseScheduler

from tradingdash import heartbeats

logger = structlog.get_logger(__name__)

_SEAL = re.compile(r"\[seeded from code: ([0-9a-f]{12})\]")
_NOTE = "Schedule from tradingdash/schedule.py; changes made here are kept when beat restarts."


def seeded_fingerprint(task: PeriodicTask) -> str:
    """What a row schedules (its enabled flag and run bookkeeping aside), as a short hash."""
    schedule = task.crontab or task.interval or task.solar or task.clocked
    fields = (
        task.task,
        f"{type(schedule).__name__}:{schedule}",
        task.args,
        task.kwargs,
        task.queue,
        task.exchange,
        task.routing_key,
        task.headers,
        task.priority,
        task.expire_seconds,
        task.expires,
        task.one_off,
        task.start_time,
    )
    return hashlib.sha256(repr(fields).encode()).hexdigest()[:12]


def _as_seeded(task: PeriodicTask) -> bool:
    """The row is what the code seeded last (or carries no seal: a row from before seals, adopted)."""
    found = _SEAL.search(task.description or "")
    return found is None or found.group(1) == seeded_fingerprint(task)


LEASE_KEY = "beat:lease"
LEASE_SECONDS = 15  # three of beat's longest sleeps (max_interval, 5 s): a live beat renews it in time
STANDBY_SECONDS = 5.0


def beat_lease_hold(owner: str) -> bool:
    """Take the one-beat lease, or renew it when `owner` holds it; False while another beat does."""
    if cache.add(LEASE_KEY, owner, timeout=LEASE_SECONDS):
        return True
    if cache.get(LEASE_KEY) == owner:
        cache.set(LEASE_KEY, owner, timeout=LEASE_SECONDS)
        return True
    return False


def beat_lease_release(owner: str) -> None:
    if cache.get(LEASE_KEY) == owner:
        cache.delete(LEASE_KEY)


class Scheduler(DatabaseScheduler):
    def __init__(self, *args, **kwargs):
        self._lease_owner = uuid.uuid4().hex
        self._leading: bool | None = None
        super().__init__(*args, **kwargs)

    def setup_schedule(self):
        self._from_code: set[str] = set()
        super().setup_schedule()
        self._retire_removed()

    def _retire_removed(self) -> None:
        """A row the code seeded, unchanged since, whose entry is no longer in the code (removed, or renamed):
        django-celery-beat schedules every enabled row, so it would run for ever, a renamed one beside its
        successor (the task twice). A row staff changed or created in admin is theirs and stays."""
        for row in PeriodicTask.objects.filter(description__contains="[seeded from code: ").exclude(
            name__in=self._from_code
        ):
            if _SEAL.search(row.description) and _as_seeded(row):
                logger.info(
                    "beat_entry_retired", name=row.name, reason="no longer in tradingdash/schedule.py"
                )
                row.delete()
                self._schedule.pop(row.name, None)

    def tick(self, *args, **kwargs):
        """Beat's loop (at least every max_interval, 5 s): sends what is due only while this beat holds the
        lease, and is then the heartbeat /health reads."""
        leading = beat_lease_hold(self._lease_owner)
        if leading != self._leading:
            logger.info("beat_leading" if leading else "beat_standby", reason="one beat sends at a time")
            self._leading = leading
        if not leading:
            return STANDBY_SECONDS
        interval = super().tick(*args, **kwargs)
        heartbeats.beat_alive()
        return interval

    def close(self):
        beat_lease_release(self._lease_owner)
        super().close()

    def update_from_dict(self, mapping):
        if hasattr(self, "_from_code"):  # at start-up: the code's entries (and Celery's own default ones)
            self._from_code.update(mapping)
        kept, seeded = {}, {}
        for name, fields in mapping.items():
            row = PeriodicTask.objects.filter(name=name).first()
            if row is not None and not _as_seeded(row):
                logger.info("beat_entry_kept", name=name, reason="changed in admin since it was seeded")
                if row.enabled:
                    kept[name] = self.Entry(row, app=self.app)
                continue
            seeded[name] = fields
        super().update_from_dict(seeded)
        for task in PeriodicTask.objects.filter(name__in=list(seeded)):
            note = _SEAL.sub("", task.description or "").strip() or _NOTE
            task.description = f"{note} [seeded from code: {seeded_fingerprint(task)}]"
            PeriodicTask.objects.filter(pk=task.pk).update(description=task.description)
        self.schedule.update(kept)
