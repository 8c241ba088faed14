"""Tenants never mix: users, sessions, API keys, cache keys and admin pages stay in their tenant."""

from __future__ import annotations

import pytest
from django.core.cache import cache
from django.db import connection
from django.test import Client
from django_tenants.utils import schema_context

from revexos.accounts.models import Role, User
from tests.helpers import client_for

pytestmark = pytest.mark.django_db


def test_a_user_of_tenant_a_cannot_sign_in_on_tenant_b(tenant_a, tenant_b):
    from conftest import PASSWORD

    response = Client(HTTP_HOST=tenant_b.host).post(
        "/accounts/login/", {"username": tenant_a.users[Role.ADMIN], "password": PASSWORD}
    )
    assert response.status_code == 200
    assert "do not match an account here" in response.content.decode()


def test_an_api_key_of_tenant_a_gets_401_on_tenant_b(tenant_a, tenant_b):
    auth = {"HTTP_AUTHORIZATION": f"Bearer {tenant_a.api_key}"}
    assert Client(HTTP_HOST=tenant_a.host).get("/api/v1/me", **auth).status_code == 200
    response = Client(HTTP_HOST=tenant_b.host).get("/api/v1/me", **auth)
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "unauthorized"


def test_a_session_cookie_of_tenant_a_is_not_accepted_on_tenant_b(tenant_a, tenant_b):
    client = client_for(tenant_a, email=tenant_a.users[Role.ADMIN])
    assert client.get("/", HTTP_HOST=tenant_a.host).status_code == 200
    # The same cookie jar sent to B's host: B has no such session, so B asks for a login.
    response = client.get("/", HTTP_HOST=tenant_b.host)
    assert response.status_code == 302 and "/accounts/login/" in response["Location"]
    assert client.get("/accounts/users/", HTTP_HOST=tenant_b.host).status_code == 302


def test_a_session_key_replayed_into_another_schema_is_logged_out(tenant_a, tenant_b):
    """Even if a session row with the same key existed in B, the session guard refuses it."""
    from django.contrib.sessions.backends.db import SessionStore

    client = client_for(tenant_a, email=tenant_a.users[Role.ADMIN])
    key = client.cookies["rvx_session"].value
    with schema_context(tenant_a.schema):
        data = SessionStore(session_key=key).load()
    with schema_context(tenant_b.schema):
        store = SessionStore(session_key=key)
        store.update(data)
        store.save(must_create=False) if store.exists(key) else store.create_model_instance(data).save()
        if not store.exists(key):
            from django.contrib.sessions.models import Session

            Session.objects.create(
                session_key=key, session_data=store.encode(data), expire_date=store.get_expiry_date()
            )
    connection.set_schema_to_public()
    response = client.get("/", HTTP_HOST=tenant_b.host)
    assert response.status_code == 302


def test_users_of_one_tenant_are_invisible_to_the_other(tenant_a, tenant_b):
    client = client_for(tenant_b, email=tenant_b.users[Role.ADMIN])
    page = client.get("/accounts/users/").content.decode()
    assert tenant_b.users[Role.FINANCE] in page
    assert tenant_a.users[Role.FINANCE] not in page
    with schema_context(tenant_a.schema):
        a_user = User.objects.get(email=tenant_a.users[Role.FINANCE])
    # Object ids from A mean nothing on B's host.
    response = client.get(f"/accounts/users/{a_user.pk}/")
    if response.status_code == 200:
        assert tenant_a.users[Role.FINANCE] not in response.content.decode()
    else:
        assert response.status_code == 404


def test_cache_keys_are_prefixed_with_the_tenant(tenant_a, tenant_b):
    with schema_context(tenant_a.schema):
        cache.set("dashboard:figures", "A's numbers", 30)
    with schema_context(tenant_b.schema):
        assert cache.get("dashboard:figures") is None
        cache.set("dashboard:figures", "B's numbers", 30)
    with schema_context(tenant_a.schema):
        assert cache.get("dashboard:figures") == "A's numbers"
        cache.delete("dashboard:figures")
    with schema_context(tenant_b.schema):
        cache.delete("dashboard:figures")


def test_file_storage_paths_are_per_tenant(tenant_a, tenant_b, tmp_path, settings):
    from django.core.files.base import ContentFile
    from django.core.files.storage import storages

    settings.MEDIA_ROOT = str(tmp_path)
    storage = storages.create_storage(settings.STORAGES["default"])
    with schema_context(tenant_a.schema):
        name = storage.save("invoices/INV-1.pdf", ContentFile(b"%PDF A"))
        path_a = storage.path(name)
    with schema_context(tenant_b.schema):
        assert not storage.exists(name)
        path_b = storage.path(name)
    assert f"/{tenant_a.schema}/" in path_a and f"/{tenant_b.schema}/" in path_b


def test_tenant_admin_site_does_not_show_platform_tenants(tenant_a, tenant_b):
    client = client_for(tenant_a, email=tenant_a.users[Role.ADMIN])
    index = client.get("/admin/")
    assert index.status_code == 200
    assert "/admin/tenancy/" not in index.content.decode()
    assert client.get("/admin/tenancy/tenant/").status_code in {403, 404}


@pytest.mark.parametrize(
    "url, worker, expected",
    [
        ("unix:///srv/var/redis/redis.sock?db=0", 1, "unix:///srv/var/redis/redis.sock?db=1"),
        ("redis://127.0.0.1:6379/9", 1, "redis://127.0.0.1:6379/10"),
        ("redis://127.0.0.1:6379/15", 1, "redis://127.0.0.1:6379/0"),
    ],
)
def test_each_test_process_gets_a_redis_database_of_its_own_that_redis_py_accepts(url, worker, expected):
    from redis.connection import parse_url

    from conftest import _redis_url_for_worker

    assert _redis_url_for_worker(url, worker) == expected
    parse_url(expected)  # the embedded server's socket URL too (urlunsplit used to drop its "//")
