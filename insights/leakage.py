"""The leakage rules L1–L10 (DESIGN.md §4): where revenue the contract says is owed was not billed.

Each rule is a function ``rule_lN(ctx) -> list[Candidate]``. The facts are found with set-based
queries (aggregates, ``Exists``/``Subquery``, grouping by day); Python only reads the contract terms
(loaded in batches of :data:`BATCH` contracts, never per contract) to know which billing period a
day falls in and what the contract rate is — the same periods and billing keys billing uses
(``revexos.schedule.line_periods``), so "what should have been billed" has one definition.

"Billed" means: on an invoice line of an invoice that is not void. A fact whose only invoice was
voided by a credit note is unbilled again (billing never re-bills its key by itself).

Amounts are estimates of the revenue at stake, rounded once per finding with
``revexos.money.quantize``; each finding's evidence says how the amount was made (``basis``) and
lists the rows that prove it (``rows``, at most :data:`MAX_ROWS`).
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

from django.contrib.postgres.aggregates import ArrayAgg
from django.db.models import (
    BigIntegerField,
    Count,
    DateField,
    Exists,
    ExpressionWrapper,
    F,
    Max,
    Min,
    OuterRef,
    Q,
    Subquery,
    Sum,
)
from django.db.models.functions import Cast, Coalesce, TruncDate
from django.utils import timezone

from billing.models import (
    Invoice,
    InvoiceLine,
    InvoiceLineKind,
    InvoiceStatus,
    TimeEntry,
    UsageEvent,
)
from billing.services.triggers import billable_hours_in_windows
from insights.models import LeakageRule
from revexos.money import format_money, quantize
from revexos.pricing import Period, price_overage_hours, price_recurring, price_usage
from revexos.schedule import LinePeriod, line_periods, period_label

ZERO = Decimal(0)
HUNDRED = Decimal(100)
BATCH = 500
MAX_ROWS = 50
MAX_IDS = 20
SCANNED_STATUSES = ("active", "expired", "terminated", "renewed")  # billing's BILLABLE_CONTRACT_STATUSES
ISSUED = (InvoiceStatus.ISSUED, InvoiceStatus.SENT, InvoiceStatus.PARTIALLY_PAID, InvoiceStatus.PAID)
VOID = InvoiceStatus.VOID
MILESTONE_GRACE = timedelta(hours=24)
# Billing runs daily. A period counts as unbilled only once the run of the day it fell due could
# bill it — or, for a contract entered later with a past start, the run of the day it was entered —
# plus this grace for a run that was late or retried. Before that it is not a leak, just not yet due.
BILLING_GRACE = timedelta(days=1)

RULE_DEFINITIONS: dict[str, dict[str, str]] = {
    "L1": {
        "name": LeakageRule.L1.label,
        "what": "A milestone was delivered (its delivery date is set) more than 24 hours ago and no invoice line bills it.",
        "amount": "The milestone's price-line amount in the terms in force on the delivery date (or its % of the fixed fees).",
        "fix": "Invoice the milestone (run billing, or check it has a price line). The finding resolves on the next scan.",
    },
    "L2": {
        "name": LeakageRule.L2.label,
        "what": "Billable hours booked to a time-and-materials line are still unbilled a day after the billing run that closed their period (or after the contract was entered, if later) — or, on a retainer with included hours, hours over the allowance of a closed month (often hours logged late, after the month was invoiced) that no overage line bills.",
        "amount": "Time and materials: hours × the rate card rate of the role on the work date (a price override in force replaces it); a role without a rate is estimated at the highest rate on the card. Retainer: the month's billable hours beyond the included hours × the overage rate, less the overage already billed for that month.",
        "fix": "Run billing for the period (late hours over a retainer's allowance are billed as extra overage), or add the missing role to the rate card; non-billable time should be marked so.",
    },
    "L3": {
        "name": LeakageRule.L3.label,
        "what": "Usage events of a closed billing period of a usage line are not on any invoice — including events sent under a spelling of the metric that billing does not match (api-calls vs api_calls).",
        "amount": "The unbilled quantity priced with the line's charge model on top of what the period already billed (price of billed + unbilled − price of billed).",
        "fix": "Run billing; for a misspelt metric, fix the sender and re-send or re-key the events.",
    },
    "L4": {
        "name": LeakageRule.L4.label,
        "what": "A discount was applied to an invoice line whose period lies outside the discount's window, or a discount runs with no end date and no cycle limit.",
        "amount": "Outside the window: the discount taken on those lines. No expiry: the revenue given up so far.",
        "fix": "Credit and re-issue the invoice at full price; give the open-ended discount an end date or revoke it.",
    },
    "L5": {
        "name": LeakageRule.L5.label,
        "what": "An active contract's notice deadline (end date − notice period) has passed, it has not ended, and nobody recorded a renewal decision.",
        "amount": "The contract's annual recurring value (recurring lines and usage minimums for twelve months) under the terms in force.",
        "fix": "Record a decision on the renewal alert (renewing, renewed, churning or churned).",
    },
    "L6": {
        "name": LeakageRule.L6.label,
        "what": "An issued invoice line's unit price differs from the contract rate for that line and period, and no price override in force explains it (a forgotten or expired override).",
        "amount": "|contract rate − invoiced unit price| × quantity (recurring: the prorated period amount).",
        "fix": "Credit and re-issue at the contract rate, or record the price override that was agreed.",
    },
    "L7": {
        "name": LeakageRule.L7.label,
        "what": "Billable hours were logged against a fixed fee after the fixed fee was invoiced: work the fee no longer covers.",
        "amount": "Hours × the contract's time-and-materials rate for the role when it has one; else the fixed fee's implied hourly rate (fee ÷ budget hours, or fee ÷ hours delivered before it was invoiced). The evidence says which.",
        "fix": "Agree a change order and bill the hours, or mark them non-billable.",
    },
    "L8": {
        "name": LeakageRule.L8.label,
        "what": "An issued invoice's payment terms, PO number or issuing entity differ from the contract version in force for its period.",
        "amount": "The invoice's open total (total − credited), at risk of being rejected by the customer's accounts payable.",
        "fix": "Credit the invoice and re-issue it with the contract's terms.",
    },
    "L9": {
        "name": LeakageRule.L9.label,
        "what": "A closed usage period billed less than the line's minimum commitment and no top-up line bills the difference.",
        "amount": "Minimum commitment − usage billed − top-ups billed − unbilled usage already counted by L3.",
        "fix": "Bill the minimum-commitment top-up for the period.",
    },
    "L10": {
        "name": LeakageRule.L10.label,
        "what": "A recurring period that fell due (started, for billing in advance; closed, for arrears) has no invoice line on a live invoice, a day after the billing run that should have billed it (the run of the due date, or of the day the contract was entered if it was entered later with a past start).",
        "amount": "The period's recurring amount, prorated for partial periods, at the rate in force (price override included).",
        "fix": "Run billing, or re-bill a period whose invoice was voided.",
    },
}


# --------------------------------------------------------------------------- scan context


@dataclass
class Candidate:
    """One finding as a rule sees it; the scan upserts it by ``fingerprint``."""

    rule: str
    key: str  # the period or object inside the contract
    title: str
    amount: Decimal
    currency: str
    contract_id: int | None = None
    customer_id: int | None = None
    invoice_id: int | None = None
    period_start: date | None = None
    period_end: date | None = None
    basis: str = ""
    rows: list[dict] = field(default_factory=list)
    facts: dict = field(default_factory=dict)

    @property
    def fingerprint(self) -> str:
        owner = f"c{self.contract_id}" if self.contract_id is not None else f"cu{self.customer_id}"
        return f"{self.rule}:{owner}:{self.key}"[:200]

    @property
    def evidence(self) -> dict:
        rows = self.rows[:MAX_ROWS]
        # jsonb does not keep key order: the columns are stored in the order the rule wrote them.
        columns: list[str] = []
        for row in rows:
            columns.extend(k for k in row if k not in columns)
        evidence = {
            "basis": self.basis,
            "columns": columns,
            "rows": [_jsonable(r) for r in rows],
            "facts": _jsonable(self.facts),
        }
        if len(self.rows) > MAX_ROWS:
            evidence["more_rows"] = len(self.rows) - MAX_ROWS
        return evidence


def _jsonable(value):
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, Decimal):
        # Money rounded to its currency keeps its digits ("900.00"); stored quantities lose padding ("6.000000" → "6").
        return format(value, "f") if value.as_tuple().exponent >= -3 else format(value.normalize(), "f")
    if isinstance(value, (date, datetime)):
        return value.isoformat()
    return value


@dataclass
class ScanContext:
    """What every rule reads: the scan date, the tenant's zone, and terms loaded in batches."""

    as_of: date
    zone: ZoneInfo
    contract_ids: list[int] | None = None  # None: every contract of the tenant
    now: datetime | None = None
    _versions: dict[int, list] = field(default_factory=dict)
    _overrides: dict[int, list] = field(default_factory=dict)
    _contracts: dict[int, object] = field(default_factory=dict)

    def __post_init__(self) -> None:
        end_of_day = datetime.combine(self.as_of + timedelta(days=1), time.min, tzinfo=self.zone)
        self.now = min(self.now or timezone.now(), end_of_day)

    def local_start(self, day: date) -> datetime:
        return datetime.combine(day, time.min, tzinfo=self.zone)

    def local_date(self, moment: datetime) -> date:
        return moment.astimezone(self.zone).date()

    def scoped(self, field_name: str = "contract_id") -> Q:
        """Contracts the scan covers: billed ones (not drafts), optionally only ``contract_ids``."""
        prefix = field_name.removesuffix("_id")
        q = Q(**{f"{prefix}__status__in": SCANNED_STATUSES})
        if self.contract_ids is not None:
            q &= Q(**{f"{field_name}__in": self.contract_ids})
        return q

    def load(self, contract_ids: Iterable[int]) -> None:
        """Terms, price overrides and contract rows of the given contracts, BATCH at a time."""
        from billing.selectors import contract_versions_many
        from contracts.models import Contract
        from discounts.models import ExceptionStatus, PriceOverride

        missing = sorted({cid for cid in contract_ids if cid is not None and cid not in self._contracts})
        for start in range(0, len(missing), BATCH):
            chunk = missing[start : start + BATCH]
            self._versions.update(contract_versions_many(contract_ids=chunk))
            for contract in Contract.objects.filter(pk__in=chunk).select_related("customer"):
                self._contracts[contract.pk] = contract
            for row in (
                PriceOverride.objects.filter(contract_id__in=chunk)
                .exclude(status=ExceptionStatus.REVOKED)
                .order_by("-created_at", "-id")
                .values("contract_id", "line_ref", "role", "start_date", "end_date", "rate", "id")
            ):
                self._overrides.setdefault(row["contract_id"], []).append(row)

    def contract(self, contract_id: int):
        return self._contracts.get(contract_id)

    def billing_had_its_chance(self, contract_id: int, due: date) -> bool:
        """Whether billing could have billed, by ``as_of``, what fell due on ``due`` (BILLING_GRACE)."""
        contract = self.contract(contract_id)
        entered = self.local_date(contract.created_at) if contract is not None and contract.created_at else due
        if entered > self.as_of:  # a scan as of a date before the contract was entered: a replay
            entered = due
        return max(due, entered) + BILLING_GRACE <= self.as_of

    def cut_over(self, contract_id: int, day: date) -> bool:
        """True when ``day`` is on or before the contract's ``billed_through``: the system it came
        from billed it, so it is not a leak here (billing never bills it either)."""
        contract = self._contracts.get(contract_id)
        through = getattr(contract, "billed_through", None)
        return through is not None and day <= through

    def versions(self, contract_id: int) -> list:
        return self._versions.get(contract_id, [])

    def override(self, contract_id: int, line_ref: str, role: str = "", *, on: date) -> dict | None:
        for row in self._overrides.get(contract_id, []):
            if (
                row["line_ref"] == line_ref
                and row["role"] == (role or "")
                and row["start_date"] <= on <= row["end_date"]
            ):
                return row
        return None

    def rate(
        self, contract_id: int, line_ref: str, role: str = "", *, on: date, default: Decimal | None
    ) -> Decimal | None:
        row = self.override(contract_id, line_ref, role, on=on)
        return default if row is None else row["rate"]


