"""Invoices: creating drafts from billed obligations, issuing, credit notes (DESIGN.md §3, §4)."""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field
from datetime import date, timedelta
from decimal import Decimal
from typing import Any

from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import F, Sum
from django.utils import timezone

from billing import hooks
from billing.models import (
    CreditNote,
    Invoice,
    InvoiceLine,
    InvoiceStatus,
    NumberSequenceKind,
    ReviewTaskKind,
    TimeEntry,
    UsageEvent,
)
from billing.services.adjustments import invoice_adjustments_apply, invoice_credits_apply
from billing.services.checks import invoice_presend_problems
from billing.services.context import current_tenant, tenant_today
from billing.services.numbering import document_number_assign
from billing.services.reviews import review_task_raise, review_tasks_resolve_for_invoice
from revexos.money import quantize, to_decimal
from revexos.tax import credit_tax_reversal
from revexos.webhooks.publish import event_publish

ZERO = Decimal("0")


@dataclass
class LineSpec:
    """One obligation found due by a trigger, not stored yet. ``version`` is the terms it is billed under."""

    kind: str
    description: str
    quantity: Decimal
    unit_amount: Decimal
    amount: Decimal
    billing_key: str
    version: Any
    period_start: date | None = None
    period_end: date | None = None
    price_line_id: int | None = None
    line_ref: str = ""
    milestone_id: int | None = None
    source: dict = field(default_factory=dict)
    # Facts this line bills: marked with the line in the same transaction.
    usage_marks: list[tuple] = field(default_factory=list)  # (metric, start_dt, end_dt, max_id)
    time_entry_ids: list[int] = field(default_factory=list)


def _terms_key(version) -> tuple:
    # Lines go on one invoice only when they share the terms printed on it.
    return (version.currency, version.po_number, version.po_required, version.payment_terms_days)


def auto_issue_enabled(contract, *, tenant=None) -> bool:
    """The contract's own flag wins; empty means the tenant setting (DESIGN.md §4)."""
    if contract.auto_issue is not None:
        return contract.auto_issue
    return (tenant or current_tenant()).auto_issue_invoices


def invoices_create_from_specs(*, contract, specs: list[LineSpec], billing_date: date, tenant=None) -> list[Invoice]:
    """Store due obligations as invoices (one per set of terms), mark their facts, then issue or hold.

    Runs inside the caller's per-contract transaction: everything here commits or rolls back
    together, so an aborted run leaves no partial invoice and no used number.
    """
    groups = invoice_line_groups(specs, billing_date=billing_date)
    auto_issue = auto_issue_enabled(contract, tenant=tenant) if groups else False
    invoices = []
    for version, group in groups:
        invoice = _invoice_draft_create(contract=contract, version=version, specs=group, billing_date=billing_date)
        problems = invoice_presend_problems(invoice)
        if problems:
            invoice_hold(invoice=invoice, problems=problems)
        elif auto_issue:
            _issue(invoice, issue_date=billing_date)
        invoices.append(invoice)
    return invoices


def invoice_line_groups(specs: list[LineSpec], *, billing_date: date) -> list[tuple[Any, list[LineSpec]]]:
    """Due obligations split into invoices: one per set of terms, under the latest version among
    its lines, lines in invoice order (period, kind, description)."""
    groups: dict[tuple, list[LineSpec]] = {}
    for spec in specs:
        groups.setdefault(_terms_key(spec.version), []).append(spec)
    result = []
    for group in groups.values():
        version = max((s.version for s in group), key=lambda v: v.effective_from)
        group = sorted(group, key=lambda s: (s.period_start or billing_date, _KIND_ORDER.get(s.kind, 9), s.description))
        result.append((version, group))
    return result


_KIND_ORDER = {
    "recurring": 0,
    "overage": 1,
    "fixed_fee": 2,
    "milestone": 3,
    "time_and_materials": 4,
    "usage": 5,
    "usage_minimum": 6,
}


def invoice_draft_build(*, contract, version, specs: list[LineSpec], billing_date: date) -> Invoice:
    """An unsaved draft for one group of obligations (totals before discounts; the writer sets them)."""
    currency = version.currency
    subtotal = quantize(sum((quantize(s.amount, currency) for s in specs), ZERO), currency)
    return Invoice(
        contract=contract,
        customer_id=contract.customer_id,
        issuing_entity_id=version.issuing_entity_id_for(contract),
        version=version,
        currency=currency,
        billing_date=billing_date,
        po_number=version.po_number,
        payment_terms_days=version.payment_terms_days,
        subtotal=subtotal,
        total=subtotal,
        amount_due=subtotal,
    )


