"""The forecast of a fixture portfolio equals a hand calculation (DESIGN.md §4 forward-looking figures)."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest

from insights.selectors import portfolio_contracts, portfolio_forecast, portfolio_load
from insights.tests.helpers import alert, contract, customer, discount, invoice

pytestmark = pytest.mark.django_db
D = Decimal
TODAY = date(2026, 2, 10)


def _forecast(contracts, months=4):
    portfolio = portfolio_load(
        today=TODAY, contracts=portfolio_contracts().filter(pk__in=[c.pk for c in contracts]), with_valuation=False
    )
    return portfolio_forecast(portfolio, months=months)


def _by_month(result, currency):
    return {row.month: row.by_currency.get(currency) for row in result.totals()}


@pytest.fixture
def portfolio(in_tenant_a):
    # C1: retainer in advance, 10 % off until 31 March, auto-renews on 1 May with a 10 % uplift.
    c1 = contract(
        {"amount": D("3100.00"), "timing": "advance", "line_ref": "RET"},
        start=date(2026, 1, 15),
        end=date(2026, 4, 30),
        auto_renew=True,
        renewal_uplift_pct=D("10"),
        renewal_term_months=12,
    )
    discount(c1, value="10", end=date(2026, 3, 31))
    # C2: retainer in arrears ending 15 March, a fixed fee on 5 March, a pending milestone on 10 March.
    c2 = contract(
        {"amount": D("1000.00"), "timing": "arrears", "line_ref": "RET"},
        {"fixed_fee": True, "amount": D("2000.00"), "bill_on": date(2026, 3, 5), "line_ref": "FEE"},
        {"milestone": True, "amount": D("5000.00"), "line_ref": "MS1", "expected_date": date(2026, 3, 10)},
        start=date(2026, 1, 1),
        end=date(2026, 3, 15),
    )
    from contracts.tests.factories import MilestoneFactory

    MilestoneFactory(contract=c2, line_ref="MS1", name="Go-live", expected_date=date(2026, 3, 10))
    # Its January period was billed already (1 Feb): not forecast again, and nothing before 1 March anyway.
    invoice(
        c2, lines=[("recurring", "RET", date(2026, 1, 1), date(2026, 1, 31), "1000.00")], issue_date=date(2026, 2, 1)
    )
    # C3 (EUR): time and materials since November; the last three closed months were invoiced 600, 900, 1,200.
    c3 = contract(
        {"time_and_materials": True, "line_ref": "TM"},
        start=date(2025, 11, 1),
        end=date(2026, 12, 31),
        currency="EUR",
        customer_obj=customer("EUR"),
    )
    for start, end, amount in [
        (date(2025, 11, 1), date(2025, 11, 30), "600.00"),
        (date(2025, 12, 1), date(2025, 12, 31), "900.00"),
        (date(2026, 1, 1), date(2026, 1, 31), "1200.00"),
    ]:
        invoice(c3, lines=[("time_and_materials", "TM", start, end, amount)], issue_date=end.replace(day=1))
    # C4: auto-renew, but the account manager decided it is churning: nothing after 31 March.
    c4 = contract(
        {"amount": D("500.00"), "timing": "advance", "line_ref": "RET"},
        start=date(2026, 1, 1),
        end=date(2026, 3, 31),
        auto_renew=True,
        renewal_uplift_pct=D("5"),
    )
    alert(c4, status="churning", annual="6000")
    # A draft contract is kept out of billing, so out of the forecast.
    c5 = contract({"amount": D("9999.00"), "timing": "advance"}, status="draft")
    return c1, c2, c3, c4, c5


def test_forecast_equals_the_hand_calculation(portfolio):
    _c1, _c2, _c3, _c4, c5 = portfolio
    result = _forecast(portfolio)
    assert result.months == [date(2026, 3, 1), date(2026, 4, 1), date(2026, 5, 1), date(2026, 6, 1)]
    usd = _by_month(result, "USD")
    # March: C1 3,100 less 10 % · C2 Feb arrears 1,000 + 1–15 Mar 15/31 × 1,000 = 483.87 + fee 2,000 + milestone 5,000 · C4 500.
    assert (usd[date(2026, 3, 1)].gross, usd[date(2026, 3, 1)].discount, usd[date(2026, 3, 1)].net) == (
        D("12083.87"),
        D("310.00"),
        D("11773.87"),
    )
    # April: the discount ended on 31 March; C2 and C4 have ended.
    assert (usd[date(2026, 4, 1)].gross, usd[date(2026, 4, 1)].discount, usd[date(2026, 4, 1)].net) == (
        D("3100.00"),
        D("0"),
        D("3100.00"),
    )
    # May and June: C1 renewed on 1 May at 3,100 × 1.10 = 3,410.
    assert usd[date(2026, 5, 1)].net == D("3410.00") and usd[date(2026, 6, 1)].net == D("3410.00")
    uplift = {row.month: row.uplift.get("USD") for row in result.totals()}
    assert uplift[date(2026, 5, 1)] == D("310.00") and uplift[date(2026, 4, 1)] is None
    # EUR is never added to USD: run rate (600 + 900 + 1,200) / 3 = 900 for each period closing in the horizon.
    eur = _by_month(result, "EUR")
    assert [eur[m].net for m in result.months] == [D("900.00")] * 4
    assert not any(i.contract_id == c5.pk for i in result.items)


def test_forecast_items_by_kind_and_contract(portfolio):
    c1, c2, _c3, c4, _ = portfolio
    result = _forecast(portfolio)
    march = [i for i in result.items if i.month == date(2026, 3, 1)]
    kinds = {(i.contract_id, i.kind): i for i in march}
    assert kinds[(c2.pk, "fixed_fee")].billing_date == date(2026, 3, 5)
    assert kinds[(c2.pk, "milestone")].billing_date == date(2026, 3, 10)
    prorated = [i for i in march if i.contract_id == c2.pk and i.kind == "recurring"]
    assert [(i.billing_date, i.gross) for i in prorated] == [
        (date(2026, 3, 1), D("1000.00")),
        (date(2026, 3, 16), D("483.87")),
    ]
    assert kinds[(c4.pk, "recurring")].gross == D("500.00")
    assert not [i for i in result.items if i.contract_id == c4.pk and i.month > date(2026, 3, 1)]
    renewed = [i for i in result.items if i.contract_id == c1.pk and i.renewal]
    assert [i.billing_date for i in renewed] == [date(2026, 5, 1), date(2026, 6, 1)]


def test_a_renewing_decision_uses_its_proposed_terms(in_tenant_a):
    c = contract(
        {"amount": D("1000.00"), "timing": "advance"},
        start=date(2026, 1, 1),
        end=date(2026, 3, 31),
        auto_renew=False,
        renewal_uplift_pct=D("5"),
    )
    alert(c, status="renewing", proposed_terms={"term_months": 12, "uplift_pct": "20"})
    result = _forecast([c], months=2)
    assert [(i.billing_date, i.gross, i.uplift) for i in result.items] == [
        (date(2026, 3, 1), D("1000.00"), D("0")),
        (date(2026, 4, 1), D("1200.00"), D("200.00")),
    ]


def test_a_contract_that_does_not_auto_renew_stops_at_its_end(in_tenant_a):
    c = contract(
        {"amount": D("1000.00"), "timing": "advance"}, start=date(2026, 1, 1), end=date(2026, 3, 31), auto_renew=False
    )
    assert [i.billing_date for i in _forecast([c]).items] == [date(2026, 3, 1)]


def test_a_scheduled_amendment_and_an_ending_override_price_their_periods(in_tenant_a):
    from billing.tests.builders import amend
    from discounts.models import PriceOverride

    c = contract(
        {"amount": D("1000.00"), "timing": "advance", "line_ref": "RET"}, start=date(2026, 1, 1), end=date(2026, 12, 31)
    )
    amend(c, effective_from=date(2026, 5, 1), lines=[{"line_ref": "RET", "amount": D("1500.00")}])
    PriceOverride.objects.create(
        customer=c.customer,
        contract=c,
        line_ref="RET",
        rate=D("800.00"),
        currency="USD",
        start_date=date(2026, 1, 1),
        end_date=date(2026, 3, 31),
        status="active",
        reason="pilot",
    )
    result = _forecast([c])
    assert [(i.billing_date, i.gross) for i in result.items] == [
        (date(2026, 3, 1), D("800.00")),
        (date(2026, 4, 1), D("1000.00")),
        (date(2026, 5, 1), D("1500.00")),
        (date(2026, 6, 1), D("1500.00")),
    ]


def test_a_discount_limited_by_cycles_stops_after_its_last_cycle(in_tenant_a):
    c = contract({"amount": D("1000.00"), "timing": "advance"}, start=date(2026, 1, 1), end=date(2026, 12, 31))
    discount(c, value="100.00", kind="fixed", max_cycles=2, end=None)
    result = _forecast([c], months=3)
    assert [i.discount for i in result.items] == [D("100.00"), D("100.00"), D("0")]


def test_usage_minimum_commitment_is_a_floor_of_the_run_rate(in_tenant_a):
    c = contract(
        {"usage": True, "frequency": "monthly", "line_ref": "API", "minimum_commitment": D("500.00")},
        start=date(2026, 1, 1),
        end=date(2026, 12, 31),
    )
    invoice(c, lines=[("usage", "API", date(2026, 1, 1), date(2026, 1, 31), "200.00")], issue_date=date(2026, 2, 1))
    result = _forecast([c], months=2)
    assert [(i.billing_date, i.gross, i.basis) for i in result.items] == [
        (date(2026, 3, 1), D("500.00"), "minimum commitment"),
        (date(2026, 4, 1), D("500.00"), "minimum commitment"),
    ]


def test_months_out_of_range_are_refused():
    from insights.forecast import forecast

    for months in (0, 25):
        with pytest.raises(ValueError):
            forecast(contracts=[], today=TODAY, months=months)
