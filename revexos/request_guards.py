"""Request-level guards, in one place, before any view runs.

``ApiGuardMiddleware`` (everything under ``/api/v1/``):

- a body must be of a type the operation documents: ``application/json`` unless the operation's
  OpenAPI ``requestBody`` lists others (e.g. ``text/csv``), else 415 ``unsupported_media_type``;
- a body over ``API_MAX_BODY_BYTES`` (multipart: ``API_MAX_UPLOAD_BYTES``) is refused with 413
  ``too_large`` before it is read;
- a JSON body is parsed once (decimals as ``Decimal``, never a float; ``NaN``/``Infinity`` refused),
  nested at most ``API_MAX_JSON_DEPTH`` levels, and holds no NUL character in any key or string
  (422 naming the field); endpoints read it with ``revexos.api_kit.json_body(request)``;
- NUL characters in the query string are a 422 naming the parameter, in the path a 404;
- every error answer, including Django's own 404 (unrouted path), 405, 413 and 500, is turned into
  the API's one JSON error shape.

``InputGuardMiddleware`` (the UI): a NUL character in the path, the query string or a form field
is refused with 400 before a view can pass it to PostgreSQL (which cannot store it).
"""

from __future__ import annotations

import json
import logging
from decimal import Decimal
from io import BytesIO
from typing import Any
from urllib.parse import unquote_to_bytes

from django.conf import settings
from django.http import HttpResponseBadRequest, JsonResponse

logger = logging.getLogger("revexos.api")

API_PREFIX = "/api/v1/"
BODY_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
JSON_TYPE = "application/json"
MULTIPART_TYPES = frozenset({"multipart/form-data", "application/x-www-form-urlencoded"})

ERROR_CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    413: "too_large",
    415: "unsupported_media_type",
    422: "validation_error",
    429: "too_many_requests",
    500: "server_error",
}
DEFAULT_MESSAGES = {
    400: "The request could not be read.",
    403: "Not allowed.",
    404: "No such API endpoint or object. The endpoints are listed at /api/v1/docs.",
    405: "This endpoint does not take that HTTP method.",
    413: "The request body is too large.",
    500: "Something went wrong on our side; the error has been logged.",
}


def max_body_bytes() -> int:
    return getattr(settings, "API_MAX_BODY_BYTES", 10 * 1024 * 1024)


def max_upload_bytes() -> int:
    return getattr(settings, "API_MAX_UPLOAD_BYTES", 25 * 1024 * 1024)


def max_json_depth() -> int:
    return getattr(settings, "API_MAX_JSON_DEPTH", 32)


def error_response(status: int, message: str = "", fields: dict[str, list[str]] | None = None, **headers) -> Any:
    body: dict[str, Any] = {
        "code": ERROR_CODES.get(status, "error"),
        "message": message or DEFAULT_MESSAGES.get(status, ""),
    }
    if fields:
        body["fields"] = fields
    response = JsonResponse({"error": body}, status=status)
    for name, value in headers.items():
        response[name.replace("_", "-")] = value
    return response


class JsonBodyError(Exception):
    def __init__(self, status: int, message: str, fields: dict[str, list[str]] | None = None):
        super().__init__(message)
        self.status, self.message, self.fields = status, message, fields


def _refuse_constant(name: str):
    raise ValueError(f"{name} is not a JSON number")


def parse_json_body(body: bytes) -> Any:
    """Parse and inspect a JSON body; raises ``JsonBodyError`` with the answer to give."""
    try:
        data = json.loads(body, parse_float=Decimal, parse_constant=_refuse_constant)
    except RecursionError:
        raise JsonBodyError(400, f"The JSON body is nested too deeply (at most {max_json_depth()} levels).") from None
    except (ValueError, UnicodeDecodeError) as exc:
        raise JsonBodyError(
            400, f"Malformed JSON: {exc}. Send a JSON body with Content-Type: application/json."
        ) from None
    _inspect(data, check_nul=b"\\u0000" in body)
    return data


def _inspect(data: Any, *, check_nul: bool) -> None:
    """Bound the nesting depth and find NUL characters, naming the field they are in.

    Walks containers only (a 1,000-event batch costs about a millisecond); field names are built
    only for the answer, when a NUL is found."""
    if not isinstance(data, (dict, list)):
        if check_nul and isinstance(data, str) and "\x00" in data:
            _nul(())
        return
    limit = max_json_depth()
    stack: list[tuple[Any, int, tuple]] = [(data, 1, ())]
    while stack:
        node, depth, path = stack.pop()
        if depth > limit:
            raise JsonBodyError(400, f"The JSON body is nested too deeply (at most {limit} levels).")
        items = node.items() if isinstance(node, dict) else enumerate(node)
        for key, value in items:
            if isinstance(value, (dict, list)):
                stack.append((value, depth + 1, (*path, key)))
            elif check_nul and isinstance(value, str) and "\x00" in value:
                _nul((*path, key))
            if check_nul and isinstance(key, str) and "\x00" in key:
                _nul((*path, key))


