"""Discount, credit and price-override endpoints of the public API (DESIGN.md §5).

Bodies are parsed here (``parse_float=Decimal``: money never passes through a float) so every bad
field of a request is reported by name in one 422 answer and nothing is written::

    POST /api/v1/discounts
    {"contract": "C-1001", "kind": "percentage", "value": "10", "start_date": "2026-01-01",
     "end_date": "2026-03-31", "reason": "launch"}
    POST /api/v1/credits
    {"customer": "acme-ltd", "amount": "1000.00", "currency": "USD", "expires_on": "2026-12-31",
     "reason": "SLA credit"}

A contract is named by its number or id, a customer by its external_id or id, a price line by its
line ref (``L1``) or id. Approval: ``approved_by`` (e-mail of a finance or admin user) or else the
API key that posted it is recorded as the approver.
"""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal
from typing import Annotated

from django.core.exceptions import ValidationError
from django.db import transaction
from django.http import Http404
from ninja import Field, Query, Router, Schema, Status

from contracts.models import PriceLine
from contracts.selectors import contract_by_ref, customer_by_ref
from discounts.models import Credit, CreditStatus, Discount, ExceptionStatus, PriceOverride
from discounts.services.exceptions import (
    credit_create,
    discount_create,
    exception_end,
    exception_extend,
    exception_revoke,
    price_override_create,
)
from revexos.accounts.models import User
from revexos.api_kit import Day, Int, PageFilters, Ref, Text, choices, id_or_404, json_body
from revexos.dates import tenant_today
from revexos.money import quantize
from revexos.parsing import clean_ref, parse_date, parse_decimal, parse_id, parse_int, printable, ref_or_error

router = Router(tags=["discounts"])

DISCOUNT_FIELDS = {
    "contract",
    "customer",
    "kind",
    "value",
    "currency",
    "start_date",
    "end_date",
    "max_cycles",
    "price_line",
    "reason",
    "no_expiry_reason",
    "approved_by",
}
CREDIT_FIELDS = {
    "customer",
    "contract",
    "amount",
    "currency",
    "expires_on",
    "no_expiry_reason",
    "reason",
    "invoices",
    "approved_by",
}
OVERRIDE_FIELDS = {"contract", "price_line", "role", "rate", "start_date", "end_date", "reason", "approved_by"}


class _Body:
    """Typed access to a JSON object that collects every problem by field name."""

    def __init__(self, request, allowed: set[str]):
        data = json_body(request)
        if not isinstance(data, dict):
            raise ValidationError({"body": ["Send a JSON object."]})
        self.data = data
        self.errors: dict[str, list[str]] = {}
        for name in sorted(set(data) - allowed):
            self.add(name, f"Unknown field; the fields are {', '.join(sorted(allowed))}.")

    def add(self, name: str, message: str) -> None:
        self.errors.setdefault(name, []).append(message)

    def text(self, name: str, *, max_length: int = 500) -> str:
        value = self.data.get(name)
        if value is None:
            return ""
        if not isinstance(value, str):
            self.add(name, "Must be a string.")
            return ""
        if len(value) > max_length:
            self.add(name, f"At most {max_length} characters.")
        return value.strip()

    def _parsed(self, name: str, parse, **kwargs):
        value = self.data.get(name)
        if value is None or value == "":
            return None
        try:
            return parse(value, **kwargs)
        except ValueError as exc:
            self.add(name, str(exc))
            return None

    def decimal(self, name: str) -> Decimal | None:
        return self._parsed(name, parse_decimal)

    def day(self, name: str) -> date | None:
        return self._parsed(name, parse_date)

    def integer(self, name: str) -> int | None:
        return self._parsed(name, parse_int, minimum=1, maximum=1000)

    def contract(self, name: str = "contract"):
        ref = self._parsed(name, ref_or_error, what="contract")
        if ref is None:
            return None
        contract = contract_by_ref(ref)
        if contract is None:
            self.add(name, f"No contract {printable(ref)} (number or id).")
        return contract

    def customer(self, name: str = "customer"):
        ref = self._parsed(name, ref_or_error, what="customer")
        if ref is None:
            return None
        customer = customer_by_ref(ref)
        if customer is None:
            self.add(name, f"No customer {printable(ref)} (external_id or id).")
        return customer

    def approver(self):
        if self.data.get("approved_by") == "":
            self.add("approved_by", "Give the approver's e-mail, or leave the field out to record the API key.")
            return None
        email = self.text("approved_by", max_length=254)
        if not email:
            return None
        user = User.objects.filter(email__iexact=email, is_active=True).first()
        if user is None:
            self.add("approved_by", f"No active user {email!r} in this workspace.")
        return user

    def create(self, service, **kwargs):
        """Run the creating service; any problem (ours or the service's) is one 422 and nothing is kept."""
        try:
            with transaction.atomic():
                obj = service(**kwargs)
                if self.errors:
                    raise _Rollback
            return obj
        except _Rollback:
            pass
        except ValidationError as exc:
            found = exc.message_dict if hasattr(exc, "error_dict") else {"non_field_errors": exc.messages}
            for name, messages in found.items():
                if name not in self.errors:  # a field that did not parse keeps its own, more precise message
                    self.errors[name] = list(messages)
        raise ValidationError(self.errors)


