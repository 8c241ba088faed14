"""Invoice exports of other systems, read into plain invoices (pure: bytes in, dataclasses out).

Two layouts, told apart by their header row:

* **Xero invoice export** (Business › Invoices › Export; 44 columns in
  ``shared/fixtures/accounting_csv/xero_invoice_EXPORT_header_44col.csv``): one row per line, the
  invoice's columns repeated on each. ``Discount`` is a percentage off the line; ``LineAmount``
  is after it. Whether line amounts include tax is the organisation's setting: an invoice whose
  line amounts add up to ``Total`` (rather than ``Total - TaxTotal``) is read as tax-inclusive.
  Xero's sales-invoice *import* template (same names, starred) is read too.
* **QuickBooks Online invoices** (``InvoiceNo, Customer, InvoiceDate, DueDate, …, ItemAmount``,
  or the wizard's spelling ``Invoice number, Customer, Invoice date, …``): one row per line;
  continuation rows may leave customer and dates blank.

Either may carry a paid date (``FullyPaidOnDate``, ``Paid Date``, ``Payment Date``) — DSO and the
days to pay need it — and the amount paid (Xero ``InvoiceAmountPaid``, QuickBooks ``Amount Paid``
or ``Open Balance``).

Dates follow the exporting organisation's locale. ``15/01/2026`` can only be day-first; a file
whose numeric dates all have both parts ≤ 12 cannot be read without being told which order it
uses, so :func:`history_export_parse` raises with ``needs_date_format`` and the caller asks.

Every problem names the file, the row (the header is row 1) and the column as written in the
file. The whole file is read before anything is returned, so a caller imports all or nothing.
"""

from __future__ import annotations

import csv
import io
import re
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal, InvalidOperation

from revexos.money import MINOR_UNITS

MAX_BYTES = 10 * 1024 * 1024
MAX_ROWS = 100_000
MAX_PROBLEMS = 50
ZERO = Decimal(0)

DATE_FORMATS = {
    "dmy": "DD/MM/YYYY",
    "mdy": "MM/DD/YYYY",
}

# Canonical field → the header spellings it is found under, compared without case, spaces,
# stars, underscores, slashes or brackets ("*Invoice number" == "InvoiceNumber" == "invoice_number").
XERO_COLUMNS: dict[str, tuple[str, ...]] = {
    "contact": ("contactname",),
    "email": ("emailaddress",),
    "number": ("invoicenumber",),
    "reference": ("reference",),
    "issue_date": ("invoicedate",),
    "due_date": ("duedate",),
    "total": ("total",),
    "tax_total": ("taxtotal",),
    "amount_paid": ("invoiceamountpaid",),
    "amount_due": ("invoiceamountdue",),
    "item_code": ("inventoryitemcode",),
    "description": ("description",),
    "quantity": ("quantity",),
    "unit_amount": ("unitamount",),
    "discount": ("discount", "discountrate"),
    "line_amount": ("lineamount",),
    "account_code": ("accountcode",),
    "tax_type": ("taxtype",),
    "tax_amount": ("taxamount",),
    "currency": ("currency", "currencycode"),
    "type": ("type",),
    "status": ("status",),
    "paid_on": ("fullypaidondate", "paiddate", "paymentdate", "datepaid"),
    "service_date": ("servicedate",),
}
XERO_REQUIRED = ("contact", "number", "issue_date", "due_date", "description", "quantity", "unit_amount")

