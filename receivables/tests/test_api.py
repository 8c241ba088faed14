"""POST/GET /api/v1/payments, refunds, /ar-aging and /dso (DESIGN.md §5.1): shapes, idempotency,
and bad input answered 4xx naming the field with nothing stored."""

from __future__ import annotations

import json
from datetime import date
from decimal import Decimal

import pytest
from django.test import Client

from receivables.models import Allocation, Payment
from receivables.tests.helpers import customer, issued_invoice, reload

pytestmark = pytest.mark.django_db
D = Decimal


@pytest.fixture
def api(in_tenant_a):
    return Client(HTTP_HOST=in_tenant_a.host, HTTP_AUTHORIZATION=f"Bearer {in_tenant_a.api_key}")


def post(api, path, body):
    return api.post(path, data=json.dumps(body), content_type="application/json")


@pytest.fixture
def book(in_tenant_a):
    cust = customer(external_id="acme-ltd")
    first = issued_invoice(cust, "1000.00", issued=date(2026, 1, 5))
    second = issued_invoice(cust, "700.00", issued=date(2026, 2, 1))
    return cust, first, second


def test_post_a_payment_allocates_oldest_first_and_reads_back_in_the_design_shape(api, book):
    _cust, first, second = book
    response = post(
        api,
        "/api/v1/payments",
        {
            "customer": "acme-ltd",
            "amount": "1500.00",
            "currency": "USD",
            "received_on": "2026-03-10",
            "method": "bank_transfer",
            "reference": first.number,
            "external_id": "bank-7781",
        },
    )
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["unapplied"] == "0.00" and body["allocated"] == "1500.00"
    assert [(a["invoice"], a["amount"]) for a in body["allocations"]] == [
        (first.number, "1000.00"),
        (second.number, "500.00"),
    ]

    again = post(
        api,
        "/api/v1/payments",
        {
            "customer": "acme-ltd",
            "amount": "1500.00",
            "currency": "USD",
            "received_on": "2026-03-10",
            "method": "bank_transfer",
            "external_id": "bank-7781",
        },
    )
    assert again.status_code == 200 and again.json()["id"] == body["id"]

    invoice = api.get(f"/api/v1/invoices/{second.pk}").json()
    assert invoice["amount_paid"] == "500.00" and invoice["amount_open"] == "200.00"
    assert invoice["payment_status"] in ("partially_paid", "overdue") and invoice["paid_on"] is None
    assert api.get(f"/api/v1/invoices/{first.pk}").json()["paid_on"] == "2026-03-10"

    refund = post(api, f"/api/v1/payments/{body['id']}/refunds", {"amount": "300.00", "reason": "Goodwill"})
    assert refund.status_code == 201, refund.content
    assert api.get(f"/api/v1/invoices/{second.pk}").json()["amount_open"] == "500.00"
    listed = api.get("/api/v1/payments?customer=acme-ltd").json()
    assert listed["count"] == 1 and listed["items"][0]["refunded"] == "300.00"
    paid = api.get("/api/v1/invoices?payment_status=paid").json()
    assert [i["number"] for i in paid["items"]] == [first.number]


BASE = {"customer": "acme-ltd", "amount": "100.00", "currency": "USD", "received_on": "2026-03-10", "method": "check"}


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"amount": "-5.00"}, "amount"),
        ({"amount": "0"}, "amount"),
        ({"amount": "1.005"}, "amount"),
        ({"currency": "XXX"}, "currency"),
        ({"customer": "nobody"}, "customer"),
        ({"method": "cash"}, "method"),
        ({"received_on": "2031-01-01"}, "received_on"),
        ({"received_on": "10/03/2026"}, "received_on"),
        ({"allocations": [{"invoice": "INV-NOPE", "amount": "10.00"}]}, "allocations.0.invoice"),
        ({"allocations": [{"invoice": "@first", "amount": "0"}]}, "allocations.0.amount"),
        (
            {"allocations": [{"invoice": "@first", "amount": "100.00"}, {"invoice": "@second", "amount": "50.00"}]},
            "allocations",
        ),
        ({"amount": "5000.00", "allocations": [{"invoice": "@second", "amount": "700.01"}]}, "allocations.0.amount"),
        ({"currency": "EUR", "allocations": [{"invoice": "@first", "amount": "10.00"}]}, "allocations.0.invoice"),
        ({"surprise": 1}, "surprise"),
    ],
)
def test_bad_payments_are_refused_naming_the_field_and_nothing_is_stored(api, book, change, field):
    _cust, first, second = book
    body = {**BASE, **change}
    for item in body.get("allocations", []):
        if item.get("invoice") == "@first":
            item["invoice"] = first.number
        elif item.get("invoice") == "@second":
            item["invoice"] = second.number
    response = post(api, "/api/v1/payments", body)
    assert response.status_code == 422, response.content
    assert field in response.json()["error"]["fields"], response.json()
    assert not Payment.objects.exists() and not Allocation.objects.exists()
    assert reload(first).amount_paid == 0 and reload(second).amount_paid == 0


def test_malformed_json_and_a_refund_over_the_payment_are_4xx(api, book):
    assert api.post("/api/v1/payments", data="{nope", content_type="application/json").status_code == 400
    created = post(api, "/api/v1/payments", {**BASE, "amount": "50.00"}).json()
    over = post(api, f"/api/v1/payments/{created['id']}/refunds", {"amount": "50.01", "reason": "x"})
    assert over.status_code == 422 and "amount" in over.json()["error"]["fields"]
    no_reason = post(api, f"/api/v1/payments/{created['id']}/refunds", {"amount": "5.00"})
    assert no_reason.status_code == 422 and "reason" in no_reason.json()["error"]["fields"]
    assert api.get("/api/v1/payments/999999").status_code == 404
    assert post(api, "/api/v1/payments/abc/refunds", {"amount": "1", "reason": "x"}).status_code == 404


def test_ar_aging_and_dso_answer_in_the_design_shape(api, book):
    post(api, "/api/v1/payments", {**BASE, "amount": "400.00"})
    aging = api.get("/api/v1/ar-aging?as_of=2026-03-31").json()
    usd = aging[0]
    assert usd["currency"] == "USD" and usd["total"] == "1300.00"
    assert set(usd["buckets"]) == {"current", "1_30", "31_60", "61_90", "over_90"}
    assert usd["customers"][0]["customer"] == "acme-ltd"
    assert api.get("/api/v1/ar-aging?as_of=2999-01-01").status_code == 422
    assert api.get("/api/v1/ar-aging?as_of=nope").status_code == 422
    dso = api.get("/api/v1/dso?months=3").json()
    assert {"month", "currency", "ar_end", "credit_sales", "days", "dso", "average_days_to_pay"} <= set(dso[0])
    assert api.get("/api/v1/dso?months=99").status_code == 422


def test_another_tenants_key_sees_no_payment(api, book, tenant_b):
    created = post(api, "/api/v1/payments", BASE).json()
    other = Client(HTTP_HOST=tenant_b.host, HTTP_AUTHORIZATION=f"Bearer {tenant_b.api_key}")
    assert other.get(f"/api/v1/payments/{created['id']}").status_code == 404
    assert other.get("/api/v1/payments").json()["count"] == 0
    assert other.get("/api/v1/ar-aging?as_of=2026-03-31").json() == []
