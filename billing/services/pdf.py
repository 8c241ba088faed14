"""Invoice PDFs, rendered by WeasyPrint from templates/billing/pdf/invoice.html.

Rendering is pure (an invoice in, PDF bytes out); storing puts the file under the tenant's own
folder (the tenant file storage prefixes every path with the schema name), so two tenants with
the same invoice number never share a file. Issued invoices never change, so their PDF is
rendered once (by the send task, in a worker) and served from storage afterwards; drafts are
rendered on demand with a DRAFT mark.
"""

from __future__ import annotations

from collections import defaultdict
from decimal import Decimal

from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.db import connection
from django.template.loader import render_to_string

from billing.models import Invoice, InvoiceLineKind, InvoiceStatus

# Letter for entities invoicing from the US and Canada, A4 everywhere else.
LETTER_COUNTRIES = {"US", "CA"}
ZERO = Decimal("0")


def _source_note(line) -> str:
    """One short line saying where an amount came from (shown under the description)."""
    source = line.source or {}
    if source.get("note"):
        return str(source["note"])
    parts = []
    if line.kind == InvoiceLineKind.MILESTONE and source.get("reference"):
        parts.append(f"milestone {source['reference']}")
    if line.kind == InvoiceLineKind.TIME_AND_MATERIALS and source.get("role"):
        parts.append(f"{source['role']}")
    if source.get("time_entries"):
        parts.append(f"{source['time_entries']} time entr{'y' if source['time_entries'] == 1 else 'ies'}")
    if source.get("hours_used") and source.get("included_hours"):
        parts.append(f"{source['hours_used']} h used, {source['included_hours']} h included")
    if source.get("events"):
        parts.append(f"{source['events']} usage events")
    if source.get("days") and source.get("period_days") and source["days"] != source["period_days"]:
        parts.append(f"prorated {source['days']}/{source['period_days']} days")
    return " · ".join(parts)


def _discounts_by_line(invoice: Invoice) -> tuple[dict[int, list], list]:
    """Discount rows per line, and the invoice's discounts summed by discount (for the totals box)."""
    try:
        from discounts.models import DiscountApplication
    except ImportError:
        return {}, []
    per_line: dict[int, list] = defaultdict(list)
    summary: dict[int, dict] = {}
    for row in DiscountApplication.objects.filter(invoice_id=invoice.pk).select_related("discount").order_by("id"):
        d = row.discount
        label = f"{d.value.normalize():f} % off" if d.kind == "percentage" else "Fixed discount"
        per_line[row.invoice_line_id].append({"label": f"Discount {d.reference}: {label}", "amount": row.amount})
        entry = summary.setdefault(d.pk, {"label": f"Discount {d.reference} ({label})", "amount": ZERO})
        entry["amount"] += row.amount
    return per_line, list(summary.values())


def _credits(invoice: Invoice) -> list[dict]:
    try:
        from discounts.models import CreditApplication
    except ImportError:
        return []
    return [
        {"label": f"Credit {row.credit.reference}", "amount": row.amount}
        for row in CreditApplication.objects.filter(invoice_id=invoice.pk).select_related("credit").order_by("id")
    ]


def invoice_pdf_context(*, invoice: Invoice) -> dict:
    lines = list(invoice.lines.order_by("position", "id"))
    discounts_per_line, discount_summary = _discounts_by_line(invoice)
    for line in lines:
        line.source_note = _source_note(line)
        line.discounts = discounts_per_line.get(line.pk, [])
    entity = invoice.issuing_entity
    tenant = getattr(connection, "tenant", None)
    credits = _credits(invoice)
    credit_total = sum((c["amount"] for c in credits), ZERO)
    return {
        "invoice": invoice,
        "lines": lines,
        "entity": entity,
        "customer": invoice.customer,
        "contract": invoice.contract,
        "discounts": discount_summary,
        "credits": credits,
        # Credits the discounts app did not itemise (none today) still show as one row.
        "other_credit": invoice.credit_applied - credit_total if invoice.credit_applied > credit_total else ZERO,
        "is_draft": invoice.status == InvoiceStatus.DRAFT,
        "page_size": "Letter" if (entity.country or "").upper() in LETTER_COUNTRIES else "A4",
        "tenant_name": getattr(tenant, "name", "") or entity.legal_name,
        "has_periods": any(line.period_start for line in lines),
    }


def invoice_pdf_render(*, invoice: Invoice) -> bytes:
    from weasyprint import HTML

    html = render_to_string("billing/pdf/invoice.html", invoice_pdf_context(invoice=invoice))
    return HTML(string=html, base_url=".").write_pdf()


def invoice_pdf_filename(invoice: Invoice) -> str:
    return f"{invoice.number or f'draft-{invoice.pk}'}.pdf"


def invoice_pdf_name(invoice: Invoice) -> str:
    return f"invoices/{invoice.issue_date:%Y/%m}/{invoice_pdf_filename(invoice)}"


def invoice_pdf_store(*, invoice: Invoice) -> str:
    """Render and store the PDF of an issued invoice once; returns the storage name."""
    if invoice.status == InvoiceStatus.DRAFT:
        raise ValueError("Drafts are rendered on demand, never stored: their content can still change.")
    name = invoice_pdf_name(invoice)
    if default_storage.exists(name):
        return name
    saved = default_storage.save(name, ContentFile(invoice_pdf_render(invoice=invoice)))
    if saved != name:  # another worker stored it a moment earlier: keep one file
        default_storage.delete(saved)
    return name


def invoice_pdf_bytes(*, invoice: Invoice) -> bytes:
    """What the download view serves: the stored PDF of an issued invoice (stored now if the
    worker has not yet), or a fresh DRAFT rendering of a draft."""
    if invoice.status == InvoiceStatus.DRAFT:
        return invoice_pdf_render(invoice=invoice)
    with default_storage.open(invoice_pdf_store(invoice=invoice), "rb") as handle:
        return handle.read()
