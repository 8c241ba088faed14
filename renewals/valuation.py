"""What a contract is worth at renewal time, and what its next term costs (pure: no ORM, no I/O).

Two figures go on a renewal alert, both from the terms in force on the day it is raised:

* **annual recurring value** — every recurring line and every usage minimum commitment at its
  full-period amount, scaled to twelve months (3,100.00 monthly → 37,200.00). Usage above the
  commitment and time & materials are not committed money, so they are not in it.
* **value at stake** — what the owner stands to keep or lose: the annual recurring value when the
  contract has one; for a contract with nothing recurring (milestones, fees, usage without a
  minimum) the contract's value over its term instead — its fixed fees and milestones plus usage
  and hours at their run rate (billed per month over the three months before last month, whose
  billing is complete) over the term's months — with the parts named, so "0.00 at stake" never stands for a contract worth 80,000.00.
* **remaining value** — what the contract still commits from the raising day to its end date:
  recurring lines and minimum commitments over their billing periods, priced the way billing prices
  them (periods clipped to the contract, prorated by days; the period the raising day falls in counts
  from that day), plus one-off fees and milestones dated on or after that day.

:func:`uplifted_lines` prices the next term: each money amount of a line raised by the uplift and
rounded with :func:`revexos.money.quantize`; unit prices keep up to six decimals, because a usage
price of 0.0015 per call rounded to cents would be zero.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from revexos.money import quantize, to_decimal
from revexos.pricing import Period, add_months, billing_periods, full_period_for, prorate

ZERO = Decimal(0)
HUNDRED = Decimal(100)
_MONTHS = {"monthly": 1, "quarterly": 3, "annual": 12}

# Line fields that are a charge in the currency: rounded to the currency's minor unit after uplift.
AMOUNT_FIELDS = (
    "amount",
    "overage_rate",
    "fixed_amount",
    "per_transaction_min",
    "per_transaction_max",
    "minimum_commitment",
)
# Prices per unit: kept exact to the field's six decimals.
UNIT_PRICE_FIELDS = ("unit_amount",)
TIER_AMOUNT_FIELDS = ("flat_amount",)
TIER_UNIT_PRICE_FIELDS = ("unit_amount",)
RATE_FIELDS = ("hourly_rate",)
# Not uplifted: percentages (``rate``: a share of the customer's own amounts), quantities (included
# hours, free units, package size) and the T&M not-to-exceed cap (a budget, not a price).
UNIT_PRICE_EXPONENT = Decimal("0.000001")


@dataclass(frozen=True)
class RenewalValue:
    currency: str
    annual_recurring: Decimal
    remaining: Decimal


def _committed_per_period(line: Any) -> Decimal | None:
    if line.kind == "recurring":
        return line.amount
    if line.kind == "usage":
        return line.minimum_commitment or None
    return None


def annual_recurring_value(*, lines: Iterable[Any], currency: str) -> Decimal:
    total = ZERO
    for line in lines:
        per_period = _committed_per_period(line)
        if per_period and line.frequency in _MONTHS:
            total += to_decimal(per_period) * 12 / _MONTHS[line.frequency]
    return quantize(total, currency)


def remaining_value(
    *,
    lines: Sequence[Any],
    currency: str,
    contract_start: date,
    end: date,
    anchor: str,
    as_of: date,
) -> Decimal:
    """Committed value from ``as_of`` through ``end`` (both inclusive) under these lines."""
    if end < as_of:
        return quantize(ZERO, currency)
    total = ZERO
    fixed_total = sum((to_decimal(line.amount) for line in lines if line.kind == "fixed_fee" and line.amount), ZERO)
    for line in lines:
        per_period = _committed_per_period(line)
        if per_period and line.frequency in _MONTHS:
            for period in billing_periods(
                contract_start=contract_start,
                contract_end=end,
                frequency=line.frequency,
                anchor=anchor,
                until=end,
            ):
                if period.end < as_of:
                    continue
                full = full_period_for(
                    period_start=period.start, frequency=line.frequency, anchor=anchor, contract_start=contract_start
                )
                remaining = Period(max(period.start, as_of), period.end)
                total += prorate(amount=per_period, period=remaining, full=full, currency=currency)
        elif line.kind == "fixed_fee" and line.amount is not None:
            if (line.bill_on or contract_start) >= as_of:
                total += to_decimal(line.amount)
        elif line.kind == "milestone":
            if line.expected_date is not None and line.expected_date < as_of:
                continue
            if line.amount is not None:
                total += to_decimal(line.amount)
            elif line.percent_of_fixed_fee is not None:
                total += fixed_total * to_decimal(line.percent_of_fixed_fee) / HUNDRED
    return quantize(total, currency)


def renewal_value(
    *,
    lines: Sequence[Any],
    currency: str,
    contract_start: date,
    end: date,
    anchor: str,
    as_of: date,
) -> RenewalValue:
    """Both alert figures for one contract. ``lines``: the price lines of the version in force on
    ``as_of`` (objects with kind, amount, frequency, minimum_commitment, bill_on, expected_date,
    percent_of_fixed_fee)."""
    return RenewalValue(
        currency=currency,
        annual_recurring=annual_recurring_value(lines=lines, currency=currency),
        remaining=remaining_value(
            lines=lines, currency=currency, contract_start=contract_start, end=end, anchor=anchor, as_of=as_of
        ),
    )


RUN_RATE_MONTHS = 3  # usage and hours billed over this many months before the alert, per month


def term_months(start: date, end: date) -> int:
    """Calendar months a term spans, counting a started month: 15 Jan – 31 Dec = 12."""
    return max((end.year - start.year) * 12 + end.month - start.month + (1 if end.day >= start.day else 0), 1)


@dataclass(frozen=True)
class StakeValue:
    amount: Decimal
    basis: str  # "annual": a year of recurring value; "term": the contract's value over its term
    parts: tuple[tuple[str, Decimal], ...]  # (what, amount), e.g. ("milestones", 24000.00)

    def parts_json(self) -> list[dict[str, str]]:
        return [{"what": what, "amount": format(amount, "f")} for what, amount in self.parts]


def stake_value(
    *,
    annual_recurring: Decimal,
    lines: Sequence[Any],
    currency: str,
    term_start: date,
    term_end: date,
    run_rate_per_month: Decimal = ZERO,
) -> StakeValue:
    """The value at stake on a renewal alert (module docstring). ``run_rate_per_month``: usage,
    hours and overage billed per month lately (computed by the caller from the invoices)."""
    if annual_recurring > 0:
        return StakeValue(annual_recurring, "annual", (("recurring, a year", annual_recurring),))
    fees = sum((to_decimal(line.amount) for line in lines if line.kind == "fixed_fee" and line.amount), ZERO)
    milestones = ZERO
    for line in lines:
        if line.kind != "milestone":
            continue
        if line.amount is not None:
            milestones += to_decimal(line.amount)
        elif line.percent_of_fixed_fee is not None:
            milestones += fees * to_decimal(line.percent_of_fixed_fee) / HUNDRED
    months = term_months(term_start, term_end)
    parts = []
    if milestones:
        parts.append(("milestones", quantize(milestones, currency)))
    if fees:
        parts.append(("fixed fees", quantize(fees, currency)))
    if run_rate_per_month > 0:
        parts.append(
            (f"usage and hours at the run rate × {months} months", quantize(run_rate_per_month * months, currency))
        )
    total = quantize(sum((amount for _, amount in parts), ZERO), currency)
    return StakeValue(total, "term", tuple(parts))


# --------------------------------------------------------------------------- next term


def next_term(*, end: date, term_months: int) -> tuple[date, date]:
    """(first day, last day) of the term after ``end``: 31 Dec 2026 + 12 months → 2027-01-01..2027-12-31."""
    if term_months < 1:
        raise ValueError(f"A renewal term must be at least one month, not {term_months}.")
    start = end + timedelta(days=1)
    return start, add_months(start, term_months) - timedelta(days=1)


def uplift_amount(value: Decimal | None, *, pct: Decimal, currency: str) -> Decimal | None:
    # Nothing to raise: keep the value as written, so the history shows no change.
    if value is None or to_decimal(value) == 0:
        return value
    return quantize(to_decimal(value) * (HUNDRED + pct) / HUNDRED, currency)


def uplift_unit_price(value: Decimal | None, *, pct: Decimal) -> Decimal | None:
    if value is None or to_decimal(value) == 0:
        return value
    raised = (to_decimal(value) * (HUNDRED + pct) / HUNDRED).quantize(UNIT_PRICE_EXPONENT, rounding=ROUND_HALF_UP)
    # 0.010500 → 0.0105, but never fewer places than the price was written with (1.00 stays 1.05, not 1.05000).
    places = min(6, max(-to_decimal(value).as_tuple().exponent, -raised.normalize().as_tuple().exponent, 0))
    return raised.quantize(Decimal(1).scaleb(-places))


def uplift_fields(
    obj: Any, *, amount_fields: Iterable[str], unit_fields: Iterable[str], pct: Decimal, currency: str
) -> dict[str, Decimal | None]:
    """New values for ``obj``'s money fields under the uplift (only the fields it has)."""
    values: dict[str, Decimal | None] = {}
    for name in amount_fields:
        if hasattr(obj, name):
            values[name] = uplift_amount(getattr(obj, name), pct=pct, currency=currency)
    for name in unit_fields:
        if hasattr(obj, name):
            values[name] = uplift_unit_price(getattr(obj, name), pct=pct)
    return values


# One-off obligations belong to the term they were agreed for: a renewal does not bill onboarding
# or a go-live milestone again. Billing still finds them in the earlier version that holds them.
CARRIED_KINDS = ("recurring", "usage", "time_and_materials")
