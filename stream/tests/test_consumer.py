"""The live stream over the real ASGI application and the real Redis channel layer."""

from __future__ import annotations

import asyncio
import json
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
import time_machine
from asgiref.sync import sync_to_async
from channels.layers import get_channel_layer
from django.core.cache import cache

from accounts.tests.factories import UserFactory
from market.services import candles_sync, candles_upsert
from market.sources import get_provider
from market.tests.factories import InstrumentFactory, make_candles
from market.timeframes import Timeframe
from predictions.tests.factories import PredictionFactory
from signals.selectors import signals_list
from signals.services import signal_generate
from stream.groups import symbol_group
from stream.live import live_symbols
from stream.messages import quote_message
from stream.publish import group_message, publish_to_user
from stream.tests.conftest import Client, access_token
from tradingdash import events
from tradingdash.renderers import PresentingJSONRenderer

pytestmark = pytest.mark.django_db(transaction=True)

IST = ZoneInfo("Asia/Kolkata")
QUOTE = {"price": 101.5, "change": 1.5, "change_percent": 1.5, "volume": 1200, "stale": False}


def announce_quote(symbol: str, price: float = 101.5):
    return sync_to_async(events.announce)(
        events.QuoteRefreshed(symbol=symbol, quote={**QUOTE, "price": price})
    )


@pytest.fixture
def instruments(db):
    return [InstrumentFactory(symbol=s) for s in ("RELIANCE.NS", "TCS.NS", "M&M.NS", "^NSEI")]


# --- Authentication


@pytest.mark.parametrize(
    "first",
    [
        {"type": "auth"},
        {"type": "auth", "token": "not-a-jwt"},
        {"type": "subscribe"},
        "[" * 5000 + "]" * 5000,
    ],
    ids=["no_token", "not_a_jwt", "not_auth", "nested_json"],
)
def test_missing_or_bad_token_closes_with_4401(run, first):
    async def body():
        client = Client()
        assert await client.connect()
        await client.send(first)
        assert await client.closed_with() == 4401

    run(body)


def test_expired_token_closes_with_4401(run, user):
    async def body():
        client = Client()
        assert await client.connect()
        await client.send({"type": "auth", "token": access_token(user, expired=True)})
        assert await client.closed_with() == 4401

    run(body)


def test_inactive_user_is_refused(run):
    user = UserFactory(is_active=False)

    async def body():
        client = Client()
        assert await client.connect()
        await client.send({"type": "auth", "token": access_token(user)})
        assert await client.closed_with() == 4401

    run(body)


def test_token_in_the_query_string_is_refused(run, user):
    async def body():
        client = Client(f"/ws/stream?token={access_token(user)}")
        assert await client.connect()
        assert await client.closed_with() == 4401

    run(body)


def test_no_auth_message_within_the_deadline_closes_with_4401(run, settings):
    settings.STREAM_AUTH_TIMEOUT_SECONDS = 0.2

    async def body():
        client = Client()
        assert await client.connect()
        assert await client.closed_with(timeout=2) == 4401

    run(body)


def test_valid_token_authenticates_with_exchange_time(run, user):
    async def body():
        client = Client()
        message = await client.login(user)
        assert message["user_id"] == user.pk
        assert message["time"].endswith("+05:30")
        await client.close()

    run(body)


def test_foreign_origin_is_refused_and_allowed_origin_accepted(run, settings):
    settings.CORS_ALLOWED_ORIGINS = ["https://dash.example.com"]

    async def body():
        foreign = Client(headers=[(b"origin", b"https://evil.example.net")])
        assert not await foreign.connect()
        allowed = Client(headers=[(b"origin", b"https://dash.example.com")])
        assert await allowed.connect()
        await allowed.close()

    run(body)


@pytest.mark.parametrize("path", ["/ws/streams", "/ws/stream/", "/ws/"])
def test_a_websocket_to_another_path_is_refused_not_a_server_error(run, path):
    """A typo in the URL was a 500 (channels' URLRouter raises for a path it has no route for)."""

    async def body():
        assert not await Client(path).connect()

    run(body)


