"""The inbox: every request a source sent, stored as received and processed by a worker.

``inbox_receive`` runs inside the webhook request: it stores the row (idempotent by the source's
event id) and enqueues processing on commit. ``inbox_event_process`` runs in the worker; the
handler's writes and the row's new status commit together, so an event is never half-processed.
The cycle's ``integrations`` step and the beat sweep pick up rows stored while the broker was down.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass

from django.db import IntegrityError, transaction
from django.db.models import F
from django.utils import timezone

from billing.services.enqueue import task_enqueue_on_commit
from integrations.models import Connection, InboxEvent, InboxStatus, Verdict

logger = logging.getLogger(__name__)

MAX_ATTEMPTS = 5
REJECTED_BODY_KEPT = 4096  # a refused body is kept only to show the admin what arrived
INBOX_TASK = "integrations.tasks.inbox_event_process"


@dataclass(frozen=True)
class Outcome:
    """What a handler did: the row's new status, in words, and the contract it concerns."""

    status: str
    text: str
    contract_id: int | None = None


def inbox_receive(
    *,
    connection: Connection,
    body: bytes,
    headers: dict,
    verdict: str,
    event_id: str,
    event_type: str = "",
    subject: str = "",
    status: str = InboxStatus.PENDING,
    error: str = "",
) -> tuple[InboxEvent, bool]:
    """Store one request; ``(row, duplicate)``. Only verified, pending rows are enqueued."""
    verified = verdict in (Verdict.VALID, Verdict.HANDSHAKE)
    row = InboxEvent(
        connection=connection,
        source=connection.source,
        event_id=event_id[:200],
        event_type=event_type[:100],
        subject=subject[:200],
        body=body if verified else body[:REJECTED_BODY_KEPT],
        headers=headers,
        verdict=verdict,
        status=status if verified else InboxStatus.REJECTED,
        error=error,
    )
    try:
        with transaction.atomic():
            row.save()
            if verified:
                Connection.objects.filter(pk=connection.pk).update(last_event_at=timezone.now())
            if row.status == InboxStatus.PENDING:
                task_enqueue_on_commit(INBOX_TASK, event_pk=row.pk)
    except IntegrityError:
        # The same delivery again (a retry, or a concurrent copy that committed first).
        existing = InboxEvent.objects.filter(
            connection=connection, event_id=row.event_id, verdict__in=[Verdict.VALID, Verdict.HANDSHAKE]
        ).first()
        if existing is None:
            raise
        return existing, True
    return row, False


def _payload(event: InboxEvent):
    return json.loads(bytes(event.body))


def _handle(event: InboxEvent) -> Outcome:
    from integrations.services import deals, projects

    handlers = {
        "jira": projects.jira_handle,
        "linear": projects.linear_handle,
        "asana": projects.asana_handle,
        "hubspot": deals.hubspot_handle,
        "salesforce": deals.salesforce_handle,
    }
    handler = handlers.get(event.source)
    if handler is None:
        return Outcome(InboxStatus.IGNORED, f"{event.source} events are not processed.")
    return handler(event)


def inbox_event_process(*, event_pk: int) -> str | None:
    """Process one pending (or failed) row once; returns its new status, or None when another worker
    has it or it was already done. A failure rolls the handler's writes back and records the error."""
    with transaction.atomic():
        event = (
            InboxEvent.objects.select_for_update(skip_locked=True, of=("self",))
            .select_related("connection")
            .filter(pk=event_pk, status__in=[InboxStatus.PENDING, InboxStatus.FAILED])
            .first()
        )
        if event is None:
            return None
        event.attempts += 1
        try:
            with transaction.atomic():
                outcome = _handle(event)
        except Exception as exc:  # recorded on the row; the sweep retries, an admin may replay
            logger.warning("inbox event %s failed", event.pk, exc_info=True)
            event.status = InboxStatus.FAILED
            event.error = f"{exc.__class__.__name__}: {exc}".replace("\x00", "")[:2000]
        else:
            event.status = outcome.status
            event.outcome = outcome.text.replace("\x00", "")[:4000]
            event.error = ""
            if outcome.contract_id:
                event.contract_id = outcome.contract_id
        event.processed_at = timezone.now()
        event.save(update_fields=["attempts", "status", "outcome", "error", "contract", "processed_at"])
    return event.status


def inbox_process_pending(*, limit: int = 500) -> dict:
    """The sweep (a cycle step and a beat task): rows still pending, and failed rows under the retry limit."""
    ids = list(
        InboxEvent.objects.filter(status__in=[InboxStatus.PENDING, InboxStatus.FAILED], attempts__lt=MAX_ATTEMPTS)
        .order_by("received_at", "id")
        .values_list("id", flat=True)[:limit]
    )
    counts: dict[str, int] = {}
    for pk in ids:
        try:
            status = inbox_event_process(event_pk=pk)
        except Exception:  # a database error on one row must not stop the sweep
            logger.exception("inbox sweep: event %s", pk)
            InboxEvent.objects.filter(pk=pk).update(attempts=F("attempts") + 1)
            status = "error"
        if status:
            counts[status] = counts.get(status, 0) + 1
    return {"inbox_processed": sum(counts.values()), "inbox_by_status": counts}


def inbox_event_replay(*, event_pk: int) -> InboxEvent:
    """Put a failed (or unmatched) event back in the queue, e.g. after fixing a mapping or a token."""
    from django.core.exceptions import ValidationError

    with transaction.atomic():
        event = InboxEvent.objects.select_for_update().get(pk=event_pk)
        if event.status not in (InboxStatus.FAILED, InboxStatus.UNMATCHED, InboxStatus.IGNORED):
            raise ValidationError(
                {"status": [f"Only failed, unmatched or ignored events can be replayed; this one is {event.status}."]}
            )
        event.status = InboxStatus.PENDING
        event.attempts = 0
        event.error = ""
        event.save(update_fields=["status", "attempts", "error"])
        task_enqueue_on_commit(INBOX_TASK, event_pk=event.pk)
    return event
