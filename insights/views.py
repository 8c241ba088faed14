"""Insight pages: the drill-downs behind every home figure, and the definitions.

Thin: read through ``insights.selectors``, compute with the pure modules, render. Each page runs
a fixed number of queries, whatever the number of contracts.
"""

from __future__ import annotations

from datetime import date

from django.core.paginator import Paginator
from django.shortcuts import render

from insights.charts import forecast_chart
from insights.forecast import KIND_LABELS, KINDS, MAX_MONTHS
from insights.selectors import (
    RISK_GROUPS,
    billed_in,
    portfolio_contracts,
    portfolio_forecast,
    portfolio_load,
    portfolio_valuation,
    revenue_at_risk,
    valuation_totals,
)
from revexos.accounts.decorators import requires
from revexos.accounts.models import Role
from revexos.dates import tenant_today
from revexos.parsing import parse_date, parse_int

DEFAULT_MONTHS = 6
MONTH_CHOICES = (3, 6, 12, 24)


def _months(request, default: int = DEFAULT_MONTHS) -> int:
    try:
        months = parse_int(request.GET.get("months", default))
    except ValueError:
        return default
    return min(max(months, 1), MAX_MONTHS)


def _owner(request):
    """Whose book a page shows: account managers start with their own ("mine"), others with all."""
    scope = request.GET.get("scope") or ("mine" if request.user.role == Role.ACCOUNT_MANAGER else "all")
    return (request.user if scope == "mine" else None), scope


def forecast_context(*, today: date, months: int, owner=None, portfolio=None) -> dict:
    """The forecast chart and its monthly totals (shared by the home page and the forecast page)."""
    if portfolio is None:
        portfolio = portfolio_load(today=today, contracts=portfolio_contracts(owner=owner), with_valuation=False)
    result = portfolio_forecast(portfolio, months=months)
    rows = result.totals()
    href = "/insights/forecast/?months=" + str(months) + "&month={month}&kind={kind}"
    charts = [forecast_chart(rows=rows, currency=c, href=href) for c in result.currencies()]
    return {
        "forecast": result,
        "forecast_rows": rows,
        "charts": charts,
        "months": months,
        "month_choices": MONTH_CHOICES,
        "portfolio": portfolio,
    }


@requires("insights.view")
def forecast_chart_partial(request):
    """The home page's chart, re-rendered by htmx when the horizon changes."""
    owner, _ = _owner(request)
    context = forecast_context(today=tenant_today(), months=_months(request), owner=owner)
    return render(request, "insights/_forecast_chart.html", context)


@requires("insights.view")
def forecast_page(request):
    """Expected invoice lines, filtered by month, kind and currency; grouped by contract or customer."""
    owner, scope = _owner(request)
    today = tenant_today()
    months = _months(request)
    context = forecast_context(today=today, months=months, owner=owner)
    result, by_id = context["forecast"], context["portfolio"].by_id()
    month, kind, currency = request.GET.get("month", ""), request.GET.get("kind", ""), request.GET.get("currency", "")
    group = request.GET.get("group", "contract")
    items = [
        i
        for i in result.items
        if (not month or i.month.strftime("%Y-%m") == month)
        and (not kind or i.kind == kind)
        and (not currency or i.currency == currency)
    ]
    rows = [{"item": i, "contract": by_id[i.contract_id], "kind_label": KIND_LABELS[i.kind]} for i in items]
    groups: dict[tuple, dict] = {}
    for r in rows:
        key = (r["contract"].id if group == "contract" else r["contract"].customer_id, r["item"].currency)
        g = groups.setdefault(
            key,
            {
                "contract": r["contract"],
                "currency": r["item"].currency,
                "gross": 0,
                "discount": 0,
                "net": 0,
                "count": 0,
            },
        )
        g["gross"] += r["item"].gross
        g["discount"] += r["item"].discount
        g["net"] += r["item"].net
        g["count"] += 1
    totals: dict[str, dict] = {}
    for r in rows:
        t = totals.setdefault(r["item"].currency, {"gross": 0, "discount": 0, "net": 0})
        t["gross"] += r["item"].gross
        t["discount"] += r["item"].discount
        t["net"] += r["item"].net
    context.update(
        {
            "rows": rows,
            "groups": sorted(groups.values(), key=lambda g: -g["net"]),
            "group": group,
            "totals": dict(sorted(totals.items())),
            "month": month,
            "kind": kind,
            "currency": currency,
            "kinds": [(k, KIND_LABELS[k]) for k in KINDS],
            "month_options": [(m.strftime("%Y-%m"), m.strftime("%B %Y")) for m in result.months],
            "scope": scope,
            "today": today,
        }
    )
    template = "insights/forecast.html#forecast-table" if request.htmx else "insights/forecast.html"
    return render(request, template, context)


