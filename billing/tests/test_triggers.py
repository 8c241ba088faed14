"""Each billing trigger with hand-calculated amounts (DESIGN.md §4)."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal

import pytest
import time_machine

from billing.models import BillingReviewTask, Invoice, InvoiceLine, TimeEntry, UsageEvent
from billing.services.triggers import contract_bill_due
from billing.tests.builders import amend, contract_with, hours, usage

D = Decimal

RETAINER = {
    "kind": "recurring",
    "description": "Retainer",
    "amount": D("3100.00"),
    "frequency": "monthly",
    "timing": "advance",
}
USAGE = {
    "kind": "usage",
    "description": "API calls",
    "metric": "api_calls",
    "frequency": "monthly",
    "timing": "",
    "amount": None,
    "aggregation": "sum",
}
DESIGN_TIERS = [("100", "1.00"), ("500", "0.80"), (None, "0.50")]


@pytest.fixture(autouse=True)
def late_in_the_year():
    # "Now" is after every date these tests bill, so no fact is in the future.
    with time_machine.travel(datetime(2026, 12, 20, 12, tzinfo=UTC), tick=False):
        yield


def bill(contract, as_of: date) -> list[Invoice]:
    return contract_bill_due(contract_id=contract.pk, as_of=as_of).invoices


def lines_of(invoices) -> list[tuple[str, Decimal]]:
    return [(line.kind, line.amount) for inv in invoices for line in inv.lines.order_by("position")]


def only_line(invoices) -> InvoiceLine:
    (invoice,) = invoices
    (line,) = invoice.lines.all()
    return line


# --------------------------------------------------------------------------- recurring


def test_a_retainer_in_advance_from_15_january_bills_17_31_of_the_month_first(in_tenant_a):
    contract = contract_with(RETAINER)
    first = bill(contract, date(2026, 1, 15))
    line = only_line(first)
    assert line.amount == D("1700.00")  # 17/31 × 3,100.00
    assert (line.period_start, line.period_end) == (date(2026, 1, 15), date(2026, 1, 31))
    assert first[0].status == "issued" and first[0].total == D("1700.00")
    assert first[0].issue_date == date(2026, 1, 15) and first[0].due_date == date(2026, 2, 14)

    assert bill(contract, date(2026, 1, 31)) == []  # February has not started
    feb = only_line(bill(contract, date(2026, 2, 1)))
    assert feb.amount == D("3100.00") and feb.description == "Retainer Feb 2026"
    assert bill(contract, date(2026, 2, 1)) == []  # idempotent


def test_a_retainer_in_arrears_bills_when_the_period_closes(in_tenant_a):
    contract = contract_with(dict(RETAINER, timing="arrears"))
    assert bill(contract, date(2026, 1, 31)) == []
    assert only_line(bill(contract, date(2026, 2, 1))).amount == D("1700.00")


def test_an_anniversary_retainer_runs_from_the_start_day_and_prorates_the_last_period(in_tenant_a):
    contract = contract_with(RETAINER, end=date(2026, 3, 20), billing_anchor="anniversary")
    jan = only_line(bill(contract, date(2026, 1, 15)))
    assert (jan.period_start, jan.period_end, jan.amount) == (date(2026, 1, 15), date(2026, 2, 14), D("3100.00"))
    assert bill(contract, date(2026, 2, 14)) == []
    assert only_line(bill(contract, date(2026, 2, 15))).amount == D("3100.00")
    last = only_line(bill(contract, date(2026, 3, 15)))
    # 15–20 March of the 15 March – 14 April period: 6/31 × 3,100.00 = 600.00
    assert (last.period_start, last.period_end, last.amount) == (date(2026, 3, 15), date(2026, 3, 20), D("600.00"))
    assert bill(contract, date(2026, 4, 15)) == []


def test_a_quarterly_retainer_prorates_its_first_calendar_quarter(in_tenant_a):
    contract = contract_with(dict(RETAINER, amount=D("3000.00"), frequency="quarterly"))
    # 15 Jan – 31 Mar is 76 of Q1's 90 days: 3,000 × 76/90 = 2,533.33
    assert only_line(bill(contract, date(2026, 1, 15))).amount == D("2533.33")
    assert only_line(bill(contract, date(2026, 4, 1))).amount == D("3000.00")


def test_hours_beyond_the_included_ones_are_billed_at_the_overage_rate_when_the_period_closes(in_tenant_a):
    contract = contract_with(dict(RETAINER, line_ref="R", included_hours=D("20"), overage_rate=D("150.00")))
    bill(contract, date(2026, 1, 15))
    bill(contract, date(2026, 2, 1))
    hours(contract, "15", date(2026, 2, 3), role="consultant", line_ref="R")
    hours(contract, "10", date(2026, 2, 20), role="consultant", line_ref="R")
    march = bill(contract, date(2026, 3, 1))
    assert sorted(lines_of(march)) == [("overage", D("750.00")), ("recurring", D("3100.00"))]  # 5 h × 150
    overage = march[0].lines.get(kind="overage")
    assert overage.quantity == D("5") and overage.unit_amount == D("150")
    assert not TimeEntry.objects.filter(contract=contract, invoice_line__isnull=True).exists()

    # Three more February hours arrive late: billed on the next invoice as extra overage.
    hours(contract, "3", date(2026, 2, 27), role="consultant", line_ref="R")
    april = bill(contract, date(2026, 4, 1))
    assert sorted(lines_of(april)) == [("overage", D("450.00")), ("recurring", D("3100.00"))]
    assert april[0].lines.get(kind="overage").period_start == date(2026, 2, 1)


def test_hours_within_the_included_ones_bill_no_overage_and_are_consumed(in_tenant_a):
    contract = contract_with(dict(RETAINER, line_ref="R", included_hours=D("20"), overage_rate=D("150.00")))
    bill(contract, date(2026, 2, 1))
    entry = hours(contract, "12", date(2026, 2, 3), role="consultant", line_ref="R")
    assert lines_of(bill(contract, date(2026, 3, 1))) == [("recurring", D("3100.00"))]
    entry.refresh_from_db()
    assert entry.invoice_line.period_start == date(2026, 2, 1)  # the February retainer line took them


# --------------------------------------------------------------------------- fixed fee, milestones


def test_a_fixed_fee_bills_once_on_its_date(in_tenant_a):
    contract = contract_with(
        {
            "kind": "fixed_fee",
            "description": "Onboarding",
            "amount": D("5000.00"),
            "frequency": "",
            "timing": "",
            "bill_on": date(2026, 3, 1),
        }
    )
    assert bill(contract, date(2026, 2, 28)) == []
    assert only_line(bill(contract, date(2026, 3, 1))).amount == D("5000.00")
    assert bill(contract, date(2026, 6, 1)) == []


def test_a_delivered_milestone_bills_at_the_terms_of_its_delivery_date(in_tenant_a):
    from contracts.models import Milestone

    contract = contract_with(
        {
            "kind": "milestone",
            "description": "Phase 1 go-live",
            "amount": D("12000.00"),
            "frequency": "",
            "timing": "",
            "reference": "PROJ-12",
            "line_ref": "M1",
        }
    )
    milestone = Milestone.objects.get_or_create(contract=contract, line_ref="M1", defaults={"name": "Phase 1"})[0]
    assert bill(contract, date(2026, 3, 20)) == []  # not delivered yet
    Milestone.objects.filter(pk=milestone.pk).update(
        status="delivered", delivered_at=datetime(2026, 3, 20, 9, tzinfo=UTC)
    )
    line = only_line(bill(contract, date(2026, 3, 20)))
    assert (line.kind, line.amount, line.milestone_id) == ("milestone", D("12000.00"), milestone.pk)
    milestone.refresh_from_db()
    assert milestone.status == "invoiced"
    assert bill(contract, date(2026, 3, 21)) == []


def test_a_percentage_milestone_takes_its_share_of_the_fixed_fees(in_tenant_a):
    from contracts.models import Milestone

    contract = contract_with(
        {
            "kind": "fixed_fee",
            "description": "Project",
            "amount": D("40000.00"),
            "frequency": "",
            "timing": "",
            "bill_on": date(2027, 1, 1),
        },
        {
            "kind": "milestone",
            "description": "Design sign-off",
            "amount": None,
            "percent_of_fixed_fee": D("25"),
            "frequency": "",
            "timing": "",
            "line_ref": "M1",
            "reference": "D-1",
        },
    )
    Milestone.objects.update_or_create(
        contract=contract,
        line_ref="M1",
        defaults={
            "name": "Design",
            "status": "delivered",
            "delivered_at": datetime(2026, 2, 2, tzinfo=UTC),
        },
    )
    assert lines_of(bill(contract, date(2026, 2, 2))) == [("milestone", D("10000.00"))]


# --------------------------------------------------------------------------- time and materials


def test_time_and_materials_bills_at_the_rate_card_under_the_contract_wide_cap(in_tenant_a):
    contract = contract_with(
        {
            "kind": "time_and_materials",
            "description": "Extra engineering",
            "amount": None,
            "frequency": "",
            "timing": "",
            "cap": D("2000.00"),
            "line_ref": "TM",
            "rates": [("engineer", "150.00"), ("designer", "100.00")],
        }
    )
    hours(contract, "8", date(2026, 1, 20), line_ref="TM")
    hours(contract, "2", date(2026, 1, 21), role="designer", line_ref="TM")
    assert bill(contract, date(2026, 1, 31)) == []  # the period has not closed
    january = bill(contract, date(2026, 2, 1))
    assert sorted(lines_of(january)) == [("time_and_materials", D("200.00")), ("time_and_materials", D("1200.00"))]

    hours(contract, "5", date(2026, 2, 10), line_ref="TM")  # 750.00, but only 600.00 of cap remains
    capped = only_line(bill(contract, date(2026, 3, 1)))
    assert capped.amount == D("600.00") and capped.quantity == D("5") and "capped" in capped.description
    assert BillingReviewTask.objects.filter(contract=contract, kind="cap_reached").count() == 1

    hours(contract, "2", date(2026, 3, 3), line_ref="TM")
    assert lines_of(bill(contract, date(2026, 4, 1))) == [("time_and_materials", D("0.00"))]
    assert not TimeEntry.objects.filter(contract=contract, invoice_line__isnull=True).exists()


def test_time_no_line_takes_raises_a_review_task(in_tenant_a):
    contract = contract_with(RETAINER)
    hours(contract, "4", date(2026, 2, 3), role="plumber")
    bill(contract, date(2026, 3, 1))
    assert BillingReviewTask.objects.filter(contract=contract, kind="unassigned_time").exists()


def test_hours_over_a_fixed_fee_budget_raise_a_review_task_once(in_tenant_a):
    contract = contract_with(
        {
            "kind": "fixed_fee",
            "description": "Website",
            "amount": D("9000.00"),
            "frequency": "",
            "timing": "",
            "included_hours": D("10"),
            "line_ref": "FF",
        }
    )
    hours(contract, "6", date(2026, 2, 3), line_ref="FF")
    bill(contract, date(2026, 2, 4))
    assert not BillingReviewTask.objects.filter(contract=contract, kind="budget_overrun").exists()
    hours(contract, "6", date(2026, 2, 4), line_ref="FF")
    bill(contract, date(2026, 2, 5))
    bill(contract, date(2026, 2, 6))
    assert BillingReviewTask.objects.filter(contract=contract, kind="budget_overrun").count() == 1


# --------------------------------------------------------------------------- usage


def usage_contract(**line):
    spec = dict(USAGE, line_ref="U")
    spec.update(line)
    return contract_with(spec, start=date(2026, 1, 1))


def test_graduated_usage_at_period_close(in_tenant_a):
    contract = usage_contract(charge_model="graduated", tiers=DESIGN_TIERS)
    usage(contract, "api_calls", 600, date(2026, 1, 5))
    usage(contract, "api_calls", 50, date(2026, 1, 31))
    usage(contract, "api_calls", 999, date(2026, 2, 1))  # February: not billed with January
    line = only_line(bill(contract, date(2026, 2, 1)))
    assert (line.amount, line.quantity) == (D("495.00"), D("650"))  # 100×1.00 + 400×0.80 + 150×0.50


def test_volume_usage_prices_every_unit_at_the_reached_tier(in_tenant_a):
    contract = usage_contract(charge_model="volume", tiers=DESIGN_TIERS)
    usage(contract, "api_calls", 650, date(2026, 1, 5))
    assert only_line(bill(contract, date(2026, 2, 1))).amount == D("325.00")


def test_package_usage_after_free_units(in_tenant_a):
    contract = usage_contract(charge_model="package", package_size=D("100"), amount=D("10.00"), free_units=D("50"))
    usage(contract, "api_calls", 300, date(2026, 1, 5))  # 250 billable → 3 packages
    assert only_line(bill(contract, date(2026, 2, 1))).amount == D("30.00")


def test_percentage_usage_charges_each_transaction(in_tenant_a):
    contract = usage_contract(
        metric="payments", charge_model="percentage", rate=D("2.9"), fixed_amount=D("0.30"), aggregation="count"
    )
    usage(contract, "payments", 1, date(2026, 1, 5), amount="100.00")  # 2.90 + 0.30
    usage(contract, "payments", 1, date(2026, 1, 6), amount="50")  # 1.45 + 0.30
    line = only_line(bill(contract, date(2026, 2, 1)))
    assert (line.amount, line.quantity) == (D("4.95"), D("2"))


def test_unique_count_usage_counts_distinct_property_values(in_tenant_a):
    contract = usage_contract(
        metric="seats",
        charge_model="per_unit",
        unit_amount=D("12.00"),
        aggregation="unique_count",
        aggregation_property="user",
    )
    for user in ["ann", "bob", "ann", "cy"]:
        usage(contract, "seats", 1, date(2026, 1, 9), user=user)
    assert only_line(bill(contract, date(2026, 2, 1))).amount == D("36.00")


def test_a_minimum_commitment_tops_the_period_up(in_tenant_a):
    contract = usage_contract(charge_model="per_unit", unit_amount=D("0.01"), minimum_commitment=D("50.00"))
    usage(contract, "api_calls", 1000, date(2026, 1, 5))
    assert sorted(lines_of(bill(contract, date(2026, 2, 1)))) == [("usage", D("10.00")), ("usage_minimum", D("40.00"))]
    # A month with no usage at all still owes the minimum.
    assert lines_of(bill(contract, date(2026, 3, 1))) == [("usage_minimum", D("50.00"))]
    assert bill(contract, date(2026, 3, 2)) == []


def test_crossing_the_threshold_issues_an_interim_invoice_and_the_close_bills_the_rest(in_tenant_a):
    contract = usage_contract(charge_model="per_unit", unit_amount=D("1.00"), threshold_amount=D("100.00"))
    usage(contract, "api_calls", 60, date(2026, 2, 3))
    assert bill(contract, date(2026, 2, 10)) == []  # 60.00 is under the threshold
    usage(contract, "api_calls", 60, date(2026, 2, 11))
    interim = only_line(bill(contract, date(2026, 2, 12)))
    assert (interim.amount, interim.quantity) == (D("120.00"), D("120")) and "interim" in interim.description
    usage(contract, "api_calls", 30, date(2026, 2, 20))
    close = only_line(bill(contract, date(2026, 3, 1)))
    assert (close.amount, close.quantity) == (D("30.00"), D("30"))


def test_late_usage_for_an_invoiced_period_is_billed_on_the_next_invoice_as_its_own_line(in_tenant_a):
    contract = usage_contract(charge_model="graduated", tiers=DESIGN_TIERS)
    usage(contract, "api_calls", 80, date(2026, 1, 10))
    assert lines_of(bill(contract, date(2026, 2, 1))) == [("usage", D("80.00"))]
    usage(contract, "api_calls", 50, date(2026, 1, 30))  # arrives after January was invoiced
    usage(contract, "api_calls", 10, date(2026, 2, 15))
    march = bill(contract, date(2026, 3, 1))
    lines = {(ln.period_start, ln.description): ln.amount for ln in march[0].lines.all()}
    # January now holds 130 units: 100×1.00 + 30×0.80 = 124.00, of which 80.00 was billed → 44.00
    assert lines == {
        (date(2026, 1, 1), "API calls Jan 2026 (late usage)"): D("44.00"),
        (date(2026, 2, 1), "API calls Feb 2026"): D("10.00"),
    }
    assert not UsageEvent.objects.filter(contract=contract, invoice_line__isnull=True).exists()
    assert bill(contract, date(2026, 3, 2)) == []


# --------------------------------------------------------------------------- terms, amendments, issuing


def test_an_amendment_applies_from_the_first_period_that_starts_after_it(in_tenant_a):
    contract = contract_with(dict(RETAINER, line_ref="R"), start=date(2026, 1, 1))
    amend(contract, effective_from=date(2026, 4, 1), lines=[{"line_ref": "R", "amount": D("4000.00")}])
    amend(
        contract,
        effective_from=date(2026, 6, 15),
        lines=[{"line_ref": "R", "amount": D("5000.00")}],
        payment_terms_days=45,
    )
    invoices = bill(contract, date(2026, 7, 1))  # catch-up from January
    by_month = {ln.period_start.month: ln.amount for inv in invoices for ln in inv.lines.all()}
    assert by_month == {
        1: D("3100.00"),
        2: D("3100.00"),
        3: D("3100.00"),
        4: D("4000.00"),
        5: D("4000.00"),
        6: D("4000.00"),
        7: D("5000.00"),
    }
    # July's line is under 45-day terms, so it is its own invoice.
    terms = sorted((inv.payment_terms_days, inv.lines.count()) for inv in invoices)
    assert terms == [(30, 6), (45, 1)]


def test_a_po_required_contract_without_a_po_is_held_as_a_draft_with_a_review_task(in_tenant_a):
    contract = contract_with(RETAINER, po_required=True, po_number="")
    (invoice,) = bill(contract, date(2026, 1, 15))
    assert invoice.status == "draft" and invoice.number is None
    assert "requires a PO number" in invoice.hold_reasons[0]
    assert BillingReviewTask.objects.get(invoice=invoice).kind == "presend_check"


def test_a_po_required_contract_with_its_po_issues_with_the_po(in_tenant_a):
    contract = contract_with(RETAINER, po_required=True, po_number="PO-7781")
    (invoice,) = bill(contract, date(2026, 1, 15))
    assert invoice.status == "issued" and invoice.po_number == "PO-7781"


def test_review_first_contracts_keep_drafts_and_finance_issues_them(in_tenant_a):
    from billing.services.invoicing import invoice_issue

    contract = contract_with(RETAINER, auto_issue=False)
    (invoice,) = bill(contract, date(2026, 1, 15))
    assert invoice.status == "draft" and invoice.hold_reasons == []
    issued = invoice_issue(invoice_id=invoice.pk, issue_date=date(2026, 1, 16))
    assert issued.status == "issued" and issued.number and issued.due_date == date(2026, 2, 15)


def test_the_tenant_setting_holds_drafts_unless_the_contract_overrides_it(in_tenant_a):
    from revexos.tenancy.models import Tenant

    Tenant.objects.filter(schema_name=in_tenant_a.schema).update(auto_issue_invoices=False)
    try:
        assert bill(contract_with(RETAINER), date(2026, 1, 15))[0].status == "draft"
        assert bill(contract_with(RETAINER, auto_issue=True), date(2026, 1, 15))[0].status == "issued"
    finally:
        Tenant.objects.filter(schema_name=in_tenant_a.schema).update(auto_issue_invoices=True)


def test_a_draft_contract_is_not_billed(in_tenant_a):
    assert bill(contract_with(RETAINER, status="draft"), date(2026, 2, 1)) == []
