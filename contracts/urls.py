from django.urls import path

from contracts import views

app_name = "contracts"

urlpatterns = [
    path("customers/", views.customer_list, name="customer_list"),
    path("customers/new/", views.customer_form, name="customer_create"),
    path("customers/import/", views.customers_import, name="customers_import"),
    path("customers/export.csv", views.customers_export, name="customers_export"),
    path("customers/<id:pk>/", views.customer_detail, name="customer_detail"),
    path("customers/<id:pk>/edit/", views.customer_form, name="customer_edit"),
    path("contracts/", views.contract_list, name="contract_list"),
    path("contracts/new/", views.contract_create_view, name="contract_create"),
    path("contracts/import/", views.contracts_import, name="contracts_import"),
    path("contracts/export.csv", views.contracts_export, name="contracts_export"),
    path("contracts/import-template/<str:what>.csv", views.import_template, name="import_template"),
    path("contracts/editor/price-line/", views.price_line_row, name="price_line_row"),
    path("contracts/editor/tier/", views.tier_row, name="tier_row"),
    path("contracts/editor/rate/", views.rate_row, name="rate_row"),
    path("contracts/<id:pk>/", views.contract_detail, name="contract_detail"),
    path("contracts/<id:pk>/edit/", views.contract_edit_view, name="contract_edit"),
    path("contracts/<id:pk>/amend/", views.contract_amend_view, name="contract_amend"),
    path("contracts/<id:pk>/activate/", views.contract_activate_view, name="contract_activate"),
    path("settings/issuing-entities/", views.issuing_entity_list, name="issuing_entity_list"),
    path("settings/issuing-entities/new/", views.issuing_entity_form, name="issuing_entity_create"),
    path("settings/issuing-entities/<id:pk>/", views.issuing_entity_form, name="issuing_entity_edit"),
    path("settings/tax-rates/", views.tax_rate_list, name="tax_rate_list"),
    path("settings/tax-rates/<id:pk>/", views.tax_rate_edit, name="tax_rate_edit"),
]
