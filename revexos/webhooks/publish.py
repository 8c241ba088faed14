"""Publishing an event: one call, inside the transaction of the change it announces.

``event_publish`` writes the event and one delivery row per active endpoint subscribed to its type
(the outbox), and enqueues the sends on commit: if the change rolls back, so does the event; if the
broker is down, the sweep sends it later. Nothing is written when no endpoint listens.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import Any

from django.db import IntegrityError, connection, transaction
from django.utils import timezone

from revexos.webhooks.events import EVENT_TYPES
from revexos.webhooks.models import WebhookDelivery, WebhookEndpoint, WebhookEvent

logger = logging.getLogger(__name__)
SEND_TASK = "revexos.webhooks.tasks.webhook_delivery_send"


def _subscribers(event_type: str) -> list[int]:
    return list(
        WebhookEndpoint.objects.filter(is_active=True, events__contains=[event_type]).values_list("pk", flat=True)
    )


def _enqueue_on_commit(delivery_ids: list[int]) -> None:
    if not delivery_ids:
        return
    schema = connection.schema_name

    def send() -> None:
        from revexos.celery import app

        for delivery_id in delivery_ids:
            try:
                app.send_task(
                    SEND_TASK, kwargs={"delivery_id": delivery_id}, headers={"_schema_name": schema}, retry=False
                )
            except Exception:  # broker down: the sweep sends it
                logger.warning(
                    "could not enqueue webhook delivery %s; the sweep will send it", delivery_id, exc_info=True
                )
                return

    transaction.on_commit(send)


def events_publish_many(event_type: str, items: Iterable[tuple[dict[str, Any], str | None]]) -> list[WebhookEvent]:
    """Publish several events of one type (set-based: a few queries whatever their number).

    ``items`` are ``(data, key)``; an item whose key was published before is skipped."""
    if event_type not in EVENT_TYPES:
        raise ValueError(f"Unknown event type {event_type!r}; add it to revexos.webhooks.events.EVENT_TYPES.")
    items = list(items)
    endpoints = _subscribers(event_type)
    if not endpoints or not items:
        return []
    keys = [k for _, k in items if k]
    seen = set(WebhookEvent.objects.filter(key__in=keys).values_list("key", flat=True)) if keys else set()
    fresh, batch_keys = [], set()
    for data, key in items:
        if key and (key in seen or key in batch_keys):
            continue
        if key:
            batch_keys.add(key)
        fresh.append(WebhookEvent(type=event_type, key=(key or None), data=data))
    try:
        with transaction.atomic():
            events = WebhookEvent.objects.bulk_create(fresh)
    except IntegrityError:
        # A concurrent publisher stored one of these keys first: keep theirs, add the others one by one.
        events = []
        for event in fresh:
            if event.key is None:
                event.save()
                events.append(event)
                continue
            _, created = WebhookEvent.objects.get_or_create(
                key=event.key, defaults={"type": event.type, "data": event.data}
            )
            if created:
                events.append(WebhookEvent.objects.get(key=event.key))
    now = timezone.now()
    deliveries = WebhookDelivery.objects.bulk_create(
        [
            WebhookDelivery(event=event, endpoint_id=endpoint_id, next_attempt_at=now)
            for event in events
            for endpoint_id in endpoints
        ]
    )
    _enqueue_on_commit([d.pk for d in deliveries if d.pk])
    return events


def event_publish(event_type: str, data: dict[str, Any], *, key: str | None = None) -> WebhookEvent | None:
    """Announce ``event_type`` with ``data`` to the subscribed endpoints; call inside the change's
    transaction. ``key`` (e.g. ``"invoice.issued:42"``) makes it idempotent. Returns the event, or
    None when nobody listens or the key was published before."""
    events = events_publish_many(event_type, [(data, key)])
    return events[0] if events else None
