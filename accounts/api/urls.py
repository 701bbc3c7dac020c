from accounts.api import views
from tradingdash.routing import api_path

urlpatterns = [
    *api_path("register", views.RegisterApi.as_view(), "auth-register"),
    *api_path("login", views.LoginApi.as_view(), "auth-login"),
    *api_path("refresh", views.RefreshApi.as_view(), "auth-refresh"),
    *api_path("logout", views.LogoutApi.as_view(), "auth-logout"),
    *api_path("me", views.MeApi.as_view(), "auth-me"),
    *api_path("password", views.PasswordChangeApi.as_view(), "auth-password"),
]
