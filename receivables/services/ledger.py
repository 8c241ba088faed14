"""The payments ledger: record, allocate, refund, write off (DESIGN.md §4 Payments).

Rules, in one place:

- A payment is allocated to the invoices named, or else to the customer's open invoices in its
  currency, oldest due date first. What is left is unapplied cash on the customer's account and
  pays the next invoices when they are issued (``unapplied_cash_apply_at_issue``, called by billing
  in the issuing transaction).
- Refunds and chargebacks take back unapplied cash first, then reverse allocations newest first;
  the invoices they touch reopen. A credit note that leaves an invoice overpaid sends the excess
  back to the customer's account the same way.
- Writing off needs a reason (and the finance role, checked by the caller).

Locks: a service locks the payment row first, then the invoices by id, so two services never wait
on each other in opposite orders. The stored sums (``Payment.allocated/refunded``,
``Invoice.amount_paid/written_off``) move with ``F()`` updates under those locks; PostgreSQL
checks ``Payment.unapplied >= 0`` and ``Invoice.amount_open >= 0`` on every write, so a bug or a
race that would overspend a payment or overpay an invoice fails instead of being stored.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from decimal import Decimal

from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.db.models import F, Q, Sum
from django.utils import timezone

from billing.models import Invoice, InvoiceStatus
from receivables.models import (
    Allocation,
    AllocationKind,
    Payment,
    PaymentSource,
    Refund,
    RefundKind,
    WriteOff,
)
from revexos.money import quantize
from revexos.parsing import parse_id

ZERO = Decimal("0")
RECEIVABLE = (InvoiceStatus.ISSUED, InvoiceStatus.SENT, InvoiceStatus.PARTIALLY_PAID, InvoiceStatus.PAID)


def _today() -> date:
    from revexos.dates import tenant_today

    return tenant_today()


# --------------------------------------------------------------------------- invoice state


def invoice_payment_sync(*, invoice_id: int, on: date | None = None) -> Invoice:
    """Bring an invoice's status and paid date in line with its amounts (after any ledger change).

    paid (nothing open, something paid) → status ``paid`` and ``paid_on``; some paid → ``partially
    paid``; nothing paid → back to ``sent`` (or ``issued`` if never e-mailed). Void stays void.
    """
    invoice = Invoice.objects.get(pk=invoice_id)
    if invoice.status in (InvoiceStatus.DRAFT, InvoiceStatus.VOID):
        return invoice
    if invoice.amount_open <= 0 and invoice.amount_paid > 0:
        status = InvoiceStatus.PAID
    elif invoice.amount_paid > 0:
        status = InvoiceStatus.PARTIALLY_PAID
    else:
        status = InvoiceStatus.SENT if invoice.sent_at else InvoiceStatus.ISSUED
    fields: dict = {}
    if status != invoice.status:
        fields["status"] = status
    if status == InvoiceStatus.PAID:
        if invoice.paid_on is None:
            last = (
                Allocation.objects.filter(invoice_id=invoice_id)
                .order_by("-applied_on")
                .values_list("applied_on", flat=True)
                .first()
            )
            fields["paid_on"] = on or last or _today()
            fields["paid_at"] = timezone.now()
    elif invoice.paid_on is not None:
        fields["paid_on"] = None
        fields["paid_at"] = None
    if fields:
        Invoice.objects.filter(pk=invoice_id).update(**fields)
        invoice.refresh_from_db()
        if fields.get("paid_on"):
            _invoice_paid_publish(invoice)
    return invoice


def _invoice_paid_publish(invoice: Invoice) -> None:
    """Tell webhook endpoints the invoice is paid in full (once per time it becomes paid)."""
    from billing.services.invoicing import invoice_event_data
    from revexos.webhooks.publish import event_publish

    data = invoice_event_data(invoice)
    data["invoice"].update({"amount_paid": str(invoice.amount_paid), "paid_on": invoice.paid_on.isoformat()})
    event_publish("invoice.paid", data, key=f"invoice.paid:{invoice.pk}:{invoice.paid_on.isoformat()}")


def _allocate(*, payment: Payment, invoice: Invoice, amount: Decimal, on: date, reason: str = "") -> Allocation:
    allocation = Allocation.objects.create(
        payment=payment, invoice=invoice, amount=amount, applied_on=on, reason=reason[:300]
    )
    Payment.objects.filter(pk=payment.pk).update(allocated=F("allocated") + amount)
    Invoice.objects.filter(pk=invoice.pk).update(amount_paid=F("amount_paid") + amount)
    invoice_payment_sync(invoice_id=invoice.pk, on=on)
    return allocation


def _reverse(*, allocation: Allocation, amount: Decimal, on: date, reason: str, refund: Refund | None = None) -> None:
    Allocation.objects.create(
        payment_id=allocation.payment_id,
        invoice_id=allocation.invoice_id,
        kind=AllocationKind.REVERSAL,
        amount=-amount,
        reverses=allocation,
        refund=refund,
        applied_on=on,
        reason=reason[:300],
    )
    Allocation.objects.filter(pk=allocation.pk).update(reversed_amount=F("reversed_amount") + amount)
    Payment.objects.filter(pk=allocation.payment_id).update(allocated=F("allocated") - amount)
    Invoice.objects.filter(pk=allocation.invoice_id).update(amount_paid=F("amount_paid") - amount)
    invoice_payment_sync(invoice_id=allocation.invoice_id)


def _open_invoices_locked(*, customer_id: int, currency: str, ids: list[int] | None = None) -> list[Invoice]:
    """Open invoices of a customer in a currency, locked, oldest due date first."""
    qs = Invoice.objects.filter(customer_id=customer_id, currency=currency, status__in=RECEIVABLE, amount_open__gt=0)
    if ids is not None:
        qs = Invoice.objects.filter(pk__in=ids)
    # Lock in id order (deadlock-free), then order for allocation.
    locked = list(qs.select_for_update(of=("self",)).order_by("pk"))
    return sorted(locked, key=lambda i: (i.due_date or date.max, i.issue_date or date.max, i.pk))


# --------------------------------------------------------------------------- payments


@dataclass(frozen=True)
class AllocationRequest:
    invoice: Invoice
    amount: Decimal
    index: int


@dataclass
class PaymentResult:
    payment: Payment
    created: bool


def payment_record(
    *,
    customer,
    amount: Decimal,
    currency: str,
    received_on: date,
    method: str,
    reference: str = "",
    external_id: str | None = None,
    payer_name: str = "",
    allocations: list[tuple[Invoice, Decimal]] | None = None,  # None: oldest due first; []: on account
    source: str = PaymentSource.API,
    charge_id: str = "",
    notes: str = "",
    created_by=None,
) -> PaymentResult:
    """Record a payment and allocate it (explicitly, or oldest due first); idempotent by ``external_id``.

    Inputs are already read (``receivables.wire``); this checks what needs the database: the
    invoices' customer, currency and open amounts, under row locks, and that the allocations fit
    in the payment. Anything wrong raises ValidationError naming the field; nothing is stored.
    """
    if external_id:
        existing = Payment.objects.filter(external_id=external_id).first()
        if existing is not None:
            return PaymentResult(payment=existing, created=False)
    amount = quantize(amount, currency)
    try:
        with transaction.atomic():
            payment = Payment.objects.create(
                customer=customer,
                currency=currency,
                amount=amount,
                received_on=received_on,
                method=method,
                reference=reference[:300],
                payer_name=payer_name[:200],
                external_id=external_id or None,
                source=source,
                charge_id=charge_id[:100],
                notes=notes,
                created_by=created_by,
            )
            _payment_allocate(payment=payment, allocations=allocations)
    except IntegrityError as exc:
        if external_id and "external_id" in str(exc):
            # The same payment arrived concurrently (a redelivered webhook); the first one won.
            return PaymentResult(payment=Payment.objects.get(external_id=external_id), created=False)
        raise
    payment.refresh_from_db()
    return PaymentResult(payment=payment, created=True)


def _payment_allocate(*, payment: Payment, allocations: list[tuple[Invoice, Decimal]] | None) -> None:
    on = payment.received_on
    if allocations is not None and not allocations:
        return  # "allocations": [] — kept on account on purpose (a prepayment)
    if allocations:
        errors: dict[str, list[str]] = {}
        ids = sorted({inv.pk for inv, _ in allocations})
        locked = {
            inv.pk: inv
            for inv in _open_invoices_locked(customer_id=payment.customer_id, currency=payment.currency, ids=ids)
        }
        wanted: dict[int, Decimal] = {}
        for index, (ref, value) in enumerate(allocations):
            invoice = locked[ref.pk]
            name = f"allocations.{index}"
            if invoice.customer_id != payment.customer_id:
                errors.setdefault(f"{name}.invoice", []).append(
                    f"Invoice {invoice.number} belongs to another customer; a payment pays only its own customer's invoices."
                )
                continue
            if invoice.currency != payment.currency:
                errors.setdefault(f"{name}.invoice", []).append(
                    f"Invoice {invoice.number} is in {invoice.currency}, the payment in {payment.currency}."
                )
                continue
            if invoice.status not in RECEIVABLE:
                errors.setdefault(f"{name}.invoice", []).append(
                    f"Invoice {invoice.number or invoice.pk} is {invoice.get_status_display().lower()}; only issued invoices take payments."
                )
                continue
            value = quantize(value, payment.currency)
            wanted[invoice.pk] = wanted.get(invoice.pk, ZERO) + value
            if wanted[invoice.pk] > invoice.amount_open:
                errors.setdefault(f"{name}.amount", []).append(
                    f"{value} is more than the {quantize(invoice.amount_open, invoice.currency)} {invoice.currency} open on {invoice.number}."
                )
        total = sum(wanted.values(), ZERO)
        if total > payment.amount:
            errors.setdefault("allocations", []).append(
                f"The allocations add up to {total} {payment.currency}, more than the payment's {payment.amount}."
            )
        if errors:
            raise ValidationError(errors)
        for ref, value in allocations:
            invoice = locked[ref.pk]
            _allocate(
                payment=payment,
                invoice=invoice,
                amount=quantize(value, payment.currency),
                on=max(on, invoice.issue_date),
            )
        return
    left = payment.amount
    for invoice in _open_invoices_locked(customer_id=payment.customer_id, currency=payment.currency):
        if left <= 0:
            break
        take = min(left, invoice.amount_open)
        if take > 0:
            _allocate(payment=payment, invoice=invoice, amount=take, on=max(on, invoice.issue_date))
            left -= take


def payment_allocate(*, payment_id: int, allocations: list[tuple[Invoice, Decimal]] | None = None) -> Payment:
    """Apply a payment's unapplied cash now: to the invoices named, or oldest due first."""
    with transaction.atomic():
        payment = Payment.objects.select_for_update(of=("self",)).get(pk=payment_id)
        if payment.unapplied <= 0:
            raise ValidationError({"payment": ["Nothing of this payment is left to allocate."]})
        if allocations:
            total = sum((quantize(v, payment.currency) for _, v in allocations), ZERO)
            if total > payment.unapplied:
                raise ValidationError(
                    {
                        "allocations": [
                            f"The allocations add up to {total} {payment.currency}, more than the {quantize(payment.unapplied, payment.currency)} unapplied."
                        ]
                    }
                )
            _payment_allocate(payment=payment, allocations=allocations)
        else:
            left = payment.unapplied
            for invoice in _open_invoices_locked(customer_id=payment.customer_id, currency=payment.currency):
                if left <= 0:
                    break
                take = min(left, invoice.amount_open)
                _allocate(payment=payment, invoice=invoice, amount=take, on=max(_today(), invoice.issue_date))
                left -= take
    payment.refresh_from_db()
    return payment


