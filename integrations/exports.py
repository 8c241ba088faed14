"""Accounting exports: invoices and credit notes as Xero, QuickBooks Online and journal CSV files.

Pure (STYLE.md): plain documents in, bytes out, no ORM and no clock, so the same documents always
give the same bytes (the "same range twice → byte-identical files" rule): documents are sorted,
amounts are formatted from Decimals, zip members carry a fixed timestamp.

Layouts
    Xero: the sales-invoice import template, header exactly as Xero's current template
    (shared/fixtures/accounting_csv), one row per line, DD/MM/YYYY dates, ``*TaxType`` the tax
    rate's display name. A discount is its own negative row under the line it reduces (same
    account and tax type), so the rows of an invoice sum to its net amount and Xero's tax to its
    tax. A credit note is a document whose rows are negative (Xero imports a negative total as a
    credit note), one row per tax rate it reverses, referencing the invoice. At most 500
    documents per file; more make a zip of files.
    QuickBooks Online: the invoice import columns (Intuit's sample file spelling), one row per
    line, the company's date order (MM/DD/YYYY for US entities, DD/MM/YYYY elsewhere), the tax of
    each rate spread over its lines (``ItemTaxAmount``). QuickBooks' invoice import takes no
    credit memos: credit notes are in the journal export.
    Journal: double entry, one row per posting: invoices debit receivables and credit revenue by
    price-line kind and tax payable by rate; credit notes the reverse; payments (when given) debit
    the bank and credit receivables. Debits equal credits per document.

Every text cell is neutralised against spreadsheet formula injection (a leading = + - @ tab or
carriage return gets a leading apostrophe); numbers we write ourselves are left as numbers.
"""

from __future__ import annotations

import csv
import io
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal

from revexos.money import allocate, quantize

ZERO = Decimal("0")
XERO_HEADER = [
    "*ContactName",
    "EmailAddress",
    "POAddressLine1",
    "POAddressLine2",
    "POAddressLine3",
    "POAddressLine4",
    "POCity",
    "PORegion",
    "POPostalCode",
    "POCountry",
    "*InvoiceNumber",
    "Reference",
    "*InvoiceDate",
    "*DueDate",
    "InventoryItemCode",
    "*Description",
    "*Quantity",
    "*UnitAmount",
    "Discount",
    "*AccountCode",
    "*TaxType",
    "TrackingName1",
    "TrackingOption1",
    "TrackingName2",
    "TrackingOption2",
    "Currency",
    "BrandingTheme",
]
QUICKBOOKS_HEADER = [
    "InvoiceNo",
    "Customer",
    "InvoiceDate",
    "DueDate",
    "Terms",
    "Location",
    "Memo",
    "Item(Product/Service)",
    "ItemDescription",
    "ItemQuantity",
    "ItemRate",
    "ItemAmount",
    "ItemTaxCode",
    "ItemTaxAmount",
    "Currency",
    "Service Date",
]
JOURNAL_HEADER = ["date", "account", "debit", "credit", "currency", "document", "customer", "description"]
XERO_MAX_DOCUMENTS = 500
ZIP_DATE = (1980, 1, 1, 0, 0, 0)
NO_TAX = "No tax"


# ----------------------------------------------------------------------------- documents


@dataclass(frozen=True)
class Party:
    name: str
    email: str = ""
    address_lines: tuple[str, ...] = ()
    city: str = ""
    region: str = ""
    postal_code: str = ""
    country: str = ""
    ref: str = ""  # the customer's external id


@dataclass(frozen=True)
class DocLine:
    description: str
    kind: str  # the invoice line kind (recurring, milestone, …): picks the revenue account
    quantity: Decimal
    unit_amount: Decimal
    amount: Decimal
    discount: Decimal = ZERO  # total discount on this line (positive)
    tax_name: str = NO_TAX
    period_start: date | None = None
    period_end: date | None = None

    @property
    def net(self) -> Decimal:
        return self.amount - self.discount


@dataclass(frozen=True)
class TaxShare:
    name: str
    rate: Decimal
    taxable: Decimal
    amount: Decimal


@dataclass(frozen=True)
class Document:
    """An issued invoice, or a credit note (``is_credit``, ``reference`` = the invoice it credits)."""

    number: str
    issue_date: date
    due_date: date
    currency: str
    customer: Party
    total: Decimal
    tax_total: Decimal
    lines: tuple[DocLine, ...] = ()
    taxes: tuple[TaxShare, ...] = ()
    is_credit: bool = False
    reference: str = ""
    memo: str = ""
    terms_days: int = 0


@dataclass(frozen=True)
class Payment:
    """Money received (or, ``is_refund``, paid back): bank against receivables."""

    received_on: date
    amount: Decimal
    currency: str
    customer: Party
    reference: str
    is_refund: bool = False


