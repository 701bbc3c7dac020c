from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from datetime import timedelta

import pytest
from asgiref.sync import async_to_sync
from asgiref.testing import ApplicationCommunicator
from django.utils import timezone
from rest_framework_simplejwt.tokens import AccessToken

from tradingdash.asgi import application


class WebsocketCommunicator(ApplicationCommunicator):
    """A WebSocket connection to an ASGI application in this process (channels.testing's equivalent needs
    daphne, which the project does not install)."""

    def __init__(self, application, path: str, headers: list[tuple[bytes, bytes]]):
        path, _, query = path.partition("?")
        scope = {
            "type": "websocket",
            "path": path,
            "raw_path": path.encode(),
            "query_string": query.encode(),
            "headers": headers,
            "subprotocols": [],
        }
        super().__init__(application, scope)

    async def connect(self, timeout: float = 2) -> tuple[bool, int | None]:
        await self.send_input({"type": "websocket.connect"})
        response = await self.receive_output(timeout)
        if response["type"] == "websocket.close":
            return False, response.get("code", 1000)
        return True, None

    async def send_to(self, text_data: str) -> None:
        await self.send_input({"type": "websocket.receive", "text": text_data})

    async def receive_from(self, timeout: float = 2) -> str:
        response = await self.receive_output(timeout)
        assert response["type"] == "websocket.send", response
        return response["text"]

    async def disconnect(self, code: int = 1000, timeout: float = 2) -> None:
        await self.send_input({"type": "websocket.disconnect", "code": code})
        await self.wait(timeout)


def access_token(user, *, expired: bool = False) -> str:
    token = AccessToken.for_user(user)
    if expired:
        token.set_exp(from_time=timezone.now() - timedelta(hours=1))
    return str(token)


class Client:
    """A WebSocket client of the real ASGI application, speaking JSON."""

    def __init__(self, path: str = "/ws/stream", headers: list[tuple[bytes, bytes]] | None = None):
        self.communicator = WebsocketCommunicator(application, path, headers=headers or [])

    async def connect(self) -> bool:
        connected, _ = await self.communicator.connect()
        return connected

    async def send(self, message) -> None:
        text = message if isinstance(message, str) else json.dumps(message)
        await self.communicator.send_to(text_data=text)

    async def receive(self, timeout: float = 2) -> dict:
        return json.loads(await self.communicator.receive_from(timeout=timeout))

    async def receive_type(self, kind: str, timeout: float = 2) -> dict:
        """The next message of `kind`, skipping heartbeats and other kinds."""
        while True:
            message = await self.receive(timeout=timeout)
            if message["type"] == kind:
                return message

    async def closed_with(self, timeout: float = 2) -> int:
        output = await self.communicator.receive_output(timeout=timeout)
        assert output["type"] == "websocket.close", output
        return output["code"]

    async def nothing(self, timeout: float = 0.3) -> bool:
        return await self.communicator.receive_nothing(timeout=timeout)

    async def login(self, user) -> dict:
        assert await self.connect()
        await self.send({"type": "auth", "token": access_token(user)})
        return await self.receive_type("authenticated")

    async def close(self) -> None:
        await self.communicator.disconnect()


@pytest.fixture
def run() -> Callable[[Callable[[], Awaitable[None]]], None]:
    """Run an async test body to completion (the suite has no asyncio plugin)."""

    def runner(body: Callable[[], Awaitable[None]]) -> None:
        async_to_sync(body)()

    return runner


@pytest.fixture(autouse=True)
def _connections_closed_after_each_query():
    """The consumer queries on pool threads; as in production (a pooled web process, CONN_MAX_AGE 0) their
    connections close after each query, so none outlives the test and blocks the test database's teardown."""
    from django.db import connections

    previous = connections.settings["default"]["CONN_MAX_AGE"]
    connections.settings["default"]["CONN_MAX_AGE"] = 0
    yield
    connections.settings["default"]["CONN_MAX_AGE"] = previous
