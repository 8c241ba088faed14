"""Reads of audits for the API, the pages and the PDF (one tenant's schema: its own audits only)."""

from __future__ import annotations

import uuid
from decimal import Decimal

from django.http import Http404
from django.urls import reverse

from audits.charts import monthly_chart
from audits.models import Audit, AuditFinding, AuditStatus
from audits.rules import LEAK_RULES, RULE_ORDER, RULES
from revexos.money import quantize

EVIDENCE_ROWS = 12


def audit_list():
    return Audit.objects.order_by("-created_at")


def audit_get(audit_id) -> Audit:
    try:
        pk = uuid.UUID(str(audit_id))
    except ValueError:
        raise Http404("No audit with that id.") from None
    audit = Audit.objects.filter(pk=pk).first()
    if audit is None:
        raise Http404("No audit with that id.")
    return audit


def audit_as_json(audit: Audit, *, request=None, with_findings: bool = True) -> dict:
    """The API shape (DESIGN.md §5.1): id, status, findings, totals — plus progress and the report."""
    report = audit.report or {}
    body = {
        "id": str(audit.pk),
        "name": audit.name,
        "status": audit.status,
        "progress": audit.progress,
        "stage": audit.stage,
        "created_at": audit.created_at.isoformat(),
        "finished_at": audit.finished_at.isoformat() if audit.finished_at else None,
        "expires_at": audit.expires_at.isoformat(),
        "as_of": report.get("as_of") or (audit.as_of.isoformat() if audit.as_of else None),
        "errors": audit.errors or [],
        "totals": [{"currency": t["currency"], "amount": t["leaked"]} for t in report.get("totals", [])],
    }
    if with_findings:
        findings = list(audit.findings.all()) if audit.status == AuditStatus.READY else []
        body["findings"] = [finding_as_json(f) for f in findings]
        body["summary"] = {
            "totals": report.get("totals", []),
            "by_rule": report.get("by_rule", []),
            "by_customer": report.get("by_customer", []),
            "dso": report.get("dso", {}),
            "counts": report.get("counts", {}),
            "unmatched_invoices": len(report.get("unmatched", [])),
        }
    if request is not None and audit.status == AuditStatus.READY:
        body["report_pdf"] = request.build_absolute_uri(reverse("api-v1:audits_report_pdf", args=[audit.pk]))
    return body


def finding_as_json(f: AuditFinding) -> dict:
    return {
        "rule": f.rule,
        "rule_name": RULES.get(f.rule, {}).get("name", f.rule),
        "counts_as_leak": f.rule in LEAK_RULES,
        "contract": f.contract_number,
        "customer": f.customer,
        "title": f.title,
        "period_start": f.period_start.isoformat() if f.period_start else None,
        "period_end": f.period_end.isoformat() if f.period_end else None,
        "amount": format(quantize(f.amount, f.currency), "f"),
        "currency": f.currency,
        "evidence": f.evidence,
    }


def _day(text):
    from datetime import date

    try:
        return date.fromisoformat(text[:10]) if text else None
    except ValueError:
        return None


def _percent(part: Decimal, whole: Decimal) -> str:
    return format((part / whole * 100).quantize(Decimal("0.1")), "f") if whole > 0 else ""


def _headlines(report: dict, findings: list[AuditFinding]) -> list[dict]:
    """Per currency, the report's first sentence in plain words: how much leaked, over which months,
    as a share of what the contracts bill, on how many contracts and customers, mostly where."""
    monthly = report.get("monthly", {})
    contracts = report.get("counts", {}).get("contracts", 0)
    lines = []
    for total in report.get("totals", []):
        currency = total["currency"]
        months = monthly.get(currency, [])
        owed = sum((Decimal(m["owed"]) for m in months), Decimal(0))
        leaked = Decimal(total["leaked"])
        leaks = [f for f in findings if f.currency == currency and f.rule in LEAK_RULES]
        twice = [f for f in findings if f.currency == currency and f.rule == "A1"]
        top_rules = sorted(
            (r for r in report.get("by_rule", []) if r["leak"] and r["currency"] == currency),
            key=lambda r: -Decimal(r["amount"]),
        )[:2]
        lines.append(
            {
                "currency": currency,
                "leaked": leaked,
                "owed": owed,
                "share": _percent(leaked, owed),
                "months": len(months),
                "first": _day(f"{months[0]['month']}-01") if months else None,
                "last": _day(f"{months[-1]['month']}-01") if months else None,
                "contracts": contracts,
                "leak_contracts": len({f.contract_number for f in leaks}),
                "leak_customers": len({f.customer for f in leaks}),
                "top_rules": top_rules,
                "billed_twice": Decimal(total["billed_twice"]),
                "twice_customers": sorted({f.customer for f in twice}),
                "terms_at_risk": Decimal(total["terms_at_risk"]),
            }
        )
    return lines


def audit_report_context(audit: Audit) -> dict:
    """Everything the report page and the PDF show, from the stored report and findings."""
    report = audit.report or {}
    findings = list(audit.findings.all()) if audit.status == AuditStatus.READY else []
    by_rule_findings: dict[str, list[AuditFinding]] = {}
    for f in findings:
        by_rule_findings.setdefault(f.rule, []).append(f)
    sections = [
        {
            "rule": rule,
            "name": RULES[rule]["name"],
            "what": RULES[rule]["what"],
            "amount_basis": RULES[rule]["amount"],
            "leak": rule in LEAK_RULES,
            "findings": by_rule_findings[rule],
        }
        for rule in RULE_ORDER
        if rule in by_rule_findings
    ]
    charts = [monthly_chart(currency, months) for currency, months in sorted(report.get("monthly", {}).items())]
    return {
        "audit": audit,
        "report": report,
        "period_from": _day(report.get("history_from")),
        "period_to": _day(report.get("as_of")),
        "headlines": _headlines(report, findings),
        "totals": [
            {**t, "has_twice": Decimal(t["billed_twice"]) > 0, "has_terms": Decimal(t["terms_at_risk"]) > 0}
            for t in report.get("totals", [])
        ],
        "by_rule": report.get("by_rule", []),
        "by_customer": report.get("by_customer", []),
        "largest": report.get("largest", []),
        "sections": sections,
        "charts": charts,
        "dso": report.get("dso", {}),
        "counts": report.get("counts", {}),
        "unmatched": report.get("unmatched", []),
        "skipped": report.get("skipped", []),
        "clean_contracts": report.get("clean_contracts", []),
        "evidence_rows": EVIDENCE_ROWS,
        "finding_count": len(findings),
        "leak_count": sum(1 for f in findings if f.rule in LEAK_RULES),
    }
