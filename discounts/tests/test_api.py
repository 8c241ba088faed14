"""GET/POST /api/v1/discounts and /api/v1/credits with DESIGN.md §5's exact bodies; 422 names the field, writes nothing."""

from __future__ import annotations

import json
from decimal import Decimal

import pytest
from django.test import Client

from discounts.models import Credit, Discount, ExceptionEvent
from discounts.tests.conftest import travel
from discounts.tests.helpers import retainer_contract

D = Decimal
pytestmark = pytest.mark.django_db

DISCOUNT_EXAMPLE = {
    "contract": "C-1001",
    "kind": "percentage",
    "value": "10",
    "start_date": "2026-01-01",
    "end_date": "2026-03-31",
    "reason": "launch",
}
CREDIT_EXAMPLE = {
    "customer": "acme-ltd",
    "amount": "1000.00",
    "currency": "USD",
    "expires_on": "2026-12-31",
    "reason": "SLA credit",
}


@pytest.fixture
def api(in_tenant_a):
    return Client(HTTP_HOST=in_tenant_a.host, HTTP_AUTHORIZATION=f"Bearer {in_tenant_a.api_key}")


@pytest.fixture
def acme(in_tenant_a):
    from contracts.models import Contract, Customer

    if Contract.objects.filter(number="C-1001").exists():  # committed by another suite
        return Contract.objects.get(number="C-1001")
    contract = retainer_contract(number="C-1001")
    Customer.objects.filter(pk=contract.customer_id).update(external_id="acme-ltd")
    contract.refresh_from_db()
    return contract


def post(api, path, body):
    return api.post(path, json.dumps(body) if not isinstance(body, str) else body, content_type="application/json")


def test_the_discount_example_is_accepted_and_listed(api, acme):
    with travel(2026, 2, 10):
        response = post(api, "/api/v1/discounts", DISCOUNT_EXAMPLE)
    assert response.status_code == 201, response.content
    body = response.json()
    assert {
        k: body[k] for k in ("contract", "kind", "value", "start_date", "end_date", "reason", "status", "scope")
    } == {
        "contract": "C-1001",
        "kind": "percentage",
        "value": "10",
        "start_date": "2026-01-01",
        "end_date": "2026-03-31",
        "reason": "launch",
        "status": "active",
        "scope": "contract",
    }
    assert body["approved_by"].startswith("API key")
    listed = api.get("/api/v1/discounts?contract=C-1001").json()
    assert listed["count"] == 1 and listed["items"][0]["id"] == body["id"]
    assert api.get(f"/api/v1/discounts/{body['id']}").json() == body
    assert ExceptionEvent.objects.filter(discount_id=body["id"], action="created").exists()


def test_fixed_max_cycles_and_price_line_variants(api, acme):
    with travel(2026, 2, 10):
        response = post(
            api,
            "/api/v1/discounts",
            {
                "contract": str(acme.pk),
                "kind": "fixed",
                "value": "250.00",
                "max_cycles": 3,
                "price_line": "L1",
                "start_date": "2026-03-01",
                "reason": "onboarding",
            },
        )
    assert response.status_code == 201, response.content
    body = response.json()
    assert (body["value"], body["currency"], body["max_cycles"], body["price_line"], body["scope"], body["status"]) == (
        "250.00",
        "USD",
        3,
        "L1",
        "price_line",
        "scheduled",
    )


def test_the_credit_example_is_accepted_and_listed(api, acme):
    with travel(2026, 2, 10):
        response = post(api, "/api/v1/credits", CREDIT_EXAMPLE)
    assert response.status_code == 201, response.content
    body = response.json()
    assert {k: body[k] for k in ("customer", "amount", "balance", "currency", "expires_on", "reason", "status")} == {
        "customer": "acme-ltd",
        "amount": "1000.00",
        "balance": "1000.00",
        "currency": "USD",
        "expires_on": "2026-12-31",
        "reason": "SLA credit",
        "status": "active",
    }
    assert api.get("/api/v1/credits?customer=acme-ltd").json()["count"] == 1


