"""Contract value billed, recognized, unearned and unbilled receivable, by hand."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal

import pytest

from billing.tests.builders import hours
from insights.selectors import (
    portfolio_contracts,
    portfolio_load,
    portfolio_valuation,
    valuation_totals,
)
from insights.tests.helpers import contract, invoice

pytestmark = pytest.mark.django_db
D = Decimal
TODAY = date(2026, 2, 10)


def _valuation(contracts):
    portfolio = portfolio_load(today=TODAY, contracts=portfolio_contracts().filter(pk__in=[c.pk for c in contracts]))
    return portfolio_valuation(portfolio)


@pytest.fixture
def platform(in_tenant_a):
    from contracts.tests.factories import MilestoneFactory

    c = contract(
        {"amount": D("3100.00"), "timing": "advance", "line_ref": "RET"},
        {"fixed_fee": True, "amount": D("5000.00"), "bill_on": date(2026, 1, 15), "line_ref": "FEE"},
        {"milestone": True, "amount": D("12000.00"), "line_ref": "MS1"},
        {"time_and_materials": True, "line_ref": "TM"},
        start=date(2026, 1, 15),
        end=date(2026, 12, 31),
    )
    MilestoneFactory(contract=c, line_ref="MS1", status="delivered", delivered_at=datetime(2026, 2, 3, tzinfo=UTC))
    hours(c, "6", date(2026, 1, 20), line_ref="TM")
    hours(c, "4", date(2026, 2, 2), line_ref="TM")
    hours(c, "3", date(2026, 2, 2), line_ref="TM", billable=False)
    invoice(
        c,
        lines=[
            ("recurring", "RET", date(2026, 1, 15), date(2026, 1, 31), "1700.00"),
            ("fixed_fee", "FEE", None, None, "5000.00"),
        ],
        issue_date=date(2026, 1, 15),
    )
    invoice(
        c,
        lines=[("recurring", "RET", date(2026, 2, 1), date(2026, 2, 28), "3100.00")],
        issue_date=date(2026, 2, 1),
        discount_total=D("310.00"),
    )
    invoice(
        c,
        lines=[("recurring", "RET", date(2026, 3, 1), date(2026, 3, 31), "3100.00")],
        status="draft",
        issue_date=date(2026, 3, 1),
    )
    return c


def test_contract_value_figures_by_hand(platform):
    [row] = _valuation([platform])
    # Committed: 17/31 × 3,100 = 1,700 + 11 × 3,100 + fee 5,000 + milestone 12,000.
    assert row.committed == D("52800.00")
    # Recognized: January 1,700 + 10/28 × 3,100 = 1,107.14 + fee (billed on 15 Jan) + milestone (delivered) + 10 h × 150.
    assert row.recognized == D("21307.14")
    assert row.variable == D("1500.00") and row.value == D("54300.00")
    assert row.unearned == D("32992.86")
    # Billed: issued totals 6,700 + 2,790 (the draft is not billed); the 310 discount is revenue given up, not unbilled.
    assert (row.billed, row.discounts) == (D("9490.00"), D("310.00"))
    assert row.unbilled_receivable == D("11507.14")


def test_unbilled_receivable_is_floored_at_zero(in_tenant_a):
    c = contract(
        {"amount": D("1200.00"), "timing": "advance", "frequency": "annual", "line_ref": "SUB"},
        start=date(2026, 1, 1),
        end=date(2026, 12, 31),
    )
    invoice(
        c, lines=[("recurring", "SUB", date(2026, 1, 1), date(2026, 12, 31), "1200.00")], issue_date=date(2026, 1, 1)
    )
    [row] = _valuation([c])
    # 41 of 365 days earned: billed in advance, so nothing is receivable and most is unearned.
    assert row.recognized == D("134.79") and row.unbilled_receivable == D("0") and row.unearned == D("1065.21")


def test_totals_are_per_currency(platform):
    eur = contract(
        {"amount": D("1000.00"), "timing": "advance"}, start=date(2026, 2, 1), end=date(2026, 2, 28), currency="EUR"
    )
    totals = valuation_totals(_valuation([platform, eur]))
    assert sorted(totals) == ["EUR", "USD"]
    assert totals["EUR"].committed == D("1000.00") and totals["EUR"].recognized == D("357.14")
    assert totals["USD"].unearned == D("32992.86")


def test_time_is_held_under_the_line_cap(in_tenant_a):
    c = contract(
        {"time_and_materials": True, "line_ref": "TM", "cap": D("1000.00")},
        start=date(2026, 1, 1),
        end=date(2026, 12, 31),
    )
    hours(c, "8", date(2026, 1, 5), line_ref="TM")
    [row] = _valuation([c])
    assert row.recognized == D("1000.00") and row.variable == D("1000.00")
