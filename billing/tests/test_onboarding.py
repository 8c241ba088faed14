"""Onboarding live contracts: ``billed_through`` on every door, the first run shown before import,
and the contracts CSV's amendment, delivery and discount columns."""

from __future__ import annotations

import csv
import io
import json
from datetime import date
from decimal import Decimal

import pytest
import time_machine
from django.test import Client

from billing.models import Invoice, InvoiceLine
from billing.services.runs import billing_run
from contracts.models import Contract, Milestone
from contracts.services.customers import customer_create
from contracts.services.imports import ImportRejected, contracts_import_commit, contracts_import_preview
from contracts.tests.factories import contract_payload, customer_payload
from discounts.models import Discount

pytestmark = pytest.mark.django_db

TODAY = date(2026, 12, 10)
COLUMNS = [
    "number", "customer", "title", "start_date", "end_date", "currency", "billed_through", "effective_from",
    "line_kind", "line_description", "amount", "frequency", "timing", "reference", "expected_date", "delivered_on",
    "discount_value", "discount_end_date",
]  # fmt: skip


def to_csv(rows) -> str:
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=COLUMNS, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return out.getvalue()


def retainer(number="C-1", **extra) -> dict:
    row = {
        "number": number,
        "customer": "acme-ltd",
        "title": "Platform",
        "start_date": "2026-01-01",
        "end_date": "2027-12-31",
        "currency": "USD",
        "line_kind": "recurring",
        "line_description": "Retainer",
        "amount": "3100.00",
        "frequency": "monthly",
        "timing": "advance",
    }
    row.update(extra)
    return row


@pytest.fixture
def acme(in_tenant_a):
    with time_machine.travel(TODAY, tick=False):
        customer_create(data=customer_payload(external_id="acme-ltd", currency="USD"))
        yield


def test_without_billed_through_the_preview_shows_the_catch_up_before_anything_is_written(acme):
    with time_machine.travel(TODAY, tick=False):
        preview = contracts_import_preview(text=to_csv([retainer()]))
        assert preview.ok and preview.catch_up_count == 1
        run = preview.first_run["C-1"]
        # Jan–Dec 2026 in advance: twelve periods, eleven of them before this month.
        assert (run["periods"], run["catch_up_periods"]) == (12, 11)
        assert run["totals"] == {"USD": "37200.00"} and run["catch_up"] == {"USD": "34100.00"}
        assert not Contract.objects.exists() and not Invoice.objects.exists()


def test_billed_through_the_end_of_last_month_bills_only_the_current_period(acme):
    text = to_csv([retainer(billed_through="2026-11-30")])
    with time_machine.travel(TODAY, tick=False):
        preview = contracts_import_preview(text=text)
        assert preview.catch_up_count == 0
        assert preview.first_run["C-1"]["totals"] == {"USD": "3100.00"}
        contracts_import_commit(text=text)
        contract = Contract.objects.get(number="C-1")
        assert contract.billed_through == date(2026, 11, 30)
        billing_run(as_of=TODAY)
    lines = list(InvoiceLine.objects.filter(contract=contract).values_list("period_start", "amount"))
    assert lines == [(date(2026, 12, 1), Decimal("3100.00"))]


def test_billed_through_on_the_api_round_trips_and_is_checked(tenant_a, acme):
    api = Client(HTTP_HOST=tenant_a.host, HTTP_AUTHORIZATION=f"Bearer {tenant_a.api_key}")
    payload = contract_payload(customer="acme-ltd", number="C-77", billed_through="2026-06-30")
    with time_machine.travel(TODAY, tick=False):
        created = api.post("/api/v1/contracts", json.dumps(payload), content_type="application/json")
        assert created.status_code == 201, created.content
        assert created.json()["billed_through"] == "2026-06-30"
        assert api.get(f"/api/v1/contracts/{created.json()['id']}").json()["billed_through"] == "2026-06-30"
        bad = api.post(
            "/api/v1/contracts",
            json.dumps(contract_payload(customer="acme-ltd", number="C-78", billed_through="2025-12-31")),
            content_type="application/json",
        )
    assert bad.status_code == 422
    assert "before the contract starts" in bad.json()["error"]["fields"]["billed_through"][0]
    assert not Contract.objects.filter(number="C-78").exists()


