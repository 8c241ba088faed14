"""Collections endpoints of the public API (DESIGN.md §5.1): payments, refunds, AR aging, DSO.

Bodies are parsed with ``parse_float=Decimal`` (money never passes through a float) and validated
by ``receivables/wire.py``, which names every bad field; nothing is stored when anything is wrong.
"""

from __future__ import annotations

from datetime import date

from django.shortcuts import get_object_or_404
from ninja import Field, Query, Router, Schema, Status

from receivables import figures
from receivables.models import Payment
from receivables.selectors import ar_aging, dso_series, payment_list
from receivables.services.ledger import payment_record, payment_refund
from receivables.wire import payment_read, payment_to_wire, refund_read
from revexos.api_kit import Day, Int, PageFilters, Ref, id_or_404, json_body
from revexos.dates import tenant_today

router = Router(tags=["collections"])

_DEC = {"type": "string", "format": "decimal"}
PAYMENT_DOC = {
    "type": "object",
    "required": ["customer", "amount", "currency", "received_on", "method"],
    "properties": {
        "customer": {"type": "string", "description": "id or external_id"},
        "amount": {**_DEC, "example": "1500.00"},
        "currency": {"type": "string", "example": "USD"},
        "received_on": {"type": "string", "format": "date"},
        "method": {"type": "string", "enum": ["card", "bank_transfer", "ach", "sepa_debit", "check", "other"]},
        "reference": {"type": "string"},
        "external_id": {"type": "string", "description": "Idempotency key: the same external_id is recorded once"},
        "payer_name": {"type": "string"},
        "allocations": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["invoice", "amount"],
                "properties": {"invoice": {"type": "string", "description": "number or id"}, "amount": _DEC},
            },
            "description": "Omit to allocate to the customer's open invoices, oldest due date first; [] keeps the whole payment on the customer's account",
        },
    },
}
REFUND_DOC = {
    "type": "object",
    "required": ["amount", "reason"],
    "properties": {"amount": _DEC, "reason": {"type": "string"}, "refunded_on": {"type": "string", "format": "date"}},
}


class AllocationOut(Schema):
    invoice: str | None
    amount: str
    applied_on: date
    kind: str


class RefundOut(Schema):
    id: str
    kind: str
    amount: str
    refunded_on: date
    reason: str


class PaymentOut(Schema):
    id: str
    customer: str
    amount: str
    currency: str
    received_on: date
    method: str
    reference: str
    external_id: str | None
    payer_name: str
    source: str
    allocated: str
    refunded: str
    unapplied: str = Field(description="Cash on the customer's account that pays the next invoices")
    allocations: list[AllocationOut]
    refunds: list[RefundOut]


class PaymentPage(Schema):
    items: list[PaymentOut]
    count: int


class PaymentFilters(PageFilters):
    customer: Ref = Field("", description="Customer id or external_id")


def _payment(payment_id: str) -> Payment:
    return get_object_or_404(
        Payment.objects.select_related("customer").prefetch_related("allocations__invoice", "refunds"),
        pk=id_or_404(payment_id, "payment"),
    )


@router.get("/payments", response=PaymentPage, summary="List payments, newest first")
def payments_list(request, filters: Query[PaymentFilters]):
    qs = payment_list(customer=filters.customer)
    rows = list(qs[filters.offset : filters.offset + filters.limit])
    return {"items": [payment_to_wire(p) for p in rows], "count": qs.count()}


@router.post(
    "/payments",
    response={200: PaymentOut, 201: PaymentOut},
    summary="Record a payment (idempotent by external_id); allocated as given or oldest due first",
    openapi_extra={"requestBody": {"required": True, "content": {"application/json": {"schema": PAYMENT_DOC}}}},
)
def payments_post(request):
    clean = payment_read(json_body(request), today=tenant_today())
    result = payment_record(
        customer=clean.customer,
        amount=clean.amount,
        currency=clean.currency,
        received_on=clean.received_on,
        method=clean.method,
        reference=clean.reference,
        external_id=clean.external_id,
        payer_name=clean.payer_name,
        notes=clean.notes,
        allocations=clean.allocations,
        source="api",
    )
    return Status(201 if result.created else 200, payment_to_wire(_payment(str(result.payment.pk))))


