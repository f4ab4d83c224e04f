"""Back-office pages of field work, mounted at /tasks/ by carloan.urls."""

from django.urls import path

from tasks import views

urlpatterns = [
    path("", views.board, name="task-board"),
    path("map/", views.task_map, name="task-map"),
    path("map.json", views.map_data, name="task-map-data"),
    path("performance/", views.performance, name="task-performance"),
]
