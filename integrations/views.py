"""Integration pages: connections (URL, secret, status, mappings, inbox) and time imports.

Views translate HTTP; the rules live in integrations.services.
"""

from __future__ import annotations

import base64
import binascii

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.core.paginator import Paginator
from django.db.models import Count, Q
from django.http import Http404
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.views.decorators.http import require_POST

from integrations.models import (
    WEBHOOK_SOURCES,
    Connection,
    InboxEvent,
    InboxStatus,
    Mapping,
    MappingKind,
    Source,
    TimeImport,
)
from integrations.services import connections as conn_services
from integrations.services.inbox import inbox_event_replay
from integrations.services.time_imports import TimeImportRejected, time_import_commit, time_import_preview
from integrations.timecsv import decode_csv
from revexos.accounts.decorators import requires

PAGE_SIZE = 25
SECRET_SESSION_KEY = "integrations_new_secret"


def webhook_url(request, source: str) -> str:
    return request.build_absolute_uri(reverse(f"webhook_{source}")) if source in WEBHOOK_SOURCES else ""


def _source_or_404(source: str) -> str:
    if source not in Source.values:
        raise Http404("Unknown source.")
    return source


@requires("integrations.manage")
def connection_list(request):
    connected = {
        c.source: c
        for c in Connection.objects.annotate(
            pending=Count("events", filter=Q(events__status=InboxStatus.PENDING)),
            failed=Count("events", filter=Q(events__status=InboxStatus.FAILED)),
            unmatched=Count("events", filter=Q(events__status=InboxStatus.UNMATCHED)),
        )
    }
    groups = [
        (
            "Project tools",
            "A done issue delivers the milestone with its key; scope changes raise a review.",
            ("jira", "linear", "asana"),
        ),
        ("CRMs", "A won deal becomes a draft contract for finance to check and activate.", ("hubspot", "salesforce")),
        ("Time trackers", "Hours from exports or a scheduled pull become billable time entries.", ("harvest", "toggl")),
    ]
    cards = [
        (title, blurb, [(s, Source(s).label, connected.get(s), conn_services.SPECS[s].help) for s in sources])
        for title, blurb, sources in groups
    ]
    return render(request, "integrations/connection_list.html", {"groups": cards})


def _settings_fields(source: str, connection: Connection | None = None) -> list[dict]:
    spec = conn_services.SPECS[source]
    keys = list(dict.fromkeys((*spec.required, *spec.settings)))
    if "api_token" not in keys and source in ("harvest",):
        keys.append("api_token")
    fields = []
    for key in keys:
        value = ""
        if connection is not None and key != "api_token":
            value = (connection.settings or {}).get(key, "")
        fields.append(
            {
                "name": key,
                "label": conn_services.SETTING_LABELS.get(key, key),
                "value": value,
                "placeholder": conn_services.DEFAULT_API_BASES.get(source, "")
                if key == "api_base"
                else conn_services.SETTING_DEFAULTS.get(key, ""),
                "required": key in spec.required and connection is None,
                "secret": key == "api_token",
                "has_value": bool(connection and key == "api_token" and connection.api_token),
            }
        )
    return fields


@requires("integrations.manage")
def connection_connect(request, source: str):
    source = _source_or_404(source)
    if Connection.objects.filter(source=source).exists():
        return redirect("integrations:detail", source=source)
    spec = conn_services.SPECS[source]
    errors: dict = {}
    if request.method == "POST":
        data = {k: v for k, v in request.POST.items() if k not in ("csrfmiddlewaretoken",) and v.strip()}
        data["source"] = source
        try:
            connection, secret = conn_services.connection_create(data=data, user=request.user)
        except ValidationError as exc:
            errors = exc.message_dict
        else:
            if secret and spec.secret == "generate":
                request.session[SECRET_SESSION_KEY] = {"source": source, "secret": secret}
            messages.success(request, f"{connection.get_source_display()} is connected.")
            return redirect("integrations:detail", source=source)
    fields = _settings_fields(source)
    for f in fields:
        f["value"] = (
            request.POST.get(f["name"], f["value"]) if request.method == "POST" and not f["secret"] else f["value"]
        )
        f["errors"] = errors.get(f["name"], [])
    return render(
        request,
        "integrations/connect.html",
        {
            "source": source,
            "label": Source(source).label,
            "spec": spec,
            "fields": fields,
            "errors": errors,
            "webhook_url": webhook_url(request, source),
        },
    )


