"""GET /api/v1/renewal-alerts (DESIGN.md §5): renewal alerts with their value and decision.

Money is a decimal string in the currency's own digits ("37200.00"); ids are strings.
"""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import Annotated, Any, Literal

from django.shortcuts import get_object_or_404
from ninja import Field, Query, Router, Schema, Status
from pydantic import StringConstraints

from renewals.models import PERSON_DECISIONS, RenewalAlert, RenewalDecision, RenewalStatus
from renewals.selectors import renewal_alert_api_list
from revexos.api_kit import Day, DecimalStr, Int, PageFilters, Ref, Text, choice, id_or_404
from revexos.money import quantize
from revexos.parsing import printable

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


class StakePartOut(Schema):
    what: str = Field(examples=["milestones"])
    amount: str = Field(examples=["24000.00"])


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
    value_at_stake: str = Field(
        examples=["37200.00"],
        description="A year of recurring value; for a contract with nothing recurring, its value over the term",
    )
    value_basis: Literal["annual", "term"] = Field(description="annual: a year of recurring value; term: over the term")
    value_parts: list[StakePartOut] = Field(description="What the value at stake is made of")
    owner: str | None = Field(description="The account manager's e-mail")
    auto_renew: bool
    escalated_at: datetime | None
    snoozed_until: date | None
    decided_at: datetime | None
    decision_note: str
    proposed_terms: dict[str, Any]


class DecisionOut(Schema):
    decision: str
    note: str
    proposed_terms: dict[str, Any]
    snooze_until: date | None
    decided_by: str | None = Field(description="The user's e-mail; null when decided through the API or by the system")
    decided_at: datetime
    decided_on: date


class RenewalAlertDetailOut(RenewalAlertOut):
    decisions: list[DecisionOut] = Field(description="The decision log, oldest first")


class DecisionIn(Schema):
    decision: Literal[tuple(d.value for d in PERSON_DECISIONS)] = Field(  # type: ignore[valid-type]
        description="renewing (negotiating), renewed (writes the next term now), churning, churned, snoozed"
    )
    note: Text = Field(description="What was agreed, or why")
    snooze_until: Day | None = Field(None, description="snoozed: the day the alert comes back to the queue")
    term_months: Annotated[Int, Field(ge=1, le=120)] | None = Field(None, description="Renewal term proposed or agreed")
    uplift_pct: DecimalStr | None = Field(None, description='Price uplift in percent, e.g. "5"')
    decided_by: Annotated[str, StringConstraints(max_length=254)] | None = Field(
        None,
        description="E-mail of the account manager or admin deciding (their permissions apply); "
        "omitted, the API key records it for the workspace",
    )


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
        "value_at_stake": str(quantize(alert.value_at_stake, alert.currency)),
        "value_basis": alert.value_basis,
        "value_parts": [
            {"what": p["what"], "amount": str(quantize(Decimal(p["amount"]), alert.currency))}
            for p in alert.value_parts or []
        ],
        "owner": alert.owner.email if alert.owner_id else None,
        "auto_renew": alert.contract.auto_renew,
        "escalated_at": alert.escalated_at,
        "snoozed_until": alert.snoozed_until,
        "decided_at": alert.decided_at,
        "decision_note": alert.decision_note,
        "proposed_terms": alert.proposed_terms or {},
    }


def decision_to_wire(d: RenewalDecision) -> dict[str, Any]:
    return {
        "decision": d.decision,
        "note": d.note,
        "proposed_terms": d.proposed_terms or {},
        "snooze_until": d.snooze_until,
        "decided_by": d.decided_by.email if d.decided_by_id else None,
        "decided_at": d.decided_at,
        "decided_on": d.decided_on,
    }


def _alert_detail(alert_id) -> dict[str, Any]:
    alert = get_object_or_404(
        RenewalAlert.objects.select_related("contract", "contract__customer", "owner"),
        pk=id_or_404(alert_id, "renewal alert"),
    )
    decisions = alert.decisions.select_related("decided_by").order_by("decided_at", "id")
    return {**alert_to_wire(alert), "decisions": [decision_to_wire(d) for d in decisions]}


@router.get("/renewal-alerts/{alert_id}", response=RenewalAlertDetailOut, summary="A renewal alert with its decisions")
def renewal_alerts_detail(request, alert_id: str):
    return _alert_detail(alert_id)


@router.post(
    "/renewal-alerts/{alert_id}/decisions",
    response={201: RenewalAlertDetailOut},
    summary="Record a renewal decision (renewed writes the next term)",
)
def renewal_alerts_decide(request, alert_id: str, payload: DecisionIn):
    from django.core.exceptions import ValidationError

    from renewals.services.decisions import renewal_decide
    from revexos.accounts.models import User

    alert = get_object_or_404(RenewalAlert, pk=id_or_404(alert_id, "renewal alert"))
    user = None
    if payload.decided_by is not None:
        user = User.objects.filter(email__iexact=payload.decided_by.strip(), is_active=True).first()
        if user is None:
            raise ValidationError(
                {"decided_by": [f"No active user {printable(payload.decided_by)} in this workspace."]}
            )
    terms = {k: v for k, v in {"term_months": payload.term_months, "uplift_pct": payload.uplift_pct}.items() if v}
    key = getattr(request, "api_key", None)
    renewal_decide(
        alert=alert,
        decision=payload.decision,
        note=payload.note,
        user=user,
        proposed_terms=terms,
        snooze_until=payload.snooze_until,
        actor_label=f"API key {key.name}" if key is not None else "API",
    )
    return Status(201, _alert_detail(alert.pk))


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
