"""E-mailing invoices through a real SMTP server started by the test (aiosmtpd)."""

from __future__ import annotations

import io
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pytest
import time_machine
from celery.exceptions import Retry
from django.core.exceptions import ValidationError

from billing import tasks
from billing.models import BillingReviewTask, Invoice, InvoiceDelivery
from billing.services import delivery as delivery_service
from billing.services.delivery import (
    MAX_ATTEMPTS,
    invoice_deliveries_due,
    invoice_deliveries_sweep,
    invoice_delivery_send,
    invoice_send,
)
from billing.services.triggers import contract_bill_due
from billing.tests.builders import contract_with
from billing.tests.smtp import SmtpSink, pdf_attachments

D = Decimal
RETAINER = {
    "kind": "recurring",
    "description": "Retainer",
    "amount": D("3100.00"),
    "frequency": "monthly",
    "timing": "advance",
}
NOW = datetime(2026, 3, 2, 9, tzinfo=UTC)


@pytest.fixture(autouse=True)
def now():
    with time_machine.travel(NOW, tick=False) as traveller:
        yield traveller


@pytest.fixture
def smtp(settings):
    sink = SmtpSink().start()
    settings.MAILERS = sink.mailers
    yield sink
    sink.stop()


def issued_invoice(**kwargs) -> Invoice:
    contract = contract_with(RETAINER, start=date(2026, 3, 1), po_number="PO-7781", **kwargs)
    (invoice,) = contract_bill_due(contract_id=contract.pk, as_of=date(2026, 3, 1)).invoices
    assert invoice.status == "issued", invoice.hold_reasons
    return invoice


def initial_delivery(invoice: Invoice) -> InvoiceDelivery:
    return InvoiceDelivery.objects.get(invoice=invoice, kind="initial")


