"""``POST /api/v1/audits`` (multipart) and its reads: bad uploads named by file, row and column and
nothing stored; the date format asked for when ambiguous; a tenant sees only its own audits."""

from __future__ import annotations

from pathlib import Path

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client

from audits.models import Audit

pytestmark = pytest.mark.django_db

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "fabrikam"


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
    yield
    reset()


def api_for(tenant) -> Client:
    return Client(HTTP_HOST=tenant.host, HTTP_AUTHORIZATION=f"Bearer {tenant.api_key}")


def files(**override) -> dict:
    names = {
        "customers": "customers.csv",
        "contracts": "contracts.csv",
        "invoices": "xero_invoices.csv",
        "time_entries": "harvest_time.csv",
    }
    body = {kind: SimpleUploadedFile(name, (FIXTURES / name).read_bytes(), "text/csv") for kind, name in names.items()}
    body["name"] = "Fabrikam Digital Ltd"
    for key, value in override.items():
        if value is None:
            body.pop(key, None)
        else:
            body[key] = value
    return body


def post(tenant, **override):
    return api_for(tenant).post("/api/v1/audits", files(**override))


def test_posting_the_exports_queues_an_audit_for_a_worker(tenant_a, no_broker, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        response = post(tenant_a)
    assert response.status_code == 202, response.content
    body = response.json()
    assert body["status"] == "queued" and body["findings"] == [] and body["totals"] == []
    assert [(name, kwargs["audit_id"]) for name, kwargs, _ in no_broker] == [("audits.tasks.audit_process", body["id"])]
    got = api_for(tenant_a).get(f"/api/v1/audits/{body['id']}")
    assert got.status_code == 200 and got.json()["name"] == "Fabrikam Digital Ltd" and got.json()["progress"] == 0
    assert api_for(tenant_a).get(f"/api/v1/audits/{body['id']}/report.pdf").status_code == 409


def test_another_tenant_cannot_see_the_audit(tenant_a, tenant_b):
    audit_id = post(tenant_a).json()["id"]
    for path in (f"/api/v1/audits/{audit_id}", f"/api/v1/audits/{audit_id}/report.pdf"):
        response = api_for(tenant_b).get(path)
        assert response.status_code == 404 and response.json()["error"]["code"] == "not_found"
    assert audit_id not in [a["id"] for a in api_for(tenant_b).get("/api/v1/audits").json()]
    assert audit_id in [a["id"] for a in api_for(tenant_a).get("/api/v1/audits").json()]


@pytest.mark.parametrize(
    ("override", "field", "message"),
    [
        ({"invoices": None}, "invoices", "Upload the invoice export"),
        ({"contracts": SimpleUploadedFile("contracts.xlsx", b"PK\x03\x04....")}, "contracts", "Excel workbook"),
        ({"customers": SimpleUploadedFile("c.csv", b"id,name\n1,x\n")}, "customers", "Unknown column"),
        (
            {
                "invoices": SimpleUploadedFile(
                    "inv.csv", (FIXTURES / "xero_invoices.csv").read_bytes().replace(b",GBP,", b",GBX,", 1)
                )
            },
            "invoices",
            "inv.csv, row 2, column Currency: “GBX” is not a currency",
        ),
        (
            {
                "invoices": SimpleUploadedFile(
                    "inv.csv", (FIXTURES / "xero_invoices.csv").read_bytes().replace(b"InvoiceDate,", b"Date,", 1)
                )
            },
            "invoices",
            "has no InvoiceDate column",
        ),
        ({"time_entries": SimpleUploadedFile("t.csv", b"when,how long\n2026-01-01,3\n")}, "time_entries", "Harvest"),
        (
            {
                "usage": SimpleUploadedFile(
                    "u.csv", b"contract,metric,quantity,timestamp\nC-1001,api calls,5,2026-01-01\n"
                )
            },
            "usage",
            "row 2, column metric",
        ),
        ({"name": ""}, "name", "Say whose revenue cycle"),
    ],
)
def test_bad_uploads_are_named_and_nothing_is_stored(tenant_a, no_broker, override, field, message):
    response = post(tenant_a, **override)
    assert response.status_code == 422, response.content
    error = response.json()["error"]
    assert error["code"] == "validation_error"
    assert any(message in m for m in error["fields"][field]), error["fields"]
    assert not no_broker
    from django_tenants.utils import schema_context

    with schema_context(tenant_a.schema):
        assert not Audit.objects.exists()


def test_duplicate_invoice_numbers_in_the_export_are_refused(tenant_a):
    raw = (FIXTURES / "xero_invoices.csv").read_bytes().decode()
    lines = raw.splitlines(keepends=True)
    # Row 3 (Globex's first invoice) takes Acme's invoice number INV-1001.
    lines[2] = lines[2].replace("INV-1002", "INV-1001")
    response = post(tenant_a, invoices=SimpleUploadedFile("inv.csv", "".join(lines).encode()))
    assert response.status_code == 422
    (message,) = response.json()["error"]["fields"]["invoices"]
    assert message.startswith("inv.csv, row 3, column ContactName: Invoice number INV-1001 is used twice")


def test_ambiguous_dates_are_asked_for_and_accepted_once_given(tenant_a):
    header, *rows = (FIXTURES / "xero_invoices.csv").read_text().splitlines(keepends=True)
    # Only invoices dated on the 1st with a due date ≤ the 12th: every date reads both ways.
    ambiguous = header + "".join(r.replace("31/07/2025", "11/07/2025") for r in rows[:1])
    upload = lambda: SimpleUploadedFile("inv.csv", ambiguous.encode())  # noqa: E731
    asked = post(tenant_a, invoices=upload())
    assert asked.status_code == 422
    assert "dmy" in asked.json()["error"]["fields"]["date_format"][0]
    assert post(tenant_a, invoices=upload(), date_format="dmy").status_code == 202


def test_uploads_over_the_size_limit_are_refused(tenant_a, settings):
    settings.AUDIT_MAX_FILE_BYTES = 1024
    response = post(tenant_a)
    assert response.status_code == 413 and "larger than" in response.json()["error"]["message"]


def test_a_multipart_body_without_a_boundary_is_a_400_not_a_server_error(tenant_a):
    response = api_for(tenant_a).generic("POST", "/api/v1/audits", b"name=x", content_type="multipart/form-data")
    assert response.status_code == 400 and response.json()["error"]["code"] == "bad_request"
