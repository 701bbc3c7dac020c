from datetime import UTC, datetime

import pytest
from django.test import Client

from accounts.tests.factories import UserFactory
from signals.tests.factories import TradingSignalFactory

pytestmark = pytest.mark.django_db


def test_signal_page_shows_its_factors_once_as_a_table():
    signal = TradingSignalFactory(
        price_target=None,
        stop_loss=None,
        candle_timestamp=datetime(2026, 1, 5, 3, 45, tzinfo=UTC),
        reasoning="RSI oversold",
        factors=[{"name": "rsi", "score": 0.8, "weight": 0.25, "explanation": "RSI 27 is oversold"}],
    )
    client = Client()
    client.force_login(UserFactory(is_staff=True, is_superuser=True))
    html = client.get(f"/admin/signals/tradingsignal/{signal.pk}/change/").content.decode()
    assert html.count("RSI 27 is oversold") == 1
    assert "<tr><td>rsi</td><td>+0.80</td><td>0.25</td><td>RSI 27 is oversold</td></tr>" in html
