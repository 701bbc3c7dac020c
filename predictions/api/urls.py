from predictions.api import views
from tradingdash.routing import api_path

urlpatterns = [
    *api_path("id/<int:prediction_id>", views.PredictionDetailApi.as_view(), "predictions-detail"),
    *api_path("generate/<str:symbol>", views.PredictionGenerateApi.as_view(), "predictions-generate"),
    *api_path("train/<str:symbol>", views.TrainApi.as_view(), "predictions-train"),
    *api_path("models/<str:symbol>", views.ModelsApi.as_view(), "predictions-models"),
    *api_path("<str:symbol>/accuracy", views.AccuracyApi.as_view(), "predictions-accuracy"),
    *api_path("<str:symbol>", views.PredictionListApi.as_view(), "predictions-list"),
]
