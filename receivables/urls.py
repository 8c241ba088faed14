from django.urls import path

from receivables import views

app_name = "receivables"

urlpatterns = [
    path("invoices/<int:invoice_id>/payments/", views.invoice_payment_record, name="invoice_payment_record"),
    path("invoices/<int:invoice_id>/write-off/", views.invoice_write_off, name="invoice_write_off"),
]
