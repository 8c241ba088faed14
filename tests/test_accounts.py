"""Sign-in, brute-force throttling, password reset and invitations by e-mail, user and key admin."""

from __future__ import annotations

import re

import pytest
from django.core import mail
from django.test import Client
from django_tenants.utils import schema_context

from conftest import PASSWORD
from revexos.accounts.models import ApiKey, Role, User
from tests.helpers import client_for

pytestmark = pytest.mark.django_db


def test_sign_in_and_out(tenant_a):
    client = client_for(tenant_a, email=tenant_a.users[Role.FINANCE])
    assert client.get("/").status_code == 200
    client.post("/accounts/logout/")
    assert client.get("/").status_code == 302


def test_five_failed_attempts_lock_the_account_from_that_address(tenant_a):
    client = Client(HTTP_HOST=tenant_a.host, REMOTE_ADDR="203.0.113.9")
    email = tenant_a.users[Role.VIEWER]
    for _ in range(5):
        client.post("/accounts/login/", {"username": email, "password": "wrong-password"})
    locked = client.post("/accounts/login/", {"username": email, "password": PASSWORD})
    assert locked.status_code == 429
    assert "Too many sign-in attempts" in locked.content.decode()
    # Another address is not punished for the attacker's attempts.
    other = Client(HTTP_HOST=tenant_a.host, REMOTE_ADDR="198.51.100.7")
    assert other.post("/accounts/login/", {"username": email, "password": PASSWORD}).status_code == 302


def test_password_reset_mails_a_link_on_the_tenant_host_that_sets_a_new_password(tenant_a):
    client = Client(HTTP_HOST=tenant_a.host)
    email = tenant_a.users[Role.ACCOUNT_MANAGER]
    response = client.post("/accounts/password/reset/", {"email": email})
    assert response.status_code == 302
    assert len(mail.outbox) == 1 and mail.outbox[0].to == [email]
    link = re.search(r"http://\S+", mail.outbox[0].body).group(0)
    assert link.startswith(f"http://{tenant_a.host}/accounts/password/reset/")
    path = link.split(tenant_a.host, 1)[1]
    form_page = client.get(path, follow=True)
    assert form_page.status_code == 200
    set_url = form_page.redirect_chain[-1][0] if form_page.redirect_chain else path
    done = client.post(set_url, {"new_password1": "brand-new-secret-42", "new_password2": "brand-new-secret-42"})
    assert done.status_code == 302
    assert (
        Client(HTTP_HOST=tenant_a.host)
        .post("/accounts/login/", {"username": email, "password": "brand-new-secret-42"})
        .status_code
        == 302
    )


def test_password_reset_for_a_user_of_another_tenant_sends_nothing(tenant_a, tenant_b):
    Client(HTTP_HOST=tenant_b.host).post("/accounts/password/reset/", {"email": tenant_a.users[Role.ADMIN]})
    assert mail.outbox == []


def test_admin_invites_a_user_who_sets_a_password_from_the_e_mail(tenant_a):
    admin = client_for(tenant_a, email=tenant_a.users[Role.ADMIN])
    response = admin.post(
        "/accounts/users/new/",
        {
            "email": "new.analyst@tenant-a.example",
            "full_name": "New Analyst",
            "role": Role.FINANCE,
            "send_invite": "on",
        },
    )
    assert response.status_code == 302
    with schema_context(tenant_a.schema):
        user = User.objects.get(email="new.analyst@tenant-a.example")
        assert user.role == Role.FINANCE and not user.has_usable_password()
    assert len(mail.outbox) == 1
    assert "as Finance" in mail.outbox[0].body
    assert f"http://{tenant_a.host}/accounts/password/reset/" in mail.outbox[0].body


def test_adding_a_user_with_a_taken_email_shows_the_error_and_adds_nobody(tenant_a):
    admin = client_for(tenant_a, email=tenant_a.users[Role.ADMIN])
    with schema_context(tenant_a.schema):
        before = User.objects.count()
    response = admin.post(
        "/accounts/users/new/", {"email": tenant_a.users[Role.VIEWER], "role": Role.VIEWER, "send_invite": "on"}
    )
    assert response.status_code == 200
    assert "already exists" in response.content.decode()
    with schema_context(tenant_a.schema):
        assert User.objects.count() == before


def test_admin_changes_a_role_but_cannot_demote_themselves(tenant_a):
    admin = client_for(tenant_a, email=tenant_a.users[Role.ADMIN])
    with schema_context(tenant_a.schema):
        viewer = User.objects.get(email=tenant_a.users[Role.VIEWER])
        me = User.objects.get(email=tenant_a.users[Role.ADMIN])
    assert (
        admin.post(f"/accounts/users/{viewer.pk}/", {"role": Role.ACCOUNT_MANAGER, "is_active": "on"}).status_code
        == 302
    )
    refused = admin.post(f"/accounts/users/{me.pk}/", {"role": Role.VIEWER, "is_active": "on"})
    assert "cannot remove your own admin role" in refused.content.decode()
    with schema_context(tenant_a.schema):
        assert User.objects.get(pk=viewer.pk).role == Role.ACCOUNT_MANAGER
        assert User.objects.get(pk=me.pk).role == Role.ADMIN


def test_api_key_is_shown_once_then_only_its_prefix(tenant_a):
    admin = client_for(tenant_a, email=tenant_a.users[Role.ADMIN])
    created = admin.post("/accounts/api-keys/", {"name": "Jira sync"}).content.decode()
    secret = re.search(r'id="new-api-key">(rvx_[^<]+)<', created).group(1)
    later = admin.get("/accounts/api-keys/").content.decode()
    assert secret not in later and secret.split("_")[1] in later
    assert Client(HTTP_HOST=tenant_a.host, HTTP_AUTHORIZATION=f"Bearer {secret}").get("/api/v1/me").status_code == 200
    with schema_context(tenant_a.schema):
        key = ApiKey.objects.get(name="Jira sync")
    admin.post(f"/accounts/api-keys/{key.pk}/revoke/")
    assert Client(HTTP_HOST=tenant_a.host, HTTP_AUTHORIZATION=f"Bearer {secret}").get("/api/v1/me").status_code == 401
