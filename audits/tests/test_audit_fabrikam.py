"""The Q2C audit of the Fabrikam fixture company (audits/fixtures/generate.py): every planted leak
found with its hand-calculated amount, nothing on the clean contract, the same report when re-run,
a sandbox that never shares a row with a live tenant and is gone after its retention."""

from __future__ import annotations

from collections import defaultdict
from datetime import timedelta
from decimal import Decimal
from pathlib import Path

import pytest
import time_machine
from django.core.files.storage import default_storage
from django.db import connection
from django.utils import timezone
from django_tenants.utils import schema_context, schema_exists

from audits.models import Audit, AuditStatus
from audits.services.audits import Upload, audit_create, audit_rerun, audits_purge_expired
from audits.services.process import audit_process
from revexos.tenancy.models import Domain, Tenant

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "fabrikam"
# The three files: contracts CSV, Xero export, Harvest CSV (customers come from the contracts
# and the invoices' contact names); one test below adds the customers CSV.
FILES = {
    "contracts": "contracts.csv",
    "invoices": "xero_invoices.csv",
    "time_entries": "harvest_time.csv",
}
AUDIT_CONTRACTS = {"C-1001", "C-1002", "C-1003", "C-1004", "C-1005", "C-1006"}

# Worked out by hand in audits/fixtures/generate.py.
EXPECTED = {
    ("L10", "C-1001"): [Decimal("3000.00")],  # March 2026 never invoiced
    ("L6", "C-1002"): [Decimal("500.00")] * 3,  # Jan–Mar at the pre-amendment 4,000
    ("L4", "C-1003"): [Decimal("200.00")] * 3,  # 10 % still deducted after 31 Dec
    ("L2", "C-1004"): [Decimal("1800.00")],  # February: 12 h × 150
    ("A1", "C-1005"): [Decimal("12000.00")],  # "Build" invoiced twice
}


def fabrikam_uploads(**replace) -> dict[str, Upload]:
    uploads = {kind: Upload(kind, name, (FIXTURES / name).read_bytes()) for kind, name in FILES.items()}
    uploads.update(replace)
    return uploads


@pytest.fixture(scope="module")
def module_env(django_db_setup, django_db_blocker, tmp_path_factory):
    """Committed data, a private media folder and no broker, for the whole module: one audit of the
    fixture company is processed once and read by several tests (a sandbox costs a schema)."""
    from django.conf import settings
    from django.utils.functional import empty

    def reset():
        if default_storage._wrapped is empty:
            default_storage._setup()
        default_storage._wrapped.__dict__.pop("relative_media_root", None)

    patch = pytest.MonkeyPatch()
    sent: list = []
    patch.setattr(settings, "MEDIA_ROOT", str(tmp_path_factory.mktemp("media")))
    patch.setattr("billing.services.enqueue.task_send", lambda name, *, kwargs, schema: sent.append((name, schema)))
    reset()
    with django_db_blocker.unblock():
        yield sent
        connection.set_schema_to_public()
    patch.undo()
    reset()


@pytest.fixture(scope="module")
def created(module_env, tenant_a):
    """Audits created in committed tenant A; each one's sandbox, files and rows removed at the end."""
    from audits.services.audits import audit_purge

    made: list = []
    yield made
    with schema_context(tenant_a.schema):
        for audit in Audit.objects.filter(pk__in=[a.pk for a in made]):
            audit_purge(audit=audit)
            audit.delete()


@pytest.fixture
def in_a(created, tenant_a):
    with schema_context(tenant_a.schema):
        yield created
    connection.set_schema_to_public()


def run(created, **kwargs) -> Audit:
    audit = audit_create(
        name="Fabrikam Digital Ltd", uploads=kwargs.pop("uploads", None) or fabrikam_uploads(), **kwargs
    )
    created.append(audit)
    return audit_process(audit_id=audit.pk)


@pytest.fixture(scope="module")
def fabrikam(created, tenant_a) -> Audit:
    with schema_context(tenant_a.schema):
        audit = run(created)
    connection.set_schema_to_public()
    return audit


def by_rule_and_contract(audit) -> dict:
    found = defaultdict(list)
    for f in audit.findings.order_by("position"):
        found[(f.rule, f.contract_number)].append(f.amount)
    return dict(found)


def report_rows(audit) -> list[tuple]:
    return [
        (f.rule, f.contract_number, f.title, f.period_start, f.amount, f.key, f.evidence)
        for f in audit.findings.order_by("position")
    ]


