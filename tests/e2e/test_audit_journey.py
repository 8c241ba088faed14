"""Done when (issue #14): someone uploads a fixture company's three files, watches the progress, reads
the report, downloads the PDF (rendered to PNG under test-artifacts/), opens a shared link signed out;
and a live tenant imports contracts with ``billed_through`` and sees a first run that bills only the
current period.

The audit runs in a real Celery worker (a subprocess on a private queue), so the progress the page
shows is the worker's. Dates of the live import are relative to the real today (the browser's clock
must agree with the server's).
"""

from __future__ import annotations

import csv
import io
import os
import subprocess
import sys
import uuid
from datetime import timedelta
from pathlib import Path

import pytest
from django.db import connection
from django_tenants.utils import schema_context

from conftest import PASSWORD

pytestmark = [pytest.mark.browser, pytest.mark.slow]

FIXTURES = Path(__file__).resolve().parents[2] / "audits" / "fixtures" / "fabrikam"


@pytest.fixture(scope="module")
def media_dir(tmp_path_factory):
    from django.conf import settings
    from django.core.files.storage import default_storage
    from django.utils.functional import empty

    path = str(tmp_path_factory.mktemp("audit-media"))
    patch = pytest.MonkeyPatch()
    patch.setattr(settings, "MEDIA_ROOT", path)
    if default_storage._wrapped is empty:
        default_storage._setup()
    default_storage._wrapped.__dict__.pop("relative_media_root", None)
    yield path
    patch.undo()
    default_storage._wrapped.__dict__.pop("relative_media_root", None)


@pytest.fixture(scope="module")
def worker(django_db_setup, django_db_blocker, media_dir):
    """A real worker on a private queue, over the test database and the same media folder."""
    from revexos.celery import app
    from tests.test_celery import _database_url_of_test_db

    queue = f"rvx-audit-{uuid.uuid4().hex[:8]}"
    with django_db_blocker.unblock():
        env = {**os.environ, "DATABASE_URL": _database_url_of_test_db(), "CELERY_QUEUE": queue, "MEDIA_ROOT": media_dir}
    proc = subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "revexos", "worker", "--pool=solo", "-Q", queue, "-l", "WARNING",
         "--without-heartbeat", "--without-gossip", "--without-mingle"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )  # fmt: skip
    previous = app.conf.task_default_queue
    app.conf.task_default_queue = queue
    try:
        yield queue
    finally:
        app.conf.task_default_queue = previous
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()


