"""Base classes for RevExOS tasks."""

from __future__ import annotations

from django.db import connection
from tenant_schemas_celery.task import TenantTask as _TenantTask


class TenantContextMissing(RuntimeError):
    """A tenant task ran without a tenant: it must never fall back to the public schema."""


class TenantTask(_TenantTask):
    """A task that belongs to one tenant: refuses to run in the public schema."""

    abstract = True

    def __call__(self, *args, **kwargs):
        if connection.schema_name in (None, "", "public"):
            raise TenantContextMissing(
                f"Task {self.name} was enqueued without a tenant. Enqueue it inside the tenant's "
                "schema (a request, tenant_context(...), or apply_async(headers={'_schema_name': ...}))."
            )
        return super().__call__(*args, **kwargs)


class IdempotentTenantTask(TenantTask):
    """For tasks safe to run twice: acknowledged after they finish, so a killed worker's task is redelivered."""

    abstract = True
    acks_late = True
    reject_on_worker_lost = True
