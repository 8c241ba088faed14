"""Accounting exports: Xero and QuickBooks layouts, the journal, files per 500 documents, formula
injection, byte-identical re-exports, the API and the recorded exports."""

from __future__ import annotations

import csv
import io
import zipfile
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path

import pytest
import time_machine
from django.db import connection
from django.test import Client

from billing.services.invoicing import credit_note_create
from billing.services.triggers import contract_bill_due
from billing.tests.builders import contract_with
from contracts.services.tax import tax_rates_seed
from contracts.tests.factories import CustomerFactory, IssuingEntityFactory
from discounts.services.exceptions import discount_create
from integrations import exports
from integrations.models import AccountingExport, AccountingSettings
from integrations.services.exports import accounting_export_create, export_build

D = Decimal
DATA = Path(__file__).parent / "data" / "accounting_csv"
XERO_FIXTURE = (DATA / "xero_SalesInvoiceTemplate_header_current.csv").read_bytes()


def rows_of(content: bytes) -> list[dict]:
    return list(csv.DictReader(io.StringIO(content.decode("utf-8"))))


def doc(number: str, *, day=date(2026, 3, 2), name="Acme Ltd", lines=None, taxes=None, total=None, tax_total=D("0")):
    lines = lines or (exports.DocLine("Retainer", "recurring", D("1"), D("100.00"), D("100.00")),)
    net = sum((line.net for line in lines), D("0"))
    return exports.Document(
        number=number, issue_date=day, due_date=day, currency="GBP", customer=exports.Party(name=name, ref="acme"),
        total=total if total is not None else net + tax_total, tax_total=tax_total, lines=tuple(lines),
        taxes=tuple(taxes or ()),
    )  # fmt: skip


# ----------------------------------------------------------------------------- pure layouts


def test_the_xero_header_equals_the_template_byte_for_byte():
    out = exports.xero_export([doc("INV-1")], accounts=exports.Accounts(), basename="x")
    assert out.content.startswith(XERO_FIXTURE)
    assert out.content[: len(XERO_FIXTURE)] == XERO_FIXTURE
    header = next(csv.reader(io.StringIO(XERO_FIXTURE.decode())))
    assert len(rows_of(out.content)[0]) == len(header) == 27


def test_the_quickbooks_columns_are_those_of_intuits_sample_file():
    documented = (DATA / "quickbooks_online_invoice_import_columns.txt").read_text()
    out = exports.quickbooks_export([doc("INV-1")], basename="q", us_dates=True)
    header = out.content.split(b"\r\n")[0].decode()
    assert header in documented
    assert rows_of(out.content)[0]["InvoiceDate"] == "03/02/2026"  # US companies read MM/DD/YYYY


def test_six_hundred_invoices_make_a_zip_of_two_files_of_at_most_500():
    documents = [doc(f"INV-{n:04d}") for n in range(600)]
    out = exports.xero_export(documents, accounts=exports.Accounts(), basename="xero-march")
    assert (out.name, out.content_type) == ("xero-march.zip", "application/zip")
    with zipfile.ZipFile(io.BytesIO(out.content)) as archive:
        names = archive.namelist()
        assert names == ["xero-march-part1.csv", "xero-march-part2.csv"]
        counts = [len({r["*InvoiceNumber"] for r in rows_of(archive.read(n))}) for n in names]
        assert all(archive.read(n).startswith(XERO_FIXTURE) for n in names)
    assert counts == [500, 100]
    # Deterministic: the same documents give the same zip, byte for byte.
    assert (
        exports.xero_export(list(reversed(documents)), accounts=exports.Accounts(), basename="xero-march").content
        == out.content
    )


@pytest.mark.parametrize("evil", ['=HYPERLINK("http://x","y")', "+1+2", "-2+3", "@SUM(A1)", "\tcmd"])
def test_text_cells_are_neutralised_against_formula_injection(evil):
    line = exports.DocLine(evil, "recurring", D("1"), D("10.00"), D("10.00"))
    for out in (
        exports.xero_export([doc("INV-1", name=evil, lines=[line])], accounts=exports.Accounts(), basename="x"),
        exports.quickbooks_export([doc("INV-1", name=evil, lines=[line])], basename="q", us_dates=False),
        exports.journal_export([doc("INV-1", name=evil, lines=[line])], accounts=exports.Accounts(), basename="j"),
    ):
        for row in rows_of(out.content):
            for value in row.values():
                assert not (value and value[0] in "=+@\t"), (out.name, value)
                if value.startswith("-"):
                    exports_numbers_only = value.lstrip("-").replace(".", "", 1).isdigit()
                    assert exports_numbers_only, (out.name, value)


