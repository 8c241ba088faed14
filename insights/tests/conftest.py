"""Leakage test fixtures: tasks never reach the broker, and helpers that plant invoices."""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal

import pytest


@pytest.fixture(autouse=True)
def enqueued(monkeypatch):
    sent: list[tuple[str, dict]] = []

    def record(task_name, *, kwargs, schema):
        sent.append((task_name, kwargs))

    monkeypatch.setattr("billing.services.enqueue.task_send", record)
    return sent


def issued_invoice(
    contract,
    *lines: dict,
    billing_date: date,
    payment_terms_days: int | None = None,
    po_number: str | None = None,
    issuing_entity=None,
):
    """An issued invoice as another system (or a person) made it: the lines exactly as given."""
    from billing.models import Invoice, InvoiceLine
    from billing.tests.builders import unique

    version = contract.versions.order_by("effective_from").first()
    terms = version.payment_terms_days if payment_terms_days is None else payment_terms_days
    invoice = Invoice.objects.create(
        contract=contract,
        customer=contract.customer,
        issuing_entity=issuing_entity or contract.issuing_entity,
        version=version,
        currency=version.currency,
        billing_date=billing_date,
        payment_terms_days=terms,
        po_number=version.po_number if po_number is None else po_number,
    )
    total = Decimal(0)
    for position, spec in enumerate(lines):
        spec = dict(spec)
        spec.setdefault("billing_key", unique("manual"))
        spec.setdefault("description", spec.get("kind", "line"))
        InvoiceLine.objects.create(invoice=invoice, contract=contract, position=position, **spec)
        total += spec.get("amount", Decimal(0))
    Invoice.objects.filter(pk=invoice.pk).update(
        status="issued",
        number=unique("INV"),
        issue_date=billing_date,
        due_date=billing_date + timedelta(days=terms),
        subtotal=total,
        total=total,
        amount_due=total,
    )
    invoice.refresh_from_db()
    return invoice
