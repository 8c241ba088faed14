"""Discounts & credits: the list of exceptions with their impact (htmx), grant, revoke, extend.

Everyone who can read contracts sees the exceptions; granting, revoking and extending need
``discounts.manage`` (finance and admins), and whoever grants one is recorded as its approver.

The pages live in billing, not in ``discounts/``: they show what the exceptions did to invoices
(revenue given up to date, billing with and without exceptions, draft recomputation), and only
billing, above discounts in the layers, reads invoices. Their URLs keep the ``discounts`` namespace.
"""

from __future__ import annotations

from django.contrib import messages
from django.core.exceptions import ObjectDoesNotExist, ValidationError
from django.db import transaction
from django.http import Http404
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.views.decorators.http import require_POST

from billing.selectors_exceptions import customer_impact, customer_invoices, override_given_up
from billing.services.adjustments import invoice_discounts_reapply_for
from contracts.models import Customer
from discounts.forms import CreditForm, DiscountForm, ExtendForm, ListFilterForm, OverrideForm, RevokeForm
from discounts.impact import quarter_end
from discounts.models import Discount
from discounts.selectors import exception_events, exception_get, exception_rows, exception_totals
from discounts.services._common import tenant_today
from discounts.services.exceptions import credit_create, discount_create, price_override_create
from discounts.services.exceptions import exception_extend as extend
from discounts.services.exceptions import exception_revoke as revoke
from revexos.accounts.decorators import requires
from revexos.accounts.roles import has_capability
from revexos.parsing import parse_id

KINDS = ("discount", "credit", "override")
KIND_LABELS = {"discount": "discount", "credit": "credit", "override": "custom rate"}


def _kind(kind: str) -> str:
    if kind not in KINDS:
        raise Http404("Unknown kind of exception.")
    return kind


def _filters(params) -> dict:
    form = ListFilterForm(params)
    form.is_valid()
    data = form.cleaned_data if form.is_bound else {}
    return {
        "form": form,
        "kind": data.get("kind") or "all",
        "status": data.get("status") or "live",
        "expiring": data.get("expiring") or "",
    }


def _rows(filters: dict, today):
    expiring = filters["expiring"]
    return exception_rows(
        today=today,
        kind=filters["kind"],
        status=filters["status"],
        expiring_days=parse_id(expiring) if expiring in {"30", "60", "90"} else None,
        expiring_by=quarter_end(today) if expiring == "quarter" else None,
        override_given_up=override_given_up,
    )


@requires("contracts.view")
def exception_list(request):
    today = tenant_today()
    filters = _filters(request.GET)
    rows = _rows(filters, today)
    context = {
        **filters,
        "rows": rows,
        "totals": exception_totals(rows),
        "today": today,
        "quarter_end": quarter_end(today),
        "can_manage": has_capability(request.user, "discounts.manage"),
    }
    template = "discounts/exception_list.html#exceptions" if request.htmx else "discounts/exception_list.html"
    return render(request, template, context)


def _row_for(kind: str, pk: int, today):
    rows = [
        r
        for r in exception_rows(today=today, kind=kind, status="all", override_given_up=override_given_up)
        if r.obj.pk == pk
    ]
    if not rows:
        raise Http404
    return rows[0]


@requires("discounts.manage")
def exception_create(request, kind: str):
    kind = _kind(kind)
    form_class = {"discount": DiscountForm, "credit": CreditForm, "override": OverrideForm}[kind]
    initial = {"start_date": tenant_today()}
    form = form_class(request.POST or None, initial=initial)
    if request.method == "POST" and form.is_valid():
        data = dict(form.cleaned_data)
        try:
            if kind == "discount":
                obj = discount_create(
                    kind=data["kind"],
                    value=data["value"],
                    start_date=data["start_date"],
                    end_date=data["end_date"],
                    max_cycles=data["max_cycles"],
                    no_expiry_reason=data["no_expiry_reason"],
                    reason=data["reason"],
                    contract=data["contract"],
                    customer=data["customer"],
                    line_ref=data["line_ref"],
                    created_by=request.user,
                )
            elif kind == "credit":
                obj = credit_create(
                    customer=data["customer"],
                    contract=data["contract"],
                    amount=data["amount"],
                    currency=data["currency"],
                    expires_on=data["expires_on"],
                    no_expiry_reason=data["no_expiry_reason"],
                    reason=data["reason"],
                    pinned_invoices=form.pins(),
                    created_by=request.user,
                )
            else:
                obj = price_override_create(
                    contract=data["contract"],
                    line_ref=data["line_ref"],
                    role=data["role"],
                    rate=data["rate"],
                    start_date=data["start_date"],
                    end_date=data["end_date"],
                    reason=data["reason"],
                    created_by=request.user,
                )
        except ValidationError as exc:
            form.add_service_errors(exc)
        else:
            messages.success(request, f"{obj.reference} granted and approved by you.")
            return redirect("discounts:detail", kind=kind, pk=obj.pk)
    status = 422 if request.method == "POST" else 200
    return render(
        request,
        "discounts/exception_form.html",
        {"form": form, "kind": kind, "label": KIND_LABELS[kind]},
        status=status,
    )


