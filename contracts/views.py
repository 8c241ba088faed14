"""Contracts UI: thin views over contracts.selectors and contracts.services.

Lists and editors answer htmx requests with the page's partial (Django 6 template partials):
``contracts/contract_list.html#contract-table``, ``…#price-line-row`` and so on.
"""

from __future__ import annotations

import base64
import binascii
from datetime import timedelta

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.core.paginator import Paginator
from django.http import Http404, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_GET, require_POST

from contracts import selectors
from contracts.forms import (
    AmendmentForm,
    ContractForm,
    CustomerForm,
    ImportForm,
    IssuingEntityForm,
    LineRow,
    SubRow,
    TaxRateForm,
    line_row,
    lines_from_post,
    new_token,
    row_values_from_post,
    rows_for,
)
from contracts.models import ContractStatus, Customer, IssuingEntity, PriceLineKind
from contracts.services import imports
from contracts.services.contracts import (
    contract_activate,
    contract_amend,
    contract_amend_prepare,
    contract_create,
    contract_update,
    version_is_editable,
)
from contracts.services.customers import customer_create, customer_update
from contracts.services.issuing_entities import issuing_entity_create, issuing_entity_update
from contracts.services.tax import tax_id_problem
from contracts.wire import terms_to_wire
from revexos.accounts.decorators import requires
from revexos.accounts.roles import has_capability
from revexos.parsing import parse_id, parse_int
from revexos.schedule import version_in_force

PAGE_SIZE = 25


def _page(request, queryset):
    paginator = Paginator(queryset, PAGE_SIZE)
    return paginator.get_page(request.GET.get("page"))


def _querystring(request) -> str:
    params = request.GET.copy()
    params.pop("page", None)
    return params.urlencode()


# ----------------------------------------------------------------------------- customers


@requires("customers.view")
def customer_list(request):
    filters = {k: request.GET.get(k, "").strip() for k in ("q", "currency", "status", "owner")}
    page = _page(request, selectors.customer_list(**filters))
    context = {
        "page": page,
        "filters": filters,
        "qs": _querystring(request),
        "currencies": _currencies_in_use(),
        "can_manage": has_capability(request.user, "customers.manage"),
    }
    template = "contracts/customer_list.html#customer-table" if request.htmx else "contracts/customer_list.html"
    return render(request, template, context)


def _currencies_in_use() -> list[str]:
    return list(Customer.objects.order_by("currency").values_list("currency", flat=True).distinct())


@requires("customers.view")
def customer_detail(request, pk: int):
    customer = get_object_or_404(Customer.objects.select_related("owner"), pk=pk)
    contracts = selectors.contract_list(customer=str(customer.pk))
    today = timezone.localdate()
    rows = [(c, selectors.contract_value_of(c, as_of=today)) for c in contracts]
    from revexos.panels import panels_render

    return render(
        request,
        "contracts/customer_detail.html",
        {
            "customer": customer,
            "tax_id_warning": tax_id_problem(customer.tax_id, country=customer.country),
            "rows": rows,
            "panels": panels_render("customer_detail", request=request, obj=customer),
            "can_manage": has_capability(request.user, "customers.manage"),
            "can_manage_contracts": has_capability(request.user, "contracts.manage"),
        },
    )


@requires("customers.manage")
def customer_form(request, pk: int | None = None):
    customer = get_object_or_404(Customer, pk=pk) if pk else None
    form = CustomerForm(request.POST or None, initial=CustomerForm.initial_for(customer))
    status = 200
    if request.method == "POST":
        try:
            if customer is None:
                customer = customer_create(data=form.to_wire(), user=request.user)
                messages.success(request, f"Customer {customer.legal_name} was created.")
            else:
                customer = customer_update(customer=customer, data=form.to_wire(), user=request.user, partial=False)
                messages.success(request, f"Customer {customer.legal_name} was saved.")
            return redirect("contracts:customer_detail", pk=customer.pk)
        except ValidationError as exc:
            for _name, errs in form.add_service_errors(exc).items():
                form.add_error(None, errs)
            status = 400
    return render(request, "contracts/customer_form.html", {"form": form, "customer": customer}, status=status)


# ----------------------------------------------------------------------------- issuing entities


@requires("issuing_entities.manage")
def issuing_entity_list(request):
    entities = IssuingEntity.objects.order_by("legal_name")
    return render(request, "contracts/issuing_entity_list.html", {"entities": entities})


