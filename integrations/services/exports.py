"""Accounting exports: load the documents of a date range, write the file (integrations/exports.py),
record the export so it can be downloaded again."""

from __future__ import annotations

import hashlib
from collections import defaultdict
from datetime import date, timedelta
from decimal import Decimal
from typing import Any

from django.apps import apps
from django.core.exceptions import ValidationError
from django.core.files.base import ContentFile
from django.db import transaction
from django.db.models import Sum

from integrations import exports
from integrations.models import AccountingExport, AccountingSettings, ExportTarget
from revexos.parsing import parse_date

MAX_RANGE_DAYS = 400
ZERO = Decimal("0")


def export_range_read(*, date_from: Any, date_to: Any) -> tuple[date, date]:
    """The range from the API's ``from``/``to`` (or the form): both dates, in order, at most ~13 months."""
    errors: dict[str, list[str]] = {}
    values = {}
    for name, raw in (("from", date_from), ("to", date_to)):
        if raw in (None, ""):
            errors[name] = ["Give the range's first and last issue dates, e.g. from=2026-03-01&to=2026-03-31."]
            continue
        try:
            values[name] = raw if isinstance(raw, date) else parse_date(raw)
        except ValueError as exc:
            errors[name] = [str(exc)]
    if not errors and values["to"] < values["from"]:
        errors["to"] = [f"{values['to'].isoformat()} is before {values['from'].isoformat()}."]
    if not errors and (values["to"] - values["from"]).days > MAX_RANGE_DAYS:
        errors["to"] = [f"Export at most {MAX_RANGE_DAYS} days at a time; split the range."]
    if errors:
        raise ValidationError(errors)
    return values["from"], values["to"]


def accounting_settings() -> AccountingSettings:
    row = AccountingSettings.objects.order_by("pk").first()
    return row or AccountingSettings.objects.create()


def accounts_of(row: AccountingSettings) -> exports.Accounts:
    return exports.Accounts(
        receivable=row.receivable_account,
        tax_payable=row.tax_account,
        bank=row.bank_account,
        revenue_default=row.revenue_account,
        revenue_by_kind=dict(row.revenue_accounts or {}),
    )


def _party(customer) -> exports.Party:
    return exports.Party(
        name=customer.legal_name,
        email=(customer.billing_emails or [""])[0],
        address_lines=tuple(p for p in (customer.address_line1, customer.address_line2) if p),
        city=customer.city,
        region=customer.region,
        postal_code=customer.postal_code,
        country=customer.country,
        ref=customer.external_id,
    )


def _taxes(rows) -> tuple[exports.TaxShare, ...]:
    return tuple(
        exports.TaxShare(
            name=r["name"],
            rate=Decimal(str(r["rate"])),
            taxable=Decimal(str(r["taxable"])),
            amount=Decimal(str(r["amount"])),
        )
        for r in rows or []
    )


def documents_in_range(*, date_from: date, date_to: date) -> list[exports.Document]:
    """Invoices and credit notes issued in the range, as export documents (a fixed number of queries)."""
    from billing.models import CreditNote, Invoice, InvoiceLine, InvoiceStatus
    from discounts.models import DiscountApplication

    invoices = list(
        Invoice.objects.exclude(status=InvoiceStatus.DRAFT)
        .filter(issue_date__gte=date_from, issue_date__lte=date_to)
        .select_related("customer", "contract")
        .order_by("issue_date", "number")
    )
    ids = [i.pk for i in invoices]
    lines_by_invoice: dict[int, list] = defaultdict(list)
    for line in InvoiceLine.objects.filter(invoice_id__in=ids).order_by("invoice_id", "position", "id"):
        lines_by_invoice[line.invoice_id].append(line)
    discounts = dict(
        DiscountApplication.objects.filter(invoice_id__in=ids)
        .values("invoice_line_id")
        .annotate(s=Sum("amount"))
        .values_list("invoice_line_id", "s")
    )
    documents = []
    for invoice in invoices:
        tax_name = {position: t["name"] for t in invoice.tax_lines or [] for position in t.get("lines", [])}
        documents.append(
            exports.Document(
                number=invoice.number,
                issue_date=invoice.issue_date,
                due_date=invoice.due_date,
                currency=invoice.currency,
                customer=_party(invoice.customer),
                total=invoice.total,
                tax_total=invoice.tax_total,
                lines=tuple(
                    exports.DocLine(
                        description=line.description,
                        kind=line.kind,
                        quantity=line.quantity,
                        unit_amount=line.unit_amount,
                        amount=line.amount,
                        discount=discounts.get(line.pk) or ZERO,
                        tax_name=tax_name.get(line.position, exports.NO_TAX),
                        period_start=line.period_start,
                        period_end=line.period_end,
                    )
                    for line in lines_by_invoice[invoice.pk]
                ),
                taxes=_taxes(invoice.tax_lines),
                memo=f"Contract {invoice.contract.number}" + (f", PO {invoice.po_number}" if invoice.po_number else ""),
                reference=invoice.po_number,
                terms_days=invoice.payment_terms_days,
            )
        )
    for note in (
        CreditNote.objects.filter(issue_date__gte=date_from, issue_date__lte=date_to)
        .select_related("invoice", "invoice__customer")
        .order_by("issue_date", "number")
    ):
        documents.append(
            exports.Document(
                number=note.number,
                issue_date=note.issue_date,
                due_date=note.issue_date,
                currency=note.currency,
                customer=_party(note.invoice.customer),
                total=note.amount,
                tax_total=note.tax_amount,
                taxes=_taxes(note.tax_lines),
                is_credit=True,
                reference=note.invoice.number,
                memo=note.reason,
            )
        )
    return documents


