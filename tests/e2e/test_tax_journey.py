"""Issue #13, done when: in a real browser finance issues a UK VAT invoice and a reverse-charge
invoice (both PDFs rendered to PNG for people to look at), exports last month for Xero and opens
the file, and an outbound webhook receiver started by the test receives ``invoice.issued`` and
verifies its signature with the snippet printed in the API reference."""

from __future__ import annotations

import base64
import csv
import io
import json
import os
import re
import subprocess
import uuid
from datetime import timedelta
from decimal import Decimal
from pathlib import Path

import pytest
from django.db import connection
from django_tenants.utils import schema_context
from pypdf import PdfReader

from conftest import PASSWORD

pytestmark = [pytest.mark.browser, pytest.mark.slow]
XERO_HEADER = (
    Path(__file__).resolve().parents[2]
    / "integrations/tests/data/accounting_csv/xero_SalesInvoiceTemplate_header_current.csv"
).read_bytes()


def _setup(tenant, tag: str, receiver_url: str):
    """A UK entity (its VAT rates seeded by the service), a UK and a German customer with drafts
    billed today, an invoice issued last month, and a webhook endpoint for invoice.issued."""
    from billing.services.context import tenant_today
    from billing.services.triggers import contract_bill_due
    from billing.tests.builders import contract_with
    from contracts.services.issuing_entities import issuing_entity_create
    from contracts.tests.factories import CustomerFactory
    from revexos.webhooks.services import endpoint_create

    with schema_context(tenant.schema):
        today = tenant_today()
        entity = issuing_entity_create(
            data={
                "legal_name": f"Northwind Consulting Ltd {tag}",
                "invoice_prefix": f"T{tag}-",
                "currency": "GBP",
                "tax_id": "GB980780684",
                "email": "billing@northwind.example",
                "bank_details": "Barclays · Sort code 20-00-00 · Account 43218765",
                "address": {"line1": "8 Bishopsgate", "city": "London", "postal_code": "EC2N 4BQ", "country": "GB"},
            }
        )
        uk = CustomerFactory(
            legal_name=f"Bluepeak Analytics Ltd {tag}", country="GB", currency="GBP", city="London",
            address_line1="14 Clerkenwell Road", postal_code="EC1M 5PQ",
        )  # fmt: skip
        de = CustomerFactory(
            legal_name=f"Cobalt Freight GmbH {tag}", country="DE", currency="GBP", tax_id="DE136695976",
            city="Hamburg", address_line1="Am Sandtorkai 41", postal_code="20457",
        )  # fmt: skip
        fee = {"kind": "fixed_fee", "description": "Data platform implementation", "amount": Decimal("1000.00")}
        drafts = []
        for customer in (uk, de):
            contract = contract_with(
                {**fee, "bill_on": today}, start=today - timedelta(days=90), end=today + timedelta(days=270),
                issuing_entity=entity, customer=customer, currency="GBP", auto_issue=False,
            )  # fmt: skip
            (draft,) = contract_bill_due(contract_id=contract.pk, as_of=today).invoices
            drafts.append(draft)
        last_month_day = today.replace(day=1) - timedelta(days=20)
        earlier = contract_with(
            {**fee, "description": "Discovery workshop", "bill_on": last_month_day},
            start=last_month_day - timedelta(days=30), end=today + timedelta(days=270),
            issuing_entity=entity, customer=uk, currency="GBP",
        )  # fmt: skip
        (last_month,) = contract_bill_due(contract_id=earlier.pk, as_of=last_month_day).invoices
        endpoint = endpoint_create(data={"url": receiver_url, "events": ["invoice.issued"]})
        connection.set_schema_to_public()
        return drafts, last_month, endpoint


