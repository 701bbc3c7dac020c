"""The live stream's channel layer: channels_redis' pub/sub layer (pinned: 4.3), minus a leak."""

from __future__ import annotations

import uuid

from channels_redis.pubsub import RedisPubSubChannelLayer


class PubSubChannelLayer(RedisPubSubChannelLayer):
    async def new_channel(self, prefix: str = "specific.") -> str:
        """As channels_redis' own, which keeps the new channel's queue in the process even when its Redis subscribe
        fails: every socket opened while Redis was down (clients retrying through an outage) left one for good."""
        layer = self._get_layer()
        channel = f"{layer.prefix}{prefix}{uuid.uuid4().hex}"
        try:
            await layer._subscribe_to_channel(channel)
        except BaseException:
            layer.channels.pop(channel, None)
            raise
        return channel
