"""Read queries for invoices and billing facts (views, API, insights). Query counts do not grow with rows."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

from django.db.models import Count, F, Prefetch, Q, QuerySet

from billing.models import Invoice, InvoiceLine
from revexos.money import quantize
from revexos.parsing import parse_id


def contract_versions_many(*, contract_ids: list[int]) -> dict[int, list]:
    """Every version (with price lines, tiers and rates) of many contracts, oldest first, in 4 queries."""
    from collections import defaultdict

    from contracts.models import ContractVersion, PriceLine

    lines = PriceLine.objects.prefetch_related("tiers", "rates").order_by("position", "id")
    versions = (
        ContractVersion.objects.filter(contract_id__in=contract_ids)
        .prefetch_related(Prefetch("price_lines", queryset=lines))
        .order_by("contract_id", "effective_from")
    )
    result: dict[int, list] = defaultdict(list)
    for version in versions:
        result[version.contract_id].append(version)
    return dict(result)


def _lines() -> Prefetch:
    return Prefetch("lines", queryset=InvoiceLine.objects.order_by("position", "id"))


def invoice_list(
    *,
    status: str | None = None,
    contract: str | None = None,
    customer: str | None = None,
    issued_from: date | None = None,
    issued_to: date | None = None,
    payment_status: str | None = None,
) -> QuerySet[Invoice]:
    """Invoices newest first; ``contract`` by id or number, ``customer`` by id or external_id."""
    qs = Invoice.objects.select_related("contract", "customer").prefetch_related(_lines())
    if status:
        qs = qs.filter(status__in=[s.strip() for s in status.split(",") if s.strip()])
    if contract:
        cond = Q(contract__number=contract)
        if (contract_id := parse_id(contract)) is not None:
            cond |= Q(contract_id=contract_id)
        qs = qs.filter(cond)
    if customer:
        cond = Q(customer__external_id=customer)
        if (customer_id := parse_id(customer)) is not None:
            cond |= Q(customer_id=customer_id)
        qs = qs.filter(cond)
    if issued_from:
        qs = qs.filter(issue_date__gte=issued_from)
    if issued_to:
        qs = qs.filter(issue_date__lte=issued_to)
    if payment_status:
        from django.core.exceptions import ValidationError

        from revexos.dates import tenant_today

        wanted = [s.strip() for s in payment_status.split(",") if s.strip()]
        unknown = sorted(set(wanted) - {*PAYMENT_FILTERS})
        if unknown:
            raise ValidationError(
                {"payment_status": [f"Unknown payment status {', '.join(unknown)}; use {', '.join(PAYMENT_FILTERS)}."]}
            )
        today = tenant_today()
        cond = Q(pk__in=[])
        for value in wanted:
            cond |= payment_status_q(value, today=today)
        qs = qs.filter(cond)
    return qs.order_by("-billing_date", "-id")


PAYMENT_FILTERS = ("unpaid", "partially_paid", "paid", "overdue", "written_off", "open")


def invoice_get(*, invoice_id: int) -> Invoice:
    return Invoice.objects.select_related("contract", "customer").prefetch_related(_lines()).get(pk=invoice_id)


def _plain(value: Decimal) -> str:
    text = format(value.normalize(), "f")
    return text


def _unit(value: Decimal, currency: str) -> str:
    # Unit prices keep their precision (0.0015 per call) but read as money when they are whole cents.
    q = quantize(value, currency)
    return str(q) if q == value else _plain(value)


def tax_lines_as_json(rows: list[dict]) -> list[dict]:
    """An invoice's tax summary in the API's shape (DESIGN.md §5.1): name, rate, taxable, amount,
    and ``reverse_charge: true`` where the buyer accounts for the tax."""
    out = []
    for row in rows or []:
        item = {k: row.get(k) for k in ("name", "rate", "category", "taxable", "amount")}
        if row.get("reverse_charge"):
            item["reverse_charge"] = True
        out.append(item)
    return out


def invoice_as_json(invoice: Invoice, *, today: date | None = None) -> dict:
    """The invoice in the public API's shape (DESIGN.md §5, payment fields §5.1)."""
    from billing.hooks import invoice_pay_url

    c = invoice.currency
    return {
        "id": str(invoice.pk),
        "number": invoice.number,
        "status": invoice.status,
        "contract": invoice.contract.number,
        "currency": c,
        "issue_date": invoice.issue_date.isoformat() if invoice.issue_date else None,
        "due_date": invoice.due_date.isoformat() if invoice.due_date else None,
        "po_number": invoice.po_number,
        "subtotal": str(quantize(invoice.subtotal, c)),
        "discount_total": str(quantize(invoice.discount_total, c)),
        "tax_total": str(quantize(invoice.tax_total, c)),
        "total": str(quantize(invoice.total, c)),
        "credit_applied": str(quantize(invoice.credit_applied, c)),
        "amount_due": str(quantize(invoice.amount_due, c)),
        "amount_paid": str(quantize(invoice.amount_paid, c)),
        "amount_open": str(quantize(invoice.amount_open, c)) if invoice.status not in ("draft", "void") else "0.00",
        "written_off": str(quantize(invoice.written_off, c)),
        "payment_status": invoice.payment_status(today) or None,
        "paid_on": invoice.paid_on.isoformat() if invoice.paid_on else None,
        "pay_url": invoice_pay_url(invoice) or None,
        "disputed": invoice.disputed_at is not None,
        "tax_treatment": invoice.tax_treatment,
        "tax_note": invoice.tax_note,
        "tax_lines": tax_lines_as_json(invoice.tax_lines),
        "lines": [
            {
                "description": line.description,
                "kind": line.kind,
                "quantity": _plain(line.quantity),
                "unit_amount": _unit(line.unit_amount, c),
                "amount": str(quantize(line.amount, c)),
                "period_start": line.period_start.isoformat() if line.period_start else None,
                "period_end": line.period_end.isoformat() if line.period_end else None,
                "price_line": str(line.price_line_id) if line.price_line_id else None,
            }
            for line in invoice.lines.all()
        ],
    }


