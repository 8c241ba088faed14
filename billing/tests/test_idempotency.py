"""Never missed, never doubled: redeliveries, concurrency, aborted runs, catch-up (DESIGN.md §6).

Concurrency tests use committed data (``committed_db``) and real threads, each with its own
database connection, so the locks and unique indexes are really contended.
"""

from __future__ import annotations

import json
import threading
import uuid
from datetime import UTC, date, datetime
from decimal import Decimal

import pytest
import time_machine
from django.db import connection
from django.test import Client
from django_tenants.utils import schema_context

from billing.models import DeliveryEvent, Invoice, InvoiceLine, NumberSequence, UsageEvent
from billing.services.enqueue import task_send as real_task_send
from billing.services.ingestion import delivery_event_process, delivery_events_process_pending
from billing.services.invoicing import invoice_issue
from billing.services.runs import billing_run
from billing.services.triggers import contract_bill_due
from billing.tests.builders import contract_with, hours, usage

D = Decimal
RETAINER = {
    "kind": "recurring",
    "description": "Retainer",
    "amount": D("1000.00"),
    "frequency": "monthly",
    "timing": "advance",
}
USAGE = {
    "kind": "usage",
    "description": "API calls",
    "metric": "api_calls",
    "frequency": "monthly",
    "timing": "",
    "amount": None,
    "aggregation": "sum",
    "charge_model": "per_unit",
    "unit_amount": D("1.00"),
}
MILESTONE = {
    "kind": "milestone",
    "description": "Go-live",
    "amount": D("12000.00"),
    "frequency": "",
    "timing": "",
    "reference": "PROJ-12",
    "line_ref": "M1",
}
TM = {
    "kind": "time_and_materials",
    "description": "Engineering",
    "amount": None,
    "frequency": "",
    "timing": "",
    "cap": None,
    "line_ref": "TM",
}


@pytest.fixture(autouse=True)
def now_in_december():
    with time_machine.travel(datetime(2026, 12, 20, 12, tzinfo=UTC), tick=False):
        yield


@pytest.fixture
def committed_a(committed_db, tenant_a):
    with schema_context(tenant_a.schema):
        yield tenant_a


def concurrently(n: int, schema: str, work) -> list:
    """Run ``work(i)`` in ``n`` threads released together; each thread has its own connection."""
    barrier = threading.Barrier(n)
    results: list = [None] * n
    errors: list[BaseException] = []

    def run(i: int) -> None:
        try:
            with schema_context(schema):
                barrier.wait(timeout=30)
                results[i] = work(i)
        except BaseException as exc:  # reported below, in the test's thread
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=run, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not errors, errors
    return results


def api_client(tenant) -> Client:
    return Client(HTTP_HOST=tenant.host, HTTP_AUTHORIZATION=f"Bearer {tenant.api_key}")


def invoices_of(contract) -> list[Invoice]:
    return list(Invoice.objects.filter(contract=contract).order_by("id"))


# --------------------------------------------------------------------------- redeliveries


def test_the_same_usage_batch_posted_five_times_at_once_stores_one_fact_each_and_bills_once(committed_a):
    contract = contract_with(dict(USAGE, line_ref="U"), start=date(2026, 1, 1))
    batch = [
        {
            "transaction_id": f"tx-{uuid.uuid4().hex}",
            "contract": contract.number,
            "metric": "api_calls",
            "quantity": str(q),
            "timestamp": f"2026-01-{10 + q}T08:00:00Z",
        }
        for q in (1, 2, 3)
    ]
    body = json.dumps({"events": batch})

    answers = concurrently(
        5,
        committed_a.schema,
        lambda i: api_client(committed_a).post("/api/v1/usage-events", body, content_type="application/json"),
    )
    assert all(a.status_code == 202 for a in answers), [a.content for a in answers]
    assert sum(a.json()["accepted"] for a in answers) == 3
    assert sum(a.json()["duplicates"] for a in answers) == 12
    assert UsageEvent.objects.filter(contract=contract).count() == 3

    concurrently(5, committed_a.schema, lambda i: contract_bill_due(contract_id=contract.pk, as_of=date(2026, 2, 1)))
    (invoice,) = invoices_of(contract)
    assert [(ln.quantity, ln.amount) for ln in invoice.lines.all()] == [(D("6"), D("6.00"))]


