"""Pre-send checks: what must hold before an invoice leaves (DESIGN.md §4).

``invoice_presend_problems`` is the single hook: issuing (automatic or by finance) calls it and
holds the invoice as a draft when it returns anything. Each check is a small function of the
invoice returning human-readable problems that say how to fix them; an empty list means it passes.

"The contract" here is the version in force at the invoice's reference date: the start of its
first billed period (DESIGN.md §3: billing for a period uses the version in force at its start),
or its billing date when no line has a period (fixed fees, milestones). The contract's versions
are loaded once per invoice and shared by the checks (``_versions``).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date
from decimal import Decimal

from billing.models import Invoice, InvoiceLineKind
from contracts.models import IssuingEntity
from discounts.models import ExceptionStatus, PriceOverride
from discounts.services.checks import invoice_discount_problems
from revexos.money import format_money, quantize

PresendCheck = Callable[[Invoice], list[str]]
ZERO = Decimal("0")


# --------------------------------------------------------------------------- shared loading


def _lines(invoice: Invoice) -> list:
    cached = getattr(invoice, "_presend_lines", None)
    if cached is None:
        cached = list(invoice.lines.order_by("position", "id"))
        invoice._presend_lines = cached
    return cached


def _versions(invoice: Invoice) -> list:
    """Every version of the invoice's contract with its price lines and rates, oldest first."""
    cached = getattr(invoice, "_presend_versions", None)
    if cached is None:
        from billing.selectors import contract_versions_many

        cached = contract_versions_many(contract_ids=[invoice.contract_id]).get(invoice.contract_id, [])
        invoice._presend_versions = cached
    return cached


def _overrides(invoice: Invoice) -> list[tuple]:
    """The contract's custom rates (price overrides, not revoked), newest first:
    (line_ref, role, start, end, rate). One query per invoice, or preloaded by a billing run."""
    cached = getattr(invoice, "_presend_overrides", None)
    if cached is None:
        cached = list(
            PriceOverride.objects.filter(contract_id=invoice.contract_id)
            .exclude(status=ExceptionStatus.REVOKED)
            .order_by("-created_at", "-id")
            .values_list("line_ref", "role", "start_date", "end_date", "rate")
        )
        invoice._presend_overrides = cached
    return cached


def invoice_reference_date(invoice: Invoice) -> date:
    """The date whose terms govern the invoice: its first period start, else its billing date."""
    starts = [line.period_start for line in _lines(invoice) if line.period_start]
    return min(starts) if starts else invoice.billing_date


def invoice_terms_version(invoice: Invoice):
    """The contract version in force at the invoice's reference date (None: the contract has no terms)."""
    from revexos.schedule import version_in_force

    return version_in_force(_versions(invoice), invoice_reference_date(invoice))


def _fmt(amount: Decimal, currency: str) -> str:
    return f"{format_money(amount, currency)} {currency}"


# --------------------------------------------------------------------------- the checks


def check_po_number(invoice: Invoice) -> list[str]:
    version = invoice_terms_version(invoice) or invoice.version
    if version.po_required and not (invoice.po_number or "").strip():
        return [
            f"Contract {invoice.contract.number} requires a PO number and none is on its terms: add the PO number "
            "to the contract (an amendment in force for this invoice's period) or record it on the draft, then approve it."
        ]
    return []


def check_terms_match_contract(invoice: Invoice) -> list[str]:
    """Payment terms, currency and issuing entity as in the contract version in force."""
    version = invoice_terms_version(invoice)
    if version is None:
        return [f"Contract {invoice.contract.number} has no terms (no version); it cannot be invoiced."]
    number, when = invoice.contract.number, invoice_reference_date(invoice)
    problems = []
    if invoice.payment_terms_days != version.payment_terms_days:
        problems.append(
            f"Payment terms are net {invoice.payment_terms_days} days but contract {number} (version {version.version}, "
            f"in force on {when:%-d %b %Y}) says net {version.payment_terms_days}: approve the draft again to take the "
            "contract's terms, or amend the contract if the invoice is right."
        )
    if invoice.currency != version.currency:
        problems.append(
            f"The invoice is in {invoice.currency} but contract {number} (version {version.version}) bills in "
            f"{version.currency}: the lines were priced in the wrong currency; re-run billing after fixing the contract."
        )
    expected_entity = version.issuing_entity_id_for(invoice.contract)
    if invoice.issuing_entity_id != expected_entity:
        expected_name = IssuingEntity.objects.filter(pk=expected_entity).values_list("legal_name", flat=True).first()
        problems.append(
            f"The invoice is issued by {invoice.issuing_entity.legal_name} but contract {number} (version "
            f"{version.version}) names {expected_name}: approve the draft again to take the contract's issuing entity."
        )
    return problems


def _rate_override(invoice: Invoice, *, line_ref: str, role: str | None, on: date) -> Decimal | None:
    """The custom rate (the newest price override in force) for a line on a day, as billing prices it."""
    for ref, row_role, start, end, rate in _overrides(invoice):
        if ref == line_ref and row_role == (role or "") and start <= on <= end:
            return rate
    return None


def _rate_overrides_in(invoice: Invoice, *, line_ref: str, role: str | None, start: date, end: date) -> list[Decimal]:
    """Custom rates in force on any day of ``[start, end]``: hourly lines are priced per work date."""
    rates: list[Decimal] = []
    for ref, row_role, first, last, rate in _overrides(invoice):
        if ref == line_ref and row_role == (role or "") and first <= end and last >= start and rate not in rates:
            rates.append(rate)
    return rates


def _line_in(version, line_ref: str):
    return next((p for p in version.price_lines.all() if p.line_ref == line_ref), None) if version else None


