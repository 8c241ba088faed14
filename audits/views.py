"""Audit pages: the list, the upload form, progress then the report, the PDF, re-run and share links.

Logic lives in ``audits/services``; these views translate HTTP. A share link opens the report (page
and PDF) without signing in, on this tenant's host only, until it expires or is revoked.
"""

from __future__ import annotations

import secrets
from datetime import date

from django.conf import settings
from django.contrib import messages
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.http import Http404, HttpResponse
from django.http.multipartparser import MultiPartParserError
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_POST

from audits.models import AuditStatus
from audits.selectors import audit_get, audit_list, audit_report_context
from audits.services.audits import (
    FILE_HELP,
    FILE_KINDS,
    AuditRejected,
    Upload,
    audit_create,
    audit_for_share_token,
    audit_rerun,
    audit_share_link_create,
    audit_share_link_revoke,
)
from revexos.accounts.decorators import requires
from revexos.money import MINOR_UNITS

PENDING_SESSION_KEY = "audit_pending_uploads"


@requires("audits.view")
def audit_list_view(request):
    return render(request, "audits/audit_list.html", {"audits": audit_list()[:100]})


def _stash(request, uploads: dict[str, Upload]) -> str:
    """Keep uploads for one more step (the date-format question) without asking for the files again."""
    token = secrets.token_hex(12)
    for kind, upload in uploads.items():
        default_storage.save(f"audits/pending/{token}/{kind}", ContentFile(upload.data))
    pending = request.session.get(PENDING_SESSION_KEY, {})
    pending[token] = {kind: upload.name for kind, upload in uploads.items()}
    request.session[PENDING_SESSION_KEY] = pending
    return token


def _unstash(request, token: str) -> dict[str, Upload]:
    pending = request.session.get(PENDING_SESSION_KEY, {})
    names = pending.get(token)
    if not names:
        return {}
    uploads = {}
    for kind, name in names.items():
        path = f"audits/pending/{token}/{kind}"
        if default_storage.exists(path):
            with default_storage.open(path, "rb") as handle:
                uploads[kind] = Upload(kind=kind, name=name, data=handle.read())
    return uploads


def _unstash_done(request, token: str) -> None:
    pending = request.session.get(PENDING_SESSION_KEY, {})
    for kind in pending.pop(token, {}):
        path = f"audits/pending/{token}/{kind}"
        if default_storage.exists(path):
            default_storage.delete(path)
    request.session[PENDING_SESSION_KEY] = pending


def _form_values(request) -> dict:
    return {
        k: (request.POST.get(k) or "").strip() for k in ("name", "date_format", "currency", "as_of", "history_from")
    }


@requires("audits.run")
def audit_new(request):
    context = {
        "kinds": [(kind, required, what, FILE_HELP[kind]) for kind, (required, what) in FILE_KINDS.items()],
        "limit_mb": settings.AUDIT_MAX_FILE_BYTES // (1024 * 1024),
        "retention_days": settings.AUDIT_RETENTION_DAYS,
        "currencies": sorted(MINOR_UNITS),
        "values": {},
    }
    if request.method != "POST":
        return render(request, "audits/audit_new.html", context)
    try:
        values = _form_values(request)
        request.FILES  # noqa: B018 - a broken upload is answered here, not as a server error
    except MultiPartParserError:
        context["problems"] = ["The upload did not arrive whole; choose the files and send them again."]
        return render(request, "audits/audit_new.html", context, status=400)
    context["values"] = values
    field_errors: dict[str, str] = {}
    token = request.POST.get("pending", "")
    uploads = _unstash(request, token) if token else {}
    limit = settings.AUDIT_MAX_FILE_BYTES
    for kind in FILE_KINDS:
        upload = request.FILES.get(kind)
        if upload is None:
            continue
        if upload.size > limit:
            field_errors[kind] = f"{upload.name} is larger than {limit // (1024 * 1024)} MB."
            continue
        uploads[kind] = Upload(kind=kind, name=upload.name or f"{kind}.csv", data=upload.read())
    dates = {}
    for key in ("as_of", "history_from"):
        if values[key]:
            try:
                dates[key] = date.fromisoformat(values[key])
            except ValueError:
                field_errors[key] = "Enter a date as YYYY-MM-DD."
    if field_errors:
        context["field_errors"] = field_errors
        return render(request, "audits/audit_new.html", context, status=400)
    try:
        audit = audit_create(
            name=values["name"],
            uploads=uploads,
            date_format=values["date_format"],
            default_currency=values["currency"],
            user=request.user,
            via="ui",
            **dates,
        )
    except AuditRejected as exc:
        context["problems"] = exc.problems
        context["needs_date_format"] = exc.needs_date_format
        only_dates = (
            exc.needs_date_format
            and not exc.problems[1:]
            and all(k in uploads for k, (required, _what) in FILE_KINDS.items() if required)
        )
        if only_dates:
            # Keep the files: the only question left is how to read the export's dates.
            if token:
                _unstash_done(request, token)
            context["pending"] = _stash(request, uploads)
            context["pending_names"] = {k: u.name for k, u in uploads.items()}
        return render(request, "audits/audit_new.html", context, status=400)
    if token:
        _unstash_done(request, token)
    messages.success(request, f"Audit “{audit.name}” started. This page follows its progress.")
    return redirect("audits:detail", audit_id=audit.pk)


