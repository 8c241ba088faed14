"""Pure application of discounts and credits to an invoice: dataclasses in, Decimal out.

No ORM, no I/O (STYLE.md): billing (``billing/services/adjustments.py``) loads the rows, calls these
functions and stores what they return. Every amount is rounded through ``revexos.money``.

Order on an invoice (DESIGN.md §4)
    line amounts → line-scoped discounts → invoice-scoped discounts → tax → credits.
    Line-scoped = a discount on one price line (scope ``price_line``); invoice-scoped = a
    discount on a contract or a customer. Discounts of one stage are applied one after the
    other in the order given (oldest first), each on what the previous ones left, so two 10 %
    discounts take 19 %, and no line ever goes below zero.

Windows and straddling periods
    A discount applies to a line whose billing period starts inside its window
    ``[start, end]`` (inclusive; open-ended when ``end`` is None). A period that straddles a
    boundary of the window — it starts before the window starts, or ends after the window ends —
    is prorated by days: the discount is multiplied by ``days of the period inside the window /
    days of the period`` (its *coverage*). A period entirely inside the window has coverage 1; a
    period with no day inside has coverage 0 and is not discounted. Lines without a period
    (fixed fees, milestones) are dated on the invoice's billing date: coverage 1 inside the
    window, else 0.

Cycles
    ``max_cycles`` counts billing periods: a cycle is the start of the period of a discounted line
    (the billing date for lines without a period). Several lines of the same period share one
    cycle, and a late line for a period already discounted uses no new cycle. When an invoice
    holds more new periods than cycles remain (a catch-up run), the earliest periods get them.

Percentage and fixed
    A percentage discount takes ``value`` % of the covered amount of the lines it applies to,
    rounded once for the discount and spread over those lines in proportion to
    ``amount × coverage`` with ``money.allocate`` (remainder on the last line). A fixed discount
    takes ``value`` (× the coverage of the cycle) once per cycle, never more than the covered
    amount of that cycle's lines, spread the same way.

Credits
    Credits reduce the amount due after tax, like a payment: pinned credits (named for this
    invoice) first, then the one expiring soonest, then the oldest; each takes
    ``min(balance, amount due)``, so the amount due never goes below zero and the rest of a
    credit stays for the next invoices. A credit whose expiry day is before the issue date
    applies to nothing.
"""

from __future__ import annotations

from collections.abc import Hashable, Sequence
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal

from revexos.money import CurrencyMismatch, allocate, quantize, to_decimal

__all__ = [
    "Applied",
    "CreditApplied",
    "CreditBalance",
    "CreditResult",
    "DiscountTerms",
    "InvoiceAmounts",
    "Line",
    "apply_credits",
    "apply_discounts",
    "coverage",
]

ZERO = Decimal(0)
ONE = Decimal(1)
HUNDRED = Decimal(100)
LINE_STAGE = "line"
INVOICE_STAGE = "invoice"


@dataclass(frozen=True, slots=True)
class Line:
    """An invoice line as the applicator sees it; ``amount`` is already quantized."""

    key: Hashable
    amount: Decimal
    line_ref: str = ""
    period_start: date | None = None
    period_end: date | None = None
    contract_id: Hashable | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "amount", to_decimal(self.amount, "amount"))
        if self.amount < 0:
            raise ValueError(f"Line {self.key} has a negative amount {self.amount}; lines are never negative.")


@dataclass(frozen=True, slots=True)
class DiscountTerms:
    """One discount's rule. ``line_ref`` set = line-scoped; ``contract_id`` set = only that contract's lines."""

    id: Hashable
    kind: str  # "percentage" | "fixed"
    value: Decimal
    start: date
    end: date | None = None
    line_ref: str = ""
    contract_id: Hashable | None = None
    currency: str = ""
    cycles_remaining: int | None = None  # None = unlimited
    cycle_keys_used: frozenset[str] = frozenset()

    def __post_init__(self) -> None:
        object.__setattr__(self, "value", to_decimal(self.value, "value"))
        if self.kind not in ("percentage", "fixed"):
            raise ValueError(f"Unknown discount kind {self.kind!r}; use percentage or fixed.")
        if self.value <= 0 or (self.kind == "percentage" and self.value > HUNDRED):
            raise ValueError(f"Discount {self.id}: value {self.value} out of range.")
        if self.end is not None and self.end < self.start:
            raise ValueError(f"Discount {self.id} ends ({self.end}) before it starts ({self.start}).")

    @property
    def stage(self) -> str:
        return LINE_STAGE if self.line_ref else INVOICE_STAGE