QUICKBOOKS_COLUMNS: dict[str, tuple[str, ...]] = {
    "number": ("invoiceno", "invoicenumber", "invoicenum", "no"),
    "contact": ("customer", "customername"),
    "issue_date": ("invoicedate", "date"),
    "due_date": ("duedate",),
    "terms": ("terms",),
    "reference": ("memo", "ponumber", "customermemo"),
    "item_code": ("itemproductservice", "item", "productservice"),
    "description": ("itemdescription", "description"),
    "quantity": ("itemquantity", "quantity", "qty"),
    "unit_amount": ("itemrate", "rate"),
    "line_amount": ("itemamount", "amount"),
    "tax_type": ("itemtaxcode", "taxcode"),
    "tax_amount": ("itemtaxamount", "taxamount"),
    "currency": ("currency", "currencycode"),
    "service_date": ("servicedate",),
    "email": ("email", "customeremail", "billingemail"),
    "amount_paid": ("amountpaid", "paidamount"),
    "amount_due": ("openbalance", "balance", "balancedue"),
    "paid_on": ("fullypaidondate", "paiddate", "paymentdate", "datepaid"),
    "status": ("status",),
}
QUICKBOOKS_REQUIRED = ("number", "contact", "issue_date", "due_date", "line_amount")

# Invoice-level fields: the same on every line of one invoice (a different value is a duplicate number).
HEADER_FIELDS = ("contact", "issue_date", "due_date", "currency", "type")
DATE_FIELDS = ("issue_date", "due_date", "paid_on", "service_date")

_MONTHS = {
    m: i + 1
    for i, names in enumerate(
        [
            ("jan", "january"),
            ("feb", "february"),
            ("mar", "march"),
            ("apr", "april"),
            ("may",),
            ("jun", "june"),
            ("jul", "july"),
            ("aug", "august"),
            ("sep", "sept", "september"),
            ("oct", "october"),
            ("nov", "november"),
            ("dec", "december"),
        ]
    )
    for m in names
}
_ISO_RE = re.compile(r"^(\d{4})-(\d{1,2})-(\d{1,2})(?:[T ][\d:.]+Z?)?$")
_NUMERIC_RE = re.compile(r"^(\d{1,2})[/.-](\d{1,2})[/.-](\d{4})(?: [\d:]+(?: ?[AP]M)?)?$", re.IGNORECASE)
_DAY_MONTH_RE = re.compile(r"^(\d{1,2})[ -]([A-Za-z]{3,9})\.?[ -,]+(\d{4})$")
_MONTH_DAY_RE = re.compile(r"^([A-Za-z]{3,9})\.? (\d{1,2}),? (\d{4})$")
_AMOUNT_RE = re.compile(r"^-?\d+(\.\d+)?$")


# --------------------------------------------------------------------------- results


@dataclass(frozen=True)
class ExportProblem:
    """One thing wrong with the file, where it is."""

    file: str
    message: str
    row: int | None = None
    column: str | None = None

    def __str__(self) -> str:
        where = [self.file]
        if self.row is not None:
            where.append(f"row {self.row}")
        if self.column:
            where.append(f"column {self.column}")
        return f"{', '.join(where)}: {self.message}"

    def as_dict(self) -> dict:
        return {"file": self.file, "row": self.row, "column": self.column, "message": self.message}


class ExportRejected(Exception):
    """The export cannot be read as it is; nothing was imported. ``needs_date_format``: ask the user
    whether the file's dates are DD/MM/YYYY or MM/DD/YYYY, then read it again."""

    def __init__(self, problems: list[ExportProblem], *, needs_date_format: bool = False) -> None:
        super().__init__("; ".join(str(p) for p in problems[:3]))
        self.problems = problems
        self.needs_date_format = needs_date_format


@dataclass
class ExportLine:
    row: int
    description: str
    quantity: Decimal
    unit_amount: Decimal | None
    discount_percent: Decimal  # 0 when none
    amount: Decimal  # after the line discount, without tax
    tax_amount: Decimal
    item_code: str = ""
    account_code: str = ""
    tax_type: str = ""
    service_date: date | None = None

    @property
    def gross_amount(self) -> Decimal:
        """The amount before the line's discount: quantity × unit price when the line has a discount,
        else the amount itself (a difference without a discount — a cap, a rounding — is not one)."""
        if self.unit_amount is None or not self.discount_percent:
            return self.amount
        return self.quantity * self.unit_amount


