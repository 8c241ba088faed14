"""Finance sorts the invoice list by number, issue date, due date or total (issue #16 item 18)."""

from __future__ import annotations

import re
from datetime import date
from decimal import Decimal

import pytest

from billing.models import Invoice
from billing.tests.builders import contract_with
from revexos.accounts.models import Role
from tests.helpers import client_for

D = Decimal
URL = "/billing/invoices/"


def issued(contract, *, number: str, issue_date: date, terms: int, amount: str) -> Invoice:
    """An issued invoice with the given number and dates (set in the one update that issues it)."""
    from billing.models import InvoiceLine

    version = contract.versions.get()
    invoice = Invoice.objects.create(
        contract=contract,
        customer=contract.customer,
        issuing_entity=contract.issuing_entity,
        version=version,
        currency=version.currency,
        billing_date=issue_date,
        payment_terms_days=terms,
        po_number=version.po_number,
    )
    InvoiceLine.objects.create(
        invoice=invoice,
        contract=contract,
        position=0,
        kind="recurring",
        description="Retainer",
        quantity=D("1"),
        unit_amount=D(amount),
        amount=D(amount),
        billing_key=f"sort:{number}",
    )
    Invoice.objects.filter(pk=invoice.pk).update(
        status="issued",
        number=number,
        issue_date=issue_date,
        due_date=date.fromordinal(issue_date.toordinal() + terms),
        subtotal=D(amount),
        total=D(amount),
        amount_due=D(amount),
    )
    return invoice


@pytest.fixture
def invoices(in_tenant_a):
    contract = contract_with(
        {"kind": "recurring", "amount": D("100.00"), "frequency": "monthly"}, start=date(2026, 1, 1)
    )
    return [
        issued(contract, number=f"SRT-{n + 1:04d}", issue_date=day, terms=terms, amount=amount).pk
        for n, (day, terms, amount) in enumerate(
            [(date(2026, 2, 1), 30, "300.00"), (date(2026, 1, 1), 60, "100.00"), (date(2026, 3, 1), 10, "200.00")]
        )
    ]


def order(client, sort: str) -> list[str]:
    page = client.get(URL, {"contract": "", "sort": sort}).content.decode()
    return re.findall(r">(SRT-\d{4})<", page)


@pytest.mark.parametrize(
    ("sort", "expected"),
    [
        ("number", ["SRT-0001", "SRT-0002", "SRT-0003"]),
        ("-number", ["SRT-0003", "SRT-0002", "SRT-0001"]),
        ("issue_date", ["SRT-0002", "SRT-0001", "SRT-0003"]),
        ("-issue_date", ["SRT-0003", "SRT-0001", "SRT-0002"]),
        ("due_date", ["SRT-0002", "SRT-0001", "SRT-0003"]),  # due 2 Mar, 3 Mar, 11 Mar
        ("total", ["SRT-0002", "SRT-0003", "SRT-0001"]),
        ("-total", ["SRT-0001", "SRT-0003", "SRT-0002"]),
    ],
)
def test_finance_sorts_the_list(in_tenant_a, invoices, sort, expected):
    finance = client_for(in_tenant_a, email=in_tenant_a.users[Role.FINANCE])
    assert order(finance, sort) == expected


def test_the_headers_link_to_each_sort_and_reverse_the_current_one(in_tenant_a, invoices):
    finance = client_for(in_tenant_a, email=in_tenant_a.users[Role.FINANCE])
    page = finance.get(URL, {"sort": "number"}).content.decode()
    assert 'aria-sort="ascending"' in page and "sort=-number" in page and "sort=issue_date" in page
    assert "sort=due_date" in page and "sort=total" in page
