"""The audit report as a PDF (WeasyPrint): a one-page summary a CFO reads in a minute, then the evidence."""

from __future__ import annotations

from django.template.loader import render_to_string
from django.utils import timezone

from audits.charts import monthly_chart
from audits.models import Audit
from audits.selectors import audit_report_context
from revexos.dates import current_tenant
from revexos.pdf import pdf_render

EVIDENCE_FINDINGS = 60  # the PDF lists the largest findings' evidence; the page has every one


def audit_report_pdf(*, audit: Audit) -> bytes:
    context = audit_report_context(audit)
    tenant = current_tenant()
    findings = sorted((f for s in context["sections"] for f in s["findings"]), key=lambda f: (-f.amount, f.position))[
        :EVIDENCE_FINDINGS
    ]
    wanted = {f.pk for f in findings}
    for section in context["sections"]:
        section["pdf_findings"] = [f for f in section["findings"] if f.pk in wanted]
        section["pdf_more"] = len(section["findings"]) - len(section["pdf_findings"])
    # A wider, flatter chart than the page's: it shares page 1 with the summary.
    context["charts"] = [
        monthly_chart(currency, months, height=125)
        for currency, months in sorted((audit.report or {}).get("monthly", {}).items())
    ]
    context.update(tenant_name=getattr(tenant, "name", ""), generated=timezone.now())
    html = render_to_string("audits/pdf/report.html", context)
    return pdf_render(html)
