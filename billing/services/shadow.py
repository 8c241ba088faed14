"""Shadow billing: what a run as of a date would bill, computed by the engine itself, written nowhere.

One code path with the real run: a run loads contracts with ``triggers.contexts_load``, computes
with ``triggers.contract_obligations`` and then writes; the shadow does the first two and returns
the result as plain data. So the billing keys, amounts, periods, descriptions and line kinds here
are exactly the invoice lines the run would create from the same database state, and the review
tasks it would raise are listed instead of raised.

Uses: "what will this import bill?" previews (create the contracts inside a transaction, call
``billing_shadow``, roll back), the Q2C audit (``assume_unbilled=True``: what the contracts say
should have been billed from their start, to compare with another system's invoices), tests that
hold the run to its computation.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from types import SimpleNamespace

from billing.services.adjustments import invoice_amounts
from billing.services.invoicing import LineSpec, invoice_line_groups
from billing.services.triggers import BillingContext, ReviewTaskSpec, contexts_load, contract_obligations
from contracts.models import IssuingEntity
from discounts.selectors import cycles_used, discounts_for_invoice
from revexos.money import quantize

__all__ = ["ContractShadow", "Obligation", "ReviewTaskSpec", "ShadowInvoice", "ShadowRun", "billing_shadow"]

ZERO = Decimal("0")


@dataclass(frozen=True)
class Obligation:
    """One invoice line the run would create."""

    contract_id: int
    billing_key: str
    kind: str
    description: str
    quantity: Decimal
    unit_amount: Decimal
    amount: Decimal  # quantized to the currency, before discounts
    currency: str
    period_start: date | None
    period_end: date | None
    on: date  # the period start, else the fixed fee's bill date or the milestone's delivery day
    line_ref: str
    price_line_id: int | None
    milestone_id: int | None
    version_id: int
    source: dict


@dataclass(frozen=True)
class ShadowInvoice:
    """The obligations the run would put on one invoice (one per contract and set of terms)."""

    contract_id: int
    currency: str
    po_number: str
    payment_terms_days: int
    version_id: int
    lines: list[Obligation]
    subtotal: Decimal
    discount_total: Decimal
    total: Decimal  # subtotal − discounts + tax
    tax_total: Decimal = ZERO
    tax_treatment: str = ""


@dataclass
class ContractShadow:
    contract_id: int
    contract_number: str = ""
    skipped: str = ""  # why the contract is not billed at all ("draft", "starts 2026-08-01", "no terms")
    error: str = ""  # pricing raised: the run reports this contract as failed the same way
    obligations: list[Obligation] = field(default_factory=list)
    invoices: list[ShadowInvoice] = field(default_factory=list)
    review_tasks: list[ReviewTaskSpec] = field(default_factory=list)


@dataclass
class ShadowRun:
    as_of: date
    since: date | None
    assume_unbilled: bool
    contracts: dict[int, ContractShadow] = field(default_factory=dict)

    @property
    def obligations(self) -> list[Obligation]:
        return [o for c in self.contracts.values() for o in c.obligations]

    @property
    def review_tasks(self) -> list[ReviewTaskSpec]:
        return [t for c in self.contracts.values() for t in c.review_tasks]

    @property
    def errors(self) -> dict[int, str]:
        return {cid: c.error for cid, c in self.contracts.items() if c.error}


def _obligation_day(spec: LineSpec, ctx: BillingContext) -> date:
    if spec.period_start is not None:
        return spec.period_start
    if "bill_on" in spec.source:
        return date.fromisoformat(spec.source["bill_on"])
    if "delivered_at" in spec.source:
        from datetime import datetime

        return ctx.local_date(datetime.fromisoformat(spec.source["delivered_at"]))
    return ctx.as_of


def obligation_from_spec(spec: LineSpec, ctx: BillingContext) -> Obligation:
    currency = spec.version.currency
    return Obligation(
        contract_id=ctx.contract_id,
        billing_key=spec.billing_key,
        kind=str(spec.kind),
        description=spec.description[:300],
        quantity=spec.quantity,
        unit_amount=spec.unit_amount,
        amount=quantize(spec.amount, currency),
        currency=currency,
        period_start=spec.period_start,
        period_end=spec.period_end,
        on=_obligation_day(spec, ctx),
        line_ref=spec.line_ref,
        price_line_id=spec.price_line_id,
        milestone_id=spec.milestone_id,
        version_id=spec.version.pk,
        source=dict(spec.source),
    )


def _shadow_invoices(ctx: BillingContext, specs: list[LineSpec], *, assume_unbilled: bool) -> list[ShadowInvoice]:
    """Group as the writer does and apply the discounts in force (read-only, the same applicator)."""
    invoices = []
    used: dict[int, set[str]] = {}
    entities: dict[int, IssuingEntity] = {}
    for version, group in invoice_line_groups(specs, billing_date=ctx.as_of):
        currency = version.currency
        lines = [obligation_from_spec(s, ctx) for s in group]
        subtotal = quantize(sum((o.amount for o in lines), ZERO), currency)
        entity_id = version.issuing_entity_id_for(ctx.contract)
        if entity_id not in entities:
            entities[entity_id] = IssuingEntity.objects.get(pk=entity_id)
        draft = SimpleNamespace(
            pk=None,
            contract_id=ctx.contract_id,
            customer_id=ctx.contract.customer_id,
            customer=ctx.contract.customer,
            issuing_entity=entities[entity_id],
            currency=currency,
            billing_date=ctx.as_of,
            issue_date=None,
            tax_total=ZERO,
            credit_applied=ZERO,
        )
        discounts = discounts_for_invoice(invoice=draft, lines=lines)
        if not assume_unbilled:
            for discount_id, keys in cycles_used(discount_ids=[d.pk for d in discounts]).items():
                used.setdefault(discount_id, set()).update(keys)
        # THE totals function of the writer, tax included (revexos/tax.py, for the run's date).
        result = invoice_amounts(invoice=draft, lines=lines, discounts=discounts, used=used)
        for discount_id, keys in result.cycles_by_discount().items():
            used.setdefault(discount_id, set()).update(keys)
        invoices.append(
            ShadowInvoice(
                contract_id=ctx.contract_id,
                currency=currency,
                po_number=version.po_number,
                payment_terms_days=version.payment_terms_days,
                version_id=version.pk,
                lines=lines,
                subtotal=subtotal,
                discount_total=result.discount_total,
                total=result.total,
                tax_total=result.tax_total,
                tax_treatment=result.tax.treatment,
            )
        )
    return invoices


def billing_shadow(
    *,
    contract_ids: Iterable[int],
    as_of: date,
    since: date | None = None,
    assume_unbilled: bool = False,
) -> ShadowRun:
    """Every obligation a run as of ``as_of`` would bill for ``contract_ids``, without writing anything.

    ``since`` leaves out obligations dated before it (the range [since, as_of]). With
    ``assume_unbilled`` nothing counts as billed: RevExOS's invoice lines, facts marked billed,
    invoiced milestones and ``billed_through`` are all ignored.
    """
    ids = [int(cid) for cid in contract_ids]
    run = ShadowRun(as_of=as_of, since=since, assume_unbilled=assume_unbilled)
    # The audit's "everything from the start" is not capped; a run's preview is, as the run is.
    loaded = contexts_load(
        contract_ids=ids,
        as_of=as_of,
        assume_unbilled=assume_unbilled,
        **({"catch_up_cap": None} if assume_unbilled else {}),
    )
    for cid in ids:
        ctx = loaded[cid]
        if not isinstance(ctx, BillingContext):
            run.contracts[cid] = ContractShadow(contract_id=cid, skipped=ctx)
            continue
        shadow = ContractShadow(contract_id=cid, contract_number=ctx.contract.number)
        run.contracts[cid] = shadow
        try:
            contract_obligations(ctx)
        except Exception as exc:
            shadow.error = str(exc)[:500] or type(exc).__name__
            continue
        specs = [s for s in ctx.new_specs if since is None or _obligation_day(s, ctx) >= since]
        shadow.obligations = [obligation_from_spec(s, ctx) for s in specs]
        shadow.invoices = _shadow_invoices(ctx, specs, assume_unbilled=assume_unbilled)
        shadow.review_tasks = list(ctx.reviews)
    return run
