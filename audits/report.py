"""The audit report's figures (pure: findings, obligations and imported invoices in, JSON-ready dicts out).

What a CFO reads first: the revenue that leaked (only the rules that are money never billed), by
rule and by customer, the largest findings, what RevExOS would have billed per month against what
was billed, and DSO from the old system's invoices.

DSO (DESIGN.md §4): AR at period end ÷ credit sales in the period × days in the period. With paid
dates in the export, per month (an invoice is open at a month end unless paid by then); without
them, once, at the export date, from what the export says is still due, over the last 90 days.
Average days to pay: the amount-weighted mean of (paid date − issue date) of fully paid invoices.
"""

from __future__ import annotations

import calendar
from collections import defaultdict
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import ROUND_HALF_UP, Decimal

from audits.rules import LEAK_RULES, RULE_ORDER, RULES, Finding
from revexos.money import quantize

ZERO = Decimal(0)
TENTH = Decimal("0.1")  # DSO and days to pay: one decimal, half-up like money
LARGEST = 10
SNAPSHOT_DAYS = 90


@dataclass(frozen=True)
class HistoryInvoice:
    """One imported invoice as the report needs it (sent ones only)."""

    number: str
    customer: str
    currency: str
    issue_date: date
    due_date: date
    total: Decimal
    credit_note: bool = False
    amount_due: Decimal | None = None
    paid_on: date | None = None


def _money(amount: Decimal, currency: str) -> str:
    return format(quantize(amount, currency), "f")


def _month_end(day: date) -> date:
    return day.replace(day=calendar.monthrange(day.year, day.month)[1])


def _months(start: date, end: date) -> list[date]:
    months, cursor = [], start.replace(day=1)
    while cursor <= end:
        months.append(cursor)
        cursor = (cursor + timedelta(days=32)).replace(day=1)
    return months


def summary(findings: list[Finding]) -> dict:
    """Totals per currency, by rule and by customer, and the largest findings."""
    totals: dict[str, dict[str, Decimal]] = defaultdict(
        lambda: {"leaked": ZERO, "billed_twice": ZERO, "terms_at_risk": ZERO}
    )
    by_rule: dict[tuple[str, str], list] = defaultdict(lambda: [0, ZERO])
    by_customer: dict[tuple[str, str], list] = defaultdict(lambda: [0, ZERO, set()])
    for f in findings:
        bucket = "leaked" if f.rule in LEAK_RULES else ("billed_twice" if f.rule == "A1" else "terms_at_risk")
        totals[f.currency][bucket] += f.amount
        entry = by_rule[(f.rule, f.currency)]
        entry[0] += 1
        entry[1] += f.amount
        if f.rule in LEAK_RULES:
            cust = by_customer[(f.customer, f.currency)]
            cust[0] += 1
            cust[1] += f.amount
            cust[2].add(f.rule)
    leaks = sorted((f for f in findings if f.rule in LEAK_RULES), key=lambda f: (-f.amount, f.sort_key))
    return {
        "totals": [{"currency": c, **{k: _money(v, c) for k, v in t.items()}} for c, t in sorted(totals.items())],
        "by_rule": [
            {
                "rule": rule,
                "name": RULES[rule]["name"],
                "currency": currency,
                "count": count,
                "amount": _money(amount, currency),
                "leak": rule in LEAK_RULES,
            }
            for (rule, currency), (count, amount) in sorted(
                by_rule.items(), key=lambda kv: (RULE_ORDER.index(kv[0][0]), kv[0][1])
            )
        ],
        "by_customer": [
            {
                "customer": customer,
                "currency": currency,
                "count": count,
                "amount": _money(amount, currency),
                "rules": [r for r in RULE_ORDER if r in rules],
            }
            for (customer, currency), (count, amount, rules) in sorted(
                by_customer.items(), key=lambda kv: (-kv[1][1], kv[0])
            )
        ],
        "largest": [
            {
                "rule": f.rule,
                "customer": f.customer,
                "contract": f.contract_number,
                "title": f.title,
                "period_start": f.period_start.isoformat() if f.period_start else None,
                "amount": _money(f.amount, f.currency),
                "currency": f.currency,
            }
            for f in leaks[:LARGEST]
        ],
    }


