"""Finance → Accounting exports: export a range for Xero, QuickBooks or the journal, download any
export again, and set the account codes the files post to."""

from __future__ import annotations

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.http import HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_POST

from integrations.exports import XERO_MAX_DOCUMENTS
from integrations.models import AccountingExport, ExportTarget
from integrations.services.exports import (
    accounting_export_bytes,
    accounting_export_create,
    accounting_settings,
    last_month,
)
from revexos.accounts.decorators import requires
from revexos.dates import tenant_today

KIND_LABELS = {
    "recurring": "Recurring",
    "overage": "Overage hours",
    "fixed_fee": "Fixed fee",
    "milestone": "Milestone",
    "time_and_materials": "Time & materials",
    "usage": "Usage",
    "usage_minimum": "Usage minimum",
}


@requires("exports.manage")
def export_list(request):
    start, end = last_month(tenant_today())
    values = {"target": ExportTarget.XERO, "from": start.isoformat(), "to": end.isoformat()}
    errors: dict[str, list[str]] = {}
    if request.method == "POST":
        values = {k: request.POST.get(k, "") for k in ("target", "from", "to")}
        try:
            export = accounting_export_create(
                target=values["target"], date_from=values["from"], date_to=values["to"], user=request.user
            )
        except ValidationError as exc:
            errors = exc.message_dict
        else:
            messages.success(
                request,
                f"{export.get_target_display()}: {export.invoices} invoice{'s' if export.invoices != 1 else ''}"
                f", {export.credit_notes} credit note{'s' if export.credit_notes != 1 else ''}"
                + (f", {export.payments} payments" if export.target == ExportTarget.JOURNAL else "")
                + f" in {export.filename}.",
            )
            return redirect("integrations:exports")
    settings_row = accounting_settings()
    context = {
        "exports": AccountingExport.objects.select_related("created_by").order_by("-created_at", "-id")[:50],
        "targets": ExportTarget.choices,
        "values": values,
        "errors": errors,
        "settings": settings_row,
        "kinds": [(k, label, (settings_row.revenue_accounts or {}).get(k, "")) for k, label in KIND_LABELS.items()],
        "xero_max": XERO_MAX_DOCUMENTS,
    }
    return render(request, "integrations/exports.html", context, status=400 if errors else 200)


@requires("exports.manage")
def export_download(request, pk: int):
    export = get_object_or_404(AccountingExport, pk=pk)
    response = HttpResponse(accounting_export_bytes(export), content_type=export.content_type)
    response["Content-Disposition"] = f'attachment; filename="{export.filename}"'
    return response


@require_POST
@requires("exports.manage")
def export_settings(request):
    row = accounting_settings()
    problems = []
    for field in ("receivable_account", "tax_account", "bank_account", "revenue_account"):
        value = request.POST.get(field, "").strip()
        if not value or len(value) > 30:
            problems.append(f"Give the {field.replace('_', ' ')} code (at most 30 characters).")
        else:
            setattr(row, field, value)
    per_kind = {}
    for kind in KIND_LABELS:
        value = request.POST.get(f"revenue_{kind}", "").strip()
        if len(value) > 30:
            problems.append(f"The {KIND_LABELS[kind]} account code has more than 30 characters.")
        elif value:
            per_kind[kind] = value
    if problems:
        for p in problems:
            messages.error(request, p)
        return redirect("integrations:exports")
    row.revenue_accounts = per_kind
    row.save()
    messages.success(request, "Account codes saved; the next exports use them.")
    return redirect("integrations:exports")