def _version_on(versions: list, day: date):
    from revexos.schedule import version_in_force

    return version_in_force(versions, day)


def _line(version, line_ref: str):
    if version is None:
        return None
    return next((line for line in version.price_lines.all() if line.line_ref == line_ref), None)


def _refs(versions: list, kind: str) -> list[str]:
    seen: dict[str, None] = {}
    for version in versions:
        for line in version.price_lines.all():
            if line.kind == kind:
                seen.setdefault(line.line_ref, None)
    return list(seen)


class _Periods:
    """Billing periods per (contract, line_ref, kind), computed once per scan."""

    def __init__(self, ctx: ScanContext):
        self.ctx = ctx
        self._cache: dict[tuple, list[LinePeriod]] = {}

    def of(self, contract_id: int, line_ref: str, kind: str) -> list[LinePeriod]:
        key = (contract_id, line_ref, kind)
        if key not in self._cache:
            contract, versions = self.ctx.contract(contract_id), self.ctx.versions(contract_id)
            self._cache[key] = (
                []
                if contract is None or not versions
                else line_periods(
                    contract_start=contract.start_date,
                    contract_end=contract.end_date,
                    versions=versions,
                    line_ref=line_ref,
                    kind=kind,
                    until=self.ctx.as_of,
                )
            )
        return self._cache[key]

    def containing(self, contract_id: int, line_ref: str, kind: str, day: date) -> LinePeriod | None:
        for lp in self.of(contract_id, line_ref, kind):
            if lp.period.start <= day <= lp.period.end:
                return lp
        return None


def _unbilled_fact() -> Q:
    return Q(invoice_line__isnull=True) | Q(invoice_line__invoice__status=VOID)


def _currency(ctx: ScanContext, contract_id: int, day: date) -> str:
    version = _version_on(ctx.versions(contract_id), day)
    if version is not None:
        return version.currency
    contract = ctx.contract(contract_id)
    return contract.customer.currency if contract is not None else "USD"


def _number(ctx: ScanContext, contract_id: int) -> str:
    contract = ctx.contract(contract_id)
    return contract.number if contract is not None else f"#{contract_id}"


def _fmt(value: Decimal) -> str:
    """A quantity as a person writes it: 37.5 (not 37.500000), 2,400,000 (not 2400000)."""
    return format(Decimal(value).normalize(), ",f")


def _milestone_amount(version, line) -> Decimal:
    if line.amount is not None:
        return line.amount
    fixed_total = sum((pl.amount or ZERO for pl in version.price_lines.all() if pl.kind == "fixed_fee"), ZERO)
    return fixed_total * (line.percent_of_fixed_fee or ZERO) / HUNDRED


# --------------------------------------------------------------------------- L1 milestones


