"""The audit report as a PDF (WeasyPrint): a one-page summary a CFO reads in a minute, then the evidence."""

from __future__ import annotations

from django.db import connection
from django.template.loader import render_to_string
from django.utils import timezone

from audits.models import Audit
from audits.selectors import audit_report_context

EVIDENCE_FINDINGS = 60  # the PDF lists the largest findings' evidence; the page has every one


def audit_report_pdf(*, audit: Audit) -> bytes:
    from weasyprint import HTML

    context = audit_report_context(audit)
    tenant = getattr(connection, "tenant", None)
    findings = sorted((f for s in context["sections"] for f in s["findings"]), key=lambda f: (-f.amount, f.position))[
        :EVIDENCE_FINDINGS
    ]
    wanted = {f.pk for f in findings}
    for section in context["sections"]:
        section["pdf_findings"] = [f for f in section["findings"] if f.pk in wanted]
        section["pdf_more"] = len(section["findings"]) - len(section["pdf_findings"])
    context.update(tenant_name=getattr(tenant, "name", ""), generated=timezone.now())
    html = render_to_string("audits/pdf/report.html", context)
    return HTML(string=html, base_url=".").write_pdf()
