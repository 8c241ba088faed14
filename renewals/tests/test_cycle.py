"""The renewal triggers run day by day across a year: one alert per term at its window, one
escalation, one auto-renewal; running the cycle twice a day changes nothing more."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from decimal import Decimal

import pytest
import time_machine

from contracts.models import ContractVersion
from renewals.models import DecisionKind, RenewalAlert, RenewalDecision, RenewalStatus
from renewals.services.alerts import renewal_alerts_escalate_due, renewal_alerts_raise_due
from renewals.services.cycle import renewals_cycle_step
from renewals.services.decisions import renewal_decide
from renewals.tests.helpers import contract_make

pytestmark = pytest.mark.django_db


def days(start: date, end: date):
    day = start
    while day <= end:
        yield day
        day += timedelta(days=1)


def run_on(day: date, hour: int = 6) -> dict:
    with time_machine.travel(
        datetime(day.year, day.month, day.day, hour, tzinfo=__import__("zoneinfo").ZoneInfo("UTC")), tick=False
    ):
        return renewals_cycle_step(as_of=day)


def test_a_year_day_by_day_twice_a_day(am):
    # A: auto-renews at the end of June; tenant window (60 days), notice 30 days.
    a = contract_make(
        owner=am,
        start=date(2025, 7, 1),
        end=date(2026, 6, 30),
        auto_renew=True,
        notice_days=30,
        uplift="5",
        monthly="1000.00",
    )
    # B: no auto-renewal, contract window override of 90 days, 60 days' notice; nobody decides.
    b = contract_make(
        owner=am, start=date(2025, 10, 1), end=date(2026, 9, 30), auto_renew=False, notice_days=60, window_days=90
    )
    # C: auto-renew, but the account manager records churning in its window.
    c = contract_make(owner=am, start=date(2025, 12, 1), end=date(2026, 11, 30), auto_renew=True, notice_days=30)

    for day in days(date(2026, 1, 1), date(2026, 12, 31)):
        first = run_on(day, hour=6)
        second = run_on(day, hour=18)
        assert second["renewal_alerts_raised"] == second["renewal_alerts_escalated"] == 0, day
        assert second["contracts_auto_renewed"] == second["contracts_expired"] == 0, day
        if day == date(2026, 10, 5):
            alert_c = RenewalAlert.objects.get(contract=c)
            with time_machine.travel(datetime(2026, 10, 5, 12), tick=False):
                renewal_decide(alert=alert_c, decision="churning", note="Moving to an in-house tool", user=am)
        assert first is not None

    alert_a = RenewalAlert.objects.get(contract=a)
    assert (alert_a.raised_on, alert_a.window_days, alert_a.window_start) == (date(2026, 5, 1), 60, date(2026, 5, 1))
    assert alert_a.notice_deadline == date(2026, 5, 31)
    assert alert_a.escalated_at.date() == date(2026, 5, 24)  # seven days before the notice deadline
    assert alert_a.status == RenewalStatus.AUTO_RENEWED
    assert alert_a.annual_recurring_value == Decimal("12000.00")
    assert alert_a.remaining_value == Decimal("2000.00")  # May and June
    a.refresh_from_db()
    assert a.end_date == date(2027, 6, 30) and a.status == "active"
    versions = list(ContractVersion.objects.filter(contract=a).order_by("version"))
    assert [(v.version, v.effective_from) for v in versions] == [(1, date(2025, 7, 1)), (2, date(2026, 7, 1))]
    assert versions[1].price_lines.get().amount == Decimal("1050.00")
    assert RenewalDecision.objects.filter(alert=alert_a, decision=DecisionKind.AUTO_RENEWED).count() == 1
    # The renewed term's window (May 2027) lies beyond this year: still one alert.
    assert RenewalAlert.objects.filter(contract=a).count() == 1

    alert_b = RenewalAlert.objects.get(contract=b)
    assert (alert_b.raised_on, alert_b.window_days) == (date(2026, 7, 2), 90)
    assert alert_b.escalated_at.date() == date(2026, 7, 25)  # notice deadline 1 Aug
    assert alert_b.status == RenewalStatus.CHURNED
    b.refresh_from_db()
    assert (b.status, b.end_date) == ("expired", date(2026, 9, 30))
    assert list(RenewalDecision.objects.filter(alert=alert_b).values_list("decision", "decided_on")) == [
        ("escalated", date(2026, 7, 25)),
        ("lapsed", date(2026, 10, 1)),
    ]

    alert_c = RenewalAlert.objects.get(contract=c)
    assert alert_c.raised_on == date(2026, 10, 1)
    assert alert_c.escalated_at is None  # a decision came before the deadline drew near
    assert alert_c.status == RenewalStatus.CHURNED
    c.refresh_from_db()
    assert (c.status, c.end_date, c.versions.count()) == ("expired", date(2026, 11, 30), 1)

    assert RenewalAlert.objects.count() == 3
    assert RenewalDecision.objects.filter(decision=DecisionKind.ESCALATED).count() == 2
    assert ContractVersion.objects.filter(contract__in=[a, b, c]).count() == 4


def test_a_cycle_after_downtime_catches_up_once(am):
    contract = contract_make(owner=am, start=date(2025, 7, 1), end=date(2026, 6, 30), auto_renew=True)
    # The beat was down from before the window opened until after the end date.
    result = run_on(date(2026, 7, 4))
    assert (result["renewal_alerts_raised"], result["contracts_auto_renewed"]) == (1, 1)
    alert = RenewalAlert.objects.get(contract=contract)
    assert (alert.raised_on, alert.window_start, alert.status) == (
        date(2026, 7, 4),
        date(2026, 5, 1),
        RenewalStatus.AUTO_RENEWED,
    )
    assert alert.escalated_at is None  # too late to escalate: the term already ended and renewed
    contract.refresh_from_db()
    assert contract.end_date == date(2027, 6, 30)
    again = run_on(date(2026, 7, 4), hour=20)
    assert again["renewal_alerts_raised"] == again["contracts_auto_renewed"] == 0
    assert contract.versions.count() == 2


def test_the_tenant_window_applies_unless_the_contract_overrides_it(am, in_tenant_a):
    from revexos.tenancy.models import Tenant

    Tenant.objects.filter(schema_name=in_tenant_a.schema).update(renewal_window_days=30)  # rolled back after the test
    # Short notice periods: notice + lead time (30 days) stays inside the windows.
    default = contract_make(owner=am, end=date(2026, 12, 31), notice_days=0)
    override = contract_make(owner=am, end=date(2026, 12, 31), window_days=45, notice_days=7)
    assert renewal_alerts_raise_due(as_of=date(2026, 11, 15)) == []
    assert renewal_alerts_raise_due(as_of=date(2026, 11, 16)) == [RenewalAlert.objects.get(contract=override).pk]
    assert not RenewalAlert.objects.filter(contract=default).exists()
    raised = renewal_alerts_raise_due(as_of=date(2026, 12, 1))
    assert raised == [RenewalAlert.objects.get(contract=default).pk]
    assert RenewalAlert.objects.get(contract=default).window_days == 30


def test_draft_and_open_ended_contracts_get_no_alert(am):
    draft = contract_make(owner=am, end=date(2026, 12, 31))
    draft.status = "draft"
    draft.save()
    open_ended = contract_make(owner=am, end=None)
    assert renewal_alerts_raise_due(as_of=date(2026, 12, 30)) == []
    assert not RenewalAlert.objects.filter(contract__in=[draft, open_ended]).exists()


def test_the_owner_falls_back_to_the_customer_account_manager(am):
    contract = contract_make(owner=None, end=date(2026, 12, 31))
    contract.customer.owner = am
    contract.customer.save()
    renewal_alerts_raise_due(as_of=date(2026, 11, 1))
    assert RenewalAlert.objects.get(contract=contract).owner == am


def test_escalation_happens_once_even_when_snoozed(am):
    contract = contract_make(owner=am, end=date(2026, 12, 31), notice_days=30)
    (alert_id,) = renewal_alerts_raise_due(as_of=date(2026, 11, 1))
    alert = RenewalAlert.objects.get(pk=alert_id)
    with time_machine.travel(datetime(2026, 11, 2, 9), tick=False):
        renewal_decide(
            alert=alert, decision="snoozed", note="Customer on holiday", user=am, snooze_until=date(2026, 12, 10)
        )
    assert renewal_alerts_escalate_due(as_of=date(2026, 11, 23)) == []
    assert renewal_alerts_escalate_due(as_of=date(2026, 11, 24)) == [alert_id]  # deadline 1 Dec − 7
    assert renewal_alerts_escalate_due(as_of=date(2026, 11, 25)) == []
    alert = contract.renewal_alerts.get()
    assert alert.escalated_at is not None and alert.status == RenewalStatus.OPEN  # back in the queue


def test_a_snooze_ends_on_its_date(am):
    contract = contract_make(owner=am, end=date(2026, 12, 31))
    run_on(date(2026, 11, 1))
    alert = contract.renewal_alerts.get()
    with time_machine.travel(datetime(2026, 11, 2, 9), tick=False):
        renewal_decide(
            alert=alert,
            decision="snoozed",
            note="Call back after budget review",
            user=am,
            snooze_until=date(2026, 11, 10),
        )
    assert run_on(date(2026, 11, 9))["renewal_alerts_reopened"] == 0
    assert run_on(date(2026, 11, 10))["renewal_alerts_reopened"] == 1
    alert.refresh_from_db()
    assert alert.status == RenewalStatus.OPEN


def test_the_cycle_registry_runs_renewals_before_billing():
    from billing.cycle import cycle_steps

    names = [s.name for s in cycle_steps()]
    assert "renewals" in names and names.index("renewals") < names.index("billing")