@pytest.mark.parametrize(
    "change, field, words",
    [
        ({"end_date": None}, "end_date", "end date or a number of billing cycles"),
        ({"contract": "C-404"}, "contract", "No contract"),
        ({"value": "ten"}, "value", "not a number"),
        ({"value": 10.5}, "value", None),  # a JSON number is parsed as Decimal, never a float: accepted below
        ({"kind": "bogus"}, "kind", "percentage or fixed"),
        ({"end_date": "2025-12-01"}, "end_date", "before the start date"),
        ({"start_date": "31/01/2026"}, "start_date", "YYYY-MM-DD"),
        ({"value": "150"}, "value", "cannot exceed 100"),
        ({"reason": ""}, "reason", "Say why"),
        ({"price_line": "L9"}, "price_line", "no price line"),
        ({"surprise": 1}, "surprise", "Unknown field"),
    ],
)
def test_bad_discounts_get_422_naming_the_field_and_nothing_is_written(api, acme, change, field, words):
    body = {k: v for k, v in {**DISCOUNT_EXAMPLE, **change}.items() if v is not None}
    with travel(2026, 2, 10):
        response = post(api, "/api/v1/discounts", body)
    if words is None:
        assert response.status_code == 201 and response.json()["value"] == "10.5"
        return
    assert response.status_code == 422, response.content
    error = response.json()["error"]
    assert error["code"] == "validation_error" and words in " ".join(error["fields"][field])
    assert not Discount.objects.exists()


def test_every_bad_field_is_reported_at_once(api, acme):
    response = post(
        api,
        "/api/v1/discounts",
        {"contract": "C-1001", "kind": "percentage", "value": "-1", "start_date": "2026-01-01"},
    )
    assert response.status_code == 422
    assert {"value", "end_date", "reason"} <= set(response.json()["error"]["fields"])


@pytest.mark.parametrize(
    "change, field",
    [
        ({"customer": "nobody"}, "customer"),
        ({"amount": "0"}, "amount"),
        ({"amount": "10.005"}, "amount"),
        ({"currency": "XXX"}, "currency"),
        ({"expires_on": None}, "expires_on"),
        ({"invoices": "INV-1"}, "invoices"),
    ],
)
def test_bad_credits_get_422_naming_the_field(api, acme, change, field):
    body = {k: v for k, v in {**CREDIT_EXAMPLE, **change}.items() if v is not None}
    response = post(api, "/api/v1/credits", body)
    assert response.status_code == 422, response.content
    assert field in response.json()["error"]["fields"]
    assert not Credit.objects.exists()


def test_malformed_json_is_400(api, acme):
    assert post(api, "/api/v1/discounts", "{nope").status_code == 400


def test_revoke_and_extend_through_the_api(api, acme):
    with travel(2026, 2, 10):
        created = post(api, "/api/v1/discounts", DISCOUNT_EXAMPLE).json()
        extended = post(
            api, f"/api/v1/discounts/{created['id']}/extend", {"end_date": "2026-06-30", "reason": "renewal"}
        )
        assert extended.status_code == 200 and extended.json()["end_date"] == "2026-06-30"
        assert post(api, f"/api/v1/discounts/{created['id']}/revoke", {"reason": ""}).status_code == 422
        revoked = post(api, f"/api/v1/discounts/{created['id']}/revoke", {"reason": "upgraded"})
    assert revoked.json()["status"] == "revoked" and revoked.json()["revoke_reason"] == "upgraded"


def test_overrides_through_the_api(api, acme):
    with travel(2026, 2, 10):
        response = post(
            api,
            "/api/v1/price-overrides",
            {
                "contract": "C-1001",
                "price_line": "L1",
                "rate": "900.00",
                "start_date": "2026-03-01",
                "end_date": "2026-03-31",
                "reason": "promo",
            },
        )
        missing_end = post(
            api,
            "/api/v1/price-overrides",
            {"contract": "C-1001", "price_line": "L1", "rate": "900.00", "start_date": "2026-03-01", "reason": "promo"},
        )
    assert response.status_code == 201 and response.json()["rate"] == "900.00"
    assert missing_end.status_code == 422 and "end_date" in missing_end.json()["error"]["fields"]


def test_another_tenants_key_sees_nothing(api, acme, tenant_b):
    with travel(2026, 2, 10):
        created = post(api, "/api/v1/discounts", DISCOUNT_EXAMPLE).json()
    other = Client(HTTP_HOST=tenant_b.host, HTTP_AUTHORIZATION=f"Bearer {tenant_b.api_key}")
    assert other.get(f"/api/v1/discounts/{created['id']}").status_code == 404
    assert api.get("/api/v1/discounts", HTTP_AUTHORIZATION="Bearer nope").status_code == 401


def test_openapi_documents_the_endpoints(api):
    paths = api.get("/api/v1/openapi.json").json()["paths"]
    assert {"/api/v1/discounts", "/api/v1/credits", "/api/v1/price-overrides"} <= set(paths)
