"""The public API for customers and contracts (DESIGN.md §5): exact shapes, refs, errors, nothing half-written."""

from __future__ import annotations

import copy
import json

import pytest

from contracts.models import Contract, ContractVersion, Customer, PriceLine
from contracts.tests.factories import contract_payload, customer_payload

pytestmark = pytest.mark.django_db


def post(client, path, body):
    return client.post(path, json.dumps(body), content_type="application/json")


def patch(client, path, body):
    return client.patch(path, json.dumps(body), content_type="application/json")


@pytest.fixture
def acme(api):
    response = post(api, "/api/v1/customers", customer_payload())
    assert response.status_code == 201, response.content
    return response.json()


def counts(in_a):
    with in_a():
        return (
            Customer.objects.count(),
            Contract.objects.count(),
            ContractVersion.objects.count(),
            PriceLine.objects.count(),
        )


# ----------------------------------------------------------------------------- round trip


def test_a_contract_posted_in_the_design_shape_reads_back_unchanged(api, acme):
    posted = contract_payload()
    created = post(api, "/api/v1/contracts", posted)
    assert created.status_code == 201, created.content
    read = api.get("/api/v1/contracts/C-1001").json()
    assert {key: read[key] for key in posted} == posted
    assert read["status"] == "active" and read["id"] == created.json()["id"]
    assert read["current_version"]["version"] == 1
    assert read["current_version"]["line_refs"] == ["L1", "L2", "L3", "L4", "L5"]


def test_the_read_contract_posted_back_creates_the_same_contract(api, acme):
    post(api, "/api/v1/contracts", contract_payload())
    read = api.get("/api/v1/contracts/C-1001").json()
    again = dict(read, number="C-1002")
    created = post(api, "/api/v1/contracts", again)
    assert created.status_code == 201, created.content
    copy_read = api.get("/api/v1/contracts/C-1002").json()
    for key in contract_payload():
        if key != "number":
            assert copy_read[key] == read[key], key


def test_money_keeps_the_digits_that_were_sent(api, acme):
    payload = contract_payload(
        price_lines=[
            {
                "kind": "usage",
                "description": "API calls",
                "metric": "api_calls",
                "frequency": "monthly",
                "charge_model": "per_unit",
                "unit_amount": "0.0015",
                "free_units": "1000",
                "minimum_commitment": "250",
            },
            {"kind": "fixed_fee", "description": "Setup", "amount": "3100", "bill_on": None},
        ]
    )
    post(api, "/api/v1/contracts", payload)
    lines = api.get("/api/v1/contracts/C-1001").json()["price_lines"]
    assert lines[0]["unit_amount"] == "0.0015" and lines[0]["minimum_commitment"] == "250"
    assert lines[1]["amount"] == "3100"


def test_json_integers_are_exact_money_but_fractions_as_numbers_are_refused(api, acme):
    ok = contract_payload(price_lines=[{"kind": "fixed_fee", "description": "Setup", "amount": 5000}])
    assert post(api, "/api/v1/contracts", ok).status_code == 201
    assert api.get("/api/v1/contracts/C-1001").json()["price_lines"][0]["amount"] == "5000"
    bad = contract_payload(
        number="C-1002", price_lines=[{"kind": "fixed_fee", "description": "Setup", "amount": 5000.5}]
    )
    response = post(api, "/api/v1/contracts", bad)
    assert response.status_code == 422
    assert "decimal strings" in response.json()["error"]["fields"]["price_lines.0.amount"][0]


