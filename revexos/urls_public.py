"""URLs served on the bare domain: the landing page and self-service sign-up."""

from django.urls import path

from revexos.tenancy import views
from revexos.tenancy.admin import platform_admin
from revexos.views import favicon

urlpatterns = [
    path("favicon.ico", favicon, name="favicon"),
    path("", views.landing, name="landing"),
    path("signup/", views.signup, name="signup"),
    path("admin/", platform_admin.urls),
]
