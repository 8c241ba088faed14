"""Invoices expected in the coming months (pure: dataclasses in, Decimal out; no ORM, no I/O).

The forecast answers "what will we invoice, when": each obligation is dated on the day billing
will invoice it and bucketed by that day's calendar month. Month 1 is the month after today (the
current month is the "billed this month" figure, which is a fact, not a forecast).

What is forecast, per active contract (drafts are kept out of billing, ended ones bill no more):

* **recurring** — the schedule exactly as billing walks it (``revexos.schedule.line_periods``):
  the version in force at each period's start, prorated partial periods, amendments already
  scheduled; dated on the period start (in advance) or the day after its end (in arrears). A price
  override in force at the period start prices the period at its custom rate, so an override
  ending shows up as the contract rate coming back.
* **renewal** — an auto-renew contract with no churn decision, or one whose alert says
  "renewing", continues past its end date into the next term with the lines billing would carry
  (recurring, usage, time) raised by the uplift (the renewing alert's proposed terms win over the
  contract's own), as ``renewals.services.terms.contract_renew`` will write them. Nothing is
  forecast after the end of a churned or churning contract, or of one that does not auto-renew.
* **milestones** — pending milestones by their expected date.
* **fixed fees** — by ``bill_on`` (the contract start without one), unless already invoiced.
* **time and usage** — by run rate: the average invoiced amount of the line's last three closed
  periods (fewer when the contract is younger; a closed period with no invoice counts as zero),
  prorated for partial periods and dated the day after each period closes. A usage minimum
  commitment is a floor. A line with no closed period yet has no run rate: nothing is forecast.
* **discounts** — each expected invoice (contract × billing date × currency) goes through
  ``discounts.applicator`` with the discounts in force, cycles counted as they are used, so a
  discount that ends (by date or by cycles) stops taking from the invoices after it. The effect is
  kept separately: gross, discount, net.

Obligations already invoiced (same line and period) are not forecast again.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from datetime import date, timedelta
from decimal import Decimal

from discounts import applicator
from renewals.valuation import CARRIED_KINDS, next_term, uplift_amount
from revexos.money import quantize
from revexos.pricing import Period, add_months, price_recurring, prorate
from revexos.schedule import line_periods

ZERO = Decimal(0)
HUNDRED = Decimal(100)
RUN_RATE_PERIODS = 3
KINDS = ("recurring", "milestone", "fixed_fee", "time_and_materials", "usage")
KIND_LABELS = {
    "recurring": "Recurring",
    "milestone": "Milestones",
    "fixed_fee": "Fixed fees",
    "time_and_materials": "Time & materials",
    "usage": "Usage",
}
CHURN_STATUSES = ("churning", "churned")
MAX_MONTHS = 24


# --------------------------------------------------------------------------- inputs


@dataclass(frozen=True)
class LineTerms:
    line_ref: str
    kind: str
    description: str
    amount: Decimal | None = None
    frequency: str = ""
    timing: str = ""
    bill_on: date | None = None
    percent_of_fixed_fee: Decimal | None = None
    minimum_commitment: Decimal = ZERO
    cap: Decimal | None = None
    pk: int | None = None


class _Lines(tuple):
    """``version.price_lines.all()`` for the schedule walker, which reads ORM-shaped versions."""

    def all(self):
        return self


@dataclass(frozen=True)
class VersionTerms:
    effective_from: date
    billing_anchor: str
    currency: str
    lines: tuple[LineTerms, ...] = ()
    renewal_uplift_pct: Decimal | None = None  # set on a term the forecast assumes (not yet written)

    @property
    def price_lines(self) -> _Lines:
        return _Lines(self.lines)


@dataclass(frozen=True)
class MilestoneTerms:
    line_ref: str
    name: str
    status: str
    expected_date: date | None


@dataclass(frozen=True)
class OverrideTerms:
    line_ref: str
    role: str
    rate: Decimal
    start: date
    end: date


@dataclass(frozen=True)
class DiscountRule:
    """A discount row as the forecast needs it; ``used`` = cycle keys billed so far."""

    id: int
    kind: str
    value: Decimal
    start: date
    end: date | None
    line_ref: str = ""
    contract_id: int | None = None  # None = customer-wide
    currency: str = ""
    max_cycles: int | None = None
    used: frozenset[str] = frozenset()


@dataclass(frozen=True)
class ContractTerms:
    """Everything the forecast and the valuation read about one contract."""

    id: int
    number: str
    title: str
    customer_id: int
    customer_name: str
    status: str
    start: date
    end: date | None
    auto_renew: bool = False
    renewal_term_months: int = 12
    renewal_uplift_pct: Decimal = ZERO
    owner_id: int | None = None
    versions: tuple[VersionTerms, ...] = ()
    milestones: tuple[MilestoneTerms, ...] = ()
    overrides: tuple[OverrideTerms, ...] = ()
    # The current term's renewal alert: its status ("" without one) and proposed terms.
    renewal_status: str = ""
    proposed_terms: dict = field(default_factory=dict)
    # What was invoiced (not void): (line_ref, period_start) -> amount; fixed fees and milestones under period None.
    invoiced: dict = field(default_factory=dict)


# --------------------------------------------------------------------------- output


@dataclass(frozen=True)
class ForecastItem:
    contract_id: int
    customer_id: int
    kind: str
    line_ref: str
    description: str
    billing_date: date
    currency: str
    gross: Decimal
    discount: Decimal = ZERO
    period_start: date | None = None
    period_end: date | None = None
    basis: str = ""  # how the amount was found, for the drill-down
    renewal: bool = False  # in a term the forecast assumes by renewal
    uplift: Decimal = ZERO  # what the renewal uplift adds to this item

    @property
    def net(self) -> Decimal:
        return self.gross - self.discount

    @property
    def month(self) -> date:
        return self.billing_date.replace(day=1)


@dataclass
class Money3:
    gross: Decimal = ZERO
    discount: Decimal = ZERO
    net: Decimal = ZERO

    def add(self, item: ForecastItem) -> None:
        self.gross += item.gross
        self.discount += item.discount
        self.net += item.net


@dataclass
class MonthTotals:
    month: date
    by_currency: dict[str, Money3] = field(default_factory=dict)
    by_currency_kind: dict[tuple[str, str], Money3] = field(default_factory=dict)
    uplift: dict[str, Decimal] = field(default_factory=dict)


@dataclass
class Forecast:
    today: date
    months: list[date]
    items: list[ForecastItem]

    @property
    def start(self) -> date:
        return self.months[0]

    @property
    def end(self) -> date:
        return add_months(self.months[-1], 1) - timedelta(days=1)

    def totals(self) -> list[MonthTotals]:
        rows = {m: MonthTotals(month=m) for m in self.months}
        for item in self.items:
            row = rows[item.month]
            row.by_currency.setdefault(item.currency, Money3()).add(item)
            row.by_currency_kind.setdefault((item.currency, item.kind), Money3()).add(item)
            if item.uplift:
                row.uplift[item.currency] = row.uplift.get(item.currency, ZERO) + item.uplift
        return [rows[m] for m in self.months]

    def currencies(self) -> list[str]:
        return sorted({item.currency for item in self.items})

    def month_total(self, month: date) -> dict[str, Money3]:
        result: dict[str, Money3] = {}
        for item in self.items:
            if item.month == month:
                result.setdefault(item.currency, Money3()).add(item)
        return dict(sorted(result.items()))


def forecast_months(*, today: date, months: int) -> list[date]:
    if not 1 <= months <= MAX_MONTHS:
        raise ValueError(f"months must be between 1 and {MAX_MONTHS}, not {months}.")
    first = add_months(today.replace(day=1), 1)
    return [add_months(first, i) for i in range(months)]


# --------------------------------------------------------------------------- renewal terms


def _version_on(versions: Sequence[VersionTerms], day: date) -> VersionTerms:
    chosen = versions[0]
    for version in versions:
        if version.effective_from <= day:
            chosen = version
    return chosen


def _renewal_terms(contract: ContractTerms) -> tuple[int, Decimal] | None:
    """(term months, uplift %) when the contract is expected to renew at its end, else None."""
    if contract.end is None or contract.renewal_status in CHURN_STATUSES:
        return None
    renewing = contract.renewal_status == "renewing"
    if not (contract.auto_renew or renewing):
        return None
    months, pct = contract.renewal_term_months, contract.renewal_uplift_pct
    if renewing and contract.proposed_terms:
        months = int(contract.proposed_terms.get("term_months") or months)
        pct = Decimal(str(contract.proposed_terms.get("uplift_pct", pct)))
    return months, pct


def extended_terms(contract: ContractTerms, *, until: date) -> tuple[tuple[VersionTerms, ...], date | None]:
    """The contract's versions and end date, with the renewals expected before ``until`` appended.

    Each assumed term is a version from end + 1 carrying the recurring, usage and time lines of
    the version in force on the last day, their amounts raised by the uplift, the way
    ``contract_renew`` writes it; later renewals compound.
    """
    versions, end = tuple(contract.versions), contract.end
    terms = _renewal_terms(contract)
    if terms is None or not versions:
        return versions, end
    months, pct = terms
    while end is not None and end < until:
        last = _version_on(versions, end)
        start, new_end = next_term(end=end, term_months=months)
        lines = tuple(
            replace(
                line,
                amount=uplift_amount(line.amount, pct=pct, currency=last.currency),
                minimum_commitment=uplift_amount(line.minimum_commitment, pct=pct, currency=last.currency) or ZERO,
            )
            for line in last.lines
            if line.kind in CARRIED_KINDS
        )
        versions = (*versions, VersionTerms(start, last.billing_anchor, last.currency, lines, renewal_uplift_pct=pct))
        end = new_end
    return versions, end


# --------------------------------------------------------------------------- one contract


def _refs(versions: Iterable[VersionTerms], kind: str) -> list[str]:
    refs: dict[str, None] = {}
    for version in versions:
        for line in version.lines:
            if line.kind == kind:
                refs.setdefault(line.line_ref, None)
    return list(refs)


def _override_rate(contract: ContractTerms, line_ref: str, on: date) -> Decimal | None:
    for override in contract.overrides:
        if override.line_ref == line_ref and not override.role and override.start <= on <= override.end:
            return override.rate
    return None


def _uplift_of(version: VersionTerms, amount: Decimal, currency: str) -> Decimal:
    """The part of ``amount`` the renewal uplift added (amount − amount before the uplift)."""
    if not version.renewal_uplift_pct:
        return ZERO
    before = amount * HUNDRED / (HUNDRED + version.renewal_uplift_pct)
    return quantize(amount - before, currency)


def run_rate(*, closed: Sequence[Period], invoiced: dict, line_ref: str) -> Decimal | None:
    """Average invoiced amount of the last ``RUN_RATE_PERIODS`` closed periods (None without one)."""
    recent = list(closed)[-RUN_RATE_PERIODS:]
    if not recent:
        return None
    total = sum((invoiced.get((line_ref, p.start), ZERO) for p in recent), ZERO)
    return total / len(recent)


def contract_items(contract: ContractTerms, *, today: date, start: date, end: date) -> list[ForecastItem]:
    """Gross forecast items of one contract billed in [start, end] (discounts come after)."""
    if contract.status != "active" or not contract.versions:
        return []
    versions, contract_end = extended_terms(contract, until=end)
    items: list[ForecastItem] = []

    def add(**kwargs) -> None:
        items.append(ForecastItem(contract_id=contract.id, customer_id=contract.customer_id, **kwargs))

    # Recurring: the schedule as billing walks it.
    for ref in _refs(versions, "recurring"):
        for lp in line_periods(
            contract_start=contract.start,
            contract_end=contract_end,
            versions=versions,
            line_ref=ref,
            kind="recurring",
            until=end,
        ):
            billing_date = lp.period.start if lp.line.timing == "advance" else lp.period.end + timedelta(days=1)
            if not start <= billing_date <= end or (ref, lp.period.start) in contract.invoiced:
                continue
            currency = lp.version.currency
            custom = _override_rate(contract, ref, lp.period.start)
            rate = lp.line.amount if custom is None else custom
            gross = price_recurring(amount=rate, period=lp.period, full_period=lp.full, currency=currency)
            add(
                kind="recurring",
                line_ref=ref,
                description=lp.line.description,
                billing_date=billing_date,
                currency=currency,
                gross=gross,
                period_start=lp.period.start,
                period_end=lp.period.end,
                basis="schedule" + (" (custom rate)" if custom is not None else ""),
                renewal=lp.version.renewal_uplift_pct is not None,
                uplift=_uplift_of(lp.version, gross, currency),
            )

    # Fixed fees on their day; milestones on their expected date while pending.
    for ref in _refs(versions, "fixed_fee"):
        if (ref, None) in contract.invoiced:
            continue
        holder = [v for v in versions if any(ln.line_ref == ref and ln.kind == "fixed_fee" for ln in v.lines)][-1]
        line = next(ln for ln in holder.lines if ln.line_ref == ref)
        day = line.bill_on or contract.start
        if start <= day <= end and line.amount:
            add(
                kind="fixed_fee",
                line_ref=ref,
                description=line.description,
                billing_date=day,
                currency=holder.currency,
                gross=quantize(line.amount, holder.currency),
                basis="bill on",
            )
    for milestone in contract.milestones:
        day = milestone.expected_date
        if milestone.status != "pending" or day is None or not start <= day <= end:
            continue
        holders = [
            v for v in versions if any(ln.line_ref == milestone.line_ref and ln.kind == "milestone" for ln in v.lines)
        ]
        if not holders:
            continue
        version = _version_on(holders, day)
        line = next(ln for ln in version.lines if ln.line_ref == milestone.line_ref)
        amount = line.amount
        if amount is None and line.percent_of_fixed_fee is not None:
            fixed = sum((ln.amount or ZERO for ln in version.lines if ln.kind == "fixed_fee"), ZERO)
            amount = fixed * line.percent_of_fixed_fee / HUNDRED
        if amount:
            add(
                kind="milestone",
                line_ref=milestone.line_ref,
                description=milestone.name,
                billing_date=day,
                currency=version.currency,
                gross=quantize(amount, version.currency),
                basis="expected date",
            )

    # Time and usage: run rate of the last closed periods, billed when each period closes.
    for kind in ("time_and_materials", "usage"):
        for ref in _refs(versions, kind):
            periods = line_periods(
                contract_start=contract.start,
                contract_end=contract_end,
                versions=versions,
                line_ref=ref,
                kind=kind,
                until=end,
            )
            rate = run_rate(
                closed=[lp.period for lp in periods if lp.period.end < today], invoiced=contract.invoiced, line_ref=ref
            )
            for lp in periods:
                billing_date = lp.period.end + timedelta(days=1)
                if not start <= billing_date <= end or (ref, lp.period.start) in contract.invoiced:
                    continue
                currency = lp.version.currency
                pct = lp.version.renewal_uplift_pct
                per_period = (rate or ZERO) * ((HUNDRED + pct) / HUNDRED if pct else 1)
                gross = prorate(amount=per_period, period=lp.period, full=lp.full, currency=currency)
                basis = f"run rate of {min(RUN_RATE_PERIODS, sum(1 for p in periods if p.period.end < today))} closed period(s)"
                if kind == "usage" and lp.line.minimum_commitment:
                    floor = prorate(
                        amount=lp.line.minimum_commitment, period=lp.period, full=lp.full, currency=currency
                    )
                    if floor > gross:
                        gross, basis = floor, "minimum commitment"
                if rate is None and basis != "minimum commitment":
                    continue
                if gross == 0:
                    continue
                add(
                    kind=kind,
                    line_ref=ref,
                    description=lp.line.description,
                    billing_date=billing_date,
                    currency=currency,
                    gross=gross,
                    period_start=lp.period.start,
                    period_end=lp.period.end,
                    basis=basis,
                    renewal=pct is not None,
                    uplift=_uplift_of(lp.version, gross, currency),
                )
    return items


# --------------------------------------------------------------------------- discounts


def _terms(rule: DiscountRule, used: set[str]) -> applicator.DiscountTerms:
    remaining = None if rule.max_cycles is None else max(rule.max_cycles - len(used), 0)
    return applicator.DiscountTerms(
        id=rule.id,
        kind=rule.kind,
        value=rule.value,
        start=rule.start,
        end=rule.end,
        line_ref=rule.line_ref,
        contract_id=rule.contract_id,
        currency=rule.currency,
        cycles_remaining=remaining,
        cycle_keys_used=frozenset(used),
    )


def apply_forecast_discounts(
    items: Sequence[ForecastItem], *, discounts_by_customer: dict[int, Sequence[DiscountRule]]
) -> list[ForecastItem]:
    """Each expected invoice (contract × billing date × currency) discounted as billing will do it.

    Invoices are taken in date order per customer, so a discount's cycles are used up by the
    earliest invoices, as they will be (customer-wide discounts share cycles across contracts).
    """
    invoices: dict[tuple, list[int]] = defaultdict(list)
    for index, item in enumerate(items):
        invoices[(item.customer_id, item.billing_date, item.contract_id, item.currency)].append(index)
    result = list(items)
    used: dict[int, set[str]] = {}
    for (customer_id, billing_date, contract_id, currency), indexes in sorted(invoices.items()):
        rules = [
            r
            for r in discounts_by_customer.get(customer_id, ())
            if (r.contract_id is None or r.contract_id == contract_id)
            and (r.kind == "percentage" or r.currency == currency)
        ]
        if not rules:
            continue
        lines = [
            applicator.Line(
                key=i,
                amount=items[i].gross,
                line_ref=items[i].line_ref,
                period_start=items[i].period_start,
                period_end=items[i].period_end,
                contract_id=contract_id,
            )
            for i in indexes
        ]
        terms = [_terms(r, used.setdefault(r.id, set(r.used))) for r in rules]
        outcome = applicator.apply_discounts(lines=lines, discounts=terms, currency=currency, billing_date=billing_date)
        taken: dict[int, Decimal] = defaultdict(lambda: ZERO)
        for application in outcome.applications:
            taken[application.line_key] += application.amount
            used[application.discount_id].add(application.cycle_key)
        for i in indexes:
            if taken[i]:
                result[i] = replace(items[i], discount=quantize(taken[i], currency))
    return result


def forecast(
    *,
    contracts: Iterable[ContractTerms],
    today: date,
    months: int,
    discounts_by_customer: dict[int, Sequence[DiscountRule]] | None = None,
) -> Forecast:
    """The forecast of ``contracts`` over the ``months`` calendar months after today's."""
    bucket_months = forecast_months(today=today, months=months)
    start, end = bucket_months[0], add_months(bucket_months[-1], 1) - timedelta(days=1)
    items: list[ForecastItem] = []
    for contract in contracts:
        items.extend(contract_items(contract, today=today, start=start, end=end))
    items = apply_forecast_discounts(items, discounts_by_customer=discounts_by_customer or {})
    items.sort(key=lambda i: (i.billing_date, i.contract_id, KINDS.index(i.kind), i.line_ref))
    return Forecast(today=today, months=bucket_months, items=items)