# --------------------------------------------------------------------------- finance workspace


def payment_status_q(payment_status: str, *, today: date) -> Q:
    """The database form of ``invoice_payment_status`` (billing.models): one rule, two spellings."""
    receivable = ~Q(status__in=["draft", "void"])
    settled = Q(amount_open__lte=0)
    if payment_status == "paid":
        return receivable & settled & Q(written_off=0)
    if payment_status == "written_off":
        return receivable & settled & Q(written_off__gt=0)
    if payment_status == "overdue":
        return receivable & Q(amount_open__gt=0, due_date__lt=today)
    if payment_status == "partially_paid":
        return receivable & Q(amount_open__gt=0, amount_paid__gt=0, due_date__gte=today)
    if payment_status == "unpaid":
        return receivable & Q(amount_open__gt=0, amount_paid=0, due_date__gte=today)
    if payment_status == "open":
        return receivable & Q(amount_open__gt=0)
    return Q(pk__in=[])


DUE_WINDOWS = {
    "overdue": "Overdue",
    "7": "Due in the next 7 days",
    "30": "Due in the next 30 days",
    "later": "Due later than 30 days",
}
OPEN_STATUSES = ("issued", "sent", "partially_paid")


def _latest_delivery(field: str):
    from django.db.models import OuterRef, Subquery

    from billing.models import InvoiceDelivery

    return Subquery(
        InvoiceDelivery.objects.filter(invoice=OuterRef("pk")).order_by("-created_at", "-id").values(field)[:1]
    )


def invoice_workspace_list(
    *,
    status: str = "",
    customer: str = "",
    contract: str = "",
    due: str = "",
    held: str = "",
    payment: str = "",
    sort: str = "",
    today: date | None = None,
) -> QuerySet[Invoice]:
    """Invoices for the finance list, newest first (or by ``sort``: number, issue_date, due_date or
    total, ``-`` for descending), each with its latest delivery's state (no per-row queries: the
    delivery comes in as two subquery columns)."""
    from datetime import timedelta

    from django.utils import timezone

    today = today or timezone.localdate()
    qs = Invoice.objects.select_related("contract", "customer").annotate(
        delivery_status=_latest_delivery("status"),
        delivery_error=_latest_delivery("last_error"),
    )
    if status:
        qs = qs.filter(status=status)
    if (customer_id := parse_id(customer)) is not None:
        qs = qs.filter(customer_id=customer_id)
    if contract:
        contract_id = parse_id(contract)
        qs = qs.filter(
            Q(contract__number__iexact=contract) | (Q(contract_id=contract_id) if contract_id else Q(pk__in=[]))
        )
    if held == "yes":
        qs = qs.filter(status="draft").exclude(hold_reasons=[])
    elif held == "no":
        qs = qs.filter(hold_reasons=[])
    if payment:
        qs = qs.filter(payment_status_q(payment, today=today))
    if due in DUE_WINDOWS:
        open_ = qs.filter(status__in=OPEN_STATUSES)
        if due == "overdue":
            qs = open_.filter(due_date__lt=today)
        elif due == "later":
            qs = open_.filter(due_date__gt=today + timedelta(days=30))
        else:
            qs = open_.filter(due_date__gte=today, due_date__lte=today + timedelta(days=int(due)))
    if sort in INVOICE_ORDERINGS:
        return qs.order_by(*INVOICE_ORDERINGS[sort])
    # Drafts first (they wait for someone), then the newest issued first: a newly issued invoice
    # sits at the top, not among the billing dates of its periods.
    return qs.order_by(F("issue_date").desc(nulls_first=True), F("number").desc(nulls_last=True), "-id")