@requires("contracts.view")
def exception_detail(request, kind: str, pk: int):
    kind = _kind(kind)
    today = tenant_today()
    try:
        obj = exception_get(kind=kind, pk=pk)
    except ObjectDoesNotExist:
        raise Http404(f"No {KIND_LABELS[kind]} {pk}.") from None
    row = _row_for(kind, pk, today)
    applications = []
    if kind == "discount":
        applications = list(
            obj.applications.select_related("invoice", "invoice_line").order_by(
                "-invoice__billing_date", "invoice_line__position"
            )
        )
    elif kind == "credit":
        applications = list(obj.applications.select_related("invoice").order_by("-applied_on"))
    history = list(obj.history.select_related("history_user").order_by("-history_date")[:30])
    return render(
        request,
        "discounts/exception_detail.html",
        {
            "kind": kind,
            "label": KIND_LABELS[kind],
            "obj": obj,
            "row": row,
            "events": exception_events(obj),
            "applications": applications,
            "history": history,
            "today": today,
            "can_manage": has_capability(request.user, "discounts.manage"),
        },
    )


def _after_change(
    request, kind: str, pk: int, *, errors: dict | None = None, action: str = "", done: str = "", reference: str = ""
):
    today = tenant_today()
    if request.htmx:
        row = _row_for(kind, pk, today)
        return render(
            request,
            "discounts/exception_list.html#row",
            {
                "row": row,
                "today": today,
                "can_manage": True,
                "errors": errors or {},
                "open_action": action if errors else "",
                "done": done,
                "posted": request.POST if errors else None,
            },
        )
    if errors:
        for messages_ in errors.values():
            for message in messages_:
                messages.error(request, message)
    elif done:
        messages.success(request, f"{reference}: change recorded.")
    return redirect(request.POST.get("next") or reverse("discounts:detail", kwargs={"kind": kind, "pk": pk}))


@require_POST
@requires("discounts.manage")
def exception_revoke(request, kind: str, pk: int):
    kind = _kind(kind)
    form = RevokeForm(request.POST)
    if not form.is_valid():
        return _after_change(request, kind, pk, errors={k: list(v) for k, v in form.errors.items()}, action="revoke")
    try:
        obj = revoke(kind=kind, pk=pk, reason=form.cleaned_data["reason"], user=request.user)
    except ValidationError as exc:
        return _after_change(request, kind, pk, errors=exc.message_dict, action="revoke")
    return _after_change(request, kind, pk, done="Recorded", reference=obj.reference)


@require_POST
@requires("discounts.manage")
def exception_extend(request, kind: str, pk: int):
    kind = _kind(kind)
    form = ExtendForm(request.POST)
    if not form.is_valid():
        return _after_change(request, kind, pk, errors={k: list(v) for k, v in form.errors.items()}, action="extend")
    try:
        obj = extend(
            kind=kind,
            pk=pk,
            reason=form.cleaned_data["reason"],
            end_date=form.cleaned_data["end_date"],
            max_cycles=form.cleaned_data["max_cycles"],
            user=request.user,
        )
    except ValidationError as exc:
        errors = {("end_date" if k == "expires_on" else k): v for k, v in exc.message_dict.items()}
        return _after_change(request, kind, pk, errors=errors, action="extend")
    return _after_change(request, kind, pk, done="Recorded", reference=obj.reference)


@require_POST
@requires("discounts.manage")
def discount_recompute(request, pk: int):
    discount = get_object_or_404(Discount, pk=pk)
    with transaction.atomic():
        count = invoice_discounts_reapply_for(discount=discount)
    messages.success(request, f"{count} draft invoice{'s' if count != 1 else ''} recomputed.")
    return redirect("discounts:detail", kind="discount", pk=pk)


@requires("contracts.view")
def customers(request):
    today = tenant_today()
    rows = customer_impact(today=today)
    return render(request, "discounts/customer_impact.html", {"rows": rows, "today": today})


@requires("contracts.view")
def customer_detail(request, pk: int):
    customer = get_object_or_404(Customer, pk=pk)
    today = tenant_today()
    return render(
        request,
        "discounts/customer_detail.html",
        {
            "customer": customer,
            "impact": customer_impact(today=today, customer_id=pk),
            "rows": exception_rows(today=today, status="all", customer_id=pk, override_given_up=override_given_up),
            "invoices": customer_invoices(customer_id=pk),
            "today": today,
            "can_manage": has_capability(request.user, "discounts.manage"),
        },
    )
