"""GET /api/v1/forecast and /api/v1/contract-value: money as decimal strings per currency, 422 on bad months."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest
import time_machine
from django.test import Client

from insights.tests.helpers import contract, discount

pytestmark = pytest.mark.django_db
D = Decimal


@pytest.fixture
def api(in_tenant_a):
    return Client(HTTP_HOST=in_tenant_a.host, HTTP_AUTHORIZATION=f"Bearer {in_tenant_a.api_key}")


@pytest.fixture
def book(in_tenant_a):
    usd = contract(
        {"amount": D("3100.00"), "timing": "advance", "line_ref": "RET"}, start=date(2026, 1, 1), end=date(2026, 12, 31)
    )
    discount(usd, value="10", end=date(2026, 3, 31))
    jpy = contract(
        {"amount": D("100000"), "timing": "advance", "line_ref": "RET"},
        start=date(2026, 1, 1),
        end=date(2026, 12, 31),
        currency="JPY",
    )
    return usd, jpy


@time_machine.travel("2026-02-10 12:00:00+00:00", tick=False)
def test_forecast_by_month_kind_and_contract(api, book):
    usd, jpy = book
    body = api.get("/api/v1/forecast?months=2&items=true").json()
    assert body["as_of"] == "2026-02-10"
    march, april = body["months"]
    assert march["month"] == "2026-03"
    assert march["totals"] == [
        {"currency": "JPY", "gross": "100000", "discount": "0", "net": "100000"},
        {"currency": "USD", "gross": "3100.00", "discount": "310.00", "net": "2790.00"},
    ]
    assert march["by_kind"][1] == {
        "currency": "USD",
        "kind": "recurring",
        "gross": "3100.00",
        "discount": "310.00",
        "net": "2790.00",
    }
    assert april["totals"][1]["net"] == "3100.00"
    assert body["totals"] == [
        {"currency": "JPY", "gross": "200000", "discount": "0", "net": "200000"},
        {"currency": "USD", "gross": "6200.00", "discount": "310.00", "net": "5890.00"},
    ]
    assert {r["contract"] for r in body["by_contract"]} == {usd.number, jpy.number}
    assert len(body["items"]) == 4 and body["items"][0]["billing_date"] == "2026-03-01"


@time_machine.travel("2026-02-10 12:00:00+00:00", tick=False)
def test_forecast_narrowed_to_a_contract(api, book):
    usd, _ = book
    body = api.get(f"/api/v1/forecast?months=1&contract={usd.number}").json()
    assert [t["currency"] for t in body["totals"]] == ["USD"] and body["items"] is None


@pytest.mark.parametrize("months", ["0", "25", "abc", "-1"])
def test_months_outside_1_to_24_is_a_422_naming_the_field(api, months):
    response = api.get(f"/api/v1/forecast?months={months}")
    assert response.status_code == 422
    assert response.json()["error"]["code"] == "validation_error"
    assert "months" in response.json()["error"]["fields"]


def test_the_api_needs_a_key(in_tenant_a):
    response = Client(HTTP_HOST=in_tenant_a.host).get("/api/v1/forecast")
    assert response.status_code == 401


@time_machine.travel("2026-02-10 12:00:00+00:00", tick=False)
def test_contract_value_per_contract_and_total_per_currency(api, book):
    usd, _jpy = book
    body = api.get("/api/v1/contract-value").json()
    assert body["count"] == 2
    totals = {t["currency"]: t for t in body["totals"]}
    assert totals["USD"]["committed"] == "37200.00" and totals["JPY"]["committed"] == "1200000"
    # 31 + 10 of 28 days: 3,100 + 1,107.14.
    assert totals["USD"]["recognized"] == "4207.14" and totals["USD"]["unbilled_receivable"] == "4207.14"
    item = next(i for i in body["items"] if i["contract"] == usd.number)
    assert item["unearned"] == "32992.86"
