"""Demo data for integrations: a Jira and a HubSpot connection with events in their inboxes (one
unmatched), and a Harvest import in the history. Runs inside the demo tenant's schema, after the
contracts demo and before the first cycle (which bills what these events and hours made due)."""

from __future__ import annotations

import json
import uuid
from datetime import timedelta
from decimal import Decimal

from django.db import transaction
from django.db.models import Count
from django.utils import timezone

from integrations.models import Connection, InboxEvent, Verdict
from integrations.services.connections import connection_create, mapping_set
from integrations.services.inbox import inbox_event_process, inbox_receive

HARVEST_HEADER = (
    "Date,Client,Project,Project Code,Task,Notes,Hours,Hours Rounded,Billable?,Invoiced?,Approved?,"
    "First Name,Last Name,Roles,Employee?,Billable Rate,Billable Amount,Cost Rate,Cost Amount,Currency,"
    "External Reference URL"
)
PEOPLE = [("Ada", "Lovelace"), ("Grace", "Hopper"), ("Alan", "Turing")]
NOTES = ["Pipeline work", "Code review", "Client workshop", "Data model changes", "Release preparation"]


def _jira_event(key: str, project: str, summary: str, *, done: bool) -> dict:
    """A ``jira:issue_updated`` body shaped like Jira Cloud's (see shared/fixtures/jira)."""
    status = (
        {"name": "Done", "id": "10259", "statusCategory": {"id": 3, "key": "done", "name": "Done"}}
        if done
        else {
            "name": "In Progress",
            "id": "10258",
            "statusCategory": {"id": 4, "key": "indeterminate", "name": "In Progress"},
        }
    )
    items = [
        {
            "field": "status",
            "fieldtype": "jira",
            "fieldId": "status",
            "from": "10258" if done else "10257",
            "fromString": "In Progress" if done else "To Do",
            "to": status["id"],
            "toString": status["name"],
        }
    ]
    if done:
        items.append(
            {
                "field": "resolution",
                "fieldtype": "jira",
                "fieldId": "resolution",
                "from": None,
                "to": "10000",
                "toString": "Done",
            }
        )
    return {
        "timestamp": int(timezone.now().timestamp() * 1000),
        "webhookEvent": "jira:issue_updated",
        "issue_event_type_name": "issue_generic",
        "user": {"accountId": "5bcede20b3e37a158c364fef", "displayName": "Priya Raman", "active": True},
        "issue": {
            "id": str(uuid.uuid4().int)[:5],
            "key": key,
            "fields": {
                "summary": summary,
                "project": {"id": "10105", "key": project, "name": f"{project} delivery"},
                "status": status,
                "resolution": {"id": "10000", "name": "Done"} if done else None,
                "labels": [],
                "fixVersions": [],
            },
        },
        "changelog": {"id": str(uuid.uuid4().int)[:6], "items": items},
    }


def _receive(connection: Connection, body: dict, *, event_id: str, event_type: str, subject: str) -> InboxEvent:
    row, _ = inbox_receive(
        connection=connection,
        body=json.dumps(body).encode(),
        headers={"Content-Type": "application/json", "User-Agent": "Atlassian Webhook HTTP Client"},
        verdict=Verdict.VALID,
        event_id=event_id,
        event_type=event_type,
        subject=subject,
    )
    return row


def _jira_demo() -> dict:
    from contracts.models import Contract, PriceLine

    connection, _ = connection_create(data={"source": "jira", "name": "Jira Cloud — northwind.atlassian.net"})
    today = timezone.localdate()
    line = (
        PriceLine.objects.filter(
            kind="milestone",
            version__contract__status="active",
            expected_date__lte=today,
        )
        .exclude(reference="")
        .select_related("version__contract")
        .order_by("expected_date")
        .first()
    )
    events = []
    if line is not None:
        project = line.reference.split("-")[0]
        mapping_set(connection=connection, kind="project", external=project, contract_ref=line.version.contract.number)
        events.append(_jira_event(line.reference, project, line.description, done=True))
        nxt = PriceLine.objects.filter(version=line.version, kind="milestone").exclude(pk=line.pk).first()
        if nxt is not None:
            events.append(_jira_event(nxt.reference, project, nxt.description, done=False))
    events.append(_jira_event("PROJ-77", "PROJ", "Reporting dashboard for the board pack", done=True))
    for body in events:
        row = _receive(
            connection,
            body,
            event_id=str(uuid.uuid4()),
            event_type="jira:issue_updated",
            subject=body["issue"]["key"],
        )
        inbox_event_process(event_pk=row.pk)
    contract = Contract.objects.filter(number=line.version.contract.number).first() if line else None
    return {"jira_events": len(events), "jira_contract": contract.number if contract else None}


