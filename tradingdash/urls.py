from django.contrib import admin
from django.urls import include, path, re_path
from django.views.decorators.csrf import csrf_exempt
from drf_spectacular.views import SpectacularAPIView, SpectacularRedocView, SpectacularSwaggerView

from charts.views import ChartDataApi, chart_page
from predictions.api.views import TaskStatusApi
from tradingdash.exceptions import page_not_found
from tradingdash.health import health
from tradingdash.metrics_view import MetricsApi
from tradingdash.routing import api_path

urlpatterns = [
    path("health", health, name="health"),
    path("metrics", MetricsApi.as_view(), name="metrics"),
    # Staff chart pages, inside the admin (its login, its look); before admin.site.urls, which would 404 them.
    path("admin/charts/<str:symbol>/", admin.site.admin_view(chart_page), name="admin-chart"),
    path(
        "admin/charts/<str:symbol>/data",
        admin.site.admin_view(ChartDataApi.as_view()),
        name="admin-chart-data",
    ),
    path("admin/", admin.site.urls),
    path("api/schema", SpectacularAPIView.as_view(), name="schema"),
    path("docs", SpectacularSwaggerView.as_view(url_name="schema"), name="swagger-ui"),
    path(
        "redoc",
        SpectacularRedocView.as_view(url_name="schema", template_name="docs/redoc.html"),
        name="redoc",
    ),
    path("api/auth/", include("accounts.api.urls")),
    path("api/market/", include("market.api.urls")),
    path("api/signals/", include("signals.api.urls")),
    path("api/predictions/", include("predictions.api.urls")),
    path("api/", include("watchlists.api.urls")),
    path("api/", include("alerts.api.urls")),
    *api_path("api/tasks/<str:task_id>", TaskStatusApi.as_view(), "task-status"),
    # Unknown API routes answer the JSON 404 with DEBUG=1 too (handler404 only applies with DEBUG off).
    re_path(r"^api/", csrf_exempt(page_not_found)),  # JSON 404 for every method, never a CSRF 403 page
]

handler400 = "tradingdash.exceptions.bad_request"
handler403 = "tradingdash.exceptions.permission_denied"
handler404 = "tradingdash.exceptions.page_not_found"
handler500 = "tradingdash.exceptions.server_error"
