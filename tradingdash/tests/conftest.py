import time

import pytest
from django.db import connection

from tradingdash.tests.production import ProductionServer, production_server


@pytest.fixture(scope="session")
def live_production(django_db_setup, django_db_blocker, tmp_path_factory) -> ProductionServer:
    """One gunicorn with DEBUG off for the whole session, on the test database (tests that write for it to read
    use transactional_db, so their rows are committed)."""
    with production_server(tmp_path_factory.mktemp("production")) as server:
        yield server
    # PostgreSQL ends a closed client's backend a moment later; the test database can only be dropped after.
    with django_db_blocker.unblock(), connection.cursor() as cursor:
        for _ in range(50):
            cursor.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()"
            )
            if cursor.fetchone()[0] == 0:
                break
            time.sleep(0.2)