def test_issuing_queues_one_delivery_and_enqueues_its_send_on_commit(
    in_tenant_a, enqueued, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        invoice = issued_invoice()
    delivery = initial_delivery(invoice)
    assert delivery.status == "queued" and delivery.recipients == invoice.customer.billing_emails
    assert invoice.number in delivery.subject and "3,100.00 USD" in delivery.subject
    assert ("billing.tasks.invoice_delivery_send", {"delivery_id": delivery.pk}) in enqueued
    assert invoice_send(invoice_id=invoice.pk) == delivery  # issuing retried: still one initial delivery


def test_the_pdf_arrives_attached_at_the_smtp_server(in_tenant_a, smtp):
    from pypdf import PdfReader

    invoice = issued_invoice()
    outcome = invoice_delivery_send(delivery_id=initial_delivery(invoice).pk)
    assert outcome.status == "sent"
    (message,) = smtp.wait_for(1)
    assert message["To"] == ", ".join(invoice.customer.billing_emails)
    assert message["Subject"].startswith(f"Invoice {invoice.number} from ")
    assert message["Message-ID"] == initial_delivery(invoice).message_id
    body = message.get_body(preferencelist=("plain",)).get_content()
    assert invoice.number in body and "PO-7781" in body and "31 March 2026" in body  # due = 1 Mar + 30
    ((filename, data),) = pdf_attachments(message)
    assert filename == f"{invoice.number}.pdf"
    text = PdfReader(io.BytesIO(data)).pages[0].extract_text()
    assert invoice.number in text and "PO-7781" in text and "3,100.00 USD" in text
    invoice.refresh_from_db()
    delivery = initial_delivery(invoice)
    assert invoice.status == "sent" and invoice.sent_at is not None
    assert delivery.status == "sent" and delivery.attempts == 1 and delivery.pdf_name.endswith(f"{invoice.number}.pdf")


def test_a_redelivered_send_task_sends_once(in_tenant_a, smtp):
    invoice = issued_invoice()
    delivery = initial_delivery(invoice)
    assert tasks.invoice_delivery_send.run(delivery_id=delivery.pk) == "sent"
    assert tasks.invoice_delivery_send.run(delivery_id=delivery.pk) == "skipped"  # broker redelivered it
    assert invoice_delivery_send(delivery_id=delivery.pk).status == "skipped"
    smtp.wait_for(1)
    assert len(smtp.messages) == 1


def test_a_task_that_finds_the_row_already_sending_leaves_it_to_the_other_worker(in_tenant_a, smtp):
    invoice = issued_invoice()
    delivery = initial_delivery(invoice)
    InvoiceDelivery.objects.filter(pk=delivery.pk).update(status="sending", sending_started_at=NOW)
    assert invoice_delivery_send(delivery_id=delivery.pk).status == "skipped"
    assert smtp.messages == []
    # …unless that worker died: after SENDING_STALE_AFTER the sweep and the task take it over.
    later = NOW + delivery_service.SENDING_STALE_AFTER + timedelta(minutes=1)
    assert delivery.pk in invoice_deliveries_due(now=later)
    with time_machine.travel(later, tick=False):
        assert invoice_delivery_send(delivery_id=delivery.pk).status == "sent"
    assert len(smtp.wait_for(1)) == 1


def test_an_smtp_outage_leaves_the_delivery_failed_and_it_goes_through_once_the_server_is_back(
    in_tenant_a,
    smtp,
    now,
    enqueued,
    django_capture_on_commit_callbacks,
):
    invoice = issued_invoice()
    delivery = initial_delivery(invoice)
    smtp.stop()  # the mail server is down: its port is closed

    outcome = invoice_delivery_send(delivery_id=delivery.pk)
    assert outcome.status == "failed" and outcome.retry_in == 60
    delivery.refresh_from_db()
    assert delivery.status == "failed" and delivery.attempts == 1
    assert "Connection refused" in delivery.last_error or "ConnectionRefused" in delivery.last_error
    assert delivery.next_attempt_at == NOW + timedelta(seconds=60)
    invoice.refresh_from_db()
    assert invoice.status == "issued" and invoice.sent_at is None  # not marked sent, not lost

    assert invoice_deliveries_due(now=NOW) == []  # backing off
    now.move_to(NOW + timedelta(seconds=61))
    assert invoice_delivery_send(delivery_id=delivery.pk).status == "failed"  # still down: backs off longer
    delivery.refresh_from_db()
    assert delivery.attempts == 2 and delivery.next_attempt_at == NOW + timedelta(seconds=61 + 120)

    smtp.start()  # back on the same port
    now.move_to(NOW + timedelta(seconds=61 + 121))
    enqueued.clear()
    with django_capture_on_commit_callbacks(execute=True):
        assert invoice_deliveries_sweep() == 1
    assert enqueued == [("billing.tasks.invoice_delivery_send", {"delivery_id": delivery.pk})]
    assert tasks.invoice_delivery_send.run(delivery_id=delivery.pk) == "sent"
    assert len(smtp.wait_for(1)) == 1
    delivery.refresh_from_db()
    invoice.refresh_from_db()
    assert delivery.status == "sent" and delivery.attempts == 3 and delivery.last_error == ""
    assert invoice.status == "sent"


def test_the_send_task_retries_a_failure_with_exponential_backoff(in_tenant_a, monkeypatch):
    invoice = issued_invoice()
    delivery = initial_delivery(invoice)
    retried = []

    def fake_retry(*, countdown, exc=None):
        retried.append(countdown)
        return Retry("retry", when=countdown)

    monkeypatch.setattr(tasks.invoice_delivery_send, "retry", fake_retry)
    for attempts, _countdown in [(1, 60), (2, 120), (3, 240)]:
        monkeypatch.setattr(
            "billing.services.delivery.invoice_delivery_send",
            lambda *, delivery_id, a=attempts: delivery_service.SendOutcome(
                "failed", delivery_id, "refused", delivery_service.backoff_seconds(a)
            ),
        )
        with pytest.raises(Retry):
            tasks.invoice_delivery_send.run(delivery_id=delivery.pk)
    assert retried == [60, 120, 240]
    assert delivery_service.backoff_seconds(30) == delivery_service.BACKOFF_MAX_SECONDS


def test_after_the_last_attempt_it_stops_retrying_and_asks_finance(in_tenant_a, smtp):
    invoice = issued_invoice()
    delivery = initial_delivery(invoice)
    smtp.stop()
    InvoiceDelivery.objects.filter(pk=delivery.pk).update(attempts=MAX_ATTEMPTS - 1, status="failed")
    outcome = invoice_delivery_send(delivery_id=delivery.pk)
    assert outcome.status == "failed" and outcome.retry_in is None
    delivery.refresh_from_db()
    assert delivery.status == "failed" and delivery.next_attempt_at is None
    task = BillingReviewTask.objects.get(dedupe_key=f"delivery-failed:{delivery.pk}")
    assert invoice.number in task.title and task.invoice_id == invoice.pk


def test_resend_on_demand_creates_a_new_delivery_and_sends_again(
    in_tenant_a, smtp, enqueued, django_capture_on_commit_callbacks
):
    invoice = issued_invoice()
    assert invoice_delivery_send(delivery_id=initial_delivery(invoice).pk).status == "sent"
    with django_capture_on_commit_callbacks(execute=True):
        again = invoice_send(invoice_id=invoice.pk, resend=True)
    assert (
        again.kind == "resend"
        and again.pk != initial_delivery(invoice).pk
        and again.message_id != initial_delivery(invoice).message_id
    )
    assert ("billing.tasks.invoice_delivery_send", {"delivery_id": again.pk}) in enqueued
    assert invoice_delivery_send(delivery_id=again.pk).status == "sent"
    assert len(smtp.wait_for(2)) == 2
    assert InvoiceDelivery.objects.filter(invoice=invoice).count() == 2


def test_drafts_and_customers_without_an_address_are_not_sent(in_tenant_a):
    contract = contract_with(RETAINER, start=date(2026, 3, 1), auto_issue=False)
    (draft,) = contract_bill_due(contract_id=contract.pk, as_of=date(2026, 3, 1)).invoices
    with pytest.raises(ValidationError, match="Only issued invoices"):
        invoice_send(invoice_id=draft.pk)
    invoice = issued_invoice()
    invoice.customer.billing_emails = []
    invoice.customer.save()
    with pytest.raises(ValidationError, match="no billing e-mail"):
        invoice_send(invoice_id=invoice.pk, resend=True)


def test_the_outbox_sweep_is_on_the_beat():
    from revexos.celery import app

    entry = app.conf.beat_schedule["billing-outbox-sweep"]
    assert entry["args"] == ("billing.tasks.invoice_deliveries_sweep",)
    assert tasks.invoice_delivery_send.acks_late
