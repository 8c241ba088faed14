"""Workspace settings a tenant admin changes: name, invoicing defaults and invoice branding."""

from __future__ import annotations

from django.db import transaction

from revexos.tenancy.models import Tenant

EDITABLE = ("name", "auto_issue_invoices", "renewal_window_days", "invoice_accent_color")


@transaction.atomic
def tenant_settings_update(*, tenant: Tenant, data: dict, logo=None, clear_logo: bool = False) -> Tenant:
    """Save the given settings; ``logo`` (an uploaded, already validated image) replaces the old one."""
    tenant = Tenant.objects.select_for_update().get(pk=tenant.pk)
    fields = []
    for name in EDITABLE:
        if name in data:
            setattr(tenant, name, data[name])
            fields.append(name)
    if clear_logo or logo is not None:
        if tenant.invoice_logo:
            tenant.invoice_logo.delete(save=False)
        tenant.invoice_logo = None
        fields.append("invoice_logo")
    if logo is not None:
        tenant.invoice_logo.save(logo.name, logo, save=False)
    tenant.full_clean(exclude=["schema_name", "slug"], validate_unique=False)
    tenant.save(update_fields=sorted(set(fields)))
    return tenant
