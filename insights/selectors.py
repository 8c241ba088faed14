"""Set-based reads that feed the pure insights modules (forecast, valuation) and the dashboards.

Every function here runs a fixed number of queries, whatever the number of contracts, invoices or
alerts: rows are loaded per table for the whole portfolio (filtered by subquery, never by a
Python list of ids) and joined in memory. The pure modules then compute per contract.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date, timedelta
from decimal import Decimal

from django.db.models import Count, F, Q, QuerySet, Sum
from django.db.models.functions import TruncMonth

from insights.forecast import (
    ContractTerms,
    DiscountRule,
    Forecast,
    LineTerms,
    MilestoneTerms,
    Money3,
    MonthTotals,
    OverrideTerms,
    VersionTerms,
    forecast,
    forecast_months,
)
from insights.valuation import (
    Billed,
    ContractValuation,
    Delivered,
    ValueTotals,
    contract_valuation,
    totals_by_currency,
)
from revexos.money import quantize
from revexos.pricing import add_months

ZERO = Decimal(0)
ISSUED = ("issued", "sent", "partially_paid", "paid")
OPEN_RECEIVABLE = ("issued", "sent", "partially_paid")
RUN_RATE_LOOKBACK_DAYS = 400  # three closed quarters and the open one


# --------------------------------------------------------------------------- the portfolio


def portfolio_contracts(*, owner=None) -> QuerySet:
    """Active contracts, optionally those of one account manager (contract or customer owner)."""
    from contracts.models import Contract

    contracts = Contract.objects.filter(status="active")
    if owner is not None:
        contracts = contracts.filter(Q(owner=owner) | Q(customer__owner=owner))
    return contracts


@dataclass
class Portfolio:
    """The loaded portfolio: terms for the pure modules, plus what the valuation needs."""

    today: date
    contracts: list[ContractTerms]
    discounts_by_customer: dict[int, list[DiscountRule]] = field(default_factory=dict)
    delivered: dict[int, Delivered] = field(default_factory=dict)
    billed: dict[int, Billed] = field(default_factory=dict)
    rates: dict[int, dict] = field(default_factory=dict)

    def by_id(self) -> dict[int, ContractTerms]:
        return {c.id: c for c in self.contracts}


def _line_terms(line) -> LineTerms:
    return LineTerms(
        line_ref=line.line_ref,
        kind=line.kind,
        description=line.description,
        amount=line.amount,
        frequency=line.frequency,
        timing=line.timing,
        bill_on=line.bill_on,
        percent_of_fixed_fee=line.percent_of_fixed_fee,
        minimum_commitment=line.minimum_commitment or ZERO,
        cap=line.cap,
        pk=line.pk,
    )


def portfolio_load(*, today: date, contracts: QuerySet | None = None, with_valuation: bool = True) -> Portfolio:
    """Load ``contracts`` (default: every active one) with everything the forecast and the
    valuation read: 9 queries for the forecast, 4 more for the valuation."""
    from billing.models import Invoice, InvoiceLine, TimeEntry
    from contracts.models import ContractVersion, Milestone, PriceLine, RateCardEntry
    from discounts.models import (
        Discount,
        DiscountApplication,
        ExceptionStatus,
        PriceOverride,
    )
    from renewals.models import RenewalAlert

    contracts = portfolio_contracts() if contracts is None else contracts
    scope = contracts.values("pk")
    rows = list(contracts.select_related("customer").order_by("pk"))

    versions: dict[int, list] = defaultdict(list)
    version_rows = list(
        ContractVersion.objects.filter(contract__in=scope)
        .order_by("contract_id", "effective_from")
        .values("pk", "contract_id", "effective_from", "billing_anchor", "currency")
    )
    lines_by_version: dict[int, list[LineTerms]] = defaultdict(list)
    for line in PriceLine.objects.filter(version__contract__in=scope).order_by("version_id", "position", "pk"):
        lines_by_version[line.version_id].append(_line_terms(line))
    for v in version_rows:
        versions[v["contract_id"]].append(
            VersionTerms(
                v["effective_from"], v["billing_anchor"], v["currency"], tuple(lines_by_version.get(v["pk"], ()))
            )
        )

    milestones: dict[int, list[MilestoneTerms]] = defaultdict(list)
    for m in Milestone.objects.filter(contract__in=scope).values(
        "contract_id", "line_ref", "name", "status", "expected_date"
    ):
        milestones[m["contract_id"]].append(MilestoneTerms(m["line_ref"], m["name"], m["status"], m["expected_date"]))

    overrides: dict[int, list[OverrideTerms]] = defaultdict(list)
    for o in (
        PriceOverride.objects.filter(contract__in=scope)
        .exclude(status=ExceptionStatus.REVOKED)
        .order_by("-created_at", "-id")
        .values("contract_id", "line_ref", "role", "rate", "start_date", "end_date")
    ):
        overrides[o["contract_id"]].append(
            OverrideTerms(o["line_ref"], o["role"], o["rate"], o["start_date"], o["end_date"])
        )

    # The renewal alert of each contract's current term (the one that ends on its end date).
    alerts = {
        a["contract_id"]: a
        for a in RenewalAlert.objects.filter(contract__in=scope, end_date=F("contract__end_date")).values(
            "contract_id", "status", "proposed_terms"
        )
    }

    # What was invoiced (not void), per line and period; fixed fees under period None.
    invoiced: dict[int, dict] = defaultdict(dict)
    cutoff = today - timedelta(days=RUN_RATE_LOOKBACK_DAYS)
    for r in (
        InvoiceLine.objects.filter(contract__in=scope)
        .exclude(invoice__status="void")
        .filter(Q(period_start__gte=cutoff) | Q(kind="fixed_fee"))
        .exclude(kind__in=("overage", "milestone"))
        .values("contract_id", "line_ref", "period_start", "kind")
        .annotate(amount=Sum("amount"))
        .order_by()
    ):
        key = (r["line_ref"], None if r["kind"] == "fixed_fee" else r["period_start"])
        bucket = invoiced[r["contract_id"]]
        bucket[key] = bucket.get(key, ZERO) + r["amount"]

    customers = contracts.values("customer_id")
    discount_rows = list(
        Discount.objects.exclude(status__in=(ExceptionStatus.REVOKED, ExceptionStatus.EXPIRED))
        .filter(Q(contract__in=scope) | Q(scope="customer", customer_id__in=customers))
        .filter(Q(end_date__isnull=True) | Q(end_date__gte=today))
        .order_by("created_at", "id")
    )
    used: dict[int, set[str]] = defaultdict(set)
    # A subquery, not a list of ids: an empty list would skip the query and the count would vary.
    cycled = Discount.objects.filter(pk__in=[d.pk for d in discount_rows] or [0], max_cycles__isnull=False).values("pk")
    for discount_id, key in (
        DiscountApplication.objects.filter(discount__in=cycled)
        .values_list("discount_id", "cycle_key")
        .order_by()
        .distinct()
    ):
        used[discount_id].add(key)
    discounts_by_customer: dict[int, list[DiscountRule]] = defaultdict(list)
    for d in discount_rows:
        discounts_by_customer[d.customer_id].append(
            DiscountRule(
                id=d.pk,
                kind=d.kind,
                value=d.value,
                start=d.start_date,
                end=d.end_date,
                line_ref=d.line_ref,
                contract_id=d.contract_id,
                currency=d.currency,
                max_cycles=d.max_cycles,
                used=frozenset(used.get(d.pk, ())),
            )
        )

    terms = []
    for c in rows:
        alert = alerts.get(c.pk) or {}
        terms.append(
            ContractTerms(
                id=c.pk,
                number=c.number,
                title=c.title,
                customer_id=c.customer_id,
                customer_name=c.customer.legal_name,
                status=c.status,
                start=c.start_date,
                end=c.end_date,
                auto_renew=c.auto_renew,
                renewal_term_months=c.renewal_term_months,
                renewal_uplift_pct=c.renewal_uplift_pct,
                owner_id=c.owner_id,
                versions=tuple(versions.get(c.pk, ())),
                milestones=tuple(milestones.get(c.pk, ())),
                overrides=tuple(overrides.get(c.pk, ())),
                renewal_status=alert.get("status", ""),
                proposed_terms=alert.get("proposed_terms") or {},
                invoiced=invoiced.get(c.pk, {}),
            )
        )
    portfolio = Portfolio(today=today, contracts=terms, discounts_by_customer=dict(discounts_by_customer))
    if not with_valuation:
        return portfolio

    # Valuation: time by line, role and month (priced at the version in force that month), usage
    # as billing priced it, billed totals, and the rate cards.
    hours: dict[int, dict] = defaultdict(lambda: defaultdict(lambda: ZERO))
    by_id = portfolio.by_id()
    for r in (
        TimeEntry.objects.filter(contract__in=scope, billable=True, work_date__lte=today)
        .exclude(line_ref="")
        .annotate(month=TruncMonth("work_date"))
        .values("contract_id", "line_ref", "role", "month")
        .annotate(hours=Sum("hours"))
        .order_by()
    ):
        contract = by_id[r["contract_id"]]
        if not contract.versions:
            continue
        month = r["month"].date() if hasattr(r["month"], "date") else r["month"]
        version = contract.versions[0]
        for v in contract.versions:
            if v.effective_from <= month:
                version = v
        hours[r["contract_id"]][(r["line_ref"], r["role"], version.effective_from)] += r["hours"]
    usage: dict[int, dict[str, Decimal]] = defaultdict(dict)
    for r in (
        InvoiceLine.objects.filter(contract__in=scope, kind__in=("usage", "usage_minimum"))
        .exclude(invoice__status="void")
        .values("contract_id", "invoice__currency")
        .annotate(amount=Sum("amount"))
        .order_by()
    ):
        usage[r["contract_id"]][r["invoice__currency"]] = r["amount"]
    for contract_id in set(hours) | set(usage):
        portfolio.delivered[contract_id] = Delivered(
            hours=dict(hours.get(contract_id, {})), usage=usage.get(contract_id, {})
        )
    for r in (
        Invoice.objects.filter(contract__in=scope, status__in=ISSUED)
        .values("contract_id", "currency")
        .annotate(total=Sum("total"), credited=Sum("credited_total"), discounts=Sum("discount_total"))
        .order_by()
    ):
        b = portfolio.billed.setdefault(r["contract_id"], Billed(billed={}, discounts={}))
        b.billed[r["currency"]] = r["total"] - r["credited"]
        b.discounts[r["currency"]] = r["discounts"]
    # What the previous system billed before the cut-over (imported invoice history) is billed too.
    from billing.services.history import external_billed_by_contract

    for contract_id, amounts in external_billed_by_contract(contracts=scope).items():
        b = portfolio.billed.setdefault(contract_id, Billed(billed={}, discounts={}))
        for currency, amount in amounts.items():
            b.billed[currency] = b.billed.get(currency, Decimal(0)) + amount
    for r in RateCardEntry.objects.filter(price_line__version__contract__in=scope).values(
        "price_line__version__contract_id",
        "price_line__line_ref",
        "price_line__version__effective_from",
        "role",
        "hourly_rate",
    ):
        key = (r["price_line__line_ref"], r["price_line__version__effective_from"])
        portfolio.rates.setdefault(r["price_line__version__contract_id"], {}).setdefault(key, {})[r["role"]] = r[
            "hourly_rate"
        ]
    return portfolio


def portfolio_forecast(portfolio: Portfolio, *, months: int) -> Forecast:
    return forecast(
        contracts=portfolio.contracts,
        today=portfolio.today,
        months=months,
        discounts_by_customer=portfolio.discounts_by_customer,
    )


def portfolio_valuation(portfolio: Portfolio) -> list[ContractValuation]:
    rows: list[ContractValuation] = []
    for contract in portfolio.contracts:
        rows.extend(
            contract_valuation(
                contract,
                today=portfolio.today,
                delivered=portfolio.delivered.get(contract.id),
                billed=portfolio.billed.get(contract.id),
                rates=portfolio.rates.get(contract.id),
            )
        )
    return rows


def valuation_totals(rows: list[ContractValuation]) -> dict[str, ValueTotals]:
    return totals_by_currency(rows)


# --------------------------------------------------------------------------- revenue at risk


def quarter_end(day: date) -> date:
    month = ((day.month - 1) // 3 + 1) * 3
    return date(day.year + (month == 12), 1 if month == 12 else month + 1, 1) - timedelta(days=1)


@dataclass
class RiskRow:
    group: str  # renewal | ending | overdue
    currency: str
    amount: Decimal
    label: str
    detail: str
    url: str
    contract_number: str = ""
    customer: str = ""
    date: date | None = None


@dataclass
class AtRisk:
    today: date
    quarter_end: date
    rows: list[RiskRow]

    def totals(self) -> dict[str, Decimal]:
        result: dict[str, Decimal] = defaultdict(lambda: ZERO)
        for row in self.rows:
            result[row.currency] += row.amount
        return dict(sorted(result.items()))

    def group_totals(self) -> dict[str, dict]:
        result: dict[str, dict] = {g: {"count": 0, "by_currency": defaultdict(lambda: ZERO)} for g in RISK_GROUPS}
        for row in self.rows:
            result[row.group]["count"] += 1
            result[row.group]["by_currency"][row.currency] += row.amount
        for g in result.values():
            g["by_currency"] = dict(sorted(g["by_currency"].items()))
        return result


RISK_GROUPS = {
    "renewal": "Renewals without a decision",
    "ending": "Contracts ending, not renewing",
    "overdue": "Overdue receivables",
}


def revenue_at_risk(*, today: date, owner=None) -> AtRisk:
    """Three disjoint groups this quarter, each row with its amount and where to act (4 queries).

    * renewal — alerts with no decision (open or snoozed) for terms ending by the quarter's end:
      the value at stake the alert carries (a year of recurring value, or the term's value for a
      contract with nothing recurring).
    * ending — active contracts ending by the quarter's end that will not renew by themselves
      (no auto-renew, or an alert saying churning/churned) and are not already counted as an open
      renewal or a renewal being negotiated: the annual recurring value of the terms in force.
    * overdue — issued, sent or part-paid invoices past their due date with something open: the open amount.
    """
    from django.urls import reverse

    from billing.models import Invoice
    from contracts.models import PriceLine
    from renewals.models import UNDECIDED_STATUSES, RenewalAlert
    from renewals.selectors import quarter_of
    from renewals.valuation import annual_recurring_value

    end = quarter_end(today)
    rows: list[RiskRow] = []
    alerts = RenewalAlert.objects.filter(status__in=UNDECIDED_STATUSES, end_date__lte=end, contract__status="active")
    if owner is not None:
        alerts = alerts.filter(Q(owner=owner) | Q(contract__owner=owner))
    for a in alerts.select_related("contract", "contract__customer").order_by("end_date", "pk"):
        rows.append(
            RiskRow(
                group="renewal",
                currency=a.currency,
                amount=quantize(a.value_at_stake, a.currency),
                label=f"{a.contract.number} · {a.contract.customer.legal_name}",
                detail=f"ends {a.end_date:%-d %b %Y}, notice by {a.notice_deadline:%-d %b %Y}, {a.get_status_display().lower()}"
                + (", value over the term" if a.value_basis == "term" else ""),
                url=reverse("renewals:queue") + f"?status=all&quarter={quarter_of(a.end_date)}#alert-{a.pk}",
                contract_number=a.contract.number,
                customer=a.contract.customer.legal_name,
                date=a.end_date,
            )
        )
    # Querysets as filters, not lists of ids: an empty list would skip its query, and the home
    # page's query count must not depend on the data.
    ending_qs = (
        portfolio_contracts(owner=owner)
        .filter(end_date__gte=today, end_date__lte=end)
        .exclude(pk__in=alerts.values("contract_id"))
    )
    ending = list(ending_qs.select_related("customer").order_by("end_date", "pk"))
    # The current term's decision: renewing or renewed contracts are not at risk, churn ones are.
    decided = dict(
        RenewalAlert.objects.filter(contract__in=ending_qs.values("pk"), end_date=F("contract__end_date")).values_list(
            "contract_id", "status"
        )
    )
    churn = {pk for pk, status in decided.items() if status in ("churning", "churned")}
    candidates = [
        c
        for c in ending
        if decided.get(c.pk) not in ("renewing", "renewed", "auto_renewed") and (not c.auto_renew or c.pk in churn)
    ]
    lines_of: dict[int, list] = defaultdict(list)
    versions_of: dict[int, list] = defaultdict(list)
    for line in (
        PriceLine.objects.filter(version__contract__in=ending_qs.values("pk"), kind__in=("recurring", "usage"))
        .select_related("version")
        .order_by("version__effective_from", "position")
    ):
        if line.version not in versions_of[line.version.contract_id]:
            versions_of[line.version.contract_id].append(line.version)
        lines_of[line.version_id].append(line)
    for c in candidates:
        in_force = None
        for v in versions_of.get(c.pk, []):
            if v.effective_from <= today:
                in_force = v
        in_force = in_force or (versions_of[c.pk][0] if versions_of.get(c.pk) else None)
        if in_force is None:
            continue
        value = annual_recurring_value(lines=lines_of[in_force.pk], currency=in_force.currency)
        rows.append(
            RiskRow(
                group="ending",
                currency=in_force.currency,
                amount=value,
                label=f"{c.number} · {c.customer.legal_name}",
                detail=f"ends {c.end_date:%-d %b %Y}"
                + (", churn decided" if c.pk in churn else ", does not auto-renew"),
                url=reverse("contracts:contract_detail", args=[c.pk]),
                contract_number=c.number,
                customer=c.customer.legal_name,
                date=c.end_date,
            )
        )
    # What is still open (after payments, credit notes and write-offs), not the amount first billed.
    overdue = Invoice.objects.filter(status__in=OPEN_RECEIVABLE, due_date__lt=today, amount_open__gt=0)
    if owner is not None:
        from contracts.models import Contract, Customer

        overdue = overdue.filter(
            Q(contract_id__in=Contract.objects.filter(owner=owner).values("pk"))
            | Q(customer_id__in=Customer.objects.filter(owner=owner).values("pk"))
        )
    for inv in overdue.select_related("contract", "customer").order_by("due_date", "pk"):
        rows.append(
            RiskRow(
                group="overdue",
                currency=inv.currency,
                amount=inv.amount_open,
                label=f"{inv.number} · {inv.customer.legal_name}",
                detail=f"due {inv.due_date:%-d %b %Y}, {(today - inv.due_date).days} days overdue",
                url=reverse("billing:invoice_detail", args=[inv.pk]),
                contract_number=inv.contract.number,
                customer=inv.customer.legal_name,
                date=inv.due_date,
            )
        )
    return AtRisk(today=today, quarter_end=end, rows=rows)


def revenue_at_risk_summary(*, today: date, owner=None) -> dict:
    # The home page needs only totals, but the "ending" group's value comes from price lines;
    # the row loader above runs a fixed number of queries, so the home reuses it.
    risk = revenue_at_risk(today=today, owner=owner)
    return {"totals": risk.totals(), "groups": risk.group_totals(), "quarter_end": risk.quarter_end}


# --------------------------------------------------------------------------- facts for the home page


def billed_in(*, start: date, end: date) -> QuerySet:
    from billing.models import Invoice

    return Invoice.objects.filter(issue_date__gte=start, issue_date__lte=end, status__in=ISSUED)


def billed_totals(*, start: date, end: date) -> list[dict]:
    rows = (
        billed_in(start=start, end=end)
        .values("currency")
        .annotate(n=Count("pk"), total=Sum("total"))
        .order_by("currency")
    )
    return [
        {"currency": r["currency"], "count": r["n"], "total": quantize(r["total"] or 0, r["currency"])} for r in rows
    ]


def review_task_counts() -> dict:
    from billing.models import BillingReviewTask

    return BillingReviewTask.objects.filter(status="open").aggregate(open=Count("pk"))


# Rules whose findings are money earned and not billed; the others are value at stake (exposure).
# The two are never added together (a renewal at risk is not revenue owed).
LEAKAGE_EXPOSURE_RULES = frozenset({"L5", "L8"})


def leakage_summary() -> dict | None:
    """Open leakage findings by rule (count, amount per currency), with the totals of money earned
    and not billed kept apart from exposure; None before the scanner exists."""
    try:
        from insights.models import LeakageFinding
    except ImportError:
        return None
    rows = (
        LeakageFinding.objects.filter(status__in=("open", "acknowledged"))
        .values("rule", "currency")
        .annotate(n=Count("pk"), amount=Sum("amount"))
        .order_by("rule", "currency")
    )
    by_rule: dict[str, dict] = {}
    groups = {name: {"count": 0, "totals": defaultdict(lambda: ZERO)} for name in ("unbilled", "exposure")}
    for r in rows:
        currency = r["currency"] or ""
        group = "exposure" if r["rule"] in LEAKAGE_EXPOSURE_RULES else "unbilled"
        entry = by_rule.setdefault(r["rule"], {"rule": r["rule"], "group": group, "count": 0, "by_currency": {}})
        entry["count"] += r["n"]
        entry["by_currency"][currency] = entry["by_currency"].get(currency, ZERO) + (r["amount"] or ZERO)
        groups[group]["totals"][currency] += r["amount"] or ZERO
        groups[group]["count"] += r["n"]
    for group in groups.values():
        group["totals"] = dict(sorted(group["totals"].items()))
    return {
        "count": groups["unbilled"]["count"] + groups["exposure"]["count"],
        "unbilled": groups["unbilled"],
        "exposure": groups["exposure"],
        "by_rule": [by_rule[k] for k in sorted(by_rule, key=lambda rule: int(rule[1:]))],
    }


def leakage_rule_table(leakage: dict | None) -> list[dict]:
    """The finance home's "leakage by rule": one table per currency and group, bars scaled within it."""
    if not leakage:
        return []
    labels = leakage_rule_labels()
    tables: dict[tuple[str, str], dict] = {}
    for entry in leakage["by_rule"]:
        for currency, amount in entry["by_currency"].items():
            table = tables.setdefault(
                (entry["group"], currency), {"group": entry["group"], "currency": currency, "rows": []}
            )
            table["rows"].append(
                {
                    "rule": entry["rule"],
                    "label": labels.get(entry["rule"], ""),
                    "count": entry["count"],
                    "amount": amount,
                }
            )
    result = []
    for _key, table in sorted(tables.items(), key=lambda kv: (kv[0][0] != "unbilled", kv[0][1])):
        top = max((row["amount"] for row in table["rows"]), default=ZERO)
        for row in table["rows"]:
            # A share of the widest bar, as a whole percent for a CSS width (display only, never money).
            row["bar"] = int((row["amount"] * 100 / top).to_integral_value()) if top > 0 else 0
        table["total"] = sum((row["amount"] for row in table["rows"]), ZERO)
        result.append(table)
    return result