class _Rollback(Exception):
    pass


def _line_ref(contract, ref) -> str:
    """A price line named by its line ref or its id (the service checks the contract has it)."""
    if ref is None or ref == "":
        return ""
    if (ref := clean_ref(ref, max_length=40)) is None:
        return "(not a line ref)"  # the service answers that the contract has no such line
    if contract is not None and (pk := parse_id(ref)) is not None:
        found = PriceLine.objects.filter(version__contract=contract, pk=pk).values_list("line_ref", flat=True).first()
        if found:
            return found
    return ref


def _key_label(request) -> str:
    key = getattr(request, "api_key", None)
    return f"API key {key.name} ({key.prefix}…)" if key is not None else "API"


def _money(value: Decimal, currency: str) -> str:
    return str(quantize(value, currency)) if currency else format(value.normalize(), "f")


def _approval_json(obj) -> dict:
    return {"approved_by": obj.approver, "approved_at": obj.approved_at.isoformat() if obj.approved_at else None}


def discount_json(d: Discount) -> dict:
    return {
        "id": str(d.pk),
        "reference": d.reference,
        "status": d.status,
        "kind": d.kind,
        "value": _money(d.value, d.currency) if d.kind == "fixed" else format(d.value.normalize(), "f"),
        "currency": d.currency or None,
        "scope": d.scope,
        "customer": d.customer.external_id,
        "contract": d.contract.number if d.contract_id else None,
        "price_line": d.line_ref or None,
        "start_date": d.start_date.isoformat(),
        "end_date": d.end_date.isoformat() if d.end_date else None,
        "max_cycles": d.max_cycles,
        "no_expiry_reason": d.no_expiry_reason or None,
        "reason": d.reason,
        "revoked_at": d.revoked_at.isoformat() if d.revoked_at else None,
        "revoke_reason": d.revoke_reason or None,
        **_approval_json(d),
    }


def credit_json(c: Credit) -> dict:
    return {
        "id": str(c.pk),
        "reference": c.reference,
        "status": c.status,
        "customer": c.customer.external_id,
        "contract": c.contract.number if c.contract_id else None,
        "amount": _money(c.amount, c.currency),
        "balance": _money(c.balance, c.currency),
        "currency": c.currency,
        "expires_on": c.expires_on.isoformat() if c.expires_on else None,
        "no_expiry_reason": c.no_expiry_reason or None,
        "invoices": list(c.pinned_invoices),
        "reason": c.reason,
        "revoked_at": c.revoked_at.isoformat() if c.revoked_at else None,
        **_approval_json(c),
    }


def override_json(o: PriceOverride) -> dict:
    return {
        "id": str(o.pk),
        "reference": o.reference,
        "status": o.status,
        "contract": o.contract.number,
        "customer": o.customer.external_id,
        "price_line": o.line_ref,
        "role": o.role or None,
        "rate": format(o.rate.normalize(), "f")
        if o.rate != quantize(o.rate, o.currency)
        else _money(o.rate, o.currency),
        "currency": o.currency,
        "start_date": o.start_date.isoformat(),
        "end_date": o.end_date.isoformat(),
        "reason": o.reason,
        **_approval_json(o),
    }


class ListFilters(PageFilters):
    status: choices(*dict.fromkeys([*ExceptionStatus.values, *CreditStatus.values])) = Field(
        "", description="scheduled, active, expired, revoked (credits: active, used, expired, revoked)"
    )
    contract: Ref = Field("", description="Contract id or number")
    customer: Ref = Field("", description="Customer id or external_id")


