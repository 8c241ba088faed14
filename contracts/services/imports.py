"""CSV import and export of customers and contracts: preview every bad row, then all or nothing.

Formats (UTF-8, comma separated, header row required, column order free, unknown columns refused)

customers.csv — one row per customer, matched by ``external_id``: a new id creates the customer,
    a known one replaces its fields with the row's (blank cells clear them). ``billing_emails`` are
    separated by ``;``.

contracts.csv — one row per price line; rows with the same ``number`` form one contract, in file
    order. Contract columns may be repeated on every row or left blank after the first; a value
    that differs from the first row's is an error. Importing creates contracts (a number that
    exists is an error: amend existing contracts in the app or through the API). Nested values:
    ``rates`` is ``role=hourly_rate; role=hourly_rate`` and ``tiers`` is
    ``up_to:price:flat; …; :price:flat`` (empty up_to = unbounded last tier; price is the unit
    amount, or the rate % for graduated_percentage). Export writes the terms in force today.

    Amendments: rows with an ``effective_from`` later than the contract's start list the complete
    price lines (and terms) of a later version, as an amendment taking effect that day; rows
    without it are the first version. Terms columns (currency, payment_terms_days, po_number,
    po_required, billing_anchor) may differ between versions, not within one.

Columns other apps add (``import_columns_register``): ``delivered_on`` on a milestone's row marks it
delivered that day, and ``discount_*`` grants a contract discount (billing and discounts register
them, so this module never imports upward). After the contracts are written, each registered
``after_create`` runs for each contract with its rows; an error it raises is reported on the row
and column it names, and the whole import is rolled back.

Each row is checked by the same services the API and the forms use (contracts.wire), so a row
fails with the same message a form would show. The commit re-checks everything inside one
transaction and writes nothing unless every row is good.
"""

from __future__ import annotations

import csv
import io
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from contracts.models import Contract, Customer
from contracts.services.contracts import contract_create, contract_validate
from contracts.services.customers import customer_create, customer_update, customer_validate
from contracts.wire import price_line_to_wire
from revexos.csv_safe import SafeDictWriter, csv_unescape
from revexos.schedule import version_in_force

MAX_ROWS = 5000
MAX_BYTES = 5 * 1024 * 1024

CUSTOMER_COLUMNS = [
    "external_id",
    "legal_name",
    "currency",
    "billing_emails",
    "tax_id",
    "address_line1",
    "address_line2",
    "city",
    "region",
    "postal_code",
    "country",
    "crm_id",
    "accounting_id",
    "stripe_customer_id",
    "owner_email",
    "is_active",
]
CONTRACT_HEADER_COLUMNS = [
    "number",
    "customer",
    "title",
    "status",
    "issuing_entity",
    "owner_email",
    "start_date",
    "end_date",
    "currency",
    "payment_terms_days",
    "po_number",
    "po_required",
    "billing_anchor",
    "auto_renew",
    "renewal_term_months",
    "notice_period_days",
    "renewal_uplift_pct",
    "billed_through",
]
LINE_COLUMNS = [
    "line_kind",
    "line_description",
    "amount",
    "bill_on",
    "frequency",
    "timing",
    "included_hours",
    "overage_rate",
    "reference",
    "expected_date",
    "percent_of_fixed_fee",
    "rates",
    "cap",
    "metric",
    "charge_model",
    "aggregation",
    "aggregation_property",
    "unit_amount",
    "tiers",
    "package_size",
    "rate",
    "fixed_amount",
    "per_transaction_min",
    "per_transaction_max",
    "free_units",
    "free_amount",
    "minimum_commitment",
    "threshold_amount",
]
# Terms of one version: may differ between the rows of different versions (``effective_from``).
VERSION_COLUMNS = ("currency", "payment_terms_days", "po_number", "po_required", "billing_anchor")
CONTRACT_COLUMNS = CONTRACT_HEADER_COLUMNS + LINE_COLUMNS + ["effective_from"]
COLUMNS = {"customers": CUSTOMER_COLUMNS, "contracts": CONTRACT_COLUMNS}