def test_a_websocket_to_another_path_gets_a_json_404_where_the_server_can_send_one(run):
    async def body():
        client = Client("/ws/streams")
        client.communicator.scope["extensions"] = {"websocket.http.response": {}}
        await client.communicator.send_input({"type": "websocket.connect"})
        start = await client.communicator.receive_output()
        sent = await client.communicator.receive_output()
        assert (start["type"], start["status"]) == ("websocket.http.response.start", 404)
        assert json.loads(sent["body"])["error"]["code"] == "not_found"
        assert "/ws/stream" in json.loads(sent["body"])["error"]["message"]

    run(body)


# --- Subscriptions


def test_subscribe_normalises_symbols_and_unsubscribe_answers(run, user, instruments):
    async def body():
        client = Client()
        await client.login(user)
        await client.send({"type": "subscribe", "symbols": ["reliance", "M&M", "^nsei"], "topics": ["quote"]})
        answer = await client.receive_type("subscribed")
        assert answer["symbols"] == ["M&M.NS", "RELIANCE.NS", "^NSEI"]
        assert answer["topics"] == ["quote"]
        await client.send({"type": "unsubscribe", "symbols": ["RELIANCE"], "topics": ["quote"]})
        answer = await client.receive_type("unsubscribed")
        assert answer["symbols"] == ["RELIANCE.NS"]
        await client.close()

    run(body)


def test_subscribed_symbols_join_the_live_set(run, user, instruments):
    async def body():
        client = Client()
        await client.login(user)
        await client.send({"type": "subscribe", "symbols": ["TCS"], "topics": ["quote"]})
        await client.receive_type("subscribed")
        await client.close()

    run(body)
    assert "TCS.NS" in live_symbols()


def test_only_quote_subscriptions_join_the_live_set(run, user, instruments, settings):
    """The live set is what the quote refresher fetches, within the provider's request budget: a stream that
    asked for a symbol's candles or signals only made every refresh fetch a quote of it that nobody received."""
    import redis

    from stream.live import _touched, live_key

    redis.Redis.from_url(settings.REDIS_URL).delete(live_key())
    for symbol in ("M&M.NS", "^NSEI"):
        _touched.delete(symbol)

    async def body():
        client = Client()
        await client.login(user)
        await client.send({"type": "subscribe", "symbols": ["M&M", "^NSEI"], "topics": ["candle", "signal"]})
        await client.receive_type("subscribed")
        await client.send({"type": "subscribe", "symbols": ["^NSEI"], "topics": ["quote"]})
        await client.receive_type("subscribed")
        await client.close()

    run(body)
    assert "M&M.NS" not in live_symbols() and "^NSEI" in live_symbols()


def test_a_process_touches_a_live_symbol_once_per_heartbeat_period_whatever_its_number_of_streams(
    run, user, instruments
):
    from django.conf import settings

    from stream.live import _client, live_key

    def expiry() -> float:
        return _client(settings.REDIS_URL).zscore(live_key(), "TCS.NS")

    async def body():
        first, second = Client(), Client()
        for client in (first, second):
            await client.login(user)
            await client.send({"type": "subscribe", "symbols": ["TCS"], "topics": ["quote"]})
            await client.receive_type("subscribed")
            if client is first:
                touched = await sync_to_async(expiry)()
        assert await sync_to_async(expiry)() == touched  # the second stream wrote nothing
        await first.close()
        await second.close()

    run(body)


