"""Outbound webhook use cases: endpoints, sending a delivery, retrying, redelivering, disabling.

Retries (``BACKOFF``): 1 min, 5 min, 15 min, 30 min, 1 h, 2 h, 4 h, 8 h, 8 h after each failure —
ten attempts over about a day (24 h 51 min), then the delivery is given up ("failed") and can be
redelivered by hand. An endpoint that has failed every attempt for three days is disabled, and
whoever created it (else the tenant's admins) is told by e-mail.
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.serializers.json import DjangoJSONEncoder
from django.db import connection, transaction
from django.utils import timezone

from revexos.webhooks.events import EVENT_TYPES
from revexos.webhooks.models import DeliveryStatus, WebhookAttempt, WebhookDelivery, WebhookEndpoint, WebhookEvent
from revexos.webhooks.signing import HEADER, signature_header
from revexos.webhooks.urlcheck import endpoint_url_problem

logger = logging.getLogger(__name__)

BACKOFF = [timedelta(minutes=m) for m in (1, 5, 15, 30, 60, 120, 240, 480, 480)]
DISABLE_AFTER = timedelta(days=3)
TIMEOUT_SECONDS = 10
MAX_ENDPOINTS = 20


# ----------------------------------------------------------------------------- endpoints


def endpoint_validate(*, data: Any) -> dict[str, Any]:
    if not isinstance(data, dict):
        raise ValidationError({"non_field_errors": ["Send the endpoint as an object with url and events."]})
    errors: dict[str, list[str]] = {}
    unknown = sorted(set(data) - {"url", "events", "description"})
    for key in unknown:
        errors[key] = ["Unknown field; an endpoint has url, events and description."]
    url = data.get("url")
    if not isinstance(url, str) or not url.strip():
        errors["url"] = ["Enter the URL that receives the events, e.g. https://example.com/hooks/revexos."]
    elif len(url) > 500:
        errors["url"] = ["Use a URL of at most 500 characters."]
    else:
        problem = endpoint_url_problem(url)
        if problem:
            errors["url"] = [problem]
    events = data.get("events")
    if not isinstance(events, list) or not events or not all(isinstance(e, str) for e in events):
        errors["events"] = [
            f'List the event types to receive, e.g. ["invoice.issued"]; one of: {", ".join(EVENT_TYPES)}.'
        ]
    else:
        bad = [e for e in events if e not in EVENT_TYPES]
        if bad:
            errors["events"] = [f"Unknown event type {', '.join(bad)}; use: {', '.join(EVENT_TYPES)}."]
    description = data.get("description") or ""
    if not isinstance(description, str) or len(description) > 200:
        errors["description"] = ["A description is text of at most 200 characters."]
    if errors:
        raise ValidationError(errors)
    return {"url": url.strip(), "events": sorted(set(events)), "description": description.strip()}


@transaction.atomic
def endpoint_create(*, data: Any, user=None) -> WebhookEndpoint:
    values = endpoint_validate(data=data)
    if WebhookEndpoint.objects.filter(is_active=True).count() >= MAX_ENDPOINTS:
        raise ValidationError(
            {"url": [f"A workspace has at most {MAX_ENDPOINTS} active endpoints; disable one first."]}
        )
    return WebhookEndpoint.objects.create(
        **values, created_by=user if getattr(user, "is_authenticated", False) else None
    )


@transaction.atomic
def endpoint_enable(*, endpoint_id: int, enabled: bool) -> WebhookEndpoint:
    endpoint = WebhookEndpoint.objects.select_for_update().get(pk=endpoint_id)
    endpoint.is_active = enabled
    if enabled:
        endpoint.disabled_at, endpoint.disabled_reason, endpoint.failing_since = None, "", None
    else:
        endpoint.disabled_at, endpoint.disabled_reason = timezone.now(), "Disabled by a user."
    endpoint.save(update_fields=["is_active", "disabled_at", "disabled_reason", "failing_since"])
    return endpoint


# ----------------------------------------------------------------------------- sending


_SLUGS: dict[str, str] = {}


def _tenant_slug() -> str:
    """The current tenant's slug (what receivers know it by), looked up once per schema."""
    schema = connection.schema_name
    if schema not in _SLUGS:
        from revexos.tenancy.models import Tenant

        _SLUGS[schema] = Tenant.objects.filter(schema_name=schema).values_list("slug", flat=True).first() or schema
    return _SLUGS[schema]


def event_body(event: WebhookEvent) -> bytes:
    """The JSON body receivers get: the same bytes for every attempt of the event."""
    payload = {
        "id": event.public_id,
        "type": event.type,
        "created": int(event.created_at.timestamp()),
        "tenant": _tenant_slug(),
        "data": event.data,
    }
    return json.dumps(payload, cls=DjangoJSONEncoder, separators=(",", ":"), sort_keys=True).encode()


@dataclass(frozen=True)
class SendOutcome:
    status: str  # delivered | pending | failed | skipped
    status_code: int | None = None


def _post(url: str, body: bytes, headers: dict[str, str]) -> tuple[int | None, str, str]:
    """POST once: (status code, response excerpt, error). No redirects are followed (they could lead anywhere)."""
    import requests

    try:
        response = requests.post(url, data=body, headers=headers, timeout=TIMEOUT_SECONDS, allow_redirects=False)
    except requests.RequestException as exc:
        return None, "", f"{type(exc).__name__}: {exc}"[:500]
    return response.status_code, response.text[:500], ""


