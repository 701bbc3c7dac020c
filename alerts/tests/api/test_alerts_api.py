from datetime import UTC, datetime

import pytest
import time_machine

from accounts.tests.factories import UserFactory
from alerts.models import Alert, AlertDelivery, AlertEvent, NotificationChannel
from alerts.services import alerts_evaluate_price
from alerts.tests.factories import AlertFactory, ChannelFactory
from conftest import _client_for

pytestmark = pytest.mark.django_db
SECRET = "a-very-long-shared-secret-1234"
FIELDS = {
    "id",
    "symbol",
    "kind",
    "threshold",
    "signal_type",
    "channels",
    "active",
    "cooldown_minutes",
    "last_fired_at",
}


def _post(client, **body):
    return client.post(
        "/api/alerts",
        {"symbol": "TCS", "kind": "price_above", "threshold": 4000, "channels": ["stream"], **body},
        format="json",
    )


def test_create_list_get_patch_delete(auth_client, tcs):
    created = _post(auth_client)
    assert created.status_code == 201, created.json()
    body = created.json()
    assert set(body) == FIELDS
    assert body["symbol"] == "TCS.NS" and body["threshold"] == 4000 and body["signal_type"] is None
    assert body["active"] is True and body["cooldown_minutes"] == 60 and body["last_fired_at"] is None
    url = f"/api/alerts/{body['id']}"
    assert auth_client.get("/api/alerts").json()["results"] == [body]
    assert auth_client.get(url).json() == body
    patched = auth_client.patch(url, {"threshold": 4100, "active": False}, format="json")
    assert (
        patched.status_code == 200
        and patched.json()["threshold"] == 4100
        and patched.json()["active"] is False
    )
    assert auth_client.delete(url).status_code == 204
    assert auth_client.get(url).status_code == 404


def test_an_edit_of_an_alert_deleted_meanwhile_is_404_not_500(auth_client, tcs):
    """The alert was deleted (another tab) after this PATCH found it and before it locked the row to write."""
    from django.db import connection

    created = _post(auth_client).json()

    def deleted_meanwhile(execute, sql, params, many, context):
        if "FOR UPDATE" in sql and "alerts_alert" in sql and "accounts_user" not in sql:
            execute('DELETE FROM "alerts_alert" WHERE "id" = %s', [created["id"]], False, context)
        return execute(sql, params, many, context)

    with connection.execute_wrapper(deleted_meanwhile):
        response = auth_client.patch(f"/api/alerts/{created['id']}", {"threshold": 4100}, format="json")
    assert response.status_code == 404, response.content
    assert response.json()["error"]["code"] == "not_found"


def test_signal_and_prediction_miss_alerts(auth_client, tcs):
    signal = _post(auth_client, kind="signal", threshold=None, signal_type="BUY")
    assert (
        signal.status_code == 201
        and signal.json()["signal_type"] == "BUY"
        and signal.json()["threshold"] is None
    )
    miss = _post(auth_client, kind="prediction_miss", threshold=None)
    assert miss.status_code == 201 and miss.json()["signal_type"] is None


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"threshold": None}, "threshold"),
        ({"threshold": -5}, "threshold"),
        ({"signal_type": "BUY"}, "signal_type"),
        ({"kind": "signal", "threshold": None}, "signal_type"),
        ({"kind": "signal", "signal_type": "BUY"}, "threshold"),
        ({"kind": "prediction_miss"}, "threshold"),
        ({"kind": "prediction_miss", "threshold": None, "signal_type": "SELL"}, "signal_type"),
        ({"kind": "price_sideways"}, "kind"),
        ({"channels": []}, "channels"),
        ({"channels": ["sms"]}, "channels"),
        ({"channels": ["stream", "stream"]}, "channels"),
        ({"channels": ["webhook"]}, "channels"),  # no webhook channel configured
        ({"symbol": "NOSUCH"}, "symbol"),
        ({"symbol": "TC S"}, "symbol"),
        ({"cooldown_minutes": -1}, "cooldown_minutes"),
        ({"threshold": "NaN"}, "threshold"),
    ],
)
def test_bad_combinations_are_400(auth_client, tcs, body, field):
    response = _post(auth_client, **body)
    assert response.status_code == 400, response.json()
    assert field in response.json()["error"]["details"]


