"""The tenant a discounts service runs for, and who acted."""

from __future__ import annotations

from revexos.dates import tenant_today  # noqa: F401  (lifecycle dates are the tenant's local days)


def actor_fields(*, user=None, label: str = "") -> dict:
    if user is not None and getattr(user, "is_authenticated", False):
        return {"actor": user, "actor_label": ""}
    return {"actor": None, "actor_label": label or "RevExOS"}
