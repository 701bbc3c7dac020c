"""The live stream: one WebSocket per dashboard at /ws/stream.

Protocol (README, "Live stream"): the client's first message authenticates with an access JWT within
STREAM_AUTH_TIMEOUT_SECONDS, or the socket closes with 4401. Then it subscribes to topics of symbols; the
server pushes messages of those groups, the user's own alerts and tasks, and a heartbeat. The socket lives no
longer than its token: it closes with 4401 when the token expires or its user is deactivated.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import parse_qs
from zoneinfo import ZoneInfo

import structlog
from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncWebsocketConsumer
from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import Error as DatabaseError
from django.utils import timezone
from redis.exceptions import RedisError
from rest_framework_simplejwt.exceptions import TokenError
from rest_framework_simplejwt.settings import api_settings as jwt_settings
from rest_framework_simplejwt.tokens import AccessToken

from accounts.authentication import password_claim_matches
from market.sources import get_calendar
from market.symbols import InvalidSymbol, parse_symbol
from stream.clock import exchange_zone
from stream.groups import TOPICS, symbol_group, user_group
from stream.handshake import handshake_refuse
from stream.limits import MAX_MESSAGE_BYTES, TokenBucket
from stream.live import live_symbols_due, live_symbols_touch
from stream.publish import MESSAGE_TYPE
from stream.selectors import instruments_exchanges
from stream.slots import GRANTED, REFUSED, slot_release, slot_take
from tradingdash.exceptions import error_body

logger = structlog.get_logger(__name__)

CLOSE_UNAUTHENTICATED = 4401
# More of the user's streams are open than STREAM_MAX_PER_USER (stream.slots): not "refresh the token".
CLOSE_TOO_MANY_STREAMS = 4429
CLOSE_TRY_AGAIN_LATER = 1013
CLOSE_POLICY_VIOLATION = 1008
CLOSE_MESSAGE_TOO_BIG = 1009
# PostgreSQL or Redis failing under the stream: answered (an `unavailable` error, or a 1013 close) and logged as a
# warning, never raised out of the consumer (uvicorn would log a traceback and drop the connection).
UPSTREAM_ERRORS = (DatabaseError, RedisError)
UNAVAILABLE = "The live stream's database or Redis is unavailable: try again shortly."
# A handshake refused because the channel layer is down (HTTP 503): when the client may try again.
RETRY_AFTER_SECONDS = 10
# Quotes missing for this many refresh periods while the exchange is open make the feed stale.
STALE_PERIODS = 3


# Not thread-sensitive: thousands of sockets must not queue behind one thread for their few short queries.
_in_thread_pool = functools.partial(database_sync_to_async, thread_sensitive=False)


def _log_unavailable(operation: str, exc: BaseException, **fields: Any) -> None:
    """One line, no traceback: the fault is the database's or Redis's, not the stream's code."""
    logger.warning(
        "stream_upstream_unavailable", operation=operation, error=f"{type(exc).__name__}: {exc}", **fields
    )


class StreamError(Exception):
    """A client message the stream refuses; answered with an `error` message, the socket stays open."""

    def __init__(self, code: str, message: str):
        super().__init__(message)
        self.code, self.message = code, message


@dataclass(frozen=True, kw_only=True)
class _Grant:
    """Who a valid access token authenticates, and until when."""

    user_id: int
    expires_at: datetime
    token: AccessToken


@_in_thread_pool
def _grant(token: str) -> _Grant | None:
    """The active user an unexpired access token was issued to (under the user's current password) and the
    token's expiry, else None."""
    try:
        claims = AccessToken(token)
    except TokenError:
        return None
    user_id = claims.get(jwt_settings.USER_ID_CLAIM)
    user_id = _token_user(user_id, claims) if user_id is not None else None
    if user_id is None:
        return None
    return _Grant(user_id=user_id, expires_at=datetime.fromtimestamp(claims["exp"], tz=UTC), token=claims)


def _token_user(user_id, token: AccessToken) -> int | None:
    """The id of the token's user if they are active and have not changed their password since it was
    issued, else None."""
    row = get_user_model().objects.filter(pk=user_id, is_active=True).values_list("pk", "password").first()
    return row[0] if row is not None and password_claim_matches(token, row[1]) else None


async def _token_still_good(user_id: int, token: AccessToken) -> bool:
    return await _in_thread_pool(_token_user)(user_id, token) is not None


