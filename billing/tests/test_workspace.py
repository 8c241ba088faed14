"""The finance workspace: invoice list, detail, PDF, bulk approve, credit notes, review tasks, outbox."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal

import pytest
import time_machine

from billing.models import BillingReviewTask, CreditNote, Invoice, InvoiceDelivery
from billing.services.triggers import contract_bill_due
from billing.tests.builders import contract_with
from revexos.accounts.models import Role
from tests.helpers import client_for

D = Decimal
RETAINER = {
    "kind": "recurring",
    "description": "Retainer",
    "amount": D("3100.00"),
    "frequency": "monthly",
    "timing": "advance",
}


@pytest.fixture(autouse=True)
def now_in_march():
    with time_machine.travel(datetime(2026, 3, 20, 12, tzinfo=UTC), tick=True):
        yield


def bill(**kwargs) -> Invoice:
    contract = contract_with(RETAINER, start=date(2026, 3, 1), **kwargs)
    (invoice,) = contract_bill_due(contract_id=contract.pk, as_of=date(2026, 3, 1)).invoices
    return invoice


@pytest.fixture
def finance(in_tenant_a):
    return client_for(in_tenant_a, email=in_tenant_a.users[Role.FINANCE])


@pytest.fixture
def viewer(in_tenant_a):
    return client_for(in_tenant_a, email=in_tenant_a.users[Role.VIEWER])


def test_the_list_filters_by_status_held_customer_and_due_and_totals_per_currency(finance):
    held = bill(po_required=True, po_number="")
    issued = bill()
    yen = bill(currency="JPY")
    page = finance.get("/billing/invoices/").content.decode()
    assert f"Draft #{held.pk}" in page and issued.number in page and yen.number in page
    assert "requires a PO number" in page
    held_only = finance.get("/billing/invoices/?held=yes").content.decode()
    assert f"Draft #{held.pk}" in held_only and issued.number not in held_only
    by_customer = finance.get(f"/billing/invoices/?customer={yen.customer_id}").content.decode()
    assert yen.number in by_customer and issued.number not in by_customer
    assert "JPY · 1 invoice" in by_customer
    due_soon = finance.get("/billing/invoices/?due=30").content.decode()  # issued 1 Mar, net 30 → 31 Mar
    assert issued.number in due_soon and f"Draft #{held.pk}" not in due_soon
    partial = finance.get("/billing/invoices/?status=issued", HTTP_HX_REQUEST="true").content.decode()
    assert partial.lstrip().startswith('<div id="invoice-table">') and "<html" not in partial


def test_the_list_query_count_does_not_grow_with_invoices(finance, django_assert_max_num_queries):
    for _ in range(3):
        bill()
    with django_assert_max_num_queries(14) as few:
        assert finance.get("/billing/invoices/").status_code == 200
    for _ in range(20):
        bill()
    with django_assert_max_num_queries(len(few.captured_queries)):
        assert finance.get("/billing/invoices/").status_code == 200


def test_bulk_approve_issues_the_drafts_that_pass_and_reports_those_that_do_not(
    finance, django_capture_on_commit_callbacks
):
    ok = bill(auto_issue=False)
    held = bill(po_required=True, po_number="")
    with django_capture_on_commit_callbacks(execute=True):
        response = finance.post("/billing/invoices/approve/", {"invoice": [ok.pk, held.pk]}, follow=True)
    page = response.content.decode()
    ok.refresh_from_db()
    held.refresh_from_db()
    assert ok.status == "issued" and ok.number in page and "queued for e-mail" in page
    assert held.status == "draft" and f"Draft #{held.pk}" in page and "still held" in page
    assert InvoiceDelivery.objects.filter(invoice=ok).count() == 1


def test_the_detail_shows_hold_reasons_the_pdf_preview_and_deliveries(finance):
    held = bill(po_required=True, po_number="")
    page = finance.get(f"/billing/invoices/{held.pk}/").content.decode()
    assert 'id="hold-reasons"' in page and "requires a PO number" in page
    assert f'src="/billing/invoices/{held.pk}/pdf/#view=FitH"' in page and 'id="approve"' in page
    issued = bill()
    page = finance.get(f"/billing/invoices/{issued.pk}/").content.decode()
    assert "Queued" in page and issued.customer.billing_emails[0] in page


def test_the_pdf_view_serves_a_pdf_that_our_own_pages_may_frame(finance, viewer):
    invoice = bill()
    response = finance.get(f"/billing/invoices/{invoice.pk}/pdf/")
    assert response.status_code == 200 and response["Content-Type"] == "application/pdf"
    assert response.content.startswith(b"%PDF") and response["X-Frame-Options"] == "SAMEORIGIN"
    assert "inline" in response["Content-Disposition"]
    assert viewer.get(f"/billing/invoices/{invoice.pk}/pdf/?download=1")["Content-Disposition"].startswith("attachment")


def test_approving_a_held_invoice_after_recording_its_po(finance, django_capture_on_commit_callbacks):
    held = bill(po_required=True, po_number="")
    finance.post(f"/billing/invoices/{held.pk}/po/", {"po_number": "PO-55"})
    with django_capture_on_commit_callbacks(execute=True):
        page = finance.post(f"/billing/invoices/{held.pk}/approve/", follow=True).content.decode()
    held.refresh_from_db()
    assert held.status == "issued" and held.po_number == "PO-55" and f"Invoice {held.number} is issued" in page


def test_credit_note_from_an_invoice_within_what_is_left(finance):
    invoice = bill()
    finance.post(f"/billing/invoices/{invoice.pk}/credit-notes/", {"amount": "100.00", "reason": "Goodwill"})
    assert CreditNote.objects.get(invoice=invoice).amount == D("100.00")
    page = finance.post(
        f"/billing/invoices/{invoice.pk}/credit-notes/", {"amount": "5000", "reason": "Too much"}, follow=True
    ).content.decode()
    assert "more than the 3000.00 USD left to credit" in page
    assert CreditNote.objects.filter(invoice=invoice).count() == 1


def test_resend_creates_a_new_delivery(finance):
    invoice = bill()
    finance.post(f"/billing/invoices/{invoice.pk}/resend/")
    assert list(InvoiceDelivery.objects.filter(invoice=invoice).values_list("kind", flat=True).order_by("id")) == [
        "initial",
        "resend",
    ]


def test_review_tasks_are_assigned_and_resolved_with_a_note(finance, in_tenant_a):
    from revexos.accounts.models import User

    held = bill(po_required=True, po_number="")
    task = BillingReviewTask.objects.get(invoice=held)
    page = finance.get("/billing/review-tasks/").content.decode()
    assert task.title in page
    me = User.objects.get(email=in_tenant_a.users[Role.FINANCE])
    row = finance.post(
        f"/billing/review-tasks/{task.pk}/assign/", {"assignee": me.pk}, HTTP_HX_REQUEST="true"
    ).content.decode()
    assert row.lstrip().startswith(f'<tr id="task-{task.pk}"') and "✓ Assigned" in row
    row = finance.post(
        f"/billing/review-tasks/{task.pk}/resolve/", {"note": ""}, HTTP_HX_REQUEST="true"
    ).content.decode()
    assert "Say what you decided" in row
    finance.post(
        f"/billing/review-tasks/{task.pk}/resolve/", {"note": "Customer sends the PO on Monday"}, HTTP_HX_REQUEST="true"
    )
    task.refresh_from_db()
    assert task.status == "resolved" and task.assignee == me and "Customer sends the PO on Monday" in task.resolution
    assert task.title not in finance.get("/billing/review-tasks/").content.decode()  # open ones by default
    assert task.title in finance.get("/billing/review-tasks/?status=resolved").content.decode()


def test_the_outbox_lists_deliveries_with_their_state(finance):
    invoice = bill()
    InvoiceDelivery.objects.filter(invoice=invoice).update(
        status="failed", last_error="SMTPServerDisconnected: gone", attempts=2
    )
    page = finance.get("/billing/outbox/?status=failed").content.decode()
    assert invoice.number in page and "SMTPServerDisconnected: gone" in page and "Failed (1)" in page


@pytest.mark.parametrize(
    "path, data",
    [
        ("/billing/invoices/approve/", {}),
        ("/billing/invoices/{pk}/approve/", {}),
        ("/billing/invoices/{pk}/recheck/", {}),
        ("/billing/invoices/{pk}/po/", {"po_number": "X"}),
        ("/billing/invoices/{pk}/resend/", {}),
        ("/billing/invoices/{pk}/credit-notes/", {"amount": "1", "reason": "x"}),
        ("/billing/review-tasks/{task}/assign/", {"assignee": ""}),
        ("/billing/review-tasks/{task}/resolve/", {"note": "x"}),
    ],
)
def test_viewers_and_account_managers_read_but_cannot_act(in_tenant_a, viewer, path, data):
    held = bill(po_required=True, po_number="")
    task = BillingReviewTask.objects.get(invoice=held)
    url = path.format(pk=held.pk, task=task.pk)
    manager = client_for(in_tenant_a, email=in_tenant_a.users[Role.ACCOUNT_MANAGER])
    assert viewer.post(url, data).status_code == 403
    assert manager.post(url, data).status_code == 403
    assert viewer.get(f"/billing/invoices/{held.pk}/").status_code == 200
    page = viewer.get(f"/billing/invoices/{held.pk}/").content.decode()
    assert 'id="approve"' not in page


def test_the_api_serves_the_pdf(in_tenant_a):
    from django.test import Client

    invoice = bill()
    api = Client(HTTP_HOST=in_tenant_a.host, HTTP_AUTHORIZATION=f"Bearer {in_tenant_a.api_key}")
    response = api.get(f"/api/v1/invoices/{invoice.pk}/pdf")
    assert response.status_code == 200 and response["Content-Type"] == "application/pdf"
    assert response.content.startswith(b"%PDF")
    assert api.get("/api/v1/invoices/999999/pdf").status_code == 404
    assert Client(HTTP_HOST=in_tenant_a.host).get(f"/api/v1/invoices/{invoice.pk}/pdf").status_code == 401


def test_the_home_finance_panel_shows_held_issued_and_failed(finance):
    bill(po_required=True, po_number="")
    invoice = bill(issuing_entity=None)
    InvoiceDelivery.objects.filter(invoice=invoice).update(status="failed")
    page = finance.get("/").content.decode()
    panel = page[page.index('id="panel-finance"') :]
    assert "draft held by a pre-send check" in panel
    assert "invoice issued this month" in panel and "failed e-mail" in panel


def test_a_void_invoice_is_listed_but_never_counted_in_the_totals(finance):
    from billing.selectors import invoice_totals

    kept, voided = bill(), bill()
    Invoice.objects.filter(pk=voided.pk).update(status="void")  # as a full credit note leaves it
    (usd,) = [t for t in invoice_totals(Invoice.objects.filter(pk__in=[kept.pk, voided.pk])) if t["currency"] == "USD"]
    assert usd["count"] == 2 and usd["void"] == 1
    assert usd["total"] == kept.total and usd["due"] == kept.amount_due
    page = finance.get("/billing/invoices/").content.decode()
    assert "void, not counted" in page
