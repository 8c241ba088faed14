"""Ingestion of usage, time and delivery facts: whole-batch validation, idempotency, the inbox."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from decimal import Decimal

import pytest
import time_machine
from django.test import Client
from hypothesis import given, settings
from hypothesis import strategies as st

from billing.models import BillingReviewTask, DeliveryEvent, TimeEntry, UsageEvent
from billing.services.ingestion import (
    MAX_PROPERTIES_BYTES,
    _contracts_resolve,
    _properties_too_large,
    delivery_events_process_pending,
)
from billing.tests.builders import contract_with, unique

NOW = datetime(2026, 6, 15, 12, 0, tzinfo=UTC)

USAGE_LINE = {
    "kind": "usage",
    "metric": "api_calls",
    "frequency": "monthly",
    "charge_model": "per_unit",
    "unit_amount": Decimal("0.01"),
    "timing": "",
    "amount": None,
}
TM_LINE = {
    "kind": "time_and_materials",
    "description": "Extra engineering",
    "amount": None,
    "frequency": "",
    "timing": "",
    "cap": None,
}


@pytest.fixture(autouse=True)
def frozen_now():
    with time_machine.travel(NOW, tick=False):
        yield


@pytest.fixture
def api(in_tenant_a):
    return Client(HTTP_HOST=in_tenant_a.host, HTTP_AUTHORIZATION=f"Bearer {in_tenant_a.api_key}")


def post(api, path, body, *, raw: bool = False):
    data = body if raw else json.dumps(body)
    return api.post(path, data, content_type="application/json")


def event(contract, /, **overrides) -> dict:
    body = {
        "transaction_id": unique("tx"),
        "contract": contract.number,
        "metric": "api_calls",
        "quantity": "10",
        "timestamp": "2026-06-10T09:30:00Z",
        "properties": {"region": "eu"},
    }
    body.update(overrides)
    return body


# --------------------------------------------------------------------------- usage: good batches


def test_a_valid_batch_is_stored_and_counted(api):
    contract = contract_with(USAGE_LINE)
    response = post(api, "/api/v1/usage-events", {"events": [event(contract), event(contract, quantity=2.5)]})
    assert response.status_code == 202, response.json()
    assert response.json() == {"received": 2, "accepted": 2, "duplicates": 0}
    stored = UsageEvent.objects.filter(contract=contract).order_by("quantity")
    assert [e.quantity for e in stored] == [Decimal("2.5"), Decimal("10")]
    assert stored[0].properties == {"region": "eu"} and stored[0].invoice_line is None


def test_a_bare_array_is_accepted_too(api):
    contract = contract_with(USAGE_LINE)
    response = post(api, "/api/v1/usage-events", [event(contract)])
    assert response.status_code == 202 and response.json()["accepted"] == 1


def test_the_same_batch_five_times_stores_each_event_once(api):
    contract = contract_with(USAGE_LINE)
    batch = [event(contract), event(contract)]
    answers = [post(api, "/api/v1/usage-events", batch).json() for _ in range(5)]
    assert answers[0] == {"received": 2, "accepted": 2, "duplicates": 0}
    assert all(a == {"received": 2, "accepted": 0, "duplicates": 2} for a in answers[1:])
    assert UsageEvent.objects.filter(contract=contract).count() == 2


def test_the_key_is_unique_in_the_database_and_the_table_has_no_unread_index(in_tenant_a):
    """Billing marks every usage row it invoices, so each index costs at month-end: only the key's
    unique constraint, the contract/metric/time index and the unbilled partial index stay."""
    from django.db import IntegrityError, connection, transaction

    contract = contract_with(USAGE_LINE)
    row = {"contract": contract, "metric": "api_calls", "quantity": 1, "timestamp": NOW}
    UsageEvent.objects.create(transaction_id="tx-db-unique", **row)
    with pytest.raises(IntegrityError, match="usage_transaction_id_unique"), transaction.atomic():
        UsageEvent.objects.create(transaction_id="tx-db-unique", **row)
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT indexname FROM pg_indexes WHERE tablename = 'billing_usageevent' AND schemaname = current_schema()"
        )
        names = {name for (name,) in cursor.fetchall()}
    assert not any(name.endswith("_like") for name in names)
    assert "usage_transaction_id_unique" in names
    assert {"usage_contract_metric_ts", "usage_unbilled"} <= names
    assert len(names) == 5  # primary key, key, contract/metric/time, unbilled, invoice line


def test_a_duplicate_inside_one_batch_counts_once(api):
    contract = contract_with(USAGE_LINE)
    one = event(contract)
    response = post(api, "/api/v1/usage-events", [one, dict(one, quantity="99")])
    assert response.json() == {"received": 2, "accepted": 1, "duplicates": 1}
    assert UsageEvent.objects.get(transaction_id=one["transaction_id"]).quantity == Decimal("10")


def test_a_customer_resolves_to_its_active_contract_metering_the_metric(api):
    contract = contract_with(USAGE_LINE)
    body = event(contract)
    del body["contract"]
    body["customer"] = contract.customer.external_id
    response = post(api, "/api/v1/usage-events", [body])
    assert response.status_code == 202, response.json()
    assert UsageEvent.objects.get(transaction_id=body["transaction_id"]).contract_id == contract.pk


def test_a_contract_can_be_named_by_id(api):
    contract = contract_with(USAGE_LINE)
    response = post(api, "/api/v1/usage-events", [event(contract, contract=str(contract.pk))])
    assert response.status_code == 202 and response.json()["accepted"] == 1


def test_references_resolve_by_number_then_id_and_a_longer_text_matches_nothing(in_tenant_a):
    contract = contract_with(USAGE_LINE)
    other = contract_with(USAGE_LINE)
    # A number whose first characters are another's must not match it (no cut to the column's length).
    longer = other.number + "x" * 40
    found = _contracts_resolve({contract.number, str(other.pk), longer, "no-such-contract"})
    assert set(found) == {contract.number, str(other.pk)}
    assert found[contract.number].pk == contract.pk and found[contract.number].status == contract.status
    assert found[str(other.pk)].number == other.number
    assert _contracts_resolve(set()) == {}


@pytest.mark.parametrize("ref", ["9223372036854775808", "0", "-1", "1" * 60, "Ünïcode-契約"])
def test_a_reference_no_contract_can_have_is_refused_by_name(api, ref):
    contract = contract_with(USAGE_LINE)
    response = post(api, "/api/v1/usage-events", [event(contract, contract=ref)])
    assert response.status_code == 422, response.content
    assert "events.0.contract" in response.json()["error"]["fields"]


@settings(max_examples=300, deadline=None)
@given(
    st.dictionaries(
        st.text(max_size=60),
        st.one_of(
            st.text(max_size=400),
            st.integers(),
            st.decimals(allow_nan=False, allow_infinity=False),
            st.booleans(),
            st.none(),
            st.lists(st.text(max_size=300), max_size=5),
        ),
        max_size=20,
    )
)
def test_the_properties_size_bound_agrees_with_encoding_them(properties):
    assert _properties_too_large(properties) == (len(json.dumps(properties, default=str)) > MAX_PROPERTIES_BYTES)


def test_threshold_contracts_get_an_evaluation_enqueued_on_commit(api, enqueued, django_capture_on_commit_callbacks):
    contract = contract_with(dict(USAGE_LINE, threshold_amount=Decimal("100")))
    plain = contract_with(dict(USAGE_LINE))
    with django_capture_on_commit_callbacks(execute=True):
        post(api, "/api/v1/usage-events", [event(contract), event(plain)])
    assert ("billing.tasks.contracts_evaluate", {"contract_ids": [contract.pk]}) in enqueued


# --------------------------------------------------------------------------- usage: bad input


BAD_USAGE = [
    # (description, mutate(event) -> event, field, words in the message)
    ("negative quantity", lambda e: dict(e, quantity="-1"), "events.1.quantity", "at least 0"),
    ("absurd quantity", lambda e: dict(e, quantity="1000000000000000"), "events.1.quantity", "maximum"),
    ("exponent quantity", lambda e: dict(e, quantity="1e3"), "events.1.quantity", "not a number"),
    ("underscored quantity", lambda e: dict(e, quantity="1_000"), "events.1.quantity", "not a number"),
    ("arabic-indic quantity", lambda e: dict(e, quantity="٣"), "events.1.quantity", "not a number"),
    ("quantity not a number", lambda e: dict(e, quantity="ten"), "events.1.quantity", "not a number"),
    ("quantity a boolean", lambda e: dict(e, quantity=True), "events.1.quantity", "true/false"),
    ("too many decimals", lambda e: dict(e, quantity="0.0000001"), "events.1.quantity", "decimal places"),
    ("transaction id a number", lambda e: dict(e, transaction_id=42), "events.1.transaction_id", "string"),
    (
        "missing transaction id",
        lambda e: {k: v for k, v in e.items() if k != "transaction_id"},
        "events.1.transaction_id",
        "required",
    ),
    (
        "unknown metric",
        lambda e: dict(e, metric="gpu_hours"),
        "events.1.metric",
        "no usage line for metric 'gpu_hours'",
    ),
    ("unknown contract", lambda e: dict(e, contract="C-NOPE"), "events.1.contract", "No contract 'C-NOPE'"),
    (
        "unknown customer",
        lambda e: dict({k: v for k, v in e.items() if k != "contract"}, customer="nobody"),
        "events.1.customer",
        "No customer",
    ),
    (
        "no contract or customer",
        lambda e: {k: v for k, v in e.items() if k != "contract"},
        "events.1.contract",
        "Name the contract",
    ),
    ("far future", lambda e: dict(e, timestamp="2026-06-20T00:00:00Z"), "events.1.timestamp", "future"),
    ("no time zone", lambda e: dict(e, timestamp="2026-06-10T09:30:00"), "events.1.timestamp", "time zone"),
    ("not a date", lambda e: dict(e, timestamp="yesterday"), "events.1.timestamp", "ISO 8601"),
    (
        "before the contract",
        lambda e: dict(e, timestamp="2026-01-02T00:00:00Z"),
        "events.1.timestamp",
        "outside contract",
    ),
    ("properties not an object", lambda e: dict(e, properties=["x"]), "events.1.properties", "JSON object"),
    (
        "properties too large, flat",
        lambda e: dict(e, properties={f"k{n}": "v" * 40 for n in range(100)}),
        "events.1.properties",
        "4096 bytes",
    ),
    (
        "properties too large, nested",
        lambda e: dict(e, properties={"tags": ["x" * 50] * 90}),
        "events.1.properties",
        "4096 bytes",
    ),
    (
        "properties too large once escaped",
        lambda e: dict(e, properties={"note": "\U0001f600" * 400}),
        "events.1.properties",
        "4096 bytes",
    ),
    ("unknown field", lambda e: dict(e, qty="1"), "events.1.qty", "Unknown field"),
    ("event not an object", lambda e: "event", "events.1.event", "JSON object"),
]


@pytest.mark.parametrize("label, mutate, field, words", BAD_USAGE, ids=[b[0] for b in BAD_USAGE])
def test_a_bad_event_rejects_the_whole_batch_naming_it(api, label, mutate, field, words):
    contract = contract_with(USAGE_LINE)
    batch = [event(contract), mutate(event(contract)), event(contract)]
    response = post(api, "/api/v1/usage-events", {"events": batch})
    assert response.status_code == 422, response.content
    fields = response.json()["error"]["fields"]
    assert field in fields, fields
    assert any(words in message for message in fields[field]), fields[field]
    assert UsageEvent.objects.filter(contract=contract).count() == 0


def test_every_bad_item_is_named_in_one_answer(api):
    contract = contract_with(USAGE_LINE)
    batch = [
        event(contract, quantity="-1"),
        event(contract),
        event(contract, metric="nope", timestamp="2030-01-01T00:00:00Z"),
    ]
    fields = post(api, "/api/v1/usage-events", batch).json()["error"]["fields"]
    assert {"events.0.quantity", "events.2.timestamp"} <= set(fields)


def test_malformed_json_is_a_400_and_stores_nothing(api):
    response = post(api, "/api/v1/usage-events", '{"events": [ {"transaction_id": ', raw=True)
    assert response.status_code == 400
    assert "Malformed JSON" in response.json()["error"]["message"]


def test_a_batch_over_the_limit_is_refused(api):
    contract = contract_with(USAGE_LINE)
    response = post(api, "/api/v1/usage-events", [event(contract) for _ in range(1001)])
    assert response.status_code == 422
    assert "at most 1,000" in response.json()["error"]["fields"]["events"][0]
    assert UsageEvent.objects.filter(contract=contract).count() == 0


@pytest.mark.parametrize(
    "body, field", [({"events": "x"}, "events"), ([], "events"), ({"evnts": []}, "evnts"), (42, "events")]
)
def test_a_body_that_is_not_a_batch_is_refused(api, body, field):
    response = post(api, "/api/v1/usage-events", body)
    assert response.status_code == 422
    assert field in response.json()["error"]["fields"]


def test_percentage_metrics_need_an_amount_property(api):
    contract = contract_with(
        dict(USAGE_LINE, metric="payments", charge_model="percentage", rate=Decimal("2.9"), unit_amount=None)
    )
    response = post(api, "/api/v1/usage-events", [event(contract, metric="payments", properties={})])
    assert response.status_code == 422
    assert "events.0.properties.amount" in response.json()["error"]["fields"]


def test_a_draft_contract_takes_no_usage(api):
    contract = contract_with(USAGE_LINE, status="draft")
    response = post(api, "/api/v1/usage-events", [event(contract)])
    assert response.status_code == 422 and "activate it" in response.json()["error"]["fields"]["events.0.contract"][0]


def test_without_a_key_nothing_is_stored(in_tenant_a):
    contract = contract_with(USAGE_LINE)
    response = Client(HTTP_HOST=in_tenant_a.host).post(
        "/api/v1/usage-events", json.dumps([event(contract)]), content_type="application/json"
    )
    assert response.status_code == 401
    assert UsageEvent.objects.filter(contract=contract).count() == 0


# --------------------------------------------------------------------------- time entries


def entry(contract, /, **overrides) -> dict:
    body = {
        "external_id": unique("te"),
        "contract": contract.number,
        "person": "Ada Lovelace",
        "role": "engineer",
        "date": "2026-06-10",
        "hours": "7.5",
        "billable": True,
        "description": "API work",
    }
    body.update(overrides)
    return body


def test_time_entries_are_stored_once_and_assigned_to_the_rate_card_line(api):
    contract = contract_with(dict(TM_LINE, line_ref="TM"))
    batch = [entry(contract), entry(contract, role="designer", billable=False)]
    assert post(api, "/api/v1/time-entries", {"entries": batch}).json() == {
        "received": 2,
        "accepted": 2,
        "duplicates": 0,
    }
    assert post(api, "/api/v1/time-entries", batch).json() == {"received": 2, "accepted": 0, "duplicates": 2}
    stored = {e.role: e for e in TimeEntry.objects.filter(contract=contract)}
    assert stored["engineer"].line_ref == "TM" and stored["engineer"].hours == Decimal("7.5")
    assert stored["designer"].line_ref == "" and stored["designer"].billable is False


BAD_TIME = [
    ("too many hours", {"hours": "25"}, "entries.0.hours", "beyond the maximum"),
    ("zero hours", {"hours": "0"}, "entries.0.hours", "greater than 0"),
    ("future date", {"date": "2026-07-01"}, "entries.0.date", "future"),
    ("bad date", {"date": "10/06/2026"}, "entries.0.date", "YYYY-MM-DD"),
    ("date before 1990", {"date": "1989-12-31"}, "entries.0.date", "outside"),
    ("billable not a boolean", {"billable": "yes"}, "entries.0.billable", "true or false"),
    ("unknown contract", {"contract": "C-NONE"}, "entries.0.contract", "No contract"),
    ("unknown price line", {"price_line": "ZZ"}, "entries.0.price_line", "no time-based price line"),
    ("missing person", {"person": ""}, "entries.0.person", "required"),
]


@pytest.mark.parametrize("label, changes, field, words", BAD_TIME, ids=[b[0] for b in BAD_TIME])
def test_bad_time_entries_are_refused_naming_the_field(api, label, changes, field, words):
    contract = contract_with(TM_LINE)
    response = post(api, "/api/v1/time-entries", [entry(contract, **changes), entry(contract)])
    assert response.status_code == 422, response.content
    fields = response.json()["error"]["fields"]
    assert field in fields and any(words in m for m in fields[field]), fields
    assert TimeEntry.objects.filter(contract=contract).count() == 0


# --------------------------------------------------------------------------- delivery events


MILESTONE_LINE = {
    "kind": "milestone",
    "description": "Phase 1 go-live",
    "amount": Decimal("12000.00"),
    "frequency": "",
    "timing": "",
    "reference": "PROJ-12",
    "line_ref": "M1",
}


def test_a_milestone_completion_is_stored_once_and_processed_from_the_inbox(
    api, enqueued, django_capture_on_commit_callbacks
):
    from contracts.models import Milestone

    contract = contract_with(MILESTONE_LINE)
    body = {
        "kind": "milestone_completed",
        "contract": contract.number,
        "milestone_ref": "PROJ-12",
        "occurred_at": "2026-06-14T10:00:00Z",
        "external_id": "jira-evt-1",
    }
    with django_capture_on_commit_callbacks(execute=True):
        first = post(api, "/api/v1/delivery-events", body)
    assert first.status_code == 202 and first.json()["status"] == "accepted"
    assert [name for name, _ in enqueued] == ["billing.tasks.delivery_event_process"]
    for _ in range(4):
        again = post(api, "/api/v1/delivery-events", body)
        assert again.status_code == 202 and again.json() == {"id": first.json()["id"], "status": "duplicate"}
    assert DeliveryEvent.objects.filter(contract=contract).count() == 1

    # The broker never delivered the task: the sweep finds the stored row.
    assert delivery_events_process_pending() == 1
    assert delivery_events_process_pending() == 0
    milestone = Milestone.objects.get(contract=contract, line_ref="M1")
    assert milestone.status == "delivered" and milestone.delivered_at == datetime(2026, 6, 14, 10, tzinfo=UTC)
    assert milestone.delivered_source == "api"


def test_a_scope_change_raises_one_review_task(api):
    contract = contract_with(MILESTONE_LINE)
    body = {
        "kind": "scope_changed",
        "contract": contract.number,
        "external_id": "evt-scope-1",
        "description": "Customer asked for SSO",
    }
    post(api, "/api/v1/delivery-events", body)
    post(api, "/api/v1/delivery-events", body)
    delivery_events_process_pending()
    task = BillingReviewTask.objects.get(contract=contract)
    assert task.kind == "scope_change" and "SSO" in task.detail


def test_an_unknown_milestone_reference_raises_a_review_task(api):
    contract = contract_with(MILESTONE_LINE)
    post(
        api,
        "/api/v1/delivery-events",
        {
            "kind": "milestone_completed",
            "contract": contract.number,
            "milestone_ref": "PROJ-99",
            "external_id": "evt-x",
        },
    )
    delivery_events_process_pending()
    task = BillingReviewTask.objects.get(contract=contract)
    assert task.kind == "unknown_milestone" and "PROJ-99" in task.title


@pytest.mark.parametrize(
    "changes, field",
    [
        ({"kind": "shipped"}, "kind"),
        ({"milestone_ref": None}, "milestone_ref"),
        ({"contract": "C-NONE"}, "contract"),
        ({"external_id": ""}, "external_id"),
        ({"occurred_at": "2027-01-01T00:00:00Z"}, "occurred_at"),
        ({"extra": 1}, "extra"),
    ],
)
def test_bad_delivery_events_are_refused(api, changes, field):
    contract = contract_with(MILESTONE_LINE)
    body = {
        "kind": "milestone_completed",
        "contract": contract.number,
        "milestone_ref": "PROJ-12",
        "external_id": unique("evt"),
    }
    body.update(changes)
    response = post(api, "/api/v1/delivery-events", body)
    assert response.status_code == 422, response.content
    assert field in response.json()["error"]["fields"]
    assert not DeliveryEvent.objects.filter(contract=contract).exists()


# --------------------------------------------------------------------------- the UI button


def test_finance_marks_a_milestone_delivered_from_the_ui(in_tenant_a, enqueued, django_capture_on_commit_callbacks):
    from django.urls import reverse

    from contracts.models import Milestone
    from tests.helpers import client_for

    contract = contract_with(MILESTONE_LINE)
    milestone = Milestone.objects.get_or_create(contract=contract, line_ref="M1", defaults={"name": "Phase 1 go-live"})[
        0
    ]
    url = reverse("billing:milestone_deliver", args=[milestone.pk])
    assert client_for(in_tenant_a, email=in_tenant_a.users["viewer"]).post(url).status_code == 403
    finance = client_for(in_tenant_a, email=in_tenant_a.users["finance"])
    assert finance.get(url).status_code == 405
    with django_capture_on_commit_callbacks(execute=True):
        response = finance.post(url, {"next": "/"})
    assert response.status_code == 302
    milestone.refresh_from_db()
    assert milestone.status == "delivered" and milestone.delivered_source == "ui"
    assert ("billing.tasks.contracts_evaluate", {"contract_ids": [contract.pk]}) in enqueued
