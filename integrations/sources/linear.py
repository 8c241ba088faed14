"""Linear webhooks: ``{action, type, data, updatedFrom, url, organizationId, webhookTimestamp, webhookId}``.

An ``Issue`` update whose ``data.state.type`` is ``completed`` and whose ``updatedFrom`` names the
previous state is the issue being completed; the reference is ``data.identifier`` (e.g. ``ENG-42``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class LinearIssueFacts:
    identifier: str
    team: str
    title: str
    completed: bool
    estimate_change: str = ""


def describe(payload: Any, headers) -> tuple[str, str, str]:
    if not isinstance(payload, dict):
        return "", "", ""
    kind = f"{payload.get('type', '')}.{payload.get('action', '')}"
    data = payload.get("data") if isinstance(payload.get("data"), dict) else {}
    # Linear-Delivery names one delivery; without it the webhook sends nothing else unique, and the
    # caller falls back to a hash of the signed body (a retry resends the same body).
    delivery = (headers.get("Linear-Delivery") or "").strip()
    return delivery[:200], kind[:100], str(data.get("identifier", ""))[:200]


def issue_facts(payload: dict) -> LinearIssueFacts | None:
    if payload.get("type") != "Issue" or payload.get("action") != "update":
        return None
    data = payload.get("data")
    if not isinstance(data, dict) or not isinstance(data.get("identifier"), str):
        return None
    state = data.get("state") if isinstance(data.get("state"), dict) else {}
    before = payload.get("updatedFrom") if isinstance(payload.get("updatedFrom"), dict) else {}
    completed = state.get("type") == "completed" and ("stateId" in before or "completedAt" in before)
    team = data.get("team") if isinstance(data.get("team"), dict) else {}
    estimate = ""
    if "estimate" in before and before.get("estimate") != data.get("estimate"):
        estimate = f"Estimate: {before.get('estimate')} → {data.get('estimate')}"
    return LinearIssueFacts(
        identifier=data["identifier"],
        team=str(team.get("key") or data.get("teamId") or ""),
        title=str(data.get("title", ""))[:200],
        completed=completed,
        estimate_change=estimate,
    )
