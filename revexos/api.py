"""The public REST API at /api/v1/ (DESIGN.md §5): one NinjaAPI, routers added by each app.

Errors always have the same JSON shape so integrations can handle them in one place::

    {"error": {"code": "validation_error", "message": "…", "fields": {"legal_name": ["…"]}}}
"""

from __future__ import annotations

import logging
import re

from django.core.exceptions import ObjectDoesNotExist, PermissionDenied
from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import connection
from django.http import Http404
from ninja import NinjaAPI, Schema
from ninja.errors import AuthenticationError, HttpError, ValidationError
from ninja.security import HttpBearer

from revexos.accounts.services import api_key_authenticate
from revexos.request_guards import ERROR_CODES

logger = logging.getLogger("django.request")

# The error answers every operation documents (their body is the one error shape below).
ERROR_SCHEMA = {
    "type": "object",
    "required": ["error"],
    "properties": {
        "error": {
            "type": "object",
            "required": ["code", "message"],
            "properties": {
                "code": {"type": "string", "examples": ["validation_error"]},
                "message": {"type": "string"},
                "fields": {
                    "type": "object",
                    "additionalProperties": {"type": "array", "items": {"type": "string"}},
                    "description": "Each bad field by its path (price_lines.0.amount) with what is wrong",
                },
            },
        }
    },
}
ERROR_DESCRIPTIONS = {
    "400": "Malformed request (JSON that does not parse, nested too deeply)",
    "401": "Missing, unknown or revoked API key",
    "404": "No such object (or an id that cannot exist)",
    "409": "Conflicts with the object's current state",
    "413": "Request body over the size limit",
    "415": "Body not in a media type the operation takes (send Content-Type: application/json)",
    "422": "Invalid fields, each named with what is wrong; nothing was saved",
}


class ApiKeyAuth(HttpBearer):
    openapi_description = "A tenant API key: `Authorization: Bearer rvx_…`. Keys are created by tenant admins."

    def authenticate(self, request, token):
        key = api_key_authenticate(token)
        if key is not None:
            request.api_key = key
        return key


class RevexosAPI(NinjaAPI):
    """NinjaAPI whose OpenAPI document lists the error answers of every operation, in one shape."""

    def get_openapi_schema(self, *args, **kwargs):
        schema = super().get_openapi_schema(*args, **kwargs)
        schema.setdefault("components", {}).setdefault("schemas", {})["Error"] = ERROR_SCHEMA
        for path, methods in schema.get("paths", {}).items():
            for method, operation in methods.items():
                if method.lower() in {"get", "post", "put", "patch", "delete"}:
                    _document_errors(path, method.lower(), operation)
        return schema


def _document_errors(path: str, method: str, operation: dict) -> None:
    # One key per status: ninja keeps int keys from `response=` beside str keys from openapi_extra.
    responses: dict[str, dict] = {}
    for status, answer in (operation.get("responses") or {}).items():
        responses.setdefault(str(status), {}).update(answer)
    wanted = ["400", "422"]
    if operation.get("security") != [] and operation.get("security") is not None:
        wanted.append("401")
    if re.search(r"\{[^}]+\}", path):
        wanted.append("404")
    if method in {"post", "put", "patch"}:
        wanted += ["413", "415"]
    if method in {"post", "patch", "put"} and "{" in path:
        wanted.append("409")
    for status in wanted:
        responses.setdefault(
            status,
            {
                "description": ERROR_DESCRIPTIONS[status],
                "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}},
            },
        )
    operation["responses"] = dict(sorted(responses.items()))


api = RevexosAPI(
    title="RevExOS API",
    version="1",
    description="Contracts, usage, time and delivery events in; invoices, renewals and insights out.",
    urls_namespace="api-v1",
    auth=ApiKeyAuth(),
    openapi_url="/openapi.json",
    docs_url="/docs",
)


def error_body(code: str, message: str, fields: dict[str, list[str]] | None = None) -> dict:
    body: dict = {"code": code, "message": message}
    if fields:
        body["fields"] = fields
    return {"error": body}


def _field_name(loc) -> str:
    # Ninja locations look like ("body", "payload", "price_lines", 0, "amount"); keep what names the field.
    parts = [str(p) for p in loc if p not in ("body", "payload", "query", "path", "header")]
    return ".".join(parts) or "body"


