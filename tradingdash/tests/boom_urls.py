"""URLs used only by the error-handling tests: views that fail unexpectedly."""

from django.urls import include, path
from rest_framework.permissions import AllowAny
from rest_framework.views import APIView


class BoomApi(APIView):
    permission_classes = [AllowAny]

    def get(self, request):
        raise RuntimeError("secret internals: SELECT password FROM users")


def plain_boom(request):
    raise RuntimeError("secret internals in a plain Django view")


urlpatterns = [
    path("boom/api", BoomApi.as_view()),
    path("boom/plain", plain_boom),
    path("", include("tradingdash.urls")),
]

handler404 = "tradingdash.exceptions.page_not_found"
handler500 = "tradingdash.exceptions.server_error"