def test_change_pct_thresholds_may_be_negative_and_patch_checks_the_merged_alert(auth_client, tcs):
    body = _post(auth_client, kind="change_pct_below", threshold=-2.5).json()
    assert body["threshold"] == -2.5
    url = f"/api/alerts/{body['id']}"
    assert auth_client.patch(url, {"signal_type": "BUY"}, format="json").status_code == 400
    switched = auth_client.patch(
        url, {"kind": "signal", "threshold": None, "signal_type": "SELL"}, format="json"
    )
    assert switched.status_code == 200 and switched.json()["threshold"] is None


def test_webhook_channel_allows_webhook_alerts(auth_client, user, tcs):
    ChannelFactory(user=user)
    assert _post(auth_client, channels=["stream", "webhook"]).status_code == 201


def test_another_users_alerts_and_events_are_404_or_invisible(auth_client, user, tcs):
    mine = AlertFactory(user=user)
    alerts_evaluate_price(symbol="TCS.NS", price=101.0, change_pct=None)
    other = _client_for(UserFactory())
    url = f"/api/alerts/{mine.pk}"
    assert other.get(url).status_code == 404
    assert other.patch(url, {"active": False}, format="json").status_code == 404
    assert other.delete(url).status_code == 404
    assert other.get("/api/alerts").json()["results"] == []
    assert other.get("/api/alerts/events").json()["results"] == []
    assert Alert.objects.get(pk=mine.pk).active
    assert len(auth_client.get("/api/alerts/events").json()["results"]) == 1


def test_events_show_value_and_delivery_state(auth_client, user, tcs):
    alert = AlertFactory(user=user, channels=["stream", "webhook"])
    channel = ChannelFactory(user=user)
    alerts_evaluate_price(symbol="TCS.NS", price=101.0, change_pct=None)
    AlertDelivery.objects.filter(channel_kind="webhook").update(
        state="failed", attempts=3, last_error="HTTP 500"
    )
    AlertFactory(user=user, threshold=50.0)
    alerts_evaluate_price(symbol="TCS.NS", price=60.0, change_pct=None)  # re-arms the first, fires the second
    response = auth_client.get("/api/alerts/events?limit=1")
    assert response.status_code == 200
    [latest] = response.json()["results"]
    assert latest["value"] == 60.0 and latest["threshold"] == 50.0
    first = auth_client.get("/api/alerts/events").json()["results"][-1]
    assert first["alert_id"] == alert.pk and first["symbol"] == "TCS.NS" and first["kind"] == "price_above"
    assert first["value"] == 101.0 and first["fired_at"]
    assert first["deliveries"] == [
        {
            "channel": "stream",
            "channel_id": None,
            "state": "pending",
            "attempts": 0,
            "last_error": None,
            "delivered_at": None,
        },
        {
            "channel": "webhook",
            "channel_id": channel.pk,
            "state": "failed",
            "attempts": 3,
            "last_error": "HTTP 500",
            "delivered_at": None,
        },
    ]
    for bad in ("0", "501", "x", ""):
        assert auth_client.get(f"/api/alerts/events?limit={bad}").status_code == 400


def test_last_fired_at_is_when_the_alert_fired_not_the_time_of_the_value(auth_client, user, tcs):
    """Friday's close evaluated on Monday fires on Monday: an alert created on Monday must not read as fired on
    Friday at midnight (the bar's time, on which the cooldown runs)."""
    monday = datetime(2026, 11, 30, 5, 0, tzinfo=UTC)
    friday_bar = datetime(2026, 11, 26, 18, 30, tzinfo=UTC)  # 27 November, 00:00 IST
    with time_machine.travel(monday, tick=False):
        alert = AlertFactory(user=user, threshold=4000.0)
        assert alerts_evaluate_price(symbol="TCS.NS", price=4121.95, change_pct=None, observed_at=friday_bar)
    [fired] = auth_client.get("/api/alerts/events").json()["results"]
    listed = auth_client.get("/api/alerts").json()["results"][0]
    one = auth_client.get(f"/api/alerts/{alert.pk}").json()
    patched = auth_client.patch(f"/api/alerts/{alert.pk}", {"cooldown_minutes": 5}, format="json").json()
    assert fired["fired_at"] == "2026-11-30T10:30:00+05:30"
    assert listed["last_fired_at"] == one["last_fired_at"] == patched["last_fired_at"] == fired["fired_at"]


