"""Figures a finance user must be able to trust: what each headline adds up, and what it never adds."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest
from django.utils import timezone

from insights.models import LeakageFinding
from insights.selectors import leakage_rule_table, leakage_summary
from insights.tests.helpers import contract
from insights.valuation import ContractValuation

pytestmark = pytest.mark.django_db
D = Decimal


def _finding(c, rule: str, amount: str, currency: str = "USD", status: str = "open") -> None:
    LeakageFinding.objects.create(
        rule=rule,
        fingerprint=f"{rule}:{c.pk}:{amount}",
        contract=c,
        customer=c.customer,
        title=f"{rule} finding",
        amount=D(amount),
        currency=currency,
        evidence={},
        status=status,
        status_note="Agreed with the customer" if status == "dismissed" else "",
        first_seen_at=timezone.now(),
        first_seen_on=timezone.localdate(),
        last_seen_on=timezone.localdate(),
        last_seen_at=timezone.now(),
    )


def test_money_earned_and_not_billed_is_never_summed_with_exposure(in_tenant_a):
    c = contract({"amount": D("1000.00"), "timing": "advance", "line_ref": "RET"}, start=date(2026, 1, 1))
    _finding(c, "L10", "1000.00")
    _finding(c, "L2", "450.00")
    _finding(c, "L5", "12000.00")  # a renewal inside its notice period: value at stake, not owed
    _finding(c, "L8", "3000.00")  # an invoice with the wrong terms
    _finding(c, "L3", "80.00", currency="EUR")
    _finding(c, "L6", "999.00", status="dismissed")
    summary = leakage_summary()
    assert summary["unbilled"]["totals"] == {"EUR": D("80.00"), "USD": D("1450.00")}
    assert summary["unbilled"]["count"] == 3
    assert summary["exposure"]["totals"] == {"USD": D("15000.00")} and summary["exposure"]["count"] == 2
    tables = leakage_rule_table(summary)
    assert [(t["group"], t["currency"]) for t in tables] == [
        ("unbilled", "EUR"),
        ("unbilled", "USD"),
        ("exposure", "USD"),
    ]
    usd = tables[1]
    assert [r["rule"] for r in usd["rows"]] == ["L2", "L10"] and usd["total"] == D("1450.00")
    assert [r["bar"] for r in usd["rows"]] == [45, 100]  # scaled within its own currency and group


def test_the_finance_home_shows_earned_not_billed_and_exposure_apart(in_tenant_a):
    from tests.helpers import client_for

    c = contract({"amount": D("1000.00"), "timing": "advance", "line_ref": "RET"}, start=date(2026, 1, 1))
    _finding(c, "L10", "1000.00")
    _finding(c, "L5", "12000.00")
    page = client_for(in_tenant_a, email=in_tenant_a.users["finance"]).get("/").content.decode()
    kpi = page.split('id="kpi-leakage"', 1)[1].split('id="kpi-tasks"', 1)[0]
    assert "Earned, not billed" in kpi and "1,000.00" in kpi and "exposure apart: 12,000.00 USD" in kpi
    assert "13,000.00" not in page
    assert 'id="leakage-unbilled-usd"' in page and 'id="leakage-exposure-usd"' in page
    assert "Backlog" in page and "Unearned value" not in page and "Deferred revenue" in page
    assert "To invoice in" in page


@pytest.mark.parametrize(
    "value, billed, recognized, backlog, deferred",
    [
        ("12000", "3000", "1000", "11000", "2000"),  # billed ahead: deferred revenue
        ("12000", "1000", "3000", "9000", "0"),  # earned ahead of billing: nothing deferred
    ],
)
def test_backlog_and_deferred_revenue_are_different_figures(value, billed, recognized, backlog, deferred):
    row = ContractValuation(
        contract_id=1, currency="USD", committed=D(value), billed=D(billed), recognized=D(recognized)
    )
    assert row.unearned == D(backlog) and row.deferred == D(deferred)
