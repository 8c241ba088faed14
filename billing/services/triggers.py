"""Billing triggers (DESIGN.md §4 trigger table): what is due for a contract and not billed yet.

Each trigger is a query for what is due plus a billing key per obligation; a key already on an
invoice line means "done". Late facts (usage or time for a period already invoiced) are found as
facts with no invoice line and billed on the next invoice as their own lines, with their own keys
(the highest fact id they cover is part of the key, so a rerun that sees the same facts builds the
same key and cannot bill them twice).

Billing keys (unique per tenant on InvoiceLine.billing_key):
    recurring:{contract}:{line_ref}:{period_start}
    overage:{contract}:{line_ref}:{period_start}:{max time entry id}
    fixed:{contract}:{line_ref}
    milestone:{milestone id}
    tm:{contract}:{line_ref}:{period_start}:{max time entry id}:{role}
    usage:{contract}:{line_ref}:{period_start}                 period close
    usage-min:{contract}:{line_ref}:{period_start}             minimum commitment top-up at close
    usage:{contract}:{line_ref}:{period_start}:interim:{max event id}   threshold crossed
    usage:{contract}:{line_ref}:{period_start}:late:{max event id}      facts after the close

Cut-over: a period ending on or before ``Contract.billed_through`` was billed by the system the
contract came from and is never billed here; a fixed fee or milestone dated on or before it neither.

The engine has three parts, and every way of billing goes through all of them:

1. ``contexts_load`` reads what the triggers need for a set of contracts in a fixed number of
   queries (terms, billed lines, unbilled facts, then the aggregates of the periods that are due).
2. ``contract_obligations`` runs the triggers over one loaded contract in memory and collects
   what is due: line specs, review tasks to raise, facts to mark. It writes nothing; shadow
   billing (``billing/services/shadow.py``) is this step alone.
3. A writer stores the result: ``contract_bill_due`` for one contract (the event flow and the
   reference path), ``billing/services/bulk.py`` for a chunk of a run.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

from django.db import connection, transaction
from django.db.models import Sum
from django.utils import timezone

from billing.models import InvoiceLine, InvoiceLineKind, ReviewTaskKind, TimeEntry, UsageEvent
from billing.selectors import contract_versions_many
from billing.services.context import current_tenant
from billing.services.invoicing import LineSpec, invoices_create_from_specs
from billing.services.reviews import review_task_raise
from contracts.models import Contract, Milestone, MilestoneStatus
from discounts.models import ExceptionStatus, PriceOverride
from revexos.money import allocate, format_money, quantize
from revexos.pricing import (
    Period,
    TimeLine,
    UsageSpec,
    price_overage_hours,
    price_recurring,
    price_time_and_materials,
    price_usage,
)
from revexos.schedule import LinePeriod, line_periods, period_label, version_on

logger = logging.getLogger(__name__)

ZERO = Decimal("0")
ONE = Decimal("1")
BILLABLE_CONTRACT_STATUSES = ("active", "expired", "terminated", "renewed")


def _fmt(value: Decimal) -> str:
    """A quantity as a plain string without exponent or trailing zeros ('12.5', '1000')."""
    text = format(value.normalize(), "f")
    return text


# --------------------------------------------------------------------------- facts


@dataclass
class BilledLine:
    id: int
    billing_key: str
    kind: str
    line_ref: str
    period_start: date | None
    quantity: Decimal
    amount: Decimal


@dataclass(frozen=True)
class TimeFact:
    pk: int
    line_ref: str
    work_date: date
    hours: Decimal
    role: str


@dataclass(frozen=True)
class MilestoneFact:
    pk: int
    line_ref: str
    name: str
    reference: str
    delivered_at: datetime
    delivered_source: str


@dataclass(frozen=True)
class ReviewTaskSpec:
    """A review task the triggers found necessary; raised by the writer, listed by the shadow."""

    kind: str
    dedupe_key: str
    title: str
    detail: str = ""
    contract_id: int | None = None


# A usage measure: (metric, start, end, how, property). ``how`` is an aggregation, or "amounts"
# for the percentage models (each event's ``amount`` property, in time order).
UsageWindow = tuple[str, datetime, datetime, str, str]
HoursWindow = tuple[str, date, date]


@dataclass
class ContractFacts:
    """What billing reads about one contract besides its terms, loaded for many contracts at once."""

    billed: list[BilledLine] = field(default_factory=list)
    unbilled_time: list[TimeFact] = field(default_factory=list)
    unbilled_usage_days: dict[str, dict[date, int]] = field(default_factory=dict)  # metric -> day -> max id
    milestones: list[MilestoneFact] = field(default_factory=list)  # delivered, not invoiced
    overrides: list[tuple] = field(default_factory=list)  # (line_ref, role, start, end, rate), newest first
    budget_hours: dict[str, Decimal] = field(default_factory=dict)  # fixed-fee line_ref -> billable hours
    # Aggregates of the periods that are due (second loading pass).
    hours: dict[HoursWindow, Decimal] = field(default_factory=dict)
    usage: dict[UsageWindow, object] = field(default_factory=dict)


# --------------------------------------------------------------------------- context


@dataclass
class BillingContext:
    """Everything the triggers read about one contract, and what they found due."""

    contract: object
    versions: list
    as_of: date
    now: datetime
    zone: ZoneInfo
    facts: ContractFacts
    tenant: object = None
    billed_through: date | None = None
    keys: set[str] = field(default_factory=set)
    new_specs: list[LineSpec] = field(default_factory=list)
    reviews: list[ReviewTaskSpec] = field(default_factory=list)
    # Hours within a retainer's included hours, counted against a line billed earlier: (entry ids, line id).
    time_marks: list[tuple[list[int], int]] = field(default_factory=list)
    # At most this many new lines per price line in one evaluation (a contract dated decades back
    # catches up over several runs instead of one enormous invoice); None: no cap.
    catch_up_cap: int | None = None
    capped: dict[str, int] = field(default_factory=dict)
    _per_ref: dict[str, int] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.keys = {b.billing_key for b in self.facts.billed}

    @property
    def billed(self) -> list[BilledLine]:
        return self.facts.billed

    @property
    def contract_id(self) -> int:
        return self.contract.pk

    def refs(self, kind: str) -> list[str]:
        seen: dict[str, None] = {}
        for version in self.versions:
            for line in version.price_lines.all():
                if line.kind == kind:
                    seen.setdefault(line.line_ref, None)
        return list(seen)

    def periods(self, line_ref: str, kind: str, until: date | None = None) -> list[LinePeriod]:
        return line_periods(
            contract_start=self.contract.start_date,
            contract_end=self.contract.end_date,
            versions=self.versions,
            line_ref=line_ref,
            kind=kind,
            until=until or self.as_of,
        )

    def cut_over(self, day: date) -> bool:
        """True when ``day`` (a period's end, a fee's date) is covered by the previous system's billing."""
        return self.billed_through is not None and day <= self.billed_through

    def live_period(self, period: Period) -> Period | None:
        """The part of ``period`` after the cut-over (None: all of it was billed elsewhere)."""
        if self.billed_through is None or period.start > self.billed_through:
            return period
        if period.end <= self.billed_through:
            return None
        return Period(self.billed_through + timedelta(days=1), period.end)

    def local_start(self, day: date) -> datetime:
        return datetime.combine(day, time.min, tzinfo=self.zone)

    def local_date(self, moment: datetime) -> date:
        return moment.astimezone(self.zone).date()

    def billed_for(self, line_ref: str, period_start: date, kinds: tuple[str, ...]) -> tuple[Decimal, Decimal]:
        """(quantity, amount) already invoiced for one line and period."""
        quantity = amount = ZERO
        for b in self.billed:
            if b.line_ref == line_ref and b.period_start == period_start and b.kind in kinds:
                quantity += b.quantity
                amount += b.amount
        return quantity, amount

    def rate(self, line_ref: str, role: str | None = None, *, on: date, default: Decimal | None) -> Decimal | None:
        """The rate in force on ``on``: a custom rate (price override) inside its window, else ``default``."""
        for ref, row_role, start, end, rate in self.facts.overrides:
            if ref == line_ref and row_role == (role or "") and start <= on <= end:
                return rate
        return default

    def review(self, **kwargs) -> None:
        self.reviews.append(ReviewTaskSpec(contract_id=self.contract_id, **kwargs))

    def add(self, spec: LineSpec) -> None:
        if spec.billing_key in self.keys:
            return
        count = self._per_ref.get(spec.line_ref, 0)
        if self.catch_up_cap is not None and count >= self.catch_up_cap:
            self.capped[spec.line_ref] = self.capped.get(spec.line_ref, 0) + 1
            return
        self._per_ref[spec.line_ref] = count + 1
        self.keys.add(spec.billing_key)
        self.new_specs.append(spec)


