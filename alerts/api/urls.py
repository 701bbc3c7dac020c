from alerts.api import views
from tradingdash.routing import api_path

urlpatterns = [
    *api_path("alerts", views.AlertListApi.as_view(), "alerts"),
    *api_path("alerts/events", views.AlertEventListApi.as_view(), "alert-events"),
    *api_path("alerts/<int:pk>", views.AlertDetailApi.as_view(), "alert-detail"),
    *api_path("notifications/channels", views.ChannelListApi.as_view(), "notification-channels"),
    *api_path("notifications/channels/<int:pk>", views.ChannelDetailApi.as_view(), "notification-channel"),
    *api_path(
        "notifications/channels/<int:pk>/test", views.ChannelTestApi.as_view(), "notification-channel-test"
    ),
]
