"""Runs survive faults, with real parts: a Celery worker process killed with SIGKILL mid-run, and
a run posted while the broker is unreachable. Both end ``succeeded`` with nobody rerunning them,
each contract billed once, numbers gapless.

The tests bill a tenant of their own (committed), so the real worker touches no other test's data.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from datetime import date, timedelta
from decimal import Decimal

import pytest
from django.db import connection
from django.test import Client
from django.utils import timezone
from django_tenants.utils import schema_context

from billing.models import BillingRun, BillingRunChunk, Invoice, InvoiceLine
from billing.services import enqueue
from billing.services.enqueue import task_send as real_task_send
from revexos.celery import app

pytestmark = pytest.mark.slow

D = Decimal
CONTRACTS = 60
AS_OF = date(2026, 6, 1)
RETAINER = {
    "kind": "recurring",
    "description": "Retainer",
    "amount": D("1000.00"),
    "frequency": "monthly",
    "timing": "advance",
}


def _test_database_url() -> str:
    from tests.test_celery import _database_url_of_test_db

    return _database_url_of_test_db()


def _wait(condition, *, timeout: float = 120, what: str = "") -> None:
    """Poll the database until ``condition()`` holds (no fixed sleeps: a deadline)."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.02)


class Worker:
    """A real ``celery worker`` (its own process group) on private queues, against the test database."""

    def __init__(self, queue: str, env: dict):
        self.process = subprocess.Popen(
            [
                *(sys.executable, "-m", "celery", "-A", "revexos", "worker", "--concurrency", "1", "-l", "WARNING"),
                *("-Q", ",".join([queue, f"{queue}.billing", f"{queue}.delivery"])),
                *("--without-heartbeat", "--without-gossip", "--without-mingle", "-n", f"{uuid.uuid4().hex[:6]}@%h"),
            ],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )

    def kill(self) -> None:
        os.killpg(self.process.pid, signal.SIGKILL)  # the parent and its pool child, no clean-up
        self.process.wait(timeout=30)

    def stop(self) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.kill()


@pytest.fixture(scope="module")
def faults_tenant(django_db_setup, django_db_blocker):
    from conftest import _provision

    with django_db_blocker.unblock():
        tenant = _provision(f"faults-{uuid.uuid4().hex[:6]}")
        connection.set_schema_to_public()
    return tenant


@pytest.fixture
def private_queue(committed_db, settings, monkeypatch):
    """Tasks of this test go to private queues that only its workers serve."""
    queue = f"rvx-faults-{uuid.uuid4().hex[:8]}"
    previous = app.conf.task_default_queue
    app.conf.task_default_queue = queue
    monkeypatch.setattr("billing.services.enqueue.task_send", real_task_send)
    monkeypatch.setattr(enqueue, "_paused_until", 0.0)
    settings.BILLING_RUN_LEASE_SECONDS = 3
    env = {
        **os.environ,
        "DATABASE_URL": _test_database_url(),
        "CELERY_QUEUE": queue,
        "BILLING_CHUNK_SIZE": "3",
        "BILLING_RUN_LEASE_SECONDS": "3",
        "BILLING_RUN_HELPERS": "0",
        "EMAIL_URL": "locmem://",
    }
    workers: list[Worker] = []

    def start() -> Worker:
        worker = Worker(queue, env)
        workers.append(worker)
        return worker

    yield start
    for worker in workers:
        worker.stop()
    app.conf.task_default_queue = previous


def _portfolio(schema: str) -> list[int]:
    from billing.tests.builders import contract_with
    from contracts.tests.factories import IssuingEntityFactory

    with schema_context(schema):
        entity = IssuingEntityFactory(invoice_prefix=f"F{uuid.uuid4().hex[:5].upper()}-")
        return [contract_with(RETAINER, start=date(2026, 1, 1), issuing_entity=entity).pk for _ in range(CONTRACTS)]


def _sweep_as_the_beat_does(schema: str) -> None:
    from billing.services.runs import runs_sweep

    with schema_context(schema):
        runs_sweep()