def unapplied_cash_apply_at_issue(*, invoice: Invoice) -> Decimal:
    """Billing's "invoice issued" hook: the customer's unapplied cash in the invoice's currency pays
    it, oldest payment first, dated the issue date. Returns the amount applied."""
    candidates = list(
        Payment.objects.select_for_update(of=("self",))
        .filter(customer_id=invoice.customer_id, currency=invoice.currency, unapplied__gt=0)
        .order_by("received_on", "pk")
    )
    if not candidates:
        return ZERO
    invoice.refresh_from_db(fields=["amount_open", "amount_paid", "status"])
    left = invoice.amount_open
    applied = ZERO
    for payment in candidates:
        if left <= 0:
            break
        take = min(left, payment.unapplied)
        _allocate(
            payment=payment, invoice=invoice, amount=take, on=invoice.issue_date, reason="Unapplied cash on account"
        )
        left -= take
        applied += take
    invoice.refresh_from_db()
    return applied


def unapplied_cash_apply_at_issue_many(*, invoices: list[Invoice]) -> Decimal:
    """The hook for a billing run's chunk: one query finds the customers with unapplied cash, and
    only their invoices go through ``unapplied_cash_apply_at_issue``."""
    holders = set(
        Payment.objects.filter(
            customer_id__in={i.customer_id for i in invoices},
            currency__in={i.currency for i in invoices},
            unapplied__gt=0,
        ).values_list("customer_id", "currency")
    )
    return sum(
        (
            unapplied_cash_apply_at_issue(invoice=invoice)
            for invoice in invoices
            if (invoice.customer_id, invoice.currency) in holders
        ),
        ZERO,
    )


