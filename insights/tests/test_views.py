"""The finance and account-manager homes, the drill-down pages, permissions and a constant query count."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest
import time_machine
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext

from insights.tests.helpers import alert, contract, discount, invoice
from revexos.accounts.models import Role

pytestmark = pytest.mark.django_db
D = Decimal
NOW = "2026-02-10 12:00:00+00:00"


def client_for(tenant, role: str) -> Client:
    from tests.helpers import client_for as signed_in

    return signed_in(tenant, email=tenant.users[role])


@pytest.fixture
def book(in_tenant_a):
    c = contract(
        {"amount": D("3100.00"), "timing": "advance", "line_ref": "RET"},
        start=date(2026, 1, 1),
        end=date(2026, 3, 31),
        auto_renew=False,
    )
    discount(c, value="10", end=date(2026, 3, 31))
    invoice(
        c,
        lines=[("recurring", "RET", date(2026, 1, 1), date(2026, 1, 31), "3100.00")],
        issue_date=date(2026, 1, 1),
        status="sent",
    )
    invoice(
        c, lines=[("recurring", "RET", date(2026, 2, 1), date(2026, 2, 28), "3100.00")], issue_date=date(2026, 2, 1)
    )
    return c


PAGES = [
    "/",
    "/insights/forecast/",
    "/insights/forecast/?group=lines&month=2026-03",
    "/insights/forecast/?group=customer",
    "/insights/forecast/chart/?months=12",
    "/insights/contract-value/",
    "/insights/contract-value/?sort=unbilled",
    "/insights/at-risk/",
    "/insights/at-risk/?group=overdue",
    "/insights/billed/",
    "/insights/definitions/",
]


@time_machine.travel(NOW, tick=False)
@pytest.mark.parametrize("role", [Role.ADMIN, Role.FINANCE, Role.ACCOUNT_MANAGER, Role.VIEWER])
def test_every_role_with_insights_view_reads_every_page(in_tenant_a, book, role):
    client = client_for(in_tenant_a, role)
    for url in PAGES:
        assert client.get(url).status_code == 200, url


def test_insight_pages_need_a_sign_in_and_the_capability(in_tenant_a):
    from insights import views
    from revexos.accounts.roles import CAPABILITIES

    anonymous = Client(HTTP_HOST=in_tenant_a.host)
    for url in PAGES[1:]:
        assert anonymous.get(url).status_code == 302, url
    for view in (
        views.forecast_page,
        views.forecast_chart_partial,
        views.contract_value_page,
        views.at_risk_page,
        views.billed_page,
        views.definitions,
    ):
        assert view.capability == "insights.view"
    assert CAPABILITIES["insights.view"] == {Role.ADMIN, Role.FINANCE, Role.ACCOUNT_MANAGER, Role.VIEWER}


@time_machine.travel(NOW, tick=False)
def test_the_finance_home_shows_every_figure_with_a_drill_down(in_tenant_a, book):
    page = client_for(in_tenant_a, Role.FINANCE).get("/").content.decode()
    for anchor in (
        "kpi-billed",
        "kpi-due",
        "kpi-unearned",
        "kpi-risk",
        "kpi-leakage",
        "kpi-tasks",
        "forecast-chart",
        "leakage-card",
    ):
        assert f'id="{anchor}"' in page, anchor
    # Billed this month: the 1 Feb invoice. Due in March: 3,100 less the 10 % discount still running.
    billed = page[page.index('id="kpi-billed"') : page.index('id="kpi-due"')]
    assert "3,100.00" in billed and 'href="/insights/billed/"' in billed
    due = page[page.index('id="kpi-due"') : page.index('id="kpi-unearned"')]
    assert "To invoice in March" in due and "2,790.00" in due and "3,100.00 gross" in due
    assert 'href="/insights/forecast/?months=6&month=2026-03"' in due
    # At risk: the contract ends on 31 March without auto-renewal (37,200 a year), the January invoice is overdue.
    risk = page[page.index('id="kpi-risk"') : page.index('id="kpi-leakage"')]
    assert "40,300.00" in risk
    assert "<svg" in page and 'href="/insights/definitions/#at-risk"' in page


@time_machine.travel(NOW, tick=False)
def test_drill_downs_list_the_rows_behind_each_figure(in_tenant_a, book):
    client = client_for(in_tenant_a, Role.FINANCE)
    rows = client.get("/insights/forecast/?months=6&month=2026-03&group=lines").content.decode()
    assert book.number in rows and "2,790.00" in rows and "−310.00" in rows
    billed = client.get("/insights/billed/").content.decode()
    assert book.number in billed
    risk = client.get("/insights/at-risk/?group=overdue").content.decode()
    assert "days overdue" in risk and "Open invoice" in risk
    value = client.get("/insights/contract-value/").content.decode()
    assert f'id="value-{book.pk}"' in value
    partial = client.get("/insights/forecast/?month=2026-03", HTTP_HX_REQUEST="true").content.decode()
    assert partial.lstrip().startswith('<div id="forecast-table">')


@time_machine.travel(NOW, tick=False)
def test_the_account_manager_home_shows_their_book(in_tenant_a):
    from revexos.accounts.models import User

    am = User.objects.get(email=in_tenant_a.users[Role.ACCOUNT_MANAGER])
    mine = contract(
        {"amount": D("1000.00"), "timing": "advance"},
        start=date(2026, 1, 1),
        end=date(2026, 3, 31),
        owner=am,
        auto_renew=True,
    )
    alert(mine, status="open", annual="12000.00")
    theirs = contract({"amount": D("5000.00"), "timing": "advance"}, start=date(2026, 1, 1), end=date(2026, 3, 31))
    page = client_for(in_tenant_a, Role.ACCOUNT_MANAGER).get("/").content.decode()
    assert 'id="panel-accounts"' in page and 'id="panel-my-risk"' in page
    assert mine.customer.legal_name in page and theirs.customer.legal_name not in page
    assert "12,000.00" in page and 'id="kpi-billed"' not in page


def _bulk_portfolio(n: int):
    """``n`` active contracts of several kinds, bulk-created (a handful of statements)."""
    from contracts.models import (
        Contract,
        ContractVersion,
        Customer,
        IssuingEntity,
        Milestone,
        PriceLine,
    )
    from insights.tests.helpers import unique

    tag = unique("Q")
    entity = IssuingEntity.objects.create(legal_name=f"{tag} Ltd", invoice_prefix=f"{tag}-")
    customers = Customer.objects.bulk_create(
        [Customer(external_id=f"{tag}-{i}", legal_name=f"{tag} customer {i}") for i in range(max(n // 5, 1))]
    )
    contracts = Contract.objects.bulk_create(
        [
            Contract(
                customer=customers[i % len(customers)],
                issuing_entity=entity,
                number=f"{tag}-{i}",
                title="Bulk",
                start_date=date(2025, 10, 1),
                end_date=date(2026, 3, 31) if i % 4 == 0 else date(2026, 12, 31),
                auto_renew=i % 2 == 0,
                renewal_uplift_pct=D("5"),
            )
            for i in range(n)
        ]
    )
    versions = ContractVersion.objects.bulk_create(
        [ContractVersion(contract=c, version=1, effective_from=c.start_date) for c in contracts]
    )
    lines = []
    for i, v in enumerate(versions):
        lines.append(
            PriceLine(
                version=v,
                line_ref="RET",
                kind="recurring",
                description="Retainer",
                amount=D("1000.00"),
                frequency="monthly",
                timing="advance" if i % 2 else "arrears",
            )
        )
        if i % 3 == 0:
            lines.append(
                PriceLine(
                    version=v,
                    line_ref="MS",
                    kind="milestone",
                    description="Go-live",
                    amount=D("5000.00"),
                    expected_date=date(2026, 4, 15),
                )
            )
        if i % 5 == 0:
            lines.append(
                PriceLine(
                    version=v,
                    line_ref="API",
                    kind="usage",
                    description="API",
                    metric="api",
                    charge_model="per_unit",
                    unit_amount=D("0.01"),
                    frequency="monthly",
                    minimum_commitment=D("100.00"),
                )
            )
    PriceLine.objects.bulk_create(lines)
    Milestone.objects.bulk_create(
        [
            Milestone(contract=c, line_ref="MS", name="Go-live", expected_date=date(2026, 4, 15))
            for i, c in enumerate(contracts)
            if i % 3 == 0
        ]
    )
    return contracts


@time_machine.travel(NOW, tick=False)
def test_the_finance_home_query_count_does_not_grow_with_contracts(in_tenant_a):
    """Caught up first (the new contracts projected) and with nothing to catch up, alike for both sizes."""
    client = client_for(in_tenant_a, Role.FINANCE)
    _bulk_portfolio(10)
    client.get("/")  # warm caches (sessions, content types)
    with CaptureQueriesContext(connection) as small:
        assert client.get("/").status_code == 200
    _bulk_portfolio(5)
    with CaptureQueriesContext(connection) as small_new:
        assert client.get("/").status_code == 200
    _bulk_portfolio(985)
    with CaptureQueriesContext(connection) as large_new:
        assert client.get("/").status_code == 200
    with CaptureQueriesContext(connection) as large:
        response = client.get("/")
    assert response.status_code == 200
    assert len(large_new.captured_queries) == len(small_new.captured_queries), [
        q["sql"][:120] for q in large_new.captured_queries
    ]
    assert len(large.captured_queries) == len(small.captured_queries), [q["sql"][:120] for q in large.captured_queries]


@time_machine.travel(NOW, tick=False)
def test_the_finance_home_shows_a_change_at_once_without_a_cache(in_tenant_a):
    """No figure cache: a change made behind the models' back (a queryset update) shows on the next view."""
    from django.db.models import F

    from contracts.models import PriceLine
    from insights.selectors import portfolio_forecast, portfolio_load, portfolio_valuation, valuation_totals

    client = client_for(in_tenant_a, Role.FINANCE)
    _bulk_portfolio(10)
    before = client.get("/").context["due_next_month"]
    PriceLine.objects.filter(line_ref="RET").update(amount=F("amount") * 2)
    response = client.get("/")
    portfolio = portfolio_load(today=date(2026, 2, 10))
    pure = portfolio_forecast(portfolio, months=6)
    assert response.context["due_next_month"] == pure.month_total(pure.months[0]) != before
    assert response.context["value_totals"] == valuation_totals(portfolio_valuation(portfolio))