# --------------------------------------------------------------------------- the homes


# The portfolio figures are read from the stored projections (insights/services/projections.py):
# caught up first (the customers whose rows are dirty or of another day are recomputed), then added
# up in SQL, so a page's queries and time do not grow with the number of contracts.


@dataclass
class ProjectedForecast:
    """The forecast's months and monthly totals, as ``insights.forecast.Forecast`` gives them."""

    today: date
    months: list[date]
    rows: list[MonthTotals]
    currencies: list[str]

    @property
    def start(self) -> date:
        return self.months[0]

    @property
    def end(self) -> date:
        return add_months(self.months[-1], 1) - timedelta(days=1)

    def month_total(self, month: date) -> dict[str, Money3]:
        row = next((r for r in self.rows if r.month == month), None)
        return dict(sorted(row.by_currency.items())) if row else {}


@dataclass(frozen=True)
class ContractLabel:
    """What a dashboard row shows of its contract (the ``ContractTerms`` fields the pages read)."""

    id: int
    number: str
    title: str
    customer_id: int
    customer_name: str


def contract_label(contract) -> ContractLabel:
    return ContractLabel(
        id=contract.pk,
        number=contract.number,
        title=contract.title,
        customer_id=contract.customer_id,
        customer_name=contract.customer.legal_name,
    )


