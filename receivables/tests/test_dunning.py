"""Dunning as a step of the cycle (DESIGN.md §4): each step at most once per invoice, none after
payment, credit, dispute or a pause, only the latest due step after downtime, the final step
raising a review task, reminders through the invoice outbox with the PDF and the pay link."""

from __future__ import annotations

import io
from datetime import date, timedelta
from decimal import Decimal

import pytest

from billing.models import BillingReviewTask, InvoiceDelivery
from receivables.models import DunningNotice
from receivables.services.dunning import collections_run, dunning_pause, step_due
from receivables.services.ledger import payment_record
from receivables.tests.helpers import customer, issued_invoice

pytestmark = pytest.mark.usefixtures("in_tenant_a")
D = Decimal
DAY0 = date(2026, 3, 1)


def offsets(invoice) -> list[int]:
    return list(DunningNotice.objects.filter(invoice=invoice).order_by("sent_on").values_list("offset_days", flat=True))


def test_sixty_days_with_the_beat_down_for_ten_each_step_once_none_after_payment_catch_up_only_the_current():
    cust = customer()
    a = issued_invoice(cust, "100.00", issued=DAY0, terms=10)  # due 11 Mar
    b = issued_invoice(cust, "200.00", issued=DAY0 + timedelta(days=5), terms=10)  # due 16 Mar
    c = issued_invoice(cust, "300.00", issued=DAY0 + timedelta(days=8), terms=10)  # due 19 Mar, paid 22 Mar
    down = {DAY0 + timedelta(days=n) for n in range(15, 25)}  # 16–25 March: the beat is down
    sent_on: dict[date, list] = {}
    for n in range(60):
        day = DAY0 + timedelta(days=n)
        if day == date(2026, 3, 22):
            payment_record(
                customer=cust,
                amount=D("300"),
                currency="USD",
                received_on=day,
                method="ach",
                allocations=[(c, D("300"))],
            )
        if day in down:
            continue
        summary = collections_run(as_of=day)
        sent_on[day] = summary["reminders_sent"]
        collections_run(as_of=day)  # a second run the same day changes nothing

    # a: −3 on 8 Mar, +1 on 12 Mar; +7 (18 Mar) fell in the downtime; on 26 Mar the +14 step is
    # the latest due (25 Mar) and is the only one sent; +30 on 10 Apr.
    assert offsets(a) == [-3, 1, 14, 30]
    # b: −3 on 13 Mar; +1 (17) and +7 (23) missed; on 26 Mar only +7; +14 on 30 Mar; +30 on 15 Apr.
    assert offsets(b) == [-3, 7, 14, 30]
    # c: −3 on 16 Mar was missed (down); +1 (20 Mar) missed too; paid on 22 Mar: nothing after.
    assert offsets(c) == []
    catch_up = sent_on[date(2026, 3, 26)]
    assert sorted(catch_up) == sorted([f"{a.number}: Third reminder", f"{b.number}: Second reminder"])
    keys = list(InvoiceDelivery.objects.filter(kind="reminder").values_list("idempotency_key", flat=True))
    assert len(keys) == len(set(keys)) == 8
    assert DunningNotice.objects.filter(invoice=c).count() == 0


def test_the_final_step_raises_one_review_task_for_the_account_manager(django_user_model):
    owner = django_user_model.objects.filter(role="account_manager").first()
    cust = customer(owner=owner)
    invoice = issued_invoice(cust, "100.00", issued=DAY0, terms=10)
    collections_run(as_of=date(2026, 4, 10))
    collections_run(as_of=date(2026, 4, 12))
    task = BillingReviewTask.objects.get(invoice=invoice, kind="dunning_final")
    assert task.assignee == owner and task.status == "open"
    assert offsets(invoice) == [30]  # first run long after the due date: only the latest step


def test_no_reminder_for_a_paused_customer_a_credited_or_a_disputed_invoice():
    from billing.services.invoicing import credit_note_create

    paused, credited, disputed = customer(), customer(), customer()
    i1 = issued_invoice(paused, "100.00", issued=DAY0, terms=10)
    i2 = issued_invoice(credited, "100.00", issued=DAY0, terms=10)
    i3 = issued_invoice(disputed, "100.00", issued=DAY0, terms=10)
    dunning_pause(customer=paused, reason="Payment plan agreed on the phone")
    credit_note_create(invoice_id=i2.pk, amount="10.00", reason="Discount agreed", issue_date=DAY0)
    from django.utils import timezone

    type(i3).objects.filter(pk=i3.pk).update(disputed_at=timezone.now())
    collections_run(as_of=date(2026, 3, 20))
    assert offsets(i1) == offsets(i2) == offsets(i3) == []


def test_a_reminder_goes_through_the_outbox_with_the_pdf_and_the_pay_link(settings):
    from pypdf import PdfReader

    from billing.services.delivery import invoice_delivery_send
    from billing.tests.smtp import SmtpSink, pdf_attachments
    from receivables.services.stripe import stripe_account_connect

    stripe_account_connect(secret_key="sk_test_1", publishable_key="pk_test_1", webhook_secret="whsec_1", verify=False)
    settings.TENANT_URL_SCHEME = "http"
    settings.TENANT_URL_PORT = "8000"
    sink = SmtpSink().start()
    settings.MAILERS = sink.mailers
    try:
        invoice = issued_invoice(customer(), "250.00", issued=DAY0, terms=10)  # due 11 Mar
        collections_run(as_of=date(2026, 3, 18))  # +7
        delivery = InvoiceDelivery.objects.get(invoice=invoice, kind="reminder")
        assert invoice_delivery_send(delivery_id=delivery.pk).status == "sent"
        (message,) = sink.wait_for(1)
    finally:
        sink.stop()
    assert message["Subject"] == f"Second reminder: invoice {invoice.number} is 7 days overdue"
    body = message.get_body(preferencelist=("plain",)).get_content()
    assert f"/pay/{invoice.pay_token}/" in body and "250.00 USD" in body and "7 days overdue" in body
    ((name, data),) = pdf_attachments(message)
    assert name == f"{invoice.number}.pdf"
    assert invoice.number in PdfReader(io.BytesIO(data)).pages[0].extract_text()


def test_step_due_rules():
    from receivables.models import DunningStep
    from receivables.services.dunning import DEFAULT_STEPS

    steps = [DunningStep(offset_days=o, name=n, is_final=f) for o, n, _s, _b, f in DEFAULT_STEPS]
    due, issued = date(2026, 3, 31), date(2026, 3, 1)
    assert step_due(steps=steps, due_date=due, issue_date=issued, as_of=date(2026, 3, 27)) is None
    assert step_due(steps=steps, due_date=due, issue_date=issued, as_of=date(2026, 3, 28)).offset_days == -3
    assert step_due(steps=steps, due_date=due, issue_date=issued, as_of=due) is None  # due today: no nagging
    assert step_due(steps=steps, due_date=due, issue_date=issued, as_of=date(2026, 4, 20)).offset_days == 14
    # An invoice issued with 0 days' terms never gets the "due in 3 days" reminder.
    assert step_due(steps=steps, due_date=due, issue_date=due, as_of=date(2026, 3, 30)) is None
