"""A contract's discount from the contracts CSV import (``discount_*`` columns, one per contract).

``discount_kind`` (percentage or fixed), ``discount_value``, ``discount_start_date`` (default: the
contract start), ``discount_end_date`` and ``discount_reason``. Registered with the import in
``DiscountsConfig.ready`` so contracts never import this module.
"""

from __future__ import annotations

from datetime import date
from decimal import Decimal, InvalidOperation

from django.core.exceptions import ValidationError

COLUMNS = ("discount_kind", "discount_value", "discount_start_date", "discount_end_date", "discount_reason")


def _date(text: str, line: int, column: str) -> date | None:
    from contracts.services.imports import RowError

    if not text:
        return None
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise RowError(line, column, f"“{text}” is not a date; use YYYY-MM-DD.") from None


def discount_from_import(*, contract, header: dict[str, str], rows, user=None) -> None:
    from contracts.services.imports import RowError
    from discounts.services.exceptions import discount_create

    if not any(header.get(c) for c in COLUMNS):
        return
    line = next((ln for ln, row in rows if any(row.get(c) for c in COLUMNS)), rows[0][0])
    try:
        value = Decimal(header.get("discount_value", "").replace(",", "")) if header.get("discount_value") else None
    except InvalidOperation:
        raise RowError(line, "discount_value", f"“{header['discount_value']}” is not a number.") from None
    start = _date(header.get("discount_start_date", ""), line, "discount_start_date") or contract.start_date
    end = _date(header.get("discount_end_date", ""), line, "discount_end_date")
    approver = user if user is not None and getattr(user, "is_authenticated", False) else None
    try:
        discount_create(
            kind=header.get("discount_kind") or "percentage",
            value=value,
            start_date=start,
            end_date=end,
            reason=header.get("discount_reason") or "Agreed in the contract (import)",
            contract=contract,
            created_by=approver,
            approved_label="" if approver else "Signed contract (import)",
            via="import",
        )
    except ValidationError as exc:
        name, messages = next(iter(exc.message_dict.items()))
        column = {"kind": "discount_kind", "value": "discount_value", "start_date": "discount_start_date"}.get(
            name, "discount_end_date" if name == "end_date" else "discount_value"
        )
        raise RowError(line, column, messages[0]) from None