def test_a_milestone_webhook_delivered_five_times_at_once_bills_once(committed_a):
    from contracts.models import Milestone

    contract = contract_with(MILESTONE)
    Milestone.objects.get_or_create(
        contract=contract, line_ref="M1", defaults={"name": "Go-live", "reference": "PROJ-12"}
    )
    body = json.dumps(
        {
            "kind": "milestone_completed",
            "contract": contract.number,
            "milestone_ref": "PROJ-12",
            "occurred_at": "2026-03-20T10:00:00Z",
            "external_id": f"jira-{uuid.uuid4().hex}",
            "source": "jira",
        }
    )

    answers = concurrently(
        5,
        committed_a.schema,
        lambda i: api_client(committed_a).post("/api/v1/delivery-events", body, content_type="application/json").json(),
    )
    assert sorted(a["status"] for a in answers) == ["accepted"] + ["duplicate"] * 4
    assert len({a["id"] for a in answers}) == 1
    (event,) = DeliveryEvent.objects.filter(contract=contract)

    processed = concurrently(5, committed_a.schema, lambda i: delivery_event_process(event_id=event.pk))
    assert processed.count(True) == 1
    concurrently(5, committed_a.schema, lambda i: contract_bill_due(contract_id=contract.pk, as_of=date(2026, 3, 20)))
    (invoice,) = invoices_of(contract)
    assert invoice.total == D("12000.00") and invoice.status == "issued"


def test_events_stored_while_the_broker_is_down_are_billed_when_the_sweep_runs(
    in_tenant_a, monkeypatch, django_capture_on_commit_callbacks
):
    from contracts.models import Milestone
    from revexos.celery import app

    def broker_down(*args, **kwargs):
        raise ConnectionRefusedError("redis is down")

    monkeypatch.setattr("billing.services.enqueue.task_send", real_task_send)
    monkeypatch.setattr(app, "send_task", broker_down)
    contract = contract_with(MILESTONE)
    Milestone.objects.get_or_create(
        contract=contract, line_ref="M1", defaults={"name": "Go-live", "reference": "PROJ-12"}
    )
    with django_capture_on_commit_callbacks(execute=True):
        response = api_client(in_tenant_a).post(
            "/api/v1/delivery-events",
            json.dumps(
                {
                    "kind": "milestone_completed",
                    "contract": contract.number,
                    "milestone_ref": "PROJ-12",
                    "occurred_at": "2026-03-20T10:00:00Z",
                    "external_id": "evt-broker-down",
                }
            ),
            content_type="application/json",
        )
    assert response.status_code == 202  # acknowledged: the fact is stored even though no task was sent
    assert delivery_events_process_pending() == 1
    (invoice,) = contract_bill_due(contract_id=contract.pk, as_of=date(2026, 3, 21)).invoices
    assert invoice.total == D("12000.00")


# --------------------------------------------------------------------------- concurrent runs and issuing


def test_two_billing_runs_at_once_create_each_invoice_once(committed_a):
    contracts = [contract_with(RETAINER, dict(USAGE, line_ref="U"), start=date(2026, 1, 1)) for _ in range(8)]
    for contract in contracts:
        usage(contract, "api_calls", 7, date(2026, 2, 3))
    ids = [c.pk for c in contracts]

    summaries = concurrently(2, committed_a.schema, lambda i: billing_run(as_of=date(2026, 3, 1), contract_ids=ids))
    assert all(s["errors"] == [] for s in summaries)
    assert sum(s["invoices_created"] for s in summaries) == 8
    for contract in contracts:
        (invoice,) = invoices_of(contract)
        keys = sorted(invoice.lines.values_list("kind", "period_start", "amount"))
        assert keys == [
            ("recurring", date(2026, 1, 1), D("1000.00")),
            ("recurring", date(2026, 2, 1), D("1000.00")),
            ("recurring", date(2026, 3, 1), D("1000.00")),
            ("usage", date(2026, 2, 1), D("7.00")),
        ]


def test_twenty_invoices_issued_at_once_get_twenty_consecutive_numbers(committed_a):
    from contracts.tests.factories import IssuingEntityFactory

    prefix = f"T{uuid.uuid4().hex[:6].upper()}-"
    entity = IssuingEntityFactory(invoice_prefix=prefix)
    drafts = []
    for _ in range(20):
        contract = contract_with(RETAINER, auto_issue=False, issuing_entity=entity)
        drafts.extend(contract_bill_due(contract_id=contract.pk, as_of=date(2026, 1, 15)).invoices)
    assert all(d.status == "draft" and d.number is None for d in drafts)

    issued = concurrently(20, committed_a.schema, lambda i: invoice_issue(invoice_id=drafts[i].pk).number)
    assert sorted(issued) == [f"{prefix}2026-{n:06d}" for n in range(1, 21)]