BAD_MESSAGES = [
    ({"type": "subscribe", "symbols": ["NOSUCH"], "topics": ["quote"]}, "unknown_symbol"),
    (
        {"type": "subscribe", "symbols": [f"S{n}" for n in range(101)], "topics": ["quote"]},
        "too_many_symbols",
    ),
    ({"type": "subscribe", "symbols": ["TCS"], "topics": ["gossip"]}, "invalid"),
    ({"type": "subscribe", "symbols": []}, "invalid"),
    ({"type": "subscribe", "symbols": ["bad symbol!"]}, "invalid_symbol"),
    ({"type": "dance"}, "unknown_type"),
    ({"type": "auth", "token": "again"}, "already_authenticated"),
    ("{not json", "malformed"),
    ("[1, 2]", "malformed"),
    ("[" * 5000 + "]" * 5000, "malformed"),  # nested deeper than the JSON decoder recurses: was a crash
]


def test_bad_messages_are_answered_with_an_error_and_the_stream_stays_open(run, user, instruments):
    async def body():
        client = Client()
        await client.login(user)
        for message, code in BAD_MESSAGES:
            await client.send(message)
            error = await client.receive_type("error")
            assert (error["code"], bool(error["message"])) == (code, True), message
        # Still open and usable.
        await client.send({"type": "subscribe", "symbols": ["TCS"], "topics": ["quote"]})
        assert (await client.receive_type("subscribed"))["symbols"] == ["TCS.NS"]
        await client.close()

    run(body)


def test_the_symbol_limit_counts_all_of_a_streams_subscriptions(run, user, settings, instruments):
    settings.STREAM_MAX_SYMBOLS = 3

    async def body():
        client = Client()
        await client.login(user)
        await client.send({"type": "subscribe", "symbols": ["TCS", "RELIANCE", "M&M"], "topics": ["quote"]})
        await client.receive_type("subscribed")
        await client.send({"type": "subscribe", "symbols": ["^NSEI"], "topics": ["quote"]})
        assert (await client.receive_type("error"))["code"] == "too_many_symbols"
        await client.close()

    run(body)


def test_heartbeat_every_interval(run, user, settings):
    settings.STREAM_HEARTBEAT_SECONDS = 0.1

    async def body():
        client = Client()
        await client.login(user)
        first = await client.receive_type("heartbeat", timeout=1)
        second = await client.receive_type("heartbeat", timeout=1)
        assert first["time"] <= second["time"]
        await client.close()

    run(body)


# --- Fan-out


def test_a_published_quote_reaches_subscribers_only(run, user, instruments):
    other = UserFactory()

    async def body():
        subscribed, elsewhere = Client(), Client()
        await subscribed.login(user)
        await elsewhere.login(other)
        await subscribed.send({"type": "subscribe", "symbols": ["RELIANCE"], "topics": ["quote"]})
        await subscribed.receive_type("subscribed")
        await elsewhere.send({"type": "subscribe", "symbols": ["TCS"], "topics": ["quote"]})
        await elsewhere.receive_type("subscribed")

        await announce_quote("RELIANCE.NS", price=2500.0)

        quote = await subscribed.receive_type("quote")
        assert quote["symbol"] == "RELIANCE.NS"
        assert (quote["price"], quote["change"], quote["change_pct"], quote["volume"]) == (
            2500.0,
            1.5,
            1.5,
            1200,
        )
        assert quote["stale"] is False and quote["time"].endswith("+05:30")
        assert await elsewhere.nothing()
        await subscribed.close()
        await elsewhere.close()

    run(body)


def test_unsubscribed_topic_and_symbol_stop_receiving(run, user, instruments):
    async def body():
        client = Client()
        await client.login(user)
        await client.send({"type": "subscribe", "symbols": ["^NSEI"], "topics": ["quote", "signal"]})
        await client.receive_type("subscribed")
        await announce_quote("^NSEI")
        assert (await client.receive_type("quote"))["symbol"] == "^NSEI"
        await client.send({"type": "unsubscribe", "symbols": ["^NSEI"], "topics": ["quote"]})
        await client.receive_type("unsubscribed")
        await announce_quote("^NSEI")
        assert await client.nothing()
        await client.close()

    run(body)