@requires("integrations.manage")
def connection_detail(request, source: str):
    source = _source_or_404(source)
    connection = Connection.objects.filter(source=source).first()
    if connection is None:
        return redirect("integrations:connect", source=source)
    new_secret = None
    shown = request.session.get(SECRET_SESSION_KEY)
    if shown and shown.get("source") == source:
        new_secret = shown["secret"]
        del request.session[SECRET_SESSION_KEY]  # shown in full this once
    status = request.GET.get("status", "")
    events = InboxEvent.objects.filter(connection=connection).select_related("contract").defer("body")
    if status in InboxStatus.values:
        events = events.filter(status=status)
    page = Paginator(events, PAGE_SIZE).get_page(request.GET.get("page"))
    counts = dict(
        InboxEvent.objects.filter(connection=connection).values_list("status").annotate(n=Count("id")).order_by()
    )
    context = {
        "connection": connection,
        "source": source,
        "label": connection.get_source_display(),
        "spec": conn_services.SPECS[source],
        "webhook_url": webhook_url(request, source),
        "new_secret": new_secret,
        "masked_secret": conn_services.secret_mask(connection.secret),
        "grace_secret": conn_services.secret_mask(connection.previous_secret)
        if connection.previous_secret and connection.previous_secret_expires_at
        else "",
        "fields": _settings_fields(source, connection),
        "show_mappings": source not in ("hubspot", "salesforce"),
        "mappings": Mapping.objects.filter(connection=connection).select_related("contract"),
        # Project tools and CRMs map projects; time trackers also map tasks to roles and people to names.
        "mapping_kinds": MappingKind.choices if source in ("harvest", "toggl") else MappingKind.choices[:1],
        "page": page,
        "events": page.object_list,
        "status": status,
        "statuses": InboxStatus.choices,
        "counts": counts,
        "query": f"status={status}" if status else "",
    }
    if request.htmx and request.GET.get("page"):
        return render(request, "integrations/connection_detail.html#inbox", context)
    return render(request, "integrations/connection_detail.html", context)


@require_POST
@requires("integrations.manage")
def connection_settings(request, source: str):
    connection = get_object_or_404(Connection, source=_source_or_404(source))
    data = {k: v for k, v in request.POST.items() if k != "csrfmiddlewaretoken" and v.strip()}
    data["is_active"] = request.POST.get("is_active") == "on"
    try:
        conn_services.connection_update(connection=connection, data=data)
    except ValidationError as exc:
        for field, msgs in exc.message_dict.items():
            messages.error(request, f"{conn_services.SETTING_LABELS.get(field, field)}: {' '.join(msgs)}")
    else:
        messages.success(request, "Settings saved.")
    return redirect("integrations:detail", source=source)


@require_POST
@requires("integrations.manage")
def connection_rotate(request, source: str):
    connection = get_object_or_404(Connection, source=_source_or_404(source))
    try:
        secret = conn_services.connection_secret_rotate(
            connection_id=connection.pk, secret=request.POST.get("secret", "")
        )
    except ValidationError as exc:
        messages.error(request, " ".join(exc.messages))
        return redirect("integrations:detail", source=source)
    if secret and conn_services.SPECS[source].secret == "generate":
        request.session[SECRET_SESSION_KEY] = {"source": source, "secret": secret}
    if conn_services.SPECS[source].secret == "handshake":
        messages.success(
            request, "The connection now waits for Asana's next handshake; create the webhook again in Asana."
        )
    else:
        messages.success(
            request, "New secret saved. The previous one keeps working for 24 hours while you update the source."
        )
    return redirect("integrations:detail", source=source)


