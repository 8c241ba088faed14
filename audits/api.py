"""The Q2C audit over the API (DESIGN.md §5.1): ``POST /audits`` (multipart), ``GET /audits/{id}``,
``GET /audits/{id}/report.pdf``, ``GET /audits``.

``POST`` answers 202 with the audit queued (or 422 naming each bad file, row and column, and asking
for ``date_format`` when the invoice export's dates could be read either way); poll ``GET`` until
``status`` is ``ready`` (or ``failed``, with ``errors``).
"""

from __future__ import annotations

from datetime import date

from django.conf import settings
from django.core.exceptions import ValidationError
from django.http import HttpResponse
from django.http.multipartparser import MultiPartParserError
from ninja import Router, Status
from ninja.errors import HttpError

from audits.models import Audit, AuditStatus
from audits.selectors import audit_as_json, audit_get, audit_list
from audits.services.audits import FILE_KINDS, AuditRejected, Upload, audit_create
from revexos.money import MINOR_UNITS

router = Router(tags=["audits"])

_FILE = {"type": "string", "format": "binary"}
AUDIT_POST_DOC = {
    "requestBody": {
        "required": True,
        "description": "The prospect's exports. Each file at most "
        f"{settings.AUDIT_MAX_FILE_BYTES // (1024 * 1024)} MB.",
        "content": {
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "required": ["name", "contracts", "invoices"],
                    "properties": {
                        "name": {"type": "string", "description": "Whose revenue cycle is audited"},
                        "customers": {
                            **_FILE,
                            "description": "customers CSV (the customers import format); without it, customers are "
                            "made from the contracts and named as the invoices name them",
                        },
                        "contracts": {**_FILE, "description": "contracts CSV (the contracts import format)"},
                        "invoices": {**_FILE, "description": "Xero or QuickBooks Online invoice export (CSV)"},
                        "time_entries": {**_FILE, "description": "Harvest or Toggl detailed time export (CSV)"},
                        "usage": {**_FILE, "description": "usage CSV: contract, metric, quantity, timestamp"},
                        "date_format": {"type": "string", "enum": ["dmy", "mdy"], "description": "Only when asked"},
                        "currency": {"type": "string", "description": "For an export without a Currency column"},
                        "as_of": {"type": "string", "format": "date", "description": "Default: the last invoice date"},
                        "history_from": {
                            "type": "string",
                            "format": "date",
                            "description": "Default: the first invoice's month",
                        },
                    },
                }
            }
        },
    }
}


def _date(request, key: str, errors: dict) -> date | None:
    text = (request.POST.get(key) or "").strip()
    if not text:
        return None
    try:
        return date.fromisoformat(text)
    except ValueError:
        errors[key] = [f"“{text}” is not a date; use YYYY-MM-DD."]
        return None


@router.post(
    "/audits",
    response={202: dict},
    summary="Start a Q2C audit from another system's exports",
    openapi_extra=AUDIT_POST_DOC,
)
def audits_create(request):
    try:
        request.FILES  # noqa: B018 - parse the body once, here, where a broken one can be answered
    except MultiPartParserError as exc:
        raise HttpError(
            400, f"The body is not valid multipart/form-data ({exc}); send the files as form fields."
        ) from None
    errors: dict[str, list[str]] = {}
    limit = settings.AUDIT_MAX_FILE_BYTES
    uploads: dict[str, Upload] = {}
    unknown = sorted(set(request.FILES) - set(FILE_KINDS))
    for name in unknown:
        errors[name] = [f"Unknown file; send {', '.join(FILE_KINDS)}."]
    for kind in FILE_KINDS:
        upload = request.FILES.get(kind)
        if upload is None:
            continue
        if upload.size > limit:
            raise HttpError(413, f"{kind}: {upload.name} is larger than {limit // (1024 * 1024)} MB.")
        uploads[kind] = Upload(kind=kind, name=upload.name or f"{kind}.csv", data=upload.read())
    as_of, history_from = _date(request, "as_of", errors), _date(request, "history_from", errors)
    currency = (request.POST.get("currency") or "").strip().upper()
    if currency and currency not in MINOR_UNITS:
        errors["currency"] = [f"“{currency}” is not a supported currency; use an ISO 4217 code such as USD."]
    if errors:
        raise ValidationError(errors)
    try:
        audit = audit_create(
            name=request.POST.get("name", ""),
            uploads=uploads,
            as_of=as_of,
            history_from=history_from,
            date_format=(request.POST.get("date_format") or "").strip().lower(),
            default_currency=currency,
            via="api",
        )
    except AuditRejected as exc:
        raise ValidationError(exc.by_field()) from None
    return Status(202, audit_as_json(audit, request=request))


@router.get("/audits", response=list[dict], summary="Audits of this tenant, newest first")
def audits_list(request):
    return [audit_as_json(a, request=request, with_findings=False) for a in audit_list()[:100]]


@router.get("/audits/{audit_id}", response=dict, summary="An audit: status and progress, then findings and totals")
def audits_get(request, audit_id: str):
    return audit_as_json(audit_get(audit_id), request=request)


@router.get(
    "/audits/{audit_id}/report.pdf",
    summary="The audit report as a PDF",
    openapi_extra={
        "responses": {
            "200": {
                "description": "The report",
                "content": {"application/pdf": {"schema": {"type": "string", "format": "binary"}}},
            }
        }
    },
)
def audits_report_pdf(request, audit_id: str):
    from audits.pdf import audit_report_pdf

    audit: Audit = audit_get(audit_id)
    if audit.status != AuditStatus.READY:
        raise HttpError(409, f"The audit is {audit.get_status_display().lower()}; the report exists once it is ready.")
    response = HttpResponse(audit_report_pdf(audit=audit), content_type="application/pdf")
    response["Content-Disposition"] = f'attachment; filename="audit-{str(audit.pk)[:8]}.pdf"'
    return response