def test_an_amendment_row_becomes_version_two_and_the_first_run_prices_each_period_by_its_version(acme):
    rows = [retainer(), retainer(number="C-1", effective_from="2026-07-01", amount="3400.00", customer="", title="")]
    with time_machine.travel(TODAY, tick=False):
        preview = contracts_import_preview(text=to_csv(rows))
        assert preview.ok, [r.errors for r in preview.bad_rows]
        assert preview.first_run["C-1"]["totals"] == {"USD": str(Decimal("3100.00") * 6 + Decimal("3400.00") * 6)}
        contracts_import_commit(text=to_csv(rows))
    versions = list(Contract.objects.get(number="C-1").versions.order_by("version"))
    assert [(v.version, v.effective_from) for v in versions] == [(1, date(2026, 1, 1)), (2, date(2026, 7, 1))]
    assert versions[1].price_lines.get().amount == Decimal("3400.00")


def test_an_amendment_outside_the_contract_is_reported_on_its_row_and_nothing_is_imported(acme):
    rows = [retainer(number="C-0"), retainer(), retainer(number="C-1", effective_from="2028-03-01", customer="")]
    with time_machine.travel(TODAY, tick=False):
        preview = contracts_import_preview(text=to_csv(rows))
        assert [r.line for r in preview.bad_rows] == [4]
        assert (
            "effective_from" in preview.bad_rows[0].errors[0] and "ends on 31 Dec 2027" in preview.bad_rows[0].errors[0]
        )
        with pytest.raises(ImportRejected):
            contracts_import_commit(text=to_csv(rows))
    assert not Contract.objects.exists()


def test_delivered_on_marks_the_milestone_and_a_discount_column_grants_the_discount(acme):
    rows = [
        retainer(discount_value="10", discount_end_date="2026-03-31"),
        {"number": "C-1", "line_kind": "milestone", "line_description": "Go-live", "amount": "5000.00",
         "reference": "P-1", "expected_date": "2026-04-30", "delivered_on": "2026-04-28"},
    ]  # fmt: skip
    with time_machine.travel(TODAY, tick=False):
        contracts_import_commit(text=to_csv(rows))
    milestone = Milestone.objects.get(contract__number="C-1")
    assert milestone.status == "delivered" and milestone.delivered_at.date() == date(2026, 4, 28)
    discount = Discount.objects.get(contract__number="C-1")
    assert (discount.kind, discount.value, discount.end_date) == ("percentage", Decimal("10"), date(2026, 3, 31))


@pytest.mark.parametrize(
    ("extra", "column", "message"),
    [
        ({"delivered_on": "2027-01-05"}, "delivered_on", "in the future"),
        ({"discount_value": "10"}, "discount_end_date", ""),
        ({"billed_through": "2025-06-30"}, "billed_through", "before the contract starts"),
        ({"billed_through": "30/06/2026"}, "billed_through", "is not a date"),
    ],
)
def test_bad_cut_over_columns_name_their_row_and_column(acme, extra, column, message):
    row = retainer(**extra)
    if "delivered_on" in extra:
        row.update(line_kind="milestone", line_description="Go-live", frequency="", timing="", reference="P-1")
    with time_machine.travel(TODAY, tick=False):
        preview = contracts_import_preview(text=to_csv([row]))
    assert not preview.ok
    (bad,) = preview.bad_rows
    assert bad.line == 2 and any(e.startswith(f"{column}:") and message in e for e in bad.errors), bad.errors
    assert not Contract.objects.exists()
