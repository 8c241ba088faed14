"""HubSpot webhooks: a JSON array of up to 100 events ``{eventId, subscriptionId, portalId, occurredAt,
subscriptionType, objectId, propertyName, propertyValue, changeSource, attemptNumber}``."""

from __future__ import annotations

import hashlib
from typing import Any

MAX_EVENTS = 100


def describe(payload: Any, headers) -> tuple[str, str, str]:
    events = [e for e in payload if isinstance(e, dict)] if isinstance(payload, list) else []
    ids = sorted(str(e.get("eventId")) for e in events if e.get("eventId") is not None)
    if len(ids) == 1:
        event_id = ids[0]
    elif ids:
        event_id = "events:" + hashlib.sha256(",".join(ids).encode()).hexdigest()
    else:
        event_id = ""
    kinds = sorted({str(e.get("subscriptionType", "")) for e in events})
    objects = sorted({str(e.get("objectId", "")) for e in events})
    noun = (
        "Deal" if all(str(e.get("subscriptionType", "")).startswith("deal.") for e in events) and events else "Object"
    )
    return event_id, ",".join(kinds)[:100], (f"{noun} " + ", ".join(objects))[:200] if objects else ""


def won_deal_ids(payload: list, *, won_stages: set[str]) -> list[str]:
    """Deals whose stage just became a won stage (order kept, duplicates dropped)."""
    out: list[str] = []
    for event in payload:
        if not isinstance(event, dict):
            continue
        if event.get("subscriptionType") not in ("deal.propertyChange", "object.propertyChange"):
            continue
        if event.get("propertyName") != "dealstage" or str(event.get("propertyValue")) not in won_stages:
            continue
        deal = str(event.get("objectId", ""))
        if deal.isdigit() and deal not in out:
            out.append(deal)
    return out
