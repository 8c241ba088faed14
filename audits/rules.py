"""The Q2C audit's comparison: what the contracts say should have been billed against what the old
system billed (pure: dataclasses in, findings out; no ORM, no I/O).

"Should have been billed" is the billing engine's own answer — its shadow run over the imported
contracts, time, usage and delivered milestones (``billing.services.shadow``). "Was billed" is the
imported invoice export, each line matched to an obligation (``billing.history_matching``). Both
meet on the obligation key: one price line of one contract for one period (or once, for fixed fees
and milestones).

Rules (codes follow the leakage rules of DESIGN.md §4 where they are the same question):

    L10  period never invoiced        a recurring period or fixed fee owed with no invoice line
    L6   invoiced below the rate      invoiced (before discounts) less than the contract's amount,
                                      or hours/units at a lower price than the rate card
    L4   discount outside its window  a discount deducted beyond what the contract's discounts in
                                      force for that period allow (expired, or never agreed)
    L2   hours not billed             time-and-materials hours, or hours over a retainer's included
                                      hours, owed and not invoiced
    L3   usage not billed             usage owed for a closed period and not invoiced
    L1   milestone not billed         a delivered milestone with no invoice line
    L9   minimum not trued up         a usage minimum-commitment top-up owed and not invoiced
    A1   billed twice                 one milestone, fixed fee or period invoiced more than once
                                      (the customer is owed it back: a dispute waiting to happen)
    L8   terms differ                 an invoice's payment terms or PO differ from the contract's

Amounts are in the contract's currency, rounded once per finding by ``revexos.money.quantize``.
``LEAK_RULES`` are revenue that was never billed; ``A1`` and ``L8`` are reported apart (money to give
back, and invoices at risk of rejection) so the headline figure is only money the company is owed.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal

from discounts.applicator import coverage
from revexos.money import minor_units, quantize

ZERO = Decimal(0)
HUNDRED = Decimal(100)

RULES: dict[str, dict[str, str]] = {
    "L10": {
        "name": "Periods never invoiced",
        "what": "A recurring period (or a one-off fee) the contract bills had no invoice line in the old system.",
        "amount": "The period's amount at the contract rate, prorated like billing.",
    },
    "L6": {
        "name": "Invoiced below the contract rate",
        "what": "The invoice charged less than the contract's rate for the period (e.g. an amendment's new rate never reached the invoices).",
        "amount": "Contract amount − invoiced amount before discounts.",
    },
    "L4": {
        "name": "Discounts outside their window",
        "what": "A discount was deducted for a period in which the contract grants none (it had ended, or was never agreed).",
        "amount": "The discount deducted − the discount the contract allows for that period.",
    },
    "L2": {
        "name": "Hours never billed",
        "what": "Billable hours (time and materials, or over a retainer's included hours) for a closed period were not invoiced.",
        "amount": "Hours × the rate card rate, as billing prices them, less what was invoiced for that period.",
    },
    "L3": {
        "name": "Usage never billed",
        "what": "Usage of a closed period was not invoiced.",
        "amount": "The period's usage priced by the contract's charge model, less what was invoiced for it.",
    },
    "L1": {
        "name": "Milestones delivered, not billed",
        "what": "A milestone was delivered and never invoiced.",
        "amount": "The milestone's amount in the contract.",
    },
    "L9": {
        "name": "Minimum commitments not trued up",
        "what": "Usage stayed under the minimum commitment and the top-up was never invoiced.",
        "amount": "Minimum commitment − the usage charge of the period.",
    },
    "A1": {
        "name": "Billed twice",
        "what": "A milestone, fee or period was invoiced more than once: the customer is owed it back.",
        "amount": "Invoiced − owed for that obligation.",
    },
    "L8": {
        "name": "Terms differ from the contract",
        "what": "An invoice's payment terms or PO number differ from the contract in force when it was issued.",
        "amount": "The invoice total, at risk of late payment or rejection by accounts payable.",
    },
}
RULE_ORDER = ["L10", "L6", "L4", "L2", "L3", "L1", "L9", "A1", "L8"]
LEAK_RULES = ("L10", "L6", "L4", "L2", "L3", "L1", "L9")
UNBILLED_RULE = {
    "recurring": "L10",
    "fixed_fee": "L10",
    "overage": "L2",
    "time_and_materials": "L2",
    "usage": "L3",
    "milestone": "L1",
    "usage_minimum": "L9",
}
ONCE_KINDS = ("recurring", "fixed_fee", "milestone")  # a second invoice line for one key is a double bill
PRICED_BY_RATE = ("time_and_materials", "overage", "usage")


@dataclass(frozen=True)
class Owed:
    """What the contract says for one obligation (the shadow run's lines, summed per key)."""

    key: str
    contract_id: int
    contract_number: str
    customer: str
    kind: str
    line_ref: str
    description: str
    currency: str
    amount: Decimal
    quantity: Decimal = ZERO
    unit_amount: Decimal = ZERO
    period_start: date | None = None
    period_end: date | None = None
    on: date | None = None
    terms: str = ""  # which version and rate, for the evidence


@dataclass(frozen=True)
class Invoiced:
    """One line of an imported invoice that was matched to an obligation."""

    key: str
    invoice: str
    row: int
    issue_date: date
    description: str
    currency: str
    quantity: Decimal
    unit_amount: Decimal | None
    gross: Decimal  # before the line's discount
    net: Decimal  # after it, without tax
    credit_note: bool = False

    @property
    def discount(self) -> Decimal:
        return self.gross - self.net

    @property
    def sign(self) -> int:
        return -1 if self.credit_note else 1


@dataclass(frozen=True)
class DiscountWindow:
    """A discount the contract grants (percentage of the covered amount, or fixed per period)."""

    contract_id: int
    kind: str  # percentage | fixed
    value: Decimal
    start: date
    end: date | None
    line_ref: str = ""  # "" = every line of the contract


@dataclass(frozen=True)
class InvoiceTerms:
    """An imported invoice against the terms of the contract version in force on its issue date."""

    contract_id: int
    contract_number: str
    customer: str
    invoice: str
    row: int
    issue_date: date
    currency: str
    total: Decimal
    payment_terms_days: int
    reference: str
    contract_terms_days: int
    contract_po: str
    po_required: bool


@dataclass
class Finding:
    rule: str
    contract_id: int
    contract_number: str
    customer: str
    amount: Decimal
    currency: str
    title: str
    period_start: date | None = None
    period_end: date | None = None
    key: str = ""
    evidence: list[dict] = field(default_factory=list)  # rows: {"source": "invoice"|"contract"|…, …}

    @property
    def sort_key(self) -> tuple:
        return (RULE_ORDER.index(self.rule), self.contract_number, self.period_start or date.min, self.key)


def _tolerance(currency: str, lines: int = 1) -> Decimal:
    """Rounding noise: one minor unit per line compared."""
    return Decimal(1).scaleb(-minor_units(currency)) * max(lines, 1)


def _period_text(owed: Owed) -> str:
    if owed.period_start is None:
        return ""
    if (
        owed.period_start.day == 1
        and owed.period_end
        and (owed.period_end.month, owed.period_end.year)
        == (
            owed.period_start.month,
            owed.period_start.year,
        )
    ):
        return owed.period_start.strftime(" for %b %Y")
    end = owed.period_end.isoformat() if owed.period_end else "…"
    return f" for {owed.period_start.isoformat()} – {end}"


def _contract_row(owed: Owed) -> dict:
    return {
        "source": "contract",
        "what": f"{owed.description}{_period_text(owed)}",
        "terms": owed.terms,
        "quantity": owed.quantity or None,
        "unit_amount": owed.unit_amount or None,
        "amount": owed.amount,
    }


def _invoice_row(line: Invoiced) -> dict:
    discount = quantize(line.discount * line.sign, line.currency)
    return {
        "source": "invoice",
        "invoice": line.invoice,
        "row": line.row,
        "issued": line.issue_date,
        "what": line.description,
        "quantity": line.quantity,
        "unit_amount": line.unit_amount,
        "discount": discount if discount else None,
        "amount": quantize(line.net * line.sign, line.currency),
    }


def expected_discount(owed: Owed, windows: list[DiscountWindow], *, billed_on: date | None = None) -> Decimal:
    """The discount the contract grants on one obligation: its windows' coverage of the period
    (``discounts.applicator.coverage``, the rule billing uses), percentage of the amount or the
    fixed amount per period, never more than the amount. A fee or milestone has no period: like
    billing, it is dated on the day it was invoiced (``billed_on``), else its own day."""
    total = ZERO
    day_start = owed.period_start or billed_on or owed.on
    day_end = owed.period_end or billed_on or owed.on
    if day_start is None or day_end is None:
        return ZERO
    for window in windows:
        if window.contract_id != owed.contract_id or (window.line_ref and window.line_ref != owed.line_ref):
            continue
        share = coverage(start=window.start, end=window.end, period_start=day_start, period_end=day_end)
        if share <= 0:
            continue
        if window.kind == "percentage":
            total += owed.amount * window.value / HUNDRED * share
        else:
            total += window.value * share
    return min(total, owed.amount)


def audit_compare(
    *,
    owed: list[Owed],
    invoiced: list[Invoiced],
    discounts: list[DiscountWindow] = (),
    invoice_terms: list[InvoiceTerms] = (),
) -> list[Finding]:
    """Every finding, in a stable order (rule, contract, period), so a re-run reports the same."""
    findings: list[Finding] = []
    billed_by_key: dict[str, list[Invoiced]] = defaultdict(list)
    for line in invoiced:
        billed_by_key[line.key].append(line)
    windows = list(discounts)
    for item in sorted(owed, key=lambda o: (o.contract_number, o.key)):
        lines = sorted(billed_by_key.get(item.key, []), key=lambda x: (x.issue_date, x.invoice, x.row))
        findings.extend(_compare_one(item, lines, windows))
    findings.extend(_terms_findings(invoice_terms))
    for finding in findings:
        finding.amount = quantize(finding.amount, finding.currency)
    findings = [f for f in findings if f.amount > 0]
    findings.sort(key=lambda f: f.sort_key)
    return findings


def _finding(rule: str, item: Owed, amount: Decimal, title: str, evidence: list[dict]) -> Finding:
    return Finding(
        rule=rule,
        contract_id=item.contract_id,
        contract_number=item.contract_number,
        customer=item.customer,
        amount=amount,
        currency=item.currency,
        title=title,
        period_start=item.period_start,
        period_end=item.period_end,
        key=item.key,
        evidence=evidence,
    )


def _compare_one(item: Owed, lines: list[Invoiced], windows: list[DiscountWindow]) -> list[Finding]:
    if item.amount <= 0 and not lines:
        return []
    what = f"{item.description}{_period_text(item)}"
    if not lines:
        rule = UNBILLED_RULE.get(item.kind, "L10")
        verb = {
            "L10": "never invoiced",
            "L2": "hours never billed",
            "L3": "usage never billed",
            "L1": "delivered, never invoiced",
            "L9": "minimum commitment top-up never invoiced",
        }[rule]
        return [_finding(rule, item, item.amount, f"{what}: {verb}", [_contract_row(item)])]
    findings: list[Finding] = []
    evidence = [_contract_row(item)] + [_invoice_row(line) for line in lines]
    gross = sum((line.gross * line.sign for line in lines), ZERO)
    tolerance = _tolerance(item.currency, len(lines) + 1)
    invoices = [line for line in lines if not line.credit_note]
    if (
        item.kind in ONCE_KINDS
        and len({(line.invoice, line.row) for line in invoices}) > 1
        and gross > item.amount + tolerance
    ):
        numbers = ", ".join(dict.fromkeys(line.invoice for line in invoices))
        findings.append(
            _finding("A1", item, gross - item.amount, f"{what}: billed more than once ({numbers})", evidence)
        )
    shortfall = item.amount - gross
    if shortfall > tolerance:
        if item.kind in PRICED_BY_RATE:
            findings.extend(_rate_or_quantity(item, lines, shortfall, what, evidence))
        else:
            findings.append(_finding("L6", item, shortfall, f"{what}: invoiced below the contract rate", evidence))
    deducted = sum((line.discount * line.sign for line in lines), ZERO)
    if deducted > tolerance:
        allowed = expected_discount(item, windows, billed_on=None if item.period_start else lines[0].issue_date)
        # Never more than the net still short of the contract once the rate shortfall is counted:
        # a "discount" that only brings a list price down to the contract's cap lost nothing.
        net = sum((line.net * line.sign for line in lines), ZERO)
        excess = min(deducted - allowed, item.amount - allowed - net - max(shortfall, ZERO))
        if excess > tolerance:
            title = (
                f"{what}: discount deducted after it ended"
                if allowed == 0
                else f"{what}: discount deducted beyond the one agreed"
            )
            rows = [
                *evidence,
                {"source": "contract", "what": "discount the contract allows for the period", "amount": allowed},
            ]
            findings.append(_finding("L4", item, excess, title, rows))
    return findings


def _rate_or_quantity(item: Owed, lines: list[Invoiced], shortfall: Decimal, what: str, evidence) -> list[Finding]:
    """Hours or usage invoiced short: at a lower price (L6) and/or fewer units (L2/L3)."""
    findings = []
    rate_gap = ZERO
    if item.unit_amount > 0:
        for line in lines:
            if line.unit_amount is not None and line.unit_amount < item.unit_amount and not line.credit_note:
                rate_gap += (item.unit_amount - line.unit_amount) * line.quantity
    rate_gap = min(rate_gap, shortfall)
    if rate_gap > _tolerance(item.currency):
        findings.append(_finding("L6", item, rate_gap, f"{what}: invoiced below the rate card", evidence))
    rest = shortfall - rate_gap
    if rest > _tolerance(item.currency, len(lines)):
        rule = UNBILLED_RULE[item.kind]
        noun = "usage" if rule == "L3" else "hours"
        findings.append(_finding(rule, item, rest, f"{what}: {noun} not all invoiced", evidence))
    return findings


def _terms_findings(terms: list[InvoiceTerms]) -> list[Finding]:
    findings = []
    for t in sorted(terms, key=lambda t: (t.contract_number, t.issue_date, t.invoice)):
        problems = []
        if t.payment_terms_days != t.contract_terms_days:
            problems.append(f"payment terms {t.payment_terms_days} days, contract says {t.contract_terms_days}")
        if t.contract_po and t.contract_po.lower() not in (t.reference or "").lower():
            problems.append(f"PO {t.contract_po} missing from the reference (“{t.reference}”)")
        elif t.po_required and not t.contract_po:
            problems.append("the contract requires a PO and has none on record")
        if not problems:
            continue
        findings.append(
            Finding(
                rule="L8",
                contract_id=t.contract_id,
                contract_number=t.contract_number,
                customer=t.customer,
                amount=t.total,
                currency=t.currency,
                title=f"Invoice {t.invoice}: " + "; ".join(problems),
                period_start=t.issue_date,
                key=f"terms:{t.invoice}",
                evidence=[
                    {
                        "source": "invoice",
                        "invoice": t.invoice,
                        "row": t.row,
                        "issued": t.issue_date,
                        "what": f"net {t.payment_terms_days} days, reference “{t.reference}”",
                        "amount": t.total,
                    },
                    {
                        "source": "contract",
                        "what": f"net {t.contract_terms_days} days"
                        + (f", PO {t.contract_po}" if t.contract_po else ""),
                        "amount": None,
                    },
                ],
            )
        )
    return findings