@dataclass(frozen=True)
class ImportExtension:
    """Columns another app reads from contracts.csv, and what it does with them once the contract exists.

    ``after_create(*, contract, header, rows, user)`` gets the contract-level values of its
    ``header_columns`` (first non-empty per contract) and every ``(line, row)`` of the contract; it
    raises ``RowError`` to report a problem on a line and column.
    """

    name: str
    header_columns: tuple[str, ...] = ()
    line_columns: tuple[str, ...] = ()
    after_create: Callable[..., None] | None = None


class RowError(Exception):
    def __init__(self, line: int, column: str, message: str) -> None:
        super().__init__(message)
        self.line, self.column, self.message = line, column, message


_EXTENSIONS: dict[str, ImportExtension] = {}


def import_columns_register(extension: ImportExtension) -> None:
    _EXTENSIONS[extension.name] = extension
    for column in (*extension.header_columns, *extension.line_columns):
        if column not in CONTRACT_COLUMNS:
            CONTRACT_COLUMNS.append(column)
    for column in extension.header_columns:
        if column not in _EXTRA_HEADER_COLUMNS:
            _EXTRA_HEADER_COLUMNS.append(column)


_EXTRA_HEADER_COLUMNS: list[str] = []
REQUIRED_COLUMNS = {"customers": ["external_id", "legal_name"], "contracts": ["number", "customer", "line_kind"]}
_ADDRESS = {
    "address_line1": "line1",
    "address_line2": "line2",
    "city": "city",
    "region": "region",
    "postal_code": "postal_code",
    "country": "country",
}
_WIRE_TO_COLUMN = {
    "owner": "owner_email",
    "kind": "line_kind",
    "description": "line_description",
    **{f"address.{v}": k for k, v in _ADDRESS.items()},
}

EXAMPLES = {
    "customers": [
        {
            "external_id": "acme-ltd",
            "legal_name": "Acme Ltd",
            "currency": "USD",
            "billing_emails": "ap@acme.example",
            "tax_id": "GB999999973",
            "address_line1": "1 Main Street",
            "city": "London",
            "postal_code": "EC1A 1AA",
            "country": "GB",
        },
    ],
    "contracts": [
        {
            "number": "C-1001",
            "customer": "acme-ltd",
            "title": "Platform services 2026",
            "start_date": "2026-01-15",
            "end_date": "2026-12-31",
            "currency": "USD",
            "payment_terms_days": "30",
            "line_kind": "recurring",
            "line_description": "Retainer",
            "amount": "3100.00",
            "frequency": "monthly",
            "timing": "advance",
        },
        {
            "number": "C-1001",
            "line_kind": "time_and_materials",
            "line_description": "Extra engineering",
            "rates": "engineer=150.00; designer=120.00",
            "cap": "20000.00",
        },
        {
            "number": "C-1001",
            "line_kind": "usage",
            "line_description": "API calls",
            "metric": "api_calls",
            "frequency": "monthly",
            "charge_model": "graduated",
            "tiers": "100:1.00:0; :0.50:0",
        },
    ],
}


class ImportRejected(Exception):
    """The file has bad rows; nothing was written. ``preview`` lists them."""

    def __init__(self, preview: ImportPreview) -> None:
        super().__init__(f"{len(preview.bad_rows)} bad row(s); nothing was imported.")
        self.preview = preview


@dataclass
class RowReport:
    line: int  # line number in the file (the header is line 1)
    key: str  # external_id or contract number
    action: str  # create | update | error
    errors: list[str] = field(default_factory=list)


@dataclass
class ImportPreview:
    what: str
    rows: list[RowReport] = field(default_factory=list)
    file_errors: list[str] = field(default_factory=list)
    # contract number → what the first billing run would bill (contracts only; see import_first_run_register)
    first_run: dict[str, Any] = field(default_factory=dict)

    @property
    def bad_rows(self) -> list[RowReport]:
        return [r for r in self.rows if r.errors]

    @property
    def ok(self) -> bool:
        return not self.file_errors and not self.bad_rows and bool(self.rows)

    @property
    def first_run_rows(self) -> list[tuple[str, Any]]:
        return sorted(self.first_run.items())

    @property
    def catch_up_count(self) -> int:
        """Contracts whose first run would bill periods that ended before this month."""
        return sum(1 for run in self.first_run.values() if run.get("catch_up"))

    @property
    def creates(self) -> int:
        return len({r.key for r in self.rows if r.action == "create"})

    @property
    def updates(self) -> int:
        return len({r.key for r in self.rows if r.action == "update"})


