"""REST API v1 (mounted at /api/v1/): token login, the caller, customers, vehicles, devices,
bindings, the recycle bin, and the OpenAPI schema with its docs page (served from the
drf-spectacular sidecar's static files: no CDN)."""

from django.urls import include, path, re_path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView
from rest_framework.routers import SimpleRouter

from accounts.apis import CustomerViewSet, MeApi, TokenObtainApi
from alarms.apis import AlarmSettingsApi, AlarmViewSet
from alarms.apis_places import (
    AnnotationViewSet,
    GeofenceViewSet,
    RiskPointViewSet,
    VehicleArmApi,
    VehicleDisarmApi,
)
from credit.apis import ApplicationViewSet
from devices.apis import CommandViewSet, DeviceViewSet
from gateway.apis import PositionListApi, VehicleTrackApi
from vehicles.apis import (
    BindingViewSet,
    RecycleBinItemApi,
    RecycleBinListApi,
    RecycleBinRestoreApi,
    VehicleViewSet,
)

router = SimpleRouter()
router.register("customers", CustomerViewSet, basename="customer")
router.register("vehicles", VehicleViewSet, basename="vehicle")
router.register("devices", DeviceViewSet, basename="device")
router.register("bindings", BindingViewSet, basename="binding")
router.register("commands", CommandViewSet, basename="command")
router.register("alarms", AlarmViewSet, basename="alarm")
router.register("risk-points", RiskPointViewSet, basename="risk-point")
router.register("annotations", AnnotationViewSet, basename="annotation")
router.register("geofences", GeofenceViewSet, basename="geofence")
router.register("credit/applications", ApplicationViewSet, basename="credit-application")

_BIN_ITEM = r"^recycle-bin/(?P<kind>vehicle|device)/(?P<pk>\d+)/"

urlpatterns = [
    path("auth/token/", TokenObtainApi.as_view(), name="api-token"),
    path("users/me/", MeApi.as_view(), name="api-me"),
    path("alarm-settings/", AlarmSettingsApi.as_view(), name="alarm-settings"),
    path("positions/", PositionListApi.as_view(), name="positions"),
    path("vehicles/<int:pk>/track/", VehicleTrackApi.as_view(), name="vehicle-track"),
    path("vehicles/<int:pk>/arm/", VehicleArmApi.as_view(), name="vehicle-arm"),
    path("vehicles/<int:pk>/disarm/", VehicleDisarmApi.as_view(), name="vehicle-disarm"),
    path("recycle-bin/", RecycleBinListApi.as_view(), name="recycle-bin"),
    re_path(_BIN_ITEM + r"restore/$", RecycleBinRestoreApi.as_view(), name="recycle-bin-restore"),
    re_path(_BIN_ITEM + r"$", RecycleBinItemApi.as_view(), name="recycle-bin-item"),
    path("schema/", SpectacularAPIView.as_view(), name="api-schema"),
    path("docs/", SpectacularSwaggerView.as_view(url_name="api-schema"), name="api-docs"),
    # Field work: the back office's tasks/ and the field workers' mobile/ API.
    path("", include("tasks.urls")),
    path("", include(router.urls)),
]
