"""Dunning: payment reminders by the tenant's steps (DESIGN.md §4 Dunning) — the collections cycle step.

What "once" means here (the keys):

- ``DunningNotice (invoice, step)`` is unique, and the reminder's outbox row has the idempotency
  key ``dunning:<invoice>:<step>``: each step reaches an invoice at most once, however often the
  cycle runs or is retried, also concurrently.
- Only the **latest** step due on the run's date is sent, and never one older than a step already
  sent: after downtime the customer gets the current reminder, not a burst of the missed ones.
- A step before the due date (a friendly reminder) is sent only while the invoice is not yet due,
  and no step dated before the invoice's issue date is sent.

Never reminded: invoices paid or with nothing open, credited (any credit note: someone is already
talking to the customer), disputed, written off, or whose customer or contract is paused. The
final step also raises a review task for the account manager.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, timedelta

from django.db import IntegrityError, transaction
from django.db.models import Exists, Max, OuterRef, Q
from django.template.loader import render_to_string

from billing.models import Invoice, InvoiceStatus, ReviewTaskKind
from receivables.models import CollectionsSettings, DunningNotice, DunningPause, DunningStep
from revexos.money import format_money, quantize

DEFAULT_STEPS = [
    (
        -3,
        "Friendly reminder",
        "Reminder: invoice {invoice} is due on {due_date}",
        "A friendly reminder that the invoice below falls due in a few days. If you have already paid, thank you, and please ignore this e-mail.",
        False,
    ),
    (
        1,
        "Overdue notice",
        "Invoice {invoice} is overdue: {amount} open",
        "Our records show the invoice below was due yesterday and is still open. Please arrange payment at your earliest convenience.",
        False,
    ),
    (
        7,
        "Second reminder",
        "Second reminder: invoice {invoice} is {days_overdue} days overdue",
        "The invoice below is now a week overdue. Please pay it, or reply to tell us when to expect payment or if anything is wrong with it.",
        False,
    ),
    (
        14,
        "Third reminder",
        "Invoice {invoice} is {days_overdue} days overdue",
        "The invoice below is two weeks overdue. Please settle it now, or contact us so we can sort out what is holding it up.",
        False,
    ),
    (
        30,
        "Final notice",
        "Final notice: invoice {invoice}, {amount} overdue",
        "This is our final reminder: the invoice below is a month overdue. Please pay it within seven days; your account manager will be in touch.",
        True,
    ),
]
PLACEHOLDERS = ("invoice", "amount", "due_date", "days_overdue", "customer")


def dunning_steps_ensure() -> list[DunningStep]:
    """The tenant's steps, created from the defaults the first time they are needed."""
    steps = list(DunningStep.objects.order_by("offset_days"))
    if steps:
        return steps
    for offset, name, subject, body, final in DEFAULT_STEPS:
        DunningStep.objects.get_or_create(
            offset_days=offset, defaults={"name": name, "subject": subject, "body": body, "is_final": final}
        )
    return list(DunningStep.objects.order_by("offset_days"))


def fill_placeholders(text: str, values: dict[str, str]) -> str:
    """Replace {invoice}, {amount}, … in a tenant's step text; anything else stays as written."""
    return re.sub(r"\{(\w+)\}", lambda m: values.get(m.group(1), m.group(0)), text)


def step_due(*, steps: list[DunningStep], due_date: date, issue_date: date, as_of: date) -> DunningStep | None:
    """The latest active step due on ``as_of`` for an invoice (pure: the rule of the module docstring)."""
    chosen = None
    for step in steps:
        if not step.active:
            continue
        day = due_date + timedelta(days=step.offset_days)
        if day > as_of or day < issue_date:
            continue
        if step.offset_days < 0 and as_of >= due_date:
            continue
        if chosen is None or step.offset_days > chosen.offset_days:
            chosen = step
    return chosen


def dunning_candidates(*, as_of: date, earliest_offset: int):
    """Open invoices that may owe a reminder on ``as_of``, with the latest step already sent."""
    paused = DunningPause.objects.filter(lifted_at__isnull=True).filter(
        Q(customer_id=OuterRef("customer_id")) | Q(contract_id=OuterRef("contract_id"))
    )
    return (
        Invoice.objects.filter(
            status__in=[InvoiceStatus.ISSUED, InvoiceStatus.SENT, InvoiceStatus.PARTIALLY_PAID],
            amount_open__gt=0,
            credited_total=0,
            written_off=0,
            disputed_at__isnull=True,
            due_date__lte=as_of - timedelta(days=earliest_offset),
        )
        .exclude(customer__billing_emails=[])
        .annotate(paused=Exists(paused), last_offset=Max("dunning_notices__offset_days"))
        .filter(paused=False)
        .select_related("customer", "contract", "issuing_entity")
        .order_by("due_date", "pk")
    )


@dataclass
class DunningResult:
    sent: list[str]
    final: list[str]

    def as_summary(self) -> dict:
        return {"reminders_sent": self.sent, "final_notices": self.final}