def _nul(path: tuple):
    name = ".".join(str(p) for p in path).replace("\x00", "\\u0000") or "body"
    raise JsonBodyError(
        422,
        "The request has invalid fields; nothing was saved.",
        {name: ["Text must not contain NUL (\\u0000) characters."]},
    )


def _media_type(request) -> str:
    return (request.META.get("CONTENT_TYPE") or "").split(";", 1)[0].strip().lower()


def _content_length(request) -> int:
    try:
        return max(0, int(request.META.get("CONTENT_LENGTH") or 0))
    except ValueError:
        return -1


def _operation(view_func, method: str):
    """The django-ninja operation a resolved API view runs for ``method`` (None if not a ninja view)."""
    for cell in getattr(view_func, "__closure__", None) or ():
        try:
            path_view = cell.cell_contents
        except ValueError:  # an empty cell
            continue
        operations = getattr(path_view, "operations", None)
        if isinstance(operations, list):
            return next((op for op in operations if method in op.methods), None)
    return None


def accepted_body_types(operation) -> frozenset[str]:
    """What an operation takes as a body: what its OpenAPI requestBody documents, else JSON."""
    documented = ((operation.openapi_extra or {}).get("requestBody") or {}).get("content")
    if documented:
        return frozenset(t.lower() for t in documented)
    sources = {getattr(model, "__ninja_param_source__", None) for model in operation.models}
    if sources & {"file", "form"}:
        return MULTIPART_TYPES
    return frozenset({JSON_TYPE})


class ApiGuardMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        if not request.path_info.startswith(API_PREFIX):
            return self.get_response(request)
        response = self._before(request) or self.get_response(request)
        return self._as_json_error(request, response)

    def _before(self, request):
        if "\x00" in request.path_info:
            return error_response(404, "No such API endpoint or object.")
        if "%00" in request.META.get("QUERY_STRING", ""):
            names = sorted(
                {
                    k.replace("\x00", "\\u0000")
                    for k, vs in request.GET.lists()
                    if "\x00" in k or any("\x00" in v for v in vs)
                }
            )
            return error_response(
                422,
                "The request has invalid fields; nothing was saved.",
                {name or "query": ["Text must not contain NUL (\\u0000) characters."] for name in names or ["query"]},
            )
        length = _content_length(request)
        if length < 0:
            return error_response(400, "The Content-Length header is not a number.")
        limit = max_upload_bytes() if _media_type(request) == "multipart/form-data" else max_body_bytes()
        if length > limit:
            return error_response(
                413, f"The request body has {length:,} bytes; the limit is {limit:,}. Split it into smaller requests."
            )
        return None

    def process_view(self, request, view_func, view_args, view_kwargs):
        if not request.path_info.startswith(API_PREFIX) or request.method not in BODY_METHODS:
            return None
        operation = _operation(view_func, request.method)
        if operation is None:
            return None
        length = _content_length(request)
        media_type = _media_type(request)
        if length == 0:
            return None
        accepted = accepted_body_types(operation)
        if media_type not in accepted:
            return error_response(
                415,
                f"Send the body as {' or '.join(sorted(accepted))}"
                + (f", not {media_type}." if media_type else " and say so in the Content-Type header."),
            )
        if media_type in MULTIPART_TYPES:
            return None  # Django's parsers stream it, within DATA_UPLOAD_MAX_* and our length check
        # Read the body here, under our own limit rather than Django's form-sized one.
        request._body = request.read()
        request._stream = BytesIO(request._body)
        if media_type == JSON_TYPE:
            try:
                request.api_json = parse_json_body(request._body)
            except JsonBodyError as exc:
                return error_response(exc.status, exc.message, exc.fields)
        return None

    def _as_json_error(self, request, response):
        if response.status_code < 400 or response.get("Content-Type", "").startswith(JSON_TYPE):
            return response
        status = response.status_code
        if status == 401:
            return response
        new = error_response(status, DEFAULT_MESSAGES.get(status, ""))
        if response.has_header("Allow"):
            new["Allow"] = response["Allow"]
        return new


class InputGuardMiddleware:
    """The UI's share of the guard: PostgreSQL cannot store NUL, so no view may receive one."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        if not request.path_info.startswith(API_PREFIX) and self._has_nul(request):
            return HttpResponseBadRequest(
                b"The request contains a NUL character, which no field accepts.", content_type="text/plain"
            )
        return self.get_response(request)

    @staticmethod
    def _has_nul(request) -> bool:
        if "\x00" in request.path_info or "%00" in request.META.get("QUERY_STRING", ""):
            return True
        if request.method == "POST" and _media_type(request) == "application/x-www-form-urlencoded":
            length = _content_length(request)
            if 0 < length <= settings.DATA_UPLOAD_MAX_MEMORY_SIZE:
                return b"\x00" in unquote_to_bytes(request.body)
        return False
