"""Amendments: new terms from a date, billing uses the terms in force at a period's start, history is never edited."""

from __future__ import annotations

import copy
from datetime import date

import pytest
import time_machine
from django.core.exceptions import ValidationError

from contracts.models import ContractVersion, Milestone, PriceLine
from contracts.selectors import contract_terms_on
from contracts.services.contracts import contract_amend, contract_amend_prepare, contract_create, contract_update
from contracts.services.customers import customer_create
from contracts.tests.factories import contract_payload, customer_payload

pytestmark = pytest.mark.django_db


@pytest.fixture
def contract(in_a):
    with in_a():
        customer_create(data=customer_payload())
        yield contract_create(data=contract_payload())


def _lines():
    return copy.deepcopy(contract_payload()["price_lines"])


def _retainer(version: ContractVersion) -> PriceLine:
    return version.price_lines.get(line_ref="L1")


def test_amended_on_15_march_february_bills_on_the_old_terms_and_april_on_the_new(contract):
    lines = _lines()
    lines[0]["amount"] = "3500.00"
    contract_amend(
        contract=contract, effective_from=date(2026, 3, 15), changes={"price_lines": lines, "reason": "Uplift"}
    )
    february = contract_terms_on(contract=contract, on=date(2026, 2, 1))
    april = contract_terms_on(contract=contract, on=date(2026, 4, 1))
    assert february.version == 1 and _retainer(february).amount == 3100
    assert april.version == 2 and _retainer(april).amount == 3500
    # The period that starts on 1 March started before the amendment: still the old terms.
    assert contract_terms_on(contract=contract, on=date(2026, 3, 1)).version == 1
    assert contract_terms_on(contract=contract, on=date(2026, 3, 15)).version == 2


def test_before_the_first_version_takes_effect_the_first_version_governs(contract):
    assert contract_terms_on(contract=contract, on=date(2026, 1, 1)).version == 1


def test_unchanged_lines_are_copied_with_their_refs(contract):
    version = contract_amend(contract=contract, effective_from=date(2026, 6, 1), changes={"payment_terms_days": 45})
    assert version.version == 2 and version.payment_terms_days == 45 and version.po_number == "PO-7781"
    old = {pl.line_ref: pl for pl in contract.versions.get(version=1).price_lines.all()}
    new = {pl.line_ref: pl for pl in version.price_lines.all()}
    assert set(new) == set(old) == {"L1", "L2", "L3", "L4", "L5"}
    assert all(new[ref].pk != old[ref].pk for ref in new)
    assert [t.unit_amount for t in new["L5"].tiers.all()] == [t.unit_amount for t in old["L5"].tiers.all()]
    assert [r.role for r in new["L3"].rates.all()] == ["engineer"]


def test_lines_are_matched_by_ref_then_by_kind_and_description_and_new_lines_get_fresh_refs(contract):
    lines = _lines()
    lines[0]["line_ref"] = "L1"
    lines[0]["description"] = "Retainer (renamed)"
    del lines[2]  # time and materials ends
    lines.append({"kind": "fixed_fee", "description": "Training", "amount": "900.00"})
    version = contract_amend(contract=contract, effective_from=date(2026, 5, 1), changes={"price_lines": lines})
    refs = {pl.description: pl.line_ref for pl in version.price_lines.all()}
    assert refs == {
        "Retainer (renamed)": "L1",
        "Phase 1 go-live": "L2",
        "Onboarding": "L4",
        "API calls": "L5",
        "Training": "L6",
    }
    # L3 was removed: a later amendment cannot hand its ref to another line.
    again = _lines()
    again[0]["line_ref"] = "L3"
    with pytest.raises(ValidationError) as exc:
        contract_amend(contract=contract, effective_from=date(2026, 7, 1), changes={"price_lines": again})
    assert "price_lines.0.line_ref" in exc.value.message_dict