@dataclass(frozen=True, slots=True)
class Applied:
    discount_id: Hashable
    line_key: Hashable
    amount: Decimal
    cycle_key: str
    coverage: Decimal
    stage: str


@dataclass(frozen=True, slots=True)
class InvoiceAmounts:
    subtotal: Decimal
    discount_total: Decimal
    tax_total: Decimal
    total: Decimal
    applications: tuple[Applied, ...]
    net_by_line: dict = field(default_factory=dict)

    def cycles_by_discount(self) -> dict[Hashable, set[str]]:
        result: dict[Hashable, set[str]] = {}
        for a in self.applications:
            result.setdefault(a.discount_id, set()).add(a.cycle_key)
        return result


def coverage(*, start: date, end: date | None, period_start: date, period_end: date) -> Decimal:
    """Share of the days of ``[period_start, period_end]`` inside the window ``[start, end]`` (exact)."""
    if period_end < period_start:
        raise ValueError(f"Period ends ({period_end}) before it starts ({period_start}).")
    first = max(start, period_start)
    last = period_end if end is None else min(end, period_end)
    if last < first:
        return ZERO
    inside = (last - first).days + 1
    total = (period_end - period_start).days + 1
    return ONE if inside == total else Decimal(inside) / Decimal(total)


def _line_coverage(line: Line, terms: DiscountTerms, billing_date: date) -> Decimal:
    if line.period_start is None:
        day = billing_date
        return ONE if terms.start <= day and (terms.end is None or day <= terms.end) else ZERO
    return coverage(
        start=terms.start,
        end=terms.end,
        period_start=line.period_start,
        period_end=line.period_end or line.period_start,
    )


def _cycle_key(line: Line, billing_date: date) -> str:
    return (line.period_start or billing_date).isoformat()


def _spread(total: Decimal, lines: list[Line], weights: list[Decimal], remaining: dict, currency: str) -> list[Decimal]:
    """``total`` over ``lines`` by ``weights`` (money.allocate, remainder last), no line beyond what it has left."""
    parts = allocate(total=total, weights=weights, currency=currency)
    # allocate rounds each head part half-up; when coverages differ a part may top its line's
    # remaining amount by a minor unit. Move any such excess to lines that still have room.
    excess = ZERO
    for i, line in enumerate(lines):
        room = remaining[line.key]
        if parts[i] > room:
            excess += parts[i] - room
            parts[i] = room
    for i, line in enumerate(lines):
        if excess <= 0:
            break
        room = remaining[line.key] - parts[i]
        if room > 0:
            moved = min(room, excess)
            parts[i] += moved
            excess -= moved
    return parts


def _apply_one(
    terms: DiscountTerms, lines: Sequence[Line], remaining: dict, *, billing_date: date, currency: str
) -> list[Applied]:
    if terms.kind == "fixed" and terms.currency and terms.currency != currency:
        raise CurrencyMismatch(
            f"Discount {terms.id} is a fixed amount in {terms.currency} and the invoice is in {currency}; "
            "amounts in different currencies are never combined."
        )
    eligible: list[tuple[Line, Decimal, str]] = []
    for line in lines:
        if terms.contract_id is not None and line.contract_id is not None and line.contract_id != terms.contract_id:
            continue
        if terms.line_ref and line.line_ref != terms.line_ref:
            continue
        if remaining[line.key] <= 0:
            continue
        cov = _line_coverage(line, terms, billing_date)
        if cov > 0:
            eligible.append((line, cov, _cycle_key(line, billing_date)))
    if not eligible:
        return []

    # Cycles: keys already used are free; new keys are granted earliest first.
    if terms.cycles_remaining is not None:
        new_keys = sorted({k for _, _, k in eligible if k not in terms.cycle_keys_used})
        granted = set(new_keys[: max(terms.cycles_remaining, 0)]) | set(terms.cycle_keys_used)
        eligible = [e for e in eligible if e[2] in granted]
        if not eligible:
            return []

    groups: list[list[tuple[Line, Decimal, str]]]
    if terms.kind == "percentage":
        groups = [eligible]
    else:
        by_cycle: dict[str, list] = {}
        for e in eligible:
            by_cycle.setdefault(e[2], []).append(e)
        groups = [by_cycle[k] for k in sorted(by_cycle)]

    applied: list[Applied] = []
    for group in groups:
        group_lines = [line for line, _, _ in group]
        weights = [remaining[line.key] * cov for line, cov, _ in group]
        covered = sum(weights, ZERO)
        if covered <= 0:
            continue
        cap = quantize(covered, currency)
        if terms.kind == "percentage":
            amount = quantize(covered * terms.value / HUNDRED, currency)
        else:
            # The cycle's coverage: the covered share of the group's amounts (1 when no line straddles).
            base = sum((remaining[line.key] for line in group_lines), ZERO)
            amount = quantize(terms.value * covered / base, currency)
        amount = min(amount, cap)
        if amount <= 0:
            continue
        parts = _spread(amount, group_lines, weights, remaining, currency)
        for (line, cov, key), part in zip(group, parts, strict=True):
            if part <= 0:
                continue
            remaining[line.key] -= part
            applied.append(
                Applied(
                    discount_id=terms.id, line_key=line.key, amount=part, cycle_key=key, coverage=cov, stage=terms.stage
                )
            )
    return applied


