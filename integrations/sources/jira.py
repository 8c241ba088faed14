"""Jira webhooks (``jira:issue_updated`` with its changelog; fixtures in shared/fixtures/jira).

A transition to Done adds a ``resolution`` changelog item next to ``status`` and sets
``issue.fields.resolution``; the status's category key is ``done``. Scope signals on an issue:
story points, fix versions, or a label such as ``change-request`` added.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Any

SCOPE_FIELDS = ("story points", "story point estimate", "fix version", "fixversions")


@dataclass(frozen=True)
class JiraIssueFacts:
    key: str
    project: str
    summary: str
    done: bool  # this update moved the issue to a done status category or set a resolution
    parent_keys: tuple[str, ...] = ()  # parent / epic, when they are done too
    scope_changes: tuple[str, ...] = field(default_factory=tuple)  # human-readable, e.g. "Story Points 5 → 8"


def describe(payload: Any, headers) -> tuple[str, str, str]:
    event_type = str(payload.get("webhookEvent", "")) if isinstance(payload, dict) else ""
    issue = payload.get("issue") if isinstance(payload, dict) else None
    key = str(issue.get("key", "")) if isinstance(issue, dict) else ""
    delivery = (headers.get("X-Atlassian-Webhook-Identifier") or "").strip()
    if not delivery:
        changelog = payload.get("changelog") if isinstance(payload, dict) else None
        change_id = changelog.get("id") if isinstance(changelog, dict) else None
        delivery = f"{key}:{change_id}" if key and change_id else ""
    return delivery[:200], event_type[:100], key[:200]


def fallback_event_id(body: bytes) -> str:
    return "sha256:" + hashlib.sha256(body).hexdigest()


def _done_category(status: Any) -> bool:
    return isinstance(status, dict) and (status.get("statusCategory") or {}).get("key") == "done"


def issue_facts(payload: dict, *, change_label: str = "change-request") -> JiraIssueFacts | None:
    """The facts of an ``issue_updated`` event, or None when it is not about an issue."""
    issue = payload.get("issue")
    if not isinstance(issue, dict) or not isinstance(issue.get("key"), str):
        return None
    fields = issue.get("fields") if isinstance(issue.get("fields"), dict) else {}
    items = (payload.get("changelog") or {}).get("items") if isinstance(payload.get("changelog"), dict) else None
    items = [i for i in items or [] if isinstance(i, dict)]
    done = False
    scope: list[str] = []
    for item in items:
        name = str(item.get("field", "")).lower()
        field_id = str(item.get("fieldId", "")).lower()
        if (name == "resolution" and item.get("to")) or (name == "status" and _done_category(fields.get("status"))):
            done = True
        elif name in SCOPE_FIELDS or field_id in ("fixversions",):
            scope.append(f"{item.get('field')}: {item.get('fromString') or '—'} → {item.get('toString') or '—'}")
        elif name == "labels":
            before = set(str(item.get("fromString") or "").split())
            after = set(str(item.get("toString") or "").split())
            if change_label in after - before:
                scope.append(f"label “{change_label}” added")
    parents = []
    for key in ("parent", "epic"):
        parent = fields.get(key)
        if isinstance(parent, dict) and isinstance(parent.get("key"), str):
            parent_fields = parent.get("fields") if isinstance(parent.get("fields"), dict) else {}
            if _done_category(parent_fields.get("status")):
                parents.append(parent["key"])
    project = fields.get("project") if isinstance(fields.get("project"), dict) else {}
    return JiraIssueFacts(
        key=issue["key"],
        project=str(project.get("key", "")),
        summary=str(fields.get("summary", ""))[:200],
        done=done,
        parent_keys=tuple(parents),
        scope_changes=tuple(scope),
    )
