"""Customers and contracts on the public API (DESIGN.md §5).

The schemas below document the shape; values are validated by the same services the UI and the
CSV import use (contracts.wire), so every door gives the same error under the same field name.
Money is a decimal string ("3100.00"); see contracts.wire for how JSON numbers are treated.
"""

from __future__ import annotations

import json
from typing import Annotated, Any

from django.core.exceptions import ValidationError
from django.http import Http404
from django.utils import timezone
from ninja import Field, Query, Router, Schema, Status
from pydantic import ConfigDict, WithJsonSchema

from contracts.models import ContractStatus
from contracts.selectors import contract_by_ref, contract_list, contract_terms_on, customer_by_ref, customer_list
from contracts.services.contracts import contract_amend, contract_create, contract_update
from contracts.services.customers import customer_create, customer_update
from contracts.wire import CURRENCY_CODES, contract_to_wire, customer_to_wire, version_to_wire
from revexos.api_kit import Day, PageFilters, Ref, Text, choice

router = Router(tags=["contracts"])

Decimal_ = Annotated[Any, WithJsonSchema({"type": "string", "pattern": r"^\d+(\.\d+)?$", "examples": ["3100.00"]})]
Date_ = Annotated[Any, WithJsonSchema({"type": "string", "format": "date", "examples": ["2026-01-15"]})]
Text_ = Annotated[Any, WithJsonSchema({"type": "string"})]
Int_ = Annotated[Any, WithJsonSchema({"type": "integer"})]
Bool_ = Annotated[Any, WithJsonSchema({"type": "boolean"})]


class _Open(Schema):
    # Unknown keys pass through to the service, which names each one in a 422.
    model_config = ConfigDict(extra="allow")


class AddressIn(_Open):
    line1: Text_ = None
    line2: Text_ = None
    city: Text_ = None
    region: Text_ = None
    postal_code: Text_ = None
    country: Text_ = Field(None, description="ISO 3166-1 alpha-2, e.g. GB")


class CustomerIn(_Open):
    external_id: Text_ = Field(None, description="Your id for the customer, e.g. acme-ltd. Required on create.")
    legal_name: Text_ = None
    currency: Text_ = Field(None, description="ISO 4217, default USD")
    billing_emails: Annotated[
        Any, WithJsonSchema({"type": "array", "items": {"type": "string", "format": "email"}})
    ] = None
    tax_id: Text_ = Field(None, description="VAT or tax id, checked by format (python-stdnum), e.g. DE136695976")
    tax_exempt: Bool_ = Field(None, description="Never taxed; needs tax_exempt_reason or tax_exempt_certificate")
    tax_exempt_reason: Text_ = None
    tax_exempt_certificate: Text_ = None
    address: AddressIn | None = None
    crm_id: Text_ = None
    accounting_id: Text_ = None
    stripe_customer_id: Text_ = None
    owner: Text_ = Field(None, description="E-mail of the account manager (a user of this workspace)")
    is_active: Bool_ = None


class CustomerOut(Schema):
    id: str
    external_id: str
    legal_name: str
    currency: str
    billing_emails: list[str]
    tax_id: str
    tax_exempt: bool
    tax_exempt_reason: str
    tax_exempt_certificate: str
    address: dict[str, str]
    crm_id: str
    accounting_id: str
    stripe_customer_id: str
    owner: str | None
    is_active: bool


class TierIn(_Open):
    up_to: Decimal_ = Field(None, description="Inclusive upper bound; null for the last tier")
    unit_amount: Decimal_ = None
    rate: Decimal_ = Field(None, description="graduated_percentage: percent of the amount in this tier")
    flat_amount: Decimal_ = None


class RateIn(_Open):
    role: Text_ = None
    hourly_rate: Decimal_ = None


class PriceLineIn(_Open):
    kind: Text_ = Field(None, description="fixed_fee | recurring | milestone | time_and_materials | usage")
    description: Text_ = None
    line_ref: Text_ = Field(
        None,
        description="Optional: continue this line of the current terms (amendments), or choose the ref of a new line",
    )
    amount: Decimal_ = None
    bill_on: Date_ = None
    frequency: Text_ = Field(None, description="monthly | quarterly | annual")
    timing: Text_ = Field(None, description="advance | arrears")
    included_hours: Decimal_ = Field(
        None, description="recurring: hours the fee includes (with overage_rate); fixed_fee: the budget in hours"
    )
    overage_rate: Decimal_ = None
    reference: Text_ = None
    expected_date: Date_ = None
    percent_of_fixed_fee: Decimal_ = None
    rates: list[RateIn] | None = None
    cap: Decimal_ = None
    metric: Text_ = None
    charge_model: Text_ = Field(
        None, description="per_unit | graduated | volume | package | percentage | graduated_percentage"
    )
    tax_category: Text_ = Field(None, description="standard (default) | reduced | super_reduced | zero | exempt")
    aggregation: Text_ = Field(None, description="sum (default) | count | max | unique_count")
    aggregation_property: Text_ = None
    unit_amount: Decimal_ = None
    tiers: list[TierIn] | None = None
    package_size: Decimal_ = None
    rate: Decimal_ = None
    fixed_amount: Decimal_ = None
    per_transaction_min: Decimal_ = None
    per_transaction_max: Decimal_ = None
    free_units: Decimal_ = None
    free_amount: Decimal_ = None
    minimum_commitment: Decimal_ = None
    threshold_amount: Decimal_ = None