# Finance sorts the list by these; drafts (no number, no dates yet) go last either way.
INVOICE_ORDERINGS = {
    "number": [F("number").asc(nulls_last=True), "id"],
    "-number": [F("number").desc(nulls_last=True), "-id"],
    "issue_date": [F("issue_date").asc(nulls_last=True), F("number").asc(nulls_last=True), "id"],
    "-issue_date": [F("issue_date").desc(nulls_last=True), F("number").desc(nulls_last=True), "-id"],
    "due_date": [F("due_date").asc(nulls_last=True), F("number").asc(nulls_last=True), "id"],
    "-due_date": [F("due_date").desc(nulls_last=True), F("number").desc(nulls_last=True), "-id"],
    "total": [F("total").asc(), "id"],
    "-total": [F("total").desc(), "-id"],
}


def invoice_totals(qs: QuerySet[Invoice]) -> list[dict]:
    """Count, total and amount due per currency for a filtered list, in one grouped query (never
    adding two currencies)."""
    from django.db.models import Count, Sum

    rows = (
        qs.order_by()
        .values("currency")
        .annotate(
            count=Count("id"),
            # A void invoice was cancelled by a credit note: listed, never counted in the money.
            void=Count("id", filter=Q(status="void")),
            total=Sum("total", filter=~Q(status="void")),
            due=Sum("amount_due", filter=~Q(status="void")),
            open=Sum("amount_open", filter=~Q(status__in=["draft", "void"])),
        )
        .order_by("currency")
    )
    return [
        {
            "currency": r["currency"],
            "count": r["count"],
            "void": r["void"],
            "total": quantize(r["total"] or 0, r["currency"]),
            "due": quantize(r["due"] or 0, r["currency"]),
            "open": quantize(r["open"] or 0, r["currency"]),
        }
        for r in rows
    ]


def invoice_workspace_detail(*, invoice_id: int) -> Invoice:
    from billing.models import BillingReviewTask, CreditNote, InvoiceDelivery

    return (
        Invoice.objects.select_related("contract", "customer", "issuing_entity", "version")
        .prefetch_related(
            _lines(),
            Prefetch(
                "deliveries",
                queryset=InvoiceDelivery.objects.select_related("requested_by").order_by("-created_at", "-id"),
            ),
            Prefetch(
                "credit_notes", queryset=CreditNote.objects.select_related("created_by").order_by("-issue_date", "-id")
            ),
            Prefetch(
                "review_tasks", queryset=BillingReviewTask.objects.select_related("assignee").order_by("-created_at")
            ),
        )
        .get(pk=invoice_id)
    )


def review_task_list(*, status: str = "open", kind: str = "", assignee: str = "", user=None) -> QuerySet:
    from billing.models import BillingReviewTask

    qs = BillingReviewTask.objects.select_related("contract", "contract__customer", "invoice", "assignee")
    if status:
        qs = qs.filter(status=status)
    if kind:
        qs = qs.filter(kind=kind)
    if assignee == "me" and user is not None:
        qs = qs.filter(assignee=user)
    elif assignee == "none":
        qs = qs.filter(assignee__isnull=True)
    elif (assignee_id := parse_id(assignee)) is not None:
        qs = qs.filter(assignee_id=assignee_id)
    return qs.order_by("-created_at", "-id")


def review_task_counts() -> dict[str, int]:
    """Open tasks, and how many nobody has taken yet: one query."""
    from billing.models import BillingReviewTask

    return BillingReviewTask.objects.filter(status="open").aggregate(
        open=Count("id"), unassigned=Count("id", filter=Q(assignee__isnull=True))
    )


def delivery_list(*, status: str = "") -> QuerySet:
    from billing.models import InvoiceDelivery

    qs = InvoiceDelivery.objects.select_related("invoice", "invoice__customer", "requested_by")
    if status:
        qs = qs.filter(status=status)
    return qs.order_by("-created_at", "-id")


def billing_home_summary(*, today: date | None = None) -> dict:
    """The finance panel of the home page: held drafts, issued this month per currency, failed
    sends. Three grouped queries, whatever the number of invoices."""
    from django.db.models import Count, Sum
    from django.utils import timezone

    from billing.models import DeliveryStatus, InvoiceDelivery

    today = today or timezone.localdate()
    drafts = Invoice.objects.filter(status="draft").aggregate(
        held=Count("id", filter=~Q(hold_reasons=[])),
        waiting=Count("id", filter=Q(hold_reasons=[])),
    )
    issued = (
        Invoice.objects.filter(issue_date__gte=today.replace(day=1), issue_date__lte=today)
        .exclude(status="draft")
        .values("currency")
        .annotate(count=Count("id"), total=Sum("total"))
        .order_by("currency")
    )
    failed = InvoiceDelivery.objects.filter(status=DeliveryStatus.FAILED).count()
    return {
        "held": drafts["held"],
        "waiting": drafts["waiting"],
        "failed_sends": failed,
        "issued": [
            {"currency": r["currency"], "count": r["count"], "total": quantize(r["total"] or 0, r["currency"])}
            for r in issued
        ],
        "issued_count": sum(r["count"] for r in issued),
    }


def delivery_counts() -> dict[str, int]:
    from django.db.models import Count

    from billing.models import InvoiceDelivery

    return dict(InvoiceDelivery.objects.order_by().values_list("status").annotate(n=Count("id")))