@dataclass
class ExportInvoice:
    number: str
    first_row: int
    contact: str
    issue_date: date
    due_date: date
    currency: str
    kind: str = "invoice"  # invoice | credit_note
    status: str = "authorised"  # draft | submitted | authorised | paid | void
    email: str = ""
    reference: str = ""
    terms: str = ""
    total: Decimal | None = None
    tax_total: Decimal = ZERO
    amount_paid: Decimal | None = None
    amount_due: Decimal | None = None
    paid_on: date | None = None
    tax_inclusive: bool = False
    lines: list[ExportLine] = field(default_factory=list)

    @property
    def subtotal(self) -> Decimal:
        return sum((line.amount for line in self.lines), ZERO)

    @property
    def rows(self) -> list[int]:
        return [line.row for line in self.lines]


@dataclass
class ParsedExport:
    source: str  # xero | quickbooks
    file_name: str
    date_format: str | None  # dmy | mdy | None when every date was unambiguous (ISO or named months)
    invoices: list[ExportInvoice]

    @property
    def line_count(self) -> int:
        return sum(len(i.lines) for i in self.invoices)

    @property
    def currencies(self) -> list[str]:
        return sorted({i.currency for i in self.invoices})


# --------------------------------------------------------------------------- reading


def _norm(header: str) -> str:
    return re.sub(r"[^a-z0-9]", "", (header or "").lower())


def sniff_text(raw: bytes, file_name: str) -> str:
    """The upload as text, or a problem saying what kind of file it is instead."""
    if len(raw) > MAX_BYTES:
        raise ExportRejected(
            [
                ExportProblem(
                    file_name, f"The file is larger than {MAX_BYTES // (1024 * 1024)} MB; export a shorter range."
                )
            ]
        )
    if raw.startswith(b"PK\x03\x04"):
        message = "This is an Excel workbook (or another zip file), not CSV. In Xero or QuickBooks choose the CSV export, or save the sheet as “CSV UTF-8”."
        raise ExportRejected([ExportProblem(file_name, message)])
    if raw.startswith(b"%PDF"):
        raise ExportRejected([ExportProblem(file_name, "This is a PDF, not a CSV export of invoices.")])
    if b"\x00" in raw[:4096]:
        raise ExportRejected([ExportProblem(file_name, "This is not a text file; upload the CSV export.")])
    for encoding in ("utf-8-sig", "cp1252"):
        try:
            return raw.decode(encoding)
        except UnicodeDecodeError:
            continue
    raise ExportRejected([ExportProblem(file_name, "The file is not UTF-8 text; save it as “CSV UTF-8”.")])


def _layout(header: list[str]) -> tuple[str, dict[str, str]] | None:
    """(source, canonical field → header as written) for a recognised header row."""
    normalised = {_norm(h): h for h in header if h}
    if "invoicenumber" in normalised and "contactname" in normalised:
        source, columns = "xero", XERO_COLUMNS
    elif "customer" in normalised and ({"invoiceno", "invoicenumber", "invoicenum"} & set(normalised)):
        source, columns = "quickbooks", QUICKBOOKS_COLUMNS
    else:
        return None
    found: dict[str, str] = {}
    for name, spellings in columns.items():
        for spelling in spellings:
            if spelling in normalised:
                found[name] = normalised[spelling]
                break
    return source, found


def _date_parts(text: str) -> tuple[str, tuple[int, int, int]] | None:
    """('iso'|'named'|'numeric', parts); numeric parts are (first, second, year) as written."""
    text = text.strip()
    if m := _ISO_RE.match(text):
        return "iso", (int(m.group(1)), int(m.group(2)), int(m.group(3)))
    if m := _NUMERIC_RE.match(text):
        return "numeric", (int(m.group(1)), int(m.group(2)), int(m.group(3)))
    if m := _DAY_MONTH_RE.match(text):
        month = _MONTHS.get(m.group(2).lower())
        if month:
            return "named", (int(m.group(3)), month, int(m.group(1)))
    if m := _MONTH_DAY_RE.match(text):
        month = _MONTHS.get(m.group(1).lower())
        if month:
            return "named", (int(m.group(3)), month, int(m.group(2)))
    return None


