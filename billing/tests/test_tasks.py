"""The scheduled flow: beat → every tenant → chunks of contracts as separate tasks."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal

import pytest
import time_machine

from billing import tasks
from billing.cycle import cycle_steps
from billing.models import Invoice
from billing.tests.builders import contract_with
from revexos.celery import app

RETAINER = {
    "kind": "recurring",
    "description": "Retainer",
    "amount": Decimal("1000.00"),
    "frequency": "monthly",
    "timing": "advance",
}


def test_the_beat_fans_the_billing_cycle_and_the_inbox_sweep_out_to_every_tenant():
    schedule = app.conf.beat_schedule
    assert schedule["billing-cycle"]["args"] == ("billing.tasks.cycle_tenant",)
    assert schedule["billing-inbox-sweep"]["args"] == ("billing.tasks.delivery_events_sweep",)
    assert all(
        schedule[k]["task"] == "revexos.tenancy.tasks.dispatch_to_tenants"
        for k in ("billing-cycle", "billing-inbox-sweep")
    )
    assert tasks.cycle_chunk.acks_late and tasks.cycle_tenant.acks_late  # redelivered if a worker dies


def test_a_tenant_cycle_splits_its_contracts_into_chunks_that_bill_independently(in_tenant_a, monkeypatch):
    contracts = [contract_with(RETAINER, start=date(2026, 1, 1)) for _ in range(5)]
    sent = []
    monkeypatch.setattr(tasks, "CHUNK_SIZE", 2)
    monkeypatch.setattr(tasks.cycle_chunk, "apply_async", lambda kwargs, headers: sent.append((kwargs, headers)))
    with time_machine.travel(datetime(2026, 2, 1, 8, tzinfo=UTC), tick=False):
        tasks.cycle_tenant.run()
    mine = {c.pk for c in contracts}
    chunks = [kw for kw, headers in sent if set(kw["contract_ids"]) & mine]
    assert all(
        len(kw["contract_ids"]) <= 2 and kw["as_of"] == "2026-02-01" and kw["step"] == "billing" for kw, _ in sent
    )
    assert all(headers == {"_schema_name": in_tenant_a.schema} for _, headers in sent)
    assert mine <= {i for kw in chunks for i in kw["contract_ids"]}
    for kw in chunks:  # what the workers do, in any order, any number of times
        tasks.cycle_chunk.run(**kw)
        tasks.cycle_chunk.run(**kw)
    assert Invoice.objects.filter(contract__in=contracts).count() == 5


def test_the_cycle_knows_its_steps():
    assert "billing" in [s.name for s in cycle_steps()]
    with pytest.raises(Exception, match="Unknown step"):
        cycle_steps(["nope"])
