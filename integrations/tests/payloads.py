"""Real-shaped payloads for tests, and signing as each source signs."""

from __future__ import annotations

import copy
import json
import time
import uuid

from integrations.signatures import hmac_sha256_hex, hubspot_v3_signature
from integrations.tests.conftest import fixture_json


def jira_done(key: str = "PROJ-12", *, project: str = "PROJ", summary: str = "Phase 1 go-live") -> dict:
    """The captured ``jira:issue_updated`` status change (shared/fixtures/jira), moved to Done the way
    Jira Cloud reports it: a resolution item next to the status item, the done status category, and
    ``timestamp`` as epoch milliseconds."""
    body = copy.deepcopy(fixture_json("jira/jira_issue_updated_status-changed.json"))
    body["timestamp"] = int(time.time() * 1000)
    issue = body["issue"]
    issue["key"] = key
    issue["fields"]["summary"] = summary
    issue["fields"]["project"]["key"] = project
    issue["fields"]["status"].update(
        {
            "name": "Done",
            "id": "10259",
            "statusCategory": {"id": 3, "key": "done", "colorName": "green", "name": "Done"},
        }
    )
    issue["fields"]["resolution"] = {"id": "10000", "name": "Done"}
    body["changelog"] = {
        "id": str(uuid.uuid4().int)[:6],
        "items": [
            {
                "field": "status",
                "fieldtype": "jira",
                "fieldId": "status",
                "from": "10258",
                "fromString": "In Progress",
                "to": "10259",
                "toString": "Done",
            },
            {
                "field": "resolution",
                "fieldtype": "jira",
                "fieldId": "resolution",
                "from": None,
                "fromString": None,
                "to": "10000",
                "toString": "Done",
            },
        ],
    }
    return body


def jira_scope_change(key: str, *, project: str = "PROJ") -> dict:
    body = copy.deepcopy(fixture_json("jira/jira_issue_updated_status-changed.json"))
    body["issue"]["key"] = key
    body["issue"]["fields"]["project"]["key"] = project
    body["changelog"] = {
        "id": "55001",
        "items": [
            {
                "field": "Story Points",
                "fieldtype": "custom",
                "fieldId": "customfield_10016",
                "from": "5",
                "fromString": "5",
                "to": "8",
                "toString": "8",
            }
        ],
    }
    return body


def jira_headers(body: bytes, secret: str, *, delivery: str | None = None) -> dict:
    return {
        "HTTP_X_HUB_SIGNATURE": f"sha256={hmac_sha256_hex(secret, body)}",
        "HTTP_X_ATLASSIAN_WEBHOOK_IDENTIFIER": delivery or str(uuid.uuid4()),
    }


def linear_issue_completed(identifier: str = "ENG-42", *, team: str = "ENG", at_ms: int | None = None) -> dict:
    """Shape from Linear's webhook docs: action/type/data/updatedFrom/url/organizationId/webhookTimestamp."""
    return {
        "action": "update",
        "type": "Issue",
        "createdAt": "2026-06-14T10:00:00.000Z",
        "data": {
            "id": str(uuid.uuid4()),
            "identifier": identifier,
            "title": "Checkout redesign",
            "state": {"id": "st-done", "name": "Done", "type": "completed", "color": "#5e6ad2"},
            "team": {"id": "team-1", "key": team, "name": "Engineering"},
            "teamId": "team-1",
            "estimate": 3,
        },
        "updatedFrom": {"stateId": "st-progress", "updatedAt": "2026-06-14T09:59:00.000Z", "completedAt": None},
        "url": f"https://linear.app/acme/issue/{identifier}",
        "organizationId": "org-1",
        "webhookTimestamp": at_ms if at_ms is not None else int(time.time() * 1000),
        "webhookId": str(uuid.uuid4()),
    }


def linear_headers(body: bytes, secret: str) -> dict:
    return {"HTTP_LINEAR_SIGNATURE": hmac_sha256_hex(secret, body), "HTTP_LINEAR_DELIVERY": str(uuid.uuid4())}


def hubspot_won(deal_id: str, *, event_id: int | None = None, stage: str = "closedwon") -> list[dict]:
    """Shape from HubSpot's webhooks docs (a JSON array of events)."""
    return [
        {
            "eventId": event_id or uuid.uuid4().int % 10**9,
            "subscriptionId": 2412345,
            "portalId": 62515,
            "appId": 1160452,
            "occurredAt": int(time.time() * 1000),
            "subscriptionType": "deal.propertyChange",
            "attemptNumber": 0,
            "objectId": int(deal_id),
            "propertyName": "dealstage",
            "propertyValue": stage,
            "changeSource": "CRM_UI",
            "sourceId": "userId:1234567",
        }
    ]


def hubspot_headers(body: bytes, secret: str, *, uri: str, at_ms: int | None = None) -> dict:
    stamp = str(at_ms if at_ms is not None else int(time.time() * 1000))
    return {
        "HTTP_X_HUBSPOT_SIGNATURE_V3": hubspot_v3_signature(
            secret=secret, method="POST", uri=uri, body=body, timestamp=stamp
        ),
        "HTTP_X_HUBSPOT_REQUEST_TIMESTAMP": stamp,
    }


def dumps(payload) -> bytes:
    return json.dumps(payload).encode()