def date_order_detect(values: list[str]) -> tuple[str | None, bool]:
    """Which order numeric dates are in: ('dmy'|'mdy'|None, conflicting). None with no conflict
    means every numeric date would read the same either way round (or there are none)."""
    day_first = month_first = False
    for value in values:
        parts = _date_parts(value)
        if parts is None or parts[0] != "numeric":
            continue
        first, second, _ = parts[1]
        day_first |= first > 12
        month_first |= second > 12
    if day_first and month_first:
        return None, True
    return ("dmy" if day_first else "mdy" if month_first else None), False


def _ambiguous_example(values: list[str]) -> str | None:
    """The first numeric date that reads differently day-first and month-first, if any."""
    for value in values:
        parts = _date_parts(value)
        if parts and parts[0] == "numeric" and parts[1][0] != parts[1][1]:
            return value
    return None


def parse_date(text: str, order: str | None) -> date:
    """A date in one of the export formats; ``order`` ('dmy'/'mdy') resolves numeric dates."""
    parts = _date_parts(text)
    if parts is None:
        raise ValueError(f"“{text}” is not a date; expected e.g. 31/01/2026, 01/31/2026, 2026-01-31 or 31 Jan 2026.")
    style, (a, b, c) = parts
    if style == "iso" or style == "named":
        year, month, day = a, b, c
    else:
        if a == b:
            order = order or "dmy"
        if order is None:
            raise ValueError(f"“{text}” could be day/month or month/day.")
        day, month = (a, b) if order == "dmy" else (b, a)
        year = c
    try:
        return date(year, month, day)
    except ValueError:
        expected = DATE_FORMATS.get(order or "", "")
        hint = f" (reading the file as {expected})" if expected else ""
        raise ValueError(f"“{text}” is not a calendar date{hint}.") from None


def parse_amount(text: str) -> Decimal:
    """An exported amount: '1,234.50', '-12.00', '(12.00)', '£1,234.50' → Decimal; never a float."""
    value = text.strip().replace("\u00a0", "").replace(" ", "")
    negative = False
    if value.startswith("(") and value.endswith(")"):
        negative, value = True, value[1:-1]
    if value.startswith("-"):
        negative, value = not negative, value[1:]
    value = value.lstrip("$£€¥")
    if re.fullmatch(r"\d{1,3}(,\d{3})+(\.\d+)?", value):
        value = value.replace(",", "")
    if not _AMOUNT_RE.match(value):
        raise ValueError(f"“{text}” is not an amount; expected digits with an optional decimal point, e.g. 1250.00.")
    try:
        number = Decimal(value)
    except InvalidOperation:  # pragma: no cover - the pattern guards this
        raise ValueError(f"“{text}” is not an amount.") from None
    if abs(number) >= Decimal(10) ** 14:
        raise ValueError(f"“{text}” is too large.")
    return -number if negative else number


_STATUS = {
    "draft": "draft",
    "submitted": "submitted",
    "awaitingapproval": "submitted",
    "authorised": "authorised",
    "authorized": "authorised",
    "awaitingpayment": "authorised",
    "open": "authorised",
    "overdue": "authorised",
    "paid": "paid",
    "voided": "void",
    "void": "void",
    "deleted": "void",
}


def _kind(value: str) -> str | None:
    """'invoice' / 'credit_note' from Xero's Type; None for purchase documents."""
    v = _norm(value)
    if not v or v in {"accrec", "salesinvoice", "invoice", "sales"}:
        return "invoice"
    if v in {"accreccredit", "salescreditnote", "creditnote", "salescredit"}:
        return "credit_note"
    if v in {"accpay", "bill", "purchasebill", "accpaycredit", "purchasecreditnote", "purchaseorder"}:
        return None
    return "invoice" if "sale" in v or "invoice" in v else None


class _Collector:
    def __init__(self, file_name: str) -> None:
        self.file = file_name
        self.problems: list[ExportProblem] = []

    def add(self, message: str, row: int | None = None, column: str | None = None) -> None:
        if len(self.problems) < MAX_PROBLEMS:
            self.problems.append(ExportProblem(self.file, message, row, column))

    def __bool__(self) -> bool:
        return bool(self.problems)


