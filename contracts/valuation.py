"""Total contract value (pure: plain objects in, Decimal out; no ORM, no I/O).

The committed value of a contract over its term, priced the way billing will price it: every
recurring period at the terms of the version in force at the period's start, prorated by days
for partial periods (revexos.pricing), plus one-off fees and milestone amounts once per line,
plus usage minimum commitments per period. Time and materials is not committed money; its
not-to-exceed caps are reported beside the value. Open-ended contracts are valued over their
first twelve months (an annualised figure), which the result says.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, timedelta
from decimal import Decimal
from typing import Any

from revexos.money import quantize
from revexos.pricing import Period, add_months, billing_periods, full_period_for, prorate

ZERO = Decimal(0)


@dataclass(frozen=True)
class ContractValue:
    committed: dict[str, Decimal] = field(default_factory=dict)  # currency -> amount
    tm_caps: dict[str, Decimal] = field(default_factory=dict)
    recurring_per_month: dict[str, Decimal] = field(default_factory=dict)  # terms in force on the as-of date
    open_ended: bool = False
    horizon: Period | None = None

    def single(self) -> tuple[Decimal, str] | None:
        """(amount, currency) when the contract is in one currency."""
        if len(self.committed) == 1:
            currency, amount = next(iter(self.committed.items()))
            return amount, currency
        return None


_MONTHS = {"monthly": 1, "quarterly": 3, "annual": 12}


def contract_value(
    *, start: date, end: date | None, versions: Sequence[Any], as_of: date | None = None
) -> ContractValue:
    """``versions``: objects with effective_from, billing_anchor, currency and ``lines`` (a list of
    objects with kind, line_ref, amount, frequency, minimum_commitment, cap, percent_of_fixed_fee),
    ordered by effective_from."""
    if not versions:
        return ContractValue()
    horizon_end = end if end is not None else add_months(start, 12) - timedelta(days=1)
    if horizon_end < start:
        return ContractValue()
    committed: dict[str, Decimal] = defaultdict(lambda: ZERO)
    caps: dict[str, Decimal] = {}
    one_offs: dict[str, tuple[str, Decimal]] = {}
    ordered = sorted(versions, key=lambda v: v.effective_from)
    for index, version in enumerate(ordered):
        window_start = max(version.effective_from, start) if index else start
        window_end = ordered[index + 1].effective_from - timedelta(days=1) if index + 1 < len(ordered) else horizon_end
        if window_end < window_start:
            continue
        currency = version.currency
        for line in version.lines:
            if line.kind in ("recurring", "usage"):
                per_period = line.amount if line.kind == "recurring" else line.minimum_commitment
                if not per_period or not line.frequency:
                    continue
                for period in billing_periods(
                    contract_start=start,
                    contract_end=horizon_end,
                    frequency=line.frequency,
                    anchor=version.billing_anchor,
                    until=window_end,
                ):
                    if period.start < window_start:
                        continue
                    full = full_period_for(
                        period_start=period.start,
                        frequency=line.frequency,
                        anchor=version.billing_anchor,
                        contract_start=start,
                    )
                    committed[currency] += prorate(amount=per_period, period=period, full=full, currency=currency)
            elif line.kind == "fixed_fee" or (line.kind == "milestone" and line.amount is not None):
                one_offs[line.line_ref] = (currency, line.amount or ZERO)
            elif line.kind == "time_and_materials" and line.cap:
                caps[line.line_ref] = (currency, line.cap)
    for currency, amount in one_offs.values():
        committed[currency] += amount
    tm_caps: dict[str, Decimal] = defaultdict(lambda: ZERO)
    for currency, cap in caps.values():
        tm_caps[currency] += cap

    monthly: dict[str, Decimal] = defaultdict(lambda: ZERO)
    today = as_of or start
    in_force = ordered[0]
    for version in ordered:
        if version.effective_from <= today:
            in_force = version
    for line in in_force.lines:
        if line.kind == "recurring" and line.amount and line.frequency in _MONTHS:
            monthly[in_force.currency] += line.amount / _MONTHS[line.frequency]
    return ContractValue(
        committed={c: quantize(a, c) for c, a in committed.items()},
        tm_caps={c: quantize(a, c) for c, a in tm_caps.items()},
        recurring_per_month={c: quantize(a, c) for c, a in monthly.items()},
        open_ended=end is None,
        horizon=Period(start, horizon_end),
    )
