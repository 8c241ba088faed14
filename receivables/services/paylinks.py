"""The customer's pay link: ``https://<tenant host>/pay/<token>/`` (DESIGN.md §5.1 ``pay_url``).

The token is 32 random bytes set on the invoice when it is issued (billing), so the link needs no
login and cannot be guessed; finance revokes a link by replacing the token (the old one answers
404). The link exists only while the tenant has card payments set up (a connected Stripe account).
"""

from __future__ import annotations

import secrets
import time

from django.conf import settings
from django.db import connection
from django.db.models import Q

from billing.models import Invoice, InvoiceStatus

_CONNECTED_TTL = 30.0
_connected: dict[str, tuple[float, bool]] = {}
_hosts: dict[str, tuple[float, str]] = {}


def card_payments_enabled() -> bool:
    """Whether this tenant has a Stripe account connected (cached briefly per process and schema)."""
    from receivables.models import StripeAccount

    schema = connection.schema_name
    now = time.monotonic()
    hit = _connected.get(schema)
    if hit and hit[0] > now:
        return hit[1]
    value = StripeAccount.objects.exists()
    _connected[schema] = (now + _CONNECTED_TTL, value)
    return value


def card_payments_forget() -> None:
    _connected.pop(connection.schema_name, None)


def tenant_base_url() -> str:
    """The tenant's own origin for links in e-mails and PDFs (no request to take the host from)."""
    from revexos.dates import current_tenant
    from revexos.tenancy.models import Domain

    schema = connection.schema_name
    now = time.monotonic()
    hit = _hosts.get(schema)
    if hit and hit[0] > now:
        return hit[1]
    tenant = current_tenant()
    domain = Domain.objects.filter(tenant=tenant).order_by("-is_primary", "id").values_list("domain", flat=True).first()
    host = domain or f"{tenant.slug}.{settings.TENANT_BASE_DOMAIN}"
    scheme = getattr(settings, "TENANT_URL_SCHEME", "") or ("http" if settings.DEBUG else "https")
    port = settings.TENANT_URL_PORT if scheme == "http" and settings.TENANT_URL_PORT else ""
    base = f"{scheme}://{host}{':' + port if port else ''}"
    _hosts[schema] = (now + 300.0, base)
    return base


def invoice_pay_url(invoice) -> str:
    """billing's pay-link hook: the link of an open issued invoice, or "" (no card payments set up)."""
    if not invoice.pay_token or not card_payments_enabled():
        return ""
    return f"{tenant_base_url()}/pay/{invoice.pay_token}/"


def pay_link_revoke(*, invoice_id: int) -> Invoice:
    """Replace an invoice's pay token: the old link stops working at once, a new one is printed
    on later e-mails (the PDF already sent keeps the old, now dead, link)."""
    Invoice.objects.filter(pk=invoice_id).exclude(status=InvoiceStatus.DRAFT).update(
        pay_token=secrets.token_urlsafe(32)
    )
    return Invoice.objects.get(pk=invoice_id)


def invoice_by_token(token: str) -> Invoice | None:
    if not token or len(token) > 64:
        return None
    return (
        Invoice.objects.select_related("customer", "issuing_entity", "contract")
        .filter(Q(pay_token=token))
        .exclude(status__in=[InvoiceStatus.DRAFT])
        .first()
    )
