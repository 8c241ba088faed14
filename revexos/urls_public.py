"""URLs served on the bare domain: the landing page and self-service sign-up."""
from django.contrib import admin
from django.urls import path

from revexos.tenancy import views

urlpatterns = [
    path("", views.landing, name="landing"),
    path("signup/", views.signup, name="signup"),
    path("admin/", admin.site.urls),
]