def _login(page, tenant, live_server_url, role="finance"):
    page.goto(tenant.url(live_server_url, "/accounts/login/"))
    page.fill("#id_username", tenant.users[role])
    page.fill("#id_password", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_selector("main")


def test_upload_three_files_watch_progress_read_the_report_and_the_pdf(
    page, shot, browser, live_server_url, tenant_a, worker, artifacts_dir
):
    from audits.models import Audit

    name = f"Fabrikam Digital Ltd {uuid.uuid4().hex[:4].upper()}"
    _login(page, tenant_a, live_server_url)
    page.click("nav >> text=Revenue audits")
    page.click("#new-audit")
    page.fill("#id_name", name)
    page.set_input_files("#id_contracts", str(FIXTURES / "contracts.csv"))
    page.set_input_files("#id_invoices", str(FIXTURES / "xero_invoices.csv"))
    page.set_input_files("#id_time_entries", str(FIXTURES / "harvest_time.csv"))
    shot("upload")
    page.click("#start-audit")

    # Progress, as the worker reports it, then the report.
    page.wait_for_selector("#audit-progress")
    page.wait_for_function(
        "document.querySelector('#audit-stage') && !/Waiting/.test(document.querySelector('#audit-stage').innerText)",
        timeout=60000,
    )
    shot("progress", full_page=False)
    page.wait_for_selector("#kpi-leaked-GBP", timeout=180000)
    assert "6,900.00" in page.inner_text("#kpi-leaked-GBP")
    # The first sentence: how much, over which months, what share, on how many contracts.
    headline = page.inner_text("#headline-GBP")
    for words in ("did not bill 6,900.00 GBP", "from July 2025 to March 2026 (9 months)", "5.1 %",
                  "on 4 of its 6 contracts", "billed twice to Hooli Ltd"):  # fmt: skip
        assert words in headline, (words, headline)
    by_rule = page.inner_text("#audit-by-rule")
    for label, amount in [("Periods never invoiced", "3,000.00"), ("Invoiced below the contract rate", "1,500.00"),
                          ("Discounts outside their window", "600.00"), ("Hours never billed", "1,800.00"),
                          ("Billed twice", "12,000.00")]:  # fmt: skip
        assert label in by_rule and amount in by_rule, (label, by_rule)
    assert "C-1006" in page.inner_text("#clean-contracts")
    shot("report")
    page.click("#rule-A1 details summary")
    assert "INV-1037" in page.inner_text("#rule-A1")
    shot("evidence", full_page=False)

    # The PDF: downloaded, rendered to PNG for a person to look at.
    with page.expect_download() as download:
        page.click("#download-pdf")
    pdf_path = os.path.join(artifacts_dir, "audit-report.pdf")
    download.value.save_as(pdf_path)
    with open(pdf_path, "rb") as handle:
        assert handle.read(4) == b"%PDF"
    subprocess.run(["pdftoppm", "-png", "-r", "60", pdf_path, pdf_path[:-4]], check=True, timeout=60)
    from pypdf import PdfReader

    reader = PdfReader(pdf_path)
    text = " ".join(reader.pages[0].extract_text().split())
    assert "REVENUE NEVER BILLED" in text.upper() and "6,900.00 GBP" in text
    # Page 1 is the whole summary a CFO reads: the sentence, where, who, the largest, the monthly chart.
    for words in ("from July 2025 to March 2026", "Where it leaked", "By customer", "Largest findings", "Per month"):
        assert words in text, words

    # Phone width.
    page.set_viewport_size({"width": 390, "height": 844})
    page.reload()
    page.wait_for_selector("#kpi-leaked-GBP")
    wide = page.evaluate(
        """() => [...document.querySelectorAll('main *')].filter(e => e.getBoundingClientRect().right > 392
             && ![...e.children].some(c => c.getBoundingClientRect().right > 392))
             .slice(0, 8).map(e => e.tagName + '.' + e.className + '#' + e.id + ' ' + Math.round(e.getBoundingClientRect().right))"""
    )
    assert page.evaluate("document.documentElement.scrollWidth") <= 392, wide
    # The month-by-month figures fit inside their card (no column cut off).
    assert page.evaluate(
        "() => { const t = document.querySelector('.monthly-table').getBoundingClientRect();"
        " const c = document.querySelector('.chart-card').getBoundingClientRect(); return t.right <= c.right; }"
    )
    shot("report-phone")
    page.set_viewport_size({"width": 1280, "height": 860})

    # A shared link opens the report signed out, until it is withdrawn.
    page.click("#share-audit")
    page.wait_for_selector("#share-url")
    url = page.input_value("#share-url")
    anonymous = browser.new_context(viewport={"width": 1280, "height": 860})
    other = anonymous.new_page()
    other.goto(url)
    other.wait_for_selector("#kpi-leaked-GBP")
    other.screenshot(path=os.path.join(artifacts_dir, "audit-shared.png"), full_page=True)
    page.click("#share button:has-text('Withdraw')")
    other.reload()
    assert "no longer opens a report" in other.inner_text("main")
    anonymous.close()

    with schema_context(tenant_a.schema):
        audit = Audit.objects.get(name=name)
        from audits.services.audits import audit_purge

        audit_purge(audit=audit)
        audit.delete()
    connection.set_schema_to_public()


def _contracts_csv(rows) -> bytes:
    columns = ["number", "customer", "title", "start_date", "end_date", "currency", "billed_through", "line_kind",
               "line_description", "amount", "frequency", "timing"]  # fmt: skip
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=columns, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return out.getvalue().encode()


def test_a_live_tenant_imports_contracts_with_billed_through_and_the_first_run_bills_only_this_period(
    page, shot, live_server_url, tenant_a, tmp_path, media_dir
):
    from billing.models import InvoiceLine
    from billing.services.runs import billing_run
    from contracts.models import Contract
    from contracts.services.customers import customer_create
    from contracts.tests.factories import customer_payload
    from revexos.dates import tenant_today

    tag = uuid.uuid4().hex[:5].upper()
    with schema_context(tenant_a.schema):
        today = tenant_today()
        customer_create(
            data=customer_payload(external_id=f"cut-{tag.lower()}", legal_name=f"Cutover Co {tag}", currency="USD")
        )
    connection.set_schema_to_public()
    this_month = today.replace(day=1)
    start = (this_month - timedelta(days=200)).replace(day=1)
    last_month_end = this_month - timedelta(days=1)
    base = {"customer": f"cut-{tag.lower()}", "title": "Retainer", "start_date": start.isoformat(),
            "end_date": (start.replace(year=start.year + 2)).isoformat(), "currency": "USD", "line_kind": "recurring",
            "line_description": "Monthly retainer", "amount": "3100.00", "frequency": "monthly", "timing": "advance"}  # fmt: skip
    without = tmp_path / "contracts-without.csv"
    without.write_bytes(_contracts_csv([{**base, "number": f"CUT-{tag}-1"}]))
    with_cutover = tmp_path / "contracts.csv"
    with_cutover.write_bytes(
        _contracts_csv(
            [{**base, "number": f"CUT-{tag}-1", "billed_through": last_month_end.isoformat()},
             {**base, "number": f"CUT-{tag}-2", "billed_through": last_month_end.isoformat(), "amount": "1250.00"}]
        )
    )  # fmt: skip

    _login(page, tenant_a, live_server_url)
    page.goto(tenant_a.url(live_server_url, "/contracts/import/"))
    page.set_input_files("input[type=file]", str(without))
    page.click("button:has-text('Check file')")
    page.wait_for_selector("#first-run")
    warning = page.inner_text("#catch-up-warning")
    assert "1 contract would be billed for periods before this month" in warning
    shot("preview-catch-up")

    page.set_input_files("input[type=file]", str(with_cutover))
    page.click("button:has-text('Check file')")
    page.wait_for_selector("#first-run-table")
    table = page.inner_text("#first-run-table")
    assert "3,100.00 USD" in table and "1,250.00 USD" in table and not page.locator("#catch-up-warning").count()
    shot("preview-cutover")
    page.click("button:has-text('Import')")
    page.wait_for_selector(f"text=CUT-{tag}-1")

    with schema_context(tenant_a.schema):
        ids = list(Contract.objects.filter(number__startswith=f"CUT-{tag}").values_list("pk", flat=True))
        billing_run(as_of=today, contract_ids=ids)
        lines = list(InvoiceLine.objects.filter(contract_id__in=ids).values_list("period_start", flat=True))
    connection.set_schema_to_public()
    assert lines == [this_month, this_month]

    page.goto(tenant_a.url(live_server_url, f"/billing/invoices/?contract=CUT-{tag}-1"))
    page.wait_for_selector(f"text=CUT-{tag}-1")
    assert page.locator("table.stack tbody tr").count() == 1
    shot("first-run-invoices")
    # The invoice the first run made: one line, this month's period, none of the months already billed.
    page.click("table.stack tbody tr a")
    page.wait_for_selector("#pdf-preview")
    lines = page.locator("table.stack").last.inner_text()
    month_end = (this_month + timedelta(days=32)).replace(day=1) - timedelta(days=1)
    period = f"1 {this_month:%b %Y} – {month_end.day} {month_end:%b %Y}"
    assert period in lines and "3,100.00" in lines, (period, lines)
    assert page.locator("table.stack").last.locator("tbody tr").count() == 1
    shot("first-run-invoice")
