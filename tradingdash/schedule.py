"""The beat schedule, in exchange time (CELERY_TIMEZONE = Asia/Kolkata). django-celery-beat copies these
entries into its tables at start-up, where staff can see, pause and edit them in admin. Every entry expires,
so a backlog after an outage never replays stale work; the option is `expire_seconds`, the one django-celery-beat
reads (it silently drops `expires`)."""

from pathlib import Path

from celery.schedules import crontab

from tradingdash.environment import Env, env_file_read

# Imported by the Celery app before Django settings: read the one knob it needs the way settings.py does.
env_file_read(Path(__file__).resolve().parent.parent / ".env")
QUOTE_REFRESH_SECONDS = Env().int("QUOTE_REFRESH_SECONDS", default=60)

BEAT_SCHEDULE = {
    # Every five minutes, every day: the task asks each exchange's calendar whether it is in session, so NSE's
    # 09:15-15:30 IST, a Muhurat evening or a budget-day Saturday (MarketSession), a shortened day and NYSE's
    # hours are all covered, and a closed exchange costs one cheap check.
    "market-sync-intraday": {
        "task": "market.sync_watchlist",
        "schedule": crontab(minute="*/5"),
        "kwargs": {"timeframes": ["5m", "15m", "1H"], "only_when_open": True},
        "options": {"expire_seconds": 240},
    },
    # Once, 5-10 minutes after each session's close (15:35 IST on a regular NSE day): the last run above stored
    # the session's last bars half-way; this run fetches them complete, so they are stored final the same day.
    "market-sync-intraday-close": {
        "task": "market.sync_watchlist",
        "schedule": crontab(minute="*/5"),
        "kwargs": {
            "timeframes": ["5m", "15m", "1H"],
            "only_when_open": True,
            "after_close_minutes": 5,
            "grace_minutes": 10,
        },
        "options": {"expire_seconds": 240},
    },
    # After the close, every day: a whole-market run (SyncRun) per timeframe over the active instruments whose
    # exchange closed a session in the last 24 hours, as that exchange's calendar says (an NSE holiday or weekend
    # is skipped; NYSE's evening session is picked up the next day), batched and spread over the workers.
    "market-sync-daily": {
        "task": "market.sync_all",
        "schedule": crontab(minute=0, hour=16),
        "kwargs": {"timeframes": ["1D", "1W"]},
        "options": {"expire_seconds": 3 * 3600},
    },
    # After the daily sync has landed, every day as the sync runs: a special session on a Saturday or Sunday (a
    # budget day, Muhurat trading) has a bar too; on a day without one the run finds every bar signed already
    # and stores nothing (once per bar).
    "signals-daily": {
        "task": "signals.generate_for_watchlist",
        "schedule": crontab(minute=30, hour=16),
        "kwargs": {"timeframe": "1D"},
        "options": {"expire_seconds": 3 * 3600},
    },
    # Data quality: check every active symbol's daily candles and re-fetch missing sessions, before retraining.
    "market-repair-nightly": {
        "task": "market.repair_watchlist",
        "schedule": crontab(minute=30, hour=23),
        "kwargs": {"timeframes": ["1D"]},
        "options": {"expire_seconds": 4 * 3600},
    },
    # The candle table's monthly partitions, three months ahead (market/partitions.py); daily, so a failed run
    # (a lock it would not wait for) is retried long before the partitions run out.
    "market-candle-partitions": {
        "task": "market.ensure_candle_partitions",
        "schedule": crontab(minute=10, hour=2),
        "options": {"expire_seconds": 6 * 3600},
    },
    # Months of daily bars that staff edited or deleted bars of are rendered again for fast historical reads
    # (market.models.RenderedMonth); an upsert renders the months it changed itself.
    "market-render-stale-months": {
        "task": "market.render_stale_months",
        "schedule": crontab(minute="*/15"),
        "options": {"expire_seconds": 600},
    },
    "predictions-retrain-nightly": {
        "task": "predictions.retrain_all",
        "schedule": crontab(minute=0, hour=1),
        "kwargs": {"timeframe": "1D", "horizon": 1},
        "options": {"expire_seconds": 4 * 3600},
    },
    # Versions stored by trainings lost half-way that no redelivery will resume any more (two days old).
    "predictions-prune-unfinished": {
        "task": "predictions.prune_unfinished_models",
        "schedule": crontab(minute=40, hour=2),
        "options": {"expire_seconds": 6 * 3600},
    },
    "predictions-score-hourly": {
        "task": "predictions.score_predictions",
        "schedule": crontab(minute=5),
        "options": {"expire_seconds": 3000},
    },
    # Alert deliveries whose task was lost (broker down when the alert fired, a message dropped): queued again.
    "alerts-requeue-overdue-deliveries": {
        "task": "alerts.requeue_overdue_deliveries",
        "schedule": crontab(minute="*/5"),
        "options": {"expire_seconds": 240},
    },
    # Live quotes for watched and live-subscribed symbols; the task does nothing while every exchange is closed.
    # A refresh not started within its period is superseded by the next one.
    "stream-refresh-quotes": {
        "task": "stream.refresh_quotes",
        "schedule": float(QUOTE_REFRESH_SECONDS),
        "options": {"expire_seconds": QUOTE_REFRESH_SECONDS},
    },
}