@pytest.mark.parametrize(
    "kind_line",
    [
        {
            "kind": "usage",
            "description": "Per unit",
            "metric": "calls",
            "frequency": "monthly",
            "charge_model": "per_unit",
            "unit_amount": "0.01",
            "free_units": "0",
            "minimum_commitment": "0",
        },
        {
            "kind": "usage",
            "description": "Volume",
            "metric": "seats",
            "frequency": "monthly",
            "charge_model": "volume",
            "free_units": "0",
            "minimum_commitment": "100.00",
            "tiers": [
                {"up_to": "10", "unit_amount": "12.00", "flat_amount": "0"},
                {"up_to": None, "unit_amount": "10.00", "flat_amount": "5.00"},
            ],
        },
        {
            "kind": "usage",
            "description": "Package",
            "metric": "sms",
            "frequency": "monthly",
            "charge_model": "package",
            "package_size": "100",
            "amount": "10.00",
            "free_units": "50",
            "minimum_commitment": "0",
        },
        {
            "kind": "usage",
            "description": "Percent",
            "metric": "payments",
            "frequency": "monthly",
            "charge_model": "percentage",
            "rate": "2.9",
            "fixed_amount": "0.30",
            "per_transaction_min": "0.50",
            "per_transaction_max": "20.00",
            "free_amount": "1000.00",
            "free_units": "10",
            "minimum_commitment": "0",
        },
        {
            "kind": "usage",
            "description": "Graduated %",
            "metric": "gmv",
            "frequency": "quarterly",
            "charge_model": "graduated_percentage",
            "free_units": "0",
            "minimum_commitment": "0",
            "tiers": [
                {"up_to": "100000", "rate": "5", "flat_amount": "0"},
                {"up_to": None, "rate": "2.5", "flat_amount": "0"},
            ],
        },
        {
            "kind": "milestone",
            "description": "Half",
            "amount": None,
            "reference": "",
            "expected_date": None,
            "percent_of_fixed_fee": "50",
        },
    ],
)
def test_every_charge_model_round_trips(api, acme, kind_line):
    lines = [{"kind": "fixed_fee", "description": "Project", "amount": "10000.00", "bill_on": None}, kind_line]
    assert post(api, "/api/v1/contracts", contract_payload(price_lines=lines)).status_code == 201
    assert api.get("/api/v1/contracts/C-1001").json()["price_lines"] == lines


def test_a_contract_can_be_read_by_id_or_number_and_unknown_refs_are_404(api, acme):
    created = post(api, "/api/v1/contracts", contract_payload()).json()
    assert api.get(f"/api/v1/contracts/{created['id']}").json()["number"] == "C-1001"
    missing = api.get("/api/v1/contracts/C-404")
    assert missing.status_code == 404 and missing.json()["error"]["code"] == "not_found"
    assert post(api, "/api/v1/contracts/C-404/amendments", {"effective_from": "2026-03-01"}).status_code == 404


def test_contract_list_pages_and_filters(api, acme):
    for n in range(3):
        post(
            api,
            "/api/v1/contracts",
            contract_payload(number=f"C-{2000 + n}", **({"status": "draft"} if n == 0 else {})),
        )
    page = api.get("/api/v1/contracts?limit=2").json()
    assert page["count"] == 3 and len(page["items"]) == 2
    drafts = api.get("/api/v1/contracts?status=draft").json()
    assert [c["number"] for c in drafts["items"]] == ["C-2000"]
    assert api.get("/api/v1/contracts?customer=acme-ltd").json()["count"] == 3
    assert api.get("/api/v1/contracts?customer=nobody").json()["count"] == 0


def test_a_contract_posted_without_status_is_active_and_with_draft_is_draft(api, acme):
    assert post(api, "/api/v1/contracts", contract_payload()).json()["status"] == "active"
    draft = post(api, "/api/v1/contracts", contract_payload(number="C-1002", status="draft", price_lines=[]))
    assert draft.status_code == 201 and draft.json()["status"] == "draft"


def test_the_first_contract_of_a_new_workspace_gets_a_default_issuing_entity(api, acme, in_a):
    response = post(api, "/api/v1/contracts", contract_payload())
    from contracts.models import IssuingEntity

    with in_a():
        entity = IssuingEntity.objects.get()
    assert response.json()["issuing_entity"] == str(entity.pk)
    assert entity.legal_name == "Tenant-A Corp" and entity.invoice_prefix == "INV-"