def _find_period(periods: list[LinePeriod], day: date) -> LinePeriod | None:
    for lp in periods:
        if lp.period.start <= day <= lp.period.end:
            return lp
    return None


def _touched_periods(ctx: BillingContext, ref: str, kind: str, entries: list[TimeFact]) -> dict[date, list[TimeFact]]:
    """Unbilled hours of ``ref`` by the start of their closed period (hours up to the cut-over
    were billed by the previous system)."""
    periods = ctx.periods(ref, kind)
    touched: dict[date, list[TimeFact]] = defaultdict(list)
    for entry in entries:
        lp = _find_period(periods, entry.work_date)
        if lp is not None and lp.period.end < ctx.as_of and not ctx.cut_over(entry.work_date):
            touched[lp.period.start].append(entry)
    return touched


def _hours_window(ctx: BillingContext, ref: str, period: Period) -> HoursWindow:
    live = ctx.live_period(period)
    return (ref, live.start, live.end)


# --------------------------------------------------------------------------- recurring


def recurring_bill_due(ctx: BillingContext) -> None:
    """Retainers/subscriptions: in advance when the period starts, in arrears when it closes."""
    for ref in ctx.refs("recurring"):
        for lp in ctx.periods(ref, "recurring"):
            line, period = lp.line, lp.period
            due = period.start <= ctx.as_of if line.timing == "advance" else period.end < ctx.as_of
            key = f"recurring:{ctx.contract_id}:{ref}:{period.start}"
            if not due or key in ctx.keys:
                continue
            # Cut-over inside the period: the days after it are billed (the key stays the period's).
            period = ctx.live_period(period)
            if period is None:
                continue
            rate = ctx.rate(ref, on=lp.period.start, default=line.amount)  # custom rate
            amount = price_recurring(amount=rate, period=period, full_period=lp.full, currency=lp.version.currency)
            partial = period != lp.full
            description = f"{line.description} {period_label(period)}"
            if partial:
                description += f" (prorated {period.days}/{lp.full.days} days)"
            ctx.add(
                LineSpec(
                    kind=InvoiceLineKind.RECURRING,
                    description=description,
                    quantity=ONE,
                    unit_amount=amount,
                    amount=amount,
                    billing_key=key,
                    version=lp.version,
                    period_start=period.start,
                    period_end=period.end,
                    price_line_id=line.pk,
                    line_ref=ref,
                    source={
                        "timing": line.timing,
                        "days": period.days,
                        "period_days": lp.full.days,
                        "full_amount": str(line.amount),
                    },
                )
            )


def _unbilled_time_by_ref(ctx: BillingContext) -> dict[str, list[TimeFact]]:
    by_ref: dict[str, list[TimeFact]] = defaultdict(list)
    for entry in ctx.facts.unbilled_time:
        by_ref[entry.line_ref].append(entry)
    return by_ref


