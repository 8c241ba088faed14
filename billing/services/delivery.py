"""E-mailing issued invoices: an outbox row per delivery, sent by a task (DESIGN.md §2 event flow).

- ``invoice_send`` writes the InvoiceDelivery row (queued) and enqueues the send task on commit.
  Issuing calls it inside the issuing transaction, so an issued invoice always has its delivery
  row, even when the broker is down at that moment (the sweep picks the row up).
- ``invoice_delivery_send`` is what the task runs: claim the row (queued/failed → sending, in its
  own short transaction, skipping a row another worker holds), render and store the PDF, send one
  EmailMessage through Django's default mailer, then mark it sent (and the invoice sent) or failed
  with the error and the time of the next attempt. A row already sending or sent is skipped: a
  retried or redelivered task sends once.
- ``invoice_deliveries_due`` is the sweep's list: queued or failed rows whose next attempt is
  due, and rows stuck in "sending" (a worker died mid-send) for longer than ``SENDING_STALE_AFTER``.
"""

from __future__ import annotations

import logging
import smtplib
import socket
import uuid
from dataclasses import dataclass
from datetime import timedelta

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.files.storage import default_storage
from django.core.mail import EmailMessage
from django.db import IntegrityError, connection, transaction
from django.db.models import Q
from django.template.loader import render_to_string
from django.utils import timezone

from billing.models import (
    DeliveryKind,
    DeliveryStatus,
    Invoice,
    InvoiceDelivery,
    InvoiceStatus,
    ReviewTaskKind,
)
from billing.services.enqueue import task_enqueue_on_commit
from revexos.webhooks.publish import event_publish

logger = logging.getLogger(__name__)

MAX_ATTEMPTS = 8
BACKOFF_BASE_SECONDS = 60
BACKOFF_MAX_SECONDS = 6 * 3600
SENDING_STALE_AFTER = timedelta(minutes=15)
SEND_TASK = "billing.tasks.invoice_delivery_send"
# Errors that mean "try again later" (server down, refused, timed out, temporary 4xx).
TRANSIENT_ERRORS = (smtplib.SMTPException, OSError, socket.timeout)


def backoff_seconds(attempts: int) -> int:
    """1 min, 2, 4, 8 … capped at 6 h: an outage of a few hours is ridden out in a handful of tries."""
    return min(BACKOFF_BASE_SECONDS * 2 ** max(attempts - 1, 0), BACKOFF_MAX_SECONDS)


def _message_id(invoice: Invoice, key: str) -> str:
    domain = settings.DEFAULT_FROM_EMAIL.rsplit("@", 1)[-1].strip(" >") or "revexos.localhost"
    token = uuid.uuid5(uuid.NAMESPACE_URL, f"{connection.schema_name}/{key}").hex
    return f"<invoice-{invoice.pk}.{token}@{domain}>"


def _email_context(invoice: Invoice) -> dict:
    from billing.hooks import invoice_pay_url

    return {
        "invoice": invoice,
        "customer": invoice.customer,
        "entity": invoice.issuing_entity,
        "contract": invoice.contract,
        "pay_url": invoice_pay_url(invoice),
    }


def invoice_email_subject(invoice: Invoice) -> str:
    return " ".join(render_to_string("billing/email/invoice_subject.txt", _email_context(invoice)).split())[:300]


def invoice_recipients(invoice: Invoice) -> list[str]:
    return [e.strip() for e in invoice.customer.billing_emails or [] if e and e.strip()]


def delivery_key(invoice: Invoice, *, resend: bool = False) -> str:
    return f"invoice:{invoice.pk}:resend:{uuid.uuid4().hex}" if resend else f"invoice:{invoice.pk}:initial"


def delivery_build(invoice: Invoice, *, key: str, resend: bool = False, user=None) -> InvoiceDelivery:
    """The outbox row of one e-mail of an issued invoice (unsaved): a billing run stores many at once."""
    return InvoiceDelivery(
        invoice=invoice,
        kind=DeliveryKind.RESEND if resend else DeliveryKind.INITIAL,
        idempotency_key=key,
        recipients=invoice_recipients(invoice),
        subject=invoice_email_subject(invoice),
        message_id=_message_id(invoice, key),
        next_attempt_at=timezone.now(),
        requested_by=user,
    )


