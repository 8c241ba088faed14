"""An admin, as a new user would in a real browser: creates a customer and a contract with every
kind of price line, amends it after reviewing the diff, and sees the history. Screenshots go to
test-artifacts/ for people to look at."""

from __future__ import annotations

import os
import re
import uuid
from datetime import date, timedelta

import pytest

pytestmark = pytest.mark.browser


@pytest.fixture
def page(page):
    """The shared browser page (root conftest), a little wider for the contract editor."""
    page.set_viewport_size({"width": 1360, "height": 900})
    return page


def test_admin_creates_customer_and_contract_amends_it_and_sees_history(page, tenant_a, live_server_url, artifacts_dir):
    from playwright.sync_api import expect

    from conftest import PASSWORD

    def shot(name: str) -> None:
        page.screenshot(path=os.path.join(artifacts_dir, f"contracts-{name}.png"), full_page=True)

    suffix = uuid.uuid4().hex[:6]
    customer_name, external_id, number = f"Bluepeak Analytics {suffix}", f"bluepeak-{suffix}", f"E2E-{suffix}"
    start = date.today().replace(day=1) - timedelta(days=31)
    start = start.replace(day=1)
    end = start.replace(year=start.year + 1) - timedelta(days=1)
    base = tenant_a.url(live_server_url)
    from django_tenants.utils import schema_context

    from contracts.models import IssuingEntity

    with schema_context(tenant_a.schema):
        entity_pk = IssuingEntity.objects.create(
            legal_name=f"Bluepeak Billing UK {suffix}", currency="GBP", invoice_prefix=f"UK{suffix}-"
        ).pk

    page.goto(base + "accounts/login/")
    page.fill("input[name=username]", tenant_a.users["admin"])
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(re.compile(r"/$"))

    # A customer.
    page.click("nav >> text=Customers")
    page.click("text=New customer")
    page.fill("input[name=legal_name]", customer_name)
    page.fill("input[name=external_id]", external_id)
    page.select_option("select[name=currency]", "GBP")
    page.fill("textarea[name=billing_emails]", f"ap@{external_id}.example")
    page.fill("input[name=tax_id]", "GB999999973")
    page.fill("input[name=address_line1]", "14 Clerkenwell Road")
    page.fill("input[name=city]", "London")
    page.fill("input[name=postal_code]", "EC1M 5PQ")
    page.fill("input[name=country]", "GB")
    shot("01-customer-form")
    page.click("button:has-text('Create customer')")
    expect(page.locator("h1")).to_contain_text(customer_name)
    shot("02-customer")

    # A contract with every kind of line, built row by row without a reload.
    page.click("text=New contract")
    page.fill("input[name=number]", number)
    page.fill("input[name=title]", "Analytics platform")
    page.fill("input[name=start_date]", start.isoformat())
    page.fill("input[name=end_date]", end.isoformat())
    page.select_option("select[name=currency]", "GBP")
    # Other tests add issuing entities to tenant A, so name this contract's entity explicitly.
    page.select_option("select[name=issuing_entity]", str(entity_pk))
    page.fill("input[name=po_number]", "PO-7781")
    rows = page.locator("#price-lines .pl-row")
    expect(rows).to_have_count(1)
    retainer = rows.nth(0)
    retainer.locator("[name$='-description']").fill("Retainer")
    retainer.locator("[name$='-amount']").fill("3100.00")
    retainer.locator("[name$='-included_hours']").fill("20")
    retainer.locator("[name$='-overage_rate']").fill("150.00")

    page.click("[data-add-kind=fixed_fee]")
    expect(rows).to_have_count(2)
    fee = rows.nth(1)
    fee.locator("[name$='-description']").fill("Onboarding")
    fee.locator("[name$='-amount']").fill("5000.00")
    fee.locator("[name$='-bill_on']").fill(start.isoformat())

    page.click("[data-add-kind=milestone]")
    expect(rows).to_have_count(3)
    milestone = rows.nth(2)
    milestone.locator("[name$='-description']").fill("Phase 1 go-live")
    milestone.locator("[name$='-amount']").fill("12000.00")
    milestone.locator("[name$='-reference']").fill("PROJ-12")
    milestone.locator("[name$='-expected_date']").fill((start + timedelta(days=75)).isoformat())

    page.click("[data-add-kind=time_and_materials]")
    expect(rows).to_have_count(4)
    tm = rows.nth(3)
    tm.locator("[name$='-description']").fill("Extra engineering")
    tm.locator("[name$='-role']").fill("engineer")
    tm.locator("[name$='-hourly_rate']").fill("150.00")
    tm.locator("button:has-text('+ Role')").click()
    expect(tm.locator(".rate-row")).to_have_count(2)
    tm.locator("[name$='-role']").nth(1).fill("designer")
    tm.locator("[name$='-hourly_rate']").nth(1).fill("120.00")
    tm.locator("[name$='-cap']").fill("20000.00")

    page.click("[data-add-kind=usage]")
    expect(rows).to_have_count(5)
    rows.nth(4).locator("[name$='-description']").fill("API calls")
    rows.nth(4).locator("[name$='-metric']").fill("api_calls")
    rows.nth(4).locator("[name$='-charge_model']").select_option("graduated")  # htmx swaps in the tier editor
    usage = rows.nth(4)
    expect(usage.locator(".tier-row")).to_have_count(2)
    expect(usage.locator("[name$='-description']")).to_have_value("API calls")
    usage.locator("[name$='-up_to']").nth(0).fill("100")
    usage.locator("[name$='-price']").nth(0).fill("1.00")
    usage.locator("[name$='-price']").nth(1).fill("0.50")

    # A sixth row added and removed again: nothing of it is saved.
    page.click("[data-add-kind=recurring]")
    expect(rows).to_have_count(6)
    rows.nth(5).locator("button:has-text('Remove')").click()
    expect(rows).to_have_count(5)
    shot("03-contract-editor")

    # A mistake first: an overlapping tier is reported on its line and nothing is saved.
    usage.locator("[name$='-up_to']").nth(1).fill("50")
    page.click("button:has-text('Create contract')")
    expect(page.locator(".alert-card")).to_contain_text("Nothing was saved")
    expect(page.locator("#price-lines .pl-row").nth(4)).to_contain_text("must be greater than the previous tier")
    shot("04-contract-errors")
    page.locator("#price-lines .pl-row").nth(4).locator("[name$='-up_to']").nth(1).fill("")
    page.click("button:has-text('Create contract')")
    page.wait_for_url(re.compile(r"/contracts/\d+/$"))
    expect(page.locator("h1")).to_contain_text(number)
    expect(page.locator("#version-terms tbody tr")).to_have_count(5)
    shot("05-contract-detail")

    # Amend: the retainer goes up from next month; the diff is reviewed before saving.
    page.click("a:has-text('Amend terms')")
    effective = page.locator("input[name=effective_from]").input_value()
    page.fill("input[name=reason]", "Scope extended to a second team")
    page.locator("#price-lines .pl-row").nth(0).locator("[name$='-amount']").fill("3500.00")
    page.click("button:has-text('Review changes')")
    expect(page.locator("#amend-preview")).to_contain_text("Review: version 2")
    expect(page.locator("#amend-preview")).to_contain_text("3500.00")
    shot("06-amendment-review")
    page.locator("#amend-preview button:has-text('Save amendment')").click()
    page.wait_for_url(re.compile(r"/contracts/\d+/$"))
    expect(page.locator(".messages")).to_contain_text("version 2")
    expect(page.locator(".timeline")).to_contain_text("Version 2")
    expect(page.locator("#history")).to_contain_text(f"Amendment v2 from {date.fromisoformat(effective):%-d %b %Y}")
    expect(page.locator("#history")).to_contain_text("3500.00")
    shot("07-contract-amended-history")

    # The same contract as the API reads it: the terms of DESIGN.md §5, nothing lost.
    from django.test import Client

    api = Client(HTTP_HOST=tenant_a.host, HTTP_AUTHORIZATION=f"Bearer {tenant_a.api_key}")
    read = api.get(f"/api/v1/contracts/{number}?as_of={start.isoformat()}").json()
    assert [line["kind"] for line in read["price_lines"]] == [
        "recurring",
        "fixed_fee",
        "milestone",
        "time_and_materials",
        "usage",
    ]
    assert read["price_lines"][4]["tiers"] == [
        {"up_to": "100", "unit_amount": "1.00", "flat_amount": "0"},
        {"up_to": None, "unit_amount": "0.50", "flat_amount": "0"},
    ]
    assert api.get(f"/api/v1/contracts/{number}?as_of={effective}").json()["price_lines"][0]["amount"] == "3500.00"

    page.click("nav >> text=Contracts")
    page.fill("main input[name=q]", number)
    expect(page.locator("#contract-table tbody tr")).to_have_count(1)
    shot("08-contract-list")
    page.set_viewport_size({"width": 420, "height": 900})
    page.goto(page.url)
    shot("09-contract-list-mobile")


