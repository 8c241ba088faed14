"""Tax on invoices (DESIGN.md §4): determination, per-rate math on discounted lines, rate changes,
credit notes, the pre-send hold, the PDF's legal mention and the invoice JSON."""

from __future__ import annotations

import io
from datetime import UTC, date, datetime
from decimal import Decimal

import pytest
import time_machine
from django.core.exceptions import ValidationError
from django.test import Client
from pypdf import PdfReader

from billing.models import Invoice
from billing.services.invoicing import credit_note_create, invoice_approve, invoice_recheck
from billing.services.pdf import invoice_pdf_render
from billing.services.triggers import contract_bill_due
from billing.tests.builders import contract_with
from contracts.models import TaxRate
from contracts.services.customers import customer_create
from contracts.services.tax import tax_rate_create, tax_rates_seed
from contracts.tests.factories import CustomerFactory, IssuingEntityFactory
from discounts.services.exceptions import discount_create
from revexos.accounts.models import User

D = Decimal
FEE = {"kind": "fixed_fee", "description": "Implementation", "amount": D("1000.00"), "bill_on": date(2026, 3, 2)}
DE_VAT_ID = "DE136695976"


@pytest.fixture(autouse=True)
def now_in_december():
    with time_machine.travel(datetime(2026, 12, 20, 12, tzinfo=UTC), tick=False):
        yield


@pytest.fixture
def gb(in_tenant_a):
    """A UK entity with the seeded UK rates (20 / 5 / 0)."""
    entity = IssuingEntityFactory(currency="GBP", country="GB", tax_id="GB999999973")
    tax_rates_seed(country="GB")
    return entity


def bill(*lines, customer=None, entity, as_of=date(2026, 3, 2), **kwargs) -> Invoice:
    kwargs.setdefault("currency", "GBP")
    contract = contract_with(*lines, issuing_entity=entity, customer=customer, **kwargs)
    (invoice,) = contract_bill_due(contract_id=contract.pk, as_of=as_of).invoices
    invoice.refresh_from_db()
    return invoice


def pdf_text(invoice: Invoice) -> str:
    return "\n".join(page.extract_text() for page in PdfReader(io.BytesIO(invoice_pdf_render(invoice=invoice))).pages)


def test_1000_at_gb_standard_from_a_gb_entity_owes_200_vat(gb):
    invoice = bill(FEE, customer=CustomerFactory(country="GB", currency="GBP"), entity=gb)
    assert (invoice.status, invoice.tax_treatment) == ("issued", "domestic")
    assert (invoice.subtotal, invoice.tax_total, invoice.total) == (D("1000.00"), D("200.00"), D("1200.00"))
    assert invoice.tax_lines == [
        {
            "name": "UK VAT 20%",
            "rate": "20",
            "category": "standard",
            "country": "GB",
            "taxable": "1000.00",
            "amount": "200.00",
            "reverse_charge": False,
            "lines": [invoice.lines.get().position],
        }
    ]
    text = pdf_text(invoice)
    assert "tax summary" in text.lower() and "UK VAT 20%" in text and "200.00" in text


def test_a_german_business_with_a_valid_vat_id_is_reverse_charged_and_the_pdf_says_so(gb):
    customer = CustomerFactory(country="DE", currency="GBP", tax_id=DE_VAT_ID)
    invoice = bill(FEE, customer=customer, entity=gb)
    assert (invoice.tax_treatment, invoice.tax_total, invoice.total) == ("reverse_charge", D("0.00"), D("1000.00"))
    assert invoice.tax_lines[0]["reverse_charge"] is True
    text = " ".join(pdf_text(invoice).split())
    assert "Reverse charge: the customer accounts for the VAT in Germany" in text
    assert f"Customer VAT id {DE_VAT_ID}" in text


