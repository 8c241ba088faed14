"""Integration tasks: thin (ids in, one service call), idempotent, in the tenant's schema."""

from __future__ import annotations

from revexos.celery import app
from revexos.tasks import IdempotentTenantTask


@app.task(base=IdempotentTenantTask, name="integrations.tasks.inbox_event_process")
def inbox_event_process(event_pk: int) -> str | None:
    from integrations.services.inbox import inbox_event_process as process

    return process(event_pk=event_pk)


@app.task(base=IdempotentTenantTask, name="integrations.tasks.inbox_sweep")
def inbox_sweep() -> dict:
    """Rows stored while the broker or a worker was down (the cycle step does the same hourly)."""
    from integrations.services.inbox import inbox_process_pending

    return inbox_process_pending()
