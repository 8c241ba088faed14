"""Done when (issue #6): a finance user sees which exceptions expire this quarter and what each adds to
next month's billing, revokes one, and the next invoice reflects it — in a real browser.

Dates are relative to the real today (no time travel: the browser's own clock must agree with the
server's for the session cookie). Contracts bill monthly in arrears, so the invoice made on the 1st
of next month is for this month's period, which the discount window still covers.
"""

from __future__ import annotations

import uuid
from datetime import date, timedelta
from decimal import Decimal

import pytest
from django.db import connection
from django_tenants.utils import schema_context

from conftest import PASSWORD

pytestmark = [pytest.mark.browser, pytest.mark.slow]
D = Decimal


def _month_start(day: date, months: int = 0) -> date:
    index = day.year * 12 + day.month - 1 + months
    return date(index // 12, index % 12 + 1, 1)


def _book(tenant, tag: str) -> dict:
    from billing.services.triggers import contract_bill_due
    from billing.tests.builders import contract_with
    from contracts.models import Customer
    from discounts.services._common import tenant_today
    from discounts.services.exceptions import credit_create, discount_create
    from revexos.accounts.models import User

    arrears = {"kind": "recurring", "frequency": "monthly", "timing": "arrears", "description": "Platform retainer"}
    with schema_context(tenant.schema):
        finance = User.objects.get(email=tenant.users["finance"])
        today = tenant_today()
        this_month, next_month = _month_start(today), _month_start(today, 1)
        month_end = next_month - timedelta(days=1)
        start = _month_start(today, -2)
        globex = contract_with(
            dict(arrears, amount=D("2000.00")), start=start, end=start.replace(year=start.year + 1), number=f"GLX-{tag}"
        )
        initech = contract_with(
            dict(arrears, amount=D("1500.00")), start=start, end=start.replace(year=start.year + 1), number=f"INI-{tag}"
        )
        Customer.objects.filter(pk=globex.customer_id).update(legal_name=f"Globex {tag}")
        Customer.objects.filter(pk=initech.customer_id).update(legal_name=f"Initech {tag}")
        ending = discount_create(
            kind="percentage",
            value=D("10"),
            start_date=start,
            end_date=month_end,
            contract=globex,
            reason=f"Launch offer {tag}",
            created_by=finance,
        )
        fixed = discount_create(
            kind="fixed",
            value=D("150.00"),
            start_date=start,
            end_date=month_end,
            contract=initech,
            reason=f"Migration help {tag}",
            created_by=finance,
        )
        later = discount_create(
            kind="percentage",
            value=D("5"),
            start_date=start,
            end_date=_month_start(today, 6) - timedelta(days=1),
            contract=initech,
            reason=f"Pilot {tag}",
            created_by=finance,
        )
        for contract in (globex, initech):
            for day in (_month_start(today, -1), this_month):  # the two past months, each on its own invoice
                contract_bill_due(contract_id=contract.pk, as_of=day)
        credit = credit_create(
            customer=globex.customer,
            amount=D("500.00"),
            currency="USD",
            expires_on=month_end,
            reason=f"SLA credit {tag}",
            created_by=finance,
        )
        connection.set_schema_to_public()
    return {
        "globex": globex,
        "initech": initech,
        "ending": ending,
        "fixed": fixed,
        "later": later,
        "credit": credit,
        "next_month": next_month,
    }


def _sign_in(page, url, email):
    page.goto(url)
    page.fill("#id_username", email)
    page.fill("#id_password", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_selector("text=Good to see you")


def test_finance_sees_what_expires_this_quarter_revokes_one_and_the_next_invoice_reflects_it(
    page, shot, live_server_url, tenant_a
):
    tag = uuid.uuid4().hex[:6].upper()
    book = _book(tenant_a, tag)
    ending, fixed, later, credit = book["ending"], book["fixed"], book["later"], book["credit"]

    _sign_in(page, tenant_a.url(live_server_url, "/accounts/login/"), tenant_a.users["finance"])
    page.click("nav >> text=Discounts & credits")
    page.wait_for_selector("h1:has-text('Discounts & credits')")
    page.click(".quick >> text=this quarter")
    page.wait_for_url("**expiring=quarter**")
    page.wait_for_selector(f"#discount-{ending.pk}")
    shot("expiring-this-quarter")

    # What each exception expiring this quarter adds to next month's billing.
    ending_row = page.locator(f"#discount-{ending.pk} .exception-row")
    assert "Launch offer" in ending_row.inner_text() and "+200.00" in ending_row.inner_text()
    assert "+150.00" in page.locator(f"#discount-{fixed.pk} .exception-row").inner_text()
    assert "400.00" in ending_row.inner_text()  # given up to date: two months at 10 % of 2,000.00
    assert "500.00 USD lapses" in page.locator(f"#credit-{credit.pk}").inner_text()
    assert page.locator(f"#discount-{later.pk}").count() == 0  # ends next quarter

    # A discount with no end date and no reason for it is refused, with the error next to the field.
    page.click("text=New discount")
    page.select_option("#id_contract", str(book["globex"].pk))
    page.fill("#id_value", "15")
    page.fill("#id_reason", f"Open-ended {tag}")
    page.click("button:has-text('Grant discount')")
    page.wait_for_selector(".field.has-error >> text=Give an end date or a number of billing cycles")
    shot("no-end-date-refused")
    page.goto(tenant_a.url(live_server_url, "/discounts/?expiring=quarter"))
    page.wait_for_selector(f"#discount-{ending.pk}")

    # Revoke the launch offer inline (htmx), with a reason.
    ending_row.get_by_role("button", name="Change").click()
    page.fill(f"#revoke-reason-discount-{ending.pk}", "Customer moved to the annual plan")
    shot("revoke-form")
    page.get_by_role("button", name=f"Revoke {ending.reference}").click()
    page.wait_for_selector(f"#discount-{ending.pk} .recorded")
    assert "Revoked" in page.locator(f"#discount-{ending.pk}").inner_text()
    shot("revoked")

    # The next billing cycle (the 1st of next month) bills this month's period without the discount.
    with schema_context(tenant_a.schema):
        from billing.services.triggers import contract_bill_due
        from discounts.services.lifecycle import exceptions_lifecycle_run

        exceptions_lifecycle_run(as_of=book["next_month"])
        (invoice,) = contract_bill_due(contract_id=book["globex"].pk, as_of=book["next_month"]).invoices
        assert (invoice.subtotal, invoice.discount_total, invoice.credit_applied, invoice.amount_due) == (
            D("2000.00"),
            D("0"),
            D("0"),
            D("2000.00"),
        )  # no discount, and the credit expired unused
        connection.set_schema_to_public()

    page.goto(tenant_a.url(live_server_url, f"/discounts/customers/{book['globex'].customer_id}/"))
    latest = page.locator(f"#invoice-{invoice.pk}")
    assert "2,000.00" in latest.inner_text() and "−200.00" not in latest.inner_text()
    assert page.locator(".invoice-table tbody tr").count() == 3
    assert "−200.00" in page.locator(".invoice-table tbody tr").nth(1).inner_text()
    shot("next-invoice")

    page.goto(tenant_a.url(live_server_url, f"/discounts/discount/{ending.pk}/"))
    page.wait_for_selector("text=Customer moved to the annual plan")
    shot("revoked-detail")
