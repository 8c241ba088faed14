"""Accounting exports on the public API (DESIGN.md §5.1): ``GET /api/v1/exports/{xero|quickbooks|journal}``."""

from __future__ import annotations

from django.http import Http404, HttpResponse
from ninja import Field, Query, Router, Schema

from integrations.models import AccountingExport, ExportTarget
from revexos.api_kit import id_or_404

router = Router(tags=["accounting exports"])

FILE_RESPONSES = {
    "responses": {
        "200": {
            "description": "The file: CSV, or a zip of CSVs where the target limits a file's size (Xero: 500 documents)",
            "content": {"text/csv": {}, "application/zip": {}},
        }
    }
}


class ExportRangeIn(Schema):
    from_: str = Field("", alias="from", description="First issue date, YYYY-MM-DD")
    to: str = Field("", description="Last issue date, YYYY-MM-DD (at most 400 days after from)")


class AccountingExportOut(Schema):
    id: str
    target: str
    date_from: str
    date_to: str
    filename: str
    size: int
    sha256: str
    invoices: int
    credit_notes: int
    payments: int
    created_at: str
    created_via: str


def export_to_wire(e: AccountingExport) -> dict:
    return {
        "id": str(e.pk),
        "target": e.target,
        "date_from": e.date_from.isoformat(),
        "date_to": e.date_to.isoformat(),
        "filename": e.filename,
        "size": e.size,
        "sha256": e.sha256,
        "invoices": e.invoices,
        "credit_notes": e.credit_notes,
        "payments": e.payments,
        "created_at": e.created_at.isoformat(),
        "created_via": e.created_via,
    }


def _file_response(export: AccountingExport) -> HttpResponse:
    from integrations.services.exports import accounting_export_bytes

    response = HttpResponse(accounting_export_bytes(export), content_type=export.content_type)
    response["Content-Disposition"] = f'attachment; filename="{export.filename}"'
    response["X-Export-Id"] = str(export.pk)
    response["X-Export-Sha256"] = export.sha256
    return response


@router.get("/exports", response=list[AccountingExportOut], summary="Accounting exports made so far, newest first")
def exports_list(request):
    return [export_to_wire(e) for e in AccountingExport.objects.order_by("-created_at", "-id")[:200]]


@router.get(
    "/exports/{target}",
    summary="Export invoices and credit notes issued in a range (xero, quickbooks or journal)",
    response={200: None},
    openapi_extra=FILE_RESPONSES,
)
def exports_create(request, target: str, range_: Query[ExportRangeIn]):
    from integrations.services.exports import accounting_export_create

    if target not in ExportTarget.values:
        raise Http404(f"No export {target!r}; use xero, quickbooks or journal.")
    export = accounting_export_create(target=target, date_from=range_.from_, date_to=range_.to, via="api")
    return _file_response(export)


@router.get(
    "/exports/{target}/{export_id}",
    summary="Download a recorded export again (the same bytes)",
    response={200: None},
    openapi_extra=FILE_RESPONSES,
)
def exports_download(request, target: str, export_id: str):
    export = AccountingExport.objects.filter(pk=id_or_404(export_id, "export"), target=target).first()
    if export is None:
        raise Http404(f"No {target} export {export_id!r}.")
    return _file_response(export)
