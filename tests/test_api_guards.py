"""Hostile and sloppy input at every door gets a clear 4xx in the API's one error shape, never a 500.

Each case here once answered 500 (or silently took a wrong value): Unicode digits and endless
digit strings in ids, NUL characters, offsets past bigint, JSON nested thousands deep, bodies over
Django's form-sized limit, dates in year 1 or 9999, lax number coercions, hosts in capitals.
"""

from __future__ import annotations

import json

import pytest
from django.db import connection
from django.test import Client
from django_tenants.utils import schema_context

from contracts.models import Contract, Customer
from contracts.tests.factories import contract_payload, customer_payload
from tests.helpers import client_for

pytestmark = pytest.mark.django_db


@pytest.fixture
def api(tenant_a) -> Client:
    return Client(
        HTTP_HOST=tenant_a.host, HTTP_AUTHORIZATION=f"Bearer {tenant_a.api_key}", raise_request_exception=False
    )


def post(client, path, body, content_type="application/json"):
    data = body if isinstance(body, (str, bytes)) else json.dumps(body)
    return client.post(path, data, content_type=content_type)


def error(response, status: int) -> dict:
    assert response.status_code == status, (response.status_code, response.content[:500])
    assert response["Content-Type"].startswith("application/json"), response["Content-Type"]
    body = response.json()["error"]
    assert body["code"] and body["message"]
    return body


@pytest.fixture
def acme_contract(api):
    assert post(api, "/api/v1/customers", customer_payload()).status_code == 201
    response = post(api, "/api/v1/contracts", contract_payload())
    assert response.status_code == 201, response.content
    return response.json()


def rows(tenant):
    with schema_context(tenant.schema):
        counts = (Customer.objects.count(), Contract.objects.count())
    connection.set_schema_to_public()
    return counts


# ----------------------------------------------------------------------------- ids in paths

ODD_IDS = ["²", "٣", "1" * 4400, str(2**63), "99999999999999999999", "0", "-1", "1_0", "%00"]


@pytest.mark.parametrize("raw", ODD_IDS)
@pytest.mark.parametrize(
    "path",
    [
        "/api/v1/invoices/{}",
        "/api/v1/invoices/{}/pdf",
        "/api/v1/discounts/{}",
        "/api/v1/credits/{}",
        "/api/v1/contracts/{}",
        "/api/v1/customers/{}",
        "/api/v1/runs/{}",
    ],
)
def test_an_id_that_cannot_exist_is_a_json_404(api, path, raw):
    error(api.get(path.format(raw)), 404)


@pytest.mark.parametrize("raw", ["²", "1" * 4400, str(2**63), "99999999999999999999"])
@pytest.mark.parametrize(
    "path",
    ["/contracts/{}/", "/customers/{}/", "/billing/invoices/{}/", "/discounts/discount/{}/", "/renewals/{}/decide/"],
)
def test_ui_pages_answer_404_for_ids_that_cannot_exist(tenant_a, path, raw):
    client = client_for(tenant_a, email=tenant_a.users["admin"])
    assert client.get(path.format(raw)).status_code == 404


@pytest.mark.parametrize(
    "query", ["customer=²", "customer=" + "1" * 4400, "ending=²", "ending=" + "9" * 30, "issuing_entity=" + "9" * 25]
)
def test_ui_list_filters_ignore_numbers_that_are_not_numbers(tenant_a, query):
    client = client_for(tenant_a, email=tenant_a.users["admin"])
    assert client.get(f"/contracts/?{query}").status_code == 200


def test_ui_month_far_in_the_future_falls_back_to_this_month(tenant_a):
    client = client_for(tenant_a, email=tenant_a.users["finance"])
    assert client.get("/insights/billed/?month=9999-12").status_code == 200


# ----------------------------------------------------------------------------- list filters


