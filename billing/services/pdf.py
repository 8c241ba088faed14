"""Invoice PDFs, rendered by WeasyPrint from templates/billing/pdf/invoice.html.

Rendering is pure (an invoice in, PDF bytes out); storing puts the file under the tenant's own
folder (the tenant file storage prefixes every path with the schema name), so two tenants with
the same invoice number never share a file. Issued invoices never change, so their PDF is
rendered once (by the send task, in a worker) and served from storage afterwards; drafts are
rendered on demand with a DRAFT mark.
"""

from __future__ import annotations

import base64
import re
from collections import defaultdict
from decimal import Decimal
from types import SimpleNamespace
from zoneinfo import ZoneInfo

from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.db import connection
from django.template.loader import render_to_string
from django.utils import timezone

from billing.hooks import invoice_pay_url
from billing.models import Invoice, InvoiceLineKind, InvoiceStatus, PaymentStatus
from billing.templatetags.money import quantity
from discounts.models import CreditApplication, DiscountApplication
from revexos.pdf import pdf_document
from revexos.tenancy.models import DEFAULT_ACCENT, Tenant

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
        # Stored as the database's decimal text ("34.000000"): printed as a person writes hours.
        parts.append(f"{quantity(source['hours_used'])} h used, {quantity(source['included_hours'])} h included")
    if source.get("events"):
        parts.append(f"{source['events']} usage events")
    # Proration is printed once: in the description when the trigger wrote it there.
    prorated = "prorated" in (line.description or "")
    if not prorated and source.get("days") and source.get("period_days") and source["days"] != source["period_days"]:
        parts.append(f"prorated {source['days']}/{source['period_days']} days")
    return " · ".join(parts)


def _discounts_by_line(invoice: Invoice) -> tuple[dict[int, list], list]:
    """Discount rows per line, and the invoice's discounts summed by discount (for the totals box).

    The invoice's ``discount_total`` is the sum of its discount rows (stored together, in
    billing.services.adjustments): an invoice without discounts, most of them, needs no query."""
    per_line: dict[int, list] = defaultdict(list)
    summary: dict[int, dict] = {}
    if not invoice.discount_total:
        return per_line, []
    for row in DiscountApplication.objects.filter(invoice_id=invoice.pk).select_related("discount").order_by("id"):
        d = row.discount
        label = f"{d.value.normalize():f} % off" if d.kind == "percentage" else "Fixed discount"
        per_line[row.invoice_line_id].append({"label": f"Discount {d.reference}: {label}", "amount": row.amount})
        entry = summary.setdefault(d.pk, {"label": f"Discount {d.reference} ({label})", "amount": ZERO})
        entry["amount"] += row.amount
    return per_line, list(summary.values())


def _credits(invoice: Invoice) -> list[dict]:
    """The credits applied, one row each; none to look up when ``credit_applied`` (their sum) is zero."""
    if not invoice.credit_applied:
        return []
    return [
        {"label": f"Credit {row.credit.reference}", "amount": row.amount}
        for row in CreditApplication.objects.filter(invoice_id=invoice.pk).select_related("credit").order_by("id")
    ]


def _service_period(lines) -> str:
    """'1 Jan – 31 Mar 2026': the span of the invoice's billing periods, for the FOR block."""
    starts = [line.period_start for line in lines if line.period_start]
    ends = [line.period_end for line in lines if line.period_end]
    if not starts or not ends:
        return ""
    first, last = min(starts), max(ends)
    if first == last:
        return f"{first.day} {first:%b %Y}"
    if first.year == last.year:
        return f"{first.day} {first:%b} – {last.day} {last:%b %Y}"
    return f"{first.day} {first:%b %Y} – {last.day} {last:%b %Y}"


def _hex_mix(color: str, weight: float) -> str:
    """``color`` mixed with white (weight 0 = white, 1 = the colour): tints for backgrounds."""
    red, green, blue = (int(color[i : i + 2], 16) for i in (1, 3, 5))
    mixed = (round(255 - (255 - c) * weight) for c in (red, green, blue))
    return "#" + "".join(f"{c:02x}" for c in mixed)


def _current_tenant() -> Tenant | None:
    tenant = getattr(connection, "tenant", None)
    if isinstance(tenant, Tenant):
        return tenant
    # schema_context() (tasks, commands) sets a stand-in without the tenant's settings.
    return Tenant.objects.filter(schema_name=connection.schema_name).first()


LOGOS_KEPT = 16  # data URIs kept per worker process
_logos: dict[tuple, str] = {}


