"""Builders for collections tests: customers and issued invoices of a given amount and date."""

from __future__ import annotations

import uuid
from datetime import date
from decimal import Decimal

from billing.models import Invoice, InvoiceLine


def customer(currency: str = "USD", **kwargs):
    from contracts.tests.factories import CustomerFactory

    return CustomerFactory(currency=currency, **kwargs)


def issued_invoice(
    cust, amount: str | Decimal, *, issued: date, terms: int = 30, currency: str | None = None, contract=None
) -> Invoice:
    """An invoice of ``amount`` issued on ``issued`` through billing's own issue path (so the hooks run)."""
    from billing.services.invoicing import invoice_issue
    from contracts.tests.factories import ContractFactory

    currency = currency or cust.currency
    if contract is None:
        contract = ContractFactory(
            customer=cust,
            number=f"C-{uuid.uuid4().hex[:8]}",
            start_date=date(2020, 1, 1),
            end_date=date(2030, 12, 31),
            version__currency=currency,
            version__payment_terms_days=terms,
        )
    version = contract.versions.order_by("-effective_from").first()
    value = Decimal(str(amount))
    invoice = Invoice.objects.create(
        contract=contract,
        customer=cust,
        issuing_entity=contract.issuing_entity,
        version=version,
        currency=currency,
        billing_date=issued,
        payment_terms_days=version.payment_terms_days,
        subtotal=value,
        total=value,
        amount_due=value,
    )
    InvoiceLine.objects.create(
        invoice=invoice,
        contract=contract,
        kind="fixed_fee",
        description="Services",
        quantity=Decimal(1),
        unit_amount=value,
        amount=value,
        billing_key=f"test:{uuid.uuid4().hex}",
    )
    return invoice_issue(invoice_id=invoice.pk, issue_date=issued)


def reload(invoice: Invoice) -> Invoice:
    return Invoice.objects.get(pk=invoice.pk)