def invoice_lines_build(*, invoice: Invoice, specs: list[LineSpec]) -> list[InvoiceLine]:
    """The unsaved lines of a draft, in invoice order, amounts rounded to the currency."""
    return [
        InvoiceLine(
            invoice=invoice,
            contract_id=invoice.contract_id,
            position=index,
            kind=s.kind,
            description=s.description[:300],
            quantity=s.quantity,
            unit_amount=s.unit_amount,
            amount=quantize(s.amount, invoice.currency),
            period_start=s.period_start,
            period_end=s.period_end,
            price_line_id=s.price_line_id,
            line_ref=s.line_ref,
            milestone_id=s.milestone_id,
            billing_key=s.billing_key,
            source=s.source,
        )
        for index, s in enumerate(specs)
    ]


def _invoice_draft_create(*, contract, version, specs: list[LineSpec], billing_date: date) -> Invoice:
    # Discounts and tax come with their issues; the order is DESIGN.md §4's.
    invoice = invoice_draft_build(contract=contract, version=version, specs=specs, billing_date=billing_date)
    invoice.save(force_insert=True)
    milestones_mark(specs)
    lines = InvoiceLine.objects.bulk_create(invoice_lines_build(invoice=invoice, specs=specs))
    _facts_mark(contract_id=contract.pk, specs=specs, lines=lines)
    invoice_adjustments_apply(invoice=invoice, lines=lines)  # discounts and totals, while a draft (DESIGN.md §4)
    return invoice


def milestones_mark(specs: list[LineSpec]) -> None:
    """Delivered milestones become invoiced BEFORE lines referencing them are inserted.

    Lock order: inserting a line takes a key-share lock on its milestone row, and a delivery event
    for the same milestone may be waiting for that row (``milestone_deliver`` locks it); updating
    the row afterwards would then deadlock against the waiter. Updating first takes the row lock
    once, in the same order as the delivery side (milestone row, then nothing else).
    """
    from contracts.models import Milestone, MilestoneStatus

    ids = sorted(s.milestone_id for s in specs if s.milestone_id)
    if ids:
        Milestone.objects.filter(pk__in=ids).update(status=MilestoneStatus.INVOICED)


def _facts_mark(*, contract_id: int, specs: list[LineSpec], lines: list[InvoiceLine]) -> None:
    for spec, line in zip(specs, lines, strict=True):
        for metric, start, end, max_id in spec.usage_marks:
            UsageEvent.objects.filter(
                contract_id=contract_id,
                metric=metric,
                timestamp__gte=start,
                timestamp__lt=end,
                id__lte=max_id,
                invoice_line__isnull=True,
            ).update(invoice_line=line)
        if spec.time_entry_ids:
            TimeEntry.objects.filter(id__in=spec.time_entry_ids, invoice_line__isnull=True).update(invoice_line=line)


def invoice_hold(*, invoice: Invoice, problems: list[str]) -> None:
    """Keep the invoice as a draft with its reasons and ask finance to look at it (one task per
    invoice: raising again updates it, and reopens it if it was resolved but the draft still fails)."""
    invoice.hold_reasons = problems
    invoice.save(update_fields=["hold_reasons"])
    review_task_raise(
        kind=ReviewTaskKind.PRESEND_CHECK,
        dedupe_key=f"presend:{invoice.pk}",
        title=f"Invoice draft #{invoice.pk} for {invoice.contract.number} is held",
        detail="\n".join(problems),
        contract_id=invoice.contract_id,
        invoice_id=invoice.pk,
        reopen=True,
    )


def _issue(invoice: Invoice, *, issue_date: date) -> Invoice:
    invoice.number = document_number_assign(
        issuing_entity_id=invoice.issuing_entity_id,
        prefix=invoice.issuing_entity.invoice_prefix,
        kind=NumberSequenceKind.INVOICE,
        issue_date=issue_date,
    )
    invoice_credits_apply(invoice=invoice, on=issue_date)  # credits reduce the amount due; row still a draft here
    invoice.status = InvoiceStatus.ISSUED
    invoice.issue_date = issue_date
    invoice.due_date = issue_date + timedelta(days=invoice.payment_terms_days)
    invoice.issued_at = timezone.now()
    invoice.hold_reasons = []
    # The customer's pay link: unguessable, revocable by replacing it (DESIGN.md §5.1 pay_url).
    invoice.pay_token = secrets.token_urlsafe(32)
    invoice.save(update_fields=["number", "status", "issue_date", "due_date", "issued_at", "hold_reasons", "pay_token"])
    hooks.invoice_issued(invoice=invoice)  # e.g. unapplied cash on the customer's account pays it now
    event_publish("invoice.issued", invoice_event_data(invoice), key=f"invoice.issued:{invoice.pk}")
    _after_issue(invoice)
    return invoice


