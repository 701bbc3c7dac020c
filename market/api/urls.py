from market.api import views
from tradingdash.async_views import memory_first
from tradingdash.routing import api_path

urlpatterns = [
    *api_path("status", views.MarketStatusApi.as_view(), "market-status"),
    *api_path("symbols", views.SymbolsApi.as_view(), "market-symbols"),
    *api_path("multiple", views.MultipleApi.as_view(), "market-multiple"),
    *api_path("quote/<str:symbol>", memory_first(views.QuoteApi, views.quote_from_memory), "market-quote"),
    *api_path(
        "historical/<str:symbol>",
        memory_first(views.HistoricalApi, views.historical_from_memory),
        "market-historical",
    ),
    *api_path("indicators/<str:symbol>", views.IndicatorsApi.as_view(), "market-indicators"),
    *api_path("sync/<str:symbol>", views.SyncApi.as_view(), "market-sync"),
    *api_path("quality/<str:symbol>", views.QualityApi.as_view(), "market-quality"),
]