def monthly(
    *, owed: list[tuple[date, str, Decimal]], billed: list[tuple[date, str, Decimal]], start: date, end: date
) -> dict[str, list[dict]]:
    """Per currency and month from ``start`` to ``end``: what RevExOS would have billed (the contract's
    obligations less the discounts it grants) and what the old system billed, by the period billed."""
    table: dict[str, dict[date, list[Decimal]]] = defaultdict(lambda: defaultdict(lambda: [ZERO, ZERO]))
    for day, currency, amount in owed:
        if start <= day <= end:
            table[currency][day.replace(day=1)][0] += amount
    for day, currency, amount in billed:
        if start <= day <= end:
            table[currency][day.replace(day=1)][1] += amount
    result = {}
    for currency, months in sorted(table.items()):
        result[currency] = [
            {
                "month": m.strftime("%Y-%m"),
                "label": m.strftime("%b %Y"),
                "owed": _money(months[m][0], currency),
                "billed": _money(months[m][1], currency),
                "gap": _money(months[m][0] - months[m][1], currency),
            }
            for m in _months(start, end)
        ]
    return result


def dso(invoices: list[HistoryInvoice], *, as_of: date) -> dict[str, dict]:
    """DSO per currency: monthly with paid dates, else one snapshot at the export date."""
    by_currency: dict[str, list[HistoryInvoice]] = defaultdict(list)
    for invoice in invoices:
        by_currency[invoice.currency].append(invoice)
    result = {}
    for currency, rows in sorted(by_currency.items()):
        paid = [i for i in rows if i.paid_on and not i.credit_note]
        weight = sum((i.total for i in paid), ZERO)
        days_to_pay = (
            format(
                (sum((i.total * (i.paid_on - i.issue_date).days for i in paid), ZERO) / weight).quantize(
                    TENTH, rounding=ROUND_HALF_UP
                ),
                "f",
            )
            if weight > 0
            else None
        )
        if paid:
            months = []
            first = min(i.issue_date for i in rows)
            for month in _months(first, as_of)[-12:]:
                end = min(_month_end(month), as_of)
                sales = sum(
                    ((-i.total if i.credit_note else i.total) for i in rows if month <= i.issue_date <= end), ZERO
                )
                ar = sum(
                    (
                        i.total
                        for i in rows
                        if not i.credit_note and i.issue_date <= end and not (i.paid_on and i.paid_on <= end)
                    ),
                    ZERO,
                )
                days = (end - month).days + 1
                months.append(
                    {
                        "month": month.strftime("%Y-%m"),
                        "label": month.strftime("%b %Y"),
                        "ar_end": _money(ar, currency),
                        "credit_sales": _money(sales, currency),
                        "days": days,
                        "dso": format((ar / sales * days).quantize(TENTH, rounding=ROUND_HALF_UP), "f")
                        if sales > 0
                        else None,
                    }
                )
            latest = next((m["dso"] for m in reversed(months) if m["dso"] is not None), None)
            result[currency] = {
                "method": "payment_dates",
                "dso": latest,
                "months": months,
                "average_days_to_pay": days_to_pay,
                "paid_invoices": len(paid),
            }
            continue
        known = [i for i in rows if i.amount_due is not None]
        if not known:
            result[currency] = {"method": "none", "dso": None, "months": [], "average_days_to_pay": None}
            continue
        window_start = as_of - timedelta(days=SNAPSHOT_DAYS - 1)
        sales = sum(
            ((-i.total if i.credit_note else i.total) for i in rows if window_start <= i.issue_date <= as_of), ZERO
        )
        ar = sum((i.amount_due for i in known if not i.credit_note), ZERO)
        result[currency] = {
            "method": "export_snapshot",
            "dso": format((ar / sales * SNAPSHOT_DAYS).quantize(TENTH, rounding=ROUND_HALF_UP), "f")
            if sales > 0
            else None,
            "ar_end": _money(ar, currency),
            "credit_sales": _money(sales, currency),
            "days": SNAPSHOT_DAYS,
            "months": [],
            "average_days_to_pay": None,
        }
    return result
