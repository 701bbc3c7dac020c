import pytest

from tradingdash.tests.production import ProductionServer, production_server


@pytest.fixture(scope="session")
def live_production(django_db_setup, django_db_blocker, tmp_path_factory) -> ProductionServer:
    """One gunicorn with DEBUG off for the whole session, on the test database (tests that write for it to read
    use transactional_db, so their rows are committed)."""
    with production_server(tmp_path_factory.mktemp("production")) as server:
        yield server
