"""Revenue at risk this quarter: undecided renewals, contracts ending, overdue receivables."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest

from insights.selectors import revenue_at_risk
from insights.tests.helpers import alert, contract, invoice

pytestmark = pytest.mark.django_db
D = Decimal
TODAY = date(2026, 2, 10)
RET = {"amount": D("1000.00"), "timing": "advance", "line_ref": "RET"}


@pytest.fixture
def book(in_tenant_a):
    undecided = contract(RET, start=date(2026, 1, 1), end=date(2026, 3, 31), auto_renew=True)
    alert(undecided, status="open", annual="37200.00")
    ending = contract(RET, start=date(2026, 1, 1), end=date(2026, 3, 20), auto_renew=False)
    churning = contract({**RET, "amount": D("500.00")}, start=date(2026, 1, 1), end=date(2026, 3, 25), auto_renew=True)
    alert(churning, status="churning", annual="6000.00")
    renews_itself = contract(RET, start=date(2026, 1, 1), end=date(2026, 3, 25), auto_renew=True)
    renewing = contract(RET, start=date(2026, 1, 1), end=date(2026, 3, 25), auto_renew=False)
    alert(renewing, status="renewing", annual="12000.00")
    later = contract(RET, start=date(2026, 1, 1), end=date(2026, 5, 31), auto_renew=True)
    alert(later, status="open", annual="12000.00")
    overdue = invoice(
        renews_itself,
        lines=[("recurring", "RET", date(2026, 1, 1), date(2026, 1, 31), "800.00")],
        issue_date=date(2026, 1, 1),
        due_days=30,
        status="sent",
    )
    invoice(
        renews_itself,
        lines=[("recurring", "RET", date(2026, 2, 1), date(2026, 2, 28), "1000.00")],
        issue_date=date(2026, 2, 1),
        due_days=30,
    )  # not due yet
    invoice(
        later,
        lines=[("recurring", "RET", date(2026, 1, 1), date(2026, 1, 31), "1000.00")],
        issue_date=date(2026, 1, 1),
        status="paid",
        amount_due="0",
    )
    return {"undecided": undecided, "ending": ending, "churning": churning, "overdue": overdue}


def test_each_group_with_its_amount_and_a_link_to_act(book):
    risk = revenue_at_risk(today=TODAY)
    assert risk.quarter_end == date(2026, 3, 31)
    rows = {(r.group, r.contract_number): r for r in risk.rows}
    assert set(rows) == {
        ("renewal", book["undecided"].number),
        ("ending", book["ending"].number),
        ("ending", book["churning"].number),
        ("overdue", book["overdue"].contract.number),
    }
    assert rows[("renewal", book["undecided"].number)].amount == D("37200.00")
    assert rows[("renewal", book["undecided"].number)].url.startswith("/renewals/?status=all&quarter=2026-Q1#alert-")
    assert rows[("ending", book["ending"].number)].amount == D("12000.00")
    assert rows[("ending", book["churning"].number)].amount == D("6000.00")
    assert rows[("ending", book["ending"].number)].url == f"/contracts/{book['ending'].pk}/"
    overdue = rows[("overdue", book["overdue"].contract.number)]
    assert overdue.amount == D("800.00") and overdue.url == f"/billing/invoices/{book['overdue'].pk}/"
    assert risk.totals() == {"USD": D("56000.00")}
    groups = risk.group_totals()
    assert groups["ending"]["count"] == 2 and groups["ending"]["by_currency"] == {"USD": D("18000.00")}
