from django.contrib.auth import views as auth_views
from django.urls import path

from carloan.pages import views

urlpatterns = [
    path("", views.dashboard, name="dashboard"),
    path(
        "login/",
        auth_views.LoginView.as_view(
            template_name="pages/login.html", redirect_authenticated_user=True
        ),
        name="login",
    ),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("monitor/", views.monitor, name="monitor"),
    path("monitor/snapshot.json", views.snapshot, name="monitor-snapshot"),
    path("monitor/vehicles/<int:pk>.json", views.vehicle_panel, name="monitor-vehicle"),
    path("playback/", views.playback, name="playback"),
    path("alarms/", views.alarm_centre, name="alarm-centre"),
]
