from django.urls import path

from receivables import views

app_name = "receivables"

urlpatterns = [
    path("", views.collections_page, name="collections"),
    path("aging/", views.aging_invoices, name="aging_invoices"),
    path("payments/", views.payment_list_page, name="payments"),
    path("payments/new/", views.payment_new, name="payment_new"),
    path("payments/<int:payment_id>/apply/", views.payment_apply, name="payment_apply"),
    path("payments/<int:payment_id>/refund/", views.payment_refund_view, name="payment_refund"),
    path("pauses/", views.pause_create, name="pause_create"),
    path("pauses/<int:pause_id>/lift/", views.pause_lift, name="pause_lift"),
    path("bank/", views.bank_import, name="bank_import"),
    path("bank/queue/", views.bank_queue, name="bank_queue"),
    path("bank/lines/<int:line_id>/match/", views.bank_line_match_view, name="bank_line_match"),
    path("bank/lines/<int:line_id>/ignore/", views.bank_line_ignore_view, name="bank_line_ignore"),
    path("settings/", views.settings_page, name="settings"),
    path("customers/<int:customer_id>/statement.pdf", views.statement_pdf, name="statement_pdf"),
    path("customers/<int:customer_id>/statement/send/", views.statement_send_view, name="statement_send"),
    path("invoices/<int:invoice_id>/payments/", views.invoice_payment_record, name="invoice_payment_record"),
    path("invoices/<int:invoice_id>/write-off/", views.invoice_write_off, name="invoice_write_off"),
    path("invoices/<int:invoice_id>/pay-link/revoke/", views.pay_link_revoke_view, name="pay_link_revoke"),
]