@pytest.mark.parametrize(
    "query, field",
    [
        ("offset=9223372036854775808", "offset"),
        ("offset=" + "9" * 4400, "offset"),
        ("limit=1_0", "limit"),
        ("limit=٣", "limit"),
        ("limit=1.0", "limit"),
        ("limit=%20", "limit"),
        ("status=bogus", "status"),
        ("issued_from=0", "issued_from"),
        ("issued_from=9999-01-01", "issued_from"),
        ("customer=" + "x" * 300, "customer"),
    ],
)
def test_list_filters_refuse_lax_and_unknown_values_naming_them(api, query, field):
    body = error(api.get(f"/api/v1/invoices?{query}"), 422)
    assert field in body["fields"], body


@pytest.mark.parametrize(
    "path",
    [
        "/api/v1/customers?status=sleeping",
        "/api/v1/customers?currency=XXX",
        "/api/v1/contracts?status=alive",
        "/api/v1/discounts?status=gone",
        "/api/v1/renewal-alerts?status=maybe",
        "/api/v1/leakage-findings?rule=L99",
        "/api/v1/forecast?months=1_2",
        "/api/v1/contract-value?offset=-1",
    ],
)
def test_unknown_enum_filter_values_are_refused(api, path):
    error(api.get(path), 422)


def test_a_leakage_rule_filter_ignores_case(api):
    assert api.get("/api/v1/leakage-findings?rule=l2").status_code == 200


# ----------------------------------------------------------------------------- NUL characters


@pytest.mark.parametrize(
    "path, field",
    [
        ("/api/v1/customers?q=a%00b", "q"),
        ("/api/v1/contracts?customer=%00", "customer"),
        ("/api/v1/invoices?contract=C%001", "contract"),
    ],
)
def test_nul_in_a_filter_is_a_422_naming_it(api, path, field):
    assert field in error(api.get(path), 422)["fields"]


def test_nul_in_a_path_is_a_404(api):
    error(api.get("/api/v1/contracts/C-1%00"), 404)


@pytest.mark.parametrize(
    "path, body, field",
    [
        ("/api/v1/customers", customer_payload(legal_name="Acme\x00"), "legal_name"),
        ("/api/v1/customers", customer_payload(address={"city": "Lon\x00don"}), "address.city"),
        (
            "/api/v1/usage-events",
            [
                {
                    "transaction_id": "t1",
                    "contract": "C-1001",
                    "metric": "api_calls",
                    "quantity": "1",
                    "timestamp": "2026-01-20T10:00:00Z",
                    "properties": {"k\x00": "v"},
                }
            ],
            "0.properties.k\\u0000",
        ),
        ("/api/v1/delivery-events", {"kind": "milestone_completed", "external_id": "x\x00"}, "external_id"),
    ],
)
def test_nul_in_a_body_is_a_422_naming_the_field_and_saves_nothing(api, tenant_a, path, body, field):
    before = rows(tenant_a)
    assert field in error(post(api, path, body), 422)["fields"]
    assert rows(tenant_a) == before


def test_nul_in_a_ui_query_is_a_400(tenant_a):
    client = client_for(tenant_a, email=tenant_a.users["admin"])
    assert client.get("/contracts/?q=a%00b").status_code == 400
    assert client.get("/billing/invoices/?contract=%00").status_code == 400


# ----------------------------------------------------------------------------- bodies


def test_a_json_endpoint_refuses_other_content_types(api):
    body = error(post(api, "/api/v1/customers", json.dumps(customer_payload()), content_type="text/plain"), 415)
    assert "application/json" in body["message"]
    error(post(api, "/api/v1/usage-events", "a=1", content_type="application/x-www-form-urlencoded"), 415)


def test_json_with_a_charset_is_json(api):
    response = post(api, "/api/v1/customers", customer_payload(), content_type="application/json; charset=utf-8")
    assert response.status_code == 201, response.content


@pytest.mark.parametrize("depth", [40, 5000, 200_000])
@pytest.mark.parametrize("path", ["/api/v1/usage-events", "/api/v1/time-entries", "/api/v1/delivery-events"])
def test_deeply_nested_json_is_refused(api, path, depth):
    assert "nested" in error(post(api, path, "[" * depth + "]" * depth), 400)["message"]


def test_deeply_nested_properties_are_refused(api):
    nested: dict = {}
    for _ in range(50):
        nested = {"n": nested}
    event = {"transaction_id": "t", "contract": "C-1", "metric": "m", "quantity": "1", "properties": nested}
    error(post(api, "/api/v1/usage-events", [event]), 400)
    error(post(api, "/api/v1/discounts", {"contract": "C-1", "reason": nested}), 400)


