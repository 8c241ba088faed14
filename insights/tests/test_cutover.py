"""Cut-over and history in the insights: what the previous system billed (``billed_through``) is not a
leak, and the imported invoice history counts in the billed value."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal

import pytest

from billing.services.history import history_import_commit
from billing.tests.builders import contract_with, hours
from billing.tests.test_history_formats import to_csv, xero_row
from insights.models import LeakageFinding
from insights.selectors import portfolio_load, portfolio_valuation
from insights.services.leakage import leakage_scan

pytestmark = pytest.mark.usefixtures("in_tenant_a")

D = Decimal
AS_OF = date(2026, 6, 15)
RETAINER = {"kind": "recurring", "amount": D("1000.00"), "frequency": "monthly", "timing": "advance"}
TM = {"time_and_materials": True, "rates": [("engineer", "150.00")], "cap": None}


def rules_of(contract) -> list[tuple[str, date]]:
    return sorted(LeakageFinding.objects.filter(contract=contract).values_list("rule", "period_start"))


def test_periods_hours_and_milestones_before_the_cut_over_are_not_leaks():
    from contracts.tests.factories import MilestoneFactory

    contract = contract_with(RETAINER, TM, {"milestone": True, "amount": D("5000.00")}, start=date(2026, 1, 1))
    contract.billed_through = date(2026, 4, 30)
    contract.save(update_fields=["billed_through"])
    hours(contract, "3", date(2026, 4, 20), line_ref="L2")  # billed elsewhere
    hours(contract, "2", date(2026, 5, 6), line_ref="L2")  # after the cut-over: a leak
    MilestoneFactory(
        contract=contract, line_ref="L3", status="delivered", delivered_at=datetime(2026, 3, 2, tzinfo=UTC)
    )
    leakage_scan(as_of=AS_OF)
    assert rules_of(contract) == [("L10", date(2026, 5, 1)), ("L10", date(2026, 6, 1)), ("L2", date(2026, 5, 1))]
    assert LeakageFinding.objects.get(contract=contract, rule="L2").amount == D("300.00")


def test_a_period_straddling_the_cut_over_owes_only_the_days_after_it():
    contract = contract_with(RETAINER, start=date(2026, 1, 1))
    contract.billed_through = date(2026, 6, 10)  # the old system billed June up to the 10th
    contract.save(update_fields=["billed_through"])
    leakage_scan(as_of=AS_OF)
    (finding,) = LeakageFinding.objects.filter(contract=contract, rule="L10")
    assert finding.period_start == date(2026, 6, 1) and finding.amount == D("666.67")  # 20/30 of 1,000
    assert "billed elsewhere" in finding.evidence["basis"]


def test_the_billed_value_includes_the_imported_history():
    contract = contract_with(RETAINER, start=date(2026, 1, 1), number="C-HIST", currency="GBP")
    raw = to_csv(
        [
            xero_row(InvoiceNumber="H-1", Reference="C-HIST", Total="1200.00", TaxTotal="200.00", UnitAmount="1000.00", LineAmount="1000.00", TaxAmount="200.00", Description="Retainer Jan 2026"),
            xero_row(InvoiceNumber="H-2", Reference="C-HIST", Total="1200.00", TaxTotal="200.00", UnitAmount="1000.00", LineAmount="1000.00", TaxAmount="200.00", Description="Retainer Feb 2026", InvoiceDate="28/02/2026", DueDate="30/03/2026"),
        ]
    )  # fmt: skip
    history_import_commit(raw=raw, file_name="xero.csv")
    from contracts.models import Contract

    rows = portfolio_valuation(portfolio_load(today=AS_OF, contracts=Contract.objects.filter(pk=contract.pk)))
    (row,) = [r for r in rows if r.contract_id == contract.pk]
    assert (row.currency, row.billed) == ("GBP", D("2400.00"))


def test_dso_counts_the_imported_history_as_credit_sales_and_receivables():
    from receivables.selectors import dso_series

    header_extra = {"FullyPaidOnDate": ""}
    rows = [
        # March: 1,200 issued on 1 Mar, paid 20 Apr (open at the end of March).
        xero_row(InvoiceNumber="D-1", Reference="", ContactName="Somebody", InvoiceDate="01/03/2026", DueDate="31/03/2026",
                 Total="1200.00", TaxTotal="200.00", Status="Paid", **header_extra | {"FullyPaidOnDate": "20/04/2026"}),
        # March: 600 issued on 10 Mar, paid 25 Mar.
        xero_row(InvoiceNumber="D-2", Reference="", ContactName="Somebody", InvoiceDate="10/03/2026", DueDate="09/04/2026",
                 Total="600.00", TaxTotal="100.00", UnitAmount="500.00", LineAmount="500.00", TaxAmount="100.00",
                 Status="Paid", FullyPaidOnDate="25/03/2026"),
    ]  # fmt: skip
    from billing.tests.test_history_formats import XERO_HEADER

    raw = to_csv(rows, header=[*XERO_HEADER, "FullyPaidOnDate"])
    history_import_commit(raw=raw, file_name="xero.csv")
    march = next(
        m for m in dso_series(as_of=date(2026, 4, 30), months=2) if m.month == "2026-03" and m.currency == "GBP"
    )
    assert (march.credit_sales, march.ar_end) == (D("1800.00"), D("1200.00"))
    assert march.dso == D("20.7")  # 1,200 / 1,800 × 31
    assert march.average_days_to_pay == D("15.0")  # D-2 paid 15 days after issue


def test_the_imported_historys_receivables_on_several_days_at_once_equal_each_days():
    """``external_open_at_dates`` (the DSO's month-ends in one query) against ``external_open_at``, day by day."""
    from billing.services.history import external_open_at, external_open_at_dates
    from billing.tests.test_history_formats import XERO_HEADER

    rows = [
        xero_row(InvoiceNumber="E-1", Reference="", ContactName="Somebody", InvoiceDate="01/02/2026", DueDate="03/03/2026",
                 Status="Paid", FullyPaidOnDate="20/03/2026"),
        xero_row(InvoiceNumber="E-2", Reference="", ContactName="Somebody", InvoiceDate="10/02/2026", DueDate="12/03/2026",
                 Status="Paid", FullyPaidOnDate="", InvoiceAmountPaid="3720.00", InvoiceAmountDue="0.00"),
        xero_row(InvoiceNumber="E-3", Reference="", ContactName="Somebody", InvoiceDate="15/03/2026", DueDate="14/04/2026",
                 Status="Awaiting Payment", FullyPaidOnDate=""),
    ]  # fmt: skip
    raw = to_csv(rows, header=[*XERO_HEADER, "FullyPaidOnDate"])
    history_import_commit(raw=raw, file_name="xero.csv")
    days = [date(2026, 1, 31), date(2026, 2, 28), date(2026, 3, 12), date(2026, 3, 13), date(2026, 3, 20),
            date(2026, 3, 31), date(2026, 4, 14), date(2026, 4, 30)]  # fmt: skip
    at = external_open_at_dates(dates=days)
    assert at == {day: external_open_at(as_of=day) for day in days}
    assert any(at.values())