@require_POST
@requires("integrations.manage")
def mapping_add(request, source: str):
    connection = get_object_or_404(Connection, source=_source_or_404(source))
    try:
        conn_services.mapping_set(
            connection=connection,
            kind=request.POST.get("kind", ""),
            external=request.POST.get("external", ""),
            contract_ref=request.POST.get("contract", ""),
            value=request.POST.get("value", ""),
        )
    except ValidationError as exc:
        messages.error(request, " ".join(exc.messages))
    else:
        messages.success(request, "Mapping saved.")
    return redirect(reverse("integrations:detail", kwargs={"source": source}) + "#mappings")


@require_POST
@requires("integrations.manage")
def mapping_delete(request, source: str, mapping_id: int):
    Mapping.objects.filter(pk=mapping_id, connection__source=_source_or_404(source)).delete()
    messages.success(request, "Mapping removed.")
    return redirect(reverse("integrations:detail", kwargs={"source": source}) + "#mappings")


@requires("integrations.manage")
def event_detail(request, source: str, event_id: int):
    event = get_object_or_404(InboxEvent.objects.select_related("connection", "contract"), pk=event_id, source=source)
    raw = bytes(event.body)
    try:
        import json

        body = json.dumps(json.loads(raw), indent=2, ensure_ascii=False)
    except (ValueError, RecursionError):
        body = raw.decode("utf-8", errors="replace")
    return render(
        request,
        "integrations/event_detail.html",
        {"event": event, "source": source, "label": Source(source).label, "body": body[:200_000]},
    )


@require_POST
@requires("integrations.manage")
def event_replay(request, source: str, event_id: int):
    event = get_object_or_404(InboxEvent, pk=event_id, source=_source_or_404(source))
    try:
        inbox_event_replay(event_pk=event.pk)
    except ValidationError as exc:
        messages.error(request, " ".join(exc.messages))
    else:
        messages.success(request, "The event is queued again; refresh in a moment to see the outcome.")
    return redirect("integrations:event", source=source, event_id=event.pk)


# ----------------------------------------------------------------------------- time imports


@requires("time_imports.manage")
def time_import(request):
    fmt = request.POST.get("format") or request.GET.get("format") or "harvest"
    if fmt not in ("harvest", "toggl"):
        fmt = "harvest"
    context = {
        "format": fmt,
        "history": TimeImport.objects.select_related("created_by")[:20],
        "harvest": Connection.objects.filter(source=Source.HARVEST).first(),
    }
    if request.method == "POST":
        text = None
        filename = request.POST.get("filename", "")
        upload = request.FILES.get("file")
        try:
            if upload is not None:
                filename = upload.name
                text = decode_csv(upload.read())
            elif request.POST.get("payload"):
                text = base64.b64decode(request.POST["payload"]).decode("utf-8")
        except (ValueError, binascii.Error, UnicodeDecodeError) as exc:
            context["file_errors"] = [str(exc) if isinstance(exc, ValueError) else "The file could not be read."]
            return render(request, "integrations/time_import.html", context, status=400)
        if text is None:
            context["file_errors"] = ["Choose the CSV file your time tracker exported."]
            return render(request, "integrations/time_import.html", context, status=400)
        context["filename"] = filename
        context["payload"] = base64.b64encode(text.encode()).decode()
        if request.POST.get("action") == "commit":
            try:
                record = time_import_commit(text=text, format=fmt, filename=filename, user=request.user)
            except TimeImportRejected as exc:
                context["preview"] = exc.preview
                context["file_errors"] = ["Nothing was imported: fix the rows below and upload the file again."]
                return render(request, "integrations/time_import.html", context, status=400)
            messages.success(
                request,
                f"Imported {record.created} time entr{'y' if record.created == 1 else 'ies'} ({record.hours} h)"
                + (
                    f"; {record.duplicates} row{'s' if record.duplicates != 1 else ''} had been imported before"
                    if record.duplicates
                    else ""
                )
                + ". They are billed on the next run.",
            )
            return redirect("integrations:time_import")
        preview = time_import_preview(text=text, format=fmt)
        context["preview"] = preview
        return render(request, "integrations/time_import.html", context, status=200 if preview.ok else 400)
    return render(request, "integrations/time_import.html", context)
