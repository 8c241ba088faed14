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
app.autodiscover_tasks(lambda: ["revexos", "revexos.tenancy", "contracts", "billing", "discounts", "renewals", "insights", "integrations"])

# name -> (dispatcher task, schedule, tenant task it fans out to). Later modules add entries.
app.conf.beat_schedule = {
    "tenant-heartbeat": {
        "task": "revexos.tenancy.tasks.dispatch_to_tenants",
        "schedule": crontab(minute="*/15"),
        "args": ("revexos.tenancy.tasks.tenant_heartbeat",),
    },
}
