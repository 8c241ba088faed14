"""Leakage rules L1–L10: a planted case is found with the right amount, a clean contract of the
same kind gives no finding, and fixing the cause resolves the finding on the next scan."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pytest

from billing.models import InvoiceLine
from billing.services.invoicing import credit_note_create
from billing.services.triggers import contract_bill_due
from billing.tests.builders import contract_with, hours, usage
from insights.models import LeakageFinding
from insights.services.leakage import leakage_scan
from insights.tests.conftest import issued_invoice

pytestmark = pytest.mark.usefixtures("in_tenant_a")

AS_OF = date(2026, 6, 15)
D = Decimal


def scan(as_of: date = AS_OF):
    return leakage_scan(as_of=as_of)


def found(rule: str, contract) -> list[LeakageFinding]:
    return list(LeakageFinding.objects.filter(rule=rule, contract=contract).order_by("period_start", "id"))


def live(rule: str, contract) -> list[LeakageFinding]:
    return [f for f in found(rule, contract) if f.status in ("open", "acknowledged")]


def bill(contract, as_of: date = AS_OF):
    return contract_bill_due(contract_id=contract.pk, as_of=as_of)


RETAINER = {"kind": "recurring", "amount": D("1000.00"), "frequency": "monthly", "timing": "advance"}
TM = {"time_and_materials": True, "rates": [("engineer", "150.00")], "cap": None}
START = date(2026, 1, 1)


# --------------------------------------------------------------------------- L1


def _milestone_contract(delivered_at: datetime):
    from contracts.tests.factories import MilestoneFactory

    contract = contract_with({"milestone": True, "amount": D("12000.00")}, start=START)
    milestone = MilestoneFactory(
        contract=contract, line_ref="L1", status="delivered", delivered_at=delivered_at, delivered_source="jira"
    )
    return contract, milestone


def test_l1_delivered_milestone_not_invoiced_is_found_at_its_amount():
    contract, milestone = _milestone_contract(datetime(2026, 6, 10, 9, tzinfo=UTC))
    scan()
    [finding] = found("L1", contract)
    assert finding.amount == D("12000.00") and finding.currency == "USD"
    assert finding.evidence["rows"][0]["milestone"] == milestone.pk
    assert finding.review_task is not None and finding.review_task.kind == "leakage"


def test_l1_gives_billing_24_hours():
    contract, _ = _milestone_contract(datetime(2026, 6, 15, 6, tzinfo=UTC))
    scan()
    assert found("L1", contract) == []


def test_l1_invoiced_milestone_is_clean_and_invoicing_resolves():
    clean, _ = _milestone_contract(datetime(2026, 6, 10, 9, tzinfo=UTC))
    bill(clean)
    leaking, _ = _milestone_contract(datetime(2026, 6, 10, 9, tzinfo=UTC))
    scan()
    assert found("L1", clean) == [] and len(live("L1", leaking)) == 1
    bill(leaking)
    scan()
    [finding] = found("L1", leaking)
    assert finding.status == "resolved" and finding.resolved_at is not None
    assert finding.review_task.status == "resolved"


def test_l1_milestone_marked_invoiced_by_hand_without_an_invoice_is_found():
    contract, milestone = _milestone_contract(datetime(2026, 6, 1, 9, tzinfo=UTC))
    type(milestone).objects.filter(pk=milestone.pk).update(status="invoiced")
    scan()
    assert [f.amount for f in found("L1", contract)] == [D("12000.00")]


# --------------------------------------------------------------------------- L2


def test_l2_unbilled_time_after_its_period_closed_is_found_at_the_rate_card():
    contract = contract_with(TM, start=START)
    hours(contract, "10", date(2026, 5, 10), line_ref="L1")
    hours(contract, "2.5", date(2026, 5, 11), line_ref="L1")
    hours(contract, "4", date(2026, 6, 2), line_ref="L1")  # June is still open: not a leak yet
    scan()
    [finding] = found("L2", contract)
    assert finding.amount == D("1875.00")  # 12.5 h × 150
    assert (finding.period_start, finding.period_end) == (date(2026, 5, 1), date(2026, 5, 31))
    assert sum(D(r["hours"]) for r in finding.evidence["rows"]) == D("12.5")


def test_l2_respects_a_price_override_on_the_work_date():
    from discounts.models import PriceOverride

    contract = contract_with(TM, start=START)
    PriceOverride.objects.create(
        customer=contract.customer,
        contract=contract,
        line_ref="L1",
        role="engineer",
        rate=D("120"),
        currency="USD",
        start_date=date(2026, 5, 1),
        end_date=date(2026, 5, 10),
        reason="pilot",
        status="active",
    )
    hours(contract, "10", date(2026, 5, 10), line_ref="L1")  # 10 × 120
    hours(contract, "1", date(2026, 5, 11), line_ref="L1")  # 1 × 150
    scan()
    assert [f.amount for f in found("L2", contract)] == [D("1350.00")]


def test_l2_role_without_a_rate_is_estimated_at_the_highest_card_rate():
    contract = contract_with({**TM, "rates": [("engineer", "150.00"), ("designer", "90.00")]}, start=START)
    hours(contract, "2", date(2026, 5, 10), role="architect", line_ref="L1")
    scan()
    [finding] = found("L2", contract)
    assert finding.amount == D("300.00") and "no rate" in finding.evidence["basis"]


RETAINER_20H = {**RETAINER, "included_hours": D("20"), "overage_rate": D("150.00")}


def test_l2_late_hours_over_a_retainers_allowance_are_found_as_overage():
    contract = contract_with(RETAINER_20H, start=START)
    hours(contract, "9", date(2026, 5, 12), line_ref="L1")
    hours(contract, "9", date(2026, 5, 13), line_ref="L1")
    bill(contract, as_of=date(2026, 6, 1))  # May closed inside the allowance: no overage line
    hours(contract, "5", date(2026, 5, 28), line_ref="L1")  # logged after May was invoiced
    scan()
    [finding] = found("L2", contract)
    assert finding.amount == D("450.00")  # (23 h − 20 h included) × 150.00
    assert (finding.period_start, finding.period_end) == (date(2026, 5, 1), date(2026, 5, 31))
    assert "3 h over the 20 h included" in finding.title
    assert finding.evidence["facts"]["hours_in_period"] == "23" and finding.evidence["facts"]["overage_billed"] == "0"
    assert [r["hours"] for r in finding.evidence["rows"]] == ["5"]
    # Billing bills the late hours as extra overage; the next scan resolves the finding.
    bill(contract)
    scan()
    assert [f.status for f in found("L2", contract)] == ["resolved"]
    assert InvoiceLine.objects.get(contract=contract, kind="overage").amount == D("450.00")


def test_l2_retainer_overage_less_what_was_already_billed():
    contract = contract_with(RETAINER_20H, start=START)
    hours(contract, "13", date(2026, 5, 12), line_ref="L1")
    hours(contract, "12", date(2026, 5, 13), line_ref="L1")
    bill(contract, as_of=date(2026, 6, 1))  # 25 h: 5 h overage billed, 750.00
    hours(contract, "2", date(2026, 5, 29), line_ref="L1")
    scan()
    [finding] = found("L2", contract)
    assert finding.amount == D("300.00")  # (27 − 20) × 150 − 750 already billed
    assert "less 750.00 USD" in finding.evidence["basis"]


def test_l2_late_hours_inside_a_retainers_allowance_are_not_a_leak():
    contract = contract_with(RETAINER_20H, start=START)
    hours(contract, "10", date(2026, 5, 12), line_ref="L1")
    bill(contract, as_of=date(2026, 6, 1))
    hours(contract, "6", date(2026, 5, 28), line_ref="L1")  # 16 h of 20: the retainer covers them
    retainer_without_allowance = contract_with(RETAINER, start=START)
    hours(retainer_without_allowance, "6", date(2026, 5, 28), line_ref="L1")
    scan()
    assert found("L2", contract) == [] and found("L2", retainer_without_allowance) == []


def test_l2_retainer_overage_waits_for_the_run_after_the_period_closed():
    contract = contract_with(RETAINER_20H, start=START)
    hours(contract, "12", date(2026, 5, 20), line_ref="L1")
    hours(contract, "12", date(2026, 5, 21), line_ref="L1")
    scan(as_of=date(2026, 6, 1))
    assert live("L2", contract) == []
    scan(as_of=date(2026, 6, 2))
    assert [f.amount for f in live("L2", contract)] == [D("600.00")]


def test_l2_billed_time_is_clean_and_billing_resolves():
    clean = contract_with(TM, start=START)
    hours(clean, "10", date(2026, 5, 10), line_ref="L1")
    bill(clean)
    leaking = contract_with(TM, start=START)
    hours(leaking, "10", date(2026, 5, 10), line_ref="L1")
    scan()
    assert found("L2", clean) == [] and len(live("L2", leaking)) == 1
    bill(leaking)
    scan()
    assert [f.status for f in found("L2", leaking)] == ["resolved"]


# --------------------------------------------------------------------------- L3


USAGE = {"usage": True, "unit_amount": D("0.01"), "frequency": "monthly"}


def test_l3_unbilled_usage_of_a_closed_period_is_priced_per_unit():
    contract = contract_with(USAGE, start=START)
    usage(contract, "api_calls", 1000, date(2026, 5, 5))
    usage(contract, "api_calls", 500, date(2026, 5, 25))
    usage(contract, "api_calls", 999, date(2026, 6, 5))  # open period
    scan()
    [finding] = found("L3", contract)
    assert finding.amount == D("15.00") and finding.period_start == date(2026, 5, 1)


def test_l3_graduated_usage_is_priced_on_top_of_what_the_period_billed():
    contract = contract_with({"graduated": True, "frequency": "monthly"}, start=START)  # 0–100 at 1.00, then 0.50
    issued_invoice(
        contract,
        {
            "kind": "usage",
            "line_ref": "L1",
            "quantity": D("80"),
            "unit_amount": D("1"),
            "amount": D("80.00"),
            "period_start": date(2026, 5, 1),
            "period_end": date(2026, 5, 31),
            "billing_key": f"usage:{contract.pk}:L1:2026-05-01",
        },
        billing_date=date(2026, 6, 1),
    )
    usage(contract, "api_calls", 70, date(2026, 5, 20))  # 20 at 1.00 + 50 at 0.50
    scan()
    assert [f.amount for f in found("L3", contract)] == [D("45.00")]


def test_l3_usage_sent_under_a_misspelt_metric_is_found_and_billing_does_not_fix_it():
    contract = contract_with(USAGE, start=START)
    usage(contract, "API-Calls", 2000, date(2026, 5, 5))
    bill(contract)
    scan()
    [finding] = found("L3", contract)
    assert finding.amount == D("20.00") and "API-Calls" in finding.evidence["basis"]


def test_l3_billed_usage_is_clean_and_billing_resolves():
    clean = contract_with(USAGE, start=START)
    usage(clean, "api_calls", 1000, date(2026, 5, 5))
    bill(clean)
    leaking = contract_with(USAGE, start=START)
    usage(leaking, "api_calls", 1000, date(2026, 5, 5))
    scan()
    assert found("L3", clean) == [] and len(live("L3", leaking)) == 1
    bill(leaking)
    scan()
    assert [f.status for f in found("L3", leaking)] == ["resolved"]


# --------------------------------------------------------------------------- L4


def _discount(contract, **kwargs):
    from discounts.models import Discount

    fields = {
        "kind": "percentage",
        "value": D("10"),
        "scope": "contract",
        "customer": contract.customer,
        "contract": contract,
        "start_date": START,
        "status": "active",
        "reason": "launch",
    }
    fields.update(kwargs)
    return Discount.objects.create(**fields)


def _apply(discount, contract, period_start: date, amount: str):
    from discounts.models import DiscountApplication

    period_end = (period_start + timedelta(days=32)).replace(day=1) - timedelta(days=1)
    invoice = issued_invoice(
        contract,
        {
            "kind": "recurring",
            "line_ref": "L1",
            "quantity": D("1"),
            "unit_amount": D("1000.00"),
            "amount": D("1000.00"),
            "period_start": period_start,
            "period_end": period_end,
        },
        billing_date=period_start,
    )
    line = invoice.lines.get()
    DiscountApplication.objects.create(
        discount=discount,
        invoice=invoice,
        invoice_line=line,
        amount=D(amount),
        cycle_key=period_start.isoformat(),
        coverage=D("1"),
        stage="line",
    )
    return invoice


def test_l4_discount_with_no_expiry_is_found_at_what_it_gave_up():
    contract = contract_with(RETAINER, start=START)
    discount = _discount(contract, no_expiry_reason="strategic account")
    _apply(discount, contract, date(2026, 4, 1), "100.00")
    _apply(discount, contract, date(2026, 5, 1), "100.00")
    scan()
    [finding] = found("L4", contract)
    assert finding.amount == D("200.00") and "no expiry" in finding.title


def test_l4_discount_applied_outside_its_window_is_found_and_crediting_resolves():
    contract = contract_with(RETAINER, start=START)
    discount = _discount(contract, end_date=date(2026, 2, 28))
    _apply(discount, contract, date(2026, 2, 1), "100.00")  # inside: fine
    invoice = _apply(discount, contract, date(2026, 4, 1), "100.00")  # outside
    scan()
    [finding] = found("L4", contract)
    assert finding.amount == D("100.00") and finding.evidence["rows"][0]["invoice"] == invoice.number
    credit_note_create(invoice_id=invoice.pk, amount=invoice.total, reason="re-issue without the expired discount")
    scan()
    assert [f.status for f in found("L4", contract)] == ["resolved"]


def test_l4_discount_in_its_window_is_clean_and_an_end_date_resolves_no_expiry():
    clean = contract_with(RETAINER, start=START)
    _apply(_discount(clean, end_date=date(2026, 12, 31)), clean, date(2026, 4, 1), "100.00")
    leaking = contract_with(RETAINER, start=START)
    discount = _discount(leaking, no_expiry_reason="strategic account")
    scan()
    assert found("L4", clean) == [] and len(live("L4", leaking)) == 1
    type(discount).objects.filter(pk=discount.pk).update(end_date=date(2026, 9, 30))
    scan()
    assert [f.status for f in found("L4", leaking)] == ["resolved"]


# --------------------------------------------------------------------------- L5


def _alert(contract, status: str):
    from renewals.models import RenewalAlert

    return RenewalAlert.objects.create(
        contract=contract,
        end_date=contract.end_date,
        raised_at=datetime(2026, 5, 1, tzinfo=UTC),
        raised_on=date(2026, 5, 1),
        window_days=60,
        window_start=contract.end_date - timedelta(days=60),
        notice_deadline=contract.end_date - timedelta(days=30),
        currency="USD",
        annual_recurring_value=D("12000"),
        remaining_value=D("1000"),
        status=status,
    )


def test_l5_contract_inside_its_notice_period_without_a_decision_is_found_at_its_annual_value():
    contract = contract_with(RETAINER, start=START, end=date(2026, 7, 1))
    _alert(contract, "open")
    scan()
    [finding] = found("L5", contract)
    assert finding.amount == D("12000.00")
    assert finding.evidence["rows"][0]["notice_deadline"] == "2026-06-01"


def test_l5_contract_before_its_notice_deadline_is_clean_and_a_decision_resolves():
    clean = contract_with(RETAINER, start=START, end=date(2026, 12, 31))
    leaking = contract_with(RETAINER, start=START, end=date(2026, 7, 1))
    alert = _alert(leaking, "open")
    scan()
    assert found("L5", clean) == [] and len(live("L5", leaking)) == 1
    type(alert).objects.filter(pk=alert.pk).update(status="renewing")
    scan()
    assert [f.status for f in found("L5", leaking)] == ["resolved"]


# --------------------------------------------------------------------------- L6


def _retainer_invoice(contract, unit: str, period_start=date(2026, 5, 1)):
    period_end = (period_start + timedelta(days=32)).replace(day=1) - timedelta(days=1)
    return issued_invoice(
        contract,
        {
            "kind": "recurring",
            "line_ref": "L1",
            "quantity": D("1"),
            "unit_amount": D(unit),
            "amount": D(unit),
            "period_start": period_start,
            "period_end": period_end,
            "source": {
                "days": (period_end - period_start).days + 1,
                "period_days": (period_end - period_start).days + 1,
            },
        },
        billing_date=period_start,
    )


def test_l6_invoiced_price_below_the_contract_rate_is_found_at_the_difference():
    contract = contract_with(RETAINER, start=START)
    invoice = _retainer_invoice(contract, "900.00")
    scan()
    [finding] = found("L6", contract)
    assert finding.amount == D("100.00") and finding.invoice_id == invoice.pk
    assert finding.evidence["rows"][0]["direction"] == "under-billed"


def test_l6_time_billed_off_the_rate_card_is_difference_times_hours():
    contract = contract_with(TM, start=START)
    issued_invoice(
        contract,
        {
            "kind": "time_and_materials",
            "line_ref": "L1",
            "quantity": D("10"),
            "unit_amount": D("130"),
            "amount": D("1300.00"),
            "period_start": date(2026, 5, 1),
            "period_end": date(2026, 5, 31),
            "source": {"role": "engineer"},
        },
        billing_date=date(2026, 6, 1),
    )
    scan()
    assert [f.amount for f in found("L6", contract)] == [D("200.00")]


def test_l6_expired_override_does_not_excuse_the_price_but_one_in_force_does():
    from discounts.models import PriceOverride

    contract = contract_with(RETAINER, start=START)
    PriceOverride.objects.create(
        customer=contract.customer,
        contract=contract,
        line_ref="L1",
        rate=D("900"),
        currency="USD",
        start_date=START,
        end_date=date(2026, 3, 31),
        reason="pilot",
        status="expired",
    )
    _retainer_invoice(contract, "900.00", date(2026, 3, 1))  # inside the override: fine
    _retainer_invoice(contract, "900.00", date(2026, 5, 1))  # after it expired: a leak
    scan()
    [finding] = found("L6", contract)
    assert finding.amount == D("100.00") and finding.period_start == date(2026, 5, 1)
    PriceOverride.objects.create(
        customer=contract.customer,
        contract=contract,
        line_ref="L1",
        rate=D("900"),
        currency="USD",
        start_date=date(2026, 4, 1),
        end_date=date(2026, 6, 30),
        reason="extension agreed",
        status="active",
    )
    scan()
    assert [f.status for f in found("L6", contract)] == ["resolved"]


def test_l6_invoice_at_the_contract_rate_is_clean():
    contract = contract_with(RETAINER, start=START)
    _retainer_invoice(contract, "1000.00")
    bill(contract)  # billing's own invoices, prorated or not, are at the contract rate
    scan()
    assert found("L6", contract) == []


# --------------------------------------------------------------------------- L7


FEE_BUDGET = D("40")


def _fixed_fee_contract(*extra_lines, included_hours=FEE_BUDGET):
    contract = contract_with(
        {"fixed_fee": True, "amount": D("5000.00"), "included_hours": included_hours}, *extra_lines, start=START
    )
    issued_invoice(
        contract,
        {
            "kind": "fixed_fee",
            "line_ref": "L1",
            "quantity": D("1"),
            "unit_amount": D("5000.00"),
            "amount": D("5000.00"),
            "billing_key": f"fixed:{contract.pk}:L1",
        },
        billing_date=date(2026, 2, 1),
    )
    return contract


def test_l7_time_after_the_fixed_fee_was_invoiced_is_found_at_the_implied_rate():
    contract = _fixed_fee_contract()
    for day in (19, 20, 21):
        hours(contract, "10", date(2026, 1, day), line_ref="L1")  # covered by the fee
    hours(contract, "10", date(2026, 3, 3), line_ref="L1")
    scan()
    [finding] = found("L7", contract)
    assert finding.amount == D("1250.00")  # 10 h × 5000 / 40
    assert "implied rate" in finding.evidence["basis"]


def test_l7_uses_the_contracts_time_and_materials_rate_for_the_role_when_it_has_one():
    contract = _fixed_fee_contract(TM)
    hours(contract, "10", date(2026, 3, 3), line_ref="L1")
    scan()
    [finding] = found("L7", contract)
    assert finding.amount == D("1500.00") and "T&M rate" in finding.evidence["basis"]


def test_l7_time_before_the_invoice_is_clean_and_marking_it_non_billable_resolves():
    clean = _fixed_fee_contract()
    hours(clean, "8", date(2026, 1, 20), line_ref="L1")
    leaking = _fixed_fee_contract()
    entry = hours(leaking, "10", date(2026, 3, 3), line_ref="L1")
    scan()
    assert found("L7", clean) == [] and len(live("L7", leaking)) == 1
    type(entry).objects.filter(pk=entry.pk).update(billable=False)
    scan()
    assert [f.status for f in found("L7", leaking)] == ["resolved"]


# --------------------------------------------------------------------------- L8


def test_l8_invoice_terms_differing_from_the_contract_are_found_at_the_open_total():
    contract = contract_with(RETAINER, start=START, payment_terms_days=30, po_number="PO-1")
    issued_invoice(
        contract,
        {
            "kind": "recurring",
            "line_ref": "L1",
            "quantity": D("1"),
            "unit_amount": D("1000.00"),
            "amount": D("1000.00"),
            "period_start": date(2026, 5, 1),
            "period_end": date(2026, 5, 31),
            "source": {"days": 31, "period_days": 31},
        },
        billing_date=date(2026, 5, 1),
        payment_terms_days=45,
        po_number="PO-OLD",
    )
    scan()
    [finding] = found("L8", contract)
    assert finding.amount == D("1000.00")
    assert {r["term"] for r in finding.evidence["rows"]} == {"payment terms", "PO number"}


def test_l8_other_issuing_entity_is_found_and_a_clean_invoice_is_not():
    from contracts.tests.factories import IssuingEntityFactory

    clean = contract_with(RETAINER, start=START)
    _retainer_invoice(clean, "1000.00")
    leaking = contract_with(RETAINER, start=START)
    issued_invoice(
        leaking,
        {"kind": "fixed_fee", "line_ref": "X", "quantity": D("1"), "unit_amount": D("50"), "amount": D("50.00")},
        billing_date=date(2026, 5, 1),
        issuing_entity=IssuingEntityFactory(),
    )
    scan()
    assert found("L8", clean) == []
    assert [r["term"] for r in found("L8", leaking)[0].evidence["rows"]] == ["issuing entity"]


def test_l8_crediting_the_invoice_resolves():
    contract = contract_with(RETAINER, start=START)
    invoice = issued_invoice(
        contract,
        {"kind": "fixed_fee", "line_ref": "X", "quantity": D("1"), "unit_amount": D("50"), "amount": D("50.00")},
        billing_date=date(2026, 5, 1),
        payment_terms_days=60,
    )
    scan()
    assert len(live("L8", contract)) == 1
    credit_note_create(invoice_id=invoice.pk, amount=invoice.total, reason="wrong terms; re-issued")
    scan()
    assert [f.status for f in found("L8", contract)] == ["resolved"]


# --------------------------------------------------------------------------- L9


MINIMUM = {**USAGE, "minimum_commitment": D("500")}


def test_l9_minimum_commitment_shortfall_is_found():
    contract = contract_with(MINIMUM, start=date(2026, 5, 1))
    issued_invoice(
        contract,
        {
            "kind": "usage",
            "line_ref": "L1",
            "quantity": D("1000"),
            "unit_amount": D("0.01"),
            "amount": D("10.00"),
            "period_start": date(2026, 5, 1),
            "period_end": date(2026, 5, 31),
            "billing_key": f"usage:{contract.pk}:L1:2026-05-01",
        },
        billing_date=date(2026, 6, 1),
    )
    scan()
    [finding] = found("L9", contract)
    assert finding.amount == D("490.00") and finding.period_start == date(2026, 5, 1)


def test_l9_billed_minimum_is_clean_and_billing_the_top_up_resolves():
    clean = contract_with(MINIMUM, start=date(2026, 5, 1))
    bill(clean)
    leaking = contract_with(MINIMUM, start=date(2026, 5, 1))
    scan()
    assert found("L9", clean) == []
    [finding] = live("L9", leaking)
    assert finding.amount == D("500.00")
    bill(leaking)
    assert InvoiceLine.objects.filter(contract=leaking, kind="usage_minimum").exists()
    scan()
    assert [f.status for f in found("L9", leaking)] == ["resolved"]


# --------------------------------------------------------------------------- L10


def test_l10_recurring_periods_due_without_an_invoice_are_found_in_advance_and_arrears():
    advance = contract_with(RETAINER, start=date(2026, 6, 1))
    arrears = contract_with({**RETAINER, "timing": "arrears"}, start=date(2026, 5, 1))
    partial = contract_with(RETAINER, start=date(2026, 6, 11))
    scan()
    assert [(f.period_start, f.amount) for f in found("L10", advance)] == [(date(2026, 6, 1), D("1000.00"))]
    assert [(f.period_start, f.amount) for f in found("L10", arrears)] == [
        (date(2026, 5, 1), D("1000.00"))
    ]  # June not closed
    assert [f.amount for f in found("L10", partial)] == [D("666.67")]  # 20/30 days


def test_l10_billed_contract_is_clean_billing_resolves_and_voiding_reopens():
    clean = contract_with(RETAINER, start=date(2026, 5, 1))
    bill(clean)
    leaking = contract_with(RETAINER, start=date(2026, 5, 1))
    scan()
    assert found("L10", clean) == [] and len(live("L10", leaking)) == 2
    [invoice] = bill(leaking).invoices
    scan()
    assert {f.status for f in found("L10", leaking)} == {"resolved"}
    credit_note_create(invoice_id=invoice.pk, amount=invoice.total, reason="customer disputed; void")
    scan()
    assert {f.status for f in found("L10", leaking)} == {"open"}
    assert len(found("L10", leaking)) == 2  # the same findings, reopened


# --------------------------------------------------------------------------- grace: the trigger had its chance


def test_l10_waits_for_the_billing_run_of_the_day_a_backdated_contract_was_entered():
    import time_machine

    with time_machine.travel(datetime(2026, 6, 15, 9, tzinfo=UTC), tick=False):
        contract = contract_with(RETAINER, start=date(2026, 5, 1))  # entered today, started in May
        scan(as_of=date(2026, 6, 15))
        assert live("L10", contract) == []  # no run could have billed it yet
    scan(as_of=date(2026, 6, 16))  # the night's run had its chance and billed nothing
    assert [f.period_start for f in live("L10", contract)] == [date(2026, 5, 1), date(2026, 6, 1)]


def test_l10_gives_the_run_of_the_due_date_a_day_of_grace():
    contract = contract_with(RETAINER, start=START)
    bill(contract, as_of=date(2026, 5, 31))
    scan(as_of=date(2026, 6, 1))
    assert live("L10", contract) == []  # June falls due today: tonight's run bills it
    scan(as_of=date(2026, 6, 2))
    assert [f.period_start for f in live("L10", contract)] == [date(2026, 6, 1)]


def test_l2_waits_a_day_after_the_period_closed():
    contract = contract_with(TM, start=START)
    hours(contract, "3", date(2026, 5, 20), line_ref="L1")
    scan(as_of=date(2026, 6, 1))
    assert live("L2", contract) == []
    scan(as_of=date(2026, 6, 2))
    assert len(live("L2", contract)) == 1