@requires("issuing_entities.manage")
def issuing_entity_form(request, pk: int | None = None):
    entity = get_object_or_404(IssuingEntity, pk=pk) if pk else None
    form = IssuingEntityForm(request.POST or None, initial=IssuingEntityForm.initial_for(entity))
    status = 200
    if request.method == "POST":
        try:
            if entity is None:
                entity = issuing_entity_create(data=form.to_wire(), user=request.user)
            else:
                entity = issuing_entity_update(entity=entity, data=form.to_wire(), user=request.user)
            messages.success(request, f"{entity.legal_name} was saved.")
            return redirect("contracts:issuing_entity_list")
        except ValidationError as exc:
            for _name, errs in form.add_service_errors(exc).items():
                form.add_error(None, errs)
            status = 400
    return render(request, "contracts/issuing_entity_form.html", {"form": form, "entity": entity}, status=status)


# ----------------------------------------------------------------------------- tax rates


@requires("tax_rates.manage")
def tax_rate_list(request):
    """Every rate, grouped by country: what invoices will be taxed at, and the form to add one."""
    from contracts.models import TaxCategory, TaxRate
    from contracts.services.tax import tax_rate_create

    form = TaxRateForm(request.POST or None, initial=TaxRateForm.initial_for(None))
    status = 200
    if request.method == "POST":
        try:
            rate = tax_rate_create(data=form.to_wire(), user=request.user)
            messages.success(request, f"{rate.name} applies from {rate.valid_from:%-d %b %Y}.")
            return redirect("contracts:tax_rate_list")
        except ValidationError as exc:
            for _name, errs in form.add_service_errors(exc).items():
                form.add_error(None, errs)
            status = 400
    order = {c: i for i, c in enumerate(TaxCategory.values)}  # standard, reduced, …, exempt
    rates = sorted(
        TaxRate.objects.all(), key=lambda r: (r.country, r.region, order.get(r.category, 9), -r.valid_from.toordinal())
    )
    today = timezone.localdate()
    in_force: set[int] = set()
    seen: set[tuple] = set()
    for (
        rate
    ) in rates:  # newest first per (country, region, category): the first one started on or before today is in force
        key = (rate.country, rate.region, rate.category)
        if key not in seen and rate.valid_from <= today:
            in_force.add(rate.pk)
            seen.add(key)
    groups: dict[str, list] = {}
    for rate in rates:
        groups.setdefault(rate.country, []).append(rate)
    entity_countries = sorted({c for c in IssuingEntity.objects.values_list("country", flat=True) if c})
    context = {
        "groups": groups,
        "in_force": in_force,
        "form": form,
        "entity_countries": entity_countries,
        "uncovered": [c for c in entity_countries if c not in groups],
        "today": today,
    }
    return render(request, "contracts/tax_rate_list.html", context, status=status)


@requires("tax_rates.manage")
def tax_rate_edit(request, pk: int):
    from contracts.models import TaxRate
    from contracts.services.tax import tax_rate_update

    rate = get_object_or_404(TaxRate, pk=pk)
    form = TaxRateForm(request.POST or None, initial=TaxRateForm.initial_for(rate))
    status = 200
    if request.method == "POST":
        try:
            rate = tax_rate_update(rate=rate, data=form.to_wire(), user=request.user)
            messages.success(
                request, f"{rate.name} was saved. Invoices already issued keep the rate they were issued with."
            )
            return redirect("contracts:tax_rate_list")
        except ValidationError as exc:
            for _name, errs in form.add_service_errors(exc).items():
                form.add_error(None, errs)
            status = 400
    return render(request, "contracts/tax_rate_form.html", {"form": form, "rate": rate}, status=status)


# ----------------------------------------------------------------------------- contracts


def _whole_number(value: str, *, maximum: int) -> int | None:
    """A number from a filter link (ASCII digits, 0–maximum), or None to ignore the filter."""
    try:
        return parse_int(value, minimum=0, maximum=maximum) if value else None
    except ValueError:
        return None