def test_the_journal_balances_per_document():
    taxes = (exports.TaxShare("UK VAT 20%", D("20"), D("90.00"), D("18.00")),)
    line = exports.DocLine(
        "Retainer", "recurring", D("1"), D("100.00"), D("100.00"), discount=D("10.00"), tax_name="UK VAT 20%"
    )
    invoice = doc("INV-1", lines=[line], taxes=taxes, tax_total=D("18.00"))
    note = exports.Document(
        number="CN-1", issue_date=date(2026, 3, 5), due_date=date(2026, 3, 5), currency="GBP",
        customer=exports.Party("Acme Ltd", ref="acme"), total=D("54.00"), tax_total=D("9.00"),
        taxes=(exports.TaxShare("UK VAT 20%", D("20"), D("45.00"), D("9.00")),), is_credit=True, reference="INV-1",
    )  # fmt: skip
    payment = exports.Payment(date(2026, 3, 9), D("54.00"), "GBP", exports.Party("Acme Ltd", ref="acme"), "bank-1")
    out = exports.journal_export([note, invoice], accounts=exports.Accounts(), basename="j", payments=[payment])
    rows = rows_of(out.content)
    assert [r["document"] for r in rows] == ["INV-1"] * 3 + ["CN-1"] * 3 + ["bank-1"] * 2
    for number in ("INV-1", "CN-1", "bank-1"):
        mine = [r for r in rows if r["document"] == number]
        assert sum(D(r["debit"] or "0") for r in mine) == sum(D(r["credit"] or "0") for r in mine)
    assert [(r["account"], r["debit"], r["credit"]) for r in rows[:3]] == [
        ("610", "108.00", ""), ("200", "", "90.00"), ("820", "", "18.00"),
    ]  # fmt: skip


# ----------------------------------------------------------------------------- from the database


@pytest.fixture
def march(in_tenant_a, tenant_a):
    """A UK entity with VAT; in March: an invoice with two rates and a 10 % discount, a reverse-charge
    invoice, and a credit note for half of the first."""
    from revexos.accounts.models import User

    finance = User.objects.get(email=tenant_a.users["finance"])
    entity = IssuingEntityFactory(currency="GBP", country="GB", tax_id="GB999999973", invoice_prefix="XP-")
    tax_rates_seed(country="GB")
    with time_machine.travel(datetime(2026, 3, 20, 12, tzinfo=UTC), tick=False):
        uk = contract_with(
            {"kind": "fixed_fee", "description": "Build", "amount": D("1234.56"), "bill_on": date(2026, 3, 2)},
            {"kind": "fixed_fee", "description": "=cmd|' /C calc'!A0", "amount": D("789.01"), "bill_on": date(2026, 3, 2),
             "tax_category": "reduced"},
            issuing_entity=entity, currency="GBP",
            customer=CustomerFactory(country="GB", currency="GBP", legal_name="Bluepeak Analytics Ltd"),
        )  # fmt: skip
        discount_create(
            kind="percentage", value=D("10"), start_date=date(2026, 1, 1), end_date=date(2026, 12, 31),
            reason="launch", contract=uk, created_by=finance,
        )  # fmt: skip
        (first,) = contract_bill_due(contract_id=uk.pk, as_of=date(2026, 3, 2)).invoices
        de = contract_with(
            {"kind": "fixed_fee", "description": "Audit", "amount": D("1000.00"), "bill_on": date(2026, 3, 10)},
            issuing_entity=entity, currency="GBP",
            customer=CustomerFactory(country="DE", currency="GBP", tax_id="DE136695976", legal_name="Cobalt Freight GmbH"),
        )  # fmt: skip
        (second,) = contract_bill_due(contract_id=de.pk, as_of=date(2026, 3, 10)).invoices
        first.refresh_from_db()
        note = credit_note_create(
            invoice_id=first.pk, amount=first.total / 2, reason="Half", issue_date=date(2026, 3, 15)
        )
    return first, second, note


def test_xero_rows_re_sum_to_the_invoices_totals(march):
    first, second, note = march
    out, counts = export_build(target="xero", date_from=date(2026, 3, 1), date_to=date(2026, 3, 31))
    assert counts["invoices"] == 2 and counts["credit_notes"] == 1
    assert out.content.startswith(XERO_FIXTURE)
    rows = rows_of(out.content)
    rates = {"UK VAT 20%": D("20"), "UK VAT 5%": D("5"), "Reverse charge": D("0")}
    for invoice in (first, second):
        mine = [r for r in rows if r["*InvoiceNumber"] == invoice.number]
        net = sum(D(r["*Quantity"]) * D(r["*UnitAmount"]) for r in mine)
        assert net == invoice.subtotal - invoice.discount_total
        by_rate: dict[str, Decimal] = {}
        for r in mine:
            by_rate[r["*TaxType"]] = by_rate.get(r["*TaxType"], D("0")) + D(r["*Quantity"]) * D(r["*UnitAmount"])
        tax = sum((v * rates[k] / 100).quantize(D("0.01")) for k, v in by_rate.items())
        assert net + tax == invoice.total
        assert {r["*InvoiceDate"] for r in mine} == {invoice.issue_date.strftime("%d/%m/%Y")}
    credit = [r for r in rows if r["*InvoiceNumber"] == note.number]
    assert all(D(r["*Quantity"]) < 0 for r in credit) and {r["Reference"] for r in credit} == {first.number}
    assert -sum(D(r["*Quantity"]) * D(r["*UnitAmount"]) for r in credit) + note.tax_amount == note.amount
    assert any(r["*Description"].startswith("'=cmd") for r in rows)  # neutralised


