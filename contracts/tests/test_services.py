"""Services: customers, issuing entities, contracts, activation, value, demo data."""

from __future__ import annotations

import copy
from datetime import date
from decimal import Decimal

import pytest
from django.core.exceptions import ValidationError

from contracts.models import Contract, Customer, IssuingEntity, Milestone
from contracts.selectors import contract_value_of, contract_with_versions
from contracts.services.contracts import contract_activate, contract_create, contract_update
from contracts.services.customers import customer_create, customer_update
from contracts.services.issuing_entities import issuing_entity_create
from contracts.tests.factories import (
    ContractFactory,
    CustomerFactory,
    PriceLineFactory,
    contract_payload,
    customer_payload,
)
from contracts.valuation import contract_value

pytestmark = pytest.mark.django_db


@pytest.fixture
def acme(in_a):
    with in_a():
        yield customer_create(data=customer_payload())


def test_customer_create_stores_the_wire_fields(acme):
    assert acme.billing_emails == ["ap@acme.example"]
    assert (acme.address_line1, acme.city, acme.postal_code, acme.country) == (
        "1 Main Street",
        "London",
        "EC1A 1AA",
        "GB",
    )


def test_customer_update_full_replace_clears_what_is_left_out(acme):
    customer_update(customer=acme, data={"external_id": "acme-ltd", "legal_name": "Acme Group Ltd"}, partial=False)
    acme.refresh_from_db()
    assert acme.legal_name == "Acme Group Ltd" and acme.city == "" and acme.billing_emails == []


def test_customer_validation_collects_every_problem_at_once(in_a):
    with in_a():
        with pytest.raises(ValidationError) as exc:
            customer_create(
                data={"external_id": "", "legal_name": "", "currency": "??", "billing_emails": "a@b.example, nope"}
            )
        assert set(exc.value.message_dict) == {"external_id", "legal_name", "currency", "billing_emails"}
        assert Customer.objects.count() == 0


def test_issuing_entity_prefixes_and_names_are_unique(in_a):
    with in_a():
        issuing_entity_create(data={"legal_name": "Northwind Ltd", "invoice_prefix": "NW-"})
        with pytest.raises(ValidationError) as exc:
            issuing_entity_create(data={"legal_name": "northwind ltd", "invoice_prefix": "nw-"})
        assert set(exc.value.message_dict) == {"legal_name", "invoice_prefix"}


def test_contract_create_writes_version_one_lines_tiers_rates_and_milestones(acme):
    contract = contract_create(data=contract_payload())
    version = contract.versions.get()
    assert (version.version, version.effective_from, version.currency) == (1, date(2026, 1, 15), "USD")
    lines = list(version.price_lines.order_by("position"))
    assert [(pl.line_ref, pl.kind) for pl in lines] == [
        ("L1", "recurring"),
        ("L2", "milestone"),
        ("L3", "time_and_materials"),
        ("L4", "fixed_fee"),
        ("L5", "usage"),
    ]
    assert [(t.up_to, t.unit_amount) for t in lines[4].tiers.all()] == [
        (Decimal("100"), Decimal("1.00")),
        (None, Decimal("0.50")),
    ]
    assert [(r.role, r.hourly_rate) for r in lines[2].rates.all()] == [("engineer", Decimal("150.00"))]
    milestone = Milestone.objects.get(contract=contract)
    assert (milestone.line_ref, milestone.name, milestone.reference, milestone.status) == (
        "L2",
        "Phase 1 go-live",
        "PROJ-12",
        "pending",
    )


def test_a_contract_names_its_customer_by_id_or_external_id(acme):
    by_id = contract_create(data=contract_payload(customer=str(acme.pk)))
    assert by_id.customer == acme


def test_currency_defaults_to_the_customers(acme):
    payload = contract_payload()
    del payload["currency"]
    acme.currency = "EUR"
    acme.save()
    assert contract_create(data=payload).versions.get().currency == "EUR"


