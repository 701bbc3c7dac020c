"""GET /api/market/historical/{symbol}?adjust=none|splits|all: corporate actions applied at read time."""

from datetime import UTC, date, datetime
from decimal import Decimal

import pytest
import time_machine
from django.test import Client

from market.adjust import Action
from market.models import CorporateAction, MarketData
from market.presentation import price_rounder
from market.services import candles_sync
from market.tests.factories import FrameProvider, make_candles, provider_configured
from market.timeframes import Timeframe

pytestmark = pytest.mark.django_db
tick = price_rounder(Decimal("0.05"))  # TCS.NS, an NSE equity: prices at its tick

# Daily bars of 1-20 June 2026 (IST); a 1:2 split goes ex on 11 June, the eleventh bar.
CANDLES = make_candles(20, start=datetime(2026, 5, 31, 18, 30, tzinfo=UTC), base=1000.0)
SPLIT_AT = 10
CANDLES.iloc[SPLIT_AT:, :4] /= 2
CANDLES.iloc[SPLIT_AT:, 4] *= 2
SPLIT = Action(ex_date=date(2026, 6, 11), kind="split", ratio=2.0)
NOW = datetime(2026, 6, 22, 12, 0, tzinfo=UTC)


@pytest.fixture
def provider(monkeypatch):
    provider = FrameProvider({("TCS.NS", Timeframe.D1): CANDLES.copy()}, actions={"TCS.NS": [SPLIT]})
    provider_configured(monkeypatch, provider)
    with time_machine.travel(NOW, tick=False):
        yield provider


def history(client, query: str = "") -> dict:
    response = client.get(f"/api/market/historical/TCS?start=2026-06-01&{query}")
    assert response.status_code == 200, response.content
    return response.json()


def closes(body: dict) -> list[float]:
    return [row["close"] for row in body["candles"]]


def test_default_is_split_adjusted_and_says_so(auth_client, provider):
    body = history(auth_client)
    assert (body["adjust"], body["series"]) == ("splits", "split-adjusted")
    adjusted = closes(body)
    assert adjusted[SPLIT_AT] / adjusted[SPLIT_AT - 1] > 0.9  # no 50% crash on the split day
    assert adjusted[:SPLIT_AT] == pytest.approx([tick(c / 2) for c in CANDLES["close"][:SPLIT_AT]], abs=0.01)
    assert body["candles"][0]["volume"] == CANDLES["volume"].iloc[0] * 2


def test_none_gives_the_stored_prices_as_traded(auth_client, provider):
    split_adjusted = history(auth_client)  # cached first: the cache key holds the adjustment
    body = history(auth_client, "adjust=none")
    assert (body["adjust"], body["series"]) == ("none", "as-traded")
    assert closes(body) != closes(split_adjusted)
    assert closes(body) == [tick(c) for c in CANDLES["close"]]
    stored = MarketData.objects.order_by("timestamp").values_list("close_price", flat=True)
    assert list(stored) == pytest.approx(list(CANDLES["close"]))  # stored as traded


def test_columns_format_says_which_adjustment_it_applied(auth_client, provider):
    body = history(auth_client, "format=columns&adjust=all")
    assert body["adjust"] == "all" and body["series"] == "total-return"
    assert body["candles"]["close"][SPLIT_AT - 1] == pytest.approx(
        CANDLES["close"].iloc[SPLIT_AT - 1] / 2, abs=0.025
    )


def test_a_staff_demerger_factor_applies_to_all_but_not_to_splits(auth_client, provider):
    history(auth_client)  # the first read fetches and stores
    CorporateAction.objects.create(
        symbol="TCS.NS", ex_date=date(2026, 6, 16), kind="adjustment", factor=0.9, note="demerger"
    )
    splits, total = closes(history(auth_client, "adjust=splits")), closes(history(auth_client, "adjust=all"))
    assert splits[14] / splits[15] == pytest.approx(
        CANDLES["close"].iloc[14] / CANDLES["close"].iloc[15], rel=1e-3
    )
    assert total[:15] == pytest.approx([c * 0.9 for c in splits[:15]], abs=0.05)  # both at the 0.05 tick
    assert total[15:] == splits[15:]


def test_a_bad_adjust_is_400_listing_the_choices(auth_client, provider):
    response = auth_client.get("/api/market/historical/TCS?adjust=dividends")
    assert response.status_code == 400
    assert response.json()["error"]["details"]["adjust"] == ["adjust must be one of none, splits, all."]
    assert provider.calls == []


