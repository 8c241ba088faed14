"""What every API endpoint builds on: strict field types, the parsed JSON body, pagination, refs.

Use these instead of bare ``int``/``date``/``str`` in ninja schemas and query filters: pydantic's
lax mode would take ``"1_000"`` and ``" 12 "`` as integers, ``0`` as 1970-01-01 and any year up to
9999 as a date. (Why each refusal matters: ``revexos/parsing.py``.)

    class WidgetFilters(PageFilters):               # limit 1–200, offset 0–OFFSET_MAX
        status: choice("open", "closed") = ""        # unknown values are a 422; "" means any
        customer: Ref = ""                           # a reference: no NUL/control chars, ≤ 200
        issued_from: Day | None = None               # YYYY-MM-DD inside 1990–2100

    @router.post("/widgets", response={201: WidgetOut})
    def widgets_post(request):
        data = json_body(request)                    # parsed once by the guard, decimals exact
        ...
    @router.get("/widgets/{widget_id}", response=WidgetOut)
    def widgets_detail(request, widget_id: str):
        widget = get_object_or_404(Widget, pk=id_or_404(widget_id, "widget"))

Body fields read by hand go through ``revexos.parsing`` (``parse_decimal``, ``parse_int``,
``parse_date``, ``ref_or_error``) or ``contracts.wire.Reader``; put each ``ValueError``'s message
under the field's name in a ``django.core.exceptions.ValidationError`` and the API answers 422.
"""

from __future__ import annotations

from datetime import date
from typing import Annotated, Any, Literal

from ninja import Field, Schema
from pydantic import BeforeValidator, WithJsonSchema
from pydantic_core import PydanticCustomError

from revexos.parsing import (
    DATE_MAX,
    DATE_MIN,
    REF_MAX_LENGTH,
    clean_ref,
    id_or_404,
    parse_date,
    parse_decimal,
    parse_int,
)
from revexos.request_guards import JsonBodyError, parse_json_body

__all__ = [
    "OFFSET_MAX",
    "Day",
    "DecimalStr",
    "Int",
    "Limit",
    "Offset",
    "PageFilters",
    "Ref",
    "Text",
    "choice",
    "choices",
    "id_or_404",
    "json_body",
]

OFFSET_MAX = 1_000_000_000


def _invalid(message: str) -> PydanticCustomError:
    return PydanticCustomError("invalid", message)


def _strict_int(value: Any) -> int:
    try:
        return parse_int(value)
    except ValueError as exc:
        raise _invalid(str(exc)) from None


def _strict_day(value: Any) -> date:
    try:
        return parse_date(value)
    except ValueError as exc:
        raise _invalid(str(exc)) from None


def _text(max_length: int):
    def check(value: Any) -> str:
        if not isinstance(value, str):
            raise _invalid("Enter text.")
        if "\x00" in value:
            raise _invalid("Text must not contain NUL (\\u0000) characters.")
        if len(value) > max_length:
            raise _invalid(f"Use at most {max_length} characters.")
        return value.strip()

    return check


def _ref(value: Any) -> str:
    if value is None or value == "":
        return ""
    ref = clean_ref(value)
    if ref is None:
        raise _invalid(
            f"Not a reference: an id, number or external id of at most {REF_MAX_LENGTH} printable characters."
        )
    return ref


def _decimal_text(value: Any) -> str:
    try:
        number = parse_decimal(value)
    except ValueError as exc:
        raise _invalid(str(exc)) from None
    return format(number, "f")


DecimalStr = Annotated[
    str,
    BeforeValidator(_decimal_text),
    WithJsonSchema({"type": "string", "pattern": r"^-?[0-9]+(\.[0-9]+)?$", "examples": ["3100.00"]}),
]
"""An exact decimal sent as a string ("3100.00"; a JSON integer is taken too), kept as a string."""

Int = Annotated[int, BeforeValidator(_strict_int)]
"""A whole number: a JSON integer or ASCII digits; no ``1_000``, ``1.0``, ``٣`` or ``true``."""

Limit = Annotated[int, BeforeValidator(_strict_int), Field(ge=1, le=200)]
Offset = Annotated[int, BeforeValidator(_strict_int), Field(ge=0, le=OFFSET_MAX)]

Day = Annotated[
    date,
    BeforeValidator(_strict_day),
    WithJsonSchema(
        {
            "type": "string",
            "format": "date",
            "description": f"YYYY-MM-DD, from {DATE_MIN.isoformat()} to {DATE_MAX.isoformat()}",
        }
    ),
]
"""A calendar date as ``YYYY-MM-DD`` within ``DATE_MIN``–``DATE_MAX``; never a number."""

Text = Annotated[str, BeforeValidator(_text(500)), WithJsonSchema({"type": "string", "maxLength": 500})]
"""Free text up to 500 characters without NUL; surrounding spaces removed."""

Ref = Annotated[
    str,
    BeforeValidator(_ref),
    WithJsonSchema({"type": "string", "maxLength": REF_MAX_LENGTH, "description": "An id or a reference"}),
]
"""A reference to look up (id, number, external id): printable, at most 200 characters."""


def choice(*values: str, upper: bool = False) -> Any:
    """A filter that is one of ``values`` or empty (any): unknown values are a 422 listing them.
    ``upper``: the value is upper-cased first (``l2`` means ``L2``)."""
    allowed = Literal[("", *values)]  # type: ignore[valid-type]
    if upper:
        return Annotated[allowed, BeforeValidator(lambda v: v.strip().upper() if isinstance(v, str) else v)]
    return allowed


def choices(*values: str) -> Any:
    """A comma-separated list of ``values`` (``status=draft,issued``), returned as the string."""
    allowed = frozenset(values)

    def check(value: Any) -> str:
        if not isinstance(value, str):
            raise _invalid("Enter text.")
        parts = [p.strip() for p in value.split(",") if p.strip()]
        unknown = [p for p in parts if p not in allowed]
        if unknown:
            raise _invalid(
                f"Unknown value {unknown[0]!r}; use one or more of {', '.join(values)}, separated by commas."
            )
        return ",".join(parts)

    return Annotated[
        str,
        BeforeValidator(check),
        WithJsonSchema({"type": "string", "description": "Comma-separated: " + ", ".join(values)}),
    ]


class PageFilters(Schema):
    limit: Limit = 50
    offset: Offset = 0


def json_body(request) -> Any:
    """The request's JSON body, parsed once by the API guard (``Decimal`` for fractions).

    Raises ``ninja.errors.HttpError`` (400) for malformed JSON when called outside the guard.
    """
    if hasattr(request, "api_json"):
        return request.api_json
    body = request.body
    if not body:
        return None
    try:
        request.api_json = parse_json_body(body)
    except JsonBodyError as exc:
        from django.core.exceptions import ValidationError
        from ninja.errors import HttpError

        if exc.fields:
            raise ValidationError(exc.fields) from None
        raise HttpError(exc.status, exc.message) from None
    return request.api_json
