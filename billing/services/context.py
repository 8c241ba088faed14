"""The tenant a billing service runs for (kept as billing's import path; the rule lives in revexos.dates)."""

from revexos.dates import current_tenant, tenant_today, tenant_zone  # noqa: F401
