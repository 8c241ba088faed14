"""Renewal tasks: thin, idempotent, in the tenant's schema (fanned out by dispatch_to_tenants)."""

from __future__ import annotations

from datetime import date

from django.utils import timezone

from revexos.celery import app
from revexos.tasks import IdempotentTenantTask

# The digest goes out on the first run at or after this hour of the tenant's own morning.
DIGEST_HOUR = 7


@app.task(base=IdempotentTenantTask, name="renewals.tasks.renewals_cycle_tenant")
def renewals_cycle_tenant(as_of: str | None = None) -> dict:
    """Raise, escalate, auto-renew and expire as of the tenant's today."""
    from renewals.services._common import tenant_today
    from renewals.services.cycle import renewals_cycle_step

    return renewals_cycle_step(as_of=date.fromisoformat(as_of) if as_of else tenant_today())


@app.task(base=IdempotentTenantTask, name="renewals.tasks.renewal_digest_tenant")
def renewal_digest_tenant(as_of: str | None = None) -> list[int]:
    """Each account manager's daily digest, once a day, from the tenant's morning on."""
    from zoneinfo import ZoneInfo

    from renewals.services._common import current_tenant
    from renewals.services.notify import renewal_digest_send

    if as_of:
        return renewal_digest_send(as_of=date.fromisoformat(as_of))
    local = timezone.now().astimezone(ZoneInfo(current_tenant().time_zone or "UTC"))
    if local.hour < DIGEST_HOUR:
        return []
    return renewal_digest_send(as_of=local.date())