@dataclass
class ImportResult:
    what: str
    created: int
    updated: int

    @property
    def summary(self) -> str:
        noun = self.what if self.created + self.updated != 1 else self.what[:-1]
        parts = [f"{self.created} created"] + ([f"{self.updated} updated"] if self.updated else [])
        return f"Imported {self.created + self.updated} {noun}: {', '.join(parts)}."


def decode_upload(raw: bytes) -> str:
    if len(raw) > MAX_BYTES:
        raise ValidationError("The file is larger than 5 MB; split it into smaller files.")
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise ValidationError("The file is not UTF-8 text. Save it from your spreadsheet as “CSV UTF-8”.") from None


def _read(text: str, what: str) -> tuple[list[tuple[int, dict[str, str]]], list[str]]:
    """(line number, row) pairs and problems with the file as a whole."""
    if "\x00" in text:
        return [], ["This is not a CSV text file."]
    try:
        reader = csv.DictReader(io.StringIO(text, newline=""), strict=True)
        header = reader.fieldnames or []
        header = [h.strip() for h in header]
        reader.fieldnames = header
        rows = []
        for row in reader:
            if reader.line_num > MAX_ROWS + 1:
                return [], [f"The file has more than {MAX_ROWS} rows; split it into smaller files."]
            if None in row:
                rows.append((reader.line_num, {"__extra__": "1"}))
                continue
            if not any((v or "").strip() for v in row.values()):
                continue
            rows.append((reader.line_num, {k: csv_unescape((v or "").strip()) for k, v in row.items()}))
    except csv.Error as exc:
        return [], [f"The file is not valid CSV: {exc}."]
    problems = []
    if not header:
        return [], ["The file is empty; the first row must name the columns."]
    unknown = [h for h in header if h not in COLUMNS[what]]
    if unknown:
        problems.append(
            f"Unknown column(s): {', '.join(unknown)}. Use the columns of the template: {', '.join(COLUMNS[what])}."
        )
    missing = [c for c in REQUIRED_COLUMNS[what] if c not in header]
    if missing:
        problems.append(f"Missing column(s): {', '.join(missing)}.")
    if not rows and not problems:
        problems.append("The file has a header but no rows.")
    return rows, problems


def import_file_problems(*, text: str, what: str) -> list[str]:
    """Problems with a customers/contracts CSV as a whole (columns, size, CSV syntax), without its rows."""
    return _read(text, what)[1]


def _messages(exc: ValidationError, name_of=lambda k: k) -> list[str]:
    out = []
    for name, messages in exc.message_dict.items():
        label = name_of(name)
        for message in messages:
            out.append(f"{label}: {message}" if label and label != "non_field_errors" else message)
    return out


# ----------------------------------------------------------------------------- customers


def _customer_wire(row: dict[str, str]) -> dict[str, Any]:
    data: dict[str, Any] = {
        k: row[k]
        for k in ("external_id", "legal_name", "currency", "tax_id", "crm_id", "accounting_id", "stripe_customer_id")
        if k in row
    }
    if "billing_emails" in row:
        data["billing_emails"] = row["billing_emails"]
    if any(k in row for k in _ADDRESS):
        data["address"] = {v: row.get(k, "") for k, v in _ADDRESS.items()}
    if "owner_email" in row:
        data["owner"] = row["owner_email"]
    if row.get("is_active", "") != "":
        data["is_active"] = row["is_active"]
    return data


def _customer_column(name: str) -> str:
    head = name.split(".")[0] if name.startswith("billing_emails.") else name
    return _WIRE_TO_COLUMN.get(head, head)


def customers_import_preview(*, text: str) -> ImportPreview:
    preview = ImportPreview(what="customers")
    rows, preview.file_errors = _read(text, "customers")
    if preview.file_errors:
        return preview
    seen: dict[str, int] = {}
    existing = {
        c.external_id: c for c in Customer.objects.filter(external_id__in=[r.get("external_id", "") for _, r in rows])
    }
    for line, row in rows:
        if "__extra__" in row:
            preview.rows.append(RowReport(line, "", "error", ["The row has more cells than the header has columns."]))
            continue
        key = row.get("external_id", "")
        report = RowReport(line, key, "update" if key in existing else "create")
        if key and key in seen:
            report.errors.append(f"external_id: {key} is also on line {seen[key]}; each customer appears once.")
        seen.setdefault(key, line)
        try:
            customer_validate(data=_customer_wire(row), customer=existing.get(key))
        except ValidationError as exc:
            report.errors += _messages(exc, _customer_column)
        if report.errors:
            report.action = "error"
        preview.rows.append(report)
    return preview


