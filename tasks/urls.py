"""API routes of field work, included under /api/v1/ by carloan.api_urls."""

from django.urls import path
from rest_framework.routers import SimpleRouter

from tasks import mobile
from tasks.apis import RecordPhotoApi, WorkOrderViewSet

router = SimpleRouter()
router.register("tasks", WorkOrderViewSet, basename="task")

_ORDER = "mobile/orders/<int:pk>/"

urlpatterns = [
    path("tasks/records/<int:pk>/photo/", RecordPhotoApi.as_view(), name="task-record-photo"),
    path("mobile/me/", mobile.MobileMeApi.as_view(), name="mobile-me"),
    path("mobile/location/", mobile.MobileLocationApi.as_view(), name="mobile-location"),
    path("mobile/orders/", mobile.MyOrderListApi.as_view(), name="mobile-orders"),
    path(_ORDER, mobile.MyOrderDetailApi.as_view(), name="mobile-order"),
    path(_ORDER + "accept/", mobile.MyOrderAcceptApi.as_view(), name="mobile-order-accept"),
    path(_ORDER + "decline/", mobile.MyOrderDeclineApi.as_view(), name="mobile-order-decline"),
    path(_ORDER + "start/", mobile.MyOrderStartApi.as_view(), name="mobile-order-start"),
    path(_ORDER + "complete/", mobile.MyOrderCompleteApi.as_view(), name="mobile-order-complete"),
    path(_ORDER + "fail/", mobile.MyOrderFailApi.as_view(), name="mobile-order-fail"),
    path(_ORDER + "notes/", mobile.MyOrderNoteApi.as_view(), name="mobile-order-notes"),
    path(_ORDER + "photos/", mobile.MyOrderPhotoApi.as_view(), name="mobile-order-photos"),
    path(
        _ORDER + "vehicle-live/",
        mobile.MyOrderVehicleLiveApi.as_view(),
        name="mobile-order-vehicle-live",
    ),
    path("mobile/vehicles/", mobile.MobileVehicleLookupApi.as_view(), name="mobile-vehicles"),
    path("mobile/annotations/", mobile.MobileAnnotationApi.as_view(), name="mobile-annotations"),
    *router.urls,
]
