"""Outbound webhook endpoints on the public API (DESIGN.md §5.1)."""

from __future__ import annotations

from django.http import Http404
from ninja import Field, Query, Router, Schema, Status

from revexos.api_kit import PageFilters, id_or_404, json_body
from revexos.webhooks.events import EVENT_TYPES
from revexos.webhooks.models import WebhookDelivery, WebhookEndpoint

VERIFY_SNIPPET = """
Every delivery is a `POST` with a JSON body
`{"id": "evt_…", "type": "invoice.issued", "created": <unix>, "tenant": "<slug>", "data": {…}}`
and the header `RevExOS-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256 of "<t>.<raw body>">`,
keyed with the endpoint's signing secret (shown once, when the endpoint is created). Answer 2xx
within 10 seconds; anything else is retried with backoff (1 min … 8 h) for about a day. The same
event keeps its `id` in every retry and redelivery: deduplicate on it. An endpoint failing for
three days is disabled and its creator is told.

Verify the signature over the raw bytes before parsing them (Python):

```python
import hashlib, hmac, time

def revexos_signature_ok(secret: str, raw_body: bytes, header: str, tolerance: int = 300) -> bool:
    items = [part.split("=", 1) for part in header.split(",") if "=" in part]
    timestamps = [v for k, v in items if k == "t"]
    if not timestamps or not (timestamps[0].isascii() and timestamps[0].isdigit()):
        return False
    if abs(time.time() - int(timestamps[0])) > tolerance:
        return False
    signed = timestamps[0].encode() + b"." + raw_body
    expected = hmac.new(secret.encode(), signed, hashlib.sha256).hexdigest()
    return any(hmac.compare_digest(expected, v) for k, v in items if k == "v1")
```
"""

router = Router(tags=["webhooks"])


class WebhookEndpointIn(Schema):
    url: str = Field(description="https://… (http allowed; private addresses refused in production)")
    events: list[str] = Field(description="Event types: " + ", ".join(EVENT_TYPES))
    description: str = ""


class WebhookEndpointOut(Schema):
    id: str
    url: str
    events: list[str]
    description: str
    is_active: bool
    disabled_reason: str
    created_at: str
    secret: str | None = Field(None, description="The signing secret: only in the answer to the POST that created it")


class WebhookEndpointPage(Schema):
    items: list[WebhookEndpointOut]
    count: int


class WebhookDeliveryOut(Schema):
    id: str
    event_id: str
    event_type: str
    status: str
    attempts: int
    last_status_code: int | None
    last_error: str
    next_attempt_at: str | None
    delivered_at: str | None


def endpoint_to_wire(endpoint: WebhookEndpoint, *, with_secret: bool = False) -> dict:
    return {
        "id": str(endpoint.pk),
        "url": endpoint.url,
        "events": list(endpoint.events),
        "description": endpoint.description,
        "is_active": endpoint.is_active,
        "disabled_reason": endpoint.disabled_reason,
        "created_at": endpoint.created_at.isoformat(),
        "secret": endpoint.secret if with_secret else None,
    }


def delivery_to_wire(d: WebhookDelivery) -> dict:
    return {
        "id": str(d.pk),
        "event_id": d.event.public_id,
        "event_type": d.event.type,
        "status": d.status,
        "attempts": d.attempts,
        "last_status_code": d.last_status_code,
        "last_error": d.last_error,
        "next_attempt_at": d.next_attempt_at.isoformat() if d.next_attempt_at else None,
        "delivered_at": d.delivered_at.isoformat() if d.delivered_at else None,
    }


class WebhookPageIn(PageFilters):
    pass


def _id(raw: str, what: str) -> int:
    return id_or_404(raw, what)


@router.get("/webhook-endpoints", response=WebhookEndpointPage, summary="List outbound webhook endpoints")
def endpoints_list(request, page: Query[WebhookPageIn]):
    qs = WebhookEndpoint.objects.order_by("-created_at", "-id")
    rows = list(qs[page.offset : page.offset + page.limit])
    return {"items": [endpoint_to_wire(e) for e in rows], "count": qs.count()}


@router.post(
    "/webhook-endpoints",
    response={201: WebhookEndpointOut},
    summary="Subscribe an endpoint to events (answers the signing secret once)",
    description=VERIFY_SNIPPET,
)
def endpoints_create(request, payload: WebhookEndpointIn):
    from revexos.webhooks.services import endpoint_create

    data = json_body(request)
    return Status(201, endpoint_to_wire(endpoint_create(data=data), with_secret=True))


@router.get(
    "/webhook-endpoints/{endpoint_id}/deliveries",
    response=list[WebhookDeliveryOut],
    summary="An endpoint's latest deliveries (the delivery log)",
)
def endpoint_deliveries(request, endpoint_id: str, page: Query[WebhookPageIn]):
    pk = _id(endpoint_id, "webhook endpoint")
    if not WebhookEndpoint.objects.filter(pk=pk).exists():
        raise Http404(f"No webhook endpoint {endpoint_id!r}.")
    rows = WebhookDelivery.objects.filter(endpoint_id=pk).select_related("event").order_by("-created_at", "-id")
    return [delivery_to_wire(d) for d in rows[page.offset : page.offset + page.limit]]


@router.post(
    "/webhook-deliveries/{delivery_id}/redeliver",
    response=WebhookDeliveryOut,
    summary="Send a delivery again now (same event id)",
)
def delivery_redeliver(request, delivery_id: str):
    from revexos.webhooks.services import webhook_redeliver

    pk = _id(delivery_id, "webhook delivery")
    if not WebhookDelivery.objects.filter(pk=pk).exists():
        raise Http404(f"No webhook delivery {delivery_id!r}.")
    webhook_redeliver(delivery_id=pk)
    return delivery_to_wire(WebhookDelivery.objects.select_related("event").get(pk=pk))
