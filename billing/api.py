"""Billing endpoints of the public API (DESIGN.md §5): facts in, runs, invoices out.

Ingestion bodies are parsed here rather than by a schema so that decimals never pass through a
float (``parse_float=Decimal``) and every problem of a batch is reported by item and field in one
answer; the services validate the whole batch before writing anything.
"""

from __future__ import annotations

from datetime import date
from typing import Annotated

from django.core.exceptions import ValidationError
from django.http import Http404
from django.shortcuts import get_object_or_404
from ninja import Field, Query, Router, Schema, Status
from pydantic import StrictBool, StringConstraints

from billing.models import BillingRun, InvoiceStatus
from billing.selectors import PAYMENT_FILTERS, invoice_as_json, invoice_get, invoice_list
from billing.services.context import tenant_today
from billing.services.ingestion import MAX_BATCH, delivery_event_ingest, time_entries_ingest, usage_events_ingest
from revexos.api_kit import Day, PageFilters, Ref, choices, id_or_404, json_body

router = Router(tags=["billing"])


def _batch_body(request, key: str):
    body = json_body(request)
    if isinstance(body, dict):
        extra = sorted(set(body) - {key})
        if extra:
            raise ValidationError(
                {name: [f'Unknown field; send {{"{key}": [...]}} or a bare JSON array.'] for name in extra}
            )
        return body.get(key)
    return body


def _body_doc(schema: dict, description: str) -> dict:
    return {
        "requestBody": {
            "required": True,
            "description": description,
            "content": {"application/json": {"schema": schema}},
        }
    }


_DEC = {"type": "string", "format": "decimal", "example": "12.5"}
_REF = {"type": "string", "description": "id or number"}
USAGE_EVENT_DOC = {
    "type": "object",
    "required": ["transaction_id", "metric", "quantity", "timestamp"],
    "properties": {
        "transaction_id": {"type": "string", "maxLength": 200},
        "contract": _REF,
        "customer": {"type": "string", "description": "id or external_id (instead of contract)"},
        "metric": {"type": "string"},
        "quantity": _DEC,
        "timestamp": {"type": "string", "format": "date-time"},
        "properties": {"type": "object"},
    },
}
TIME_ENTRY_DOC = {
    "type": "object",
    "required": ["external_id", "contract", "person", "role", "date", "hours"],
    "properties": {
        "external_id": {"type": "string"},
        "contract": _REF,
        "person": {"type": "string"},
        "role": {"type": "string"},
        "date": {"type": "string", "format": "date"},
        "hours": _DEC,
        "billable": {"type": "boolean", "default": True},
        "description": {"type": "string"},
        "price_line": {"type": "string", "description": "line ref or id (optional)"},
    },
}
DELIVERY_DOC = {
    "type": "object",
    "required": ["kind", "contract", "external_id"],
    "properties": {
        "kind": {"type": "string", "enum": ["milestone_completed", "scope_changed"]},
        "contract": _REF,
        "milestone_ref": {"type": "string"},
        "occurred_at": {"type": "string", "format": "date-time"},
        "external_id": {"type": "string"},
        "source": {"type": "string", "default": "api"},
        "description": {"type": "string"},
        "details": {},
    },
}


def _batch_doc(item: dict, key: str) -> dict:
    array = {"type": "array", "items": item, "maxItems": MAX_BATCH}
    return {"oneOf": [array, {"type": "object", "properties": {key: array}, "required": [key]}]}


class IngestOut(Schema):
    received: int
    accepted: int
    duplicates: int


class DeliveryOut(Schema):
    id: str
    status: str = Field(description="accepted, or duplicate when this external id was delivered before")


