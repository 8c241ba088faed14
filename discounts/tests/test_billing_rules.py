"""The issue's must-be-true list, driven through billing's own cycle (DESIGN.md §4), time moved with time-machine."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest
from django.core.exceptions import ValidationError

from billing.models import InvoiceLine
from billing.services.triggers import contract_bill_due
from billing.tests.builders import contract_with, hours
from discounts.models import Credit, Discount, EventAction, ExceptionEvent
from discounts.selectors import rate_override
from discounts.services.exceptions import credit_create, discount_create, exception_revoke, price_override_create
from discounts.tests.conftest import travel
from discounts.tests.helpers import TM, discount_by_period, invoices_of, retainer_contract, run

D = Decimal
pytestmark = pytest.mark.django_db


def ten_percent_to_31_march(contract, user):
    return discount_create(
        kind="percentage",
        value=D("10"),
        start_date=date(2026, 1, 1),
        end_date=date(2026, 3, 31),
        reason="launch",
        contract=contract,
        created_by=user,
    )


# --------------------------------------------------------------------------- windows


SCHEDULES = {
    # The beat runs every day the invoices are due.
    "on time": [("all", date(2026, 3, 1)), ("all", date(2026, 4, 1))],
    # The beat was down from February to 3 April: one catch-up run bills March and April together.
    "down, catching up": [("all", date(2026, 4, 3))],
    # Billing ran on 1 April but the lifecycle step never did (the discount still says active).
    "lifecycle missing": [("billing", date(2026, 3, 1)), ("billing", date(2026, 4, 1))],
    # The lifecycle expired the discount before a past-dated billing run for March.
    "lifecycle first": [("discounts", date(2026, 4, 2)), ("billing", date(2026, 3, 1)), ("billing", date(2026, 4, 1))],
}


@pytest.mark.parametrize("schedule", list(SCHEDULES))
def test_a_10_percent_discount_ending_31_march_applies_to_march_and_not_april_whenever_the_beat_runs(
    in_tenant_a, finance, schedule
):
    with travel(2026, 2, 20):
        contract = retainer_contract()
        discount = ten_percent_to_31_march(contract, finance)
        contract_bill_due(contract_id=contract.pk, as_of=date(2026, 2, 28))  # January and February billed on time
    with travel(2026, 4, 5):
        for step, day in SCHEDULES[schedule]:
            run(day, only=["discounts", "billing"] if step == "all" else [step])
    by_period = discount_by_period(contract)
    assert by_period[date(2026, 3, 1)] == D("100.00")
    assert by_period[date(2026, 4, 1)] == D("0")
    assert by_period[date(2026, 1, 1)] == by_period[date(2026, 2, 1)] == D("100.00")
    march = InvoiceLine.objects.get(invoice__contract=contract, period_start=date(2026, 3, 1)).invoice
    assert march.discount_total >= D("100.00") and march.total == march.subtotal - march.discount_total
    assert discount.applications.count() == 3


def test_a_period_straddling_the_end_is_prorated_by_days(in_tenant_a, finance):
    with travel(2026, 3, 1):
        contract = retainer_contract("3100.00", start=date(2026, 3, 1))
        discount_create(
            kind="percentage",
            value=D("10"),
            start_date=date(2026, 3, 1),
            end_date=date(2026, 3, 15),
            reason="two weeks",
            contract=contract,
            created_by=finance,
        )
        run(date(2026, 3, 1))
    (invoice,) = invoices_of(contract)
    assert invoice.discount_total == D("150.00")  # 15/31 × 10 % × 3,100.00
    assert invoice.total == D("2950.00") and invoice.amount_due == D("2950.00")


def test_a_3_cycle_discount_applies_to_exactly_three_invoices(in_tenant_a, finance):
    with travel(2026, 1, 1):
        contract = retainer_contract()
        discount = discount_create(
            kind="fixed",
            value=D("250.00"),
            start_date=date(2026, 1, 1),
            max_cycles=3,
            reason="onboarding",
            contract=contract,
            created_by=finance,
        )
    with travel(2026, 6, 2):
        for month in range(1, 7):
            run(date(2026, month, 1))
    invoices = invoices_of(contract)
    assert [i.discount_total for i in invoices] == [D("250.00")] * 3 + [D("0")] * 3
    assert [i.total for i in invoices] == [D("750.00")] * 3 + [D("1000.00")] * 3
    discount.refresh_from_db()
    assert discount.status == "expired"
    assert discount.events.filter(action=EventAction.CYCLES_USED).count() == 1


def test_a_3_cycle_discount_caught_up_in_one_run_still_takes_three_periods(in_tenant_a, finance):
    with travel(2026, 1, 1):
        contract = retainer_contract()
        discount_create(
            kind="percentage",
            value=D("50"),
            start_date=date(2026, 1, 1),
            max_cycles=3,
            reason="x",
            contract=contract,
            created_by=finance,
        )
    with travel(2026, 5, 2):
        run(date(2026, 5, 1))  # January to May on one invoice
    by_period = discount_by_period(contract)
    assert [by_period[date(2026, m, 1)] for m in range(1, 6)] == [D("500.00")] * 3 + [D("0")] * 2


def test_a_revoked_discount_is_not_on_the_next_invoice(in_tenant_a, finance):
    with travel(2026, 1, 1):
        contract = retainer_contract()
        discount = discount_create(
            kind="percentage",
            value=D("10"),
            start_date=date(2026, 1, 1),
            end_date=date(2026, 12, 31),
            reason="x",
            contract=contract,
            created_by=finance,
        )
        run(date(2026, 1, 1))
    with travel(2026, 1, 20):
        exception_revoke(kind="discount", pk=discount.pk, reason="customer upgraded", user=finance)
    with travel(2026, 2, 1):
        run(date(2026, 2, 1))
    assert [i.discount_total for i in invoices_of(contract)] == [D("100.00"), D("0")]
    assert discount.events.filter(action=EventAction.REVOKED, actor=finance, reason="customer upgraded").exists()


def test_customer_and_price_line_scopes(in_tenant_a, finance):
    with travel(2026, 1, 1):
        contract = contract_with(
            {
                "kind": "recurring",
                "description": "Retainer",
                "amount": D("1000.00"),
                "frequency": "monthly",
                "timing": "advance",
            },
            {
                "kind": "recurring",
                "description": "Support",
                "amount": D("200.00"),
                "frequency": "monthly",
                "timing": "advance",
            },
            start=date(2026, 1, 1),
        )
        discount_create(
            kind="percentage",
            value=D("50"),
            start_date=date(2026, 1, 1),
            end_date=date(2026, 1, 31),
            reason="support free",
            contract=contract,
            line_ref="L2",
            created_by=finance,
        )
        discount_create(
            kind="fixed",
            value=D("120.00"),
            start_date=date(2026, 1, 1),
            end_date=date(2026, 1, 31),
            reason="goodwill",
            customer=contract.customer,
            created_by=finance,
        )
        run(date(2026, 1, 1))
    (invoice,) = invoices_of(contract)
    # Line scope first: support 200 − 100 = 100. Then 120.00 spread 1000:100 → 109.09 + 10.91.
    assert (invoice.subtotal, invoice.discount_total, invoice.total) == (D("1200.00"), D("220.00"), D("980.00"))


# --------------------------------------------------------------------------- credits


def test_a_1000_credit_against_600_and_700_leaves_0_and_300_due_and_a_zero_balance(in_tenant_a, finance):
    fee = {"kind": "fixed_fee", "description": "Onboarding", "frequency": "", "timing": ""}
    with travel(2026, 3, 1):
        first = contract_with(dict(fee, amount=D("600.00"), bill_on=date(2026, 3, 1)), start=date(2026, 3, 1))
        second = contract_with(dict(fee, amount=D("700.00"), bill_on=date(2026, 3, 2)), start=date(2026, 3, 1))
        type(second).objects.filter(pk=second.pk).update(customer=first.customer)  # two contracts of one customer
        credit = credit_create(
            customer=first.customer,
            amount=D("1000.00"),
            currency="USD",
            expires_on=date(2026, 12, 31),
            reason="SLA credit",
            created_by=finance,
        )
        run(date(2026, 3, 1))
    with travel(2026, 3, 2):
        run(date(2026, 3, 2))
    (a,), (b,) = invoices_of(first), invoices_of(second)
    assert (a.status, a.total, a.credit_applied, a.amount_due) == ("issued", D("600.00"), D("600.00"), D("0.00"))
    assert (b.status, b.total, b.credit_applied, b.amount_due) == ("issued", D("700.00"), D("400.00"), D("300.00"))
    credit.refresh_from_db()
    assert (credit.balance, credit.status) == (D("0"), "used")
    assert list(credit.applications.order_by("id").values_list("amount", flat=True)) == [D("600.00"), D("400.00")]


def test_an_expired_credit_applies_to_nothing(in_tenant_a, finance):
    with travel(2026, 2, 1):
        contract = retainer_contract(start=date(2026, 3, 1))
        credit = credit_create(
            customer=contract.customer,
            amount=D("500.00"),
            currency="USD",
            expires_on=date(2026, 2, 28),
            reason="goodwill",
            created_by=finance,
        )
    with travel(2026, 3, 1):
        run(date(2026, 3, 1), only=["billing"])  # the lifecycle has not marked it expired: the date decides
    (invoice,) = invoices_of(contract)
    assert (invoice.billing_date, invoice.credit_applied, invoice.amount_due) == (
        date(2026, 3, 1),
        D("0"),
        D("1000.00"),
    )
    credit.refresh_from_db()
    assert credit.balance == D("500.00")
    run(date(2026, 3, 1), only=["discounts"])
    credit.refresh_from_db()
    assert credit.status == "expired"


def test_a_pinned_credit_waits_for_its_invoice(in_tenant_a, finance):
    with travel(2026, 1, 1):
        contract = retainer_contract()
        credit = credit_create(
            customer=contract.customer,
            amount=D("300.00"),
            currency="USD",
            expires_on=date(2026, 12, 31),
            reason="March outage",
            pinned_invoices=[f"{contract.number}@2026-03"],
            created_by=finance,
        )
    with travel(2026, 3, 1):
        for month in (1, 2, 3):
            run(date(2026, month, 1))
    assert [i.credit_applied for i in invoices_of(contract)] == [D("0"), D("0"), D("300.00")]
    credit.refresh_from_db()
    assert credit.balance == 0


# --------------------------------------------------------------------------- overrides


def test_an_override_at_120_an_hour_bills_120_inside_its_window_and_the_contract_rate_outside(in_tenant_a, finance):
    with travel(2026, 1, 1):
        contract = contract_with(dict(TM, line_ref="T"), start=date(2026, 1, 1))
        line = contract.versions.get().price_lines.get()
        assert line.rates.get().hourly_rate == D("150.00")  # the contract rate
        price_override_create(
            contract=contract,
            line_ref="T",
            role="engineer",
            rate=D("120.00"),
            start_date=date(2026, 3, 1),
            end_date=date(2026, 3, 31),
            reason="pilot",
            created_by=finance,
        )
    for day in (date(2026, 2, 10), date(2026, 3, 10), date(2026, 4, 10)):
        hours(contract, "10", day, line_ref="T")
    with travel(2026, 5, 1):
        for month in (3, 4, 5):
            run(date(2026, month, 1))
    rates = [
        (line.period_start, line.unit_amount, line.amount)
        for line in InvoiceLine.objects.filter(invoice__contract=contract).order_by("period_start")
    ]
    assert rates == [
        (date(2026, 2, 1), D("150.00"), D("1500.00")),
        (date(2026, 3, 1), D("120.00"), D("1200.00")),
        (date(2026, 4, 1), D("150.00"), D("1500.00")),
    ]
    assert rate_override(contract_id=contract.pk, line_ref="T", role="engineer", on=date(2026, 3, 31)) == D("120.00")
    assert rate_override(contract_id=contract.pk, line_ref="T", role="engineer", on=date(2026, 4, 1)) is None


def test_an_override_ending_mid_month_bills_each_day_at_its_rate(in_tenant_a, finance):
    with travel(2026, 1, 1):
        contract = contract_with(dict(TM, line_ref="T"), start=date(2026, 1, 1))
        price_override_create(
            contract=contract,
            line_ref="T",
            role="engineer",
            rate=D("120.00"),
            start_date=date(2026, 3, 5),
            end_date=date(2026, 3, 15),
            reason="pilot",
            created_by=finance,
        )
    first, second = (
        hours(contract, "4", date(2026, 3, 10), line_ref="T"),
        hours(contract, "6", date(2026, 3, 20), line_ref="T"),
    )
    with travel(2026, 4, 1):
        run(date(2026, 4, 1))
    lines = {line.unit_amount: line for line in InvoiceLine.objects.filter(invoice__contract=contract)}
    assert {rate: line.amount for rate, line in lines.items()} == {D("120.00"): D("480.00"), D("150.00"): D("900.00")}
    assert lines[D("120.00")].invoice.status == "issued"  # the pre-send rate check knows the custom rate
    first.refresh_from_db(), second.refresh_from_db()
    assert first.invoice_line == lines[D("120.00")] and second.invoice_line == lines[D("150.00")]


def test_a_recurring_override_replaces_the_amount_inside_its_window(in_tenant_a, finance):
    with travel(2026, 1, 1):
        contract = retainer_contract("1000.00")
        price_override_create(
            contract=contract,
            line_ref="L1",
            rate=D("800.00"),
            start_date=date(2026, 2, 1),
            end_date=date(2026, 2, 28),
            reason="promo",
            created_by=finance,
        )
    with travel(2026, 3, 1):
        for month in (1, 2, 3):
            run(date(2026, month, 1))
    assert [i.total for i in invoices_of(contract)] == [D("1000.00"), D("800.00"), D("1000.00")]


# --------------------------------------------------------------------------- validation


def test_a_discount_with_no_end_date_and_no_reason_is_rejected_with_a_clear_error(in_tenant_a, finance):
    contract = retainer_contract()
    with pytest.raises(ValidationError) as caught:
        discount_create(
            kind="percentage",
            value=D("10"),
            start_date=date(2026, 1, 1),
            reason="launch",
            contract=contract,
            created_by=finance,
        )
    assert "end date or a number of billing cycles" in caught.value.message_dict["end_date"][0]
    assert not Discount.objects.filter(contract=contract).exists()
    ok = discount_create(
        kind="percentage",
        value=D("10"),
        start_date=date(2026, 1, 1),
        reason="launch",
        contract=contract,
        no_expiry_reason="lifetime partner pricing, board decision 2026-01",
        created_by=finance,
    )
    assert ok.end_date is None and ok.no_expiry_reason


def test_only_finance_and_admins_may_approve(in_tenant_a):
    from revexos.accounts.models import User

    viewer = User.objects.get(email=in_tenant_a.users["viewer"])
    with pytest.raises(ValidationError) as caught:
        credit_create(
            customer=retainer_contract().customer,
            amount=D("10.00"),
            currency="USD",
            expires_on=date(2026, 12, 31),
            reason="x",
            created_by=viewer,
        )
    assert "approved_by" in caught.value.message_dict


def test_a_held_draft_is_recomputed_when_its_discount_is_revoked(in_tenant_a, finance):
    with travel(2026, 1, 1):
        contract = retainer_contract(auto_issue=False)
        discount = ten_percent_to_31_march(contract, finance)
        run(date(2026, 1, 1))
        (draft,) = invoices_of(contract)
        assert (draft.status, draft.discount_total) == ("draft", D("100.00"))
        exception_revoke(kind="discount", pk=discount.pk, reason="mistake", user=finance)
    draft.refresh_from_db()
    assert (draft.discount_total, draft.total, draft.amount_due) == (D("0"), D("1000.00"), D("1000.00"))
    assert not ExceptionEvent.objects.filter(discount=discount, action="applied").exists()


def test_presend_check_flags_a_discount_outside_its_window(in_tenant_a, finance):
    from billing.services.checks import invoice_presend_problems

    with travel(2026, 1, 1):
        contract = retainer_contract(auto_issue=False)
        discount = ten_percent_to_31_march(contract, finance)
        run(date(2026, 1, 1))
        (draft,) = invoices_of(contract)
    assert invoice_presend_problems(draft) == []
    Discount.objects.filter(pk=discount.pk).update(start_date=date(2026, 2, 1))  # tampered after the draft was made
    problems = invoice_presend_problems(draft)
    assert len(problems) == 1 and "outside its window" in problems[0]


def test_credits_never_mix_currencies(in_tenant_a, finance):
    with travel(2026, 1, 1):
        contract = retainer_contract()
        credit_create(
            customer=contract.customer,
            amount=D("100.00"),
            currency="EUR",
            expires_on=date(2026, 12, 31),
            reason="x",
            created_by=finance,
        )
        run(date(2026, 1, 1))
    assert invoices_of(contract)[0].credit_applied == 0
    assert Credit.objects.get(customer=contract.customer).balance == D("100.00")


def test_overrides_in_a_period_are_listed_for_billing_checks(in_tenant_a, finance):
    from discounts.selectors import rate_overrides_in

    with travel(2026, 1, 1):
        contract = contract_with(dict(TM, line_ref="T"), start=date(2026, 1, 1))
        price_override_create(
            contract=contract,
            line_ref="T",
            role="engineer",
            rate=D("120.00"),
            start_date=date(2026, 3, 10),
            end_date=date(2026, 3, 20),
            reason="pilot",
            created_by=finance,
        )
    assert rate_overrides_in(
        contract_id=contract.pk, line_ref="T", role="engineer", start=date(2026, 3, 1), end=date(2026, 3, 31)
    ) == [D("120.00")]
    assert (
        rate_overrides_in(
            contract_id=contract.pk, line_ref="T", role="engineer", start=date(2026, 4, 1), end=date(2026, 4, 30)
        )
        == []
    )
