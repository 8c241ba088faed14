from __future__ import annotations

import logging

from celery import shared_task
from django.db import connection

from revexos.celery import app
from revexos.tasks import IdempotentTenantTask, TenantTask

logger = logging.getLogger(__name__)


@shared_task(name="revexos.tenancy.tasks.dispatch_to_tenants")
def dispatch_to_tenants(task_name: str, *args) -> dict[str, str]:
    """Fan one tenant task out to every tenant, each with its schema in the message headers.

    Returns schema -> task id, so callers (and tests) can follow each tenant's task.
    """
    from revexos.tenancy.models import Tenant

    task = app.tasks[task_name]
    # Audit sandboxes are not customers: their imported contracts are never billed, mailed or scanned.
    live = Tenant.objects.exclude(schema_name="public").filter(sandbox_of__isnull=True)
    schemas = list(live.values_list("schema_name", flat=True))
    return {schema: task.apply_async(args=args, headers={"_schema_name": schema}).id for schema in schemas}


@app.task(base=IdempotentTenantTask, name="revexos.tenancy.tasks.tenant_heartbeat")
def tenant_heartbeat() -> str:
    logger.info("tenant heartbeat")
    return connection.schema_name


@app.task(base=TenantTask, name="revexos.tenancy.tasks.current_schema")
def current_schema() -> str:
    """Diagnostics: which schema a task runs in (used by tests and `make run`'s self-check)."""
    return connection.schema_name


@shared_task(name="revexos.tenancy.tasks.tenant_spares_replenish")
def tenant_spares_replenish() -> int:
    """Platform task (public schema): clone spare tenant schemas ahead of the next sign-ups."""
    from revexos.tenancy.services.template import tenant_spares_replenish as replenish

    return replenish()
