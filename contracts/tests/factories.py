"""factory-boy factories for the contracts domain; other apps' tests import these.

``ContractFactory()`` makes an active contract with version 1 (effective on the start date) and
no price lines; add lines with ``PriceLineFactory(version=contract.versions.get())`` and its
traits, or build a full contract through the service with ``contract_payload()``.
"""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import factory

from contracts.models import (
    Contract,
    ContractVersion,
    Customer,
    IssuingEntity,
    Milestone,
    PriceLine,
    PriceTier,
    RateCardEntry,
)


class IssuingEntityFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = IssuingEntity

    legal_name = factory.Sequence(lambda n: f"Northwind Consulting Ltd {n}")
    currency = "USD"
    invoice_prefix = factory.Sequence(lambda n: f"NW{n}-")
    tax_id = "GB999999973"
    address_line1 = "1 Harbour Street"
    city = "London"
    postal_code = "E1 6AN"
    country = "GB"
    bank_details = "IBAN GB33BUKB20201555555555"


class CustomerFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Customer

    external_id = factory.Sequence(lambda n: f"customer-{n}")
    legal_name = factory.Sequence(lambda n: f"Customer {n} Ltd")
    currency = "USD"
    billing_emails = factory.LazyAttribute(lambda o: [f"ap@{o.external_id}.example"])
    country = "GB"


class ContractFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Contract
        skip_postgeneration_save = True

    customer = factory.SubFactory(CustomerFactory)
    issuing_entity = factory.SubFactory(IssuingEntityFactory)
    number = factory.Sequence(lambda n: f"C-{10000 + n}")
    title = "Platform services"
    status = "active"
    start_date = date(2026, 1, 15)
    end_date = date(2026, 12, 31)

    @factory.post_generation
    def version(obj, create, extracted, **kwargs):
        """Version 1 from the start date; ``version=False`` skips it, ``version__currency=...`` sets terms."""
        if not create or extracted is False:
            return
        kwargs.setdefault("currency", obj.customer.currency)
        ContractVersionFactory(contract=obj, version=1, effective_from=obj.start_date, **kwargs)


class ContractVersionFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = ContractVersion

    contract = factory.SubFactory(ContractFactory, version=False)
    version = factory.Sequence(lambda n: n + 1)
    effective_from = factory.LazyAttribute(lambda o: o.contract.start_date)
    currency = "USD"
    payment_terms_days = 30


class PriceLineFactory(factory.django.DjangoModelFactory):
    """A monthly retainer by default; traits for every other kind and charge model."""

    class Meta:
        model = PriceLine
        skip_postgeneration_save = True

    version = factory.SubFactory(ContractVersionFactory)
    line_ref = factory.Sequence(lambda n: f"L{n + 1}")
    position = factory.Sequence(lambda n: n + 1)
    kind = "recurring"
    description = "Retainer"
    amount = Decimal("3100.00")
    frequency = "monthly"
    timing = "advance"

    class Params:
        fixed_fee = factory.Trait(
            kind="fixed_fee", description="Onboarding", amount=Decimal("5000.00"), frequency="", timing=""
        )
        milestone = factory.Trait(
            kind="milestone",
            description="Phase 1 go-live",
            amount=Decimal("12000.00"),
            frequency="",
            timing="",
            reference=factory.Sequence(lambda n: f"PROJ-{n}"),
            expected_date=date(2026, 3, 31),
        )
        time_and_materials = factory.Trait(
            kind="time_and_materials",
            description="Extra engineering",
            amount=None,
            frequency="",
            timing="",
            cap=Decimal("20000.00"),
        )
        usage = factory.Trait(
            kind="usage",
            description="API calls",
            amount=None,
            timing="",
            metric="api_calls",
            charge_model="per_unit",
            unit_amount=Decimal("0.01"),
            aggregation="sum",
        )
        graduated = factory.Trait(
            kind="usage",
            description="API calls",
            amount=None,
            timing="",
            metric="api_calls",
            charge_model="graduated",
            aggregation="sum",
        )

    @factory.post_generation
    def tiers(obj, create, extracted, **kwargs):
        """``tiers=[("100", "1.00"), (None, "0.50")]`` — (up_to, unit_amount[, flat_amount]); graduated lines default to two tiers."""
        if not create:
            return
        if extracted is None and obj.charge_model in ("graduated", "volume"):
            extracted = [("100", "1.00"), (None, "0.50")]
        for position, tier in enumerate(extracted or [], start=1):
            up_to, unit_amount, *rest = tier
            PriceTier.objects.create(
                price_line=obj,
                position=position,
                up_to=None if up_to is None else Decimal(up_to),
                unit_amount=Decimal(unit_amount),
                flat_amount=Decimal(rest[0]) if rest else Decimal("0"),
            )

    @factory.post_generation
    def rates(obj, create, extracted, **kwargs):
        """``rates=[("engineer", "150.00")]``; time-and-materials lines default to one engineer rate."""
        if not create:
            return
        if extracted is None and obj.kind == "time_and_materials":
            extracted = [("engineer", "150.00")]
        for role, hourly_rate in extracted or []:
            RateCardEntry.objects.create(price_line=obj, role=role, hourly_rate=Decimal(hourly_rate))


class MilestoneFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Milestone

    contract = factory.SubFactory(ContractFactory)
    line_ref = factory.Sequence(lambda n: f"M{n + 1}")
    name = "Phase 1 go-live"
    reference = factory.Sequence(lambda n: f"PROJ-{n + 1}")
    expected_date = date(2026, 3, 31)


def contract_payload(*, customer: str = "acme-ltd", number: str = "C-1001", **overrides) -> dict:
    """The contract of DESIGN.md §5, every kind of price line, as the API posts it."""
    payload = {
        "customer": customer,
        "number": number,
        "title": "Platform services 2026",
        "start_date": "2026-01-15",
        "end_date": "2026-12-31",
        "currency": "USD",
        "payment_terms_days": 30,
        "po_number": "PO-7781",
        "po_required": True,
        "billing_anchor": "calendar",
        "auto_renew": True,
        "renewal_term_months": 12,
        "notice_period_days": 30,
        "price_lines": [
            {
                "kind": "recurring",
                "description": "Retainer",
                "amount": "3100.00",
                "frequency": "monthly",
                "timing": "advance",
                "included_hours": "20",
                "overage_rate": "150.00",
            },
            {
                "kind": "milestone",
                "description": "Phase 1 go-live",
                "amount": "12000.00",
                "reference": "PROJ-12",
                "expected_date": "2026-03-31",
            },
            {
                "kind": "time_and_materials",
                "description": "Extra engineering",
                "rates": [{"role": "engineer", "hourly_rate": "150.00"}],
                "cap": "20000.00",
            },
            {"kind": "fixed_fee", "description": "Onboarding", "amount": "5000.00", "bill_on": "2026-01-15"},
            {
                "kind": "usage",
                "description": "API calls",
                "metric": "api_calls",
                "frequency": "monthly",
                "charge_model": "graduated",
                "free_units": "0",
                "minimum_commitment": "0",
                "tiers": [
                    {"up_to": "100", "unit_amount": "1.00", "flat_amount": "0"},
                    {"up_to": None, "unit_amount": "0.50", "flat_amount": "0"},
                ],
            },
        ],
    }
    payload.update(overrides)
    return payload


def customer_payload(*, external_id: str = "acme-ltd", **overrides) -> dict:
    """The customer of DESIGN.md §5 as the API posts it."""
    payload = {
        "external_id": external_id,
        "legal_name": "Acme Ltd",
        "currency": "USD",
        "billing_emails": ["ap@acme.example"],
        "tax_id": "GB999999973",
        "address": {"line1": "1 Main Street", "city": "London", "postal_code": "EC1A 1AA", "country": "GB"},
    }
    payload.update(overrides)
    return payload
