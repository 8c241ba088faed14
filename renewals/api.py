"""GET /api/v1/renewal-alerts (DESIGN.md §5): renewal alerts with their value and decision.

Money is a decimal string in the currency's own digits ("37200.00"); ids are strings.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from ninja import Field, Query, Router, Schema

from renewals.models import RenewalAlert, RenewalStatus
from renewals.selectors import renewal_alert_api_list
from revexos.api_kit import Day, PageFilters, Ref, choice
from revexos.money import quantize

router = Router(tags=["renewals"])


class RenewalAlertFilters(PageFilters):
    status: choice(*RenewalStatus.values, "action", "all") = Field(
        "",
        description="A status ("
        + ", ".join(RenewalStatus.values)
        + "), `action` (needs a decision) or `all` (default)",
    )
    owner: Ref = Field("", description="The owner's e-mail or user id")
    due_before: Day | None = Field(None, description="Terms ending on or before this date")
    notice_before: Day | None = Field(None, description="Notice deadline on or before this date")


class RenewalAlertOut(Schema):
    id: str
    contract: str = Field(description="The contract's number")
    contract_id: str
    customer: str = Field(description="The customer's external id")
    status: str
    end_date: date
    raised_at: datetime
    window_days: int
    window_start: date
    notice_deadline: date
    currency: str
    annual_recurring_value: str = Field(examples=["37200.00"])
    remaining_value: str = Field(examples=["12400.00"])
    owner: str | None = Field(description="The account manager's e-mail")
    auto_renew: bool
    escalated_at: datetime | None
    snoozed_until: date | None
    decided_at: datetime | None
    decision_note: str
    proposed_terms: dict[str, Any]


class RenewalAlertPage(Schema):
    items: list[RenewalAlertOut]
    count: int


def alert_to_wire(alert: RenewalAlert) -> dict[str, Any]:
    return {
        "id": str(alert.pk),
        "contract": alert.contract.number,
        "contract_id": str(alert.contract_id),
        "customer": alert.contract.customer.external_id,
        "status": alert.status,
        "end_date": alert.end_date,
        "raised_at": alert.raised_at,
        "window_days": alert.window_days,
        "window_start": alert.window_start,
        "notice_deadline": alert.notice_deadline,
        "currency": alert.currency,
        "annual_recurring_value": str(quantize(alert.annual_recurring_value, alert.currency)),
        "remaining_value": str(quantize(alert.remaining_value, alert.currency)),
        "owner": alert.owner.email if alert.owner_id else None,
        "auto_renew": alert.contract.auto_renew,
        "escalated_at": alert.escalated_at,
        "snoozed_until": alert.snoozed_until,
        "decided_at": alert.decided_at,
        "decision_note": alert.decision_note,
        "proposed_terms": alert.proposed_terms or {},
    }


@router.get("/renewal-alerts", response=RenewalAlertPage, summary="List renewal alerts, most urgent first")
def renewal_alerts_list(request, filters: Query[RenewalAlertFilters]):
    alerts = renewal_alert_api_list(
        status=filters.status,
        owner=filters.owner.strip(),
        due_before=filters.due_before,
        notice_before=filters.notice_before,
    )
    rows = list(alerts[filters.offset : filters.offset + filters.limit])
    return {"items": [alert_to_wire(a) for a in rows], "count": alerts.count()}
