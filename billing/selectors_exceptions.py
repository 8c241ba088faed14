"""What discounts, credits and custom rates did to the invoices: reads over billing's rows.

The discounts module defines exceptions and forecasts their effect; what they did to invoices
already made is billing's to read (billing sits above discounts and the discounts module never
imports it). The pages of Discounts & credits (``billing/views_exceptions.py``) use these.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import date
from decimal import Decimal

from django.db.models import Count, Prefetch, Q, Sum

from billing.models import Invoice, InvoiceLine, InvoiceStatus
from contracts.models import Customer
from discounts import applicator
from discounts.impact import ForecastLine
from discounts.models import Discount, DiscountApplication, ExceptionStatus, PriceOverride
from discounts.selectors import FORECAST_PERIODS, LIVE, cycles_used, discount_terms, forecast_book
from revexos.money import quantize

ZERO = Decimal("0")


def override_given_up(overrides: list[PriceOverride]) -> dict[int, Decimal]:
    """Billed at the custom rate instead of the contract's, to date (positive = revenue given up)."""
    if not overrides:
        return {}
    result: dict[int, Decimal] = {}
    condition = Q()
    for o in overrides:
        condition |= Q(
            invoice__contract_id=o.contract_id,
            line_ref=o.line_ref,
            period_start__lte=o.end_date,
            period_end__gte=o.start_date,
        )
    lines = list(
        InvoiceLine.objects.filter(condition, kind__in=["recurring", "time_and_materials", "usage"])
        .select_related("price_line", "invoice")
        .prefetch_related("price_line__rates")
    )
    for o in overrides:
        total = ZERO
        for line in lines:
            if line.invoice.contract_id != o.contract_id or line.line_ref != o.line_ref or line.price_line is None:
                continue
            if line.period_start is None or not (
                line.period_start <= o.end_date and (line.period_end or line.period_start) >= o.start_date
            ):
                continue
            currency = line.invoice.currency
            pl = line.price_line
            if line.kind == "recurring" and not o.role and pl.amount is not None and line.period_start >= o.start_date:
                days, period_days = line.source.get("days"), line.source.get("period_days")
                if (
                    days
                    and period_days
                    and line.amount == quantize(o.rate * Decimal(days) / Decimal(period_days), currency)
                ):
                    total += quantize(pl.amount * Decimal(days) / Decimal(period_days), currency) - line.amount
            elif (
                line.kind == "time_and_materials"
                and o.role
                and line.source.get("role") == o.role
                and line.unit_amount == o.rate
            ):
                card = next((r.hourly_rate for r in pl.rates.all() if r.role == o.role), None)
                if card is not None:
                    total += quantize(line.quantity * card, currency) - line.amount
            elif (
                line.kind == "usage"
                and not o.role
                and pl.unit_amount is not None
                and line.unit_amount == o.rate
                and line.period_start >= o.start_date
            ):
                total += quantize(line.quantity * pl.unit_amount, currency) - line.amount
        result[o.pk] = total
    return result


@dataclass
class CustomerImpact:
    customer: object
    currency: str
    invoices: int = 0
    gross: Decimal = ZERO  # line amounts before discounts (custom rates included)
    discounts: Decimal = ZERO
    credits: Decimal = ZERO
    overrides: Decimal = ZERO  # given up through custom rates
    forecast_without: Decimal = ZERO
    forecast_with: Decimal = ZERO

    @property
    def without_exceptions(self) -> Decimal:
        return self.gross + self.overrides

    @property
    def with_exceptions(self) -> Decimal:
        return self.gross - self.discounts - self.credits

    @property
    def forecast_effect(self) -> Decimal:
        return self.forecast_without - self.forecast_with


def customer_impact(
    *, today: date, customer_id: int | None = None, periods: int = FORECAST_PERIODS
) -> list[CustomerImpact]:
    """Per customer and currency: billed to date with and without exceptions, and the next periods' forecast."""
    customers = Customer.objects.all()
    if customer_id:
        customers = customers.filter(pk=customer_id)
    customers = {c.pk: c for c in customers}
    result: dict[tuple[int, str], CustomerImpact] = {}

    def row(cid: int, currency: str) -> CustomerImpact:
        key = (cid, currency)
        if key not in result:
            result[key] = CustomerImpact(customer=customers[cid], currency=currency)
        return result[key]

    invoices = (
        Invoice.objects.filter(customer_id__in=list(customers))
        .exclude(status=InvoiceStatus.VOID)
        .values("customer_id", "currency")
        .annotate(gross=Sum("subtotal"), disc=Sum("discount_total"), cred=Sum("credit_applied"))
    )
    for agg in invoices:
        r = row(agg["customer_id"], agg["currency"])
        r.gross, r.discounts, r.credits = agg["gross"] or ZERO, agg["disc"] or ZERO, agg["cred"] or ZERO
    for agg in (
        Invoice.objects.filter(customer_id__in=list(customers))
        .exclude(status=InvoiceStatus.VOID)
        .values("customer_id", "currency")
        .annotate(n=Count("id"))
    ):
        row(agg["customer_id"], agg["currency"]).invoices = agg["n"]

    overrides = list(
        PriceOverride.objects.filter(customer_id__in=list(customers)).exclude(status=ExceptionStatus.REVOKED)
    )
    given_by_override = override_given_up(overrides)
    for o in overrides:
        given = given_by_override.get(o.pk, ZERO)
        if given:
            row(o.customer_id, o.currency).overrides += given

    book = forecast_book(today=today, customer_ids=list(customers), periods=periods)
    live = list(Discount.objects.filter(customer_id__in=list(customers), status__in=LIVE).order_by("created_at", "id"))
    used = cycles_used(discount_ids=[d.pk for d in live])
    for cid in customers:
        lines = book.lines_for(customer_id=cid)
        by_currency: dict[str, list[ForecastLine]] = defaultdict(list)
        for line in lines:
            by_currency[line.currency].append(line)
        for currency, group in by_currency.items():
            terms = [
                discount_terms(d, used.get(d.pk, set()))
                for d in live
                if d.customer_id == cid and (d.kind == "percentage" or d.currency == currency)
            ]
            amounts = applicator.apply_discounts(
                lines=[line.as_line() for line in group],
                discounts=terms,
                currency=currency,
                billing_date=min(line.period_start for line in group),
            )
            r = row(cid, currency)
            r.forecast_without = quantize(sum((line.contract_amount for line in group), ZERO), currency)
            r.forecast_with = amounts.total
    return sorted(result.values(), key=lambda r: (r.customer.legal_name, r.currency))


def customer_invoices(*, customer_id: int, limit: int = 24):
    return list(
        Invoice.objects.filter(customer_id=customer_id)
        .select_related("contract")
        .prefetch_related(
            Prefetch("discount_applications", queryset=DiscountApplication.objects.select_related("discount")),
            "credit_applications__credit",
        )
        .order_by("-billing_date", "-id")[:limit]
    )
