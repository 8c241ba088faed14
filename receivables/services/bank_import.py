"""Bank statement import: CSV, CAMT.053 and MT940 in; payments matched to invoices out.

Parsing goes through maintained parsers — ``mt-940`` for SWIFT MT940, ``bankstatementparser``
for ISO 20022 CAMT.053 (entries read with Decimal amounts, XML hardened against entity tricks) —
and Python's csv module for the CSV layout ``date, amount, currency, reference, payer``.

Like the contract CSV import: a preview checks every line first, and the commit is all or
nothing — one malformed line imports nothing and is named. Only credits (money in) are imported.

Idempotency: each statement line has a ``line_key`` (SHA-256 of the format, account, date,
amount, currency, reference, payer and the line's occurrence among identical ones in the file),
unique in the database, so importing the same statement again — or an overlapping one —
changes nothing.

Matching, in order: invoice numbers found in the reference (one customer, same currency, open);
then one open invoice with exactly the line's amount whose customer's name matches the payer;
everything else waits in the match queue for a person.
"""

from __future__ import annotations

import csv
import hashlib
import io
import re
from collections import Counter
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal, InvalidOperation

from django.core.exceptions import ValidationError
from django.db import transaction

from revexos.money import MINOR_UNITS, minor_units
from revexos.parsing import parse_date

MAX_BYTES = 5 * 1024 * 1024
MAX_LINES = 5000
FORMATS = ("csv", "camt053", "mt940")
CSV_COLUMNS = ("date", "amount", "currency", "reference", "payer")
_TOKEN = re.compile(r"[A-Za-z0-9][A-Za-z0-9\-/_.]{3,39}")


@dataclass
class BankLine:
    number: int  # line (CSV), entry (CAMT) or transaction (MT940) number, 1-based
    booked_on: date
    amount: Decimal
    currency: str
    reference: str
    payer: str
    account: str = ""
    key: str = ""
    # Filled by the preview:
    duplicate: bool = False
    customer: object | None = None
    invoices: list = field(default_factory=list)
    reason: str = ""


@dataclass
class Parsed:
    format: str
    lines: list[BankLine]
    errors: list[str]
    skipped_debits: int = 0


def detect_format(data: bytes, filename: str = "") -> str:
    head = data[:2000].lstrip(b"\xef\xbb\xbf").lstrip()
    if head.startswith(b"<") and b"camt.05" in data[:5000]:
        return "camt053"
    if b":20:" in head[:200] or b":61:" in data[:5000] or filename.lower().endswith((".sta", ".mt940", ".940")):
        return "mt940"
    return "csv"


def _decimal(text: str) -> Decimal:
    value = Decimal(text.strip().replace(",", "") if text.count(".") else text.strip().replace(",", "."))
    if not value.is_finite():
        raise InvalidOperation
    return value


def _parse_csv(text: str) -> Parsed:
    reader = csv.reader(io.StringIO(text))
    rows = list(reader)
    errors: list[str] = []
    if not rows:
        return Parsed("csv", [], ["The file is empty."])
    header = [h.strip().lower() for h in rows[0]]
    missing = [c for c in CSV_COLUMNS if c not in header]
    if missing:
        return Parsed(
            "csv", [], [f"Line 1: the header needs the columns {', '.join(CSV_COLUMNS)}; missing {', '.join(missing)}."]
        )
    index = {name: header.index(name) for name in CSV_COLUMNS}
    lines, debits = [], 0
    for number, row in enumerate(rows[1:], start=2):
        if not any(cell.strip() for cell in row):
            continue
        if len(row) < len(header):
            errors.append(f"Line {number}: {len(row)} columns, the header has {len(header)}.")
            continue
        cell = {name: row[i].strip() for name, i in index.items()}
        problems = []
        try:
            booked = parse_date(cell["date"])
        except ValueError as exc:
            problems.append(f"date: {exc}")
            booked = None
        currency = cell["currency"].upper()
        if currency not in MINOR_UNITS:
            problems.append(f"currency “{cell['currency']}” is not an ISO 4217 code")
        try:
            amount = _decimal(cell["amount"])
        except (InvalidOperation, ValueError):
            problems.append(f"amount “{cell['amount']}” is not a number")
            amount = None
        if (
            amount is not None
            and currency in MINOR_UNITS
            and max(0, -amount.as_tuple().exponent) > minor_units(currency)
        ):
            problems.append(f"amount {cell['amount']} has more decimals than {currency} allows")
        if amount is not None and amount == 0:
            problems.append("amount is zero")
        if len(cell["reference"]) > 500 or len(cell["payer"]) > 200:
            problems.append("reference or payer is too long")
        if problems:
            errors.append(f"Line {number}: {'; '.join(problems)}.")
            continue
        if amount < 0:
            debits += 1
            continue
        lines.append(BankLine(number, booked, amount, currency, cell["reference"], cell["payer"]))
    return Parsed("csv", lines, errors, debits)


