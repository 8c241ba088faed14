"""Shadow billing: the run's own computation, written nowhere, and the cut-over (``billed_through``)."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal

import pytest
import time_machine

from billing.models import BillingReviewTask, Invoice, InvoiceLine, TimeEntry, UsageEvent
from billing.services.shadow import billing_shadow
from billing.services.triggers import contract_bill_due
from billing.tests.builders import contract_with, hours, usage

D = Decimal

RETAINER = {
    "kind": "recurring",
    "description": "Retainer",
    "amount": D("3100.00"),
    "frequency": "monthly",
    "timing": "advance",
}
ARREARS = dict(RETAINER, description="Support", amount=D("600.00"), timing="arrears", line_ref="S")
USAGE = {
    "kind": "usage",
    "description": "API calls",
    "metric": "api_calls",
    "frequency": "monthly",
    "timing": "",
    "amount": None,
    "aggregation": "sum",
    "charge_model": "per_unit",
    "unit_amount": D("0.50"),
    "line_ref": "U",
}
TM = {
    "kind": "time_and_materials",
    "description": "Engineering",
    "amount": None,
    "frequency": "",
    "timing": "",
    "cap": None,
    "line_ref": "TM",
    "rates": [("engineer", "150.00")],
}
FEE = {"kind": "fixed_fee", "description": "Onboarding", "amount": D("5000.00"), "frequency": "", "timing": ""}
MILESTONE = {
    "kind": "milestone",
    "description": "Go-live",
    "amount": D("12000.00"),
    "frequency": "",
    "timing": "",
    "reference": "PROJ-9",
    "line_ref": "M1",
}


@pytest.fixture(autouse=True)
def late_in_the_year():
    with time_machine.travel(datetime(2026, 12, 20, 12, tzinfo=UTC), tick=False):
        yield


def deliver(contract, day: date):
    from contracts.models import Milestone

    milestone, _ = Milestone.objects.get_or_create(contract=contract, line_ref="M1", defaults={"name": "Go-live"})
    Milestone.objects.filter(pk=milestone.pk).update(
        status="delivered", delivered_at=datetime.combine(day, datetime.min.time(), tzinfo=UTC).replace(hour=10)
    )
    return milestone


def a_busy_contract(**kwargs):
    contract = contract_with(
        RETAINER,
        ARREARS,
        USAGE,
        TM,
        dict(FEE, bill_on=date(2026, 2, 1), line_ref="F"),
        MILESTONE,
        start=date(2026, 1, 1),
        **kwargs,
    )
    for month, quantity in [(1, 100), (2, 250), (3, 40)]:
        usage(contract, "api_calls", quantity, date(2026, month, 10))
    hours(contract, "6", date(2026, 2, 12), line_ref="TM")
    hours(contract, "3", date(2026, 2, 13), role="analyst", line_ref="TM")  # no rate: a review task
    deliver(contract, date(2026, 2, 20))
    return contract


def as_rows(items):
    return sorted(
        (i.billing_key, i.kind, i.description, i.quantity, i.unit_amount, i.amount, i.period_start, i.period_end)
        for i in items
    )


def counts():
    return (
        Invoice.objects.count(),
        InvoiceLine.objects.count(),
        BillingReviewTask.objects.count(),
        UsageEvent.objects.filter(invoice_line__isnull=False).count(),
        TimeEntry.objects.filter(invoice_line__isnull=False).count(),
    )


def test_the_shadow_lists_exactly_the_lines_the_run_then_creates_and_writes_nothing(in_tenant_a):
    contract = a_busy_contract()
    before = counts()

    shadow = billing_shadow(contract_ids=[contract.pk], as_of=date(2026, 3, 1))
    assert counts() == before  # no invoice, line, review task or fact mark

    found = shadow.contracts[contract.pk]
    assert found.error == "" and found.skipped == ""
    kinds = {o.kind for o in found.obligations}
    assert kinds == {"recurring", "usage", "time_and_materials", "fixed_fee", "milestone"}
    assert [t.kind for t in found.review_tasks] == ["unassigned_time"]

    invoices = contract_bill_due(contract_id=contract.pk, as_of=date(2026, 3, 1)).invoices
    created = [line for invoice in invoices for line in invoice.lines.all()]
    assert as_rows(found.obligations) == as_rows(created)
    assert [(i.subtotal, i.total) for i in found.invoices] == [(inv.subtotal, inv.total) for inv in invoices]
    assert [[o.billing_key for o in i.lines] for i in found.invoices] == [
        [line.billing_key for line in inv.lines.order_by("position")] for inv in invoices
    ]
    assert BillingReviewTask.objects.filter(contract=contract, kind="unassigned_time").count() == 1

    assert billing_shadow(contract_ids=[contract.pk], as_of=date(2026, 3, 1)).obligations == []


def test_with_nothing_billed_assumed_the_shadow_lists_every_period_from_the_start(in_tenant_a):
    contract = a_busy_contract()
    contract_bill_due(contract_id=contract.pk, as_of=date(2026, 3, 1))
    usage(contract, "api_calls", 10, date(2026, 1, 25))  # late January usage

    again = billing_shadow(contract_ids=[contract.pk], as_of=date(2026, 3, 1), assume_unbilled=True).obligations
    usage_lines = sorted((o.period_start.month, o.quantity, o.amount) for o in again if o.kind == "usage")
    # One line per closed period with all of its usage, as if January had never been invoiced.
    assert usage_lines == [(1, D("110"), D("55.00")), (2, D("250"), D("125.00"))]
    assert sorted(o.period_start.month for o in again if o.kind == "recurring" and o.line_ref == "L1") == [1, 2, 3]
    assert {o.kind for o in again} >= {"fixed_fee", "milestone"}

    # The real run, meanwhile, only has the late January usage left to bill.
    late = billing_shadow(contract_ids=[contract.pk], as_of=date(2026, 3, 1)).obligations
    assert [(o.kind, o.amount, o.description) for o in late] == [
        ("usage", D("5.00"), "API calls Jan 2026 (late usage)")
    ]


def test_since_narrows_the_shadow_to_a_range_and_obligations_carry_their_dates(in_tenant_a):
    contract = a_busy_contract()
    ranged = billing_shadow(contract_ids=[contract.pk], as_of=date(2026, 3, 1), since=date(2026, 2, 1)).obligations
    assert ranged and all(o.on >= date(2026, 2, 1) for o in ranged)
    fee = next(o for o in ranged if o.kind == "fixed_fee")
    milestone = next(o for o in ranged if o.kind == "milestone")
    assert (fee.on, fee.period_start) == (date(2026, 2, 1), None)
    assert milestone.on == date(2026, 2, 20)
    assert all(o.currency == "USD" and o.contract_id == contract.pk for o in ranged)


def test_the_shadow_reports_contracts_it_cannot_price_or_does_not_bill(in_tenant_a):
    broken = contract_with(dict(USAGE, charge_model="graduated", unit_amount=None), start=date(2026, 1, 1))
    broken.versions.get().price_lines.get().tiers.all().delete()  # graduated pricing without tiers raises
    usage(broken, "api_calls", 5, date(2026, 1, 5))
    draft = contract_with(RETAINER, status="draft")
    future = contract_with(RETAINER, start=date(2027, 3, 1), end=date(2027, 12, 31))

    shadow = billing_shadow(contract_ids=[broken.pk, draft.pk, future.pk], as_of=date(2026, 2, 1))
    assert shadow.errors.keys() == {broken.pk}
    assert shadow.contracts[draft.pk].skipped == "draft"
    assert shadow.contracts[future.pk].skipped == "starts 2027-03-01"
    assert shadow.obligations == []


def test_shadow_invoice_totals_take_the_discounts_the_run_applies(in_tenant_a):
    from discounts.models import Discount

    contract = contract_with(RETAINER, start=date(2026, 1, 1))
    Discount.objects.create(
        contract=contract,
        customer=contract.customer,
        scope="contract",
        kind="percentage",
        value=D("10"),
        start_date=date(2026, 1, 1),
        end_date=date(2026, 1, 31),
        reason="launch",
        status="active",
    )
    (invoice,) = billing_shadow(contract_ids=[contract.pk], as_of=date(2026, 2, 1)).contracts[contract.pk].invoices
    assert (invoice.subtotal, invoice.discount_total, invoice.total) == (D("6200.00"), D("310.00"), D("5890.00"))
    (real,) = contract_bill_due(contract_id=contract.pk, as_of=date(2026, 2, 1)).invoices
    assert (real.subtotal, real.discount_total, real.total) == (invoice.subtotal, invoice.discount_total, invoice.total)


# --------------------------------------------------------------------------- cut-over


def test_a_contract_billed_through_last_month_bills_only_the_current_period(in_tenant_a):
    contract = contract_with(RETAINER, USAGE, start=date(2026, 1, 1), end=None)
    contract.billed_through = date(2026, 11, 30)
    contract.save(update_fields=["billed_through"])
    usage(contract, "api_calls", 70, date(2026, 11, 12))  # billed by the old system

    preview = billing_shadow(contract_ids=[contract.pk], as_of=date(2026, 12, 1)).obligations
    (invoice,) = contract_bill_due(contract_id=contract.pk, as_of=date(2026, 12, 1)).invoices
    assert [(ln.kind, ln.period_start, ln.amount) for ln in invoice.lines.all()] == [
        ("recurring", date(2026, 12, 1), D("3100.00"))
    ]
    assert [o.billing_key for o in preview] == [ln.billing_key for ln in invoice.lines.all()]

    # Without the cut-over the preview shows the catch-up that would be billed.
    catch_up = billing_shadow(contract_ids=[contract.pk], as_of=date(2026, 12, 1), assume_unbilled=True).obligations
    assert len([o for o in catch_up if o.kind == "recurring"]) == 12
    assert [(o.kind, o.period_start, o.amount) for o in catch_up if o.kind == "usage"] == [
        ("usage", date(2026, 11, 1), D("35.00"))
    ]


def test_the_cut_over_holds_for_every_trigger(in_tenant_a):
    contract = contract_with(
        ARREARS, USAGE, TM, dict(FEE, bill_on=date(2026, 3, 1), line_ref="F"), MILESTONE, start=date(2026, 1, 1)
    )
    contract.billed_through = date(2026, 3, 31)
    contract.save(update_fields=["billed_through"])
    usage(contract, "api_calls", 10, date(2026, 3, 30))
    usage(contract, "api_calls", 20, date(2026, 4, 2))
    hours(contract, "2", date(2026, 3, 3), line_ref="TM")
    hours(contract, "1", date(2026, 4, 3), line_ref="TM")
    hours(contract, "5", date(2026, 3, 9))  # no price line, before the cut-over: no review task
    deliver(contract, date(2026, 3, 15))

    invoices = contract_bill_due(contract_id=contract.pk, as_of=date(2026, 5, 1)).invoices
    got = sorted((ln.kind, ln.period_start, ln.amount) for inv in invoices for ln in inv.lines.all())
    assert got == [
        ("recurring", date(2026, 4, 1), D("600.00")),
        ("time_and_materials", date(2026, 4, 1), D("150.00")),
        ("usage", date(2026, 4, 1), D("10.00")),
    ]
    assert not BillingReviewTask.objects.filter(contract=contract).exists()
    assert contract_bill_due(contract_id=contract.pk, as_of=date(2026, 5, 1)).invoices == []

    # A milestone delivered after the cut-over is billed as usual.
    from contracts.models import Milestone

    Milestone.objects.filter(contract=contract).update(delivered_at=datetime(2026, 5, 2, 9, tzinfo=UTC))
    (milestone,) = contract_bill_due(contract_id=contract.pk, as_of=date(2026, 5, 2)).invoices
    assert [ln.kind for ln in milestone.lines.all()] == ["milestone"]


def test_a_period_straddling_the_cut_over_bills_only_the_days_and_facts_after_it(in_tenant_a):
    contract = contract_with(dict(RETAINER, frequency="quarterly"), USAGE, TM, start=date(2026, 1, 1))
    contract.billed_through = date(2026, 2, 28)  # mid-quarter for the retainer, mid-month for nothing
    contract.save(update_fields=["billed_through"])
    usage(contract, "api_calls", 8, date(2026, 2, 27))
    usage(contract, "api_calls", 4, date(2026, 3, 2))
    hours(contract, "2", date(2026, 2, 27), line_ref="TM")
    (invoice,) = contract_bill_due(contract_id=contract.pk, as_of=date(2026, 4, 1)).invoices
    got = sorted((ln.kind, ln.period_start, ln.period_end, ln.amount) for ln in invoice.lines.all())
    assert got == [
        # Q1 after the cut-over: 1-31 March, 31/90 × 3,100.00 = 1,067.78; Q2 in advance
        ("recurring", date(2026, 3, 1), date(2026, 3, 31), D("1067.78")),
        ("recurring", date(2026, 4, 1), date(2026, 6, 30), D("3100.00")),
        ("usage", date(2026, 3, 1), date(2026, 3, 31), D("2.00")),
    ]
    keys = sorted(invoice.lines.values_list("billing_key", flat=True))
    assert f"recurring:{contract.pk}:L1:2026-01-01" in keys  # the period's own key: never billed twice
    assert UsageEvent.objects.filter(contract=contract, invoice_line__isnull=True).count() == 1  # the old system's
