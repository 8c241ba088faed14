"""The Celery app. Tasks run in the schema of the tenant that enqueued them (tenant-schemas-celery).

Beat only fires *dispatchers*: shared tasks that enqueue one tenant task per tenant, so a large
tenant never delays another and more workers share the load.
"""

from __future__ import annotations

import os

from celery.schedules import crontab
from tenant_schemas_celery.app import CeleryApp

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "revexos.settings")

# Queues: billing runs, invoice delivery (PDF + e-mail), integrations, and the default queue for the
# rest. Their names derive from the default queue (CELERY_QUEUE), so a test worker on a private
# queue gets private ones too (``queue_names()``). Production runs one worker group per queue
# (docker-compose.yml), so rendering never delays billing; `make run` runs a billing worker and one
# for the rest.
QUEUE_OF_TASK = {
    "billing.tasks.cycle_tenant": "billing",
    "billing.tasks.cycle_chunk": "billing",
    "billing.tasks.contracts_evaluate": "billing",
    "billing.tasks.run_execute": "billing",
    "billing.tasks.run_chunks_work": "billing",
    "billing.tasks.invoice_delivery_send": "delivery",
    "billing.tasks.invoice_deliveries_send": "delivery",
    "billing.tasks.invoice_pdf_store": "delivery",
    "billing.tasks.invoice_deliveries_sweep": "delivery",
}
QUEUE_KINDS = ("billing", "delivery", "integrations")


def queue_name(kind: str | None = None) -> str:
    base = app.conf.task_default_queue
    return base if kind is None else f"{base}.{kind}"


def queue_names() -> list[str]:
    """Every queue a worker must serve to run everything (the default one first)."""
    return [queue_name(), *(queue_name(kind) for kind in QUEUE_KINDS)]


def task_route(name, args=None, kwargs=None, options=None, task=None, **extra):
    """Celery router (CELERY_TASK_ROUTES): billing, delivery and integration tasks to their queues."""
    kind = QUEUE_OF_TASK.get(name) or ("integrations" if name.startswith("integrations.") else None)
    return {"queue": queue_name(kind)} if kind else None


app = CeleryApp("revexos")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks(
    lambda: [
        "revexos",
        "revexos.tenancy",
        "revexos.webhooks",
        "contracts",
        "billing",
        "discounts",
        "renewals",
        "insights",
        "integrations",
        "receivables",
        "audits",
    ]
)

# name -> (dispatcher task, schedule, tenant task it fans out to). Later modules add entries.
app.conf.beat_schedule = {
    "tenant-heartbeat": {
        "task": "revexos.tenancy.tasks.dispatch_to_tenants",
        "schedule": crontab(minute="*/15"),
        "args": ("revexos.tenancy.tasks.tenant_heartbeat",),
    },
    # Billing: hourly, so each tenant's "today" (its own time zone) is billed soon after it starts;
    # every step is idempotent, so the extra runs only find nothing to do.
    "billing-cycle": {
        "task": "revexos.tenancy.tasks.dispatch_to_tenants",
        "schedule": crontab(minute=5),
        "args": ("billing.tasks.cycle_tenant",),
    },
    # Runs nobody is executing: posted while the broker was down, or abandoned by a killed worker.
    "billing-runs-sweep": {
        "task": "revexos.tenancy.tasks.dispatch_to_tenants",
        "schedule": crontab(minute="*/2"),
        "args": ("billing.tasks.runs_sweep",),
    },
    # Inbox rows stored while the broker or a worker was down.
    "billing-inbox-sweep": {
        "task": "revexos.tenancy.tasks.dispatch_to_tenants",
        "schedule": crontab(minute="*/5"),
        "args": ("billing.tasks.delivery_events_sweep",),
    },
    # Invoice e-mails whose send task was lost or whose retry is due (SMTP outage, broker down).
    "billing-outbox-sweep": {
        "task": "revexos.tenancy.tasks.dispatch_to_tenants",
        "schedule": crontab(minute="*/5"),
        "args": ("billing.tasks.invoice_deliveries_sweep",),
    },
    # Integrations: webhook inbox rows stored while the broker or a worker was down.
    "integrations-inbox-sweep": {
        "task": "revexos.tenancy.tasks.dispatch_to_tenants",
        "schedule": crontab(minute="*/5"),
        "args": ("integrations.tasks.inbox_sweep",),
    },
    # Outbound webhooks: deliveries whose first send was lost or whose retry is due.
    "webhooks-sweep": {
        "task": "revexos.tenancy.tasks.dispatch_to_tenants",
        "schedule": crontab(minute="*"),
        "args": ("revexos.webhooks.tasks.webhook_deliveries_sweep",),
    },
    # Renewals' raise/escalate/auto-renew/expire is a step of the billing cycle above (registered in
    # renewals.apps). The digest runs hourly and goes out once a day per owner, from 07:00 local time.
    "renewals-digest": {
        "task": "revexos.tenancy.tasks.dispatch_to_tenants",
        "schedule": crontab(minute=35),
        "args": ("renewals.tasks.renewal_digest_tenant",),
    },
    # Discounts, credits and overrides: activate/expire on the tenant's local dates. Also a step of the
    # billing cycle above (registered in discounts.apps); idempotent, so running both is harmless.
    "discounts-lifecycle": {
        "task": "revexos.tenancy.tasks.dispatch_to_tenants",
        "schedule": crontab(minute=1),
        "args": ("discounts.tasks.lifecycle_tenant",),
    },
}