@dataclass(frozen=True)
class Accounts:
    """Account codes per tenant (Settings → Accounting exports)."""

    receivable: str = "610"
    tax_payable: str = "820"
    bank: str = "090"
    revenue_default: str = "200"
    revenue_by_kind: dict[str, str] = field(default_factory=dict)

    def revenue(self, kind: str) -> str:
        return self.revenue_by_kind.get(kind) or self.revenue_default


@dataclass(frozen=True)
class ExportFile:
    name: str
    content: bytes
    content_type: str


# ----------------------------------------------------------------------------- cells


def safe_text(value: object) -> str:
    """A text cell a spreadsheet will not run as a formula (OWASP CSV injection)."""
    text = "" if value is None else str(value)
    text = text.replace("\x00", "")
    if text and text[0] in ("=", "+", "-", "@", "\t", "\r"):
        return "'" + text
    return text


def _num(value: Decimal) -> str:
    return format(value, "f")


def _money(value: Decimal, currency: str) -> str:
    return format(quantize(value, currency), "f")


def _qty(value: Decimal) -> str:
    return format(value.normalize(), "f")


def _unit(value: Decimal, currency: str) -> str:
    """A unit price at the currency's places, or at its own when finer (0.0015 per call)."""
    return _money(value, currency) if quantize(value, currency) == value else format(value.normalize(), "f")


def _csv(header: Sequence[str], rows: Sequence[Sequence[str]]) -> bytes:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n", quoting=csv.QUOTE_MINIMAL)
    writer.writerow(header)
    writer.writerows(rows)
    return buffer.getvalue().encode("utf-8")