def test_chosen_line_refs_are_kept_and_must_be_unique(acme):
    payload = copy.deepcopy(contract_payload())
    payload["price_lines"][0]["line_ref"] = "retainer"
    contract = contract_create(data=payload)
    assert sorted(contract.versions.get().price_lines.values_list("line_ref", flat=True)) == [
        "L1",
        "L2",
        "L3",
        "L4",
        "retainer",
    ]
    payload = copy.deepcopy(contract_payload(number="C-1002"))
    payload["price_lines"][0]["line_ref"] = payload["price_lines"][1]["line_ref"] = "X"
    with pytest.raises(ValidationError) as exc:
        contract_create(data=payload)
    assert "price_lines.1.line_ref" in exc.value.message_dict


def test_a_draft_is_activated_and_cannot_go_back(acme):
    draft = contract_create(data=contract_payload(status="draft"))
    contract_activate(contract=draft)
    draft.refresh_from_db()
    assert draft.status == "active"
    with pytest.raises(ValidationError):
        contract_activate(contract=draft)
    with pytest.raises(ValidationError) as exc:
        contract_update(contract=draft, data={"status": "draft"})
    assert "status" in exc.value.message_dict


def test_a_draft_with_no_lines_cannot_be_activated(acme):
    draft = contract_create(data=contract_payload(status="draft", price_lines=[]))
    with pytest.raises(ValidationError) as exc:
        contract_activate(contract=draft)
    assert "price_lines" in exc.value.message_dict


def test_a_drafts_terms_stay_editable_even_after_its_start_date(acme):
    draft = contract_create(
        data=contract_payload(
            status="draft",
            start_date="2025-01-01",
            end_date="2025-12-31",
            price_lines=[{"kind": "fixed_fee", "description": "Setup", "amount": "100.00"}],
        )
    )
    contract_update(
        contract=draft, data={"price_lines": [{"kind": "fixed_fee", "description": "Setup", "amount": "150.00"}]}
    )
    line = draft.versions.get().price_lines.get()
    assert line.amount == Decimal("150.00") and line.line_ref == "L1"


def test_the_customer_of_a_signed_contract_cannot_change(acme):
    contract = contract_create(data=contract_payload())
    other = customer_create(data=customer_payload(external_id="globex", legal_name="Globex"))
    with pytest.raises(ValidationError) as exc:
        contract_update(contract=contract, data={"customer": other.external_id})
    assert "customer" in exc.value.message_dict


def test_the_end_date_cannot_precede_a_scheduled_version(acme):
    from contracts.services.contracts import contract_amend

    contract = contract_create(data=contract_payload())
    contract_amend(contract=contract, effective_from=date(2026, 9, 1), changes={"payment_terms_days": 45})
    with pytest.raises(ValidationError) as exc:
        contract_update(contract=contract, data={"end_date": "2026-08-31"})
    assert "end_date" in exc.value.message_dict


def test_signed_documents_must_be_documents(acme):
    from django.core.files.uploadedfile import SimpleUploadedFile

    with pytest.raises(ValidationError) as exc:
        contract_create(data=contract_payload(), signed_document=SimpleUploadedFile("run.exe", b"MZ"))
    assert "signed_document" in exc.value.message_dict
    assert not Contract.objects.exists()


def test_history_records_who_changed_a_customer(acme, tenant_a):
    from revexos.accounts.models import User

    admin = User.objects.get(email=tenant_a.users["admin"])
    customer_update(customer=acme, data={"tax_id": "GB980780684"}, user=admin)
    record = acme.history.first()
    assert record.history_user == admin and record.tax_id == "GB980780684"


# ----------------------------------------------------------------------------- contract value


