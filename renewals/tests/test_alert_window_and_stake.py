"""The renewal alert comes before the notice deadline, and shows what is at stake when nothing recurs."""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal

import pytest
from django.core import mail

from billing.tests.builders import contract_with, hours
from contracts.services.contracts import contract_update
from renewals.models import RenewalAlert
from renewals.services.alerts import renewal_alerts_escalate_due, renewal_alerts_raise_due
from renewals.services.notify import renewal_digest_send
from renewals.tests.helpers import contract_make

pytestmark = pytest.mark.django_db
D = Decimal


def raised_on(contract, *, start: date, end: date) -> date | None:
    day = start
    while day <= end:
        renewal_alerts_raise_due(as_of=day)
        if RenewalAlert.objects.filter(contract=contract).exists():
            return day
        day += timedelta(days=1)
    return None


def test_a_90_day_notice_period_brings_the_alert_before_the_deadline(am):
    # Tenant window 60 days; notice 90 days: a 60-day alert would come a month after the deadline.
    contract = contract_make(owner=am, end=date(2026, 12, 31), notice_days=90)
    day = raised_on(contract, start=date(2026, 8, 1), end=date(2026, 12, 31))
    alert = RenewalAlert.objects.get(contract=contract)
    assert alert.notice_deadline == date(2026, 10, 2)
    assert (day, alert.window_days) == (date(2026, 9, 2), 120)  # notice 90 + lead 30
    assert alert.notice_deadline - day == timedelta(days=30)


def test_the_lead_time_is_the_contracts_own(am):
    contract = contract_make(owner=am, end=date(2026, 12, 31), notice_days=90)
    contract_update(contract=contract, data={"renewal_lead_days": 45})
    day = raised_on(contract, start=date(2026, 8, 1), end=date(2026, 12, 31))
    assert day == date(2026, 8, 18) and RenewalAlert.objects.get(contract=contract).window_days == 135


def test_a_short_notice_period_keeps_the_tenant_window(am):
    contract = contract_make(owner=am, end=date(2026, 12, 31), notice_days=10)
    assert raised_on(contract, start=date(2026, 10, 1), end=date(2026, 12, 31)) == date(2026, 11, 1)  # 60 days


def test_the_lead_time_is_on_the_contract_form_and_the_api(in_tenant_a):
    from django.urls import reverse

    from tests.helpers import api_client, client_for

    contract = contract_make(end=date(2026, 12, 31))
    client = client_for(in_tenant_a, email=in_tenant_a.users["finance"])
    form = client.get(reverse("contracts:contract_edit", args=[contract.pk])).content.decode()
    assert 'name="renewal_lead_days"' in form and "Alert lead time (days)" in form
    api = api_client(in_tenant_a)
    answer = api.patch(
        f"/api/v1/contracts/{contract.number}", {"renewal_lead_days": 60}, content_type="application/json"
    )
    assert answer.status_code == 200, answer.content
    assert answer.json()["renewal_lead_days"] == 60
    bad = api.patch(f"/api/v1/contracts/{contract.number}", {"renewal_lead_days": 400}, content_type="application/json")
    assert bad.status_code == 422 and "renewal_lead_days" in bad.json()["error"]["fields"]


def test_a_milestone_contract_shows_its_value_over_the_term_not_zero(am):
    contract = contract_with(
        {"milestone": True, "amount": D("24000.00"), "description": "Go-live"},
        {"kind": "fixed_fee", "amount": D("5000.00"), "bill_on": date(2026, 1, 15), "description": "Onboarding"},
        start=date(2026, 1, 1),
        end=date(2026, 12, 31),
    )
    renewal_alerts_raise_due(as_of=date(2026, 11, 1))
    alert = RenewalAlert.objects.get(contract=contract)
    assert alert.annual_recurring_value == 0
    assert (alert.value_at_stake, alert.value_basis) == (D("29000.00"), "term")
    assert [(p["what"], D(p["amount"])) for p in alert.value_parts] == [
        ("milestones", D("24000.00")),
        ("fixed fees", D("5000.00")),
    ]