def test_nothing_of_an_unsubscribed_topic_follows_the_unsubscribed_answer(run, user, instruments):
    """Quotes the channel layer had already queued for the socket when the client unsubscribed were still sent
    after `unsubscribed` (leaving the group stops only later publications)."""

    async def body():
        client = Client()
        await client.login(user)
        await client.send({"type": "subscribe", "symbols": ["TCS"], "topics": ["quote", "signal"]})
        await client.receive_type("subscribed")
        message = await sync_to_async(quote_message)(symbol="TCS.NS", quote=QUOTE)
        event = await sync_to_async(group_message)(message, topic="quote", symbol="TCS.NS")
        layer = get_channel_layer()
        # A burst of quotes: most are queued for the socket by the time the client unsubscribes.
        await asyncio.gather(*(layer.group_send(symbol_group("quote", "TCS.NS"), event) for _ in range(100)))
        await client.receive_type("quote")
        await client.send({"type": "unsubscribe", "symbols": ["TCS"], "topics": ["quote"]})
        sent = []
        while not await client.nothing(timeout=0.5):
            sent.append((await client.receive())["type"])
        assert "quote" not in sent[sent.index("unsubscribed") :]
        await client.close()

    run(body)


def test_alerts_and_tasks_reach_their_owner_only(run, user):
    other = UserFactory()

    async def body():
        mine, theirs = Client(), Client()
        await mine.login(user)
        await theirs.login(other)
        await sync_to_async(publish_to_user)(user.pk, {"type": "alert", "alert_id": 7, "symbol": "TCS.NS"})
        await sync_to_async(events.announce)(
            events.TaskUpdated(
                task_id="t-1",
                name="predictions.train_models",
                user_id=user.pk,
                state="PROGRESS",
                progress=0.5,
            )
        )
        alert = await mine.receive_type("alert")
        assert alert["alert_id"] == 7 and alert["time"].endswith("+05:30")
        task = await mine.receive_type("task")
        assert (task["task_id"], task["state"], task["progress"]) == ("t-1", "PROGRESS", 0.5)
        assert await theirs.nothing()
        await mine.close()
        await theirs.close()

    run(body)


def test_published_messages_reach_sockets_without_a_thread_hop_per_socket(run, user, monkeypatch):
    """Channels closes old database connections on a thread before each handler; stream messages skip that (the
    fan-out's largest cost), client messages still get it."""
    import channels.db

    closes = []
    monkeypatch.setattr(channels.db, "close_old_connections", lambda **kwargs: closes.append(1))

    async def body():
        client = Client()
        await client.login(user)
        before = len(closes)
        assert before > 0  # the connect and the auth message went through Channels' dispatch
        for n in range(3):
            await sync_to_async(publish_to_user)(user.pk, {"type": "alert", "alert_id": n})
            assert (await client.receive_type("alert"))["alert_id"] == n
        assert len(closes) == before
        await client.send({"type": "unsubscribe", "symbols": ["TCS"], "topics": ["quote"]})
        await client.receive_type("unsubscribed")
        assert len(closes) > before
        await client.close()

    run(body)


# --- Stale feed


@pytest.mark.parametrize(
    ("moment", "stale"),
    [(datetime(2026, 11, 25, 11, 0, tzinfo=IST), True), (datetime(2026, 11, 29, 11, 0, tzinfo=IST), False)],
)
def test_stale_feed_while_the_exchange_is_open(run, user, instruments, settings, moment, stale):
    settings.STREAM_HEARTBEAT_SECONDS = 0.1
    settings.QUOTE_REFRESH_SECONDS = 0.1  # stale after 3 periods without a quote

    async def body():
        client = Client()
        await client.login(user)
        await client.send({"type": "subscribe", "symbols": ["TCS"], "topics": ["quote"]})
        await client.receive_type("subscribed")
        session = datetime.combine(moment.date(), datetime.min.time(), tzinfo=IST)  # the daily bar's open
        await sync_to_async(events.announce)(
            events.QuoteRefreshed(symbol="TCS.NS", quote={**QUOTE, "timestamp": session.isoformat()})
        )
        quote = await client.receive_type("quote")
        if stale:
            feed = await client.receive_type("feed", timeout=2)
            assert feed == {**feed, "status": "stale", "symbol": "TCS.NS", "last_update": quote["time"]}
            # Once per outage: further heartbeats carry no second stale message.
            for _ in range(3):
                assert (await client.receive())["type"] == "heartbeat"
        else:
            for _ in range(6):
                assert (await client.receive())["type"] == "heartbeat"
        await client.close()

    with time_machine.travel(moment, tick=True):  # a Wednesday session; a Sunday
        run(body)


