"""Integration endpoints of the public API (DESIGN.md §5.1): connections and time imports."""

from __future__ import annotations

from collections.abc import Callable

from django.core.exceptions import ValidationError
from django.urls import reverse
from ninja import Query, Router, Schema, Status
from ninja.errors import HttpError

from integrations.models import WEBHOOK_SOURCES, Connection, Source
from integrations.services.connections import connection_create, secret_mask
from integrations.services.time_imports import TimeImportRejected, time_import_commit, time_import_preview
from integrations.timecsv import MAX_BYTES, decode_csv
from revexos.api_kit import json_body

router = Router(tags=["integrations"])

# Sources whose connection another module owns (e.g. ``stripe``, whose keys the collections module
# stores): it registers ``create(data, request) -> dict`` (the §5.1 answer) and ``listing(request) ->
# list[dict]`` from its AppConfig.ready().
EXTERNAL_SOURCES: dict[str, tuple[Callable, Callable | None]] = {}


def integration_source_register(source: str, *, create: Callable, listing: Callable | None = None) -> None:
    EXTERNAL_SOURCES[source] = (create, listing)


class ConnectionOut(Schema):
    id: str
    source: str
    name: str = ""
    is_active: bool = True
    webhook_url: str | None = None
    secret: str | None = None
    last_event_at: str | None = None


def _webhook_url(request, source: str) -> str | None:
    return request.build_absolute_uri(reverse(f"webhook_{source}")) if source in WEBHOOK_SOURCES else None


def _out(request, connection: Connection, *, secret: str | None) -> dict:
    return {
        "id": str(connection.pk),
        "source": connection.source,
        "name": connection.name,
        "is_active": connection.is_active,
        "webhook_url": _webhook_url(request, connection.source),
        "secret": secret,
        "last_event_at": connection.last_event_at.isoformat() if connection.last_event_at else None,
    }


@router.get("/integrations", response=list[ConnectionOut], summary="Connected sources (secrets masked)")
def integrations_list(request):
    out = [_out(request, c, secret=secret_mask(c.secret) or None) for c in Connection.objects.all()]
    for _create, listing in EXTERNAL_SOURCES.values():
        if listing is not None:
            out.extend(listing(request))
    return out


@router.post(
    "/integrations",
    response={201: ConnectionOut},
    summary="Connect a source; the answer carries the webhook URL and the secret, shown in full only here",
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {
                "application/json": {
                    "schema": {
                        "type": "object",
                        "required": ["source"],
                        "properties": {
                            "source": {"type": "string", "enum": [*Source.values, "stripe"]},
                            "secret": {
                                "type": "string",
                                "description": "the source's signing secret, where it issues one",
                            },
                            "api_base": {"type": "string", "format": "uri"},
                            "api_token": {"type": "string"},
                            "organization_id": {"type": "string", "description": "Salesforce"},
                            "account_id": {"type": "string", "description": "Harvest"},
                        },
                    },
                    "example": {"source": "jira"},
                }
            },
        }
    },
)
def integrations_create(request):
    data = json_body(request)
    if isinstance(data, dict) and not isinstance(data.get("source"), str | None):
        raise ValidationError({"source": ["Name the source as a string, e.g. jira."]})
    if isinstance(data, dict) and data.get("source") in EXTERNAL_SOURCES:
        create, _ = EXTERNAL_SOURCES[data["source"]]
        return Status(201, create(data, request))
    connection, secret = connection_create(data=data, user=None)
    return Status(201, _out(request, connection, secret=secret or None))


class TimeImportQuery(Schema):
    format: str
    dry_run: bool = False


class TimeImportOut(Schema):
    format: str
    dry_run: bool
    rows: int
    new: int
    duplicates: int
    hours: str
    billable_hours: str
    contracts: list[str]
    id: str | None = None


@router.post(
    "/time-imports",
    response={200: TimeImportOut, 201: TimeImportOut},
    summary="Import a Harvest or Toggl CSV export (all or nothing; idempotent by the source's row id)",
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {"text/csv": {"schema": {"type": "string"}, "example": "Date,Client,Project,Project Code,…"}},
        }
    },
)
def time_imports_post(request, query: Query[TimeImportQuery]):
    if query.format not in ("harvest", "toggl"):
        raise ValidationError({"format": ["Use format=harvest or format=toggl."]})
    content_type = request.content_type or ""
    if content_type not in ("text/csv", "text/plain", "application/csv"):
        raise HttpError(
            400, f"Send the CSV export as the body with Content-Type: text/csv (not {content_type or 'none'})."
        )
    if int(request.META.get("CONTENT_LENGTH") or 0) > MAX_BYTES:
        raise HttpError(413, "The file is larger than 5 MB; export a shorter date range.")
    try:
        text = decode_csv(request.body)
    except ValueError as exc:
        raise ValidationError({"body": [str(exc)]}) from None
    preview = time_import_preview(text=text, format=query.format)
    if not preview.ok:
        raise _rejected(preview)
    if query.dry_run:
        return Status(200, {**_counts(preview), "dry_run": True})
    try:
        record = time_import_commit(text=text, format=query.format, filename="api", user=None)
    except TimeImportRejected as exc:
        raise _rejected(exc.preview) from None
    return Status(
        201,
        {
            **_counts(preview),
            "dry_run": False,
            "id": str(record.pk),
            "new": record.created,
            "duplicates": record.duplicates,
            "hours": str(record.hours),
            "billable_hours": str(record.billable_hours),
        },
    )


def _counts(preview) -> dict:
    data = preview.as_dict()
    return {k: data[k] for k in ("format", "rows", "new", "duplicates", "hours", "billable_hours", "contracts")}


def _rejected(preview) -> ValidationError:
    fields: dict[str, list[str]] = {}
    if preview.file_errors:
        fields["file"] = list(preview.file_errors)
    for row in preview.bad_rows:
        fields[f"line {row.line}"] = list(row.errors)
    return ValidationError(fields or {"file": ["Nothing to import."]})
