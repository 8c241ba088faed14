from django.urls import path

from discounts import views

app_name = "discounts"

urlpatterns = [
    path("", views.exception_list, name="list"),
    path("customers/", views.customers, name="customers"),
    path("customers/<int:pk>/", views.customer_detail, name="customer"),
    path("new/<str:kind>/", views.exception_create, name="create"),
    path("<str:kind>/<int:pk>/", views.exception_detail, name="detail"),
    path("<str:kind>/<int:pk>/revoke/", views.exception_revoke, name="revoke"),
    path("<str:kind>/<int:pk>/extend/", views.exception_extend, name="extend"),
    path("discount/<int:pk>/recompute/", views.discount_recompute, name="recompute"),
]
