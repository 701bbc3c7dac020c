"""Minimal stand-in for the `stream` app's publish helper (the real app replaces this module on merge)."""

from __future__ import annotations


def publish_to_user(user_id: int, message: dict) -> None:
    """Send `message` to every live WebSocket of the user (group `user.<id>`); nothing when no layer is set up."""
    try:
        from channels.layers import get_channel_layer
    except ImportError:
        return
    from asgiref.sync import async_to_sync

    layer = get_channel_layer()
    if layer is None:
        return
    async_to_sync(layer.group_send)(f"user.{user_id}", {"type": "stream.message", "message": message})