def test_quotes_subscribed_again_are_not_stale_at_once(run, user, instruments, settings):
    """The stale-feed clock of a symbol kept for its candles ran on from the first subscription while its quotes
    were unsubscribed: subscribing to them again reported the feed stale at the next heartbeat, before the
    refresher had had a period to fetch one."""
    settings.STREAM_HEARTBEAT_SECONDS = 0.1
    settings.QUOTE_REFRESH_SECONDS = 0.5  # stale after 1.5 s without a quote

    async def body():
        client = Client()
        await client.login(user)
        await client.send({"type": "subscribe", "symbols": ["TCS"], "topics": ["quote", "candle"]})
        await client.receive_type("subscribed")
        await client.send({"type": "unsubscribe", "symbols": ["TCS"], "topics": ["quote"]})
        await client.receive_type("unsubscribed")
        await asyncio.sleep(2)
        await client.send({"type": "subscribe", "symbols": ["TCS"], "topics": ["quote"]})
        await client.receive_type("subscribed")
        for _ in range(5):
            assert (await client.receive())["type"] == "heartbeat"
        await client.close()

    with time_machine.travel(datetime(2026, 11, 25, 11, 0, tzinfo=IST), tick=True):  # a Wednesday session
        run(body)


def test_the_last_close_served_again_while_the_exchange_is_open_is_no_live_feed(
    run, user, instruments, settings
):
    """A provider with nothing of today (Yahoo stuck, CSV files) answers every refresh with the last close: each
    such quote says live: false, and the stream said nothing of the feed, as any quote restarted its clock."""
    settings.STREAM_HEARTBEAT_SECONDS = 0.1
    settings.QUOTE_REFRESH_SECONDS = 0.1  # stale after 3 periods without a live quote
    fridays_close = {**QUOTE, "timestamp": "2026-11-27T00:00:00+05:30"}

    async def refreshes():
        while True:
            await sync_to_async(events.announce)(events.QuoteRefreshed(symbol="TCS.NS", quote=fridays_close))
            await asyncio.sleep(0.05)

    async def body():
        client = Client()
        await client.login(user)
        await client.send({"type": "subscribe", "symbols": ["TCS"], "topics": ["quote"]})
        await client.receive_type("subscribed")
        refreshing = asyncio.ensure_future(refreshes())
        try:
            assert (await client.receive_type("quote"))["live"] is False
            feed = await asyncio.wait_for(client.receive_type("feed"), timeout=3)
        finally:
            refreshing.cancel()
        assert (feed["status"], feed["symbol"], feed["last_update"]) == ("stale", "TCS.NS", None)
        await client.close()

    with time_machine.travel(datetime(2026, 11, 30, 11, 0, tzinfo=IST), tick=True):  # Monday, open
        run(body)


