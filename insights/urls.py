from django.urls import path

from insights import views

app_name = "insights"

# The leakage pages are mounted separately at /insights/leakage/ (insights.urls_leakage, namespace "leakage").
urlpatterns = [
    path("forecast/", views.forecast_page, name="forecast"),
    path("forecast/chart/", views.forecast_chart_partial, name="forecast_chart"),
    path("contract-value/", views.contract_value_page, name="contract_value"),
    path("at-risk/", views.at_risk_page, name="at_risk"),
    path("billed/", views.billed_page, name="billed"),
    path("definitions/", views.definitions, name="definitions"),
]
