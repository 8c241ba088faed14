"""The Celery app. Tasks run in the schema of the tenant that enqueued them (tenant-schemas-celery).

Beat only fires *dispatchers*: shared tasks that enqueue one tenant task per tenant, so a large
tenant never delays another and more workers share the load.
"""

from __future__ import annotations

import os

from celery.schedules import crontab
from tenant_schemas_celery.app import CeleryApp

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "revexos.settings")

app = CeleryApp("revexos")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks(
    lambda: [
        "revexos",
        "revexos.tenancy",
        "contracts",
        "billing",
        "discounts",
        "renewals",
        "insights",
        "integrations",
        "receivables",
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
