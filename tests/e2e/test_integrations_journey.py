"""Issue #12, done when: in Chromium an admin connects Jira (copies the URL and the secret), a signed
Jira payload moving PROJ-12 to Done is posted to that URL, and the milestone invoice appears and is
e-mailed to the client at a real SMTP server; a signed HubSpot closed-won deal produces a draft
contract that finance activates; a Harvest CSV import previews, commits, and its hours are billed on
the next run. Screenshots at desktop width go to test-artifacts/."""

from __future__ import annotations

import json
import urllib.request
import uuid
from datetime import timedelta
from decimal import Decimal

import pytest
from django.db import connection
from django.test import override_settings
from django_tenants.utils import schema_context

from billing.tests.smtp import SmtpSink
from conftest import PASSWORD
from integrations.tests.payloads import hubspot_headers, hubspot_won, jira_done, jira_headers
from integrations.tests.standins import hubspot_stand_in

pytestmark = [pytest.mark.browser, pytest.mark.slow]


def _sign_in(page, url, email):
    page.goto(url)
    page.fill("#id_username", email)
    page.fill("#id_password", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_selector("text=Good to see you")


def _post(url: str, host: str, body: bytes, headers: dict, content_type="application/json") -> int:
    """POST as the source would, to the live server on 127.0.0.1 with the tenant's Host header."""
    port = url.rsplit(":", 1)[1].split("/")[0]
    path = "/" + url.split("/", 3)[3]
    request = urllib.request.Request(f"http://127.0.0.1:{port}{path}", data=body, method="POST")
    request.add_header("Host", f"{host}:{port}")
    request.add_header("Content-Type", content_type)
    for key, value in headers.items():
        request.add_header(key.removeprefix("HTTP_").replace("_", "-"), value)
    with urllib.request.urlopen(request, timeout=15) as response:
        return response.status


def _worker_pass(queue: list, schema: str) -> list[str]:
    from revexos.celery import app

    ran = []
    while queue:
        name, kwargs, task_schema = queue.pop(0)
        assert task_schema == schema
        with schema_context(task_schema):
            app.tasks[name].run(**kwargs)
        ran.append(name)
    connection.set_schema_to_public()
    return ran


def test_jira_hubspot_and_harvest_journeys_in_the_browser(
    page, shot, live_server_url, tenant_a, tmp_path, monkeypatch, committed_db
):
    from django.core.files.storage import default_storage
    from django.utils.functional import empty

    import billing.tasks  # noqa: F401 - task registry for the worker pass
    import integrations.tasks  # noqa: F401
    from billing.models import Invoice, InvoiceLine
    from billing.services.context import tenant_today
    from billing.tests.builders import contract_with
    from contracts.models import Contract, RateCardEntry
    from integrations.models import Connection, CrmDeal

    queue: list = []
    monkeypatch.setattr(
        "billing.services.enqueue.task_send", lambda name, *, kwargs, schema: queue.append((name, kwargs, schema))
    )
    tag = uuid.uuid4().hex[:6].upper()
    base = tenant_a.url(live_server_url)
    with schema_context(tenant_a.schema):
        today = tenant_today()
        CrmDeal.objects.filter(connection__source="hubspot").delete()
        Connection.objects.filter(source__in=["jira", "hubspot"]).delete()
        milestone_contract = contract_with(
            {
                "kind": "milestone",
                "description": "Phase 1 go-live",
                "amount": Decimal("12000.00"),
                "frequency": "",
                "timing": "",
                "reference": "PROJ-12",
            },
            start=today - timedelta(days=40),
            end=today + timedelta(days=300),
            number=f"JIRA-{tag}",
        )
        milestone_contract.customer.legal_name = f"Globex Industries {tag}"
        milestone_contract.customer.billing_emails = [f"ap@globex-{tag.lower()}.example"]
        milestone_contract.customer.save()
        tm = contract_with(
            {
                "kind": "time_and_materials",
                "description": "Engineering services",
                "frequency": "",
                "timing": "",
                "amount": None,
            },
            start=today - timedelta(days=120),
            end=today + timedelta(days=200),
            number=f"TM-{tag}",
        )
        RateCardEntry.objects.create(
            price_line=tm.versions.get().price_lines.get(), role="Engineer", hourly_rate=Decimal("150.00")
        )
    connection.set_schema_to_public()

    sink = SmtpSink().start()
    try:
        with override_settings(MAILERS=sink.mailers, MEDIA_ROOT=str(tmp_path / "media")):
            if default_storage._wrapped is empty:
                default_storage._setup()
            default_storage._wrapped.__dict__.pop("relative_media_root", None)

            # --- Jira: the admin connects it and copies the URL and the secret.
            _sign_in(page, base + "accounts/login/", tenant_a.users["admin"])
            page.click("nav >> text=Integrations")
            page.wait_for_selector("#source-jira")
            shot("1-integrations")
            page.click("#source-jira >> text=Connect Jira")
            page.fill("#id_name", "Jira Cloud")
            shot("2-connect-jira")
            page.click("button:has-text('Connect Jira')")
            page.wait_for_selector("#new-secret")
            webhook_url = page.inner_text("#webhook-url").strip()
            secret = page.inner_text("#secret-value").strip()
            assert webhook_url.endswith("/webhooks/jira/") and secret.startswith("rvxwh_")
            # Other contracts may use PROJ-12 too: map the Jira project to this contract.
            page.select_option("select[name=kind]", "project")
            page.fill("input[name=external]", "PROJ")
            page.fill("input[name=contract]", milestone_contract.number)
            page.click("text=Add mapping")
            page.wait_for_selector("#mapping-table")
            shot("3-jira-connected")
            page.reload()
            assert "rvxwh_" not in page.content()  # shown once

            body = json.dumps(jira_done("PROJ-12")).encode()
            assert _post(webhook_url, tenant_a.host, body, jira_headers(body, secret)) == 200
            ran = _worker_pass(queue, tenant_a.schema)
            assert "integrations.tasks.inbox_event_process" in ran and "billing.tasks.invoice_delivery_send" in ran
            (message,) = sink.wait_for(1)
            assert message["To"] == f"ap@globex-{tag.lower()}.example"
            page.reload()
            page.wait_for_selector("#inbox-table >> text=PROJ-12")
            assert "Processed" in page.inner_text("#inbox-table")
            shot("4-jira-inbox")
            page.set_viewport_size({"width": 390, "height": 844})
            shot("4b-jira-inbox-phone")
            page.set_viewport_size({"width": 1280, "height": 860})
            with schema_context(tenant_a.schema):
                invoice = Invoice.objects.get(contract__number=milestone_contract.number)
            connection.set_schema_to_public()
            assert invoice.number and invoice.number in message["Subject"]
            page.goto(base + f"billing/invoices/{invoice.pk}/")
            page.wait_for_selector("#deliveries >> text=E-mailed")
            page.wait_for_timeout(500)
            shot("5-milestone-invoice")

            # --- HubSpot: a signed closed-won deal produces a draft contract.
            deal_id = str(int(uuid.uuid4().int % 10**8))
            with hubspot_stand_in(
                deals={
                    deal_id: {
                        "properties": {
                            "dealname": f"Initech rollout {tag}",
                            "closedate": today.isoformat() + "T00:00:00Z",
                            "pipeline": "default",
                            "dealstage": "closedwon",
                            "deal_currency_code": "USD",
                        },
                        "line_items": ["11", "12", "13"],
                        "company": "77",
                    }
                },
                line_items={
                    "11": {
                        "name": "Platform subscription",
                        "quantity": "1",
                        "price": "2500.00",
                        "recurringbillingfrequency": "monthly",
                    },
                    "12": {
                        "name": "Premium support",
                        "quantity": "1",
                        "price": "900.00",
                        "recurringbillingfrequency": "quarterly",
                    },
                    "13": {"name": "Onboarding workshop", "quantity": "1", "price": "4000.00"},
                },
                companies={"77": {"name": f"Initech {tag} LLC", "country": "US", "city": "Austin"}},
            ) as hubspot_api:
                page.goto(base + "integrations/hubspot/connect/")
                hubspot_secret = "hubspot-client-secret-" + tag.lower() * 2
                page.fill("#id_secret", hubspot_secret)
                page.fill("#id_api_token", "pat-na1-test")
                page.fill("#id_api_base", hubspot_api.url)
                page.fill("#id_issuing_entity", str(milestone_contract.issuing_entity_id))
                page.click("button:has-text('Connect HubSpot')")
                page.wait_for_selector("#webhook-url")
                hubspot_url = page.inner_text("#webhook-url").strip()
                body = json.dumps(hubspot_won(deal_id)).encode()
                port = live_server_url.rsplit(":", 1)[1]
                signed_uri = f"http://{tenant_a.host}:{port}/webhooks/hubspot/"
                assert (
                    _post(hubspot_url, tenant_a.host, body, hubspot_headers(body, hubspot_secret, uri=signed_uri))
                    == 200
                )
                _worker_pass(queue, tenant_a.schema)
            page.reload()
            page.wait_for_selector(f"#inbox-table >> text={deal_id}")
            shot("6-hubspot-inbox")
            with schema_context(tenant_a.schema):
                draft = Contract.objects.get(crm_deals__deal_id=deal_id)
            connection.set_schema_to_public()
            assert draft.status == "draft"
            page.context.clear_cookies()  # finance signs in next
            _sign_in(page, base + "accounts/login/", tenant_a.users["finance"])
            page.goto(base + f"contracts/{draft.pk}/")
            page.wait_for_selector("text=From HubSpot deal")
            shot("7-hubspot-draft")
            page.click("button:has-text('Activate')")
            page.wait_for_selector("text=Active")
            with schema_context(tenant_a.schema):
                assert Contract.objects.get(pk=draft.pk).status == "active"
            connection.set_schema_to_public()
            shot("8-hubspot-activated")

            # --- Harvest: finance previews and commits a CSV; the next run bills the hours.
            last_month = today.replace(day=1) - timedelta(days=3)
            csv_path = tmp_path / "harvest_time_report.csv"
            csv_path.write_text(
                "Date,Client,Project,Project Code,Task,Notes,Hours,Hours Rounded,Billable?,Invoiced?,Approved?,First Name,Last Name,Roles,Employee?,Billable Rate,Billable Amount,Cost Rate,Cost Amount,Currency,External Reference URL\n"
                f"{last_month.isoformat()},Globex,Data platform,{tm.number},Engineer,Pipeline work,6.5,6.5,Yes,No,Yes,Ada,Lovelace,,Yes,150,975,80,520,US Dollar - USD,\n"
                f"{(last_month - timedelta(days=1)).isoformat()},Globex,Data platform,{tm.number},Engineer,Code review,1.5,1.5,Yes,No,Yes,Alan,Turing,,Yes,150,225,80,120,US Dollar - USD,\n"
                f"{last_month.isoformat()},Globex,Data platform,{tm.number},Internal,Team meeting,1,1,No,No,Yes,Ada,Lovelace,,Yes,0,0,80,80,US Dollar - USD,\n"
            )
            page.click("nav >> text=Time imports")
            page.select_option("select[name=format]", "harvest")
            page.set_input_files("input[name=file]", str(csv_path))
            page.click("#check")
            page.wait_for_selector("text=Ready to import")
            assert "3 new" in page.inner_text("#preview")
            shot("9-harvest-preview")
            page.click("#commit")
            page.wait_for_selector("text=Imported 3 time entries")
            shot("10-harvest-imported")
            request = urllib.request.Request(
                f"http://127.0.0.1:{port}/api/v1/runs",
                data=json.dumps({"as_of": today.isoformat(), "only": ["integrations", "billing"]}).encode(),
                method="POST",
                headers={
                    "Host": f"{tenant_a.host}:{port}",
                    "Authorization": f"Bearer {tenant_a.api_key}",
                    "Content-Type": "application/json",
                },
            )
            with urllib.request.urlopen(request, timeout=60) as response:
                assert response.status in (200, 202)
            with schema_context(tenant_a.schema):
                line = InvoiceLine.objects.get(contract__number=tm.number, kind="time_and_materials")
                tm_invoice = line.invoice
            connection.set_schema_to_public()
            assert line.amount == Decimal("1200.00")  # 8 billable hours at 150; the meeting is not billed
            page.goto(base + f"billing/invoices/{tm_invoice.pk}/")
            page.wait_for_selector("text=Engineering services")
            page.wait_for_timeout(1500)  # the PDF preview loads in its iframe
            shot("11-hours-billed")
    finally:
        sink.stop()
        default_storage._wrapped.__dict__.pop("relative_media_root", None)
