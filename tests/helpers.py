from __future__ import annotations

from django.test import Client


def client_for(tenant, *, email: str | None = None) -> Client:
    """A test client on the tenant's host, signed in as ``email`` when given (via the login form)."""
    from conftest import PASSWORD

    client = Client(HTTP_HOST=tenant.host)
    if email:
        response = client.post("/accounts/login/", {"username": email, "password": PASSWORD})
        assert response.status_code == 302, f"login as {email} failed: {response.status_code}"
    return client


def api_client(tenant) -> Client:
    """An API client on the tenant's host with its provisioning key."""
    return Client(HTTP_HOST=tenant.host, HTTP_AUTHORIZATION=f"Bearer {tenant.api_key}")