# --------------------------------------------------------------------------- refunds


def payment_refund(
    *,
    payment_id: int,
    amount: Decimal,
    reason: str,
    refunded_on: date | None = None,
    kind: str = RefundKind.REFUND,
    external_id: str | None = None,
    created_by=None,
) -> tuple[Refund, bool]:
    """Give money back: unapplied cash first, then allocations newest first (invoices reopen).

    Idempotent by ``external_id`` (a Stripe refund or dispute id). Returns (refund, created).
    """
    reason = (reason or "").strip()
    if not reason:
        raise ValidationError({"reason": ["Say why the money goes back; it is kept with the refund."]})
    if external_id:
        existing = Refund.objects.filter(external_id=external_id).first()
        if existing is not None:
            return existing, False
    with transaction.atomic():
        payment = Payment.objects.select_for_update(of=("self",)).get(pk=payment_id)
        value = quantize(amount, payment.currency)
        if value <= 0:
            raise ValidationError({"amount": ["A refund amount must be greater than zero."]})
        refundable = quantize(payment.amount - payment.refunded, payment.currency)
        if value > refundable:
            raise ValidationError(
                {
                    "amount": [
                        f"{value} {payment.currency} is more than the {refundable} {payment.currency} left to refund on this payment."
                    ]
                }
            )
        day = refunded_on or _today()
        try:
            with transaction.atomic():
                refund = Refund.objects.create(
                    payment=payment,
                    kind=kind,
                    amount=value,
                    refunded_on=day,
                    reason=reason[:500],
                    external_id=external_id or None,
                    created_by=created_by,
                )
        except IntegrityError:
            return Refund.objects.get(external_id=external_id), False
        from_unapplied = min(value, max(payment.unapplied, ZERO))
        to_reverse = value - from_unapplied
        # Reversals first (they free allocated cash), then the refund itself leaves the payment.
        _reverse_newest_first(
            payment=payment, amount=to_reverse, on=day, reason=f"{refund.get_kind_display()}: {reason}", refund=refund
        )
        Payment.objects.filter(pk=payment.pk).update(refunded=F("refunded") + value)
    return refund, True