def test_with_several_issuing_entities_the_contract_must_name_one(api, acme, in_a):
    from contracts.tests.factories import IssuingEntityFactory

    with in_a():
        IssuingEntityFactory(currency="USD")
        other = IssuingEntityFactory(currency="USD")
    response = post(api, "/api/v1/contracts", contract_payload())
    assert response.status_code == 422 and "issuing_entity" in response.json()["error"]["fields"]
    named = post(api, "/api/v1/contracts", contract_payload(issuing_entity=other.invoice_prefix))
    assert named.status_code == 201 and named.json()["issuing_entity"] == str(other.pk)


# ----------------------------------------------------------------------------- customers


def test_customer_round_trips_and_is_found_by_id_or_external_id(api, acme):
    posted = customer_payload()
    assert {k: acme[k] for k in posted} == posted
    assert api.get(f"/api/v1/customers/{acme['id']}").json() == acme
    assert api.get("/api/v1/customers/acme-ltd").json() == acme
    assert api.get("/api/v1/customers/nobody").status_code == 404


def test_customer_patch_changes_only_the_fields_sent(api, acme):
    response = patch(
        api,
        "/api/v1/customers/acme-ltd",
        {"billing_emails": ["ap@acme.example", "cfo@acme.example"], "address": {"city": "Leeds"}},
    )
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["billing_emails"] == ["ap@acme.example", "cfo@acme.example"]
    assert body["address"]["city"] == "Leeds" and body["address"]["line1"] == "1 Main Street"
    assert body["legal_name"] == "Acme Ltd"


def test_customer_list_searches(api, acme):
    post(api, "/api/v1/customers", customer_payload(external_id="globex", legal_name="Globex Corporation"))
    assert [c["external_id"] for c in api.get("/api/v1/customers?q=glob").json()["items"]] == ["globex"]
    assert api.get("/api/v1/customers").json()["count"] == 2


@pytest.mark.parametrize(
    "change, field",
    [
        ({"external_id": ""}, "external_id"),
        ({"external_id": "has space"}, "external_id"),
        ({"legal_name": ""}, "legal_name"),
        ({"currency": "XYZ"}, "currency"),
        ({"billing_emails": ["not-an-email"]}, "billing_emails"),
        ({"address": {"country": "Britain"}}, "address.country"),
        ({"address": {"street": "x"}}, "address.street"),
        ({"owner": "nobody@nowhere.example"}, "owner"),
        ({"colour": "blue"}, "colour"),
    ],
)
def test_bad_customers_get_422_naming_the_field_and_nothing_is_written(api, in_a, change, field):
    before = counts(in_a)
    response = post(api, "/api/v1/customers", customer_payload(**change))
    assert response.status_code == 422
    body = response.json()["error"]
    assert body["code"] == "validation_error" and field in body["fields"], body
    assert counts(in_a) == before


def test_a_duplicate_external_id_is_refused(api, acme):
    response = post(api, "/api/v1/customers", customer_payload())
    assert response.status_code == 422 and "already exists" in response.json()["error"]["fields"]["external_id"][0]


def test_patch_with_a_bad_field_changes_nothing(api, acme, in_a):
    response = patch(api, "/api/v1/customers/acme-ltd", {"legal_name": "New Name", "currency": "nope"})
    assert response.status_code == 422 and "currency" in response.json()["error"]["fields"]
    with in_a():
        assert Customer.objects.get(external_id="acme-ltd").legal_name == "Acme Ltd"


# ----------------------------------------------------------------------------- validation table


def _line(payload, index):
    return payload["price_lines"][index]