def overage_windows(ctx: BillingContext) -> list[HoursWindow]:
    """The retainer periods whose billable hours the overage trigger needs summed."""
    by_ref = _unbilled_time_by_ref(ctx)
    windows = []
    for ref in ctx.refs("recurring"):
        entries = by_ref.get(ref)
        if not entries:
            continue
        periods = ctx.periods(ref, "recurring")
        for start in _touched_periods(ctx, ref, "recurring", entries):
            lp = _find_period(periods, start)
            if lp.line.included_hours is not None and lp.line.overage_rate is not None:
                windows.append(_hours_window(ctx, ref, lp.period))
    return windows


def overage_bill_due(ctx: BillingContext) -> None:
    """Included hours of a retainer: hours beyond them at the overage rate, when the period closes.

    Hours counted against the retainer are marked with the line that billed them (the overage
    line, or the period's retainer line when there was no overage), so late hours for a closed
    period are found again and billed as the extra overage they cause.
    """
    by_ref = _unbilled_time_by_ref(ctx)
    for ref in ctx.refs("recurring"):
        entries = by_ref.get(ref)
        if not entries:
            continue
        periods = ctx.periods(ref, "recurring")
        touched = _touched_periods(ctx, ref, "recurring", entries)
        for start, batch in sorted(touched.items()):
            lp = _find_period(periods, start)
            line, period, currency = lp.line, lp.period, lp.version.currency
            if line.included_hours is None or line.overage_rate is None:
                continue
            hours_all = ctx.facts.hours[_hours_window(ctx, ref, period)]
            overage_hours, overage_amount = price_overage_hours(
                hours_used=hours_all,
                included_hours=line.included_hours,
                overage_rate=line.overage_rate,
                currency=currency,
            )
            billed_hours, billed_amount = ctx.billed_for(ref, period.start, (InvoiceLineKind.OVERAGE,))
            delta_hours, delta_amount = overage_hours - billed_hours, overage_amount - billed_amount
            ids = [e.pk for e in batch]
            if delta_amount > 0:
                ctx.add(
                    LineSpec(
                        kind=InvoiceLineKind.OVERAGE,
                        description=f"{line.description} overage {period_label(period)}: {_fmt(delta_hours)} h over {_fmt(line.included_hours)} included",
                        quantity=delta_hours,
                        unit_amount=line.overage_rate,
                        amount=delta_amount,
                        billing_key=f"overage:{ctx.contract_id}:{ref}:{period.start}:{max(ids)}",
                        version=lp.version,
                        period_start=period.start,
                        period_end=period.end,
                        price_line_id=line.pk,
                        line_ref=ref,
                        source={
                            "hours_used": str(hours_all),
                            "included_hours": str(line.included_hours),
                            "time_entries": len(ids),
                        },
                        time_entry_ids=ids,
                    )
                )
                continue
            # Within the included hours: the retainer line of the period consumed them.
            retainer_key = f"recurring:{ctx.contract_id}:{ref}:{period.start}"
            spec = next((s for s in ctx.new_specs if s.billing_key == retainer_key), None)
            if spec is not None:
                spec.time_entry_ids.extend(ids)
            else:
                billed = next((b for b in ctx.billed if b.billing_key == retainer_key), None)
                if billed is not None:
                    ctx.time_marks.append((ids, billed.id))


# --------------------------------------------------------------------------- fixed fee and milestones


def _line_in(version, ref: str):
    return next((line for line in version.price_lines.all() if line.line_ref == ref), None)


def _holders(ctx: BillingContext, ref: str, kind: str) -> list:
    """Versions that have a line ``ref`` of ``kind``, oldest first."""
    return [v for v in ctx.versions if (line := _line_in(v, ref)) is not None and line.kind == kind]


def fixed_fee_bill_due(ctx: BillingContext) -> None:
    """One-off fees, billed once on their bill_on date (the contract start when empty), at the
    amount of the terms in force on that date."""
    for ref in ctx.refs("fixed_fee"):
        key = f"fixed:{ctx.contract_id}:{ref}"
        holders = _holders(ctx, ref, "fixed_fee")
        if key in ctx.keys or not holders:
            continue
        latest = next((v for v in reversed(holders) if v.effective_from <= ctx.as_of), holders[0])
        bill_on = _line_in(latest, ref).bill_on or ctx.contract.start_date
        if bill_on > ctx.as_of or ctx.cut_over(bill_on):
            continue
        version = version_on(ctx.versions, bill_on)
        if version not in holders:
            version = latest
        line = _line_in(version, ref)
        amount = quantize(line.amount, version.currency)
        ctx.add(
            LineSpec(
                kind=InvoiceLineKind.FIXED_FEE,
                description=line.description,
                quantity=ONE,
                unit_amount=amount,
                amount=amount,
                billing_key=key,
                version=version,
                price_line_id=line.pk,
                line_ref=ref,
                source={"bill_on": bill_on.isoformat()},
            )
        )


def budget_refs(versions: list) -> list[str]:
    """Fixed-fee lines with an hours budget (their latest terms): the budget check sums their hours."""
    refs: dict[str, object] = {}
    for version in versions:
        for line in version.price_lines.all():
            if line.kind == "fixed_fee":
                refs[line.line_ref] = line
    return [ref for ref, line in refs.items() if line.included_hours]


def fixed_fee_budget_check(ctx: BillingContext) -> None:
    """Hours logged against a fixed fee beyond its budget (the line's included hours) → review task."""
    for ref in ctx.refs("fixed_fee"):
        holders = _holders(ctx, ref, "fixed_fee")
        line = _line_in(holders[-1], ref) if holders else None
        if line is None or not line.included_hours:
            continue
        hours = ctx.facts.budget_hours.get(ref, ZERO)
        if hours > line.included_hours:
            ctx.review(
                kind=ReviewTaskKind.BUDGET_OVERRUN,
                dedupe_key=f"budget:{ctx.contract_id}:{ref}",
                title=f"{ctx.contract.number}: {_fmt(hours)} h logged against “{line.description}”, budget {_fmt(line.included_hours)} h",
                detail="The fixed fee does not cover the extra hours. Agree a change order (amend the contract) or accept the overrun.",
            )