def test_a_vat_id_whose_check_digits_fail_does_not_earn_reverse_charge(gb):
    customer = CustomerFactory(country="DE", currency="GBP", tax_id="DE123456789")
    invoice = bill(FEE, customer=customer, entity=gb)
    assert (invoice.tax_treatment, invoice.tax_total) == ("outside_scope", D("0.00"))


def test_a_german_customer_without_a_vat_id_is_outside_the_scope_of_uk_vat(gb):
    invoice = bill(FEE, customer=CustomerFactory(country="DE", currency="GBP"), entity=gb)
    assert (invoice.tax_treatment, invoice.tax_total) == ("outside_scope", D("0.00"))
    assert "Outside the scope of UK VAT" in " ".join(pdf_text(invoice).split())


def test_an_exempt_customer_pays_no_tax_and_its_certificate_is_printed(gb):
    customer = CustomerFactory(
        country="GB",
        currency="GBP",
        tax_exempt=True,
        tax_exempt_reason="Registered charity",
        tax_exempt_certificate="CH-4471",
    )
    invoice = bill(FEE, customer=customer, entity=gb)
    assert (invoice.tax_treatment, invoice.tax_total) == ("exempt", D("0.00"))
    assert "Exempt from tax: Registered charity; certificate CH-4471." in " ".join(pdf_text(invoice).split())


@pytest.mark.parametrize(
    ("tax_id", "message"),
    [("DE12345678", "not a valid tax id for Germany"), ("GB12345", "United Kingdom"), ("FR1", "France")],
)
def test_an_invalid_vat_id_is_refused_at_the_customer_with_the_reason(in_tenant_a, tax_id, message):
    with pytest.raises(ValidationError) as caught:
        customer_create(
            data={
                "external_id": f"bad-{tax_id}",
                "legal_name": "Bad Id GmbH",
                "tax_id": tax_id,
                "address": {"country": "DE"},
            }
        )
    assert message in caught.value.message_dict["tax_id"][0]


def test_an_exempt_customer_needs_a_reason_or_a_certificate(in_tenant_a):
    with pytest.raises(ValidationError) as caught:
        customer_create(data={"external_id": "exempt-1", "legal_name": "Exempt Ltd", "tax_exempt": True})
    assert "tax_exempt_reason" in caught.value.message_dict


def test_two_rates_with_a_10_percent_invoice_discount_are_taxed_per_rate_on_the_discounted_subtotals(gb, tenant_a):
    """Hand calculation.
    Lines 1,234.56 (standard, 20 %) and 789.01 (reduced, 5 %): subtotal 2,023.57.
    10 % discount = 202.357 → 202.36, spread by amount: 202.36 × 1,234.56 / 2,023.57 = 123.4558 → 123.46,
    the rest 78.90 on the second line. Net 1,111.10 and 710.11.
    Tax: 1,111.10 × 20 % = 222.22; 710.11 × 5 % = 35.5055 → 35.51 (rounded once per rate). Tax 257.73.
    Total 2,023.57 − 202.36 + 257.73 = 2,078.94.
    """
    customer = CustomerFactory(country="GB", currency="GBP")
    contract = contract_with(
        {"kind": "fixed_fee", "description": "Build", "amount": D("1234.56"), "bill_on": date(2026, 3, 2)},
        {"kind": "fixed_fee", "description": "Print", "amount": D("789.01"), "bill_on": date(2026, 3, 2),
         "tax_category": "reduced"},
        issuing_entity=gb, customer=customer, currency="GBP",
    )  # fmt: skip
    discount_create(
        kind="percentage", value=D("10"), start_date=date(2026, 1, 1), end_date=date(2026, 12, 31), reason="launch",
        contract=contract, created_by=User.objects.get(email=tenant_a.users["finance"]),
    )  # fmt: skip
    (invoice,) = contract_bill_due(contract_id=contract.pk, as_of=date(2026, 3, 2)).invoices
    invoice.refresh_from_db()
    assert (invoice.subtotal, invoice.discount_total) == (D("2023.57"), D("202.36"))
    assert [(t["name"], t["taxable"], t["amount"]) for t in invoice.tax_lines] == [
        ("UK VAT 20%", "1111.10", "222.22"),
        ("UK VAT 5%", "710.11", "35.51"),
    ]
    assert (invoice.tax_total, invoice.total) == (D("257.73"), D("2078.94"))