# (description, mutate(payload), field named in the error). Used by the API here and the form in test_views.
CONTRACT_RULES = [
    ("unknown customer", lambda p: p.update(customer="nobody"), "customer"),
    ("missing number", lambda p: p.update(number=""), "number"),
    ("missing title", lambda p: p.pop("title"), "title"),
    ("impossible start date", lambda p: p.update(start_date="2026-13-01"), "start_date"),
    ("end before start", lambda p: p.update(end_date="2025-12-31"), "end_date"),
    ("unknown currency", lambda p: p.update(currency="XXX"), "currency"),
    ("negative payment terms", lambda p: p.update(payment_terms_days=-1), "payment_terms_days"),
    ("unknown billing anchor", lambda p: p.update(billing_anchor="weekly"), "billing_anchor"),
    ("auto-renew without end", lambda p: p.update(end_date=None), "end_date"),
    ("renewal term of 0 months", lambda p: p.update(renewal_term_months=0), "renewal_term_months"),
    ("active contract with no lines", lambda p: p.update(price_lines=[]), "price_lines"),
    ("unknown line kind", lambda p: _line(p, 0).update(kind="subscription"), "price_lines.0.kind"),
    ("line without description", lambda p: _line(p, 0).update(description=""), "price_lines.0.description"),
    ("negative amount", lambda p: _line(p, 0).update(amount="-5.00"), "price_lines.0.amount"),
    ("amount that is not a number", lambda p: _line(p, 0).update(amount="lots"), "price_lines.0.amount"),
    ("more than 6 decimals", lambda p: _line(p, 0).update(amount="1.0000001"), "price_lines.0.amount"),
    ("absurdly large amount", lambda p: _line(p, 0).update(amount="1000000000000000"), "price_lines.0.amount"),
    ("unknown frequency", lambda p: _line(p, 0).update(frequency="weekly"), "price_lines.0.frequency"),
    ("recurring without timing", lambda p: _line(p, 0).pop("timing"), "price_lines.0.timing"),
    ("included hours without overage rate", lambda p: _line(p, 0).pop("overage_rate"), "price_lines.0.overage_rate"),
    ("milestone without amount", lambda p: _line(p, 1).pop("amount"), "price_lines.1.amount"),
    (
        "milestone expected after the end",
        lambda p: _line(p, 1).update(expected_date="2027-03-31"),
        "price_lines.1.expected_date",
    ),
    (
        "duplicate milestone reference",
        lambda p: p["price_lines"].append(dict(_line(p, 1), description="Phase 2")),
        "price_lines.5.reference",
    ),
    ("time and materials without rates", lambda p: _line(p, 2).update(rates=[]), "price_lines.2.rates"),
    (
        "a role priced twice",
        lambda p: _line(p, 2)["rates"].append({"role": "Engineer", "hourly_rate": "160.00"}),
        "price_lines.2.rates.1.role",
    ),
    (
        "a role without a rate",
        lambda p: _line(p, 2)["rates"][0].pop("hourly_rate"),
        "price_lines.2.rates.0.hourly_rate",
    ),
    ("zero cap", lambda p: _line(p, 2).update(cap="0"), "price_lines.2.cap"),
    ("fixed fee billed before the start", lambda p: _line(p, 3).update(bill_on="2025-06-01"), "price_lines.3.bill_on"),
    ("metric with spaces", lambda p: _line(p, 4).update(metric="API Calls"), "price_lines.4.metric"),
    ("unknown charge model", lambda p: _line(p, 4).update(charge_model="flat"), "price_lines.4.charge_model"),
    ("field of another charge model", lambda p: _line(p, 4).update(unit_amount="1.00"), "price_lines.4.unit_amount"),
    (
        "per-unit without unit amount",
        lambda p: _line(p, 4).update(charge_model="per_unit", tiers=None),
        "price_lines.4.unit_amount",
    ),
    ("non-final unbounded tier", lambda p: _line(p, 4)["tiers"][0].update(up_to=None), "price_lines.4.tiers"),
    (
        "overlapping tiers",
        lambda p: _line(p, 4)["tiers"].insert(1, {"up_to": "50", "unit_amount": "0.9"}),
        "price_lines.4.tiers",
    ),
    ("bounded last tier", lambda p: _line(p, 4)["tiers"][1].update(up_to="1000"), "price_lines.4.tiers"),
    ("tier without price", lambda p: _line(p, 4)["tiers"][0].pop("unit_amount"), "price_lines.4.tiers.0.unit_amount"),
    (
        "unique count without property",
        lambda p: _line(p, 4).update(aggregation="unique_count"),
        "price_lines.4.aggregation_property",
    ),
    (
        "package of size 0",
        lambda p: p["price_lines"].__setitem__(
            4,
            {
                "kind": "usage",
                "description": "SMS",
                "metric": "sms",
                "frequency": "monthly",
                "charge_model": "package",
                "package_size": "0",
                "amount": "9.00",
            },
        ),
        "price_lines.4.package_size",
    ),
    (
        "percentage over 100",
        lambda p: p["price_lines"].__setitem__(
            4,
            {
                "kind": "usage",
                "description": "Card fees",
                "metric": "payments",
                "frequency": "monthly",
                "charge_model": "percentage",
                "rate": "150",
            },
        ),
        "price_lines.4.rate",
    ),
    (
        "min above max per transaction",
        lambda p: p["price_lines"].__setitem__(
            4,
            {
                "kind": "usage",
                "description": "Card fees",
                "metric": "payments",
                "frequency": "monthly",
                "charge_model": "percentage",
                "rate": "2",
                "per_transaction_min": "5",
                "per_transaction_max": "1",
            },
        ),
        "price_lines.4.per_transaction_max",
    ),
]


