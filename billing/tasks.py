"""Billing tasks: thin (ids in, one service call), idempotent, in the tenant's schema.

Beat fires ``revexos.tenancy.tasks.dispatch_to_tenants`` with ``cycle_tenant`` (see
revexos/celery.py); each tenant's cycle splits its contracts into chunks that are separate tasks,
so several workers share a large tenant.
"""

from __future__ import annotations

from datetime import date

from revexos.celery import app
from revexos.tasks import IdempotentTenantTask

CHUNK_SIZE = 500


@app.task(base=IdempotentTenantTask, name="billing.tasks.cycle_tenant")
def cycle_tenant(as_of: str | None = None) -> dict:
    """The tenant's cycle as of its local today: per-contract steps fan out in chunks."""
    from django.db import connection

    from billing.cycle import cycle_steps
    from billing.services.context import tenant_today

    day = date.fromisoformat(as_of) if as_of else tenant_today()
    fanned: dict[str, int] = {}
    for step in cycle_steps():
        if step.prepare is not None:
            step.prepare(as_of=day)
        if step.contract_ids is None:
            step.run(as_of=day)
            continue
        ids = step.contract_ids(as_of=day)
        for start in range(0, len(ids), CHUNK_SIZE):
            cycle_chunk.apply_async(
                kwargs={"step": step.name, "contract_ids": ids[start : start + CHUNK_SIZE], "as_of": day.isoformat()},
                headers={"_schema_name": connection.schema_name},
            )
        fanned[step.name] = len(ids)
    return fanned


@app.task(base=IdempotentTenantTask, name="billing.tasks.cycle_chunk")
def cycle_chunk(step: str, contract_ids: list[int], as_of: str) -> dict:
    from billing.cycle import cycle_steps

    (found,) = cycle_steps([step])
    return found.run(as_of=date.fromisoformat(as_of), contract_ids=contract_ids)


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
    from billing.services.runs import run_execute as execute

    return execute(run_id=run_id).status


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
