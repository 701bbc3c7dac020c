"""A model claims the candles it was trained and evaluated on: when bars inside its training window are rewritten
(a provider's revision), filled in or deleted afterwards, it says so (`data_revised_at`, in the models API, and a
warning on predictions it makes); bars appended after its window do not count."""

from datetime import UTC, datetime, timedelta

import pandas as pd
import pytest
import time_machine

from market.models import MarketData
from market.services import candles_sync, candles_upsert
from market.sources import get_provider
from market.timeframes import Timeframe
from predictions.models import TrainedModel
from predictions.services import models_flag_revised, models_train
from predictions.tests.conftest import NOW

pytestmark = pytest.mark.django_db


@pytest.fixture
def trained(frozen):
    """An svr version of TCS.NS (and the ensemble of that run) trained on 900 days of synthetic daily candles."""
    candles_sync(symbol="TCS.NS", timeframe=Timeframe.D1, days=900, provider=get_provider("synthetic"))
    return models_train(symbol="TCS.NS", timeframe=Timeframe.D1, algorithms=["svr"])[0]


def _bar_inside(model: TrainedModel) -> MarketData:
    return (
        MarketData.objects.filter(
            symbol=model.symbol,
            timeframe=model.timeframe,
            timestamp__gt=model.data_start,
            timestamp__lt=model.data_end,
        )
        .order_by("timestamp")
        .first()
    )


def _revise_volume(bar: MarketData, *, by: int = 1000) -> None:
    """The provider sends the bar again with another volume (Yahoo completes a day's volume later)."""
    frame = pd.DataFrame(
        {
            "open": [bar.open_price],
            "high": [bar.high_price],
            "low": [bar.low_price],
            "close": [bar.close_price],
            "volume": [bar.volume + by],
        },
        index=pd.DatetimeIndex([bar.timestamp], name="timestamp"),
    )
    candles_upsert(symbol=bar.symbol, timeframe=Timeframe(bar.timeframe), candles=frame, source=bar.source)


def test_a_provider_revision_inside_the_training_window_flags_the_model(
    trained, auth_client, django_capture_on_commit_callbacks
):
    assert trained.data_revised_at is None
    with django_capture_on_commit_callbacks(execute=True):
        _revise_volume(_bar_inside(trained))
    trained.refresh_from_db()
    assert trained.data_revised_at == NOW
    # Every version trained on that window says so (the run's ensemble too), in the models API.
    assert set(TrainedModel.objects.values_list("data_revised_at", flat=True)) == {NOW}
    rows = auth_client.get("/api/predictions/models/TCS").json()["results"]
    assert {datetime.fromisoformat(row["data_revised_at"]) for row in rows} == {NOW}

    # Still served (one bar's revision is no other data set), with a warning saying what its figures describe.
    response = auth_client.post("/api/predictions/generate/TCS", {"model": "svr"}, format="json")
    assert response.status_code == 201, response.json()
    (warning,) = response.json()["warnings"]
    assert warning.startswith(f"svr v{trained.version} was trained and evaluated on candles of which some")
    assert (
        "rewritten, filled in, deleted or adjusted for a split or bonus entered after it read them" in warning
    )
    assert "and 2026-06-03," in warning  # the last trading day it read, not that bar's open in UTC (the 2nd)


def test_the_list_and_detail_say_a_predictions_model_was_revised_before_it_was_made(
    trained, auth_client, django_capture_on_commit_callbacks
):
    """The 201 body's warning was the only place saying so: read back from the list or the detail, the same
    prediction looked like one from a model whose figures still describe the stored bars."""
    before = auth_client.post("/api/predictions/generate/TCS", {"model": "svr"}, format="json").json()
    revised = NOW + timedelta(minutes=1)
    with time_machine.travel(revised, tick=False), django_capture_on_commit_callbacks(execute=True):
        _revise_volume(_bar_inside(trained))
    with time_machine.travel(revised + timedelta(minutes=1), tick=False):
        after = auth_client.post("/api/predictions/generate/TCS", {"model": "svr"}, format="json").json()
    assert after["warnings"] and datetime.fromisoformat(after["model_data_revised_at"]) == revised

    listed = {row["id"]: row for row in auth_client.get("/api/predictions/TCS").json()["results"]}
    # A revision found after a prediction was made is not its own: it said what the model knew then.
    assert listed[before["id"]]["model_data_revised_at"] is None
    assert datetime.fromisoformat(listed[after["id"]]["model_data_revised_at"]) == revised
    detail = auth_client.get(f"/api/predictions/id/{after['id']}").json()
    assert datetime.fromisoformat(detail["model_data_revised_at"]) == revised


