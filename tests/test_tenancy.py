"""Provisioning tenants: the operations command, self-service sign-up, slug rules, no half-made tenants."""

from __future__ import annotations

from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django.db import connection
from django.test import Client
from django_tenants.utils import schema_exists

from revexos.tenancy.models import Domain, Tenant
from revexos.tenancy.slugs import slug_problems

pytestmark = pytest.mark.django_db


def test_provision_tenant_prints_a_key_alone_on_the_last_line_that_works_only_on_that_host(tenant_a):
    out = StringIO()
    call_command(
        "provision_tenant",
        "initech",
        "--domain",
        "billing.initech.test",
        "--admin-email",
        "boss@initech.test",
        "--admin-password",
        "Tps-reports-2026",
        "--api-key",
        stdout=out,
    )
    key = out.getvalue().strip().splitlines()[-1]
    assert key.startswith("rvx_") and " " not in key
    connection.set_schema_to_public()

    mine = Client(HTTP_HOST="billing.initech.test").get("/api/v1/me", HTTP_AUTHORIZATION=f"Bearer {key}")
    assert mine.status_code == 200 and mine.json()["tenant"] == "initech"
    other = Client(HTTP_HOST=tenant_a.host).get("/api/v1/me", HTTP_AUTHORIZATION=f"Bearer {key}")
    assert other.status_code == 401


def test_provision_tenant_without_api_key_prints_no_key():
    out = StringIO()
    call_command(
        "provision_tenant",
        "hooli",
        "--admin-email",
        "gavin@hooli.test",
        "--admin-password",
        "Nucleus-2026-x",
        stdout=out,
    )
    assert "rvx_" not in out.getvalue()
    assert Domain.objects.get(tenant__slug="hooli").domain == "hooli.localhost"


@pytest.mark.parametrize(
    "slug, problem",
    [
        ("ab", "between 3 and 32"),
        ("x" * 33, "between 3 and 32"),
        ("Acme", "lowercase"),
        ("acme_ltd", "lowercase"),
        ("-acme", "lowercase"),
        ("acme-", "lowercase"),
        ("ac--me", "lowercase"),
        ("9acme", "lowercase"),
        ("public", "reserved"),
        ("www", "reserved"),
        ("pg-catalog", "reserved"),
    ],
)
def test_bad_slugs_are_refused_with_a_reason(slug, problem):
    assert any(problem in p for p in slug_problems(slug))
    before = Tenant.objects.count()
    with pytest.raises(CommandError) as exc:
        call_command(
            "provision_tenant",
            slug,
            "--admin-email",
            "a@b.test",
            "--admin-password",
            "Long-enough-pw-1",
            stdout=StringIO(),
        )
    assert "slug" in str(exc.value)
    assert Tenant.objects.count() == before


def test_a_taken_slug_is_refused(tenant_a):
    with pytest.raises(CommandError, match="already taken"):
        call_command(
            "provision_tenant",
            tenant_a.slug,
            "--admin-email",
            "a@b.test",
            "--admin-password",
            "Long-enough-pw-1",
            stdout=StringIO(),
        )


def test_good_slugs_pass():
    for slug in ["acme", "acme-ltd", "a1b", "northwind-2026"]:
        assert slug_problems(slug) == []


def _signup(client: Client, **overrides):
    data = {
        "company_name": "Vandelay Industries",
        "slug": "vandelay",
        "admin_email": "art@vandelay.test",
        "password": "Importer-exporter-9",
    }
    data.update(overrides)
    return client.post("/signup/", data)


def test_signup_provisions_schema_domain_and_admin_then_redirects_to_the_tenant_login():
    public = Client(HTTP_HOST="localhost")
    response = _signup(public)
    assert response.status_code == 302
    assert response["Location"].startswith("http://vandelay.localhost")
    assert "/accounts/login/" in response["Location"]
    tenant = Tenant.objects.get(slug="vandelay")
    assert schema_exists(tenant.schema_name)
    connection.set_schema_to_public()
    tenant_client = Client(HTTP_HOST="vandelay.localhost")
    login = tenant_client.post("/accounts/login/", {"username": "art@vandelay.test", "password": "Importer-exporter-9"})
    assert login.status_code == 302 and login["Location"] == "/"
    assert tenant_client.get("/").status_code == 200


@pytest.mark.parametrize(
    "overrides, field, message",
    [
        ({"slug": "tenant-a"}, "slug", "already taken"),
        ({"slug": "admin"}, "slug", "reserved"),
        ({"slug": "Bad Slug"}, "slug", "lowercase"),
        ({"password": "password"}, "password", "too common"),
        ({"password": "short"}, "password", "too short"),
        ({"admin_email": "not-an-email"}, "admin_email", "valid email"),
        ({"company_name": ""}, "company_name", "required"),
    ],
)
def test_signup_with_bad_input_shows_the_error_and_creates_nothing(tenant_a, overrides, field, message):
    before = (Tenant.objects.count(), Domain.objects.count())
    response = _signup(Client(HTTP_HOST="localhost"), **overrides)
    assert response.status_code == 400
    errors = response.context["form"].errors
    assert field in errors, errors
    assert any(message in e for e in errors[field]), errors[field]
    assert (Tenant.objects.count(), Domain.objects.count()) == before
    assert not schema_exists("vandelay")


def test_a_failure_after_the_schema_was_created_leaves_no_half_made_tenant(monkeypatch):
    import revexos.accounts.services as services

    def explode(**kwargs):
        raise RuntimeError("disk full")

    monkeypatch.setattr(services, "user_create", explode)
    with pytest.raises(RuntimeError):
        _signup(Client(HTTP_HOST="localhost", raise_request_exception=True), slug="halfmade")
    connection.set_schema_to_public()
    assert not Tenant.objects.filter(slug="halfmade").exists()
    assert not Domain.objects.filter(domain="halfmade.localhost").exists()
    assert not schema_exists("halfmade")


def test_an_unknown_host_gets_404_not_another_tenant():
    assert Client(HTTP_HOST="nobody.localhost").get("/").status_code == 404


def test_the_landing_page_offers_sign_up():
    response = Client(HTTP_HOST="localhost").get("/")
    assert response.status_code == 200
    assert b"Create your workspace" in response.content
