"""Collections pages: the collections page (aging with drill-down, queue, unapplied cash), the
invoice and customer page cards, the finance home panel, the public pay page and its token."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from receivables.services.ledger import payment_record
from receivables.tests.helpers import customer, issued_invoice, reload
from tests.helpers import client_for

pytestmark = pytest.mark.django_db
D = Decimal


@pytest.fixture
def finance(in_tenant_a):
    return client_for(in_tenant_a, email=in_tenant_a.users["finance"])


def _book(n: int):
    cust = customer()
    invoices = [issued_invoice(cust, "100.00", issued=date(2026, 1 + i % 9, 1)) for i in range(n)]
    payment_record(customer=cust, amount=D("150"), currency="USD", received_on=date(2026, 10, 1), method="ach")
    return cust, invoices


def test_the_collections_page_shows_aging_and_its_query_count_does_not_grow_with_rows(finance):
    _book(2)
    with CaptureQueriesContext(connection) as small:
        response = finance.get("/collections/")
    assert response.status_code == 200
    body = response.content.decode()
    assert 'id="aging-USD"' in body and "DSO by month" in body and "Reminders: what goes out next" in body
    _book(8)
    with CaptureQueriesContext(connection) as large:
        assert finance.get("/collections/").status_code == 200
    assert len(large) <= len(small) + 2, (len(small), len(large))


def test_the_aging_drill_down_lists_the_invoices_of_a_cell(finance):
    cust, invoices = _book(3)
    response = finance.get(
        f"/collections/aging/?currency=USD&customer={cust.pk}&bucket=over_90", HTTP_HX_REQUEST="true"
    )
    assert response.status_code == 200
    assert invoices[0].number not in response.content.decode()  # paid by the 150.00 (oldest first)
    assert invoices[2].number in response.content.decode()


def test_finance_records_a_payment_on_the_invoice_page_and_writes_off_the_rest(finance):
    invoice = issued_invoice(customer(), "300.00", issued=date(2026, 3, 1))
    page = finance.get(f"/billing/invoices/{invoice.pk}/").content.decode()
    assert 'id="payments"' in page and "Record a payment" in page
    finance.post(
        f"/collections/invoices/{invoice.pk}/payments/",
        {"amount": "200.00", "received_on": "2026-03-20", "method": "bank_transfer"},
    )
    assert reload(invoice).amount_open == D("100.00")
    finance.post(f"/collections/invoices/{invoice.pk}/write-off/", {"amount": "100.00", "reason": ""})
    assert reload(invoice).written_off == 0  # a reason is required
    finance.post(f"/collections/invoices/{invoice.pk}/write-off/", {"amount": "100.00", "reason": "Small balance"})
    assert reload(invoice).payment_status() == "written_off"


def test_a_viewer_sees_payments_but_cannot_record_one(in_tenant_a):
    invoice = issued_invoice(customer(), "300.00", issued=date(2026, 3, 1))
    viewer = client_for(in_tenant_a, email=in_tenant_a.users["viewer"])
    assert "Record a payment" not in viewer.get(f"/billing/invoices/{invoice.pk}/").content.decode()
    response = viewer.post(f"/collections/invoices/{invoice.pk}/payments/", {"amount": "1", "method": "ach"})
    assert response.status_code == 403 and reload(invoice).amount_paid == 0


def test_the_customer_page_shows_balance_and_payment_history(finance):
    cust, _ = _book(2)
    body = finance.get(f"/customers/{cust.pk}/").content.decode()
    assert "Payments and balance" in body and "150.00" in body and "Statement of account" in body
    pdf = finance.get(f"/collections/customers/{cust.pk}/statement.pdf")
    assert pdf.status_code == 200 and pdf["Content-Type"] == "application/pdf" and pdf.content.startswith(b"%PDF")


def test_the_finance_home_has_a_collections_panel_with_the_dso_chart(finance):
    _book(2)
    body = finance.get("/").content.decode()
    assert 'id="panel-collections"' in body and 'aria-label="DSO by month"' in body


def test_the_pay_page_needs_no_login_and_a_revoked_token_is_dead(in_tenant_a, finance):
    from django.test import Client

    from receivables.services.stripe import stripe_account_connect

    stripe_account_connect(secret_key="sk_test_1", publishable_key="pk_test_1", webhook_secret="whsec_1", verify=False)
    invoice = issued_invoice(customer(), "120.00", issued=date(2026, 3, 1))
    anonymous = Client(HTTP_HOST=in_tenant_a.host)
    page = anonymous.get(f"/pay/{invoice.pay_token}/")
    assert (
        page.status_code == 200 and "120.00" in page.content.decode() and 'id="card-element"' in page.content.decode()
    )
    assert page["Referrer-Policy"] == "no-referrer"
    assert anonymous.get(f"/pay/{invoice.pay_token}/pdf/").content.startswith(b"%PDF")
    assert anonymous.get("/pay/not-a-real-token/").status_code == 404
    old = invoice.pay_token
    finance.post(f"/collections/invoices/{invoice.pk}/pay-link/revoke/")
    assert anonymous.get(f"/pay/{old}/").status_code == 404
    assert anonymous.get(f"/pay/{reload(invoice).pay_token}/").status_code == 200


def test_a_pay_token_of_one_tenant_opens_nothing_on_another(in_tenant_a, tenant_b):
    from django.test import Client

    invoice = issued_invoice(customer(), "120.00", issued=date(2026, 3, 1))
    assert Client(HTTP_HOST=tenant_b.host).get(f"/pay/{invoice.pay_token}/").status_code == 404


def test_the_invoice_list_filters_by_payment_status_with_badges(finance):
    cust = customer()
    paid = issued_invoice(cust, "100.00", issued=date(2026, 1, 1))
    overdue = issued_invoice(cust, "100.00", issued=date(2026, 2, 1))
    payment_record(
        customer=cust,
        amount=D("100"),
        currency="USD",
        received_on=date(2026, 2, 5),
        method="ach",
        allocations=[(paid, D("100"))],
    )
    body = finance.get("/billing/invoices/?payment=overdue").content.decode()
    assert overdue.number in body and paid.number not in body and "Overdue" in body
    body = finance.get("/billing/invoices/?payment=paid").content.decode()
    assert paid.number in body and overdue.number not in body


def test_finance_edits_a_dunning_step_and_pauses_a_customer(finance):
    from receivables.models import DunningPause, DunningStep
    from receivables.services.dunning import dunning_steps_ensure

    steps = dunning_steps_ensure()
    data = {"form": "policy", "dunning_enabled": "on"}
    for step in steps:
        data.update(
            {
                f"s{step.pk}_offset_days": str(step.offset_days if step.offset_days != 7 else 10),
                f"s{step.pk}_name": step.name,
                f"s{step.pk}_subject": step.subject,
                f"s{step.pk}_body": step.body,
                f"s{step.pk}_active": "on",
            }
        )
        if step.is_final:
            data[f"s{step.pk}_final"] = "on"
    assert finance.post("/collections/settings/", data).status_code == 302
    assert sorted(DunningStep.objects.values_list("offset_days", flat=True)) == [-3, 1, 10, 14, 30]
    data[f"s{steps[1].pk}_offset_days"] = "14"  # two steps on one day
    finance.post("/collections/settings/", data)
    assert sorted(DunningStep.objects.values_list("offset_days", flat=True)) == [-3, 1, 10, 14, 30]

    cust = customer()
    finance.post(
        "/collections/pauses/", {"customer": cust.pk, "reason": "Payment plan", "next": f"/customers/{cust.pk}/"}
    )
    assert DunningPause.objects.get(customer=cust, lifted_at__isnull=True).reason == "Payment plan"
    assert "Reminders paused" in finance.get(f"/customers/{cust.pk}/").content.decode()