# --------------------------------------------------------------------------- aborted run


class WorkerKilled(BaseException):
    """Not an Exception: like SIGKILL, nothing in the run may catch it."""


def test_a_run_killed_mid_way_leaves_no_partial_invoice_and_no_gap_and_the_rerun_completes(committed_a, monkeypatch):
    from billing.services import invoicing
    from contracts.tests.factories import IssuingEntityFactory

    entity = IssuingEntityFactory(invoice_prefix=f"K{uuid.uuid4().hex[:6].upper()}-")
    contracts = [
        contract_with(RETAINER, dict(USAGE, line_ref="U"), start=date(2026, 1, 1), issuing_entity=entity)
        for _ in range(5)
    ]
    for contract in contracts:
        usage(contract, "api_calls", 5, date(2026, 1, 20))
    ids = [c.pk for c in contracts]

    real_assign = invoicing.document_number_assign
    calls = {"n": 0}

    def assign_then_die(**kwargs):
        number = real_assign(**kwargs)  # the third contract takes its number, then the worker dies
        calls["n"] += 1
        if calls["n"] == 3:
            raise WorkerKilled()
        return number

    monkeypatch.setattr(invoicing, "document_number_assign", assign_then_die)
    with pytest.raises(WorkerKilled):
        billing_run(as_of=date(2026, 2, 1), contract_ids=ids)

    assert [len(invoices_of(c)) for c in contracts] == [1, 1, 0, 0, 0]
    assert not InvoiceLine.objects.filter(invoice__contract=contracts[2]).exists()
    assert not UsageEvent.objects.filter(contract=contracts[2], invoice_line__isnull=False).exists()
    assert NumberSequence.objects.get(issuing_entity=entity, kind="invoice").last_value == 2

    monkeypatch.setattr(invoicing, "document_number_assign", real_assign)
    summary = billing_run(as_of=date(2026, 2, 1), contract_ids=ids)
    assert summary["invoices_created"] == 3 and summary["errors"] == []
    numbers = [invoices_of(c)[0].number for c in contracts]
    assert numbers == [f"{entity.invoice_prefix}2026-{n:06d}" for n in range(1, 6)]
    assert all(invoices_of(c)[0].total == D("2005.00") for c in contracts)  # Jan + Feb retainer, 5 Jan calls


# --------------------------------------------------------------------------- catch-up


def test_after_three_months_without_runs_each_missed_period_is_billed_exactly_once(in_tenant_a):
    contract = contract_with(
        RETAINER, dict(USAGE, line_ref="U"), dict(TM, rates=[("engineer", "100.00")]), start=date(2026, 1, 1)
    )
    for month, quantity in [(1, 10), (2, 20), (3, 30), (4, 99)]:
        usage(contract, "api_calls", quantity, date(2026, month, 15))
    hours(contract, "4", date(2026, 2, 11), line_ref="TM")

    (invoice,) = contract_bill_due(contract_id=contract.pk, as_of=date(2026, 4, 1)).invoices
    got = sorted((ln.kind, ln.period_start.month, ln.amount) for ln in invoice.lines.all())
    assert got == [
        ("recurring", 1, D("1000.00")),
        ("recurring", 2, D("1000.00")),
        ("recurring", 3, D("1000.00")),
        ("recurring", 4, D("1000.00")),
        ("time_and_materials", 2, D("400.00")),
        ("usage", 1, D("10.00")),
        ("usage", 2, D("20.00")),
        ("usage", 3, D("30.00")),
    ]
    assert invoice.issue_date == date(2026, 4, 1)
    for as_of in (date(2026, 4, 1), date(2026, 2, 1), date(2026, 4, 2)):
        assert contract_bill_due(contract_id=contract.pk, as_of=as_of).invoices == []
    assert [
        ln.period_start.month
        for ln in contract_bill_due(contract_id=contract.pk, as_of=date(2026, 5, 1)).invoices[0].lines.all()
    ] == [4, 5]
