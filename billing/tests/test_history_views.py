"""The history import page: check a Xero export, see the matches and the cut-over it suggests, import."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django_tenants.utils import schema_context

from billing.models_history import ExternalInvoice
from billing.tests.builders import contract_with
from billing.tests.test_history_formats import to_csv, xero_row
from tests.helpers import client_for

pytestmark = pytest.mark.django_db

RETAINER = {
    "kind": "recurring",
    "description": "Retainer",
    "amount": Decimal("3100.00"),
    "frequency": "monthly",
    "timing": "advance",
}


def export() -> bytes:
    months = [("31/01/2026", "Jan"), ("28/02/2026", "Feb"), ("31/03/2026", "Mar")]
    return to_csv(
        [
            xero_row(
                InvoiceNumber=f"X-{i}",
                Reference="C-HV",
                InvoiceDate=day,
                DueDate="30/04/2026",
                Description=f"Retainer {m} 2026",
            )
            for i, (day, m) in enumerate(months)
        ]
        + [xero_row(InvoiceNumber="X-9", Reference="", ContactName="Nobody Ltd", Description="Consulting")]
    )


def test_check_then_import_with_the_cut_over_it_suggests(tenant_a):
    with schema_context(tenant_a.schema):
        contract = contract_with(RETAINER, number="C-HV", start=date(2026, 1, 1), currency="GBP")
    client = client_for(tenant_a, email=tenant_a.users["finance"])
    page = client.post("/billing/history/", {"file": SimpleUploadedFile("xero.csv", export()), "action": "preview"})
    assert page.status_code == 200
    html = page.content.decode()
    assert "C-HV" in html and "will be set to 31 Mar 2026" in html and "Nobody Ltd" in html
    with schema_context(tenant_a.schema):
        assert not ExternalInvoice.objects.exists()
    pending = page.context["pending"]
    done = client.post("/billing/history/", {"pending": pending, "action": "commit", "set_billed_through": "1"})
    assert done.status_code == 302
    with schema_context(tenant_a.schema):
        assert ExternalInvoice.objects.count() == 4
        contract.refresh_from_db()
        assert contract.billed_through == date(2026, 3, 31)


def test_a_bad_file_names_its_row_and_imports_nothing(tenant_a):
    client = client_for(tenant_a, email=tenant_a.users["admin"])
    bad = to_csv([xero_row(), xero_row(InvoiceNumber="Z-2", Currency="POUNDS")])
    page = client.post("/billing/history/", {"file": SimpleUploadedFile("xero.csv", bad), "action": "preview"})
    assert page.status_code == 400
    assert "xero.csv, row 3, column Currency" in page.content.decode()


@pytest.mark.parametrize("role", ["viewer", "account_manager"])
def test_only_finance_and_admins_import_history(tenant_a, role):
    assert client_for(tenant_a, email=tenant_a.users[role]).get("/billing/history/").status_code == 403