class ContractIn(_Open):
    customer: Text_ = Field(None, description="Customer id or external_id")
    number: Text_ = None
    title: Text_ = None
    status: Text_ = Field(None, description="active (default) or draft, which keeps it out of billing until activated")
    issuing_entity: Text_ = Field(
        None, description="Id, invoice prefix or legal name; defaults to the only (or only same-currency) entity"
    )
    owner: Text_ = Field(None, description="E-mail of the owning user")
    start_date: Date_ = None
    end_date: Date_ = None
    currency: Text_ = None
    payment_terms_days: Int_ = None
    po_number: Text_ = None
    po_required: Bool_ = None
    billing_anchor: Text_ = Field(None, description="calendar | anniversary")
    auto_renew: Bool_ = None
    renewal_term_months: Int_ = None
    notice_period_days: Int_ = None
    renewal_uplift_pct: Decimal_ = None
    renewal_window_days: Int_ = None
    renewal_lead_days: Int_ = Field(
        None,
        description="Days before the notice deadline the renewal alert must come (default 30): the alert is raised "
        "at max(renewal window, notice period + this lead time) before the end date",
    )
    auto_issue: Bool_ = None
    billed_through: Date_ = Field(
        None,
        description="Onboarding cut-over: the last day the system this contract comes from billed; "
        "periods ending on or before it are never billed by RevExOS",
    )
    price_lines: list[PriceLineIn] | None = None


class AmendmentIn(_Open):
    effective_from: Date_ = Field(None, description="After the latest version's effective date, inside the contract")
    issuing_entity: Text_ = Field(
        None, description="Id, invoice prefix or legal name: invoices under the new terms are issued by this entity"
    )
    reason: Text_ = None
    currency: Text_ = None
    payment_terms_days: Int_ = None
    po_number: Text_ = None
    po_required: Bool_ = None
    billing_anchor: Text_ = None
    price_lines: list[PriceLineIn] | None = Field(
        None,
        description="The complete new set of lines; omit to keep the current lines. Lines continue old ones by line_ref.",
    )


class VersionSummaryOut(Schema):
    version: int
    effective_from: str
    reason: str
    line_refs: list[str]


class ContractOut(Schema):
    model_config = ConfigDict(extra="allow")
    id: str
    customer: str
    number: str
    title: str
    status: str
    issuing_entity: str
    owner: str | None
    start_date: str
    end_date: str | None
    currency: str | None
    payment_terms_days: int | None
    po_number: str
    po_required: bool
    billing_anchor: str | None
    auto_renew: bool
    renewal_term_months: int
    notice_period_days: int
    renewal_uplift_pct: str
    renewal_window_days: int | None
    renewal_lead_days: int
    auto_issue: bool | None
    billed_through: str | None
    current_version: VersionSummaryOut | None
    price_lines: list[dict[str, Any]]


class VersionOut(Schema):
    model_config = ConfigDict(extra="allow")
    contract: str
    version: int
    effective_from: str
    reason: str
    line_refs: list[str]
    currency: str
    payment_terms_days: int
    po_number: str
    po_required: bool
    billing_anchor: str
    issuing_entity: str = Field(description="The entity issuing invoices under these terms (id)")
    price_lines: list[dict[str, Any]]


def _dump(request) -> dict:
    """The body exactly as posted: the schemas document it, the service validates every key of it
    (unknown keys included, which pydantic would drop from nested objects)."""
    data = json.loads(request.body or b"{}")
    if not isinstance(data, dict):
        raise ValidationError({"body": ["Send a JSON object."]})
    return data


def _note(request) -> str:
    key = getattr(request, "api_key", None)
    return f"API ({key.name})" if key is not None else "API"


def _customer_or_404(ref: str):
    customer = customer_by_ref(ref)
    if customer is None:
        raise Http404(f"No customer has the id or external_id “{ref}”.")
    return customer


def _contract_or_404(ref: str):
    contract = contract_by_ref(ref)
    if contract is None:
        raise Http404(f"No contract has the id or number “{ref}”.")
    return contract


def _contract_out(contract, on=None) -> dict:
    version = contract_terms_on(contract=contract, on=on or timezone.localdate())
    return contract_to_wire(contract, version)