def _hubspot_demo() -> dict:
    from integrations.services.deals import deal_apply

    connection, _ = connection_create(
        data={
            "source": "hubspot",
            "name": "HubSpot — Northwind sales",
            "secret": "demo-hubspot-client-secret-" + uuid.uuid4().hex[:8],
            "api_token": "pat-demo-not-a-real-token",
        }
    )
    today = timezone.localdate()
    start = today.replace(day=1) + timedelta(days=32)
    start = start.replace(day=1)
    won = [
        {
            "eventId": 4001,
            "subscriptionId": 2412345,
            "portalId": 62515,
            "occurredAt": int(timezone.now().timestamp() * 1000),
            "subscriptionType": "deal.propertyChange",
            "attemptNumber": 0,
            "objectId": 18745290,
            "propertyName": "dealstage",
            "propertyValue": "closedwon",
            "changeSource": "CRM_UI",
        },
    ]
    row = _receive(connection, won, event_id="4001", event_type="deal.propertyChange", subject="18745290")
    terms = {
        "deal_id": "18745290",
        "name": "Initech — analytics platform rollout",
        "currency": "USD",
        "start_date": start.isoformat(),
        "end_date": (start.replace(year=start.year + 1) - timedelta(days=1)).isoformat(),
        "customer": {
            "crm_id": "hubspot:9120044",
            "external_id": "hubspot-9120044",
            "legal_name": "Initech LLC",
            "country": "US",
            "city": "Austin",
            "postal_code": "78701",
            "line1": "4120 Freidrich Lane",
        },
        "lines": [
            {
                "kind": "recurring",
                "description": "Analytics platform subscription",
                "amount": "2500.00",
                "frequency": "monthly",
                "timing": "advance",
            },
            {
                "kind": "recurring",
                "description": "Premium support",
                "amount": "900.00",
                "frequency": "quarterly",
                "timing": "advance",
            },
            {
                "kind": "fixed_fee",
                "description": "Onboarding workshop",
                "amount": "4000.00",
                "bill_on": start.isoformat(),
            },
        ],
    }
    with transaction.atomic():
        outcome = deal_apply(connection=connection, terms=terms, label="HubSpot deal 18745290")
        InboxEvent.objects.filter(pk=row.pk).update(
            status=outcome.status,
            outcome=outcome.text,
            contract_id=outcome.contract_id,
            attempts=1,
            processed_at=timezone.now(),
        )
    # A stage change that is not a win: stored and ignored.
    lost = [dict(won[0], eventId=4002, objectId=18745301, propertyValue="appointmentscheduled")]
    row = _receive(connection, lost, event_id="4002", event_type="deal.propertyChange", subject="18745301")
    inbox_event_process(event_pk=row.pk)
    return {"hubspot_draft": outcome.contract_id}


def _harvest_demo() -> dict:
    from contracts.models import Contract, RateCardEntry
    from integrations.services.time_imports import time_import_commit

    connection_create(data={"source": "harvest", "name": "Harvest — Northwind"})
    today = timezone.localdate()
    entry = (
        RateCardEntry.objects.filter(
            price_line__version__contract__status="active",
            price_line__version__contract__start_date__lte=today - timedelta(days=60),
        )
        .select_related("price_line__version__contract")
        .order_by("price_line__version__contract__number")
        .first()
    )
    if entry is None:
        return {"harvest_import": None}
    contract: Contract = entry.price_line.version.contract
    roles = list(RateCardEntry.objects.filter(price_line=entry.price_line).values_list("role", flat=True))
    last_month_end = today.replace(day=1) - timedelta(days=1)
    rows = [HARVEST_HEADER]
    for i in range(12):
        day = last_month_end - timedelta(days=2 * i)
        first, last = PEOPLE[i % len(PEOPLE)]
        role = roles[i % len(roles)]
        hours = Decimal("2.5") + Decimal(i % 4)
        rows.append(
            f"{day.isoformat()},{contract.customer.legal_name.replace(',', '')},{contract.title.replace(',', '')},"
            f"{contract.number},{role},{NOTES[i % len(NOTES)]},{hours},{hours},Yes,No,Yes,{first},{last},,Yes,,,,,USD,"
        )
    rows.append(
        f"{last_month_end.isoformat()},{contract.customer.legal_name.replace(',', '')},{contract.title.replace(',', '')},"
        f"{contract.number},Internal,Team meeting,1,1,No,No,Yes,Ada,Lovelace,,Yes,,,,,USD,"
    )
    from revexos.accounts.models import Role, User

    finance = User.objects.filter(role=Role.FINANCE, is_active=True).order_by("pk").first()
    record = time_import_commit(
        text="\n".join(rows) + "\n",
        format="harvest",
        filename=f"harvest_time_report_{last_month_end:%Y_%m}.csv",
        user=finance,
    )
    return {"harvest_import": record.created, "harvest_contract": contract.number}


def integrations_demo_seed() -> dict:
    summary = {}
    summary.update(_jira_demo())
    summary.update(_hubspot_demo())
    summary.update(_harvest_demo())
    summary["inbox"] = dict(InboxEvent.objects.values_list("status").annotate(n=Count("id")).order_by())
    return summary