def test_the_journal_from_the_database_balances_and_posts_tax(march):
    first, _second, note = march
    out, _ = export_build(target="journal", date_from=date(2026, 3, 1), date_to=date(2026, 3, 31))
    rows = rows_of(out.content)
    assert sum(D(r["debit"] or "0") for r in rows) == sum(D(r["credit"] or "0") for r in rows)
    tax = [r for r in rows if r["account"] == "820"]
    assert sum(D(r["credit"] or "0") for r in tax) == first.tax_total
    assert sum(D(r["debit"] or "0") for r in tax) == note.tax_amount


def test_the_same_range_exported_twice_gives_byte_identical_files_and_both_are_kept(march, tenant_a):
    one = accounting_export_create(target="xero", date_from="2026-03-01", date_to="2026-03-31")
    two = accounting_export_create(target="xero", date_from="2026-03-01", date_to="2026-03-31")
    assert one.pk != two.pk and one.sha256 == two.sha256 and one.file.name != two.file.name
    assert one.file.name.startswith("exports/xero/")
    api = Client(HTTP_HOST=tenant_a.host, HTTP_AUTHORIZATION=f"Bearer {tenant_a.api_key}")
    again = api.get(f"/api/v1/exports/xero/{one.pk}")
    assert again.status_code == 200 and again.content.startswith(XERO_FIXTURE)
    assert again["X-Export-Sha256"] == one.sha256


def test_the_api_exports_a_range_and_records_it(march, tenant_a, tenant_b):
    api = Client(HTTP_HOST=tenant_a.host, HTTP_AUTHORIZATION=f"Bearer {tenant_a.api_key}")
    response = api.get("/api/v1/exports/quickbooks?from=2026-03-01&to=2026-03-31")
    assert response.status_code == 200, response.content
    assert response["Content-Type"] == "text/csv" and "attachment" in response["Content-Disposition"]
    assert {r["InvoiceNo"] for r in rows_of(response.content)} == {march[0].number, march[1].number}
    journal = api.get("/api/v1/exports/journal?from=2026-03-01&to=2026-03-31")
    assert journal.status_code == 200
    listed = api.get("/api/v1/exports").json()
    assert [e["target"] for e in listed] == ["journal", "quickbooks"] and listed[1]["invoices"] == 2
    assert api.get("/api/v1/exports/sage?from=2026-03-01&to=2026-03-31").status_code == 404
    for query, field in [("from=2026-03-31&to=2026-03-01", "to"), ("from=March&to=2026-03-31", "from"),
                         ("to=2026-03-31", "from"), ("from=2020-01-01&to=2026-03-31", "to")]:  # fmt: skip
        bad = api.get(f"/api/v1/exports/xero?{query}")
        assert bad.status_code == 422 and field in bad.json()["error"]["fields"], query
    assert AccountingExport.objects.count() == 2
    other = Client(HTTP_HOST=tenant_b.host, HTTP_AUTHORIZATION=f"Bearer {tenant_b.api_key}")
    assert other.get("/api/v1/exports").json() == []
    assert other.get(f"/api/v1/exports/journal/{listed[0]['id']}").status_code == 404


def test_account_codes_are_configurable(march):
    AccountingSettings.objects.create(
        receivable_account="1100", tax_account="2200", revenue_accounts={"fixed_fee": "4010"}
    )
    out, _ = export_build(target="journal", date_from=date(2026, 3, 1), date_to=date(2026, 3, 31))
    accounts = {r["account"] for r in rows_of(out.content)}
    assert {"1100", "2200", "4010"} <= accounts and "610" not in accounts
    assert connection.schema_name == "tenant_a"


def test_the_journal_posts_payments_and_refunds_and_a_paid_invoice_is_announced(march):
    from receivables.services.ledger import payment_record, payment_refund
    from revexos.webhooks.models import WebhookEvent
    from revexos.webhooks.services import endpoint_create

    endpoint_create(data={"url": "http://127.0.0.1:9/h", "events": ["invoice.paid"]})
    _first, second, _note = march
    with time_machine.travel(datetime(2026, 3, 25, 12, tzinfo=UTC), tick=False):
        payment = payment_record(
            customer=second.customer, amount=D("1000.00"), currency="GBP", received_on=date(2026, 3, 20),
            method="bank_transfer", reference="BANK-77", external_id="bank-77",
        )  # fmt: skip
        payment_refund(
            payment_id=payment.payment.pk, amount=D("50.00"), reason="Duplicate fee", refunded_on=date(2026, 3, 24)
        )
    paid = WebhookEvent.objects.filter(type="invoice.paid").first()
    assert paid is not None and paid.data["invoice"]["number"] == second.number
    out, counts = export_build(target="journal", date_from=date(2026, 3, 1), date_to=date(2026, 3, 31))
    assert counts["payments"] == 2
    rows = [r for r in rows_of(out.content) if r["document"] == "BANK-77"]
    assert [(r["account"], r["debit"], r["credit"]) for r in rows] == [
        ("090", "1000.00", ""), ("610", "", "1000.00"), ("610", "50.00", ""), ("090", "", "50.00"),
    ]  # fmt: skip
