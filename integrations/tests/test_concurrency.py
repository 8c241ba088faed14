"""The same Jira webhook delivered five times at once, to a live server, then processed by five
workers at once: one inbox row per delivery id, one delivery event, one milestone invoice line."""

from __future__ import annotations

import json
import threading
import urllib.request
import uuid
from datetime import timedelta
from decimal import Decimal

import pytest
from django.db import connection, connections
from django_tenants.utils import schema_context

from integrations.tests.payloads import jira_done, jira_headers

pytestmark = pytest.mark.slow


def _post(live_server_url, host, body, headers) -> int:
    port = live_server_url.rsplit(":", 1)[1]
    request = urllib.request.Request(f"http://127.0.0.1:{port}/webhooks/jira/", data=body, method="POST")
    request.add_header("Host", f"{host}:{port}")
    request.add_header("Content-Type", "application/json")
    for key, value in headers.items():
        request.add_header(key.removeprefix("HTTP_").replace("_", "-"), value)
    with urllib.request.urlopen(request, timeout=30) as response:
        return response.status


def _all_at_once(jobs):
    barrier = threading.Barrier(len(jobs))
    results, errors = [], []

    def run(job):
        try:
            barrier.wait()
            results.append(job())
        except Exception as exc:  # reported below
            errors.append(exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=run, args=(job,)) for job in jobs]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not errors, errors
    return results


def test_five_concurrent_deliveries_and_five_concurrent_workers_bill_once(
    live_server_url, tenant_a, committed_db, monkeypatch
):
    from billing.models import DeliveryEvent, InvoiceLine
    from billing.services.context import tenant_today
    from billing.services.runs import billing_run
    from billing.tests.builders import contract_with
    from integrations.models import Connection, InboxEvent
    from integrations.services.connections import connection_create, mapping_set
    from integrations.services.inbox import inbox_event_process

    monkeypatch.setattr("billing.services.enqueue.task_send", lambda *a, **k: None)  # workers are run below
    tag = uuid.uuid4().hex[:6].upper()
    with schema_context(tenant_a.schema):
        Connection.objects.filter(source="jira").delete()
        jira, secret = connection_create(data={"source": "jira"})
        today = tenant_today()
        contract = contract_with(
            {
                "kind": "milestone",
                "description": "Go-live",
                "amount": Decimal("9000.00"),
                "frequency": "",
                "timing": "",
                "reference": f"CC{tag}-1",
            },
            start=today - timedelta(days=30),
            end=today + timedelta(days=200),
            number=f"CC-{tag}",
        )
        mapping_set(connection=jira, kind="project", external=f"CC{tag}", contract_ref=contract.number)
    connection.set_schema_to_public()

    body = json.dumps(jira_done(f"CC{tag}-1", project=f"CC{tag}")).encode()
    same = jira_headers(body, secret, delivery=f"delivery-{tag}")
    statuses = _all_at_once([lambda: _post(live_server_url, tenant_a.host, body, same)] * 5)
    assert statuses == [200] * 5
    # Jira retrying with new delivery ids: five more rows, the same fact.
    statuses = _all_at_once(
        [lambda: _post(live_server_url, tenant_a.host, body, jira_headers(body, secret)) for _ in range(5)]
    )
    assert statuses == [200] * 5

    with schema_context(tenant_a.schema):
        pending = list(InboxEvent.objects.filter(connection=jira).values_list("pk", flat=True))
    assert len(pending) == 6

    def work(pk):
        def job():
            with schema_context(tenant_a.schema):
                return inbox_event_process(event_pk=pk)

        return job

    _all_at_once([work(pk) for pk in pending])
    _all_at_once([lambda: _run(tenant_a, billing_run, contract.pk, today)] * 3)
    with schema_context(tenant_a.schema):
        assert set(InboxEvent.objects.filter(connection=jira).values_list("status", flat=True)) == {"processed"}
        assert DeliveryEvent.objects.filter(contract=contract).count() == 1
        assert InvoiceLine.objects.filter(contract=contract, kind="milestone").count() == 1
        Connection.objects.filter(pk=jira.pk).delete()
    connection.set_schema_to_public()


def _run(tenant, billing_run, contract_id, today):
    with schema_context(tenant.schema):
        return billing_run(as_of=today, contract_ids=[contract_id])