def history_export_parse(
    *, raw: bytes, file_name: str, date_format: str | None = None, default_currency: str | None = None
) -> ParsedExport:
    """Read a Xero or QuickBooks Online invoice export. Raises :class:`ExportRejected` listing every
    problem (at most ``MAX_PROBLEMS``), or asking for ``date_format`` ('dmy'/'mdy') when the dates
    could be read either way. ``default_currency`` is used when the file has no currency column."""
    if date_format not in (None, "", "dmy", "mdy"):
        raise ExportRejected(
            [ExportProblem(file_name, "The date format must be DD/MM/YYYY (dmy) or MM/DD/YYYY (mdy).")]
        )
    text = sniff_text(raw, file_name)
    issues = _Collector(file_name)
    try:
        reader = csv.reader(io.StringIO(text, newline=""), strict=True)
        rows = []
        for row in reader:
            if reader.line_num > MAX_ROWS + 1:
                raise ExportRejected(
                    [ExportProblem(file_name, f"The file has more than {MAX_ROWS:,} rows; export a shorter range.")]
                )
            rows.append((reader.line_num, row))
    except csv.Error as exc:
        raise ExportRejected(
            [ExportProblem(file_name, f"The file is not valid CSV ({exc}).", reader.line_num)]
        ) from None
    if not rows:
        raise ExportRejected([ExportProblem(file_name, "The file is empty; the first row must name the columns.")])
    header = [h.strip() for h in rows[0][1]]
    layout = _layout(header)
    if layout is None:
        raise ExportRejected(
            [
                ExportProblem(
                    file_name,
                    "The columns are not those of a Xero invoice export (ContactName, InvoiceNumber, InvoiceDate, …) "
                    "or a QuickBooks Online invoice export (InvoiceNo, Customer, InvoiceDate, …).",
                    1,
                )
            ]
        )
    source, columns = layout
    required = XERO_REQUIRED if source == "xero" else QUICKBOOKS_REQUIRED
    spelled = XERO_COLUMNS if source == "xero" else QUICKBOOKS_COLUMNS
    missing = [spelled[name][0] for name in required if name not in columns]
    if missing:
        label = "Xero invoice export" if source == "xero" else "QuickBooks Online invoice export"
        names = ", ".join(_display(source, m) for m in missing)
        raise ExportRejected([ExportProblem(file_name, f"This {label} has no {names} column; export every column.", 1)])
    if "currency" not in columns and not default_currency:
        raise ExportRejected(
            [
                ExportProblem(
                    file_name,
                    "The file has no Currency column; say which currency its amounts are in.",
                    1,
                    "Currency",
                )
            ]
        )
    index = {name: header.index(col) for name, col in columns.items()}
    records = [(line, row) for line, row in rows[1:] if any(cell.strip() for cell in row)]
    if not records:
        raise ExportRejected([ExportProblem(file_name, "The file has a header but no invoice rows.")])

    def cell(row: list[str], name: str) -> str:
        position = index.get(name)
        if position is None or position >= len(row):
            return ""
        return row[position].strip()

    # Date order: detected from every date cell, confirmed or asked.
    date_cells = [cell(row, name) for _, row in records for name in DATE_FIELDS if cell(row, name)]
    detected, conflicting = date_order_detect(date_cells)
    if conflicting:
        raise ExportRejected(
            [
                ExportProblem(
                    file_name,
                    "Some dates are day-first (31/01/2026) and others month-first (01/31/2026); export the file again with one date format.",
                )
            ]
        )
    order = date_format or detected
    example = _ambiguous_example(date_cells) if order is None else None
    if example is not None:
        raise ExportRejected(
            [
                ExportProblem(
                    file_name,
                    f"Every date in this file could be read as DD/MM/YYYY or as MM/DD/YYYY (e.g. {example}); say which format the exporting organisation uses.",
                )
            ],
            needs_date_format=True,
        )

    invoices: dict[str, ExportInvoice] = {}
    last_number = ""
    for line_no, row in records:
        if len(row) > len(header):
            issues.add("The row has more cells than the header has columns.", line_no)
            continue
        number = cell(row, "number")
        if not number and source == "quickbooks" and last_number:
            number = last_number  # continuation rows of one invoice
        if not number:
            issues.add("The invoice number is empty.", line_no, columns["number"])
            continue
        last_number = number
        invoice = invoices.get(number)
        values = _header_values(row, cell, columns, order, line_no, issues, source, default_currency)
        if invoice is None:
            if values is None:
                continue
            if values.get("_skip"):
                issues.add(f"The first row of invoice {number} names no customer.", line_no, columns["contact"])
                continue
            invoice = ExportInvoice(number=number, first_row=line_no, **values)
            invoices[number] = invoice
        elif values is not None and not values.get("_skip"):
            for name in HEADER_FIELDS:
                if name not in columns or _attr(name) not in values or not cell(row, name):
                    continue
                if getattr(invoice, _attr(name)) != values[_attr(name)]:
                    issues.add(
                        f"Invoice number {number} is used twice: row {invoice.first_row} has "
                        f"{_show(getattr(invoice, _attr(name)))}, this row {_show(values[_attr(name)])}. "
                        "Invoice numbers must be unique; rename one of them in the source system.",
                        line_no,
                        columns[name],
                    )
                    break
        line = _line(row, cell, columns, order, line_no, issues, source)
        if line is not None:
            invoice.lines.append(line)
    if issues:
        raise ExportRejected(issues.problems)
    for invoice in invoices.values():
        _settle_tax(invoice)
    return ParsedExport(source=source, file_name=file_name, date_format=order, invoices=list(invoices.values()))