def test_the_fabrikam_audit_finds_each_planted_leak_and_nothing_on_clean_contracts(fabrikam, in_a, module_env):
    audit = fabrikam
    assert audit.status == AuditStatus.READY, audit.errors
    assert audit.progress == 100
    assert by_rule_and_contract(audit) == EXPECTED
    assert not audit.findings.filter(contract_number="C-1006").exists()
    report = audit.report
    assert report["totals"] == [
        {"currency": "GBP", "leaked": "6900.00", "billed_twice": "12000.00", "terms_at_risk": "0.00"}
    ]
    assert report["clean_contracts"] == ["C-1006"]
    assert (report["as_of"], report["history_from"]) == ("2026-03-31", "2025-07-01")
    assert (
        report["counts"]["time_entries"] > 0 and report["counts"]["matched_lines"] == report["counts"]["invoice_lines"]
    )
    assert report["unmatched"] == []
    # March: the contracts bill 3,000 + 4,500 + 2,000 + 1,500 = 11,000; billed 4,000 + 1,800 + 1,500. The
    # March hours invoiced on 31 March are due on 1 April (arrears): not set against March, so the
    # month's gap is exactly its findings (3,000 + 500 + 200).
    march = next(m for m in report["monthly"]["GBP"] if m["month"] == "2026-03")
    assert (march["owed"], march["billed"], march["gap"]) == ("11000.00", "7300.00", "3700.00")
    assert report["dso"]["GBP"]["method"] == "export_snapshot" and report["dso"]["GBP"]["dso"]
    # Every finding carries the contract term and, where there is one, the invoice rows it rests on.
    a1 = audit.findings.get(rule="A1")
    assert [r["source"] for r in a1.evidence] == ["contract", "invoice", "invoice"]
    assert [(r["invoice"], r["row"]) for r in a1.evidence[1:]] == [("INV-1031", 36), ("INV-1037", 43)]
    # Hours never billed rest on the Harvest rows of the period (file rows 45–47: 3 × 4 h).
    l2 = audit.findings.get(rule="L2")
    time_rows = [r for r in l2.evidence if r["source"] == "time"]
    assert [(r["file"], r["row"], r["quantity"]) for r in time_rows] == [
        ("harvest_time.csv", n, "4.000000") for n in (45, 46, 47)
    ]
    # Nothing was sent to a worker from the sandbox (no billing, mail or scan of a prospect's customers).
    assert not [name for name, schema in module_env if schema.startswith("sbx_")]


def test_the_pdf_report_leads_with_the_money_and_carries_the_evidence(fabrikam, in_a, artifacts_dir):
    """Rendered by WeasyPrint, kept under test-artifacts/ with its pages as PNGs for a person to read."""
    import io
    import os
    import subprocess

    from pypdf import PdfReader

    from audits.pdf import audit_report_pdf

    data = audit_report_pdf(audit=Audit.objects.get(pk=fabrikam.pk))
    path = os.path.join(artifacts_dir, "audit-fabrikam.pdf")
    with open(path, "wb") as handle:
        handle.write(data)
    subprocess.run(["pdftoppm", "-png", "-r", "60", path, path[:-4]], check=False, timeout=60)
    pages = [page.extract_text() for page in PdfReader(io.BytesIO(data)).pages]
    first = pages[0]
    assert "6,900.00 GBP" in first and "12,000.00 GBP" in first and "43.5 days" in first
    # The first sentence says it in plain words: how much, over which months, what share, on how many contracts.
    assert (
        "did not bill 6,900.00 GBP that its contracts say was due from July 2025 to March 2026 (9 months)"
        in " ".join(first.split())
    )
    assert "on 4 of its 6 contracts" in " ".join(first.split())
    for heading in ("Where it leaked", "By customer", "Largest findings", "Per month"):
        assert heading in first, heading
    evidence = "\n".join(pages[1:])
    assert "Invoice INV-1037, row 43" in evidence and "v2 from 2026-01-01" in evidence
    assert "12 × 150.00" in evidence  # the hours never billed, as hours × the contract's rate


def test_re_running_the_same_audit_gives_the_same_report(fabrikam, in_a):
    audit = fabrikam
    first, first_report = report_rows(audit), audit.report
    first_sandbox = audit.sandbox_schema
    audit_rerun(audit=audit)
    again = audit_process(audit_id=audit.pk)
    assert again.runs == 2 and again.status == AuditStatus.READY
    assert report_rows(again) == first and again.report == first_report
    assert again.sandbox_schema != first_sandbox and not schema_exists(first_sandbox)