@_in_thread_pool
def _exchanges(symbols: list[str]) -> dict[str, str]:
    return instruments_exchanges(symbols)


@_in_thread_pool
def _session_opens(exchanges: set[str], now: datetime) -> dict[str, datetime]:
    """For each of `exchanges` open at `now`, when its session in progress opened."""
    opens = {}
    for exchange in exchanges:
        calendar = get_calendar(exchange)
        status = calendar.status(now)
        if status.is_open:
            opens[exchange] = calendar.session_hours(status.now.date())[0]
    return opens


@_in_thread_pool
def _zone() -> ZoneInfo:
    return exchange_zone()


@_in_thread_pool
def _touch_in_thread(symbols: list[str]) -> None:
    live_symbols_touch(symbols)


async def _touch(symbols: list[str]) -> None:
    """Keep the symbols in the live set; the ones another stream of this process kept there lately cost nothing."""
    due = live_symbols_due(symbols)
    if due:
        await _touch_in_thread(due)


async def _forget_channel(layer: Any, channel: str) -> None:
    """Drop a finished consumer's channel from channels_redis' pub/sub layer (pinned: 4.3), which forgets a channel,
    its queue and its Redis subscription, only when a receive waiting on it is cancelled. Channels ends a consumer
    without cancelling a receive that already got a message, so a socket that closed with messages queued for it
    (a burst of quotes, a client that stopped reading) left both in the process for good."""
    loop_layer = layer._get_layer() if hasattr(type(layer), "_get_layer") else None
    if loop_layer is None or loop_layer.channels.pop(channel, None) is None:
        return
    try:
        await loop_layer._get_shard(channel).unsubscribe(channel)
    except UPSTREAM_ERRORS as exc:
        _log_unavailable("forget_channel", exc)