def _sign_in(page, url, email):
    page.goto(url)
    page.fill("#id_username", email)
    page.fill("#id_password", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_selector("text=Good to see you")


def _pdf_png(page, url: str, path: str) -> str:
    # Fetched by the page itself: Chromium resolves tenant hosts (*.localhost), Playwright's own client does not.
    encoded = page.evaluate(
        """async (url) => {
            const bytes = new Uint8Array(await (await fetch(url)).arrayBuffer());
            let text = "";
            for (const b of bytes) text += String.fromCharCode(b);
            return btoa(text);
        }""",
        url,
    )
    data = base64.b64decode(encoded)
    with open(path, "wb") as handle:
        handle.write(data)
    subprocess.run(["pdftoppm", "-png", "-r", "60", path, path[:-4]], check=True, timeout=60)
    assert os.path.exists(path[:-4] + "-1.png")
    return " ".join(" ".join(p.extract_text() for p in PdfReader(io.BytesIO(data)).pages).split())


def test_finance_issues_vat_and_reverse_charge_invoices_exports_for_xero_and_a_receiver_verifies_the_webhook(
    page, shot, live_server_url, tenant_a, artifacts_dir, monkeypatch
):
    from billing.models import Invoice
    from revexos.webhooks.api import VERIFY_SNIPPET
    from revexos.webhooks.services import webhook_deliveries_sweep
    from revexos.webhooks.tests.receiver import Receiver

    # No worker here: deliveries are sent by the sweep below, as the beat would.
    monkeypatch.setattr("revexos.webhooks.publish._enqueue_on_commit", lambda ids: None)
    from contracts.models import TaxRate

    receiver = Receiver().start()
    tag = uuid.uuid4().hex[:5].upper()
    with schema_context(tenant_a.schema):
        rates_before = set(TaxRate.objects.values_list("pk", flat=True))
    connection.set_schema_to_public()
    endpoint = None
    try:
        (uk_draft, de_draft), last_month, endpoint = _setup(tenant_a, tag, receiver.url)
        _sign_in(page, tenant_a.url(live_server_url, "/accounts/login/"), tenant_a.users["finance"])

        # The seeded rates are visible (and editable) under Settings → Tax rates.
        page.click("nav >> text=Tax rates")
        page.wait_for_selector("#rates-GB")
        assert "UK VAT 20%" in page.locator("#rates-GB").inner_text()
        shot("tax-rates")

        issued = {}
        for name, draft, expect_tax in (
            ("uk-vat", uk_draft, "UK VAT 20%"),
            ("reverse-charge", de_draft, "Reverse charge"),
        ):
            page.goto(tenant_a.url(live_server_url, f"/billing/invoices/{draft.pk}/"))
            page.wait_for_selector("#tax-summary")
            assert expect_tax in page.locator("#tax-summary").inner_text()
            page.click("#approve")
            page.wait_for_selector("text=is issued")
            page.wait_for_timeout(600)  # the PDF preview loads in its iframe
            shot(f"{name}-issued")
            with schema_context(tenant_a.schema):
                issued[name] = Invoice.objects.get(pk=draft.pk)
            connection.set_schema_to_public()
            text = _pdf_png(
                page,
                tenant_a.url(live_server_url, f"/billing/invoices/{draft.pk}/pdf/"),
                os.path.join(artifacts_dir, f"tax-journey-{name}.pdf"),
            )
            assert issued[name].number in text
        uk, de = issued["uk-vat"], issued["reverse-charge"]
        assert (uk.tax_total, uk.total) == (Decimal("200.00"), Decimal("1200.00"))
        assert (de.tax_total, de.total, de.tax_treatment) == (Decimal("0.00"), Decimal("1000.00"), "reverse_charge")
        de_text = _pdf_png(
            page,
            tenant_a.url(live_server_url, f"/billing/invoices/{de.pk}/pdf/"),
            os.path.join(artifacts_dir, "tax-journey-rc.pdf"),
        )
        assert "Reverse charge: the customer accounts for the VAT in Germany" in de_text

        # The webhook receiver hears about both issues, signed.
        with schema_context(tenant_a.schema):
            webhook_deliveries_sweep()
        connection.set_schema_to_public()
        code = re.search(r"```python\n(.*?)```", VERIFY_SNIPPET, re.S).group(1)
        namespace: dict = {}
        exec(code, namespace)
        bodies = []
        for headers, body in receiver.requests:
            assert namespace["revexos_signature_ok"](endpoint.secret, body, headers["RevExOS-Signature"])
            bodies.append(json.loads(body))
        numbers = {b["data"]["invoice"]["number"] for b in bodies if b["type"] == "invoice.issued"}
        assert {uk.number, de.number} <= numbers

        # Exports: last month for Xero, downloaded and opened.
        page.click("nav >> text=Accounting exports")
        page.wait_for_selector("#new-export")
        page.select_option("#id_target", "xero")
        page.click("#export-submit")
        page.wait_for_selector("text=invoice")
        row = page.locator("#export-table tbody tr").first
        with page.expect_download() as download_info:
            row.locator("text=Download").click()
        path = os.path.join(artifacts_dir, "tax-journey-xero.csv")
        download_info.value.save_as(path)
        shot("exports")
        content = Path(path).read_bytes()
        assert content.startswith(XERO_HEADER)
        rows = list(csv.DictReader(io.StringIO(content.decode())))
        mine = [r for r in rows if r["*InvoiceNumber"] == last_month.number]
        assert mine and mine[0]["*TaxType"] == "UK VAT 20%" and mine[0]["*UnitAmount"] == "1000.00"
        assert uk.number not in {r["*InvoiceNumber"] for r in rows}  # issued this month, not last

        page.set_viewport_size({"width": 390, "height": 844})
        page.goto(tenant_a.url(live_server_url, f"/billing/invoices/{de.pk}/"))
        page.wait_for_selector("#tax-summary")
        shot("reverse-charge-phone")

        # An admin sees the deliveries in Settings → Webhooks.
        admin = page.context.browser.new_context(viewport={"width": 1280, "height": 860}).new_page()
        _sign_in(admin, tenant_a.url(live_server_url, "/accounts/login/"), tenant_a.users["admin"])
        admin.goto(tenant_a.url(live_server_url, f"/settings/webhooks/{endpoint.pk}/"))
        assert "Delivered" in admin.locator("#deliveries").inner_text()
        admin.screenshot(path=os.path.join(artifacts_dir, "tax-journey-webhook-deliveries.png"), full_page=True)
        admin.context.close()
    finally:
        receiver.stop()
        # Committed data is shared with later tests: leave tenant A without the rates and the endpoint made here.
        from revexos.webhooks.models import WebhookEndpoint

        with schema_context(tenant_a.schema):
            TaxRate.objects.exclude(pk__in=rates_before).delete()
            if endpoint is not None:
                WebhookEndpoint.objects.filter(pk=endpoint.pk).delete()
        connection.set_schema_to_public()
