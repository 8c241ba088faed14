"""CSV import and export: a preview names every bad row and why; the commit is all or nothing."""

from __future__ import annotations

import csv
import io

import pytest

from contracts.models import Contract, Customer, PriceLine
from contracts.selectors import contract_list, customer_list
from contracts.services.customers import customer_create
from contracts.services.imports import (
    CONTRACT_COLUMNS,
    CUSTOMER_COLUMNS,
    ImportRejected,
    contracts_export_csv,
    contracts_import_commit,
    contracts_import_preview,
    customers_export_csv,
    customers_import_commit,
    customers_import_preview,
    decode_upload,
)
from contracts.tests.factories import customer_payload

pytestmark = pytest.mark.django_db


def to_csv(columns, rows) -> str:
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=columns, lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow(row)
    return out.getvalue()


def customer_rows(n=50, bad_at=None, bad=None):
    rows = []
    for i in range(n):
        row = {
            "external_id": f"cust-{i:03d}",
            "legal_name": f"Customer {i} Ltd",
            "currency": "GBP",
            "billing_emails": f"ap@c{i}.example; finance@c{i}.example",
            "country": "GB",
            "city": "London",
        }
        if i == bad_at:
            row.update(bad)
        rows.append(row)
    return rows


def test_fifty_good_customers_import(in_a):
    with in_a():
        result = customers_import_commit(text=to_csv(CUSTOMER_COLUMNS, customer_rows()))
        assert (result.created, result.updated) == (50, 0)
        assert Customer.objects.get(external_id="cust-007").billing_emails == ["ap@c7.example", "finance@c7.example"]


@pytest.mark.parametrize(
    "bad, message",
    [
        ({"billing_emails": "ap@@c.example"}, "billing_emails"),
        ({"currency": "POUNDS"}, "currency"),
        ({"legal_name": ""}, "legal_name"),
        ({"country": "England"}, "country"),
        ({"external_id": "cust-003"}, "also on line"),
    ],
)
def test_one_bad_row_among_fifty_imports_nothing_and_reports_that_row(in_a, bad, message):
    text = to_csv(CUSTOMER_COLUMNS, customer_rows(bad_at=31, bad=bad))
    with in_a():
        preview = customers_import_preview(text=text)
        assert not preview.ok
        assert [r.line for r in preview.bad_rows] == [33]  # header is line 1, row 31 (0-based) is line 33
        assert any(message in e for e in preview.bad_rows[0].errors), preview.bad_rows[0].errors
        with pytest.raises(ImportRejected) as exc:
            customers_import_commit(text=text)
        assert exc.value.preview.bad_rows[0].line == 33
        assert Customer.objects.count() == 0


def test_a_known_external_id_updates_the_customer(in_a):
    with in_a():
        customer_create(data=customer_payload(external_id="cust-000"))
        preview = customers_import_preview(text=to_csv(CUSTOMER_COLUMNS, customer_rows(n=2)))
        assert [r.action for r in preview.rows] == ["update", "create"]
        customers_import_commit(text=to_csv(CUSTOMER_COLUMNS, customer_rows(n=2)))
        assert Customer.objects.get(external_id="cust-000").legal_name == "Customer 0 Ltd"


@pytest.mark.parametrize(
    "text, message",
    [
        ("", "empty"),
        ("external_id,legal_name\n", "no rows"),
        ("external_id,legal_name,colour\nx,X,blue\n", "Unknown column"),
        ("legal_name\nX\n", "Missing column"),
        ('external_id,legal_name\n"unterminated,X\n', "not valid CSV"),
    ],
)
def test_broken_files_are_refused_with_a_reason(in_a, text, message):
    with in_a():
        preview = customers_import_preview(text=text)
        assert not preview.ok and any(message in e for e in preview.file_errors), preview.file_errors


def test_non_utf8_uploads_are_refused():
    from django.core.exceptions import ValidationError

    with pytest.raises(ValidationError, match="UTF-8"):
        decode_upload("external_id,legal_name\nx,Café\n".encode("latin-1"))
    assert decode_upload("\ufeffexternal_id\n".encode("utf-8")) == "external_id\n"


def test_customers_export_reimports_unchanged(in_a):
    with in_a():
        customers_import_commit(text=to_csv(CUSTOMER_COLUMNS, customer_rows(n=5)))
        exported = customers_export_csv(customers=customer_list())
        preview = customers_import_preview(text=exported)
        assert preview.ok and [r.action for r in preview.rows] == ["update"] * 5
        assert customers_export_csv(customers=customer_list()) == exported