@router.post(
    "/usage-events",
    response={202: IngestOut},
    summary="Send a batch of usage events (≤ 1,000; idempotent by transaction_id)",
    openapi_extra=_body_doc(_batch_doc(USAGE_EVENT_DOC, "events"), 'A JSON array of events or {"events": [...]}'),
)
def usage_events_post(request):
    result = usage_events_ingest(events=_batch_body(request, "events"))
    return Status(202, {"received": result.received, "accepted": result.accepted, "duplicates": result.duplicates})


@router.post(
    "/time-entries",
    response={202: IngestOut},
    summary="Send a batch of time entries (≤ 1,000; idempotent by external_id)",
    openapi_extra=_body_doc(
        _batch_doc(TIME_ENTRY_DOC, "entries"), 'A JSON array of time entries or {"entries": [...]}'
    ),
)
def time_entries_post(request):
    result = time_entries_ingest(entries=_batch_body(request, "entries"))
    return Status(202, {"received": result.received, "accepted": result.accepted, "duplicates": result.duplicates})


@router.post(
    "/delivery-events",
    response={202: DeliveryOut},
    summary="Report a delivery event (milestone completed, scope changed)",
    openapi_extra=_body_doc(DELIVERY_DOC, "One event; idempotent by source + external_id"),
)
def delivery_events_post(request):
    accepted = delivery_event_ingest(event=json_body(request))
    return Status(202, {"id": str(accepted.event_id), "status": "duplicate" if accepted.duplicate else "accepted"})


# ----------------------------------------------------------------------------- runs


class RunIn(Schema):
    as_of: Day = Field(description="Bill what is due up to this date (not after today)")
    only: list[Annotated[str, StringConstraints(max_length=100)]] | None = Field(
        None, max_length=50, description="Cycle steps to run (default: all)"
    )
    run_async: StrictBool = Field(False, alias="async")


class RunOut(Schema):
    id: str
    status: str
    as_of: date
    only: list[str]
    summary: dict
    error: str


def _run_json(run: BillingRun) -> dict:
    return {
        "id": str(run.pk),
        "status": run.status,
        "as_of": run.as_of,
        "only": run.only,
        "summary": {k: v for k, v in run.summary.items() if not k.startswith("_")},
        "error": run.error,
    }


@router.post(
    "/runs", response={200: RunOut, 202: RunOut}, summary="Run the billing cycle as of a date (catches up past dates)"
)
def runs_post(request, payload: RunIn):
    from django.conf import settings
    from django.db import transaction

    from billing.cycle import cycle_steps
    from billing.services.runs import billable_contract_ids, run_create, run_enqueue, run_execute

    cycle_steps(payload.only)  # unknown step names are a 422 before anything is recorded
    if payload.as_of > tenant_today():
        raise ValidationError(
            {"as_of": [f"{payload.as_of} is in the future; a run bills what is due up to today ({tenant_today()})."]}
        )
    if payload.run_async:
        with transaction.atomic():
            run = run_create(as_of=payload.as_of, only=payload.only)
            run_enqueue(run)
        return Status(202, _run_json(run))
    limit = settings.BILLING_RUN_SYNC_MAX_CONTRACTS
    if not payload.only or "billing" in payload.only:
        count = len(billable_contract_ids(as_of=payload.as_of))
        if count > limit:
            raise ValidationError(
                {
                    "async": [
                        f"This run evaluates {count:,} contracts; a synchronous run takes at most {limit:,}. "
                        'Send "async": true and follow it at GET /api/v1/runs/{id}.'
                    ]
                }
            )
    run = run_create(as_of=payload.as_of, only=payload.only)
    return Status(200, _run_json(run_execute(run_id=run.pk)))


@router.get("/runs/{run_id}", response=RunOut, summary="A run's status and what it created")
def runs_detail(request, run_id: str):
    import uuid

    try:
        key = uuid.UUID(run_id)
    except ValueError:
        raise Http404(f"No run {run_id!r}.") from None
    return _run_json(get_object_or_404(BillingRun, pk=key))


# ----------------------------------------------------------------------------- invoices