@requires("contracts.view")
def contract_list(request):
    filters = {k: request.GET.get(k, "").strip() for k in ("q", "status", "customer", "issuing_entity")}
    ending = request.GET.get("ending", "")
    ending_days = _whole_number(ending, maximum=3660)
    page = _page(request, selectors.contract_list(**filters, ending_within_days=ending_days))
    today = timezone.localdate()
    rows = []
    for contract in page.object_list:
        versions = list(contract.versions.all())
        rows.append(
            {
                "contract": contract,
                "version": version_in_force(versions, today),
                "versions": len(versions),
                "value": selectors.contract_value_of(contract, as_of=today),
            }
        )
    context = {
        "page": page,
        "rows": rows,
        "filters": {**filters, "ending": ending},
        "qs": _querystring(request),
        "statuses": ContractStatus.choices,
        "entities": IssuingEntity.objects.order_by("legal_name"),
        "can_manage": has_capability(request.user, "contracts.manage"),
    }
    template = "contracts/contract_list.html#contract-table" if request.htmx else "contracts/contract_list.html"
    return render(request, template, context)


@requires("contracts.view")
def contract_detail(request, pk: int):
    from contracts.models import Contract

    try:
        contract = selectors.contract_with_versions(pk=pk)
    except Contract.DoesNotExist:
        raise Http404("No such contract.") from None
    today = timezone.localdate()
    versions = list(contract.versions.all())
    in_force = version_in_force(versions, today)
    shown = in_force
    wanted = request.GET.get("version", "")
    if (number := _whole_number(wanted, maximum=32767)) is not None:
        shown = next((v for v in versions if v.version == number), in_force)
    context = {
        "contract": contract,
        "versions": versions,
        "in_force": in_force,
        "shown": shown,
        "today": today,
        "scheduled": [v for v in versions if v.effective_from > today],
        "value": selectors.contract_value_of(contract, as_of=today),
        "milestones": selectors.milestones_of(contract, versions),
        "history": selectors.contract_history(contract=contract),
        "can_manage": has_capability(request.user, "contracts.manage"),
        "can_deliver": has_capability(request.user, "milestones.deliver"),
        "terms_editable": bool(versions) and version_is_editable(versions[-1], contract),
        "renewal_alert_days": (alert_days := contract.renewal_window_for(request.tenant.renewal_window_days)),
        "renewal_alert_on": contract.end_date - timedelta(days=alert_days) if contract.end_date else None,
    }
    if request.htmx and request.GET.get("partial") == "terms":
        return render(request, "contracts/contract_detail.html#version-terms", context)
    return render(request, "contracts/contract_detail.html", context)


def _contract_or_404(pk: int):
    from contracts.models import Contract

    return get_object_or_404(Contract.objects.select_related("customer", "issuing_entity", "owner"), pk=pk)


def _editor_context(form, rows, **extra):
    return {"form": form, "rows": rows, "kinds": PriceLineKind.choices, **extra}


@requires("contracts.manage")
def contract_create_view(request):
    if request.method == "POST":
        form = ContractForm(request.POST, request.FILES)
        _tokens, lines = lines_from_post(request.POST)
        data = {**form.header_wire(), **form.terms_wire(), "price_lines": lines}
        try:
            contract = contract_create(
                data=data, user=request.user, signed_document=request.FILES.get("signed_document")
            )
        except ValidationError as exc:
            rest = form.add_service_errors(exc)
            rows = rows_for(lines, exc.message_dict)
            line_errors = {k: v for k, v in rest.items() if not k.startswith("price_lines.")}
            return render(
                request,
                "contracts/contract_form.html",
                _editor_context(
                    form,
                    rows,
                    other_errors=line_errors,
                    terms_editable=True,
                    failed=True,
                ),
                status=400,
            )
        messages.success(request, f"Contract {contract.number} was created.")
        return redirect("contracts:contract_detail", pk=contract.pk)
    initial = ContractForm.initial_for()
    if parse_id(request.GET.get("customer", "")) is not None:
        initial["customer"] = request.GET["customer"]
    form = ContractForm(initial=initial)
    rows = [line_row(token=new_token(), values={"kind": PriceLineKind.RECURRING})]
    return render(request, "contracts/contract_form.html", _editor_context(form, rows, terms_editable=True))