@pytest.mark.parametrize("text", ["{", "[1,]", "NaN", '{"a": Infinity}', b"\xff\xfe"])
def test_malformed_json_is_a_400(api, text):
    assert "Malformed JSON" in error(post(api, "/api/v1/customers", text), 400)["message"]


def test_a_body_over_the_limit_is_a_json_413(api, settings):
    settings.API_MAX_BODY_BYTES = 1000
    body = error(post(api, "/api/v1/usage-events", [{"transaction_id": "x" * 2000}]), 413)
    assert body["code"] == "too_large"


def test_a_full_batch_with_4kb_of_properties_per_event_is_accepted(api, acme_contract):
    """1,000 events × 4 KB of properties (the documented limits) is ~4.5 MB: over Django's default
    2.5 MB form limit, within the API's."""
    events = [
        {
            "transaction_id": f"big-{i}",
            "contract": "C-1001",
            "metric": "api_calls",
            "quantity": "1",
            "timestamp": "2026-01-20T10:00:00Z",
            "properties": {"blob": "x" * 4080},
        }
        for i in range(1000)
    ]
    payload = json.dumps(events)
    assert len(payload) > 4_000_000
    response = post(api, "/api/v1/usage-events", payload)
    assert response.status_code == 202, response.content[:300]
    assert response.json()["accepted"] == 1000


# ----------------------------------------------------------------------------- error shape


def test_unrouted_api_paths_are_a_json_404(api):
    error(api.get("/api/v1/no-such-thing"), 404)
    error(api.get("/api/v1/contracts/C-1/nope/deeper"), 404)


def test_a_method_the_endpoint_does_not_take_is_a_json_405_with_allow(api):
    response = api.delete("/api/v1/customers")
    error(response, 405)
    assert "GET" in response["Allow"] and "POST" in response["Allow"]


def test_a_bug_is_a_json_500_and_logged(api, monkeypatch, caplog):
    import contracts.api

    def boom(**kwargs):
        raise RuntimeError("simulated bug")

    monkeypatch.setattr(contracts.api, "customer_list", boom)
    body = error(api.get("/api/v1/customers"), 500)
    assert body["code"] == "server_error" and "simulated" not in body["message"]
    assert any("simulated bug" in str(r.exc_info) for r in caplog.records if r.exc_info)


# ----------------------------------------------------------------------------- strict values


@pytest.mark.parametrize(
    "as_of, words",
    [(0, "YYYY-MM-DD"), ("0001-01-01", "outside"), ("9999-12-31", "outside"), ("٢٠٢٦-٠١-٠١", "YYYY-MM-DD")],
)
def test_a_run_as_of_must_be_a_date_in_the_window(api, as_of, words):
    body = error(post(api, "/api/v1/runs", {"as_of": as_of}), 422)
    assert any(words in m for m in body["fields"]["as_of"]), body


def test_run_async_must_be_a_boolean(api):
    assert "async" in error(post(api, "/api/v1/runs", {"as_of": "2026-01-01", "async": "yes"}), 422)["fields"]


@pytest.mark.parametrize(
    "changes, field, words",
    [
        ({"start_date": "9999-01-01", "end_date": None, "auto_renew": False}, "start_date", "outside"),
        ({"start_date": "0001-01-01"}, "start_date", "outside"),
        ({"end_date": "2101-01-01"}, "end_date", "outside"),
        ({"payment_terms_days": "٣٠"}, "payment_terms_days", "whole number"),
        ({"payment_terms_days": "²"}, "payment_terms_days", "whole number"),
        ({"payment_terms_days": "1_0"}, "payment_terms_days", "whole number"),
        ({"currency": 5}, "currency", "ISO 4217"),
        ({"currency": ["USD"]}, "currency", "ISO 4217"),
        ({"customer": {"id": 1}}, "customer", "string"),
        ({"customer": "acme\x01ltd"}, "customer", "control"),
        ({"customer": "acme\tltd"}, "customer", "No customer"),
    ],
)
def test_contract_fields_are_strict_and_dates_bounded(api, tenant_a, changes, field, words):
    post(api, "/api/v1/customers", customer_payload())
    before = rows(tenant_a)
    body = error(post(api, "/api/v1/contracts", contract_payload(**changes)), 422)
    assert any(words in m for m in body["fields"].get(field, [])), body
    assert rows(tenant_a) == before


