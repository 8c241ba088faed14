"""DESIGN.md §5 and §5.1 are a contract: every request body printed there is accepted as printed.

One journey through the API of a tenant, in the order a new customer of RevExOS would send them:
the issuing entity, the customer, the contract, facts, a run, discounts and credits, a payment, tax
rates, integrations, outbound webhooks and the read endpoints. Only references to things the
example cannot know (the number of the invoice it pays) are filled in from earlier answers.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest
import time_machine
from django.test import Client

from contracts.tests.factories import contract_payload

pytestmark = pytest.mark.django_db

ENTITY = {
    "legal_name": "Northwind Consulting Ltd",
    "number_prefix": "NWL",
    "currency": "GBP",
    "tax_id": "GB123456789",
    "address": {"line1": "1 King St", "city": "London", "postal_code": "EC2V 8AU", "country": "GB"},
    "bank_details": "Barclays, sort code 20-00-00, account 12345678",
}
CUSTOMER = {
    "external_id": "acme-ltd",
    "legal_name": "Acme Ltd",
    "currency": "USD",
    "billing_emails": ["ap@acme.example"],
    "tax_id": "GB123456789",
    "address": {"line1": "1 Main St", "city": "London", "postal_code": "EC1A 1AA", "country": "GB"},
}
# The contract of §5 lives in the factories (other tests post it too).
CONTRACT = contract_payload()


@pytest.fixture
def api(db, tenant_a) -> Client:
    return Client(HTTP_HOST=tenant_a.host, HTTP_AUTHORIZATION=f"Bearer {tenant_a.api_key}")


def send(api, method: str, path: str, body=None, expect: int = 200) -> dict | list:
    kwargs = {"content_type": "application/json"} if body is not None else {}
    call = getattr(api, method)
    response = call(path, json.dumps(body), **kwargs) if body is not None else call(path)
    assert response.status_code == expect, (method, path, response.status_code, response.content[:600])
    return response.json() if response["Content-Type"].startswith("application/json") else response


def test_every_request_printed_in_design_is_accepted_as_printed(api):
    with time_machine.travel(datetime(2026, 2, 1, 9, tzinfo=UTC), tick=False):
        entity = send(api, "post", "/api/v1/issuing-entities", ENTITY, 201)
        assert entity["number_prefix"] == "NWL"
        send(api, "post", "/api/v1/customers", CUSTOMER, 201)
        contract = send(api, "post", "/api/v1/contracts", CONTRACT, 201)
        assert contract["number"] == "C-1001" and contract["status"] == "active"
        send(
            api,
            "post",
            "/api/v1/tax-rates",
            {
                "name": "UK VAT 20%",
                "country": "GB",
                "region": "",
                "rate": "20",
                "category": "standard",
                "valid_from": "2026-01-01",
            },
            201,
        )

        send(
            api,
            "post",
            "/api/v1/usage-events",
            {
                "events": [
                    {
                        "transaction_id": "tx-1",
                        "contract": "C-1001",
                        "metric": "api_calls",
                        "quantity": "650",
                        "timestamp": "2026-01-20T10:00:00Z",
                        "properties": {},
                    }
                ]
            },
            202,
        )
        send(
            api,
            "post",
            "/api/v1/delivery-events",
            {
                "kind": "milestone_completed",
                "contract": "C-1001",
                "milestone_ref": "PROJ-12",
                "occurred_at": "2026-01-30T12:00:00Z",
                "external_id": "jira-PROJ-12-done",
            },
            202,
        )
        run = send(api, "post", "/api/v1/runs", {"as_of": "2026-02-01", "only": ["billing"]})
        assert run["status"] in ("succeeded", "completed_with_errors"), run

        invoices = send(api, "get", "/api/v1/invoices?contract=C-1001")
        items = invoices["items"] if isinstance(invoices, dict) else invoices
        assert items, "the run billed nothing"
        invoice = items[0]
        for key in ("amount_paid", "amount_open", "payment_status", "paid_on", "pay_url", "tax_lines"):
            assert key in invoice, key

        send(
            api,
            "post",
            "/api/v1/discounts",
            {
                "contract": "C-1001",
                "kind": "percentage",
                "value": "10",
                "start_date": "2026-01-01",
                "end_date": "2026-03-31",
                "reason": "launch",
            },
            201,
        )
        send(
            api,
            "post",
            "/api/v1/credits",
            {
                "customer": "acme-ltd",
                "amount": "1000.00",
                "currency": "USD",
                "expires_on": "2026-12-31",
                "reason": "SLA credit",
            },
            201,
        )
        issued = next(i for i in items if i["number"])
        payment = send(
            api,
            "post",
            "/api/v1/payments",
            {
                "customer": "acme-ltd",
                "amount": "1500.00",
                "currency": "USD",
                "received_on": "2026-02-01",
                "method": "bank_transfer",
                "reference": issued["number"],
                "external_id": "bank-7781",
                "allocations": [{"invoice": issued["number"], "amount": "1000.00"}],
            },
            201,
        )
        send(api, "post", f"/api/v1/payments/{payment['id']}/refunds", {"amount": "200.00", "reason": "Goodwill"}, 201)

        integration = send(api, "post", "/api/v1/integrations", {"source": "jira"}, 201)
        assert {"id", "source", "webhook_url", "secret"} <= set(integration)
        endpoint = send(
            api,
            "post",
            "/api/v1/webhook-endpoints",
            {"url": "https://hooks.acme.example/revexos", "events": ["invoice.issued", "invoice.paid"]},
            201,
        )
        assert endpoint["secret"]

        aging = send(api, "get", "/api/v1/ar-aging?as_of=2026-02-01")
        assert aging and {"currency", "total", "buckets", "customers"} <= set(aging[0])
        assert set(aging[0]["buckets"]) == {"current", "1_30", "31_60", "61_90", "over_90"}
        dso = send(api, "get", "/api/v1/dso?months=6")
        assert dso and {"month", "currency", "ar_end", "credit_sales", "days", "dso", "average_days_to_pay"} <= set(
            dso[0]
        )
        send(api, "get", "/api/v1/forecast?months=3")
        send(api, "get", "/api/v1/renewal-alerts")
        send(api, "get", "/api/v1/leakage-findings")
        export = api.get("/api/v1/exports/xero?from=2026-01-01&to=2026-02-28")
        assert export.status_code == 200 and export["Content-Type"].startswith(("text/csv", "application/zip"))