def _parse_camt(data: bytes) -> Parsed:
    from bankstatementparser.camt_parser import CamtParser

    try:
        parser = CamtParser.from_bytes(data, max_bytes=MAX_BYTES)
        records = list(parser.parse_streaming())
    except Exception as exc:
        return Parsed("camt053", [], [f"The CAMT.053 file cannot be read: {exc}"])
    lines, errors, debits = [], [], 0
    for number, record in enumerate(records, start=1):
        amount = record.get("Amount")
        currency = str(record.get("Currency") or "").upper()
        day = str(record.get("BookgDt") or record.get("ValDt") or "")[:10]
        problems = []
        try:
            booked = parse_date(day)
        except ValueError as exc:
            problems.append(f"booking date: {exc}" if day else "the booking date is missing")
            booked = None
        if currency not in MINOR_UNITS:
            problems.append(f"currency “{currency}” is not an ISO 4217 code")
        if not isinstance(amount, Decimal):
            problems.append("amount is missing")
        if problems:
            errors.append(f"Entry {number}: {'; '.join(problems)}.")
            continue
        if record.get("DrCr") == "DBIT" or amount <= 0:
            debits += 1
            continue
        reference = " ".join(filter(None, [str(record.get("Reference") or ""), str(record.get("EndToEndId") or "")]))
        lines.append(
            BankLine(
                number,
                booked,
                amount,
                currency,
                reference.strip()[:500],
                str(record.get("Debtor") or "")[:200],
                str(record.get("AccountId") or ""),
            )
        )
    return Parsed("camt053", lines, errors, debits)


def _parse_mt940(text: str) -> Parsed:
    import mt940

    try:
        transactions = mt940.models.Transactions()
        transactions.parse(text)
    except Exception as exc:
        return Parsed("mt940", [], [f"The MT940 file cannot be read: {exc}"])
    account = str(transactions.data.get("account_identification") or "")
    lines, errors, debits = [], [], 0
    for number, tx in enumerate(transactions, start=1):
        data = tx.data
        amount = getattr(data.get("amount"), "amount", None)
        currency = str(getattr(data.get("amount"), "currency", "") or data.get("currency") or "").upper()
        day = data.get("entry_date") or data.get("date")
        if amount is None or currency not in MINOR_UNITS or day is None:
            errors.append(f"Transaction {number}: amount, currency or date is missing.")
            continue
        if data.get("status") in ("D", "RC") or amount <= 0:
            debits += 1
            continue
        details = " ".join(
            str(v)
            for v in (data.get("transaction_details"), data.get("customer_reference"), data.get("bank_reference"))
            if v and v != "NONREF"
        )
        payer = str(data.get("extra_details") or "")
        lines.append(
            BankLine(
                number,
                date(day.year, day.month, day.day),
                Decimal(amount),
                currency,
                details[:500],
                payer[:200],
                account,
            )
        )
    return Parsed("mt940", lines, errors, debits)