class DiscountOut(Schema):
    id: str
    reference: str
    status: str
    kind: str
    value: str
    currency: str | None
    scope: str
    customer: str
    contract: str | None
    price_line: str | None
    start_date: str
    end_date: str | None
    max_cycles: int | None
    no_expiry_reason: str | None
    reason: str
    revoked_at: str | None
    revoke_reason: str | None
    approved_by: str | None
    approved_at: str | None


class CreditOut(Schema):
    id: str
    reference: str
    status: str
    customer: str
    contract: str | None
    amount: str
    balance: str
    currency: str
    expires_on: str | None
    no_expiry_reason: str | None
    invoices: list[str]
    reason: str
    revoked_at: str | None
    approved_by: str | None
    approved_at: str | None


class OverrideOut(Schema):
    id: str
    reference: str
    status: str
    contract: str
    customer: str
    price_line: str
    role: str | None
    rate: str
    currency: str
    start_date: str
    end_date: str
    reason: str
    approved_by: str | None
    approved_at: str | None


class DiscountPage(Schema):
    items: list[DiscountOut]
    count: int


class CreditPage(Schema):
    items: list[CreditOut]
    count: int


class OverridePage(Schema):
    items: list[OverrideOut]
    count: int


def _filtered(queryset, filters: ListFilters):
    if filters.status:
        queryset = queryset.filter(status__in=[s.strip() for s in filters.status.split(",") if s.strip()])
    if filters.contract:
        contract = contract_by_ref(filters.contract)
        queryset = queryset.filter(contract=contract) if contract else queryset.none()
    if filters.customer:
        customer = customer_by_ref(filters.customer)
        queryset = queryset.filter(customer=customer) if customer else queryset.none()
    return queryset


def _page(queryset, filters: ListFilters, to_json) -> dict:
    rows = list(queryset[filters.offset : filters.offset + filters.limit])
    return {"items": [to_json(r) for r in rows], "count": queryset.count()}


def _doc(required: list[str], properties: dict, example: dict) -> dict:
    # An optional field may be sent as null: it means the same as leaving it out.
    properties = {
        name: prop if name in required or "type" not in prop else {**prop, "type": [prop["type"], "null"]}
        for name, prop in properties.items()
    }
    return {
        "requestBody": {
            "required": True,
            "content": {
                "application/json": {
                    "schema": {"type": "object", "required": required, "properties": properties},
                    "example": example,
                }
            },
        }
    }


_DEC = {"type": "string", "format": "decimal"}
_DAY = {"type": "string", "format": "date"}
_STR = {"type": "string"}


@router.get("/discounts", response=DiscountPage, summary="List discounts, newest first")
def discounts_list(request, filters: Query[ListFilters]):
    qs = _filtered(Discount.objects.select_related("customer", "contract", "approved_by"), filters)
    return _page(qs, filters, discount_json)


@router.post(
    "/discounts",
    response={201: DiscountOut},
    summary="Grant a discount (end date, max_cycles or a no-expiry reason required)",
    openapi_extra=_doc(
        ["kind", "value", "start_date", "reason"],
        {
            "contract": _STR,
            "customer": _STR,
            "kind": {"type": "string", "enum": ["percentage", "fixed"]},
            "value": _DEC,
            "currency": _STR,
            "start_date": _DAY,
            "end_date": _DAY,
            "max_cycles": {"type": "integer", "minimum": 1},
            "price_line": _STR,
            "reason": _STR,
            "no_expiry_reason": _STR,
            "approved_by": {"type": "string", "format": "email"},
        },
        {
            "contract": "C-1001",
            "kind": "percentage",
            "value": "10",
            "start_date": "2026-01-01",
            "end_date": "2026-03-31",
            "reason": "launch",
        },
    ),
)
def discounts_post(request):
    body = _Body(request, DISCOUNT_FIELDS)
    contract = body.contract()
    discount = body.create(
        discount_create,
        contract=contract,
        customer=body.customer(),
        kind=body.text("kind", max_length=20),
        value=body.decimal("value"),
        start_date=body.day("start_date"),
        end_date=body.day("end_date"),
        max_cycles=body.integer("max_cycles"),
        reason=body.text("reason"),
        no_expiry_reason=body.text("no_expiry_reason"),
        currency=body.text("currency", max_length=3),
        line_ref=_line_ref(contract, body.data.get("price_line")),
        approved_by=body.approver(),
        approved_label=_key_label(request),
        via="api",
    )
    return Status(201, discount_json(discount))


