"""Done when (issue #8, leakage): a finance user opens the leakage findings, drills into a finding's
evidence and dismisses one with a reason — in a real browser, on committed data with unique names.

The scan is narrowed to this test's contracts so other tests' committed data stays untouched.
Dates are relative to the real today (the browser's clock must agree with the server's).
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, time, timedelta
from decimal import Decimal

import pytest
from django.db import connection
from django_tenants.utils import schema_context

from conftest import PASSWORD

pytestmark = [pytest.mark.browser, pytest.mark.slow]
D = Decimal


def _plant(tenant, tag: str) -> dict:
    from billing.tests.builders import contract_with, hours
    from contracts.models import Customer
    from insights.services.leakage import leakage_scan
    from revexos.dates import tenant_today

    with schema_context(tenant.schema):
        today = tenant_today()
        # The last month whose billing run had its day of grace (on the 1st, the month before).
        last_month = ((today - timedelta(days=1)).replace(day=1) - timedelta(days=1)).replace(day=1)
        contract = contract_with(
            {
                "kind": "recurring",
                "description": "Advisory retainer",
                "amount": D("2400.00"),
                "frequency": "monthly",
                "timing": "advance",
            },
            {"time_and_materials": True, "description": "Engineering", "rates": [("engineer", "150.00")], "cap": None},
            start=last_month,
            end=last_month.replace(year=last_month.year + 1),
            number=f"LEAK-{tag}",
        )
        Customer.objects.filter(pk=contract.customer_id).update(legal_name=f"Leaky Co {tag}")
        # Signed when it started (last month), not entered today: billing had its runs since.
        type(contract).objects.filter(pk=contract.pk).update(
            created_at=datetime.combine(last_month, time(9), tzinfo=UTC)
        )
        hours(contract, "6", last_month + timedelta(days=4), line_ref="L2")
        hours(contract, "4", last_month + timedelta(days=5), line_ref="L2")
        result = leakage_scan(as_of=today, contract_ids=[contract.pk])
        connection.set_schema_to_public()
    return {"contract": contract, "result": result}


def test_finance_finds_a_leak_drills_into_its_evidence_and_dismisses_one(page, shot, live_server_url, tenant_a):
    tag = uuid.uuid4().hex[:6].upper()
    planted = _plant(tenant_a, tag)
    assert planted["result"].created >= 2

    page.goto(tenant_a.url(live_server_url, "/accounts/login/"))
    page.fill("#id_username", tenant_a.users["finance"])
    page.fill("#id_password", PASSWORD)
    page.click("button[type=submit]")
    page.click("nav >> text=Leakage")
    page.wait_for_selector("h1:has-text('Revenue leakage')")
    assert page.locator("#total-L2").is_visible() and page.locator("#scan-now").is_visible()

    page.fill("input[name=contract]", f"LEAK-{tag}")
    page.press("input[name=contract]", "Enter")
    page.wait_for_selector(f"#leakage-findings >> text=LEAK-{tag}")
    rows = page.locator("#leakage-findings tbody tr")
    assert rows.count() >= 2
    shot("findings")

    page.click("#leakage-findings >> text=not invoiced")  # the L2 finding: 10 h of Engineering
    page.wait_for_selector("h2:has-text('Evidence')")
    assert "1,500.00 USD" in page.inner_text("#finding-amount")
    evidence = page.inner_text("#evidence")
    assert "engineer" in evidence and "150" in evidence
    shot("evidence")

    page.fill("input[name=reason]", f"Hours written off as goodwill ({tag})")
    page.click("button:has-text('Dismiss')")
    page.wait_for_selector("#finding-status >> text=Dismissed")
    assert f"goodwill ({tag})" in page.inner_text("#finding-status")
    shot("dismissed")

    page.click("text=Revenue leakage")
    page.select_option("select[name=status]", "dismissed")
    page.wait_for_selector(f"#leakage-findings >> text=LEAK-{tag}")
    shot("dismissed-list")
