"""What the shell's search finds in contracts: customers and contracts (``revexos/search.py``).

One query per kind, ranked: an exact reference first, then names starting with the text, then the
rest alphabetically. A contract is also found by a PO number on any of its versions.
"""

from __future__ import annotations

from django.db.models import Case, Exists, IntegerField, OuterRef, Q, Subquery, Value, When
from django.urls import reverse

from contracts.models import Contract, ContractVersion, Customer
from revexos.search import SearchHit


def customers_find(*, text: str, limit: int) -> list[SearchHit]:
    rows = (
        Customer.objects.filter(Q(legal_name__icontains=text) | Q(external_id__icontains=text) | Q(tax_id__iexact=text))
        .annotate(
            rank=Case(
                When(external_id__iexact=text, then=Value(0)),
                When(legal_name__istartswith=text, then=Value(1)),
                default=Value(2),
                output_field=IntegerField(),
            )
        )
        .order_by("rank", "legal_name", "pk")
        .values("pk", "legal_name", "external_id", "currency", "is_active")[:limit]
    )
    return [
        SearchHit(
            title=r["legal_name"],
            url=reverse("contracts:customer_detail", args=[r["pk"]]),
            detail=f"{r['external_id']} · {r['currency']}" + ("" if r["is_active"] else " · inactive"),
        )
        for r in rows
    ]


def contracts_find(*, text: str, limit: int) -> list[SearchHit]:
    po = ContractVersion.objects.filter(contract=OuterRef("pk"), po_number__icontains=text)
    rows = (
        Contract.objects.annotate(po_match=Exists(po), po_number=Subquery(po.values("po_number")[:1]))
        .filter(
            Q(number__icontains=text)
            | Q(title__icontains=text)
            | Q(customer__legal_name__icontains=text)
            | Q(po_match=True)
        )
        .annotate(
            rank=Case(
                When(number__iexact=text, then=Value(0)),
                When(po_number__iexact=text, then=Value(1)),
                When(number__istartswith=text, then=Value(2)),
                default=Value(3),
                output_field=IntegerField(),
            )
        )
        .order_by("rank", "number", "pk")
        .values("pk", "number", "title", "status", "customer__legal_name", "po_number")[:limit]
    )
    hits = []
    for r in rows:
        matched_po = r["po_number"] and text.lower() in r["po_number"].lower()
        hits.append(
            SearchHit(
                title=f"{r['number']} · {r['title']}",
                url=reverse("contracts:contract_detail", args=[r["pk"]]),
                detail=f"{r['customer__legal_name']} · {r['status']}",
                matched=f"PO {r['po_number']}" if matched_po else "",
            )
        )
    return hits