def statement_parse(*, data: bytes, filename: str = "", fmt: str = "") -> Parsed:
    if len(data) > MAX_BYTES:
        return Parsed(
            fmt or "csv", [], [f"The file is larger than {MAX_BYTES // (1024 * 1024)} MB; split the statement."]
        )
    fmt = fmt if fmt in FORMATS else detect_format(data, filename)
    if fmt == "camt053":
        parsed = _parse_camt(data)
    else:
        try:
            text = data.decode("utf-8-sig")
        except UnicodeDecodeError:
            try:
                text = data.decode("latin-1")
            except UnicodeDecodeError:  # pragma: no cover - latin-1 decodes anything
                return Parsed(fmt, [], ["The file is not text."])
        parsed = _parse_mt940(text) if fmt == "mt940" else _parse_csv(text)
    if len(parsed.lines) > MAX_LINES:
        parsed.errors.append(f"The statement has {len(parsed.lines)} credits; import at most {MAX_LINES} at a time.")
    seen: Counter = Counter()
    for line in parsed.lines:
        base = f"{parsed.format}|{line.account}|{line.booked_on}|{line.amount}|{line.currency}|{line.reference}|{line.payer}"
        seen[base] += 1
        line.key = hashlib.sha256(f"{base}|{seen[base]}".encode()).hexdigest()
    return parsed


# --------------------------------------------------------------------------- matching


def _normal(name: str) -> str:
    words = re.sub(r"[^a-z0-9 ]", " ", (name or "").casefold()).split()
    stop = {
        "ltd",
        "limited",
        "inc",
        "llc",
        "llp",
        "plc",
        "gmbh",
        "ab",
        "bv",
        "b",
        "v",
        "sas",
        "as",
        "pty",
        "corp",
        "co",
        "the",
        "n",
        "a",
    }
    return " ".join(w for w in words if w not in stop)


def _payer_matches(payer: str, legal_name: str) -> bool:
    a, b = _normal(payer), _normal(legal_name)
    return bool(a and b) and (a == b or a in b or b in a)


def lines_match(lines: list[BankLine]) -> None:
    """Propose a customer and invoices for each line (set-based: two queries for the whole file)."""
    from billing.models import Invoice
    from receivables.models import BankStatementLine

    existing = set(
        BankStatementLine.objects.filter(line_key__in=[line.key for line in lines]).values_list("line_key", flat=True)
    )
    tokens = {t for line in lines for t in _TOKEN.findall(line.reference)}
    by_number = {
        inv.number: inv
        for inv in Invoice.objects.filter(number__in=tokens).exclude(status="draft").select_related("customer")
    }
    open_by_amount: dict[tuple, list] = {}
    for inv in Invoice.objects.filter(
        status__in=["issued", "sent", "partially_paid"],
        amount_open__in={line.amount for line in lines},
    ).select_related("customer"):
        open_by_amount.setdefault((inv.currency, inv.amount_open), []).append(inv)
    for line in lines:
        line.duplicate = line.key in existing
        named = [by_number[t] for t in dict.fromkeys(_TOKEN.findall(line.reference)) if t in by_number]
        named = [i for i in named if i.currency == line.currency]
        if named and len({i.customer_id for i in named}) == 1:
            line.customer = named[0].customer
            line.invoices = [i for i in named if i.status in ("issued", "sent", "partially_paid") and i.amount_open > 0]
            line.reason = f"invoice number {', '.join(i.number for i in named)} in the reference"
            continue
        candidates = [
            i
            for i in open_by_amount.get((line.currency, line.amount), [])
            if _payer_matches(line.payer, i.customer.legal_name)
        ]
        if len(candidates) == 1:
            line.customer = candidates[0].customer
            line.invoices = candidates
            line.reason = "exact open amount and payer name"


@dataclass
class Preview:
    format: str
    lines: list[BankLine]
    errors: list[str]
    skipped_debits: int

    @property
    def ok(self) -> bool:
        return not self.errors

    @property
    def new_lines(self) -> list[BankLine]:
        return [line for line in self.lines if not line.duplicate]

    @property
    def matched(self) -> list[BankLine]:
        return [line for line in self.new_lines if line.customer is not None]

    @property
    def queued(self) -> list[BankLine]:
        return [line for line in self.new_lines if line.customer is None]


def statement_preview(*, data: bytes, filename: str = "", fmt: str = "") -> Preview:
    parsed = statement_parse(data=data, filename=filename, fmt=fmt)
    if not parsed.errors:
        lines_match(parsed.lines)
    return Preview(parsed.format, parsed.lines, parsed.errors, parsed.skipped_debits)