def payments_in_range(*, date_from: date, date_to: date) -> list[exports.Payment]:
    """Payments received in the range, once the collections module is installed (its Payment model)."""
    if not apps.is_installed("receivables"):
        return []
    Payment = apps.get_model("receivables", "Payment")
    rows = Payment.objects.filter(received_on__gte=date_from, received_on__lte=date_to).select_related("customer")
    out = [
        exports.Payment(
            received_on=p.received_on,
            amount=p.amount,
            currency=p.currency,
            customer=_party(p.customer),
            reference=_payment_ref(p),
        )
        for p in rows.order_by("received_on", "pk")
    ]
    Refund = apps.get_model("receivables", "Refund")
    out += [
        exports.Payment(
            received_on=r.refunded_on,
            amount=r.amount,
            currency=r.payment.currency,
            customer=_party(r.payment.customer),
            reference=_payment_ref(r.payment),
            is_refund=True,
        )
        for r in Refund.objects.filter(refunded_on__gte=date_from, refunded_on__lte=date_to)
        .select_related("payment", "payment__customer")
        .order_by("refunded_on", "pk")
    ]
    return out


def _payment_ref(p) -> str:
    return (p.reference or p.external_id or f"PAY-{p.pk}")[:100]


def export_build(*, target: str, date_from: date, date_to: date) -> tuple[exports.ExportFile, dict[str, int]]:
    """The file for ``target`` over the range, and what it holds. Pure given the database: no clock."""
    from contracts.models import IssuingEntity

    documents = documents_in_range(date_from=date_from, date_to=date_to)
    accounts = accounts_of(accounting_settings())
    basename = f"revexos-{target}-{date_from.isoformat()}-to-{date_to.isoformat()}"
    counts = {
        "invoices": sum(1 for d in documents if not d.is_credit),
        "credit_notes": sum(1 for d in documents if d.is_credit),
        "payments": 0,
        "files": 1,
    }
    if target == ExportTarget.XERO:
        out = exports.xero_export(documents, accounts=accounts, basename=basename)
        counts["files"] = -(-len(documents) // exports.XERO_MAX_DOCUMENTS) or 1
    elif target == ExportTarget.QUICKBOOKS:
        countries = set(IssuingEntity.objects.values_list("country", flat=True))
        out = exports.quickbooks_export(documents, basename=basename, us_dates=countries == {"US"})
        counts["credit_notes"] = 0  # QuickBooks' invoice import takes none: they are in the journal
    elif target == ExportTarget.JOURNAL:
        payments = payments_in_range(date_from=date_from, date_to=date_to)
        counts["payments"] = len(payments)
        out = exports.journal_export(documents, accounts=accounts, basename=basename, payments=payments)
    else:
        raise ValidationError({"target": [f"Unknown export {target!r}; use xero, quickbooks or journal."]})
    return out, counts


@transaction.atomic
def accounting_export_create(
    *, target: str, date_from: Any, date_to: Any, user=None, via: str = "ui"
) -> AccountingExport:
    """Export a range and keep the file; returns the recorded export."""
    if target not in ExportTarget.values:
        raise ValidationError({"target": [f"Unknown export {target!r}; use xero, quickbooks or journal."]})
    start, end = export_range_read(date_from=date_from, date_to=date_to)
    out, counts = export_build(target=target, date_from=start, date_to=end)
    record = AccountingExport(
        target=target,
        date_from=start,
        date_to=end,
        filename=out.name,
        content_type=out.content_type,
        size=len(out.content),
        sha256=hashlib.sha256(out.content).hexdigest(),
        created_by=user if getattr(user, "is_authenticated", False) else None,
        created_via=via,
        **counts,
    )
    record.save()
    # One folder per export: a re-export of the same range never overwrites the earlier file.
    record.file.save(f"{record.pk}/{out.name}", ContentFile(out.content), save=True)
    return record


def accounting_export_bytes(export: AccountingExport) -> bytes:
    with export.file.open("rb") as handle:
        return handle.read()


def last_month(today: date) -> tuple[date, date]:
    first_this = today.replace(day=1)
    last = first_this - timedelta(days=1)
    return last.replace(day=1), last
