"""Reading Xero and QuickBooks Online invoice exports: every problem names file, row and column."""

from __future__ import annotations

import csv
import io
from datetime import date
from decimal import Decimal
from pathlib import Path

import pytest

from billing.history_formats import (
    ExportRejected,
    date_order_detect,
    history_export_parse,
    parse_amount,
    parse_date,
)

XERO_HEADER = (Path(__file__).parent / "data" / "xero_invoice_EXPORT_header_44col.csv").read_text().strip().split(",")


def xero_row(**values) -> dict:
    row = dict.fromkeys(XERO_HEADER, "")
    row.update(
        {
            "ContactName": "Acme Ltd",
            "InvoiceNumber": "INV-0001",
            "Reference": "C-1001",
            "InvoiceDate": "31/01/2026",
            "DueDate": "02/03/2026",
            "Total": "3720.00",
            "TaxTotal": "620.00",
            "InvoiceAmountPaid": "0.00",
            "InvoiceAmountDue": "3720.00",
            "Description": "Retainer Feb 2026",
            "Quantity": "1.0000",
            "UnitAmount": "3100.00",
            "LineAmount": "3100.00",
            "AccountCode": "200",
            "TaxType": "20% (VAT on Income)",
            "TaxAmount": "620.00",
            "Currency": "GBP",
            "Type": "Sales invoice",
            "Status": "Awaiting Payment",
        }
    )
    row.update(values)
    return row


def to_csv(rows, header=None) -> bytes:
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=header or XERO_HEADER, lineterminator="\r\n")
    writer.writeheader()
    writer.writerows(rows)
    return out.getvalue().encode()


def parse(raw, **kwargs):
    return history_export_parse(raw=raw, file_name="invoices.csv", **kwargs)


def problems(raw, **kwargs) -> list[str]:
    with pytest.raises(ExportRejected) as exc:
        parse(raw, **kwargs)
    return [str(p) for p in exc.value.problems]


def test_xero_export_lines_of_one_invoice_are_grouped():
    raw = to_csv(
        [
            xero_row(Total="4320.00", TaxTotal="720.00"),
            xero_row(
                Total="4320.00",
                TaxTotal="720.00",
                Description="Extra engineering 4 h",
                Quantity="4",
                UnitAmount="125.00",
                LineAmount="500.00",
                TaxAmount="100.00",
            ),
        ]
    )
    export = parse(raw)
    assert export.source == "xero" and export.date_format == "dmy"
    (invoice,) = export.invoices
    assert invoice.number == "INV-0001" and invoice.contact == "Acme Ltd" and invoice.currency == "GBP"
    assert invoice.issue_date == date(2026, 1, 31) and invoice.due_date == date(2026, 3, 2)
    assert [line.amount for line in invoice.lines] == [Decimal("3100.00"), Decimal("500.00")]
    assert invoice.subtotal == Decimal("3600.00") and invoice.total == Decimal("4320.00")
    assert invoice.rows == [2, 3] and invoice.status == "authorised" and not invoice.tax_inclusive


def test_xero_line_discount_is_a_percentage_and_line_amount_is_after_it():
    export = parse(to_csv([xero_row(Discount="10.00", LineAmount="2790.00", Total="2790.00", TaxTotal="0")]))
    line = export.invoices[0].lines[0]
    assert line.discount_percent == Decimal("10.00")
    assert line.gross_amount == Decimal("3100.00") and line.amount == Decimal("2790.00")


def test_tax_inclusive_line_amounts_are_made_net():
    raw = to_csv(
        [xero_row(UnitAmount="120.00", LineAmount="120.00", TaxAmount="20.00", Total="120.00", TaxTotal="20.00")]
    )
    invoice = parse(raw).invoices[0]
    assert invoice.tax_inclusive and invoice.lines[0].amount == Decimal("100.00")


def test_credit_notes_and_paid_dates_are_read():
    raw = to_csv(
        [xero_row(Type="Sales credit note", InvoiceNumber="CN-0001", Status="Paid")],
        header=[*XERO_HEADER, "FullyPaidOnDate"],
    )
    invoice = parse(raw).invoices[0]
    assert invoice.kind == "credit_note" and invoice.status == "paid"


def test_quickbooks_export_with_continuation_rows():
    header = [
        "InvoiceNo",
        "Customer",
        "InvoiceDate",
        "DueDate",
        "Terms",
        "Memo",
        "Item(Product/Service)",
        "ItemDescription",
        "ItemQuantity",
        "ItemRate",
        "ItemAmount",
        "Currency",
        "Service Date",
    ]
    rows = [
        {
            "InvoiceNo": "1001",
            "Customer": "Acme Ltd",
            "InvoiceDate": "01/31/2026",
            "DueDate": "03/02/2026",
            "Terms": "Net 30",
            "Memo": "PO-7781",
            "ItemDescription": "Retainer",
            "ItemQuantity": "1",
            "ItemRate": "3100",
            "ItemAmount": "3,100.00",
            "Currency": "USD",
            "Service Date": "02/01/2026",
        },
        {
            "InvoiceNo": "1001",
            "ItemDescription": "Onboarding",
            "ItemQuantity": "1",
            "ItemRate": "500",
            "ItemAmount": "500.00",
        },
    ]
    export = parse(to_csv(rows, header))
    assert export.source == "quickbooks" and export.date_format == "mdy"
    (invoice,) = export.invoices
    assert invoice.reference == "PO-7781" and invoice.terms == "Net 30"
    assert invoice.issue_date == date(2026, 1, 31) and invoice.lines[0].service_date == date(2026, 2, 1)
    assert invoice.subtotal == Decimal("3600.00")


