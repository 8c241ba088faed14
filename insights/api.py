"""GET /api/v1/forecast and GET /api/v1/contract-value (DESIGN.md §5, §4 forward-looking figures).

Money is a decimal string in the currency's own digits; amounts in different currencies are
never added: every total is a list of one entry per currency.
"""

from __future__ import annotations

from datetime import date

from ninja import Field, Query, Router, Schema

from insights.forecast import KINDS, MAX_MONTHS
from insights.selectors import (
    portfolio_contracts,
    portfolio_load,
    portfolio_valuation,
    projected_forecast,
    projected_forecast_items,
    projections_current,
    valuation_totals,
)
from revexos.api_kit import Int, Offset, Ref
from revexos.dates import tenant_today
from revexos.money import quantize
from revexos.parsing import parse_id

router = Router(tags=["insights"])


class ForecastFilters(Schema):
    months: Int = Field(3, ge=1, le=MAX_MONTHS, description=f"Calendar months after the current one (1–{MAX_MONTHS})")
    contract: Ref = Field("", description="Only this contract (number or id)")
    customer: Ref = Field("", description="Only this customer (external id or id)")
    items: bool = Field(False, description="Include every expected invoice line")


class AmountsOut(Schema):
    currency: str
    gross: str = Field(examples=["3100.00"], description="Before discounts")
    discount: str = Field(examples=["310.00"], description="The discount effect")
    net: str = Field(examples=["2790.00"], description="What will be invoiced")


class KindAmountsOut(AmountsOut):
    kind: str = Field(description=" | ".join(KINDS))


class ForecastMonthOut(Schema):
    month: str = Field(examples=["2026-03"])
    totals: list[AmountsOut]
    by_kind: list[KindAmountsOut]
    renewal_uplift: list[dict[str, str]] = Field(description="What renewal uplifts add, per currency")


class ForecastContractOut(Schema):
    contract: str
    customer: str
    month: str
    kind: str
    currency: str
    gross: str
    discount: str
    net: str


class ForecastItemOut(Schema):
    contract: str
    customer: str
    kind: str
    description: str
    billing_date: date
    period_start: date | None
    period_end: date | None
    currency: str
    gross: str
    discount: str
    net: str
    basis: str
    renewal: bool


class ForecastOut(Schema):
    as_of: date
    months: list[ForecastMonthOut]
    totals: list[AmountsOut]
    by_contract: list[ForecastContractOut]
    items: list[ForecastItemOut] | None = None


def _amounts(currency: str, m) -> dict:
    return {
        "currency": currency,
        "gross": str(quantize(m.gross, currency)),
        "discount": str(quantize(m.discount, currency)),
        "net": str(quantize(m.net, currency)),
    }


def _scope(*, contract: str, customer: str):
    from django.db.models import Q

    contracts = portfolio_contracts()
    if contract:
        contract_id = parse_id(contract)
        contracts = contracts.filter(Q(number=contract) | (Q(pk=contract_id) if contract_id else Q(pk__in=[])))
    if customer:
        customer_id = parse_id(customer)
        contracts = contracts.filter(
            Q(customer__external_id=customer) | (Q(customer_id=customer_id) if customer_id else Q(pk__in=[]))
        )
    return contracts


