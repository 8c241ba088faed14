"""Discounts & credits pages (billing/views_exceptions.py), under /discounts/ in the ``discounts`` namespace."""

from django.urls import path

from billing import views_exceptions as views

app_name = "discounts"

urlpatterns = [
    path("", views.exception_list, name="list"),
    path("customers/", views.customers, name="customers"),
    path("customers/<id:pk>/", views.customer_detail, name="customer"),
    path("new/<str:kind>/", views.exception_create, name="create"),
    path("<str:kind>/<id:pk>/", views.exception_detail, name="detail"),
    path("<str:kind>/<id:pk>/revoke/", views.exception_revoke, name="revoke"),
    path("<str:kind>/<id:pk>/extend/", views.exception_extend, name="extend"),
    path("discount/<id:pk>/recompute/", views.discount_recompute, name="recompute"),
]
