"""A tenant's logo is read from storage once per worker while the file stays the same."""

from __future__ import annotations

import io
import os

from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from PIL import Image

from billing.services import pdf
from revexos.tenancy.models import Tenant


def _png(colour) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (240, 60), colour).save(buffer, format="PNG")
    return buffer.getvalue()


def test_the_logo_is_read_once_and_again_when_its_file_changes(in_tenant_a, media_root, monkeypatch):
    tenant = Tenant.objects.get(schema_name=in_tenant_a.schema)
    tenant.invoice_logo.save("logo.png", ContentFile(_png((13, 148, 136))), save=True)
    name = tenant.invoice_logo.name
    opened = []
    real_open = default_storage.open
    monkeypatch.setattr(default_storage, "open", lambda n, mode="rb": opened.append(n) or real_open(n, mode))
    pdf._logos.clear()

    first = pdf._branding(tenant)["logo_uri"]
    assert first.startswith("data:image/png;base64,") and pdf._branding(tenant)["logo_uri"] == first
    assert opened == [name]  # the second invoice used the kept copy
    assert all(key[0] == in_tenant_a.schema for key in pdf._logos)  # kept under the tenant's schema

    path = default_storage.path(name)
    with open(path, "wb") as handle:  # the logo replaced in place
        handle.write(_png((200, 30, 30)))
    stat = os.stat(path)
    os.utime(path, (stat.st_atime, stat.st_mtime + 5))
    second = pdf._branding(tenant)["logo_uri"]
    assert second != first and opened == [name, name]