def webhook_delivery_send(*, delivery_id: int, manual: bool = False) -> SendOutcome:
    """Attempt one delivery now (the task and the sweep call this; safe to run twice).

    The row is locked for the attempt, so two workers never send the same delivery at once.
    """
    with transaction.atomic():
        delivery = (
            WebhookDelivery.objects.select_for_update(of=("self",), skip_locked=True)
            .select_related("event", "endpoint")
            .filter(pk=delivery_id)
            .first()
        )
        if delivery is None:
            return SendOutcome("skipped")  # another worker holds it
        endpoint = delivery.endpoint
        if not manual and (delivery.status != DeliveryStatus.PENDING or not endpoint.is_active):
            return SendOutcome("skipped")
        body = event_body(delivery.event)
        stamp = int(time.time())
        headers = {
            "Content-Type": "application/json",
            "User-Agent": "RevExOS-Webhooks/1",
            HEADER: signature_header(secret=endpoint.secret, body=body, timestamp=stamp),
            "RevExOS-Event-Id": delivery.event.public_id,
            "RevExOS-Event-Type": delivery.event.type,
        }
        problem = endpoint_url_problem(endpoint.url)
        started = time.monotonic()
        if problem:
            code, excerpt, error = None, "", problem
        else:
            code, excerpt, error = _post(endpoint.url, body, headers)
        now = timezone.now()
        WebhookAttempt.objects.create(
            delivery=delivery,
            attempted_at=now,
            status_code=code,
            response_excerpt=excerpt,
            error=error,
            duration_ms=int((time.monotonic() - started) * 1000),
            manual=manual,
        )
        delivery.attempts += 1
        delivery.last_status_code = code
        ok = code is not None and 200 <= code < 300
        if ok:
            delivery.status, delivery.delivered_at, delivery.next_attempt_at, delivery.last_error = (
                DeliveryStatus.DELIVERED, now, None, "",
            )  # fmt: skip
            if endpoint.failing_since is not None:
                endpoint.failing_since = None
                endpoint.save(update_fields=["failing_since"])
        else:
            delivery.last_error = error or f"HTTP {code}: {excerpt[:200]}"
            if not manual:  # a failed redelivery by hand leaves the delivery's own schedule as it was
                retry = delivery.attempts - 1
                if retry < len(BACKOFF):
                    delivery.status, delivery.next_attempt_at = DeliveryStatus.PENDING, now + BACKOFF[retry]
                else:
                    delivery.status, delivery.next_attempt_at = DeliveryStatus.FAILED, None
            _endpoint_failed(endpoint, now)
        delivery.save(
            update_fields=["status", "attempts", "next_attempt_at", "last_status_code", "last_error", "delivered_at"]
        )
    return SendOutcome(delivery.status, code)


def _endpoint_failed(endpoint: WebhookEndpoint, now) -> None:
    if endpoint.failing_since is None:
        endpoint.failing_since = now
        endpoint.save(update_fields=["failing_since"])
        return
    if endpoint.is_active and now - endpoint.failing_since >= DISABLE_AFTER:
        endpoint.is_active = False
        endpoint.disabled_at = now
        endpoint.disabled_reason = (
            f"Every delivery failed since {endpoint.failing_since:%-d %b %Y %H:%M} UTC (three days); fix the receiver, "
            "enable the endpoint again and redeliver what it missed."
        )
        endpoint.save(update_fields=["is_active", "disabled_at", "disabled_reason"])
        transaction.on_commit(lambda: _owner_tell(endpoint.pk))


def _owner_tell(endpoint_id: int) -> None:
    """E-mail the endpoint's creator (else the admins) that it was disabled."""
    from django.core.mail import send_mail

    from revexos.accounts.models import Role, User

    endpoint = WebhookEndpoint.objects.select_related("created_by").get(pk=endpoint_id)
    recipients = [endpoint.created_by.email] if endpoint.created_by and endpoint.created_by.is_active else []
    if not recipients:
        recipients = list(User.objects.filter(role=Role.ADMIN, is_active=True).values_list("email", flat=True))
    if not recipients:
        return
    tenant = getattr(connection, "tenant", None)
    try:
        send_mail(
            subject=f"RevExOS disabled the webhook endpoint {endpoint.url}",
            message=(
                f"The webhook endpoint {endpoint.url} of {getattr(tenant, 'name', 'your workspace')} failed every "
                f"delivery for three days and was disabled.\n\n{endpoint.disabled_reason}\n\n"
                f"Last deliveries: Settings → Webhooks."
            ),
            from_email=getattr(settings, "DEFAULT_FROM_EMAIL", None),
            recipient_list=recipients,
        )
    except Exception:  # the disabling stands; the page shows it
        logger.warning("could not tell the owner of webhook endpoint %s", endpoint_id, exc_info=True)


def webhook_deliveries_due(*, limit: int = 500) -> list[int]:
    return list(
        WebhookDelivery.objects.filter(
            status=DeliveryStatus.PENDING, next_attempt_at__lte=timezone.now(), endpoint__is_active=True
        )
        .order_by("next_attempt_at", "id")
        .values_list("pk", flat=True)[:limit]
    )


def webhook_deliveries_sweep(*, limit: int = 500) -> dict:
    """Send every delivery whose attempt is due (the beat runs this every minute per tenant)."""
    counts: dict[str, int] = {}
    for delivery_id in webhook_deliveries_due(limit=limit):
        outcome = webhook_delivery_send(delivery_id=delivery_id)
        counts[outcome.status] = counts.get(outcome.status, 0) + 1
    return counts


def webhook_redeliver(*, delivery_id: int) -> SendOutcome:
    """Send a delivery again now, whatever its state (same event id: receivers deduplicate)."""
    delivery = WebhookDelivery.objects.select_related("endpoint").get(pk=delivery_id)
    if not delivery.endpoint.is_active:
        raise ValidationError({"endpoint": ["The endpoint is disabled; enable it before redelivering."]})
    return webhook_delivery_send(delivery_id=delivery_id, manual=True)