class StreamConsumer(AsyncWebsocketConsumer):
    """One client's stream. State per connection: the user and when their token expires, the subscribed topics
    per symbol, and for the stale-feed check when each symbol last had a quote."""

    async def __call__(self, scope, receive, send) -> None:
        try:
            await super().__call__(scope, receive, send)
        except (RedisError, OSError) as exc:
            if getattr(self, "channel_name", None) is not None:
                raise
            # Channels creates the socket's channel on the layer (a Redis subscribe) before the handshake is read.
            _log_unavailable("connect", exc)
            await handshake_refuse(
                scope,
                receive,
                send,
                status=503,
                body=error_body("unavailable", UNAVAILABLE),
                headers=[(b"retry-after", str(RETRY_AFTER_SECONDS).encode())],
                close_code=CLOSE_TRY_AGAIN_LATER,
            )
        finally:
            if getattr(self, "channel_name", None) is not None:
                # A consumer that crashed as well: its heartbeat task, left running, would renew the slot for good.
                await self._release_slot()
                await _forget_channel(self.channel_layer, self.channel_name)

    async def connect(self) -> None:
        self.user_id: int | None = None
        self.slot_user: int | None = None  # whose slot (stream.slots) this socket holds
        self.slot_counted = False  # whether Redis ever counted it (not let through during an outage)
        self.expires_at: datetime | None = None  # the access token's expiry
        self.token: AccessToken | None = None
        self.user_checked_at: datetime | None = None  # when the user was last found active
        self.ended = False  # closed by the server: nothing more is sent
        self.subscriptions: dict[str, set[str]] = {}
        self.exchanges: dict[str, str] = {}
        self.last_quote: dict[str, datetime] = {}  # when the last live quote (or the subscription) came
        self.last_update: dict[str, str | None] = {}  # exchange time of the last live quote the client got
        self.stale: set[str] = set()
        self.zone: ZoneInfo | None = None
        self.heartbeat_task: asyncio.Task | None = None
        self.sending_since: float | None = None  # monotonic time the send in progress began
        self.allowance = TokenBucket(burst=settings.STREAM_MESSAGE_BURST, rate=settings.STREAM_MESSAGE_RATE)
        self.refused = 0  # messages refused in a row for their rate
        await self.accept()
        if "token" in parse_qs(self.scope.get("query_string", b"").decode(errors="replace")):
            # Query strings end up in proxy and access logs: a token there is refused, never read.
            await self.close(code=CLOSE_UNAUTHENTICATED)
            return
        self.auth_task = asyncio.ensure_future(self._auth_deadline())

    async def disconnect(self, code: int) -> None:
        for task in (getattr(self, "auth_task", None), getattr(self, "heartbeat_task", None)):
            if task is not None:
                task.cancel()
        await self._leave_groups()
        await self._release_slot()

    async def _leave_groups(self) -> None:
        """Out of the user's and the symbols' groups: nothing reaches this socket any more."""
        user_id, subscriptions = getattr(self, "user_id", None), getattr(self, "subscriptions", {})
        self.user_id, self.subscriptions = None, {}
        groups = [user_group(user_id)] if user_id is not None else []
        groups += [
            symbol_group(topic, symbol) for symbol, topics in subscriptions.items() for topic in topics
        ]
        await self._discard(groups, operation="leave", user_id=user_id)

    async def _discard(self, groups: list[str], *, operation: str, user_id: int | None) -> None:
        """Out of `groups`, each tried even when Redis fails (logged once): the stream's own state already says
        the socket left them, so whatever the layer still delivers of them is dropped (stream_message)."""
        failed, error = 0, None
        for group in groups:
            try:
                await self.channel_layer.group_discard(group, self.channel_name)
            except UPSTREAM_ERRORS as exc:
                failed, error = failed + 1, exc
        if error is not None:
            _log_unavailable(operation, error, user_id=user_id, failed=failed)

    async def _close(self, code: int, reason: str | None = None) -> None:
        """Close, having left the groups at once, before the server's disconnect comes back: 4401 when the token
        expired or its user may no longer use it (the client reconnects with a fresh token), 1013 when the
        database or Redis failed (the client reconnects later)."""
        if self.ended:
            return
        self.ended = True
        await self._leave_groups()
        await self._release_slot()
        with contextlib.suppress(RuntimeError, OSError):  # the client is gone already
            await self.close(code=code, reason=reason)

    async def _close_unavailable(self, operation: str, exc: BaseException) -> None:
        _log_unavailable(operation, exc, user_id=self.user_id)
        await self._close(CLOSE_TRY_AGAIN_LATER, reason="Service unavailable: try again later.")

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        if self.ended:
            return
        size = len(text_data.encode()) if text_data is not None else len(bytes_data or b"")
        if size > MAX_MESSAGE_BYTES:  # as production's server closes (ws_max_size), whatever the server
            await self._close(CLOSE_MESSAGE_TOO_BIG, reason="Message too big.")
            return
        if not self.allowance.take():
            await self._refuse_for_rate()
            return
        self.refused = 0
        try:
            message = json.loads(text_data if text_data is not None else bytes_data)
        except (TypeError, ValueError, RecursionError):  # RecursionError: JSON nested a thousand deep
            if self.user_id is None:
                await self.close(code=CLOSE_UNAUTHENTICATED)
            else:
                await self._send_error("malformed", "Messages must be JSON objects.")
            return
        if self.user_id is None:
            try:
                await self._authenticate(message)
            except UPSTREAM_ERRORS as exc:
                await self._close_unavailable("auth", exc)
            return
        kind = message.get("type") if isinstance(message, dict) else None
        try:
            if not isinstance(message, dict):
                raise StreamError("malformed", "Messages must be JSON objects.")
            if kind == "subscribe":
                await self._subscribe(message)
            elif kind == "unsubscribe":
                await self._unsubscribe(message)
            elif kind == "auth":
                raise StreamError("already_authenticated", "This stream is already authenticated.")
            else:
                raise StreamError("unknown_type", "Message type must be subscribe or unsubscribe.")
        except StreamError as exc:
            await self._send_error(exc.code, exc.message)
        except UPSTREAM_ERRORS as exc:
            _log_unavailable(str(kind), exc, user_id=self.user_id)
            await self._send_error("unavailable", UNAVAILABLE)

    async def _refuse_for_rate(self) -> None:
        """A message over the allowance is not read: answered `rate_limited`; a burst's worth of them in a row
        closes the socket (1008)."""
        self.refused += 1
        if self.refused > settings.STREAM_MESSAGE_BURST:
            logger.warning("stream_flood_closed", user_id=self.user_id)
            await self._close(CLOSE_POLICY_VIOLATION, reason="Too many messages.")
            return
        await self._send_error(
            "rate_limited",
            f"Too many messages: at most {settings.STREAM_MESSAGE_BURST} at once, then "
            f"{settings.STREAM_MESSAGE_RATE:g} a second.",
        )

    # --- Authentication

    async def _auth_deadline(self) -> None:
        await asyncio.sleep(settings.STREAM_AUTH_TIMEOUT_SECONDS)
        if self.user_id is None and not self.ended:
            await self.close(code=CLOSE_UNAUTHENTICATED)

    async def _authenticate(self, message: Any) -> None:
        token = message.get("token") if isinstance(message, dict) and message.get("type") == "auth" else None
        grant = await _grant(token) if isinstance(token, str) and token else None
        if grant is None:
            await self.close(code=CLOSE_UNAUTHENTICATED)
            return
        limit = settings.STREAM_MAX_PER_USER
        claimed = await slot_take(user_id=grant.user_id, channel=self.channel_name, limit=limit)
        if claimed == REFUSED:
            logger.info("stream_too_many_per_user", user_id=grant.user_id, limit=limit)
            await self._close(CLOSE_TOO_MANY_STREAMS, reason=f"Too many streams: at most {limit} per user.")
            return
        self.slot_user = grant.user_id
        self.slot_counted = claimed == GRANTED  # False: let through while Redis failed
        user_id = self.user_id = grant.user_id
        self.expires_at, self.user_checked_at = grant.expires_at, timezone.now()
        self.token = grant.token
        self.auth_task.cancel()
        self.zone = await _zone()
        await self.channel_layer.group_add(user_group(user_id), self.channel_name)
        await self._send({"type": "authenticated", "user_id": user_id})
        self.heartbeat_task = asyncio.ensure_future(self._heartbeats())

    async def _renew_slot(self) -> bool:
        """Another lease on the user's slot. Should it have lapsed meanwhile (Redis was down or flushed), it is taken
        again if one is free. A stream let through uncounted while Redis failed that finds none free is closed as
        a new one would be refused (4429): a token that opened many streams during an outage keeps none of them
        uncounted. One that was counted goes on (its lease lapsed, it did not exceed the limit). False when
        closed."""
        if self.slot_user is None:
            return True
        claimed = await slot_take(user_id=self.slot_user, channel=self.channel_name)
        if claimed == GRANTED:
            self.slot_counted = True
        if claimed != REFUSED or self.slot_counted:
            return True
        limit = settings.STREAM_MAX_PER_USER
        logger.info("stream_too_many_per_user", user_id=self.slot_user, limit=limit, renewal=True)
        await self._close(CLOSE_TOO_MANY_STREAMS, reason=f"Too many streams: at most {limit} per user.")
        return False

    async def _release_slot(self) -> None:
        # A renewal in flight when the socket closes may land after this: that slot lapses after its lease.
        user_id, self.slot_user = getattr(self, "slot_user", None), None
        if user_id is not None:
            await slot_release(user_id=user_id, channel=self.channel_name)

    # --- Subscriptions

    def _parse(self, message: dict, *, max_symbols: int | None) -> tuple[list[str], list[str]]:
        symbols, topics = message.get("symbols"), message.get("topics", list(TOPICS))
        if not isinstance(symbols, list) or not symbols:
            raise StreamError("invalid", "symbols must be a non-empty list of symbols.")
        if not isinstance(topics, list) or not topics or any(t not in TOPICS for t in topics):
            raise StreamError("invalid", f"topics must be a non-empty list of: {', '.join(TOPICS)}.")
        if max_symbols is not None and len(symbols) > max_symbols:
            raise StreamError("too_many_symbols", f"At most {max_symbols} symbols per stream.")
        parsed = []
        for raw in symbols:
            try:
                parsed.append(parse_symbol(raw, settings.DEFAULT_SYMBOL_SUFFIX))
            except InvalidSymbol as exc:
                raise StreamError("invalid_symbol", str(exc)) from exc
        return sorted(set(parsed)), sorted(set(topics))

    async def _subscribe(self, message: dict) -> None:
        limit = settings.STREAM_MAX_SYMBOLS
        symbols, topics = self._parse(message, max_symbols=limit)
        if len(set(self.subscriptions) | set(symbols)) > limit:
            raise StreamError("too_many_symbols", f"At most {limit} symbols per stream.")
        exchanges = await _exchanges(symbols)
        unknown = [symbol for symbol in symbols if symbol not in exchanges]
        if unknown:
            raise StreamError("unknown_symbol", f"Unknown symbol: {', '.join(unknown)}.")
        joining = [(s, t) for s in symbols for t in topics if t not in self.subscriptions.get(s, ())]
        joined = 0
        try:
            for symbol, topic in joining:
                await self.channel_layer.group_add(symbol_group(topic, symbol), self.channel_name)
                joined += 1
        except UPSTREAM_ERRORS:
            # All or nothing: a client told `unavailable` gets nothing of these symbols until its retry succeeds.
            groups = [symbol_group(topic, symbol) for symbol, topic in joining[: joined + 1]]
            await self._discard(groups, operation="subscribe", user_id=self.user_id)
            raise
        for symbol, topic in joining:
            self.subscriptions.setdefault(symbol, set()).add(topic)
            if (
                topic == "quote"
            ):  # the stale-feed clock starts now, not when the symbol's other topics were asked
                self.last_quote[symbol] = timezone.now()
        for symbol in symbols:
            self.exchanges[symbol] = exchanges[symbol]
            self.last_quote.setdefault(symbol, timezone.now())
            self.last_update.setdefault(symbol, None)
        await _touch([symbol for symbol in symbols if "quote" in self.subscriptions[symbol]])
        await self._send({"type": "subscribed", "symbols": symbols, "topics": topics})

    def _quoted(self) -> list[str]:
        """The symbols this stream receives quotes of: the live set's, which the quote refresher fetches within
        the provider's request budget (a symbol subscribed for its candles or signals only needs no quote)."""
        return [symbol for symbol, topics in self.subscriptions.items() if "quote" in topics]

    async def _unsubscribe(self, message: dict) -> None:
        symbols, topics = self._parse(message, max_symbols=None)
        leaving = []
        for symbol in symbols:
            current = self.subscriptions.get(symbol, set())
            leaving += [symbol_group(topic, symbol) for topic in topics if topic in current]
            current.difference_update(topics)
            if not current:
                for state in (self.subscriptions, self.exchanges, self.last_quote, self.last_update):
                    state.pop(symbol, None)
                self.stale.discard(symbol)
        # After the state: even where Redis fails to drop a group, nothing more of it is sent (stream_message).
        await self._discard(leaving, operation="unsubscribe", user_id=self.user_id)
        await self._send({"type": "unsubscribed", "symbols": symbols, "topics": topics})

    # --- Server messages

    async def dispatch(self, message: dict) -> None:
        # Channels closes stale database connections before every handler, on a thread (sync_to_async): for group
        # messages, one thread hop per message per socket: half of a worker's time in the fan-out (bench/README.md).
        # They touch no database, so they go straight to their handler.
        if message["type"] == MESSAGE_TYPE:
            await self.stream_message(message)
        else:
            await super().dispatch(message)

    async def stream_message(self, event: dict) -> None:
        """A message published to one of this stream's groups, already encoded (stream.publish.group_message).
        Nothing is sent once the token has expired (checked here too, so no private message slips out between
        two heartbeats), nor for a topic of a symbol the client has unsubscribed from: the channel layer may have
        queued it for this socket before the unsubscribe left the group."""
        if self.ended:
            return
        now = timezone.now()
        if self.expires_at is None or now >= self.expires_at:
            await self._close(CLOSE_UNAUTHENTICATED)
            return
        topic = event.get("topic")
        if topic is not None and topic not in self.subscriptions.get(event["symbol"], ()):
            return
        quote = event.get("quote")
        if quote is not None and quote.get("live"):
            symbol = quote["symbol"]
            if symbol in self.subscriptions:
                # Only a live tick restarts the stale-feed clock: the last close served again while the exchange
                # is open (a provider with nothing of today) is no sign of a live feed.
                self.last_quote[symbol] = now
                self.last_update[symbol] = quote["time"]
                self.stale.discard(symbol)
        await self._send_text(event["text"])

    async def _heartbeats(self) -> None:
        """Every STREAM_HEARTBEAT_SECONDS: the token check, a heartbeat, the live-set refresh, and the stale-feed
        check."""
        stale_check_failing = False
        while True:
            await asyncio.sleep(settings.STREAM_HEARTBEAT_SECONDS)
            if self.ended:
                return
            try:
                try:
                    authorised = await self._still_authorised()
                except UPSTREAM_ERRORS as exc:
                    # Whether the user was deactivated cannot be told: closed, as the API would answer 503.
                    await self._close_unavailable("user_check", exc)
                    return
                if not authorised:
                    await self._close(CLOSE_UNAUTHENTICATED)
                    return
                if not await self._renew_slot():
                    return
                if (
                    self.sending_since is not None
                ):  # a group message still on its way: the client is not reading
                    if time.monotonic() - self.sending_since > settings.STREAM_SEND_TIMEOUT_SECONDS:
                        await self._drop_not_reading()
                        return
                    continue
                await self._send({"type": "heartbeat"})
                if self.subscriptions:
                    await _touch(self._quoted())
                    try:
                        await self._check_stale()
                    except UPSTREAM_ERRORS as exc:
                        if not stale_check_failing:  # once per outage, not once per heartbeat
                            _log_unavailable("stale_check", exc, user_id=self.user_id)
                        stale_check_failing = True
                    else:
                        stale_check_failing = False
            except Exception:
                logger.exception("stream_heartbeat_failed", user_id=self.user_id)

    async def _still_authorised(self) -> bool:
        """The token has not expired and, checked every AUTH_USER_CACHE_SECONDS (the API's bound for a
        deactivated user or a password change), its user is still active and the token was issued under the
        user's current password (accounts.services.password_change)."""
        now = timezone.now()
        if self.expires_at is None or now >= self.expires_at:
            return False
        if now - self.user_checked_at >= timedelta(seconds=settings.AUTH_USER_CACHE_SECONDS):
            if not await _token_still_good(self.user_id, self.token):
                return False
            self.user_checked_at = now
        return True

    async def _check_stale(self) -> None:
        """A symbol is stale once its exchange has been open for STALE_PERIODS refresh periods without a live
        quote: counted from the later of its last live quote (or subscription) and the open of the session in
        progress, so the hours the exchange was closed count for nothing."""
        limit = timedelta(seconds=STALE_PERIODS * settings.QUOTE_REFRESH_SECONDS)
        now = timezone.now()
        late = [
            s
            for s, seen in self.last_quote.items()
            if now - seen > limit and s not in self.stale and "quote" in self.subscriptions.get(s, ())
        ]
        if not late:
            return
        opens = await _session_opens({self.exchanges[s] for s in late}, now)
        for symbol in late:
            opened = opens.get(self.exchanges[symbol])
            if opened is not None and now - max(self.last_quote[symbol], opened) > limit:
                self.stale.add(symbol)
                await self._send(
                    {
                        "type": "feed",
                        "status": "stale",
                        "symbol": symbol,
                        "last_update": self.last_update.get(symbol),
                    }
                )

    async def _send_error(self, code: str, message: str) -> None:
        await self._send({"type": "error", "code": code, "message": message})

    async def _send(self, message: dict) -> None:
        """A message of the stream's own (answers, heartbeats, feed status), given STREAM_SEND_TIMEOUT_SECONDS to
        leave. Group messages, the hot path, go out through _send_text alone: the heartbeat watches those."""
        stamped = {"type": message["type"], "time": self._now(), **message}
        try:
            async with asyncio.timeout(settings.STREAM_SEND_TIMEOUT_SECONDS):
                await self._send_text(json.dumps(stamped))
        except TimeoutError:
            await self._drop_not_reading()

    async def _send_text(self, text: str) -> None:
        # The server's send blocks while the socket's write buffer is full (the client is not reading).
        first = self.sending_since is None
        if first:
            self.sending_since = time.monotonic()
        # The socket closed meanwhile (uvicorn: ClientDisconnected, an OSError): its disconnect follows, which ends
        # the consumer; raised from here it would end it without the disconnect handler (the heartbeat running on).
        try:
            with contextlib.suppress(RuntimeError, OSError):
                await self.send(text_data=text)
        finally:
            if first:
                self.sending_since = None

    async def _drop_not_reading(self) -> None:
        """The client has read nothing for STREAM_SEND_TIMEOUT_SECONDS. Out of every group at once: the channel
        layer's queue for a socket has no bound and uvicorn's keepalive close waits for the unsent bytes, so
        messages for it would pile up in this process for as long as the connection lingers. The close (1008)
        goes out should it read again."""
        if self.ended:
            return
        logger.warning("stream_client_not_reading", user_id=self.user_id)
        await self._close(CLOSE_POLICY_VIOLATION, reason="Messages were not read in time.")

    def _now(self) -> str:
        now = datetime.now(tz=self.zone) if self.zone else timezone.now()
        return now.isoformat()