def _reverse_newest_first(
    *,
    payment: Payment,
    amount: Decimal,
    on: date,
    reason: str,
    refund: Refund | None = None,
    invoice_id: int | None = None,
) -> Decimal:
    left = amount
    allocations = Allocation.objects.filter(
        payment=payment, kind=AllocationKind.ALLOCATION, reversed_amount__lt=F("amount")
    )
    if invoice_id is not None:
        allocations = allocations.filter(invoice_id=invoice_id)
    allocations = list(allocations.order_by("-applied_on", "-id"))
    if allocations and invoice_id is None:
        list(
            Invoice.objects.select_for_update(of=("self",))
            .filter(pk__in={a.invoice_id for a in allocations})
            .order_by("pk")
        )
    for allocation in allocations:
        if left <= 0:
            break
        take = min(left, allocation.remaining)
        _reverse(allocation=allocation, amount=take, on=on, reason=reason, refund=refund)
        left -= take
    return amount - left


def invoice_crediting(*, invoice: Invoice, amount: Decimal, on: date) -> None:
    """Billing's credit-note hook (the invoice row is locked by billing): whatever the invoice would
    now hold beyond what stays collectible goes back — write-offs first (they were never cash),
    then payments, newest allocation first, to the customer's account as unapplied cash."""
    current = Invoice.objects.get(pk=invoice.pk)
    collectible_after = max(current.amount_due - current.credited_total - amount, ZERO)
    excess = current.amount_paid + current.written_off - collectible_after
    if excess > 0:
        _release_for_credit(current=current, excess=excess, on=on)
    # Write the new credited total now (billing writes the same value right after) so the status
    # follows it: a part-paid invoice whose remainder is credited reads as paid.
    Invoice.objects.filter(pk=current.pk).update(credited_total=F("credited_total") + amount)
    invoice_payment_sync(invoice_id=current.pk)