def projections_current(*, today: date) -> dict:
    """Catch the stored projections up to ``today`` before a dashboard reads them."""
    from insights.services.projections import projections_catch_up

    return projections_catch_up(today=today)


def owned_contracts(owner) -> QuerySet:
    """The ids of an account manager's contracts (theirs, or their customers'), as a subquery: a
    UNION of the two, each through its owner index (an OR would be guessed at half the portfolio)."""
    from contracts.models import Contract

    return (
        Contract.objects.filter(owner=owner)
        .values("pk")
        .union(Contract.objects.filter(customer__owner=owner).values("pk"))
    )


def projected_rows(model, *, owner=None) -> QuerySet:
    """A projection table's rows, optionally those of one account manager's contracts."""
    rows = model.objects.all()
    if owner is not None:
        rows = rows.filter(contract_id__in=owned_contracts(owner))
    return rows


def projected_forecast_items(*, today: date, months: int, owner=None, contracts: QuerySet | None = None) -> QuerySet:
    """The stored forecast's lines over ``months``: an owner's, or those of ``contracts`` (ids, a subquery)."""
    from insights.models import ForecastProjection

    bucket_months = forecast_months(today=today, months=months)
    rows = projected_rows(ForecastProjection, owner=owner)
    if contracts is not None:
        rows = rows.filter(contract_id__in=contracts)
    return rows.filter(
        as_of=today,
        month__gte=bucket_months[0],
        month__lte=bucket_months[-1],
        horizon_from__lte=months,
        horizon_to__gte=months,
    )