@router.get("/discounts/{discount_id}", response=DiscountOut, summary="A discount")
def discounts_detail(request, discount_id: str):
    return discount_json(_get(Discount, discount_id, "discount"))


class RevokeIn(Schema):
    reason: Text
    effective_date: Day | None = Field(
        None,
        description="The first day it no longer applies (default today: revoked at once). A later date "
        "brings the end forward to the day before; it then expires on its own.",
    )


class EndIn(Schema):
    reason: Text
    end_date: Day = Field(description="The last day it applies: today or later, before its current end")


class ExtendIn(Schema):
    reason: Text
    end_date: Day | None = None
    max_cycles: Annotated[Int, Field(ge=1, le=1000)] | None = None


# kind (service) -> model, label, wire form; the lifecycle endpoints below are the same for all three.
_KINDS = {
    "discount": (Discount, "discount", discount_json),
    "credit": (Credit, "credit", credit_json),
    "override": (PriceOverride, "custom rate", override_json),
}


def _revoke(request, kind: str, ref: str, payload: RevokeIn) -> dict:
    model, label, to_json = _KINDS[kind]
    obj = _get(model, ref, label)
    today = tenant_today()
    if payload.effective_date is not None and payload.effective_date < today:
        raise ValidationError(
            {"effective_date": ["A revocation takes effect today or later; invoices already made keep what they got."]}
        )
    if payload.effective_date is None or payload.effective_date == today:
        done = exception_revoke(kind=kind, pk=obj.pk, reason=payload.reason, actor_label=_key_label(request))
    else:
        done = exception_end(
            kind=kind,
            pk=obj.pk,
            end_date=payload.effective_date - timedelta(days=1),
            reason=payload.reason,
            actor_label=_key_label(request),
        )
    return to_json(_get(model, done.pk, label))


def _end(request, kind: str, ref: str, payload: EndIn) -> dict:
    model, label, to_json = _KINDS[kind]
    obj = _get(model, ref, label)
    try:
        exception_end(
            kind=kind, pk=obj.pk, end_date=payload.end_date, reason=payload.reason, actor_label=_key_label(request)
        )
    except ValidationError as exc:
        # The credit's date is expires_on in the model; the API names it end_date here.
        if hasattr(exc, "error_dict") and "expires_on" in exc.error_dict:
            exc.error_dict["end_date"] = exc.error_dict.pop("expires_on")
        raise
    return to_json(_get(model, obj.pk, label))


def _extend(request, kind: str, ref: str, payload: ExtendIn) -> dict:
    model, label, to_json = _KINDS[kind]
    obj = _get(model, ref, label)
    done = exception_extend(
        kind=kind,
        pk=obj.pk,
        reason=payload.reason,
        end_date=payload.end_date,
        max_cycles=payload.max_cycles,
        actor_label=_key_label(request),
    )
    return to_json(_get(model, done.pk, label))


@router.post("/discounts/{discount_id}/revoke", response=DiscountOut, summary="Revoke a discount now or from a date")
def discounts_revoke(request, discount_id: str, payload: RevokeIn):
    return _revoke(request, "discount", discount_id, payload)


@router.post("/discounts/{discount_id}/end", response=DiscountOut, summary="Bring a discount's end date forward")
def discounts_end(request, discount_id: str, payload: EndIn):
    return _end(request, "discount", discount_id, payload)


@router.post(
    "/discounts/{discount_id}/extend", response=DiscountOut, summary="Extend a discount (later end date or more cycles)"
)
def discounts_extend(request, discount_id: str, payload: ExtendIn):
    return _extend(request, "discount", discount_id, payload)


@router.get("/credits", response=CreditPage, summary="List credits, newest first")
def credits_list(request, filters: Query[ListFilters]):
    qs = _filtered(Credit.objects.select_related("customer", "contract", "approved_by"), filters)
    return _page(qs, filters, credit_json)


