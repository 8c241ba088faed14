"""GET/POST /api/v1/integrations (DESIGN.md §5.1), and the pages an admin uses."""

from __future__ import annotations

import pytest

from tests.helpers import client_for


def test_connecting_jira_answers_the_url_and_the_secret_once(api, in_tenant_a):
    response = api.post("/api/v1/integrations", {"source": "jira"}, content_type="application/json")
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["source"] == "jira" and body["webhook_url"] == f"http://{in_tenant_a.host}/webhooks/jira/"
    assert body["secret"].startswith("rvxwh_") and len(body["secret"]) > 30
    (listed,) = api.get("/api/v1/integrations").json()
    assert (
        listed["id"] == body["id"]
        and listed["secret"].startswith("••••")
        and listed["secret"][-4:] == body["secret"][-4:]
    )
    again = api.post("/api/v1/integrations", {"source": "jira"}, content_type="application/json")
    assert again.status_code == 422 and "already connected" in again.json()["error"]["fields"]["source"][0]


def test_settings_are_checked_and_errors_come_in_the_one_shape(api, in_tenant_a):
    cases = [
        ({"source": "hubspot", "api_token": "x"}, "secret"),
        ({"source": "salesforce", "api_base": "not a url", "api_token": "x", "organization_id": "00D"}, "api_base"),
        ({"source": "zoho"}, "source"),
        ({"source": "jira", "colour": "blue"}, "colour"),
    ]
    for body, field in cases:
        response = api.post("/api/v1/integrations", body, content_type="application/json")
        assert response.status_code == 422 and field in response.json()["error"]["fields"], (body, response.content)
    assert api.post("/api/v1/integrations", b"{nope", content_type="application/json").status_code == 400
    stripe = api.post("/api/v1/integrations", {"source": "stripe"}, content_type="application/json")
    assert stripe.status_code == 422 and "secret_key" in stripe.json()["error"]["fields"]
    assert api.get("/api/v1/integrations").json() == []


def test_an_admin_sees_the_secret_once_then_masked_and_other_roles_cannot_open_the_page(in_tenant_a):
    admin = client_for(in_tenant_a, email=in_tenant_a.users["admin"])
    response = admin.post("/integrations/jira/connect/", {"name": "Jira Cloud"})
    assert response.status_code == 302
    first = admin.get("/integrations/jira/").content.decode()
    assert 'id="secret-value"' in first and "rvxwh_" in first
    second = admin.get("/integrations/jira/").content.decode()
    assert 'id="secret-value"' not in second and "••••" in second
    assert f"http://{in_tenant_a.host}/webhooks/jira/" in second
    finance = client_for(in_tenant_a, email=in_tenant_a.users["finance"])
    assert finance.get("/integrations/jira/").status_code == 403
    assert finance.get("/integrations/time-imports/").status_code == 200


def test_a_tenant_sees_and_reaches_only_its_own_connections(api, in_tenant_a, tenant_b):
    from django.test import Client

    api.post("/api/v1/integrations", {"source": "jira"}, content_type="application/json")
    other = Client(HTTP_HOST=tenant_b.host, HTTP_AUTHORIZATION=f"Bearer {tenant_b.api_key}")
    assert other.get("/api/v1/integrations").json() == []
    # Tenant A's key does not open tenant B's API.
    wrong = Client(HTTP_HOST=tenant_b.host, HTTP_AUTHORIZATION=f"Bearer {in_tenant_a.api_key}")
    assert wrong.get("/api/v1/integrations").status_code == 401


@pytest.mark.slow
def test_stripe_is_connected_through_the_collections_module_against_localstripe(api, in_tenant_a, settings):
    from receivables.localstripe_server import running
    from receivables.services.stripe import stripe_account_current

    with running() as base:
        settings.STRIPE_API_BASE = base
        body = {
            "source": "stripe",
            "secret_key": "sk_test_123",
            "publishable_key": "pk_test_123",
            "secret": "whsec_abc123",
        }
        response = api.post("/api/v1/integrations", body, content_type="application/json")
    assert response.status_code == 201, response.content
    answer = response.json()
    assert answer["source"] == "stripe" and "whsec_abc123" not in answer["secret"]  # the tenant's own key, masked
    assert answer["webhook_url"] == f"http://{in_tenant_a.host}/webhooks/stripe/"
    assert stripe_account_current().secret_key == "sk_test_123"
    (listed,) = [c for c in api.get("/api/v1/integrations").json() if c["source"] == "stripe"]
    assert listed["secret"].endswith("c123") and "whsec_abc123" not in listed["secret"]
