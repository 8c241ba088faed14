"""Who may do what. Every view names a capability; this table is the one place it is decided."""

from __future__ import annotations

from revexos.accounts.models import Role

A, F, M, V = Role.ADMIN, Role.FINANCE, Role.ACCOUNT_MANAGER, Role.VIEWER

CAPABILITIES: dict[str, frozenset[str]] = {
    # Every signed-in user: their own account.
    "account.self": frozenset({A, F, M, V}),
    # Reading the workspace.
    "dashboard.view": frozenset({A, F, M, V}),
    "contracts.view": frozenset({A, F, M, V}),
    "customers.view": frozenset({A, F, M, V}),
    "invoices.view": frozenset({A, F, M, V}),
    # Configuration.
    "contracts.manage": frozenset({A, F}),
    "customers.manage": frozenset({A, F, M}),
    # Money moves.
    "invoices.approve": frozenset({A, F}),
    # Collections: record payments and refunds, write off, pause reminders, import bank statements.
    "payments.view": frozenset({A, F, M, V}),
    "payments.manage": frozenset({A, F}),
    # Card payments: connecting the tenant's Stripe account (keys) is an admin's job.
    "stripe.manage": frozenset({A}),
    "milestones.deliver": frozenset({A, F, M}),
    "discounts.manage": frozenset({A, F}),
    "renewals.view": frozenset({A, F, M, V}),
    "renewals.decide": frozenset({A, F, M}),
    "insights.view": frozenset({A, F, M, V}),
    # Leakage findings: acknowledge, resolve, dismiss, scan now.
    "leakage.manage": frozenset({A, F}),
    # Hours from time-tracker exports.
    "time_imports.manage": frozenset({A, F}),
    # The Q2C audit of a prospect's exports: its data is confidential, so viewers do not see audits.
    "audits.view": frozenset({A, F, M}),
    "audits.run": frozenset({A, F, M}),
    # Administration.
    "integrations.manage": frozenset({A}),
    "users.manage": frozenset({A}),
    "api_keys.manage": frozenset({A}),
    "settings.manage": frozenset({A}),
    # Issuing entities carry bank details printed on invoices: admins only.
    "issuing_entities.manage": frozenset({A}),
    # Tax rates decide what every invoice charges: finance keeps them with the admins.
    "tax_rates.manage": frozenset({A, F}),
    # Outbound webhooks send the workspace's data to other systems: admins only.
    "webhooks.manage": frozenset({A}),
    # Accounting exports carry every invoice of a range: finance and admins.
    "exports.manage": frozenset({A, F}),
}


def has_capability(user, capability: str) -> bool:
    if capability not in CAPABILITIES:
        raise KeyError(f"Unknown capability {capability!r}; add it to revexos.accounts.roles.CAPABILITIES.")
    if not getattr(user, "is_authenticated", False) or not user.is_active:
        return False
    return user.role in CAPABILITIES[capability]
