"""Issue #5, done when: in a real browser a finance user finds an invoice held because its PO is
missing, adds the PO to the contract with an amendment, approves the invoice, and the e-mail
arrives at a real SMTP server with the PDF attached (rendered to an image for people to look at)."""

from __future__ import annotations

import io
import os
import re
import subprocess
import uuid
from datetime import timedelta
from decimal import Decimal

import pytest
from django.db import connection
from django.test import override_settings
from django_tenants.utils import schema_context

from billing.tests.smtp import SmtpSink, pdf_attachments
from conftest import PASSWORD

pytestmark = [pytest.mark.browser, pytest.mark.slow]


def _held_invoice(tenant, tag: str):
    """A PO-required contract without its PO, and the fixed-fee invoice billing made for it today (held)."""
    from billing.services.context import tenant_today
    from billing.services.triggers import contract_bill_due
    from billing.tests.builders import contract_with
    from contracts.tests.factories import IssuingEntityFactory

    with schema_context(tenant.schema):
        today = tenant_today()
        entity = IssuingEntityFactory(
            legal_name=f"Northwind Consulting Ltd {tag}",
            invoice_prefix=f"NW{tag}-",
            email=f"billing@{tag.lower()}.example",
        )
        contract = contract_with(
            {
                "kind": "fixed_fee",
                "description": "Data platform implementation, phase 1",
                "amount": Decimal("18500.00"),
                "bill_on": today,
            },
            start=today - timedelta(days=60),
            end=today + timedelta(days=300),
            number=f"PO-{tag}",
            issuing_entity=entity,
            po_required=True,
            po_number="",
            payment_terms_days=30,
        )
        contract.customer.legal_name = f"Globex Industries {tag}"
        contract.customer.billing_emails = [f"ap@globex-{tag.lower()}.example", f"finance@globex-{tag.lower()}.example"]
        contract.customer.save()
        (invoice,) = contract_bill_due(contract_id=contract.pk, as_of=today).invoices
        assert invoice.status == "draft" and invoice.hold_reasons
        connection.set_schema_to_public()
        return contract, invoice, today


def _sign_in(page, url, email):
    page.goto(url)
    page.fill("#id_username", email)
    page.fill("#id_password", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_selector("text=Good to see you")


def test_finance_fixes_the_po_approves_the_held_invoice_and_the_pdf_arrives_by_email(
    page,
    shot,
    live_server_url,
    tenant_a,
    artifacts_dir,
    tmp_path,
    monkeypatch,
):
    from django.core.files.storage import default_storage
    from django.utils.functional import empty

    from billing import tasks
    from billing.models import Invoice, InvoiceDelivery

    # The "worker": tasks enqueued on commit are collected here and run below, in the tenant's schema.
    enqueued: list[tuple[str, dict, str]] = []
    monkeypatch.setattr(
        "billing.services.enqueue.task_send", lambda name, *, kwargs, schema: enqueued.append((name, kwargs, schema))
    )

    tag = uuid.uuid4().hex[:6].upper()
    sink = SmtpSink().start()
    try:
        with override_settings(MAILERS=sink.mailers, MEDIA_ROOT=str(tmp_path / "media")):
            if default_storage._wrapped is empty:
                default_storage._setup()
            default_storage._wrapped.__dict__.pop("relative_media_root", None)  # django-tenants caches it
            contract, draft, today = _held_invoice(tenant_a, tag)

            _sign_in(page, tenant_a.url(live_server_url, "/accounts/login/"), tenant_a.users["finance"])
            assert "held by a pre-send check" in page.locator("#panel-finance").inner_text()
            page.click("#panel-finance >> text=Open invoices")
            page.wait_for_selector(f"#invoice-{draft.pk}")
            row = page.locator(f"#invoice-{draft.pk}")
            assert "Held" in row.inner_text() and "requires a PO number" in row.inner_text()
            shot("held-in-list")

            row.locator(f"text=Draft #{draft.pk}").click()
            page.wait_for_selector("#hold-reasons")
            assert f"Contract {contract.number} requires a PO number" in page.locator("#hold-reasons").inner_text()
            page.wait_for_timeout(500)  # the DRAFT preview loads in its iframe
            shot("held-detail")

            # Fix the contract: an amendment in force from today carries the customer's PO.
            page.click("#hold-reasons >> text=amend its terms")
            page.wait_for_selector("#id_effective_from")
            page.fill("#id_effective_from", today.isoformat())
            page.fill("#id_po_number", f"PO-4471-{tag}")
            page.fill("#id_reason", "Customer issued PO for phase 1")
            page.get_by_role("button", name="Review changes").click()
            page.get_by_role("button", name="Save amendment").first.click()
            page.wait_for_selector("text=Amendment saved")
            # Redirect after POST: the saved amendment shows on the contract's page, not on /amend/.
            page.wait_for_url(re.compile(rf"/contracts/{contract.pk}/$"))
            shot("contract-amended")

            # Approve the held invoice: it takes the amended terms, passes its checks, is issued and queued.
            page.goto(tenant_a.url(live_server_url, f"/billing/invoices/{draft.pk}/"))
            page.click("#approve")
            page.wait_for_selector("text=is issued")
            with schema_context(tenant_a.schema):
                invoice = Invoice.objects.get(pk=draft.pk)
                delivery = InvoiceDelivery.objects.get(invoice=invoice)
            connection.set_schema_to_public()
            assert invoice.status == "issued" and invoice.po_number == f"PO-4471-{tag}" and invoice.hold_reasons == []
            assert ("billing.tasks.invoice_delivery_send", {"delivery_id": delivery.pk}, tenant_a.schema) in enqueued

            with schema_context(tenant_a.schema):  # the worker picks the task up
                assert tasks.invoice_delivery_send.run(delivery_id=delivery.pk) == "sent"
            connection.set_schema_to_public()
            (message,) = sink.wait_for(1)

            page.goto(tenant_a.url(live_server_url, f"/billing/invoices/{draft.pk}/"))
            page.wait_for_selector("#deliveries >> text=E-mailed")
            page.wait_for_timeout(500)
            shot("sent-detail")
            page.goto(tenant_a.url(live_server_url, "/billing/outbox/?status=sent"))
            assert invoice.number in page.locator("#outbox").inner_text()
            shot("outbox")
    finally:
        sink.stop()
        default_storage._wrapped.__dict__.pop("relative_media_root", None)

    assert set(message["To"].split(", ")) == {
        f"ap@globex-{tag.lower()}.example",
        f"finance@globex-{tag.lower()}.example",
    }
    assert message["Subject"].startswith(f"Invoice {invoice.number} from Northwind Consulting Ltd {tag}")
    ((filename, data),) = pdf_attachments(message)
    assert filename == f"{invoice.number}.pdf"
    from pypdf import PdfReader

    text = PdfReader(io.BytesIO(data)).pages[0].extract_text()
    assert invoice.number in text and f"PO-4471-{tag}" in text and "18,500.00 USD" in text
    assert (today + timedelta(days=30)).strftime("%-d %b %Y") in text
    # Keep the PDF and a picture of it for people to look at.
    path = os.path.join(artifacts_dir, "invoice-delivery-journey-email.pdf")
    with open(path, "wb") as handle:
        handle.write(data)
    subprocess.run(["pdftoppm", "-png", "-r", "80", path, path[:-4]], check=True, timeout=60)
    assert os.path.exists(path[:-4] + "-1.png")
