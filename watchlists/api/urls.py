from tradingdash.routing import api_path
from watchlists.api import views

urlpatterns = [
    *api_path("watchlists", views.WatchlistListApi.as_view(), "watchlists"),
    *api_path("watchlists/<int:pk>", views.WatchlistDetailApi.as_view(), "watchlist-detail"),
    *api_path("watchlists/<int:pk>/quotes", views.WatchlistQuotesApi.as_view(), "watchlist-quotes"),
]