@router.post(
    "/credits",
    response={201: CreditOut},
    summary="Grant a credit (reduces the amount due of the next invoices)",
    openapi_extra=_doc(
        ["customer", "amount", "reason"],
        {
            "customer": _STR,
            "contract": _STR,
            "amount": _DEC,
            "currency": {**_STR, "description": "Default: the customer's currency"},
            "expires_on": _DAY,
            "no_expiry_reason": _STR,
            "reason": _STR,
            "invoices": {"type": "array", "items": _STR, "description": "Pinned: invoice numbers or CONTRACT@YYYY-MM"},
            "approved_by": {"type": "string", "format": "email"},
        },
        {
            "customer": "acme-ltd",
            "amount": "1000.00",
            "currency": "USD",
            "expires_on": "2026-12-31",
            "reason": "SLA credit",
        },
    ),
)
def credits_post(request):
    body = _Body(request, CREDIT_FIELDS)
    pins = body.data.get("invoices")
    pins = [] if pins is None else pins
    if not isinstance(pins, list) or not all(isinstance(p, str) for p in pins):
        body.add("invoices", "A list of invoice numbers or CONTRACT@YYYY-MM names.")
        pins = []
    credit = body.create(
        credit_create,
        customer=body.customer(),
        contract=body.contract(),
        pinned_invoices=pins,
        amount=body.decimal("amount"),
        currency=body.text("currency", max_length=3),
        expires_on=body.day("expires_on"),
        no_expiry_reason=body.text("no_expiry_reason"),
        reason=body.text("reason"),
        approved_by=body.approver(),
        approved_label=_key_label(request),
        via="api",
    )
    return Status(201, credit_json(credit))


@router.get("/credits/{credit_id}", response=CreditOut, summary="A credit with its balance")
def credits_detail(request, credit_id: str):
    return credit_json(_get(Credit, credit_id, "credit"))


@router.get("/price-overrides", response=OverridePage, summary="List custom rates, newest first")
def overrides_list(request, filters: Query[ListFilters]):
    qs = _filtered(PriceOverride.objects.select_related("customer", "contract", "approved_by"), filters)
    return _page(qs, filters, override_json)


@router.post(
    "/price-overrides",
    response={201: OverrideOut},
    summary="Grant a custom rate for a price line (or a rate-card role) with a window",
    openapi_extra=_doc(
        ["contract", "price_line", "rate", "start_date", "end_date", "reason"],
        {
            "contract": _STR,
            "price_line": _STR,
            "role": _STR,
            "rate": _DEC,
            "start_date": _DAY,
            "end_date": _DAY,
            "reason": _STR,
            "approved_by": {"type": "string", "format": "email"},
        },
        {
            "contract": "C-1001",
            "price_line": "L3",
            "role": "engineer",
            "rate": "120.00",
            "start_date": "2026-03-01",
            "end_date": "2026-05-31",
            "reason": "pilot pricing",
        },
    ),
)
def overrides_post(request):
    body = _Body(request, OVERRIDE_FIELDS)
    contract = body.contract()
    override = body.create(
        price_override_create,
        contract=contract,
        line_ref=_line_ref(contract, body.data.get("price_line")),
        role=body.text("role", max_length=100),
        rate=body.decimal("rate"),
        start_date=body.day("start_date"),
        end_date=body.day("end_date"),
        reason=body.text("reason"),
        approved_by=body.approver(),
        approved_label=_key_label(request),
        via="api",
    )
    return Status(201, override_json(override))


def _get(model, ref: str, label: str):
    try:
        return model.objects.select_related("customer", "contract", "approved_by").get(pk=id_or_404(ref, label))
    except model.DoesNotExist:
        raise Http404(f"No {label} {printable(ref)}.") from None


@router.get("/price-overrides/{override_id}", response=OverrideOut, summary="A custom rate")
def overrides_detail(request, override_id: str):
    return override_json(_get(PriceOverride, override_id, "custom rate"))


@router.post("/credits/{credit_id}/revoke", response=CreditOut, summary="Revoke a credit now or from a date")
def credits_revoke(request, credit_id: str, payload: RevokeIn):
    return _revoke(request, "credit", credit_id, payload)


@router.post("/credits/{credit_id}/end", response=CreditOut, summary="Bring a credit's expiry forward")
def credits_end(request, credit_id: str, payload: EndIn):
    return _end(request, "credit", credit_id, payload)


@router.post("/credits/{credit_id}/extend", response=CreditOut, summary="Extend a credit (later expiry)")
def credits_extend(request, credit_id: str, payload: ExtendIn):
    return _extend(request, "credit", credit_id, payload)


@router.post(
    "/price-overrides/{override_id}/revoke", response=OverrideOut, summary="Revoke a custom rate now or from a date"
)
def overrides_revoke(request, override_id: str, payload: RevokeIn):
    return _revoke(request, "override", override_id, payload)


@router.post(
    "/price-overrides/{override_id}/end", response=OverrideOut, summary="Bring a custom rate's end date forward"
)
def overrides_end(request, override_id: str, payload: EndIn):
    return _end(request, "override", override_id, payload)