def _zip(files: Sequence[ExportFile]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for f in files:
            info = zipfile.ZipInfo(f.name, date_time=ZIP_DATE)
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = 0o644 << 16
            archive.writestr(info, f.content)
    return buffer.getvalue()


def _ordered(documents: Sequence[Document]) -> list[Document]:
    return sorted(documents, key=lambda d: (d.issue_date, d.is_credit, d.number))


# ----------------------------------------------------------------------------- Xero


def _xero_quantity_and_unit(line: DocLine, currency: str) -> tuple[str, str]:
    """Quantity × unit price when it gives the line's amount exactly (Xero recomputes it), else 1 × amount."""
    if line.quantity > 0 and quantize(line.quantity * line.unit_amount, currency) == line.amount:
        return _qty(line.quantity), _unit(line.unit_amount, currency)
    return "1", _money(line.amount, currency)


def _xero_party(doc: Document) -> list[str]:
    c = doc.customer
    address = [*c.address_lines[:4], *[""] * (4 - len(c.address_lines[:4]))]
    return [safe_text(c.name), safe_text(c.email), *map(safe_text, address), safe_text(c.city), safe_text(c.region),
            safe_text(c.postal_code), safe_text(c.country)]  # fmt: skip


def xero_rows(doc: Document, accounts: Accounts) -> list[list[str]]:
    c = doc.currency
    head = _xero_party(doc)
    dates = [doc.issue_date.strftime("%d/%m/%Y"), doc.due_date.strftime("%d/%m/%Y")]
    rows = []

    def row(description: str, quantity: str, unit: str, account: str, tax: str) -> list[str]:
        return [*head, safe_text(doc.number), safe_text(doc.reference), *dates, "", safe_text(description), quantity,
                unit, "", safe_text(account), safe_text(tax), "", "", "", "", c, ""]  # fmt: skip

    if doc.is_credit:
        for share in doc.taxes or (TaxShare(NO_TAX, ZERO, doc.total - doc.tax_total, ZERO),):
            description = f"Credit for {doc.reference}: {doc.memo}" if doc.memo else f"Credit for {doc.reference}"
            rows.append(row(description, "-1", _money(share.taxable, c), accounts.revenue_default, share.name))
        return rows
    for line in doc.lines:
        quantity, unit = _xero_quantity_and_unit(line, c)
        rows.append(row(line.description, quantity, unit, accounts.revenue(line.kind), line.tax_name))
        if line.discount:
            rows.append(
                row(
                    f"Discount on {line.description}",
                    "1",
                    _money(-line.discount, c),
                    accounts.revenue(line.kind),
                    line.tax_name,
                )
            )
    return rows


def xero_export(documents: Sequence[Document], *, accounts: Accounts, basename: str) -> ExportFile:
    """One CSV, or a zip of CSVs of at most 500 documents each (Xero's limit per import)."""
    ordered = _ordered(documents)
    chunks = [ordered[i : i + XERO_MAX_DOCUMENTS] for i in range(0, len(ordered), XERO_MAX_DOCUMENTS)] or [[]]
    files = [
        ExportFile(
            name=f"{basename}{'' if len(chunks) == 1 else f'-part{index}'}.csv",
            content=_csv(XERO_HEADER, [r for doc in chunk for r in xero_rows(doc, accounts)]),
            content_type="text/csv",
        )
        for index, chunk in enumerate(chunks, start=1)
    ]
    if len(files) == 1:
        return files[0]
    return ExportFile(name=f"{basename}.zip", content=_zip(files), content_type="application/zip")


# ----------------------------------------------------------------------------- QuickBooks Online


def quickbooks_export(documents: Sequence[Document], *, basename: str, us_dates: bool) -> ExportFile:
    fmt = "%m/%d/%Y" if us_dates else "%d/%m/%Y"
    rows = []
    for doc in _ordered([d for d in documents if not d.is_credit]):
        c = doc.currency
        # The tax of each rate, spread over its lines by net amount (parts sum to the rate's tax).
        tax_by_line: dict[int, Decimal] = {}
        for share in doc.taxes:
            members = [i for i, line in enumerate(doc.lines) if line.tax_name == share.name]
            if not members:
                continue
            parts = allocate(total=share.amount, weights=[max(doc.lines[i].net, ZERO) for i in members], currency=c)
            for i, part in zip(members, parts, strict=True):
                tax_by_line[i] = part
        for i, line in enumerate(doc.lines):
            quantity, rate = (
                (_qty(line.quantity), _unit(line.unit_amount, c))
                if line.discount == 0
                and line.quantity > 0
                and quantize(line.quantity * line.unit_amount, c) == line.amount
                else ("1", _money(line.net, c))
            )
            rows.append(
                [
                    safe_text(doc.number),
                    safe_text(doc.customer.name),
                    doc.issue_date.strftime(fmt),
                    doc.due_date.strftime(fmt),
                    f"Net {doc.terms_days}" if doc.terms_days else "",
                    "",
                    safe_text(doc.memo),
                    safe_text(line.kind.replace("_", " ").title()),
                    safe_text(line.description if not line.discount else f"{line.description} (after discount)"),
                    quantity,
                    rate,
                    _money(line.net, c),
                    safe_text(line.tax_name),
                    _money(tax_by_line.get(i, ZERO), c),
                    c,
                    line.period_start.strftime(fmt) if line.period_start else "",
                ]
            )
    return ExportFile(name=f"{basename}.csv", content=_csv(QUICKBOOKS_HEADER, rows), content_type="text/csv")


# ----------------------------------------------------------------------------- journal


def journal_rows(doc: Document, accounts: Accounts) -> list[list[str]]:
    c = doc.currency
    day = doc.issue_date.isoformat()
    who = safe_text(doc.customer.ref or doc.customer.name)
    postings: list[tuple[str, Decimal, Decimal, str]] = []  # account, debit, credit, description
    if doc.is_credit:
        net = doc.total - doc.tax_total
        postings.append((accounts.revenue_default, net, ZERO, f"Credit note for {doc.reference}"))
        for share in doc.taxes:
            if share.amount:
                postings.append((accounts.tax_payable, share.amount, ZERO, f"{share.name} reversed"))
        postings.append((accounts.receivable, ZERO, doc.total, f"Credit note for {doc.reference}"))
    else:
        postings.append((accounts.receivable, doc.total, ZERO, f"Invoice {doc.number}"))
        by_account: dict[str, Decimal] = {}
        for line in doc.lines:
            account = accounts.revenue(line.kind)
            by_account[account] = by_account.get(account, ZERO) + line.net
        for account in sorted(by_account):
            postings.append((account, ZERO, by_account[account], "Revenue"))
        for share in doc.taxes:
            if share.amount:
                postings.append((accounts.tax_payable, ZERO, share.amount, share.name))
    return [
        [
            day,
            safe_text(account),
            _money(debit, c) if debit else "",
            _money(credit, c) if credit else "",
            c,
            safe_text(doc.number),
            who,
            safe_text(text),
        ]
        for account, debit, credit, text in postings
        if debit or credit
    ]


def payment_rows(payment: Payment, accounts: Accounts) -> list[list[str]]:
    c = payment.currency
    who = safe_text(payment.customer.ref or payment.customer.name)
    day = payment.received_on.isoformat()
    amount, ref = _money(payment.amount, c), safe_text(payment.reference)
    if payment.is_refund:  # money back to the customer: receivables up, bank down
        text = safe_text(f"Refund of {payment.reference}")
        debit, credit = accounts.receivable, accounts.bank
    else:
        text = safe_text(f"Payment {payment.reference}")
        debit, credit = accounts.bank, accounts.receivable
    return [
        [day, safe_text(debit), amount, "", c, ref, who, text],
        [day, safe_text(credit), "", amount, c, ref, who, text],
    ]


def journal_export(
    documents: Sequence[Document], *, accounts: Accounts, basename: str, payments: Sequence[Payment] = ()
) -> ExportFile:
    entries: list[tuple[tuple, list[list[str]]]] = [
        ((doc.issue_date, 0 if not doc.is_credit else 1, doc.number), journal_rows(doc, accounts)) for doc in documents
    ]
    entries += [((p.received_on, 3 if p.is_refund else 2, p.reference), payment_rows(p, accounts)) for p in payments]
    rows = [row for _, block in sorted(entries, key=lambda e: e[0]) for row in block]
    return ExportFile(name=f"{basename}.csv", content=_csv(JOURNAL_HEADER, rows), content_type="text/csv")