@requires("audits.view")
def audit_detail(request, audit_id):
    audit = audit_get(audit_id)
    if request.htmx and request.GET.get("progress"):
        if audit.is_done:
            response = HttpResponse(status=204)
            response["HX-Refresh"] = "true"
            return response
        return render(request, "audits/_progress.html", {"audit": audit})
    context = audit_report_context(audit)
    context.update(
        can_run=request.user.role in ("admin", "finance", "account_manager"),
        share_links=list(audit.share_links.filter(revoked_at__isnull=True).order_by("-created_at")),
        new_share_url=request.session.pop(f"audit_share_{audit.pk}", None),
        shared=False,
    )
    return render(request, "audits/audit_detail.html", context)


@requires("audits.view")
def audit_pdf(request, audit_id):
    audit = audit_get(audit_id)
    return _pdf_response(audit)


def _pdf_response(audit):
    from audits.pdf import audit_report_pdf

    if audit.status != AuditStatus.READY:
        raise Http404("The report exists once the audit is ready.")
    response = HttpResponse(audit_report_pdf(audit=audit), content_type="application/pdf")
    response["Content-Disposition"] = f'attachment; filename="revenue-audit-{audit.created_at:%Y-%m-%d}.pdf"'
    return response


@require_POST
@requires("audits.run")
def audit_rerun_view(request, audit_id):
    audit = audit_get(audit_id)
    try:
        audit_rerun(audit=audit)
    except ValueError as exc:
        messages.error(request, str(exc))
    return redirect("audits:detail", audit_id=audit.pk)


@require_POST
@requires("audits.run")
def audit_share(request, audit_id):
    audit = audit_get(audit_id)
    try:
        _link, token = audit_share_link_create(audit=audit, user=request.user)
    except ValueError as exc:
        messages.error(request, str(exc))
        return redirect("audits:detail", audit_id=audit.pk)
    # Shown once, on the next page: only the token's hash is stored.
    request.session[f"audit_share_{audit.pk}"] = request.build_absolute_uri(reverse("audits:shared", args=[token]))
    return redirect(reverse("audits:detail", args=[audit.pk]) + "#share")


@require_POST
@requires("audits.run")
def audit_share_revoke(request, audit_id, link_id: int):
    audit = audit_get(audit_id)
    link = audit.share_links.filter(pk=link_id).first()
    if link is None:
        raise Http404("No such link.")
    audit_share_link_revoke(link=link)
    messages.success(request, f"The link {link.prefix}… no longer opens the report.")
    return redirect(reverse("audits:detail", args=[audit.pk]) + "#share")


def shared_report(request, token: str):
    """The report behind a share link: no sign-in, read-only, nothing but this one report."""
    audit = audit_for_share_token(token)
    if audit is None:
        return render(request, "audits/shared_gone.html", status=404)
    context = audit_report_context(audit)
    context.update(shared=True, token=token)
    return render(request, "audits/shared_report.html", context)


def shared_report_pdf(request, token: str):
    audit = audit_for_share_token(token)
    if audit is None:
        raise Http404("This link has expired or was revoked.")
    return _pdf_response(audit)
