"""Asana webhooks: compact events ``{"events": [{action, resource: {gid, resource_type}, change, parent,
user, created_at}]}``; completion is learned by fetching the task (``GET /tasks/{gid}``)."""

from __future__ import annotations

import hashlib
from typing import Any


def describe(payload: Any, headers, body: bytes = b"") -> tuple[str, str, str]:
    events = payload.get("events") if isinstance(payload, dict) else None
    events = [e for e in events or [] if isinstance(e, dict)]
    kinds = sorted({f"{(e.get('resource') or {}).get('resource_type', '')}.{e.get('action', '')}" for e in events})
    gids = sorted(
        {str((e.get("resource") or {}).get("gid", "")) for e in events if isinstance(e.get("resource"), dict)}
    )
    # Asana events carry no id; the signed body itself identifies a delivery (retries resend it unchanged).
    event_id = "sha256:" + hashlib.sha256(body).hexdigest()
    return event_id, ",".join(kinds)[:100] or "events", ",".join(gids)[:200]


def task_gids_to_check(payload: dict) -> list[str]:
    """Tasks whose ``completed`` may have changed: a ``changed`` event on a task (the change field, when
    Asana includes it, narrows it to ``completed``)."""
    gids: list[str] = []
    for event in payload.get("events") or []:
        if not isinstance(event, dict):
            continue
        resource = event.get("resource") if isinstance(event.get("resource"), dict) else {}
        if resource.get("resource_type") != "task" or event.get("action") != "changed":
            continue
        change = event.get("change") if isinstance(event.get("change"), dict) else {}
        if change and change.get("field") not in ("completed", "completed_at", None):
            continue
        gid = str(resource.get("gid", ""))
        if gid.isdigit() and gid not in gids:
            gids.append(gid)
    return gids