VALUE_SORTS = {
    "unearned": "unearned",
    "unbilled": "unbilled_receivable",
    "value": "value",
    "billed": "billed",
    "recognized": "recognized",
}


@requires("insights.view")
def contract_value_page(request):
    """Contract value per contract: committed, value, recognized, billed, unearned, unbilled receivable."""
    owner, scope = _owner(request)
    today = tenant_today()
    portfolio = portfolio_load(today=today, contracts=portfolio_contracts(owner=owner))
    rows = portfolio_valuation(portfolio)
    totals = valuation_totals(rows)
    sort = request.GET.get("sort", "unearned")
    currency = request.GET.get("currency", "")
    if currency:
        rows = [r for r in rows if r.currency == currency]
    if sort == "unbilled":
        rows = [r for r in rows if r.unbilled_receivable > 0]
    rows.sort(key=lambda r: -getattr(r, VALUE_SORTS.get(sort, "unearned")))
    by_id = portfolio.by_id()
    page = Paginator(rows, 50).get_page(request.GET.get("page"))
    context = {
        "page": page,
        "rows": [{"v": r, "contract": by_id[r.contract_id]} for r in page.object_list],
        "totals": totals,
        "sort": sort,
        "currency": currency,
        "scope": scope,
        "today": today,
    }
    template = "insights/contract_value.html#value-table" if request.htmx else "insights/contract_value.html"
    return render(request, template, context)


@requires("insights.view")
def at_risk_page(request):
    """Revenue at risk this quarter, by group, each row linking to where to act."""
    owner, scope = _owner(request)
    today = tenant_today()
    risk = revenue_at_risk(today=today, owner=owner)
    group = request.GET.get("group", "")
    rows = [r for r in risk.rows if not group or r.group == group]
    context = {
        "risk": risk,
        "rows": rows,
        "group": group,
        "groups": RISK_GROUPS,
        "group_totals": risk.group_totals(),
        "totals": risk.totals(),
        "scope": scope,
        "today": today,
    }
    return render(request, "insights/at_risk.html", context)


@requires("insights.view")
def billed_page(request):
    """The invoices behind "billed this month" (or another month: ?month=YYYY-MM)."""
    today = tenant_today()
    start = today.replace(day=1)
    try:
        if request.GET.get("month"):
            start = parse_date(request.GET["month"] + "-01")
    except ValueError:
        pass
    end = (date(start.year + (start.month == 12), start.month % 12 + 1, 1)).toordinal() - 1
    end = date.fromordinal(end)
    invoices = billed_in(start=start, end=end).select_related("contract", "customer").order_by("-issue_date", "-id")
    totals: dict[str, dict] = {}
    for inv in invoices:
        t = totals.setdefault(inv.currency, {"count": 0, "total": 0})
        t["count"] += 1
        t["total"] += inv.total
    context = {"invoices": invoices, "start": start, "end": end, "totals": dict(sorted(totals.items())), "today": today}
    return render(request, "insights/billed.html", context)


@requires("insights.view")
def definitions(request):
    from insights.definitions import DEFINITIONS

    items = [{"anchor": a, "title": t, "short": s, "long": long} for a, (t, s, long) in DEFINITIONS.items()]
    return render(request, "insights/definitions.html", {"definitions": items})