# ----------------------------------------------------------------------------- customers


class CustomerFilters(PageFilters):
    q: Text = Field("", description="Search legal name, external id, tax id, CRM id")
    currency: choice(*sorted(CURRENCY_CODES)) = ""
    status: choice("active", "inactive") = ""


class CustomerPage(Schema):
    items: list[CustomerOut]
    count: int


def _page(queryset, filters: PageFilters, to_wire) -> dict:
    """One page: the rows are serialised only for the page, with a fixed number of queries."""
    rows = list(queryset[filters.offset : filters.offset + filters.limit])
    return {"items": [to_wire(row) for row in rows], "count": queryset.count()}


@router.get("/customers", response=CustomerPage, summary="List customers")
def customers_list(request, filters: Query[CustomerFilters]):
    customers = customer_list(q=filters.q, currency=filters.currency, status=filters.status)
    return _page(customers, filters, customer_to_wire)


@router.post("/customers", response={201: CustomerOut}, summary="Create a customer")
def customers_create(request, payload: CustomerIn):
    customer = customer_create(data=_dump(request), note=_note(request))
    return Status(201, customer_to_wire(customer))


@router.get("/customers/{ref}", response=CustomerOut, summary="A customer, by id or external_id")
def customers_detail(request, ref: str):
    return customer_to_wire(_customer_or_404(ref))


@router.patch("/customers/{ref}", response=CustomerOut, summary="Change some fields of a customer")
def customers_update(request, ref: str, payload: CustomerIn):
    customer = customer_update(customer=_customer_or_404(ref), data=_dump(request), note=_note(request))
    return customer_to_wire(customer)


# ----------------------------------------------------------------------------- contracts


class ContractFilters(PageFilters):
    q: Text = Field("", description="Search number, title, customer")
    status: choice(*ContractStatus.values) = ""
    customer: Ref = Field("", description="Customer id or external_id")


class ContractPage(Schema):
    items: list[ContractOut]
    count: int


@router.get("/contracts", response=ContractPage, summary="List contracts with their current terms")
def contracts_list(request, filters: Query[ContractFilters]):
    from revexos.schedule import version_in_force

    customer_id = ""
    if filters.customer:
        customer = customer_by_ref(filters.customer)
        if customer is None:
            return {"items": [], "count": 0}
        customer_id = str(customer.pk)
    today = timezone.localdate()
    contracts = contract_list(q=filters.q, status=filters.status, customer=customer_id)
    return _page(contracts, filters, lambda c: contract_to_wire(c, version_in_force(list(c.versions.all()), today)))


@router.post("/contracts", response={201: ContractOut}, summary="Create a contract with its first terms")
def contracts_create(request, payload: ContractIn):
    contract = contract_create(data=_dump(request), note=_note(request))
    return Status(201, _contract_out(contract_by_ref(str(contract.pk)) or contract, on=contract.start_date))


class AsOfFilter(Schema):
    as_of: Day | None = Field(None, description="Terms in force on this date (default today)")


@router.get("/contracts/{ref}", response=ContractOut, summary="A contract with the terms in force (by id or number)")
def contracts_detail(request, ref: str, filters: Query[AsOfFilter]):
    return _contract_out(_contract_or_404(ref), on=filters.as_of)


@router.patch(
    "/contracts/{ref}",
    response=ContractOut,
    summary="Change a contract's own fields (title, owner, end date, renewal settings, …)",
    description="Only the keys sent change. The terms in force (currency, payment terms, PO, anchor, price "
    "lines) change by amendment (`POST /contracts/{ref}/amendments`); a draft's terms, or terms not yet in "
    "force, may be sent here too.",
)
def contracts_update(request, ref: str, payload: ContractIn):
    contract = contract_update(contract=_contract_or_404(ref), data=_dump(request))
    return _contract_out(contract_by_ref(str(contract.pk)) or contract)


@router.get("/contracts/{ref}/versions", response=list[VersionOut], summary="Every version of a contract's terms")
def contracts_versions(request, ref: str):
    from contracts.selectors import contract_versions

    return [version_to_wire(v) for v in contract_versions(contract=_contract_or_404(ref))]


@router.post("/contracts/{ref}/amendments", response={201: VersionOut}, summary="Amend: new terms from a date")
def contracts_amend(request, ref: str, payload: AmendmentIn):
    contract = _contract_or_404(ref)
    data = _dump(request)
    effective_from = data.pop("effective_from", None)
    version = contract_amend(contract=contract, effective_from=effective_from, changes=data)
    return Status(201, version_to_wire(version))


# ----------------------------------------------------------------------------- issuing entities and tax (DESIGN.md §5.1)


