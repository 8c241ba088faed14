"""Collections pages and actions. Logic lives in services and selectors; views translate HTTP."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.http import Http404
from django.shortcuts import redirect
from django.views.decorators.http import require_POST

from billing.models import Invoice
from contracts.wire import FieldErrors, Reader
from revexos.accounts.decorators import requires
from revexos.dates import tenant_today


def _errors(exc: ValidationError) -> str:
    if hasattr(exc, "message_dict"):
        return " ".join(m for msgs in exc.message_dict.values() for m in msgs)
    return " ".join(exc.messages)


def _to_invoice(invoice_id: int):
    return redirect("billing:invoice_detail", invoice_id=invoice_id)


def _invoice(invoice_id: int) -> Invoice:
    invoice = Invoice.objects.select_related("customer").filter(pk=invoice_id).first()
    if invoice is None:
        raise Http404("No such invoice.")
    return invoice


@require_POST
@requires("payments.manage")
def invoice_payment_record(request, invoice_id: int):
    """Finance records a bank transfer (or check, …) against this invoice."""
    from receivables.services.ledger import payment_record

    invoice = _invoice(invoice_id)
    errors = FieldErrors()
    r = Reader(request.POST, errors)
    amount = r.money("amount", required=True, positive=True)
    received_on = r.date("received_on") or tenant_today()
    method = r.choice(
        "method", ["bank_transfer", "check", "ach", "sepa_debit", "card", "other"], default="bank_transfer"
    )
    reference = r.text("reference", max_length=300)
    try:
        if received_on > tenant_today():
            errors.add("received_on", "The payment date is in the future.")
        errors.raise_if_any()
        result = payment_record(
            customer=invoice.customer,
            amount=amount,
            currency=invoice.currency,
            received_on=received_on,
            method=method,
            reference=reference,
            allocations=[(invoice, min(amount, invoice.amount_open))],
            source="ui",
            created_by=request.user,
        )
    except ValidationError as exc:
        messages.error(request, _errors(exc))
        return _to_invoice(invoice_id)
    payment = result.payment
    note = (
        f" {payment.unapplied:.2f} {payment.currency} stays on the customer's account." if payment.unapplied > 0 else ""
    )
    messages.success(request, f"Payment of {payment.amount} {payment.currency} recorded on {invoice.number}.{note}")
    return _to_invoice(invoice_id)


@require_POST
@requires("payments.manage")
def invoice_write_off(request, invoice_id: int):
    from receivables.services.ledger import invoice_write_off as write_off

    _invoice(invoice_id)
    errors = FieldErrors()
    r = Reader(request.POST, errors)
    amount: Decimal | None = r.money("amount", positive=True)
    try:
        errors.raise_if_any()
        row = write_off(invoice_id=invoice_id, amount=amount, reason=request.POST.get("reason", ""), user=request.user)
    except ValidationError as exc:
        messages.error(request, _errors(exc))
        return _to_invoice(invoice_id)
    messages.success(request, f"{row.amount} written off: {row.reason}")
    return _to_invoice(invoice_id)


def _parse_date(value: str | None) -> date | None:
    try:
        return date.fromisoformat(value) if value else None
    except ValueError:
        return None
