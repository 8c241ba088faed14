"""Onboarding live contracts: what the first run will bill, and milestones delivered before import.

Both plug into the contracts CSV import (registered in ``BillingConfig.ready``): the import's
preview writes the contracts in a savepoint, asks :func:`first_run_preview` — the billing engine's
own shadow run, nothing written — and rolls back, so the person importing sees every catch-up
invoice before it exists. Setting ``billed_through`` (the last day the old system billed) is how
they avoid one.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import date, datetime, time
from decimal import Decimal

from revexos.dates import tenant_today, tenant_zone

ZERO = Decimal(0)


def first_run_preview(*, contract_ids: list[int], as_of: date | None = None) -> dict[int, dict]:
    """contract id → what a billing run as of today would bill: totals per currency, how many
    periods, the first and last, and how much of it is catch-up (periods ended before this month)."""
    from billing.services.shadow import billing_shadow

    as_of = as_of or tenant_today()
    month_start = as_of.replace(day=1)
    run = billing_shadow(contract_ids=contract_ids, as_of=as_of)
    result: dict[int, dict] = {}
    for contract_id, shadow in run.contracts.items():
        totals: dict[str, Decimal] = defaultdict(lambda: ZERO)
        catch_up: dict[str, Decimal] = defaultdict(lambda: ZERO)
        periods: set[date] = set()
        catch_up_periods: set[date] = set()
        first = last = None
        for ob in shadow.obligations:
            totals[ob.currency] += ob.amount
            day = ob.period_start or ob.on
            end = ob.period_end or ob.on
            if ob.period_start is not None:
                periods.add(ob.period_start)
            first = day if first is None or day < first else first
            last = end if last is None or end > last else last
            if end < month_start:
                catch_up[ob.currency] += ob.amount
                catch_up_periods.add(day)
        result[contract_id] = {
            "skipped": shadow.skipped,
            "error": shadow.error,
            "lines": len(shadow.obligations),
            "invoices": len(shadow.invoices),
            "totals": {c: str(v) for c, v in sorted(totals.items())},
            "catch_up": {c: str(v) for c, v in sorted(catch_up.items()) if v},
            "catch_up_periods": len(catch_up_periods),
            "periods": len(periods),
            "first": first,
            "last": last,
            "as_of": as_of,
        }
    return result


def milestones_delivered_from_import(*, contract, header: dict[str, str], rows, user=None) -> None:
    """``delivered_on`` on a milestone's row: it was delivered that day (before the import).

    Set directly rather than through ``milestone_deliver``: the import is not a delivery event, and
    the billing run (or ``billed_through``) decides whether it is still to bill.
    """
    from contracts.models import Milestone, MilestoneStatus
    from contracts.services.imports import RowError

    today = tenant_today()
    milestones = list(Milestone.objects.filter(contract=contract))
    for line, row in rows:
        text = row.get("delivered_on", "")
        if not text:
            continue
        if row.get("line_kind") != "milestone":
            raise RowError(line, "delivered_on", "Only a milestone's row can say when it was delivered.")
        try:
            day = date.fromisoformat(text)
        except ValueError:
            raise RowError(line, "delivered_on", f"“{text}” is not a date; use YYYY-MM-DD.") from None
        if day > today:
            raise RowError(line, "delivered_on", f"{day.isoformat()} is in the future; deliver it when it happens.")
        if day < contract.start_date:
            raise RowError(
                line,
                "delivered_on",
                f"{day.isoformat()} is before the contract starts ({contract.start_date.isoformat()}).",
            )
        reference, name = row.get("reference", ""), row.get("line_description", "")
        milestone = next((m for m in milestones if reference and m.reference == reference), None) or next(
            (m for m in milestones if m.name == name), None
        )
        if milestone is None:
            raise RowError(line, "delivered_on", f"No milestone “{name}” on {contract.number}.")
        if milestone.status != MilestoneStatus.PENDING:
            continue  # a later version's row repeats the same milestone
        milestone.status = MilestoneStatus.DELIVERED
        milestone.delivered_at = datetime.combine(day, time(12), tzinfo=tenant_zone())
        milestone.delivered_source = "import"
        milestone.save(update_fields=["status", "delivered_at", "delivered_source"])