def dunning_send_due(*, as_of: date) -> DunningResult:
    """Queue every reminder due on ``as_of`` (the collections step; safe to run again and late)."""
    result = DunningResult(sent=[], final=[])
    if not CollectionsSettings.current().dunning_enabled:
        return result
    steps = [s for s in dunning_steps_ensure() if s.active]
    if not steps:
        return result
    for invoice in dunning_candidates(as_of=as_of, earliest_offset=min(s.offset_days for s in steps)):
        step = step_due(steps=steps, due_date=invoice.due_date, issue_date=invoice.issue_date, as_of=as_of)
        if step is None or (invoice.last_offset is not None and invoice.last_offset >= step.offset_days):
            continue
        if _notice_send(invoice_id=invoice.pk, step=step, as_of=as_of):
            result.sent.append(f"{invoice.number}: {step.name}")
            if step.is_final:
                result.final.append(invoice.number)
    return result


def reminder_text(*, invoice: Invoice, step: DunningStep, as_of: date) -> tuple[str, str]:
    """Subject and body of a reminder (the body renders templates/receivables/email/reminder.txt)."""
    from billing.hooks import invoice_pay_url

    days_overdue = max((as_of - invoice.due_date).days, 0)
    amount = f"{format_money(quantize(invoice.amount_open, invoice.currency), invoice.currency)} {invoice.currency}"
    values = {
        "invoice": invoice.number,
        "amount": amount,
        "due_date": f"{invoice.due_date:%-d %b %Y}",
        "days_overdue": str(days_overdue),
        "customer": invoice.customer.legal_name,
    }
    subject = fill_placeholders(step.subject, values)
    body = render_to_string(
        "receivables/email/reminder.txt",
        {
            "invoice": invoice,
            "customer": invoice.customer,
            "entity": invoice.issuing_entity,
            "intro": fill_placeholders(step.body, values),
            "amount_open": amount,
            "days_overdue": days_overdue,
            "pay_url": invoice_pay_url(invoice),
            "step": step,
        },
    )
    return subject, body


def _notice_send(*, invoice_id: int, step: DunningStep, as_of: date) -> bool:
    from billing.services.delivery import invoice_email_queue

    try:
        with transaction.atomic():
            invoice = (
                Invoice.objects.select_for_update(of=("self",))
                .select_related("customer", "contract", "issuing_entity")
                .get(pk=invoice_id)
            )
            if invoice.amount_open <= 0 or invoice.disputed_at is not None:
                return False  # paid or disputed while we looked
            notice = DunningNotice.objects.create(
                invoice=invoice, step=step, offset_days=step.offset_days, sent_on=as_of
            )
            subject, body = reminder_text(invoice=invoice, step=step, as_of=as_of)
            delivery, _created = invoice_email_queue(
                invoice_id=invoice.pk,
                idempotency_key=f"dunning:{invoice.pk}:{step.pk}",
                subject=subject,
                body=body,
                label=step.name,
            )
            DunningNotice.objects.filter(pk=notice.pk).update(delivery=delivery)
            if step.is_final:
                _final_review_task(invoice=invoice, step=step, as_of=as_of)
    except IntegrityError:
        return False  # another run sent this step a moment ago
    return True


def _final_review_task(*, invoice: Invoice, step: DunningStep, as_of: date) -> None:
    from billing.models import BillingReviewTask
    from billing.services.reviews import review_task_raise

    key = f"dunning-final:{invoice.pk}"
    created = review_task_raise(
        kind=ReviewTaskKind.DUNNING_FINAL,
        dedupe_key=key,
        title=f"{invoice.number} ({invoice.customer.legal_name}) got its final notice: call the customer",
        detail=(
            f"{step.name} sent on {as_of:%-d %b %Y}: {quantize(invoice.amount_open, invoice.currency)} {invoice.currency} "
            f"open, due {invoice.due_date:%-d %b %Y}. Decide with finance: payment plan, pause, credit note or write-off."
        ),
        contract_id=invoice.contract_id,
        invoice_id=invoice.pk,
    )
    owner_id = invoice.contract.owner_id or invoice.customer.owner_id
    if created and owner_id:
        BillingReviewTask.objects.filter(dedupe_key=key).update(assignee_id=owner_id)


def dunning_pause(*, customer=None, contract=None, reason: str, user=None) -> DunningPause:
    from django.core.exceptions import ValidationError

    reason = (reason or "").strip()
    if not reason:
        raise ValidationError({"reason": ["Say why reminders stop; it is shown to finance."]})
    if (customer is None) == (contract is None):
        raise ValidationError({"scope": ["Pause either a customer or a contract."]})
    existing = DunningPause.objects.filter(customer=customer, contract=contract, lifted_at__isnull=True).first()
    if existing:
        return existing
    return DunningPause.objects.create(customer=customer, contract=contract, reason=reason[:500], paused_by=user)


def dunning_resume(*, pause_id: int) -> None:
    from django.utils import timezone

    DunningPause.objects.filter(pk=pause_id, lifted_at__isnull=True).update(lifted_at=timezone.now())


def collections_run(*, as_of: date) -> dict:
    """The ``collections`` cycle step: reminders due, and the monthly statements when switched on."""
    summary = dunning_send_due(as_of=as_of).as_summary()
    from receivables.services.statements import statements_monthly_send

    summary["statements_sent"] = statements_monthly_send(as_of=as_of)
    return summary