def apply_discounts(
    *,
    lines: Sequence[Line],
    discounts: Sequence[DiscountTerms],
    currency: str,
    billing_date: date,
    tax_rate: Decimal | int | str = ZERO,
    tax_total: Decimal | None = None,
) -> InvoiceAmounts:
    """Discount ``lines`` by ``discounts`` (oldest first within each stage) and total the invoice.

    Tax is ``tax_rate`` % of the discounted subtotal, rounded once; pass ``tax_total`` instead to
    keep a tax computed elsewhere. total = subtotal − discounts + tax.
    """
    keys = [line.key for line in lines]
    if len(set(keys)) != len(keys):
        raise ValueError("Line keys must be unique.")
    amounts = {line.key: quantize(line.amount, currency) for line in lines}
    subtotal = quantize(sum(amounts.values(), ZERO), currency)
    remaining = dict(amounts)
    applications: list[Applied] = []
    ordered = [d for d in discounts if d.stage == LINE_STAGE] + [d for d in discounts if d.stage == INVOICE_STAGE]
    for terms in ordered:
        applications.extend(_apply_one(terms, lines, remaining, billing_date=billing_date, currency=currency))
    discount_total = quantize(sum((a.amount for a in applications), ZERO), currency)
    net = subtotal - discount_total
    if tax_total is None:
        tax = quantize(net * to_decimal(tax_rate, "tax_rate") / HUNDRED, currency)
    else:
        tax = quantize(tax_total, currency)
    return InvoiceAmounts(
        subtotal=subtotal,
        discount_total=discount_total,
        tax_total=tax,
        total=net + tax,
        applications=tuple(applications),
        net_by_line=remaining,
    )


# --------------------------------------------------------------------------- credits


@dataclass(frozen=True, slots=True)
class CreditBalance:
    id: Hashable
    balance: Decimal
    currency: str
    expires_on: date | None = None
    pinned: bool = False  # named for the invoice being issued

    def __post_init__(self) -> None:
        object.__setattr__(self, "balance", to_decimal(self.balance, "balance"))


@dataclass(frozen=True, slots=True)
class CreditApplied:
    credit_id: Hashable
    amount: Decimal
    balance_after: Decimal


@dataclass(frozen=True, slots=True)
class CreditResult:
    applications: tuple[CreditApplied, ...]
    credit_applied: Decimal
    amount_due: Decimal


def credit_order(credits: Sequence[CreditBalance]) -> list[CreditBalance]:
    """Pinned first, then the soonest expiry (no expiry last), then as given (oldest first)."""
    indexed = list(enumerate(credits))
    indexed.sort(key=lambda ic: (not ic[1].pinned, ic[1].expires_on is None, ic[1].expires_on or date.max, ic[0]))
    return [c for _, c in indexed]


def apply_credits(
    *, amount_due: Decimal | int | str, credits: Sequence[CreditBalance], currency: str, on: date
) -> CreditResult:
    """Reduce ``amount_due`` by ``credits`` usable on ``on``; never below zero."""
    due = quantize(amount_due, currency)
    if due < 0:
        raise ValueError(f"Amount due {due} is negative; credits only reduce what is owed.")
    applications: list[CreditApplied] = []
    for credit in credit_order(credits):
        if due <= 0:
            break
        if credit.currency != currency or credit.balance <= 0:
            continue
        if credit.expires_on is not None and credit.expires_on < on:
            continue
        balance = quantize(credit.balance, currency)
        take = min(balance, due)
        due -= take
        applications.append(CreditApplied(credit_id=credit.id, amount=take, balance_after=balance - take))
    applied = quantize(sum((a.amount for a in applications), ZERO), currency)
    return CreditResult(applications=tuple(applications), credit_applied=applied, amount_due=due)
