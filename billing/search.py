"""What the shell's search finds in billing: invoices by number, PO number or customer name
(``revexos/search.py``).

One query, ranked: the exact number or PO first, then numbers starting with the text, then the
rest (a customer's invoices), newest first.
"Draft #123" (or "#123") finds a draft by its id, as the invoice list names drafts.
"""

from __future__ import annotations

import re

from django.db.models import Case, IntegerField, Q, Value, When
from django.urls import reverse

from billing.models import Invoice
from revexos.money import format_money
from revexos.parsing import parse_id
from revexos.search import SearchHit

_DRAFT = re.compile(r"^(?:draft\s*)?#(\d{1,18})$", re.IGNORECASE)


def invoices_find(*, text: str, limit: int) -> list[SearchHit]:
    condition = Q(number__icontains=text) | Q(po_number__icontains=text) | Q(customer__legal_name__icontains=text)
    if (match := _DRAFT.match(text)) and (pk := parse_id(match.group(1))) is not None:
        condition |= Q(pk=pk, status="draft")
    rows = (
        Invoice.objects.filter(condition)
        .annotate(
            rank=Case(
                When(number__iexact=text, then=Value(0)),
                When(po_number__iexact=text, then=Value(1)),
                When(number__istartswith=text, then=Value(2)),
                default=Value(3),
                output_field=IntegerField(),
            )
        )
        .order_by("rank", "-billing_date", "-pk")
        .values(
            "pk",
            "number",
            "status",
            "po_number",
            "total",
            "currency",
            "billing_date",
            "customer__legal_name",
            "contract__number",
        )[:limit]
    )
    hits = []
    for r in rows:
        matched_po = r["po_number"] and text.lower() in r["po_number"].lower()
        hits.append(
            SearchHit(
                title=r["number"] or f"Draft #{r['pk']}",
                url=reverse("billing:invoice_detail", kwargs={"invoice_id": r["pk"]}),
                detail=f"{r['customer__legal_name']} · {r['contract__number']} · "
                f"{format_money(r['total'], r['currency'])} {r['currency']} · {r['status']} · "
                f"{r['billing_date']:%-d %b %Y}",
                matched=f"PO {r['po_number']}" if matched_po else "",
            )
        )
    return hits
