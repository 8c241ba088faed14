"""A finance user opens the home dashboard in a real browser, reads a figure's definition, and
drills down from "at risk" and from a forecast bar to the rows behind them."""

from __future__ import annotations

import uuid
from datetime import timedelta
from decimal import Decimal

import pytest
from django.db import connection
from django_tenants.utils import schema_context

from conftest import PASSWORD

pytestmark = [pytest.mark.browser, pytest.mark.slow]


def _book(tenant, tag: str):
    """A contract ending this quarter that does not auto-renew, with an overdue invoice."""
    from insights.selectors import quarter_end
    from insights.tests.helpers import contract, customer, invoice
    from revexos.dates import tenant_today

    with schema_context(tenant.schema):
        today = tenant_today()
        c = contract(
            {"amount": Decimal("4321.00"), "timing": "advance", "line_ref": "RET", "description": "Managed service"},
            start=today - timedelta(days=90),
            end=quarter_end(today),
            number=f"INS-{tag}",
            auto_renew=False,
            customer_obj=customer(legal_name=f"Wayne {tag} Ltd"),
            title="Managed service",
        )
        overdue = invoice(
            c,
            lines=[("recurring", "RET", today - timedelta(days=90), today - timedelta(days=61), "4321.00")],
            issue_date=today - timedelta(days=60),
            due_days=30,
            status="sent",
        )
        # An open-ended retainer, so the forecast has months to show whatever the date (the contract
        # above may end before next month begins).
        contract(
            {"amount": Decimal("1500.00"), "timing": "advance", "line_ref": "RET", "description": "Support"},
            start=today - timedelta(days=30),
            end=None,
            number=f"INS-{tag}-OPEN",
            customer_obj=customer(legal_name=f"Wayne {tag} Support Ltd"),
            title="Support",
        )
        connection.set_schema_to_public()
        return c, overdue


def test_finance_drills_down_from_the_home_figures(page, shot, tenant_a, live_server_url):
    tag = uuid.uuid4().hex[:6].upper()
    _contract, overdue = _book(tenant_a, tag)

    page.goto(tenant_a.url(live_server_url, "/accounts/login/"))
    page.fill("#id_username", tenant_a.users["finance"])
    page.fill("#id_password", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_selector("#finance-figures")
    for kpi in ("#kpi-billed", "#kpi-due", "#kpi-unearned", "#kpi-risk", "#kpi-leakage", "#kpi-tasks"):
        assert page.locator(kpi).is_visible(), kpi
    assert page.locator("#forecast-chart svg").first.is_visible()
    shot("home")

    # Every figure's definition is one click away.
    page.click("#kpi-risk details.def summary")
    assert page.locator("#kpi-risk .def-pop").is_visible()
    assert "Undecided renewals" in page.locator("#kpi-risk .def-pop").inner_text()
    shot("definition-popover", full_page=False)
    page.click("#kpi-risk details.def summary")

    # At risk → the rows: our ending contract and its overdue invoice, each with a link to act.
    page.click("#kpi-risk a.kpi-value")
    page.wait_for_selector("#risk-rows")
    rows = page.locator("#risk-rows tbody tr", has=page.locator(f"text=INS-{tag}"))
    assert rows.count() == 1
    row = page.locator("#risk-rows tbody tr", has=page.locator(f"text={overdue.number}"))
    assert "days overdue" in row.inner_text()
    shot("at-risk")
    page.click(f"#risk-rows tbody tr:has-text('{overdue.number}') >> text=Open invoice")
    page.wait_for_url(f"**/billing/invoices/{overdue.pk}/")

    # The forecast chart's bar → that month's rows (htmx filters swap the table in place).
    page.goto(tenant_a.url(live_server_url, "/"))
    page.locator("#forecast-chart a.bar-link").first.click()
    page.wait_for_selector("#forecast-rows")
    page.select_option("select[name=group]", "lines")
    page.wait_for_selector("#forecast-rows th:has-text('Billing date')")
    shot("forecast-rows")
    # The unearned value figure → its contracts.
    page.goto(tenant_a.url(live_server_url, "/"))
    page.click("#kpi-unearned a.kpi-value >> nth=0")
    page.wait_for_selector("#value-rows")
    shot("contract-value")