class InvoiceLineOut(Schema):
    description: str
    kind: str
    quantity: str
    unit_amount: str
    amount: str
    period_start: date | None
    period_end: date | None
    price_line: str | None


class TaxLineOut(Schema):
    name: str
    rate: str = Field(description="Percent, e.g. 20")
    category: str = ""
    taxable: str
    amount: str
    reverse_charge: bool | None = Field(None, description="true where the buyer accounts for the tax")


class InvoiceOut(Schema):
    id: str
    number: str | None
    status: str
    contract: str
    currency: str
    issue_date: date | None
    due_date: date | None
    po_number: str
    subtotal: str
    discount_total: str
    tax_total: str
    total: str
    credit_applied: str
    amount_due: str
    amount_paid: str
    amount_open: str
    written_off: str
    payment_status: str | None = Field(
        description="unpaid, partially_paid, paid, overdue or written_off; null for drafts"
    )
    paid_on: date | None
    pay_url: str | None = Field(description="The customer's card payment page, when card payments are set up")
    disputed: bool
    tax_treatment: str = Field(
        "", description="domestic | reverse_charge | outside_scope | exempt | not_collected | missing_rate (held)"
    )
    tax_note: str = Field("", description="The legal mention printed on the invoice (or why it is held)")
    tax_lines: list[TaxLineOut] = Field(default_factory=list, description="Tax per rate")
    lines: list[InvoiceLineOut]


class InvoiceFilters(PageFilters):
    status: choices(*InvoiceStatus.values) = Field(
        "", description="draft, issued, sent, … (comma-separated for several)"
    )
    contract: Ref = Field("", description="Contract id or number")
    customer: Ref = Field("", description="Customer id or external_id")
    issued_from: Day | None = None
    issued_to: Day | None = None
    payment_status: choices(*PAYMENT_FILTERS) = Field(
        "", description="unpaid, partially_paid, paid, overdue, written_off or open (comma-separated for several)"
    )


class InvoicePage(Schema):
    items: list[InvoiceOut]
    count: int


@router.get("/invoices", response=InvoicePage, summary="List invoices, newest first")
def invoices_list(request, filters: Query[InvoiceFilters]):
    qs = invoice_list(
        status=filters.status or None,
        contract=filters.contract or None,
        customer=filters.customer or None,
        issued_from=filters.issued_from,
        issued_to=filters.issued_to,
        payment_status=filters.payment_status or None,
    )
    today = tenant_today()
    rows = list(qs[filters.offset : filters.offset + filters.limit])
    return {"items": [invoice_as_json(i, today=today) for i in rows], "count": qs.count()}


@router.get("/invoices/{invoice_id}", response=InvoiceOut, summary="An invoice with its lines")
def invoices_detail(request, invoice_id: str):
    from billing.models import Invoice

    try:
        return invoice_as_json(invoice_get(invoice_id=id_or_404(invoice_id, "invoice")))
    except Invoice.DoesNotExist:
        raise Http404(f"No invoice {invoice_id!r}.") from None


@router.get(
    "/invoices/{invoice_id}/pdf",
    summary="An invoice as PDF (drafts carry a DRAFT mark)",
    openapi_extra={
        "responses": {
            "200": {
                "description": "The PDF",
                "content": {"application/pdf": {"schema": {"type": "string", "format": "binary"}}},
            }
        }
    },
)
def invoices_pdf(request, invoice_id: str):
    from django.http import HttpResponse

    from billing.models import Invoice
    from billing.services.pdf import invoice_pdf_bytes, invoice_pdf_filename

    invoice = get_object_or_404(
        Invoice.objects.select_related("customer", "contract", "issuing_entity"), pk=id_or_404(invoice_id, "invoice")
    )
    response = HttpResponse(invoice_pdf_bytes(invoice=invoice), content_type="application/pdf")
    response["Content-Disposition"] = f'inline; filename="{invoice_pdf_filename(invoice)}"'
    return response