def test_alert_list_query_count_is_pinned(auth_client, user, tcs, django_assert_num_queries):
    for threshold in (90.0, 100.0, 110.0):
        AlertFactory(user=user, threshold=threshold)
    alerts_evaluate_price(symbol="TCS.NS", price=101.0, change_pct=None)
    with django_assert_num_queries(2):  # the alerts with their last firing, and the catalogue's exchanges
        auth_client.get("/api/alerts")


def test_events_list_query_count_is_pinned(auth_client, user, tcs, django_assert_num_queries):
    AlertFactory(user=user, channels=["stream"])
    AlertFactory(user=user, channels=["stream"], threshold=90.0)
    alerts_evaluate_price(symbol="TCS.NS", price=101.0, change_pct=None)
    assert AlertEvent.objects.count() == 2
    # Events and their deliveries, plus one read of the catalogue's exchanges (kept per process) so the
    # times read in each symbol's exchange clock: however many events and symbols.
    AlertFactory(user=user, channels=["stream"], symbol="INFY.NS")
    with django_assert_num_queries(3):
        auth_client.get("/api/alerts/events")


def test_deleting_an_alert_keeps_its_events(auth_client, user, tcs):
    alert = AlertFactory(user=user)
    alerts_evaluate_price(symbol="TCS.NS", price=101.0, change_pct=None)
    auth_client.delete(f"/api/alerts/{alert.pk}")
    [event] = auth_client.get("/api/alerts/events").json()["results"]
    assert event["alert_id"] is None and event["value"] == 101.0


@pytest.mark.usefixtures("public_dns")
class TestChannels:
    def test_create_shows_url_and_secret_masked(self, auth_client):
        response = auth_client.post(
            "/api/notifications/channels",
            {
                "kind": "webhook",
                "url": "https://hooks.example.com/services/T000/B000/xyzabcd",
                "secret": SECRET,
            },
            format="json",
        )
        assert response.status_code == 201, response.json()
        body = response.json()
        assert set(body) == {"id", "kind", "url", "secret", "created_at"}
        assert body["url"] == "https://hooks.example.com/…/abcd"
        assert body["secret"] == "…1234"
        assert NotificationChannel.objects.get(pk=body["id"]).secret == SECRET
        assert auth_client.get("/api/notifications/channels").json()["results"] == [body]

    def test_apprise_channel_hides_tokens(self, auth_client):
        url = "tgram://123456789:AAbbCCddEEffGGhhIIjjKKllMMnnOOpp/-100123456789"
        response = auth_client.post(
            "/api/notifications/channels", {"kind": "apprise", "url": url}, format="json"
        )
        assert response.status_code == 201, response.json()
        assert response.json()["url"] == "tgram://…/…/6789" and response.json()["secret"] == ""
        assert "AAbb" not in str(response.json())

    @pytest.mark.parametrize(
        ("body", "field"),
        [
            ({"kind": "webhook", "url": "https://hooks.example.com/x"}, "secret"),
            ({"kind": "webhook", "url": "https://hooks.example.com/x", "secret": "short"}, "secret"),
            ({"kind": "webhook", "url": "ftp://hooks.example.com/x", "secret": SECRET}, "url"),
            ({"kind": "webhook", "url": "https://user:pw@hooks.example.com/x", "secret": SECRET}, "url"),
            ({"kind": "apprise", "url": "nonsense://what"}, "url"),
            ({"kind": "apprise", "url": "json://127.0.0.1:9/x"}, "url"),
            (
                {
                    "kind": "apprise",
                    "url": "tgram://123456789:AAbbCCddEEffGGhhIIjjKKllMMnnOOpp/1",
                    "secret": SECRET,
                },
                "secret",
            ),
            ({"kind": "sms", "url": "https://hooks.example.com/x"}, "kind"),
        ],
    )
    def test_bad_channels_are_400(self, auth_client, body, field):
        response = auth_client.post("/api/notifications/channels", body, format="json")
        assert response.status_code == 400, response.json()
        assert field in response.json()["error"]["details"]

    def test_test_endpoint_sends_a_signed_sample(self, auth_client, user, receiver, allow_private):
        channel = ChannelFactory(user=user, url=receiver.url, secret=SECRET)
        response = auth_client.post(f"/api/notifications/channels/{channel.pk}/test")
        assert response.status_code == 200 and response.json() == {"delivered": True, "error": None}
        assert receiver.requests[0]["headers"]["X-Tradingdash-Event-Id"] == "test"
        receiver.statuses = [500]
        failed = auth_client.post(f"/api/notifications/channels/{channel.pk}/test").json()
        assert failed["delivered"] is False and "HTTP 500" in failed["error"]

    def test_another_users_channel_is_404(self, auth_client, user):
        channel = ChannelFactory(user=user)
        other = _client_for(UserFactory())
        assert other.delete(f"/api/notifications/channels/{channel.pk}").status_code == 404
        assert other.post(f"/api/notifications/channels/{channel.pk}/test").status_code == 404
        assert other.get("/api/notifications/channels").json()["results"] == []
        assert auth_client.delete(f"/api/notifications/channels/{channel.pk}").status_code == 204
        assert not NotificationChannel.objects.exists()

    def test_unauthenticated_is_401(self, api_client):
        assert api_client.get("/api/notifications/channels").status_code == 401
        assert api_client.get("/api/alerts").status_code == 401
        assert api_client.get("/api/alerts/events").status_code == 401


