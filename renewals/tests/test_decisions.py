"""Decisions on a renewal alert: each kind, with a note, recorded in history, and what each does."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal

import pytest
import time_machine
from django.core.exceptions import PermissionDenied, ValidationError

from contracts.models import ContractVersion
from contracts.tests.factories import PriceLineFactory
from renewals.models import RenewalDecision, RenewalStatus
from renewals.services.alerts import renewal_alerts_raise_due
from renewals.services.decisions import renewal_decide
from renewals.services.terms import contract_auto_renew_due, contract_expire_due
from renewals.tests.helpers import contract_make, user_make
from revexos.accounts.models import Role

pytestmark = pytest.mark.django_db

NOV = datetime(2026, 11, 5, 10)


def alert_of(contract):
    renewal_alerts_raise_due(as_of=date(2026, 11, 1))
    return contract.renewal_alerts.get()


def decide(alert, user, decision, note="Agreed on the call", **kwargs):
    with time_machine.travel(NOV, tick=False):
        return renewal_decide(alert=alert, decision=decision, note=note, user=user, **kwargs)


def test_renewed_writes_the_next_term_with_the_uplift_from_the_day_after_the_end(am):
    contract = contract_make(
        owner=am, end=date(2026, 12, 31), monthly="3100.00", uplift="5", usage=True, auto_renew=False
    )
    version = contract.versions.get()
    PriceLineFactory(version=version, fixed_fee=True, line_ref="ONB", position=3, bill_on=date(2026, 1, 1))
    PriceLineFactory(
        version=version, time_and_materials=True, line_ref="TM", position=4, rates=[("engineer", "150.00")]
    )
    PriceLineFactory(
        version=version, graduated=True, line_ref="GR", position=5, tiers=[("100", "1.00", "10"), (None, "0.50")]
    )
    alert = decide(alert_of(contract), am, "renewed", note="Signed renewal, 5 % uplift")

    assert alert.status == RenewalStatus.RENEWED and alert.decision_note == "Signed renewal, 5 % uplift"
    contract.refresh_from_db()
    assert (contract.end_date, contract.status) == (date(2027, 12, 31), "active")
    new = ContractVersion.objects.get(contract=contract, version=2)
    assert new.effective_from == date(2027, 1, 1) and alert.renewal_version == new
    lines = {line.line_ref: line for line in new.price_lines.all()}
    assert set(lines) == {"RET", "API", "TM", "GR"}  # the one-off onboarding fee is not billed again
    assert lines["RET"].amount == Decimal("3255.00")
    assert lines["API"].unit_amount == Decimal("0.001575")
    assert lines["TM"].rates.get().hourly_rate == Decimal("157.50")
    assert lines["TM"].cap == Decimal("20000.00")  # a budget, not a price
    assert [(t.up_to, t.unit_amount, t.flat_amount) for t in lines["GR"].tiers.order_by("position")] == [
        (Decimal("100"), Decimal("1.05"), Decimal("10.50")),
        (None, Decimal("0.525"), Decimal("0")),
    ]
    # the first term is untouched: versions are never edited once in force
    assert version.price_lines.get(line_ref="RET").amount == Decimal("3100.00")
    decision = RenewalDecision.objects.get(alert=alert)
    assert (decision.decision, decision.decided_by, decision.proposed_terms) == (
        "renewed",
        am,
        {"term_months": 12, "uplift_pct": "5"},
    )
    assert contract.history.order_by("-history_id").first().history_change_reason.startswith("Renewed")


def test_renewed_applies_the_terms_proposed_while_renewing(am):
    contract = contract_make(owner=am, end=date(2026, 12, 31), monthly="1000.00", uplift="5", term_months=12)
    alert = decide(
        alert_of(contract),
        am,
        "renewing",
        note="Customer asks for 24 months at 3 %",
        proposed_terms={"term_months": "24", "uplift_pct": "3"},
    )
    assert (alert.status, alert.proposed_terms) == (RenewalStatus.RENEWING, {"term_months": 24, "uplift_pct": "3"})
    decide(alert, am, "renewed", note="Countersigned")
    contract.refresh_from_db()
    assert contract.end_date == date(2028, 12, 31)
    assert contract.versions.get(version=2).price_lines.get().amount == Decimal("1030.00")


def test_renewing_with_other_terms_stops_the_auto_renewal(am):
    contract = contract_make(owner=am, end=date(2026, 12, 31), uplift="5")
    decide(alert_of(contract), am, "renewing", proposed_terms={"uplift_pct": "2"})
    assert contract_auto_renew_due(as_of=date(2026, 12, 31)) == []
    assert contract_expire_due(as_of=date(2027, 1, 1)) == []  # still negotiating: not churn
    contract.refresh_from_db()
    assert (contract.status, contract.end_date) == ("active", date(2026, 12, 31))


def test_renewing_on_the_contract_terms_lets_the_auto_renewal_happen(am):
    contract = contract_make(owner=am, end=date(2026, 12, 31), uplift="5", term_months=12)
    decide(alert_of(contract), am, "renewing", proposed_terms={"term_months": 12, "uplift_pct": "5.0"})
    assert contract_auto_renew_due(as_of=date(2026, 12, 31)) == [contract.pk]
    assert contract.renewal_alerts.get().status == RenewalStatus.AUTO_RENEWED


@pytest.mark.parametrize("decision", ["churning", "churned"])
def test_churn_decisions_stop_auto_renewal_and_expire_the_contract_after_its_end(am, decision):
    contract = contract_make(owner=am, end=date(2026, 12, 31))
    decide(alert_of(contract), am, decision, note="Budget cut")
    assert contract_auto_renew_due(as_of=date(2026, 12, 31)) == []
    assert contract_expire_due(as_of=date(2026, 12, 31)) == []  # the last day is still in the term
    assert contract_expire_due(as_of=date(2027, 1, 1)) == [contract.pk]
    contract.refresh_from_db()
    assert (contract.status, contract.end_date) == ("expired", date(2026, 12, 31))
    assert contract.renewal_alerts.get().status == RenewalStatus.CHURNED
    assert contract_expire_due(as_of=date(2027, 1, 2)) == []


def test_churned_after_the_end_date_expires_at_once(am):
    contract = contract_make(owner=am, end=date(2026, 11, 3), auto_renew=False)
    alert = alert_of(contract)
    decide(alert, am, "churned", note="Confirmed by e-mail")
    contract.refresh_from_db()
    assert contract.status == "expired"


def test_a_renewed_decision_brings_back_a_contract_that_lapsed(am):
    contract = contract_make(owner=am, end=date(2026, 11, 3), auto_renew=False)
    alert = alert_of(contract)
    decide(alert, am, "renewing", note="Paperwork with their legal")
    contract.status = "expired"
    contract.save()
    decide(alert, am, "renewed", note="Signed late")
    contract.refresh_from_db()
    assert (contract.status, contract.end_date) == ("active", date(2027, 11, 3))


def test_snooze_needs_a_future_date_within_the_term(am):
    contract = contract_make(owner=am, end=date(2026, 12, 31))
    alert = alert_of(contract)
    for bad, field in [(None, "snooze_until"), (date(2026, 11, 5), "snooze_until"), (date(2027, 1, 5), "snooze_until")]:
        with pytest.raises(ValidationError) as err:
            decide(alert, am, "snoozed", snooze_until=bad)
        assert field in err.value.message_dict
    alert = decide(alert, am, "snoozed", snooze_until=date(2026, 11, 20))
    assert (alert.status, alert.snoozed_until) == (RenewalStatus.SNOOZED, date(2026, 11, 20))


@pytest.mark.parametrize(
    "kwargs, field",
    [
        ({"decision": "renewed", "note": "  "}, "note"),
        ({"decision": "auto_renewed", "note": "x"}, "decision"),
        ({"decision": "maybe", "note": "x"}, "decision"),
        ({"decision": "renewing", "note": "x", "proposed_terms": {"term_months": "0"}}, "term_months"),
        ({"decision": "renewing", "note": "x", "proposed_terms": {"uplift_pct": "abc"}}, "uplift_pct"),
        ({"decision": "renewing", "note": "x", "proposed_terms": {"uplift_pct": "-1"}}, "uplift_pct"),
    ],
)
def test_bad_decisions_name_the_field_and_change_nothing(am, kwargs, field):
    contract = contract_make(owner=am, end=date(2026, 12, 31))
    alert = alert_of(contract)
    with pytest.raises(ValidationError) as err, time_machine.travel(NOV, tick=False):
        renewal_decide(alert=alert, user=am, **kwargs)
    assert field in err.value.message_dict
    alert.refresh_from_db()
    assert alert.status == RenewalStatus.OPEN and not alert.decisions.exists()


def test_a_final_decision_cannot_be_changed(am):
    contract = contract_make(owner=am, end=date(2026, 12, 31))
    alert = decide(alert_of(contract), am, "renewed")
    with pytest.raises(ValidationError) as err:
        decide(alert, am, "churned")
    assert "already renewed" in str(err.value)
    assert contract.versions.count() == 2


def test_each_decision_is_kept_in_the_log_and_history(am):
    contract = contract_make(owner=am, end=date(2026, 12, 31))
    alert = alert_of(contract)
    decide(alert, am, "snoozed", note="Out of office", snooze_until=date(2026, 11, 20))
    decide(alert, am, "renewing", note="Proposal sent")
    decide(alert, am, "churning", note="They chose a competitor")
    decide(alert, am, "churned", note="Confirmed")
    assert list(alert.decisions.values_list("decision", "note")) == [
        ("snoozed", "Out of office"),
        ("renewing", "Proposal sent"),
        ("churning", "They chose a competitor"),
        ("churned", "Confirmed"),
    ]
    statuses = list(alert.history.order_by("history_id").values_list("status", flat=True))
    assert statuses == ["open", "snoozed", "renewing", "churning", "churned"]
    assert alert.history.order_by("-history_id").first().history_user == am


def test_viewers_and_other_account_managers_cannot_decide(am, other_am):
    contract = contract_make(owner=am, end=date(2026, 12, 31))
    alert = alert_of(contract)
    viewer = user_make(role=Role.VIEWER)
    for user in (viewer, other_am):
        with pytest.raises(PermissionDenied):
            decide(alert, user, "churned")
    finance = user_make(role=Role.FINANCE)
    assert decide(alert, finance, "renewing").status == RenewalStatus.RENEWING
