"""The wire form of payments, refunds and write-offs, and the one place it is validated.

Same conventions as ``contracts/wire.py`` (whose Reader this uses): money as decimal strings,
dates as YYYY-MM-DD, every problem reported by field path (``allocations.1.amount``) before
anything is written. References to customers and invoices are resolved here against the
database because the answer ("unknown invoice") belongs to the same field.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, timedelta
from decimal import Decimal
from typing import Any

from contracts.wire import FieldErrors, Reader
from receivables.models import PaymentMethod
from revexos.money import minor_units

MAX_ALLOCATIONS = 200
PAYMENT_FIELDS = (
    "customer",
    "amount",
    "currency",
    "received_on",
    "method",
    "reference",
    "external_id",
    "payer_name",
    "allocations",
    "notes",
)
EARLIEST = date(2000, 1, 1)


@dataclass
class CleanPayment:
    customer: Any
    amount: Decimal
    currency: str
    received_on: date
    method: str
    reference: str = ""
    external_id: str | None = None
    payer_name: str = ""
    notes: str = ""
    allocations: list[tuple[Any, Decimal]] | None = field(default=None)


def _customer(ref: Any):
    from django.db.models import Q

    from contracts.models import Customer

    if not isinstance(ref, (str, int)) or isinstance(ref, bool) or str(ref).strip() == "":
        return None
    text = str(ref).strip()
    cond = Q(external_id=text)
    if text.isdigit():
        cond |= Q(pk=int(text))
    return Customer.objects.filter(cond).first()


def _places_ok(value: Decimal, currency: str) -> bool:
    return max(0, -value.as_tuple().exponent) <= minor_units(currency)


def payment_read(data: Any, *, today: date) -> CleanPayment:
    """Read a posted payment (DESIGN.md §5.1); raises ValidationError by field."""
    from django.core.exceptions import ValidationError

    from receivables.services.ledger import invoice_lookup

    errors = FieldErrors()
    if not isinstance(data, dict):
        raise ValidationError({"body": ["Send a JSON object describing the payment."]})
    r = Reader(data, errors)
    r.unknown_keys(PAYMENT_FIELDS)
    customer = None
    if r.present("customer"):
        customer = _customer(r.raw("customer"))
        if customer is None:
            errors.add("customer", f"No customer {r.raw('customer')!r}; name it by id or external_id.")
    else:
        errors.add("customer", "This field is required.")
    currency = r.currency("currency", required=True)
    amount = r.money("amount", required=True, positive=True)
    if amount is not None and currency and not _places_ok(amount, currency):
        errors.add("amount", f"{currency} amounts have at most {minor_units(currency)} decimal places.")
    received_on = r.date("received_on", required=True)
    if received_on is not None and received_on > today + timedelta(days=1):
        errors.add("received_on", f"{received_on} is in the future; record a payment once it is received.")
    elif received_on is not None and received_on < EARLIEST:
        errors.add("received_on", f"{received_on} is too far in the past.")
    method = r.choice("method", PaymentMethod.values, required=True, what="payment method")
    reference = r.text("reference", max_length=300)
    external_id = r.text("external_id", max_length=200) or None
    payer_name = r.text("payer_name", max_length=200)
    notes = r.text("notes", max_length=2000)
    allocations = None
    raw = data.get("allocations")
    if raw is not None:
        if not isinstance(raw, list):
            errors.add("allocations", 'Send a list such as [{"invoice": "INV-2026-000042", "amount": "1000.00"}].')
        elif len(raw) > MAX_ALLOCATIONS:
            errors.add("allocations", f"At most {MAX_ALLOCATIONS} allocations per payment.")
        else:
            allocations = []
            for index, item in enumerate(raw):
                prefix = f"allocations.{index}."
                if not isinstance(item, dict):
                    errors.add(f"allocations.{index}", 'Send {"invoice": "…", "amount": "…"}.')
                    continue
                ir = Reader(item, errors, prefix)
                ir.unknown_keys(("invoice", "amount"))
                value = ir.money("amount", required=True, positive=True)
                if value is not None and currency and not _places_ok(value, currency):
                    errors.add(
                        f"{prefix}amount", f"{currency} amounts have at most {minor_units(currency)} decimal places."
                    )
                    value = None
                ref = item.get("invoice")
                invoice = (
                    invoice_lookup(ref=str(ref)) if isinstance(ref, (str, int)) and not isinstance(ref, bool) else None
                )
                if invoice is None:
                    errors.add(
                        f"{prefix}invoice",
                        f"No invoice {ref!r}; name it by number or id."
                        if ref not in (None, "")
                        else "This field is required.",
                    )
                elif customer is not None and invoice.customer_id != customer.pk:
                    errors.add(f"{prefix}invoice", f"Invoice {invoice.number} belongs to another customer.")
                elif currency and invoice.currency != currency:
                    errors.add(
                        f"{prefix}invoice",
                        f"Invoice {invoice.number} is in {invoice.currency}; the payment is in {currency}.",
                    )
                if invoice is not None and value is not None:
                    allocations.append((invoice, value))
            if amount is not None and allocations and not errors:
                total = sum((v for _, v in allocations), Decimal(0))
                if total > amount:
                    errors.add("allocations", f"The allocations add up to {total}, more than the payment's {amount}.")
    errors.raise_if_any()
    return CleanPayment(
        customer=customer,
        amount=amount,
        currency=currency,
        received_on=received_on,
        method=method,
        reference=reference,
        external_id=external_id,
        payer_name=payer_name,
        notes=notes,
        allocations=allocations,
    )


@dataclass
class CleanRefund:
    amount: Decimal
    reason: str
    refunded_on: date | None


def refund_read(data: Any, *, currency: str, today: date) -> CleanRefund:
    from django.core.exceptions import ValidationError

    if not isinstance(data, dict):
        raise ValidationError({"body": ['Send {"amount": "200.00", "reason": "…"}.']})
    errors = FieldErrors()
    r = Reader(data, errors)
    r.unknown_keys(("amount", "reason", "refunded_on"))
    amount = r.money("amount", required=True, positive=True)
    if amount is not None and not _places_ok(amount, currency):
        errors.add("amount", f"{currency} amounts have at most {minor_units(currency)} decimal places.")
    reason = r.text("reason", max_length=500, required=True)
    refunded_on = r.date("refunded_on")
    if refunded_on is not None and refunded_on > today + timedelta(days=1):
        errors.add("refunded_on", f"{refunded_on} is in the future.")
    errors.raise_if_any()
    return CleanRefund(amount=amount, reason=reason, refunded_on=refunded_on)


def payment_to_wire(payment) -> dict:
    from revexos.money import quantize

    c = payment.currency
    return {
        "id": str(payment.pk),
        "customer": payment.customer.external_id,
        "amount": str(quantize(payment.amount, c)),
        "currency": c,
        "received_on": payment.received_on.isoformat(),
        "method": payment.method,
        "reference": payment.reference,
        "external_id": payment.external_id,
        "payer_name": payment.payer_name,
        "source": payment.source,
        "allocated": str(quantize(payment.allocated, c)),
        "refunded": str(quantize(payment.refunded, c)),
        "unapplied": str(quantize(payment.unapplied, c)),
        "allocations": [
            {
                "invoice": a.invoice.number,
                "amount": str(quantize(a.amount, c)),
                "applied_on": a.applied_on.isoformat(),
                "kind": a.kind,
            }
            for a in payment.allocations.all()
        ],
        "refunds": [
            {
                "id": str(r.pk),
                "kind": r.kind,
                "amount": str(quantize(r.amount, c)),
                "refunded_on": r.refunded_on.isoformat(),
                "reason": r.reason,
            }
            for r in payment.refunds.all()
        ],
    }
