import pytest

from alerts.models import Alert
from alerts.services import alerts_evaluate_price
from alerts.tests.factories import AlertFactory, ChannelFactory
from watchlists.models import Watchlist

pytestmark = pytest.mark.django_db
SECRET = "a-very-long-shared-secret-1234"


def test_admin_pages_open_and_never_show_channel_credentials(client, staff_user):
    staff_user.is_superuser = True
    staff_user.save()
    client.force_login(staff_user)
    alert = AlertFactory(user=staff_user, channels=["stream", "webhook"])
    channel = ChannelFactory(
        user=staff_user, url="https://hooks.example.com/services/T000/SECRETPATH/wxyz", secret=SECRET
    )
    alerts_evaluate_price(symbol="TCS.NS", price=101.0, change_pct=None)
    watchlist = Watchlist.objects.create(user=staff_user, name="Banks", symbols=["TCS.NS"])
    pages = [
        "/admin/alerts/alert/",
        f"/admin/alerts/alert/{alert.pk}/change/",
        "/admin/alerts/alertevent/",
        f"/admin/alerts/alertevent/{alert.events.get().pk}/change/",
        "/admin/alerts/notificationchannel/",
        f"/admin/alerts/notificationchannel/{channel.pk}/change/",
        "/admin/watchlists/watchlist/",
        f"/admin/watchlists/watchlist/{watchlist.pk}/change/",
    ]
    for page in pages:
        response = client.get(page)
        assert response.status_code == 200, page
        content = response.content.decode()
        assert SECRET not in content and "SECRETPATH" not in content, page


def test_admin_refuses_a_second_alert_with_the_same_condition(client, staff_user):
    staff_user.is_superuser = True
    staff_user.save()
    client.force_login(staff_user)
    alert = AlertFactory(threshold=100.0)
    form = {
        "user": alert.user_id,
        "symbol": "TCS.NS",
        "kind": "price_above",
        "threshold": "100",
        "signal_type": "",
        "channels": '["stream"]',
        "active": "on",
        "cooldown_minutes": "5",
    }
    response = client.post("/admin/alerts/alert/add/", form)
    assert response.status_code == 200
    assert f"Alert {alert.pk} of this user already has this condition." in response.content.decode()
    assert client.post("/admin/alerts/alert/add/", {**form, "threshold": "101"}).status_code == 302
    assert Alert.objects.count() == 2
