"""Refresh tokens rotate and the old one is blacklisted: one refresh token buys one new pair, even when two
requests present it at the same moment (a stolen token raced against its owner's client)."""

import threading
import time

import pytest
from django.db import connection, connections
from rest_framework.test import APIClient
from rest_framework_simplejwt.tokens import RefreshToken

from accounts.tests.factories import UserFactory

pytestmark = pytest.mark.django_db(transaction=True)


def _waiting_on_locks() -> int:
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM pg_locks WHERE NOT granted")
        return cursor.fetchone()[0]


def test_the_same_refresh_token_presented_twice_at_once_is_honoured_once():
    refresh = str(RefreshToken.for_user(UserFactory()))
    statuses: list[int] = []

    def present() -> None:
        try:
            response = APIClient().post("/api/auth/refresh", {"refresh": refresh}, format="json")
            statuses.append(response.status_code)
        finally:
            connections.close_all()

    with connection.cursor() as cursor:
        # Hold blacklist writes back (reads go on), so both requests get past their blacklist check and wait
        # where the first one to write would otherwise have been quicker than the other's check.
        cursor.execute("BEGIN")
        cursor.execute("LOCK TABLE token_blacklist_blacklistedtoken IN SHARE ROW EXCLUSIVE MODE")
        threads = [threading.Thread(target=present) for _ in range(2)]
        for thread in threads:
            thread.start()
        deadline = time.monotonic() + 10
        while _waiting_on_locks() < 2 and time.monotonic() < deadline:
            time.sleep(0.05)
        cursor.execute("COMMIT")
    for thread in threads:
        thread.join(timeout=20)
    assert sorted(statuses) == [200, 401]
