"""/accuracy across a split: each prediction is stored and scored in the prices of its base bar, so its error is
in that bar's share count; an MAE over errors from both sides of a 1:2 split counted the older ones double."""

from datetime import UTC, date, datetime

import pytest

from market.tests.factories import CorporateActionFactory, InstrumentFactory
from predictions.tests.factories import PredictionFactory

pytestmark = pytest.mark.django_db


def test_the_mae_is_in_todays_share_count(auth_client, frozen):
    InstrumentFactory(symbol="TCS.NS")
    CorporateActionFactory(symbol="TCS.NS", ex_date=date(2026, 6, 2), ratio=2.0)
    # Made on 29 May at 2,600 (the old shares), off by 20 of them: 10 in today's.
    PredictionFactory(
        base_timestamp=datetime(2026, 5, 28, 18, 30, tzinfo=UTC),
        base_price=2600.0,
        predicted_price=2620.0,
        realized_price=2600.0,
        error=20.0,
    )
    # Made on 2 June, the ex-date, at 1,300: off by 10.
    PredictionFactory(
        base_timestamp=datetime(2026, 6, 1, 18, 30, tzinfo=UTC),
        base_price=1300.0,
        predicted_price=1290.0,
        realized_price=1300.0,
        error=-10.0,
    )
    body = auth_client.get("/api/predictions/TCS/accuracy").json()
    assert (body["scored"], body["mae"]) == (2, pytest.approx(10.0))
