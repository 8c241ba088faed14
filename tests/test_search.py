"""Global search in the shell: invoice number, PO, customer, contract — grouped by kind, in the
tenant's own data only, a fixed number of queries, inputs through the parsing layer (issue #16 item 19)."""

from __future__ import annotations

import re
from datetime import date
from decimal import Decimal

import pytest
from django_tenants.utils import schema_context

from billing.models import Invoice
from billing.tests.builders import contract_with
from contracts.tests.factories import CustomerFactory
from revexos.accounts.models import Role
from tests.helpers import client_for

D = Decimal
RETAINER = {"kind": "recurring", "amount": D("100.00"), "frequency": "monthly"}


@pytest.fixture
def finance(in_tenant_a):
    return client_for(in_tenant_a, email=in_tenant_a.users[Role.FINANCE])


def results(client, q: str) -> dict[str, list[str]]:
    page = client.get("/search/", {"q": q}).content.decode()
    groups = {}
    for kind, body in re.findall(r'<section class="card search-group" id="search-(\w+)">(.*?)</section>', page, re.S):
        groups[kind] = re.findall(r'<li><a href="[^"]+">([^<]+)</a>', body)
    return groups


def test_an_invoice_is_found_by_its_number_and_its_po(finance):
    from billing.tests.test_invoice_sort import issued

    contract = contract_with(RETAINER, start=date(2026, 1, 1), po_number="PO-SRCH-7781")
    invoice = issued(contract, number="SRCH-2026-000042", issue_date=date(2026, 2, 1), terms=30, amount="100.00")
    assert Invoice.objects.get(pk=invoice.pk).po_number == "PO-SRCH-7781"
    assert results(finance, "SRCH-2026-000042")["invoices"] == ["SRCH-2026-000042"]
    found = results(finance, "po-srch-7781")
    assert found["invoices"] == ["SRCH-2026-000042"]
    assert found["contracts"] == [f"{contract.number} · {contract.title}"]  # the PO on its terms
    page = finance.get("/search/", {"q": "PO-SRCH-7781"}).content.decode()
    assert "PO PO-SRCH-7781" in page and f'href="/billing/invoices/{invoice.pk}/"' in page


def test_customers_by_name_or_id_and_contracts_by_number(finance):
    customer = CustomerFactory(legal_name="Zanzibar Shipping Ltd", external_id="zanzibar-shipping")
    contract = contract_with(RETAINER, start=date(2026, 1, 1), customer=customer, number="ZAN-1001")
    assert results(finance, "zanzibar")["customers"] == ["Zanzibar Shipping Ltd"]
    assert results(finance, "zanzibar-shipping")["customers"] == ["Zanzibar Shipping Ltd"]
    found = results(finance, "ZAN-1001")
    assert found["contracts"] == [f"ZAN-1001 · {contract.title}"] and "customers" not in found
    # The customer's name finds its contracts too.
    assert f"ZAN-1001 · {contract.title}" in results(finance, "Zanzibar Ship")["contracts"]


def test_search_never_shows_another_tenants_data(finance, tenant_b):
    with schema_context(tenant_b.schema):
        CustomerFactory(legal_name="Quetzal Other Tenant GmbH", external_id="quetzal-b")
    CustomerFactory(legal_name="Quetzal Own Ltd", external_id="quetzal-a")
    assert results(finance, "quetzal") == {"customers": ["Quetzal Own Ltd"]}


def test_the_query_count_does_not_grow_with_matches(finance, django_assert_max_num_queries):
    for n in range(3):
        CustomerFactory(legal_name=f"Yarrow Foods {n}", external_id=f"yarrow-{n}")
    with django_assert_max_num_queries(15) as few:
        finance.get("/search/", {"q": "yarrow"})
    for n in range(3, 30):
        CustomerFactory(legal_name=f"Yarrow Foods {n}", external_id=f"yarrow-{n}")
    with django_assert_max_num_queries(len(few.captured_queries)):
        page = finance.get("/search/", {"q": "yarrow"}).content.decode()
    assert page.count("<li><a") == 8 and "More customers match" in page


@pytest.mark.parametrize(
    ("q", "status", "says"),
    [
        ("x", 200, "at least 2 characters"),
        ("y" * 101, 200, "at most 100 characters"),
        ("ab\x00cd", 400, ""),
        ("٤٢", 200, "Nothing matches"),
        ("%_%", 200, "Nothing matches"),
    ],
)
def test_odd_queries_get_a_clear_answer_never_an_error(finance, q, status, says):
    response = finance.get("/search/", {"q": q})
    assert response.status_code == status
    assert says in response.content.decode()


def test_every_page_of_the_shell_has_the_search_box(finance):
    for url in ("/", "/billing/invoices/", "/contracts/"):
        assert 'role="search"' in finance.get(url).content.decode()
