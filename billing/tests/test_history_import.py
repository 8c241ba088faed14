"""Importing another system's invoices: matched to contract, line and period; all or nothing."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest

from billing.history_formats import ExportRejected
from billing.models_history import ExternalInvoice, ExternalInvoiceLine
from billing.services.history import external_billed_by_contract, history_import_commit, history_import_preview
from billing.tests.builders import amend, contract_with
from billing.tests.test_history_formats import to_csv, xero_row

pytestmark = pytest.mark.django_db

RETAINER = {
    "kind": "recurring",
    "description": "Retainer",
    "amount": Decimal("3100.00"),
    "frequency": "monthly",
    "timing": "advance",
}
GO_LIVE = {"kind": "milestone", "description": "Phase 1 go-live", "amount": Decimal("12000.00"), "reference": "PROJ-12"}


@pytest.fixture
def acme(in_tenant_a):
    contract = contract_with(RETAINER, GO_LIVE, number="C-1001", start=date(2026, 1, 1), po_number="PO-7781")
    contract.customer.legal_name = "Acme Ltd"
    contract.customer.save()
    return contract


def test_reference_names_the_contract_and_the_description_the_period(acme):
    raw = to_csv(
        [xero_row(Reference="C-1001", Description="Retainer Feb 2026", InvoiceDate="20/02/2026", DueDate="22/03/2026")]
    )
    preview = history_import_preview(raw=raw, file_name="inv.csv")
    (invoice,) = preview.invoices
    assert (invoice.contract_number, invoice.method) == ("C-1001", "contract_number")
    match = invoice.lines[0].match
    assert (match.line_ref, match.period_start, match.period_end) == ("L1", date(2026, 2, 1), date(2026, 2, 28))
    assert match.obligation_key == f"recurring:{acme.pk}:L1:2026-02-01"
    assert not ExternalInvoice.objects.exists()  # a preview writes nothing


def test_po_then_customer_and_dates_then_unmatched(acme):
    raw = to_csv(
        [
            xero_row(
                InvoiceNumber="A-1",
                Reference="PO-7781",
                Description="Monthly retainer",
                InvoiceDate="01/03/2026",
                DueDate="31/03/2026",
            ),
            xero_row(
                InvoiceNumber="A-2",
                Reference="",
                ContactName="ACME limited",
                Description="Phase 1 go-live PROJ-12",
                InvoiceDate="15/03/2026",
                DueDate="14/04/2026",
            ),
            xero_row(
                InvoiceNumber="A-3",
                Reference="",
                ContactName="Initech",
                Description="Consulting",
                InvoiceDate="15/03/2026",
                DueDate="14/04/2026",
            ),
        ]
    )
    batch = history_import_commit(raw=raw, file_name="inv.csv")
    by_number = {i.number: i for i in ExternalInvoice.objects.filter(history_import=batch)}
    assert by_number["A-1"].match_method == "po_number" and by_number["A-1"].contract_id == acme.pk
    line = by_number["A-1"].lines.get()
    assert (line.line_ref, line.period_start) == ("L1", date(2026, 3, 1))  # in advance: the invoice date's period
    assert by_number["A-2"].match_method == "customer"
    assert by_number["A-2"].lines.get().obligation_key == f"milestone:{acme.pk}:L2"
    assert by_number["A-3"].contract_id is None and by_number["A-3"].match_method == "unmatched"
    assert (batch.invoice_count, batch.line_count, batch.matched_line_count) == (3, 3, 2)


def test_importing_the_same_invoices_again_is_refused_and_changes_nothing(acme):
    raw = to_csv([xero_row()])
    history_import_commit(raw=raw, file_name="jan.csv")
    with pytest.raises(ExportRejected) as exc:
        history_import_commit(raw=to_csv([xero_row(InvoiceNumber="INV-0009"), xero_row()]), file_name="again.csv")
    (problem,) = exc.value.problems
    assert (problem.file, problem.row, problem.column) == ("again.csv", 3, "InvoiceNumber")
    assert "INV-0001 was already imported from jan.csv" in problem.message
    assert ExternalInvoice.objects.count() == 1 and ExternalInvoiceLine.objects.count() == 1


def test_a_bad_row_anywhere_imports_nothing(acme):
    raw = to_csv(
        [xero_row(InvoiceNumber=f"B-{i}") for i in range(20)] + [xero_row(InvoiceNumber="B-99", Currency="ZZZ")]
    )
    with pytest.raises(ExportRejected):
        history_import_commit(raw=raw, file_name="inv.csv")
    assert not ExternalInvoice.objects.exists()


def test_amended_rate_still_matches_the_same_line_and_period(acme):
    amend(acme, effective_from=date(2026, 4, 1), lines=[{"line_ref": "L1", "amount": Decimal("3400.00")}])
    raw = to_csv(
        [
            xero_row(
                Description="Retainer Apr 2026",
                UnitAmount="3100.00",
                LineAmount="3100.00",
                InvoiceDate="01/04/2026",
                DueDate="01/05/2026",
            )
        ]
    )
    line = history_import_preview(raw=raw, file_name="inv.csv", date_format="dmy").invoices[0].lines[0]
    assert line.match.period_start == date(2026, 4, 1) and line.match.line_ref == "L1"


def test_billed_history_counts_sent_invoices_less_credit_notes(acme):
    raw = to_csv(
        [
            xero_row(InvoiceNumber="I-1", Total="3720.00"),
            xero_row(InvoiceNumber="I-2", Total="3720.00", Status="Draft"),
            xero_row(
                InvoiceNumber="CN-1", Type="Sales credit note", Total="620.00", LineAmount="516.67", TaxTotal="103.33"
            ),
        ]
    )
    history_import_commit(raw=raw, file_name="inv.csv")
    assert external_billed_by_contract() == {acme.pk: {"GBP": Decimal("3100.00")}}
