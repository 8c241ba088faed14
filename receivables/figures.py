"""The collection figures as formulas (DESIGN.md §4 forward-looking figures). Pure: no ORM, no I/O.

- **Aging bucket** of an open amount on ``as_of``: days past due = ``as_of − due_date``;
  ≤ 0 current, 1–30, 31–60, 61–90, over 90.
- **Open amount as of a date**: amount due less credit notes issued by then (never below zero),
  less payments allocated by then (reversals count on their own date), less write-offs by then.
- **DSO** of a period = AR at the period's end ÷ credit sales in the period × days in the period;
  credit sales = totals of invoices issued in the period less credit notes issued in it. No
  credit sales → no DSO (None), never a division by zero.
- **Average days to pay** = amount-weighted mean of (paid date − issue date) over invoices fully
  paid in the period.
- **Expected cash**: each open invoice is expected on its due date shifted by its customer's
  average lateness (weighted mean of paid date − due date over paid invoices, 0 without history),
  never before today; summed into the next 30 / 60 / 90 days.
"""

from __future__ import annotations

import calendar
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import ROUND_HALF_UP, Decimal

ZERO = Decimal("0")
BUCKETS = ("current", "1_30", "31_60", "61_90", "over_90")
BUCKET_LABELS = {
    "current": "Current",
    "1_30": "1–30 days",
    "31_60": "31–60 days",
    "61_90": "61–90 days",
    "over_90": "Over 90 days",
}
HORIZONS = (30, 60, 90)


def bucket(*, due_date: date, as_of: date) -> str:
    days = (as_of - due_date).days
    if days <= 0:
        return "current"
    if days <= 30:
        return "1_30"
    if days <= 60:
        return "31_60"
    if days <= 90:
        return "61_90"
    return "over_90"


def bucket_bounds(as_of: date) -> dict[str, tuple[date | None, date | None]]:
    """Due-date ranges of each bucket on ``as_of`` (inclusive), for set-based queries."""
    return {
        "current": (as_of, None),
        "1_30": (as_of - timedelta(days=30), as_of - timedelta(days=1)),
        "31_60": (as_of - timedelta(days=60), as_of - timedelta(days=31)),
        "61_90": (as_of - timedelta(days=90), as_of - timedelta(days=61)),
        "over_90": (None, as_of - timedelta(days=91)),
    }


def open_as_of(*, amount_due: Decimal, credited: Decimal, paid: Decimal, written_off: Decimal) -> Decimal:
    return max(max(amount_due - credited, ZERO) - paid - written_off, ZERO)


def month_end(year: int, month: int) -> date:
    return date(year, month, calendar.monthrange(year, month)[1])


def months_back(*, as_of: date, count: int) -> list[tuple[date, date]]:
    """The ``count`` calendar months ending with the month of ``as_of``, oldest first, as
    (first day, last day); the current month ends on ``as_of`` (it is not over yet)."""
    result = []
    year, month = as_of.year, as_of.month
    for _ in range(count):
        start = date(year, month, 1)
        end = min(month_end(year, month), as_of)
        result.append((start, end))
        month -= 1
        if month == 0:
            year, month = year - 1, 12
    return list(reversed(result))


def dso(*, ar_end: Decimal, credit_sales: Decimal, days: int) -> Decimal | None:
    if credit_sales <= 0:
        return None
    return (ar_end / credit_sales * days).quantize(Decimal("0.1"), rounding=ROUND_HALF_UP)


@dataclass(frozen=True)
class Paid:
    amount: Decimal
    issue_date: date
    due_date: date
    paid_on: date


def average_days_to_pay(paid: Iterable[Paid]) -> Decimal | None:
    weight = ZERO
    total = ZERO
    for p in paid:
        weight += p.amount
        total += p.amount * (p.paid_on - p.issue_date).days
    if weight <= 0:
        return None
    return (total / weight).quantize(Decimal("0.1"), rounding=ROUND_HALF_UP)


def average_lateness(paid: Iterable[Paid]) -> Decimal | None:
    weight = ZERO
    total = ZERO
    for p in paid:
        weight += p.amount
        total += p.amount * (p.paid_on - p.due_date).days
    if weight <= 0:
        return None
    return (total / weight).quantize(Decimal("0.1"), rounding=ROUND_HALF_UP)


def expected_on(*, due_date: date, lateness_days: Decimal | None, today: date) -> date:
    shift = int((lateness_days or ZERO).to_integral_value(rounding=ROUND_HALF_UP))
    return max(due_date + timedelta(days=shift), today)


def horizon(*, expected: date, today: date) -> int | None:
    """30, 60 or 90 (the first window the expected date falls in), None beyond 90 days."""
    days = (expected - today).days
    for limit in HORIZONS:
        if days <= limit:
            return limit
    return None
