"""Revoke, end early and extend discounts, credits and custom rates through the API, with an effective date."""

from __future__ import annotations

import json

import pytest
from django.test import Client

from discounts.models import Credit, Discount, ExceptionEvent, PriceOverride
from discounts.tests.conftest import travel
from discounts.tests.helpers import retainer_contract

pytestmark = pytest.mark.django_db


@pytest.fixture
def api(in_tenant_a):
    return Client(HTTP_HOST=in_tenant_a.host, HTTP_AUTHORIZATION=f"Bearer {in_tenant_a.api_key}")


def post(api, path, body):
    return api.post(path, json.dumps(body), content_type="application/json")


@pytest.fixture
def granted(api, in_tenant_a):
    contract = retainer_contract(number="C-7001")
    with travel(2026, 2, 10):
        discount = post(
            api,
            "/api/v1/discounts",
            {
                "contract": "C-7001",
                "kind": "percentage",
                "value": "10",
                "start_date": "2026-01-01",
                "end_date": "2026-12-31",
                "reason": "launch",
            },
        ).json()
        credit = post(
            api,
            "/api/v1/credits",
            {
                "customer": contract.customer.external_id,
                "amount": "500.00",
                "currency": "USD",
                "expires_on": "2026-12-31",
                "reason": "SLA",
            },
        ).json()
        override = post(
            api,
            "/api/v1/price-overrides",
            {
                "contract": "C-7001",
                "price_line": "L1",
                "rate": "900.00",
                "start_date": "2026-03-01",
                "end_date": "2026-08-31",
                "reason": "pilot",
            },
        ).json()
    return {"discounts": discount, "credits": credit, "price-overrides": override}


def test_revoking_with_a_later_effective_date_ends_it_the_day_before(api, granted):
    with travel(2026, 4, 10):
        response = post(
            api,
            f"/api/v1/discounts/{granted['discounts']['id']}/revoke",
            {"reason": "contract renegotiated", "effective_date": "2026-05-01"},
        )
    assert response.status_code == 200, response.content
    body = response.json()
    assert (body["status"], body["end_date"]) == ("active", "2026-04-30")
    event = ExceptionEvent.objects.filter(discount_id=body["id"]).latest("id")
    assert event.action == "ended_early" and event.detail["old_end"] == "2026-12-31"


def test_revoking_without_a_date_revokes_at_once(api, granted):
    with travel(2026, 4, 10):
        body = post(api, f"/api/v1/discounts/{granted['discounts']['id']}/revoke", {"reason": "error"}).json()
    assert body["status"] == "revoked" and body["revoke_reason"] == "error"


def test_a_revocation_cannot_take_effect_in_the_past(api, granted):
    with travel(2026, 4, 10):
        response = post(
            api,
            f"/api/v1/credits/{granted['credits']['id']}/revoke",
            {"reason": "late", "effective_date": "2026-04-01"},
        )
    assert response.status_code == 422 and "effective_date" in response.json()["error"]["fields"]
    assert Credit.objects.get(pk=granted["credits"]["id"]).status == "active"


@pytest.mark.parametrize(
    "kind, field", [("discounts", "end_date"), ("credits", "expires_on"), ("price-overrides", "end_date")]
)
def test_ending_early_moves_the_end_of_each_kind(api, granted, kind, field):
    with travel(2026, 4, 10):
        response = post(
            api, f"/api/v1/{kind}/{granted[kind]['id']}/end", {"reason": "scope cut", "end_date": "2026-06-30"}
        )
    assert response.status_code == 200, response.content
    assert response.json()[field] == "2026-06-30"


@pytest.mark.parametrize(
    "end_date, words",
    [("2026-04-01", "in the past"), ("2027-01-31", "extend it"), ("9999-01-01", "outside")],
)
def test_ending_early_refuses_dates_that_do_not_bring_the_end_forward(api, granted, end_date, words):
    with travel(2026, 4, 10):
        response = post(api, f"/api/v1/credits/{granted['credits']['id']}/end", {"reason": "x", "end_date": end_date})
    assert response.status_code == 422, response.content
    assert any(words in m for m in response.json()["error"]["fields"]["end_date"]), response.json()
    assert Credit.objects.get(pk=granted["credits"]["id"]).expires_on.isoformat() == "2026-12-31"


def test_custom_rates_and_credits_can_be_revoked_and_read(api, granted):
    override_id = granted["price-overrides"]["id"]
    assert api.get(f"/api/v1/price-overrides/{override_id}").json()["rate"] == "900.00"
    with travel(2026, 4, 10):
        assert post(api, f"/api/v1/price-overrides/{override_id}/revoke", {"reason": "x"}).json()["status"] == "revoked"
        assert (
            post(api, f"/api/v1/credits/{granted['credits']['id']}/revoke", {"reason": "x"}).json()["status"]
            == "revoked"
        )
    assert PriceOverride.objects.get(pk=override_id).status == "revoked"
    assert Discount.objects.get(pk=granted["discounts"]["id"]).status == "active"
