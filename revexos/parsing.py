"""One parsing layer for what arrives from outside: ids, references, whole numbers, decimals, dates.

Every door — API paths, query filters and bodies, the UI's views and forms, CSV imports — reads
values through these functions, so a value is either refused with a clear message or is safe to
hand to the database. What they refuse, and why:

- Digits other than ASCII 0–9. ``str.isdigit()`` is true for ``²`` and ``٣``, and ``int()``/
  ``Decimal()`` accept Arabic-Indic digits and ``1_000``; none of that is a number a person typed
  into a billing system on purpose.
- Ids beyond PostgreSQL's ``bigint`` (2^63 − 1) and digit strings longer than 19 characters (Python
  refuses to convert past 4,300 digits, PostgreSQL past bigint): such an id cannot exist.
- NUL characters, which PostgreSQL cannot store in text or JSON.
- Dates outside ``DATE_MIN``–``DATE_MAX``: a contract from year 1 or 9999 is a typing mistake, and
  billing periods computed from it overflow or run for hours.

The parsers raise ``ValueError`` with a sentence meant for the person who sent the value; callers
put it under the field's name (API 422, form error, CSV row error) or answer 404 for a path id.
"""

from __future__ import annotations

import re
from datetime import date
from decimal import Decimal, InvalidOperation
from typing import Any

BIGINT_MAX = 2**63 - 1
ID_MAX_DIGITS = 19
# The window every date taken from outside must fall in (contracts, discounts, runs, filters).
DATE_MIN = date(1990, 1, 1)
DATE_MAX = date(2100, 12, 31)
REF_MAX_LENGTH = 200

_ASCII_ID = re.compile(r"[0-9]{1,19}", re.ASCII)
_ASCII_INT = re.compile(r"[+-]?[0-9]{1,18}", re.ASCII)
_ASCII_DECIMAL = re.compile(r"[+-]?([0-9]+(\.[0-9]*)?|\.[0-9]+)", re.ASCII)
_ISO_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}", re.ASCII)
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


# ----------------------------------------------------------------------------- ids and references


def parse_id(value: Any) -> int | None:
    """A database id (1 … 2^63 − 1) from a path, filter or body value; ``None`` if it cannot be one.

    Accepts a JSON integer or a string of ASCII digits (surrounding spaces ignored). Never raises.
    """
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value if 0 < value <= BIGINT_MAX else None
    if not isinstance(value, str):
        return None
    text = value.strip()
    if not _ASCII_ID.fullmatch(text):
        return None
    number = int(text)
    return number if 0 < number <= BIGINT_MAX else None


def id_or_404(value: Any, what: str = "object") -> int:
    """The id in a URL path, or ``Http404`` (an id that cannot exist names nothing)."""
    from django.http import Http404

    number = parse_id(value)
    if number is None:
        raise Http404(f"No {what} {printable(value)}.")
    return number


def clean_ref(value: Any, *, max_length: int = REF_MAX_LENGTH) -> str | None:
    """A reference by name (contract number, external id, invoice number …) fit to look up.

    Returns the stripped string, or ``None`` when it cannot name anything: not a string or an
    integer, empty, longer than ``max_length``, or holding NUL or other control characters.
    """
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        value = str(value)
    if not isinstance(value, str):
        return None
    text = value.strip()
    if not text or len(text) > max_length or _CONTROL.search(text):
        return None
    return text


def ref_or_error(value: Any, *, what: str = "reference", max_length: int = REF_MAX_LENGTH) -> str:
    """Like ``clean_ref`` but raises ``ValueError`` saying what is wrong (for a 422 under a field name)."""
    if isinstance(value, bool) or not isinstance(value, (str, int)):
        raise ValueError(f"Name the {what} by its id or its reference, as a string.")
    if isinstance(value, str) and has_nul(value):
        raise ValueError("Text must not contain NUL (\\u0000) characters.")
    text = str(value).strip()
    if not text:
        raise ValueError("This field is required.")
    if len(text) > max_length:
        raise ValueError(f"A {what} has at most {max_length} characters.")
    if _CONTROL.search(text):
        raise ValueError(f"A {what} must not contain control characters.")
    return text


def has_nul(value: str) -> bool:
    return "\x00" in value


