"""Workspace settings: admins set the invoice logo and accent colour; bad input changes nothing."""

from __future__ import annotations

import io

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from PIL import Image

from revexos.accounts.models import Role
from revexos.tenancy.models import DEFAULT_ACCENT, Tenant
from tests.helpers import client_for

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def media_root(settings, tmp_path):
    from django.core.files.storage import default_storage
    from django.utils.functional import empty

    def reset():
        if default_storage._wrapped is empty:
            default_storage._setup()
        default_storage._wrapped.__dict__.pop("relative_media_root", None)

    settings.MEDIA_ROOT = str(tmp_path / "media")
    reset()
    yield tmp_path / "media"
    reset()


def png(width=300, height=80, fmt="PNG") -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (width, height), (200, 30, 90)).save(buffer, format=fmt)
    return buffer.getvalue()


def form(**overrides):
    return {
        "name": "Tenant-A Corp",
        "auto_issue_invoices": "on",
        "renewal_window_days": "60",
        "invoice_accent_color": "#c81e5a",
        **overrides,
    }


def test_an_admin_sets_the_logo_and_accent_colour_and_sees_them(tenant_a, media_root):
    admin = client_for(tenant_a, email=tenant_a.users[Role.ADMIN])
    upload = SimpleUploadedFile("brand.png", png(), content_type="image/png")
    response = admin.post("/settings/workspace/", {**form(), "invoice_logo": upload})
    assert response.status_code == 302, response.content.decode()[:2000]
    tenant = Tenant.objects.get(schema_name=tenant_a.schema)
    assert tenant.invoice_accent_color == "#c81e5a"
    assert tenant.invoice_logo.name == "branding/logo.png"
    assert (media_root / tenant_a.schema / "branding" / "logo.png").exists()  # the tenant's own folder
    page = admin.get("/settings/workspace/").content.decode()
    assert "Current invoice logo" in page and "#c81e5a" in page
    logo = admin.get("/settings/workspace/logo/")
    assert logo.status_code == 200 and logo["Content-Type"] == "image/png" and logo.content == png()
    # Removing it.
    assert admin.post("/settings/workspace/", {**form(), "clear_logo": "on"}).status_code == 302
    assert not Tenant.objects.get(schema_name=tenant_a.schema).invoice_logo
    assert admin.get("/settings/workspace/logo/").status_code == 404


@pytest.mark.parametrize(
    "overrides, upload, message",
    [
        ({"invoice_accent_color": "red"}, None, "hex colour"),
        ({"renewal_window_days": "0"}, None, "from 1 to 366"),
        ({}, ("notes.txt", b"not an image", "text/plain"), "Upload a valid image"),
        ({}, ("anim.gif", png(fmt="GIF"), "image/gif"), "PNG or JPEG"),
    ],
)
def test_bad_settings_are_refused_with_a_clear_error_and_nothing_changes(tenant_a, overrides, upload, message):
    admin = client_for(tenant_a, email=tenant_a.users[Role.ADMIN])
    data = form(**overrides)
    if upload:
        data["invoice_logo"] = SimpleUploadedFile(*upload)
    response = admin.post("/settings/workspace/", data)
    assert response.status_code == 400 and message in response.content.decode()
    tenant = Tenant.objects.get(schema_name=tenant_a.schema)
    assert tenant.invoice_accent_color == DEFAULT_ACCENT and not tenant.invoice_logo


@pytest.mark.parametrize("role", [Role.FINANCE, Role.ACCOUNT_MANAGER, Role.VIEWER])
def test_only_admins_change_workspace_settings(tenant_a, role):
    client = client_for(tenant_a, email=tenant_a.users[role])
    assert client.get("/settings/workspace/").status_code == 403
    assert client.post("/settings/workspace/", form()).status_code == 403
    assert Tenant.objects.get(schema_name=tenant_a.schema).invoice_accent_color == DEFAULT_ACCENT