def customers_import_commit(*, text: str, user=None) -> ImportResult:
    with transaction.atomic():
        preview = customers_import_preview(text=text)
        if not preview.ok:
            raise ImportRejected(preview)
        rows, _ = _read(text, "customers")
        created = updated = 0
        for _line, row in rows:
            data = _customer_wire(row)
            customer = Customer.objects.filter(external_id=data.get("external_id")).first()
            if customer is None:
                customer_create(data=data, user=user, note="CSV import")
                created += 1
            else:
                customer_update(customer=customer, data=data, user=user, partial=False, note="CSV import")
                updated += 1
    return ImportResult("customers", created, updated)


def customers_export_csv(*, customers) -> str:
    out = io.StringIO()
    writer = SafeDictWriter(out, fieldnames=CUSTOMER_COLUMNS, lineterminator="\n")
    writer.writeheader()
    for c in customers:
        writer.writerow(
            {
                "external_id": c.external_id,
                "legal_name": c.legal_name,
                "currency": c.currency,
                "billing_emails": "; ".join(c.billing_emails),
                "tax_id": c.tax_id,
                **{k: getattr(c, k) for k in _ADDRESS},
                "crm_id": c.crm_id,
                "accounting_id": c.accounting_id,
                "stripe_customer_id": c.stripe_customer_id,
                "owner_email": c.owner.email if c.owner_id else "",
                "is_active": "true" if c.is_active else "false",
            }
        )
    return out.getvalue()


# ----------------------------------------------------------------------------- contracts


def _parse_rates(text: str) -> Any:
    if not text:
        return None
    rates = []
    for part in [p.strip() for p in text.split(";") if p.strip()]:
        role, sep, rate = part.partition("=")
        rates.append(
            {"role": role.strip(), "hourly_rate": rate.strip()} if sep else {"role": role.strip(), "hourly_rate": ""}
        )
    return rates


def _parse_tiers(text: str, charge_model: str) -> Any:
    if not text:
        return None
    price = "rate" if charge_model == "graduated_percentage" else "unit_amount"
    tiers = []
    for part in [p.strip() for p in text.split(";") if p.strip()]:
        bits = [b.strip() for b in part.split(":")]
        bits += [""] * (3 - len(bits))
        tier = {"up_to": bits[0] or None, price: bits[1]}
        if bits[2]:
            tier["flat_amount"] = bits[2]
        tiers.append(tier)
    return tiers


def _line_wire(row: dict[str, str]) -> dict[str, Any]:
    from contracts.forms import row_to_wire

    values: dict[str, Any] = {"kind": row.get("line_kind", ""), "description": row.get("line_description", "")}
    for column in LINE_COLUMNS[2:]:
        if column in ("rates", "tiers"):
            continue
        if row.get(column, "") != "":
            values[column] = row[column]
    values["rates"] = _parse_rates(row.get("rates", ""))
    values["tiers"] = _parse_tiers(row.get("tiers", ""), row.get("charge_model", ""))
    wire = row_to_wire(values)
    # Cells that the line's kind does not use are reported rather than dropped silently.
    for column in LINE_COLUMNS[2:]:
        key = column
        if row.get(column, "") != "" and key not in wire and key not in ("rates", "tiers"):
            wire[key] = row[column]
        if column in ("rates", "tiers") and row.get(column) and column not in wire:
            wire[column] = values[column]
    return wire


@dataclass
class _Version:
    effective_from: str  # "" = the first version
    lines: list[int] = field(default_factory=list)
    terms: dict[str, str] = field(default_factory=dict)
    wire_lines: list[dict[str, Any]] = field(default_factory=list)