@pytest.mark.parametrize("mutate, field", [pytest.param(m, f, id=d) for d, m, f in CONTRACT_RULES])
def test_every_contract_rule_gets_422_naming_the_field_and_writes_nothing(api, acme, in_a, mutate, field):
    payload = copy.deepcopy(contract_payload())
    mutate(payload)
    before = counts(in_a)
    response = post(api, "/api/v1/contracts", payload)
    assert response.status_code == 422, response.content
    error = response.json()["error"]
    assert error["code"] == "validation_error" and "nothing was saved" in error["message"]
    assert field in error["fields"], error["fields"]
    assert all(message.strip() for message in error["fields"][field])
    assert counts(in_a) == before


def test_a_duplicate_contract_number_is_refused(api, acme):
    post(api, "/api/v1/contracts", contract_payload())
    response = post(api, "/api/v1/contracts", contract_payload())
    assert response.status_code == 422 and "already exists" in response.json()["error"]["fields"]["number"][0]


def test_unknown_fields_are_named_not_ignored(api, acme):
    payload = contract_payload()
    payload["price_lines"][0]["amout"] = "1.00"
    payload["colour"] = "blue"
    fields = post(api, "/api/v1/contracts", payload).json()["error"]["fields"]
    assert "price_lines.0.amout" in fields and "colour" in fields


def test_malformed_json_and_wrong_types_get_clear_errors(api, acme, in_a):
    before = counts(in_a)
    broken = api.post("/api/v1/contracts", "{not json", content_type="application/json")
    assert broken.status_code in (400, 422)
    wrong = post(api, "/api/v1/contracts", dict(contract_payload(), price_lines="many"))
    assert wrong.status_code == 422 and "price_lines" in wrong.json()["error"]["fields"]
    assert counts(in_a) == before


def test_the_api_needs_a_key_and_keys_do_not_cross_tenants(db, tenant_a, tenant_b, api, acme):
    from django.test import Client

    assert Client(HTTP_HOST=tenant_a.host).get("/api/v1/customers").status_code == 401
    other = Client(HTTP_HOST=tenant_b.host, HTTP_AUTHORIZATION=f"Bearer {tenant_b.api_key}")
    assert other.get("/api/v1/customers/acme-ltd").status_code == 404
    assert other.get("/api/v1/customers").json()["count"] == 0


# ----------------------------------------------------------------------------- amendments


def test_amendment_endpoint_creates_the_next_version_and_keeps_line_refs(api, acme):
    post(api, "/api/v1/contracts", contract_payload())
    lines = copy.deepcopy(contract_payload()["price_lines"])
    lines[0]["amount"] = "3500.00"
    response = post(
        api,
        "/api/v1/contracts/C-1001/amendments",
        {"effective_from": "2026-03-15", "reason": "Scope extended", "price_lines": lines},
    )
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["version"] == 2 and body["effective_from"] == "2026-03-15" and body["reason"] == "Scope extended"
    assert body["line_refs"] == ["L1", "L2", "L3", "L4", "L5"]
    assert body["price_lines"][0]["amount"] == "3500.00" and body["price_lines"][1:] == lines[1:]
    old = api.get("/api/v1/contracts/C-1001?as_of=2026-02-01").json()
    new = api.get("/api/v1/contracts/C-1001?as_of=2026-04-01").json()
    assert old["price_lines"][0]["amount"] == "3100.00" and new["price_lines"][0]["amount"] == "3500.00"
    assert [v["version"] for v in api.get("/api/v1/contracts/C-1001/versions").json()] == [1, 2]


