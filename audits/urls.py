from django.urls import path

from audits import views

app_name = "audits"

urlpatterns = [
    path("", views.audit_list_view, name="list"),
    path("new/", views.audit_new, name="new"),
    path("shared/<str:token>/", views.shared_report, name="shared"),
    path("shared/<str:token>/report.pdf", views.shared_report_pdf, name="shared_pdf"),
    path("<str:audit_id>/", views.audit_detail, name="detail"),
    path("<str:audit_id>/report.pdf", views.audit_pdf, name="pdf"),
    path("<str:audit_id>/rerun/", views.audit_rerun_view, name="rerun"),
    path("<str:audit_id>/share/", views.audit_share, name="share"),
    path("<str:audit_id>/share/<id:link_id>/revoke/", views.audit_share_revoke, name="share_revoke"),
]