def test_a_prediction_from_a_model_whose_window_is_as_it_read_it_has_no_warning(trained, auth_client):
    response = auth_client.post("/api/predictions/generate/TCS", {"model": "svr"}, format="json")
    assert response.status_code == 201, response.json()
    assert response.json()["warnings"] == []
    assert auth_client.get("/api/predictions/models/TCS").json()["results"][0]["data_revised_at"] is None


def test_bars_appended_after_the_window_do_not_flag_the_model(trained, django_capture_on_commit_callbacks):
    # The next session: its bar is stored partial during the session, then completed (turned final, its close
    # changed) after the close; each time the provider sends the window's last bars again, as they are stored.
    next_day = NOW + timedelta(days=1)
    with time_machine.travel(next_day, tick=False):
        sent = get_provider("synthetic").fetch_candles(
            "TCS.NS", Timeframe.D1, start=trained.data_end - timedelta(days=4), end=next_day
        )
    assert sent.index[-2] == trained.data_end and sent.index[-1] > trained.data_end
    partial = sent.assign(close=sent["close"].where(sent.index != sent.index[-1], sent["open"]))
    with django_capture_on_commit_callbacks(execute=True):
        with time_machine.travel(next_day - timedelta(hours=5), tick=False):  # 12:00 IST, in the session
            during = candles_upsert(
                symbol="TCS.NS", timeframe=Timeframe.D1, candles=partial, source="synthetic"
            )
        with time_machine.travel(next_day, tick=False):
            after = candles_upsert(symbol="TCS.NS", timeframe=Timeframe.D1, candles=sent, source="synthetic")
    assert (during.inserted, during.updated, after.inserted, after.updated) == (1, 0, 0, 1)
    assert not TrainedModel.objects.filter(data_revised_at__isnull=False).exists()


def test_a_staff_delete_inside_the_window_flags_the_model(
    trained, admin_client, django_capture_on_commit_callbacks
):
    bar = _bar_inside(trained)
    with django_capture_on_commit_callbacks(execute=True):
        response = admin_client.post(f"/admin/market/marketdata/{bar.pk}/delete/", {"post": "yes"})
    assert response.status_code == 302
    trained.refresh_from_db()
    assert trained.data_revised_at == NOW


def test_a_bar_filled_in_inside_the_window_flags_the_model(trained, django_capture_on_commit_callbacks):
    # A repair fetching a missing day again (here: one that went missing after training) is a revision too.
    bar = _bar_inside(trained)
    MarketData.objects.filter(pk=bar.pk).delete()  # not through candles_delete: nobody is told
    with django_capture_on_commit_callbacks(execute=True):
        _revise_volume(bar, by=0)
    trained.refresh_from_db()
    assert trained.data_revised_at == NOW


def test_the_same_revision_announced_again_keeps_the_first_time(trained, django_capture_on_commit_callbacks):
    bar = _bar_inside(trained)
    with django_capture_on_commit_callbacks(execute=True):
        _revise_volume(bar)
    later = NOW + timedelta(hours=2)
    with time_machine.travel(later, tick=False):
        # The same bars announced again (a retried delivery), and another revision since: still the first time.
        assert models_flag_revised(symbol="TCS.NS", timeframe="1D", stamps=[bar.timestamp]) == 0
        with django_capture_on_commit_callbacks(execute=True):
            _revise_volume(bar, by=2000)
    assert set(TrainedModel.objects.values_list("data_revised_at", flat=True)) == {NOW}


