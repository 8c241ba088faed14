from django.urls import path

from billing import views, views_history

app_name = "billing"

urlpatterns = [
    path("milestones/<id:milestone_id>/deliver/", views.milestone_deliver, name="milestone_deliver"),
    path("invoices/", views.invoice_list, name="invoice_list"),
    path("invoices/approve/", views.invoices_bulk_approve, name="invoices_bulk_approve"),
    path("invoices/<id:invoice_id>/", views.invoice_detail, name="invoice_detail"),
    path("invoices/<id:invoice_id>/pdf/", views.invoice_pdf, name="invoice_pdf"),
    path("invoices/<id:invoice_id>/approve/", views.invoice_approve_view, name="invoice_approve"),
    path("invoices/<id:invoice_id>/recheck/", views.invoice_recheck_view, name="invoice_recheck"),
    path("invoices/<id:invoice_id>/po/", views.invoice_po_view, name="invoice_po"),
    path("invoices/<id:invoice_id>/resend/", views.invoice_resend, name="invoice_resend"),
    path("invoices/<id:invoice_id>/credit-notes/", views.credit_note_create_view, name="credit_note_create"),
    path("review-tasks/", views.review_task_list, name="review_task_list"),
    path("review-tasks/bulk/", views.review_tasks_bulk_view, name="review_tasks_bulk"),
    path("review-tasks/<id:task_id>/assign/", views.review_task_assign_view, name="review_task_assign"),
    path("review-tasks/<id:task_id>/resolve/", views.review_task_resolve_view, name="review_task_resolve"),
    path("outbox/", views.outbox, name="outbox"),
    path("history/", views_history.history_import, name="history_import"),
]