def test_stored_candles_reach_candle_subscribers_in_exchange_time(run, user, instruments):

    async def body():
        client = Client()
        await client.login(user)
        await client.send({"type": "subscribe", "symbols": ["TCS"], "topics": ["candle"]})
        await client.receive_type("subscribed")
        candles = make_candles(3)
        await sync_to_async(candles_upsert)(
            symbol="TCS.NS", timeframe=Timeframe.D1, candles=candles, source="test"
        )
        message = await client.receive_type("candle")
        assert (message["symbol"], message["timeframe"], message["final"]) == ("TCS.NS", "1D", True)
        last = candles.iloc[-1]
        assert message["bar"]["close"] == pytest.approx(last["close"], abs=0.025)  # at TCS.NS's 0.05 tick
        assert message["bar"]["timestamp"] == candles.index[-1].tz_convert(IST).isoformat()
        assert message["bar"]["timestamp"].endswith("T00:00:00+05:30")
        await client.close()

    run(body)


def test_a_bar_fetched_before_its_close_is_streamed_forming_even_when_stored_after_it(run, user, instruments):
    """`final` said whether the bar had closed when the message was built: a daily bar fetched at 15:29:50
    (partial values, stored final=False) but published at 15:30:05 was streamed as the final bar."""
    session = datetime(2026, 11, 25, tzinfo=IST)  # a Wednesday; NSE closes at 15:30
    candles = make_candles(3, start=session - timedelta(days=2))

    async def body():
        client = Client()
        await client.login(user)
        await client.send({"type": "subscribe", "symbols": ["TCS"], "topics": ["candle"]})
        await client.receive_type("subscribed")
        fetched_at = session + timedelta(hours=15, minutes=29, seconds=50)
        await sync_to_async(candles_upsert)(
            symbol="TCS.NS", timeframe=Timeframe.D1, candles=candles, source="test", fetched_at=fetched_at
        )
        message = await client.receive_type("candle")
        assert (message["bar"]["timestamp"], message["final"]) == (session.isoformat(), False)
        # Fetched again after the close: now the final bar.
        await sync_to_async(candles_upsert)(
            symbol="TCS.NS", timeframe=Timeframe.D1, candles=candles, source="test"
        )
        message = await client.receive_type("candle")
        assert (message["bar"]["timestamp"], message["final"]) == (session.isoformat(), True)
        await client.close()

    with time_machine.travel(session + timedelta(hours=15, minutes=30, seconds=5), tick=True):
        run(body)


def test_each_bar_is_streamed_once_as_it_is_and_a_forming_bar_again_once_final(run, user, instruments):
    """Every upsert announced its last bar: a re-sync of unchanged bars (a retried task, the next sync's
    overlap) streamed it again, and a 5-minute bar streamed forming at 10:00:30 never went out final, as the
    10:05 sync that completed it also stored the new forming 10:05 bar and only that one was streamed."""
    ten = datetime(2026, 11, 25, 10, 0, tzinfo=IST)  # a Wednesday session
    five_minutes = timedelta(minutes=5)
    before = make_candles(3, start=ten - 2 * five_minutes, step=five_minutes)  # 09:50, 09:55, 10:00
    after = make_candles(3, start=ten - five_minutes, step=five_minutes, seed=2)  # 09:55, 10:00, 10:05

    def upsert(candles, fetched_at):
        return sync_to_async(candles_upsert)(
            symbol="TCS.NS", timeframe=Timeframe.M5, candles=candles, source="test", fetched_at=fetched_at
        )

    def bars(messages):
        return [(m["bar"]["timestamp"], m["bar"]["close"], m["final"]) for m in messages]

    async def body():
        client = Client()
        await client.login(user)
        await client.send({"type": "subscribe", "symbols": ["TCS"], "topics": ["candle"]})
        await client.receive_type("subscribed")

        await upsert(before, ten + timedelta(seconds=30))
        forming = await client.receive_type("candle")
        assert (forming["bar"]["timestamp"], forming["final"]) == (ten.isoformat(), False)
        await upsert(before, ten + timedelta(seconds=30))  # a retry: nothing changed
        assert await client.nothing()

        await upsert(after, ten + five_minutes + timedelta(seconds=30))
        streamed = [await client.receive_type("candle"), await client.receive_type("candle")]
        assert bars(streamed) == [
            (ten.isoformat(), pytest.approx(after["close"].iloc[1], abs=0.025), True),
            ((ten + five_minutes).isoformat(), pytest.approx(after["close"].iloc[2], abs=0.025), False),
        ]
        await upsert(after, ten + five_minutes + timedelta(seconds=30))  # the next sync's overlap, unchanged
        assert await client.nothing()
        await client.close()

    with time_machine.travel(ten + five_minutes + timedelta(seconds=40), tick=True):
        run(body)