def invoice_event_data(invoice: Invoice) -> dict:
    """What an invoice event tells receivers: its identity, dates and amounts (GET /invoices/{id} has the rest)."""
    c = invoice.currency
    return {
        "invoice": {
            "id": str(invoice.pk),
            "number": invoice.number,
            "status": invoice.status,
            "contract": invoice.contract.number,
            "customer": invoice.customer.external_id,
            "currency": c,
            "issue_date": invoice.issue_date.isoformat() if invoice.issue_date else None,
            "due_date": invoice.due_date.isoformat() if invoice.due_date else None,
            "subtotal": str(quantize(invoice.subtotal, c)),
            "tax_total": str(quantize(invoice.tax_total, c)),
            "total": str(quantize(invoice.total, c)),
            "amount_due": str(quantize(invoice.amount_due, c)),
            # What is still owed: the amount due less credit notes and payments.
            "amount_open": str(
                quantize(max(invoice.amount_due - invoice.credited_total - invoice.amount_paid, ZERO), c)
            ),
        }
    }


def _after_issue(invoice: Invoice) -> None:
    """An issued invoice leaves: its e-mail is queued in the issuing transaction (sent by a task
    on commit, PDF rendered there), and a pre-send review task it had is resolved."""
    from billing.services.delivery import invoice_send

    review_tasks_resolve_for_invoice(
        invoice_id=invoice.pk,
        kind=ReviewTaskKind.PRESEND_CHECK,
        resolution=f"Issued as {invoice.number}; the checks pass now.",
    )
    if invoice.customer.billing_emails:
        invoice_send(invoice_id=invoice.pk)


def invoice_issue(*, invoice_id: int, issue_date: date | None = None) -> Invoice:
    """Issue a draft: next gapless number of its issuing entity, issue and due dates.

    Refused (ValidationError) while a pre-send check fails; the draft keeps its hold reasons.
    """
    with transaction.atomic():
        invoice = (
            Invoice.objects.select_for_update(of=("self",))
            .select_related("contract", "issuing_entity", "version")
            .get(pk=invoice_id)
        )
        if invoice.status != InvoiceStatus.DRAFT:
            raise ValidationError(
                {"status": [f"Invoice {invoice.number} is already {invoice.status}; only drafts can be issued."]}
            )
        day = issue_date or tenant_today()
        _draft_totals_refresh(invoice, on=day)
        problems = invoice_presend_problems(invoice)
        if problems:
            raise ValidationError({"invoice": problems})
        return _issue(invoice, issue_date=day)


def _draft_totals_refresh(invoice: Invoice, *, on: date) -> None:
    """Recompute a draft's discounts and tax for the day it is issued: the rates in force that day
    and the customer's tax status as it is now (e.g. a VAT id added since the draft was made)."""
    invoice_adjustments_apply(invoice=invoice, tax_date=on)


def _draft_terms_refresh(invoice: Invoice) -> None:
    """Take the terms the contract has now for the draft's reference date (a person fixed the
    contract, e.g. added the PO with an amendment). Drafts only; lines and currency stay as billed.
    A PO recorded on the draft itself is kept when the contract has none."""
    from billing.services.checks import invoice_terms_version

    version = invoice_terms_version(invoice)
    if version is None:
        return
    invoice.version = version
    invoice.payment_terms_days = version.payment_terms_days
    invoice.po_number = version.po_number or invoice.po_number
    invoice.issuing_entity_id = version.issuing_entity_id_for(invoice.contract)
    invoice.save(update_fields=["version", "payment_terms_days", "po_number", "issuing_entity"])


def _draft_for_update(invoice_id: int) -> Invoice:
    invoice = (
        Invoice.objects.select_for_update(of=("self",))
        .select_related("contract", "contract__issuing_entity", "issuing_entity", "version", "customer")
        .get(pk=invoice_id)
    )
    if invoice.status != InvoiceStatus.DRAFT:
        raise ValidationError(
            {
                "status": [
                    f"Invoice {invoice.number} is already {invoice.get_status_display().lower()}; only drafts can be approved."
                ]
            }
        )
    return invoice