def test_usage_and_hours_count_at_their_run_rate_over_the_term(am):
    from billing.services.triggers import contract_bill_due

    tm = {"time_and_materials": True, "rates": [("engineer", "100.00")], "cap": None}
    contract = contract_with(tm, start=date(2026, 1, 1), end=date(2026, 12, 31))
    for month in (7, 8, 9):
        for day in (10, 11, 12):
            hours(contract, "10", date(2026, month, day), line_ref="L1")  # 3,000.00 a month
    contract_bill_due(contract_id=contract.pk, as_of=date(2026, 10, 2))
    renewal_alerts_raise_due(as_of=date(2026, 11, 1))
    alert = RenewalAlert.objects.get(contract=contract)
    assert alert.value_basis == "term" and alert.value_at_stake == D("36000.00")  # 3,000 × 12 months
    assert "run rate × 12 months" in alert.value_parts[0]["what"]


def test_a_retainer_keeps_a_year_of_recurring_value(am):
    contract = contract_make(owner=am, end=date(2026, 12, 31), monthly="3100.00")
    renewal_alerts_raise_due(as_of=date(2026, 11, 1))
    alert = RenewalAlert.objects.get(contract=contract)
    assert (alert.value_at_stake, alert.value_basis) == (D("37200.00"), "annual")


def test_the_queue_and_the_api_say_which_value_is_at_stake(in_tenant_a, am):
    from django.urls import reverse

    from tests.helpers import api_client, client_for

    contract = contract_with(
        {"milestone": True, "amount": D("24000.00"), "description": "Go-live"},
        start=date(2026, 1, 1),
        end=date(2026, 12, 31),
    )
    renewal_alerts_raise_due(as_of=date(2026, 11, 1))
    page = client_for(in_tenant_a, email=in_tenant_a.users["admin"]).get(reverse("renewals:queue") + "?status=all")
    html = page.content.decode()
    assert "24,000.00" in html and "over the term" in html and "milestones" in html
    (item,) = [
        a
        for a in api_client(in_tenant_a).get("/api/v1/renewal-alerts").json()["items"]
        if a["contract"] == contract.number
    ]
    assert (item["value_at_stake"], item["value_basis"]) == ("24000.00", "term")
    assert item["value_parts"] == [{"what": "milestones", "amount": "24000.00"}]


# --------------------------------------------------------------------------- e-mails say where the deadline stands


def test_an_escalation_after_the_deadline_says_passed_not_near(am, django_capture_on_commit_callbacks):
    contract = contract_make(owner=am, end=date(2026, 12, 31), notice_days=30)
    renewal_alerts_raise_due(as_of=date(2026, 11, 1))
    mail.outbox.clear()
    with django_capture_on_commit_callbacks(execute=True):
        renewal_alerts_escalate_due(as_of=date(2026, 12, 5))  # the beat was down; the deadline was 1 Dec
    (message,) = mail.outbox
    assert message.subject.startswith("Overdue: 1 renewal notice deadline passed") and "near" not in message.subject
    assert "notice deadline passed 4 days ago" in message.body and contract.number in message.body


def test_an_escalation_before_the_deadline_says_within_a_week(am, django_capture_on_commit_callbacks):
    contract_make(owner=am, end=date(2026, 12, 31), notice_days=30)
    renewal_alerts_raise_due(as_of=date(2026, 11, 1))
    mail.outbox.clear()
    with django_capture_on_commit_callbacks(execute=True):
        renewal_alerts_escalate_due(as_of=date(2026, 11, 26))
    (message,) = mail.outbox
    assert message.subject.startswith("Action needed: 1 renewal notice deadline within a week")
    assert "notice deadline in 5 days" in message.body


def test_the_digest_and_the_escalation_agree_on_a_passed_deadline(am, django_capture_on_commit_callbacks):
    contract_make(owner=am, end=date(2026, 12, 31), notice_days=30)
    renewal_alerts_raise_due(as_of=date(2026, 11, 1))
    mail.outbox.clear()
    with django_capture_on_commit_callbacks(execute=True):
        renewal_alerts_escalate_due(as_of=date(2026, 12, 3))
    renewal_digest_send(as_of=date(2026, 12, 3))
    escalation, digest = mail.outbox
    assert digest.subject == "Your renewals: 1 open, 1 past the notice deadline, 1 escalated — 3 Dec 2026"
    for message in (escalation, digest):
        assert "notice deadline passed 2 days ago" in message.body