@pytest.mark.parametrize("record_lost", [False, True], ids=["sent_bars_recorded", "record_lost"])
def test_history_filled_in_for_a_read_of_past_dates_is_not_streamed(run, user, instruments, record_lost):
    """A historical read fetches and stores the range it misses (CandlesStored for 2024's bars): its newest bar
    was streamed to every candle subscriber as if it were the live one."""
    recent = make_candles(3, start=datetime(2026, 11, 23, tzinfo=IST))
    history = make_candles(5, start=datetime(2024, 1, 1, tzinfo=IST))

    def upsert(candles):
        return sync_to_async(candles_upsert)(
            symbol="TCS.NS", timeframe=Timeframe.D1, candles=candles, source="test"
        )

    async def body():
        client = Client()
        await client.login(user)
        await client.send({"type": "subscribe", "symbols": ["TCS"], "topics": ["candle"]})
        await client.receive_type("subscribed")
        await upsert(recent)
        assert (await client.receive_type("candle"))["bar"]["date"] == "2026-11-25"
        if record_lost:  # Redis restarted: what the stream sent is forgotten
            await sync_to_async(cache.clear)()
        await upsert(history)
        assert await client.nothing()
        await client.close()

    with time_machine.travel(datetime(2026, 11, 26, 11, 0, tzinfo=IST), tick=True):
        run(body)


def test_a_generated_signal_reaches_signal_subscribers_as_the_api_shows_it(run, user, instruments):

    async def body():
        client = Client()
        await client.login(user)
        await client.send({"type": "subscribe", "symbols": ["TCS"], "topics": ["signal"]})
        await client.receive_type("subscribed")
        await sync_to_async(candles_sync)(
            symbol="TCS.NS", timeframe=Timeframe.D1, days=900, provider=get_provider("synthetic")
        )
        await sync_to_async(signal_generate)(symbol="TCS.NS", timeframe=Timeframe.D1)
        message = await client.receive_type("signal", timeout=5)
        listed = await sync_to_async(signals_list)(symbol="TCS.NS", timeframe=Timeframe.D1)
        # As the API shows it: the API renderer's times, tick and rounding.
        assert message["signal"] == json.loads(PresentingJSONRenderer().render(listed["results"][0]))
        await client.close()

    with time_machine.travel(datetime(2026, 6, 3, 12, 0, tzinfo=IST), tick=True):
        run(body)


def _prediction(*, user_id: int | None, price: float):
    now = datetime(2026, 6, 2, 0, 0, tzinfo=IST)
    prediction = PredictionFactory(
        predicted_price=price,
        lower_bound=price - 10,
        upper_bound=price + 10,
        base_price=price,
        base_timestamp=now,
        requested_by_id=user_id,
    )
    events.announce(
        events.PredictionStored(prediction_id=prediction.pk, symbol="TCS.NS", timeframe="1D", user_id=user_id)
    )
    return prediction


def test_a_users_prediction_reaches_its_owner_only_and_a_system_one_every_subscriber(run, user, instruments):
    other = UserFactory()

    async def body():
        mine, theirs = Client(), Client()
        for client, who in ((mine, user), (theirs, other)):
            await client.login(who)
            await client.send({"type": "subscribe", "symbols": ["TCS"], "topics": ["prediction"]})
            await client.receive_type("subscribed")

        private = await sync_to_async(_prediction)(user_id=user.pk, price=3500.0)
        assert (await mine.receive_type("prediction"))["prediction"]["id"] == private.pk
        assert await theirs.nothing()

        public = await sync_to_async(_prediction)(user_id=None, price=3600.0)
        for client in (mine, theirs):
            assert (await client.receive_type("prediction"))["prediction"]["id"] == public.pk
        await mine.close()
        await theirs.close()

    run(body)