@dataclass
class ApproveResult:
    invoice: Invoice
    problems: list[str]

    @property
    def issued(self) -> bool:
        return not self.problems


def _holds_refresh(invoice: Invoice, *, quiet: bool = False) -> list[str]:
    """A locked draft against the contract and customer as they are now: terms re-read, totals
    recomputed, checks run. The hold reasons follow what is wrong now, never what was wrong when
    the draft was made; a draft that passes is released (its pre-send task resolved) and waits for
    approval. Nothing is issued. ``quiet``: a draft still held for the same reasons keeps its review
    task as it is (a change elsewhere on the contract does not reopen a task someone resolved)."""
    _draft_terms_refresh(invoice)
    _draft_totals_refresh(invoice, on=max(tenant_today(), invoice.billing_date))
    problems = invoice_presend_problems(invoice)
    if problems:
        if not quiet or problems != invoice.hold_reasons:
            invoice_hold(invoice=invoice, problems=problems)
    elif invoice.hold_reasons:
        invoice.hold_reasons = []
        invoice.save(update_fields=["hold_reasons"])
        review_tasks_resolve_for_invoice(
            invoice_id=invoice.pk,
            kind=ReviewTaskKind.PRESEND_CHECK,
            resolution="Every pre-send check passes now; the draft waits for approval.",
        )
    return problems


def invoice_recheck(*, invoice_id: int) -> list[str]:
    """Re-read the contract's terms into a draft and run the checks again: the hold reasons (and
    the review task) follow what is wrong now. Returns the problems; nothing is issued."""
    with transaction.atomic():
        return _holds_refresh(_draft_for_update(invoice_id))


def held_drafts_recheck(*, contract_id: int | None = None, customer_id: int | None = None) -> int:
    """Check the held drafts of a contract or a customer again after it changed (an amendment with
    the PO, a billing e-mail added): a draft never keeps showing a reason that no longer holds.
    Registered with ``contracts.hooks``; runs in the transaction of the change. Returns how many
    drafts were released."""
    drafts = Invoice.objects.filter(status=InvoiceStatus.DRAFT).exclude(hold_reasons=[])
    if contract_id is not None:
        drafts = drafts.filter(contract_id=contract_id)
    if customer_id is not None:
        drafts = drafts.filter(customer_id=customer_id)
    released = 0
    for invoice_id in drafts.order_by("pk").values_list("pk", flat=True):
        if not _holds_refresh(_draft_for_update(invoice_id), quiet=True):
            released += 1
    return released


def held_drafts_recheck_for_discount(*, discount) -> int:
    """A discount revoked, ended or extended: its held drafts are checked again (after their totals
    were recomputed by ``invoice_discounts_reapply_for``)."""
    if discount.contract_id:
        return held_drafts_recheck(contract_id=discount.contract_id)
    return held_drafts_recheck(customer_id=discount.customer_id)


def invoice_approve(*, invoice_id: int, user=None, issue_date: date | None = None) -> ApproveResult:
    """Finance approves a draft: take the contract's current terms, run the checks, and issue and
    send it when they pass. When they fail the draft stays held with the reasons (nothing raised,
    so a bulk approval reports each invoice it could not issue)."""
    with transaction.atomic():
        invoice = _draft_for_update(invoice_id)
        _draft_terms_refresh(invoice)
        day = issue_date or tenant_today()
        _draft_totals_refresh(invoice, on=day)
        problems = invoice_presend_problems(invoice)
        if problems:
            invoice_hold(invoice=invoice, problems=problems)
            return ApproveResult(invoice=invoice, problems=problems)
        _issue(invoice, issue_date=day)
    return ApproveResult(invoice=invoice, problems=[])


def invoice_po_record(*, invoice_id: int, po_number: str, user=None) -> Invoice:
    """Record the customer's PO number on a draft (when the contract has none for this invoice)."""
    po_number = (po_number or "").strip()
    if not po_number:
        raise ValidationError({"po_number": ["Enter the PO number the customer gave you."]})
    if len(po_number) > 100:
        raise ValidationError({"po_number": ["A PO number has at most 100 characters."]})
    with transaction.atomic():
        invoice = _draft_for_update(invoice_id)
        invoice.po_number = po_number
        invoice.save(update_fields=["po_number"])
        if invoice.hold_reasons:
            _holds_refresh(invoice)  # "requires a PO" must not outlive the PO
    return invoice