def milestone_bill_due(ctx: BillingContext) -> None:
    """Delivered milestones, at the amount of the terms in force on the delivery date."""
    for milestone in ctx.facts.milestones:
        key = f"milestone:{milestone.pk}"
        day = ctx.local_date(milestone.delivered_at)
        if key in ctx.keys or day > ctx.as_of or ctx.cut_over(day):
            continue
        version = version_on(ctx.versions, day)
        holders = _holders(ctx, milestone.line_ref, "milestone")
        if version not in holders:
            version = holders[-1] if holders else None
        line = _line_in(version, milestone.line_ref) if version is not None else None
        if line is None:
            ctx.review(
                kind=ReviewTaskKind.UNKNOWN_MILESTONE,
                dedupe_key=f"milestone-no-line:{milestone.pk}",
                title=f"{ctx.contract.number}: delivered milestone “{milestone.name}” has no price line",
                detail="Add the milestone to the contract terms or cancel the milestone.",
            )
            continue
        if line.amount is not None:
            amount = line.amount
        else:
            fixed_total = sum((pl.amount or ZERO for pl in version.price_lines.all() if pl.kind == "fixed_fee"), ZERO)
            amount = fixed_total * line.percent_of_fixed_fee / Decimal(100)
        amount = quantize(amount, version.currency)
        ctx.add(
            LineSpec(
                kind=InvoiceLineKind.MILESTONE,
                description=f"{line.description} (delivered {day.day} {day:%b %Y})",
                quantity=ONE,
                unit_amount=amount,
                amount=amount,
                billing_key=key,
                version=version,
                price_line_id=line.pk,
                line_ref=line.line_ref,
                milestone_id=milestone.pk,
                source={
                    "milestone": milestone.pk,
                    "reference": milestone.reference,
                    "delivered_at": milestone.delivered_at.isoformat(),
                    "source": milestone.delivered_source,
                },
            )
        )


# --------------------------------------------------------------------------- time and materials


def time_and_materials_bill_due(ctx: BillingContext) -> None:
    """Billable time at the rate card when its period closes, held under the contract-wide cap."""
    by_ref = _unbilled_time_by_ref(ctx)
    for ref in ctx.refs("time_and_materials"):
        entries = by_ref.get(ref)
        if not entries:
            continue
        periods = ctx.periods(ref, "time_and_materials")
        touched = _touched_periods(ctx, ref, "time_and_materials", entries)
        billed_total = sum(
            (b.amount for b in ctx.billed if b.line_ref == ref and b.kind == InvoiceLineKind.TIME_AND_MATERIALS), ZERO
        )
        for start, batch in sorted(touched.items()):
            lp = _find_period(periods, start)
            line, period, currency = lp.line, lp.period, lp.version.currency
            rates = {r.role: r.hourly_rate for r in line.rates.all()}
            priced: list[TimeFact] = [e for e in batch if e.role in rates]
            missing = sorted({e.role for e in batch if e.role not in rates})
            if missing:
                ctx.review(
                    kind=ReviewTaskKind.UNASSIGNED_TIME,
                    dedupe_key=f"tm-rate:{ctx.contract_id}:{ref}:{start}:{','.join(missing)}",
                    title=f"{ctx.contract.number}: no rate for role {', '.join(missing)} on “{line.description}” ({period_label(period)})",
                    detail="Add the role to the rate card with an amendment; the hours stay unbilled until then.",
                )
            if not priced:
                continue
            cap_remaining = None if line.cap is None else line.cap - billed_total
            entry_rate = {e.pk: ctx.rate(ref, e.role, on=e.work_date, default=rates[e.role]) for e in priced}
            charge = price_time_and_materials(
                [TimeLine(role=e.role, hours=e.hours, rate=entry_rate[e.pk]) for e in priced],
                cap_remaining=cap_remaining,
                currency=currency,
            )
            amounts = [tm.amount for tm in charge.lines]
            if charge.cap_reduction > 0:
                amounts = allocate(total=charge.capped_amount, weights=amounts, currency=currency)
                ctx.review(
                    kind=ReviewTaskKind.CAP_REACHED,
                    dedupe_key=f"cap:{ctx.contract_id}:{ref}",
                    title=f"{ctx.contract.number}: “{line.description}” reached its not-to-exceed cap of {format_money(line.cap, currency)} {currency}",
                    detail=f"{format_money(charge.cap_reduction, currency)} {currency} of time in {period_label(period)} and later is not billed.",
                )
            batch_max = max(e.pk for e in priced)
            for tm, amount in zip(charge.lines, amounts, strict=True):
                description = f"{line.description} – {tm.role} {period_label(period)}"
                if amount < tm.amount:
                    description += " (capped at the not-to-exceed amount)"
                covered = [e.pk for e in priced if e.role == tm.role and entry_rate[e.pk] == tm.rate]
                ctx.add(
                    LineSpec(
                        kind=InvoiceLineKind.TIME_AND_MATERIALS,
                        description=description,
                        quantity=tm.hours,
                        unit_amount=tm.rate,
                        amount=amount,
                        billing_key=f"tm:{ctx.contract_id}:{ref}:{start}:{batch_max}:{tm.role}{'' if tm.rate == rates[tm.role] else f'@{tm.rate}'}"[
                            :200
                        ],
                        version=lp.version,
                        period_start=period.start,
                        period_end=period.end,
                        price_line_id=line.pk,
                        line_ref=ref,
                        source={
                            "role": tm.role,
                            "hours": str(tm.hours),
                            "uncapped_amount": str(tm.amount),
                            "time_entries": len(covered),
                        },
                        time_entry_ids=covered,
                    )
                )
            billed_total += charge.capped_amount


