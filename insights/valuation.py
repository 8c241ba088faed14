"""Contract value billed, recognized and unearned (pure: dataclasses in, Decimal out).

Per contract and currency, as of a day:

* **committed** — the contract value of ``contracts.valuation.contract_value``: every recurring
  period and usage minimum commitment as billing prices it, one-off fees and milestones once.
* **recognized** — what has been earned by today:
  recurring lines and usage minimum commitments straight-line by day (a period counts the days
  from its start through today over its full length, prorated like billing; closed periods count
  whole); fixed fees once their bill-on day (or the contract start) has come; milestones once
  delivered; time as delivered (billable hours × the rate card of the line, held under its cap);
  usage as delivered (what billing priced for closed periods, at contract rates), counted above
  the minimum commitment already recognized.
* **value** — committed + the time and usage delivered beyond it (variable money is part of the
  contract's value once it is delivered).
* **unearned** — value − recognized, never below zero: committed money not yet earned.
* **billed** — issued invoice totals (issued, sent, paid; drafts and void excluded), less credit notes,
  plus what the previous system billed before the cut-over (the imported invoice history).
* **deferred** — billed − recognized, never below zero: invoiced ahead of the service (shown apart
  from the backlog, which is value − recognized whether billed or not).
* **unbilled receivable** — recognized − billed − discounts granted on those invoices, never below
  zero: earned but not invoiced yet. A discount is revenue given up, not revenue still to bill.

Currencies are never added together: every figure is a dict currency → amount.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal

from contracts.valuation import contract_value
from insights.forecast import ContractTerms, VersionTerms, _refs, _version_on
from revexos.money import quantize
from revexos.pricing import Period, prorate
from revexos.schedule import line_periods

ZERO = Decimal(0)
HUNDRED = Decimal(100)


@dataclass(frozen=True)
class Delivered:
    """Variable delivery of one contract: time by (line_ref, role, version effective_from) in hours,
    usage priced by billing by currency."""

    hours: Mapping[tuple[str, str, date], Decimal] = field(default_factory=dict)
    usage: Mapping[str, Decimal] = field(default_factory=dict)


@dataclass(frozen=True)
class Billed:
    billed: Mapping[str, Decimal] = field(default_factory=dict)  # issued totals less credit notes
    discounts: Mapping[str, Decimal] = field(default_factory=dict)  # discounts granted on issued invoices


@dataclass
class ContractValuation:
    contract_id: int
    currency: str
    committed: Decimal = ZERO
    recognized: Decimal = ZERO
    variable: Decimal = ZERO
    billed: Decimal = ZERO
    discounts: Decimal = ZERO

    @property
    def value(self) -> Decimal:
        return self.committed + self.variable

    @property
    def unearned(self) -> Decimal:
        return max(self.value - self.recognized, ZERO)

    @property
    def deferred(self) -> Decimal:
        """Billed ahead of recognition (a liability until earned), never below zero."""
        return max(self.billed - self.recognized, ZERO)

    @property
    def unbilled_receivable(self) -> Decimal:
        return max(self.recognized - self.billed - self.discounts, ZERO)


def _straight_line(
    contract: ContractTerms, versions: tuple[VersionTerms, ...], *, kind: str, today: date
) -> dict[str, Decimal]:
    """Recurring amounts (or usage minimums) earned by day through ``today``, per currency."""
    earned: dict[str, Decimal] = defaultdict(lambda: ZERO)
    for ref in _refs(versions, kind):
        for lp in line_periods(
            contract_start=contract.start,
            contract_end=contract.end,
            versions=versions,
            line_ref=ref,
            kind=kind,
            until=today,
        ):
            per_period = lp.line.amount if kind == "recurring" else lp.line.minimum_commitment
            if not per_period:
                continue
            elapsed = Period(lp.period.start, min(lp.period.end, today))
            earned[lp.version.currency] += prorate(
                amount=per_period, period=elapsed, full=lp.full, currency=lp.version.currency
            )
    return earned


def contract_valuation(
    contract: ContractTerms,
    *,
    today: date,
    delivered: Delivered | None = None,
    billed: Billed | None = None,
    rates: Mapping[tuple[str, date], Mapping[str, Decimal]] | None = None,
) -> list[ContractValuation]:
    """One row per currency of the contract (almost always one).

    ``rates``: (line_ref, version effective_from) → {role: hourly rate} of time-and-materials lines.
    """
    delivered, billed, rates = delivered or Delivered(), billed or Billed(), rates or {}
    versions = tuple(contract.versions)
    rows: dict[str, ContractValuation] = {}

    def row(currency: str) -> ContractValuation:
        return rows.setdefault(currency, ContractValuation(contract_id=contract.id, currency=currency))

    if versions and contract.status != "draft":
        committed = contract_value(start=contract.start, end=contract.end, versions=versions, as_of=today).committed
        for currency, amount in committed.items():
            row(currency).committed += amount
        for currency, amount in _straight_line(contract, versions, kind="recurring", today=today).items():
            row(currency).recognized += amount
        minimums = _straight_line(contract, versions, kind="usage", today=today)
        for currency, amount in minimums.items():
            row(currency).recognized += amount
        # One-offs: the latest definition of each line, like the contract value counts them.
        one_offs: dict[str, tuple[str, object]] = {}
        for version in versions:
            for line in version.lines:
                if line.kind in ("fixed_fee", "milestone"):
                    one_offs[line.line_ref] = (version.currency, line, version)
        delivered_refs = {m.line_ref for m in contract.milestones if m.status in ("delivered", "invoiced")}
        for ref, (currency, line, _version) in one_offs.items():
            if (line.kind == "fixed_fee" and (line.bill_on or contract.start) <= today and line.amount) or (
                line.kind == "milestone" and ref in delivered_refs and line.amount is not None
            ):
                row(currency).recognized += quantize(line.amount, currency)
        # Time as delivered, at the rate card of the version that priced it, held under each line's cap.
        by_line: dict[str, Decimal] = defaultdict(lambda: ZERO)
        line_currency: dict[str, str] = {}
        caps: dict[str, Decimal | None] = {}
        for (ref, role, effective_from), hours in delivered.hours.items():
            card = rates.get((ref, effective_from), {})
            if role not in card:
                continue  # no rate: billing holds such hours for review, so they are not value yet
            version = next((v for v in versions if v.effective_from == effective_from), None) or versions[0]
            by_line[ref] += hours * card[role]
            line_currency[ref] = version.currency
            caps[ref] = next((ln.cap for ln in version.lines if ln.line_ref == ref), None)
        for ref, amount in by_line.items():
            currency = line_currency[ref]
            if caps.get(ref) is not None:
                amount = min(amount, caps[ref])
            value = quantize(amount, currency)
            row(currency).variable += value
            row(currency).recognized += value
        for currency, amount in delivered.usage.items():
            above = max(quantize(amount, currency) - minimums.get(currency, ZERO), ZERO)
            row(currency).variable += above
            row(currency).recognized += above
    for currency, amount in billed.billed.items():
        row(currency).billed += amount
    for currency, amount in billed.discounts.items():
        row(currency).discounts += amount
    return [rows[c] for c in sorted(rows)]


@dataclass
class ValueTotals:
    committed: Decimal = ZERO
    value: Decimal = ZERO
    recognized: Decimal = ZERO
    billed: Decimal = ZERO
    unearned: Decimal = ZERO
    unbilled_receivable: Decimal = ZERO
    deferred: Decimal = ZERO
    contracts: int = 0


def totals_by_currency(rows: Iterable[ContractValuation]) -> dict[str, ValueTotals]:
    totals: dict[str, ValueTotals] = {}
    for r in rows:
        t = totals.setdefault(r.currency, ValueTotals())
        t.committed += r.committed
        t.value += r.value
        t.recognized += r.recognized
        t.billed += r.billed
        t.unearned += r.unearned
        t.unbilled_receivable += r.unbilled_receivable
        t.deferred += r.deferred
        t.contracts += 1
    return dict(sorted(totals.items()))


def version_of(contract: ContractTerms, day: date) -> VersionTerms:
    return _version_on(contract.versions, day)
