"""A split or bonus staff enter after a prediction across its ex-date was scored re-scores it: its realized price
is in the prices of its base bar, which the action changes."""

from datetime import UTC, datetime

import pytest
from django.test import Client

from accounts.tests.factories import UserFactory
from market.tests.factories import MarketDataFactory
from predictions.models import Prediction
from predictions.services import predictions_score
from predictions.tests.factories import PredictionFactory

pytestmark = pytest.mark.django_db
BASE = datetime(2026, 6, 2, 18, 30, tzinfo=UTC)  # Wednesday 3 June, IST
TARGET = datetime(2026, 6, 3, 18, 30, tzinfo=UTC)  # Thursday 4 June: a 1:1 bonus goes ex
LATER = datetime(2026, 6, 5, 12, 0, tzinfo=UTC)


def test_a_bonus_staff_enter_after_scoring_re_scores_the_predictions_across_it(
    django_capture_on_commit_callbacks,
):
    MarketDataFactory(symbol="TCS.NS", timestamp=BASE, close_price=100.0, final=True)
    MarketDataFactory(
        symbol="TCS.NS",
        timestamp=TARGET,
        open_price=51,
        high_price=52,
        low_price=50,
        close_price=51.0,
        final=True,
    )
    prediction = PredictionFactory(
        base_timestamp=BASE, target_time=TARGET, base_price=100.0, predicted_price=101
    )
    assert predictions_score(now=LATER) == 1
    assert Prediction.objects.get(pk=prediction.pk).realized_price == 51.0  # a 49% fall, as things stood

    admin = Client()
    admin.force_login(UserFactory(is_staff=True, is_superuser=True))
    form = {"symbol": "TCS.NS", "ex_date": "2026-06-04", "kind": "bonus", "ratio": "2", "source": "staff"}
    with django_capture_on_commit_callbacks(execute=True):
        assert admin.post("/admin/market/corporateaction/add/", form).status_code == 302

    scored = Prediction.objects.get(pk=prediction.pk)
    assert scored.realized_price == pytest.approx(102.0)  # 51 after the bonus is 102 in the base bar's prices
    assert scored.error == pytest.approx(101 - 102.0)
