import pytest

from alerts.tests.receiver import Receiver
from market.tests.factories import InstrumentFactory


@pytest.fixture
def receiver():
    with Receiver() as server:
        yield server


@pytest.fixture
def allow_private(settings):
    settings.ALERT_WEBHOOK_ALLOW_PRIVATE = True


@pytest.fixture
def tcs(db):
    return InstrumentFactory(symbol="TCS.NS")


@pytest.fixture(autouse=True)
def eager_retries(monkeypatch):
    """Inline tasks that call self.retry() run again at once (Celery's eager retry) instead of raising Retry."""
    from tradingdash.celery import app

    monkeypatch.setitem(app.conf, "task_eager_propagates", False)


@pytest.fixture
def public_dns(monkeypatch):
    """DNS is a boundary (and this machine has none): *.example.com resolves to a public address."""
    import socket

    real = socket.getaddrinfo

    def getaddrinfo(host, port, *args, **kwargs):
        if str(host).endswith("example.com"):
            return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", ("93.184.215.14", port))]
        return real(host, port, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
