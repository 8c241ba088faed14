"""Webhook tasks: thin, ids in, tenant-aware."""

from __future__ import annotations

from revexos.celery import app
from revexos.tasks import IdempotentTenantTask


@app.task(base=IdempotentTenantTask, name="revexos.webhooks.tasks.webhook_delivery_send")
def webhook_delivery_send(delivery_id: int) -> str:
    """First attempt right after the change commits; retries are the sweep's (their times are stored)."""
    from revexos.webhooks.services import webhook_delivery_send as send

    return send(delivery_id=delivery_id).status


@app.task(base=IdempotentTenantTask, name="revexos.webhooks.tasks.webhook_deliveries_sweep")
def webhook_deliveries_sweep() -> dict:
    from revexos.webhooks.services import webhook_deliveries_sweep as sweep

    return sweep()
