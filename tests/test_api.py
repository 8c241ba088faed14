"""The API skeleton: OpenAPI document, docs without a CDN, key authentication, one error shape."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test import Client
from django_tenants.utils import schema_context

from revexos.accounts.models import ApiKey

pytestmark = pytest.mark.django_db


def api(tenant) -> Client:
    return Client(HTTP_HOST=tenant.host, HTTP_AUTHORIZATION=f"Bearer {tenant.api_key}")


def test_openapi_document_describes_the_api(tenant_a):
    response = Client(HTTP_HOST=tenant_a.host).get("/api/v1/openapi.json")
    assert response.status_code == 200
    doc = response.json()
    assert doc["openapi"].startswith("3.")
    assert "/api/v1/health" in doc["paths"]
    assert any(scheme.get("scheme") == "bearer" for scheme in doc["components"]["securitySchemes"].values())


def test_browsable_docs_load_their_assets_locally(tenant_a):
    page = Client(HTTP_HOST=tenant_a.host).get("/api/v1/docs").content.decode()
    assert "swagger" in page.lower()
    assert "cdn." not in page and "unpkg" not in page


def test_health_reports_database_and_cache(tenant_a):
    body = Client(HTTP_HOST=tenant_a.host).get("/api/v1/health").json()
    assert body == {"status": "ok", "tenant": "tenant-a", "database": "ok", "cache": "ok"}


@pytest.mark.parametrize("header", [None, "Bearer", "Bearer nonsense", "Token abc", "Bearer rvx_000000000000_forged"])
def test_requests_without_a_valid_key_get_401_with_a_json_error(tenant_a, header):
    extra = {"HTTP_AUTHORIZATION": header} if header else {}
    response = Client(HTTP_HOST=tenant_a.host).get("/api/v1/me", **extra)
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "unauthorized"
    assert response["WWW-Authenticate"].startswith("Bearer")


def test_a_valid_key_authenticates_and_is_touched(tenant_a):
    response = api(tenant_a).get("/api/v1/me")
    assert response.status_code == 200
    assert response.json()["tenant"] == "tenant-a"
    with schema_context(tenant_a.schema):
        assert ApiKey.objects.filter(last_used_at__isnull=False).exists()


def test_a_revoked_key_stops_working(tenant_a):
    from revexos.accounts.services import api_key_create, api_key_revoke

    with schema_context(tenant_a.schema):
        issued = api_key_create(name="to revoke", created_by=None)
    connection.set_schema_to_public()
    client = Client(HTTP_HOST=tenant_a.host, HTTP_AUTHORIZATION=f"Bearer {issued.secret}")
    assert client.get("/api/v1/me").status_code == 200
    with schema_context(tenant_a.schema):
        api_key_revoke(key_id=issued.key.pk)
    connection.set_schema_to_public()
    assert client.get("/api/v1/me").status_code == 401


def test_keys_are_stored_hashed_and_never_in_clear(tenant_a):
    with schema_context(tenant_a.schema), connection.cursor() as cursor:
        cursor.execute("SELECT prefix, digest FROM accounts_apikey")
        rows = cursor.fetchall()
    assert rows
    for _prefix, digest in rows:
        assert len(digest) == 64 and tenant_a.api_key not in digest
    secret_part = tenant_a.api_key.split("_", 2)[2]  # the random part may itself contain "_"
    assert all(secret_part not in str(row) for row in rows)


def test_unknown_api_paths_answer_404(tenant_a):
    response = api(tenant_a).get("/api/v1/no-such-thing")
    assert response.status_code == 404


def test_the_api_does_not_exist_on_the_public_host():
    assert Client(HTTP_HOST="localhost").get("/api/v1/health").status_code == 404