def _billed_once(schema: str, ids: list[int]) -> None:
    with schema_context(schema):
        invoices = list(Invoice.objects.filter(contract_id__in=ids).order_by("number"))
        assert len(invoices) == CONTRACTS  # one catch-up invoice per contract (Jan–Jun)
        assert InvoiceLine.objects.filter(contract_id__in=ids).count() == CONTRACTS * 6
        prefix = invoices[0].number.split("2026-")[0]
        assert [i.number for i in invoices] == [f"{prefix}2026-{n:06d}" for n in range(1, CONTRACTS + 1)]


def test_a_worker_killed_mid_run_is_taken_over_and_the_run_succeeds(faults_tenant, private_queue):
    schema = faults_tenant.schema
    ids = _portfolio(schema)
    first = private_queue()
    response = Client(HTTP_HOST=faults_tenant.host, HTTP_AUTHORIZATION=f"Bearer {faults_tenant.api_key}").post(
        "/api/v1/runs", json.dumps({"as_of": AS_OF.isoformat(), "async": True}), content_type="application/json"
    )
    assert response.status_code == 202
    run_id = response.json()["id"]

    def some_chunks_done() -> bool:
        with schema_context(schema):
            return BillingRunChunk.objects.filter(run_id=run_id, status="done").count() >= 2

    _wait(some_chunks_done, what="the worker to bill a few chunks")
    first.kill()
    with schema_context(schema):
        run = BillingRun.objects.get(pk=run_id)
        open_chunks = BillingRunChunk.objects.filter(run_id=run_id).exclude(status="done").count()
    assert run.status == "running" and open_chunks > 0  # killed mid-run: left running

    private_queue()  # a new worker comes up
    with schema_context(schema):  # the dead worker's lease runs out (time moved on, not waited for)
        BillingRun.objects.filter(pk=run_id).update(lease_until=timezone.now() - timedelta(seconds=1))
    _sweep_as_the_beat_does(schema)  # as the beat fires it every two minutes

    def finished() -> bool:
        with schema_context(schema):
            return BillingRun.objects.get(pk=run_id).status not in ("queued", "running")

    _wait(finished, what="the resumed run to finish")
    with schema_context(schema):
        run = BillingRun.objects.get(pk=run_id)
    assert run.status == "succeeded" and run.attempts == 2, run.error
    _billed_once(schema, ids)


def test_a_run_posted_while_the_broker_is_down_is_billed_when_it_is_back(faults_tenant, private_queue):
    schema = faults_tenant.schema
    ids = _portfolio(schema)
    working = app.conf.broker_url
    calls = []
    real_send = app.send_task

    def counted(*args, **kwargs):
        calls.append(threading.get_ident())
        return real_send(*args, **kwargs)

    # The broker is unreachable: a closed port, a fresh connection pool.
    app.conf.broker_url = "redis://127.0.0.1:9/0"
    app._pool = None
    app.amqp._producer_pool = None
    try:
        api = Client(HTTP_HOST=faults_tenant.host, HTTP_AUTHORIZATION=f"Bearer {faults_tenant.api_key}")
        app.send_task = counted
        response = api.post(
            "/api/v1/runs", json.dumps({"as_of": AS_OF.isoformat(), "async": True}), content_type="application/json"
        )
        assert response.status_code == 202 and response.json()["status"] == "queued"
        again = api.post(
            "/api/v1/runs", json.dumps({"as_of": AS_OF.isoformat(), "async": True}), content_type="application/json"
        )
        assert again.status_code == 202
        assert len(calls) == 1  # after one failed attempt, requests stop trying the broker for a while
    finally:
        del app.send_task
        app.conf.broker_url = working
        app._pool = None
        app.amqp._producer_pool = None
        enqueue._paused_until = 0.0

    private_queue()
    run_ids = [response.json()["id"], again.json()["id"]]
    with schema_context(schema):  # the sweep's grace period has passed (time moved on, not waited for)
        BillingRun.objects.filter(pk__in=run_ids).update(created_at=timezone.now() - timedelta(minutes=2))
    _sweep_as_the_beat_does(schema)

    def finished() -> bool:
        with schema_context(schema):
            return not BillingRun.objects.filter(pk__in=run_ids, status__in=("queued", "running")).exists()

    _wait(finished, what="both runs to finish")
    with schema_context(schema):
        assert set(BillingRun.objects.filter(pk__in=run_ids).values_list("status", flat=True)) == {"succeeded"}
    _billed_once(schema, ids)