def rule_l1(ctx: ScanContext) -> list[Candidate]:
    """Milestones delivered more than 24 h before the scan with no live invoice line."""
    from contracts.models import Milestone, MilestoneStatus

    billed = InvoiceLine.objects.filter(milestone_id=OuterRef("pk")).exclude(invoice__status=VOID)
    rows = list(
        Milestone.objects.filter(
            ctx.scoped(),
            status__in=(MilestoneStatus.DELIVERED, MilestoneStatus.INVOICED),
            delivered_at__lte=ctx.now - MILESTONE_GRACE,
        )
        .filter(~Exists(billed))
        .values(
            "pk",
            "contract_id",
            "contract__customer_id",
            "line_ref",
            "name",
            "reference",
            "status",
            "delivered_at",
            "delivered_source",
        )
    )
    ctx.load(r["contract_id"] for r in rows)
    found = []
    for r in rows:
        versions = ctx.versions(r["contract_id"])
        day = ctx.local_date(r["delivered_at"])
        if ctx.cut_over(r["contract_id"], day):
            continue
        version = _version_on(versions, day)
        line = _line(version, r["line_ref"])
        if line is None or line.kind != "milestone":
            holders = [v for v in versions if (pl := _line(v, r["line_ref"])) is not None and pl.kind == "milestone"]
            version = holders[-1] if holders else version
            line = _line(version, r["line_ref"]) if holders else None
        currency = version.currency if version is not None else "USD"
        amount = quantize(_milestone_amount(version, line), currency) if line is not None else quantize(ZERO, currency)
        basis = (
            f"Milestone price line {r['line_ref']} of version {version.version}"
            if line is not None
            else "No price line prices this milestone: amount unknown, add the milestone to the contract terms"
        )
        hours_late = int((ctx.now - r["delivered_at"]).total_seconds() // 3600)
        found.append(
            Candidate(
                rule="L1",
                key=f"milestone:{r['pk']}",
                contract_id=r["contract_id"],
                customer_id=r["contract__customer_id"],
                title=f"{_number(ctx, r['contract_id'])}: milestone “{r['name']}” delivered {day:%-d %b %Y}, not invoiced",
                amount=amount,
                currency=currency,
                period_start=day,
                period_end=day,
                basis=basis,
                rows=[
                    {
                        "milestone": r["pk"],
                        "name": r["name"],
                        "reference": r["reference"],
                        "status": r["status"],
                        "delivered_at": r["delivered_at"],
                        "source": r["delivered_source"],
                        "hours_since_delivery": hours_late,
                        "price_line": line.pk if line is not None else None,
                        "amount": amount,
                    }
                ],
                facts={"milestone_ids": [r["pk"]]},
            )
        )
    return found


# --------------------------------------------------------------------------- L2 and L7: time


def _time_days(queryset) -> list[dict]:
    """Unbilled billable time grouped by contract, line, role and day (one query)."""
    return list(
        queryset.values("contract_id", "contract__customer_id", "line_ref", "role", "work_date")
        .annotate(logged=Sum("hours"), entries=Count("id"), ids=ArrayAgg("id", ordering="id"))
        .order_by("contract_id", "line_ref", "work_date", "role")
    )


def rule_l2(ctx: ScanContext) -> list[Candidate]:
    """Unbilled billable time whose period has closed: on time-and-materials lines, and over the
    included hours of retainers (``_retainer_overage``)."""
    return _tm_unbilled(ctx) + _retainer_overage(ctx)


def _tm_unbilled(ctx: ScanContext) -> list[Candidate]:
    """Unbilled billable time on time-and-materials lines whose period has closed."""
    from contracts.models import PriceLine

    tm_contracts = PriceLine.objects.filter(kind="time_and_materials").values("version__contract_id")
    days = _time_days(
        TimeEntry.objects.filter(ctx.scoped(), billable=True, work_date__lt=ctx.as_of, contract_id__in=tm_contracts)
        .exclude(line_ref="")
        .filter(_unbilled_fact())
    )
    ctx.load(r["contract_id"] for r in days)
    periods = _Periods(ctx)
    buckets: dict[tuple, list[dict]] = defaultdict(list)
    for r in days:
        if ctx.cut_over(r["contract_id"], r["work_date"]):
            continue
        lp = periods.containing(r["contract_id"], r["line_ref"], "time_and_materials", r["work_date"])
        if lp is None or not ctx.billing_had_its_chance(r["contract_id"], lp.period.end + timedelta(days=1)):
            continue
        buckets[(r["contract_id"], r["line_ref"], lp)].append(r)
    found = []
    for (contract_id, ref, lp), rows in buckets.items():
        line, currency = lp.line, lp.version.currency
        card = {rate.role: rate.hourly_rate for rate in line.rates.all()}
        top = max(card.values(), default=ZERO)
        total, out, notes = ZERO, [], set()
        for r in rows:
            card_rate = card.get(r["role"])
            if card_rate is None:
                notes.add(f"role {r['role']} has no rate on the card: estimated at the highest rate, {_fmt(top)}")
                card_rate = top
            rate = ctx.rate(contract_id, ref, r["role"], on=r["work_date"], default=card_rate)
            if rate != card_rate:
                notes.add("a price override in force on the work date replaces the card rate")
            value = r["logged"] * rate
            total += value
            out.append(
                {
                    "work_date": r["work_date"],
                    "role": r["role"],
                    "hours": r["logged"],
                    "rate": rate,
                    "amount": quantize(value, currency),
                    "entries": r["entries"],
                    "time_entry_ids": r["ids"][:MAX_IDS],
                }
            )
        hours = sum((r["logged"] for r in rows), ZERO)
        period = lp.period
        found.append(
            Candidate(
                rule="L2",
                key=f"{ref}:{period.start}",
                contract_id=contract_id,
                customer_id=rows[0]["contract__customer_id"],
                title=f"{_number(ctx, contract_id)}: {_fmt(hours)} h of “{line.description}” in {period_label(period)} not invoiced",
                amount=quantize(total, currency),
                currency=currency,
                period_start=period.start,
                period_end=period.end,
                basis="Hours × rate card rate of the role on the work date"
                + ("; " + "; ".join(sorted(notes)) if notes else ""),
                rows=out,
                facts={"line_ref": ref, "price_line": line.pk, "hours": hours},
            )
        )
    return found


def _retainer_overage(ctx: ScanContext) -> list[Candidate]:
    """Hours over a retainer's included hours in a closed period that no overage line bills.

    Billing's overage trigger prices a closed period's billable hours beyond the allowance at the
    overage rate and bills what the period's overage lines do not already bill (hours logged late,
    after the month was invoiced, come back as extra overage). A period with unbilled hours whose
    overage is short of what the hours make is money earned and not billed. The same arithmetic as
    billing (``revexos.pricing.price_overage_hours`` over the period's hours after any cut-over).
    """
    from contracts.models import PriceLine

    retainers = PriceLine.objects.filter(
        kind="recurring", included_hours__isnull=False, overage_rate__isnull=False
    ).values("version__contract_id")
    days = _time_days(
        TimeEntry.objects.filter(ctx.scoped(), billable=True, work_date__lt=ctx.as_of, contract_id__in=retainers)
        .exclude(line_ref="")
        .filter(_unbilled_fact())
    )
    ctx.load(r["contract_id"] for r in days)
    periods = _Periods(ctx)
    buckets: dict[tuple, list[dict]] = defaultdict(list)
    windows: dict[tuple, tuple[int, str, date, date]] = {}
    for r in days:
        cid = r["contract_id"]
        lp = periods.containing(cid, r["line_ref"], "recurring", r["work_date"])
        if lp is None or lp.line.included_hours is None or lp.line.overage_rate is None:
            continue
        if not ctx.billing_had_its_chance(cid, lp.period.end + timedelta(days=1)):
            continue
        # Hours up to a cut-over were billed by the system the contract came from (billing's rule):
        # the period counts from the day after it.
        if ctx.cut_over(cid, r["work_date"]):
            continue
        first = lp.period.start
        if ctx.cut_over(cid, first):
            first = ctx.contract(cid).billed_through + timedelta(days=1)
        key = (cid, r["line_ref"], lp)
        buckets[key].append(r)
        windows[key] = (cid, r["line_ref"], first, lp.period.end)
    if not buckets:
        return []
    hours_all = billable_hours_in_windows(sorted(set(windows.values())))
    billed: dict[tuple, tuple[Decimal, Decimal]] = {
        (r["contract_id"], r["line_ref"], r["period_start"]): (r["q"] or ZERO, r["a"] or ZERO)
        for r in InvoiceLine.objects.filter(
            contract_id__in={cid for cid, _, _ in buckets}, kind=InvoiceLineKind.OVERAGE
        )
        .exclude(invoice__status=VOID)
        .values("contract_id", "line_ref", "period_start")
        .annotate(q=Sum("quantity"), a=Sum("amount"))
    }
    found = []
    for (contract_id, ref, lp), rows in buckets.items():
        line, period, currency = lp.line, lp.period, lp.version.currency
        used = hours_all.get(windows[(contract_id, ref, lp)], ZERO)
        over_hours, over_amount = price_overage_hours(
            hours_used=used, included_hours=line.included_hours, overage_rate=line.overage_rate, currency=currency
        )
        billed_hours, billed_amount = billed.get((contract_id, ref, period.start), (ZERO, ZERO))
        missing = over_amount - billed_amount
        if missing <= 0:
            continue  # within the allowance, or the overage is billed: the retainer line covers these hours
        unbilled = sum((r["logged"] for r in rows), ZERO)
        found.append(
            Candidate(
                rule="L2",
                key=f"overage:{ref}:{period.start}",
                contract_id=contract_id,
                customer_id=rows[0]["contract__customer_id"],
                title=f"{_number(ctx, contract_id)}: {_fmt(over_hours - billed_hours)} h over the "
                f"{_fmt(line.included_hours)} h included in “{line.description}” in {period_label(period)} not invoiced",
                amount=quantize(missing, currency),
                currency=currency,
                period_start=period.start,
                period_end=period.end,
                basis=f"Retainer overage: ({_fmt(used)} h in the period − {_fmt(line.included_hours)} h included) "
                f"× overage rate {format_money(line.overage_rate, currency)}, less "
                f"{format_money(billed_amount, currency)} {currency} of overage already billed",
                rows=[
                    {
                        "work_date": r["work_date"],
                        "role": r["role"],
                        "hours": r["logged"],
                        "entries": r["entries"],
                        "time_entry_ids": r["ids"][:MAX_IDS],
                    }
                    for r in rows
                ],
                facts={
                    "line_ref": ref,
                    "price_line": line.pk,
                    "hours": unbilled,
                    "hours_in_period": used,
                    "included_hours": line.included_hours,
                    "overage_rate": line.overage_rate,
                    "overage_hours": over_hours,
                    "overage_billed_hours": billed_hours,
                    "overage_billed": billed_amount,
                },
            )
        )
    return found


def rule_l7(ctx: ScanContext) -> list[Candidate]:
    """Billable time on a fixed fee logged after the fixed fee was invoiced."""
    fee = (
        InvoiceLine.objects.filter(
            contract_id=OuterRef("contract_id"), line_ref=OuterRef("line_ref"), kind=InvoiceLineKind.FIXED_FEE
        )
        .exclude(invoice__status=VOID)
        .exclude(invoice__status=InvoiceStatus.DRAFT)
        .order_by("invoice__billing_date", "id")
    )
    base = (
        TimeEntry.objects.filter(ctx.scoped(), billable=True)
        .exclude(line_ref="")
        .annotate(
            fee_billed_on=Subquery(fee.values("invoice__billing_date")[:1]),
            fee_invoice=Subquery(fee.values("invoice_id")[:1]),
        )
        .filter(fee_billed_on__isnull=False)
    )
    days = _time_days(base.filter(work_date__gt=F("fee_billed_on")).filter(_unbilled_fact()))
    if not days:
        return []
    ctx.load(r["contract_id"] for r in days)
    pairs = {(r["contract_id"], r["line_ref"]) for r in days}
    # Hours delivered up to the fee's invoice: the denominator of the implied rate without a budget.
    before = {
        (r["contract_id"], r["line_ref"]): (r["logged"], r["fee_invoice"], r["fee_billed_on"])
        for r in base.filter(contract_id__in={c for c, _ in pairs})
        .filter(work_date__lte=F("fee_billed_on"))
        .values("contract_id", "line_ref", "fee_invoice", "fee_billed_on")
        .annotate(logged=Sum("hours"))
    }
    fee_rows = {
        (r["contract_id"], r["line_ref"]): r
        for r in InvoiceLine.objects.filter(contract_id__in={c for c, _ in pairs}, kind=InvoiceLineKind.FIXED_FEE)
        .exclude(invoice__status__in=(VOID, InvoiceStatus.DRAFT))
        .values(
            "contract_id", "line_ref", "invoice_id", "invoice__number", "invoice__billing_date", "amount", "description"
        )
    }
    buckets: dict[tuple, list[dict]] = defaultdict(list)
    for r in days:
        buckets[(r["contract_id"], r["line_ref"])].append(r)
    found = []
    for (contract_id, ref), rows in buckets.items():
        versions = ctx.versions(contract_id)
        fee_row = fee_rows.get((contract_id, ref))
        if fee_row is None:
            continue
        fee_version = _version_on(versions, fee_row["invoice__billing_date"])
        fee_line = _line(fee_version, ref) or next(
            (pl for v in reversed(versions) if (pl := _line(v, ref)) is not None), None
        )
        if fee_line is None or fee_line.kind != "fixed_fee":
            continue
        currency = (
            fee_version.currency if fee_version is not None else _currency(ctx, contract_id, rows[0]["work_date"])
        )
        hours_before = before.get((contract_id, ref), (ZERO, None, None))[0] or ZERO
        if fee_line.included_hours:
            implied, implied_basis = (
                fee_row["amount"] / fee_line.included_hours,
                f"the fixed fee's implied rate (fee ÷ {_fmt(fee_line.included_hours)} budget hours)",
            )
        elif hours_before > 0:
            implied, implied_basis = (
                fee_row["amount"] / hours_before,
                f"the fixed fee's implied rate (fee ÷ {_fmt(hours_before)} hours delivered before it was invoiced)",
            )
        else:
            implied, implied_basis = (
                ZERO,
                "no rate to estimate with (no T&M rate, no budget, no hours before the invoice)",
            )
        total, out, bases = ZERO, [], set()
        for r in rows:
            version = _version_on(versions, r["work_date"])
            tm_rate = None
            for pl in version.price_lines.all() if version is not None else []:
                if pl.kind == "time_and_materials":
                    card = next((rate.hourly_rate for rate in pl.rates.all() if rate.role == r["role"]), None)
                    if card is not None:
                        tm_rate = ctx.rate(contract_id, pl.line_ref, r["role"], on=r["work_date"], default=card)
                        break
            if tm_rate is not None:
                rate, basis = tm_rate, f"the contract's T&M rate for {r['role']}"
            else:
                rate, basis = implied.quantize(Decimal("0.000001")), implied_basis
            bases.add(basis)
            value = r["logged"] * rate
            total += value
            out.append(
                {
                    "work_date": r["work_date"],
                    "role": r["role"],
                    "hours": r["logged"],
                    "rate": rate,
                    "rate_basis": basis,
                    "amount": quantize(value, currency),
                    "time_entry_ids": r["ids"][:MAX_IDS],
                }
            )
        hours = sum((r["logged"] for r in rows), ZERO)
        first, last = min(r["work_date"] for r in rows), max(r["work_date"] for r in rows)
        found.append(
            Candidate(
                rule="L7",
                key=f"{ref}",
                contract_id=contract_id,
                customer_id=rows[0]["contract__customer_id"],
                invoice_id=fee_row["invoice_id"],
                title=f"{_number(ctx, contract_id)}: {_fmt(hours)} h logged on “{fee_line.description}” after it was invoiced",
                amount=quantize(total, currency),
                currency=currency,
                period_start=first,
                period_end=last,
                basis="Hours × " + "; ".join(sorted(bases)),
                rows=out,
                facts={
                    "line_ref": ref,
                    "fixed_fee_invoice": fee_row["invoice__number"],
                    "fixed_fee_invoice_id": fee_row["invoice_id"],
                    "fixed_fee_billed_on": fee_row["invoice__billing_date"],
                    "fixed_fee_amount": fee_row["amount"],
                    "hours": hours,
                },
            )
        )
    return found


# --------------------------------------------------------------------------- L3 and L9: usage


def normalize_metric(metric: str) -> str:
    """api-calls, API Calls and api_calls are one metric to a person; billing matches exactly."""
    return re.sub(r"[^a-z0-9]+", "_", (metric or "").lower()).strip("_")


def _usage_spec(line, *, unit_amount: Decimal | None):
    from billing.services.triggers import usage_spec

    spec = usage_spec(line)
    return replace(
        spec, unit_amount=unit_amount if unit_amount is not None else spec.unit_amount, minimum_commitment=ZERO
    )


def _usage_price(line, spec, quantity: Decimal, currency: str) -> Decimal:
    if line.charge_model in ("percentage", "graduated_percentage"):
        return price_usage(
            line.charge_model, transactions=[quantity] if quantity > 0 else [], spec=spec, currency=currency
        ).amount
    return price_usage(line.charge_model, quantity=quantity, spec=spec, currency=currency).amount


@dataclass
class _UsageBucket:
    lp: LinePeriod
    quantity: Decimal = ZERO
    events: int = 0
    amount_sum: Decimal = ZERO
    metrics: set = field(default_factory=set)
    rows: list = field(default_factory=list)


def _usage_unbilled(ctx: ScanContext) -> dict[tuple, _UsageBucket]:
    """Unbilled usage of closed periods by (contract, line_ref, period start), priced later."""
    from contracts.models import PriceLine

    usage_contracts = PriceLine.objects.filter(kind="usage").values("version__contract_id")
    days = list(
        UsageEvent.objects.filter(
            ctx.scoped(), timestamp__lt=ctx.local_start(ctx.as_of), contract_id__in=usage_contracts
        )
        .filter(_unbilled_fact())
        .annotate(day=TruncDate("timestamp", tzinfo=ctx.zone))
        .values("contract_id", "metric", "day")
        .annotate(total=Sum("quantity"), events=Count("id"), largest=Max("quantity"), ids=ArrayAgg("id", ordering="id"))
        .order_by("contract_id", "metric", "day")
    )
    ctx.load(r["contract_id"] for r in days)
    periods = _Periods(ctx)
    buckets: dict[tuple, _UsageBucket] = {}
    for r in days:
        if ctx.cut_over(r["contract_id"], r["day"]):
            continue
        versions = ctx.versions(r["contract_id"])
        version = _version_on(versions, r["day"])
        if version is None:
            continue
        wanted = normalize_metric(r["metric"])
        line = next(
            (pl for pl in version.price_lines.all() if pl.kind == "usage" and pl.metric == r["metric"]), None
        ) or next(
            (pl for pl in version.price_lines.all() if pl.kind == "usage" and normalize_metric(pl.metric) == wanted),
            None,
        )
        if line is None:
            continue
        lp = periods.containing(r["contract_id"], line.line_ref, "usage", r["day"])
        if lp is None or not ctx.billing_had_its_chance(r["contract_id"], lp.period.end + timedelta(days=1)):
            continue
        key = (r["contract_id"], line.line_ref, lp.period.start)
        bucket = buckets.setdefault(key, _UsageBucket(lp=lp))
        how = lp.line.aggregation or "sum"
        bucket.quantity = (
            max(bucket.quantity, r["largest"])
            if how == "max"
            else bucket.quantity + (Decimal(r["events"]) if how in ("count", "unique_count") else r["total"])
        )
        bucket.events += r["events"]
        bucket.metrics.add(r["metric"])
        bucket.rows.append(
            {
                "day": r["day"],
                "metric": r["metric"],
                "quantity": r["total"],
                "events": r["events"],
                "usage_event_ids": r["ids"][:MAX_IDS],
            }
        )
    # Percentage lines price the events' amount property: one query over those contracts only.
    pct = [
        (cid, b)
        for (cid, _, _), b in buckets.items()
        if b.lp.line.charge_model in ("percentage", "graduated_percentage")
    ]
    for cid, bucket in pct:
        from django.db.models import DecimalField
        from django.db.models.fields.json import KT
        from django.db.models.functions import Cast

        start, end = ctx.local_start(bucket.lp.period.start), ctx.local_start(bucket.lp.period.end + timedelta(days=1))
        bucket.amount_sum = (
            UsageEvent.objects.filter(
                contract_id=cid, metric__in=bucket.metrics, timestamp__gte=start, timestamp__lt=end
            )
            .filter(_unbilled_fact())
            .aggregate(s=Sum(Cast(KT("properties__amount"), DecimalField(max_digits=30, decimal_places=6))))["s"]
            or ZERO
        )
    return buckets


def _billed_usage(contract_ids: Iterable[int], kinds: tuple[str, ...]) -> dict[tuple, tuple[Decimal, Decimal]]:
    """(quantity, amount) on live invoice lines by (contract, line_ref, period start, kind)."""
    result: dict[tuple, tuple[Decimal, Decimal]] = {}
    for r in (
        InvoiceLine.objects.filter(contract_id__in=list(contract_ids), kind__in=kinds)
        .exclude(invoice__status=VOID)
        .values("contract_id", "line_ref", "period_start", "kind")
        .annotate(q=Sum("quantity"), a=Sum("amount"))
    ):
        result[(r["contract_id"], r["line_ref"], r["period_start"], r["kind"])] = (r["q"] or ZERO, r["a"] or ZERO)
    return result


def rule_l3(ctx: ScanContext, buckets: dict[tuple, _UsageBucket] | None = None) -> list[Candidate]:
    buckets = _usage_unbilled(ctx) if buckets is None else buckets
    billed = _billed_usage({cid for cid, _, _ in buckets}, (InvoiceLineKind.USAGE,))
    found = []
    for (contract_id, ref, start), bucket in buckets.items():
        lp, line = bucket.lp, bucket.lp.line
        currency = lp.version.currency
        unit = ctx.rate(contract_id, ref, on=lp.period.start, default=line.unit_amount)
        spec = _usage_spec(line, unit_amount=unit)
        billed_qty, billed_amount = billed.get((contract_id, ref, start, InvoiceLineKind.USAGE), (ZERO, ZERO))
        if line.charge_model in ("percentage", "graduated_percentage"):
            value = (
                quantize(
                    bucket.amount_sum * (line.rate or ZERO) / HUNDRED + (line.fixed_amount or ZERO) * bucket.events,
                    currency,
                )
                if line.charge_model == "percentage"
                else max(
                    _usage_price(line, spec, billed_qty + bucket.amount_sum, currency)
                    - _usage_price(line, spec, billed_qty, currency),
                    ZERO,
                )
            )
            basis = (
                "Approximate: rate × the events' summed amount + the fixed fee per event "
                "(per-transaction minimum and maximum not applied)"
            )
        else:
            value = max(
                _usage_price(line, spec, billed_qty + bucket.quantity, currency)
                - _usage_price(line, spec, billed_qty, currency),
                ZERO,
            )
            basis = (
                f"{line.get_charge_model_display()} price of {_fmt(billed_qty + bucket.quantity)} − price of the "
                f"{_fmt(billed_qty)} already billed for the period"
            )
        if unit != line.unit_amount:
            basis += "; unit price from the price override in force"
        mismatched = sorted(m for m in bucket.metrics if m != line.metric)
        if mismatched:
            basis += f"; sent as metric {', '.join(mismatched)} but the contract prices {line.metric}, which billing matches exactly"
        period = lp.period
        found.append(
            Candidate(
                rule="L3",
                key=f"{ref}:{period.start}",
                contract_id=contract_id,
                customer_id=ctx.contract(contract_id).customer_id,
                title=f"{_number(ctx, contract_id)}: {_fmt(bucket.quantity)} {line.metric} of {period_label(period)} not invoiced",
                amount=quantize(value, currency),
                currency=currency,
                period_start=period.start,
                period_end=period.end,
                basis=basis,
                rows=bucket.rows,
                facts={
                    "line_ref": ref,
                    "price_line": line.pk,
                    "metric": line.metric,
                    "unbilled_quantity": bucket.quantity,
                    "events": bucket.events,
                    "billed_quantity": billed_qty,
                    "billed_amount": billed_amount,
                },
            )
        )
    return found


def rule_l9(ctx: ScanContext, l3: list[Candidate] | None = None) -> list[Candidate]:
    """Closed usage periods billed below the line's minimum commitment with no top-up."""
    from contracts.models import PriceLine

    ids = set(
        PriceLine.objects.filter(kind="usage", minimum_commitment__gt=0)
        .filter(ctx.scoped("version__contract_id"))
        .values_list("version__contract_id", flat=True)
        .distinct()
    )
    if not ids:
        return []
    ctx.load(ids)
    periods = _Periods(ctx)
    billed = _billed_usage(ids, (InvoiceLineKind.USAGE, InvoiceLineKind.USAGE_MINIMUM))
    unbilled = {(c.contract_id, c.facts["line_ref"], c.period_start): c.amount for c in (l3 or [])}
    found = []
    for contract_id in sorted(ids):
        for ref in _refs(ctx.versions(contract_id), "usage"):
            for lp in periods.of(contract_id, ref, "usage"):
                line, period, currency = lp.line, lp.period, lp.version.currency
                closed = period.end + timedelta(days=1)
                if (
                    not line.minimum_commitment
                    or not ctx.billing_had_its_chance(contract_id, closed)
                    or ctx.cut_over(contract_id, period.end)
                ):
                    continue
                minimum = quantize(line.minimum_commitment, currency)
                usage_amount = billed.get((contract_id, ref, period.start, InvoiceLineKind.USAGE), (ZERO, ZERO))[1]
                top_up = billed.get((contract_id, ref, period.start, InvoiceLineKind.USAGE_MINIMUM), (ZERO, ZERO))[1]
                pending = unbilled.get((contract_id, ref, period.start), ZERO)
                shortfall = quantize(minimum - usage_amount - top_up - pending, currency)
                if shortfall <= 0:
                    continue
                found.append(
                    Candidate(
                        rule="L9",
                        key=f"{ref}:{period.start}",
                        contract_id=contract_id,
                        customer_id=ctx.contract(contract_id).customer_id,
                        title=f"{_number(ctx, contract_id)}: “{line.description}” {period_label(period)} billed below its minimum commitment",
                        amount=shortfall,
                        currency=currency,
                        period_start=period.start,
                        period_end=period.end,
                        basis="Minimum commitment − usage billed − top-ups billed − unbilled usage counted by L3",
                        rows=[
                            {
                                "minimum_commitment": minimum,
                                "usage_billed": usage_amount,
                                "top_up_billed": top_up,
                                "unbilled_usage_in_l3": pending,
                                "shortfall": shortfall,
                            }
                        ],
                        facts={"line_ref": ref, "price_line": line.pk},
                    )
                )
    return found


# --------------------------------------------------------------------------- L4 discounts


def rule_l4(ctx: ScanContext) -> list[Candidate]:
    from discounts.models import Discount, DiscountApplication, ExceptionStatus

    found = []
    # (a) applied to a line whose period lies wholly outside the discount's window.
    applications = (
        DiscountApplication.objects.filter(ctx.scoped("invoice__contract_id"), invoice__status__in=ISSUED)
        .annotate(
            ref_start=Coalesce("invoice_line__period_start", "invoice__billing_date"),
            ref_end=Coalesce("invoice_line__period_end", "invoice__billing_date"),
        )
        .filter(
            Q(ref_end__lt=F("discount__start_date"))
            | Q(discount__end_date__isnull=False, ref_start__gt=F("discount__end_date"))
        )
    )
    rows = list(
        applications.values(
            "id",
            "amount",
            "discount_id",
            "discount__start_date",
            "discount__end_date",
            "invoice_id",
            "invoice__number",
            "invoice__currency",
            "invoice__contract_id",
            "invoice__customer_id",
            "invoice_line_id",
            "invoice_line__description",
            "ref_start",
            "ref_end",
        ).order_by("discount_id", "invoice__contract_id", "ref_start")
    )
    ctx.load(r["invoice__contract_id"] for r in rows)
    grouped: dict[tuple, list[dict]] = defaultdict(list)
    for r in rows:
        grouped[(r["discount_id"], r["invoice__contract_id"], r["invoice__currency"])].append(r)
    for (discount_id, contract_id, currency), apps in grouped.items():
        window_end = apps[0]["discount__end_date"]
        window = (
            f"{apps[0]['discount__start_date']:%-d %b %Y} – {window_end:%-d %b %Y}"
            if window_end
            else f"from {apps[0]['discount__start_date']:%-d %b %Y}"
        )
        found.append(
            Candidate(
                rule="L4",
                key=f"discount:{discount_id}:window:{currency}",
                contract_id=contract_id,
                customer_id=apps[0]["invoice__customer_id"],
                invoice_id=apps[0]["invoice_id"],
                title=f"{_number(ctx, contract_id)}: discount D-{discount_id} applied outside its window ({window})",
                amount=quantize(sum((a["amount"] for a in apps), ZERO), currency),
                currency=currency,
                period_start=min(a["ref_start"] for a in apps),
                period_end=max(a["ref_end"] for a in apps),
                basis="The discount taken on lines whose period lies outside the window",
                rows=[
                    {
                        "discount_application": a["id"],
                        "invoice": a["invoice__number"],
                        "invoice_id": a["invoice_id"],
                        "line": a["invoice_line__description"],
                        "period_start": a["ref_start"],
                        "period_end": a["ref_end"],
                        "discount": a["amount"],
                    }
                    for a in apps
                ],
                facts={
                    "discount_id": discount_id,
                    "window_start": apps[0]["discount__start_date"],
                    "window_end": window_end,
                },
            )
        )
    # (b) running with no expiry: no end date, no cycle limit, only a written reason.
    live_apps = Q(applications__invoice__status__in=ISSUED)
    running = Discount.objects.filter(
        end_date__isnull=True,
        max_cycles__isnull=True,
        start_date__lte=ctx.as_of,
        status__in=(ExceptionStatus.SCHEDULED, ExceptionStatus.ACTIVE),
    ).annotate(
        given_up=Coalesce(Sum("applications__amount", filter=live_apps), ZERO),
        invoices=Count("applications__invoice", filter=live_apps, distinct=True),
        first_day=Min("applications__invoice__billing_date", filter=live_apps),
        last_day=Max("applications__invoice__billing_date", filter=live_apps),
        app_currency=Max("applications__invoice__currency", filter=live_apps),
    )
    if ctx.contract_ids is not None:
        running = running.filter(contract_id__in=ctx.contract_ids)
    else:
        running = running.filter(Q(contract__isnull=True) | Q(contract__status__in=SCANNED_STATUSES))
    rows = list(
        running.values(
            "pk",
            "kind",
            "value",
            "currency",
            "scope",
            "contract_id",
            "contract__number",
            "customer_id",
            "customer__legal_name",
            "customer__currency",
            "line_ref",
            "start_date",
            "no_expiry_reason",
            "given_up",
            "invoices",
            "first_day",
            "last_day",
            "app_currency",
        )
    )
    for r in rows:
        currency = r["currency"] or r["app_currency"] or r["customer__currency"]
        whom = r["contract__number"] or f"customer {r['customer__legal_name']}"
        value = f"{_fmt(r['value'])} %" if r["kind"] == "percentage" else f"{_fmt(r['value'])} {currency}/cycle"
        found.append(
            Candidate(
                rule="L4",
                key=f"discount:{r['pk']}:no-expiry",
                contract_id=r["contract_id"],
                customer_id=r["customer_id"],
                title=f"{whom}: discount D-{r['pk']} ({value}) runs with no expiry",
                amount=quantize(r["given_up"], currency),
                currency=currency,
                period_start=r["start_date"],
                period_end=max(r["last_day"] or r["start_date"], r["start_date"]),
                basis="Revenue given up so far on live invoices",
                rows=[
                    {
                        "discount": r["pk"],
                        "kind": r["kind"],
                        "value": r["value"],
                        "scope": r["scope"],
                        "line_ref": r["line_ref"],
                        "start_date": r["start_date"],
                        "no_expiry_reason": r["no_expiry_reason"],
                        "invoices_discounted": r["invoices"],
                        "given_up": quantize(r["given_up"], currency),
                    }
                ],
                facts={"discount_id": r["pk"]},
            )
        )
    return found


# --------------------------------------------------------------------------- L5 renewals


DECIDED = ("renewing", "renewed", "churning", "churned", "auto_renewed")


def rule_l5(ctx: ScanContext) -> list[Candidate]:
    from contracts.models import Contract
    from renewals.models import RenewalAlert
    from renewals.valuation import annual_recurring_value

    deadline = Cast(
        ExpressionWrapper(F("end_date") - F("notice_period_days") * timedelta(days=1), output_field=DateField()),
        DateField(),
    )
    decided = RenewalAlert.objects.filter(contract=OuterRef("pk"), end_date=OuterRef("end_date"), status__in=DECIDED)
    alert = RenewalAlert.objects.filter(contract=OuterRef("pk"), end_date=OuterRef("end_date"))
    contracts = Contract.objects.filter(status="active", end_date__isnull=False, end_date__gte=ctx.as_of)
    if ctx.contract_ids is not None:
        contracts = contracts.filter(pk__in=ctx.contract_ids)
    rows = list(
        contracts.annotate(deadline=deadline)
        .filter(deadline__lte=ctx.as_of)
        .filter(~Exists(decided))
        .annotate(alert_id=Subquery(alert.values("pk")[:1]), alert_status=Subquery(alert.values("status")[:1]))
        .values(
            "pk",
            "number",
            "customer_id",
            "end_date",
            "deadline",
            "notice_period_days",
            "auto_renew",
            "alert_id",
            "alert_status",
        )
    )
    ctx.load(r["pk"] for r in rows)
    found = []
    for r in rows:
        version = _version_on(ctx.versions(r["pk"]), ctx.as_of)
        currency = version.currency if version is not None else ctx.contract(r["pk"]).customer.currency
        arv = annual_recurring_value(lines=list(version.price_lines.all()) if version else [], currency=currency)
        found.append(
            Candidate(
                rule="L5",
                key=f"term:{r['end_date']}",
                contract_id=r["pk"],
                customer_id=r["customer_id"],
                title=f"{r['number']}: ends {r['end_date']:%-d %b %Y}, notice deadline {r['deadline']:%-d %b %Y} passed with no renewal decision",
                amount=arv,
                currency=currency,
                period_start=r["deadline"],
                period_end=r["end_date"],
                basis="Annual recurring value of the terms in force (recurring lines and usage minimums over twelve months)",
                rows=[
                    {
                        "end_date": r["end_date"],
                        "notice_period_days": r["notice_period_days"],
                        "notice_deadline": r["deadline"],
                        "auto_renew": r["auto_renew"],
                        "renewal_alert": r["alert_id"],
                        "alert_status": r["alert_status"] or "no alert",
                        "annual_recurring_value": arv,
                    }
                ],
                facts={"renewal_alert_id": r["alert_id"]},
            )
        )
    return found


# --------------------------------------------------------------------------- L6 and L8: issued invoices


_L6_KINDS = (
    InvoiceLineKind.RECURRING,
    InvoiceLineKind.OVERAGE,
    InvoiceLineKind.FIXED_FEE,
    InvoiceLineKind.MILESTONE,
    InvoiceLineKind.TIME_AND_MATERIALS,
    InvoiceLineKind.USAGE,
)


def _contract_rate(line, kind: str, role: str) -> Decimal | None:
    if kind == InvoiceLineKind.RECURRING:
        return line.amount
    if kind == InvoiceLineKind.OVERAGE:
        return line.overage_rate
    if kind in (InvoiceLineKind.FIXED_FEE, InvoiceLineKind.MILESTONE):
        return line.amount
    if kind == InvoiceLineKind.TIME_AND_MATERIALS:
        return next((r.hourly_rate for r in line.rates.all() if r.role == role), None)
    if kind == InvoiceLineKind.USAGE and line.charge_model == "per_unit":
        return line.unit_amount
    return None


def rule_l6(ctx: ScanContext) -> list[Candidate]:
    """Issued lines whose unit price is neither the contract rate nor an override in force."""
    from contracts.models import PriceLine, RateCardEntry
    from discounts.models import ExceptionStatus, PriceOverride

    ref_date = Coalesce("period_start", "invoice__billing_date")
    terms = PriceLine.objects.filter(
        version__contract_id=OuterRef("contract_id"),
        line_ref=OuterRef("line_ref"),
        version__effective_from__lte=OuterRef("ref_date"),
    ).order_by("-version__effective_from")
    first_terms = PriceLine.objects.filter(
        version__contract_id=OuterRef("contract_id"), line_ref=OuterRef("line_ref")
    ).order_by("version__effective_from")
    override = PriceOverride.objects.filter(
        contract_id=OuterRef("contract_id"),
        line_ref=OuterRef("line_ref"),
        rate=OuterRef("unit_amount"),
        start_date__lte=OuterRef("ref_end"),
        end_date__gte=OuterRef("ref_date"),
    ).exclude(status=ExceptionStatus.REVOKED)
    tm_rate = RateCardEntry.objects.filter(price_line_id=OuterRef("terms_id"), role=OuterRef("role")).values(
        "hourly_rate"
    )[:1]
    from django.db.models.fields.json import KT

    lines = (
        InvoiceLine.objects.filter(ctx.scoped(), invoice__status__in=ISSUED, kind__in=_L6_KINDS)
        .exclude(line_ref="")
        .annotate(ref_date=ref_date, ref_end=Coalesce("period_end", ref_date), role=KT("source__role"))
        .annotate(terms_id=Coalesce(Subquery(terms.values("pk")[:1]), Subquery(first_terms.values("pk")[:1])))
        .annotate(
            raw_rate=Coalesce(
                Subquery(
                    PriceLine.objects.filter(
                        pk=OuterRef("terms_id"), kind__in=("recurring", "fixed_fee", "milestone")
                    ).values("amount")[:1]
                ),
                Subquery(
                    PriceLine.objects.filter(pk=OuterRef("terms_id"), kind="recurring").values("overage_rate")[:1]
                ),
                Subquery(
                    PriceLine.objects.filter(pk=OuterRef("terms_id"), kind="usage", charge_model="per_unit").values(
                        "unit_amount"
                    )[:1]
                ),
                Subquery(tm_rate),
            )
        )
        .filter(~Exists(override))
        # Full-period lines at the contract rate are settled in SQL; prorated retainers are checked below.
        .exclude(
            raw_rate=F("unit_amount"),
            kind__in=(
                InvoiceLineKind.OVERAGE,
                InvoiceLineKind.FIXED_FEE,
                InvoiceLineKind.MILESTONE,
                InvoiceLineKind.TIME_AND_MATERIALS,
                InvoiceLineKind.USAGE,
            ),
        )
        .exclude(raw_rate=F("unit_amount"), kind=InvoiceLineKind.RECURRING, source__days=F("source__period_days"))
        .values(
            "id",
            "invoice_id",
            "invoice__number",
            "invoice__currency",
            "invoice__customer_id",
            "contract_id",
            "kind",
            "line_ref",
            "description",
            "quantity",
            "unit_amount",
            "amount",
            "period_start",
            "period_end",
            "ref_date",
            "role",
            "terms_id",
            "source",
        )
    )
    rows = list(lines)
    ctx.load(r["contract_id"] for r in rows)
    lines_by_pk = {
        pl.pk: pl for cid in {r["contract_id"] for r in rows} for v in ctx.versions(cid) for pl in v.price_lines.all()
    }
    grouped: dict[tuple, list[dict]] = defaultdict(list)
    for r in rows:
        line = lines_by_pk.get(r["terms_id"])
        if line is None:
            continue
        currency, role = r["invoice__currency"], r["role"] or ""
        rate = _contract_rate(line, r["kind"], role)
        if rate is None:
            continue
        expected, overrides = (
            rate,
            [
                o["rate"]
                for o in ctx._overrides.get(r["contract_id"], [])
                if o["line_ref"] == r["line_ref"]
                and o["role"] == role
                and o["start_date"] <= (r["period_end"] or r["ref_date"])
                and o["end_date"] >= r["ref_date"]
            ],
        )
        if r["kind"] == InvoiceLineKind.RECURRING:
            days, period_days = (
                int((r["source"] or {}).get("days") or 1),
                int((r["source"] or {}).get("period_days") or 1),
            )
            expected = quantize(rate * days / period_days, currency)
            overrides = [quantize(o * days / period_days, currency) for o in overrides]
        elif r["kind"] in (InvoiceLineKind.FIXED_FEE, InvoiceLineKind.MILESTONE):
            expected = quantize(rate, currency)
        if r["unit_amount"] == expected or r["unit_amount"] in overrides:
            continue
        difference = quantize(abs(expected - r["unit_amount"]) * r["quantity"], currency)
        if difference <= 0:
            continue
        grouped[(r["contract_id"], r["invoice_id"], currency)].append(
            {
                "invoice_line": r["id"],
                "invoice": r["invoice__number"],
                "line": r["description"],
                "kind": r["kind"],
                "line_ref": r["line_ref"],
                "role": role,
                "period_start": r["period_start"],
                "period_end": r["period_end"],
                "quantity": r["quantity"],
                "invoiced_unit": r["unit_amount"],
                "contract_rate": expected,
                "direction": "under-billed" if r["unit_amount"] < expected else "over-billed",
                "difference": difference,
                "_customer": r["invoice__customer_id"],
            }
        )
    found = []
    for (contract_id, invoice_id, currency), out in grouped.items():
        customer_id = out[0].pop("_customer")
        for row in out[1:]:
            row.pop("_customer", None)
        starts = [o["period_start"] for o in out if o["period_start"]]
        ends = [o["period_end"] for o in out if o["period_end"]]
        found.append(
            Candidate(
                rule="L6",
                key=f"invoice:{invoice_id}",
                contract_id=contract_id,
                customer_id=customer_id,
                invoice_id=invoice_id,
                title=f"{_number(ctx, contract_id)}: {out[0]['invoice']} bills {len(out)} line{'s' if len(out) > 1 else ''} off the contract rate",
                amount=sum((o["difference"] for o in out), ZERO),
                currency=currency,
                period_start=min(starts) if starts else None,
                period_end=max(ends) if ends else None,
                basis="|contract rate − invoiced unit price| × quantity, no price override in force for the period",
                rows=out,
                facts={"invoice": out[0]["invoice"], "invoice_id": invoice_id},
            )
        )
    return found


def rule_l8(ctx: ScanContext) -> list[Candidate]:
    """Issued invoices whose payment terms, PO or issuing entity differ from the terms in force."""
    from contracts.models import ContractVersion

    first_period = (
        InvoiceLine.objects.filter(invoice_id=OuterRef("pk"), period_start__isnull=False)
        .order_by("period_start")
        .values("period_start")[:1]
    )
    in_force = ContractVersion.objects.filter(
        contract_id=OuterRef("contract_id"), effective_from__lte=OuterRef("ref_date")
    ).order_by("-effective_from")
    first = ContractVersion.objects.filter(contract_id=OuterRef("contract_id")).order_by("effective_from")
    version = ContractVersion.objects.filter(pk=OuterRef("terms_id"))
    invoices = (
        Invoice.objects.filter(ctx.scoped(), status__in=ISSUED)
        .annotate(ref_date=Coalesce(Subquery(first_period), "billing_date"))
        .annotate(terms_id=Coalesce(Subquery(in_force.values("pk")[:1]), Subquery(first.values("pk")[:1])))
        .annotate(
            v_terms=Subquery(version.values("payment_terms_days")[:1]),
            v_po=Subquery(version.values("po_number")[:1]),
            v_po_required=Subquery(version.values("po_required")[:1]),
            v_number=Subquery(version.values("version")[:1]),
            contract_entity=Coalesce(
                Subquery(version.values("issuing_entity_id")[:1]),
                F("contract__issuing_entity_id"),
                output_field=BigIntegerField(),
            ),
            contract_entity_name=Coalesce(
                Subquery(version.values("issuing_entity__legal_name")[:1]), F("contract__issuing_entity__legal_name")
            ),
        )
        .filter(
            ~Q(payment_terms_days=F("v_terms"))
            | (~Q(v_po="") & ~Q(po_number=F("v_po")))
            | Q(v_po_required=True, po_number="")
            | ~Q(issuing_entity_id=F("contract_entity"))
        )
        .values(
            "pk",
            "number",
            "contract_id",
            "customer_id",
            "currency",
            "total",
            "credited_total",
            "payment_terms_days",
            "po_number",
            "issuing_entity_id",
            "issuing_entity__legal_name",
            "contract_entity",
            "contract_entity_name",
            "v_terms",
            "v_po",
            "v_po_required",
            "v_number",
            "ref_date",
            "issue_date",
        )
    )
    found = []
    rows = list(invoices)
    ctx.load(r["contract_id"] for r in rows)
    for r in rows:
        diffs = []
        if r["payment_terms_days"] != r["v_terms"]:
            diffs.append(
                {
                    "term": "payment terms",
                    "invoice": f"net {r['payment_terms_days']}",
                    "contract": f"net {r['v_terms']}",
                }
            )
        if (r["v_po"] and r["po_number"] != r["v_po"]) or (r["v_po_required"] and not r["po_number"]):
            diffs.append(
                {
                    "term": "PO number",
                    "invoice": r["po_number"] or "(none)",
                    "contract": r["v_po"] or "(required, none recorded)",
                }
            )
        if r["issuing_entity_id"] != r["contract_entity"]:
            diffs.append(
                {
                    "term": "issuing entity",
                    "invoice": r["issuing_entity__legal_name"],
                    "contract": r["contract_entity_name"],
                }
            )
        if not diffs:
            continue
        at_risk = quantize(r["total"] - r["credited_total"], r["currency"])
        found.append(
            Candidate(
                rule="L8",
                key=f"invoice:{r['pk']}",
                contract_id=r["contract_id"],
                customer_id=r["customer_id"],
                invoice_id=r["pk"],
                title=f"{_number(ctx, r['contract_id'])}: {r['number']} {', '.join(d['term'] for d in diffs)} differ from the contract",
                amount=at_risk,
                currency=r["currency"],
                period_start=r["ref_date"],
                period_end=r["ref_date"],
                basis=f"The invoice's open total (total − credited), at risk of rejection; terms of version {r['v_number']} in force on {r['ref_date']:%-d %b %Y}",
                rows=diffs,
                facts={
                    "invoice": r["number"],
                    "invoice_id": r["pk"],
                    "version": r["v_number"],
                    "total": r["total"],
                    "credited": r["credited_total"],
                },
            )
        )
    return found


# --------------------------------------------------------------------------- L10 recurring


def rule_l10(ctx: ScanContext) -> list[Candidate]:
    """Due recurring periods with no line on a live invoice."""
    from contracts.models import PriceLine

    ids = set(
        PriceLine.objects.filter(kind="recurring")
        .filter(ctx.scoped("version__contract_id"))
        .filter(version__contract__start_date__lte=ctx.as_of)
        .values_list("version__contract_id", flat=True)
        .distinct()
    )
    if not ids:
        return []
    billed = set(
        InvoiceLine.objects.filter(contract_id__in=ids, kind=InvoiceLineKind.RECURRING)
        .exclude(invoice__status=VOID)
        .values_list("contract_id", "line_ref", "period_start")
    )
    voided = defaultdict(list)
    for cid, ref, start, number in InvoiceLine.objects.filter(
        contract_id__in=ids, kind=InvoiceLineKind.RECURRING, invoice__status=VOID
    ).values_list("contract_id", "line_ref", "period_start", "invoice__number"):
        voided[(cid, ref, start)].append(number)
    ctx.load(ids)
    periods = _Periods(ctx)
    found = []
    for contract_id in sorted(ids):
        for ref in _refs(ctx.versions(contract_id), "recurring"):
            for lp in periods.of(contract_id, ref, "recurring"):
                line, period = lp.line, lp.period
                due_on = period.start if line.timing == "advance" else period.end + timedelta(days=1)
                if (
                    not ctx.billing_had_its_chance(contract_id, due_on)
                    or (contract_id, ref, period.start) in billed
                    or ctx.cut_over(contract_id, period.end)
                ):
                    continue
                currency = lp.version.currency
                rate = ctx.rate(contract_id, ref, on=period.start, default=line.amount)
                billed_part = period  # a period straddling the cut-over owes only the days after it
                if ctx.cut_over(contract_id, period.start):
                    billed_part = Period(ctx.contract(contract_id).billed_through + timedelta(days=1), period.end)
                amount = price_recurring(amount=rate, period=billed_part, full_period=lp.full, currency=currency)
                key = f"recurring:{contract_id}:{ref}:{period.start}"
                found.append(
                    Candidate(
                        rule="L10",
                        key=f"{ref}:{period.start}",
                        contract_id=contract_id,
                        customer_id=ctx.contract(contract_id).customer_id,
                        title=f"{_number(ctx, contract_id)}: “{line.description}” {period_label(period)} has no invoice",
                        amount=amount,
                        currency=currency,
                        period_start=period.start,
                        period_end=period.end,
                        basis=(
                            "Recurring amount"
                            + (f" prorated {billed_part.days}/{lp.full.days} days" if billed_part != lp.full else "")
                            + (" (the days before the cut-over were billed elsewhere)" if billed_part != period else "")
                            + (" at the price override in force" if rate != line.amount else "")
                        ),
                        rows=[
                            {
                                "line_ref": ref,
                                "description": line.description,
                                "timing": line.timing,
                                "period_start": period.start,
                                "period_end": period.end,
                                "billing_key": key,
                                "rate": rate,
                                "amount": amount,
                                "voided_invoices": voided.get((contract_id, ref, period.start), []),
                            }
                        ],
                        facts={"billing_key": key, "price_line": line.pk},
                    )
                )
    return found


# --------------------------------------------------------------------------- all rules


def leakage_candidates(ctx: ScanContext, rules: Iterable[str] | None = None) -> list[Candidate]:
    """Every rule (or the named ones) over the scan's contracts."""
    wanted = set(rules or RULE_DEFINITIONS)
    found: list[Candidate] = []
    simple: dict[str, Callable[[ScanContext], list[Candidate]]] = {
        "L1": rule_l1,
        "L2": rule_l2,
        "L4": rule_l4,
        "L5": rule_l5,
        "L6": rule_l6,
        "L7": rule_l7,
        "L8": rule_l8,
        "L10": rule_l10,
    }
    for name, rule in simple.items():
        if name in wanted:
            found.extend(rule(ctx))
    l3: list[Candidate] = []
    if wanted & {"L3", "L9"}:
        l3 = rule_l3(ctx)
        if "L3" in wanted:
            found.extend(l3)
    if "L9" in wanted:
        found.extend(rule_l9(ctx, l3))
    return found
