"""The audit agrees with the real run: a history that is exactly what RevExOS billed has no leak.

Generated portfolios (perf's strategies in ``billing/tests/test_chunked_run.py``, which already holds
the shadow to the lines the run creates) are billed by the real run month by month; their invoices
are written out in Xero's export layout, imported as history, and audited against the engine's
shadow run that ignores what was billed. Matching, the per-period comparison and the discount rule
must then find nothing: every obligation invoiced once, at its amount, with the discount the
contract grants.
"""

from __future__ import annotations

import csv
import io
from datetime import UTC, date, datetime
from decimal import Decimal

import pytest
import time_machine
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from billing.models import Invoice, InvoiceLine
from billing.services.history import history_import_commit
from billing.services.runs import billing_run
from billing.tests.test_chunked_run import add_late_facts, build, contract_spec
from billing.tests.test_history_formats import XERO_HEADER

pytestmark = pytest.mark.usefixtures("in_tenant_a")

RUN_DAYS = [date(2026, 2, 1), date(2026, 3, 1), date(2026, 4, 1)]
D = Decimal


@pytest.fixture(autouse=True)
def late_in_the_year():
    with time_machine.travel(datetime(2026, 12, 20, 12, tzinfo=UTC), tick=False):
        yield


def xero_export(contracts) -> bytes:
    """The contracts' invoices as Xero would export them: one row per line, the line's discount as
    a percentage, dates in the UK locale."""
    from discounts.models import DiscountApplication

    discounts: dict[int, Decimal] = {}
    for line_id, amount in DiscountApplication.objects.filter(invoice__contract__in=contracts).values_list(
        "invoice_line_id", "amount"
    ):
        discounts[line_id] = discounts.get(line_id, D(0)) + amount
    rows = []
    invoices = Invoice.objects.filter(contract__in=contracts).select_related("contract").prefetch_related("lines")
    for invoice in invoices.order_by("pk"):
        issued = invoice.issue_date or invoice.billing_date  # a held draft: the day the run made it
        due = invoice.due_date or date.fromordinal(issued.toordinal() + invoice.payment_terms_days)
        for line in invoice.lines.all():
            off = discounts.get(line.pk, D(0))
            # Xero holds LineAmount = Quantity × UnitAmount less the discount: a capped line (hours
            # over a cap) is written as 1 × its amount, as RevExOS's own Xero export writes it.
            quantity, unit = line.quantity, line.unit_amount
            if quantity * unit != line.amount:
                quantity, unit = D(1), line.amount
            rows.append(
                {
                    "ContactName": invoice.contract.customer.legal_name,
                    "InvoiceNumber": invoice.number or f"DRAFT-{invoice.pk}",
                    "Reference": invoice.contract.number,
                    "InvoiceDate": issued.strftime("%d/%m/%Y"),
                    "DueDate": due.strftime("%d/%m/%Y"),
                    "Description": line.description,
                    "Quantity": format(quantity, "f"),
                    "UnitAmount": format(unit, "f"),
                    "Discount": format((off / line.amount * 100).quantize(D("0.000001")), "f") if off else "",
                    "LineAmount": format(line.amount - off, "f"),
                    "TaxAmount": "0",
                    "TaxTotal": "0",
                    "Currency": invoice.currency,
                    "Type": "Sales invoice",
                    "Status": "Awaiting Payment",
                }
            )
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=XERO_HEADER, lineterminator="\r\n", extrasaction="ignore")
    writer.writeheader()
    for row in rows:
        writer.writerow({k: row.get(k, "") for k in XERO_HEADER})
    return out.getvalue().encode()


# No shrinking: each example writes to the database, and the failing portfolio is printed whole anyway.
@settings(
    max_examples=12,
    deadline=None,
    phases=(Phase.explicit, Phase.reuse, Phase.generate),
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(specs=st.lists(contract_spec, min_size=1, max_size=3))
def test_an_audit_of_what_revexos_billed_finds_no_leak(specs):
    from audits.models import Audit
    from audits.services.process import _compare

    contracts = []
    for spec in specs:
        # The audit compares with the history from the contract's start, with the PO the contract has:
        # a cut-over or a PO that was never given would be findings of their own (tested elsewhere).
        spec = {**spec, "billed_through": None, "po_missing": False}
        contract = build(spec)
        add_late_facts(contract, spec)
        contracts.append(contract)
    ids = [c.pk for c in contracts]
    for day in RUN_DAYS:
        billing_run(as_of=day, contract_ids=ids)
    export = xero_export(contracts)
    if export.count(b"\r\n") > 1:  # nothing billed yet (e.g. a milestone still pending): no file
        history_import_commit(raw=export, file_name="revexos-as-xero.csv", date_format="dmy")

    audit = Audit(name="agreement", as_of=RUN_DAYS[-1], history_from=date(2026, 1, 1))
    result = _compare(audit, {}, lambda *_: None, contract_ids=ids)
    assert [(f.rule, f.contract_number, f.title, f.amount) for f in result["findings"]] == []
    assert result["report"]["unmatched"] == []
    # The report's "would have billed" and "billed" agree over the range (to a cent per line: billing
    # rounds a discount once per invoice and spreads it, the report once per obligation), and are
    # not both empty when something was billed.
    lines = InvoiceLine.objects.filter(contract_id__in=ids)
    billed = sum((line.amount for line in lines), D(0))
    for currency, months in result["report"]["monthly"].items():
        owed = sum((D(m["owed"]) for m in months), D(0))
        tolerance = D("0.01") * lines.filter(invoice__currency=currency).count()
        assert abs(owed - sum((D(m["billed"]) for m in months), D(0))) <= tolerance, (currency, months)
    assert not billed or result["report"]["monthly"]
