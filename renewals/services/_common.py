"""Small helpers the renewal services share: the tenant, its today, a per-tenant lock, links."""

from __future__ import annotations

from django.conf import settings
from django.db import connection

from revexos.dates import current_tenant, tenant_today  # noqa: F401  (the tenant's calendar day)


def step_lock(name: str) -> None:
    """Serialize one renewal step per tenant for the rest of the transaction.

    Two cycles at once (the beat and a POST /runs, or two beats) would otherwise both read "no
    alert yet" and race; the unique constraints stay as the last guard.
    """
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT pg_advisory_xact_lock(hashtextextended(%s, 0))", [f"renewals:{name}:{connection.schema_name}"]
        )


def contract_lock(contract_id: int) -> None:
    """The same lock billing takes per contract, so a renewal never moves an end date mid-billing."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT pg_advisory_xact_lock(hashtextextended(%s, 0))", [f"billing:{connection.schema_name}:{contract_id}"]
        )


def stamp(obj, *, user=None, note: str = ""):
    """Who changed a row and why, for its next simple-history record."""
    if user is not None and getattr(user, "is_authenticated", False):
        obj._history_user = user
    if note:
        obj._change_reason = note[:100]
    return obj


def tenant_url(path: str) -> str:
    """An absolute link into the tenant's app, for e-mails (no request to take the host from)."""
    from revexos.tenancy.models import Domain

    tenant = current_tenant()
    domain = Domain.objects.filter(tenant=tenant).order_by("-is_primary", "id").values_list("domain", flat=True).first()
    host = domain or f"{tenant.slug}.{settings.TENANT_BASE_DOMAIN}"
    if settings.DEBUG:
        port = f":{settings.TENANT_URL_PORT}" if settings.TENANT_URL_PORT else ""
        return f"http://{host}{port}{path}"
    return f"https://{host}{path}"