def _logo_uri(name: str) -> str:
    """The logo as a data URI, read from storage once per worker while the file stays the same.

    Kept under the schema's name (each tenant's files live in its own folder), the file's name and
    its modification time, so a replaced logo is read again and no tenant ever gets another's."""
    try:
        modified = default_storage.get_modified_time(name)
    except (OSError, NotImplementedError):
        modified = None
    key = (connection.schema_name, name, modified)
    if modified is not None and key in _logos:
        return _logos[key]
    try:
        with default_storage.open(name, "rb") as handle:
            data = handle.read()
    except OSError:  # a logo lost from storage must not stop invoicing
        return ""
    if not data:
        return ""
    kind = "jpeg" if data[:3] == b"\xff\xd8\xff" else "png"
    uri = f"data:image/{kind};base64,{base64.b64encode(data).decode()}"
    if modified is not None:
        if len(_logos) >= LOGOS_KEPT:
            _logos.clear()
        _logos[key] = uri
    return uri


def _branding(tenant) -> dict:
    """The tenant's accent colour (and tints of it) and logo, inlined so the PDF needs no file access."""
    accent = getattr(tenant, "invoice_accent_color", "") or DEFAULT_ACCENT
    if not re.fullmatch(r"#[0-9a-fA-F]{6}", accent):
        accent = DEFAULT_ACCENT
    logo = getattr(tenant, "invoice_logo", None)
    logo_uri = _logo_uri(logo.name) if logo else ""
    return {
        "accent": accent,
        "accent_tint": _hex_mix(accent, 0.09),
        "accent_border": _hex_mix(accent, 0.3),
        "logo_uri": logo_uri,
    }


CAPPED_SUFFIX = " (capped at the not-to-exceed amount)"


def _capped_rows(lines: list) -> list:
    """Time-and-materials lines held under a cap print at full rate (hours × rate = amount) and the
    cap prints once as its own reduction row after them, so every printed row is checkable and the
    rows still add up to the subtotal."""
    rows: list = []
    pending: dict[tuple, dict] = {}
    for line in lines:
        uncapped = (line.source or {}).get("uncapped_amount")
        if line.kind == InvoiceLineKind.TIME_AND_MATERIALS and uncapped and Decimal(uncapped) > line.amount:
            group = pending.setdefault((line.line_ref, line.period_start), {"reduction": ZERO, "after": None})
            group["reduction"] += Decimal(uncapped) - line.amount
            line.amount = Decimal(uncapped)  # printed only; the stored line is untouched
            line.description = line.description.removesuffix(CAPPED_SUFFIX)
            rows.append(line)
            group["after"] = len(rows)
            continue
        rows.append(line)
    # Insert from the end so earlier positions stay valid.
    for (ref, _start), group in sorted(pending.items(), key=lambda kv: -kv[1]["after"]):
        cap_row = SimpleNamespace(
            description="Not-to-exceed cap: time above the agreed maximum is not billed",
            source_note="",
            discounts=[],
            is_reduction=True,
            amount=-group["reduction"],
            quantity=None,
            unit_amount=None,
            pk=None,
            line_ref=ref,
            kind=InvoiceLineKind.TIME_AND_MATERIALS,
            period_start=None,
            period_end=None,
        )
        rows.insert(group["after"], cap_row)
    return rows


def invoice_pdf_context(*, invoice: Invoice) -> dict:
    lines = list(invoice.lines.order_by("position", "id"))
    discounts_per_line, discount_summary = _discounts_by_line(invoice)
    for line in lines:
        line.source_note = _source_note(line)
        line.discounts = discounts_per_line.get(line.pk, [])
        # Reductions (a not-to-exceed cap) print their amount only: no quantity × unit price.
        line.is_reduction = line.amount < 0
    lines = _capped_rows(lines)
    entity = invoice.issuing_entity
    customer = invoice.customer
    tenant = _current_tenant()
    credits = _credits(invoice)
    # The tenant is at hand: its day, without payment_status() looking the tenant up again.
    today = timezone.now().astimezone(ZoneInfo(tenant.time_zone or "UTC")).date() if tenant else None
    paid = invoice.payment_status(today=today) == PaymentStatus.PAID and invoice.amount_paid > 0
    credit_total = sum((c["amount"] for c in credits), ZERO)
    is_void = invoice.status == InvoiceStatus.VOID
    return {
        "invoice": invoice,
        "lines": lines,
        "entity": entity,
        "entity_address": entity.address_lines,
        "customer": customer,
        # Seen from the issuer: a domestic customer's address leaves the country out.
        "customer_address": customer.address_lines_from(entity.country),
        "contract": invoice.contract,
        "service_period": _service_period(lines),
        "discounts": discount_summary,
        "credits": credits,
        # Credits the discounts app did not itemise (none today) still show as one row.
        "other_credit": invoice.credit_applied - credit_total if invoice.credit_applied > credit_total else ZERO,
        "is_draft": invoice.status == InvoiceStatus.DRAFT,
        "is_void": is_void,
        # A void invoice was cancelled by a credit note: nothing is due on it.
        "amount_due": ZERO if is_void else invoice.amount_due,
        # A paid invoice downloaded again carries a PAID stamp; an open one its pay link.
        "paid_stamp": paid,
        "pay_url": "" if paid else invoice_pay_url(invoice),
        "page_size": "Letter" if (entity.country or "").upper() in LETTER_COUNTRIES else "A4",
        **_branding(tenant),
        **invoice_tax_context(invoice),
    }


