"""Customer statements of account: open invoices, recent payments and credits, aging (PDF, e-mail).

On demand from the customer page, and monthly (the collections cycle step, when the tenant switches
it on) to every customer with something open. ``StatementSend.key`` makes the monthly one once per
customer and month (``statement:<customer>:<YYYY-MM>``); e-mails go out from a task on commit and
are retried by the same rule as invoice e-mails.
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal

from django.conf import settings
from django.core.mail import EmailMessage
from django.db import IntegrityError, connection, transaction
from django.db.models import Q
from django.template.loader import render_to_string
from django.utils import timezone

from receivables import figures

logger = logging.getLogger(__name__)
ZERO = Decimal("0")
SEND_TASK = "receivables.tasks.statement_send"
HISTORY_DAYS = 90


@dataclass
class StatementLine:
    day: date
    kind: str
    reference: str
    detail: str
    amount: Decimal


def statement_data(*, customer, as_of: date) -> dict:
    """Everything a statement shows, per currency (never adding two currencies)."""
    from billing.models import CreditNote, Invoice
    from receivables.models import Payment
    from receivables.selectors import aging_invoices

    invoices = aging_invoices(as_of=as_of, customer_id=customer.pk, limit=1000)
    since = as_of - timedelta(days=HISTORY_DAYS)
    payments = list(
        Payment.objects.filter(customer=customer, received_on__gte=since, received_on__lte=as_of).order_by(
            "received_on", "pk"
        )
    )
    credits = list(
        CreditNote.objects.filter(invoice__customer=customer, issue_date__gte=since, issue_date__lte=as_of)
        .select_related("invoice")
        .order_by("issue_date", "pk")
    )
    currencies = sorted({i.currency for i in invoices} | {p.currency for p in payments})
    sections = []
    for currency in currencies:
        buckets = dict.fromkeys(figures.BUCKETS, ZERO)
        rows = []
        for invoice in (i for i in invoices if i.currency == currency):
            invoice.days_past_due = max((as_of - invoice.due_date).days, 0)
            buckets[figures.bucket(due_date=invoice.due_date, as_of=as_of)] += invoice.open_as_of
            rows.append(invoice)
        sections.append(
            {
                "currency": currency,
                "invoices": rows,
                "total": sum((i.open_as_of for i in rows), ZERO),
                "buckets": [(figures.BUCKET_LABELS[k], buckets[k]) for k in figures.BUCKETS],
                "payments": [p for p in payments if p.currency == currency],
                "credits": [c for c in credits if c.currency == currency],
            }
        )
    entity = None
    last = (
        Invoice.objects.filter(customer=customer)
        .exclude(status="draft")
        .select_related("issuing_entity")
        .order_by("-issue_date")
        .first()
    )
    if last is not None:
        entity = last.issuing_entity
    return {"customer": customer, "as_of": as_of, "sections": sections, "entity": entity, "since": since}


def statement_pdf_render(*, customer, as_of: date) -> bytes:
    from revexos.pdf import pdf_render

    context = statement_data(customer=customer, as_of=as_of)
    tenant = getattr(connection, "tenant", None)
    context["tenant_name"] = getattr(tenant, "name", "")
    html = render_to_string("receivables/pdf/statement.html", context)
    return pdf_render(html)


def statement_filename(customer, as_of: date) -> str:
    return f"statement-{customer.external_id}-{as_of:%Y-%m-%d}.pdf"


def statement_send(*, customer, as_of: date, key: str | None = None):
    """Queue a statement e-mail (PDF attached); with ``key`` at most once per key. Returns the row or None."""
    from django.core.exceptions import ValidationError

    from receivables.models import StatementSend

    recipients = [e for e in customer.billing_emails or [] if e]
    if not recipients:
        raise ValidationError({"recipients": [f"{customer.legal_name} has no billing e-mail."]})
    key = key or f"statement:{customer.pk}:adhoc:{uuid.uuid4().hex}"
    try:
        with transaction.atomic():
            row = StatementSend.objects.create(customer=customer, key=key, as_of=as_of, recipients=recipients)
    except IntegrityError:
        return None
    from billing.services.enqueue import task_enqueue_on_commit

    task_enqueue_on_commit(SEND_TASK, send_id=row.pk)
    return row


def statement_deliver(*, send_id: int) -> str:
    """The task's body: render the PDF and send it; a failure is kept on the row for the next try."""
    from receivables.models import StatementSend

    with transaction.atomic():
        row = (
            StatementSend.objects.select_for_update(skip_locked=True)
            .select_related("customer")
            .filter(pk=send_id)
            .first()
        )
        if row is None or row.status == "sent":
            return "skipped"
        row.attempts += 1
        row.save(update_fields=["attempts"])
    data = statement_data(customer=row.customer, as_of=row.as_of)
    entity = data["entity"]
    body = render_to_string("receivables/email/statement.txt", data)
    message = EmailMessage(
        subject=f"Statement of account {row.as_of:%d %B %Y}" + (f" from {entity.legal_name}" if entity else ""),
        body=body,
        from_email=settings.DEFAULT_FROM_EMAIL,
        to=row.recipients,
        reply_to=[entity.email] if entity and entity.email else None,
    )
    try:
        message.attach(
            statement_filename(row.customer, row.as_of),
            statement_pdf_render(customer=row.customer, as_of=row.as_of),
            "application/pdf",
        )
        message.send()
    except Exception as exc:  # the sweep (monthly run) or a person tries again
        logger.warning("statement %s failed: %s", row.pk, exc)
        StatementSend.objects.filter(pk=row.pk).update(status="failed", last_error=str(exc)[:2000])
        return "failed"
    StatementSend.objects.filter(pk=row.pk).update(status="sent", sent_at=timezone.now(), last_error="")
    return "sent"


def statements_monthly_send(*, as_of: date) -> list[str]:
    """Monthly statements (tenant setting): once per customer with an open balance and month."""
    from billing.models import Invoice
    from contracts.models import Customer
    from receivables.models import CollectionsSettings, StatementSend

    if not CollectionsSettings.current().monthly_statements:
        return []
    month = as_of.replace(day=1)
    owing = Invoice.objects.filter(
        status__in=["issued", "sent", "partially_paid"], amount_open__gt=0, issue_date__lt=month
    )
    sent = []
    for customer in (
        Customer.objects.filter(pk__in=owing.values("customer_id")).exclude(billing_emails=[]).order_by("pk")
    ):
        key = f"statement:{customer.pk}:{month:%Y-%m}"
        if StatementSend.objects.filter(key=key).exists():
            continue
        if statement_send(customer=customer, as_of=month - timedelta(days=1), key=key) is not None:
            sent.append(customer.external_id)
    # Retry the failed ones of this month.
    for row in StatementSend.objects.filter(status="failed", attempts__lt=8).filter(Q(key__endswith=f":{month:%Y-%m}")):
        from billing.services.enqueue import task_enqueue_on_commit

        task_enqueue_on_commit(SEND_TASK, send_id=row.pk)
    return sent
