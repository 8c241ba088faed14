"""Billing triggers (DESIGN.md §4 trigger table): what is due for one contract and not billed yet.

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

``contract_bill_due`` runs every trigger for one contract in one transaction under a per-contract
advisory lock: two runs at once queue on the lock, and the second finds everything done.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from dataclasses import dataclass, field, replace
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

from django.db import connection, transaction
from django.db.models import Count, Max, Sum
from django.db.models.fields.json import KT
from django.utils import timezone

from billing.models import InvoiceLine, InvoiceLineKind, ReviewTaskKind, TimeEntry, UsageEvent
from billing.services.context import current_tenant
from billing.services.invoicing import LineSpec, invoices_create_from_specs
from billing.services.reviews import review_task_raise
from discounts.selectors import rate_in_force, rate_overrides_lookup
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


# --------------------------------------------------------------------------- context


@dataclass
class BilledLine:
    id: int
    billing_key: str
    kind: str
    line_ref: str
    period_start: date | None
    quantity: Decimal
    amount: Decimal


@dataclass
class BillingContext:
    """Everything the triggers read about one contract, loaded once per evaluation."""

    contract: object
    versions: list
    as_of: date
    now: datetime
    zone: ZoneInfo
    billed: list[BilledLine]
    tenant: object = None
    keys: set[str] = field(default_factory=set)
    new_specs: list[LineSpec] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.keys = {b.billing_key for b in self.billed}

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

    def add(self, spec: LineSpec) -> None:
        if spec.billing_key in self.keys:
            return
        self.keys.add(spec.billing_key)
        self.new_specs.append(spec)


def _find_period(periods: list[LinePeriod], day: date) -> LinePeriod | None:
    for lp in periods:
        if lp.period.start <= day <= lp.period.end:
            return lp
    return None


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
            rate = rate_in_force(
                contract_rate=line.amount, contract_id=ctx.contract_id, line_ref=ref, on=period.start
            )  # custom rate
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


def overage_bill_due(ctx: BillingContext, unbilled_time: list[TimeEntry]) -> None:
    """Included hours of a retainer: hours beyond them at the overage rate, when the period closes.

    Hours counted against the retainer are marked with the line that billed them (the overage
    line, or the period's retainer line when there was no overage), so late hours for a closed
    period are found again and billed as the extra overage they cause.
    """
    by_ref: dict[str, list[TimeEntry]] = defaultdict(list)
    for entry in unbilled_time:
        by_ref[entry.line_ref].append(entry)
    for ref in ctx.refs("recurring"):
        entries = by_ref.get(ref)
        if not entries:
            continue
        periods = ctx.periods(ref, "recurring")
        touched: dict[date, list[TimeEntry]] = defaultdict(list)
        for entry in entries:
            lp = _find_period(periods, entry.work_date)
            if lp is not None and lp.period.end < ctx.as_of:
                touched[lp.period.start].append(entry)
        for start, batch in sorted(touched.items()):
            lp = _find_period(periods, start)
            line, period, currency = lp.line, lp.period, lp.version.currency
            if line.included_hours is None or line.overage_rate is None:
                continue
            hours_all = (
                TimeEntry.objects.filter(
                    contract_id=ctx.contract_id,
                    line_ref=ref,
                    billable=True,
                    work_date__gte=period.start,
                    work_date__lte=period.end,
                ).aggregate(h=Sum("hours"))["h"]
                or ZERO
            )
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
                    TimeEntry.objects.filter(id__in=ids, invoice_line__isnull=True).update(invoice_line_id=billed.id)


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
        if bill_on > ctx.as_of:
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


def fixed_fee_budget_check(ctx: BillingContext) -> None:
    """Hours logged against a fixed fee beyond its budget (the line's included hours) → review task."""
    for ref in ctx.refs("fixed_fee"):
        holders = _holders(ctx, ref, "fixed_fee")
        line = _line_in(holders[-1], ref) if holders else None
        if line is None or not line.included_hours:
            continue
        hours = (
            TimeEntry.objects.filter(contract_id=ctx.contract_id, line_ref=ref, billable=True).aggregate(
                h=Sum("hours")
            )["h"]
            or ZERO
        )
        if hours > line.included_hours:
            review_task_raise(
                kind=ReviewTaskKind.BUDGET_OVERRUN,
                dedupe_key=f"budget:{ctx.contract_id}:{ref}",
                title=f"{ctx.contract.number}: {_fmt(hours)} h logged against “{line.description}”, budget {_fmt(line.included_hours)} h",
                detail="The fixed fee does not cover the extra hours. Agree a change order (amend the contract) or accept the overrun.",
                contract_id=ctx.contract_id,
            )


def milestone_bill_due(ctx: BillingContext) -> None:
    """Delivered milestones, at the amount of the terms in force on the delivery date."""
    from contracts.models import Milestone, MilestoneStatus

    delivered = Milestone.objects.filter(contract_id=ctx.contract_id, status=MilestoneStatus.DELIVERED)
    for milestone in delivered:
        key = f"milestone:{milestone.pk}"
        day = ctx.local_date(milestone.delivered_at)
        if key in ctx.keys or day > ctx.as_of:
            continue
        version = version_on(ctx.versions, day)
        holders = _holders(ctx, milestone.line_ref, "milestone")
        if version not in holders:
            version = holders[-1] if holders else None
        line = _line_in(version, milestone.line_ref) if version is not None else None
        if line is None:
            review_task_raise(
                kind=ReviewTaskKind.UNKNOWN_MILESTONE,
                dedupe_key=f"milestone-no-line:{milestone.pk}",
                title=f"{ctx.contract.number}: delivered milestone “{milestone.name}” has no price line",
                detail="Add the milestone to the contract terms or cancel the milestone.",
                contract_id=ctx.contract_id,
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


def time_and_materials_bill_due(ctx: BillingContext, unbilled_time: list[TimeEntry]) -> None:
    """Billable time at the rate card when its period closes, held under the contract-wide cap."""
    by_ref: dict[str, list[TimeEntry]] = defaultdict(list)
    for entry in unbilled_time:
        by_ref[entry.line_ref].append(entry)
    for ref in ctx.refs("time_and_materials"):
        entries = by_ref.get(ref)
        if not entries:
            continue
        periods = ctx.periods(ref, "time_and_materials")
        touched: dict[date, list[TimeEntry]] = defaultdict(list)
        for entry in entries:
            lp = _find_period(periods, entry.work_date)
            if lp is not None and lp.period.end < ctx.as_of:
                touched[lp.period.start].append(entry)
        billed_total = sum(
            (b.amount for b in ctx.billed if b.line_ref == ref and b.kind == InvoiceLineKind.TIME_AND_MATERIALS), ZERO
        )
        for start, batch in sorted(touched.items()):
            lp = _find_period(periods, start)
            line, period, currency = lp.line, lp.period, lp.version.currency
            rates = {r.role: r.hourly_rate for r in line.rates.all()}
            priced: list[TimeEntry] = [e for e in batch if e.role in rates]
            missing = sorted({e.role for e in batch if e.role not in rates})
            if missing:
                review_task_raise(
                    kind=ReviewTaskKind.UNASSIGNED_TIME,
                    dedupe_key=f"tm-rate:{ctx.contract_id}:{ref}:{start}:{','.join(missing)}",
                    title=f"{ctx.contract.number}: no rate for role {', '.join(missing)} on “{line.description}” ({period_label(period)})",
                    detail="Add the role to the rate card with an amendment; the hours stay unbilled until then.",
                    contract_id=ctx.contract_id,
                )
            if not priced:
                continue
            cap_remaining = None if line.cap is None else line.cap - billed_total
            rate_of = rate_overrides_lookup(contract_id=ctx.contract_id)  # custom rates by work date
            entry_rate = {e.pk: rate_of(ref, e.role, on=e.work_date, default=rates[e.role]) for e in priced}
            charge = price_time_and_materials(
                [TimeLine(role=e.role, hours=e.hours, rate=entry_rate[e.pk]) for e in priced],
                cap_remaining=cap_remaining,
                currency=currency,
            )
            amounts = [tm.amount for tm in charge.lines]
            if charge.cap_reduction > 0:
                amounts = allocate(total=charge.capped_amount, weights=amounts, currency=currency)
                review_task_raise(
                    kind=ReviewTaskKind.CAP_REACHED,
                    dedupe_key=f"cap:{ctx.contract_id}:{ref}",
                    title=f"{ctx.contract.number}: “{line.description}” reached its not-to-exceed cap of {quantize(line.cap, currency)} {currency}",
                    detail=f"{charge.cap_reduction} {currency} of time in {period_label(period)} and later is not billed.",
                    contract_id=ctx.contract_id,
                )
            batch_max = max(e.pk for e in priced)
            for tm, amount in zip(charge.lines, amounts, strict=True):
                description = f"{line.description} – {tm.role} {period_label(period)}"
                if amount < tm.amount:
                    description += " (capped at the not-to-exceed amount)"
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
                            "time_entries": sum(1 for e in priced if e.role == tm.role and entry_rate[e.pk] == tm.rate),
                        },
                        time_entry_ids=[e.pk for e in priced if e.role == tm.role and entry_rate[e.pk] == tm.rate],
                    )
                )
            billed_total += charge.capped_amount