def test_a_line_ref_cannot_change_kind(contract):
    lines = _lines()
    lines[0] = {"kind": "fixed_fee", "description": "Retainer", "amount": "1.00", "line_ref": "L1"}
    with pytest.raises(ValidationError) as exc:
        contract_amend(contract=contract, effective_from=date(2026, 5, 1), changes={"price_lines": lines})
    assert "price_lines.0.line_ref" in exc.value.message_dict


@pytest.mark.parametrize(
    "when, message",
    [
        (date(2026, 1, 15), "after version 1"),
        (date(2026, 1, 1), "after version 1"),
        (date(2027, 1, 1), "ends on 31 Dec 2026"),
    ],
)
def test_the_effective_date_must_follow_the_latest_version_and_fall_inside_the_contract(contract, when, message):
    with pytest.raises(ValidationError) as exc:
        contract_amend(contract=contract, effective_from=when, changes={"payment_terms_days": 60})
    assert any(message in m for m in exc.value.message_dict["effective_from"])
    assert contract.versions.count() == 1


def test_a_second_amendment_must_follow_the_first(contract):
    contract_amend(contract=contract, effective_from=date(2026, 6, 1), changes={"payment_terms_days": 45})
    with pytest.raises(ValidationError):
        contract_amend(contract=contract, effective_from=date(2026, 5, 1), changes={"payment_terms_days": 60})
    third = contract_amend(contract=contract, effective_from=date(2026, 9, 1), changes={"payment_terms_days": 60})
    assert third.version == 3


def test_an_amendment_that_changes_nothing_is_refused(contract):
    with pytest.raises(ValidationError) as exc:
        contract_amend(contract=contract, effective_from=date(2026, 6, 1), changes={"price_lines": _lines()})
    assert "changes nothing" in exc.value.message_dict["non_field_errors"][0]


def test_closed_contracts_cannot_be_amended(contract):
    contract.status = "terminated"
    contract.save()
    with pytest.raises(ValidationError):
        contract_amend(contract=contract, effective_from=date(2026, 6, 1), changes={"payment_terms_days": 45})


def test_the_preview_shows_a_field_level_diff_and_writes_nothing(contract):
    lines = _lines()
    lines[0]["amount"] = "3500.00"
    lines[4]["tiers"][1]["unit_amount"] = "0.40"
    del lines[3]
    lines.append({"kind": "fixed_fee", "description": "Training", "amount": "900.00"})
    prepared = contract_amend_prepare(
        contract=contract, effective_from="2026-04-01", changes={"price_lines": lines, "po_number": "PO-9000"}
    )
    diff = prepared.diff
    assert [(c.field, c.old, c.new) for c in diff.terms] == [("PO number", "PO-7781", "PO-9000")]
    by_ref = {line.line_ref: line for line in diff.lines}
    assert by_ref["L1"].status == "changed" and [(c.field, c.old, c.new) for c in by_ref["L1"].changes] == [
        ("amount", "3100.00", "3500.00")
    ]
    assert by_ref["L5"].status == "changed" and "0.40" in by_ref["L5"].changes[0].new
    assert by_ref["L4"].status == "removed" and by_ref["L6"].status == "added"
    assert by_ref["L2"].status == by_ref["L3"].status == "unchanged"
    assert diff.counts == {"added": 1, "removed": 1, "changed": 2, "unchanged": 2}
    assert contract.versions.count() == 1


@time_machine.travel(date(2026, 2, 10))
def test_terms_in_force_are_never_edited_in_place(contract):
    with pytest.raises(ValidationError) as exc:
        contract_update(contract=contract, data={"payment_terms_days": 60})
    assert "amend the contract" in exc.value.message_dict["non_field_errors"][0]
    with pytest.raises(ValidationError):
        contract_update(contract=contract, data={"price_lines": _lines()[:1]})
    assert contract.versions.get().payment_terms_days == 30
    # The contract's own fields still change, e.g. its title.
    contract_update(contract=contract, data={"title": "Platform services 2026 (extended)"})
    contract.refresh_from_db()
    assert contract.title.endswith("(extended)")


