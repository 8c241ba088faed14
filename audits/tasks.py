"""Audit tasks: thin, ids in, in the owner tenant's schema."""

from __future__ import annotations

from revexos.celery import app
from revexos.tasks import IdempotentTenantTask


@app.task(base=IdempotentTenantTask, name="audits.tasks.audit_process", time_limit=1800, soft_time_limit=1700)
def audit_process(audit_id: str) -> str:
    from audits.services.process import audit_process as process

    audit = process(audit_id=audit_id)
    return audit.status if audit is not None else "missing"
