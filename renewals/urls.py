from django.urls import path

from renewals import views

app_name = "renewals"

urlpatterns = [
    path("", views.queue, name="queue"),
    path("quarters/", views.by_quarter, name="quarters"),
    path("<id:pk>/decide/", views.decide, name="decide"),
]