def test_admin_imports_customers_sees_the_bad_row_then_imports_the_fixed_file(
    page, tenant_a, live_server_url, artifacts_dir, tmp_path
):
    from playwright.sync_api import expect

    from conftest import PASSWORD

    suffix = uuid.uuid4().hex[:6]
    header = "external_id,legal_name,currency,billing_emails,country\n"
    rows = [f"imp-{suffix}-{i},Imported {suffix} {i} Ltd,GBP,ap@imp{i}.example,GB\n" for i in range(12)]
    bad = list(rows)
    bad[7] = f"imp-{suffix}-7,Imported {suffix} 7 Ltd,GBP,not-an-email,England\n"
    bad_file, good_file = tmp_path / "customers-bad.csv", tmp_path / "customers.csv"
    bad_file.write_text(header + "".join(bad))
    good_file.write_text(header + "".join(rows))

    page.goto(tenant_a.url(live_server_url, "/accounts/login/"))
    page.fill("input[name=username]", tenant_a.users["admin"])
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(re.compile(r"/$"))
    page.click("nav >> text=Customers")
    page.click("text=Import CSV")
    page.set_input_files("input[type=file]", str(bad_file))
    page.click("button:has-text('Check file')")
    expect(page.locator("#bad-rows tbody tr")).to_have_count(1)
    expect(page.locator("#bad-rows")).to_contain_text("billing_emails")
    expect(page.locator("#bad-rows")).to_contain_text("country")
    expect(page.locator("#bad-rows td.num")).to_have_text("9")
    page.screenshot(path=os.path.join(artifacts_dir, "contracts-10-import-bad-row.png"), full_page=True)

    page.set_input_files("input[type=file]", str(good_file))
    page.click("button:has-text('Check file')")
    expect(page.locator("h2").first).to_have_text("Ready to import")
    page.screenshot(path=os.path.join(artifacts_dir, "contracts-11-import-ready.png"), full_page=True)
    page.click("button:has-text('Import 12 rows')")
    expect(page.locator(".messages")).to_contain_text("Imported 12 customers: 12 created.")
    page.fill("main input[name=q]", f"Imported {suffix}")
    expect(page.locator("#customer-table tbody tr")).to_have_count(12)