def test_a_stream_subscribed_before_the_open_is_not_stale_until_three_periods_into_the_session(
    run, user, instruments, settings
):
    """The hours the exchange was closed count for nothing: the clock starts at the open (09:15 IST)."""
    settings.STREAM_HEARTBEAT_SECONDS = 0.1
    settings.QUOTE_REFRESH_SECONDS = 1  # stale after 3 s of session without a quote
    opens = datetime(2026, 11, 25, 9, 15, tzinfo=IST)  # a Wednesday

    async def body():
        client = Client()
        await client.login(user)
        await client.send({"type": "subscribe", "symbols": ["TCS"], "topics": ["quote"]})
        await client.receive_type("subscribed")  # at 09:14:57, closed
        feed = await client.receive_type("feed", timeout=8)
        assert feed["status"] == "stale" and feed["last_update"] is None
        assert datetime.fromisoformat(feed["time"]) >= opens + timedelta(seconds=3)
        await client.close()

    with time_machine.travel(opens - timedelta(seconds=3), tick=True):
        run(body)


@pytest.mark.parametrize(
    ("moment", "market_status", "live"),
    [
        (datetime(2026, 11, 28, 11, 0, tzinfo=IST), "closed", False),  # a Saturday: Friday's close
        (datetime(2026, 11, 27, 11, 0, tzinfo=IST), "open", True),
        # Monday, open, but the provider has nothing of today yet (CSV files, Yahoo before the first trade):
        # Friday's close again, no live tick.
        (datetime(2026, 11, 30, 11, 0, tzinfo=IST), "open", False),
    ],
)
def test_a_quote_carries_its_own_time_and_its_exchanges_status(
    run, user, instruments, moment, market_status, live
):
    """A quote fetched on a weekend is the last close, not a live tick: it says when it was quoted and that the
    exchange is closed; the fields clients already read keep their meaning."""
    quoted_at = "2026-11-27T09:59:59+00:00"  # Friday 15:29:59 IST

    async def body():
        client = Client()
        await client.login(user)
        await client.send({"type": "subscribe", "symbols": ["TCS"], "topics": ["quote"]})
        await client.receive_type("subscribed")
        await sync_to_async(events.announce)(
            events.QuoteRefreshed(symbol="TCS.NS", quote={**QUOTE, "timestamp": quoted_at})
        )
        quote = await client.receive_type("quote")
        assert quote["timestamp"] == "2026-11-27T15:29:59+05:30"
        assert (quote["market_status"], quote["live"]) == (market_status, live)
        assert quote["stale"] is False and quote["price"] == 101.5
        await client.close()

    with time_machine.travel(moment, tick=False):
        run(body)


def test_a_quote_and_a_candle_of_generated_data_say_so(run, user, instruments):
    """The quote endpoint and the candles say `source` (synthetic: generated demo data); the stream's quote and
    candle dropped it, so a synthetic price went out to dashboards as if it were the exchange's."""

    async def body():
        client = Client()
        await client.login(user)
        await client.send({"type": "subscribe", "symbols": ["TCS"], "topics": ["quote", "candle"]})
        await client.receive_type("subscribed")
        await sync_to_async(events.announce)(
            events.QuoteRefreshed(symbol="TCS.NS", quote={**QUOTE, "source": "synthetic"})
        )
        quote = await client.receive_type("quote")
        assert quote["source"] == "synthetic"
        await sync_to_async(candles_upsert)(
            symbol="TCS.NS", timeframe=Timeframe.D1, candles=make_candles(2), source="synthetic"
        )
        candle = await client.receive_type("candle")
        assert candle["source"] == "synthetic"
        await client.close()

    run(body)
