"""What the stream sends reads like the API: prices at the instrument's tick, percentages at 2 decimals."""

import json

import pytest

from stream.publish import group_message

pytestmark = pytest.mark.django_db


def test_a_quote_message_has_prices_at_the_tick_and_percentages_at_two_decimals():
    message = {
        "type": "quote",
        "time": "2026-11-27T10:00:00+05:30",
        "symbol": "RELIANCE.NS",  # an NSE equity: 0.05 tick
        "price": 1431.7299999999998,
        "change": 3.3500000000000227,
        "change_pct": 0.23456789,
        "volume": 1200,
        "stale": False,
    }

    sent = json.loads(group_message(message)["text"])

    assert (sent["price"], sent["change"], sent["change_pct"]) == (1431.75, 3.35, 0.23)
    assert sent["time"] == "2026-11-27T10:00:00+05:30" and sent["volume"] == 1200


def test_an_index_keeps_two_decimals_and_a_candle_bar_is_rounded_too():
    message = {
        "type": "candle",
        "time": "2026-11-27T10:00:00+05:30",
        "symbol": "^NSEI",
        "timeframe": "15m",
        "bar": {"timestamp": "2026-11-27T09:45:00+05:30", "open": 26001.123, "high": 26010.456,
                "low": 25990.001, "close": 26005.559, "volume": 0},
        "final": True,
    }  # fmt: skip

    bar = json.loads(group_message(message)["text"])["bar"]

    assert (bar["open"], bar["high"], bar["low"], bar["close"]) == (26001.12, 26010.46, 25990.0, 26005.56)


def test_a_users_message_about_a_symbol_is_stamped_in_that_symbols_exchange_time():
    """An alert on the S&P 500 reaches its owner stamped in New York time like its fired_at, not in India's."""
    from datetime import UTC, datetime

    import time_machine

    from stream.publish import _stamped

    with time_machine.travel(datetime(2026, 1, 15, 15, 0, tzinfo=UTC), tick=False):
        alert = _stamped({"type": "alert", "symbol": "^GSPC", "fired_at": "2026-01-15T15:00:00+00:00"})
        task = _stamped({"type": "task", "task_id": "t"})
    assert alert["time"] == "2026-01-15T10:00:00-05:00"
    assert task["time"] == "2026-01-15T20:30:00+05:30"  # no symbol: the default exchange's clock
