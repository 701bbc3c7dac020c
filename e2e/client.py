"""A small HTTP client for the API under test: JWT login, JSON in and out, every call with a timeout."""

from __future__ import annotations

import time
from typing import Any

import requests

from e2e.stack import wait_for

PASSWORD = "e2e-Correct-Horse-Battery-9"  # noqa: S105 (a test account's password)


class Api:
    def __init__(self, base_url: str, *, timeout: float = 30):
        self.base_url = base_url
        self.timeout = timeout
        self.session = requests.Session()
        self.last_elapsed = 0.0

    def request(self, method: str, path: str, **kwargs: Any) -> requests.Response:
        started = time.monotonic()
        response = self.session.request(method, self.base_url + path, timeout=self.timeout, **kwargs)
        self.last_elapsed = time.monotonic() - started
        return response

    def get(self, path: str, **params: Any) -> requests.Response:
        return self.request("GET", path, params=params or None)

    def post(self, path: str, body: dict | None = None) -> requests.Response:
        return self.request("POST", path, json=body or {})

    def register_and_login(self, username: str) -> None:
        email = f"{username}@example.com"
        registered = self.post(
            "/api/auth/register", {"username": username, "email": email, "password": PASSWORD}
        )
        assert registered.status_code == 201, registered.text
        self.login(username)

    def login(self, username: str) -> dict:
        response = self.post("/api/auth/login", {"username": username, "password": PASSWORD})
        assert response.status_code == 200, response.text
        tokens = response.json()
        self.session.headers["Authorization"] = f"Bearer {tokens['access']}"
        return tokens

    def wait_task(self, task_id: str, *, timeout: float = 120) -> dict:
        """Poll GET /api/tasks/{id} until the task has finished; returns its last status body."""

        def finished():
            response = self.get(f"/api/tasks/{task_id}")
            assert response.status_code == 200, response.text
            body = response.json()
            assert body["state"] != "FAILURE", body
            return body if body["state"] == "SUCCESS" else None

        return wait_for(finished, timeout=timeout, interval=0.5, what=f"task {task_id} over the API")