def invoice_tax_context(invoice: Invoice) -> dict:
    """The tax summary per rate and the legal mention, for the PDF and the invoice page.

    The mention is printed only when it is a legal one (reverse charge, outside the scope, exempt);
    "no rate set up" notes and held-draft reasons are for finance, on the invoice page."""
    from revexos.tax import EXEMPT_CUSTOMER, OUTSIDE_SCOPE, REVERSE_CHARGE

    rows = [
        {
            **row,
            "percent": Decimal(str(row.get("rate") or "0")),
            "taxable": Decimal(str(row.get("taxable") or "0")),
            "amount": Decimal(str(row.get("amount") or "0")),
        }
        for row in invoice.tax_lines or []
    ]
    printed = invoice.tax_treatment in (REVERSE_CHARGE, OUTSIDE_SCOPE, EXEMPT_CUSTOMER)
    return {"tax_lines": rows, "tax_mention": invoice.tax_note if printed else ""}


def invoice_pdf_render(*, invoice: Invoice) -> bytes:
    """The invoice's PDF. The fonts, URL fetcher and compiled stylesheets are reused from one
    invoice to the next in a worker (``revexos.pdf``): a one-page invoice costs about what a bare
    one-page WeasyPrint document does (``make bench`` prints the ratio). The template is written as
    XHTML (void elements closed, tables with their tbody), read by the XML parser."""
    context = invoice_pdf_context(invoice=invoice)
    document = pdf_document(render_to_string("billing/pdf/invoice.html", context), xhtml=True)
    if len(document.pages) > 1:
        # Lines then totals would push the totals and payment instructions past page 1: lay the
        # invoice out summary first (totals and how to pay on page 1, lines as the detail).
        context["summary_first"] = True
        document = pdf_document(render_to_string("billing/pdf/invoice.html", context), xhtml=True)
    return document.write_pdf()


def invoice_pdf_filename(invoice: Invoice) -> str:
    return f"{invoice.number or f'draft-{invoice.pk}'}.pdf"


def invoice_pdf_name(invoice: Invoice, *, paid: bool = False) -> str:
    suffix = "-paid" if paid else ""
    return f"invoices/{invoice.issue_date:%Y/%m}/{invoice.number or f'draft-{invoice.pk}'}{suffix}.pdf"


def _is_paid(invoice: Invoice) -> bool:
    return invoice.payment_status() == PaymentStatus.PAID and invoice.amount_paid > 0


def invoice_pdf_store(*, invoice: Invoice, paid: bool = False) -> str:
    """Render and store the PDF of an issued invoice once; returns the storage name.

    ``paid=True`` stores the re-download of a paid invoice (with its PAID stamp) beside the
    as-issued file, which stays as it was sent."""
    if invoice.status == InvoiceStatus.DRAFT:
        raise ValueError("Drafts are rendered on demand, never stored: their content can still change.")
    name = invoice_pdf_name(invoice, paid=paid)
    if default_storage.exists(name):
        return name
    _store_whole(name, invoice_pdf_render(invoice=invoice))
    return name


def _store_whole(name: str, data: bytes) -> None:
    """Store a file so that a reader sees all of it or nothing: on local disk it is written beside
    its final name and renamed into place (a page preview and the e-mail task may store the same
    PDF at the same moment; the loser's rename replaces an identical file)."""
    import os
    import uuid

    try:
        path = default_storage.path(name)
    except NotImplementedError:  # object storage: a PUT is already all or nothing
        saved = default_storage.save(name, ContentFile(data))
        if saved != name:  # another worker stored it a moment earlier: keep one file
            default_storage.delete(saved)
        return
    os.makedirs(os.path.dirname(path), exist_ok=True)
    partial = f"{path}.{uuid.uuid4().hex}.part"
    with open(partial, "wb") as handle:
        handle.write(data)
    os.replace(partial, path)


def invoice_pdf_bytes(*, invoice: Invoice) -> bytes:
    """What the download view serves: the stored PDF of an issued invoice (stored now if the
    worker has not yet), or a fresh DRAFT rendering of a draft."""
    if invoice.status == InvoiceStatus.DRAFT:
        return invoice_pdf_render(invoice=invoice)
    with default_storage.open(invoice_pdf_store(invoice=invoice, paid=_is_paid(invoice)), "rb") as handle:
        return handle.read()