def projected_forecast(*, today: date, months: int, owner=None, contracts: QuerySet | None = None) -> ProjectedForecast:
    """The forecast's monthly totals by currency and kind (one grouped query)."""
    bucket_months = forecast_months(today=today, months=months)
    rows = {m: MonthTotals(month=m) for m in bucket_months}
    currencies: set[str] = set()
    if owner is None and contracts is None:
        # The whole portfolio: the totals the refresh keeps (a few rows per month).
        from insights.models import ForecastTotal

        grouped = ForecastTotal.objects.filter(
            as_of=today,
            month__gte=bucket_months[0],
            month__lte=bucket_months[-1],
            horizon_from__lte=months,
            horizon_to__gte=months,
        ).values("month", "currency", "kind")
        uplifted = Sum("uplifted")
    else:
        grouped = projected_forecast_items(today=today, months=months, owner=owner, contracts=contracts).values(
            "month", "currency", "kind"
        )
        uplifted = Count("pk", filter=~Q(uplift=0))
    for r in grouped.annotate(
        gross=Sum("gross"),
        discount=Sum("discount"),
        net=Sum("net"),
        uplift_total=Sum("uplift"),
        uplifted_count=uplifted,
    ).order_by("month", "currency", "kind"):
        row, currency = rows[r["month"]], r["currency"]
        currencies.add(currency)
        row.by_currency_kind[(currency, r["kind"])] = Money3(r["gross"], r["discount"], r["net"])
        total = row.by_currency.setdefault(currency, Money3())
        total.gross += r["gross"]
        total.discount += r["discount"]
        total.net += r["net"]
        if r["uplifted_count"]:
            row.uplift[currency] = row.uplift.get(currency, ZERO) + r["uplift_total"]
    return ProjectedForecast(
        today=today, months=bucket_months, rows=[rows[m] for m in bucket_months], currencies=sorted(currencies)
    )