def unassigned_time_check(ctx: BillingContext) -> None:
    """Billable hours no price line takes are revenue nobody will invoice: ask a person."""
    loose = [e for e in ctx.facts.unbilled_time if not e.line_ref and not ctx.cut_over(e.work_date)]
    if not loose:
        return
    hours = sum((e.hours for e in loose), ZERO)
    ctx.review(
        kind=ReviewTaskKind.UNASSIGNED_TIME,
        dedupe_key=f"unassigned-time:{ctx.contract_id}:{max(e.pk for e in loose)}",
        title=f"{ctx.contract.number}: {_fmt(hours)} billable h match no price line",
        detail="Roles: "
        + ", ".join(sorted({e.role for e in loose}))
        + ". Add a rate card or a retainer with included hours, or mark the time non-billable.",
    )


# --------------------------------------------------------------------------- usage


def usage_spec(line) -> UsageSpec:
    return UsageSpec(
        charge_model=line.charge_model,
        unit_amount=line.unit_amount,
        tiers=tuple(
            {"up_to": t.up_to, "unit_amount": t.unit_amount, "flat_amount": t.flat_amount, "rate": t.rate}
            for t in line.tiers.all()
        ),
        package_size=line.package_size,
        package_amount=line.amount,
        rate=line.rate,
        fixed_amount=line.fixed_amount,
        per_transaction_min=line.per_transaction_min,
        per_transaction_max=line.per_transaction_max,
        free_units=line.free_units,
        free_amount=line.free_amount,
        minimum_commitment=line.minimum_commitment,
    )


PERCENTAGE_MODELS = ("percentage", "graduated_percentage")


def _usage_measure(line) -> tuple[str, str]:
    """What the charge model needs from the period's events: (how, property)."""
    if line.charge_model in PERCENTAGE_MODELS:
        return "amounts", ""
    how = line.aggregation or "sum"
    return how, (line.aggregation_property if how == "unique_count" else "")


def _usage_window(ctx: BillingContext, period: Period) -> tuple[datetime, datetime]:
    """The period's events: from its first local day (or the day after the cut-over) to its end."""
    live = ctx.live_period(period) or period
    return ctx.local_start(live.start), ctx.local_start(live.end + timedelta(days=1))


def usage_window_key(ctx: BillingContext, line, period: Period) -> UsageWindow:
    start, end = _usage_window(ctx, period)
    how, prop = _usage_measure(line)
    return (line.metric, start, end, how, prop)


def _usage_priced(ctx: BillingContext, lp: LinePeriod):
    """Price every event of the period (billed or not): (charge, aggregate quantity)."""
    line, period, currency = lp.line, lp.period, lp.version.currency
    measured = ctx.facts.usage[usage_window_key(ctx, line, period)]
    spec = usage_spec(line)
    spec = replace(spec, unit_amount=ctx.rate(line.line_ref, on=period.start, default=spec.unit_amount))  # custom price
    if line.charge_model in PERCENTAGE_MODELS:
        amounts = measured
        charge = price_usage(line.charge_model, transactions=amounts, spec=spec, currency=currency)
        quantity = Decimal(len(amounts)) if line.charge_model == "percentage" else sum(amounts, ZERO)
        return charge, quantity
    return price_usage(line.charge_model, quantity=measured, spec=spec, currency=currency), measured


@dataclass(frozen=True)
class UsageDue:
    lp: LinePeriod
    action: str  # close | late | interim
    max_id: int | None


def usage_due(ctx: BillingContext) -> list[UsageDue]:
    """The usage periods that need pricing now: closed and not billed, late facts, or open with a threshold."""
    by_metric = ctx.facts.unbilled_usage_days
    # First and last day with unbilled events per metric: most periods lie outside, unscanned.
    spans = {metric: (min(days), max(days)) for metric, days in by_metric.items() if days}
    due: list[UsageDue] = []
    for ref in ctx.refs("usage"):
        for lp in ctx.periods(ref, "usage"):
            line, period = lp.line, lp.period
            live = ctx.live_period(period)
            if live is None:
                continue
            span = spans.get(line.metric)
            if span is None or live.end < span[0] or live.start > span[1]:
                max_id = None
            else:
                days = by_metric[line.metric]
                max_id = max((mid for day, mid in days.items() if live.start <= day <= live.end), default=None)
            if period.end < ctx.as_of:
                closed = {
                    f"usage:{ctx.contract_id}:{ref}:{period.start}",
                    f"usage-min:{ctx.contract_id}:{ref}:{period.start}",
                }
                if not closed & ctx.keys:
                    # No unbilled facts and no minimum: the period's charge is zero (or all billed interim).
                    if max_id is None and not line.minimum_commitment:
                        continue
                    due.append(UsageDue(lp, "close", max_id))
                elif max_id is not None:
                    due.append(UsageDue(lp, "late", max_id))
            elif line.threshold_amount and max_id is not None and period.start <= ctx.as_of:
                due.append(UsageDue(lp, "interim", max_id))
    return due


def usage_bill_due(ctx: BillingContext) -> None:
    """Usage at period close (with the minimum-commitment top-up), interim when a threshold is
    crossed, and late usage for closed periods as extra lines priced as the difference."""
    for item in usage_due(ctx):
        if item.action == "close":
            _usage_close(
                ctx, item.lp, f"usage:{ctx.contract_id}:{item.lp.line.line_ref}:{item.lp.period.start}", item.max_id
            )
        elif item.action == "late":
            _usage_late(ctx, item.lp, item.max_id)
        else:
            _usage_interim(ctx, item.lp, item.max_id)


