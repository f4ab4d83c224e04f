from django.conf import settings
from django.conf.urls.static import static
from django.contrib import admin
from django.urls import include, path

from carloan.admin import admin_site

# Our own admin site (branding, scoping); the apps' admin modules register on it.
admin.autodiscover()

urlpatterns = [
    path("i18n/", include("django.conf.urls.i18n")),
    path("admin/", admin_site.urls),
    path("api/v1/", include("carloan.api_urls")),
    path("tasks/", include("tasks.page_urls")),
    path("", include("carloan.pages.urls")),
]
if settings.DEBUG:
    urlpatterns += static(settings.MEDIA_URL, document_root=settings.MEDIA_ROOT)
