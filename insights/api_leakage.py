"""GET /api/v1/leakage-findings (DESIGN.md §5): the leakage scanner's findings with their evidence.

Money is a decimal string in the currency's own digits ("1500.00"); ids are strings.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from ninja import Field, Query, Router, Schema

from insights.models import FindingStatus, LeakageFinding, LeakageRule
from insights.selectors_leakage import leakage_finding_list
from revexos.api_kit import PageFilters, Ref, choice
from revexos.money import quantize

router = Router(tags=["insights"])


class LeakageFilters(PageFilters):
    rule: choice(*LeakageRule.values, upper=True) = Field("", description="A rule: " + ", ".join(LeakageRule.values))
    status: choice(*FindingStatus.values, "live") = Field(
        "",
        description="A status ("
        + ", ".join(FindingStatus.values)
        + "), `live` (open or acknowledged) or empty for all",
    )
    contract: Ref = Field("", description="The contract's number or id")


class LeakageFindingOut(Schema):
    id: str
    rule: str
    rule_name: str
    fingerprint: str = Field(description="Stable across scans: rule, contract and the period or object")
    title: str
    contract: str | None = Field(description="The contract's number")
    contract_id: str | None
    customer: str | None = Field(description="The customer's external id")
    invoice: str | None = Field(description="The invoice's number, when the finding is about one invoice")
    period_start: date | None
    period_end: date | None
    amount: str = Field(examples=["1500.00"])
    currency: str
    status: str
    status_note: str
    evidence: dict[str, Any]
    first_seen_at: datetime
    last_seen_at: datetime
    resolved_at: datetime | None
    review_task: str | None


class LeakageFindingPage(Schema):
    items: list[LeakageFindingOut]
    count: int


def finding_to_wire(f: LeakageFinding) -> dict[str, Any]:
    return {
        "id": str(f.pk),
        "rule": f.rule,
        "rule_name": f.get_rule_display(),
        "fingerprint": f.fingerprint,
        "title": f.title,
        "contract": f.contract.number if f.contract_id else None,
        "contract_id": str(f.contract_id) if f.contract_id else None,
        "customer": f.customer.external_id if f.customer_id else None,
        "invoice": (f.invoice.number or f"draft-{f.invoice_id}") if f.invoice_id else None,
        "period_start": f.period_start,
        "period_end": f.period_end,
        "amount": str(quantize(f.amount, f.currency)),
        "currency": f.currency,
        "status": f.status,
        "status_note": f.status_note,
        "evidence": f.evidence or {},
        "first_seen_at": f.first_seen_at,
        "last_seen_at": f.last_seen_at,
        "resolved_at": f.resolved_at,
        "review_task": str(f.review_task_id) if f.review_task_id else None,
    }


@router.get("/leakage-findings", response=LeakageFindingPage, summary="List leakage findings, largest amount first")
def leakage_findings_list(request, filters: Query[LeakageFilters]):
    rule = filters.rule
    findings = leakage_finding_list(rule=rule, status=filters.status, contract=filters.contract.strip())
    rows = list(findings[filters.offset : filters.offset + filters.limit])
    return {"items": [finding_to_wire(f) for f in rows], "count": findings.count()}
