"""Recorded runs: chunks under leases, takeover of abandoned runs, the sweep, honest statuses."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pytest
import time_machine
from django.test import Client
from django.utils import timezone

from billing.models import BillingReviewTask, BillingRun, BillingRunChunk, Invoice
from billing.services import runs
from billing.services.enqueue import task_send as real_task_send  # before the autouse fixture replaces it
from billing.tests.builders import contract_with, usage

D = Decimal
RETAINER = {
    "kind": "recurring",
    "description": "Retainer",
    "amount": D("1000.00"),
    "frequency": "monthly",
    "timing": "advance",
}


@pytest.fixture(autouse=True)
def in_march():
    with time_machine.travel(datetime(2026, 3, 10, 12, tzinfo=UTC), tick=True):
        yield


@pytest.fixture
def small_chunks(settings):
    settings.BILLING_CHUNK_SIZE = 2


def portfolio(n: int = 5):
    return [contract_with(RETAINER, start=date(2026, 1, 1)) for _ in range(n)]


def api(tenant) -> Client:
    return Client(HTTP_HOST=tenant.host, HTTP_AUTHORIZATION=f"Bearer {tenant.api_key}")


def test_a_run_abandoned_by_its_worker_is_resent_by_the_sweep_and_resumed_from_its_chunks(
    in_tenant_a, small_chunks, enqueued, django_capture_on_commit_callbacks
):
    contracts = portfolio(5)
    run = runs.run_create(as_of=date(2026, 2, 1), only=["billing"])
    # A worker claims the run, bills one chunk, and dies (nothing after that runs).
    claimed = runs._claim(run.pk)
    BillingRunChunk.objects.bulk_create(
        [
            BillingRunChunk(run=run, step="billing", seq=n, contract_ids=[c.pk for c in contracts[s : s + 2]])
            for n, s in enumerate(range(0, 5, 2))
        ]
    )
    claimed.summary = {"_prepared": {"billing": {}}}
    claimed.save(update_fields=["summary"])
    first = runs.chunk_claim(run_id=run.pk, step="billing")
    runs.chunk_execute(first, as_of=run.as_of)
    assert Invoice.objects.filter(contract__in=contracts).count() == 2

    # A redelivered task while the lease holds leaves it alone; the sweep ignores a live run.
    assert runs.run_execute(run_id=run.pk).status == "running"
    assert runs.runs_sweep()["runs_resent"] == 0
    BillingRun.objects.filter(pk=run.pk).update(lease_until=timezone.now() - timedelta(seconds=1))
    with django_capture_on_commit_callbacks(execute=True):
        assert runs.runs_sweep()["runs_resent"] == 1
    assert ("billing.tasks.run_execute", {"run_id": str(run.pk)}) in enqueued

    done = runs.run_execute(run_id=run.pk)  # what the re-sent task does
    assert done.status == "succeeded" and done.attempts == 2
    assert done.summary["billing"]["invoices_created"] == 5 and done.summary["billing"]["chunks"] == 3
    assert all(Invoice.objects.filter(contract=c).count() == 1 for c in contracts)


def test_a_run_whose_worker_keeps_dying_fails_and_says_why(in_tenant_a):
    run = runs.run_create(as_of=date(2026, 2, 1), only=["billing"])
    for _ in range(runs.RUN_MAX_ATTEMPTS):
        assert runs._claim(run.pk) is not None
        BillingRun.objects.filter(pk=run.pk).update(lease_until=timezone.now() - timedelta(seconds=1))
    final = runs.run_execute(run_id=run.pk)
    assert final.status == "failed" and "stopped each time" in final.error


def test_a_run_posted_while_the_broker_is_down_is_sent_again_by_the_sweep(
    in_tenant_a, enqueued, settings, django_capture_on_commit_callbacks
):
    portfolio(2)
    settings.BILLING_RUN_QUEUED_GRACE_SECONDS = 60
    run = runs.run_create(as_of=date(2026, 2, 1), only=["billing"])  # its task was never sent
    assert runs.runs_sweep()["runs_resent"] == 0  # still within the grace period
    BillingRun.objects.filter(pk=run.pk).update(created_at=timezone.now() - timedelta(minutes=2))
    with django_capture_on_commit_callbacks(execute=True):
        assert runs.runs_sweep()["runs_resent"] == 1
    assert enqueued == [("billing.tasks.run_execute", {"run_id": str(run.pk)})]
    assert runs.run_execute(run_id=run.pk).status == "succeeded"


def test_a_run_with_a_failing_contract_completes_with_errors_and_counts_them(in_tenant_a, small_chunks):
    good = portfolio(3)
    broken = contract_with(
        RETAINER,
        {
            "kind": "usage",
            "description": "Calls",
            "metric": "calls",
            "frequency": "monthly",
            "timing": "",
            "amount": None,
            "aggregation": "sum",
            "charge_model": "graduated",
            "line_ref": "U",
            "tiers": [],
        },
        start=date(2026, 1, 1),
    )
    usage(broken, "calls", 3, date(2026, 1, 9))
    run = runs.run_create(as_of=date(2026, 2, 1), only=["billing"])
    done = runs.run_execute(run_id=run.pk)
    assert done.status == "completed_with_errors" and done.errors_count == 1
    assert [e["contract"] for e in done.summary["billing"]["errors"]] == [str(broken.pk)]
    assert all(Invoice.objects.filter(contract=c).exists() for c in good)
    assert BillingReviewTask.objects.filter(contract=broken, kind="billing_error", status="open").exists()


def test_the_api_says_completed_with_errors_and_refuses_oversized_synchronous_runs(in_tenant_a, settings):
    portfolio(3)
    settings.BILLING_RUN_SYNC_MAX_CONTRACTS = 2
    response = api(in_tenant_a).post(
        "/api/v1/runs", json.dumps({"as_of": "2026-02-01", "only": ["billing"]}), content_type="application/json"
    )
    assert response.status_code == 422
    assert "async" in response.json()["error"]["fields"]
    assert not BillingRun.objects.exists()


def test_the_beat_cycle_is_idle_once_today_is_done_until_a_contract_changes(in_tenant_a, enqueued, monkeypatch):
    from billing import tasks

    contracts = portfolio(2)
    sent = []
    monkeypatch.setattr(tasks.cycle_chunk, "apply_async", lambda kwargs, headers: sent.append(kwargs))
    first = tasks.cycle_tenant.run()
    assert first["billing"] >= 2
    for kwargs in sent:
        tasks.cycle_chunk.run(**kwargs)
    (run,) = BillingRun.objects.filter(trigger="beat")
    assert run.status in ("succeeded", "completed_with_errors") and run.summary["billing"]["invoices_created"] >= 2
    assert tasks.cycle_tenant.run() == {"idle": True}  # the next hour: nothing to do

    contracts[0].title = "Renamed"
    contracts[0].save()
    assert "billing" in tasks.cycle_tenant.run()  # a change since today's run: the cycle runs again


def test_the_idle_beat_asks_at_most_a_few_queries(in_tenant_a, django_assert_max_num_queries):
    from billing.services.runs import beat_cycle_needed

    runs.beat_run_finish_if_done(run_id=runs.beat_run_start(day=date(2026, 3, 10)).pk, dispatched=True)
    with django_assert_max_num_queries(2):
        assert beat_cycle_needed(day=date(2026, 3, 10)) is False


def test_requests_do_not_wait_on_a_broker_that_is_down(in_tenant_a, monkeypatch, django_capture_on_commit_callbacks):
    """One failed attempt pauses enqueueing (the sweeps pick the work up), so the next requests
    never touch the broker; and no request waits on the result backend (ignore_result)."""
    from revexos.celery import app

    attempts = []

    def broker_down(*args, **kwargs):
        attempts.append(kwargs)
        raise ConnectionRefusedError("redis is down")

    monkeypatch.setattr("billing.services.enqueue.task_send", real_task_send)
    monkeypatch.setattr(app, "send_task", broker_down)
    contract = portfolio(1)[0]
    for n in range(3):
        with django_capture_on_commit_callbacks(execute=True):
            response = api(in_tenant_a).post(
                "/api/v1/time-entries",
                json.dumps(
                    {
                        "entries": [
                            {
                                "external_id": f"te-down-{n}-{contract.pk}",
                                "contract": contract.number,
                                "person": "Ada",
                                "role": "engineer",
                                "date": "2026-03-02",
                                "hours": "2",
                            }
                        ]
                    }
                ),
                content_type="application/json",
            )
        assert response.status_code == 202, response.content
    assert len(attempts) == 1 and attempts[0]["ignore_result"] is True and attempts[0]["retry"] is False


def test_delivery_events_and_billing_of_one_milestone_at_once_take_locks_in_one_order(committed_db, tenant_a):
    """20 delivery events for one milestone racing billing commits: no deadlock, billed once."""
    import uuid

    from django_tenants.utils import schema_context

    from billing.models import DeliveryEvent
    from billing.services.ingestion import delivery_event_process
    from billing.services.triggers import contract_bill_due
    from billing.tests.test_idempotency import MILESTONE, concurrently
    from contracts.models import Milestone

    with schema_context(tenant_a.schema):
        contract = contract_with(MILESTONE)
        milestone = Milestone.objects.create(contract=contract, line_ref="M1", name="Go-live", reference="PROJ-12")
        Milestone.objects.filter(pk=milestone.pk).update(status="delivered", delivered_at=timezone.now())
        events = [
            DeliveryEvent.objects.create(
                source="jira",
                kind="milestone_completed",
                external_id=f"race-{uuid.uuid4().hex}",
                contract=contract,
                payload={"milestone_ref": "PROJ-12"},
                occurred_at=timezone.now(),
            )
            for _ in range(10)
        ]

    def work(i: int):
        if i % 2:
            return contract_bill_due(contract_id=contract.pk, as_of=date(2026, 3, 10))
        return delivery_event_process(event_id=events[i // 2].pk)

    concurrently(20, tenant_a.schema, work)  # raises if any thread hit a deadlock
    with schema_context(tenant_a.schema):
        (invoice,) = Invoice.objects.filter(contract=contract)
        assert invoice.lines.get().kind == "milestone"
        assert not DeliveryEvent.objects.filter(pk__in=[e.pk for e in events], processed_at__isnull=True).exists()