def _display(source: str, canonical_spelling: str) -> str:
    names = {
        "contactname": "ContactName",
        "invoicenumber": "InvoiceNumber",
        "invoicedate": "InvoiceDate",
        "duedate": "DueDate",
        "description": "Description",
        "quantity": "Quantity",
        "unitamount": "UnitAmount",
        "invoiceno": "InvoiceNo",
        "customer": "Customer",
        "itemamount": "ItemAmount",
    }
    return names.get(canonical_spelling, canonical_spelling)


def _attr(name: str) -> str:
    return "kind" if name == "type" else name


def _show(value) -> str:
    return value.isoformat() if isinstance(value, date) else f"“{value}”"


def _header_values(row, cell, columns, order, line_no, issues: _Collector, source, default_currency) -> dict | None:
    """The invoice-level values of one row, or None when a required one is bad (reported)."""
    ok = True
    values: dict = {}
    contact = cell(row, "contact")
    if not contact:
        if source == "quickbooks":
            return {"_skip": True}  # a continuation line; its invoice's values come from the first row
        issues.add("The contact name is empty.", line_no, columns["contact"])
        ok = False
    values["contact"] = contact[:200]
    for name in ("issue_date", "due_date"):
        text = cell(row, name)
        if not text:
            issues.add("The date is empty.", line_no, columns[name])
            ok = False
            continue
        try:
            values[name] = parse_date(text, order)
        except ValueError as exc:
            issues.add(str(exc), line_no, columns[name])
            ok = False
    if ok and values["due_date"] < values["issue_date"]:
        issues.add(
            f"The due date {values['due_date'].isoformat()} is before the invoice date {values['issue_date'].isoformat()}.",
            line_no,
            columns["due_date"],
        )
        ok = False
    if "currency" in columns:
        code = cell(row, "currency").upper()
        if not code:
            code = default_currency or ""
        if code not in MINOR_UNITS:
            issues.add(
                f"“{cell(row, 'currency')}” is not a currency RevExOS knows; use an ISO 4217 code such as GBP, USD or EUR.",
                line_no,
                columns["currency"],
            )
            ok = False
        values["currency"] = code
    else:
        values["currency"] = default_currency
    if "type" in columns:
        kind = _kind(cell(row, "type"))
        if kind is None:
            issues.add(
                f"“{cell(row, 'type')}” is a purchase document; export sales invoices and credit notes only.",
                line_no,
                columns["type"],
            )
            ok = False
        values["kind"] = kind
    if "status" in columns and cell(row, "status"):
        status = _STATUS.get(_norm(cell(row, "status")))
        if status is None:
            issues.add(
                f"“{cell(row, 'status')}” is not an invoice status (Draft, Submitted, Authorised, Paid, Voided).",
                line_no,
                columns["status"],
            )
            ok = False
        values["status"] = status
    for name in ("total", "tax_total", "amount_paid", "amount_due"):
        text = cell(row, name)
        if not text:
            continue
        try:
            values[name] = parse_amount(text)
        except ValueError as exc:
            issues.add(str(exc), line_no, columns[name])
            ok = False
    text = cell(row, "paid_on")
    if text:
        try:
            values["paid_on"] = parse_date(text, order)
        except ValueError as exc:
            issues.add(str(exc), line_no, columns["paid_on"])
            ok = False
    values["email"] = cell(row, "email")[:254]
    values["reference"] = cell(row, "reference")[:255]
    values["terms"] = cell(row, "terms")[:100]
    if not ok:
        return None
    if "tax_total" not in values:
        values["tax_total"] = ZERO
    if values.get("status") is None:
        values.pop("status", None)
        if values.get("amount_due") == ZERO and values.get("total"):
            values["status"] = "paid"
    if values.get("kind") is None:
        values.pop("kind", None)
    return values