def test_a_rate_changing_on_1_april_applies_to_invoices_issued_from_1_april(gb):
    tax_rate_create(data={"name": "UK VAT 22%", "country": "GB", "rate": "22", "valid_from": "2026-04-01"})
    customer = CustomerFactory(country="GB", currency="GBP")
    march = bill({**FEE, "bill_on": date(2026, 3, 31)}, customer=customer, entity=gb, as_of=date(2026, 3, 31))
    assert march.tax_total == D("200.00")
    # A draft billed on 31 March and approved on 1 April is taxed at the rate of its issue date.
    draft = bill({**FEE, "bill_on": date(2026, 3, 31)}, customer=customer, entity=gb, as_of=date(2026, 3, 31),
                 auto_issue=False)  # fmt: skip
    assert (draft.status, draft.tax_total) == ("draft", D("200.00"))
    invoice_approve(invoice_id=draft.pk, issue_date=date(2026, 4, 1))
    draft.refresh_from_db()
    assert (draft.status, draft.issue_date, draft.tax_total) == ("issued", date(2026, 4, 1), D("220.00"))
    assert draft.tax_lines[0]["name"] == "UK VAT 22%"
    april = bill({**FEE, "bill_on": date(2026, 4, 2)}, customer=customer, entity=gb, as_of=date(2026, 4, 2))
    assert april.tax_total == D("220.00")


def test_a_credit_note_for_half_an_invoice_reverses_half_its_tax(gb):
    invoice = bill(FEE, customer=CustomerFactory(country="GB", currency="GBP"), entity=gb)
    note = credit_note_create(invoice_id=invoice.pk, amount="600.00", reason="Half the work was not done")
    assert note.tax_amount == D("100.00")
    assert [(t["name"], t["taxable"], t["amount"]) for t in note.tax_lines] == [("UK VAT 20%", "500.00", "100.00")]
    rest = credit_note_create(invoice_id=invoice.pk, amount="600.00", reason="The rest")
    assert rest.tax_amount == D("100.00")
    assert note.tax_amount + rest.tax_amount == invoice.tax_total


def test_no_matching_rate_holds_the_draft_naming_country_and_category(gb):
    TaxRate.objects.filter(country="GB", category="reduced").delete()
    customer = CustomerFactory(country="GB", currency="GBP")
    invoice = bill({**FEE, "tax_category": "reduced"}, customer=customer, entity=gb)
    assert (invoice.status, invoice.tax_treatment) == ("draft", "missing_rate")
    (reason,) = [r for r in invoice.hold_reasons if "tax rate" in r]
    assert "reduced" in reason and "GB" in reason and "2026-03-02" in reason
    assert invoice.review_tasks.get().status == "open"
    # Adding the rate and checking again releases it.
    tax_rate_create(
        data={"name": "UK VAT 5%", "country": "GB", "category": "reduced", "rate": "5", "valid_from": "2020-01-01"}
    )
    assert invoice_recheck(invoice_id=invoice.pk) == []
    invoice.refresh_from_db()
    assert (invoice.tax_total, invoice.hold_reasons) == (D("50.00"), [])


def test_a_country_without_rates_collects_no_tax_and_says_so(in_tenant_a):
    entity = IssuingEntityFactory(currency="USD", country="US", tax_id="", region="NY")
    tax_rates_seed(country="US")  # the US seeds nothing: no sales tax until a state rate is added
    invoice = bill(
        FEE, customer=CustomerFactory(country="US", region="TX", currency="USD"), entity=entity, currency="USD"
    )
    assert (invoice.status, invoice.tax_treatment, invoice.tax_total) == ("issued", "not_collected", D("0.00"))
    assert "US-TX" in invoice.tax_note