@requires("contracts.manage")
def contract_edit_view(request, pk: int):
    contract = _contract_or_404(pk)
    versions = selectors.contract_versions(contract=contract)
    latest = versions[-1]
    editable = version_is_editable(latest, contract)
    if request.method == "POST":
        form = ContractForm(request.POST, request.FILES, full_status=True)
        data = form.header_wire()
        lines = []
        if editable:
            data.update(form.terms_wire())
            _, lines = lines_from_post(request.POST)
            data["price_lines"] = lines
        try:
            contract_update(
                contract=contract, data=data, user=request.user, signed_document=request.FILES.get("signed_document")
            )
        except ValidationError as exc:
            rest = form.add_service_errors(exc)
            rows = rows_for(lines, exc.message_dict) if editable else []
            return render(
                request,
                "contracts/contract_form.html",
                _editor_context(
                    form,
                    rows,
                    contract=contract,
                    latest=latest,
                    terms_editable=editable,
                    failed=True,
                    other_errors={k: v for k, v in rest.items() if not k.startswith("price_lines.")},
                ),
                status=400,
            )
        messages.success(request, f"Contract {contract.number} was saved.")
        return redirect("contracts:contract_detail", pk=contract.pk)
    form = ContractForm(initial=ContractForm.initial_for(contract, latest), full_status=True)
    rows = rows_for(terms_to_wire(latest, with_refs=True)["price_lines"])
    return render(
        request,
        "contracts/contract_form.html",
        _editor_context(
            form,
            rows,
            contract=contract,
            latest=latest,
            terms_editable=editable,
        ),
    )


@requires("contracts.manage")
def contract_amend_view(request, pk: int):
    """Amend: edit the terms, review them as a diff against the terms they replace, then save."""
    contract = _contract_or_404(pk)
    versions = selectors.contract_versions(contract=contract)
    latest = versions[-1]
    context = {"contract": contract, "latest": latest, "kinds": PriceLineKind.choices}
    if request.method == "POST":
        form = AmendmentForm(request.POST)
        _, lines = lines_from_post(request.POST)
        changes = {**form.changes_wire(), "price_lines": lines}
        effective_from = form.cleaned_data["effective_from"]
        action = request.POST.get("action", "preview")
        try:
            if action == "save":
                version = contract_amend(
                    contract=contract, effective_from=effective_from, changes=changes, user=request.user
                )
                messages.success(
                    request,
                    f"Amendment saved: version {version.version} of {contract.number} takes effect on {version.effective_from:%-d %b %Y}.",
                )
                if request.htmx:
                    response = HttpResponse(status=204)
                    response["HX-Redirect"] = reverse("contracts:contract_detail", args=[contract.pk])
                    return response
                return redirect("contracts:contract_detail", pk=contract.pk)
            prepared = contract_amend_prepare(contract=contract, effective_from=effective_from, changes=changes)
            context.update(form=form, rows=rows_for(lines), prepared=prepared, diff=prepared.diff)
            status = 200
        except ValidationError as exc:
            rest = form.add_service_errors(exc)
            context.update(
                form=form,
                rows=rows_for(lines, exc.message_dict),
                failed=True,
                other_errors={k: v for k, v in rest.items() if not k.startswith("price_lines.")},
            )
            status = 400
        template = "contracts/contract_amend.html#amend-form" if request.htmx else "contracts/contract_amend.html"
        return render(request, template, context, status=status if not request.htmx else 200)
    wire = terms_to_wire(latest, with_refs=True)
    today = timezone.localdate()
    suggested = today.replace(day=1)
    suggested = (
        suggested.replace(year=suggested.year + 1, month=1)
        if suggested.month == 12
        else suggested.replace(month=suggested.month + 1)
    )
    if suggested <= latest.effective_from:
        suggested = latest.effective_from + timezone.timedelta(days=1)
    form = AmendmentForm(
        initial={
            "effective_from": suggested.isoformat(),
            **{k: wire[k] for k in ("currency", "payment_terms_days", "billing_anchor", "po_number", "po_required")},
        }
    )
    context.update(form=form, rows=rows_for(wire["price_lines"]))
    return render(request, "contracts/contract_amend.html", context)


@requires("contracts.manage")
@require_POST
def contract_activate_view(request, pk: int):
    contract = _contract_or_404(pk)
    try:
        contract_activate(contract=contract, user=request.user)
        messages.success(request, f"Contract {contract.number} is active and will be billed.")
    except ValidationError as exc:
        messages.error(request, " ".join(m for msgs in exc.message_dict.values() for m in msgs))
    return redirect("contracts:contract_detail", pk=contract.pk)


# ----------------------------------------------------------------------------- editor rows (htmx)


@requires("contracts.manage")
@require_GET
def price_line_row(request):
    """A price line row: new (``kind``), or re-rendered for a changed kind / charge model."""
    token = request.GET.get("token") or new_token()
    values = row_values_from_post(request.GET, token) if request.GET.get("token") else {}
    if request.GET.get("kind") and not request.GET.get("token"):
        values["kind"] = request.GET["kind"]
    if (
        values.get("kind") == PriceLineKind.USAGE
        and values.get("tiers")
        and values.get("charge_model") not in ("graduated", "volume", "graduated_percentage")
    ):
        values.pop("tiers")
    row = line_row(token=token, values=values)
    return render(request, "contracts/_editor.html#price-line-row", {"row": row, "kinds": PriceLineKind.choices})