def test_quickbooks_wizard_spelling_is_read_and_currency_can_be_given():
    header = ["*Invoice number", "*Customer", "*Invoice date", "*Due date", "Item Description", "*Item Amount"]
    rows = [
        {
            "*Invoice number": "7",
            "*Customer": "Acme",
            "*Invoice date": "2026-01-31",
            "*Due date": "2026-02-28",
            "Item Description": "Retainer",
            "*Item Amount": "100",
        }
    ]
    assert problems(to_csv(rows, header)) == [
        "invoices.csv, row 1, column Currency: The file has no Currency column; say which currency its amounts are in."
    ]
    export = parse(to_csv(rows, header), default_currency="USD")
    assert export.invoices[0].currency == "USD" and export.date_format is None


def test_ambiguous_dates_are_asked_for_and_then_read_either_way():
    raw = to_csv([xero_row(InvoiceDate="03/04/2026", DueDate="05/04/2026")])
    with pytest.raises(ExportRejected) as exc:
        parse(raw)
    assert exc.value.needs_date_format
    assert "could be read as DD/MM/YYYY or as MM/DD/YYYY" in str(exc.value.problems[0])
    assert parse(raw, date_format="dmy").invoices[0].issue_date == date(2026, 4, 3)
    assert parse(raw, date_format="mdy").invoices[0].issue_date == date(2026, 3, 4)


def test_a_date_that_contradicts_the_chosen_format_names_row_and_column():
    raw = to_csv([xero_row(InvoiceDate="31/01/2026", DueDate="02/02/2026")])
    assert problems(raw, date_format="mdy") == [
        "invoices.csv, row 2, column InvoiceDate: “31/01/2026” is not a calendar date (reading the file as MM/DD/YYYY)."
    ]


def test_day_first_and_month_first_in_one_file_is_refused():
    raw = to_csv(
        [
            xero_row(InvoiceDate="31/01/2026"),
            xero_row(InvoiceNumber="INV-2", InvoiceDate="01/31/2026", DueDate="02/28/2026"),
        ]
    )
    assert "Some dates are day-first" in problems(raw)[0]


def test_missing_columns_are_named():
    header = [h for h in XERO_HEADER if h not in ("InvoiceDate", "UnitAmount")]
    rows = [{k: v for k, v in xero_row().items() if k in header}]
    assert problems(to_csv(rows, header)) == [
        "invoices.csv, row 1: This Xero invoice export has no InvoiceDate, UnitAmount column; export every column."
    ]


def test_unknown_currency_names_file_row_and_column():
    raw = to_csv([xero_row(), xero_row(InvoiceNumber="INV-0002", Currency="XYZ")])
    assert problems(raw) == [
        "invoices.csv, row 3, column Currency: “XYZ” is not a currency RevExOS knows; use an ISO 4217 code such as GBP, USD or EUR."
    ]


def test_duplicate_invoice_numbers_are_refused():
    raw = to_csv([xero_row(), xero_row(ContactName="Globex Corp")])
    (message,) = problems(raw)
    assert message.startswith(
        "invoices.csv, row 3, column ContactName: Invoice number INV-0001 is used twice: row 2 has “Acme Ltd”"
    )


def test_bad_amounts_and_purchase_bills_are_each_reported():
    raw = to_csv([xero_row(UnitAmount="3,1OO.00"), xero_row(InvoiceNumber="B-1", Type="ACCPAY")])
    found = problems(raw)
    assert any("row 2, column UnitAmount" in p and "not an amount" in p for p in found)
    assert any("row 3, column Type" in p and "purchase document" in p for p in found)


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        (b"PK\x03\x04rest-of-an-xlsx", "Excel workbook"),
        (b"%PDF-1.7 ...", "This is a PDF"),
        (b"", "The file is empty"),
        (b"name,amount\nx,1\n", "The columns are not those of a Xero invoice export"),
        (",".join(XERO_HEADER).encode() + b"\r\n", "header but no invoice rows"),
    ],
)
def test_wrong_files_get_a_clear_message(raw, message):
    assert message in problems(raw)[0]


def test_date_and_amount_readers():
    assert parse_date("2026-02-01", None) == date(2026, 2, 1)
    assert parse_date("1 Feb 2026", None) == date(2026, 2, 1)
    assert parse_date("Feb 1, 2026", None) == date(2026, 2, 1)
    assert parse_date("05/05/2026", None) == date(2026, 5, 5)  # same either way round
    assert date_order_detect(["12/31/2026", "01/02/2026"]) == ("mdy", False)
    assert date_order_detect(["01/02/2026"]) == (None, False)
    assert parse_amount("(1,250.50)") == Decimal("-1250.50")
    assert parse_amount("£3,100.00") == Decimal("3100.00")
    with pytest.raises(ValueError):
        parse_amount("1.2e3")