@time_machine.travel(date(2026, 2, 10))
def test_a_scheduled_amendment_can_be_edited_until_it_takes_effect(contract):
    contract_amend(contract=contract, effective_from=date(2026, 6, 1), changes={"payment_terms_days": 45})
    contract_update(contract=contract, data={"payment_terms_days": 50})
    assert contract.versions.get(version=2).payment_terms_days == 50
    assert contract.versions.get(version=1).payment_terms_days == 30


@time_machine.travel(date(2026, 2, 10))
def test_the_start_date_of_terms_in_force_cannot_move(contract):
    with pytest.raises(ValidationError) as exc:
        contract_update(contract=contract, data={"start_date": "2026-01-20"})
    assert "start_date" in exc.value.message_dict


def test_removing_a_milestone_line_cancels_its_pending_milestone_and_keeps_delivered_ones(contract):
    milestone = Milestone.objects.get(contract=contract)
    assert (milestone.line_ref, milestone.reference, milestone.status) == ("L2", "PROJ-12", "pending")
    lines = [line for line in _lines() if line["kind"] != "milestone"]
    lines.append(
        {
            "kind": "milestone",
            "description": "Phase 2",
            "amount": "8000.00",
            "reference": "PROJ-13",
            "expected_date": "2026-09-30",
        }
    )
    contract_amend(contract=contract, effective_from=date(2026, 5, 1), changes={"price_lines": lines})
    states = {m.line_ref: m.status for m in Milestone.objects.filter(contract=contract)}
    assert states == {"L2": "cancelled", "L6": "pending"}


def test_an_amended_milestone_updates_its_pending_milestone(contract):
    lines = _lines()
    lines[1]["expected_date"] = "2026-04-30"
    contract_amend(contract=contract, effective_from=date(2026, 3, 1), changes={"price_lines": lines})
    assert Milestone.objects.get(contract=contract).expected_date == date(2026, 4, 30)


def test_amendments_record_who_and_why_in_history(contract, tenant_a):
    from contracts.selectors import contract_history
    from revexos.accounts.models import User

    admin = User.objects.get(email=tenant_a.users["admin"])
    lines = _lines()
    lines[0]["amount"] = "3500.00"
    version = contract_amend(
        contract=contract,
        effective_from=date(2026, 4, 1),
        changes={"price_lines": lines, "reason": "Uplift"},
        user=admin,
    )
    assert version.created_by == admin and version.reason == "Uplift"
    events = contract_history(contract=contract)
    latest = events[0]
    assert latest.who == str(admin) and latest.note == "Amendment v2 from 1 Apr 2026"
    changed = [item for item in latest.items if item.action == "changed"]
    assert changed[0].subject.startswith("Retainer") and ("amount", "3100.00", "3500.00") in changed[0].changes
    assert any("carried over unchanged" in item.subject for item in latest.items)


def test_a_delivered_milestone_keeps_its_amount_and_its_line_until_invoiced(contract):
    from django.utils import timezone

    milestone = Milestone.objects.get(contract=contract)
    milestone.status, milestone.delivered_at = "delivered", timezone.now()
    milestone.save()
    repriced = _lines()
    repriced[1]["amount"] = "15000.00"
    with pytest.raises(ValidationError) as exc:
        contract_amend(contract=contract, effective_from=date(2026, 5, 1), changes={"price_lines": repriced})
    assert "can no longer change" in exc.value.message_dict["price_lines.1.amount"][0]
    dropped = [line for line in _lines() if line["kind"] != "milestone"]
    with pytest.raises(ValidationError) as exc:
        contract_amend(contract=contract, effective_from=date(2026, 5, 1), changes={"price_lines": dropped})
    assert "keep its line until it is invoiced" in exc.value.message_dict["price_lines"][0]
    milestone.status = "invoiced"
    milestone.save()
    contract_amend(contract=contract, effective_from=date(2026, 5, 1), changes={"price_lines": dropped})
    assert Milestone.objects.get(contract=contract).status == "invoiced"
