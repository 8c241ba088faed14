"""The role × view table: each role reaches what it may and gets 403 elsewhere; anonymous users log in."""

from __future__ import annotations

import pytest
from django.urls import URLPattern, URLResolver, get_resolver

from revexos.accounts.models import Role
from revexos.accounts.roles import CAPABILITIES
from tests.helpers import client_for

pytestmark = pytest.mark.django_db

# Pages that must be reachable without signing in.
PUBLIC_VIEWS = {
    "favicon",
    "accounts:login",
    "accounts:logout",
    "accounts:password_reset",
    "accounts:password_reset_done",
    "accounts:password_reset_confirm",
    # The customer's pay link (the token is the key) and the Stripe webhook (the signature is).
    "pay:page",
    "pay:pdf",
    "pay:confirm",
    "pay:status",
    "pay:stripe_webhook",
    # An audit report behind an expiring share link (the token is the permission).
    "audits:shared",
    "audits:shared_pdf",
}
# Mounted sub-applications with their own access control.
SKIP_PREFIXES = ("admin/", "api/v1/", "webhooks/")  # webhooks: signed by their source

# url name, kwargs (for GET), capability. Later modules append their pages here.
PAGES = [
    ("home", {}, "dashboard.view"),
    ("accounts:user_list", {}, "users.manage"),
    ("accounts:user_create", {}, "users.manage"),
    ("accounts:api_keys", {}, "api_keys.manage"),
    ("billing:invoice_list", {}, "invoices.view"),
    ("billing:review_task_list", {}, "invoices.view"),
    ("billing:outbox", {}, "invoices.view"),
    ("integrations:list", {}, "integrations.manage"),
    ("integrations:time_import", {}, "time_imports.manage"),
    ("receivables:collections", {}, "payments.view"),
    ("receivables:payments", {}, "payments.view"),
    ("receivables:settings", {}, "payments.view"),
    ("receivables:payment_new", {}, "payments.manage"),
    ("receivables:bank_import", {}, "payments.manage"),
    ("receivables:bank_queue", {}, "payments.manage"),
    ("contracts:tax_rate_list", {}, "tax_rates.manage"),
    ("webhooks:endpoint_list", {}, "webhooks.manage"),
    ("integrations:exports", {}, "exports.manage"),
    ("audits:list", {}, "audits.view"),
    ("audits:new", {}, "audits.run"),
]


def _tenant_views():
    """(name, callback) for every named tenant URL outside the skipped prefixes."""
    found = []

    def walk(patterns, prefix="", namespace=None):
        for p in patterns:
            if isinstance(p, URLResolver):
                ns = p.namespace or namespace
                walk(p.url_patterns, prefix + str(p.pattern), ns)
            elif isinstance(p, URLPattern):
                route = prefix + str(p.pattern)
                if route.startswith(SKIP_PREFIXES):
                    continue
                name = f"{namespace}:{p.name}" if namespace and p.name else p.name
                found.append((name, route, p.callback))

    walk(get_resolver("revexos.urls").url_patterns)
    return found


def test_every_tenant_view_declares_a_capability_or_is_public():
    missing = []
    for name, route, callback in _tenant_views():
        view = getattr(callback, "view_class", None) or callback
        capability = getattr(callback, "capability", None) or getattr(view, "capability", None)
        if name in PUBLIC_VIEWS:
            continue
        if capability is None:
            missing.append(f"{name} ({route})")
        else:
            assert capability in CAPABILITIES, f"{name} uses unknown capability {capability}"
    assert not missing, f"views without a permission check: {missing}"


@pytest.mark.parametrize("role", [r.value for r in Role])
@pytest.mark.parametrize("name, kwargs, capability", PAGES)
def test_role_reaches_only_what_its_capabilities_allow(tenant_a, role, name, kwargs, capability):
    from django.urls import reverse

    client = client_for(tenant_a, email=tenant_a.users[role])
    response = client.get(reverse(name, urlconf="revexos.urls", kwargs=kwargs))
    expected = 200 if role in CAPABILITIES[capability] else 403
    assert response.status_code == expected, f"{role} on {name}: {response.status_code}"


@pytest.mark.parametrize("name, kwargs, capability", PAGES)
def test_anonymous_users_are_sent_to_login(tenant_a, name, kwargs, capability):
    from django.urls import reverse

    response = client_for(tenant_a).get(reverse(name, urlconf="revexos.urls", kwargs=kwargs))
    assert response.status_code == 302 and "/accounts/login/" in response["Location"]


def test_navigation_shows_only_what_the_role_may_open(tenant_a):
    viewer = client_for(tenant_a, email=tenant_a.users[Role.VIEWER]).get("/").content.decode()
    admin = client_for(tenant_a, email=tenant_a.users[Role.ADMIN]).get("/").content.decode()
    assert "/accounts/users/" not in viewer and "/accounts/api-keys/" not in viewer
    assert "/accounts/users/" in admin and "/accounts/api-keys/" in admin
