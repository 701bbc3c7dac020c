"""The system as a user and an operator see it: HTTP in, work done by the worker, rows in PostgreSQL; and beat
firing on its own."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from e2e.client import Api
from e2e.stack import Stack
from tradingdash.schedule import BEAT_SCHEDULE

pytestmark = pytest.mark.e2e


def test_register_sync_train_predict_and_signal_over_http(stack: Stack):
    api = Api(stack.base_url)
    api.register_and_login("e2e-alice")
    me = api.get("/api/auth/me")
    assert me.status_code == 200 and me.json()["username"] == "e2e-alice"
    user_id = me.json()["id"]

    # Syncing is for staff; an operator promotes the user in the database, and the same token now may.
    assert api.post("/api/market/sync/TCS", {"timeframe": "1D"}).status_code == 403
    stack.query("UPDATE accounts_user SET is_staff = true WHERE id = %s", [user_id])
    # Each web process keeps a user's row for AUTH_USER_CACHE_SECONDS (30 s): the promotion shows within that.
    deadline = time.monotonic() + 40
    while (synced := api.post("/api/market/sync/TCS", {"timeframe": "1D"})).status_code == 403:
        assert time.monotonic() < deadline, "the promotion was not seen within AUTH_USER_CACHE_SECONDS"
        time.sleep(1)
    assert synced.status_code == 200, synced.text
    assert synced.json()["symbol"] == "TCS.NS" and synced.json()["inserted"] > 600
    [(stored,)] = stack.query(
        "SELECT count(*) FROM market_marketdata WHERE symbol = 'TCS.NS' AND timeframe = '1D'"
    )
    assert stored == synced.json()["inserted"]
    historical = api.get("/api/market/historical/TCS", timeframe="1D", limit=5)
    assert historical.status_code == 200
    assert historical.json()["count"] == 5 and historical.json()["stale"] is False

    # No active model yet: 202 with a task, trained by the worker on the ml queue, then the prediction.
    accepted = api.post("/api/predictions/generate/TCS", {"timeframe": "1D", "model": "random_forest"})
    assert accepted.status_code == 202, accepted.text
    task_id = accepted.json()["task_id"]
    assert accepted.json()["status_url"].endswith(f"/api/tasks/{task_id}")
    done = api.wait_task(task_id, timeout=180)
    prediction_id = done["result"]["prediction_id"]
    assert done["result"]["models"][0]["algorithm"] == "random_forest"

    [(symbol, model_used, requested_by, low, predicted, high)] = stack.query(
        "SELECT symbol, model_used, requested_by_id, lower_bound, predicted_price, upper_bound"
        " FROM predictions_prediction WHERE id = %s",
        [prediction_id],
    )
    assert (symbol, model_used, requested_by) == ("TCS.NS", "random_forest", user_id)
    assert low <= predicted <= high
    [(artifact,)] = stack.query(
        "SELECT artifact FROM predictions_trainedmodel"
        " WHERE symbol = 'TCS.NS' AND algorithm = 'random_forest' AND is_active"
    )
    assert (stack.data_dir / "media" / artifact).is_file()

    # With an active model the prediction is made in the request.
    direct = api.post("/api/predictions/generate/TCS", {"timeframe": "1D", "model": "random_forest"})
    assert direct.status_code == 201, direct.text
    listed = api.get("/api/predictions/TCS")
    assert listed.status_code == 200
    assert {prediction_id, direct.json()["id"]} <= {p["id"] for p in listed.json()["results"]}

    signal = api.post("/api/signals/generate/TCS", {"timeframe": "1D"})
    assert signal.status_code == 201, signal.text
    [(signal_type, entry_price, linked_prediction)] = stack.query(
        "SELECT signal_type, entry_price, prediction_id FROM signals_tradingsignal WHERE id = %s",
        [signal.json()["id"]],
    )
    assert signal_type in {"BUY", "SELL", "HOLD"} and entry_price > 0
    # Signals take the system's prediction from the default model (none when no model beats naive), never a
    # user's: the prediction this user just made does not feed it.
    assert linked_prediction != direct.json()["id"]
    if linked_prediction is not None:
        [(owner,)] = stack.query(
            "SELECT requested_by_id FROM predictions_prediction WHERE id = %s", [linked_prediction]
        )
        assert owner is None
    assert signal.json()["id"] in {s["id"] for s in api.get("/api/signals/TCS").json()["results"]}

    # All of that was computed by the worker (the compute queue), none of it in a web worker (issue 12's memory):
    # indicators and a backtest too, and a quote of a symbol never fetched.
    assert api.get("/api/market/indicators/TCS", timeframe="1D", names="sma:20,rsi:14").status_code == 200
    assert api.get("/api/signals/TCS/backtest").status_code == 200
    assert api.get("/api/market/quote/INFY").status_code == 200
    for pid in _web_workers(stack):
        maps = Path(f"/proc/{pid}/maps").read_text()
        loaded = [
            library for library in ("pandas", "talib", "sklearn", "tensorflow") if f"/{library}/" in maps
        ]
        assert loaded == [], f"web worker {pid} loaded {loaded}"


def _web_workers(stack: Stack) -> list[int]:
    """gunicorn's worker processes (the children of the web service's leader)."""
    children = Path(f"/proc/{stack.web.pid}/task/{stack.web.pid}/children").read_text().split()
    assert children, "gunicorn has no worker"
    return [int(pid) for pid in children]


def test_beat_installs_the_schedule_and_fires_on_its_own(stack: Stack):
    installed = dict(
        stack.query(
            "SELECT name, expire_seconds FROM django_celery_beat_periodictask"
            " WHERE name NOT LIKE %s AND name <> 'celery.backend_cleanup'",
            ["e2e-%"],
        )
    )
    assert set(installed) == set(BEAT_SCHEDULE)
    assert all(installed.values()), f"every entry must expire: {installed}"
    # Paused in this run, so they never compete with the tests for the worker.
    assert set(BEAT_SCHEDULE) <= set(stack.paused_entries)
    stack.wait_periodic_runs("e2e-heartbeat")
