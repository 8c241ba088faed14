"""What decisions do to billing: the scheduler's cycle (renewals step, then billing) as of each day.

A churned contract stops recurring billing after its end date and still bills the usage of its last
period; a renewed contract bills its next term at the uplifted prices.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pytest
import time_machine

from billing.cycle import cycle_run
from billing.models import InvoiceLine, UsageEvent
from renewals.services.decisions import renewal_decide
from renewals.tests.helpers import contract_make

pytestmark = pytest.mark.django_db


def cycle_days(start: date, end: date):
    day = start
    while day <= end:
        with time_machine.travel(datetime(day.year, day.month, day.day, 7, tzinfo=UTC), tick=False):
            cycle_run(as_of=day, only=["renewals", "billing"])
        day += timedelta(days=1)


def decide_on(day: date, contract, decision: str, user, **kwargs):
    with time_machine.travel(datetime(day.year, day.month, day.day, 12, tzinfo=UTC), tick=False):
        return renewal_decide(
            alert=contract.renewal_alerts.get(), decision=decision, note="Recorded in test", user=user, **kwargs
        )


def test_a_churned_contract_stops_recurring_billing_and_still_bills_its_last_usage(am):
    contract = contract_make(
        owner=am, start=date(2026, 9, 1), end=date(2026, 11, 30), auto_renew=True, usage=True, monthly="1000.00"
    )
    cycle_days(date(2026, 9, 1), date(2026, 10, 15))
    decide_on(date(2026, 10, 15), contract, "churned", am)
    UsageEvent.objects.create(
        transaction_id=f"tx-{contract.pk}-last",
        contract=contract,
        metric="api_calls",
        quantity=Decimal("100000"),
        timestamp=datetime(2026, 11, 20, 10, tzinfo=UTC),
    )
    cycle_days(date(2026, 10, 16), date(2027, 2, 1))

    contract.refresh_from_db()
    assert (contract.status, contract.end_date) == ("expired", date(2026, 11, 30))
    lines = InvoiceLine.objects.filter(invoice__contract=contract)
    recurring = sorted(lines.filter(kind="recurring").values_list("period_start", flat=True))
    assert recurring == [date(2026, 9, 1), date(2026, 10, 1), date(2026, 11, 1)]
    usage = lines.filter(kind="usage", period_start=date(2026, 11, 1)).get()
    assert usage.amount == Decimal("150.00")  # 100,000 calls at 0.0015, billed after the contract ended
    assert contract.versions.count() == 1


def test_an_auto_renewed_contract_bills_its_next_term_at_the_uplifted_price(am):
    contract = contract_make(
        owner=am, start=date(2026, 9, 1), end=date(2026, 11, 30), auto_renew=True, uplift="5", monthly="1000.00"
    )
    cycle_days(date(2026, 9, 1), date(2026, 12, 2))
    contract.refresh_from_db()
    assert contract.end_date == date(2027, 11, 30)
    amounts = dict(
        InvoiceLine.objects.filter(invoice__contract=contract, kind="recurring").values_list("period_start", "amount")
    )
    assert amounts[date(2026, 11, 1)] == Decimal("1000.00")
    assert amounts[date(2026, 12, 1)] == Decimal("1050.00")


def test_a_renewed_decision_with_proposed_terms_bills_those_terms(am):
    contract = contract_make(
        owner=am, start=date(2026, 9, 1), end=date(2026, 11, 30), auto_renew=False, monthly="2000.00"
    )
    cycle_days(date(2026, 9, 1), date(2026, 10, 10))
    decide_on(date(2026, 10, 10), contract, "renewing", am, proposed_terms={"term_months": 6, "uplift_pct": "2.5"})
    decide_on(date(2026, 10, 12), contract, "renewed", am)
    cycle_days(date(2026, 10, 11), date(2026, 12, 1))
    contract.refresh_from_db()
    assert (contract.status, contract.end_date) == ("active", date(2027, 5, 31))
    line = InvoiceLine.objects.get(invoice__contract=contract, kind="recurring", period_start=date(2026, 12, 1))
    assert line.amount == Decimal("2050.00")