def unassigned_time_check(ctx: BillingContext, unbilled_time: list[TimeEntry]) -> None:
    """Billable hours no price line takes are revenue nobody will invoice: ask a person."""
    loose = [e for e in unbilled_time if not e.line_ref]
    if not loose:
        return
    hours = sum((e.hours for e in loose), ZERO)
    review_task_raise(
        kind=ReviewTaskKind.UNASSIGNED_TIME,
        dedupe_key=f"unassigned-time:{ctx.contract_id}:{max(e.pk for e in loose)}",
        title=f"{ctx.contract.number}: {_fmt(hours)} billable h match no price line",
        detail="Roles: "
        + ", ".join(sorted({e.role for e in loose}))
        + ". Add a rate card or a retainer with included hours, or mark the time non-billable.",
        contract_id=ctx.contract_id,
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


def _usage_priced(ctx: BillingContext, line, start: datetime, end: datetime, currency: str):
    """Price every event of the period (billed or not): (charge, aggregate quantity)."""
    events = UsageEvent.objects.filter(
        contract_id=ctx.contract_id, metric=line.metric, timestamp__gte=start, timestamp__lt=end
    )
    spec = usage_spec(line)
    spec = replace(
        spec,
        unit_amount=rate_in_force(
            contract_rate=spec.unit_amount,
            contract_id=ctx.contract_id,
            line_ref=line.line_ref,
            on=ctx.local_date(start),
        ),
    )  # custom unit price
    if line.charge_model in ("percentage", "graduated_percentage"):
        # The amount as JSON text, never through a float.
        texts = events.order_by("timestamp", "id").annotate(a=KT("properties__amount")).values_list("a", flat=True)
        amounts = [Decimal(a) for a in texts if a is not None]
        charge = price_usage(line.charge_model, transactions=amounts, spec=spec, currency=currency)
        quantity = Decimal(len(amounts)) if line.charge_model == "percentage" else sum(amounts, ZERO)
        return charge, quantity
    how = line.aggregation or "sum"
    if how == "count":
        quantity = Decimal(events.count())
    elif how == "max":
        quantity = events.aggregate(q=Max("quantity"))["q"] or ZERO
    elif how == "unique_count":
        prop = line.aggregation_property
        quantity = Decimal(events.aggregate(q=Count(KT(f"properties__{prop}"), distinct=True))["q"])
    else:
        quantity = events.aggregate(q=Sum("quantity"))["q"] or ZERO
    return price_usage(line.charge_model, quantity=quantity, spec=spec, currency=currency), quantity


def usage_bill_due(ctx: BillingContext) -> None:
    """Usage at period close (with the minimum-commitment top-up), interim when a threshold is
    crossed, and late usage for closed periods as extra lines priced as the difference."""
    by_metric = _unbilled_usage_days(ctx)
    for ref in ctx.refs("usage"):
        periods = ctx.periods(ref, "usage")
        if not periods:
            continue
        for lp in periods:
            line, period = lp.line, lp.period
            days = by_metric.get(line.metric, {})
            max_id = max((mid for day, mid in days.items() if period.start <= day <= period.end), default=None)
            if period.end < ctx.as_of:
                closed = {
                    f"usage:{ctx.contract_id}:{ref}:{period.start}",
                    f"usage-min:{ctx.contract_id}:{ref}:{period.start}",
                }
                if not closed & ctx.keys:
                    # No unbilled facts and no minimum: the period's charge is zero (or all billed interim).
                    if max_id is None and not line.minimum_commitment:
                        continue
                    _usage_close(ctx, lp, f"usage:{ctx.contract_id}:{ref}:{period.start}", max_id)
                elif max_id is not None:
                    _usage_late(ctx, lp, max_id)
            elif line.threshold_amount and max_id is not None and period.start <= ctx.as_of:
                _usage_interim(ctx, lp, max_id)


def _unbilled_usage_days(ctx: BillingContext) -> dict[str, dict[date, int]]:
    """metric -> local day -> highest unbilled event id that day (the unbilled set is small)."""
    tz = str(ctx.zone)
    with connection.cursor() as cursor:
        cursor.execute(
            f"""
            SELECT metric, (timestamp AT TIME ZONE %s)::date AS day, max(id)
            FROM {UsageEvent._meta.db_table}
            WHERE contract_id = %s AND invoice_line_id IS NULL
            GROUP BY 1, 2
            """,
            [tz, ctx.contract_id],
        )
        result: dict[str, dict[date, int]] = defaultdict(dict)
        for metric, day, max_id in cursor.fetchall():
            result[metric][day] = max_id
    return result


def _usage_window(ctx: BillingContext, period: Period) -> tuple[datetime, datetime]:
    return ctx.local_start(period.start), ctx.local_start(period.end + timedelta(days=1))


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
    start, end = _usage_window(ctx, period)
    charge, quantity = _usage_priced(ctx, line, start, end, currency)
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
    start, end = _usage_window(ctx, period)
    charge, quantity = _usage_priced(ctx, line, start, end, currency)
    billed_qty, billed_amount = ctx.billed_for(
        line.line_ref, period.start, (InvoiceLineKind.USAGE, InvoiceLineKind.USAGE_MINIMUM)
    )
    delta = charge.total - billed_amount
    if delta < 0:
        review_task_raise(
            kind=ReviewTaskKind.USAGE_CORRECTION,
            dedupe_key=f"usage-lower:{ctx.contract_id}:{line.line_ref}:{period.start}:{max_id}",
            title=f"{ctx.contract.number}: late usage lowers “{line.description}” for {period_label(period)} by {-delta} {currency}",
            detail="The invoiced charge is higher than the recomputed one (e.g. volume tiers). Issue a credit note if it is owed.",
            contract_id=ctx.contract_id,
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
    line, period, currency = lp.line, lp.period, lp.version.currency
    start, end = _usage_window(ctx, period)
    charge, quantity = _usage_priced(ctx, line, start, end, currency)
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


def _context_load(
    *, contract_id: int, as_of: date, now: datetime, versions: list | None, tenant
) -> BillingContext | None:
    from contracts.models import Contract
    from contracts.selectors import contract_versions

    contract = Contract.objects.select_related("issuing_entity", "customer").get(pk=contract_id)
    if contract.status not in BILLABLE_CONTRACT_STATUSES or contract.start_date > as_of:
        return None
    if versions is None:
        versions = contract_versions(contract=contract)
    if not versions:
        return None
    billed = [
        BilledLine(*row)
        for row in InvoiceLine.objects.filter(contract_id=contract_id).values_list(
            "id", "billing_key", "kind", "line_ref", "period_start", "quantity", "amount"
        )
    ]
    zone = ZoneInfo(tenant.time_zone or "UTC")
    return BillingContext(
        contract=contract, versions=versions, as_of=as_of, now=now, zone=zone, billed=billed, tenant=tenant
    )


def contract_bill_due(
    *, contract_id: int, as_of: date, now: datetime | None = None, versions: list | None = None, tenant=None
) -> ContractBilled:
    """Bill everything due for one contract as of ``as_of``, in one transaction.

    ``versions`` (the contract's terms with lines, tiers and rates) and ``tenant`` may be passed
    in by a run that loaded them for a whole chunk; terms in force are never edited, so they need
    not be read under the lock. Everything billed so far is read under it.
    """
    result = ContractBilled(contract_id=contract_id)
    with transaction.atomic():
        _advisory_lock(contract_id)
        ctx = _context_load(
            contract_id=contract_id,
            as_of=as_of,
            now=now or timezone.now(),
            versions=versions,
            tenant=tenant or current_tenant(),
        )
        if ctx is None:
            return result
        unbilled_time = list(
            TimeEntry.objects.filter(contract_id=contract_id, billable=True, invoice_line__isnull=True).order_by(
                "work_date", "id"
            )
        )
        recurring_bill_due(ctx)
        overage_bill_due(ctx, unbilled_time)
        fixed_fee_bill_due(ctx)
        fixed_fee_budget_check(ctx)
        if ctx.refs("milestone"):
            milestone_bill_due(ctx)
        time_and_materials_bill_due(ctx, unbilled_time)
        unassigned_time_check(ctx, unbilled_time)
        if ctx.refs("usage"):
            usage_bill_due(ctx)
        if ctx.new_specs:
            result.invoices = invoices_create_from_specs(
                contract=ctx.contract, specs=ctx.new_specs, billing_date=as_of, tenant=ctx.tenant
            )
    return result
