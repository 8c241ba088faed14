"""The payments ledger: allocation order, partial payments, refunds newest first, unapplied cash
paying the next invoice at issue, credit notes and write-offs (DESIGN.md §4 Payments)."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction

from billing.models import Invoice, PaymentStatus
from receivables.models import Allocation, Payment
from receivables.services.ledger import (
    invoice_write_off,
    payment_record,
    payment_refund,
)
from receivables.tests.helpers import customer, issued_invoice, reload

pytestmark = pytest.mark.usefixtures("in_tenant_a")
D = Decimal


def pay(cust, amount, *, on=date(2026, 3, 10), **kwargs):
    return payment_record(
        customer=cust,
        amount=D(amount),
        currency=kwargs.pop("currency", cust.currency),
        received_on=on,
        method="bank_transfer",
        **kwargs,
    ).payment


def test_a_payment_without_allocations_pays_the_oldest_due_first_and_a_refund_reopens_the_newest():
    cust = customer()
    first = issued_invoice(cust, "1000.00", issued=date(2026, 1, 5), terms=30)  # due 4 Feb
    second = issued_invoice(cust, "700.00", issued=date(2026, 2, 1), terms=30)  # due 3 Mar

    payment = pay(cust, "1500.00")

    first, second = reload(first), reload(second)
    assert first.amount_paid == D("1000.00") and first.amount_open == 0
    assert first.status == "paid" and first.paid_on == date(2026, 3, 10)
    assert first.payment_status(date(2026, 3, 10)) == PaymentStatus.PAID
    assert second.amount_paid == D("500.00") and second.amount_open == D("200.00")
    assert second.status == "partially_paid"
    assert payment.unapplied == 0

    payment_refund(payment_id=payment.pk, amount=D("300.00"), reason="Goodwill", refunded_on=date(2026, 3, 12))

    first, second = reload(first), reload(second)
    assert second.amount_open == D("500.00") and second.amount_paid == D("200.00")
    assert first.amount_open == 0, "the refund reverses the newest allocation, not the oldest"
    payment.refresh_from_db()
    assert payment.refunded == D("300.00") and payment.allocated == D("1200.00") and payment.unapplied == 0
    reversal = Allocation.objects.get(payment=payment, kind="reversal")
    assert reversal.invoice_id == second.pk and reversal.amount == D("-300.00")


def test_an_overpayment_is_unapplied_cash_that_pays_the_next_invoice_at_issue():
    cust = customer()
    invoice = issued_invoice(cust, "400.00", issued=date(2026, 2, 1))
    payment = pay(cust, "1000.00")
    assert reload(invoice).status == "paid"
    assert payment.unapplied == D("600.00")

    later = issued_invoice(cust, "750.00", issued=date(2026, 4, 1))

    later = reload(later)
    assert later.amount_paid == D("600.00") and later.amount_open == D("150.00")
    assert later.status == "partially_paid"
    payment.refresh_from_db()
    assert payment.unapplied == 0
    allocation = Allocation.objects.get(invoice=later)
    assert allocation.applied_on == date(2026, 4, 1), "dated the issue date, for aging as of past dates"


def test_unapplied_cash_never_pays_an_invoice_in_another_currency():
    cust = customer("EUR")
    payment = pay(cust, "100.00")  # nothing open: all unapplied
    usd = issued_invoice(cust, "80.00", issued=date(2026, 4, 1), currency="USD")
    assert reload(usd).amount_paid == 0
    payment.refresh_from_db()
    assert payment.unapplied == D("100.00")


def test_explicit_allocations_are_taken_as_given():
    cust = customer()
    a = issued_invoice(cust, "100.00", issued=date(2026, 1, 1))
    b = issued_invoice(cust, "100.00", issued=date(2026, 2, 1))
    payment = pay(cust, "150.00", allocations=[(b, D("100.00")), (a, D("20.00"))])
    assert reload(b).status == "paid" and reload(a).amount_open == D("80.00")
    assert payment.unapplied == D("30.00")


@pytest.mark.parametrize(
    ("allocations", "field"),
    [
        ([("b", "150.00")], "allocations.0.amount"),  # more than open on b
        ([("a", "100.00"), ("b", "100.00")], "allocations"),  # more than the payment
    ],
)
def test_allocations_over_the_open_amount_or_the_payment_are_refused_and_nothing_is_stored(allocations, field):
    cust = customer()
    invoices = {
        "a": issued_invoice(cust, "100.00", issued=date(2026, 1, 1)),
        "b": issued_invoice(cust, "100.00", issued=date(2026, 2, 1)),
    }
    with pytest.raises(ValidationError) as exc:
        pay(cust, "150.00", allocations=[(invoices[k], D(v)) for k, v in allocations])
    assert field in exc.value.message_dict
    assert not Payment.objects.filter(customer=cust).exists()
    assert all(reload(i).amount_paid == 0 for i in invoices.values())


def test_the_database_refuses_an_overspent_payment_or_an_overpaid_invoice():
    cust = customer()
    invoice = issued_invoice(cust, "100.00", issued=date(2026, 1, 1))
    payment = pay(cust, "50.00")
    with pytest.raises(IntegrityError), transaction.atomic():
        Payment.objects.filter(pk=payment.pk).update(allocated=D("60.00"))
    with pytest.raises(IntegrityError), transaction.atomic():
        Invoice.objects.filter(pk=invoice.pk).update(amount_paid=D("100.01"))


def test_the_same_external_id_records_one_payment():
    cust = customer()
    issued_invoice(cust, "100.00", issued=date(2026, 1, 1))
    first = payment_record(
        customer=cust, amount=D("100"), currency="USD", received_on=date(2026, 3, 1), method="ach", external_id="bank-1"
    )
    again = payment_record(
        customer=cust, amount=D("100"), currency="USD", received_on=date(2026, 3, 1), method="ach", external_id="bank-1"
    )
    assert first.created and not again.created and first.payment.pk == again.payment.pk
    assert Payment.objects.filter(customer=cust).count() == 1


def test_a_credit_note_on_a_paid_invoice_sends_the_excess_back_to_the_customers_account():
    from billing.services.invoicing import credit_note_create

    cust = customer()
    invoice = issued_invoice(cust, "1000.00", issued=date(2026, 1, 1))
    payment = pay(cust, "1000.00")
    credit_note_create(invoice_id=invoice.pk, amount=D("250.00"), reason="Late delivery", issue_date=date(2026, 3, 20))
    invoice = reload(invoice)
    assert invoice.amount_paid == D("750.00") and invoice.amount_open == 0 and invoice.status == "paid"
    payment.refresh_from_db()
    assert payment.unapplied == D("250.00")


def test_a_write_off_needs_a_reason_and_closes_the_invoice_as_written_off():
    cust = customer()
    invoice = issued_invoice(cust, "300.00", issued=date(2026, 1, 1))
    pay(cust, "100.00")
    with pytest.raises(ValidationError) as exc:
        invoice_write_off(invoice_id=invoice.pk, reason=" ")
    assert "reason" in exc.value.message_dict
    with pytest.raises(ValidationError):
        invoice_write_off(invoice_id=invoice.pk, reason="Insolvent", amount=D("200.01"))
    invoice_write_off(invoice_id=invoice.pk, reason="Customer insolvent", on=date(2026, 5, 1))
    invoice = reload(invoice)
    assert invoice.amount_open == 0 and invoice.written_off == D("200.00")
    assert invoice.payment_status(date(2026, 6, 1)) == PaymentStatus.WRITTEN_OFF


def test_payment_status_is_overdue_after_the_due_date_and_partially_paid_before():
    cust = customer()
    invoice = issued_invoice(cust, "100.00", issued=date(2026, 1, 1), terms=30)
    pay(cust, "40.00", on=date(2026, 1, 10))
    invoice = reload(invoice)
    assert invoice.payment_status(date(2026, 1, 31)) == PaymentStatus.PARTIALLY_PAID
    assert invoice.payment_status(date(2026, 2, 1)) == PaymentStatus.OVERDUE