def test_another_symbol_timeframe_or_window_is_left_alone(trained):
    inside = _bar_inside(trained).timestamp
    assert models_flag_revised(symbol="INFY.NS", timeframe="1D", stamps=[inside]) == 0
    assert models_flag_revised(symbol="TCS.NS", timeframe="1H", stamps=[inside]) == 0
    before, after = trained.data_start - timedelta(days=1), trained.data_end + timedelta(days=1)
    # Bars on both sides of the window, none inside it.
    assert models_flag_revised(symbol="TCS.NS", timeframe="1D", stamps=[before, after]) == 0
    assert not TrainedModel.objects.filter(data_revised_at__isnull=False).exists()


def test_a_revision_while_a_training_runs_flags_the_versions_it_stores(frozen):
    # Bars revised after the training read them and before it stored its versions: no version was there to be
    # flagged when the revision was announced, so the training itself must notice.
    candles_sync(symbol="TCS.NS", timeframe=Timeframe.D1, days=900, provider=get_provider("synthetic"))
    first = MarketData.objects.filter(symbol="TCS.NS").order_by("timestamp")[300]
    revised = []

    def progress(fraction: float, stage: str) -> None:
        if not revised:  # the first step reports after the candles were read
            with time_machine.travel(NOW + timedelta(minutes=1), tick=False):
                _revise_volume(first)
            revised.append(stage)

    stored = models_train(symbol="TCS.NS", timeframe=Timeframe.D1, algorithms=["svr"], progress=progress)
    assert revised and all(model.data_revised_at == NOW for model in stored)
    assert TrainedModel.objects.filter(data_revised_at=NOW).count() == len(stored) == 2


def test_a_training_records_the_window_it_read(trained):
    fingerprint = trained.metrics["data_fingerprint"]
    window = MarketData.objects.filter(
        symbol="TCS.NS", timeframe="1D", timestamp__gte=trained.data_start, timestamp__lte=trained.data_end
    )
    assert fingerprint["bars"] == window.count()
    assert datetime.fromisoformat(fingerprint["written_at"]) <= NOW.astimezone(UTC)


def test_the_schema_documents_the_revision_fields():
    from drf_spectacular.generators import SchemaGenerator

    components = SchemaGenerator().get_schema(request=None, public=True)["components"]["schemas"]
    version = components["ModelVersion"]["properties"]["data_revised_at"]
    assert version["format"] == "date-time" and version["nullable"] is True
    warnings = components["PredictionMade"]["properties"]["warnings"]
    assert warnings["type"] == "array" and warnings["items"]["type"] == "string"


@pytest.mark.parametrize(
    ("kind", "when", "flagged"),
    [
        ("split", "inside", True),  # every split-adjusted price before it is divided by 2 now
        ("bonus", "after", True),  # the whole window is
        ("dividend", "inside", False),  # training reads split-adjusted candles: a dividend changes none
        ("split", "before", False),  # only bars before the window change
    ],
)
def test_a_split_staff_enter_after_training_flags_the_models_whose_window_it_readjusts(
    trained, admin_client, django_capture_on_commit_callbacks, kind, when, flagged
):
    """A split or bonus entered after training changes the split-adjusted candles the version was trained and
    evaluated on, though no stored bar is written: it said nothing."""
    ex_date = {
        "inside": _bar_inside(trained).timestamp + timedelta(days=3),
        "after": trained.data_end + timedelta(days=3),
        "before": trained.data_start - timedelta(days=3),
    }[when].date()
    form = {"symbol": "TCS.NS", "ex_date": ex_date.isoformat(), "kind": kind, "ratio": "2", "amount": "5"}
    if kind == "dividend":
        form.pop("ratio")
    else:
        form.pop("amount")
    with django_capture_on_commit_callbacks(execute=True):
        response = admin_client.post("/admin/market/corporateaction/add/", form)
    assert response.status_code == 302, response.content.decode()[:2000]
    flags = set(TrainedModel.objects.values_list("data_revised_at", flat=True))
    assert flags == ({NOW} if flagged else {None})