@pytest.mark.parametrize(
    "body, field",
    [
        ({}, "effective_from"),
        ({"effective_from": "2026-01-10"}, "effective_from"),
        ({"effective_from": "2027-02-01", "payment_terms_days": 45}, "effective_from"),
        ({"effective_from": "not-a-date"}, "effective_from"),
        ({"effective_from": "2026-03-01"}, "non_field_errors"),
        (
            {
                "effective_from": "2026-03-01",
                "price_lines": [{"kind": "recurring", "description": "Retainer", "amount": "-1"}],
            },
            "price_lines.0.amount",
        ),
        ({"effective_from": "2026-03-01", "discount": "10"}, "discount"),
    ],
)
def test_bad_amendments_get_422_naming_the_field_and_add_no_version(api, acme, in_a, body, field):
    post(api, "/api/v1/contracts", contract_payload())
    before = counts(in_a)
    response = post(api, "/api/v1/contracts/C-1001/amendments", body)
    assert response.status_code == 422, response.content
    assert field in response.json()["error"]["fields"], response.json()
    assert counts(in_a) == before


def test_openapi_documents_the_contract_endpoints(api):
    spec = api.get("/api/v1/openapi.json").json()
    for path in (
        "/api/v1/customers",
        "/api/v1/customers/{ref}",
        "/api/v1/contracts",
        "/api/v1/contracts/{ref}",
        "/api/v1/contracts/{ref}/amendments",
    ):
        assert path in spec["paths"], path
    assert "post" in spec["paths"]["/api/v1/contracts"] and "patch" in spec["paths"]["/api/v1/customers/{ref}"]


def test_contract_list_query_count_does_not_grow_with_rows(api, acme, django_assert_max_num_queries):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    def queries() -> int:
        with CaptureQueriesContext(connection) as ctx:
            assert api.get("/api/v1/contracts?limit=50").status_code == 200
        return len(ctx)

    for n in range(2):
        post(api, "/api/v1/contracts", contract_payload(number=f"C-{3000 + n}"))
    few = queries()
    for n in range(2, 14):
        post(api, "/api/v1/contracts", contract_payload(number=f"C-{3000 + n}"))
    with django_assert_max_num_queries(few):
        response = api.get("/api/v1/contracts?limit=50")
    assert response.json()["count"] == 14


# ----------------------------------------------------------------------------- PATCH


def test_patch_changes_only_the_fields_sent(api, acme):
    post(api, "/api/v1/contracts", contract_payload())
    response = patch(
        api, "/api/v1/contracts/C-1001", {"title": "Platform services 2026 (renamed)", "notice_period_days": 60}
    )
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["title"] == "Platform services 2026 (renamed)" and body["notice_period_days"] == 60
    assert body["price_lines"] == api.get("/api/v1/contracts/C-1001").json()["price_lines"]
    assert body["payment_terms_days"] == 30


def test_patch_refuses_terms_in_force_and_bad_values(api, acme, in_a):
    import time_machine

    post(api, "/api/v1/contracts", contract_payload())
    with time_machine.travel("2026-06-01 12:00Z", tick=False):
        response = patch(api, "/api/v1/contracts/C-1001", {"payment_terms_days": 45})
    assert response.status_code == 422 and "non_field_errors" in response.json()["error"]["fields"]
    response = patch(api, "/api/v1/contracts/C-1001", {"end_date": "9999-12-31", "title": ""})
    assert set(response.json()["error"]["fields"]) >= {"end_date", "title"}
    with in_a():
        assert Contract.objects.get(number="C-1001").title == "Platform services 2026"
    assert patch(api, "/api/v1/contracts/C-404", {"title": "x"}).status_code == 404
