"""Discount tasks: thin, idempotent, in the tenant's schema (fanned out by dispatch_to_tenants)."""

from __future__ import annotations

from datetime import date

from discounts.services._common import tenant_today
from discounts.services.lifecycle import exceptions_lifecycle_run
from revexos.celery import app
from revexos.tasks import IdempotentTenantTask


@app.task(base=IdempotentTenantTask, name="discounts.tasks.lifecycle_tenant")
def lifecycle_tenant(as_of: str | None = None) -> dict:
    """Activate and expire the tenant's exceptions as of its local today (or ``as_of``)."""
    return exceptions_lifecycle_run(as_of=date.fromisoformat(as_of) if as_of else tenant_today(), actor_label="beat")