def _release_for_credit(*, current: Invoice, excess: Decimal, on: date) -> None:
    if current.written_off > 0:
        take = min(excess, current.written_off)
        WriteOff.objects.create(invoice=current, amount=-take, written_on=on, reason="Reduced by a credit note")
        Invoice.objects.filter(pk=current.pk).update(written_off=F("written_off") - take)
        excess -= take
    if excess <= 0:
        return
    allocations = list(
        Allocation.objects.filter(invoice=current, kind=AllocationKind.ALLOCATION, reversed_amount__lt=F("amount"))
        .select_related("payment")
        .order_by("-applied_on", "-id")
    )
    list(
        Payment.objects.select_for_update(of=("self",))
        .filter(pk__in={a.payment_id for a in allocations})
        .order_by("pk")
    )
    for allocation in allocations:
        if excess <= 0:
            break
        take = min(excess, allocation.remaining)
        _reverse(allocation=allocation, amount=take, on=on, reason="Credit note: back to the customer's account")
        excess -= take


# --------------------------------------------------------------------------- write-offs


def invoice_write_off(
    *, invoice_id: int, reason: str, amount: Decimal | None = None, on: date | None = None, user=None
) -> WriteOff:
    """Write off (part of) what is open on an invoice; the reason is kept with it."""
    reason = (reason or "").strip()
    if not reason:
        raise ValidationError({"reason": ["Say why this amount will not be collected; it is kept with the write-off."]})
    with transaction.atomic():
        invoice = Invoice.objects.select_for_update(of=("self",)).get(pk=invoice_id)
        if invoice.status not in RECEIVABLE:
            raise ValidationError(
                {"invoice": [f"Only issued invoices can be written off; this one is {invoice.status}."]}
            )
        open_amount = quantize(invoice.amount_open, invoice.currency)
        value = open_amount if amount is None else quantize(amount, invoice.currency)
        if value <= 0:
            raise ValidationError({"amount": ["Nothing to write off: the amount must be greater than zero."]})
        if value > open_amount:
            raise ValidationError(
                {
                    "amount": [
                        f"{value} {invoice.currency} is more than the {open_amount} {invoice.currency} open on {invoice.number}."
                    ]
                }
            )
        write_off = WriteOff.objects.create(
            invoice=invoice, amount=value, written_on=on or _today(), reason=reason[:500], created_by=user
        )
        Invoice.objects.filter(pk=invoice.pk).update(written_off=F("written_off") + value)
        invoice_payment_sync(invoice_id=invoice.pk)
    return write_off


# --------------------------------------------------------------------------- reads used by services


def customer_unapplied(*, customer_id: int) -> dict[str, Decimal]:
    rows = (
        Payment.objects.filter(customer_id=customer_id, unapplied__gt=0)
        .values("currency")
        .annotate(total=Sum("unapplied"))
        .order_by("currency")
    )
    return {r["currency"]: quantize(r["total"], r["currency"]) for r in rows}


def invoice_lookup(*, ref: str) -> Invoice | None:
    """An invoice by number or id (the API names invoices either way)."""
    ref = (ref or "").strip()
    if not ref:
        return None
    cond = Q(number=ref)
    pk = parse_id(ref)  # ASCII digits only: "³" is a digit to str.isdigit() but no id
    if pk is not None:
        cond |= Q(pk=pk)
    return Invoice.objects.filter(cond).first()