def projected_value_totals(*, today: date, owner=None, rows: QuerySet | None = None) -> dict[str, ValueTotals]:
    """``valuation_totals`` of the stored valuation rows, per currency (one grouped query)."""
    from insights.models import ValuationProjection, ValuationTotal

    fields = ("committed", "value", "recognized", "billed", "unearned", "unbilled_receivable", "deferred")
    if owner is None and rows is None:
        # The whole portfolio: the totals the refresh keeps (a row per currency).
        return {
            t.currency: ValueTotals(**{f: getattr(t, f) for f in fields}, contracts=t.contracts)
            for t in ValuationTotal.objects.filter(as_of=today).order_by("currency")
        }
    rows = projected_rows(ValuationProjection, owner=owner) if rows is None else rows
    return {
        r["currency"]: ValueTotals(**{f: r[f] for f in fields}, contracts=r["contracts"])
        for r in rows.filter(as_of=today)
        .values("currency")
        .annotate(**{f: Sum(f) for f in fields}, contracts=Count("pk"))
        .order_by("currency")
    }


def _portfolio_figures(*, today: date, months: int) -> dict:
    from insights.charts import forecast_chart

    result = projected_forecast(today=today, months=months)
    href = f"/insights/forecast/?months={months}" + "&month={month}&kind={kind}"
    return {
        "next_month": result.months[0],
        "due_next_month": result.month_total(result.months[0]),
        "forecast_rows": result.rows,
        "charts": [forecast_chart(rows=result.rows, currency=c, href=href) for c in result.currencies],
        "value_totals": projected_value_totals(today=today),
    }