def test_an_action_stored_later_is_no_stale_cached_series(auth_client, provider):
    provider.actions = {}  # the provider has not reported the split yet
    before = closes(history(auth_client))
    assert before[SPLIT_AT] / before[SPLIT_AT - 1] < 0.55
    assert closes(history(auth_client)) == before  # cached

    # A later sync reports the split and nothing else (no candle changed): the cached series must go.
    provider.actions = {"TCS.NS": [SPLIT]}
    provider.frames[("TCS.NS", Timeframe.D1)] = CANDLES.iloc[:0]
    result = candles_sync(symbol="TCS.NS", timeframe=Timeframe.D1, days=30, provider=provider)
    assert (result.inserted, result.updated) == (0, 0)
    after = closes(history(auth_client))
    assert after[SPLIT_AT] / after[SPLIT_AT - 1] > 0.9
    assert closes(history(auth_client, "adjust=none")) == before  # unadjusted: the stored prices


def test_staff_editing_an_action_in_admin_invalidates_cached_reads(auth_client, staff_user, provider):
    provider.actions = {}
    assert history(auth_client)["candles"][0]["close"] == tick(CANDLES["close"].iloc[0])
    staff_user.is_superuser = True
    staff_user.save()
    admin = Client()
    admin.force_login(staff_user)
    response = admin.post(
        "/admin/market/corporateaction/add/",
        {"symbol": "TCS.NS", "ex_date": "2026-06-11", "kind": "bonus", "ratio": "2", "source": "staff"},
    )
    assert response.status_code == 302, response.content.decode()[:2000]
    assert history(auth_client)["candles"][0]["close"] == tick(CANDLES["close"].iloc[0] / 2)
    admin.post(f"/admin/market/corporateaction/{CorporateAction.objects.get().pk}/delete/", {"post": "yes"})
    assert not CorporateAction.objects.exists()
    assert history(auth_client)["candles"][0]["close"] == tick(CANDLES["close"].iloc[0])


def test_indicators_read_the_same_adjusted_series(auth_client, provider):
    response = auth_client.get("/api/market/indicators/TCS?names=sma:2&start=2026-06-01&order=asc")
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["adjust"] == "splits"
    (name,) = body["indicators"]
    across_the_split = body["rows"][SPLIT_AT][name]
    close = CANDLES["close"]
    assert across_the_split == pytest.approx(
        (close.iloc[SPLIT_AT - 1] / 2 + close.iloc[SPLIT_AT]) / 2, abs=0.05
    )


def test_a_split_announced_for_a_later_day_adjusts_nothing_yet(auth_client, provider):
    # Staff enter a split ahead of its ex-date: until then no price has changed, and today's share count is the
    # old one. Applied at once, every stored bar read at half the price it is trading at.
    before = closes(history(auth_client))
    CorporateAction.objects.create(symbol="TCS.NS", ex_date=date(2026, 6, 25), kind="split", ratio=5.0)
    from market.services import market_reads_invalidate

    market_reads_invalidate(symbol="TCS.NS")
    assert closes(history(auth_client)) == before
    # (Bodies cached the day before live until its midnight at most: the test below.)
    market_reads_invalidate(symbol="TCS.NS")
    with time_machine.travel(datetime(2026, 6, 25, 4, 0, tzinfo=UTC), tick=False):  # its ex-date, 09:30 IST
        on_the_day = closes(history(auth_client))
    assert on_the_day[-1] == pytest.approx(tick(before[-1] / 5), abs=0.01)


@pytest.mark.parametrize(
    "path", ["historical/TCS?start=2026-06-01", "indicators/TCS?names=sma:2&start=2026-06-01"]
)
def test_a_read_cached_before_an_ex_date_is_not_served_past_its_midnight(
    auth_client, provider, settings, path
):
    # Nothing is written when a split staff entered ahead goes ex: the day turning is all that changes the
    # adjusted series, so a body cached the evening before must not outlive that evening.
    from django.core.cache import cache

    from market.tests.factories import CorporateActionFactory

    settings.MARKET_DATA_CACHE_TTL = 3600
    history(auth_client)  # fetched and stored
    CorporateActionFactory(symbol="TCS.NS", ex_date=date(2026, 6, 25), ratio=5.0)
    from market.services import market_reads_invalidate

    market_reads_invalidate(symbol="TCS.NS")
    evening = datetime(2026, 6, 24, 18, 20, tzinfo=UTC)  # 23:50 IST, ten minutes before the ex-date
    with time_machine.travel(evening, tick=False):
        assert auth_client.get(f"/api/market/{path}").status_code == 200
    from market.caching import market_version

    keys = cache.keys(f"*market:history:TCS.NS:1D:{market_version('TCS.NS')}:*")
    assert keys and all(0 < cache.ttl(key) <= 10 * 60 + 1 for key in keys)