def test_contract_value_prices_recurring_periods_at_the_version_in_force_and_one_offs_once(acme):
    from contracts.services.contracts import contract_amend

    contract = contract_create(data=contract_payload())
    value = contract_value_of(contract_with_versions(pk=contract.pk), as_of=date(2026, 2, 1))
    # Retainer: 17/31 × 3,100 (1,700.00) + 11 × 3,100; milestone 12,000; onboarding 5,000; usage minimum 0.
    assert value.committed == {
        "USD": Decimal("1700.00") + 11 * Decimal("3100.00") + Decimal("12000.00") + Decimal("5000.00")
    }
    assert value.tm_caps == {"USD": Decimal("20000.00")}
    lines = copy.deepcopy(contract_payload()["price_lines"])
    lines[0]["amount"] = "3500.00"
    contract_amend(contract=contract, effective_from=date(2026, 7, 1), changes={"price_lines": lines})
    amended = contract_value_of(contract_with_versions(pk=contract.pk), as_of=date(2026, 8, 1))
    assert amended.committed["USD"] == value.committed["USD"] + 6 * Decimal("400.00")
    assert amended.recurring_per_month == {"USD": Decimal("3500.00")}


def test_open_ended_contracts_are_valued_over_their_first_year():
    from types import SimpleNamespace

    line = SimpleNamespace(
        kind="recurring",
        line_ref="L1",
        amount=Decimal("1000"),
        frequency="quarterly",
        minimum_commitment=Decimal(0),
        cap=None,
        percent_of_fixed_fee=None,
    )
    version = SimpleNamespace(effective_from=date(2026, 1, 1), billing_anchor="calendar", currency="EUR", lines=[line])
    value = contract_value(start=date(2026, 1, 1), end=None, versions=[version])
    assert value.open_ended and value.committed == {"EUR": Decimal("4000.00")}


# ----------------------------------------------------------------------------- factories and demo


def test_factories_build_every_kind(in_a):
    with in_a():
        contract = ContractFactory()
        version = contract.versions.get()
        for trait in ("fixed_fee", "milestone", "time_and_materials", "usage", "graduated"):
            PriceLineFactory(version=version, **{trait: True})
        PriceLineFactory(version=version)
        kinds = sorted(version.price_lines.values_list("kind", flat=True))
        assert kinds == ["fixed_fee", "milestone", "recurring", "time_and_materials", "usage", "usage"]
        assert CustomerFactory().billing_emails


def test_demo_seed_covers_every_kind_and_charge_model_with_amendments_and_milestones(in_a):
    from contracts.models import ChargeModel, ContractVersion, PriceLine, PriceLineKind
    from contracts.services.demo import contracts_demo_seed

    with in_a():
        summary = contracts_demo_seed(today=date(2026, 11, 28))
        assert summary["contracts"] == Contract.objects.count() == 50
        assert IssuingEntity.objects.count() == 2 and Customer.objects.count() >= 15
        assert set(PriceLine.objects.values_list("kind", flat=True)) == set(PriceLineKind.values)
        assert set(PriceLine.objects.filter(kind="usage").values_list("charge_model", flat=True)) == set(
            ChargeModel.values
        )
        assert ContractVersion.objects.filter(version__gt=1).count() == summary["amendments"] >= 10
        assert (
            Milestone.objects.filter(status="delivered").exists()
            and Milestone.objects.filter(status="pending").exists()
        )
        assert set(Contract.objects.values_list("status", flat=True)) >= {"active", "draft"}
        assert contracts_demo_seed()["contracts"] == 0  # idempotent: a seeded tenant is left alone


def test_demo_seed_is_deterministic(in_a):
    from django.db import transaction

    from contracts.services.demo import contracts_demo_seed

    def snapshot():
        return sorted(
            Contract.objects.values_list("number", "title", "start_date", "end_date", "customer__external_id")
        )

    class Rollback(Exception):
        pass

    with in_a():
        try:
            with transaction.atomic():
                contracts_demo_seed(today=date(2026, 11, 28), contracts=20)
                first = snapshot()
                raise Rollback
        except Rollback:
            pass
        assert not Contract.objects.exists()
        contracts_demo_seed(today=date(2026, 11, 28), contracts=20)
        assert snapshot() == first
