"""The Discounts & credits pages per role, the form's errors, and the impact figures."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest
from django.urls import reverse

from billing.selectors_exceptions import customer_impact, override_given_up
from discounts.models import Discount
from discounts.selectors import exception_rows
from discounts.services.exceptions import credit_create, discount_create, price_override_create
from discounts.tests.conftest import travel
from discounts.tests.helpers import retainer_contract, run
from revexos.accounts.models import Role
from tests.helpers import client_for

D = Decimal
pytestmark = pytest.mark.django_db
MANAGERS = {Role.ADMIN, Role.FINANCE}


def url(name, **kwargs):
    return reverse(name, urlconf="revexos.urls", kwargs=kwargs)


@pytest.fixture
def discount(in_tenant_a, finance):
    with travel(2026, 3, 10):
        contract = retainer_contract()
        return discount_create(
            kind="percentage",
            value=D("10"),
            start_date=date(2026, 1, 1),
            end_date=date(2026, 3, 31),
            reason="launch",
            contract=contract,
            created_by=finance,
        )


@pytest.mark.parametrize("role", [r.value for r in Role])
def test_every_role_reads_the_list_and_only_finance_and_admins_change_it(in_tenant_a, discount, role):
    client = client_for(in_tenant_a, email=in_tenant_a.users[role])
    with travel(2026, 3, 10):
        listing = client.get(url("discounts:list"))
        detail = client.get(url("discounts:detail", kind="discount", pk=discount.pk))
        create = client.get(url("discounts:create", kind="discount"))
        revoke = client.post(url("discounts:revoke", kind="discount", pk=discount.pk), {"reason": "test"})
    assert listing.status_code == 200 and detail.status_code == 200
    assert (b"New discount" in listing.content) == (role in MANAGERS)
    assert create.status_code == (200 if role in MANAGERS else 403)
    assert revoke.status_code == (302 if role in MANAGERS else 403)
    assert Discount.objects.get(pk=discount.pk).status == ("revoked" if role in MANAGERS else "active")


def test_the_nav_links_to_the_page(in_tenant_a):
    client = client_for(in_tenant_a, email=in_tenant_a.users["viewer"])
    assert b"Discounts &amp; credits" in client.get(url("home")).content


def test_the_form_rejects_a_discount_with_no_end_and_no_reason_and_records_the_approver(in_tenant_a, finance):
    contract = retainer_contract()
    client = client_for(in_tenant_a, email=in_tenant_a.users["finance"])
    form = {
        "contract": contract.pk,
        "kind": "percentage",
        "value": "10",
        "start_date": "2026-01-01",
        "reason": "launch",
    }
    response = client.post(url("discounts:create", kind="discount"), form)
    assert response.status_code == 422
    assert "Give an end date or a number of billing cycles" in response.content.decode()
    assert not Discount.objects.exists()
    response = client.post(url("discounts:create", kind="discount"), {**form, "end_date": "2026-03-31"})
    assert response.status_code == 302
    assert Discount.objects.get().approved_by == finance


def test_revoke_and_extend_by_htmx_return_the_row(in_tenant_a, discount):
    client = client_for(in_tenant_a, email=in_tenant_a.users["admin"])
    with travel(2026, 3, 10):
        bad = client.post(
            url("discounts:extend", kind="discount", pk=discount.pk),
            {"end_date": "2026-02-01", "reason": "x"},
            HTTP_HX_REQUEST="true",
        )
        good = client.post(
            url("discounts:extend", kind="discount", pk=discount.pk),
            {"end_date": "2026-06-30", "reason": "renewal"},
            HTTP_HX_REQUEST="true",
        )
        gone = client.post(
            url("discounts:revoke", kind="discount", pk=discount.pk), {"reason": "upgraded"}, HTTP_HX_REQUEST="true"
        )
    assert bad.status_code == 200 and "end later than" in bad.content.decode()
    assert good.status_code == 200 and "30 Jun 2026" in good.content.decode()
    assert gone.status_code == 200 and "Revoked" in gone.content.decode() and "<html" not in gone.content.decode()


def test_expiring_filters(in_tenant_a, finance, discount):
    with travel(2026, 3, 10):
        credit_create(
            customer=discount.customer,
            amount=D("100.00"),
            currency="USD",
            expires_on=date(2026, 7, 31),
            reason="x",
            created_by=finance,
        )
        today = date(2026, 3, 10)
        assert [r.reference for r in exception_rows(today=today, expiring_days=30)] == [discount.reference]
        assert len(exception_rows(today=today, expiring_days=90)) == 1
        assert len(exception_rows(today=today, expiring_days=150)) == 2
        client = client_for(in_tenant_a, email=in_tenant_a.users["viewer"])
        page = client.get(url("discounts:list") + "?expiring=quarter", HTTP_HX_REQUEST="true").content.decode()
    assert discount.reference in page and "CR-" not in page


def test_impact_given_up_to_date_and_what_expiry_adds_to_coming_invoices(in_tenant_a, finance, discount):
    with travel(2026, 3, 10):
        run(date(2026, 3, 1))  # January to March billed (caught up), 10 % each
        later = discount_create(
            kind="fixed",
            value=D("200.00"),
            start_date=date(2026, 1, 1),
            end_date=date(2026, 6, 30),
            reason="pilot",
            contract=discount.contract,
            created_by=finance,
        )
        override = price_override_create(
            contract=discount.contract,
            line_ref="L1",
            rate=D("900.00"),
            start_date=date(2026, 4, 1),
            end_date=date(2026, 4, 30),
            reason="promo",
            created_by=finance,
        )
        rows = {r.reference: r for r in exception_rows(today=date(2026, 3, 10), override_given_up=override_given_up)}
    ending = rows[discount.reference]
    assert ending.given_up == D("300.00")
    # April bills the override (900.00): the 10 % it would still have taken is 90.00.
    assert ending.next_month_uplift == D("90.00")
    assert [(p.period_start, p.uplift) for p in ending.ahead] == [
        (date(2026, 4, 1), D("90.00")),
        (date(2026, 5, 1), D("100.00")),
        (date(2026, 6, 1), D("100.00")),
    ]
    running = rows[later.reference]
    assert running.next_month_uplift == D("0") and [p.uplift for p in running.ahead] == [D("0")] * 3
    custom = rows[override.reference]
    assert custom.next_month_uplift == D("0")  # April is inside its window
    assert [(p.period_start, p.uplift) for p in custom.ahead] == [
        (date(2026, 4, 1), D("0")),
        (date(2026, 5, 1), D("100.00")),
        (date(2026, 6, 1), D("100.00")),
    ]


def test_customer_billing_with_and_without_exceptions(in_tenant_a, finance, discount):
    with travel(2026, 3, 10):
        run(date(2026, 3, 1))
        (row,) = customer_impact(today=date(2026, 3, 10), customer_id=discount.customer_id)
    assert (row.without_exceptions, row.discounts, row.with_exceptions) == (D("3000.00"), D("300.00"), D("2700.00"))
    assert (row.forecast_without, row.forecast_with) == (D("3000.00"), D("3000.00"))  # the discount ends in March
    client = client_for(in_tenant_a, email=in_tenant_a.users["finance"])
    with travel(2026, 3, 10):
        assert client.get(url("discounts:customers")).status_code == 200
        page = client.get(url("discounts:customer", pk=discount.customer_id))
    assert page.status_code == 200 and "2,700.00" in page.content.decode()


def test_the_list_query_count_does_not_grow_with_rows(in_tenant_a, finance, django_assert_max_num_queries):
    with travel(2026, 3, 10):
        for _ in range(6):
            contract = retainer_contract()
            discount_create(
                kind="percentage",
                value=D("5"),
                start_date=date(2026, 1, 1),
                end_date=date(2026, 5, 31),
                reason="x",
                contract=contract,
                created_by=finance,
            )
            credit_create(
                customer=contract.customer,
                amount=D("10.00"),
                currency="USD",
                expires_on=date(2026, 5, 31),
                reason="x",
                created_by=finance,
            )
        with django_assert_max_num_queries(20):
            rows = exception_rows(today=date(2026, 3, 10), override_given_up=override_given_up)
    assert len(rows) == 12


def test_the_demo_seed_grants_a_few_exceptions_once(in_tenant_a):
    from contracts.models import Contract
    from contracts.services.demo import contracts_demo_seed
    from discounts.services.demo import discounts_demo_seed

    if Contract.objects.exists():
        pytest.skip("tenant A holds committed contracts of other tests; the demo seed needs an empty tenant")
    with travel(2026, 3, 10):
        contracts_demo_seed(contracts=12)
        first = discounts_demo_seed()
        assert first["discounts"] >= 3 and first["credits"] == 1
        assert discounts_demo_seed() == {"discounts": 0, "credits": 0, "overrides": 0}
        assert exception_rows(today=date(2026, 3, 10), expiring_by=date(2026, 3, 31))