def test_a_us_state_rate_taxes_customers_in_that_state(in_tenant_a):
    entity = IssuingEntityFactory(currency="USD", country="US", tax_id="", region="NY")
    tax_rate_create(
        data={
            "name": "NY sales tax 8.875%",
            "country": "US",
            "region": "NY",
            "rate": "8.875",
            "valid_from": "2020-01-01",
        }
    )
    invoice = bill(
        FEE, customer=CustomerFactory(country="US", region="NY", currency="USD"), entity=entity, currency="USD"
    )
    assert (invoice.tax_treatment, invoice.tax_total) == ("domestic", D("88.75"))


def test_the_invoice_json_carries_tax_lines_with_the_reverse_charge_flag(gb, tenant_a):
    invoice = bill(FEE, customer=CustomerFactory(country="DE", currency="GBP", tax_id=DE_VAT_ID), entity=gb)
    api = Client(HTTP_HOST=tenant_a.host, HTTP_AUTHORIZATION=f"Bearer {tenant_a.api_key}")
    body = api.get(f"/api/v1/invoices/{invoice.pk}").json()
    assert body["tax_treatment"] == "reverse_charge"
    assert body["tax_lines"] == [
        {
            "name": "Reverse charge",
            "rate": "0",
            "category": "",
            "taxable": "1000.00",
            "amount": "0.00",
            "reverse_charge": True,
        }
    ]
    assert "Reverse charge" in body["tax_note"]


def test_shadow_billing_prices_tax_as_the_run_does(gb):
    from billing.services.shadow import billing_shadow

    customer = CustomerFactory(country="GB", currency="GBP")
    contract = contract_with(FEE, issuing_entity=gb, customer=customer, currency="GBP")
    shadow = billing_shadow(contract_ids=[contract.pk], as_of=date(2026, 3, 2))
    (planned,) = shadow.contracts[contract.pk].invoices
    invoice = bill(FEE, customer=customer, entity=gb)
    assert (planned.tax_total, planned.total, planned.tax_treatment) == (invoice.tax_total, invoice.total, "domestic")


def test_the_chunked_run_taxes_exactly_as_the_single_path(gb):
    """Both ways of making invoices go through the one totals function: same tax, same lines."""
    from billing.services.bulk import contracts_bill_chunk

    customer = CustomerFactory(country="GB", currency="GBP")
    de = CustomerFactory(country="DE", currency="GBP", tax_id=DE_VAT_ID)
    lines = (
        {"kind": "fixed_fee", "description": "Build", "amount": D("1234.56"), "bill_on": date(2026, 3, 2)},
        {"kind": "fixed_fee", "description": "Print", "amount": D("789.01"), "bill_on": date(2026, 3, 2),
         "tax_category": "reduced"},
    )  # fmt: skip
    single = bill(*lines, customer=customer, entity=gb)
    chunked = [contract_with(*lines, issuing_entity=gb, customer=c, currency="GBP") for c in (customer, de)]
    contracts_bill_chunk(contract_ids=[c.pk for c in chunked], as_of=date(2026, 3, 2))
    uk_bulk, de_bulk = (Invoice.objects.get(contract=c) for c in chunked)
    assert (uk_bulk.tax_total, uk_bulk.total, uk_bulk.tax_treatment) == (single.tax_total, single.total, "domestic")
    assert [(t["name"], t["taxable"], t["amount"]) for t in uk_bulk.tax_lines] == [
        (t["name"], t["taxable"], t["amount"]) for t in single.tax_lines
    ]
    assert (de_bulk.tax_treatment, de_bulk.tax_total) == ("reverse_charge", D("0.00"))
    assert uk_bulk.tax_lines[0]["lines"] == [uk_bulk.lines.get(description="Build").position]