@api.exception_handler(ValidationError)
def on_validation_error(request, exc: ValidationError):
    fields: dict[str, list[str]] = {}
    for err in exc.errors:
        fields.setdefault(_field_name(err.get("loc", ())), []).append(err.get("msg", "Invalid value."))
    return api.create_response(
        request,
        error_body("validation_error", "The request has invalid fields; nothing was saved.", fields),
        status=422,
    )


@api.exception_handler(DjangoValidationError)
def on_domain_validation_error(request, exc: DjangoValidationError):
    if hasattr(exc, "error_dict"):
        fields = {name: [str(m) for m in msgs] for name, msgs in exc.message_dict.items()}
    else:
        fields = {"non_field_errors": [str(m) for m in exc.messages]}
    return api.create_response(
        request,
        error_body("validation_error", "The request has invalid fields; nothing was saved.", fields),
        status=422,
    )


@api.exception_handler(AuthenticationError)
def on_auth_error(request, exc):
    response = api.create_response(
        request,
        error_body(
            "unauthorized", "Missing, unknown or revoked API key for this tenant. Send `Authorization: Bearer <key>`."
        ),
        status=401,
    )
    response["WWW-Authenticate"] = 'Bearer realm="revexos"'
    return response


@api.exception_handler(Http404)
@api.exception_handler(ObjectDoesNotExist)
def on_not_found(request, exc):
    return api.create_response(request, error_body("not_found", str(exc) or "Not found."), status=404)


@api.exception_handler(PermissionDenied)
def on_forbidden(request, exc):
    return api.create_response(request, error_body("forbidden", str(exc) or "Not allowed."), status=403)


@api.exception_handler(HttpError)
def on_http_error(request, exc: HttpError):
    code = ERROR_CODES.get(exc.status_code, "error")
    return api.create_response(request, error_body(code, str(exc)), status=exc.status_code)


@api.exception_handler(Exception)
def on_server_error(request, exc: Exception):
    """A bug: logged with its traceback (and the request), answered in the error shape, never as HTML."""
    logger.error(
        "Internal Server Error: %s", request.path, exc_info=exc, extra={"status_code": 500, "request": request}
    )
    return api.create_response(
        request,
        error_body("server_error", "Something went wrong on our side; the error has been logged."),
        status=500,
    )


class HealthOut(Schema):
    status: str
    tenant: str
    database: str
    cache: str


class WhoAmIOut(Schema):
    tenant: str
    key_name: str
    key_prefix: str


@api.get("/health", auth=None, response=HealthOut, tags=["meta"], summary="Liveness of the API, database and cache")
def health(request):
    from django.core.cache import cache

    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
    try:
        cache.set("health", "ok", 5)
        cache_state = "ok" if cache.get("health") == "ok" else "degraded"
    except Exception:  # the API stays up without its cache; report it
        cache_state = "unavailable"
    return {"status": "ok", "tenant": request.tenant.slug, "database": "ok", "cache": cache_state}


@api.get("/me", response=WhoAmIOut, tags=["meta"], summary="The tenant and key a request authenticates as")
def whoami(request):
    return {"tenant": request.tenant.slug, "key_name": request.api_key.name, "key_prefix": request.api_key.prefix}


# App routers (each app owns its endpoints; paths are relative to /api/v1/).
from contracts.api import router as contracts_router  # noqa: E402

api.add_router("", contracts_router)

from billing.api import router as billing_router  # noqa: E402

api.add_router("", billing_router)

from renewals.api import router as renewals_router  # noqa: E402

api.add_router("", renewals_router)

from discounts.api import router as discounts_router  # noqa: E402

api.add_router("", discounts_router)

from insights.api import router as insights_router  # noqa: E402

api.add_router("", insights_router)

from insights.api_leakage import router as leakage_router  # noqa: E402

api.add_router("", leakage_router)

from integrations.api import router as integrations_router  # noqa: E402

api.add_router("", integrations_router)

from receivables.api import router as receivables_router  # noqa: E402

api.add_router("", receivables_router)

from revexos.webhooks.api import router as webhooks_router  # noqa: E402

api.add_router("", webhooks_router)

from integrations.api_exports import router as exports_router  # noqa: E402

api.add_router("", exports_router)

from audits.api import router as audits_router  # noqa: E402

api.add_router("", audits_router)