def finance_home(*, today: date, months: int) -> dict:
    """Every figure of the finance home in a fixed number of queries, always fresh: the stored
    projections are caught up first, then added up in SQL (no figure cache, nothing to refresh)."""
    from insights.forecast import add_months

    projections_current(today=today)
    figures = _portfolio_figures(today=today, months=months)
    leakage = leakage_summary()
    month_start = today.replace(day=1)
    return {
        **figures,
        "billed_month": billed_totals(start=month_start, end=add_months(month_start, 1) - timedelta(days=1)),
        "months": months,
        "at_risk": revenue_at_risk_summary(today=today),
        "leakage": leakage,
        "leakage_tables": leakage_rule_table(leakage),
        "review_tasks": review_task_counts()["open"],
    }


def leakage_rule_labels() -> dict[str, str]:
    try:
        from insights.models import LeakageRule
    except ImportError:
        return {}
    return dict(LeakageRule.choices)


def account_manager_home(*, today: date, user) -> dict:
    """An account manager's book: their customers' contract value and what is at risk this quarter."""
    from django.db.models import Min

    from insights.models import ValuationProjection

    projections_current(today=today)
    rows = projected_rows(ValuationProjection, owner=user).filter(as_of=today)
    # One grouped query for the whole book: each customer's sums (a manager's customers, not the
    # portfolio's), added up here per currency for the totals — exact Decimal sums, as SQL's are.
    fields = ("committed", "value", "recognized", "billed", "unearned", "unbilled_receivable", "deferred")
    customers = list(
        rows.values("customer_id", "currency")
        .annotate(**{f: Sum(f) for f in fields}, contracts=Count("pk"), first=Min("contract_id"))
        .order_by("-value", "first", "currency")
    )
    totals: dict[str, ValueTotals] = {}
    for r in sorted(customers, key=lambda r: r["currency"]):
        t = totals.setdefault(r["currency"], ValueTotals())
        for f in fields:
            setattr(t, f, getattr(t, f) + r[f])
        t.contracts += r["contracts"]
    # The names of the few customers shown, not joined to every row of the book.
    from contracts.models import Customer

    shown = customers[:8]
    names = dict(
        Customer.objects.filter(pk__in=[r["customer_id"] for r in shown] or [0]).values_list("pk", "legal_name")
    )
    top = [
        {
            "name": names.get(r["customer_id"], ""),
            **{k: r[k] for k in ("customer_id", "currency", "value", "unearned", "contracts")},
        }
        for r in shown
    ]
    return {
        "my_value": totals,
        "my_customers": top,
        "my_customer_count": len({r["customer_id"] for r in customers}),
        "my_at_risk": revenue_at_risk_summary(today=today, owner=user),
    }
