"""Issue #11, done when: in Chromium a client opens the pay link from the invoice e-mail caught by a
real SMTP server, pays with a localstripe test card, the signed webhook (sent by localstripe) marks
the invoice paid, and finance sees it leave the aging table and the DSO move; an overdue invoice
receives its +7 reminder e-mail with the PDF and the pay link.

Real parts: aiosmtpd, localstripe (Stripe API, Stripe.js stand-in and its signed webhooks), the
live server, WeasyPrint, Chromium at desktop and phone width.
"""

from __future__ import annotations

import io
import json
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
WEBHOOK_SECRET = "whsec_e2e_" + "c0ffee" * 4


@pytest.fixture(scope="module")
def localstripe():
    from receivables.localstripe_server import running

    with running() as base:
        yield base


def _sign_in(page, url, email):
    page.goto(url)
    page.fill("#id_username", email)
    page.fill("#id_password", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_selector("text=Good to see you")


def _book(tenant, tag: str):
    """A CHF customer with two overdue invoices: one to pay by card, one to be reminded."""
    from contracts.tests.factories import CustomerFactory
    from receivables.tests.helpers import issued_invoice
    from revexos.dates import tenant_today

    with schema_context(tenant.schema):
        today = tenant_today()
        customer = CustomerFactory(
            currency="CHF",
            legal_name=f"Helvetia Robotics AG {tag}",
            external_id=f"helvetia-{tag.lower()}",
            billing_emails=[f"ap@helvetia-{tag.lower()}.example"],
        )
        to_pay = issued_invoice(customer, "4200.00", issued=today - timedelta(days=40), terms=30)  # 10 days overdue
        reminded = issued_invoice(customer, "1750.00", issued=today - timedelta(days=37), terms=30)  # due 7 days ago
    connection.set_schema_to_public()
    return customer, to_pay, reminded, today


def _aging_chf(page) -> str:
    table = page.locator("#aging-CHF")
    return table.inner_text() if table.count() else ""


def test_a_client_pays_by_card_from_the_email_and_finance_sees_it_collected(
    page, browser, shot, live_server_url, tenant_a, artifacts_dir, tmp_path, monkeypatch, localstripe
):
    from django.core.files.storage import default_storage
    from django.utils.functional import empty

    from billing import tasks
    from billing.models import Invoice, InvoiceDelivery
    from receivables.localstripe_server import webhook_register
    from receivables.services import paylinks
    from receivables.services.stripe import stripe_account_connect, stripe_account_disconnect

    enqueued: list = []
    monkeypatch.setattr(
        "billing.services.enqueue.task_send", lambda name, *, kwargs, schema: enqueued.append((name, kwargs, schema))
    )
    port = live_server_url.rsplit(":", 1)[1]
    tag = uuid.uuid4().hex[:6].upper()
    sink = SmtpSink().start()
    try:
        with override_settings(
            MAILERS=sink.mailers,
            MEDIA_ROOT=str(tmp_path / "media"),
            STRIPE_API_BASE=localstripe,
            TENANT_URL_SCHEME="http",
            TENANT_URL_PORT=port,
        ):
            if default_storage._wrapped is empty:
                default_storage._setup()
            default_storage._wrapped.__dict__.pop("relative_media_root", None)
            paylinks._hosts.clear()
            paylinks._connected.clear()
            with schema_context(tenant_a.schema):
                # The tenant connects its Stripe account (checked against the Stripe server).
                stripe_account_connect(
                    secret_key="sk_test_e2e_4eC39HqLyjWDarjtT1zdp7dc",
                    publishable_key="pk_test_e2e_TYooMQauvdEDq54NiTphI7jx",
                    webhook_secret=WEBHOOK_SECRET,
                )
            connection.set_schema_to_public()
            webhook_register(
                localstripe,
                name=f"e2e-{tag}",
                url=tenant_a.url(live_server_url, "/webhooks/stripe/"),
                secret=WEBHOOK_SECRET,
            )
            customer, to_pay, reminded, today = _book(tenant_a, tag)

            # The invoice e-mail goes out through the outbox; the client finds the pay link in it.
            with schema_context(tenant_a.schema):
                delivery = InvoiceDelivery.objects.get(invoice=to_pay, kind="initial")
                assert tasks.invoice_delivery_send.run(delivery_id=delivery.pk) == "sent"
            connection.set_schema_to_public()
            (invoice_mail,) = sink.wait_for(1)
            body = invoice_mail.get_body(preferencelist=("plain",)).get_content()
            pay_url = re.search(r"(http://\S+/pay/\S+/)", body).group(1)
            assert tenant_a.host in pay_url and f":{port}/" in pay_url
            ((_name, pdf),) = pdf_attachments(invoice_mail)
            from pypdf import PdfReader

            assert pay_url in PdfReader(io.BytesIO(pdf)).pages[0].extract_text().replace("\n", "")

            # Finance before: the invoice is in the 1–30 days column of the CHF aging.
            _sign_in(page, tenant_a.url(live_server_url, "/accounts/login/"), tenant_a.users["finance"])
            page.goto(tenant_a.url(live_server_url, "/collections/"))
            before_aging = _aging_chf(page)
            assert customer.legal_name in before_aging and "5,950.00" in before_aging
            dso_before = page.locator("#kpi-dso").inner_text()
            shot("collections-before")

            # The client (no login, own browser context) pays with a test card on the pay page.
            client = browser.new_context(viewport={"width": 1280, "height": 860})
            pay = client.new_page()
            pay.set_default_timeout(20000)
            pay.goto(pay_url)
            pay.wait_for_selector("#card-element input")
            assert "4,200.00 CHF" in pay.locator("#pay-amount").inner_text()
            pay.screenshot(path=os.path.join(artifacts_dir, "collections-journey-pay-page.png"), full_page=True)
            pay.fill("#card-element input[placeholder=number]", "4242424242424242")
            pay.fill("#card-element input[placeholder=exp_month]", "12")
            pay.fill("#card-element input[placeholder=exp_year]", "34")
            pay.fill("#card-element input[placeholder=cvc]", "123")
            pay.fill("#card-element input[placeholder=postal_code]", "8001")
            pay.click("#pay-button")
            # localstripe charges the card and sends payment_intent.succeeded, signed, to /webhooks/stripe/.
            pay.wait_for_selector("text=Paid — thank you", timeout=30000)
            pay.screenshot(path=os.path.join(artifacts_dir, "collections-journey-pay-done.png"), full_page=True)
            phone = browser.new_context(viewport={"width": 390, "height": 844}, is_mobile=True)
            mobile = phone.new_page()
            mobile.goto(pay_url)
            mobile.wait_for_selector("#pay-done")
            mobile.screenshot(path=os.path.join(artifacts_dir, "collections-journey-pay-phone.png"), full_page=True)
            phone.close()
            client.close()

            with schema_context(tenant_a.schema):
                paid = Invoice.objects.get(pk=to_pay.pk)
                assert paid.status == "paid" and paid.amount_open == 0 and paid.paid_on == today
                payment = paid.allocations.get().payment
                assert payment.method == "card" and payment.source == "stripe" and payment.amount == Decimal("4200.00")
                from receivables.models import StripeEvent

                assert StripeEvent.objects.filter(
                    type="payment_intent.succeeded", outcome__startswith="payment"
                ).exists()
            connection.set_schema_to_public()

            # Finance after: the paid invoice has left the aging table; DSO moved.
            page.goto(tenant_a.url(live_server_url, "/collections/"))
            after_aging = _aging_chf(page)
            assert "1,750.00" in after_aging and "5,950.00" not in after_aging
            assert page.locator("#kpi-dso").inner_text() != dso_before
            shot("collections-after")
            page.set_viewport_size({"width": 390, "height": 844})
            shot("collections-phone")
            page.set_viewport_size({"width": 1280, "height": 860})
            page.goto(tenant_a.url(live_server_url, f"/billing/invoices/{to_pay.pk}/"))
            assert "Paid" in page.locator("h1").inner_text() and "Card" in page.locator("#payments").inner_text()
            shot("invoice-paid")
            page.goto(tenant_a.url(live_server_url, f"/customers/{customer.pk}/"))
            assert "4,200.00" in page.locator("#customer-payments-table").inner_text()
            shot("customer-payments")

            # The re-downloaded PDF of the paid invoice carries the PAID stamp.
            from tests.helpers import client_for

            finance = client_for(tenant_a, email=tenant_a.users["finance"])
            paid_pdf = finance.get(f"/billing/invoices/{to_pay.pk}/pdf/").content
            connection.set_schema_to_public()
            assert "PAID" in PdfReader(io.BytesIO(paid_pdf)).pages[0].extract_text()
            path = os.path.join(artifacts_dir, "collections-journey-paid.pdf")
            with open(path, "wb") as handle:
                handle.write(paid_pdf)
            subprocess.run(["pdftoppm", "-png", "-r", "60", path, path[:-4]], check=True, timeout=60)

            # The collections step of the cycle (POST /api/v1/runs, only collections): the other
            # invoice, due seven days ago, gets its +7 reminder; the paid one gets nothing.
            from django.test import Client

            api = Client(HTTP_HOST=tenant_a.host, HTTP_AUTHORIZATION=f"Bearer {tenant_a.api_key}")
            run = api.post(
                "/api/v1/runs",
                data=json.dumps({"as_of": today.isoformat(), "only": ["collections"]}),
                content_type="application/json",
            )
            assert run.status_code == 200, run.content
            sent = run.json()["summary"]["collections"]["reminders_sent"]
            assert f"{reminded.number}: Second reminder" in sent and not any(to_pay.number in s for s in sent)
            with schema_context(tenant_a.schema):
                reminder = InvoiceDelivery.objects.get(invoice=reminded, kind="reminder")
                assert tasks.invoice_delivery_send.run(delivery_id=reminder.pk) == "sent"
            connection.set_schema_to_public()
            mails = sink.wait_for(2)
            reminder_mail = mails[-1]
            assert reminder_mail["Subject"] == f"Second reminder: invoice {reminded.number} is 7 days overdue"
            text = reminder_mail.get_body(preferencelist=("plain",)).get_content()
            assert f"/pay/{reminded.pay_token}/" in text and "1,750.00 CHF" in text
            ((name, reminder_pdf),) = pdf_attachments(reminder_mail)
            assert (
                name == f"{reminded.number}.pdf"
                and reminded.number in PdfReader(io.BytesIO(reminder_pdf)).pages[0].extract_text()
            )
            with open(os.path.join(artifacts_dir, "collections-journey-reminder.txt"), "w") as handle:
                handle.write(f"Subject: {reminder_mail['Subject']}\n\n{text}")
    finally:
        sink.stop()
        default_storage._wrapped.__dict__.pop("relative_media_root", None)
        with schema_context(tenant_a.schema):  # committed: later tests start without card payments
            stripe_account_disconnect()
        connection.set_schema_to_public()
        paylinks._hosts.clear()
        paylinks._connected.clear()