CONTRACT_ROWS = [
    {
        "number": "C-1",
        "customer": "acme-ltd",
        "title": "Platform",
        "start_date": "2026-01-15",
        "end_date": "2026-12-31",
        "currency": "USD",
        "line_kind": "recurring",
        "line_description": "Retainer",
        "amount": "3100.00",
        "frequency": "monthly",
        "timing": "advance",
        "included_hours": "20",
        "overage_rate": "150.00",
    },
    {
        "number": "C-1",
        "line_kind": "milestone",
        "line_description": "Go-live",
        "amount": "12000.00",
        "reference": "PROJ-12",
        "expected_date": "2026-03-31",
    },
    {
        "number": "C-1",
        "line_kind": "time_and_materials",
        "line_description": "Extra",
        "rates": "engineer=150.00; designer=120.00",
        "cap": "20000.00",
    },
    {
        "number": "C-1",
        "line_kind": "fixed_fee",
        "line_description": "Onboarding",
        "amount": "5000.00",
        "bill_on": "2026-01-15",
    },
    {
        "number": "C-1",
        "line_kind": "usage",
        "line_description": "API calls",
        "metric": "api_calls",
        "frequency": "monthly",
        "charge_model": "graduated",
        "tiers": "100:1.00:0; :0.50:0",
    },
    {
        "number": "C-2",
        "customer": "acme-ltd",
        "title": "Payments",
        "start_date": "2026-02-01",
        "line_kind": "usage",
        "line_description": "Card fees",
        "metric": "payments",
        "frequency": "monthly",
        "charge_model": "percentage",
        "rate": "1.4",
        "fixed_amount": "0.20",
    },
]


def test_contracts_import_with_one_row_per_price_line(in_a):
    with in_a():
        customer_create(data=customer_payload())
        result = contracts_import_commit(text=to_csv(CONTRACT_COLUMNS, CONTRACT_ROWS))
        assert result.created == 2
        lines = PriceLine.objects.filter(version__contract__number="C-1").order_by("position")
        assert [pl.kind for pl in lines] == ["recurring", "milestone", "time_and_materials", "fixed_fee", "usage"]
        assert [r.role for r in lines[2].rates.order_by("role")] == ["designer", "engineer"]
        assert [t.up_to for t in lines[4].tiers.all()] == [100, None]


def test_a_bad_line_blocks_the_whole_file_and_names_its_row_and_column(in_a):
    rows = [dict(r) for r in CONTRACT_ROWS]
    rows[4]["tiers"] = ":1.00:0; 100:0.50:0"  # unbounded tier first
    rows[5]["title"] = "Different"  # C-2 is a single row: no conflict
    rows[2]["title"] = "Not the same title"  # repeated header that differs from the first row
    with in_a():
        customer_create(data=customer_payload())
        preview = contracts_import_preview(text=to_csv(CONTRACT_COLUMNS, rows))
        bad = {r.line: r.errors for r in preview.bad_rows}
        assert set(bad) == {4, 6}
        assert any(e.startswith("title:") for e in bad[4])
        assert any(e.startswith("tiers:") and "only the last tier" in e for e in bad[6])
        assert {r.line: r.action for r in preview.rows}[7] == "create"
        with pytest.raises(ImportRejected):
            contracts_import_commit(text=to_csv(CONTRACT_COLUMNS, rows))
        assert Contract.objects.count() == 0


def test_cells_that_the_line_kind_does_not_use_are_reported(in_a):
    rows = [dict(CONTRACT_ROWS[3], customer="acme-ltd", title="X", start_date="2026-01-01", frequency="monthly")]
    with in_a():
        customer_create(data=customer_payload())
        preview = contracts_import_preview(text=to_csv(CONTRACT_COLUMNS, rows))
        assert any(e.startswith("frequency:") for e in preview.bad_rows[0].errors)


def test_contracts_export_is_the_import_format(in_a):
    with in_a():
        customer_create(data=customer_payload())
        contracts_import_commit(text=to_csv(CONTRACT_COLUMNS, CONTRACT_ROWS))
        exported = contracts_export_csv(contracts=contract_list())
        renumbered = exported.replace("C-1,", "C-101,").replace("C-2,", "C-102,")
        assert contracts_import_preview(text=renumbered).ok
        contracts_import_commit(text=renumbered)
        assert contracts_export_csv(contracts=contract_list(q="C-10")).replace("C-101,", "C-1,").replace(
            "C-102,", "C-2,"
        ).splitlines()[1:] == sorted(exported.splitlines()[1:], key=lambda line: exported.splitlines().index(line))
        assert contracts_import_preview(text=exported).bad_rows[0].errors[0].startswith("number: Contract C-")


def test_exports_neutralise_formulas_and_reimport_unchanged(in_a):
    """A customer named like a formula is exported as text (no spreadsheet runs it) and the export
    still re-imports to the same values."""
    with in_a():
        customer_create(data=customer_payload(external_id="evil", legal_name='=HYPERLINK("http://x","y")'))
        customer_create(data=customer_payload(external_id="plus", legal_name="+44 Ltd", crm_id="-1"))
        exported = customers_export_csv(customers=customer_list())
        rows = {r["external_id"]: r for r in csv.DictReader(io.StringIO(exported))}
        assert rows["evil"]["legal_name"] == '\'=HYPERLINK("http://x","y")'
        assert rows["plus"]["legal_name"] == "'+44 Ltd" and rows["plus"]["crm_id"] == "-1"
        for row in rows.values():
            assert not any(str(v).startswith(("=", "+", "@", "\t", "\r")) for v in row.values())
        customers_import_commit(text=exported)
        assert Customer.objects.get(external_id="evil").legal_name == '=HYPERLINK("http://x","y")'
        assert customers_export_csv(customers=customer_list()) == exported
