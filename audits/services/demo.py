"""Demo data for onboarding and the Q2C audit.

* **Cut-over**: Brightwater Logistics moved to RevExOS this month. Its contract comes in through the
  contracts CSV import with ``billed_through`` at the end of last month, and the invoices Xero sent
  it before come in through the history import — so its billed value includes them and the demo's
  first cycle bills only the current month (no catch-up invoice).
* **Audit**: the Fabrikam fixture company (audits/fixtures/fabrikam) audited from its three files,
  processed here rather than by a worker so the report is ready when the demo opens.
"""

from __future__ import annotations

import csv
import io
from datetime import timedelta
from decimal import Decimal
from pathlib import Path

from revexos.dates import tenant_today
from revexos.pricing import add_months

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "fabrikam"
RETAINER = Decimal("2750.00")
CONTRACT_COLUMNS = [
    "number", "customer", "title", "start_date", "end_date", "currency", "payment_terms_days", "billed_through",
    "line_kind", "line_description", "amount", "frequency", "timing",
]  # fmt: skip


def _csv(header: list[str], rows: list[dict]) -> str:
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=header, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return out.getvalue()


def cutover_demo_seed() -> dict:
    from billing.services.history import history_import_commit
    from contracts.services.customers import customer_create
    from contracts.services.imports import contracts_import_commit

    today = tenant_today()
    this_month = today.replace(day=1)
    start = add_months(this_month, -9)
    billed_through = this_month - timedelta(days=1)
    customer_create(
        data={
            "external_id": "brightwater-logistics",
            "legal_name": "Brightwater Logistics Ltd",
            "currency": "GBP",
            "billing_emails": ["accounts@brightwater.example"],
            "address": {"line1": "8 Canal Wharf", "city": "Leeds", "postal_code": "LS11 5PS", "country": "GB"},
        },
        note="Demo",
    )
    contracts_import_commit(
        text=_csv(
            CONTRACT_COLUMNS,
            [
                {
                    "number": "BW-2201",
                    "customer": "brightwater-logistics",
                    "title": "Fleet analytics (migrated from Xero)",
                    "start_date": start.isoformat(),
                    "end_date": (add_months(start, 24) - timedelta(days=1)).isoformat(),
                    "currency": "GBP",
                    "payment_terms_days": "30",
                    "billed_through": billed_through.isoformat(),
                    "line_kind": "recurring",
                    "line_description": "Fleet analytics subscription",
                    "amount": str(RETAINER),
                    "frequency": "monthly",
                    "timing": "advance",
                }
            ],
        )
    )
    # What Xero sent Brightwater before the move, in Xero's export layout (UK dates).
    header = (FIXTURES / "xero_invoices.csv").read_text().splitlines()[0].split(",")
    rows = []
    for k in range(9):
        month = add_months(start, k)
        tax = (RETAINER * Decimal("0.2")).quantize(Decimal("0.01"))
        rows.append(
            {
                "ContactName": "Brightwater Logistics Ltd", "InvoiceNumber": f"BW-X{1100 + k}", "Reference": "BW-2201",
                "InvoiceDate": month.strftime("%d/%m/%Y"), "DueDate": (month + timedelta(days=30)).strftime("%d/%m/%Y"),
                "Total": str(RETAINER + tax), "TaxTotal": str(tax), "InvoiceAmountPaid": str(RETAINER + tax),
                "InvoiceAmountDue": "0.00", "Description": f"Fleet analytics subscription {month:%b %Y}", "Quantity": "1.0000",
                "UnitAmount": str(RETAINER), "LineAmount": str(RETAINER), "AccountCode": "200", "TaxType": "20% (VAT on Income)",
                "TaxAmount": str(tax), "Currency": "GBP", "Type": "Sales invoice", "Status": "Paid",
            }
        )  # fmt: skip
    batch = history_import_commit(raw=_csv(header, rows).encode(), file_name="xero-brightwater.csv", date_format="dmy")
    return {"contracts": 1, "history_invoices": batch.invoice_count}


def audits_demo_seed(*, user=None) -> dict:
    """The Fabrikam audit, processed now (a sandbox schema is created and kept until its retention)."""
    from audits.services.audits import Upload, audit_create
    from audits.services.process import audit_process

    files = {"contracts": "contracts.csv", "invoices": "xero_invoices.csv", "time_entries": "harvest_time.csv"}
    uploads = {kind: Upload(kind, name, (FIXTURES / name).read_bytes()) for kind, name in files.items()}
    audit = audit_create(name="Fabrikam Digital Ltd (prospect)", uploads=uploads, user=user, via="ui")
    audit = audit_process(audit_id=audit.pk)
    return {"audit": audit.status, "findings": audit.findings.count()}
