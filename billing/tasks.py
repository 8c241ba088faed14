"""Billing tasks: thin (ids in, one service call), idempotent, in the tenant's schema.

Beat fires ``revexos.tenancy.tasks.dispatch_to_tenants`` with ``cycle_tenant`` (see
revexos/celery.py); each tenant's cycle splits its contracts into chunks that are separate tasks,
so several workers share a large tenant.
"""

from __future__ import annotations

from datetime import date

from django.conf import settings

from revexos.celery import app
from revexos.tasks import IdempotentTenantTask

CHUNK_SIZE = settings.BILLING_CHUNK_SIZE


@app.task(base=IdempotentTenantTask, name="billing.tasks.cycle_tenant")
def cycle_tenant(as_of: str | None = None) -> dict:
    """The tenant's cycle as of its local today: per-contract steps fan out in chunks.

    Starts with the cheap "anything due?" (``beat_cycle_steps_due``: today's run, then every step's
    ``due`` rows in one query): the hourly beat over a thousand tenants costs each idle tenant a
    couple of queries, and only the steps with something due run. The cycle is recorded as a beat run whose
    chunks are tasks of their own; the last chunk to finish closes the run, and the runs sweep
    re-sends a chunk whose task was lost.
    """
    from django.db import connection

    from billing.cycle import cycle_steps
    from billing.services.context import tenant_today
    from billing.services.runs import beat_cycle_steps_due, beat_run_finish_if_done, beat_run_start, beat_step_record

    day = date.fromisoformat(as_of) if as_of else tenant_today()
    steps = beat_cycle_steps_due(day=day) if as_of is None else cycle_steps()
    if not steps:
        return {"idle": True}
    run = beat_run_start(day=day)
    fanned: dict[str, int] = {}
    for step in steps:
        prepared = step.prepare(as_of=day) if step.prepare is not None else {}
        if step.contract_ids is None:
            beat_step_record(run, step=step.name, summary={**prepared, **step.run(as_of=day)})
            continue
        ids = step.contract_ids(as_of=day)
        chunks = beat_step_record(run, step=step.name, summary=prepared, contract_ids=ids, chunk_size=CHUNK_SIZE)
        for chunk in chunks:
            cycle_chunk.apply_async(
                kwargs={
                    "step": step.name,
                    "contract_ids": chunk.contract_ids,
                    "as_of": day.isoformat(),
                    "run_id": str(run.pk),
                    "seq": chunk.seq,
                },
                headers={"_schema_name": connection.schema_name},
            )
        fanned[step.name] = len(ids)
    beat_run_finish_if_done(run_id=run.pk, dispatched=True)
    return fanned


@app.task(base=IdempotentTenantTask, name="billing.tasks.cycle_chunk")
def cycle_chunk(
    step: str, contract_ids: list[int], as_of: str, run_id: str | None = None, seq: int | None = None
) -> dict:
    """One chunk of a step: of a recorded run (claimed under a lease, done with its invoices), or bare."""
    from billing.cycle import cycle_steps
    from billing.services.runs import beat_run_finish_if_done, chunk_claim, chunk_execute

    day = date.fromisoformat(as_of)
    if run_id is None:
        (found,) = cycle_steps([step])
        return found.run(as_of=day, contract_ids=contract_ids)
    chunk = chunk_claim(run_id=run_id, step=step, seq=seq)
    if chunk is None:
        return {"skipped": "done or held by another worker"}
    chunk_execute(chunk, as_of=day)
    beat_run_finish_if_done(run_id=run_id)
    return {"chunk": seq, "contracts": len(contract_ids)}


@app.task(base=IdempotentTenantTask, name="billing.tasks.run_chunks_work")
def run_chunks_work(run_id: str, step: str) -> int:
    """A helper of a run's executor: bill the run's chunks until none is left to claim."""
    from billing.services.runs import run_chunks_work as work

    return work(run_id=run_id, step=step)


@app.task(base=IdempotentTenantTask, name="billing.tasks.runs_sweep")
def runs_sweep() -> dict:
    from billing.services.runs import runs_sweep as sweep

    return sweep()


@app.task(base=IdempotentTenantTask, name="billing.tasks.contracts_evaluate")
def contracts_evaluate(contract_ids: list[int]) -> dict:
    """Event flow: bill what new facts made due (thresholds, milestones) as of today."""
    from billing.services.context import tenant_today
    from billing.services.runs import billing_run

    return billing_run(as_of=tenant_today(), contract_ids=contract_ids)


@app.task(base=IdempotentTenantTask, name="billing.tasks.delivery_event_process")
def delivery_event_process(event_id: int) -> bool:
    from billing.services.ingestion import delivery_event_process as process

    return process(event_id=event_id)


@app.task(base=IdempotentTenantTask, name="billing.tasks.delivery_events_sweep")
def delivery_events_sweep() -> int:
    from billing.services.ingestion import delivery_events_process_pending

    return delivery_events_process_pending()


@app.task(base=IdempotentTenantTask, name="billing.tasks.run_execute")
def run_execute(run_id: str) -> str:
    """Execute or resume a recorded run; helpers on other workers share its chunks."""
    from billing.services.runs import run_execute as execute

    return execute(run_id=run_id, helpers=settings.BILLING_RUN_HELPERS).status


# ----------------------------------------------------------------------------- invoice delivery


@app.task(base=IdempotentTenantTask, name="billing.tasks.invoice_delivery_send", bind=True, max_retries=None)
def invoice_delivery_send(self, delivery_id: int) -> str:
    """E-mail one queued invoice delivery. The service sends once however often this runs; on an
    SMTP failure it records the error and the next attempt, and this task retries with that backoff
    (the sweep re-enqueues the row too, should this retry be lost)."""
    from billing.services.delivery import invoice_delivery_send as send

    outcome = send(delivery_id=delivery_id)
    if outcome.status == "failed" and outcome.retry_in is not None:
        raise self.retry(countdown=outcome.retry_in, exc=None)
    return outcome.status


@app.task(base=IdempotentTenantTask, name="billing.tasks.invoice_deliveries_send")
def invoice_deliveries_send(delivery_ids: list[int]) -> int:
    """Fan a billing run's outbox rows out into one send task each (the run never waits for them)."""
    from django.db import connection

    from billing.services.enqueue import task_send

    for delivery_id in delivery_ids:
        task_send(
            "billing.tasks.invoice_delivery_send", kwargs={"delivery_id": delivery_id}, schema=connection.schema_name
        )
    return len(delivery_ids)


@app.task(base=IdempotentTenantTask, name="billing.tasks.invoice_pdf_store")
def invoice_pdf_store(invoice_id: int) -> str:
    """Render and store an issued invoice's PDF ahead of anyone asking for it."""
    from billing.models import Invoice
    from billing.services.pdf import invoice_pdf_store as store

    return store(invoice=Invoice.objects.select_related("customer", "issuing_entity", "contract").get(pk=invoice_id))


@app.task(base=IdempotentTenantTask, name="billing.tasks.invoice_deliveries_sweep")
def invoice_deliveries_sweep() -> int:
    from billing.services.delivery import invoice_deliveries_sweep as sweep

    return sweep()