@router.get("/forecast", response=ForecastOut, summary="Invoices expected in each of the next N months")
def forecast_get(request, filters: Query[ForecastFilters]):
    """Month 1 is the calendar month after today's (the tenant's day). Recurring from the schedule,
    milestones by expected date, fixed fees by bill-on date, time and usage by the run rate of the
    last three closed periods, renewals with their uplift; gross, discount effect and net."""
    from django.db.models import F, Sum

    from insights.forecast import Money3

    # The stored projections (caught up first), as the dashboards read them: a contract's lines are
    # its share of its customer's forecast (customer-wide discounts counted across its contracts).
    today = tenant_today()
    projections_current(today=today)
    contract, customer = filters.contract.strip(), filters.customer.strip()
    scope = _scope(contract=contract, customer=customer).values("pk") if (contract or customer) else None
    result = projected_forecast(today=today, months=filters.months, contracts=scope)
    lines = projected_forecast_items(today=today, months=filters.months, contracts=scope)
    months = []
    grand: dict[str, Money3] = {}
    for row in result.rows:
        for currency, m in row.by_currency.items():
            g = grand.setdefault(currency, Money3())
            g.gross += m.gross
            g.discount += m.discount
            g.net += m.net
        months.append(
            {
                "month": row.month.strftime("%Y-%m"),
                "totals": [_amounts(c, m) for c, m in sorted(row.by_currency.items())],
                "by_kind": [
                    {**_amounts(c, m), "kind": k}
                    for (c, k), m in sorted(row.by_currency_kind.items(), key=lambda x: (x[0][0], KINDS.index(x[0][1])))
                ],
                "renewal_uplift": [
                    {"currency": c, "amount": str(quantize(a, c))} for c, a in sorted(row.uplift.items())
                ],
            }
        )
    per_contract = (
        lines.values("contract_id", "month", "kind", "currency")
        .annotate(
            number=F("contract__number"),
            customer_name=F("contract__customer__legal_name"),
            gross_total=Sum("gross"),
            discount_total=Sum("discount"),
            net_total=Sum("net"),
        )
        .order_by("contract_id", "month", "kind", "currency")
    )
    by_contract = [
        {
            "contract": r["number"],
            "customer": r["customer_name"],
            "month": r["month"].strftime("%Y-%m"),
            "kind": r["kind"],
            **_amounts(r["currency"], Money3(r["gross_total"], r["discount_total"], r["net_total"])),
        }
        for r in sorted(per_contract, key=lambda r: (r["number"], r["month"], r["kind"]))
    ]
    items = None
    if filters.items:
        items = [
            {
                "contract": i.contract.number,
                "customer": i.contract.customer.legal_name,
                "kind": i.kind,
                "description": i.description,
                "billing_date": i.billing_date,
                "period_start": i.period_start,
                "period_end": i.period_end,
                **_amounts(i.currency, i),  # stored to 8 places: printed in the currency's digits
                "basis": i.basis,
                "renewal": i.renewal,
            }
            for i in lines.select_related("contract__customer").order_by("billing_date", "contract_id", "position")
        ]
    return {
        "as_of": today,
        "months": months,
        "totals": [_amounts(c, m) for c, m in sorted(grand.items())],
        "by_contract": by_contract,
        "items": items,
    }


class ValueFilters(Schema):
    contract: Ref = Field("", description="Only this contract (number or id)")
    customer: Ref = Field("", description="Only this customer (external id or id)")
    limit: Int = Field(100, ge=1, le=1000)
    offset: Offset = 0


class ValueTotalsOut(Schema):
    currency: str
    contracts: int
    committed: str
    value: str
    recognized: str
    billed: str
    unearned: str
    unbilled_receivable: str


class ContractValueOut(Schema):
    contract: str
    customer: str
    currency: str
    committed: str = Field(description="Committed over the term (recurring, minimums, fixed fees, milestones)")
    value: str = Field(description="Committed + time and usage delivered beyond it")
    recognized: str
    billed: str
    unearned: str
    unbilled_receivable: str


class ContractValuePage(Schema):
    as_of: date
    totals: list[ValueTotalsOut]
    items: list[ContractValueOut]
    count: int


@router.get("/contract-value", response=ContractValuePage, summary="Contract value billed, recognized and unearned")
def contract_value_get(request, filters: Query[ValueFilters]):
    today = tenant_today()
    portfolio = portfolio_load(
        today=today, contracts=_scope(contract=filters.contract.strip(), customer=filters.customer.strip())
    )
    rows = portfolio_valuation(portfolio)
    by_id = portfolio.by_id()

    def money(value, currency):
        return str(quantize(value, currency))

    totals = [
        {
            "currency": c,
            "contracts": t.contracts,
            "committed": money(t.committed, c),
            "value": money(t.value, c),
            "recognized": money(t.recognized, c),
            "billed": money(t.billed, c),
            "unearned": money(t.unearned, c),
            "unbilled_receivable": money(t.unbilled_receivable, c),
        }
        for c, t in valuation_totals(rows).items()
    ]
    page = rows[filters.offset : filters.offset + filters.limit]
    items = [
        {
            "contract": by_id[r.contract_id].number,
            "customer": by_id[r.contract_id].customer_name,
            "currency": r.currency,
            "committed": money(r.committed, r.currency),
            "value": money(r.value, r.currency),
            "recognized": money(r.recognized, r.currency),
            "billed": money(r.billed, r.currency),
            "unearned": money(r.unearned, r.currency),
            "unbilled_receivable": money(r.unbilled_receivable, r.currency),
        }
        for r in page
    ]
    return {"as_of": today, "totals": totals, "items": items, "count": len(rows)}