@dataclass
class _ContractGroup:
    number: str
    lines: list[int] = field(default_factory=list)
    header: dict[str, str] = field(default_factory=dict)
    errors: dict[int, list[str]] = field(default_factory=dict)
    versions: OrderedDict[str, _Version] = field(default_factory=OrderedDict)
    rows: list[tuple[int, dict[str, str]]] = field(default_factory=list)

    def add_error(self, line: int, message: str) -> None:
        self.errors.setdefault(line, []).append(message)

    @property
    def first(self) -> _Version:
        return self.versions.get("") or next(iter(self.versions.values()))

    @property
    def amendments(self) -> list[_Version]:
        return [v for key, v in self.versions.items() if key != "" and v is not self.first]

    # The first version's rows, as the single-version code paths know them.
    @property
    def wire_lines(self) -> list[dict[str, Any]]:
        return self.first.wire_lines


def _contract_groups(rows: list[tuple[int, dict[str, str]]]) -> tuple[list[_ContractGroup], list[RowReport]]:
    groups: OrderedDict[str, _ContractGroup] = OrderedDict()
    loose: list[RowReport] = []
    for line, row in rows:
        if "__extra__" in row:
            loose.append(RowReport(line, "", "error", ["The row has more cells than the header has columns."]))
            continue
        number = row.get("number", "")
        if not number:
            loose.append(RowReport(line, "", "error", ["number: Every row names the contract it belongs to."]))
            continue
        group = groups.setdefault(number, _ContractGroup(number=number))
        group.lines.append(line)
        group.rows.append((line, row))
        effective = row.get("effective_from", "")
        if effective and effective == (row.get("start_date") or group.header.get("start_date", "")):
            effective = ""  # the first version, written out
        version = group.versions.setdefault(effective, _Version(effective_from=effective))
        version.lines.append(line)
        for column in CONTRACT_HEADER_COLUMNS + _EXTRA_HEADER_COLUMNS:
            value = row.get(column, "")
            if value == "":
                continue
            target = version.terms if column in VERSION_COLUMNS else group.header
            if column not in target:
                target[column] = value
            elif target[column] != value:
                scope = f"version from {effective}" if effective and column in VERSION_COLUMNS else number
                group.add_error(
                    line, f"{column}: “{value}” differs from “{target[column]}” on an earlier row of {scope}."
                )
        if row.get("line_kind", "") or row.get("line_description", ""):
            version.wire_lines.append(_line_wire(row))
        else:
            version.wire_lines.append({"__line__": line})
    for group in groups.values():
        # A later version that leaves a terms column blank keeps the previous version's value.
        previous: dict[str, str] = {}
        for version in group.versions.values():
            for column in VERSION_COLUMNS:
                if column not in version.terms and column in previous:
                    version.terms[column] = previous[column]
            previous = version.terms
    return list(groups.values()), loose


def _contract_wire(group: _ContractGroup) -> dict[str, Any]:
    h = group.header
    data: dict[str, Any] = {k: h[k] for k in CONTRACT_HEADER_COLUMNS if k in h and k != "owner_email"}
    data.update(group.first.terms)
    if "owner_email" in h:
        data["owner"] = h["owner_email"]
    data["number"] = group.number
    data["price_lines"] = [w for w in group.first.wire_lines if "__line__" not in w]
    return data


def _amendment_wire(version: _Version) -> dict[str, Any]:
    data: dict[str, Any] = dict(version.terms)
    data["price_lines"] = [w for w in version.wire_lines if "__line__" not in w]
    data["reason"] = "CSV import"
    return data


def _line_column(name: str) -> str:
    parts = name.split(".")
    field_name = parts[2] if len(parts) > 2 else ""
    return _WIRE_TO_COLUMN.get(field_name, field_name)


def _contract_errors(group: _ContractGroup, exc: ValidationError, version: _Version | None = None) -> None:
    version = version or group.first
    line_numbers = [ln for ln, w in zip(version.lines, version.wire_lines, strict=False) if "__line__" not in w]
    for name, messages in exc.message_dict.items():
        parts = name.split(".")
        if parts[0] == "price_lines" and len(parts) > 1 and parts[1].isdigit() and int(parts[1]) < len(line_numbers):
            line = line_numbers[int(parts[1])]
            column = _line_column(name) or "line"
            for message in messages:
                group.add_error(line, f"{column}: {message}")
        else:
            column = _WIRE_TO_COLUMN.get(parts[0], parts[0])
            for message in messages:
                group.add_error(version.lines[0], message if column == "non_field_errors" else f"{column}: {message}")