def credit_note_create(
    *, invoice_id: int, amount: Decimal | str, reason: str, issue_date: date | None = None, created_by=None
) -> CreditNote:
    """Credit (part of) an issued invoice; the credits of an invoice never exceed its total.

    The invoice row is locked first, so two concurrent credit notes see each other's amounts.
    A credit note that brings the credited total to the invoice total voids the invoice. It reverses
    the same share of the invoice's tax, per rate; the last one reverses exactly what is left.
    """
    reason = (reason or "").strip()
    if not reason:
        raise ValidationError({"reason": ["Say why the invoice is credited; it is printed on the credit note."]})
    with transaction.atomic():
        invoice = Invoice.objects.select_for_update(of=("self",)).select_related("issuing_entity").get(pk=invoice_id)
        if invoice.status in (InvoiceStatus.DRAFT, InvoiceStatus.VOID):
            raise ValidationError({"invoice": [f"Only issued invoices can be credited; this one is {invoice.status}."]})
        value = quantize(to_decimal(amount, "amount"), invoice.currency)
        if value <= 0:
            raise ValidationError({"amount": ["A credit note amount must be greater than zero."]})
        already = CreditNote.objects.filter(invoice=invoice).aggregate(s=Sum("amount"))["s"] or ZERO
        remaining = quantize(invoice.total - already, invoice.currency)
        if value > remaining:
            raise ValidationError(
                {
                    "amount": [
                        f"{value} {invoice.currency} is more than the {remaining} {invoice.currency} left to credit on {invoice.number}."
                    ]
                }
            )
        day = issue_date or tenant_today()
        # Payments beyond what stays collectible go back to the customer's account first.
        hooks.invoice_crediting(invoice=invoice, amount=value, on=day)
        final = already + value == invoice.total
        earlier = [row for n in CreditNote.objects.filter(invoice=invoice) for row in n.tax_lines]
        tax_lines = credit_tax_reversal(
            tax_lines=invoice.tax_lines,
            invoice_total=invoice.total,
            credit_amount=value,
            already=earlier,
            final=final,
            currency=invoice.currency,
        )
        note = CreditNote.objects.create(
            invoice=invoice,
            issue_date=day,
            currency=invoice.currency,
            amount=value,
            tax_amount=quantize(sum((Decimal(t["amount"]) for t in tax_lines), ZERO), invoice.currency),
            tax_lines=tax_lines,
            reason=reason[:500],
            created_by=created_by,
            number=document_number_assign(
                issuing_entity_id=invoice.issuing_entity_id,
                prefix=invoice.issuing_entity.invoice_prefix,
                kind=NumberSequenceKind.CREDIT_NOTE,
                issue_date=day,
            ),
        )
        invoice.credited_total = already + value
        fields = ["credited_total"]
        if invoice.credited_total == invoice.total:
            invoice.status = InvoiceStatus.VOID
            fields.append("status")
        invoice.save(update_fields=fields)
        event_publish(
            "credit_note.issued",
            {
                "credit_note": {
                    "id": str(note.pk),
                    "number": note.number,
                    "invoice": invoice.number,
                    "currency": note.currency,
                    "amount": str(note.amount),
                    "tax_amount": str(note.tax_amount),
                    "issue_date": note.issue_date.isoformat(),
                    "reason": note.reason,
                }
            },
            key=f"credit_note.issued:{note.pk}",
        )
    return note


OVERDUE_LOOKBACK_DAYS = 30


def invoices_overdue_publish(*, as_of: date) -> int:
    """Announce ``invoice.overdue`` for every open invoice whose due date has passed by ``as_of``
    (once per invoice: the event key). Only invoices that fell due in the last 30 days, so a new
    endpoint is not flooded with the whole overdue history."""
    from revexos.webhooks.publish import events_publish_many

    with transaction.atomic():
        invoices = list(
            Invoice.objects.filter(
                status__in=[InvoiceStatus.ISSUED, InvoiceStatus.SENT, InvoiceStatus.PARTIALLY_PAID],
                due_date__lt=as_of,
                due_date__gte=as_of - timedelta(days=OVERDUE_LOOKBACK_DAYS),
            )
            .annotate(open_amount=F("amount_due") - F("credited_total") - F("amount_paid"))
            .filter(open_amount__gt=0)
            .select_related("contract", "customer")
        )
        if not invoices:
            return 0
        events = events_publish_many(
            "invoice.overdue",
            [(invoice_event_data(i), f"invoice.overdue:{i.pk}") for i in invoices],
        )
    return len(events)
