"""Which contract, price line and billing period an invoice of another system billed (pure).

The rules, in order (issue #14):

1. **The contract** — a contract number written in the invoice's reference (Xero ``Reference``,
   QuickBooks ``Memo``) or in a line's description; else a PO number of the contract in the
   reference; else the customer (the contact name is the customer's legal name, its accounting id
   or its external id, compared without case, punctuation or "Ltd"/"Inc") and, among that
   customer's contracts running on the invoice date, the one whose price lines the descriptions
   name best. Else the invoice is left unmatched and listed.
2. **The price line** — the line of the contract whose description, milestone reference, metric
   or rate-card roles the invoice line's description shares most words with.
3. **The period** — a month ("Feb 2026", "February 2026", "2026-02"), quarter ("Q1 2026") or date
   range written in the description; else the line's service date; else the invoice date: billing
   in advance bills the period the invoice date falls in, in arrears the last period that had
   closed by then (a few days' grace for invoices dated on the last day).

A matched line gets an ``obligation_key`` (:func:`obligation_key`) naming what it billed —
``recurring:<contract>:<ref>:<period start>``, ``milestone:<contract>:<ref>`` … — the obligation the
billing engine keys its invoice lines on, at the grain of one price line and period (the engine's
keys also carry fact ids and roles; the audit compares per period). Two external lines with one
key billed the obligation twice.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date, timedelta

from billing.history_formats import _MONTHS, parse_date
from revexos.schedule import LinePeriod, line_periods

ARREARS_GRACE = timedelta(days=5)
_WORD_RE = re.compile(r"[a-z0-9]+")
_SUFFIXES = {
    "ltd",
    "limited",
    "inc",
    "incorporated",
    "llc",
    "plc",
    "gmbh",
    "ag",
    "sa",
    "sas",
    "bv",
    "pty",
    "co",
    "corp",
    "corporation",
    "company",
    "the",
    "llp",
}
# Words that say nothing about which obligation a line is ("Monthly retainer February 2026").
_STOP = {
    "for",
    "of",
    "and",
    "the",
    "a",
    "an",
    "to",
    "in",
    "on",
    "per",
    "fee",
    "fees",
    "services",
    "service",
    "monthly",
    "month",
    "invoice",
    "period",
    "q1",
    "q2",
    "q3",
    "q4",
    "h",
    "hours",
    "hrs",
    "x",
    *_MONTHS,
}
_MONTH_YEAR_RE = re.compile(r"\b([A-Za-z]{3,9})\.?[ -](\d{4})\b")
_YEAR_MONTH_RE = re.compile(r"\b(\d{4})-(\d{2})\b(?!-\d)")
_QUARTER_RE = re.compile(r"\bQ([1-4])[ -]?(\d{4})\b", re.IGNORECASE)
_DATE_TOKEN = r"(\d{4}-\d{1,2}-\d{1,2}|\d{1,2}[/.]\d{1,2}[/.]\d{4}|\d{1,2} [A-Za-z]{3,9}\.? \d{4})"
_RANGE_RE = re.compile(_DATE_TOKEN + r"\s*(?:-|–|—|to|until)\s*" + _DATE_TOKEN)
_SINGLE_DATE_RE = re.compile(_DATE_TOKEN)


def name_key(name: str) -> str:
    """A company name compared loosely: 'Acme Ltd.' == 'ACME limited' == 'acme'."""
    words = [w for w in _WORD_RE.findall((name or "").lower()) if w not in _SUFFIXES]
    return " ".join(words)


def words(text: str) -> set[str]:
    return {w for w in _WORD_RE.findall((text or "").lower()) if w not in _STOP and not w.isdigit()}


def obligation_key(kind: str, contract_id: int, line_ref: str, period_start: date | None) -> str:
    """One obligation at the grain of a price line and period: the same for what the contract says
    (the billing engine's lines, whatever their fact ids) and what another system invoiced."""
    if kind in ("milestone", "fixed_fee") or period_start is None:
        return f"{kind}:{contract_id}:{line_ref}"
    return f"{kind}:{contract_id}:{line_ref}:{period_start.isoformat()}"


# --------------------------------------------------------------------------- contract terms


@dataclass(frozen=True)
class TermsLine:
    """What the matcher knows of one price line (by ``line_ref``, across versions)."""

    line_ref: str
    kind: str
    description: str
    timing: str = ""
    reference: str = ""
    metric: str = ""
    roles: tuple[str, ...] = ()

    def vocabulary(self) -> set[str]:
        found = words(self.description) | words(self.metric.replace("_", " ")) | words(" ".join(self.roles))
        if self.reference:
            found.add(self.reference.lower())
        return found


@dataclass
class ContractTerms:
    id: int
    number: str
    customer_id: int
    start: date
    end: date | None
    versions: Sequence  # ContractVersion rows with price lines, oldest first
    po_numbers: set[str] = field(default_factory=set)
    lines: list[TermsLine] = field(default_factory=list)

    def runs_on(self, day: date) -> bool:
        return self.start <= day and (self.end is None or day <= self.end)

    def periods(self, line: TermsLine, until: date) -> list[LinePeriod]:
        return line_periods(
            contract_start=self.start,
            contract_end=self.end,
            versions=self.versions,
            line_ref=line.line_ref,
            kind=line.kind,
            until=until,
        )


def contract_terms(contract, versions: Sequence) -> ContractTerms:
    """The matcher's view of a contract from its rows (versions with price lines and rates loaded)."""
    lines: dict[str, TermsLine] = {}
    pos: set[str] = set()
    for version in versions:
        if version.po_number:
            pos.add(version.po_number)
        for line in version.price_lines.all():
            roles = tuple(r.role for r in line.rates.all()) if line.kind == "time_and_materials" else ()
            lines[line.line_ref] = TermsLine(
                line_ref=line.line_ref,
                kind=line.kind,
                description=line.description,
                timing=line.timing or "",
                reference=line.reference or "",
                metric=line.metric or "",
                roles=roles,
            )
    return ContractTerms(
        id=contract.pk,
        number=contract.number,
        customer_id=contract.customer_id,
        start=contract.start_date,
        end=contract.end_date,
        versions=list(versions),
        po_numbers=pos,
        lines=list(lines.values()),
    )


# --------------------------------------------------------------------------- invoices → contracts


@dataclass
class Directory:
    """Every contract and customer the matcher may pick, indexed once per import."""

    contracts: list[ContractTerms]
    customers: dict[str, int]  # name_key / accounting id / external id (lower) → customer id

    def __post_init__(self) -> None:
        self.by_number = {c.number.lower(): c for c in self.contracts}
        self.by_po: dict[str, list[ContractTerms]] = {}
        for c in self.contracts:
            for po in c.po_numbers:
                self.by_po.setdefault(po.lower(), []).append(c)
        self.by_customer: dict[int, list[ContractTerms]] = {}
        for c in self.contracts:
            self.by_customer.setdefault(c.customer_id, []).append(c)
        # Longest first, so "C-10010" is found before "C-1001".
        self._numbers = sorted(self.by_number, key=len, reverse=True)
        self._pos = sorted(self.by_po, key=len, reverse=True)

    def customer_for(self, contact: str) -> int | None:
        for key in (contact.strip().lower(), name_key(contact)):
            if key and key in self.customers:
                return self.customers[key]
        return None

    def _token_in(self, token: str, text: str) -> bool:
        return re.search(r"(?<![A-Za-z0-9])" + re.escape(token) + r"(?![A-Za-z0-9])", text, re.IGNORECASE) is not None

    def number_in(self, text: str) -> ContractTerms | None:
        for number in self._numbers:
            if number and self._token_in(number, text):
                return self.by_number[number]
        return None

    def po_in(self, text: str) -> list[ContractTerms]:
        for po in self._pos:
            if po and self._token_in(po, text):
                return self.by_po[po]
        return []


@dataclass
class InvoiceMatch:
    contract: ContractTerms | None
    customer_id: int | None
    method: str  # contract_number | po_number | customer | unmatched
    note: str = ""


def invoice_match(
    *, contact: str, reference: str, descriptions: Iterable[str], issue_date: date, directory: Directory
) -> InvoiceMatch:
    customer_id = directory.customer_for(contact)
    descriptions = list(descriptions)
    if reference and (found := directory.number_in(reference)):
        return InvoiceMatch(found, found.customer_id, "contract_number", f"{found.number} in the reference")
    for text in descriptions:
        if found := directory.number_in(text):
            return InvoiceMatch(found, found.customer_id, "contract_number", f"{found.number} in a line description")
    if reference:
        by_po = directory.po_in(reference)
        if customer_id is not None and len(by_po) > 1:
            by_po = [c for c in by_po if c.customer_id == customer_id] or by_po
        if len(by_po) == 1:
            return InvoiceMatch(by_po[0], by_po[0].customer_id, "po_number", "PO number in the reference")
    if customer_id is None:
        return InvoiceMatch(None, None, "unmatched", f"No customer is named “{contact}”.")
    candidates = directory.by_customer.get(customer_id, [])
    running = [c for c in candidates if c.runs_on(issue_date)] or [
        c for c in candidates if c.runs_on(issue_date - timedelta(days=31))
    ]
    if not running:
        return InvoiceMatch(None, customer_id, "unmatched", "The customer has no contract running on the invoice date.")
    if len(running) == 1:
        return InvoiceMatch(running[0], customer_id, "customer", "the customer's contract running on the invoice date")
    text = words(" ".join(descriptions))
    scored = sorted(
        ((max((len(text & line.vocabulary()) for line in c.lines), default=0), c) for c in running),
        key=lambda pair: -pair[0],
    )
    if scored[0][0] > 0 and (len(scored) == 1 or scored[0][0] > scored[1][0]):
        return InvoiceMatch(
            scored[0][1], customer_id, "customer", "the customer's contract whose lines the invoice names"
        )
    return InvoiceMatch(
        None,
        customer_id,
        "unmatched",
        f"The customer has {len(running)} contracts running on the invoice date and the lines do not say which.",
    )


# --------------------------------------------------------------------------- lines → price line and period


@dataclass
class LineMatch:
    line_ref: str = ""
    kind: str = ""
    period_start: date | None = None
    period_end: date | None = None
    obligation_key: str = ""
    note: str = ""


def description_day(text: str, order: str | None) -> tuple[date, str] | None:
    """(a day inside the period the description names, 'range' | 'month' | 'quarter' | 'date')."""
    if m := _RANGE_RE.search(text):
        try:
            return parse_date(m.group(1), order), "range"
        except ValueError:
            pass
    if m := _QUARTER_RE.search(text):
        return date(int(m.group(2)), (int(m.group(1)) - 1) * 3 + 1, 1), "quarter"
    for m in _MONTH_YEAR_RE.finditer(text):
        month = _MONTHS.get(m.group(1).lower())
        if month:
            return date(int(m.group(2)), month, 1), "month"
    if m := _YEAR_MONTH_RE.search(text):
        month = int(m.group(2))
        if 1 <= month <= 12:
            return date(int(m.group(1)), month, 1), "month"
    if m := _SINGLE_DATE_RE.search(text):
        try:
            return parse_date(m.group(1), order), "date"
        except ValueError:
            return None
    return None


def _best_line(description: str, contract: ContractTerms) -> TermsLine | None:
    text = words(description)
    lowered = description.lower()
    best, best_score, tie = None, 0, False
    for line in contract.lines:
        score = len(text & line.vocabulary())
        if line.reference and line.reference.lower() in lowered:
            score += 10  # a milestone's project key names it outright
        if score > best_score:
            best, best_score, tie = line, score, False
        elif score == best_score and score > 0:
            tie = True
    if best is not None and not tie:
        return best
    recurring = [line for line in contract.lines if line.kind == "recurring"]
    if best is None and len(contract.lines) == 1:
        return contract.lines[0]
    if best is None and len(recurring) == 1 and not any(w in text for w in ("milestone", "hours", "usage")):
        return recurring[0]
    return None


def _period_for(periods: list[LinePeriod], day: date, how: str, *, timing: str, issue_date: date) -> LinePeriod | None:
    if how == "invoice_date" and timing != "advance":
        # In arrears: the last period that had closed when the invoice was raised.
        closed = [lp for lp in periods if lp.period.end <= issue_date + ARREARS_GRACE and lp.period.start <= issue_date]
        return closed[-1] if closed else None
    if how in ("month", "quarter"):
        for lp in periods:
            if lp.period.start.year == day.year and lp.period.start.month == day.month:
                return lp
    for lp in periods:
        if lp.period.contains(day):
            return lp
    return None


def line_match(
    *,
    description: str,
    service_date: date | None,
    issue_date: date,
    contract: ContractTerms,
    order: str | None,
    milestone_ids: dict[str, int] | None = None,
) -> LineMatch:
    line = _best_line(description, contract)
    if line is None:
        return LineMatch(note=f"No price line of {contract.number} matches “{description[:80]}”.")
    match = LineMatch(line_ref=line.line_ref, kind=line.kind)
    if line.kind in ("milestone", "fixed_fee"):
        match.obligation_key = obligation_key(line.kind, contract.id, line.line_ref, None)
        match.note = f"{line.kind.replace('_', ' ')} {line.line_ref} ({line.description})"
        return match
    found = description_day(description, order)
    if found is not None:
        day, how = found
    elif service_date is not None:
        day, how = service_date, "date"
    else:
        day, how = issue_date, "invoice_date"
    until = max(day, issue_date) + timedelta(days=400)
    periods = contract.periods(line, until)
    lp = _period_for(
        periods, day, how, timing=line.timing if line.kind == "recurring" else "arrears", issue_date=issue_date
    )
    if lp is None:
        match.note = f"{line.description}: no billing period of {contract.number} contains {day.isoformat()}."
        return match
    match.period_start, match.period_end = lp.period.start, lp.period.end
    lowered = description.lower()
    if line.kind == "recurring" and "overage" in lowered:
        match.kind = "overage"  # hours over the retainer's included hours: their own obligation
    elif line.kind == "usage" and "minimum" in lowered:
        match.kind = "usage_minimum"
    match.obligation_key = obligation_key(match.kind, contract.id, line.line_ref, lp.period.start)
    source = {
        "range": "dates in the description",
        "month": "month in the description",
        "quarter": "quarter in the description",
        "date": "date in the line",
        "invoice_date": "invoice date",
    }[how]
    match.note = (
        f"{line.description} {lp.period.start.isoformat()}–{lp.period.end.isoformat()} (period from the {source})"
    )
    return match