def test_channel_test_is_throttled_per_user(auth_client, user, settings, receiver, allow_private):
    settings.GENERATION_THROTTLE_RATE = "2/minute"
    channel = ChannelFactory(user=user, url=receiver.url)
    url = f"/api/notifications/channels/{channel.pk}/test"
    assert [auth_client.post(url).status_code for _ in range(3)] == [200, 200, 429]
    assert len(receiver.requests) == 2


def test_alert_and_event_times_read_in_the_clock_of_the_alerts_exchange(auth_client, user):
    """Issue 10: every time in a response carries the instrument's exchange offset. An S&P 500 alert's times
    are New York's (-05:00 in January), not India's, which is the server's TIME_ZONE (for the admin)."""
    from datetime import UTC, datetime

    from market.tests.factories import InstrumentFactory

    InstrumentFactory(symbol="^GSPC", exchange="NYSE", kind="index")
    fired = datetime(2026, 1, 15, 15, 0, tzinfo=UTC)  # 10:00 in New York
    alert = AlertFactory(user=user, symbol="^GSPC", threshold=6000.0, last_fired_at=fired)
    AlertEvent.objects.create(
        key="gspc-above-6000",
        alert=alert,
        user=user,
        symbol="^GSPC",
        kind="price_above",
        value=6001.0,
        threshold=6000.0,
        message="^GSPC above 6000",
        fired_at=fired,
    )
    assert auth_client.get(f"/api/alerts/{alert.pk}").json()["last_fired_at"] == "2026-01-15T10:00:00-05:00"
    event = auth_client.get("/api/alerts/events").json()["results"][0]
    assert event["fired_at"] == "2026-01-15T10:00:00-05:00"


def test_event_values_read_like_every_other_price_and_percentage(auth_client, user, tcs):
    """Issue 10's numbers a person can read: a price alert's value is a traded price (TCS.NS: tick 0.05), a
    change alert's a percentage (2 decimals), as in the event's details beside it; not 1431.6999999999998."""
    AlertFactory(user=user, threshold=1000.0)
    AlertFactory(user=user, kind="change_pct_above", threshold=1.0)
    alerts_evaluate_price(symbol="TCS.NS", price=1431.6999999999998, change_pct=1.2345678)
    events = {e["kind"]: e for e in auth_client.get("/api/alerts/events").json()["results"]}
    assert events["price_above"]["value"] == 1431.7 == events["price_above"]["details"]["price"]
    assert events["change_pct_above"]["value"] == 1.23 == events["change_pct_above"]["details"]["change_pct"]


def test_a_second_alert_with_the_same_condition_is_400_as_the_notifications_would_come_twice(
    auth_client, user, tcs
):
    first = _post(auth_client, channels=["stream"]).json()
    again = _post(auth_client, cooldown_minutes=5)
    assert again.status_code == 400
    assert f"Alert {first['id']} already has this condition" in str(again.json()["error"]["details"])
    other = _post(auth_client, threshold=4100).json()
    patched = auth_client.patch(f"/api/alerts/{other['id']}", {"threshold": 4000}, format="json")
    assert patched.status_code == 400 and Alert.objects.get(pk=other["id"]).threshold == 4100
    assert _post(_client_for(UserFactory())).status_code == 201  # another user's alerts are theirs
    assert (
        auth_client.patch(f"/api/alerts/{first['id']}", {"cooldown_minutes": 1}, format="json").status_code
        == 200
    )


