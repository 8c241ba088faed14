"""Billing periods of one price line across contract versions (pure: loaded rows in, periods out).

The rule (DESIGN.md §3): billing for a period uses the version in force at the period's start,
and the same obligation keeps its ``line_ref`` across versions. So the schedule is walked period by
period: at each period start the version in force is looked up, its line with that ``line_ref``
(if any) gives the frequency, and the version gives the anchor. An amendment that takes effect
mid-period applies from the next period; a line dropped by an amendment stops being billed.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

from revexos.pricing import Period, full_period_for

__all__ = ["LinePeriod", "line_periods", "period_label", "version_in_force", "version_on"]


def version_in_force(versions: Sequence[Any], on: date) -> Any | None:
    """The terms in force on ``on``: the latest version effective on or before it, else the first
    (versions ordered by ``effective_from``). ``contracts.selectors.contract_terms_on`` is the same
    rule as a query."""
    chosen = None
    for version in versions:
        if version.effective_from <= on:
            chosen = version
    return chosen or (versions[0] if versions else None)


def version_on(versions: Sequence[Any], day: date) -> Any:
    """The version in force on ``day``; ``versions`` sorted by effective_from.

    Applies :func:`version_in_force` to rows already loaded, so a billing run does not query per
    period.
    """
    version = version_in_force(list(versions), day)
    if version is None:
        raise ValueError("A contract without versions has no terms to bill.")
    return version


@dataclass(frozen=True)
class LinePeriod:
    period: Period  # clipped to the contract
    full: Period  # the nominal period: proration denominator
    version: Any
    line: Any


def _line_by_ref(version: Any, line_ref: str) -> Any | None:
    for line in version.price_lines.all():
        if line.line_ref == line_ref:
            return line
    return None


def line_periods(
    *,
    contract_start: date,
    contract_end: date | None,
    versions: Sequence[Any],
    line_ref: str,
    kind: str,
    until: date,
    default_frequency: str = "monthly",
) -> list[LinePeriod]:
    """Every period of ``line_ref`` starting on or before ``until`` in which a line of ``kind`` is in force."""
    result: list[LinePeriod] = []
    cursor = contract_start
    while cursor <= until and (contract_end is None or cursor <= contract_end):
        version = version_on(versions, cursor)
        line = _line_by_ref(version, line_ref)
        frequency = line.frequency if line is not None and line.frequency else default_frequency
        full = full_period_for(
            period_start=cursor, frequency=frequency, anchor=version.billing_anchor, contract_start=contract_start
        )
        end = full.end if contract_end is None else min(full.end, contract_end)
        if line is not None and line.kind == kind:
            result.append(LinePeriod(Period(cursor, end), full, version, line))
        cursor = full.end + timedelta(days=1)
    return result


def period_label(period: Period) -> str:
    """'Feb 2026' for a whole calendar month, else '15 Jan 2026 – 31 Jan 2026'."""
    first = period.start.replace(day=1)
    next_month = (first + timedelta(days=32)).replace(day=1)
    if period.start == first and period.end == next_month - timedelta(days=1):
        return period.start.strftime("%b %Y")
    return f"{period.start.day} {period.start:%b %Y} – {period.end.day} {period.end:%b %Y}"
