"""URLs served on the bare domain: the landing page and self-service sign-up."""

from django.templatetags.static import static
from django.urls import path
from django.views.generic import RedirectView

from revexos.tenancy import views
from revexos.tenancy.admin import platform_admin

urlpatterns = [
    # Browsers ask for /favicon.ico on every page whatever the <link rel="icon"> says.
    path("favicon.ico", RedirectView.as_view(url=static("favicon.svg"), permanent=True), name="favicon"),
    path("", views.landing, name="landing"),
    path("signup/", views.signup, name="signup"),
    path("admin/", platform_admin.urls),
]
