"""How many streams one user holds open, across every web process: a Redis sorted set per user of the sockets'
channel names, each scored by the expiry of its lease, which the socket's heartbeat renews. A socket releases its
slot when it closes; a process that dies without doing so leaves slots that lapse after the lease (3 heartbeats and
the send timeout).
Without Redis (development, one process) the slots live in this process.

Redis failing fails open: the stream is let through and the outage logged once (and its end once). The limit
guards against a user, or a leaked token, opening thousands of sockets; who may stream at all is the token's and
the user's row's to say, and those are checked as before."""

from __future__ import annotations

import threading
import time

import structlog
from django.conf import settings
from redis.exceptions import RedisError

from tradingdash.cache import local_layer_register, redis_async_client

logger = structlog.get_logger(__name__)

# A slot lapses this many heartbeats after its socket last renewed it.
LEASE_HEARTBEATS = 3

# Atomic, so two sockets racing for a user's last slot cannot both get it. KEYS[1]: the user's slots; ARGV: the
# lease (seconds), the limit, the socket's channel, the key's own lifetime (ms). A socket already holding a slot
# (a renewal) keeps it whatever the count. The time is Redis's own: web processes on machines whose clocks differ
# would otherwise purge each other's live slots, or keep a dead one's for longer.
_CLAIM = """
local clock = redis.call('TIME')
local now = tonumber(clock[1]) + tonumber(clock[2]) / 1000000
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
if redis.call('ZSCORE', KEYS[1], ARGV[3]) or redis.call('ZCARD', KEYS[1]) < tonumber(ARGV[2]) then
    redis.call('ZADD', KEYS[1], now + tonumber(ARGV[1]), ARGV[3])
    redis.call('PEXPIRE', KEYS[1], ARGV[4])
    return 1
end
return 0
"""

_local: dict[int, dict[str, float]] = {}
_local_lock = threading.Lock()


class _Outage:
    """Whether the slots' Redis was failing at the last call: the outage is logged when it begins and ends."""

    def __init__(self) -> None:
        self.failing = False
        local_layer_register(self)

    def mark(self, failing: bool, error: BaseException | None = None) -> None:
        if failing and not self.failing:
            logger.warning("stream_slots_unavailable", error=f"{type(error).__name__}: {error}")
        elif self.failing and not failing:
            logger.info("stream_slots_recovered")
        self.failing = failing

    def clear(self) -> None:
        self.failing = False


_outage = _Outage()


def slots_key(user_id: int) -> str:
    prefix = settings.CACHES["default"].get("KEY_PREFIX") or "tradingdash"
    return f"{prefix}:stream:slots:{user_id}"


def lease_seconds() -> float:
    """3 heartbeats, and the send timeout: a heartbeat that waits on a slow reader's send (up to
    STREAM_SEND_TIMEOUT_SECONDS) must not let the slot of a stream still open lapse."""
    return LEASE_HEARTBEATS * settings.STREAM_HEARTBEAT_SECONDS + settings.STREAM_SEND_TIMEOUT_SECONDS


# What a claim found (slot_take).
GRANTED, REFUSED, UNAVAILABLE = "granted", "refused", "unavailable"


def _client():
    return redis_async_client(
        settings.REDIS_URL,
        connect_timeout=settings.REDIS_CONNECT_TIMEOUT,
        socket_timeout=settings.REDIS_SOCKET_TIMEOUT,
    )


async def slot_claim(*, user_id: int, channel: str, limit: int | None = None) -> bool:
    """Take one of the user's `limit` (STREAM_MAX_PER_USER) slots for the socket `channel`, or renew the lease of
    the one it holds. False when all are held by other sockets whose leases run; True when Redis fails."""
    return await slot_take(user_id=user_id, channel=channel, limit=limit) != REFUSED


async def slot_take(*, user_id: int, channel: str, limit: int | None = None) -> str:
    """slot_claim, saying whether the slot was GRANTED (or renewed), REFUSED, or not counted at all because Redis
    failed (UNAVAILABLE: let through)."""
    limit = settings.STREAM_MAX_PER_USER if limit is None else limit
    now = time.time()
    lease = lease_seconds()
    if not settings.REDIS_URL:
        with _local_lock:
            slots = {c: expiry for c, expiry in _local.get(user_id, {}).items() if expiry > now}
            if channel not in slots and len(slots) >= limit:
                return REFUSED
            slots[channel] = now + lease
            _local[user_id] = slots
            return GRANTED
    client = _client()
    try:
        granted = await client.register_script(_CLAIM)(
            keys=[slots_key(user_id)], args=[lease, limit, channel, int(lease * 1000) + 1000]
        )
    except (RedisError, OSError) as exc:
        _outage.mark(True, exc)
        return UNAVAILABLE
    _outage.mark(False)
    return GRANTED if granted else REFUSED


async def slot_release(*, user_id: int, channel: str) -> None:
    """Give the socket's slot back. Should Redis fail, the slot lapses after its lease."""
    if not settings.REDIS_URL:
        with _local_lock:
            _local.get(user_id, {}).pop(channel, None)
        return
    try:
        await _client().zrem(slots_key(user_id), channel)
    except (RedisError, OSError) as exc:
        _outage.mark(True, exc)
        return
    _outage.mark(False)