@router.get("/payments/{payment_id}", response=PaymentOut, summary="A payment with its allocations and refunds")
def payments_detail(request, payment_id: str):
    return payment_to_wire(_payment(payment_id))


@router.post(
    "/payments/{payment_id}/refunds",
    response={201: PaymentOut},
    summary="Refund (part of) a payment: unapplied cash first, then allocations newest first (invoices reopen)",
    openapi_extra={"requestBody": {"required": True, "content": {"application/json": {"schema": REFUND_DOC}}}},
)
def payments_refund(request, payment_id: str):
    payment = _payment(payment_id)
    clean = refund_read(json_body(request), currency=payment.currency, today=tenant_today())
    payment_refund(payment_id=payment.pk, amount=clean.amount, reason=clean.reason, refunded_on=clean.refunded_on)
    return Status(201, payment_to_wire(_payment(payment_id)))


# ----------------------------------------------------------------------------- figures


class AgingCustomerOut(Schema):
    customer: str
    name: str
    total: str
    buckets: dict[str, str]


class AgingCurrencyOut(Schema):
    currency: str
    total: str
    buckets: dict[str, str] = Field(description="current, 1_30, 31_60, 61_90, over_90 (days past due)")
    customers: list[AgingCustomerOut]


class AgingFilters(Schema):
    as_of: Day | None = Field(None, description="Defaults to today; open amounts as of that date")


def _buckets(row) -> dict[str, str]:
    return {name: str(row.buckets[name]) for name in figures.BUCKETS}


@router.get(
    "/ar-aging",
    response=list[AgingCurrencyOut],
    summary="AR aging per currency (with its customers) as of a date — one object per currency, as DESIGN.md §5.1",
)
def ar_aging_get(request, filters: Query[AgingFilters]):
    from django.core.exceptions import ValidationError

    today = tenant_today()
    as_of = filters.as_of or today
    if as_of > today:
        raise ValidationError({"as_of": [f"{as_of} is in the future; aging is known up to today ({today})."]})
    if as_of < date(2000, 1, 1):
        raise ValidationError({"as_of": ["Use a date from 2000 on."]})
    aging = ar_aging(as_of=as_of)
    return [
        {
            "currency": row.currency,
            "total": str(row.total),
            "buckets": _buckets(row),
            "customers": [
                {"customer": c.customer, "name": c.customer_name, "total": str(c.total), "buckets": _buckets(c)}
                for c in aging.customers.get(row.currency, [])
            ],
        }
        for row in aging.currencies
    ]


class DsoOut(Schema):
    month: str
    currency: str
    ar_end: str
    credit_sales: str
    days: int
    dso: str | None
    dso_trailing_3m: str | None
    average_days_to_pay: str | None


class DsoFilters(Schema):
    months: Int = Field(6, ge=1, le=24, description="Calendar months ending with the current one")


@router.get("/dso", response=list[DsoOut], summary="DSO and average days to pay per month and currency")
def dso_get(request, filters: Query[DsoFilters]):
    return [
        {
            "month": m.month,
            "currency": m.currency,
            "ar_end": str(m.ar_end),
            "credit_sales": str(m.credit_sales),
            "days": m.days,
            "dso": None if m.dso is None else str(m.dso),
            "dso_trailing_3m": None if m.dso_trailing_3m is None else str(m.dso_trailing_3m),
            "average_days_to_pay": None if m.average_days_to_pay is None else str(m.average_days_to_pay),
        }
        for m in dso_series(as_of=tenant_today(), months=filters.months)
    ]
