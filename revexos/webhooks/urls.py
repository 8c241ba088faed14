from django.urls import path

from revexos.webhooks import views

app_name = "webhooks"

urlpatterns = [
    path("", views.endpoint_list, name="endpoint_list"),
    path("<id:pk>/", views.endpoint_detail, name="endpoint_detail"),
    path("<id:pk>/toggle/", views.endpoint_toggle, name="endpoint_toggle"),
    path("deliveries/<id:pk>/redeliver/", views.delivery_redeliver, name="delivery_redeliver"),
]