def invoice_send(*, invoice_id: int, resend: bool = False, user=None) -> InvoiceDelivery:
    """Queue the e-mail of an issued invoice to its customer's billing contacts.

    The first call for an invoice creates its initial delivery; calling again returns that same row
    (issuing twice never mails twice). ``resend=True`` always creates a new delivery (a person
    asked for it). The send task is enqueued when the surrounding transaction commits.
    """
    with transaction.atomic():
        invoice = Invoice.objects.select_related("customer", "issuing_entity", "contract").get(pk=invoice_id)
        if invoice.status in (InvoiceStatus.DRAFT, InvoiceStatus.VOID):
            raise ValidationError(
                {"invoice": [f"Only issued invoices are e-mailed; this one is {invoice.get_status_display().lower()}."]}
            )
        if not invoice_recipients(invoice):
            raise ValidationError(
                {
                    "recipients": [
                        f"{invoice.customer.legal_name} has no billing e-mail: add one on the customer, then send again."
                    ]
                }
            )
        key = delivery_key(invoice, resend=resend)
        if not resend:
            existing = InvoiceDelivery.objects.filter(idempotency_key=key).first()
            if existing is not None:
                return existing
        try:
            with transaction.atomic():
                delivery = delivery_build(invoice, key=key, resend=resend, user=user)
                delivery.save(force_insert=True)
        except IntegrityError:  # a concurrent issue of the same invoice queued it first
            return InvoiceDelivery.objects.get(idempotency_key=key)
        task_enqueue_on_commit(SEND_TASK, delivery_id=delivery.pk)
    return delivery


def invoice_email_queue(
    *,
    invoice_id: int,
    idempotency_key: str,
    subject: str,
    body: str,
    label: str = "",
    kind: str = DeliveryKind.REMINDER,
) -> tuple[InvoiceDelivery, bool]:
    """Queue an e-mail about an issued invoice with its own text (a payment reminder), the PDF
    attached, through the same outbox, retries and sweep as the invoice itself.

    ``idempotency_key`` is unique: queueing the same key again returns the existing row and
    ``False`` (e.g. a dunning step is sent once per invoice however often the cycle runs).
    Call inside the caller's transaction; the send task is enqueued on commit.
    """
    existing = InvoiceDelivery.objects.filter(idempotency_key=idempotency_key).first()
    if existing is not None:
        return existing, False
    invoice = Invoice.objects.select_related("customer").get(pk=invoice_id)
    recipients = [e.strip() for e in invoice.customer.billing_emails or [] if e and e.strip()]
    if not recipients:
        raise ValidationError(
            {"recipients": [f"{invoice.customer.legal_name} has no billing e-mail: add one on the customer."]}
        )
    try:
        with transaction.atomic():
            delivery = InvoiceDelivery.objects.create(
                invoice=invoice,
                kind=kind,
                idempotency_key=idempotency_key,
                recipients=recipients,
                subject=" ".join(subject.split())[:300],
                body=body,
                label=label[:100],
                message_id=_message_id(invoice, idempotency_key),
                next_attempt_at=timezone.now(),
            )
    except IntegrityError:  # queued concurrently by another run
        return InvoiceDelivery.objects.get(idempotency_key=idempotency_key), False
    task_enqueue_on_commit(SEND_TASK, delivery_id=delivery.pk)
    return delivery, True


@dataclass
class SendOutcome:
    status: str  # sent | failed | skipped
    delivery_id: int
    error: str = ""
    retry_in: int | None = None  # seconds until the next attempt, when failed and not given up


def _claim(delivery_id: int) -> InvoiceDelivery | None:
    """queued/failed (or stale sending) → sending, in a short transaction of its own; None when not ours to send."""
    now = timezone.now()
    with transaction.atomic():
        delivery = (
            InvoiceDelivery.objects.select_for_update(skip_locked=True, of=("self",)).filter(pk=delivery_id).first()
        )
        if delivery is None:
            return None  # another worker holds the row right now
        stale = delivery.status == DeliveryStatus.SENDING and (
            delivery.sending_started_at is None or delivery.sending_started_at < now - SENDING_STALE_AFTER
        )
        if delivery.status not in (DeliveryStatus.QUEUED, DeliveryStatus.FAILED) and not stale:
            return None
        delivery.status = DeliveryStatus.SENDING
        delivery.attempts += 1
        delivery.sending_started_at = now
        delivery.save(update_fields=["status", "attempts", "sending_started_at", "updated_at"])
    return delivery


def _message(delivery: InvoiceDelivery, invoice: Invoice, pdf_name: str) -> EmailMessage:
    from billing.services.pdf import invoice_pdf_filename

    body = delivery.body or render_to_string("billing/email/invoice_body.txt", _email_context(invoice))
    entity_email = invoice.issuing_entity.email
    message = EmailMessage(
        subject=delivery.subject,
        body=body,
        from_email=settings.DEFAULT_FROM_EMAIL,
        to=delivery.recipients,
        reply_to=[entity_email] if entity_email else None,
        headers={"Message-ID": delivery.message_id, "X-RevExOS-Invoice": invoice.number or ""},
    )
    with default_storage.open(pdf_name, "rb") as handle:
        message.attach(invoice_pdf_filename(invoice), handle.read(), "application/pdf")
    return message