def printable(value: Any, limit: int = 60) -> str:
    """A value quoted for an error message: control characters escaped, long values cut."""
    text = repr(value if isinstance(value, str) else str(value))
    return text if len(text) <= limit else text[: limit - 1] + "…'"


# ----------------------------------------------------------------------------- numbers


def parse_int(value: Any, *, minimum: int | None = None, maximum: int | None = None) -> int:
    """A whole number: a JSON integer or ASCII digits with an optional sign. Raises ``ValueError``."""
    if isinstance(value, bool):
        raise ValueError("Enter a whole number, not true/false.")
    if isinstance(value, int):
        number = value
    elif isinstance(value, str) and _ASCII_INT.fullmatch(value.strip()):
        number = int(value.strip())
    elif isinstance(value, str):
        raise ValueError(f"{printable(value)} is not a whole number; use the digits 0–9.")
    else:
        raise ValueError("Enter a whole number.")
    if minimum is not None and number < minimum:
        raise ValueError(
            f"Enter a whole number of at least {minimum}." if maximum is None else _range(minimum, maximum)
        )
    if maximum is not None and number > maximum:
        raise ValueError(f"Enter a whole number of at most {maximum}." if minimum is None else _range(minimum, maximum))
    return number


def _range(minimum: int, maximum: int) -> str:
    return f"Enter a whole number from {minimum} to {maximum}."


def parse_decimal(value: Any, *, max_digits: int = 30) -> Decimal:
    """An exact decimal: a JSON integer, a ``Decimal`` (JSON parsed with ``parse_float=Decimal``) or
    a string of ASCII digits with an optional point. No exponents, underscores or other digits."""
    if isinstance(value, bool):
        raise ValueError('Enter a number as a decimal string such as "3100.00", not true/false.')
    if isinstance(value, int):
        number = Decimal(value)
    elif isinstance(value, Decimal):
        number = value
    elif isinstance(value, float):
        raise ValueError(
            'Send amounts and quantities as decimal strings such as "3100.00"; JSON numbers with a '
            "fraction are not accepted because they are binary floats."
        )
    elif isinstance(value, str):
        text = value.strip()
        if not _ASCII_DECIMAL.fullmatch(text):
            raise ValueError(
                f"{printable(value)} is not a number; enter digits 0–9 with an optional point, e.g. 3100.00."
            )
        if len(text) > max_digits + 2:
            raise ValueError("The number is too large.")
        try:
            number = Decimal(text)
        except InvalidOperation:  # pragma: no cover - the pattern guards this
            raise ValueError(f"{printable(value)} is not a number.") from None
    else:
        raise ValueError('Enter a number as a decimal string such as "3100.00".')
    if not number.is_finite():
        raise ValueError("Enter a finite number.")
    _sign, digits, exponent = number.as_tuple()
    if len(digits) + max(int(exponent), 0) > max_digits or -int(exponent) > max_digits:
        raise ValueError("The number is too large.")
    return number


# ----------------------------------------------------------------------------- dates


def date_in_bounds(day: date, *, minimum: date = DATE_MIN, maximum: date = DATE_MAX) -> date:
    """``day`` itself, or ``ValueError`` when it lies outside the window dates may take."""
    if day < minimum or day > maximum:
        raise ValueError(
            f"{day.isoformat()} is outside the dates RevExOS accepts ({minimum.isoformat()} to {maximum.isoformat()})."
        )
    return day


def parse_date(value: Any, *, minimum: date = DATE_MIN, maximum: date = DATE_MAX) -> date:
    """A calendar date as ``YYYY-MM-DD`` (ASCII digits) inside the window. Raises ``ValueError``."""
    if isinstance(value, date) and not hasattr(value, "hour"):
        return date_in_bounds(value, minimum=minimum, maximum=maximum)
    if not isinstance(value, str):
        raise ValueError("Enter a date as a string in the form YYYY-MM-DD, e.g. 2026-01-15.")
    text = value.strip()
    if not _ISO_DATE.fullmatch(text):
        raise ValueError(f"{printable(value)} is not a date; use YYYY-MM-DD, e.g. 2026-01-15.")
    try:
        day = date.fromisoformat(text)
    except ValueError:
        raise ValueError(f"{printable(value)} is not a calendar date; use YYYY-MM-DD, e.g. 2026-01-15.") from None
    return date_in_bounds(day, minimum=minimum, maximum=maximum)
