"""Importing the invoices another system billed (onboarding history): preview, then all or nothing.

The export is read by ``billing.history_formats`` (Xero or QuickBooks Online), each invoice is
matched to a contract and each line to a price line and period by ``billing.history_matching``,
and the result is stored as ExternalInvoice rows. An invoice number already imported from the
same system is refused with the row that carries it, so importing a file twice changes nothing.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal

from django.db import transaction

from billing.history_formats import ExportProblem, ExportRejected, ParsedExport, history_export_parse
from billing.history_matching import (
    ContractTerms,
    Directory,
    LineMatch,
    contract_terms,
    invoice_match,
    line_match,
    name_key,
)
from billing.models_history import (
    BILLED_EXTERNAL_STATUSES,
    ExternalInvoice,
    ExternalInvoiceLine,
    HistoryImport,
    MatchMethod,
)
from revexos.money import quantize

ZERO = Decimal(0)


@dataclass
class MatchedLine:
    row: int
    description: str
    amount: Decimal
    match: LineMatch


@dataclass
class MatchedInvoice:
    number: str
    row: int
    contact: str
    issue_date: date
    currency: str
    total: Decimal
    kind: str
    status: str
    contract_id: int | None
    contract_number: str
    customer_id: int | None
    method: str
    note: str
    lines: list[MatchedLine] = field(default_factory=list)

    @property
    def matched_lines(self) -> int:
        return sum(1 for line in self.lines if line.match.obligation_key)


@dataclass
class ContractHistory:
    """What the history says about one contract: how much and up to which recurring period."""

    contract_id: int
    number: str
    currency: str
    invoices: int = 0
    billed: Decimal = ZERO
    last_period_end: date | None = None


@dataclass
class HistoryPreview:
    parsed: ParsedExport
    invoices: list[MatchedInvoice]

    @property
    def unmatched(self) -> list[MatchedInvoice]:
        return [i for i in self.invoices if i.contract_id is None]

    @property
    def lines_unmatched(self) -> list[tuple[MatchedInvoice, MatchedLine]]:
        return [(i, line) for i in self.invoices if i.contract_id for line in i.lines if not line.match.obligation_key]

    @property
    def line_count(self) -> int:
        return sum(len(i.lines) for i in self.invoices)

    @property
    def matched_line_count(self) -> int:
        return sum(i.matched_lines for i in self.invoices)

    def by_contract(self) -> list[ContractHistory]:
        """Billed totals and the last recurring period billed, per contract (sent invoices only)."""
        found: dict[tuple[int, str], ContractHistory] = {}
        for invoice in self.invoices:
            if invoice.contract_id is None or invoice.status not in BILLED_EXTERNAL_STATUSES:
                continue
            key = (invoice.contract_id, invoice.currency)
            entry = found.setdefault(
                key, ContractHistory(invoice.contract_id, invoice.contract_number, invoice.currency)
            )
            entry.invoices += 1
            sign = -1 if invoice.kind == "credit_note" else 1
            entry.billed += sign * invoice.total
            for line in invoice.lines:
                end = line.match.period_end
                if (
                    line.match.kind == "recurring"
                    and end
                    and (entry.last_period_end is None or end > entry.last_period_end)
                ):
                    entry.last_period_end = end
        return sorted(found.values(), key=lambda e: e.number)


def history_directory() -> Directory:
    """Every contract (with its terms) and customer of the tenant, for matching, in a few queries."""
    from billing.selectors import contract_versions_many
    from contracts.models import Contract, Customer

    contracts = list(Contract.objects.exclude(status="draft").order_by("pk"))
    versions = contract_versions_many(contract_ids=[c.pk for c in contracts])
    terms = [contract_terms(c, versions.get(c.pk, [])) for c in contracts if versions.get(c.pk)]
    customers: dict[str, int] = {}
    for pk, legal_name, external_id, accounting_id in Customer.objects.values_list(
        "pk", "legal_name", "external_id", "accounting_id"
    ):
        for key in (name_key(legal_name), (accounting_id or "").lower(), external_id.lower(), legal_name.lower()):
            if key:
                customers.setdefault(key, pk)
    return Directory(contracts=terms, customers=customers)


def history_match(parsed: ParsedExport, directory: Directory | None = None) -> HistoryPreview:
    directory = directory or history_directory()
    by_id: dict[int, ContractTerms] = {c.id: c for c in directory.contracts}
    result = []
    for invoice in parsed.invoices:
        found = invoice_match(
            contact=invoice.contact,
            reference=invoice.reference,
            descriptions=[line.description for line in invoice.lines],
            issue_date=invoice.issue_date,
            directory=directory,
        )
        matched = MatchedInvoice(
            number=invoice.number,
            row=invoice.first_row,
            contact=invoice.contact,
            issue_date=invoice.issue_date,
            currency=invoice.currency,
            total=invoice.total,
            kind=invoice.kind,
            status=invoice.status,
            contract_id=found.contract.id if found.contract else None,
            contract_number=found.contract.number if found.contract else "",
            customer_id=found.customer_id,
            method=found.method,
            note=found.note,
        )
        contract = by_id.get(matched.contract_id) if matched.contract_id else None
        for line in invoice.lines:
            match = (
                line_match(
                    description=line.description,
                    service_date=line.service_date,
                    issue_date=invoice.issue_date,
                    contract=contract,
                    order=parsed.date_format,
                )
                if contract is not None
                else LineMatch(note=found.note)
            )
            matched.lines.append(MatchedLine(line.row, line.description, line.amount, match))
        result.append(matched)
    return HistoryPreview(parsed=parsed, invoices=result)


def _already_imported(parsed: ParsedExport) -> list[ExportProblem]:
    numbers = [i.number for i in parsed.invoices]
    existing = {
        number: (file_name, created_at)
        for number, file_name, created_at in ExternalInvoice.objects.filter(
            source=parsed.source, number__in=numbers
        ).values_list("number", "history_import__file_name", "history_import__created_at")
    }
    column = "InvoiceNumber" if parsed.source == "xero" else "InvoiceNo"
    return [
        ExportProblem(
            parsed.file_name,
            f"Invoice {i.number} was already imported from {existing[i.number][0]} on "
            f"{existing[i.number][1]:%-d %b %Y}; remove it from this file or delete that import first.",
            i.first_row,
            column,
        )
        for i in parsed.invoices
        if i.number in existing
    ]


def history_import_preview(
    *, raw: bytes, file_name: str, date_format: str | None = None, default_currency: str | None = None
) -> HistoryPreview:
    """Read and match without writing. Raises ExportRejected naming file, row and column."""
    parsed = history_export_parse(
        raw=raw, file_name=file_name, date_format=date_format, default_currency=default_currency
    )
    problems = _already_imported(parsed)
    if problems:
        raise ExportRejected(problems)
    return history_match(parsed)


def history_import_commit(
    *, raw: bytes, file_name: str, date_format: str | None = None, default_currency: str | None = None, user=None
) -> HistoryImport:
    """Store every invoice of the export with its matches, or nothing (one transaction)."""
    with transaction.atomic():
        preview = history_import_preview(
            raw=raw, file_name=file_name, date_format=date_format, default_currency=default_currency
        )
        return history_store(preview, user=user)


def history_store(preview: HistoryPreview, *, user=None) -> HistoryImport:
    parsed = preview.parsed
    batch = HistoryImport.objects.create(
        source=parsed.source,
        file_name=parsed.file_name[:255],
        date_format=parsed.date_format or "",
        invoice_count=len(parsed.invoices),
        line_count=preview.line_count,
        matched_line_count=preview.matched_line_count,
        created_by=user if getattr(user, "pk", None) else None,
    )
    rows = []
    for invoice, matched in zip(parsed.invoices, preview.invoices, strict=True):
        rows.append(
            ExternalInvoice(
                history_import=batch,
                source=parsed.source,
                number=invoice.number[:100],
                kind=invoice.kind,
                status=invoice.status,
                contact_name=invoice.contact,
                contact_email=invoice.email,
                reference=invoice.reference,
                terms=invoice.terms,
                customer_id=matched.customer_id,
                contract_id=matched.contract_id,
                match_method=matched.method if matched.contract_id else MatchMethod.UNMATCHED,
                issue_date=invoice.issue_date,
                due_date=invoice.due_date,
                currency=invoice.currency,
                subtotal=quantize(invoice.subtotal, invoice.currency),
                tax_total=invoice.tax_total,
                total=invoice.total,
                amount_paid=invoice.amount_paid,
                amount_due=invoice.amount_due,
                paid_on=invoice.paid_on,
                source_row=invoice.first_row,
            )
        )
    stored = ExternalInvoice.objects.bulk_create(rows, batch_size=1000)
    lines = []
    for ext, invoice, matched in zip(stored, parsed.invoices, preview.invoices, strict=True):
        for position, (line, m) in enumerate(zip(invoice.lines, matched.lines, strict=True)):
            lines.append(
                ExternalInvoiceLine(
                    invoice=ext,
                    position=position,
                    source_row=line.row,
                    description=line.description,
                    item_code=line.item_code,
                    account_code=line.account_code,
                    quantity=line.quantity,
                    unit_amount=line.unit_amount,
                    discount_percent=line.discount_percent,
                    amount=line.amount,
                    tax_amount=line.tax_amount,
                    service_date=line.service_date,
                    contract_id=matched.contract_id if m.match.line_ref else None,
                    line_ref=m.match.line_ref,
                    kind=m.match.kind,
                    period_start=m.match.period_start,
                    period_end=m.match.period_end,
                    obligation_key=m.match.obligation_key,
                    match_note=m.match.note[:300],
                )
            )
    ExternalInvoiceLine.objects.bulk_create(lines, batch_size=2000)
    return batch


# --------------------------------------------------------------------------- reads


def external_billed_by_contract(*, contracts=None, until: date | None = None) -> dict:
    """contract id → currency → billed before RevExOS (sent invoices less credit notes, tax included,
    like the billed value of RevExOS's own invoices). ``contracts``: ids or a queryset to narrow to."""
    from django.db.models import Case, F, Sum, When

    rows = ExternalInvoice.objects.filter(contract__isnull=False, status__in=BILLED_EXTERNAL_STATUSES)
    if contracts is not None:
        rows = rows.filter(contract__in=contracts)
    if until is not None:
        rows = rows.filter(issue_date__lte=until)
    signed = Case(When(kind="credit_note", then=-F("total")), default=F("total"))
    result: dict[int, dict[str, Decimal]] = defaultdict(dict)
    for row in rows.values("contract_id", "currency").annotate(billed=Sum(signed)).order_by():
        result[row["contract_id"]][row["currency"]] = row["billed"]
    return dict(result)


def history_cutover_suggestions(preview: HistoryPreview) -> list[dict]:
    """Per matched contract: what the history billed and the ``billed_through`` it suggests (the end of
    the last recurring period invoiced), next to the contract's own."""
    from contracts.models import Contract

    found = preview.by_contract()
    current = dict(Contract.objects.filter(pk__in=[c.contract_id for c in found]).values_list("pk", "billed_through"))
    return [
        {
            "contract_id": c.contract_id,
            "number": c.number,
            "currency": c.currency,
            "invoices": c.invoices,
            "billed": c.billed,
            "last_period_end": c.last_period_end,
            "billed_through": current.get(c.contract_id),
            "suggest": c.last_period_end is not None and current.get(c.contract_id) is None,
        }
        for c in found
    ]


def history_cutover_apply(*, preview: HistoryPreview, user=None) -> list[str]:
    """Set ``billed_through`` to the last recurring period the history billed, on contracts without one.
    Through the contract service, so the change is validated and recorded in the contract's history."""
    from contracts.models import Contract
    from contracts.services.contracts import contract_update

    changed = []
    for row in history_cutover_suggestions(preview):
        if not row["suggest"]:
            continue
        contract = Contract.objects.get(pk=row["contract_id"])
        contract_update(contract=contract, data={"billed_through": row["last_period_end"].isoformat()}, user=user)
        changed.append(row["number"])
    return changed


# --------------------------------------------------------------------------- for DSO and days to pay


def external_credit_sales(*, start: date, end: date) -> dict[str, Decimal]:
    """Sent history invoices issued in [start, end] less history credit notes, per currency."""
    from django.db.models import Sum

    sales: dict[str, Decimal] = defaultdict(lambda: ZERO)
    rows = (
        ExternalInvoice.objects.filter(status__in=BILLED_EXTERNAL_STATUSES, issue_date__gte=start, issue_date__lte=end)
        .values("currency", "kind")
        .annotate(s=Sum("total"))
        .order_by()
    )
    for r in rows:
        sales[r["currency"]] += -r["s"] if r["kind"] == "credit_note" else r["s"]
    return dict(sales)


def external_open_at(*, as_of: date) -> dict[str, Decimal]:
    """History invoices still unpaid on ``as_of``, per currency.

    With a paid date, an invoice is open until it. Without one (Xero's export has none), it is taken
    as paid on its due date, unless the export says it was still due when taken: then it is open
    through ``as_of``. An assumption, stated in the DSO's definition.
    """
    from django.db.models import Q, Sum

    issued = ExternalInvoice.objects.filter(status__in=BILLED_EXTERNAL_STATUSES, kind="invoice", issue_date__lte=as_of)
    still_open = (
        Q(paid_on__gt=as_of)
        | Q(paid_on__isnull=True, amount_due__gt=0)
        | Q(paid_on__isnull=True, due_date__gt=as_of, status="authorised")
        | Q(paid_on__isnull=True, due_date__gt=as_of, status="paid")
    )
    result: dict[str, Decimal] = {}
    for r in issued.filter(still_open).values("currency").annotate(s=Sum("total")).order_by():
        result[r["currency"]] = r["s"]
    return result


def external_credit_sales_by_day(*, start: date, end: date) -> list[tuple[date, str, Decimal]]:
    """``external_credit_sales`` of every day in [start, end] with any, in one grouped query:
    (day, currency, amount), for a caller that adds days up into its own periods."""
    from django.db.models import Sum

    rows = (
        ExternalInvoice.objects.filter(status__in=BILLED_EXTERNAL_STATUSES, issue_date__gte=start, issue_date__lte=end)
        .values("issue_date", "currency", "kind")
        .annotate(s=Sum("total"))
        .order_by()
    )
    return [(r["issue_date"], r["currency"], -r["s"] if r["kind"] == "credit_note" else r["s"]) for r in rows]


def external_open_at_dates(*, dates: list[date]) -> dict[date, dict[str, Decimal]]:
    """``external_open_at`` on each of ``dates``, in one grouped query (the same rules, each day a
    row of a VALUES list joined to the history invoices)."""
    from django.db import connection

    result: dict[date, dict[str, Decimal]] = {day: {} for day in dates}
    if not dates:
        return result
    with connection.cursor() as cursor:
        cursor.execute(
            f"""
            SELECT d.as_of, e.currency, SUM(e.total)
              FROM {ExternalInvoice._meta.db_table} e
              JOIN (SELECT unnest(%(dates)s::date[]) AS as_of) d ON e.issue_date <= d.as_of
             WHERE e.status = ANY(%(billed)s) AND e.kind = 'invoice'
               AND (e.paid_on > d.as_of
                    OR (e.paid_on IS NULL AND e.amount_due > 0)
                    OR (e.paid_on IS NULL AND e.due_date > d.as_of AND e.status IN ('authorised', 'paid')))
             GROUP BY d.as_of, e.currency
            """,
            {"dates": sorted(set(dates)), "billed": [str(s) for s in BILLED_EXTERNAL_STATUSES]},
        )
        for as_of, currency, amount in cursor.fetchall():
            result[as_of][currency] = amount
    return result


def external_paid_in(*, start: date, end: date) -> list[tuple[str, Decimal, date, date, date]]:
    """(currency, amount, issue date, due date, paid date) of history invoices paid in [start, end]."""
    return list(
        ExternalInvoice.objects.filter(kind="invoice", paid_on__gte=start, paid_on__lte=end)
        .values_list("currency", "total", "issue_date", "due_date", "paid_on")
        .order_by()
    )
