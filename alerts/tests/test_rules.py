from datetime import UTC, datetime, timedelta

from alerts.rules import threshold_transition

NOW = datetime(2026, 6, 3, 6, 30, tzinfo=UTC)


def step(value, *, armed=True, kind="price_above", last_fired_at=None, now=NOW):
    return threshold_transition(
        kind=kind,
        threshold=100.0,
        armed=armed,
        value=value,
        last_fired_at=last_fired_at,
        cooldown_minutes=30,
        now=now,
    )


def test_an_armed_alert_fires_on_crossing_and_disarms():
    assert step(99.0) == step(99.0, armed=False)
    assert not step(99.0).fire and step(99.0).armed
    crossing = step(100.5)
    assert crossing.fire and not crossing.armed


def test_a_disarmed_alert_stays_quiet_beyond_the_threshold_and_rearms_back_across():
    assert not step(101.0, armed=False).fire and not step(101.0, armed=False).armed
    assert step(99.9, armed=False).armed


def test_below_alerts_mirror_above():
    assert step(99.0, kind="price_below").fire
    assert not step(101.0, kind="price_below").fire and step(101.0, kind="change_pct_below").armed


def test_a_crossing_within_the_cooldown_is_swallowed():
    swallowed = step(101.0, last_fired_at=NOW - timedelta(minutes=29))
    assert not swallowed.fire and not swallowed.armed
    assert step(101.0, last_fired_at=NOW - timedelta(minutes=30)).fire
