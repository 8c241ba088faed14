"""The audit's usage CSV (pure: text in, usage events out).

Columns (header row, order free): ``contract`` (its number) or ``customer`` (its external id, when
the customer has one contract running on the day), ``metric``, ``quantity``, ``timestamp``
(``2026-03-14T09:30:00Z`` or a day, ``2026-03-14``), optional ``transaction_id`` (the sender's
event id; without it each row gets a fingerprint of its content) and ``amount`` (the event's amount
for percentage charge models). One row per event, or per day and metric with the day's total.
"""

from __future__ import annotations

import csv
import hashlib
import io
import re
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time
from decimal import Decimal, InvalidOperation

from billing.history_formats import ExportProblem

MAX_ROWS = 200_000
USAGE_COLUMNS = ("transaction_id", "contract", "customer", "metric", "quantity", "timestamp", "amount")
_METRIC_RE = re.compile(r"^[a-z0-9][a-z0-9_.:-]*$")


@dataclass
class UsageRow:
    line: int
    transaction_id: str
    contract: str
    customer: str
    metric: str
    quantity: Decimal
    timestamp: datetime
    amount: Decimal | None = None


@dataclass
class ParsedUsage:
    rows: list[UsageRow] = field(default_factory=list)
    problems: list[ExportProblem] = field(default_factory=list)


def _timestamp(text: str) -> datetime | None:
    text = text.strip()
    try:
        if re.fullmatch(r"\d{4}-\d{2}-\d{2}", text):
            return datetime.combine(date.fromisoformat(text), time(12), tzinfo=UTC)
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def usage_csv_parse(*, text: str, file_name: str) -> ParsedUsage:
    result = ParsedUsage()

    def problem(message: str, row: int | None = None, column: str | None = None) -> None:
        if len(result.problems) < 50:
            result.problems.append(ExportProblem(file_name, message, row, column))

    try:
        reader = csv.DictReader(io.StringIO(text, newline=""), strict=True)
        header = [h.strip() for h in (reader.fieldnames or [])]
        reader.fieldnames = header
        records = []
        for row in reader:
            if reader.line_num > MAX_ROWS + 1:
                problem(f"The file has more than {MAX_ROWS:,} rows; send daily totals instead of single events.")
                return result
            records.append((reader.line_num, row))
    except csv.Error as exc:
        problem(f"The file is not valid CSV ({exc}).")
        return result
    if not header:
        problem("The file is empty; the first row must name the columns.")
        return result
    unknown = [h for h in header if h not in USAGE_COLUMNS]
    if unknown:
        problem(f"Unknown column(s) {', '.join(unknown)}; use {', '.join(USAGE_COLUMNS)}.", 1)
    missing = [c for c in ("metric", "quantity", "timestamp") if c not in header]
    if "contract" not in header and "customer" not in header:
        missing.insert(0, "contract")
    if missing:
        problem(f"Missing column(s): {', '.join(missing)}.", 1)
    if result.problems:
        return result
    seen: dict[str, int] = {}
    for line, row in records:
        if None in row:
            problem("The row has more cells than the header has columns.", line)
            continue
        cells = {k: (v or "").strip() for k, v in row.items()}
        if not any(cells.values()):
            continue
        ok = True
        if not cells.get("contract") and not cells.get("customer"):
            problem("Name the contract (its number) or the customer.", line, "contract")
            ok = False
        metric = cells.get("metric", "")
        if not _METRIC_RE.match(metric):
            problem(f"“{metric}” is not a metric code (lowercase letters, digits, _ . : -).", line, "metric")
            ok = False
        try:
            quantity = Decimal(cells.get("quantity", ""))
            if not quantity.is_finite() or quantity < 0:
                raise InvalidOperation
        except InvalidOperation:
            problem(f"“{cells.get('quantity', '')}” is not a quantity (a number, 0 or more).", line, "quantity")
            ok = False
        moment = _timestamp(cells.get("timestamp", ""))
        if moment is None:
            problem(
                f"“{cells.get('timestamp', '')}” is not a timestamp; use 2026-03-14T09:30:00Z or 2026-03-14.",
                line,
                "timestamp",
            )
            ok = False
        amount = None
        if cells.get("amount"):
            try:
                amount = Decimal(cells["amount"])
            except InvalidOperation:
                problem(f"“{cells['amount']}” is not an amount.", line, "amount")
                ok = False
        if not ok:
            continue
        transaction_id = cells.get("transaction_id") or ""
        if not transaction_id:
            digest = hashlib.sha256("|".join(cells.get(c, "") for c in USAGE_COLUMNS).encode()).hexdigest()[:24]
            transaction_id = f"audit:{digest}"
        if transaction_id in seen:
            transaction_id = f"{transaction_id}:{line}"  # an identical event twice is two events
        seen[transaction_id] = line
        result.rows.append(
            UsageRow(
                line=line,
                transaction_id=transaction_id[:200],
                contract=cells.get("contract", ""),
                customer=cells.get("customer", ""),
                metric=metric,
                quantity=quantity,
                timestamp=moment,
                amount=amount,
            )
        )
    if not result.rows and not result.problems:
        problem("The file has a header but no rows.")
    return result
