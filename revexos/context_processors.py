from __future__ import annotations

from revexos.accounts.roles import has_capability

# Navigation of the app shell: (label, url name, capability). Later modules add their entries here.
NAVIGATION = [
    ("Home", "home", "dashboard.view"),
    ("Customers", "contracts:customer_list", "customers.view"),
    ("Contracts", "contracts:contract_list", "contracts.view"),
    ("Renewals", "renewals:queue", "renewals.view"),
    ("Discounts & credits", "discounts:list", "contracts.view"),
    ("Invoices", "billing:invoice_list", "invoices.view"),
    ("Accounting exports", "integrations:exports", "exports.manage"),
    ("Review tasks", "billing:review_task_list", "invoices.view"),
    ("Collections", "receivables:collections", "payments.view"),
    ("Forecast", "insights:forecast", "insights.view"),
    ("Contract value", "insights:contract_value", "insights.view"),
    ("Revenue at risk", "insights:at_risk", "insights.view"),
    ("Leakage", "leakage:list", "insights.view"),
    ("Time imports", "integrations:time_import", "time_imports.manage"),
    ("Revenue audits", "audits:list", "audits.view"),
]
ADMIN_NAVIGATION = [
    ("Workspace", "workspace_settings", "settings.manage"),
    ("Users", "accounts:user_list", "users.manage"),
    ("API keys", "accounts:api_keys", "api_keys.manage"),
    ("Issuing entities", "contracts:issuing_entity_list", "issuing_entities.manage"),
    ("Integrations", "integrations:list", "integrations.manage"),
    ("Tax rates", "contracts:tax_rate_list", "tax_rates.manage"),
    ("Webhooks", "webhooks:endpoint_list", "webhooks.manage"),
]


def shell(request):
    tenant = getattr(request, "tenant", None)
    user = getattr(request, "user", None)
    if tenant is None or tenant.schema_name == "public" or user is None or not user.is_authenticated:
        return {"current_tenant": tenant}
    return {
        "current_tenant": tenant,
        "nav_items": [(label, name) for label, name, cap in NAVIGATION if has_capability(user, cap)],
        "admin_nav_items": [(label, name) for label, name, cap in ADMIN_NAVIGATION if has_capability(user, cap)],
    }
