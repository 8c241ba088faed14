"""Amendments that move a contract to another issuing entity, and a fixed fee's hour budget, through the API."""

from __future__ import annotations

import json
from datetime import date

import pytest
import time_machine

from billing.models import BillingReviewTask, Invoice
from billing.tests.builders import contract_with
from contracts.tests.factories import IssuingEntityFactory
from discounts.tests.helpers import RETAINER, run

pytestmark = pytest.mark.django_db


def post(client, path, body):
    return client.post(path, json.dumps(body), content_type="application/json")


def test_an_amendment_moves_invoicing_to_another_entity_from_its_date(api, in_a):
    with in_a():
        old, new = IssuingEntityFactory(invoice_prefix="OLD-"), IssuingEntityFactory(invoice_prefix="NEW-")
        contract = contract_with(dict(RETAINER), start=date(2026, 1, 1), issuing_entity=old)
    response = post(
        api,
        f"/api/v1/contracts/{contract.number}/amendments",
        {"effective_from": "2026-04-01", "issuing_entity": "NEW-", "reason": "Transferred to the US entity"},
    )
    assert response.status_code == 201, response.content
    assert response.json()["issuing_entity"] == str(new.pk)
    with in_a():
        for month in (1, 2, 3, 4, 5):  # the monthly runs, each on its day
            with time_machine.travel(f"2026-{month:02d}-01 12:00Z", tick=False):
                run(date(2026, month, 1), only=("billing",))
        invoices = Invoice.objects.filter(contract=contract).select_related("issuing_entity")
        entities = {i.billing_date.month: i.issuing_entity.invoice_prefix for i in invoices}
        assert entities == {1: "OLD-", 2: "OLD-", 3: "OLD-", 4: "NEW-", 5: "NEW-"}
        assert all(i.number.startswith(i.issuing_entity.invoice_prefix) for i in invoices if i.number)
    with time_machine.travel("2026-05-02 12:00Z", tick=False):
        read = api.get(f"/api/v1/contracts/{contract.number}").json()
    assert read["issuing_entity"] == str(new.pk)


@pytest.mark.parametrize("ref, words", [("NOPE-", "No issuing entity"), ({"id": 1}, "string")])
def test_an_amendment_naming_an_unknown_entity_is_refused(api, in_a, ref, words):
    with in_a():
        contract = contract_with(dict(RETAINER), start=date(2026, 1, 1))
    response = post(
        api, f"/api/v1/contracts/{contract.number}/amendments", {"effective_from": "2026-04-01", "issuing_entity": ref}
    )
    assert response.status_code == 422
    assert any(words in m for m in response.json()["error"]["fields"]["issuing_entity"])


def test_a_fixed_fee_budget_is_posted_read_back_and_raises_a_review_when_overrun(api, in_a):
    from contracts.tests.factories import customer_payload

    assert post(api, "/api/v1/customers", customer_payload(external_id="budget-co")).status_code == 201
    payload = {
        "customer": "budget-co",
        "number": "C-BUDGET",
        "title": "Website build",
        "start_date": "2026-01-01",
        "end_date": "2026-06-30",
        "currency": "USD",
        "price_lines": [
            {
                "kind": "fixed_fee",
                "description": "Build",
                "amount": "12000.00",
                "bill_on": "2026-01-01",
                "included_hours": "80",
            }
        ],
    }
    response = post(api, "/api/v1/contracts", payload)
    assert response.status_code == 201, response.content
    assert response.json()["price_lines"][0]["included_hours"] == "80"
    assert (
        post(
            api,
            "/api/v1/contracts",
            {**payload, "number": "C-B2", "price_lines": [{**payload["price_lines"][0], "included_hours": "-1"}]},
        ).status_code
        == 422
    )
    with time_machine.travel("2026-02-02 12:00Z", tick=False):
        entries = [
            {
                "external_id": f"b{i}",
                "contract": "C-BUDGET",
                "person": "dev",
                "role": "engineer",
                "date": "2026-01-20",
                "hours": "9",
                "price_line": "L1",
            }
            for i in range(10)
        ]
        assert post(api, "/api/v1/time-entries", entries).status_code == 202
        with in_a():
            run(date(2026, 2, 1), only=("billing",))
            assert BillingReviewTask.objects.filter(kind="budget_overrun", title__contains="C-BUDGET").exists()