def _expected_rates(invoice: Invoice, line, version) -> list[Decimal]:
    """The unit amounts the contract allows for ``line`` (contract rate and, where one is active, the override)."""
    contract_line = _line_in(version, line.line_ref)
    if contract_line is None:
        return []
    currency, on = invoice.currency, line.period_start or invoice_reference_date(invoice)
    kind = line.kind

    def with_override(rate: Decimal | None, role: str | None = None) -> list[Decimal]:
        rates = [rate] if rate is not None else []
        override = _rate_override(invoice, line_ref=line.line_ref, role=role, on=on)
        if override is not None:
            rates.append(override)
        return rates

    if kind == InvoiceLineKind.RECURRING:
        source = line.source or {}
        days, period_days = int(source.get("days") or 1), int(source.get("period_days") or 1)
        return [quantize(rate * days / period_days, currency) for rate in with_override(contract_line.amount)]
    if kind == InvoiceLineKind.OVERAGE:
        return with_override(contract_line.overage_rate)
    if kind == InvoiceLineKind.FIXED_FEE:
        return [quantize(contract_line.amount, currency)]
    if kind == InvoiceLineKind.MILESTONE:
        if contract_line.amount is not None:
            return [quantize(contract_line.amount, currency)]
        fixed_total = sum((p.amount or ZERO for p in version.price_lines.all() if p.kind == "fixed_fee"), ZERO)
        return [quantize(fixed_total * (contract_line.percent_of_fixed_fee or ZERO) / Decimal(100), currency)]
    if kind == InvoiceLineKind.TIME_AND_MATERIALS:
        role = (line.source or {}).get("role", "")
        rate = next((r.hourly_rate for r in contract_line.rates.all() if r.role == role), None)
        rates = with_override(rate, role)
        # A T&M line may bill hours at an override that was active on some work dates of the period only.
        if line.period_start and line.period_end:
            rates.extend(
                _rate_overrides_in(
                    invoice, line_ref=line.line_ref, role=role, start=line.period_start, end=line.period_end
                )
            )
        return rates
    if kind == InvoiceLineKind.USAGE and contract_line.charge_model == "per_unit":
        return with_override(contract_line.unit_amount)
    return []  # tiered usage and minimum top-ups have no single unit rate to compare


_RATE_CHECKED = {
    InvoiceLineKind.RECURRING,
    InvoiceLineKind.OVERAGE,
    InvoiceLineKind.FIXED_FEE,
    InvoiceLineKind.MILESTONE,
    InvoiceLineKind.TIME_AND_MATERIALS,
}


def check_rates_match_contract(invoice: Invoice) -> list[str]:
    """Each line's unit amount equals the contract's rate for its price line (or role), or an active override."""
    from revexos.schedule import version_in_force

    versions = _versions(invoice)
    problems = []
    for line in _lines(invoice):
        if not line.line_ref:
            continue
        per_unit_usage = line.kind == InvoiceLineKind.USAGE
        if line.kind not in _RATE_CHECKED and not per_unit_usage:
            continue
        on = line.period_start or invoice_reference_date(invoice)
        version = version_in_force(versions, on)
        contract_line = _line_in(version, line.line_ref)
        if contract_line is None:
            problems.append(
                f"“{line.description}” bills price line {line.line_ref}, which contract {invoice.contract.number} "
                f"(version {version.version if version else '?'}) does not have on {on:%-d %b %Y}: check the contract's lines."
            )
            continue
        if per_unit_usage and contract_line.charge_model != "per_unit":
            continue
        expected = _expected_rates(invoice, line, version)
        if not expected:
            if line.kind == InvoiceLineKind.TIME_AND_MATERIALS:
                problems.append(
                    f"“{line.description}” bills role {(line.source or {}).get('role', '?')}, which has no rate on the "
                    f"contract's rate card: add the role with an amendment."
                )
            continue
        if line.unit_amount not in expected:
            problems.append(
                f"“{line.description}” is billed at {_fmt(line.unit_amount, invoice.currency)} but the contract's rate "
                f"(version {version.version}, {on:%-d %b %Y}) is {_fmt(expected[0], invoice.currency)}: correct the contract "
                "or add a price override, then re-run billing for this period."
            )
    return problems


def check_discounts_in_window(invoice: Invoice) -> list[str]:
    return invoice_discount_problems(invoice)


def check_bill_to_email(invoice: Invoice) -> list[str]:
    emails = [e.strip() for e in (invoice.customer.billing_emails or []) if e and e.strip()]
    if not emails:
        return [
            f"Customer {invoice.customer.legal_name} has no billing e-mail, so the invoice cannot be sent: "
            "add one on the customer, then approve the draft."
        ]
    return []


def check_tax_rate_found(invoice: Invoice) -> list[str]:
    """Every line has a tax rate in force on the issue date (DESIGN.md §4): the totals function
    records the missing ones, each naming the country and the category."""
    from revexos.tax import MISSING_RATE

    if invoice.tax_treatment == MISSING_RATE:
        return [p for p in (invoice.tax_note or "").split("\n") if p.strip()]
    return []


PRESEND_CHECKS: list[PresendCheck] = [
    check_po_number,
    check_terms_match_contract,
    check_rates_match_contract,
    check_discounts_in_window,
    check_bill_to_email,
    check_tax_rate_found,
]


def invoice_presend_problems(invoice: Invoice) -> list[str]:
    """Every reason ``invoice`` may not be issued or sent; empty when it may."""
    problems: list[str] = []
    for check in PRESEND_CHECKS:
        problems.extend(check(invoice))
    return problems