class ImportRefused(ValidationError):
    def __init__(self, preview: Preview):
        super().__init__({"file": preview.errors})
        self.preview = preview


def statement_commit(*, data: bytes, filename: str = "", fmt: str = "", user=None):
    """Import every new credit line of a statement, or nothing. Returns (statement or None, preview)."""
    from receivables.models import BankLineStatus, BankStatement, BankStatementLine

    preview = statement_preview(data=data, filename=filename, fmt=fmt)
    if not preview.ok:
        raise ImportRefused(preview)
    new = preview.new_lines
    if not new:
        return None, preview
    with transaction.atomic():
        statement = BankStatement.objects.create(
            filename=filename[:300] or "statement",
            format=preview.format,
            digest=hashlib.sha256(data).hexdigest(),
            lines_total=len(preview.lines),
            lines_new=len(new),
            imported_by=user if getattr(user, "is_authenticated", False) else None,
        )
        for line in new:
            row = BankStatementLine.objects.create(
                statement=statement,
                line_key=line.key,
                booked_on=line.booked_on,
                amount=line.amount,
                currency=line.currency,
                reference=line.reference,
                payer=line.payer,
                status=BankLineStatus.MATCHED if line.customer else BankLineStatus.QUEUED,
                match_reason=line.reason[:200],
            )
            if line.customer is not None:
                payment = _line_payment(row=row, customer=line.customer, invoices=line.invoices, user=user)
                row.payment = payment
                row.save(update_fields=["payment"])
    return statement, preview


def _line_payment(*, row, customer, invoices, user=None):
    from receivables.models import PaymentSource
    from receivables.services.ledger import payment_record

    left = row.amount
    allocations = []
    for invoice in invoices:
        if left <= 0:
            break
        take = min(left, invoice.amount_open)
        if take > 0:
            allocations.append((invoice, take))
            left -= take
    return payment_record(
        customer=customer,
        amount=row.amount,
        currency=row.currency,
        received_on=row.booked_on,
        method="bank_transfer",
        reference=row.reference[:300],
        payer_name=row.payer,
        external_id=f"bank:{row.line_key}",
        allocations=allocations or None,
        source=PaymentSource.BANK_STATEMENT,
        created_by=user if getattr(user, "is_authenticated", False) else None,
    ).payment


def bank_line_match(*, line_id: int, customer, invoices: list | None = None, user=None):
    """Finance matches a queued line by hand: a payment from ``customer`` (to ``invoices``, or
    oldest due first); the line leaves the queue."""
    from receivables.models import BankLineStatus, BankStatementLine

    with transaction.atomic():
        row = BankStatementLine.objects.select_for_update().get(pk=line_id)
        if row.status != BankLineStatus.QUEUED:
            raise ValidationError({"line": ["This line is already matched or ignored."]})
        for invoice in invoices or []:
            if invoice.customer_id != customer.pk or invoice.currency != row.currency:
                raise ValidationError(
                    {
                        "invoices": [
                            f"Invoice {invoice.number} is not an open {row.currency} invoice of {customer.legal_name}."
                        ]
                    }
                )
        payment = _line_payment(row=row, customer=customer, invoices=invoices or [], user=user) if invoices else None
        if payment is None:
            from receivables.models import PaymentSource
            from receivables.services.ledger import payment_record

            payment = payment_record(
                customer=customer,
                amount=row.amount,
                currency=row.currency,
                received_on=row.booked_on,
                method="bank_transfer",
                reference=row.reference[:300],
                payer_name=row.payer,
                external_id=f"bank:{row.line_key}",
                source=PaymentSource.BANK_STATEMENT,
            ).payment
        row.payment = payment
        row.status = BankLineStatus.MATCHED
        row.match_reason = "matched by hand"
        row.save(update_fields=["payment", "status", "match_reason"])
    return payment


def bank_line_ignore(*, line_id: int) -> None:
    from receivables.models import BankLineStatus, BankStatementLine

    BankStatementLine.objects.filter(pk=line_id, status=BankLineStatus.QUEUED).update(
        status=BankLineStatus.IGNORED, match_reason="not a customer payment"
    )
