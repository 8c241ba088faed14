"""Invoices: immutability in the database, numbering, credit notes, the invoices and runs API."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime
from decimal import Decimal

import pytest
import time_machine
from django.core.exceptions import ValidationError
from django.db import IntegrityError, connection, transaction
from django.test import Client

from billing.models import CreditNote, Invoice, InvoiceLine
from billing.services.invoicing import credit_note_create, invoice_issue
from billing.services.numbering import document_number_format
from billing.services.triggers import contract_bill_due
from billing.tests.builders import contract_with

D = Decimal
RETAINER = {
    "kind": "recurring",
    "description": "Retainer",
    "amount": D("3100.00"),
    "frequency": "monthly",
    "timing": "advance",
}


@pytest.fixture(autouse=True)
def now_in_december():
    with time_machine.travel(datetime(2026, 12, 20, 12, tzinfo=UTC), tick=False):
        yield


def issued_invoice(**contract_kwargs) -> Invoice:
    contract = contract_with(RETAINER, **contract_kwargs)
    (invoice,) = contract_bill_due(contract_id=contract.pk, as_of=date(2026, 1, 15)).invoices
    return invoice


def sql(statement: str, params=()):
    with connection.cursor() as cursor:
        cursor.execute(statement, params)


# --------------------------------------------------------------------------- immutability


@pytest.mark.parametrize(
    "statement",
    [
        "UPDATE billing_invoice SET total = 1 WHERE id = %s",
        "UPDATE billing_invoice SET po_number = 'PO-FORGED' WHERE id = %s",
        "UPDATE billing_invoice SET number = 'X-1' WHERE id = %s",
        "UPDATE billing_invoice SET due_date = due_date + 30 WHERE id = %s",
        "UPDATE billing_invoice SET status = 'draft' WHERE id = %s",
        "DELETE FROM billing_invoice WHERE id = %s",
        "UPDATE billing_invoiceline SET amount = 0 WHERE invoice_id = %s",
        "UPDATE billing_invoiceline SET description = 'changed' WHERE invoice_id = %s",
        "DELETE FROM billing_invoiceline WHERE invoice_id = %s",
        "INSERT INTO billing_invoiceline (invoice_id, contract_id, position, kind, description, quantity, unit_amount, amount,"
        " line_ref, billing_key, source) SELECT id, contract_id, 9, 'fixed_fee', 'extra', 1, 1, 1, '', 'forged-key', '{}'"
        " FROM billing_invoice WHERE id = %s",
    ],
)
def test_the_database_refuses_to_change_an_issued_invoice_or_its_lines(in_tenant_a, statement):
    invoice = issued_invoice()
    with pytest.raises(IntegrityError, match="issued|cannot"), transaction.atomic():
        sql(statement, [invoice.pk])
    invoice.refresh_from_db()
    assert invoice.total == D("1700.00") and invoice.lines.count() == 1


def test_the_orm_cannot_bypass_it_either(in_tenant_a):
    invoice = issued_invoice()
    with pytest.raises(IntegrityError), transaction.atomic():
        Invoice.objects.filter(pk=invoice.pk).update(subtotal=D("0"))
    with pytest.raises(IntegrityError), transaction.atomic():
        InvoiceLine.objects.filter(invoice=invoice).delete()


def test_lifecycle_columns_of_an_issued_invoice_may_move(in_tenant_a):
    invoice = issued_invoice()
    Invoice.objects.filter(pk=invoice.pk).update(status="sent", sent_at=datetime(2026, 1, 15, 13, tzinfo=UTC))
    invoice.refresh_from_db()
    assert invoice.status == "sent"


def test_drafts_can_still_be_changed_and_deleted(in_tenant_a):
    contract = contract_with(RETAINER, auto_issue=False)
    (draft,) = contract_bill_due(contract_id=contract.pk, as_of=date(2026, 1, 15)).invoices
    InvoiceLine.objects.filter(invoice=draft).update(description="Retainer (edited)")
    draft.delete()
    assert not Invoice.objects.filter(pk=draft.pk).exists()
    # Deleting a draft frees its billing keys: the next run bills the obligation again.
    (again,) = contract_bill_due(contract_id=contract.pk, as_of=date(2026, 1, 15)).invoices
    assert again.total == D("1700.00")


def test_credit_notes_are_immutable(in_tenant_a):
    invoice = issued_invoice()
    note = credit_note_create(invoice_id=invoice.pk, amount="100.00", reason="Goodwill")
    with pytest.raises(IntegrityError), transaction.atomic():
        sql("UPDATE billing_creditnote SET amount = 1 WHERE id = %s", [note.pk])


# --------------------------------------------------------------------------- numbering


def test_invoice_numbers_read_prefix_year_sequence_and_follow_each_other(in_tenant_a):
    from contracts.tests.factories import IssuingEntityFactory

    entity = IssuingEntityFactory(invoice_prefix="INV-")
    first = issued_invoice(issuing_entity=entity)
    second = issued_invoice(issuing_entity=entity)
    assert (first.number, second.number) == ("INV-2026-000001", "INV-2026-000002")
    other = issued_invoice()  # another issuing entity has its own sequence
    assert other.number.endswith("-2026-000001")


def test_document_number_format():
    assert document_number_format(prefix="INV-", kind="invoice", year=2026, value=42) == "INV-2026-000042"
    assert document_number_format(prefix="INV-", kind="credit_note", year=2026, value=3) == "CN-INV-2026-000003"


def test_issuing_refuses_a_draft_that_fails_its_checks_and_an_issued_invoice(in_tenant_a):
    contract = contract_with(RETAINER, po_required=True, po_number="")
    (held,) = contract_bill_due(contract_id=contract.pk, as_of=date(2026, 1, 15)).invoices
    with pytest.raises(ValidationError, match="PO number"):
        invoice_issue(invoice_id=held.pk)
    issued = issued_invoice()
    with pytest.raises(ValidationError, match="already issued"):
        invoice_issue(invoice_id=issued.pk)


# --------------------------------------------------------------------------- credit notes


def test_credit_notes_never_exceed_the_invoice_and_a_full_credit_voids_it(in_tenant_a):
    invoice = issued_invoice()
    first = credit_note_create(invoice_id=invoice.pk, amount="700.00", reason="Service outage")
    assert first.number.startswith("CN-") and first.number.endswith("-000001")
    with pytest.raises(ValidationError, match="1000.00 USD left"):
        credit_note_create(invoice_id=invoice.pk, amount="1000.01", reason="Too much")
    credit_note_create(invoice_id=invoice.pk, amount="1000.00", reason="Rest")
    invoice.refresh_from_db()
    assert invoice.status == "void" and invoice.credited_total == D("1700.00")
    with pytest.raises(ValidationError):
        credit_note_create(invoice_id=invoice.pk, amount="0.01", reason="Once more")
    assert sum(n.amount for n in CreditNote.objects.filter(invoice=invoice)) == invoice.total


def test_a_draft_cannot_be_credited(in_tenant_a):
    contract = contract_with(RETAINER, auto_issue=False)
    (draft,) = contract_bill_due(contract_id=contract.pk, as_of=date(2026, 1, 15)).invoices
    with pytest.raises(ValidationError, match="Only issued"):
        credit_note_create(invoice_id=draft.pk, amount="1", reason="x")


# --------------------------------------------------------------------------- API


@pytest.fixture
def api(in_tenant_a):
    return Client(HTTP_HOST=in_tenant_a.host, HTTP_AUTHORIZATION=f"Bearer {in_tenant_a.api_key}")


def test_an_invoice_reads_exactly_as_the_public_api_promises(api):
    invoice = issued_invoice(po_number="PO-7781")
    body = api.get(f"/api/v1/invoices/{invoice.pk}").json()
    line = invoice.lines.get()
    assert body == {
        "id": str(invoice.pk),
        "number": invoice.number,
        "status": "issued",
        "contract": invoice.contract.number,
        "currency": "USD",
        "issue_date": "2026-01-15",
        "due_date": "2026-02-14",
        "po_number": "PO-7781",
        "subtotal": "1700.00",
        "discount_total": "0.00",
        "tax_total": "0.00",
        "total": "1700.00",
        "credit_applied": "0.00",
        "amount_due": "1700.00",
        # Collections (DESIGN.md §5.1): nothing paid; past its due date; no card payments set up.
        "amount_paid": "0.00",
        "amount_open": "1700.00",
        "written_off": "0.00",
        "payment_status": "overdue",
        "paid_on": None,
        "pay_url": None,
        "disputed": False,
        # The test tenant keeps no GB rate: no tax is collected, and the note says so.
        "tax_treatment": "not_collected",
        "tax_note": "No tax: no rate is set up for GB.",
        "tax_lines": [],
        "lines": [
            {
                "description": "Retainer 15 Jan 2026 – 31 Jan 2026 (prorated 17/31 days)",
                "kind": "recurring",
                "quantity": "1",
                "unit_amount": "1700.00",
                "amount": "1700.00",
                "period_start": "2026-01-15",
                "period_end": "2026-01-31",
                "price_line": str(line.price_line_id),
            }
        ],
    }


def test_invoices_are_listed_with_filters(api):
    a = issued_invoice()
    draft_contract = contract_with(RETAINER, auto_issue=False)
    (draft,) = contract_bill_due(contract_id=draft_contract.pk, as_of=date(2026, 1, 15)).invoices
    ids = lambda q: {item["id"] for item in api.get(f"/api/v1/invoices{q}").json()["items"]}  # noqa: E731
    assert {str(a.pk), str(draft.pk)} <= ids("")
    assert str(draft.pk) in ids("?status=draft") and str(a.pk) not in ids("?status=draft")
    assert ids(f"?contract={a.contract.number}") == {str(a.pk)}
    assert ids(f"?customer={a.customer.external_id}") == {str(a.pk)}
    assert str(a.pk) in ids("?issued_from=2026-01-15&issued_to=2026-01-15")
    assert str(a.pk) not in ids("?issued_from=2026-01-16")
    assert api.get("/api/v1/invoices/999999999").status_code == 404
    assert api.get("/api/v1/invoices?issued_from=not-a-date").status_code == 422


def test_a_tenant_cannot_read_another_tenants_invoice(api, tenant_b):
    invoice = issued_invoice()
    other = Client(HTTP_HOST=tenant_b.host, HTTP_AUTHORIZATION=f"Bearer {tenant_b.api_key}")
    assert other.get(f"/api/v1/invoices/{invoice.pk}").status_code == 404
    mine_with_their_key = Client(HTTP_HOST=api.defaults["HTTP_HOST"], HTTP_AUTHORIZATION=f"Bearer {tenant_b.api_key}")
    assert mine_with_their_key.get(f"/api/v1/invoices/{invoice.pk}").status_code == 401


def test_a_synchronous_run_returns_what_it_created(api):
    contract = contract_with(RETAINER)
    response = api.post(
        "/api/v1/runs", json.dumps({"as_of": "2026-02-01", "only": ["billing"]}), content_type="application/json"
    )
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["status"] == "succeeded" and body["as_of"] == "2026-02-01"
    created = [i for i in body["summary"]["billing"]["invoices"] if i["contract"] == contract.number]
    assert [(i["status"], i["total"]) for i in created] == [("issued", "4800.00")]  # 1,700.00 + 3,100.00
    assert api.get(f"/api/v1/runs/{body['id']}").json()["summary"] == body["summary"]


def test_an_async_run_returns_an_id_to_poll(api, enqueued, django_capture_on_commit_callbacks):
    from billing.services.runs import run_execute

    with django_capture_on_commit_callbacks(execute=True):
        response = api.post(
            "/api/v1/runs", json.dumps({"as_of": "2026-02-01", "async": True}), content_type="application/json"
        )
    assert response.status_code == 202
    run_id = response.json()["id"]
    assert api.get(f"/api/v1/runs/{run_id}").json()["status"] == "queued"
    assert enqueued == [("billing.tasks.run_execute", {"run_id": run_id})]
    run_execute(run_id=run_id)  # what the worker does
    assert api.get(f"/api/v1/runs/{run_id}").json()["status"] == "succeeded"


@pytest.mark.parametrize(
    "body, field",
    [
        ({"as_of": "2027-03-01"}, "as_of"),
        ({"as_of": "01/02/2026"}, "as_of"),
        ({"as_of": "2026-02-01", "only": ["nope"]}, "only"),
        ({}, "as_of"),
    ],
)
def test_bad_run_requests_are_refused(api, body, field):
    response = api.post("/api/v1/runs", json.dumps(body), content_type="application/json")
    assert response.status_code == 422, response.content
    assert field in response.json()["error"]["fields"]


def test_an_unknown_run_is_404(api):
    assert api.get("/api/v1/runs/not-a-run").status_code == 404
    assert api.get("/api/v1/runs/00000000-0000-0000-0000-000000000000").status_code == 404
