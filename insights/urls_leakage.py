from django.urls import path

from insights import views_leakage as views

app_name = "leakage"

urlpatterns = [
    path("", views.finding_list, name="list"),
    path("rules/", views.rule_definitions, name="rules"),
    path("scan/", views.scan_now, name="scan"),
    path("<id:finding_id>/", views.finding_detail, name="detail"),
    path("<id:finding_id>/acknowledge/", views.finding_acknowledge, name="acknowledge"),
    path("<id:finding_id>/resolve/", views.finding_resolve, name="resolve"),
    path("<id:finding_id>/dismiss/", views.finding_dismiss, name="dismiss"),
]
