"""Insight pages: the drill-downs behind every home figure, and the definitions.

Thin: read through ``insights.selectors``, compute with the pure modules, render. Each page runs
a fixed number of queries, whatever the number of contracts.
"""

from __future__ import annotations

from datetime import date
from decimal import Decimal

from django.core.paginator import Paginator
from django.db.models import Count, F, Min, Sum
from django.shortcuts import render

from contracts.models import Contract
from insights.charts import forecast_chart
from insights.forecast import KIND_LABELS, KINDS, MAX_MONTHS
from insights.models import ForecastContractTotal, ValuationProjection
from insights.selectors import (
    RISK_GROUPS,
    billed_in,
    contract_label,
    projected_forecast,
    projected_forecast_items,
    projected_rows,
    projected_value_totals,
    projections_current,
    revenue_at_risk,
)
from revexos.accounts.decorators import requires
from revexos.accounts.models import Role
from revexos.dates import tenant_today
from revexos.parsing import parse_date, parse_int

ZERO = Decimal(0)
DEFAULT_MONTHS = 6
PAGE_SIZE = 50
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


def forecast_context(*, today: date, months: int, owner=None) -> dict:
    """The forecast chart and its monthly totals (shared by the home page and the forecast page),
    from the stored projections, caught up first."""
    projections_current(today=today)
    result = projected_forecast(today=today, months=months, owner=owner)
    href = "/insights/forecast/?months=" + str(months) + "&month={month}&kind={kind}"
    charts = [forecast_chart(rows=result.rows, currency=c, href=href) for c in result.currencies]
    return {
        "forecast": result,
        "forecast_rows": result.rows,
        "charts": charts,
        "months": months,
        "month_choices": MONTH_CHOICES,
    }


@requires("insights.view")
def forecast_chart_partial(request):
    """The home page's chart, re-rendered by htmx when the horizon changes."""
    owner, _ = _owner(request)
    context = forecast_context(today=tenant_today(), months=_months(request), owner=owner)
    return render(request, "insights/_forecast_chart.html", context)


@requires("insights.view")
def forecast_page(request):
    """Expected invoice lines, filtered by month, kind and currency; grouped by contract or customer
    (added up in SQL, a page of groups or lines at a time)."""
    owner, scope = _owner(request)
    today = tenant_today()
    months = _months(request)
    context = forecast_context(today=today, months=months, owner=owner)
    result = context["forecast"]
    month, kind, currency = request.GET.get("month", ""), request.GET.get("kind", ""), request.GET.get("currency", "")
    group = request.GET.get("group", "contract")
    items = projected_forecast_items(today=today, months=months, owner=owner)
    if month:
        try:
            items = items.filter(month=parse_date(month + "-01"))
        except ValueError:
            items = items.none()
    if kind:
        items = items.filter(kind=kind)
    if currency:
        items = items.filter(currency=currency)
    sums = {"gross": Sum("gross"), "discount": Sum("discount"), "net": Sum("net")}
    # The selection's totals from the monthly totals already read for the chart (no second pass).
    totals: dict[str, dict] = {}
    for row in result.rows:
        if month and row.month.strftime("%Y-%m") != month:
            continue
        for (cur, k), money in row.by_currency_kind.items():
            if (kind and k != kind) or (currency and cur != currency):
                continue
            t = totals.setdefault(cur, {"gross": ZERO, "discount": ZERO, "net": ZERO})
            t["gross"] += money.gross
            t["discount"] += money.discount
            t["net"] += money.net
    totals = dict(sorted(totals.items()))
    if group == "lines":
        page = Paginator(
            items.select_related("contract", "contract__customer").order_by("billing_date", "contract_id", "position"),
            PAGE_SIZE,
        ).get_page(request.GET.get("page"))
        rows = [
            {"item": i, "contract": contract_label(i.contract), "kind_label": KIND_LABELS.get(i.kind, i.kind)}
            for i in page.object_list
        ]
        groups = []
    else:
        key = "contract_id" if group == "contract" else "customer_id"
        source, count = items, Count("pk")
        kept = not (month or kind or currency) and months in ForecastContractTotal.HORIZONS
        if kept:
            # The usual horizons without a filter: each contract's total is kept (one row, not one per line).
            source = projected_rows(ForecastContractTotal, owner=owner).filter(as_of=today, horizon=months)
            count = Sum("items")
        if kept and key == "contract_id":
            # Already one row per contract and currency: read in the order of their index, a page at a time.
            groups_of = source.annotate(first=F("contract_id"), count=F("items")).values(
                "currency", "gross", "discount", "net", "count", "first"
            )
        else:
            groups_of = source.values(key, "currency").annotate(**sums, count=count, first=Min("contract_id"))
        page = Paginator(groups_of.order_by("-net", "first", "currency"), PAGE_SIZE).get_page(request.GET.get("page"))
        labels = {
            c.pk: contract_label(c)
            for c in Contract.objects.filter(pk__in=[g["first"] for g in page.object_list] or [0]).select_related(
                "customer"
            )
        }
        groups = [
            {
                "contract": labels[g["first"]],
                "currency": g["currency"],
                "gross": g["gross"],
                "discount": g["discount"],
                "net": g["net"],
                "count": g["count"],
            }
            for g in page.object_list
        ]
        rows = []
    query = request.GET.copy()
    query.pop("page", None)
    context.update(
        {
            "rows": rows,
            "groups": groups,
            "page": page,
            "query": query.urlencode(),
            "group": group,
            "totals": totals,
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
    """Contract value per contract: committed, value, recognized, billed, unearned, unbilled receivable
    (the stored valuation rows, sorted and paged in SQL)."""
    owner, scope = _owner(request)
    today = tenant_today()
    projections_current(today=today)
    rows = projected_rows(ValuationProjection, owner=owner).filter(as_of=today)
    # The whole portfolio's totals are kept by the refresh; one manager's are added up from their rows.
    totals = projected_value_totals(today=today) if owner is None else projected_value_totals(today=today, rows=rows)
    sort = request.GET.get("sort", "unearned")
    currency = request.GET.get("currency", "")
    if currency:
        rows = rows.filter(currency=currency)
    if sort == "unbilled":
        rows = rows.filter(unbilled_receivable__gt=0)
    # Sorted and cut to a page on the valuation rows alone; the page's contracts are read after.
    rows = rows.order_by("-" + VALUE_SORTS.get(sort, "unearned"), "contract_id", "currency")
    page = Paginator(rows, 50).get_page(request.GET.get("page"))
    contracts = Contract.objects.filter(pk__in=[r.contract_id for r in page.object_list] or [0]).select_related(
        "customer"
    )
    labels = {c.pk: contract_label(c) for c in contracts}
    context = {
        "page": page,
        "rows": [{"v": r, "contract": labels[r.contract_id]} for r in page.object_list],
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
