"""The tenant a service runs for, and dates in its own time zone.

"Today" for billing, discounts and renewals is the tenant's calendar day, not the server's: a
renewal window opens and a discount expires on the tenant's local date.
"""

from __future__ import annotations

from datetime import date, datetime
from zoneinfo import ZoneInfo

from django.db import connection
from django.utils import timezone


def current_tenant():
    """The Tenant row of the connection's schema (also inside schema_context, which sets no model)."""
    from revexos.tenancy.models import Tenant

    tenant = getattr(connection, "tenant", None)
    if isinstance(tenant, Tenant):
        return tenant
    return Tenant.objects.get(schema_name=connection.schema_name)


def tenant_zone() -> ZoneInfo:
    return ZoneInfo(current_tenant().time_zone or "UTC")


def tenant_today(now: datetime | None = None) -> date:
    return (now or timezone.now()).astimezone(tenant_zone()).date()
