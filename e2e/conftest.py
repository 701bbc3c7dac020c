"""End-to-end tests: the real processes (gunicorn, Celery worker and beat, a private redis-server) on a fresh
PostgreSQL database, driven over HTTP and the broker, with faults injected from outside.

Run them with `.venv/bin/python -m pytest e2e` (or `-m e2e`); a plain `pytest` from the root skips this directory.
The test process does not use Django's database: it reads PostgreSQL with psycopg, like any other client."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from e2e.client import Api
from e2e.stack import Stack

E2E_DIR = Path(__file__).resolve().parent
_STACK = pytest.StashKey[Stack]()


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "e2e: end-to-end test against real processes (run: pytest e2e)")


def _requested(config: pytest.Config) -> bool:
    """Only when asked: a path inside e2e/ among the arguments, or a -m expression naming e2e."""
    if "e2e" in (config.option.markexpr or ""):
        return True
    for arg in config.args:
        path = Path(config.invocation_params.dir, arg.split("::")[0]).resolve()
        if path == E2E_DIR or E2E_DIR in path.parents:
            return True
    return False


def pytest_ignore_collect(collection_path: Path, config: pytest.Config) -> bool | None:
    if E2E_DIR in collection_path.parents and not _requested(config):
        return True
    return None


@pytest.fixture(autouse=True)
def _clear_cache():
    """Overrides the root conftest's: the e2e stack has its own Redis, and the shared one is not touched."""
    yield


@pytest.fixture(scope="session")
def stack(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Stack:
    """Everything started once per session, stopped (process groups killed) whatever happens."""
    stack = Stack(tmp_path_factory.mktemp("e2e"))
    request.config.stash[_STACK] = stack
    request.addfinalizer(stack.stop_all)
    stack.start_redis()
    stack.create_database()
    stack.schedule(
        "e2e-heartbeat", "predictions.score_predictions", every=2, expire_seconds=30, description="e2e"
    )
    stack.start_worker()
    stack.start_beat()
    stack.unschedule_production_entries()
    stack.start_web()
    return stack


@pytest.fixture
def healthy_stack(stack: Stack) -> Iterator[Stack]:
    """The stack, brought back to its normal configuration after a test that broke or reconfigured parts of it."""
    stack.ensure_up()
    yield stack
    stack.ensure_up()


@pytest.fixture(scope="session")
def staff(stack: Stack) -> Api:
    """A staff user (registered over the API, promoted the way an operator would: in the database)."""
    api = Api(stack.base_url)
    api.register_and_login("e2e-staff")
    stack.query("UPDATE accounts_user SET is_staff = true WHERE username = %s", ["e2e-staff"])
    return api


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo):
    report = yield
    stack = item.config.stash.get(_STACK, None)
    if stack is not None and report.failed:
        for service in stack.services:
            if service.log_path is not None:
                report.sections.append((f"{service.name} log ({service.log_path})", service.tail(80)))
    return report


def pytest_terminal_summary(terminalreporter, config: pytest.Config) -> None:
    stack = config.stash.get(_STACK, None)
    if stack is not None:
        terminalreporter.write_line(f"e2e logs: {stack.log_dir}")
