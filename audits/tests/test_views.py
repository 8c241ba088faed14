"""The audit upload page: bad files named by file, row and column with nothing stored, uploads
limited in size, the date format asked for once (the files kept), a good upload queued for a worker
with its progress shown, and a failed audit's messages on its page."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django_tenants.utils import schema_context

from audits.models import Audit, AuditStatus
from tests.helpers import client_for

pytestmark = pytest.mark.django_db

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "fabrikam"
THREE = {"contracts": "contracts.csv", "invoices": "xero_invoices.csv", "time_entries": "harvest_time.csv"}


@pytest.fixture(autouse=True)
def no_broker(monkeypatch):
    sent = []
    monkeypatch.setattr(
        "billing.services.enqueue.task_send", lambda name, *, kwargs, schema: sent.append((name, kwargs, schema))
    )
    return sent


@pytest.fixture(autouse=True)
def media(settings, tmp_path):
    from django.core.files.storage import default_storage
    from django.utils.functional import empty

    def reset():
        if default_storage._wrapped is empty:
            default_storage._setup()
        default_storage._wrapped.__dict__.pop("relative_media_root", None)

    settings.MEDIA_ROOT = str(tmp_path)
    reset()
    yield tmp_path
    reset()


@pytest.fixture
def client(tenant_a):
    return client_for(tenant_a, email=tenant_a.users["finance"])


def form(**override) -> dict:
    body = {kind: SimpleUploadedFile(name, (FIXTURES / name).read_bytes(), "text/csv") for kind, name in THREE.items()}
    body["name"] = "Fabrikam Digital Ltd"
    body.update({k: v for k, v in override.items() if v is not None})
    for k in [k for k, v in override.items() if v is None]:
        body.pop(k, None)
    return body


def stored_files(root: Path) -> list[str]:
    return [os.path.join(d, f) for d, _, files in os.walk(root) for f in files]


def nothing_stored(tenant, media_root) -> bool:
    with schema_context(tenant.schema):
        return not Audit.objects.exists() and not stored_files(media_root)


@pytest.mark.parametrize(
    ("override", "message"),
    [
        # A spreadsheet where a CSV belongs.
        ({"contracts": SimpleUploadedFile("contracts.xlsx", b"PK\x03\x04....")}, "contracts.xlsx"),
        # A Xero export without its InvoiceDate column.
        (
            {
                "invoices": SimpleUploadedFile(
                    "xero.csv", (FIXTURES / "xero_invoices.csv").read_bytes().replace(b"InvoiceDate,", b"Date,", 1)
                )
            },
            "has no InvoiceDate column",
        ),
        # An unknown currency, named by file, row and column.
        (
            {
                "invoices": SimpleUploadedFile(
                    "xero.csv", (FIXTURES / "xero_invoices.csv").read_bytes().replace(b",GBP,", b",GBX,", 1)
                )
            },
            "xero.csv, row 2, column Currency",
        ),
        # Not a time export at all.
        ({"time_entries": SimpleUploadedFile("t.csv", b"when,how long\n2026-01-01,3\n")}, "Harvest"),
        ({"invoices": None}, "Upload the invoice export"),
    ],
)
def test_a_bad_upload_is_named_on_the_page_and_nothing_is_stored(client, tenant_a, media, no_broker, override, message):
    page = client.post("/audits/new/", form(**override))
    assert page.status_code == 400
    assert message in page.content.decode()
    assert nothing_stored(tenant_a, media) and not no_broker


def test_duplicate_invoice_numbers_are_named_on_the_page(client, tenant_a, media):
    lines = (FIXTURES / "xero_invoices.csv").read_text().splitlines(keepends=True)
    lines[2] = lines[2].replace("INV-1002", "INV-1001")
    page = client.post("/audits/new/", form(invoices=SimpleUploadedFile("xero.csv", "".join(lines).encode())))
    assert page.status_code == 400
    assert "row 3, column ContactName: Invoice number INV-1001 is used twice" in page.content.decode()
    assert nothing_stored(tenant_a, media)


def test_a_file_over_the_size_limit_is_refused_on_the_page(client, tenant_a, media, settings):
    settings.AUDIT_MAX_FILE_BYTES = 1024
    page = client.post("/audits/new/", form())
    assert page.status_code == 400
    assert "xero_invoices.csv is larger than" in page.content.decode()
    assert nothing_stored(tenant_a, media)


def test_ambiguous_dates_are_asked_for_once_and_the_three_files_are_kept(
    client, tenant_a, no_broker, django_capture_on_commit_callbacks
):
    header, *rows = (FIXTURES / "xero_invoices.csv").read_text().splitlines(keepends=True)
    ambiguous = header + "".join(r.replace("31/07/2025", "11/07/2025") for r in rows[:1])
    asked = client.post("/audits/new/", form(invoices=SimpleUploadedFile("xero.csv", ambiguous.encode())))
    assert asked.status_code == 400
    assert 'id="date-format-question"' in asked.content.decode()
    pending = asked.context["pending"]
    assert pending and set(asked.context["pending_names"]) == set(THREE)
    # The answer alone: no file is chosen again.
    with django_capture_on_commit_callbacks(execute=True):
        done = client.post("/audits/new/", {"name": "Fabrikam Digital Ltd", "pending": pending, "date_format": "dmy"})
    assert done.status_code == 302
    with schema_context(tenant_a.schema):
        audit = Audit.objects.get()
        assert set(audit.files) == set(THREE) and audit.date_format == "dmy"
    assert [name for name, _, _ in no_broker] == ["audits.tasks.audit_process"]


def test_a_good_upload_is_queued_for_a_worker_and_its_page_shows_the_progress(
    client, tenant_a, no_broker, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        done = client.post("/audits/new/", form())
    assert done.status_code == 302
    with schema_context(tenant_a.schema):
        audit = Audit.objects.get()
    assert [(name, kwargs["audit_id"]) for name, kwargs, _ in no_broker] == [
        ("audits.tasks.audit_process", str(audit.pk))
    ]
    page = client.get(done["Location"])
    assert page.status_code == 200 and 'id="audit-progress"' in page.content.decode()
    # The page polls a fragment while the worker runs, and refreshes itself once it is done.
    with schema_context(tenant_a.schema):
        Audit.objects.filter(pk=audit.pk).update(status=AuditStatus.PROCESSING, progress=60, stage="Matching")
    fragment = client.get(done["Location"] + "?progress=1", HTTP_HX_REQUEST="true")
    assert fragment.status_code == 200 and "Matching" in fragment.content.decode()
    with schema_context(tenant_a.schema):
        Audit.objects.filter(pk=audit.pk).update(
            status=AuditStatus.FAILED,
            progress=100,
            errors=[{"file": "contracts.csv", "row": 4, "column": "amount", "message": "“45OO.00” is not a number."}],
        )
    assert client.get(done["Location"] + "?progress=1", HTTP_HX_REQUEST="true")["HX-Refresh"] == "true"
    failed = client.get(done["Location"]).content.decode()
    assert 'id="audit-errors"' in failed
    for text in ("contracts.csv", ">4<", "amount", "is not a number"):
        assert text in failed, text
