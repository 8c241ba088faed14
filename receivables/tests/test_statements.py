"""Statements of account: PDF with open invoices, payments and aging; e-mailed on demand and
monthly (tenant setting) once per customer and month, through a real SMTP server."""

from __future__ import annotations

import io
from datetime import date
from decimal import Decimal

import pytest

from receivables.models import CollectionsSettings, StatementSend
from receivables.services.ledger import payment_record
from receivables.services.statements import statement_deliver, statement_pdf_render, statements_monthly_send
from receivables.tests.helpers import customer, issued_invoice

pytestmark = pytest.mark.usefixtures("in_tenant_a")


def test_the_statement_pdf_lists_open_invoices_payments_and_aging():
    from pypdf import PdfReader

    cust = customer(legal_name="Statement Test Ltd")
    a = issued_invoice(cust, "1000.00", issued=date(2026, 1, 5))
    b = issued_invoice(cust, "250.00", issued=date(2026, 3, 1))
    payment_record(customer=cust, amount=Decimal("400"), currency="USD", received_on=date(2026, 3, 10), method="ach")
    text = PdfReader(io.BytesIO(statement_pdf_render(customer=cust, as_of=date(2026, 3, 31)))).pages[0].extract_text()
    assert a.number in text and b.number in text and "850.00" in text  # 600 + 250 open
    assert "Statement of account" in text and "Payment" in text


def test_monthly_statements_go_once_per_customer_and_month_by_email(settings):
    from billing.tests.smtp import SmtpSink, pdf_attachments

    cust = customer(legal_name="Monthly Statement Ltd")
    issued_invoice(cust, "300.00", issued=date(2026, 2, 1))
    assert statements_monthly_send(as_of=date(2026, 4, 1)) == []  # switched off by default
    row = CollectionsSettings.current()
    row.monthly_statements = True
    row.save()
    assert cust.external_id in statements_monthly_send(as_of=date(2026, 4, 1))
    assert cust.external_id not in statements_monthly_send(as_of=date(2026, 4, 2))  # once a month
    send = StatementSend.objects.get(customer=cust)
    sink = SmtpSink().start()
    settings.MAILERS = sink.mailers
    try:
        assert statement_deliver(send_id=send.pk) == "sent"
        assert statement_deliver(send_id=send.pk) == "skipped"
        (message,) = sink.wait_for(1)
    finally:
        sink.stop()
    assert message["To"] == cust.billing_emails[0] and "Statement of account 31 March 2026" in message["Subject"]
    ((name, data),) = pdf_attachments(message)
    assert name == f"statement-{cust.external_id}-2026-03-31.pdf" and data.startswith(b"%PDF")
