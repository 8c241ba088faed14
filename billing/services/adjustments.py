"""Discounts, tax and credits on invoices: billing's side of ``discounts/applicator.py``.

Billing applies what the discounts module defines; the discounts module never reads invoices:

- ``invoice_amounts`` is THE totals of an invoice from its lines, in DESIGN.md §4's order. Both
  ways of making invoices call it — one draft at a time (``invoice_adjustments_apply``) and a
  billing run's chunk (``billing/services/bulk.py``) — so a rule added here holds for both.
- ``invoice_adjustments_apply(invoice=…)`` when a draft's lines are stored: discount rows and the
  draft's subtotal / discount_total / tax / total / amount_due. Safe to call again on a draft (it
  recomputes from scratch), refused once the invoice is issued (the database would refuse anyway).
- ``invoice_credits_apply(invoice=…)`` inside the issuing transaction, before the row turns into
  an issued invoice: locks the customer's usable credits, reduces the amount due and the balances.
- ``invoice_discounts_reapply_for(discount=…)`` recomputes the drafts a changed discount touches;
  registered with ``discounts.hooks.on_discount_changed`` in ``billing.apps``.

Which discounts cover an invoice, and how many cycles they used, are discount reads
(``discounts.selectors``); a discount that used its last cycle expires through
``discounts.services.lifecycle.discounts_used_up_expire``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from decimal import Decimal

from django.db.models import Q

from billing.models import Invoice, InvoiceStatus
from contracts.services.tax import invoice_tax_compute, tax_lines_to_json
from discounts import applicator
from discounts.models import (
    Credit,
    CreditApplication,
    CreditStatus,
    Discount,
    DiscountApplication,
    EventAction,
    ExceptionEvent,
)
from discounts.selectors import cycles_used, discount_terms, discounts_for_invoice
from discounts.services.lifecycle import discounts_used_up_expire
from revexos.money import quantize
from revexos.tax import TaxResult

ZERO = Decimal("0")


def _applicator_lines(invoice, lines) -> list[applicator.Line]:
    # Keyed by position: a billing run prices lines before they are stored (no pk yet).
    return [
        applicator.Line(
            key=index,
            amount=quantize(line.amount, invoice.currency),
            line_ref=line.line_ref,
            period_start=line.period_start,
            period_end=line.period_end,
            contract_id=invoice.contract_id,
        )
        for index, line in enumerate(lines)
    ]


def invoice_amounts(
    *,
    invoice,
    lines,
    discounts: list[Discount],
    used: dict[int, set[str]],
    tax_date: date | None = None,
    tax_rates=None,
    tax_categories: dict[int, str] | None = None,
):
    """THE totals of an invoice from its lines, in DESIGN.md §4's order: line amounts → line-scoped
    discounts → invoice-scoped discounts → tax. Both ways of making invoices call it — one draft
    at a time (``invoice_adjustments_apply``) and a billing run's chunk (``billing/services/bulk.py``)
    — so a rule added here (tax) holds for both. ``discounts`` are the ones covering the invoice,
    oldest first; ``used`` their billing cycles used by other invoices. Pure: nothing is stored.
    Returns the applicator's ``InvoiceAmounts`` (subtotal, discount_total, tax_total, total and the
    applications, whose ``line_key`` is the line's position in ``lines``).
    """
    amounts = applicator.apply_discounts(
        lines=_applicator_lines(invoice, lines),
        discounts=[discount_terms(d, used.get(d.pk, set())) for d in discounts],
        currency=invoice.currency,
        billing_date=invoice.billing_date,
        tax_total=ZERO,
    )
    # Tax per rate on the discounted lines, for the day the invoice is issued (revexos/tax.py).
    tax = invoice_tax_compute(
        entity=invoice.issuing_entity,
        customer=invoice.customer,
        # Keyed by the line's position on the invoice: the lines may not be stored yet (a run's chunk).
        lines=[
            (getattr(line, "position", index), line.price_line_id, amounts.net_by_line[index])
            for index, line in enumerate(lines)
        ],
        on=tax_date or invoice.issue_date or invoice.billing_date,
        currency=invoice.currency,
        rates=tax_rates,
        categories=tax_categories,
    )
    return InvoiceTotals(amounts=amounts, tax=tax)


@dataclass(frozen=True)
class InvoiceTotals:
    """The applicator's amounts with the tax added: reads like ``InvoiceAmounts`` (subtotal,
    discount_total, applications, …), with ``tax_total`` and ``total`` including the tax."""

    amounts: applicator.InvoiceAmounts
    tax: TaxResult

    @property
    def tax_total(self) -> Decimal:
        return self.tax.tax_total

    @property
    def total(self) -> Decimal:
        return self.amounts.total + self.tax.tax_total

    def __getattr__(self, name: str):
        return getattr(self.amounts, name)


def discount_application_rows(*, invoice, lines, result) -> list[DiscountApplication]:
    """The DiscountApplication rows of ``result`` (unsaved; the lines must be stored to save them)."""
    return [
        DiscountApplication(
            discount_id=a.discount_id,
            invoice=invoice,
            invoice_line=lines[a.line_key],
            amount=a.amount,
            cycle_key=a.cycle_key,
            coverage=a.coverage.quantize(Decimal("0.000001")),
            stage=a.stage,
        )
        for a in result.applications
    ]


def invoice_amounts_set(invoice, result) -> None:
    invoice.subtotal = result.subtotal
    invoice.discount_total = result.discount_total
    invoice.tax_total = result.tax_total
    invoice.total = result.total
    invoice.amount_due = max(result.total - invoice.credit_applied, ZERO)
    invoice.tax_treatment = result.tax.treatment
    invoice.tax_lines = tax_lines_to_json(result.tax)
    invoice.tax_note = "\n".join(result.tax.problems) if result.tax.problems else result.tax.mention


def invoice_adjustments_apply(*, invoice, lines=None, tax_date: date | None = None, tax_rates=None):
    """Apply the discounts in force to a draft invoice and set its totals, tax included (DESIGN.md §4
    order). ``tax_date`` is the day it will be issued (default: its billing date).

    The one place a draft's totals are computed. Call inside the transaction that stores the draft;
    ``tax_date`` is the day the invoice will be issued (default: its billing date) and decides which
    rates are in force. ``tax_rates`` may be preloaded by callers pricing many invoices.
    """
    if invoice.status != InvoiceStatus.DRAFT:
        raise ValueError(f"Invoice {invoice.number} is {invoice.status}; discounts are applied to drafts only.")
    lines = list(invoice.lines.all()) if lines is None else list(lines)
    DiscountApplication.objects.filter(invoice=invoice).delete()
    discounts = discounts_for_invoice(invoice=invoice, lines=lines, lock=True)
    used = cycles_used(discount_ids=[d.pk for d in discounts], exclude_invoice_id=invoice.pk)
    result = invoice_amounts(
        invoice=invoice, lines=lines, discounts=discounts, used=used, tax_date=tax_date, tax_rates=tax_rates
    )
    DiscountApplication.objects.bulk_create(discount_application_rows(invoice=invoice, lines=lines, result=result))
    invoice_amounts_set(invoice, result)
    invoice.save(
        update_fields=[
            "subtotal",
            "discount_total",
            "tax_total",
            "total",
            "amount_due",
            "tax_treatment",
            "tax_lines",
            "tax_note",
        ]
    )
    discounts_used_up_expire(discounts=discounts, used=used, result=result, invoice=invoice)
    return invoice


def invoice_discounts_reapply_for(*, discount: Discount) -> int:
    """Recompute the drafts a discount touches (after a revoke or an extension); issued ones stay."""
    scope = Q(contract_id=discount.contract_id) if discount.contract_id else Q(customer_id=discount.customer_id)
    drafts = Invoice.objects.select_for_update(of=("self",)).filter(scope, status=InvoiceStatus.DRAFT)
    count = 0
    for invoice in drafts:
        invoice_adjustments_apply(invoice=invoice)
        count += 1
    return count


# --------------------------------------------------------------------------- credits


def pin_tokens(invoice) -> set[str]:
    """The names a credit may pin an invoice by: its number, and ``<contract>@<YYYY-MM>`` of its billing month."""
    tokens = {f"{invoice.contract.number}@{invoice.billing_date:%Y-%m}"}
    if invoice.number:
        tokens.add(invoice.number)
    return tokens


def invoice_credits_apply(*, invoice, on: date | None = None) -> Decimal:
    """Use the customer's credits on ``invoice`` in its issuing transaction; returns the amount applied.

    Called by ``billing.services.invoicing._issue`` after the number is assigned and before the
    invoice row becomes issued; writes credit_applied and amount_due while the row is a draft.
    """
    day = on or invoice.issue_date or invoice.billing_date
    due = quantize(invoice.total - invoice.credit_applied, invoice.currency)
    if due <= 0:
        return ZERO
    tokens = pin_tokens(invoice)
    candidates = list(
        Credit.objects.select_for_update(of=("self",))
        .filter(customer_id=invoice.customer_id, currency=invoice.currency, status=CreditStatus.ACTIVE, balance__gt=0)
        .filter(Q(contract__isnull=True) | Q(contract_id=invoice.contract_id))
        .filter(Q(expires_on__isnull=True) | Q(expires_on__gte=day))
        .order_by("id")
    )
    usable = [c for c in candidates if not c.pinned_invoices or tokens & set(c.pinned_invoices)]
    result = applicator.apply_credits(
        amount_due=due,
        currency=invoice.currency,
        on=day,
        credits=[
            applicator.CreditBalance(
                id=c.pk, balance=c.balance, currency=c.currency, expires_on=c.expires_on, pinned=bool(c.pinned_invoices)
            )
            for c in usable
        ],
    )
    if not result.applications:
        return ZERO
    by_id = {c.pk: c for c in usable}
    for applied in result.applications:
        credit = by_id[applied.credit_id]
        CreditApplication.objects.create(credit=credit, invoice=invoice, amount=applied.amount, applied_on=day)
        credit.balance = applied.balance_after
        fields = ["balance"]
        if credit.balance == 0:
            credit.status = CreditStatus.USED
            fields.append("status")
            ExceptionEvent.objects.create(
                credit=credit,
                action=EventAction.USED_UP,
                from_status=CreditStatus.ACTIVE,
                to_status=CreditStatus.USED,
                effective_on=day,
                actor_label="billing",
                reason=f"Balance used on invoice {invoice.number or invoice.pk}",
                detail={"invoice": invoice.pk},
            )
        credit.save(update_fields=fields)
    invoice.credit_applied = quantize(invoice.credit_applied + result.credit_applied, invoice.currency)
    invoice.amount_due = result.amount_due
    # A queryset update: the row is still a draft here, and only these two columns are written.
    Invoice.objects.filter(pk=invoice.pk).update(credit_applied=invoice.credit_applied, amount_due=invoice.amount_due)
    return result.credit_applied