def _line(row, cell, columns, order, line_no, issues: _Collector, source) -> ExportLine | None:
    ok = True
    numbers: dict[str, Decimal | None] = {}
    for name in ("quantity", "unit_amount", "discount", "line_amount", "tax_amount"):
        text = cell(row, name)
        if not text:
            numbers[name] = None
            continue
        try:
            numbers[name] = parse_amount(text)
        except ValueError as exc:
            issues.add(str(exc), line_no, columns[name])
            ok = False
    service_date = None
    if cell(row, "service_date"):
        try:
            service_date = parse_date(cell(row, "service_date"), order)
        except ValueError as exc:
            issues.add(str(exc), line_no, columns["service_date"])
            ok = False
    if not ok:
        return None
    quantity = numbers["quantity"] if numbers["quantity"] is not None else Decimal(1)
    unit = numbers["unit_amount"]
    discount = numbers["discount"] or ZERO
    if not ZERO <= discount <= 100:
        issues.add(f"The discount {discount} is not a percentage from 0 to 100.", line_no, columns.get("discount"))
        return None
    amount = numbers["line_amount"]
    if amount is None:
        if unit is None:
            column = columns.get("line_amount") or columns.get("unit_amount")
            issues.add("The line has neither an amount nor a unit price.", line_no, column)
            return None
        amount = quantity * unit * (100 - discount) / 100
    description = cell(row, "description") or cell(row, "item_code")
    return ExportLine(
        row=line_no,
        description=description[:500],
        quantity=quantity,
        unit_amount=unit,
        discount_percent=discount,
        amount=amount,
        tax_amount=numbers["tax_amount"] or ZERO,
        item_code=cell(row, "item_code")[:100],
        account_code=cell(row, "account_code")[:50],
        tax_type=cell(row, "tax_type")[:100],
        service_date=service_date,
    )


def _settle_tax(invoice: ExportInvoice) -> None:
    """Tax-inclusive line amounts (the lines add up to the total, tax and all) become net amounts."""
    lines_sum = sum((line.amount for line in invoice.lines), ZERO)
    if invoice.total is None:
        invoice.total = lines_sum + invoice.tax_total
        return
    if invoice.tax_total and abs(lines_sum - invoice.total) <= Decimal("0.01") * max(len(invoice.lines), 1):
        invoice.tax_inclusive = True
        for line in invoice.lines:
            line.amount -= line.tax_amount
            if line.unit_amount is not None and line.quantity:
                line.unit_amount = line.unit_amount - line.tax_amount / line.quantity