class IssuingEntityIn(_Open):
    legal_name: Text_ = None
    number_prefix: Text_ = Field(
        None, description="Invoice numbers read <prefix><year>-<sequence>, e.g. NWL-2026-000042"
    )
    currency: Text_ = Field(None, description="ISO 4217, default USD")
    tax_id: Text_ = Field(None, description="Checked by format for the entity's country, e.g. GB980780684")
    address: AddressIn | None = None
    bank_details: Text_ = Field(None, description="Printed on invoices as payment instructions")
    email: Text_ = None
    is_active: Bool_ = None


class IssuingEntityOut(Schema):
    id: str
    legal_name: str
    number_prefix: str
    currency: str
    tax_id: str
    address: dict[str, str]
    bank_details: str
    email: str
    is_active: bool


class IssuingEntityPage(Schema):
    items: list[IssuingEntityOut]
    count: int


def _entity_or_404(ref: str):
    from contracts.selectors import issuing_entity_by_ref

    entity = issuing_entity_by_ref(ref)
    if entity is None:
        raise Http404(f"No issuing entity has the id or prefix “{ref}”.")
    return entity


@router.get("/issuing-entities", response=IssuingEntityPage, summary="List the issuing entities", tags=["tax"])
def issuing_entities_list(request, filters: Query[PageFilters]):
    from contracts.models import IssuingEntity
    from contracts.services.issuing_entities import issuing_entity_to_wire

    return _page(IssuingEntity.objects.order_by("legal_name", "pk"), filters, issuing_entity_to_wire)


@router.post(
    "/issuing-entities",
    response={201: IssuingEntityOut},
    summary="Create an issuing entity (seeds the usual tax rates of its country)",
    tags=["tax"],
)
def issuing_entities_create(request, payload: IssuingEntityIn):
    from contracts.services.issuing_entities import issuing_entity_create, issuing_entity_to_wire

    return Status(201, issuing_entity_to_wire(issuing_entity_create(data=_dump(request))))


@router.get(
    "/issuing-entities/{ref}", response=IssuingEntityOut, summary="An issuing entity, by id or prefix", tags=["tax"]
)
def issuing_entities_detail(request, ref: str):
    from contracts.services.issuing_entities import issuing_entity_to_wire

    return issuing_entity_to_wire(_entity_or_404(ref))


@router.patch(
    "/issuing-entities/{ref}",
    response=IssuingEntityOut,
    summary="Change some fields of an issuing entity",
    tags=["tax"],
)
def issuing_entities_update(request, ref: str, payload: IssuingEntityIn):
    from contracts.services.issuing_entities import issuing_entity_to_wire, issuing_entity_update

    entity = issuing_entity_update(entity=_entity_or_404(ref), data=_dump(request), partial=True)
    return issuing_entity_to_wire(entity)


class TaxRateIn(_Open):
    name: Text_ = Field(None, description="Shown on invoices and exported as the tax type, e.g. UK VAT 20%")
    country: Text_ = Field(None, description="ISO 3166-1 alpha-2, e.g. GB")
    region: Text_ = Field(None, description="State or province (US, CA), e.g. NY; empty for the whole country")
    category: Text_ = Field(None, description="standard (default) | reduced | super_reduced | zero | exempt")
    rate: Decimal_ = Field(None, description='Percent, e.g. "20"')
    valid_from: Date_ = Field(None, description="Applies to invoices issued on or after this date")
    note: Text_ = None


class TaxRateOut(Schema):
    id: str
    name: str
    country: str
    region: str
    category: str
    rate: str
    valid_from: str
    note: str


class TaxRateFilters(PageFilters):
    country: str = Field("", description="Only this country, e.g. GB")


class TaxRatePage(Schema):
    items: list[TaxRateOut]
    count: int


def tax_rate_to_wire(rate) -> dict[str, Any]:
    return {
        "id": str(rate.pk),
        "name": rate.name,
        "country": rate.country,
        "region": rate.region,
        "category": rate.category,
        "rate": format(rate.rate, "f"),
        "valid_from": rate.valid_from.isoformat(),
        "note": rate.note,
    }


@router.get("/tax-rates", response=TaxRatePage, summary="List the tax rates", tags=["tax"])
def tax_rates_list(request, filters: Query[TaxRateFilters]):
    from contracts.models import TaxRate

    rates = TaxRate.objects.order_by("country", "region", "category", "-valid_from", "pk")
    if filters.country:
        rates = rates.filter(country=filters.country.upper())
    return _page(rates, filters, tax_rate_to_wire)


@router.post("/tax-rates", response={201: TaxRateOut}, summary="Add a tax rate (a new rate from a date)", tags=["tax"])
def tax_rates_create(request, payload: TaxRateIn):
    from contracts.services.tax import tax_rate_create

    return Status(201, tax_rate_to_wire(tax_rate_create(data=_dump(request))))
