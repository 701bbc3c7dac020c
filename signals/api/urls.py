from signals.api import views
from tradingdash.routing import api_path

urlpatterns = [
    *api_path("generate/<str:symbol>", views.SignalGenerateApi.as_view(), "signals-generate"),
    *api_path("<str:symbol>/backtest", views.BacktestApi.as_view(), "signals-backtest"),
    *api_path("<str:symbol>", views.SignalListApi.as_view(), "signals-list"),
]