def test_the_sandbox_never_shares_a_row_with_a_live_tenant_and_is_gone_after_retention(
    fabrikam, in_a, tenant_a, tenant_b
):
    audit = Audit.objects.get(pk=fabrikam.pk)
    sandbox = Tenant.objects.get(schema_name=audit.sandbox_schema)
    assert sandbox.sandbox_of.schema_name == tenant_a.schema and not Domain.objects.filter(tenant=sandbox).exists()
    from billing.models_history import ExternalInvoice
    from contracts.models import Contract, Customer
    from revexos.accounts.models import User

    with schema_context(sandbox.schema_name):
        assert set(Contract.objects.values_list("number", flat=True)) == AUDIT_CONTRACTS
        assert ExternalInvoice.objects.count() > 0 and not User.objects.exists()
    for live in (tenant_a.schema, tenant_b.schema):
        with schema_context(live):
            assert not Customer.objects.filter(legal_name__in=["Acme Ltd", "Hooli Ltd", "Umbrella plc"]).exists()
            assert not ExternalInvoice.objects.filter(number__startswith="INV-10").exists()
    from revexos.tenancy import tasks

    class Recorder:
        def __init__(self):
            self.schemas = []

        def apply_async(self, args, headers):
            self.schemas.append(headers["_schema_name"])
            return type("R", (), {"id": "x"})()

    recorder = Recorder()
    patch = pytest.MonkeyPatch()
    patch.setitem(tasks.app.tasks, "test.recorder", recorder)
    try:
        with schema_context("public"):
            tasks.dispatch_to_tenants("test.recorder")
    finally:
        patch.undo()
    assert tenant_a.schema in recorder.schemas and sandbox.schema_name not in recorder.schemas
    # Before the retention: kept. After it, the tenant's cycle step (beat's) removes the sandbox
    # schema, the tenant row, the files and the findings — and a sandbox of this tenant that no audit
    # names any more (a worker killed mid-way), but never another tenant's.
    from billing.cycle import cycle_run
    from revexos.tenancy.services.provisioning import tenant_sandbox_create

    assert audits_purge_expired() == 0
    paths = [entry["path"] for entry in audit.files.values()]
    assert all(default_storage.exists(p) for p in paths)
    owners = {t.schema_name: t for t in Tenant.objects.filter(schema_name__in=[tenant_a.schema, tenant_b.schema])}
    orphan = tenant_sandbox_create(owner=owners[tenant_a.schema], label="orphan", purge_after=audit.expires_at)
    theirs = tenant_sandbox_create(owner=owners[tenant_b.schema], label="theirs", purge_after=audit.expires_at)
    try:
        with time_machine.travel(audit.expires_at - timedelta(minutes=1)):
            step = cycle_run(as_of=timezone.localdate(), only=["audit_retention"])["audit_retention"]
        assert step == {"audits_purged": 0, "sandboxes_dropped": 0}
        assert schema_exists(sandbox.schema_name) and schema_exists(orphan.schema_name)
        with time_machine.travel(audit.expires_at + timedelta(minutes=1)):
            step = cycle_run(as_of=timezone.localdate(), only=["audit_retention"])["audit_retention"]
        assert step == {"audits_purged": 1, "sandboxes_dropped": 1}
        assert not schema_exists(orphan.schema_name) and not Tenant.objects.filter(pk=orphan.pk).exists()
        assert schema_exists(theirs.schema_name)
    finally:
        from revexos.tenancy.services.provisioning import tenant_sandbox_drop

        for extra in (orphan, theirs):
            tenant_sandbox_drop(schema_name=extra.schema_name)
    audit.refresh_from_db()
    assert audit.status == AuditStatus.EXPIRED and audit.purged_at is not None
    assert not schema_exists(sandbox.schema_name)
    assert not Tenant.objects.filter(pk=sandbox.pk).exists()
    assert not audit.findings.exists() and audit.report == {} and audit.files == {}
    assert not any(default_storage.exists(p) for p in paths)


def test_a_bad_contracts_row_fails_the_audit_naming_file_row_and_column_and_keeps_nothing(in_a, tenant_a):
    contracts = (FIXTURES / "contracts.csv").read_text().replace("4500.00", "45OO.00")
    customers = Upload("customers", "customers.csv", (FIXTURES / "customers.csv").read_bytes())
    audit = run(
        in_a,
        uploads=fabrikam_uploads(
            contracts=Upload("contracts", "contracts.csv", contracts.encode()), customers=customers
        ),
    )
    assert audit.status == AuditStatus.FAILED
    assert (
        audit.errors[0]["file"] == "contracts.csv"
        and audit.errors[0]["row"] == 4
        and audit.errors[0]["column"] == "amount"
    )
    assert "not a number" in audit.errors[0]["message"]
    assert audit.sandbox_schema == "" and not audit.findings.exists()
    assert not Tenant.objects.filter(sandbox_of__schema_name=tenant_a.schema, name__contains="Fabrikam").exists()