def contracts_import_preview(*, text: str, dry_run: bool = True) -> ImportPreview:
    """Every row checked; when they all pass and ``dry_run``, the contracts are also written (with their
    amendments and what other apps' columns do) inside a savepoint that is rolled back, so what only
    the write can find (an amendment's dates, a discount's window) is reported before anything commits."""
    preview = ImportPreview(what="contracts")
    rows, preview.file_errors = _read(text, "contracts")
    if preview.file_errors:
        return preview
    groups, loose = _contract_groups(rows)
    existing = set(Contract.objects.filter(number__in=[g.number for g in groups]).values_list("number", flat=True))
    for group in groups:
        for line, w in zip(group.first.lines, group.first.wire_lines, strict=False):
            if "__line__" in w and len(group.first.lines) == 1:
                group.add_error(line, "line_kind: The contract has no price line; give line_kind and line_description.")
        if "" not in group.versions:
            first = next(iter(group.versions.values()))
            group.add_error(
                first.lines[0],
                f"effective_from: The first rows of {group.number} must be its first version (leave effective_from empty or give the start date).",
            )
        for version in group.amendments:
            if not _iso_date(version.effective_from):
                group.add_error(
                    version.lines[0], f"effective_from: “{version.effective_from}” is not a date; use YYYY-MM-DD."
                )
        if group.number in existing:
            group.add_error(
                group.lines[0],
                f"number: Contract {group.number} already exists; amend it in the app or through the API.",
            )
        else:
            try:
                contract_validate(data=_contract_wire(group))
            except ValidationError as exc:
                _contract_errors(group, exc)
    if dry_run and not any(g.errors for g in groups) and not loose:
        with transaction.atomic():
            try:
                _contracts_write(groups, user=None)
                preview.first_run = _first_run(groups)
            except _WriteFailed:
                pass  # the rows that failed carry their errors
            transaction.set_rollback(True)
    _preview_rows(preview, groups, loose)
    return preview


def _preview_rows(preview: ImportPreview, groups: list[_ContractGroup], loose: list[RowReport]) -> None:
    preview.rows = []
    for group in groups:
        for line in group.lines:
            errors = group.errors.get(line, [])
            action = "error" if errors else "create"
            preview.rows.append(RowReport(line, group.number, action, errors))
    preview.rows += loose
    preview.rows.sort(key=lambda r: r.line)
    # A contract with one bad row is not created: mark its other rows so the count is honest.
    bad_numbers = {r.key for r in preview.rows if r.errors}
    for report in preview.rows:
        if report.key in bad_numbers and not report.errors:
            report.action = "blocked"


def _iso_date(text: str) -> date | None:
    try:
        return date.fromisoformat(text)
    except ValueError:
        return None


def _contracts_write(groups: list[_ContractGroup], *, user) -> list[Contract]:
    """Create every contract with its amendments and registered extras; on the first failure the
    errors land on their rows and ImportRejected-worthy state is left in ``group.errors``."""
    from contracts.services.contracts import contract_amend

    created = []
    failed = False
    for group in groups:
        sid = transaction.savepoint_create()
        try:
            contract = contract_create(data=_contract_wire(group), user=user, note="CSV import")
            for version in group.amendments:
                try:
                    contract_amend(
                        contract=contract,
                        effective_from=version.effective_from,
                        changes=_amendment_wire(version),
                        user=user,
                    )
                except ValidationError as exc:
                    _contract_errors(group, exc, version)
                    raise
            for extension in _EXTENSIONS.values():
                if extension.after_create is None:
                    continue
                header = {c: group.header[c] for c in extension.header_columns if c in group.header}
                if not header and not any(row.get(c) for _, row in group.rows for c in extension.line_columns):
                    continue
                try:
                    extension.after_create(contract=contract, header=header, rows=group.rows, user=user)
                except RowError as exc:
                    group.add_error(exc.line, f"{exc.column}: {exc.message}")
                    raise ValidationError(exc.message) from exc
        except ValidationError as exc:
            transaction.savepoint_rollback(sid)
            if not group.errors:
                _contract_errors(group, exc)
            failed = True
            continue
        transaction.savepoint_commit(sid)
        created.append(contract)
    if failed:
        raise _WriteFailed()
    return created