def _usage_line(
    ctx, lp: LinePeriod, *, key: str, amount: Decimal, quantity: Decimal, note: str, max_id: int | None, source: dict
) -> LineSpec:
    line, period = lp.line, lp.period
    start, end = _usage_window(ctx, period)
    unit = (
        line.unit_amount
        if line.charge_model == "per_unit" and line.unit_amount is not None
        else ((amount / quantity).quantize(Decimal("0.000001")) if quantity > 0 else amount)
    )
    return LineSpec(
        kind=InvoiceLineKind.USAGE,
        description=f"{line.description} {period_label(period)}{note}",
        quantity=max(quantity, ZERO),
        unit_amount=max(unit, ZERO),
        amount=amount,
        billing_key=key,
        version=lp.version,
        period_start=period.start,
        period_end=period.end,
        price_line_id=line.pk,
        line_ref=line.line_ref,
        source=source,
        usage_marks=[(line.metric, start, end, max_id)] if max_id is not None else [],
    )


def _usage_close(ctx: BillingContext, lp: LinePeriod, key: str, max_id: int | None) -> None:
    line, period, currency = lp.line, lp.period, lp.version.currency
    charge, quantity = _usage_priced(ctx, lp)
    billed_qty, billed_amount = ctx.billed_for(line.line_ref, period.start, (InvoiceLineKind.USAGE,))
    amount = max(charge.amount - billed_amount, ZERO)
    source = {
        "metric": line.metric,
        "charge_model": line.charge_model,
        "aggregation": line.aggregation or "sum",
        "period_quantity": str(quantity),
        "period_charge": str(charge.amount),
        "billed_before": str(billed_amount),
    }
    if max_id is not None or amount > 0:
        ctx.add(
            _usage_line(
                ctx, lp, key=key, amount=amount, quantity=quantity - billed_qty, note="", max_id=max_id, source=source
            )
        )
    if charge.minimum_top_up > 0:
        ctx.add(
            LineSpec(
                kind=InvoiceLineKind.USAGE_MINIMUM,
                description=f"{line.description} {period_label(period)}: minimum commitment top-up to {format_money(line.minimum_commitment, currency)} {currency}",
                quantity=ONE,
                unit_amount=charge.minimum_top_up,
                amount=charge.minimum_top_up,
                billing_key=f"usage-min:{ctx.contract_id}:{line.line_ref}:{period.start}",
                version=lp.version,
                period_start=period.start,
                period_end=period.end,
                price_line_id=line.pk,
                line_ref=line.line_ref,
                source={"minimum_commitment": str(line.minimum_commitment), "period_charge": str(charge.amount)},
            )
        )


def _usage_late(ctx: BillingContext, lp: LinePeriod, max_id: int) -> None:
    line, period, currency = lp.line, lp.period, lp.version.currency
    charge, quantity = _usage_priced(ctx, lp)
    billed_qty, billed_amount = ctx.billed_for(
        line.line_ref, period.start, (InvoiceLineKind.USAGE, InvoiceLineKind.USAGE_MINIMUM)
    )
    delta = charge.total - billed_amount
    if delta < 0:
        ctx.review(
            kind=ReviewTaskKind.USAGE_CORRECTION,
            dedupe_key=f"usage-lower:{ctx.contract_id}:{line.line_ref}:{period.start}:{max_id}",
            title=f"{ctx.contract.number}: late usage lowers “{line.description}” for {period_label(period)} by {-delta} {currency}",
            detail="The invoiced charge is higher than the recomputed one (e.g. volume tiers). Issue a credit note if it is owed.",
        )
    ctx.add(
        _usage_line(
            ctx,
            lp,
            key=f"usage:{ctx.contract_id}:{line.line_ref}:{period.start}:late:{max_id}",
            amount=max(delta, ZERO),
            quantity=quantity - billed_qty,
            note=" (late usage)",
            max_id=max_id,
            source={
                "metric": line.metric,
                "late": True,
                "period_quantity": str(quantity),
                "period_total": str(charge.total),
                "billed_before": str(billed_amount),
            },
        )
    )


def _usage_interim(ctx: BillingContext, lp: LinePeriod, max_id: int) -> None:
    line, period = lp.line, lp.period
    charge, quantity = _usage_priced(ctx, lp)
    billed_qty, billed_amount = ctx.billed_for(line.line_ref, period.start, (InvoiceLineKind.USAGE,))
    unbilled_value = charge.amount - billed_amount
    if unbilled_value < line.threshold_amount:
        return
    ctx.add(
        _usage_line(
            ctx,
            lp,
            key=f"usage:{ctx.contract_id}:{line.line_ref}:{period.start}:interim:{max_id}",
            amount=unbilled_value,
            quantity=quantity - billed_qty,
            note=" (interim: threshold reached)",
            max_id=max_id,
            source={
                "metric": line.metric,
                "interim": True,
                "threshold": str(line.threshold_amount),
                "period_quantity": str(quantity),
            },
        )
    )


# --------------------------------------------------------------------------- the computation


def contract_obligations(ctx: BillingContext) -> BillingContext:
    """Run every trigger over one loaded contract: fills ``ctx.new_specs``, ``ctx.reviews`` and
    ``ctx.time_marks``. Reads only what ``contexts_load`` loaded; writes nothing."""
    recurring_bill_due(ctx)
    overage_bill_due(ctx)
    fixed_fee_bill_due(ctx)
    fixed_fee_budget_check(ctx)
    milestone_bill_due(ctx)
    time_and_materials_bill_due(ctx)
    unassigned_time_check(ctx)
    usage_bill_due(ctx)
    for ref, left in sorted(ctx.capped.items()):
        ctx.review(
            kind=ReviewTaskKind.BILLING_ERROR,
            dedupe_key=f"catch-up:{ctx.contract_id}:{ref}:{ctx.as_of}",
            title=f"{ctx.contract.number}: catch-up of price line {ref} capped at {ctx.catch_up_cap} lines as of {ctx.as_of}",
            detail=(
                f"{left} more obligations of this line are due; the next runs bill them, oldest first. "
                "Check the contract's start date: a catch-up this long usually means a wrong date."
            ),
        )
    return ctx


# --------------------------------------------------------------------------- loading


