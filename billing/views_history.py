"""Importing the invoices the previous billing system sent (onboarding history): upload, preview, commit.

The preview shows what matched which contract and period, what did not, and the ``billed_through``
each contract would get from it; the commit stores everything or nothing (billing.services.history).
"""

from __future__ import annotations

import secrets

from django.contrib import messages
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.db import transaction
from django.http.multipartparser import MultiPartParserError
from django.shortcuts import redirect, render

from billing.history_formats import ExportProblem, ExportRejected
from billing.models_history import HistoryImport
from billing.services.history import (
    history_cutover_apply,
    history_cutover_suggestions,
    history_import_preview,
    history_store,
)
from revexos.accounts.decorators import requires
from revexos.money import MINOR_UNITS

SESSION_KEY = "history_pending"
MAX_BYTES = 10 * 1024 * 1024


def _stash(request, name: str, raw: bytes) -> str:
    token = secrets.token_hex(12)
    default_storage.save(f"history/pending/{token}", ContentFile(raw))
    request.session[SESSION_KEY] = {"token": token, "name": name}
    return token


def _stashed(request, token: str) -> tuple[str, bytes] | None:
    pending = request.session.get(SESSION_KEY) or {}
    if not token or pending.get("token") != token:
        return None
    path = f"history/pending/{token}"
    if not default_storage.exists(path):
        return None
    with default_storage.open(path, "rb") as handle:
        return pending["name"], handle.read()


def _forget(request, token: str) -> None:
    path = f"history/pending/{token}"
    if default_storage.exists(path):
        default_storage.delete(path)
    request.session.pop(SESSION_KEY, None)


@requires("contracts.manage")
def history_import(request):
    context = {
        "imports": HistoryImport.objects.select_related("created_by")[:20],
        "currencies": sorted(MINOR_UNITS),
        "values": {k: request.POST.get(k, "") for k in ("date_format", "currency")},
    }
    if request.method != "POST":
        return render(request, "billing/history_import.html", context)
    try:
        token = request.POST.get("pending", "")
        upload = request.FILES.get("file")
    except MultiPartParserError:
        context["problems"] = [ExportProblem("", "The upload did not arrive whole; choose the file and send it again.")]
        return render(request, "billing/history_import.html", context, status=400)
    if upload is not None:
        if upload.size > MAX_BYTES:
            context["problems"] = [ExportProblem(upload.name, "The file is larger than 10 MB; export a shorter range.")]
            return render(request, "billing/history_import.html", context, status=400)
        name, raw = upload.name, upload.read()
        if token:
            _forget(request, token)
        token = ""
    else:
        stashed = _stashed(request, token)
        if stashed is None:
            context["problems"] = [ExportProblem("", "Choose the invoice export (CSV) to import.")]
            return render(request, "billing/history_import.html", context, status=400)
        name, raw = stashed
    options = {
        "date_format": context["values"]["date_format"] or None,
        "default_currency": context["values"]["currency"] or None,
    }
    try:
        if request.POST.get("action") == "commit":
            with transaction.atomic():
                preview = history_import_preview(raw=raw, file_name=name, **options)
                batch = history_store(preview, user=request.user)
                changed = (
                    history_cutover_apply(preview=preview, user=request.user)
                    if request.POST.get("set_billed_through")
                    else []
                )
            if token:
                _forget(request, token)
            note = f" billed_through set on {', '.join(changed)}." if changed else ""
            messages.success(
                request,
                f"Imported {batch.invoice_count} invoices ({batch.matched_line_count} of {batch.line_count} lines matched to a contract period).{note}",
            )
            return redirect("billing:history_import")
        preview = history_import_preview(raw=raw, file_name=name, **options)
    except ExportRejected as exc:
        context.update(problems=exc.problems, needs_date_format=exc.needs_date_format)
        if exc.needs_date_format and len(exc.problems) == 1:
            context.update(pending=token or _stash(request, name, raw), pending_name=name)
        return render(request, "billing/history_import.html", context, status=400)
    context.update(
        preview=preview,
        suggestions=history_cutover_suggestions(preview),
        pending=token or _stash(request, name, raw),
        pending_name=name,
    )
    return render(request, "billing/history_import.html", context)