@requires("contracts.manage")
@require_GET
def tier_row(request):
    row = LineRow(
        token=request.GET.get("line", ""),
        kind="usage",
        charge_model=request.GET.get("charge_model", ""),
        description="",
        line_ref="",
        fields=[],
        tiers=[],
        rates=[],
        tier_price_field="rate" if request.GET.get("charge_model") == "graduated_percentage" else "unit_amount",
    )
    tier = SubRow(token=new_token(), values={"up_to": "", "price": "", "flat_amount": ""})
    return render(request, "contracts/_editor.html#tier-row", {"row": row, "tier": tier})


@requires("contracts.manage")
@require_GET
def rate_row(request):
    row = LineRow(
        token=request.GET.get("line", ""),
        kind="time_and_materials",
        charge_model="",
        description="",
        line_ref="",
        fields=[],
        tiers=[],
        rates=[],
        tier_price_field="unit_amount",
    )
    rate = SubRow(token=new_token(), values={"role": "", "hourly_rate": ""})
    return render(request, "contracts/_editor.html#rate-row", {"row": row, "rate": rate})


# ----------------------------------------------------------------------------- CSV import and export

IMPORTERS = {
    "customers": (imports.customers_import_preview, imports.customers_import_commit, "customers.manage"),
    "contracts": (imports.contracts_import_preview, imports.contracts_import_commit, "contracts.manage"),
}


def _import_view(request, what: str):
    preview_fn, commit_fn, _ = IMPORTERS[what]
    form = ImportForm(request.POST or None, request.FILES or None)
    context = {"form": form, "what": what, "columns": imports.COLUMNS[what], "example": imports.EXAMPLES[what]}
    if request.method == "POST":
        text = None
        upload = request.FILES.get("file")
        try:
            if upload is not None:
                text = imports.decode_upload(upload.read())
            elif request.POST.get("payload"):
                text = base64.b64decode(request.POST["payload"]).decode("utf-8")
        except (ValidationError, binascii.Error, UnicodeDecodeError) as exc:
            messages_ = (
                exc.messages if isinstance(exc, ValidationError) else ["The file could not be read; upload it again."]
            )
            context["file_errors"] = messages_
            return render(request, "contracts/import.html", context, status=400)
        if text is None:
            context["file_errors"] = ["Choose a CSV file to import."]
            return render(request, "contracts/import.html", context, status=400)
        if request.POST.get("action") == "commit":
            try:
                result = commit_fn(text=text, user=request.user)
            except imports.ImportRejected as exc:
                context.update(preview=exc.preview, payload=base64.b64encode(text.encode()).decode())
                context["file_errors"] = ["Nothing was imported: fix the rows below and upload the file again."]
                return render(request, "contracts/import.html", context, status=400)
            messages.success(request, result.summary)
            return redirect(f"contracts:{what[:-1]}_list")
        preview = preview_fn(text=text)
        context.update(preview=preview, payload=base64.b64encode(text.encode()).decode())
        return render(request, "contracts/import.html", context, status=200 if preview.ok else 400)
    return render(request, "contracts/import.html", context)


@requires("customers.manage")
def customers_import(request):
    return _import_view(request, "customers")


@requires("contracts.manage")
def contracts_import(request):
    return _import_view(request, "contracts")


def _csv_response(text: str, filename: str) -> HttpResponse:
    response = HttpResponse(text, content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response


@requires("customers.view")
def customers_export(request):
    filters = {k: request.GET.get(k, "").strip() for k in ("q", "currency", "status", "owner")}
    return _csv_response(imports.customers_export_csv(customers=selectors.customer_list(**filters)), "customers.csv")


@requires("contracts.view")
def contracts_export(request):
    filters = {k: request.GET.get(k, "").strip() for k in ("q", "status", "customer", "issuing_entity")}
    return _csv_response(imports.contracts_export_csv(contracts=selectors.contract_list(**filters)), "contracts.csv")


@requires("contracts.view")
def import_template(request, what: str):
    if what not in IMPORTERS:
        raise Http404
    return _csv_response(imports.template_csv(what), f"{what}-template.csv")