def contract_skip_reason(contract, *, as_of: date, versions: list | None) -> str:
    """Why a contract is not billed at all as of ``as_of`` ("" when it is billable)."""
    if contract.status not in BILLABLE_CONTRACT_STATUSES:
        return contract.status
    if contract.start_date > as_of:
        return f"starts {contract.start_date.isoformat()}"
    if not versions:
        return "no terms"
    return ""


def _in_list(ids) -> tuple[str, list]:
    return "(" + ", ".join(["%s"] * len(ids)) + ")", list(ids)


def _load_facts(ids: list[int], *, zone: ZoneInfo, assume_unbilled: bool, versions: dict[int, list]) -> dict:
    """The first loading pass: one query per kind of fact, for every contract of ``ids``."""
    facts = {cid: ContractFacts() for cid in ids}
    if not ids:
        return facts
    if not assume_unbilled:
        for row in InvoiceLine.objects.filter(contract_id__in=ids).values_list(
            "contract_id", "id", "billing_key", "kind", "line_ref", "period_start", "quantity", "amount"
        ):
            facts[row[0]].billed.append(BilledLine(*row[1:]))
    time_rows = TimeEntry.objects.filter(contract_id__in=ids, billable=True)
    if not assume_unbilled:
        time_rows = time_rows.filter(invoice_line__isnull=True)
    for cid, pk, ref, day, hours, role in time_rows.order_by("work_date", "id").values_list(
        "contract_id", "id", "line_ref", "work_date", "hours", "role"
    ):
        facts[cid].unbilled_time.append(TimeFact(pk, ref, day, hours, role))

    usage_ids = [
        cid for cid in ids if any(pl.kind == "usage" for v in versions.get(cid, []) for pl in v.price_lines.all())
    ]
    if usage_ids:
        placeholders, params = _in_list(usage_ids)
        unbilled = "" if assume_unbilled else "AND invoice_line_id IS NULL"
        with connection.cursor() as cursor:
            cursor.execute(
                f"""
                SELECT contract_id, metric, (timestamp AT TIME ZONE %s)::date AS day, max(id)
                FROM {UsageEvent._meta.db_table}
                WHERE contract_id IN {placeholders} {unbilled}
                GROUP BY 1, 2, 3
                """,
                [str(zone), *params],
            )
            for cid, metric, day, max_id in cursor.fetchall():
                facts[cid].unbilled_usage_days.setdefault(metric, {})[day] = max_id

    milestone_ids = [
        cid for cid in ids if any(pl.kind == "milestone" for v in versions.get(cid, []) for pl in v.price_lines.all())
    ]
    if milestone_ids:
        statuses = [MilestoneStatus.DELIVERED] + ([MilestoneStatus.INVOICED] if assume_unbilled else [])
        for m in Milestone.objects.filter(contract_id__in=milestone_ids, status__in=statuses).order_by(
            "contract", "expected_date", "id"
        ):
            facts[m.contract_id].milestones.append(
                MilestoneFact(m.pk, m.line_ref, m.name, m.reference, m.delivered_at, m.delivered_source)
            )

    for cid, *row in (
        PriceOverride.objects.filter(contract_id__in=ids)
        .exclude(status=ExceptionStatus.REVOKED)
        .order_by("-created_at", "-id")
        .values_list("contract_id", "line_ref", "role", "start_date", "end_date", "rate")
    ):
        facts[cid].overrides.append(tuple(row))

    budgets = {cid: refs for cid in ids if (refs := budget_refs(versions.get(cid, [])))}
    if budgets:
        for cid, ref, hours in (
            TimeEntry.objects.filter(contract_id__in=list(budgets), billable=True)
            .values_list("contract_id", "line_ref")
            .annotate(h=Sum("hours"))
            .values_list("contract_id", "line_ref", "h")
        ):
            if ref in budgets[cid]:
                facts[cid].budget_hours[ref] = hours
    return facts


def billable_hours_in_windows(windows: Iterable[tuple[int, str, date, date]]) -> dict[tuple, Decimal]:
    """Billable hours (billed or not) per (contract, line_ref, first day, last day): one query for all windows.

    The run's facts and the leakage scan's L2 both ask this, so the sum is defined once.
    """
    rows = list(windows)
    if not rows:
        return {}
    values = ", ".join(["(%s::bigint, %s::text, %s::date, %s::date)"] * len(rows))
    with connection.cursor() as cursor:
        cursor.execute(
            f"""
            SELECT w.c, w.ref, w.s, w.e, coalesce(sum(t.hours), 0)
            FROM (VALUES {values}) AS w(c, ref, s, e)
            LEFT JOIN {TimeEntry._meta.db_table} t
              ON t.contract_id = w.c AND t.line_ref = w.ref AND t.billable AND t.work_date BETWEEN w.s AND w.e
            GROUP BY 1, 2, 3, 4
            """,
            [value for row in rows for value in row],
        )
        return {(c, ref, start, end): hours for c, ref, start, end, hours in cursor.fetchall()}


def _load_hours(wanted: dict[int, list[HoursWindow]], facts: dict[int, ContractFacts]) -> None:
    rows = [(cid, ref, start, end) for cid, windows in wanted.items() for ref, start, end in windows]
    for (cid, ref, start, end), hours in billable_hours_in_windows(rows).items():
        facts[cid].hours[(ref, start, end)] = hours