class _WriteFailed(Exception):
    pass


# Other apps say what the first billing run would bill for freshly imported contracts (billing
# registers the engine's shadow run): ``fn(*, contract_ids) -> {contract_id: summary}``.
_FIRST_RUN: list[Callable[..., dict]] = []


def import_first_run_register(fn: Callable[..., dict]) -> None:
    if fn not in _FIRST_RUN:
        _FIRST_RUN.append(fn)


def _first_run(groups: list[_ContractGroup]) -> dict[str, Any]:
    if not _FIRST_RUN:
        return {}
    ids = dict(Contract.objects.filter(number__in=[g.number for g in groups]).values_list("pk", "number"))
    summary: dict[str, Any] = {}
    for fn in _FIRST_RUN:
        for contract_id, value in fn(contract_ids=list(ids)).items():
            summary[ids[contract_id]] = value
    return summary


def contracts_import_commit(*, text: str, user=None) -> ImportResult:
    with transaction.atomic():
        preview = contracts_import_preview(text=text, dry_run=False)
        if not preview.ok:
            raise ImportRejected(preview)
        rows, _ = _read(text, "contracts")
        groups, loose = _contract_groups(rows)
        try:
            _contracts_write(groups, user=user)
        except _WriteFailed:
            # Changed since the preview (a number taken meanwhile), or only the write could tell.
            _preview_rows(preview, groups, loose)
            transaction.set_rollback(True)
            raise ImportRejected(preview) from None
    return ImportResult("contracts", len(groups), 0)


def contracts_export_csv(*, contracts) -> str:
    """The terms in force today of each contract, one row per price line (the import format)."""
    out = io.StringIO()
    writer = SafeDictWriter(out, fieldnames=CONTRACT_COLUMNS, lineterminator="\n")
    writer.writeheader()
    today = timezone.localdate()
    for contract in contracts:
        version = version_in_force(list(contract.versions.all()), today)
        header = {
            "number": contract.number,
            "customer": contract.customer.external_id,
            "title": contract.title,
            "status": contract.status,
            "issuing_entity": contract.issuing_entity.invoice_prefix,
            "owner_email": contract.owner.email if contract.owner_id else "",
            "start_date": contract.start_date.isoformat(),
            "end_date": contract.end_date.isoformat() if contract.end_date else "",
            "currency": version.currency if version else "",
            "payment_terms_days": version.payment_terms_days if version else "",
            "po_number": version.po_number if version else "",
            "po_required": _bool(version.po_required) if version else "",
            "billing_anchor": version.billing_anchor if version else "",
            "auto_renew": _bool(contract.auto_renew),
            "renewal_term_months": contract.renewal_term_months,
            "notice_period_days": contract.notice_period_days,
            "renewal_uplift_pct": format(contract.renewal_uplift_pct, "f"),
            "billed_through": contract.billed_through.isoformat() if contract.billed_through else "",
        }
        lines = list(version.price_lines.all()) if version else []
        if not lines:
            writer.writerow(header)
        for line in lines:
            wire = price_line_to_wire(line)
            row = dict(header)
            row["line_kind"], row["line_description"] = wire.pop("kind"), wire.pop("description")
            rates, tiers = wire.pop("rates", None), wire.pop("tiers", None)
            if rates:
                row["rates"] = "; ".join(f"{r['role']}={r['hourly_rate']}" for r in rates)
            if tiers:
                price = "rate" if line.charge_model == "graduated_percentage" else "unit_amount"
                row["tiers"] = "; ".join(f"{t['up_to'] or ''}:{t[price]}:{t['flat_amount']}" for t in tiers)
            for key, value in wire.items():
                row[key] = "" if value is None else value
            writer.writerow(row)
    return out.getvalue()


def _bool(value: bool) -> str:
    return "true" if value else "false"


def template_csv(what: str) -> str:
    out = io.StringIO()
    writer = SafeDictWriter(out, fieldnames=COLUMNS[what], lineterminator="\n")
    writer.writeheader()
    for row in EXAMPLES[what]:
        writer.writerow(row)
    return out.getvalue()
