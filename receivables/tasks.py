"""Collections tasks: thin, ids in, tenant-aware (the schema travels in the task headers)."""

from __future__ import annotations

from revexos.celery import app
from revexos.tasks import IdempotentTenantTask


@app.task(base=IdempotentTenantTask, name="receivables.tasks.statement_send")
def statement_send(send_id: int) -> str:
    from receivables.services.statements import statement_deliver

    return statement_deliver(send_id=send_id)