def test_at_most_alert_max_per_user_alerts(auth_client, user, tcs, settings):
    settings.ALERT_MAX_PER_USER = 2
    assert [_post(auth_client, threshold=t).status_code for t in (1, 2, 3)] == [201, 201, 400]
    assert "At most 2 alerts" in str(_post(auth_client, threshold=4).json()["error"]["details"])
    assert Alert.objects.filter(user=user).count() == 2


@pytest.mark.usefixtures("public_dns")
def test_the_same_channel_url_twice_is_400_and_channels_are_limited(auth_client, user, settings):
    """Every firing goes to each channel of its kind: a second copy of a URL notified twice, and nothing
    limited how many requests one firing made."""
    settings.ALERT_MAX_CHANNELS = 2

    def add(url):
        return auth_client.post(
            "/api/notifications/channels", {"kind": "webhook", "url": url, "secret": SECRET}, format="json"
        )

    first = add("https://hooks.example.com/services/one")
    assert first.status_code == 201
    again = add("https://hooks.example.com/services/one")
    assert again.status_code == 400
    assert again.json()["error"]["details"]["url"] == [
        f"Channel {first.json()['id']} already sends to this URL."
    ]
    for same_host_other_case in (
        "HTTPS://Hooks.Example.COM/services/one",
        "https://hooks.example.com:443/services/one",
    ):
        assert add(same_host_other_case).status_code == 400  # the same destination: it would notify twice
    assert (
        add("https://hooks.example.com/services/ONE").status_code == 201
    )  # a path is the receiver's to read
    full = add("https://hooks.example.com/services/three")
    assert full.status_code == 400 and "At most 2 notification channels" in str(full.json())
    assert NotificationChannel.objects.filter(user=user).count() == 2


@pytest.mark.usefixtures("public_dns")
def test_an_apprise_url_naming_a_channel_already_there_is_400(auth_client, user):
    """Apprise URLs were compared as strings: the same mail server or ntfy host in other case, a default port or
    a trailing slash added, or an option given at its default made a second channel, and every firing notified
    twice. A "host" that is a token (Telegram's bot, Discord's webhook id) keeps its case."""

    def add(url):
        return auth_client.post("/api/notifications/channels", {"kind": "apprise", "url": url}, format="json")

    first = [add(url) for url in ("json://hooks.example.com/notify", "tgram://123456789:AbCdEf/987654")]
    assert [response.status_code for response in first] == [201, 201]
    for same in (
        "json://Hooks.Example.COM/notify",
        "json://hooks.example.com:80/notify/",
        "json://hooks.example.com/notify?method=POST",  # its default
        "tgram://123456789:AbCdEf/987654/",
    ):
        response = add(same)
        assert response.status_code == 400, same
        assert "already sends to this URL" in str(response.json()["error"]["details"]["url"])
    for other in ("json://hooks.example.com/Notify", "tgram://123456789:abcdef/987654"):
        assert add(other).status_code == 201, other  # a path, a token: another destination


def test_a_firing_for_a_channel_deleted_since_says_so_instead_of_vanishing(auth_client, user, tcs):
    """The alert still lists webhook after its only webhook channel was deleted: the firing had no delivery at
    all, so the events list showed nothing sent and nothing failed."""
    channel = ChannelFactory(user=user)
    alert = AlertFactory(user=user, channels=["stream", "webhook"])
    assert auth_client.delete(f"/api/notifications/channels/{channel.pk}").status_code == 204
    alerts_evaluate_price(symbol="TCS.NS", price=101.0, change_pct=None)
    [event] = auth_client.get("/api/alerts/events").json()["results"]
    assert event["alert_id"] == alert.pk
    webhook = next(d for d in event["deliveries"] if d["channel"] == "webhook")
    assert webhook["state"] == "failed" and webhook["channel_id"] is None
    assert webhook["last_error"].startswith("No webhook channel to send to")