def _failed(delivery: InvoiceDelivery, error: str) -> SendOutcome:
    now = timezone.now()
    gave_up = delivery.attempts >= MAX_ATTEMPTS
    retry_in = None if gave_up else backoff_seconds(delivery.attempts)
    with transaction.atomic():
        InvoiceDelivery.objects.filter(pk=delivery.pk).update(
            status=DeliveryStatus.FAILED,
            last_error=error[:2000],
            updated_at=now,
            next_attempt_at=None if gave_up else now + timedelta(seconds=retry_in),
        )
        if gave_up:
            from billing.services.reviews import review_task_raise

            review_task_raise(
                kind=ReviewTaskKind.BILLING_ERROR,
                dedupe_key=f"delivery-failed:{delivery.pk}",
                title=f"Invoice {delivery.invoice.number} could not be e-mailed after {delivery.attempts} attempts",
                detail=f"Last error: {error}\nFix the address or the mail server, then resend it from the invoice page.",
                contract_id=delivery.invoice.contract_id,
                invoice_id=delivery.invoice_id,
            )
    logger.warning("invoice delivery %s failed (attempt %s): %s", delivery.pk, delivery.attempts, error)
    return SendOutcome(status="failed", delivery_id=delivery.pk, error=error, retry_in=retry_in)


def invoice_delivery_send(*, delivery_id: int) -> SendOutcome:
    """Send one queued delivery (the task's body). Safe to call any number of times: sends once."""
    from billing.services.pdf import invoice_pdf_store

    delivery = _claim(delivery_id)
    if delivery is None:
        return SendOutcome(status="skipped", delivery_id=delivery_id)
    invoice = Invoice.objects.select_related("customer", "issuing_entity", "contract").get(pk=delivery.invoice_id)
    delivery.invoice = invoice
    try:
        pdf_name = invoice_pdf_store(invoice=invoice)
        sent = _message(delivery, invoice, pdf_name).send()
        if not sent:
            raise smtplib.SMTPException("The mail server accepted no recipient.")
    except Exception as exc:
        if not isinstance(exc, TRANSIENT_ERRORS):
            logger.exception("invoice delivery %s failed unexpectedly", delivery.pk)
        return _failed(delivery, f"{type(exc).__name__}: {exc}")
    now = timezone.now()
    with transaction.atomic():
        InvoiceDelivery.objects.filter(pk=delivery.pk).update(
            status=DeliveryStatus.SENT,
            sent_at=now,
            last_error="",
            next_attempt_at=None,
            pdf_name=pdf_name,
            updated_at=now,
        )
        # Lifecycle columns only (the immutability trigger allows them); a paid invoice stays paid.
        Invoice.objects.filter(pk=invoice.pk, status=InvoiceStatus.ISSUED).update(status=InvoiceStatus.SENT)
        Invoice.objects.filter(pk=invoice.pk, sent_at__isnull=True).update(sent_at=now)
        from billing.services.invoicing import invoice_event_data

        invoice.refresh_from_db(fields=["status", "sent_at"])
        data = invoice_event_data(invoice)
        data["invoice"]["sent_to"] = list(delivery.recipients)
        event_publish("invoice.sent", data, key=f"invoice.sent:{delivery.pk}")
    return SendOutcome(status="sent", delivery_id=delivery.pk)


def invoice_deliveries_due(*, now=None, limit: int = 500) -> list[int]:
    """Deliveries the sweep should (re)try now: due queued/failed rows and stale sending ones."""
    now = now or timezone.now()
    return list(
        InvoiceDelivery.objects.filter(
            Q(status__in=[DeliveryStatus.QUEUED, DeliveryStatus.FAILED], next_attempt_at__lte=now)
            | Q(status=DeliveryStatus.SENDING, sending_started_at__lt=now - SENDING_STALE_AFTER)
        )
        .order_by("next_attempt_at", "id")
        .values_list("pk", flat=True)[:limit]
    )


def invoice_deliveries_sweep(*, now=None) -> int:
    """Re-enqueue every due delivery (the broker was down, a retry was lost, a worker died)."""
    due = invoice_deliveries_due(now=now)
    for delivery_id in due:
        task_enqueue_on_commit(SEND_TASK, delivery_id=delivery_id)
    return len(due)
