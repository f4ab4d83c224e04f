"""REST API v1 (mounted at /api/v1/): token login, the caller, customers, vehicles, devices,
bindings, the recycle bin, and the OpenAPI schema with its docs page (served from the
drf-spectacular sidecar's static files: no CDN)."""

from django.urls import include, path, re_path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView
from rest_framework.routers import SimpleRouter

from accounts.apis import CustomerViewSet, MeApi, TokenObtainApi
from devices.apis import DeviceViewSet
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

_BIN_ITEM = r"^recycle-bin/(?P<kind>vehicle|device)/(?P<pk>\d+)/"

urlpatterns = [
    path("auth/token/", TokenObtainApi.as_view(), name="api-token"),
    path("users/me/", MeApi.as_view(), name="api-me"),
    path("recycle-bin/", RecycleBinListApi.as_view(), name="recycle-bin"),
    re_path(_BIN_ITEM + r"restore/$", RecycleBinRestoreApi.as_view(), name="recycle-bin-restore"),
    re_path(_BIN_ITEM + r"$", RecycleBinItemApi.as_view(), name="recycle-bin-item"),
    path("schema/", SpectacularAPIView.as_view(), name="api-schema"),
    path("docs/", SpectacularSwaggerView.as_view(url_name="api-schema"), name="api-docs"),
    path("", include(router.urls)),
]