def test_a_price_line_amount_in_arabic_indic_digits_is_refused(api):
    post(api, "/api/v1/customers", customer_payload())
    payload = contract_payload()
    payload["price_lines"][0]["amount"] = "٣١٠٠"
    assert "price_lines.0.amount" in error(post(api, "/api/v1/contracts", payload), 422)["fields"]


def test_a_contract_as_of_outside_the_window_is_refused(api, acme_contract):
    assert "as_of" in error(api.get("/api/v1/contracts/C-1001?as_of=9999-01-01"), 422)["fields"]
    assert api.get("/api/v1/contracts/C-1001?as_of=2026-03-01").status_code == 200


def test_a_credit_too_large_says_so(api, acme_contract):
    body = error(
        post(
            api,
            "/api/v1/credits",
            {
                "customer": "acme-ltd",
                "amount": "10000000000000",
                "currency": "USD",
                "reason": "x",
                "expires_on": "2026-12-31",
            },
        ),
        422,
    )
    assert any("too large" in m for m in body["fields"]["amount"]), body


@pytest.mark.parametrize(
    "changes, field",
    [
        ({"start_date": "1900-01-01"}, "start_date"),
        ({"end_date": "9999-12-31"}, "end_date"),
        ({"value": "1_0"}, "value"),
        ({"value": "٣"}, "value"),
        ({"max_cycles": "1_0", "end_date": None}, "max_cycles"),
        ({"approved_by": ""}, "approved_by"),
        ({"contract": 2**70}, "contract"),
    ],
)
def test_discount_fields_are_strict_and_dates_bounded(api, acme_contract, changes, field):
    payload = {
        "contract": "C-1001",
        "kind": "percentage",
        "value": "10",
        "start_date": "2026-01-01",
        "end_date": "2026-03-31",
        "reason": "launch",
        **changes,
    }
    payload = {k: v for k, v in payload.items() if v is not None}
    assert field in error(post(api, "/api/v1/discounts", payload), 422)["fields"]


def test_a_discount_form_date_outside_the_window_is_a_form_error(tenant_a):
    from datetime import date

    from discounts.services.exceptions import discount_create

    with schema_context(tenant_a.schema):
        from django.core.exceptions import ValidationError

        customer = Customer.objects.create(external_id="window", legal_name="Window Ltd", currency="USD")
        with pytest.raises(ValidationError) as caught:
            discount_create(
                kind="percentage",
                value=10,
                start_date=date(1, 1, 1),
                end_date=date(9999, 1, 1),
                reason="typo",
                customer=customer,
                approved_label="test",
            )
    connection.set_schema_to_public()
    assert set(caught.value.message_dict) >= {"start_date", "end_date"}


# ----------------------------------------------------------------------------- hosts


@pytest.mark.parametrize("transform", [str.upper, str.title, lambda h: h + "."])
def test_host_names_match_case_insensitively(tenant_a, transform):
    client = Client(HTTP_HOST=transform(tenant_a.host), HTTP_AUTHORIZATION=f"Bearer {tenant_a.api_key}")
    response = client.get("/api/v1/me")
    assert response.status_code == 200 and response.json()["tenant"] == tenant_a.slug


@pytest.mark.parametrize("value", ["²", "9" * 40, "99999999999999999", "0001-01-01", "9999-12-31T00:00:00Z"])
def test_crm_dates_that_cannot_be_dates_are_ignored(value):
    from integrations.services.deals import _day

    assert _day(value) is None


def test_crm_dates_in_milliseconds_and_iso_are_read():
    from datetime import date

    from integrations.services.deals import _day

    assert _day("1772323200000") == date(2026, 3, 1)
    assert _day("2026-03-01T00:00:00Z") == date(2026, 3, 1)