def _load_usage(wanted: dict[int, list[UsageWindow]], facts: dict[int, ContractFacts]) -> None:
    """Every due usage period's aggregate in one GROUP BY over the events (no event rows into Python)."""
    rows = [(cid, *window) for cid, windows in wanted.items() for window in set(windows)]
    if not rows:
        return
    values = ", ".join(
        ["(%s::int, %s::bigint, %s::text, %s::timestamptz, %s::timestamptz, %s::text, %s::text)"] * len(rows)
    )
    with connection.cursor() as cursor:
        cursor.execute(
            f"""
            SELECT w.k,
                   coalesce(sum(e.quantity), 0),
                   count(e.id),
                   max(e.quantity),
                   count(DISTINCT e.properties ->> w.prop),
                   array_agg(e.properties ->> 'amount' ORDER BY e.timestamp, e.id)
                     FILTER (WHERE w.how = 'amounts' AND e.properties ->> 'amount' IS NOT NULL)
            FROM (VALUES {values}) AS w(k, c, m, s, e, how, prop)
            LEFT JOIN {UsageEvent._meta.db_table} e
              ON e.contract_id = w.c AND e.metric = w.m AND e.timestamp >= w.s AND e.timestamp < w.e
            GROUP BY w.k
            """,
            [value for index, row in enumerate(rows) for value in (index, *row)],
        )
        for index, total, count, maximum, unique, amounts in cursor.fetchall():
            cid, metric, start, end, how, prop = rows[index]
            if how == "amounts":
                measured: object = [Decimal(a) for a in (amounts or [])]
            elif how == "count":
                measured = Decimal(count)
            elif how == "max":
                measured = maximum if maximum is not None else ZERO
            elif how == "unique_count":
                measured = Decimal(unique)
            else:
                measured = total
            facts[cid].usage[(metric, start, end, how, prop)] = measured


def contexts_load(
    *,
    contract_ids: list[int],
    as_of: date,
    now: datetime | None = None,
    tenant=None,
    versions: dict[int, list] | None = None,
    assume_unbilled: bool = False,
    contracts: dict | None = None,
    catch_up_cap: int | None = -1,
) -> dict[int, BillingContext | str]:
    """Load what the triggers read for many contracts in a fixed number of queries.

    Returns contract id -> its context, or the reason it is not billed (see
    ``contract_skip_reason``; "not found" for an unknown id). ``versions`` may be given by a caller
    that loaded the terms already; terms in force are never edited, so they need not be read
    under a lock. Everything billed so far is read here, so a writer calls this under its locks.
    """
    tenant = tenant or current_tenant()
    now = now or timezone.now()
    zone = ZoneInfo(tenant.time_zone or "UTC")
    if catch_up_cap == -1:
        from django.conf import settings

        catch_up_cap = settings.BILLING_CATCH_UP_MAX_LINES
    ids = list(dict.fromkeys(contract_ids))
    if contracts is None:
        contracts = Contract.objects.select_related("issuing_entity", "customer").in_bulk(ids)
    result: dict[int, BillingContext | str] = {}
    if versions is None:
        versions = contract_versions_many(contract_ids=[cid for cid in ids if cid in contracts])
    billable = []
    for cid in ids:
        contract = contracts.get(cid)
        if contract is None:
            result[cid] = "not found"
            continue
        reason = contract_skip_reason(contract, as_of=as_of, versions=versions.get(cid))
        if reason:
            result[cid] = reason
        else:
            billable.append(cid)
    facts = _load_facts(billable, zone=zone, assume_unbilled=assume_unbilled, versions=versions)
    hours_wanted: dict[int, list[HoursWindow]] = {}
    usage_wanted: dict[int, list[UsageWindow]] = {}
    for cid in billable:
        contract = contracts[cid]
        ctx = BillingContext(
            contract=contract,
            versions=versions[cid],
            as_of=as_of,
            now=now,
            zone=zone,
            facts=facts[cid],
            tenant=tenant,
            billed_through=None if assume_unbilled else getattr(contract, "billed_through", None),
            catch_up_cap=catch_up_cap,
        )
        result[cid] = ctx
        try:  # a contract whose terms cannot be scheduled fails in contract_obligations, reported there
            if windows := overage_windows(ctx):
                hours_wanted[cid] = windows
            if usage := [usage_window_key(ctx, d.lp.line, d.lp.period) for d in usage_due(ctx)]:
                usage_wanted[cid] = usage
        except Exception:
            logger.debug("planning contract %s failed; it fails again when priced", cid, exc_info=True)
    _load_hours(hours_wanted, facts)
    _load_usage(usage_wanted, facts)
    return result


# --------------------------------------------------------------------------- per contract


@dataclass
class ContractBilled:
    contract_id: int
    invoices: list = field(default_factory=list)


def _advisory_lock(contract_id: int) -> None:
    # Advisory locks are database-wide: the schema keeps tenants' contract ids apart.
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT pg_advisory_xact_lock(hashtextextended(%s, 0))", [f"billing:{connection.schema_name}:{contract_id}"]
        )


def contract_facts_write(ctx: BillingContext) -> None:
    """The side effects of a computation besides invoices: review tasks and retainer hour marks."""
    for review in ctx.reviews:
        review_task_raise(
            kind=review.kind,
            dedupe_key=review.dedupe_key,
            title=review.title,
            detail=review.detail,
            contract_id=review.contract_id,
        )
    for ids, line_id in ctx.time_marks:
        TimeEntry.objects.filter(id__in=ids, invoice_line__isnull=True).update(invoice_line_id=line_id)


def contract_bill_due(
    *, contract_id: int, as_of: date, now: datetime | None = None, versions: list | None = None, tenant=None
) -> ContractBilled:
    """Bill everything due for one contract as of ``as_of``, in one transaction.

    Under a per-contract advisory lock: two evaluations at once queue on it, and the second finds
    everything done. ``versions`` (the contract's terms with lines, tiers and rates) and ``tenant``
    may be passed in by a caller that loaded them already.
    """
    result = ContractBilled(contract_id=contract_id)
    with transaction.atomic():
        _advisory_lock(contract_id)
        ctx = contexts_load(
            contract_ids=[contract_id],
            as_of=as_of,
            now=now,
            tenant=tenant,
            versions={contract_id: versions} if versions is not None else None,
        ).get(contract_id)
        if not isinstance(ctx, BillingContext):
            return result
        contract_obligations(ctx)
        contract_facts_write(ctx)
        if ctx.new_specs:
            result.invoices = invoices_create_from_specs(
                contract=ctx.contract, specs=ctx.new_specs, billing_date=as_of, tenant=ctx.tenant
            )
    return result
