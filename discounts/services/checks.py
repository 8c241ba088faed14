"""Pre-send check "discounts inside their windows" (DESIGN.md §4), called by billing's checks."""

from __future__ import annotations

from decimal import Decimal

from discounts import applicator
from discounts.models import DiscountApplication, ExceptionStatus
from revexos.money import quantize


def invoice_discount_problems(invoice) -> list[str]:
    """Every discount on the draft must still be in force and inside its window for the line it reduces."""
    problems: list[str] = []
    rows = getattr(invoice, "_presend_discount_rows", None)  # a billing run passes the rows it is about to store
    if rows is None:
        rows = list(
            DiscountApplication.objects.filter(invoice_id=invoice.pk).select_related("discount", "invoice_line")
        )
    total = Decimal(0)
    for row in rows:
        d, line = row.discount, row.invoice_line
        total += row.amount
        if d.status == ExceptionStatus.REVOKED:
            problems.append(
                f"Discount {d.reference} was revoked after this draft was made: recompute the draft's discounts "
                "(Discounts & credits → the discount → Recompute drafts) before issuing."
            )
            continue
        if line.period_start is not None:
            cov = applicator.coverage(
                start=d.start_date,
                end=d.end_date,
                period_start=line.period_start,
                period_end=line.period_end or line.period_start,
            )
        else:
            day = invoice.billing_date
            cov = Decimal(1) if d.start_date <= day and (d.end_date is None or day <= d.end_date) else Decimal(0)
        if cov <= 0:
            window = (
                f"{d.start_date:%-d %b %Y} to {d.end_date:%-d %b %Y}"
                if d.end_date
                else f"from {d.start_date:%-d %b %Y}"
            )
            problems.append(
                f"Discount {d.reference} reduces “{line.description}” outside its window ({window}): "
                "recompute the draft's discounts before issuing."
            )
    if rows and quantize(total, invoice.currency) != quantize(invoice.discount_total, invoice.currency):
        problems.append(
            f"The invoice's discount total {invoice.discount_total} does not match its discount lines {total}: recompute the draft."
        )
    return problems
